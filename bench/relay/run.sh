#!/usr/bin/env bash
# npm run bench: Sluice as the `subject` relay beside nginx and HAProxy, in one run of
# ../shared/bench/run-peers.sh, then the per-core ratios to nginx/HAProxy.
#   ROUNDS=1 DUR=1 SKIP_IDLE=1 npm run bench     # quick look
#   SUBJECT2_CMD='...' ONLY="direct nginx haproxy subject subject2" npm run bench
#   cost of recording (all sinks on vs off):
#   ROUNDS=2 SKIP_IDLE=1 ONLY="subject subject2" SUBJECT2_CMD="SLUICE_BENCH_RECORD=all $PWD/bench/relay/subject.sh {RELAY_PORT} {ECHO_PORT} {IPERF_RELAY_PORT} {IPERF_PORT}" npm run bench
#   cost of the UDP reply budget (default on vs off; per-datagram microbench: node dist/bench/micro/reply-budget.bench.js):
#   ROUNDS=2 SKIP_IDLE=1 ONLY="subject subject2" SUBJECT2_CMD="SLUICE_BENCH_REPLY_BUDGET=off $PWD/bench/relay/subject.sh {RELAY_PORT} {ECHO_PORT} {IPERF_RELAY_PORT} {IPERF_PORT}" npm run bench
#   UDP over a peer path (agent.connect, laptop -> home, direct once ICE found it) vs the plain route
#   (SLUICE_PEER_PATH=relay for the gateway-relayed path; docs/benchmarks.md "Peer paths (connect)"):
#   ROUNDS=2 DUR=2 SKIP_IDLE=1 ONLY="subject subject2" SUBJECT2_CMD="$PWD/bench/relay/subject-connect.sh {RELAY_PORT} {ECHO_PORT} {IPERF_RELAY_PORT} {IPERF_PORT}" npm run bench
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEERS="$ROOT/../shared/bench/run-peers.sh"
[ -f "$PEERS" ] || { echo "bench: $PEERS not found (../shared must sit beside the repository)" >&2; exit 1; }
export ONLY=${ONLY:-"direct nginx haproxy subject"}
export SUBJECT_CMD=${SUBJECT_CMD:-"$HERE/subject.sh {RELAY_PORT} {ECHO_PORT} {IPERF_RELAY_PORT} {IPERF_PORT}"}
export SKIP_STRACE=${SKIP_STRACE:-1}
OUT=$(mktemp /tmp/sluice-bench-out.XXXXXX)
bash "$PEERS" 2>&1 | tee "$OUT"
echo
node "$HERE/ratios.mjs" "$OUT"
