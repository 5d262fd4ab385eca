#!/usr/bin/env bash
# closed-loop-ab.sh ROOT...: the bench's closed-loop row (one session, 64 B, window 64) for plain
# routes of several built checkouts, taken in turn with the order reversed every round (the
# bench's second subject measures lower than its first), each on a fresh relay pinned to CPU 1
# with echod and udpload (from ../shared/bench) on CPU 0. Prints, per round and build, round trips
# per second and per relay CPU-second (utime + stime from /proc over DUR s after a 1 s warm-up).
#   PORT_BASE=25000 ROUNDS=6 bash bench/relay/closed-loop-ab.sh $BASE "$PWD"
set -u
[ $# -gt 0 ] || { echo "usage: $0 ROOT..." >&2; exit 2; }
SHARED=$(cd "$(dirname "$0")/../../../shared/bench" && pwd)
W=$(mktemp -d /tmp/closed-loop-ab.XXXXXX)
for t in echod udpload; do gcc -O2 -Wall -o "$W/$t" "$SHARED/$t.c" || exit 1; done
E=${PORT_BASE:-25000}; R=$((E + 100)); DUR=${DUR:-3}; HZ=$(getconf CLK_TCK)
taskset -c 0 "$W/echod" -p "$E" -T 3600 > /dev/null 2>&1 & EP=$!
SP=
cleanup() { [ -n "$SP" ] && kill "$SP" 2>/dev/null; kill "$EP" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT INT TERM
for round in $(seq 1 "${ROUNDS:-6}"); do
  for root in "$@"; do
    taskset -c 1 "$root/bench/relay/subject.sh" "$R" "$E" $((R + 1)) $((E + 1)) > "$W/relay.log" 2>&1 & SP=$!
    for _ in $(seq 1 100); do ss -Hlnu "( sport = :$R )" | grep -q . && break; sleep 0.1; done
    ss -Hlnu "( sport = :$R )" | grep -q . || { echo "the relay of $root did not listen on $R:" >&2; cat "$W/relay.log" >&2; exit 1; }
    taskset -c 0 "$W/udpload" -t 127.0.0.1:$R -s 64 -d 1 -w 64 > /dev/null 2>&1
    t0=$(awk '{print $14 + $15}' "/proc/$SP/stat")
    out=$(taskset -c 0 "$W/udpload" -t 127.0.0.1:$R -s 64 -d "$DUR" -w 64 2>&1)
    t1=$(awk '{print $14 + $15}' "/proc/$SP/stat")
    kill "$SP"; wait "$SP" 2>/dev/null; SP=
    d=$(sed -n 's/.*delivered_pps=\([0-9.]*\).*/\1/p' <<< "$out")
    awk -v r="$round" -v b="$root" -v d="${d:-0}" -v c=$((t1 - t0)) -v hz="$HZ" -v dur="$DUR" \
      'BEGIN { printf "%d %s round_trips_per_s=%.0f per_relay_cpu_s=%.0f\n", r, b, d, (c > 0 ? d * dur * hz / c : 0) }'
  done
  set -- $(printf '%s\n' "$@" | tac)
done
