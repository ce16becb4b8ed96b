#!/usr/bin/env bash
# The baseline of bench/socket_load.sh: upstream changedetection.io itself (Flask-SocketIO,
# threading mode, its Werkzeug server as `changedetection.py` runs it), installed from PyPI into a
# venv under /tmp (never into the repo), started on a free loopback port with a temp datastore,
# measured by the same bench/socket_load.mjs, then stopped by its PID.
#
#   bench/socket_baseline.sh [N [ROUNDS]]
#
# The trigger is the socket `watch_operation {op:'pause'}` toggle: upstream's REST
# `?paused=paused` only commits the watch and broadcasts no watch_update (0.60.x), so the REST
# trigger cannot be measured there. Env: CDIO_VENV (default /tmp/cdio-venv), CDIO_VERSION
# (default 0.60.10), RESULT_JSON=<file> keeps the raw result.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

n="${1:-${N:-500}}"
rounds="${2:-${ROUNDS:-50}}"
venv="${CDIO_VENV:-/tmp/cdio-venv}"
version="${CDIO_VERSION:-0.60.10}"

case "$venv" in
    "$root"/*) echo "CDIO_VENV must be outside the repository" >&2; exit 1 ;;
esac
if ! "$venv/bin/python" -c "import changedetectionio" 2>/dev/null \
    || [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("changedetection.io"))')" != "$version" ]; then
    echo "# installing changedetection.io==$version into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "changedetection.io==$version" >&2
fi
command -v node >/dev/null || { echo "node is needed (Node 18+)" >&2; exit 1; }

work="$(mktemp -d /tmp/cdio-socket-bench.XXXXXX)"
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

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
# ALLOW_IANA_RESTRICTED_ADDRESSES: the benchmark's watch points at a page on 127.0.0.1.
# -l WARNING: upstream logs every event at DEBUG by default; that console I/O is not Socket.IO.
ALLOW_IANA_RESTRICTED_ADDRESSES=true \
    "$venv/bin/python" "$venv/bin/changedetection.py" -d "$work/store" -C -p "$port" -h 127.0.0.1 -l WARNING \
    >"$work/server.log" 2>&1 &
pid=$!

key=""
for _ in $(seq 600); do
    kill -0 "$pid" 2>/dev/null || break
    if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
        key="$(python3 - "$work/store" <<'PY'
import json, pathlib, sys
for name in ("changedetection.json", "url-watches.json"):
    p = pathlib.Path(sys.argv[1], name)
    if p.exists():
        app = json.loads(p.read_text()).get("settings", {}).get("application", {})
        if app.get("api_access_token"):
            print(app["api_access_token"])
            break
PY
)"
        [ -n "$key" ] && break
    fi
    sleep 0.1
done
if [ -z "$key" ]; then
    echo "changedetection.io did not start (or wrote no API key):" >&2
    tail -20 "$work/server.log" >&2
    exit 1
fi
echo "# upstream changedetection.io $version pid $pid on 127.0.0.1:$port; N=$n rounds=$rounds trigger=socket" >&2

result="${RESULT_JSON:-$work/result.json}"
status=0
node bench/socket_load.mjs --url "http://127.0.0.1:$port" --key "$key" --pid "$pid" \
    --n "$n" --rounds "$rounds" --recheck-rounds "${RECHECK_ROUNDS:-100}" --trigger socket --label "upstream-$version" \
    --delete-other-watches --json "$result" >/dev/null || status=$?
if [ -s "$result" ]; then
    python3 bench/socket_report.py "$result"
fi
exit "$status"
