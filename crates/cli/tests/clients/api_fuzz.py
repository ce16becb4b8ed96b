#!/usr/bin/env python3
"""Fuzzes the REST API of a real `changewatch serve` with schemathesis, from its own
/api/v1/full-spec: generated and mutated bodies, parameters and call sequences (the spec's
links), checking that no request gets a 5xx, that schema-invalid input is refused, that the
answers match the documented statuses, and that the server is alive and stops cleanly after.

Run it inside a network namespace with only loopback (`unshare -n`, as the Rust test
`api_fuzz.rs` does): fuzzed watches point at arbitrary hosts, and the checkers would fetch them.

    CW_BIN=target/debug/changewatch CW_FUZZ_EXAMPLES=30 python3 api_fuzz.py

Environment: CW_BIN (required), CW_FUZZ_EXAMPLES (examples per operation, default 30),
CW_FUZZ_SEED (fixed seed; unset = random, printed), CW_FUZZ_REPORT (JUnit file to write).
"""

import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

KEY = "fuzz-api-key-0123456789abcdef"

# Checks of schemathesis this API is held to. Left out, with the reason:
# - positive_data_acceptance: the schema cannot say everything the server checks (a URL must
#   parse, a template must compile, a regex must be valid), so schema-valid bodies are refused.
# - response_schema_conformance / content_type_conformance: response bodies are described in
#   prose where upstream's are free-form (a watch's JSON, snapshot text, diff HTML).
# - use_after_free / ensure_resource_availability: DELETE /watch answers 400 for a missing
#   watch and GET /tag?recheck=... answers a status, as upstream does; the checks expect 404.
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "ignored_auth",
    "unsupported_method",
]


def api(base: str, method: str, path: str, body: object = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{base}{path}", data=data, method=method)
    req.add_header("x-api-key", KEY)
    if data is not None:
        req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


def serve_page(root: str) -> str:
    """A fixture site on loopback for the watch that gives the history endpoints real data."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=root, **kw)

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}"


def seed_history(base: str, site_root: str, site: str) -> tuple[str, list[str]]:
    """One watch with two snapshots, so history, snapshot and difference calls reach real data
    instead of 404s. Returns its uuid and snapshot timestamps."""
    page = os.path.join(site_root, "page.html")
    created = api(base, "POST", "/api/v1/watch", {"url": f"{site}/page.html", "title": "seed"})
    uuid = created["uuid"]
    for n, text in enumerate(["<p>first version</p>", "<p>second version</p><p>added</p>"]):
        with open(page, "w") as f:
            f.write(f"<html><body>{text}</body></html>")
        time.sleep(1.1)  # snapshots are keyed by the second
        api(base, "GET", f"/api/v1/watch/{uuid}?recheck=1")
        deadline = time.monotonic() + 60
        while len(api(base, "GET", f"/api/v1/watch/{uuid}/history")) < n + 1:
            if time.monotonic() > deadline:
                raise RuntimeError(f"seed watch never got snapshot {n + 1}")
            time.sleep(0.2)
    stamps = list(api(base, "GET", f"/api/v1/watch/{uuid}/history").keys())
    return uuid, stamps


def write_config(path: str, uuid: str, stamps: list[str]) -> None:
    """Schemathesis draws path parameters from these real values most of the time, and
    generates its own otherwise."""
    quoted = lambda vals: ", ".join(json.dumps(v) for v in vals)
    with open(path, "w") as f:
        f.write(
            f"""[dictionaries.watch]
values = [{quoted([uuid])}]

[dictionaries.stamps]
values = [{quoted(stamps + ["latest", "previous"])}]

[parameters]
"path.uuid" = {{ dictionary = "watch", probability = 0.6 }}
"path.timestamp" = {{ dictionary = "stamps", probability = 0.7 }}
"path.from" = {{ dictionary = "stamps", probability = 0.7 }}
"path.to" = {{ dictionary = "stamps", probability = 0.7 }}
"""
        )


def main() -> int:
    binary = os.environ["CW_BIN"]
    examples = os.environ.get("CW_FUZZ_EXAMPLES", "30")
    seed = os.environ.get("CW_FUZZ_SEED", "")
    report = os.environ.get("CW_FUZZ_REPORT", "")
    data = tempfile.mkdtemp(prefix="cw-api-fuzz-")
    env = dict(os.environ)
    env.update(
        {
            "DATASTORE_PATH": data,
            "API_ACCESS_TOKEN": KEY,
            "FETCH_WORKERS": "2",
            "LOG_LEVEL": "warn",
            # Fetches fail fast: the namespace has no route out, and loopback is where the
            # fixture site is (other loopback ports refuse at once).
            "DEFAULT_SETTINGS_REQUESTS_TIMEOUT": "5",
            # Refused connections are retried: without upstream's waits here. Browser
            # watches (html_webdriver) skip upstream's 5 s settle time.
            "REQUESTS_RETRY_BACKOFF_FACTOR": "0.01",
            "WEBDRIVER_DELAY_BEFORE_CONTENT_READY": "0",
            "ALLOW_PRIVATE_ADDRESSES": "true",
            "MINIMUM_SECONDS_RECHECK_TIME": "1",
        }
    )
    server = subprocess.Popen(
        [binary, "serve", "--host", "127.0.0.1", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr_lines: list[str] = []

    def drain() -> None:
        assert server.stderr is not None
        for line in server.stderr:
            stderr_lines.append(line.rstrip("\n"))

    threading.Thread(target=drain, daemon=True).start()
    assert server.stdout is not None
    first = server.stdout.readline().strip()
    prefix = "changewatch listening on "
    if not first.startswith(prefix):
        print(f"server did not start: {first!r}", file=sys.stderr)
        print("\n".join(stderr_lines[-20:]), file=sys.stderr)
        server.kill()
        return 1
    base = first[len(prefix):]
    threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()

    site_root = tempfile.mkdtemp(prefix="cw-api-fuzz-site-")
    uuid, stamps = seed_history(base, site_root, serve_page(site_root))
    config = os.path.join(data, "schemathesis.toml")
    write_config(config, uuid, stamps)
    print(f"api fuzz: seeded watch {uuid} with snapshots {stamps}")

    cmd = [
        sys.executable,
        "-c",
        # Binary request bodies (backup files, upstream's backup zip) are sent as the bytes
        # schemathesis generates for `format: binary`: it has serializers only for the
        # octet-stream and image media types.
        "import sys, schemathesis\n"
        "from schemathesis.transport.serialization import serialize_binary\n"
        "schemathesis.serializer('application/zip', 'application/zstd')"
        "(lambda ctx, value: serialize_binary(value))\n"
        "from schemathesis.cli import schemathesis as cli\n"
        "sys.exit(cli())",
        "--config-file",
        config,
        "run",
        f"{base}/api/v1/full-spec",
        "--header",
        f"x-api-key: {KEY}",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        examples,
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--suppress-health-check",
        "all",
        "--no-color",
    ]
    if seed:
        cmd += ["--seed", seed]
    if report:
        cmd += ["--report", "junit", "--report-junit-path", report]
    started = time.monotonic()
    fuzz = subprocess.run(cmd, env=dict(os.environ, SCHEMATHESIS_HOOKS=""))
    took = time.monotonic() - started
    print(f"api fuzz: schemathesis exited {fuzz.returncode} after {took:.0f} s")

    failures = []
    if fuzz.returncode != 0:
        failures.append(f"schemathesis reported failures (exit {fuzz.returncode})")
    if server.poll() is not None:
        failures.append(f"the server died during the run (exit {server.returncode})")
    else:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=30)
            if code != 0:
                failures.append(f"the server exited {code} on SIGTERM")
        except subprocess.TimeoutExpired:
            server.kill()
            failures.append("the server did not stop within 30 s of SIGTERM")
    time.sleep(0.2)
    panics = [line for line in stderr_lines if "panicked" in line]
    if panics:
        failures.append("the server panicked:\n  " + "\n  ".join(panics[:10]))
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(site_root, ignore_errors=True)
    for f in failures:
        print(f"FAIL: {f}", file=sys.stderr)
    if failures:
        print("server log tail:\n" + "\n".join(stderr_lines[-30:]), file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
