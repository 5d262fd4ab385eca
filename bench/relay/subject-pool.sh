#!/usr/bin/env bash
# The benchmark's subject with every route a pool (docs/pools.md): same contract and routes as
# subject.sh, each upstream written as a one-member pool with active health checks. Pooled vs
# single in one run:
#   SUBJECT_CMD=bench/relay/subject.sh SUBJECT2_CMD=bench/relay/subject-pool.sh ONLY="subject subject2" npm run bench
set -euo pipefail
SLUICE_BENCH_POOL=1 exec "$(cd "$(dirname "$0")" && pwd)/subject.sh" "$@"
