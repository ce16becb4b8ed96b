#!/usr/bin/env bash
# `make bench-aws-cost`: the real function binaries (release builds) against moto behind the
# pricing proxy; prints $ per million checks per round (see bench/aws_cost/README.md).
# CW_BENCH_WATCHES (200), CW_BENCH_LONG_HISTORY_WATCHES (10), CW_BENCH_LONG_HISTORY (100),
# CW_BENCH_OUT (target/aws-cost.json) are read by the driver.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -c 'import moto.server, flask_cors, boto3' 2>/dev/null \
  || python3 -m pip install --quiet 'moto[server]==5.*' boto3
# The release profile links libxml2 as the Makefile's release builds do (see RELEASE_ENV there).
eval "$(bash infra/build-libxml2.sh --or-system native)"
cargo build --release --locked -p changewatch-bench-aws-cost \
  -p changewatch-fn-api -p changewatch-fn-scheduler -p changewatch-fn-checker -p changewatch-fn-notifier
out="${CW_BENCH_OUT:-target/aws-cost.json}"
CW_BENCH_OUT="$out" target/release/aws-cost
python3 bench/aws_cost/report.py "$out" --top 8
