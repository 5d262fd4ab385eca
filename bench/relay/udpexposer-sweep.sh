#!/usr/bin/env bash
# udpexposer-sweep.sh NAME "CMD" [RATE...]: the paced sweep of docs/benchmarks.md ("udpexposer
# mode"). CMD runs one udpexposer process (the real one, or `node dist/src/main.js udpexposer
# --datapath native`); a server + client pair of it runs on CPU 1, echod and udpload (built from
# ../shared/bench) on CPU 0. Per rate: one session of 64 B datagrams paced with `udpload -r RATE`
# for DUR s (an empty RATE is an open-loop flood). Relay CPU is utime + stime of both processes.
#   bench/relay/udpexposer-sweep.sh real ../shared/peers/udpexposer 5000 10000 20000 40000 ""
#   bench/relay/udpexposer-sweep.sh sluice "node dist/src/main.js udpexposer --datapath native" 5000 10000 20000 40000 ""
#   bench/relay/udpexposer-sweep.sh sluice-0 "node dist/src/main.js udpexposer --datapath native --batch-delay-us 0" 5000 10000 20000 40000
# (Sluice's default is the adaptive delay, --batch-delay-us auto; 0 is no delay.)
# LATENCY="2000 5000 20000" adds, per rate, RTT p50/p99 of one paced session (udpload -L, 2 s; its
# pacing sleeps in ppoll, so on a busy VM it sends fewer than asked: the line says how many per s).
# BESIDE="18000" adds, per rate, the RTT of a 2k pps session (udpload -L) while a second session
# offers that many pps (udpload -r, no -L): the latency a light flow sees beside a busy one.
set -u
NAME=$1 CMD=$2; shift 2
[ $# -gt 0 ] || set -- 5000 10000 20000 40000
DUR=${DUR:-3}
SHARED=$(cd "$(dirname "$0")/../../../shared/bench" && pwd)
W=$(mktemp -d /tmp/udpx-sweep.XXXXXX)
for t in echod udpload; do gcc -O2 -Wall -o "$W/$t" "$SHARED/$t.c" || exit 1; done
# Below the ephemeral range (32768-60999): a port there can be held by any connected UDP socket of
# another process (another bench's sessions), which ss -l does not show and echod cannot bind.
E=${PORT_BASE:-23000}; R=$((E + 1)); C=$((E + 2))
for p in $E $R $C; do ss -Hlnu "( sport = :$p )" | grep -q . && { echo "port $p busy; set PORT_BASE" >&2; exit 1; }; done
PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT INT TERM
taskset -c 0 "$W/echod" -p $E -T 600 > /dev/null 2>&1 & PIDS+=($!)
# shellcheck disable=SC2086
taskset -c 1 $CMD 127.0.0.1:$R -s -n 2000 > "$W/server.log" 2>&1 & SP=$!; PIDS+=($SP)
for _ in $(seq 1 100); do ss -Hlnu "( sport = :$R )" | grep -q . && break; sleep 0.05; done
# shellcheck disable=SC2086
taskset -c 1 $CMD 127.0.0.1:$C -a 127.0.0.1:$R -c 127.0.0.1:$E -n 2000 > "$W/client.log" 2>&1 & CP=$!; PIDS+=($CP)
for _ in $(seq 1 200); do grep -q "New client address" "$W/server.log" && break; sleep 0.05; done
grep -q "New client address" "$W/server.log" || { echo "the client did not register" >&2; exit 1; }
ticks() { local t=0 u=0 p; for p in $SP $CP; do set -- $(sed 's/^.*) //' "/proc/$p/stat"); t=$((t + ${12} + ${13})); u=$((u + ${12})); done; echo "$t $u"; }
HZ=$(getconf CLK_TCK)
kill -0 "${PIDS[0]}" 2>/dev/null || { echo "echod did not start on port $E; set PORT_BASE" >&2; exit 1; }
warm=$(taskset -c 0 "$W/udpload" -t 127.0.0.1:$R -s 64 -d 1 -r 5000 2>&1) # warm-up, not counted
grep -q 'delivered_pps=[1-9]' <<< "$warm" || { echo "nothing came back in the warm-up: $warm" >&2; exit 1; }
for RATE in "$@"; do
  read -r c0 u0 < <(ticks); t0=$(date +%s.%N)
  out=$(timeout $((DUR + 20)) taskset -c 0 "$W/udpload" -t 127.0.0.1:$R -s 64 -d "$DUR" ${RATE:+-r $RATE} 2>&1)
  read -r c1 u1 < <(ticks); t1=$(date +%s.%N)
  kv() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<< "$out"; }
  awk -v n="$NAME" -v r="${RATE:-flood}" -v o="$(kv offered_pps)" -v d="$(kv delivered_pps)" -v l="$(kv loss_pct)" \
    -v c=$((c1 - c0)) -v u=$((u1 - u0)) -v hz="$HZ" -v w="$(echo "$t1 - $t0" | bc)" \
    'BEGIN { cpu = c / hz; printf "%-10s %6s offered=%7.0f delivered=%7.0f loss=%5.2f%% relay_cpu=%4.0f%% (user %3.0f%%) round_trips_per_cpu_s=%7.0f\n", n, r, o, d, l, 100 * cpu / w, 100 * u / hz / w, (cpu > 0 ? d * w / cpu : 0) }'
done
for RATE in ${LATENCY:-}; do
  out=$(timeout 30 taskset -c 0 "$W/udpload" -t 127.0.0.1:$R -s 64 -d 2 -L -r "$RATE" 2>&1)
  sent=$(sed -n 's/.* sent=\([0-9]*\).*/\1/p' <<< "$out")
  printf '%-10s %6s latency %s sent_pps=%s\n' "$NAME" "$RATE" "$(grep -o 'loss_pct=[0-9.]* p50_us=[0-9.]* p99_us=[0-9.]*' <<< "$out")" "$((${sent:-0} * 10 / 22))"
done
for RATE in ${BESIDE:-}; do
  timeout 30 taskset -c 0 "$W/udpload" -t 127.0.0.1:$R -s 64 -d 3 -r "$RATE" > "$W/beside.out" 2>&1 & BP=$!
  sleep 0.5
  out=$(timeout 30 taskset -c 0 "$W/udpload" -t 127.0.0.1:$R -s 64 -d 2 -L -r 2000 2>&1)
  wait $BP
  printf '%-10s 2000 beside %s: latency %s; beside: %s\n' "$NAME" "$RATE" "$(grep -o 'loss_pct=[0-9.]* p50_us=[0-9.]* p99_us=[0-9.]*' <<< "$out")" "$(grep -o 'delivered_pps=[0-9.]* loss_pct=[0-9.]*' "$W/beside.out")"
done
