#!/usr/bin/env bash
# changewatch and upstream changedetection.io side by side: for each N (default "100 500"), the
# same socket_load.mjs run against bench/socket_load.sh's server then bench/socket_baseline.sh's,
# one after the other on this machine, then one table with the ratios upstream / changewatch.
#
#   bench/socket_compare.sh                  NS="100 500" ROUNDS=50
#   CW_BIN=target/debug/changewatch NS="100" ROUNDS=20 bench/socket_compare.sh
#
# Also runs changewatch with the REST pause toggle (no upstream counterpart, see
# socket_baseline.sh). Raw results go to OUT_DIR (default target/bench-socket).
set -euo pipefail
cd "$(dirname "$0")/.."
ns="${NS:-100 500}"
rounds="${ROUNDS:-50}"
out="${OUT_DIR:-target/bench-socket}"
mkdir -p "$out"
files=()
for n in $ns; do
    RESULT_JSON="$out/changewatch-socket-$n.json" bash bench/socket_load.sh "$n" "$rounds" socket >/dev/null
    files+=("$out/changewatch-socket-$n.json")
    sleep 2
    RESULT_JSON="$out/upstream-socket-$n.json" bash bench/socket_baseline.sh "$n" "$rounds" >/dev/null
    files+=("$out/upstream-socket-$n.json")
    sleep 2
    RESULT_JSON="$out/changewatch-rest-$n.json" bash bench/socket_load.sh "$n" "$rounds" rest >/dev/null
    files+=("$out/changewatch-rest-$n.json")
    sleep 2
done
python3 bench/socket_report.py "${files[@]}"
