#!/usr/bin/env bash
# The benchmark's subject with the UDP echo route a range of 100 ports (docs/ranges.md), the load
# on its first port; same contract and other routes as subject.sh. Range vs single port in one run:
#   SUBJECT_CMD=bench/relay/subject.sh SUBJECT2_CMD=bench/relay/subject-range.sh ONLY="subject subject2" npm run bench
set -euo pipefail
SLUICE_BENCH_RANGE=${SLUICE_BENCH_RANGE:-100} exec "$(cd "$(dirname "$0")" && pwd)/subject.sh" "$@"
