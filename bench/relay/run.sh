#!/usr/bin/env bash
# npm run bench: Sluice as the `subject` relay beside nginx and HAProxy, in one run of
# ../shared/bench/run-peers.sh, then the per-core ratios to nginx/HAProxy.
#   ROUNDS=1 DUR=1 SKIP_IDLE=1 npm run bench     # quick look
#   BENCH_CPS_WARM=0 npm run bench               # the cps test from cold (default: every relay warmed 1 s first)
#   SUBJECT2_CMD='...' ONLY="direct nginx haproxy subject subject2" npm run bench
#   cost of recording (all sinks on vs off):
#   ROUNDS=2 SKIP_IDLE=1 ONLY="subject subject2" SUBJECT2_CMD="SLUICE_BENCH_RECORD=all $PWD/bench/relay/subject.sh {RELAY_PORT} {ECHO_PORT} {IPERF_RELAY_PORT} {IPERF_PORT}" npm run bench
#   cost of the UDP reply budget (default on vs off; per-datagram microbench: node dist/bench/micro/reply-budget.bench.js):
#   ROUNDS=2 SKIP_IDLE=1 ONLY="subject subject2" SUBJECT2_CMD="SLUICE_BENCH_REPLY_BUDGET=off $PWD/bench/relay/subject.sh {RELAY_PORT} {ECHO_PORT} {IPERF_RELAY_PORT} {IPERF_PORT}" npm run bench
#   UDP over a peer path (agent.connect, laptop -> home, direct once ICE found it) vs the plain route
#   (SLUICE_PEER_PATH=relay for the gateway-relayed path; docs/benchmarks.md "Peer paths (connect)"):
#   ROUNDS=2 DUR=2 SKIP_IDLE=1 ONLY="subject subject2" SUBJECT2_CMD="$PWD/bench/relay/subject-connect.sh {RELAY_PORT} {ECHO_PORT} {IPERF_RELAY_PORT} {IPERF_PORT}" npm run bench
#   BENCH_WIDE_PORTS=1 npm run bench             # (root) in a network namespace of its own whose
#     ephemeral ports span 1024-65535 (the harness's own PORT_BASE..+999 reserved): the cps test then
#     measures the relays instead of the client's port ceiling (see the two lines printed below)
set -euo pipefail
if [ "${BENCH_WIDE_PORTS:-}" = 1 ] && [ -z "${SLUICE_BENCH_NETNS:-}" ]; then
  BASE_PORT=${PORT_BASE:-27000}
  [[ "$BASE_PORT" =~ ^[0-9]+$ ]] || { echo "bench: PORT_BASE must be a port number, not '$BASE_PORT'" >&2; exit 2; }
  [ "$(id -u)" = 0 ] || { echo "bench: BENCH_WIDE_PORTS=1 needs root (a network namespace of its own)" >&2; exit 1; }
  exec unshare -n env SLUICE_BENCH_NETNS=1 BASE_PORT="$BASE_PORT" bash -c 'ip link set lo up &&
    sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.ip_local_reserved_ports="$BASE_PORT-$((BASE_PORT + 999))" &&
    exec bash "$0" "$@"' "$0" "$@"
fi
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEERS="${SHARED_BENCH:-$ROOT/../shared/bench}/run-peers.sh"
[ -f "$PEERS" ] || { echo "bench: $PEERS not found (../shared must sit beside the repository)" >&2; exit 1; }
export ONLY=${ONLY:-"direct nginx haproxy subject"}
export SUBJECT_CMD=${SUBJECT_CMD:-"$HERE/subject.sh {RELAY_PORT} {ECHO_PORT} {IPERF_RELAY_PORT} {IPERF_PORT}"}
export SKIP_STRACE=${SKIP_STRACE:-1}
OUT=$(mktemp /tmp/sluice-bench-out.XXXXXX)
# The `cps` test's warm-up (docs/benchmarks.md, "Warm-up of the connection-rate test"): every relay,
# nginx and HAProxy as much as Sluice, takes BENCH_CPS_WARM seconds (default 1) of the same load
# (tcpconn -c 32 -s 32) right before its counted window, not counted (its CPU and connections fall
# before the window's first reading). A runtime that compiles its hot path as it runs (V8) would
# otherwise pay the compile inside the window; a relay that runs for days pays it once.
# BENCH_CPS_WARM=0 measures from cold, as before. The harness (../shared/bench) is read-only here,
# so it runs as a copy with that one line added to its test step; every other test is unchanged.
export CPS_WARM=${BENCH_CPS_WARM:-1}
if [ "$CPS_WARM" != 0 ]; then
  [[ "$CPS_WARM" =~ ^[0-9]+$ ]] || { echo "bench: BENCH_CPS_WARM must be whole seconds (0: no warm-up), not '$CPS_WARM'" >&2; exit 2; }
  COPY=$(mktemp -d /tmp/sluice-bench-peers.XXXXXX)
  trap 'rm -rf "$COPY"' EXIT
  for f in "$(dirname "$PEERS")"/*; do [ "$f" != "$PEERS" ] && ln -s "$f" "$COPY/"; done
  WARM_STEP='  if [ "$test" = cps ]; then timeout $((CPS_WARM + 20)) $GEN "$BIN/tcpconn" -t 127.0.0.1:$TT -c 32 -d "$CPS_WARM" -s 32 > /dev/null 2>\&1; sleep 0.2; fi'
  sed "/^  : > \"\$W\/t.err\"\$/a\\
$WARM_STEP" "$PEERS" > "$COPY/run-peers.sh"
  [ "$(grep -c 'CPS_WARM' "$COPY/run-peers.sh")" = 1 ] || { echo "bench: could not add the cps warm-up to $PEERS (its test step changed); BENCH_CPS_WARM=0 runs it as it is" >&2; exit 1; }
  PEERS="$COPY/run-peers.sh"
  echo "bench: cps test warmed ${CPS_WARM}s per relay before its window (BENCH_CPS_WARM=0: from cold)" >&2
fi
# Three settings of the machine decide much of the TCP rows, so they are printed with them:
# - the congestion control (docs/benchmarks.md, "Congestion control and the bulk TCP rows"): with
#   BBR and no fq qdisc (loopback has none) every sender paces its own segments with a timer, a cost
#   per byte paid on the CPU that sends, which is the relay's for the relayed bytes; a relay that
#   moves bytes cheaply (splice) or sends them twice (an exposure) is measured mostly by that cost.
# The other two decide the cps row (docs/benchmarks.md, "The connection-rate test: the port
# ceiling, idle vCPUs and the p50"):
# - the generator closes first, so every connection leaves a TIME_WAIT on a port of the client's
#   range, which connect() reuses only once it is a second old (tcp_tw_reuse): about half the
#   range a second for any relay (the relays' dials to the echo server draw on it too);
# - a guest whose idle vCPU halts at once (cpuidle haltpoll, guest_halt_poll_ns=0) pays a wake-up
#   through the hypervisor each time a cross-CPU wake-up finds it idle: the latency rows carry it.
echo "bench: tcp_congestion_control $(cat /proc/sys/net/ipv4/tcp_congestion_control), default_qdisc $(cat /proc/sys/net/core/default_qdisc 2>/dev/null || echo unknown): $(grep -q bbr /proc/sys/net/ipv4/tcp_congestion_control && echo "senders pace with timers (bulk TCP rows carry it)" || echo "no pacing on loopback")" >&2
# Sluice's own sockets (its `congestion` setting, docs/datapath.md "Congestion control of the
# engine's sockets"): under auto and a BBR default, those whose peer is on this host use cubic.
# In the bench that is every socket of Sluice's (all of it is on loopback): the route's upstream
# leg, and for subject-expose.sh also the trunk between gateway and agent, which a real exposure
# has across a network. nginx and HAProxy pace theirs. SLUICE_CONGESTION=system measures Sluice
# with the kernel's default on every socket, as before the setting.
grep -q bbr /proc/sys/net/ipv4/tcp_congestion_control && echo "bench: Sluice's congestion ${SLUICE_CONGESTION:-auto}: $([ "${SLUICE_CONGESTION:-auto}" = auto ] && echo "its loopback sockets use cubic, nginx's and HAProxy's pace (SLUICE_CONGESTION=system: the kernel's default)" || echo "as set")" >&2
read -r PLO PHI < /proc/sys/net/ipv4/ip_local_port_range
echo "bench: ip_local_port_range $PLO-$PHI: the cps test tops out near $(( (PHI - PLO + 1) / 2 )) connections/s for any relay" >&2
POLL_NS=/sys/module/haltpoll/parameters/guest_halt_poll_ns
IDLE_DRV=$(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo none)
echo "bench: cpuidle driver $IDLE_DRV$([ -r $POLL_NS ] && echo ", guest_halt_poll_ns=$(cat $POLL_NS)")" >&2
bash "$PEERS" 2>&1 | tee "$OUT"
echo
node "$HERE/ratios.mjs" "$OUT"
