#!/usr/bin/env bash
# Runs socket_contract.py against fresh `changewatch serve` processes (own temp datastore, own
# port), RUNS times (default 3), stopping each server by its PID afterwards.
#
#   crates/cli/tests/clients/socket_contract.sh            # target/debug/changewatch, 3 runs
#   CW_BIN=target/release/changewatch RUNS=5 crates/cli/tests/clients/socket_contract.sh
#
# Needs python-socketio's client: pip install "python-socketio[client]". Builds nothing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
bin="${CW_BIN:-$root/target/debug/changewatch}"
runs="${RUNS:-3}"
python="${PYTHON:-python3}"

if [ ! -x "$bin" ]; then
    echo "no binary at $bin: build it first (cargo build -p changewatch)" >&2
    exit 1
fi
if ! "$python" -c "import socketio, websocket" 2>/dev/null; then
    echo "python-socketio client missing: $python -m pip install 'python-socketio[client]'" >&2
    exit 1
fi

pid=""
data=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    if [ -n "$data" ]; then rm -rf "$data"; fi
    pid=""
    data=""
}
trap cleanup EXIT

passed=0
failed=0
for run in $(seq "$runs"); do
    data="$(mktemp -d /tmp/cw-socket-contract.XXXXXX)"
    key="contract-$RANDOM-$RANDOM"
    ALLOW_PRIVATE_ADDRESSES=true API_ACCESS_TOKEN="$key" DATASTORE_PATH="$data/store" \
        CHANGEDETECTION_HOST=127.0.0.1 CHANGEDETECTION_PORT=0 \
        "$bin" serve >"$data/stdout" 2>"$data/stderr" &
    pid=$!
    port=""
    for _ in $(seq 150); do
        port="$(sed -n 's/^changewatch listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$data/stdout" | head -1)"
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "run $run: server did not start; its stderr:" >&2
        tail -20 "$data/stderr" >&2
        failed=$((failed + 1))
        cleanup
        continue
    fi
    echo "# run $run: changewatch pid $pid on port $port"
    start=$(date +%s.%N)
    if CW_BASE_URL="http://127.0.0.1:$port" CW_API_KEY="$key" timeout 300 "$python" "$here/socket_contract.py"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "# run $run failed; server stderr (last 20 lines):"
        tail -20 "$data/stderr" | sed 's/^/#   /'
    fi
    echo "# run $run took $(echo "$(date +%s.%N) - $start" | bc | cut -c1-5)s"
    cleanup
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
