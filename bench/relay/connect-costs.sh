#!/usr/bin/env bash
# connect-costs.sh ROOT: what one round trip of the UDP 64 B open loop costs on the plain route
# (subject.sh) and on the direct peer path (subject-connect.sh) of the built checkout ROOT, per
# process: CPU µs, system calls (recvmmsg, sendmmsg, epoll_wait/epoll_pwait) and context switches
# per delivered round trip (`perf stat` on each Sluice process during udpload's window). Placement
# as the bench: echod and udpload on CPU 0, the subject on CPU 1. Ports PORT_BASE (echo) and +100.
#   PORT_BASE=25400 DUR=3 bash bench/relay/connect-costs.sh "$PWD"
#   unshare -n bash -c 'ip link set lo up; exec bash bench/relay/connect-costs.sh "$@"' bash "$PWD"
# PERF_RECORD=1: also `perf record -e cpu-clock -g` of each process (files kept in the printed dir).
# LOAD: udpload's arguments (default "-s 64"; "-s 64 -w 64" for the closed loop). SUBJECTS: which
# to run (default "subject.sh subject-connect.sh").
# The subjects' environment passes through (e.g. DATAGRAM_BUDGET=0).
set -u
[ $# -eq 1 ] || { echo "usage: $0 ROOT" >&2; exit 2; }
ROOT=$1
SHARED=${SHARED_BENCH:-$(cd "$(dirname "$0")/../../../shared/bench" 2>/dev/null && pwd || echo /work/shared/bench)}
W=$(mktemp -d /tmp/connect-costs.XXXXXX)
for t in echod udpload; do gcc -O2 -Wall -o "$W/$t" "$SHARED/$t.c" || exit 1; done
E=${PORT_BASE:-25400} R=$((${PORT_BASE:-25400} + 100)) DUR=${DUR:-3} HZ=$(getconf CLK_TCK)
taskset -c 0 "$W/echod" -p "$E" -u -T 3600 > /dev/null 2>&1 & EP=$!
SP=
cleanup() { [ -n "$SP" ] && kill -TERM -- "-$SP" 2>/dev/null; kill "$EP" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT INT TERM
. "$(dirname "$0")/kernel-drops.sh" # bg_busy
EV='syscalls:sys_enter_recvmmsg,syscalls:sys_enter_sendmmsg,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,context-switches'
one() { # SUBJECT
  local bg; bg=$(bg_busy | awk '{ print $3 }')
  setsid taskset -c 1 bash "$ROOT/bench/relay/$1" "$R" "$E" $((R + 1)) $((E + 1)) > "$W/subject.log" 2>&1 & SP=$!
  for _ in $(seq 1 100); do sleep 0.3; ss -Hlnt "( sport = :$R )" | grep -q . && break; done
  sleep 0.5
  local pids; pids=$(pgrep -s "$SP" -x node | tr '\n' ' ')
  timeout 5 taskset -c 0 "$W/udpload" -t "127.0.0.1:$R" ${LOAD:--s 64} -d 1 > /dev/null 2>&1 # warm-up: hand-over, isolation
  local p c0=() c1=() i=0
  for p in $pids; do c0+=("$(awk '{ print $14 + $15 }' "/proc/$p/stat")"); done
  for p in $pids; do
    perf stat -x, -e "$EV" -p "$p" -o "$W/stat-$p.txt" -- sleep "$DUR" > /dev/null 2>&1 &
    [ "${PERF_RECORD:-0}" = 1 ] && perf record -q -e cpu-clock -g -p "$p" -o "$W/$1-$p.data" -- sleep "$DUR" > /dev/null 2>&1 &
  done
  timeout $((DUR + 10)) taskset -c 0 "$W/udpload" -t "127.0.0.1:$R" ${LOAD:--s 64} -d "$DUR" > "$W/load.out" 2>&1
  wait $(jobs -p | grep -v "^$EP$" | grep -v "^$SP$") 2>/dev/null
  for p in $pids; do c1+=("$(awk '{ print $14 + $15 }' "/proc/$p/stat")"); done
  local rcvd; rcvd=$(sed -n 's/.* rcvd=\([0-9]*\).*/\1/p' "$W/load.out")
  echo "$1: bg busy_pct $bg; $(sed -n 's/.*\(delivered_pps=[0-9.]*\).*/\1/p' "$W/load.out") rcvd=$rcvd"
  for p in $pids; do
    local name; name=$(tr '\0' ' ' < "/proc/$p/cmdline" | sed -n 's/.*--config \S*\/\([a-z-]*\)\.yaml.*/\1/p')
    awk -F, -v n="${name:-relay}" -v rt="$rcvd" -v cpu=$(( (c1[i] - c0[i]) * 1000000 / HZ )) '
      { split($3, e, ":"); k = e[2] != "" ? e[2] : $3; sub("sys_enter_", "", k); v[k] = $1 }
      END { printf "  %-10s cpu_us/rt=%.2f", n, cpu / rt; for (k in v) printf " %s/rt=%.4f", k, v[k] / rt; printf "\n" }' "$W/stat-$p.txt"
    i=$((i + 1))
  done
  kill -TERM -- "-$SP" 2>/dev/null; wait "$SP" 2>/dev/null; SP=
  sleep 0.5
}
for s in ${SUBJECTS:-subject.sh subject-connect.sh}; do one "$s"; done
echo "files: $W"
