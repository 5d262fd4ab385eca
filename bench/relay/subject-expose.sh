#!/usr/bin/env bash
# Starts Sluice as a gateway and an agent in one process on loopback, exposing the benchmark's
# echo and iperf3 servers through the tunnel (contract of ../shared/bench/run-peers.sh, as
# subject.sh): the public listeners on 127.0.0.1:RELAY_PORT (UDP + TCP) and IPERF_RELAY_PORT
# (TCP) are the gateway's; the agent connects to it over TLS on RELAY_PORT+200 and reaches the
# services on 127.0.0.1. UDP goes sealed over UDP, TCP on a trunk or sealed data connections (multiplexed
# streams when none is idle, or with an earlier build).
#   subject-expose.sh RELAY_PORT ECHO_PORT IPERF_RELAY_PORT IPERF_PORT
# UDP through the exposure vs the same route direct, in one run:
#   SUBJECT2_CMD="$PWD/bench/relay/subject-expose.sh {RELAY_PORT} {ECHO_PORT} {IPERF_RELAY_PORT} {IPERF_PORT}" \
#     ONLY="direct subject subject2" ROUNDS=1 npm run bench
# DATAGRAM_BUDGET sets gateway.datagramBudget and agent.datagramBudget (perSecond; default: the
# config's default); DATA_CONNECTIONS sets agent.dataConnections (idle sealed data connections for TCP
# streams; 0: every stream multiplexed; default: the config's, 8); TRUNKS sets agent.trunks (sealed
# trunks carrying many streams each in the native engine; default: the config's); ISOLATE_ABOVE sets udp.isolateAbove of the public listeners (0: off); NODE_FLAGS is passed to node (e.g. --cpu-prof --cpu-prof-dir=DIR).
# SLICE_US sets scheduler.sliceUs (the threads' scheduler slice in µs; 0: the system's; default: the config's).
# SLUICE_CONGESTION sets `congestion` (auto, system, or an algorithm; default: the config's, auto).
# ADMIN_PORT: an admin listener (metrics at /metrics) on 127.0.0.1:ADMIN_PORT (sluice-counters.sh).
# Gateway and agent in two processes (expose-idle.sh SPLIT=1): ROLE=gateway, then ROLE=agent, with
# the same SUBJECT_DIR (certificate and token made once there); SLUICE_ROOT runs another checkout.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="${SLUICE_ROOT:-$(cd "$HERE/../.." && pwd)}"
R=$1 E=$2 RI=$3 I=$4
GW=$((R + 200))
ROLE=${ROLE:-both}
DIR=${SUBJECT_DIR:-$(mktemp -d /tmp/sluice-bench-expose.XXXXXX)}
# A certificate of our own, so the agent's pin is known before the gateway starts.
[ -f "$DIR/cert.pem" ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench \
  -keyout "$DIR/key.pem" -out "$DIR/cert.pem" 2>/dev/null
FP=$(openssl x509 -in "$DIR/cert.pem" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
[ -f "$DIR/token" ] || openssl rand -hex 16 > "$DIR/token"
TOKEN=$(cat "$DIR/token")
UNLIMITED_UDP="{ idleTimeout: 120s, maxSessions: 0, maxSessionsPerSource: 0, rate: { perSecond: 0 }, ratePerSource: { perSecond: 0 }${ISOLATE_ABOVE:+, isolateAbove: $ISOLATE_ABOVE} }"
CONF="$DIR/sluice-$ROLE.yaml"
{ [ "$ROLE" = agent ] || cat <<YAML
gateway:
  listen: 127.0.0.1:$GW
  tls: { cert: $DIR/cert.pem, key: $DIR/key.pem }
  agents:
    bench: { token: "$TOKEN" }
  ports: [$R, $RI]
  services:
    udp: $UNLIMITED_UDP
    tcp: { idleTimeout: 120s, maxConnections: 0, maxConnectionsPerSource: 0 }
  maxStreamsPerAgent: 100000
${DATAGRAM_BUDGET:+  datagramBudget: { perSecond: $DATAGRAM_BUDGET \}}
YAML
[ "$ROLE" = gateway ] || cat <<YAML
agent:
  name: bench
  gateway: 127.0.0.1:$GW
  token: "$TOKEN"
  fingerprint: sha256:$FP
${DATAGRAM_BUDGET:+  datagramBudget: { perSecond: $DATAGRAM_BUDGET \}}
${DATA_CONNECTIONS:+  dataConnections: $DATA_CONNECTIONS}
${TRUNKS:+  trunks: $TRUNKS}
  expose:
    echo-udp: { local: 127.0.0.1:$E, remote: udp://127.0.0.1:$R, udp: $UNLIMITED_UDP }
    echo-tcp: { local: 127.0.0.1:$E, remote: tcp://127.0.0.1:$R }
    iperf: { local: 127.0.0.1:$I, remote: tcp://127.0.0.1:$RI }
YAML
cat <<YAML
${ADMIN_PORT:+admin: { listen: 127.0.0.1:$ADMIN_PORT \}}
${SLICE_US:+scheduler: { sliceUs: $SLICE_US \}}
${SLUICE_CONGESTION:+congestion: $SLUICE_CONGESTION}
accessLog: { output: "off" }
log: { level: warn }
lifecycle: { drainTimeout: 1s }
YAML
} > "$CONF"
exec node ${NODE_FLAGS:-} "$ROOT/dist/src/main.js" run --config "$CONF"
