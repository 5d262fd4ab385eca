#!/usr/bin/env bash
# The flood figure of an exposure (docs/expose.md, "Fairness under a flood"): gateway and agent in
# one process (subject-expose.sh) in front of echod, then with udpload (../shared/bench):
#   1. closed loop, window 64, 64 B: what the exposure carries;
#   2. an open-loop 64 B flood from one client, and meanwhile a second client's paced echo
#      (2000/s, latency mode): its loss and RTT percentiles;
#   3. the flood's delivered rate / the closed-loop rate.
#   DATAGRAM_BUDGET=30000 DUR=3 bash bench/relay/flood-fairness.sh
# PORT_BASE picks the ports (default random), SUBJECT_ROOT the checkout whose subject-expose.sh runs; the kernel's drops during the flood are printed per
# socket role (kernel-drops.sh; `own`: a flooding client's own socket, docs/expose.md). ISOLATE_ABOVE
# (this checkout's subject-expose.sh) sets udp.isolateAbove of the public listener, 0 = off. What
# Sluice counted during the flood (drops by reason, isolations by reason: sluice-counters.sh) is
# printed when the subject serves metrics (ADMIN_PORT, on PORT_BASE+5). DIRECT=1: no relay, both
# clients straight at echod (what the second client gets from the topology alone).
# TRACE=1: the second client is rtt-trace (bench/relay/rtt-trace.c), started 0.2 s before the
# flood and kept DUR s, printing its RTT per 100 ms of send time (is the tail at the flood's
# start, before the flooder has its own socket, or steady?).
# SLICE_US=100: the relay's scheduler.sliceUs (subject-expose.sh; 0: the system's slice; unset:
# the config's default); a checkout without the key (SUBJECT_ROOT) ignores it. The slice the
# relay's threads run with is printed.
# The relay's CPU during the flood is printed (its process's utime+stime), and the flood's delivered
# datagrams per relay CPU-second.
# Every load is bounded by DUR seconds and timeouts; everything runs on 127.0.0.1.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BENCH="${BENCH_DIR:-$ROOT/../shared/bench}"
DUR="${DUR:-3}"
BIN=$(mktemp -d /tmp/sluice-flood.XXXXXX)
trap 'rm -rf "$BIN"' EXIT
for t in echod udpload; do gcc -O2 -Wall -o "$BIN/$t" "$BENCH/$t.c"; done
gcc -O2 -Wall -o "$BIN/rtt-trace" "$HERE/rtt-trace.c"
R=${PORT_BASE:-$((20000 + RANDOM % 20000))}; E=$((R + 1)); RI=$((R + 2)); I=$((R + 3))
timeout 120 "$BIN/echod" -p "$E" -u -T 110 & EPID=$!
if [ -n "${DIRECT:-}" ]; then
  # No relay: both clients at echod itself, the floor of this topology (echod shares the CPUs
  # with the flood's generator and the second client, as the relay does).
  R=$E; sleep 110 & SPID=$!
else
  ADMIN_PORT=$((R + 5)) timeout 120 bash "${SUBJECT_ROOT:-$ROOT}/bench/relay/subject-expose.sh" "$R" "$E" "$RI" "$I" > "$BIN/subject.log" 2>&1 & SPID=$!
fi
stop() { kill -INT "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; kill "$EPID" 2>/dev/null || true; wait "$EPID" 2>/dev/null || true; }
trap 'stop; [ -n "${KEEP:-}" ] && cat "$BIN/subject.log" >&2; rm -rf "$BIN"' EXIT
for _ in $(seq 1 50); do
  sleep 0.2
  out=$(timeout 2 "$BIN/udpload" -t "127.0.0.1:$R" -s 64 -d 0.3 -w 1 2>/dev/null || true)
  case "$out" in *delivered_pps=0\ *|"") ;; *) break ;; esac
done
. "$HERE/kernel-drops.sh"
bg_busy
if [ -z "${DIRECT:-}" ]; then
  # se.slice of every thread (ns): "threads x µs" for each value seen.
  echo "relay's threads' slice: $(awk '/^se.slice/ { print $3 / 1000 }' /proc/"$(pgrep -P "$SPID" -x node || echo "$SPID")"/task/*/sched 2>/dev/null | sort | uniq -c | awk '{ printf "%s x %s us  ", $1, $2 }')"
fi
closed=$(timeout 30 "$BIN/udpload" -t "127.0.0.1:$R" -s 64 -d "$DUR" -w 64)
echo "closed loop:   $closed"
. "$HERE/sluice-counters.sh"
read -r -a d0 < <(drops "$(pgrep -P "$SPID" -x node || echo "$SPID")" "$R" "$E"); read -r -a k0 < <(kstat); counters $((R + 5)) "$BIN/c0"
if [ -n "${TRACE:-}" ]; then
  timeout 30 "$BIN/rtt-trace" -t "127.0.0.1:$R" -r 2000 -d "$DUR" > "$BIN/trace.out" & TP=$!
  sleep 0.2
fi
# The relay's CPU over the flood (utime+stime of its process, in clock ticks), for CPU per delivered datagram.
RP=$(pgrep -P "$SPID" -x node || echo "$SPID"); cpu0=$(awk '{ print $14 + $15 }' /proc/"$RP"/stat 2>/dev/null || echo 0); t0=$(date +%s.%N)
timeout 30 "$BIN/udpload" -t "127.0.0.1:$R" -s 64 -d "$DUR" > "$BIN/flood.out" & FP=$!
if [ -n "${TRACE:-}" ]; then
  wait "$TP"; echo "second client (rtt-trace, the flood from about 200 ms):"; cat "$BIN/trace.out"
else
  sleep 0.5
  echo "second client: $(timeout 30 "$BIN/udpload" -t "127.0.0.1:$R" -s 64 -d "$(awk -v d="$DUR" 'BEGIN{print d-1}')" -L -r 2000)"
fi
wait "$FP"
cpu1=$(awk '{ print $14 + $15 }' /proc/"$RP"/stat 2>/dev/null || echo 0); t1=$(date +%s.%N)
read -r -a d1 < <(drops "$(pgrep -P "$SPID" -x node || echo "$SPID")" "$R" "$E"); read -r -a k1 < <(kstat)
flood=$(cat "$BIN/flood.out")
echo "flood:         $flood"
drops_line d0 d1 k0 k1
# Sluice's counters after the flood, once they are in: isolated-kernel is read on the sweep (250 ms),
# and a build older than the scrape that reports the send budgets' pending drops reports
# agent-budget/session-share once a second (docs/expose.md, "A paced client read late: banks").
sleep 1.1; counters $((R + 5)) "$BIN/c1"; counters_line "$BIN/c0" "$BIN/c1"
c=$(sed -E 's/.*delivered_pps=([0-9]+).*/\1/' <<<"$closed"); f=$(sed -E 's/.*delivered_pps=([0-9]+).*/\1/' <<<"$flood")
awk -v f="$f" -v c="$c" 'BEGIN { printf "flood delivered / closed loop = %.2f\n", (c > 0 ? f / c : 0) }'
# Ticks are 1/100 s (CLK_TCK); delivered per relay CPU-second is the per-core figure of the flood.
awk -v a="$cpu0" -v b="$cpu1" -v s="$t0" -v e="$t1" -v f="$f" -v tck="$(getconf CLK_TCK)" 'BEGIN { cpu = (b - a) / tck; w = e - s; printf "relay cpu during the flood: %.0f %% of a core; delivered per relay CPU-second %.0f\n", 100 * cpu / w, (cpu > 0 ? f * w / cpu : 0) }'
