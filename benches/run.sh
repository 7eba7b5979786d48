#!/usr/bin/env bash
# Runs every benchmark, each beside its baseline in the same run, then writes the tables of
# BENCHMARKS.md to target/bench-report.md (raw output: target/bench-run.txt). About 12 minutes on 2
# cores. Keep the machine otherwise idle: the interleaved L2 bench tolerates noise, criterion does not.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis
rm -rf target/bench-results target/criterion
# The filter only shows progress; a bench that fails must stop the run, not leave its tables stale.
cargo bench -p tiercache-benches 2>&1 | tee target/bench-run.txt | { grep -E "^(\||[a-z_]+/)|time:" || true; }
cargo run --release -q -p tiercache-benches --bin bench-report > /dev/null
echo "tables: target/bench-report.md"
