#!/usr/bin/env bash
# expose-idle.sh: what one idle exposed UDP session costs (docs/benchmarks.md, "Idle exposed UDP
# sessions"). Gateway and agent in one process (subject-expose.sh of this checkout, or of
# SUBJECT_ROOT) in front of echod; `udpload -I` (../shared/bench) opens N sessions (default
# 10,000) with one echo each and holds them. Prints the process's RSS and PSS before and after,
# and the difference per session. HEAP=1 also writes heap snapshots before and after (SIGUSR2) to
# $W (compare them with heap-by-kind.mjs).
# After each RSS reading, mem-probe.mjs collects garbage and reads the JavaScript heap and external
# memory (`heap=` and `ext=` per session: what is left of RSS is native memory and allocator slack).
# SPLIT=1 runs the gateway and the agent as two processes (subject-expose.sh ROLE=) of this
# checkout's script with SUBJECT_ROOT's build, and prints each one's line (gateway:, agent:).
#   bash bench/relay/expose-idle.sh
#   SUBJECT_ROOT=/path/to/other/checkout N=10000 SPLIT=1 bash bench/relay/expose-idle.sh
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
SUBJ="${SUBJECT_ROOT:-$HERE/../..}/bench/relay/subject-expose.sh"
N=${N:-10000}
# Seconds the sessions stay idle before the second reading (default 5; the bench read at 2 s before).
SETTLE=${SETTLE:-5}
# Seconds the subject stays idle before the first reading (default 5; 0 before). Sluice gives the
# young generation V8 grew (at start-up, in the burst) back 2-3 s after the process went quiet
# (src/core/young-generation.ts), so both readings are of a settled process by default. An earlier
# build keeps it until V8's own memory reducer (about 80-105 s after the last full collection):
# WAIT0=120 SETTLE=120 compares two settled states there. WAIT0=0 SETTLE=2 is the old reading,
# a fresh process against one just past the burst.
WAIT0=${WAIT0:-5}
# MORE=M: then M more sessions, and their cost alone (`more:`): the young generation has already
# grown for the first N, so this is what one more idle session adds.
MORE=${MORE:-0}
SHARED=${SHARED_BENCH:-$(cd "$HERE/../../../shared/bench" && pwd)}
W=$(mktemp -d /tmp/expose-idle.XXXXXX)
for t in echod udpload; do gcc -O2 -Wall -o "$W/$t" "$SHARED/$t.c" || exit 1; done
# Below the ephemeral range (32768+), so a port is not taken by some connection's local end meanwhile.
R=${PORT_BASE:-$((20000 + RANDOM % 12000))}; E=$((R + 1)); RI=$((R + 2)); I=$((R + 3))
for p in $R $E $((R + 200)); do ss -Hlntu "( sport = :$p )" | grep -q . && { echo "port $p busy; set PORT_BASE" >&2; exit 1; }; done
ulimit -n "$(ulimit -Hn)" 2>/dev/null
PIDS=()
SPS=()
cleanup() { for p in "${SPS[@]}"; do kill -INT "$p" 2>/dev/null; done; kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; [ -z "${HEAP:-}${KEEP:-}" ] && rm -rf "$W"; }
trap cleanup EXIT INT TERM
timeout $((300 + WAIT0 + SETTLE)) "$W/echod" -p "$E" -u -T $((290 + WAIT0 + SETTLE)) > /dev/null 2>&1 & PIDS+=($!)
flags="--expose-gc --import $HERE/mem-probe.mjs ${EXTRA_NODE_FLAGS:-}"; [ -n "${HEAP:-}" ] && flags="$flags --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=$W"
if [ -n "${SPLIT:-}" ]; then
  ROLES=(gateway agent)
  for role in "${ROLES[@]}"; do
    MEM_PROBE_OUT="$W/probe-$role" ROLE=$role SUBJECT_DIR="$W" SLUICE_ROOT="$(cd "${SUBJECT_ROOT:-$HERE/../..}" && pwd)" NODE_FLAGS="$flags" \
      bash "$HERE/subject-expose.sh" "$R" "$E" "$RI" "$I" > "$W/subject-$role.log" 2>&1 & SPS+=($!); PIDS+=($!)
    sleep 1
  done
else
  ROLES=(both)
  MEM_PROBE_OUT="$W/probe-both" NODE_FLAGS="$flags" bash "$SUBJ" "$R" "$E" "$RI" "$I" > "$W/subject.log" 2>&1 & SPS+=($!); PIDS+=($!)
fi
for _ in $(seq 1 100); do
  sleep 0.2
  out=$(timeout 2 "$W/udpload" -t "127.0.0.1:$R" -s 64 -d 0.3 -w 1 2>/dev/null || true)
  case "$out" in *delivered_pps=0\ *|"") ;; *) break ;; esac
done
sleep $((1 + WAIT0))
mem() { awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } END { print r, p }' "/proc/$1/smaps_rollup"; }
# The probe's line for process $1 after the signal: heapUsed and external, bytes.
probe() {
  local f="$W/probe-$2" n; n=$(cat "$f" 2>/dev/null | wc -l)
  kill -WINCH "$1"
  for _ in $(seq 1 100); do [ "$(cat "$f" 2>/dev/null | wc -l)" -gt "$n" ] && break; sleep 0.1; done
  tail -1 "$f" | node -e 'const m = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log(m.heapUsed, m.external)'
}
declare -A R0 P0 H0 X0
for i in "${!ROLES[@]}"; do read -r "R0[$i]" "P0[$i]" < <(mem "${SPS[$i]}"); cp "/proc/${SPS[$i]}/smaps" "$W/smaps0-${ROLES[$i]}"; done
for i in "${!ROLES[@]}"; do read -r "H0[$i]" "X0[$i]" < <(probe "${SPS[$i]}" "${ROLES[$i]}"); done
if [ -n "${HEAP:-}" ]; then for p in "${SPS[@]}"; do kill -USR2 "$p"; done; sleep 10; mkdir "$W/before"; mv "$W"/*.heapsnapshot "$W/before/"; for i in "${!ROLES[@]}"; do read -r "R0[$i]" "P0[$i]" < <(mem "${SPS[$i]}"); done; fi
timeout $((SETTLE + 120 + (MORE > 0 ? 60 : 0))) "$W/udpload" -t "127.0.0.1:$R" -s 64 -I -n "$N" -H $((SETTLE + 38 + (MORE > 0 ? 60 : 0))) > "$W/idle.out" 2>&1 & LP=$!; PIDS+=($LP)
for _ in $(seq 1 600); do grep -q READY "$W/idle.out" 2>/dev/null && break; sleep 0.1; done
sleep "$SETTLE"
grep READY "$W/idle.out"
per() { awk -v a="$1" -v b="$2" -v n="$N" -v d="$3" 'BEGIN{printf "%.2f", (b-a)/d/n}'; }
for i in "${!ROLES[@]}"; do
  read -r r1 p1 < <(mem "${SPS[$i]}")
  cp "/proc/${SPS[$i]}/smaps" "$W/smaps1-${ROLES[$i]}"
  read -r h1 x1 < <(probe "${SPS[$i]}" "${ROLES[$i]}")
  r0=${R0[$i]} p0=${P0[$i]}
  echo "${ROLES[$i]}: rss0=${r0}kB pss0=${p0}kB rss1=${r1}kB pss1=${p1}kB per_session: rss=$(per "$r0" "$r1" 1)kB pss=$(per "$p0" "$p1" 1)kB heap=$(per "${H0[$i]}" "$h1" 1024)kB ext=$(per "${X0[$i]}" "$x1" 1024)kB"
done
if [ "$MORE" -gt 0 ]; then
  declare -A R1 H1
  for i in "${!ROLES[@]}"; do read -r "R1[$i]" _ < <(mem "${SPS[$i]}"); read -r "H1[$i]" _ < <(probe "${SPS[$i]}" "${ROLES[$i]}"); done
  timeout 120 "$W/udpload" -t "127.0.0.1:$R" -s 64 -I -n "$MORE" -H $((SETTLE + 38)) > "$W/more.out" 2>&1 & PIDS+=($!)
  for _ in $(seq 1 600); do grep -q READY "$W/more.out" 2>/dev/null && break; sleep 0.1; done
  sleep "$SETTLE"
  grep READY "$W/more.out"
  # Divided by the sessions that were answered (a lost echo may leave a session at one end only).
  M=$(sed -n 's/.*replied=\([0-9]*\).*/\1/p' "$W/more.out" | head -1); [ "${M:-0}" -gt 0 ] || M=$MORE
  for i in "${!ROLES[@]}"; do
    read -r r2 _ < <(mem "${SPS[$i]}")
    read -r h2 _ < <(probe "${SPS[$i]}" "${ROLES[$i]}")
    echo "more ${ROLES[$i]}: sessions=$M rss=$(awk -v a="${R1[$i]}" -v b="$r2" -v n="$M" 'BEGIN{printf "%.2f", (b-a)/n}')kB heap=$(awk -v a="${H1[$i]}" -v b="$h2" -v n="$M" 'BEGIN{printf "%.2f", (b-a)/1024/n}')kB"
  done
fi
if [ -n "${HEAP:-}" ]; then for p in "${SPS[@]}"; do kill -USR2 "$p"; done; sleep 10; ls "$W"/*.heapsnapshot "$W"/before/*.heapsnapshot 2>/dev/null; fi
