#!/usr/bin/env bash
# connect-ab.sh ROOT_A ROOT_B: the direct peer path (subject-connect.sh) per relay CPU-second
# against the plain route (subject.sh, always ROOT_A's) for two builds, in turn, ROUNDS times (the
# order reversed every round), each a run of ../shared/bench/run-peers.sh with
# ONLY="subject subject2" and only the tests in TESTS (default u64). Prints per run: build,
# bg busy_pct, both delivered rates and CPU, and subject2/subject per core; then the medians.
#   PORT_BASE=25000 ROUNDS=4 DUR=2 bash bench/relay/connect-ab.sh /work/wt/base10 "$PWD"
# In a network namespace of its own (others' ports and TIME-WAITs apart):
#   unshare -n bash -c 'ip link set lo up; exec bash bench/relay/connect-ab.sh "$@"' bash A B
# The subjects' environment passes through (e.g. DATAGRAM_BUDGET=0).
set -u
[ $# -eq 2 ] || { echo "usage: $0 ROOT_A ROOT_B" >&2; exit 2; }
A=$1 B=$2
SHARED=${SHARED_BENCH:-$(cd "$(dirname "$0")/../../../shared/bench" 2>/dev/null && pwd || echo /work/shared/bench)}
W=$(mktemp -d /tmp/connect-ab.XXXXXX)
trap 'rm -rf "$W"' EXIT
for f in "$SHARED"/*; do [ "$(basename "$f")" != run-peers.sh ] && ln -s "$f" "$W/"; done
sed 's/^\(    socat | nginx | node | subject | subject2) echo \)"[^"]*"/\1"${TESTS:-u64}"/' "$SHARED/run-peers.sh" > "$W/run-peers.sh"
grep -q 'TESTS:-u64' "$W/run-peers.sh" || { echo "connect-ab: could not restrict run-peers.sh's tests" >&2; exit 1; }
P='{RELAY_PORT} {ECHO_PORT} {IPERF_RELAY_PORT} {IPERF_PORT}'
ROUNDS=${ROUNDS:-4}
one() { # LABEL ROOT
  local raw
  SUBJECT_CMD="$A/bench/relay/subject.sh $P" SUBJECT2_CMD="$2/bench/relay/subject-connect.sh $P" ONLY="subject subject2" \
    ROUNDS=1 DUR=${DUR:-2} SKIP_IDLE=1 SKIP_STRACE=1 PORT_BASE=${PORT_BASE:-25000} bash "$W/run-peers.sh" > "$W/out" 2>&1
  raw=$(sed -n 's/.*raw results: \(\S*\).*/\1/p' "$W/out" | head -1)
  [ -n "$raw" ] || { echo "$1 failed"; tail -5 "$W/out"; return; }
  awk -F'\t' -v l="$1" -v t="${TESTS:-u64}" '
    $3 == "bg" { bg[$1] = $5 } $3 == t && $4 == "delivered_pps" { d[$1] = $5 } $3 == t && $4 == "relay_cpu_pct" { c[$1] = $5 }
    END { r = (c["subject"] > 0 && c["subject2"] > 0 && d["subject"] > 0) ? (d["subject2"] / c["subject2"]) / (d["subject"] / c["subject"]) : 0
      printf "%s bg=%s/%s plain=%d@%s%% connect=%d@%s%% ratio=%.3f\n", l, bg["subject"], bg["subject2"], d["subject"], c["subject"], d["subject2"], c["subject2"], r }' "$raw"
}
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then one A "$A"; one B "$B"; else one B "$B"; one A "$A"; fi
done | tee "$W/runs"
for l in A B; do
  grep "^$l " "$W/runs" | sed 's/.*ratio=//' | sort -n | awk -v l="$l" '{ v[NR] = $1 } END { if (NR) printf "%s median ratio %.3f [%.3f-%.3f] n=%d\n", l, (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR], NR }'
done
