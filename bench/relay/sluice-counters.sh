# Sourced by expose-sweep.sh and flood-fairness.sh when ADMIN_PORT is set (subject-expose.sh then
# serves metrics on 127.0.0.1:ADMIN_PORT): what Sluice itself dropped or did during a run, to set
# beside the kernel's drops (kernel-drops.sh).
# counters PORT FILE: saves the counters that say where a datagram was dropped (by reason, and the
# tunnel's drop paths per direction) and isolations by change and reason, summed over routes.
# counters_line BEFORE AFTER: "sluice: NAME=delta ..." for those that moved ("no drops" when none;
# "no metrics" when the relay serves none: a subject-expose.sh without ADMIN_PORT).
counters() {
  { curl -s --max-time 2 "http://127.0.0.1:$1/metrics" || true; } | awk '
    /^sluice_datagrams_dropped_total\{/ { match($0, /reason="[^"]*"/); k["dropped." substr($0, RSTART + 8, RLENGTH - 9)] += $NF }
    /^sluice_(gateway|agent)_datagrams_total\{/ {
      side = ($0 ~ /^sluice_gateway/) ? "gw." : "agent."
      match($0, /direction="[^"]*"/); d = substr($0, RSTART + 11, RLENGTH - 12)
      match($0, /path="[^"]*"/); p = substr($0, RSTART + 6, RLENGTH - 7)
      k[side d "." p] += $NF
    }
    /^sluice_udp_isolations_total\{/ { match($0, /change="[^"]*"/); c = substr($0, RSTART + 8, RLENGTH - 9); match($0, /reason="[^"]*"/); k["isolations." c "." substr($0, RSTART + 8, RLENGTH - 9)] += $NF }
    END { for (n in k) print n, k[n] }' > "$2" || true
}
counters_line() {
  if [ ! -s "$1" ] || [ ! -s "$2" ]; then echo "  sluice: no metrics"; return; fi
  awk 'NR == FNR { a[$1] = $2; next } { d = $2 - a[$1]; if (d != 0 && $1 !~ /\.(udp|tls)$/) out = out " " $1 "=" d } END { print "  sluice:" (out == "" ? " no drops" : out) }' "$1" "$2"
}
