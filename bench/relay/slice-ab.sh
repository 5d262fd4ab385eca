#!/usr/bin/env bash
# The second client's tail under a flood at several scheduler slices (scheduler.sliceUs,
# docs/expose.md "A shorter scheduler slice"), alternating: flood-fairness.sh once per value per
# round, then one line per run and the medians per value.
#   PORT_BASE=15000 VALUES="0 100 200 500" ROUNDS=5 DUR=3 bash bench/relay/slice-ab.sh
# VALUES: sliceUs per run (0: the system's slice); every run also prints bg busy_pct (other
# work on the machine during the run). Each run takes about DUR x 3 + 5 s.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
VALUES=${VALUES:-"0 100 200 500"}
ROUNDS=${ROUNDS:-3}
OUT=$(mktemp /tmp/sluice-slice-ab.XXXXXX)
trap 'rm -f "$OUT"' EXIT
for round in $(seq 1 "$ROUNDS"); do
  for v in $VALUES; do
    log=$(SLICE_US=$v bash "$HERE/flood-fairness.sh" 2>&1 || true)
    bg=$(sed -nE 's/.*bg busy_pct ([0-9]+).*/\1/p' <<<"$log" | head -1)
    p99=$(sed -nE 's/^second client:.* p99_us=([0-9.]+).*/\1/p' <<<"$log")
    loss=$(sed -nE 's/^second client:.* loss_pct=([0-9.]+).*/\1/p' <<<"$log")
    ratio=$(sed -nE 's/^flood delivered \/ closed loop = ([0-9.]+)/\1/p' <<<"$log")
    closed=$(sed -nE 's/^closed loop:.* delivered_pps=([0-9]+).*/\1/p' <<<"$log")
    echo "round=$round slice_us=$v bg_busy=${bg:-?} p99_ms=$(awk -v p="${p99:-0}" 'BEGIN{printf "%.1f", p/1000}') loss_pct=${loss:-?} flood/closed=${ratio:-?} closed_pps=${closed:-?}" | tee -a "$OUT"
  done
done
echo "medians per value:"
for v in $VALUES; do
  grep " slice_us=$v " "$OUT" | awk -v v="$v" '
    { for (i = 1; i <= NF; i++) { split($i, kv, "="); a[kv[1], NR] = kv[2] } n = NR }
    function med(k,   x, i, j, t) { for (i = 1; i <= n; i++) x[i] = a[k, i] + 0
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
      return n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2 }
    END { printf "slice_us=%s runs=%d p99_ms=%.1f loss_pct=%.3f flood/closed=%.2f closed_pps=%d bg_busy=%d\n", v, n, med("p99_ms"), med("loss_pct"), med("flood/closed"), med("closed_pps"), med("bg_busy") }'
done
