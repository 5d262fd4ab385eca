#!/usr/bin/env bash
# expose-64-ab.sh ROOT_A ROOT_B: the bench's UDP 64 B open-loop row through the exposure
# (subject-expose.sh of each built checkout: gateway + agent in one process, pinned to CPU 1) for
# two builds taken in turn on fresh processes, the order reversed every round (the bench's second
# subject measures lower than its first). Per round and build: delivered datagrams/s and per relay
# CPU-second (utime + stime from /proc over DUR s, after a 1 s warm-up). echod and udpload (from
# ../shared/bench) on CPU 0. Ports PORT_BASE (echo), +100 and +130 (the two relays, and +200 above
# each for their tunnels).
#   PORT_BASE=30400 ROUNDS=4 bash bench/relay/expose-64-ab.sh $BASE "$PWD"
# WARM=0: no 1 s warm-up before the window (as run-peers.sh: a fresh relay's first session, its
# hand-over and isolation inside the window).
# WINDOW=64: the closed-loop row instead (udpload -w 64: at most 64 datagrams in flight).
# LOAD: udpload's arguments instead of "-s 64" (e.g. "-s 1400", or "-s 64 -n 1000 -W 2": with -W the
# relay's CPU is sampled once udpload says its warm-up is over, as run-peers.sh does). The
# subject's environment passes through (e.g. DATAGRAM_BUDGET=0). SUBJECT=subject.sh: the plain
# route instead of the exposure.
set -u
[ $# -eq 2 ] || { echo "usage: $0 ROOT_A ROOT_B" >&2; exit 2; }
SHARED=${SHARED_BENCH:-$(cd "$(dirname "$0")/../../../shared/bench" && pwd)}
W=$(mktemp -d /tmp/expose-64-ab.XXXXXX)
for t in echod udpload; do gcc -O2 -Wall -o "$W/$t" "$SHARED/$t.c" || exit 1; done
E=${PORT_BASE:-30400} DUR=${DUR:-3} HZ=$(getconf CLK_TCK) LOAD=${LOAD:--s 64}
taskset -c 0 "$W/echod" -p "$E" -u -T 3600 > /dev/null 2>&1 & EP=$!
SP=
cleanup() { [ -n "$SP" ] && kill -INT "$SP" 2>/dev/null; kill "$EP" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT INT TERM
. "$(dirname "$0")/kernel-drops.sh"  # bg_busy: other tenants' load, on record with each run
run() {
  local bg; bg=$(bg_busy | awk '{ print $3 }')
  local root=$1 R=$2 out np c0 c1 d lp
  taskset -c 1 bash "$root/bench/relay/${SUBJECT:-subject-expose.sh}" "$R" "$E" $((R + 2)) $((E + 5)) > "$W/subject.log" 2>&1 & SP=$!
  for _ in $(seq 1 60); do
    sleep 0.3
    out=$(timeout 2 taskset -c 0 "$W/udpload" -t "127.0.0.1:$R" -s 64 -d 0.3 -w 1 2>/dev/null || true)
    case "$out" in *delivered_pps=0\ *|"") ;; *) break ;; esac
  done
  np=$(pgrep -P "$SP" node || echo "$SP")
  case "$LOAD" in *-W*) ;; *) [ "${WARM:-1}" = 0 ] || timeout 5 taskset -c 0 "$W/udpload" -t "127.0.0.1:$R" $LOAD -d 1 > /dev/null 2>&1 ;; esac
  c0=$(awk '{ print $14 + $15 }' "/proc/$np/stat")
  timeout $((DUR + 17)) taskset -c 0 "$W/udpload" -t "127.0.0.1:$R" $LOAD -d "$DUR" ${WINDOW:+-w "$WINDOW"} > "$W/load.out" 2> "$W/load.err" & lp=$!
  case "$LOAD" in *-W*)
    for _ in $(seq 1 500); do grep -q warmup: "$W/load.err" && break; kill -0 $lp 2>/dev/null || break; sleep 0.02; done
    c0=$(awk '{ print $14 + $15 }' "/proc/$np/stat") ;;
  esac
  wait $lp
  out=$(cat "$W/load.out")
  c1=$(awk '{ print $14 + $15 }' "/proc/$np/stat")
  kill -INT "$SP" "$np" 2>/dev/null; wait "$SP" 2>/dev/null; SP=
  d=$(echo "$out" | sed -n 's/.*delivered_pps=\([0-9.]*\).*/\1/p' | head -1)
  awk -v r="$root" -v bg="$bg" -v d="${d:-0}" -v a="$c0" -v b="$c1" -v h="$HZ" -v t="$DUR" \
    'BEGIN { c = (b - a) / h; p = c > 0 ? d * t / c : 0; printf "%s delivered_pps=%.0f relay_cpu_s=%.2f per_cpu_s=%.0f bg_busy=%s\n", r, d, c, p, bg }'
}
for r in $(seq 1 "${ROUNDS:-4}"); do
  if [ $((r % 2)) = 1 ]; then run "$1" $((E + 100)); run "$2" $((E + 130)); else run "$2" $((E + 130)); run "$1" $((E + 100)); fi
done
