#!/usr/bin/env bash
# TCP bulk A/B per relay CPU-second: iperf3 -P 1 and -P 8 through each subject in turn (the order
# reversed every round), as the bench places them (relay on CPU 1; iperf3 client and server on
# CPU 0). Per step: Gbit/s, relay CPU % (utime+stime of every process in the relay's group, from
# /proc) and Gbit per relay CPU-second, the figure the bench's per-core ratio is made of.
#   PORT_BASE=36000 ROUNDS=5 bench/relay/tcp-bulk-ab.sh bench/relay/subject-nginx.sh $BASE/bench/relay/subject.sh bench/relay/subject.sh
# Each subject takes the subject.sh arguments (RELAY_PORT ECHO_PORT IPERF_RELAY_PORT IPERF_PORT);
# a script whose name contains "nginx" relays RELAY_PORT only, so it is given the iperf3 ports there.
# Ports: free ones of PORT_BASE..PORT_BASE+PORT_SPAN-1 (default 2000), new ones for every relay
# start. Prints "bg busy_pct" (other tenants' load, both CPUs, while nothing of ours runs) before
# every round, and medians with min-max at the end.
# STAT=1 counts, with perf stat on the relay, task-clock (ms), context switches and system calls
# (all, and splice, recvfrom, sendto, writev, epoll_wait, epoll_pwait) per GB relayed; STAT_EV=list
# replaces those events (e.g. task-clock,timer:hrtimer_start,timer:hrtimer_expire_entry).
# CC_STATE=1 prints, half-way through each step, the congestion-control state of the relay's
# socket that has sent the most (docs/benchmarks.md, "Congestion control and the bulk TCP rows").
# PERF=DIR records `perf record -e cpu-clock -g` of the relay for each P=1 step (PERF_P=N: P=N) into DIR
# (PERF_EV=event records that event instead, e.g. timer:hrtimer_start).
set -euo pipefail
W=$(mktemp -d /tmp/sluice-tcp-bulk-ab.XXXXXX)
[ $# -ge 1 ] || { echo "usage: PORT_BASE=N $0 SUBJECT_SCRIPT ..." >&2; exit 2; }
[ -n "${PORT_BASE:-}" ] || { echo "tcp-bulk-ab: set PORT_BASE (free ports of PORT_BASE..PORT_BASE+PORT_SPAN-1 are used)" >&2; exit 2; }
ROUNDS=${ROUNDS:-4} DUR=${DUR:-3} PS=${PS:-"1 8"}
PORT_SPAN=${PORT_SPAN:-2000}
# free_ports N: N ports of PORT_BASE..PORT_BASE+PORT_SPAN-1 that no socket holds now. The range
# lies in the ephemeral one on a shared machine, where another tenant's connections (and their
# TIME_WAITs) may hold any port of it for a minute.
free_ports() {
  ss -tuanH | awk '{ n = split($5, a, ":"); print a[n] }' | sort -u > "$W/used"
  seq "$PORT_BASE" $((PORT_BASE + PORT_SPAN - 1)) | grep -vxFf "$W/used" | shuf -n "$1" | tr '\n' ' '
}
I=$(free_ports 1); I=${I% }
T=$((ROUNDS * $# * (3 * DUR + 20) + 60))
taskset -c 0 timeout "$T" iperf3 -s -p "$I" > /dev/null 2>&1 & IP=$!
SP=""
cleanup() { [ -n "$SP" ] && kill -- "-$SP" 2> /dev/null; pkill -P "$IP" 2> /dev/null; kill "$IP" 2> /dev/null; true; }
trap cleanup EXIT
wait_port() { for _ in $(seq 1 300); do ss -Hlnt "( sport = :$1 )" | grep -q . && return 0; sleep 0.1; done; echo "tcp-bulk-ab: port $1 did not open" >&2; exit 1; }
bg_busy() {
  local a b tot=0 idle i
  read -r -a a < <(head -1 /proc/stat); sleep 0.4; read -r -a b < <(head -1 /proc/stat)
  idle=$(( (b[4] + b[5]) - (a[4] + a[5]) ))
  for i in 1 2 3 4 5 6 7 8; do tot=$((tot + b[i] - a[i])); done
  echo $(( tot > 0 ? 100 * (tot - idle) / tot : 0 ))
}
# CPU ticks (utime+stime) of every process in group $1
ticks() { local s=0 p; for p in $(pgrep -g "$1"); do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat" 2> /dev/null || echo 0))); done; echo $s; }
HZ=$(getconf CLK_TCK)
# cc_state GROUP: the congestion control of the group's socket that has sent the most, as `ss -ti`
# shows it mid-step (BBR's pacing_gain 2.88672 is its start-up, 1.25/0.75/1 its bandwidth probing).
cc_state() {
  local pids
  pids=$(pgrep -g "$1" | paste -sd'|')
  ss -tinp 2> /dev/null | awk -v pids="pid=($pids)," '
    /^ESTAB/ { mine = ($0 ~ pids) }
    mine && /bytes_acked:/ { b = 0; cc = "?"
      for (i = 1; i <= NF; i++) { if ($i ~ /^bytes_acked:/) { split($i, a, ":"); b = a[2] + 0 } if ($i ~ /^(bbr|cubic|reno)/) cc = $i }
      if (b > best) { best = b; state = cc } }
    END { if (state != "") print "cc=" state }'
}
STAT_EV=${STAT_EV:-task-clock,context-switches,raw_syscalls:sys_enter,syscalls:sys_enter_splice,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_writev}
: > "$W/results"
one() { # ROUND INDEX SCRIPT
  local round=$1 i=$2 s=$3 tport="" a b gbit gbps cpu
  # The ports sit in the ephemeral range on a shared machine: another tenant's connection may hold
  # one for a moment (EADDRINUSE), so a relay that exits at start is tried again.
  local try
  for try in $(seq 1 20); do
    read -r R RE RI <<< "$(free_ports 3)"
    tport=$RI
    if [[ "$s" == *nginx* ]]; then
      setsid taskset -c 1 bash "$s" "$R" "$I" 0 0 > "$W/relay$i.log" 2>&1 &
      tport=$R
    else
      setsid taskset -c 1 bash "$s" "$R" "$RE" "$RI" "$I" > "$W/relay$i.log" 2>&1 &
    fi
    SP=$!
    for _ in $(seq 1 300); do ss -Hlnt "( sport = :$tport )" | grep -q . && break; kill -0 "$SP" 2> /dev/null || break; sleep 0.1; done
    kill -0 "$SP" 2> /dev/null && break
    echo "r$round relay$i: start failed ($(head -c 200 "$W/relay$i.log")), again on the next ports" >&2
    SP=""
  done
  wait_port "$tport"
  sleep 0.5
  # warm-up: a fresh process still compiles its hot paths
  taskset -c 0 timeout 20 iperf3 -c 127.0.0.1 -p "$tport" -t 1 -P 2 > /dev/null 2>&1 || true
  for p in $PS; do
    local pp=""
    if [ -n "${PERF:-}" ] && [ "$p" = "${PERF_P:-1}" ]; then
      mkdir -p "$PERF"
      perf record -q -e "${PERF_EV:-cpu-clock}" -g -o "$PERF/r$round-relay$i.data" -p "$(pgrep -g "$SP" | paste -sd,)" > /dev/null 2>&1 & pp=$!
    fi
    local ps=""
    if [ "${STAT:-0}" = 1 ]; then
      perf stat -x, -e "$STAT_EV" -p "$(pgrep -g "$SP" | paste -sd,)" -o "$W/stat" > /dev/null 2>&1 & ps=$!
    fi
    a=$(ticks "$SP")
    taskset -c 0 timeout $((DUR + 20)) iperf3 -c 127.0.0.1 -p "$tport" -t "$DUR" -P "$p" -J > "$W/iperf.json" 2> /dev/null &
    local ip=$! cc=""
    [ "${CC_STATE:-0}" = 1 ] && { sleep "$(awk -v d="$DUR" 'BEGIN { print d / 2 }')"; cc=" $(cc_state "$SP")"; }
    wait "$ip" || true
    b=$(ticks "$SP")
    [ -n "$pp" ] && { kill -INT "$pp"; wait "$pp" || true; }
    read -r gbit gbps <<< "$(node -e 'let j = {}; try { j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); } catch {} const s = j.end && j.end.sum_received; console.log(s ? (s.bytes * 8 / 1e9).toFixed(3) : 0, s ? (s.bits_per_second / 1e9).toFixed(2) : 0)' "$W/iperf.json")"
    local per_gb=""
    if [ -n "$ps" ]; then
      kill -INT "$ps"; wait "$ps" || true
      per_gb=" per GB: $(awk -F, -v gb="$gbit" '$3 != "" { m = split($3, a, ":"); k = a[m]; sub("sys_enter_", "", k); if (k == "sys_enter") k = "syscalls"; printf "%s=%.0f ", k, (gb > 0) ? $1 / (gb / 8) : 0 }' "$W/stat")"
    fi
    cpu=$(awk -v t=$((b - a)) -v hz="$HZ" 'BEGIN { printf "%.3f", t / hz }')
    local per=$(awk -v g="$gbit" -v c="$cpu" 'BEGIN { printf "%.2f", (c > 0 ? g / c : 0) }')
    echo "r$round relay$i P=$p: gbps=$gbps relay_cpu_s=$cpu gbit_per_cpu_s=$per$per_gb$cc  ($s)"
    echo "$i P$p $per" >> "$W/results"
  done
  kill -- "-$SP" 2> /dev/null || true; wait "$SP" 2> /dev/null || true
  for _ in $(seq 1 200); do kill -0 -- "-$SP" 2> /dev/null || break; sleep 0.05; done
  SP=""
  sleep 0.3
}
wait_port "$I"
for round in $(seq 1 "$ROUNDS"); do
  echo "r$round bg busy_pct $(bg_busy)"
  order=$(seq 1 $#); [ $((round % 2)) = 0 ] && order=$(seq $# -1 1)
  for i in $order; do one "$round" "$i" "${!i}"; done
done
echo "medians over $ROUNDS rounds, Gbit per relay CPU-second (min-max):"
for i in $(seq 1 $#); do
  line="relay$i:"
  for p in $PS; do
    v=$(awk -v i="$i" -v m="P$p" '$1 == i && $2 == m { print $3 }' "$W/results" | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.2f (%.2f-%.2f)", m, a[1], a[NR] } }')
    line="$line P$p=$v"
  done
  echo "$line  (${!i})"
done
