#!/usr/bin/env bash
# The exposed TCP rows alone (iperf3 one stream, iperf3 8 streams, tcpconn conn/s), per relay
# CPU-second, for one or more builds of Sluice in one run, alternating: quicker than the whole
# bench when only the tunnel's stream path changed. Each ROOT is a built checkout (dist/ and
# bench/relay/subject-expose.sh); the subject runs on CPU 1, the generators and servers on CPU 0.
#   DUR=4 ROUNDS=2 bash bench/relay/expose-tcp.sh /path/to/base /path/to/this
#   IPERF_RATE=200M ...   # iperf3 paced (-b): the same offered load for every subject, steadier on a busy machine
#   NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" TESTS=t1 bash bench/relay/expose-tcp.sh "$PWD"
#   PERF_DIR=/tmp/perf TESTS="t1 cps" bash bench/relay/expose-tcp.sh "$PWD"   # perf record -g of the subject
#   PERF_STAT="syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom" PERF_DIR=/tmp/perf ...   # perf stat -e instead: counts per test
# Other tenants' TIME-WAITs can hold the ports (bind: Address already in use): a namespace of its own,
#   unshare -n bash -c 'ip link set lo up; exec bash bench/relay/expose-tcp.sh "$@"' bash /path/to/base "$PWD"
# Order reversed every other round. Prints one line per root, round and test: rate, relay CPU % of one core, rate per CPU-second
# (MB/s for iperf3, connections for tcpconn), and the other tenants' busy % before the block.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SHARED="${SHARED_BENCH:-$HERE/../../../shared/bench}"
[ -d "$SHARED" ] || { echo "expose-tcp: $SHARED not found (../shared must sit beside the repository)" >&2; exit 1; }
DUR=${DUR:-4}
ROUNDS=${ROUNDS:-1}
TESTS=${TESTS:-"t1 t8 cps"}
BASE=${PORT_BASE:-28000}
P_ECHO=$BASE P_IPERF=$((BASE + 1)) P_R=$((BASE + 100)) P_RI=$((BASE + 101))
W=$(mktemp -d /tmp/expose-tcp.XXXXXX)
for t in echod tcpconn; do gcc -O2 -Wall -o "$W/$t" "$SHARED/$t.c" || exit 1; done

PGS=()
spawn() { # spawn CMD... -> new session; prints its PGID
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "$W/pgid" "$@" >>"$W/spawn.log" 2>&1 </dev/null &
  for _ in $(seq 1 50); do [ -s "$W/pgid" ] && break; sleep 0.02; done
  cat "$W/pgid"; rm -f "$W/pgid"
}
kill_group() { [ -n "$1" ] || return 0; kill -- "-$1" 2>/dev/null; for _ in $(seq 1 50); do kill -0 -- "-$1" 2>/dev/null || return 0; sleep 0.05; done; kill -9 -- "-$1" 2>/dev/null; }
trap 'for g in "${PGS[@]}"; do kill_group "$g"; done' EXIT INT TERM
wait_tcp() { for _ in $(seq 1 200); do ss -Hlnt "( sport = :$1 )" | grep -q . && return 0; sleep 0.05; done; echo "port $1 did not open" >&2; return 1; }
bg_busy() {
  local a b tot=0 idle
  a=($(head -1 /proc/stat)); sleep 0.4; b=($(head -1 /proc/stat))
  idle=$(((b[4] + b[5]) - (a[4] + a[5])))
  for i in 1 2 3 4 5 6 7 8; do tot=$((tot + b[i] - a[i])); done
  echo $((100 * (tot - idle) / (tot > 0 ? tot : 1)))
}
cpu_ms() { node "$SHARED/benchlib.js" cpu "$1"; }

UP=$(spawn taskset -c 0 bash -c "'$W/echod' -p $P_ECHO -T 900 & timeout --foreground 900 iperf3 -s -p $P_IPERF >/dev/null 2>&1 & wait")
PGS+=("$UP")
wait_tcp $P_ECHO && wait_tcp $P_IPERF || exit 1

for round in $(seq 1 "$ROUNDS"); do
  # Order reversed every other round: the second subject of a round runs in the first one's
  # TIME-WAITs and warmth (cps measured 5 % apart by position alone).
  roots=("$@")
  if ((round % 2 == 0)); then roots=(); for ((i = $#; i >= 1; i--)); do roots+=("${!i}"); done; fi
  for root in "${roots[@]}"; do
    b=$(bg_busy)
    R=$(spawn taskset -c 1 "$root/bench/relay/subject-expose.sh" $P_R $P_ECHO $P_RI $P_IPERF)
    PGS+=("$R")
    wait_tcp $P_R && wait_tcp $P_RI || { kill_group "$R"; continue; }
    # The agent publishes after its TLS handshake: wait until a connection goes through.
    for _ in $(seq 1 100); do timeout 2 "$W/tcpconn" -t 127.0.0.1:$P_R -c 1 -d 0.2 -s 8 2>/dev/null | grep -q 'conns_per_s=[1-9]' && break; sleep 0.1; done
    for t in $TESTS; do
      c0=$(cpu_ms "$R"); s0=$(date +%s%N)
      if [ -n "${PERF_DIR:-}" ]; then # a perf profile of the subject during the load
        mkdir -p "$PERF_DIR"; pid=$(pgrep -g "$R" -x node | head -1)
        if [ -n "${PERF_STAT:-}" ]; then perf stat -e "$PERF_STAT" -p "$pid" -o "$PERF_DIR/$(basename "$root").$t.stat" -- sleep "$DUR" 2>/dev/null &
        else perf record -q -F 1999 -g -p "$pid" -o "$PERF_DIR/$(basename "$root").$t.data" -- sleep "$DUR" 2>/dev/null &
        fi
        PERF_PID=$!
      fi
      case $t in
        t1 | t8) timeout $((DUR + 20)) taskset -c 0 iperf3 -c 127.0.0.1 -p $P_RI -t "$DUR" -P "${t#t}" ${IPERF_RATE:+-b $IPERF_RATE} -J >"$W/out" 2>/dev/null
          rate=$(node "$SHARED/benchlib.js" iperf "$W/out"); unit="MB/cpu-s"; scale=125 ;; # Gbit/s -> MB/s
        cps) timeout $((DUR + 20)) taskset -c 0 "$W/tcpconn" -t 127.0.0.1:$P_R -c 32 -d "$DUR" -s 32 >"$W/out" 2>/dev/null
          rate=$(sed -n 's/.*conns_per_s=\([0-9.]*\).*/\1/p' "$W/out"); unit="conn/cpu-s"; scale=1 ;;
      esac
      c1=$(cpu_ms "$R"); s1=$(date +%s%N)
      [ -n "${PERF_PID:-}" ] && wait "$PERF_PID"; PERF_PID=""
      awk -v r="$root" -v n="$round" -v t="$t" -v rate="${rate:-0}" -v c0="$c0" -v c1="$c1" -v w="$(((s1 - s0) / 1000000))" -v u="$unit" -v k="$scale" -v b="$b" \
        'BEGIN { cpu = (c1 - c0) / w; printf "%-28s r%d %-3s rate=%-9s cpu=%5.1f%% %s=%.0f bg_busy=%s%%\n", r, n, t, rate, 100 * cpu, u, (cpu > 0 ? rate * k / cpu : 0), b }'
    done
    kill_group "$R"
    sleep 0.3
  done
done
