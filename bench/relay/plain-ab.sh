#!/usr/bin/env bash
# Plain-route A/B by counted measures: the UDP round trip at 2k datagrams/s and TCP bulk, for two
# (or more) subject scripts taken in turn, the order reversed every round (the bench always runs
# subject before subject2, so a cost of the position would look like a cost of the build).
#   PORT_BASE=20000 ROUNDS=4 bench/relay/plain-ab.sh $BASE/bench/relay/subject.sh bench/relay/subject.sh
# Per relay and round, each on a fresh relay (CPU 1) with echod and iperf3 -s (CPU 0), as the bench:
#   - the bench's UDP loads before its latency test (64 B, 1400 B, 1000 sessions, closed loop; PRE=0
#     skips them), then `udpload -L -r 2000` for LAT_DUR s: p50/p99/p999 and, from perf stat on the
#     relay, its CPU (task-clock), wake-ups (context switches) and system calls per round trip;
#   - iperf3 -P 1 and -P 8 through the relay: Gbit/s, relay CPU ms per GB, splices and small
#     reads/writes (recvfrom/sendto) per GB.
# The counts per round trip and per GB hardly move when other tenants load the machine; the
# latency does. RT=1 (default when root) runs relay, echod and udpload under SCHED_FIFO for the
# latency step only (a 2k/s load, about a fifth of a core), so other tenants' CPU time does not
# enter the percentiles; RT=0 measures as the bench does. Ports PORT_BASE (echo), +1 (iperf3),
# +100 (relay), +101 (relay to iperf3), as ../shared/bench/run-peers.sh. TCP=0 skips the iperf3 steps.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SHARED="$HERE/../../../shared/bench"
[ -f "$SHARED/udpload.c" ] || { echo "plain-ab: $SHARED/udpload.c not found (../shared must sit beside the repository)" >&2; exit 1; }
[ $# -ge 1 ] || { echo "usage: PORT_BASE=N $0 SUBJECT_SCRIPT ..." >&2; exit 2; }
[ -n "${PORT_BASE:-}" ] || { echo "plain-ab: set PORT_BASE (ports PORT_BASE..PORT_BASE+101 are used)" >&2; exit 2; }
command -v perf > /dev/null || { echo "plain-ab: perf not found (apt-get install linux-perf)" >&2; exit 1; }
ROUNDS=${ROUNDS:-4} DUR=${DUR:-2} LAT_DUR=${LAT_DUR:-3} PRE=${PRE:-1} TCP=${TCP:-1}
RT=${RT:-$([ "$(id -u)" = 0 ] && echo 1 || echo 0)}
E=$PORT_BASE I=$((PORT_BASE + 1)) R=$((PORT_BASE + 100)) RI=$((PORT_BASE + 101))
W=$(mktemp -d /tmp/sluice-plain-ab.XXXXXX)
for t in echod udpload; do gcc -O2 -Wall -o "$W/$t" "$SHARED/$t.c"; done
G="taskset -c 0"
SP=""
T=$((ROUNDS * $# * (6 * DUR + LAT_DUR + 30) + 60))
$G "$W/echod" -p "$E" -T "$T" & EP=$!
$G timeout "$T" iperf3 -s -p "$I" > /dev/null 2>&1 & IP=$!
cleanup() { [ -n "$SP" ] && kill -- "-$SP" 2>/dev/null; kill "$EP" "$IP" 2>/dev/null; true; }
trap cleanup EXIT
wait_port() { for _ in $(seq 1 150); do ss -Hln"$1" "( sport = :$2 )" | grep -q . && return 0; sleep 0.1; done; echo "plain-ab: port $1/$2 did not open" >&2; exit 1; }
# counters FILE N: each perf stat -x, counter of FILE divided by N, as name=value
counters() { awk -F, -v n="$2" '$3 != "" { m = split($3, a, ":"); k = a[m]; sub("sys_enter_", "", k); if (k == "sys_enter") k = "syscalls"; printf "%s=%.2f ", k, (n > 0) ? $1 / n : 0 }' "$1"; }
kv() { sed -n "s/.*[ ^]$2=\([^ ]*\).*/\1/p" <<< " $1" | head -1; }
UDP_EV=task-clock,context-switches,raw_syscalls:sys_enter,syscalls:sys_enter_recvmmsg,syscalls:sys_enter_sendmmsg,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait
TCP_EV=task-clock,context-switches,raw_syscalls:sys_enter,syscalls:sys_enter_splice,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto
: > "$W/results"
one() { # ROUND INDEX SCRIPT
  local round=$1 i=$2 s=$3 out sent gb gbps pid
  setsid taskset -c 1 bash "$s" "$R" "$E" "$RI" "$I" > "$W/relay$i.log" 2>&1 &
  SP=$!
  wait_port u "$R"; wait_port t "$RI"
  sleep 0.3
  pid=$(pgrep -g "$SP" -n node)
  if [ "$PRE" = 1 ]; then
    $G "$W/udpload" -t "127.0.0.1:$R" -s 64 -d "$DUR" > /dev/null || true
    $G "$W/udpload" -t "127.0.0.1:$R" -s 1400 -d "$DUR" > /dev/null || true
    $G "$W/udpload" -t "127.0.0.1:$R" -s 64 -d "$DUR" -n 1000 -W 2 > /dev/null 2>&1 || true
    $G "$W/udpload" -t "127.0.0.1:$R" -s 64 -d "$DUR" -w 64 > /dev/null || true
  fi
  $G "$W/udpload" -t "127.0.0.1:$R" -s 64 -d 1 -L -r 2000 > /dev/null || true  # warm-up: a fresh process still compiles its hot paths
  local L="$G"
  if [ "$RT" = 1 ]; then
    chrt -f -a -p 10 "$pid" > /dev/null; chrt -f -p 10 "$EP" > /dev/null
    L="chrt -f 10 $G"
  fi
  perf stat -x, -e "$UDP_EV" -p "$pid" -o "$W/udp.stat" & local pp=$!
  sleep 0.1
  out=$($L "$W/udpload" -t "127.0.0.1:$R" -s 64 -d "$LAT_DUR" -L -r 2000) || out=""
  kill -INT $pp; wait $pp || true
  [ "$RT" = 1 ] && { chrt -o -a -p 0 "$pid" > /dev/null; chrt -o -p 0 "$EP" > /dev/null; }
  sent=$(kv "$out" sent)
  if [ -z "$sent" ] || [ "$sent" = 0 ]; then
    echo "r$round relay$i udp 2k/s: udpload failed, round left out  ($s)"
  else
    echo "r$round relay$i udp 2k/s: p50_us=$(kv "$out" p50_us) p99_us=$(kv "$out" p99_us) p999_us=$(kv "$out" p999_us) per round trip: $(counters "$W/udp.stat" "$sent")  ($s)"
    echo "$i lat p50 $(kv "$out" p50_us)" >> "$W/results"; echo "$i lat p99 $(kv "$out" p99_us)" >> "$W/results"
    echo "$i lat cpu_us_per_rt $(counters "$W/udp.stat" "$((sent / 1000))" | sed -n 's/.*task-clock=\([0-9.]*\).*/\1/p')" >> "$W/results"
  fi
  for p in $([ "${TCP:-1}" = 1 ] && echo 1 8); do
    perf stat -x, -e "$TCP_EV" -p "$pid" -o "$W/tcp.stat" & pp=$!
    sleep 0.1
    $G timeout $((DUR + 20)) iperf3 -c 127.0.0.1 -p "$RI" -t "$DUR" -P "$p" -J > "$W/iperf.json" 2> /dev/null || true
    kill -INT $pp; wait $pp || true
    read -r gb gbps <<< "$(node -e 'let j = {}; try { j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); } catch {} const s = j.end && j.end.sum_received; console.log(s ? (s.bytes / 1e9).toFixed(3) : 0, s ? (s.bits_per_second / 1e9).toFixed(2) : 0)' "$W/iperf.json")"
    echo "r$round relay$i tcp P=$p: gbps=$gbps per GB: $(counters "$W/tcp.stat" "$gb")  ($s)"
    if [ "$gb" != 0 ]; then echo "$i t$p ms_per_gb $(counters "$W/tcp.stat" "$gb" | sed -n 's/.*task-clock=\([0-9.]*\).*/\1/p')" >> "$W/results"; fi
  done
  kill -- "-$SP" 2> /dev/null || true; wait "$SP" 2> /dev/null || true
  for _ in $(seq 1 100); do kill -0 -- "-$SP" 2> /dev/null || break; sleep 0.05; done
  SP=""
  sleep 0.3
}
wait_port u "$E"; wait_port t "$I"
for round in $(seq 1 "$ROUNDS"); do
  order=$(seq 1 $#); [ $((round % 2)) = 0 ] && order=$(seq $# -1 1)
  for i in $order; do one "$round" "$i" "${!i}"; done
done
echo "medians over $ROUNDS rounds (udp: RTT µs at 2k/s and relay CPU µs per round trip; tcp: relay CPU ms per GB):"
for i in $(seq 1 $#); do
  line="relay$i:"
  for m in "lat p50" "lat p99" "lat cpu_us_per_rt" "t1 ms_per_gb" "t8 ms_per_gb"; do
    v=$(awk -v i="$i" -v m="$m" '$1 == i && $2 " " $3 == m { print $4 }' "$W/results" | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
    line="$line ${m// /_}=$v"
  done
  echo "$line  (${!i})"
done
