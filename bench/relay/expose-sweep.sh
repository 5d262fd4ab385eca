#!/usr/bin/env bash
# expose-sweep.sh [RATE...]: the paced sweep through an exposure (docs/benchmarks.md, "Paced sweep
# through an exposure"). Gateway and agent in one process (subject-expose.sh of this checkout, or
# of SUBJECT_ROOT) on CPU 1 in front of echod; echod and udpload (built from ../shared/bench) on
# CPU 0. Per rate: 64 B datagrams paced with `udpload -r RATE` for DUR s from SESSIONS source
# sockets (default 1; an empty RATE is an open-loop flood). Relay CPU is utime + stime of the
# relay process, sampled after udpload's warm-up (one echo per session, not counted).
#   bash bench/relay/expose-sweep.sh 5000 10000 20000 40000 ""
#   SESSIONS=1000 bash bench/relay/expose-sweep.sh ""          # the bench's 1000-session row
#   SUBJECT_ROOT=/path/to/other/checkout bash bench/relay/expose-sweep.sh 40000
# Every load is bounded by DUR seconds and timeouts; everything runs on 127.0.0.1.
# Per rate, a second line says where the kernel dropped datagrams during the run (the drops
# column of /proc/net/udp{,6}, per socket, summed by role): `public` (the gateway's public
# listener), `gw_tunnel` (its tunnel port), `sessions` (the agent's connected sockets toward
# echod), `other` (the agent's tunnel socket and any other socket of the relay), `echod`; and the
# machine-wide UdpRcvbufErrors / UdpSndbufErrors deltas (nstat; other tenants count there too).
# A third line (sluice-counters.sh, from the relay's metrics on PORT_BASE+5) says what Sluice
# counted meanwhile: its own drops by reason (send budget, isolated-kernel, ...) and isolations.
# The loss udpload reports minus every drop counted is what no counter saw (replies still on their
# way when udpload stopped listening: it waits 60 ms after the last one). With one session (no
# warm-up) drops and counters are read before udpload starts: its first datagram makes the session,
# and what is dropped while the session is set up (a set-up queue that overflows at the agent, the
# first milliseconds at 40k/s) belongs to the run; read after the start, as before, it was missed.
set -u
[ $# -gt 0 ] || set -- 5000 10000 20000 40000
HERE="$(cd "$(dirname "$0")" && pwd)"
SUBJ="${SUBJECT_ROOT:-$HERE/../..}/bench/relay/subject-expose.sh"
DUR=${DUR:-3}
SESSIONS=${SESSIONS:-1}
SHARED=$(cd "$HERE/../../../shared/bench" && pwd)
W=$(mktemp -d /tmp/expose-sweep.XXXXXX)
for t in echod udpload; do gcc -O2 -Wall -o "$W/$t" "$SHARED/$t.c" || exit 1; done
R=${PORT_BASE:-$((20000 + RANDOM % 20000))}; E=$((R + 1)); RI=$((R + 2)); I=$((R + 3))
for p in $R $E $((R + 200)); do ss -Hlntu "( sport = :$p )" | grep -q . && { echo "port $p busy; set PORT_BASE" >&2; exit 1; }; done
PIDS=()
cleanup() { [ -n "${SP:-}" ] && kill -INT "$SP" 2>/dev/null; kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; [ -n "${KEEP:-}" ] && cat "$W/subject.log" >&2; rm -rf "$W"; }
trap cleanup EXIT INT TERM
taskset -c 0 timeout 600 "$W/echod" -p "$E" -u -T 590 > /dev/null 2>&1 & PIDS+=($!)
ADMIN_PORT=$((R + 5)) taskset -c 1 bash "$SUBJ" "$R" "$E" "$RI" "$I" > "$W/subject.log" 2>&1 & PIDS+=($!)
# the relay is node, exec'd by the script: its pid is the script's
SP=${PIDS[1]}
for _ in $(seq 1 100); do
  sleep 0.2
  out=$(timeout 2 "$W/udpload" -t "127.0.0.1:$R" -s 64 -d 0.3 -w 1 2>/dev/null || true)
  case "$out" in *delivered_pps=0\ *|"") ;; *) break ;; esac
done
ticks() { set -- $(sed 's/^.*) //' "/proc/$SP/stat"); echo "$((${12} + ${13})) ${12}"; }
HZ=$(getconf CLK_TCK)
. "$HERE/kernel-drops.sh"
. "$HERE/sluice-counters.sh"
WARM=""; [ "$SESSIONS" -gt 1 ] && WARM="-W 2"
for RATE in "$@"; do
  bg_busy
  # Without a warm-up the first datagram makes the session: what is dropped while it is set up (the
  # first milliseconds) belongs to the run, so drops are read before udpload starts, not after.
  snap() { read -r -a d0 < <(drops "$SP" "$R" "$E"); read -r -a k0 < <(kstat); counters $((R + 5)) "$W/c0"; }
  [ -z "$WARM" ] && snap
  # shellcheck disable=SC2086
  timeout $((DUR + 30)) taskset -c 0 "$W/udpload" -t "127.0.0.1:$R" -s 64 -d "$DUR" -n "$SESSIONS" $WARM ${RATE:+-r $RATE} > "$W/out" 2> "$W/err" & LP=$!
  if [ -n "$WARM" ]; then for _ in $(seq 1 600); do grep -q warmup: "$W/err" && break; kill -0 $LP 2>/dev/null || break; sleep 0.02; done; fi
  read -r c0 u0 < <(ticks); t0=$(date +%s.%N); [ -n "$WARM" ] && snap
  wait $LP
  read -r c1 u1 < <(ticks); t1=$(date +%s.%N); read -r -a d1 < <(drops "$SP" "$R" "$E"); read -r -a k1 < <(kstat)
  sleep 0.3; counters $((R + 5)) "$W/c1"
  out=$(cat "$W/out")
  kv() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<< "$out"; }
  awk -v r="${RATE:-flood}" -v n="$SESSIONS" -v o="$(kv offered_pps)" -v d="$(kv delivered_pps)" -v l="$(kv loss_pct)" \
    -v c=$((c1 - c0)) -v u=$((u1 - u0)) -v hz="$HZ" -v w="$(echo "$t1 - $t0" | bc)" -v dur="$DUR" \
    'BEGIN { cpu = c / hz; printf "expose %6s sessions=%d offered=%7.0f delivered=%7.0f loss=%5.2f%% relay_cpu=%4.0f%% (user %3.0f%%) round_trips_per_cpu_s=%7.0f\n", r, n, o, d, l, 100 * cpu / w, 100 * u / hz / w, (cpu > 0 ? d * dur / cpu : 0) }'
  drops_line d0 d1 k0 k1
  counters_line "$W/c0" "$W/c1"
done
