#!/usr/bin/env bash
# Socket.IO fan-out benchmark of changewatch: starts `changewatch serve` on a free loopback port
# with a temp datastore, runs bench/socket_load.mjs against it, stops the server (by its PID) and
# prints the results table.
#
#   bench/socket_load.sh [N [ROUNDS [TRIGGER]]]     N clients (default 500, max 2000),
#                                                   ROUNDS toggles (default 50),
#                                                   TRIGGER socket (default) | rest
#
# Uses target/release/changewatch (build it with `cargo build --release -p changewatch`; this
# script builds nothing). CW_BIN=<path> measures another binary, e.g. target/debug/changewatch
# (a debug build's figures are not the release figures: say which one you quote).
# RESULT_JSON=<file> keeps the raw result (one JSON object).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

n="${1:-${N:-500}}"
rounds="${2:-${ROUNDS:-50}}"
trigger="${3:-${TRIGGER:-socket}}"

bin="${CW_BIN:-$root/target/release/changewatch}"
if [ ! -x "$bin" ]; then
    echo "no release binary at $bin." >&2
    echo "Build it first:  cargo build --release -p changewatch" >&2
    echo "(or measure another build: CW_BIN=target/debug/changewatch bench/socket_load.sh)" >&2
    exit 1
fi
command -v node >/dev/null || { echo "node is needed (Node 18+)" >&2; exit 1; }
if [ -z "${SOCKET_IO_CLIENT:-}" ] && [ ! -d "$root/dashboard/node_modules/socket.io-client" ]; then
    echo "socket.io-client missing: npm ci --prefix dashboard (or SOCKET_IO_CLIENT=<package dir>)" >&2
    exit 1
fi
case "$bin" in
    *release*) build=release ;;
    *debug*) build=debug ;;
    *) build=custom ;;
esac

work="$(mktemp -d /tmp/cw-socket-bench.XXXXXX)"
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

key="bench-$RANDOM$RANDOM"
ALLOW_PRIVATE_ADDRESSES=true API_ACCESS_TOKEN="$key" DATASTORE_PATH="$work/store" \
    CHANGEDETECTION_HOST=127.0.0.1 CHANGEDETECTION_PORT=0 \
    "$bin" serve >"$work/stdout" 2>"$work/stderr" &
pid=$!
port=""
for _ in $(seq 200); do
    port="$(sed -n 's/^changewatch listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/stdout" | head -1)"
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$port" ]; then
    echo "changewatch did not start:" >&2
    tail -20 "$work/stderr" >&2
    exit 1
fi
echo "# changewatch ($build build, $bin) pid $pid on 127.0.0.1:$port; N=$n rounds=$rounds trigger=$trigger" >&2

result="${RESULT_JSON:-$work/result.json}"
status=0
node bench/socket_load.mjs --url "http://127.0.0.1:$port" --key "$key" --pid "$pid" \
    --n "$n" --rounds "$rounds" --recheck-rounds "${RECHECK_ROUNDS:-100}" --trigger "$trigger" --label "changewatch-$build" \
    --json "$result" >/dev/null || status=$?
if [ -s "$result" ]; then
    python3 bench/socket_report.py "$result"
fi
exit "$status"
