#!/usr/bin/env bash
# Starts Sluice as the benchmark's `subject` relay (contract of ../shared/bench/run-peers.sh):
#   subject.sh RELAY_PORT ECHO_PORT IPERF_RELAY_PORT IPERF_PORT
# Caps and rate limits are lifted because all load comes from 127.0.0.1; recording is off unless
# SLUICE_BENCH_RECORD=1 (the access log goes to a file in the temp dir) or SLUICE_BENCH_RECORD=all
# (access log and flow records to files, metrics collected behind an admin listener on a free port).
# SLUICE_DATAPATH=js|native|auto picks the UDP datapath (default auto); SLUICE_UDP_GSO=0 turns
# UDP_SEGMENT off on the native one. Both variants in one run:
#   SUBJECT_CMD="SLUICE_DATAPATH=js $0 ..." SUBJECT2_CMD="SLUICE_DATAPATH=native $0 ..."
# The UDP route runs with the default reply budget (udp.replyBudget, 64x over 10 s); the echo
# upstream answers 1:1, so it never drops. SLUICE_BENCH_REPLY_BUDGET=off lifts it, to measure its
# cost as subject vs subject2 (docs/security.md). SLUICE_BENCH_BANDWIDTH=1 puts bandwidth limits
# that the load never reaches (perSource and perRoute of 100 Gbit/s) on the echo routes, to measure
# the cost of a limit that is not reached (docs/bans.md). SLUICE_BENCH_POOL=1 (subject-pool.sh)
# makes every route a pool (docs/pools.md) of its one upstream, with active health checks, to
# measure what pooling costs against the same routes with one upstream. SLUICE_CONGESTION sets
# `congestion` (auto, system, or an algorithm; default: the config's, auto; docs/datapath.md
# "Congestion control of the engine's sockets"): system measures the sockets as the kernel makes them.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
R=$1 E=$2 RI=$3 I=$4
CFG=$(mktemp /tmp/sluice-bench.XXXXXX.yaml)
ACCESS=off FLOW=off ADMIN=
RB= BW=
[ "${SLUICE_BENCH_REPLY_BUDGET:-}" = off ] && RB='replyBudget: off'
[ "${SLUICE_BENCH_BANDWIDTH:-0}" = 1 ] && BW='bandwidth: { perSource: 100Gbit/s, perRoute: 100Gbit/s }'
case "${SLUICE_BENCH_RECORD:-0}" in
  1) ACCESS="${CFG%.yaml}.access.log" ;;
  all) ACCESS="${CFG%.yaml}.access.log" FLOW="${CFG%.yaml}.flow.log" ADMIN="admin: { listen: 127.0.0.1:0 }" ;;
esac
UP_E="127.0.0.1:$E" UP_I="127.0.0.1:$I" POOL_U= POOL_T= POOL_I=
# SLICE_US sets scheduler.sliceUs (the threads' scheduler slice in µs; 0: the system's; default:
# the config's), e.g. SUBJECT_CMD="SLICE_US=0 $0 ..." SUBJECT2_CMD="$0 ..." for off against the default.
# SLUICE_BENCH_RANGE=N (subject-range.sh) makes the UDP echo route a range of N ports from
# RELAY_PORT on, every port to the one echo port: the load goes through the range's first port,
# to measure what a range costs per datagram against the single-port route (docs/ranges.md).
LISTEN_U="udp://127.0.0.1:$R"
[ "${SLUICE_BENCH_RANGE:-0}" != 0 ] && LISTEN_U="\"udp://127.0.0.1:$R-$((R + SLUICE_BENCH_RANGE - 1))\""
if [ "${SLUICE_BENCH_POOL:-0}" = 1 ]; then
  UP_E="[\"127.0.0.1:$E\"]" UP_I="[\"127.0.0.1:$I\"]"
  POOL_U='health: { udp: { send: "text:sluice-check", interval: 2s, timeout: 1s } }'
  POOL_T='health: { tcp: { interval: 2s, timeout: 1s } }'
  # iperf3's server takes one test at a time: a check connecting mid-test would disturb it.
  POOL_I='balance: least-conn'
fi
cat > "$CFG" <<YAML
routes:
  echo-udp:
    listen: $LISTEN_U
    upstream: $UP_E
    $POOL_U
    udp:
      idleTimeout: 120s
      maxSessions: 0
      maxSessionsPerSource: 0
      rate: { perSecond: 0 }
      ratePerSource: { perSecond: 0 }
      $RB
    $BW
  echo-tcp:
    listen: tcp://127.0.0.1:$R
    upstream: $UP_E
    $POOL_T
    $BW
    tcp: { idleTimeout: 120s, maxConnections: 0, maxConnectionsPerSource: 0 }
  iperf:
    listen: tcp://127.0.0.1:$RI
    upstream: $UP_I
    $POOL_I
    $BW
    tcp: { idleTimeout: 120s, maxConnections: 0, maxConnectionsPerSource: 0 }
accessLog: { output: $ACCESS }
flowLog: { output: $FLOW }
$ADMIN
log: { level: warn }
datapath: ${SLUICE_DATAPATH:-auto}
${SLUICE_CONGESTION:+congestion: $SLUICE_CONGESTION}
${SLICE_US:+scheduler: { sliceUs: $SLICE_US \}}
lifecycle: { drainTimeout: 1s }
YAML
exec node "$ROOT/dist/src/main.js" run --config "$CFG"
