#!/usr/bin/env bash
# TCP connection rate only, A/B: relays taken in turn (ROUNDS rounds of DUR seconds each), each
# loaded with the bench's `cps` test (../shared/bench/tcpconn: 32 concurrent connections, 32-byte
# echo, close) against ../shared/bench/echod. Prints, per relay and round, the connections, the
# relay's CPU per connection (its process group, user + system) and the connect+echo p50, then the
# medians. Per-connection CPU is what a per-core ratio compares, and it moves less than the rate
# when other tenants load the machine.
#   bench/relay/tcp-conn-ab.sh nginx ../base/bench/relay/subject.sh bench/relay/subject.sh  # beside an unchanged build
#   ROUNDS=5 DUR=2 bench/relay/tcp-conn-ab.sh nginx bench/relay/subject.sh
# Each argument is `nginx` (one worker, the bench's stream settings), `nginx-halfclose` (the same
# with `proxy_half_close on`: a client's FIN forwarded as a FIN and the upstream's answer still
# relayed, as Sluice does; nginx's default closes both sides at the first FIN), or a subject script taking
# RELAY_PORT ECHO_PORT IPERF_RELAY_PORT IPERF_PORT (bench/relay/subject.sh and its kind).
# PIN=1 places the processes as `npm run bench` does: the relay on CPU 1, echod and tcpconn on CPU 0.
# WARM=N loads each relay for N seconds before its counted window (default 0: counted from cold, as
# before). A fresh Sluice spends its first seconds of connections compiling the connection path
# (about 80 ms of V8's optimising compiler, docs/datapath.md "Where Sluice spends more than nginx");
# nginx has nothing to warm, so WARM=1 compares the two at their steady state, as tcp-conn-pair.sh does.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SHARED="${SHARED_BENCH:-$HERE/../../../shared/bench}"
[ -f "$SHARED/tcpconn.c" ] || { echo "tcp-conn-ab: $SHARED/tcpconn.c not found (../shared must sit beside the repository)" >&2; exit 1; }
[ $# -ge 1 ] || { echo "usage: $0 nginx|SUBJECT_SCRIPT ..." >&2; exit 2; }
ROUNDS=${ROUNDS:-5} DUR=${DUR:-2}
RELAY_CPU="" GEN_CPU=""
[ "${PIN:-0}" = 1 ] && RELAY_CPU="taskset -c 1" GEN_CPU="taskset -c 0"
W=$(mktemp -d /tmp/sluice-tcp-conn-ab.XXXXXX)
for t in echod tcpconn; do gcc -O2 -Wall -o "$W/$t" "$SHARED/$t.c"; done
# Four ports free for TCP and UDP (asked of the kernel, not guessed: other benches may run beside this one; a subject binds both).
# PORT_BASE=N takes N..N+3 instead (a range of one's own beside other benches).
if [ -n "${PORT_BASE:-}" ]; then PORTS="$PORT_BASE $((PORT_BASE + 1)) $((PORT_BASE + 2)) $((PORT_BASE + 3))"; else PORTS=$(node -e '
const net = require("net"), dgram = require("dgram");
const one = () => new Promise((ok) => { const s = net.createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; const u = dgram.createSocket("udp4"); u.once("error", () => s.close(() => ok(one()))); u.bind(p, "127.0.0.1", () => u.close(() => s.close(() => ok(p)))); }); });
(async () => { const ps = []; while (ps.length < 4) { const p = await one(); if (!ps.includes(p)) ps.push(p); } console.log(ps.join(" ")); })();'); fi
read -r E R RI I <<< "$PORTS"
$GEN_CPU "$W/echod" -p "$E" -t -T $((ROUNDS * $# * (DUR + 15) + 30)) & EP=$!
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$E") 2>/dev/null && break; sleep 0.1; done
kill -0 "$EP" 2>/dev/null || { echo "tcp-conn-ab: echod did not start on port $E" >&2; exit 1; }
SP=""
cleanup() { [ -n "$SP" ] && kill -- "-$SP" 2>/dev/null; kill "$EP" 2>/dev/null; true; }
trap cleanup EXIT
. "$HERE/nginx-stream-conf.sh"
nginx_stream_conf "$W" "$R" "$E" 20000
sed 's/proxy_timeout 120s;/proxy_timeout 120s; proxy_half_close on;/' "$W/nginx.conf" > "$W/nginx-halfclose.conf"
: > "$W/results"
# As run-peers.sh: % busy of both CPUs over 0.4 s while nothing of ours runs (the other tenants' load).
bg_busy() {
  local a b tot=0 idle i
  a=($(head -1 /proc/stat)); sleep 0.4; b=($(head -1 /proc/stat))
  idle=$(( (b[4] + b[5]) - (a[4] + a[5]) ))
  for i in 1 2 3 4 5 6 7 8; do tot=$((tot + b[i] - a[i])); done
  [ "$tot" -gt 0 ] && echo $(( 100 * (tot - idle) / tot )) || echo 0
}
for round in $(seq 1 "$ROUNDS"); do
  i=0
  for s in "$@"; do
    i=$((i + 1))
    bg=$(bg_busy)
    if [ "$s" = nginx ] || [ "$s" = nginx-halfclose ]; then setsid $RELAY_CPU nginx -c "$W/$s.conf" -p "$W" > "$W/relay.log" 2>&1 & else setsid $RELAY_CPU bash "$s" "$R" "$E" "$RI" "$I" > "$W/relay.log" 2>&1 & fi
    SP=$!
    up=0
    for _ in $(seq 1 150); do (exec 3<>"/dev/tcp/127.0.0.1/$R") 2>/dev/null && { up=1; break; }; sleep 0.1; done
    [ "$up" = 1 ] || { echo "relay $i ($s) did not listen; its log: $W/relay.log" >&2; exit 1; }
    sleep 0.5
    kill -0 "$SP" 2>/dev/null || { echo "relay $i ($s) exited after it listened; its log: $W/relay.log" >&2; exit 1; }
    [ "${WARM:-0}" != 0 ] && { timeout $((WARM + 20)) $GEN_CPU "$W/tcpconn" -t "127.0.0.1:$R" -c 32 -d "$WARM" -s 32 > /dev/null; sleep 0.2; }
    c0=$(node "$SHARED/benchlib.js" cpu "$SP")
    out=$(timeout $((DUR + 20)) $GEN_CPU "$W/tcpconn" -t "127.0.0.1:$R" -c 32 -d "$DUR" -s 32)
    c1=$(node "$SHARED/benchlib.js" cpu "$SP")
    kill -- "-$SP" 2>/dev/null || true; wait "$SP" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 -- "-$SP" 2>/dev/null || break; sleep 0.05; done
    SP=""
    conns=$(sed -n 's/.*conns=\([0-9]*\).*/\1/p' <<< "$out"); errs=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<< "$out")
    p50=$(sed -n 's/.*p50_us=\([0-9.]*\).*/\1/p' <<< "$out")
    us=$(awk -v a="$c0" -v b="$c1" -v n="$conns" 'BEGIN{printf "%.1f", (n > 0) ? (b-a)*1000/n : 0}')
    echo "r$round relay$i conns=$conns errors=$errs relay_us_per_conn=$us p50_us=$p50 bg_busy_pct=$bg  ($s)"
    echo "$i $us $p50 $bg" >> "$W/results"
    sleep 0.3
  done
done
echo "medians over $ROUNDS rounds (relay CPU us per connection; connect+echo p50 ms; other tenants' load before each run):"
i=0
for s in "$@"; do
  i=$((i + 1))
  med() { awk -v k="$i" -v f="$1" '$1 == k { print $f }' "$W/results" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
  echo "relay$i $(med 2) us/conn, p50 $(awk -v p="$(med 3)" 'BEGIN{printf "%.2f", p / 1000}') ms, bg busy_pct $(med 4)  ($s)"
done
