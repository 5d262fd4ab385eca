#!/usr/bin/env bash
# Memory per idle relayed TCP connection, Sluice beside nginx, nothing else measured:
#   bench/relay/idle-tcp-memory.sh [N]          # N idle connections (default 5000)
#   SUBJECT_CMD="... {RELAY_PORT} {ECHO_PORT}" bench/relay/idle-tcp-memory.sh   # another Sluice build
# For each relay: start it (on CPU 1) in front of the bench's echo server, open N connections
# through it with ../shared/bench/tcpconn -I (one 32-byte echo each, then held open), and read the
# user-space memory of the relay's process group (RSS and PSS, ../shared/bench/benchlib.js mem)
# before and after. Prints one line per relay: connections established, PSS before/after, and
# the PSS difference per connection. Kernel socket memory (the same for every relay) is not counted.
# Loopback only; every step is bounded by a timeout; only process groups started here are killed.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SHARED="$ROOT/../shared/bench"
N=${1:-5000}
BASE=${PORT_BASE:-29500}
P_ECHO=$BASE P_R=$((BASE + 100))
W=$(mktemp -d /tmp/sluice-idle-tcp.XXXXXX)
for t in echod tcpconn; do gcc -O2 -Wall -o "$W/$t" "$SHARED/$t.c" || exit 1; done
ulimit -n "$(ulimit -Hn)" 2>/dev/null
SUBJECT_CMD=${SUBJECT_CMD:-"$HERE/subject.sh {RELAY_PORT} {ECHO_PORT} $((BASE + 101)) $((BASE + 1))"}
PGIDS=()
spawn() { # spawn NAME CMD... -> PGID of CMD, run in a session of its own
  local name=$1; shift
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "$W/$name.pgid" "$@" >>"$W/$name.log" 2>&1 < /dev/null &
  for _ in $(seq 1 50); do [ -s "$W/$name.pgid" ] && break; sleep 0.02; done
  cat "$W/$name.pgid"
}
kill_group() { kill -- "-$1" 2>/dev/null; for _ in $(seq 1 50); do kill -0 -- "-$1" 2>/dev/null || return 0; sleep 0.05; done; kill -9 -- "-$1" 2>/dev/null; }
trap 'for g in "${PGIDS[@]}"; do kill_group "$g"; done' EXIT INT TERM
wait_port() { for _ in $(seq 1 100); do ss -Hlnt "( sport = :$1 )" | grep -q . && return 0; sleep 0.05; done; echo "port $1 did not open" >&2; return 1; }

ECHO_PG=$(spawn echo taskset -c 0 "$W/echod" -p "$P_ECHO" -T 600 -t); PGIDS+=("$ECHO_PG")
wait_port "$P_ECHO" || exit 1
. "$HERE/nginx-stream-conf.sh"
nginx_stream_conf "$W" "$P_R" "$P_ECHO" "$(ulimit -n)"
for relay in nginx subject; do
  case $relay in
    nginx) PG=$(spawn nginx taskset -c 1 nginx -c "$W/nginx.conf" -p "$W" -e "$W/nginx-error.log") ;;
    subject) cmd=${SUBJECT_CMD//\{RELAY_PORT\}/$P_R}; cmd=${cmd//\{ECHO_PORT\}/$P_ECHO}; PG=$(spawn subject taskset -c 1 bash -c "$cmd") ;;
  esac
  PGIDS+=("$PG")
  wait_port "$P_R" || exit 1
  sleep 0.5
  m0=($(node "$SHARED/benchlib.js" mem "$PG"))
  timeout 90 taskset -c 0 "$W/tcpconn" -t "127.0.0.1:$P_R" -s 32 -I -n "$N" -H 30 > "$W/idle.out" 2>&1 &
  lp=$!
  for _ in $(seq 1 600); do grep -q READY "$W/idle.out" 2>/dev/null && break; sleep 0.1; done
  sleep 1
  m1=($(node "$SHARED/benchlib.js" mem "$PG"))
  ok=$(sed -n 's/.*established=\([0-9]*\).*/\1/p' "$W/idle.out")
  awk -v r="$relay" -v n="$N" -v ok="${ok:-0}" -v r0="${m0[0]}" -v r1="${m1[0]}" -v p0="${m0[1]}" -v p1="${m1[1]}" \
    'BEGIN { printf "%s: %s/%s idle connections, RSS %.1f -> %.1f MB, PSS %.1f -> %.1f MB, %.2f KB PSS per connection\n", r, ok, n, r0/1024, r1/1024, p0/1024, p1/1024, (ok > 0 ? (p1 - p0) / ok : 0) }'
  kill "$lp" 2>/dev/null; wait "$lp" 2>/dev/null
  kill_group "$PG"; sleep 0.3
done
