#!/usr/bin/env bash
# Runs every benchmark (each beside its baseline) and keeps the raw output in target/bench-run.txt.
# About 10 minutes on 2 cores. Figures go into BENCHMARKS.md by hand, with this command.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis
cargo bench -p tiercache-benches 2>&1 | tee target/bench-run.txt | grep -E "time:|^\||^[a-z_]+/|ratio|stampede:|refresh-ahead:|invalidation propagation"
