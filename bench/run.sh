#!/usr/bin/env bash
# `make bench`: the criterion benchmarks, then the same cases on the Python stack upstream uses,
# run one after the other on this machine, then the ratio table (bench/ratios.py). The criterion
# run leaves its two snapshot texts in target/bench-snapshots/ for the baseline's notification case.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target
# The release profile links libxml2 as the Makefile's release builds do (see RELEASE_ENV there).
eval "$(bash infra/build-libxml2.sh --or-system native)"
cargo bench -p changewatch-core --bench pipeline -- --noplot 2>&1 | tee target/bench-rust.txt
python3 -m pip install -q -r bench/requirements.txt
python3 bench/upstream_baseline.py 2>&1 | tee target/bench-baseline.txt
python3 bench/ratios.py target/criterion target/bench-baseline.txt target/bench-rust.txt
