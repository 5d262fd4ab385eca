#!/usr/bin/env bash
# TCP connection rate, paired: two relays run AT THE SAME TIME on the same CPU, each loaded by its
# own `tcpconn -c 32 -s 32` (the bench's `cps` test), for ROUNDS rounds of DUR seconds; prints,
# per round, each relay's CPU per connection (its process group, user + system), its generator's
# CPU per connection (gen_us_per_conn: what the relay costs the client side) and connect+echo
# p50, the ratio B/A, and the median ratios (p50 and relay CPU). Both relays meet the same other tenants in the same
# seconds, so the ratio stays within a few percent on a machine whose absolute figures move by a
# third from one minute to the next (tcp-conn-ab.sh takes relays in turn: right on a quiet
# machine, and the only way to put nginx beside them). Each relay's own load is half the bench's
# per relay core, so quote ratios, not figures.
#   bench/relay/tcp-conn-pair.sh ../base/bench/relay/subject.sh bench/relay/subject.sh
#   ROUNDS=10 DUR=4 PORT_BASE=28100 bench/relay/tcp-conn-pair.sh A_SUBJECT B_SUBJECT
# Subjects are scripts taking RELAY_PORT ECHO_PORT IPERF_RELAY_PORT IPERF_PORT (bench/relay/subject.sh).
# Placement as `npm run bench`: both relays on CPU 1, echod and the generators on CPU 0.
# WARM=N loads both relays for N seconds before each counted window (default 1; WARM=0 counts from
# cold, as `npm run bench` without BENCH_CPS_WARM does: a fresh Sluice compiles its connection path then).
# CONC=N connections in flight per generator in the counted window (default 32, the bench's; CONC=1:
# the latency of one connection alone, the wake-ups and work on its path, without queueing).
# PORT_BASE=N uses N..N+8 (echod N, relay A N+1..N+4, relay B N+5..N+8); default: ports asked of the kernel.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SHARED="${SHARED_BENCH:-$HERE/../../../shared/bench}"
[ -f "$SHARED/tcpconn.c" ] || { echo "tcp-conn-pair: $SHARED/tcpconn.c not found (../shared must sit beside the repository)" >&2; exit 1; }
[ $# -eq 2 ] || { echo "usage: $0 SUBJECT_A SUBJECT_B" >&2; exit 2; }
ROUNDS=${ROUNDS:-8} DUR=${DUR:-4} WARM=${WARM:-1} CONC=${CONC:-32}
W=$(mktemp -d /tmp/sluice-tcp-conn-pair.XXXXXX)
for t in echod tcpconn; do gcc -O2 -Wall -o "$W/$t" "$SHARED/$t.c"; done
if [ -n "${PORT_BASE:-}" ]; then PORTS=$(seq "$PORT_BASE" $((PORT_BASE + 8)) | tr '\n' ' '); else PORTS=$(node -e '
const net = require("net"), dgram = require("dgram");
const one = () => new Promise((ok) => { const s = net.createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; const u = dgram.createSocket("udp4"); u.once("error", () => s.close(() => ok(one()))); u.bind(p, "127.0.0.1", () => u.close(() => s.close(() => ok(p)))); }); });
(async () => { const ps = []; while (ps.length < 9) { const p = await one(); if (!ps.includes(p)) ps.push(p); } console.log(ps.join(" ")); })();'); fi
read -r E RA RIA IA XA RB RIB IB XB <<< "$PORTS"
taskset -c 0 "$W/echod" -p "$E" -t -T $((ROUNDS * (DUR + 20) + 30)) & EP=$!
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$E") 2>/dev/null && break; sleep 0.1; done
kill -0 "$EP" 2>/dev/null || { echo "tcp-conn-pair: echod did not start on port $E" >&2; exit 1; }
PA="" PB=""
cleanup() { [ -n "$PA" ] && kill -- "-$PA" 2>/dev/null; [ -n "$PB" ] && kill -- "-$PB" 2>/dev/null; kill "$EP" 2>/dev/null; true; }
trap cleanup EXIT
up() { for _ in $(seq 1 150); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
stop() { kill -- "-$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; for _ in $(seq 1 100); do kill -0 -- "-$1" 2>/dev/null || break; sleep 0.05; done; }
: > "$W/rounds"
# As run-peers.sh: % busy of both CPUs over 0.4 s while nothing of ours runs (the other tenants' load).
bg_busy() {
  local a b tot=0 idle i
  a=($(head -1 /proc/stat)); sleep 0.4; b=($(head -1 /proc/stat))
  idle=$(( (b[4] + b[5]) - (a[4] + a[5]) ))
  for i in 1 2 3 4 5 6 7 8; do tot=$((tot + b[i] - a[i])); done
  [ "$tot" -gt 0 ] && echo $(( 100 * (tot - idle) / tot )) || echo 0
}
for round in $(seq 1 "$ROUNDS"); do
  bg=$(bg_busy)
  setsid taskset -c 1 bash "$1" "$RA" "$E" "$RIA" "$IA" > "$W/a.log" 2>&1 & PA=$!
  setsid taskset -c 1 bash "$2" "$RB" "$E" "$RIB" "$IB" > "$W/b.log" 2>&1 & PB=$!
  up "$RA" || { echo "relay A did not listen; its log: $W/a.log" >&2; exit 1; }
  up "$RB" || { echo "relay B did not listen; its log: $W/b.log" >&2; exit 1; }
  # Warm-up (JIT, pools), both at once, then the counted window.
  if [ "$WARM" != 0 ]; then
    taskset -c 0 "$W/tcpconn" -t "127.0.0.1:$RA" -c 32 -d "$WARM" -s 32 > /dev/null & w=$!
    taskset -c 0 "$W/tcpconn" -t "127.0.0.1:$RB" -c 32 -d "$WARM" -s 32 > /dev/null; wait "$w"
  fi
  a0=$(node "$SHARED/benchlib.js" cpu "$PA"); b0=$(node "$SHARED/benchlib.js" cpu "$PB")
  # Each generator in a subshell that reports its children's CPU (gen_cpu, seconds): what a relay
  # costs the client side (its wake-ups and the loopback delivery of its sends to the client).
  gen() { timeout $((DUR + 20)) taskset -c 0 "$W/tcpconn" -t "127.0.0.1:$1" -c "$CONC" -d "$DUR" -s 32 > "$W/$2"
    awk -v hz="$(getconf CLK_TCK)" '{ printf "gen_cpu=%.3f\n", ($16 + $17) / hz }' "/proc/$BASHPID/stat" >> "$W/$2"; }
  gen "$RA" oa & ta=$!
  gen "$RB" ob & tb=$!
  wait "$ta" "$tb"
  a1=$(node "$SHARED/benchlib.js" cpu "$PA"); b1=$(node "$SHARED/benchlib.js" cpu "$PB")
  stop "$PA"; stop "$PB"; PA="" PB=""
  kv() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" "$W/$2"; }
  awk -v r="$round" -v bg="$bg" -v a="$(awk -v x="$a0" -v y="$a1" 'BEGIN { print y - x }')" -v b="$(awk -v x="$b0" -v y="$b1" 'BEGIN { print y - x }')" -v ca="$(kv conns oa)" -v cb="$(kv conns ob)" -v pa="$(kv p50_us oa)" -v pb="$(kv p50_us ob)" -v ea="$(kv errors oa)" -v eb="$(kv errors ob)" -v ga="$(kv gen_cpu oa)" -v gb="$(kv gen_cpu ob)" 'BEGIN {
    ua = (ca > 0) ? a * 1000 / ca : 0; ub = (cb > 0) ? b * 1000 / cb : 0; q = (ua > 0) ? ub / ua : 0
    printf "r%d bg_busy_pct=%d A conns=%d errors=%d relay_us_per_conn=%.1f gen_us_per_conn=%.1f p50_ms=%.2f | B conns=%d errors=%d relay_us_per_conn=%.1f gen_us_per_conn=%.1f p50_ms=%.2f | B/A %.3f\n", r, bg, ca, ea, ua, (ca > 0) ? ga * 1e6 / ca : 0, pa / 1000, cb, eb, ub, (cb > 0) ? gb * 1e6 / cb : 0, pb / 1000, q }' | tee -a "$W/rounds"
  sleep 0.3
done
awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^p50_ms=/) { v[++n] = substr($i, 8) } if (v[1] > 0) print v[2] / v[1]; delete v; n = 0 }' "$W/rounds" | sort -n | awk '{ v[NR] = $1 } END { printf "median B/A connect+echo p50 over %d rounds: %.3f (lowest %.3f, highest %.3f)\n", NR, (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2, v[1], v[NR] }'
awk '{ print $NF }' "$W/rounds" | sort -n | awk '{ v[NR] = $1 } END { printf "median B/A relay CPU per connection over %d rounds: %.3f (lowest %.3f, highest %.3f)\n", NR, (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2, v[1], v[NR] }'
echo "A: $1"
echo "B: $2"
