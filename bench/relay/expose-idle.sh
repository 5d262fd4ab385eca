#!/usr/bin/env bash
# expose-idle.sh: what one idle exposed UDP session costs (docs/benchmarks.md, "Idle exposed UDP
# sessions"). Gateway and agent in one process (subject-expose.sh of this checkout, or of
# SUBJECT_ROOT) in front of echod; `udpload -I` (../shared/bench) opens N sessions (default
# 10,000) with one echo each and holds them. Prints the process's RSS and PSS before and after,
# and the difference per session. HEAP=1 also writes a heap snapshot after (SIGUSR2) to $W.
#   bash bench/relay/expose-idle.sh
#   SUBJECT_ROOT=/path/to/other/checkout N=10000 bash bench/relay/expose-idle.sh
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
SUBJ="${SUBJECT_ROOT:-$HERE/../..}/bench/relay/subject-expose.sh"
N=${N:-10000}
SHARED=$(cd "$HERE/../../../shared/bench" && pwd)
W=$(mktemp -d /tmp/expose-idle.XXXXXX)
for t in echod udpload; do gcc -O2 -Wall -o "$W/$t" "$SHARED/$t.c" || exit 1; done
# Below the ephemeral range (32768+), so a port is not taken by some connection's local end meanwhile.
R=${PORT_BASE:-$((20000 + RANDOM % 12000))}; E=$((R + 1)); RI=$((R + 2)); I=$((R + 3))
for p in $R $E $((R + 200)); do ss -Hlntu "( sport = :$p )" | grep -q . && { echo "port $p busy; set PORT_BASE" >&2; exit 1; }; done
ulimit -n "$(ulimit -Hn)" 2>/dev/null
PIDS=()
cleanup() { [ -n "${SP:-}" ] && kill -INT "$SP" 2>/dev/null; kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; [ -z "${HEAP:-}" ] && rm -rf "$W"; }
trap cleanup EXIT INT TERM
timeout 300 "$W/echod" -p "$E" -u -T 290 > /dev/null 2>&1 & PIDS+=($!)
flags=""; [ -n "${HEAP:-}" ] && flags="--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=$W"
NODE_FLAGS="$flags" bash "$SUBJ" "$R" "$E" "$RI" "$I" > "$W/subject.log" 2>&1 & SP=$!; PIDS+=($SP)
for _ in $(seq 1 100); do
  sleep 0.2
  out=$(timeout 2 "$W/udpload" -t "127.0.0.1:$R" -s 64 -d 0.3 -w 1 2>/dev/null || true)
  case "$out" in *delivered_pps=0\ *|"") ;; *) break ;; esac
done
sleep 1
mem() { awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } END { print r, p }' "/proc/$SP/smaps_rollup"; }
read -r r0 p0 < <(mem)
timeout 120 "$W/udpload" -t "127.0.0.1:$R" -s 64 -I -n "$N" -H 40 > "$W/idle.out" 2>&1 & LP=$!; PIDS+=($LP)
for _ in $(seq 1 600); do grep -q READY "$W/idle.out" 2>/dev/null && break; sleep 0.1; done
sleep 2
read -r r1 p1 < <(mem)
echo "$(grep READY "$W/idle.out") rss0=${r0}kB pss0=${p0}kB rss1=${r1}kB pss1=${p1}kB per_session: rss=$(awk -v a="$r0" -v b="$r1" -v n="$N" 'BEGIN{printf "%.2f", (b-a)/n}')kB pss=$(awk -v a="$p0" -v b="$p1" -v n="$N" 'BEGIN{printf "%.2f", (b-a)/n}')kB"
if [ -n "${HEAP:-}" ]; then kill -USR2 "$SP"; sleep 8; ls "$W"/*.heapsnapshot 2>/dev/null; fi
