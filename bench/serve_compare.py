#!/usr/bin/env python3
"""`make bench-serve`: changewatch serve and upstream changedetection.io checking the same pages.

One after the other on this machine, each server is started with a fresh datastore and
FETCH_WORKERS workers, given N watches on generated ~46 KB news pages served by a fixture
server (a separate process, not measured), and driven through the same REST API v1 calls:

  first      the watches are created: every one is checked for the first time
  changed    every page changes, then GET /api/v1/watch?recheck_all=1
  10pct      one page in ten changes, then recheck_all
  unchanged  no page changes, then recheck_all

A round ends when every watch's `last_checked` is at or after the round's start (seconds);
the driver first waits until the fixture has answered N requests, then polls the watch list
twice a second, so the polling costs the servers a few list calls per round. For each round it
prints the CPU time of the server's whole process tree (utime + stime of the server and its
live descendants, and of the children each of them has reaped) per check, checks per second
(wall time), and the peak memory of the tree (sampled every 100 ms: the sum of RSS, and of
PSS, which counts pages shared between the server and its sandbox children once). It also
checks the work was real: after a round where k pages changed, k watches should have a new
`last_changed` (a difference is printed as a warning and kept in the JSON as changed_seen /
changed_expected). bench/browser_compare.py reuses the fixture, the measurements and the
server start from here.

Env: CW_BIN (target/release/changewatch), CDIO_VENV (/tmp/cdio-venv, made by the Makefile
target), N (500), WORKERS (10), VALIDATORS (1: the fixture sends ETag and Last-Modified and
answers conditional requests, as a static file server does; 0: it does not), ONLY
(changewatch | upstream), OUT (target/bench-serve.json), BASELINE_BIN (a second changewatch
binary to run as a third column, e.g. the previous commit's build), PERF_ROUND (a round's name:
`perf record` the server's processes during it; the extra CPU perf takes shows in that
round's figures; PERF_EVENTS: what it records, cpu-clock), SMAPS_DIR (copies each process's /proc/<pid>/smaps there at the end), IDLE_S (5:
the tree's memory is read again this long after the last round), REPEAT (1: runs each
server this many times, alternating their order, and reports the median of each figure), COLD (1:
each server's files are dropped from the page cache before it starts, see `drop_cached`; 0: not),
STOP (kill: each server is stopped with SIGKILL instead of SIGTERM).
"""

import json
import hashlib
import multiprocessing
import os
import pathlib
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = pathlib.Path(__file__).resolve().parent.parent
ROUNDS = [("first", None), ("changed", 1.0), ("10pct", 0.1), ("unchanged", 0.0)]
CLK_TCK = os.sysconf("SC_CLK_TCK")
IDLE_S = float(os.environ.get("IDLE_S", "5"))


# ---- the pages ----------------------------------------------------------------------------

WORDS = (
    "market city council report weather river school festival budget vote station museum "
    "harbour league season transport housing energy garden library bridge election review"
).split()


def page(i: int, version: int) -> bytes:
    """A news front page of ~46 KB: head, navigation, 60 stories with prices, ads, footer.
    `version` changes every 7th story's price, as a real edit would."""
    rnd = random.Random(i)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Daily {i}</title><style>body{{font-family:sans-serif}}.ad{{color:red}}</style>",
        "<script>window.analytics={track:function(){}};</script></head><body>",
        "<nav><ul>" + "".join(f"<li><a href='/s/{k}'>Section {k}</a></li>" for k in range(12)) + "</ul></nav>",
        "<main>",
    ]
    for k in range(60):
        words = " ".join(rnd.choice(WORDS) for _ in range(76))
        price = rnd.randint(5, 500) + (version if k % 7 == 0 else 0)
        parts.append(
            f"<article id='s{k}'><h2><a href='/story/{i}/{k}'>Story {k}: {rnd.choice(WORDS)} "
            f"{rnd.choice(WORDS)}</a></h2><p class='meta'>By Reporter {k % 9} · "
            f"<time>2026-12-0{1 + k % 5}</time></p><p>{words}.</p>"
            f"<p class='price'>Price: ${price}.00</p></article>"
        )
        if k % 10 == 5:
            parts.append(f"<div class='ad'><img src='/ad/{k}.png' alt='ad'>Buy now {k}</div>")
    parts.append("</main><footer><p>© Daily</p><p>visitors: 12345</p></footer></body></html>")
    return "".join(parts).encode()


def fixture(port_out, versions, served, validators: bool, ready, make_page=page, nodelay=False):
    """The page server (its own process, so its CPU is not the servers'). Pages are generated
    once per (page, version) by `make_page(i, version)` and kept; `served` counts the pages
    answered (a request for anything else, such as an image, is a 404 and not counted).
    `nodelay`: TCP_NODELAY on each connection. Without it (as this script has always run) a
    reply's head and body are two writes, and Nagle holds the body's last segment until the
    client's delayed ACK: ~40 ms of wall time per full page, no CPU."""
    cache = {}
    boot = formatdate(time.time() - 86400, usegmt=True)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def setup(self):
            super().setup()
            if nodelay:
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self):
            try:
                i = int(self.path.strip("/").split("/")[-1])
            except ValueError:
                try:
                    self.send_error(404)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # a browser that closed its page before this image's reply
                return
            v = versions[i]
            body = cache.get((i, v))
            if body is None:
                body = cache[(i, v)] = make_page(i, v)
            etag = '"%s"' % hashlib.md5(body).hexdigest()[:16]
            with served.get_lock():
                served.value += 1
            if validators and self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            if validators:
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", boot)
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_out.value = server.server_address[1]
    ready.set()
    server.serve_forever()


# ---- process tree measurements ------------------------------------------------------------

def children_of() -> dict:
    kids = {}
    for d in pathlib.Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d.name))
    return kids


def tree(pid: int) -> list:
    kids = children_of()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of the tree, plus the children each process of it has reaped (cutime +
    cstime): a sandbox child reaped by the server, and a grandchild reaped by its own parent
    (Chromium's renderers, reaped by Chromium's processes, not by the server). A live process
    is in no one's cutime, so nothing counts twice; only a process that leaves the tree alive
    (re-parented to init) is lost."""
    return sum(cpu_by(pid).values())


def cpu_by(pid: int, group=lambda p, comm: comm) -> dict:
    """`cpu_seconds` split by `group(pid, command name)` of the process that used the CPU or
    reaped the one that did (by default the command name)."""
    ticks = {}
    for p in tree(pid):
        try:
            stat = open(f"/proc/{p}/stat").read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        f = stat.rsplit(")", 1)[1].split()
        # fields after the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
        key = group(p, comm)
        ticks[key] = ticks.get(key, 0) + int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return {key: t / CLK_TCK for key, t in ticks.items()}


def breakdown(pid: int) -> list:
    """Each process of the tree: pid, command, RSS and PSS (kB), and the main one's VmHWM."""
    out = []
    for p in tree(pid):
        try:
            comm = open(f"/proc/{p}/comm").read().strip()
            roll = {l.split(":")[0]: int(l.split()[1]) for l in open(f"/proc/{p}/smaps_rollup")
                    if l.split(":")[0] in ("Rss", "Pss", "Private_Dirty")}
            hwm = next((int(l.split()[1]) for l in open(f"/proc/{p}/status")
                        if l.startswith("VmHWM")), 0)
        except OSError:
            continue
        if os.environ.get("SMAPS_DIR"):
            dest = pathlib.Path(os.environ["SMAPS_DIR"])
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f"/proc/{p}/smaps", dest / f"{comm}-{p}.smaps")
        out.append({"pid": p, "comm": comm, "rss_kb": roll.get("Rss", 0),
                    "pss_kb": roll.get("Pss", 0), "private_dirty_kb": roll.get("Private_Dirty", 0),
                    "hwm_kb": hwm})
    return out


def memory_kb(pid: int, pids=None) -> tuple:
    """The sum of RSS and of PSS (kB) over the tree of `pid` (or over `pids`)."""
    rss = pss = 0
    for p in (tree(pid) if pids is None else pids):
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss, pss


class Sampler(threading.Thread):
    """Every `interval` seconds (100 ms): the tree's RSS and PSS (peaks kept), and which
    processes it holds (the most processes at once, and the most of each command name)."""

    def __init__(self, pid, interval=0.1):
        super().__init__(daemon=True)
        self.pid, self.stop, self.peak_rss, self.peak_pss = pid, threading.Event(), 0, 0
        self.interval = interval
        self.peak_procs, self.peak_by_comm = 0, {}

    def run(self):
        while not self.stop.is_set():
            pids = tree(self.pid)
            rss, pss = memory_kb(self.pid, pids)
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self.peak_procs = max(self.peak_procs, len(pids))
            by_comm = {}
            for p in pids:
                try:
                    comm = open(f"/proc/{p}/comm").read().strip()
                except OSError:
                    continue
                by_comm[comm] = by_comm.get(comm, 0) + 1
            for comm, k in by_comm.items():
                self.peak_by_comm[comm] = max(self.peak_by_comm.get(comm, 0), k)
            self.stop.wait(self.interval)


# ---- the servers --------------------------------------------------------------------------

def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self, label, argv, env, work, new_session=False):
        """`new_session`: the server leads a session of its own, so every process it starts
        can be found by its session id even if it leaves the tree (see `escaped`)."""
        self.label, self.work = label, work
        self.log = open(work / "server.log", "w")
        self.proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, cwd=work,
                                     start_new_session=new_session)
        self.base = self.key = None

    def api(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method, headers={
            "x-api-key": self.key, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
        return json.loads(raw) if raw.strip() else None

    def stop(self):
        if self.proc.poll() is None:
            # STOP=kill: no shutdown, so a sandbox child is not killed by its server but
            # leaves on its own, as bench/symbol_order.py needs to read its profile.
            self.proc.send_signal(signal.SIGKILL if os.environ.get("STOP") == "kill"
                                  else signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def drop_cached(*roots):
    """Evicts the clean page-cache pages of these files (every file under a directory) that
    no process maps, so that each server starts from the same state, as after a boot. How much
    of a mapped file a process's RSS counts depends on how its pages came into the cache: this
    kernel (6.18, ext4 large folios) maps a large folio whole on a fault, readahead here is
    8 MB, and a file just written by the linker or `cp` sits in the cache in large folios.
    Without this, one binary's text RSS moved by ~5 MB between runs. COLD=0 skips it."""
    if os.environ.get("COLD", "1") == "0":
        return
    for root in roots:
        root = pathlib.Path(root)
        files = [root] if root.is_file() else (p for p in root.rglob("*") if p.is_file())
        for f in files:
            try:
                fd = os.open(f, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def start_changewatch(label, binary, work, workers, extra_env=None, new_session=False) -> Server:
    key = "bench-%d" % random.randrange(1 << 30)
    env = {"ALLOW_PRIVATE_ADDRESSES": "true", "API_ACCESS_TOKEN": key,
           "DATASTORE_PATH": str(work / "store"), "CHANGEDETECTION_HOST": "127.0.0.1",
           "CHANGEDETECTION_PORT": "0", "FETCH_WORKERS": str(workers), "LOG_LEVEL": "warn",
           **(extra_env or {})}
    drop_cached(binary)
    s = Server(label, [binary, "serve"], env, work, new_session=new_session)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = s.proc.stdout.readline()
        if "listening on http://127.0.0.1:" in line:
            port = int(line.split("127.0.0.1:")[1].split()[0].strip("/"))
            s.base, s.key = f"http://127.0.0.1:{port}", key
            threading.Thread(target=s.proc.stdout.read, daemon=True).start()
            return s
        if s.proc.poll() is not None:
            break
    s.stop()
    raise SystemExit(f"{label} did not start: see {work}/server.log")


def start_upstream(venv, work, workers) -> Server:
    port = free_port()
    env = {"ALLOW_IANA_RESTRICTED_ADDRESSES": "true", "FETCH_WORKERS": str(workers)}
    argv = [f"{venv}/bin/python", f"{venv}/bin/changedetection.py", "-d", str(work / "store"),
            "-C", "-p", str(port), "-h", "127.0.0.1", "-l", "WARNING"]
    home = next((l.split("=", 1)[1].strip() for l in open(f"{venv}/pyvenv.cfg")
                 if l.startswith("home")), None)
    drop_cached(venv, *([pathlib.Path(home).parent] if home else []))
    s = Server("upstream", argv, env, work)
    s.base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline and s.key is None:
        if s.proc.poll() is not None:
            break
        for name in ("changedetection.json", "url-watches.json"):
            p = work / "store" / name
            try:
                app = json.loads(p.read_text()).get("settings", {}).get("application", {})
                s.key = app.get("api_access_token") or None
            except (OSError, ValueError):
                pass
            if s.key:
                break
        time.sleep(0.2)
    while s.key and time.time() < deadline:
        try:
            s.api("GET", "/api/v1/watch")
            # A fresh upstream datastore starts with example watches: not part of the run.
            for uuid in list(s.api("GET", "/api/v1/watch") or {}):
                s.api("DELETE", f"/api/v1/watch/{uuid}")
            return s
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    s.stop()
    raise SystemExit(f"upstream did not start: see {work}/server.log")


# ---- one run ------------------------------------------------------------------------------

def wait_round(server, n, since, served, timeout=900) -> tuple:
    """Waits for the fixture to have answered n requests, then for every watch to be checked
    at or after `since`. Returns (list of watches, polls made)."""
    deadline = time.time() + timeout
    while served.value < n and time.time() < deadline:
        time.sleep(0.05)
    polls = 0
    while time.time() < deadline:
        watches = server.api("GET", "/api/v1/watch") or {}
        polls += 1
        done = sum(1 for w in watches.values() if (w.get("last_checked") or 0) >= since)
        if len(watches) >= n and done >= n:
            return watches, polls
        time.sleep(0.5)
    raise SystemExit(f"{server.label}: round did not finish within {timeout} s "
                     f"({served.value} pages served)")


def next_second() -> int:
    """Sleeps to the next whole second and returns it: checks started from now on have a
    `last_checked` at or after it."""
    now = time.time()
    time.sleep(int(now) + 1 - now + 0.01)
    return int(now) + 1


def start_perf(server, name):
    """PERF_ROUND=<round>: records the server's process tree as it is at the round's start
    (the server and its warm sandbox children) with perf during that round, to
    target/perf-<label>-<round>.data (read with `perf report -i ...`). PERF_EVENTS (cpu-clock)
    names other events to record instead (with call graphs too), e.g. uprobes made with `perf probe`
    on SQLite's `pagerWalFrames` to count commits."""
    if os.environ.get("PERF_ROUND") != name:
        return None
    out = ROOT / f"target/perf-{server.label}-{name}.data"
    events = os.environ.get("PERF_EVENTS", "cpu-clock")
    graph = ["--call-graph", "dwarf,16000"]
    proc = subprocess.Popen(["perf", "record", "-q", "-e", events, *graph, "-p", ",".join(map(str, tree(server.proc.pid))), "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc


def stop_perf(proc):
    if proc is not None:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)


def run(server, n, fixture_port, versions, served) -> dict:
    sampler = Sampler(server.proc.pid)
    sampler.start()
    results = {}
    rnd = random.Random(7)
    try:
        for name, share in ROUNDS:
            with served.get_lock():
                served.value = 0
            if share:
                for i in rnd.sample(range(n), int(n * share)):
                    versions[i] += 1
            since = next_second()
            perf = start_perf(server, name)
            cpu0, t0 = cpu_seconds(server.proc.pid), time.time()
            if name == "first":
                for i in range(n):
                    server.api("POST", "/api/v1/watch",
                               {"url": f"http://127.0.0.1:{fixture_port}/p/{i}",
                                "title": f"page {i}"})
            else:
                server.api("GET", "/api/v1/watch?recheck_all=1")
            watches, polls = wait_round(server, n, since, served)
            wall, cpu = time.time() - t0, cpu_seconds(server.proc.pid) - cpu0
            stop_perf(perf)
            changed = sum(1 for w in watches.values() if (w.get("last_changed") or 0) >= since)
            expect = n if name == "first" else int(n * share)
            errors = [w.get("last_error") for w in watches.values() if w.get("last_error")]
            results[name] = {
                "checks": n, "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
                "cpu_ms_per_check": round(cpu * 1000 / n, 3),
                "checks_per_s": round(n / wall, 1), "changed_seen": changed,
                "changed_expected": expect, "polls": polls, "errors": errors[:3],
                "rss_kb_after": memory_kb(server.proc.pid)[0],
            }
            print(f"  {server.label} {name}: {results[name]}", file=sys.stderr)
            if errors:
                raise SystemExit(f"{server.label}: {len(errors)} watches failed: {errors[:3]}")
            if name != "first" and changed != expect:
                # Reported, not fatal: the figures stand, and the JSON says how many.
                print(f"  warning: {server.label} {name}: {changed} changes seen, {expect} "
                      "made", file=sys.stderr)
        results["processes_at_end"] = breakdown(server.proc.pid)
        # What the tree keeps once the checks are over: changewatch's pool trims the heap
        # after 2 s without a running check; upstream has nothing of the kind.
        time.sleep(IDLE_S)
        results["idle_rss_kb"], results["idle_pss_kb"] = memory_kb(server.proc.pid)
    finally:
        sampler.stop.set()
        sampler.join()
    results["peak_rss_kb"], results["peak_pss_kb"] = sampler.peak_rss, sampler.peak_pss
    return results


def warn_if_layout_is_stale(binary):
    """The release build lays its functions out by crates/cli/symbol-order.txt, whose names
    carry each crate's hash: a dependency added to a crate renames all of its functions, the
    list no longer matches, and the server's resident text grows (+8 MB of peak tree RSS at
    5,000 watches when it happened). Say so before measuring such a build."""
    order = ROOT / "crates/cli/symbol-order.txt"
    try:
        listed = set(order.read_text().split())
        names = subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return
    present = {line.split()[-1] for line in names.splitlines() if line.strip()}
    found = len(listed & present)
    if listed and found < 0.9 * len(listed):
        print(f"# warning: {binary} has {found} of symbol-order.txt's {len(listed)} functions; "
              "run `make symbol-order` before measuring memory", file=sys.stderr)


def main():
    n = int(os.environ.get("N", "500"))
    workers = int(os.environ.get("WORKERS", "10"))
    only = os.environ.get("ONLY", "")
    out = pathlib.Path(os.environ.get("OUT", ROOT / "target/bench-serve.json"))
    venv = os.environ.get("CDIO_VENV", "/tmp/cdio-venv")
    cw_bin = os.environ.get("CW_BIN", str(ROOT / "target/release/changewatch"))
    servers = []
    for binary in (cw_bin, os.environ.get("BASELINE_BIN")):
        if binary and only != "upstream":
            warn_if_layout_is_stale(binary)
    if only in ("", "changewatch"):
        servers.append(("changewatch", lambda w: start_changewatch("changewatch", cw_bin, w, workers)))
    if os.environ.get("BASELINE_BIN"):
        b = os.environ["BASELINE_BIN"]
        servers.append(("baseline", lambda w: start_changewatch("baseline", b, w, workers)))
    if only in ("", "upstream"):
        servers.append(("upstream", lambda w: start_upstream(venv, w, workers)))

    results = {"n": n, "workers": workers, "validators": os.environ.get("VALIDATORS", "1") != "0",
               "page_bytes": len(page(0, 0)), "date": time.strftime("%Y-%m-%d %H:%M"),
               "cpus": os.cpu_count(), "servers": {}}
    repeat = max(1, int(os.environ.get("REPEAT", "1")))
    runs = {label: [] for label, _ in servers}
    for rep in range(repeat):
        # Alternating order, so that neither server always runs on a warmer machine.
        for label, start in (servers if rep % 2 == 0 else servers[::-1]):
            runs[label].append(run_server(label, start, n, workers, results["validators"]))
    for label, rs in runs.items():
        results["servers"][label] = median_of(rs)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    report(results)


def run_server(label, start, n, workers, validators) -> dict:
    versions = multiprocessing.Array("l", n, lock=False)
    served = multiprocessing.Value("l", 0)
    port, ready = multiprocessing.Value("i", 0), multiprocessing.Event()
    fx = multiprocessing.Process(target=fixture, daemon=True,
                                 args=(port, versions, served, validators, ready))
    fx.start()
    ready.wait(10)
    work = pathlib.Path(tempfile.mkdtemp(prefix=f"bench-serve-{label}-"))
    server = start(work)
    print(f"# {label}: pid {server.proc.pid}, {n} watches, {workers} workers", file=sys.stderr)
    try:
        return run(server, n, port.value, versions, served)
    finally:
        server.stop()
        fx.terminate()
        shutil.rmtree(work, ignore_errors=True)
        time.sleep(2)


def median_of(rs: list) -> dict:
    """One server's runs (REPEAT): the first run's record with each figure replaced by the
    median over the runs; every run's record is kept under `runs`."""
    if len(rs) == 1:
        return rs[0]
    med = lambda xs: sorted(xs)[len(xs) // 2]
    out = dict(rs[0])
    for name, _ in ROUNDS:
        out[name] = dict(rs[0][name])
        for k in ("cpu_ms_per_check", "checks_per_s", "cpu_s", "wall_s"):
            out[name][k] = med([r[name][k] for r in rs])
    for k in ("peak_rss_kb", "peak_pss_kb", "idle_rss_kb", "idle_pss_kb"):
        out[k] = med([r[k] for r in rs])
    out["runs"] = rs
    return out


def report(results):
    s = results["servers"]
    labels = list(s)
    print(f"\n{results['n']} watches, {results['workers']} workers, pages of "
          f"{results['page_bytes'] / 1000:.0f} KB, validators "
          f"{'on' if results['validators'] else 'off'}, {results['cpus']} CPUs, {results['date']}")
    head = "| round | " + " | ".join(f"{l} CPU/check | {l} checks/s" for l in labels)
    if "upstream" in s:
        head += " | " + " | ".join(f"upstream ÷ {l}" for l in labels if l != "upstream")
    print(head + " |")
    print("|---" * (1 + 2 * len(labels) + (len(labels) - 1 if "upstream" in s else 0)) + "|")
    for name, _ in ROUNDS:
        row = [name]
        for l in labels:
            r = s[l][name]
            row += [f"{r['cpu_ms_per_check']:.2f} ms", f"{r['checks_per_s']:.0f}"]
        if "upstream" in s:
            up = s["upstream"][name]["cpu_ms_per_check"]
            for l in labels:
                if l != "upstream":
                    mine = s[l][name]["cpu_ms_per_check"]
                    row.append(f"{up / mine:.1f}×" if mine else "-")
        print("| " + " | ".join(row) + " |")
    for key, title in (("peak_rss_kb", "peak RSS (tree)"), ("peak_pss_kb", "peak PSS (tree)"),
                       ("idle_rss_kb", f"RSS (tree) {IDLE_S:g} s after the last round"),
                       ("idle_pss_kb", f"PSS (tree) {IDLE_S:g} s after the last round")):
        row = [title] + sum(([f"{s[l][key] / 1024:.1f} MB", ""] for l in labels), [])
        if "upstream" in s:
            up = s["upstream"][key]
            row += [f"{s[l][key] / up:.2f} of upstream" for l in labels if l != "upstream"]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
