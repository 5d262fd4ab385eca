#!/usr/bin/env bash
# backlog-ab.sh ROOT_A ROOT_B: the closed loop right after the 1000-session load, on the same
# processes, as run-peers.sh orders them (docs/benchmarks.md, "A backlog after its senders"):
# per build, a fresh subject-expose.sh (gateway + agent in one process, CPU 1, ADMIN_PORT for the
# counters), the 1000-session 64 B load (udpload -n 1000 -W 2), then at once the closed loop
# (udpload -w 64). Builds in turn, the order reversed every round. Per run: both rows' delivered
# datagrams/s, loss and per relay CPU-second, and the counters that moved during the closed loop
# (sluice-counters.sh: budget drops by reason, stale drops). echod and udpload on CPU 0.
#   PORT_BASE=24400 ROUNDS=3 DUR=2 bash bench/relay/backlog-ab.sh /work/wt/base11 "$PWD"
# PAUSE=1: a second between the two loads (the backlog gone by then, whatever the build).
set -u
[ $# -eq 2 ] || { echo "usage: $0 ROOT_A ROOT_B" >&2; exit 2; }
SHARED=${SHARED_BENCH:-$(cd "$(dirname "$0")/../../../shared/bench" 2>/dev/null && pwd || echo /work/shared/bench)}
W=$(mktemp -d /tmp/backlog-ab.XXXXXX)
for t in echod udpload; do gcc -O2 -Wall -o "$W/$t" "$SHARED/$t.c" || exit 1; done
E=${PORT_BASE:-24400} DUR=${DUR:-2} HZ=$(getconf CLK_TCK)
taskset -c 0 "$W/echod" -p "$E" -u -T 3600 > /dev/null 2>&1 & EP=$!
SP=
cleanup() { [ -n "$SP" ] && kill -INT "$SP" 2>/dev/null; kill "$EP" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT INT TERM
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/kernel-drops.sh"   # bg_busy
. "$HERE/sluice-counters.sh" # counters, counters_line
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
row() { # OUT C0 C1 -> "delivered=... loss=... per_cpu_s=..."
  local d l; d=$(echo "$1" | sed -n 's/.*delivered_pps=\([0-9.]*\).*/\1/p' | head -1); l=$(echo "$1" | sed -n 's/.*loss_pct=\([0-9.]*\).*/\1/p' | head -1)
  awk -v d="${d:-0}" -v l="${l:-NA}" -v a="$2" -v b="$3" -v h="$HZ" -v t="$DUR" \
    'BEGIN { c = (b - a) / h; printf "delivered=%.0f loss_pct=%s per_cpu_s=%.0f", d, l, (c > 0 ? d * t / c : 0) }'
}
run() {
  local bg; bg=$(bg_busy | awk '{ print $3 }')
  local root=$1 R=$2 out np c0 c1 lp m c2 c3 cp
  ADMIN_PORT=$((R + 50)) taskset -c 1 bash "$root/bench/relay/subject-expose.sh" "$R" "$E" $((R + 2)) $((E + 5)) > "$W/subject.log" 2>&1 & SP=$!
  for _ in $(seq 1 60); do
    sleep 0.3
    out=$(timeout 2 taskset -c 0 "$W/udpload" -t "127.0.0.1:$R" -s 64 -d 0.3 -w 1 2>/dev/null || true)
    case "$out" in *delivered_pps=0\ *|"") ;; *) break ;; esac
  done
  np=$(pgrep -P "$SP" node || echo "$SP")
  timeout $((DUR + 27)) taskset -c 0 "$W/udpload" -t "127.0.0.1:$R" -s 64 -n 1000 -W 2 -d "$DUR" > "$W/m.out" 2> "$W/m.err" & lp=$!
  for _ in $(seq 1 500); do grep -q warmup: "$W/m.err" && break; kill -0 $lp 2>/dev/null || break; sleep 0.02; done
  c0=$(cpu "$np")
  wait $lp
  c1=$(cpu "$np")
  m=$(row "$(cat "$W/m.out")" "$c0" "$c1")
  [ -n "${PAUSE:-}" ] && sleep "$PAUSE"
  counters $((R + 50)) "$W/before" & cp=$!  # beside the closed loop's start, not before it
  c2=$(cpu "$np")
  timeout $((DUR + 17)) taskset -c 0 "$W/udpload" -t "127.0.0.1:$R" -s 64 -d "$DUR" -w 64 > "$W/w.out" 2>&1
  c3=$(cpu "$np")
  wait $cp
  counters $((R + 50)) "$W/after"
  kill -INT "$SP" "$np" 2>/dev/null; wait "$SP" 2>/dev/null; SP=
  echo "$root bg_busy=$bg"
  echo "  1000 sessions: $m"
  echo "  closed loop:   $(row "$(cat "$W/w.out")" "$c2" "$c3")"
  counters_line "$W/before" "$W/after"
}
for r in $(seq 1 "${ROUNDS:-3}"); do
  if [ $((r % 2)) = 1 ]; then run "$1" $((E + 100)); run "$2" $((E + 500)); else run "$2" $((E + 500)); run "$1" $((E + 100)); fi
done
