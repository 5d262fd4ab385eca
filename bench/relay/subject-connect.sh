#!/usr/bin/env bash
# Starts Sluice as a peer path on loopback (agent.connect, docs/connect.md) for the benchmark
# (contract of ../shared/bench/run-peers.sh, as subject.sh):
#   subject-connect.sh RELAY_PORT ECHO_PORT IPERF_RELAY_PORT IPERF_PORT
# Four processes, all in this script's process group (so the bench charges their CPU together):
#   gateway     on 127.0.0.1:RELAY_PORT+200, agents home, laptop and laptop-tcp
#   home        exposes the echo (UDP and TCP) and iperf3 to peers only (no `remote`)
#   laptop      agent.connect udp://127.0.0.1:RELAY_PORT -> home's UDP echo, path from
#               SLUICE_PEER_PATH: direct (default), auto (the relay at once, direct once ICE has
#               a pair; readiness waits for direct) or relay (the gateway only, no ICE). `direct`
#               needs 8c82a18 or later (home learns each flow from the gateway before its data);
#               before it, home never answered a pinned-direct flow and this script timed out.
#   laptop-tcp  agent.connect tcp://127.0.0.1:RELAY_PORT and IPERF_RELAY_PORT -> home's TCP echo
#               and iperf3. TCP through a connect listener always goes over the gateway relay (a
#               stream in the agents' TLS connections), whatever `path` says, so the TCP figures of
#               this subject are relay figures in every variant. This agent starts only once the
#               laptop's UDP path is what was asked for: run-peers.sh starts its tests when both
#               UDP and TCP RELAY_PORT listen, so the TCP listener is the readiness signal (connect
#               listeners bind at start, before any peer path exists).
# Readiness: a datagram goes through the laptop's listener until the echo answers, then the
# laptop's admin API (GET /api/peers on RELAY_PORT+202) must show its link to home connected on a
# direct path (or, on builds without /api/peers, its log the line "agent: peer home connected
# (direct)"). With path relay the echo's answer is enough. Gives up after SLUICE_PEER_WAIT
# seconds (default 20) and exits non-zero. run-peers.sh waits about 5 s per port; on a busy machine
# the TCP port may open after that ("WARN: port tcp/... did not open" in its log): check for it.
# Caps and rate limits are lifted as in subject.sh; access log off; SLUICE_DATAPATH and SLICE_US as subject.sh.
# DATAGRAM_BUDGET: every agent's datagramBudget.perSecond (0 = off), as subject-expose.sh.
# Plain route vs direct peer path vs relayed peer path: docs/benchmarks.md "Peer paths (connect)".
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
R=$1 E=$2 RI=$3 I=$4
GW=$((R + 200)) ADMIN=$((R + 202))
PATH_KIND=${SLUICE_PEER_PATH:-direct}
case $PATH_KIND in auto | direct | relay) ;; *) echo "subject-connect: SLUICE_PEER_PATH must be auto, direct or relay" >&2; exit 2 ;; esac
WAIT=${SLUICE_PEER_WAIT:-20}
LOGLEVEL=${SLUICE_BENCH_LOG:-warn} # gateway and laptop-tcp; home and laptop log at info (connected, peer lines)
DIR=$(mktemp -d /tmp/sluice-bench-connect.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 1 40); do
    local alive=0
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.05
  done
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  [ "${SLUICE_BENCH_KEEP:-0}" = 1 ] || rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench \
  -keyout "$DIR/key.pem" -out "$DIR/cert.pem" 2>/dev/null
FP=$(openssl x509 -in "$DIR/cert.pem" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
TOKEN=$(openssl rand -hex 16)
UDP='{ idleTimeout: 120s, maxSessions: 0, maxSessionsPerSource: 0, rate: { perSecond: 0 }, ratePerSource: { perSecond: 0 } }'
TCP='{ idleTimeout: 120s, maxConnections: 0, maxConnectionsPerSource: 0 }'
COMMON="accessLog: { output: \"off\" }
lifecycle: { drainTimeout: 1s }
datapath: ${SLUICE_DATAPATH:-auto}
${SLICE_US:+scheduler: { sliceUs: $SLICE_US \}}"
agent_head() { # NAME
  cat <<YAML
agent:
  name: $1
  gateway: 127.0.0.1:$GW
  token: "$TOKEN"
  fingerprint: sha256:$FP
  reconnect: { initial: 50ms, max: 500ms }
  peerCandidates: [loopback]
  peerIdleTimeout: 1h
  directRetry: 2s
${DATAGRAM_BUDGET:+  datagramBudget: { perSecond: $DATAGRAM_BUDGET \}}
YAML
}

cat > "$DIR/gateway.yaml" <<YAML
gateway:
  listen: 127.0.0.1:$GW
  tls: { cert: $DIR/cert.pem, key: $DIR/key.pem }
  stateDir: $DIR/state
  agents:
    home: { token: "$TOKEN" }
    laptop: { token: "$TOKEN" }
    laptop-tcp: { token: "$TOKEN" }
  ports: $((R + 201))
  services: { udp: $UDP, tcp: $TCP }
  maxStreamsPerAgent: 100000
  maxPeerFlowsPerAgent: 100000
$COMMON
log: { level: $LOGLEVEL }
YAML
{
  agent_head home
  cat <<YAML
  expose:
    echo-udp: { local: 127.0.0.1:$E, transport: udp, peers: [laptop], udp: $UDP }
    echo-tcp: { local: 127.0.0.1:$E, transport: tcp, peers: [laptop-tcp] }
    iperf: { local: 127.0.0.1:$I, transport: tcp, peers: [laptop-tcp] }
$COMMON
log: { level: info }
YAML
} > "$DIR/home.yaml"
{
  agent_head laptop
  cat <<YAML
  connect:
    echo-udp: { peer: home, service: echo-udp, listen: udp://127.0.0.1:$R, path: $PATH_KIND, udp: $UDP }
admin: { listen: 127.0.0.1:$ADMIN }
$COMMON
log: { level: info }
YAML
} > "$DIR/laptop.yaml"
{
  agent_head laptop-tcp
  cat <<YAML
  connect:
    echo-tcp: { peer: home, service: echo-tcp, listen: tcp://127.0.0.1:$R, tcp: $TCP }
    iperf: { peer: home, service: iperf, listen: tcp://127.0.0.1:$RI, tcp: $TCP }
$COMMON
log: { level: $LOGLEVEL }
YAML
} > "$DIR/laptop-tcp.yaml"

start() { # NAME
  node "$ROOT/dist/src/main.js" run --config "$DIR/$1.yaml" > "$DIR/$1.log" 2>&1 < /dev/null &
  PIDS+=($!)
}
die() { echo "subject-connect: $*" >&2; for f in "$DIR"/*.log; do echo "--- $f" >&2; tail -20 "$f" >&2; done; exit 1; }
listening() { ss -Hln"$1" "( sport = :$2 )" | grep -q .; }
deadline=$((SECONDS + WAIT))
wait_for() { # DESCRIPTION COMMAND...
  until "${@:2}"; do
    [ $SECONDS -lt $deadline ] || die "timed out after ${WAIT}s waiting for $1"
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null || die "a Sluice process (pid $p) exited while waiting for $1"; done
    sleep 0.1
  done
}

start gateway
wait_for "the gateway listener" listening t "$GW"
start home
# The laptop starts once home is on the gateway: an offer made while home is offline waits a
# directRetry before it is made again.
wait_for "home on the gateway" grep -qs 'agent: connected to the gateway' "$DIR/home.log"
start laptop
wait_for "the laptop's UDP listener" listening u "$R"

# One datagram at a time through the laptop's listener until the echo answers (bounded).
echo_once() {
  node --input-type=module -e '
    import dgram from "node:dgram";
    const s = dgram.createSocket("udp4");
    const t = setTimeout(() => process.exit(1), 300);
    s.on("message", () => { clearTimeout(t); process.exit(0); });
    s.send("sluice-bench-warmup", Number(process.argv[1]), "127.0.0.1");
  ' "$R"
}
peer_path() { # prints direct | relayed | "" for the laptop's link to home
  local j p=
  if j=$(curl -sf --max-time 1 "http://127.0.0.1:$ADMIN/api/peers" 2>/dev/null); then
    p=$(node -e '
      const j = JSON.parse(process.argv[1]);
      const h = (j.links ?? []).find((l) => l.peer === "home");
      if (h && h.state === "connected") console.log(h.path ?? "");
    ' "$j" 2>/dev/null) || p=
    [ -n "$p" ] && { echo "$p"; return 0; }
  fi
  if grep -q 'agent: peer home connected (direct)' "$DIR/laptop.log"; then echo direct
  elif grep -q 'agent: peer home connected (relayed)' "$DIR/laptop.log"; then echo relayed
  fi
}
wait_for "an answer from the echo through the laptop's listener" echo_once
want=direct; [ "$PATH_KIND" = relay ] && want=
if [ -n "$want" ]; then
  is_direct() { [ "$(peer_path)" = direct ] || { echo_once || true; false; }; }
  wait_for "the laptop's path to home to be direct" is_direct
fi
echo "subject-connect: path ${PATH_KIND}: laptop -> home is $(peer_path) after $((SECONDS - deadline + WAIT))s; dir $DIR" >&2

start laptop-tcp
wait_for "the laptop-tcp listeners" listening t "$RI"
wait_for "the laptop-tcp listeners" listening t "$R"
# Stay in the foreground until the bench kills the process group (or a process dies).
while :; do
  for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null || die "a Sluice process (pid $p) exited"; done
  sleep 1
done
