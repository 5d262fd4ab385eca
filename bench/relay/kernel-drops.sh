# Sourced by expose-sweep.sh and flood-fairness.sh: where the kernel dropped datagrams, per socket
# role, on the path of an exposure (subject-expose.sh: public listener RELAY_PORT, the gateway's
# tunnel port RELAY_PORT+200, the agent's connected sockets toward ECHO_PORT, any other socket of
# the relay process: the agent's tunnel socket), and the machine-wide counters (nstat; other
# tenants count there too).
# drops PID RELAY_PORT ECHO_PORT: "public gw_tunnel sessions other echod own", the drops column of
# /proc/net/udp{,6} summed by role over the sockets of PID (subject-expose.sh's relay) and echod's;
# `own`: sockets on RELAY_PORT connected to one client (a flooding client's own socket,
# docs/expose.md), `public` the listener there. Sockets closed during a run take their drops along.
drops() {
  local inodes
  inodes=$(ls -l "/proc/$1/fd" 2>/dev/null | sed -n 's/.*socket:\[\([0-9]*\)\].*/\1/p' | tr '\n' ' ')
  cat /proc/net/udp /proc/net/udp6 | awk -v ino=" $inodes" -v r="$2" -v gw="$(($2 + 200))" -v e="$3" '
    function port(a,  v, i) { sub(/.*:/, "", a); v = 0; for (i = 1; i <= length(a); i++) v = v * 16 + index("0123456789ABCDEF", substr(a, i, 1)) - 1; return v }
    NR > 1 && $1 ~ /:$/ {
      lp = port($2); rp = port($3)
      if (index(ino, " " $10 " ")) {
        if (lp == r && rp != 0) own += $13; else if (lp == r) pub += $13; else if (lp == gw) tun += $13; else if (rp == e) ses += $13; else oth += $13
      } else if (lp == e) ech += $13
    }
    END { printf "%d %d %d %d %d %d\n", pub, tun, ses, oth, ech, own }'
}
# kstat: machine-wide "UdpRcvbufErrors UdpSndbufErrors UdpInErrors" (InErrors also counts drops
# when all UDP sockets together reach net.ipv4.udp_mem, which RcvbufErrors does not).
kstat() { nstat -asz UdpRcvbufErrors UdpSndbufErrors UdpInErrors 2>/dev/null | awk '$1 == "UdpRcvbufErrors" { r = $2 } $1 == "UdpSndbufErrors" { s = $2 } $1 == "UdpInErrors" { i = $2 } END { print r + 0, s + 0, i + 0 }'; }
# drops_line BEFORE AFTER KBEFORE KAFTER: names of arrays filled by `drops` and `kstat`.
drops_line() {
  local -n a=$1 b=$2 ka=$3 kb=$4
  echo "  kernel drops: public=$((b[0] - a[0])) own=$((${b[5]:-0} - ${a[5]:-0})) gw_tunnel=$((b[1] - a[1])) sessions=$((b[2] - a[2])) other=$((b[3] - a[3])) echod=$((b[4] - a[4])) machine: UdpRcvbufErrors=$((${kb[0]:-0} - ${ka[0]:-0})) UdpSndbufErrors=$((${kb[1]:-0} - ${ka[1]:-0})) UdpInErrors=$((${kb[2]:-0} - ${ka[2]:-0}))"
}
# bg_busy: "bg busy_pct N", both CPUs' busy share over 0.4 s while our processes are idle (other
# tenants' load, as ../shared/bench/run-peers.sh prints it before each block).
bg_busy() {
  local a b tot=0 idle i
  read -r -a a < <(head -1 /proc/stat); sleep 0.4; read -r -a b < <(head -1 /proc/stat)
  idle=$(( (b[4] + b[5]) - (a[4] + a[5]) ))
  for i in 1 2 3 4 5 6 7 8; do tot=$((tot + b[i] - a[i])); done
  echo "bg busy_pct $(( tot > 0 ? 100 * (tot - idle) / tot : 0 ))"
}
