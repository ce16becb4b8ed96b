#!/usr/bin/env python3
"""`make bench-browser`: what a browser check costs against a plain check, in one server build.

Two runs of the release `changewatch serve` (CW_BIN), each started here on 127.0.0.1 with its
own temporary datastore and the same FETCH_WORKERS, check N watches of the same fixture pages:

  plain    every watch `"fetch_backend": "html_requests"` (the HTTP fetcher)
  browser  every watch `"fetch_backend": "html_webdriver"`: a local Chromium the server
           launches (/usr/bin/chromium, or CW_CHROME_PATH; PLAYWRIGHT_DRIVER_URL is removed
           from the environment, so no remote browser is used), a context per check

Each run goes through three rounds, as bench/serve_compare.py's (whose fixture server, server
start, API calls, round wait and process-tree measurements this reuses):

  first      the N watches are created: each is checked for the first time (the browser run's
             first round includes starting Chromium)
  changed    every page changes, then GET /api/v1/watch?recheck_all=1
  unchanged  no page changes, then recheck_all (the plain fetcher gets a 304 from the
             fixture's validators; a browser context starts without a cache and loads it all)

The fixture sets TCP_NODELAY (serve_compare's does not: there a full page waits ~40 ms for
the client's delayed ACK, which would be most of a plain check's wall time here).

The page: serve_compare's ~46 KB news page (every 7th story's price moves with the page's
version) plus one line that only its script writes, `js-rendered page <i> edition <v>` (the
script joins the words, so "js-rendered" is nowhere in the HTML). Both fetchers get the same
bytes and process the same 46 KB of text; the browser also requests the page's six ad images
(404s from the fixture, each vetted by the browser fetcher's address guard) and takes the full-page
screenshot every browser check takes.

For each round and fetcher: the median and 90th percentile of the watches' `fetch_time` (the
fetcher's wall time for one check: for the browser from waiting for a page slot through the
context, the load, the DOM and the screenshot), the round's wall time and checks per second,
and the CPU time per check of the server's whole process tree (Chromium's processes are the
server's descendants; the renderers that end are counted through the cutime of the zygote that
reaps them), split into changewatch's processes and Chromium's (by `--type` in the JSON).
For each run: the peak RSS and PSS of the tree (sampled every SAMPLE_MS) and the most
processes in it. Then browser ÷ plain. Not counted: Chromium's two crash handlers
(chrome_crashpad_handler, ~4 MB RSS each, idle), which detach themselves from the tree and
the session at launch and exit with the browser.

The run fails, instead of printing figures of the wrong thing, unless: every watch was checked
without error in every round; every browser snapshot holds the script's line and the stories'
text, and no plain snapshot holds the script's line; Chromium processes were in the browser
run's tree and none in the plain run's; a browser screenshot is served; and no process the
server started left its tree (the server leads a session of its own: a process of that session
outside the tree would be uncounted CPU and memory).

Bounded: N ≤ 500, a round gives up after ROUND_TIMEOUT seconds; everything is on 127.0.0.1.

Env: CW_BIN (target/release/changewatch), N (50), WORKERS (4: the browser fetcher runs at most
min(FETCH_WORKERS, 4) pages at once, so 4 puts the same number of checks in flight for both
fetchers), SETTLE (0: WEBDRIVER_DELAY_BEFORE_CONTENT_READY, the seconds every browser check
waits after the page's load; the product's default is 5, which adds that much idle wall time
to every browser check), SCREENSHOT_MAX_HEIGHT (unset: the product's 20000; 0: no
screenshots, to see what they cost), VALIDATORS (1, as serve_compare), REPEAT (1: runs each
fetcher this many times, alternating their order, and reports medians), ROUND_TIMEOUT (300),
ONLY (plain | browser: one fetcher, figures in the JSON only), SAMPLE_MS (250: the memory
sampler's period; its reads of /proc cost this driver CPU, reported per round beside the whole
machine's, `driver_cpu_s` / `machine_busy_s`), OUT (target/bench-browser.json).
"""

import json
import multiprocessing
import os
import pathlib
import shutil
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import serve_compare as sc  # noqa: E402

ROOT = sc.ROOT
ROUNDS = [("first", None), ("changed", 1.0), ("unchanged", 0.0)]
BACKENDS = [("plain", "html_requests"), ("browser", "html_webdriver")]
MARK = "js-rendered"
STATIC = "Story 0:"
N_MAX = 500
SAMPLE_MS = int(os.environ.get("SAMPLE_MS", "250"))


def js_page(i: int, version: int) -> bytes:
    """serve_compare's page plus a line only its script writes (see the module's text)."""
    html = sc.page(i, version).decode()
    live = ("<p id='live'></p><script>document.getElementById('live').textContent="
            f"['js','rendered'].join('-')+' page {i} edition '+({version}+1);</script>")
    return html.replace("</main>", live + "</main>", 1).encode()


def role(pid: int, comm: str) -> str:
    """Whose CPU it is: the server's own processes (the server and its sandbox children), or
    Chromium's by its `--type` (no type: the browser process; renderers that ended are
    counted in the zygote that reaped them)."""
    if "chrom" not in comm.lower():
        return "server"
    try:
        # Chromium rewrites its command line as one space-separated string.
        args = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode().split()
    except OSError:
        return "chromium"
    kind = next((a[7:] for a in args if a.startswith("--type=")), "browser")
    if kind == "utility":
        sub = next((a.split("=", 1)[1] for a in args if a.startswith("--utility-sub-type=")), "")
        kind = "utility " + sub.rsplit(".", 1)[-1]
    return "chromium " + kind


def cpu_split(pid: int) -> dict:
    """CPU seconds of the tree by `role`, Chromium's roles summed too."""
    by = sc.cpu_by(pid, role)
    by["chromium (all)"] = sum(v for k, v in by.items() if k.startswith("chromium"))
    return by


def machine_busy() -> float:
    """Seconds the machine's CPUs were busy since boot (user, nice, system, irq, softirq,
    steal), from /proc/stat."""
    f = open("/proc/stat").readline().split()[1:]
    return sum(int(f[k]) for k in (0, 1, 2, 5, 6, 7)) / sc.CLK_TCK


def own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def loadavg() -> str:
    return open("/proc/loadavg").read().strip()


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0


def escaped(server) -> list:
    """Processes of the server's session that are not in its tree (re-parented away)."""
    inside, out = set(sc.tree(server.proc.pid)), []
    for d in pathlib.Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) in inside:
            continue
        try:
            f = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(f[3]) == server.proc.pid:  # session id
            out.append(int(d.name))
    return out


def verify(server, uuids, backend) -> dict:
    """Reads every watch's newest snapshot: the script's line must be there exactly when the
    browser fetched it, the stories' text always. Outside the measured rounds."""
    with_mark = with_static = 0
    for uuid in uuids:
        history = server.api("GET", f"/api/v1/watch/{uuid}/history") or {}
        latest = max(history, key=int)
        req = sc.urllib.request.Request(f"{server.base}/api/v1/watch/{uuid}/history/{latest}",
                                        headers={"x-api-key": server.key})
        with sc.urllib.request.urlopen(req, timeout=60) as r:
            text = r.read().decode()
        with_mark += MARK in text
        with_static += STATIC in text
    out = {"snapshots": len(uuids), "with_js_text": with_mark, "with_static_text": with_static}
    req = sc.urllib.request.Request(f"{server.base}/api/v1/watch/{uuids[0]}/screenshot",
                                    headers={"x-api-key": server.key})
    try:
        with sc.urllib.request.urlopen(req, timeout=60) as r:
            out["screenshot"] = f"{r.headers.get('Content-Type')}, {len(r.read())} bytes"
    except sc.urllib.error.HTTPError as e:
        out["screenshot"] = None if e.code == 404 else f"HTTP {e.code}"
    return out


def run(server, backend, fetch_backend, n, fixture_port, versions, served, timeout) -> dict:
    sampler = sc.Sampler(server.proc.pid, SAMPLE_MS / 1000)
    sampler.start()
    results, uuids = {}, []
    try:
        for name, share in ROUNDS:
            with served.get_lock():
                served.value = 0
            if share:
                for i in range(n):
                    versions[i] += 1
            since = sc.next_second()
            split0, t0 = cpu_split(server.proc.pid), time.time()
            busy0, own0 = machine_busy(), own_cpu()
            if name == "first":
                for i in range(n):
                    made = server.api("POST", "/api/v1/watch", {
                        "url": f"http://127.0.0.1:{fixture_port}/p/{i}", "title": f"page {i}",
                        "fetch_backend": fetch_backend})
                    uuids.append(made["uuid"])
            else:
                server.api("GET", "/api/v1/watch?recheck_all=1")
            watches, polls = sc.wait_round(server, n, since, served, timeout)
            wall, split1 = time.time() - t0, cpu_split(server.proc.pid)
            split = {k: round(v - split0.get(k, 0.0), 2) for k, v in split1.items()}
            cpu = split.get("server", 0.0) + split.get("chromium (all)", 0.0)
            busy, own = machine_busy() - busy0, own_cpu() - own0
            # Read after the round's figures are taken: not part of them.
            errors = [w.get("last_error") for w in watches.values() if w.get("last_error")]
            if errors:
                raise SystemExit(f"{backend} {name}: {len(errors)} watches failed: {errors[:3]}")
            docs = [server.api("GET", f"/api/v1/watch/{u}") for u in uuids]
            wrong = {d.get("fetch_backend") for d in docs} - {fetch_backend}
            if wrong:
                raise SystemExit(f"{backend}: watches with fetch_backend {wrong}")
            fetch = [float(d.get("fetch_time") or 0) for d in docs]
            changed = sum(1 for w in watches.values() if (w.get("last_changed") or 0) >= since)
            # A first check records a baseline, not a change.
            expect = 0 if name == "first" else int(n * share)
            results[name] = {
                "checks": n, "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
                "cpu_ms_per_check": round(cpu * 1000 / n, 2),
                "wall_ms_per_check": round(wall * 1000 / n, 2),
                "checks_per_s": round(n / wall, 2),
                "fetch_ms_median": round(percentile(fetch, 0.5) * 1000, 1),
                "fetch_ms_p90": round(percentile(fetch, 0.9) * 1000, 1),
                "cpu_ms_per_check_server": round(split.get("server", 0.0) * 1000 / n, 2),
                "cpu_ms_per_check_chromium": round(split.get("chromium (all)", 0.0) * 1000 / n, 2),
                "cpu_s_by_role": split,
                # The CPU of the whole machine in the round, and of this driver (its polling
                # and the memory sampler's reads of /proc): what ran beside the tree.
                "machine_busy_s": round(busy, 2), "driver_cpu_s": round(own, 2),
                "changed_seen": changed, "changed_expected": expect, "polls": polls,
                "rss_kb_after": sc.memory_kb(server.proc.pid)[0],
            }
            print(f"  {backend} {name}: {results[name]}", file=sys.stderr)
            if name != "first" and changed != expect:
                print(f"  warning: {backend} {name}: {changed} changes seen, {expect} made",
                      file=sys.stderr)
        results["processes_at_end"] = sc.breakdown(server.proc.pid)
        results["escaped"] = escaped(server)
        results["verified"] = verify(server, uuids, backend)
    finally:
        sampler.stop.set()
        sampler.join()
    results["peak_rss_kb"], results["peak_pss_kb"] = sampler.peak_rss, sampler.peak_pss
    results["peak_procs"], results["peak_by_comm"] = sampler.peak_procs, sampler.peak_by_comm
    check(backend, results, n)
    return results


def check(backend, r, n):
    """The run measured what it says (see the module's text), or it fails."""
    v, problems = r["verified"], []
    chromium = sum(k for comm, k in r["peak_by_comm"].items() if "chrom" in comm.lower())
    if v["with_static_text"] != n:
        problems.append(f"{v['with_static_text']} of {n} snapshots hold the stories' text")
    if backend == "browser":
        if v["with_js_text"] != n:
            problems.append(f"{v['with_js_text']} of {n} snapshots hold the script's line")
        if not chromium:
            problems.append("no Chromium process in the server's tree")
        if os.environ.get("SCREENSHOT_MAX_HEIGHT") != "0" and \
                not (v["screenshot"] or "").startswith("image/"):
            problems.append(f"no screenshot served ({v['screenshot']})")
    else:
        if v["with_js_text"]:
            problems.append(f"{v['with_js_text']} plain snapshots hold the script's line")
        if chromium:
            problems.append(f"{chromium} Chromium processes in the plain run's tree")
    if r["escaped"]:
        problems.append(f"processes {r['escaped']} left the server's tree (uncounted)")
    if problems:
        raise SystemExit(f"{backend}: not measuring what it should: " + "; ".join(problems))
    r["chromium_procs_peak"] = chromium


def run_backend(backend, fetch_backend, cw_bin, n, workers, settle, validators, timeout):
    versions = multiprocessing.Array("l", n, lock=False)
    served = multiprocessing.Value("l", 0)
    port, ready = multiprocessing.Value("i", 0), multiprocessing.Event()
    fx = multiprocessing.Process(target=sc.fixture, daemon=True,
                                 args=(port, versions, served, validators, ready, js_page, True))
    fx.start()
    ready.wait(10)
    work = pathlib.Path(tempfile.mkdtemp(prefix=f"bench-browser-{backend}-"))
    server = sc.start_changewatch(
        backend, cw_bin, work, workers,
        extra_env={"WEBDRIVER_DELAY_BEFORE_CONTENT_READY": str(settle)}, new_session=True)
    print(f"# {backend}: pid {server.proc.pid}, {n} watches, {workers} workers", file=sys.stderr)
    try:
        return run(server, backend, fetch_backend, n, port.value, versions, served, timeout)
    finally:
        server.stop()
        fx.terminate()
        shutil.rmtree(work, ignore_errors=True)
        time.sleep(2)


FIGURES = ("cpu_ms_per_check", "cpu_ms_per_check_server", "cpu_ms_per_check_chromium",
           "wall_ms_per_check", "checks_per_s", "fetch_ms_median",
           "fetch_ms_p90", "cpu_s", "wall_s")


def median_of(rs: list) -> dict:
    if len(rs) == 1:
        return rs[0]
    med = lambda xs: sorted(xs)[len(xs) // 2]
    out = dict(rs[0])
    for name, _ in ROUNDS:
        out[name] = dict(rs[0][name])
        for k in FIGURES:
            out[name][k] = med([r[name][k] for r in rs])
    for k in ("peak_rss_kb", "peak_pss_kb"):
        out[k] = med([r[k] for r in rs])
    out["runs"] = rs
    return out


def main():
    n = int(os.environ.get("N", "50"))
    if not 1 <= n <= N_MAX:
        raise SystemExit(f"N={n}: between 1 and {N_MAX}")
    workers = int(os.environ.get("WORKERS", "4"))
    settle = int(os.environ.get("SETTLE", "0"))
    validators = os.environ.get("VALIDATORS", "1") != "0"
    repeat = max(1, int(os.environ.get("REPEAT", "1")))
    timeout = int(os.environ.get("ROUND_TIMEOUT", "300"))
    out = pathlib.Path(os.environ.get("OUT", ROOT / "target/bench-browser.json"))
    cw_bin = os.environ.get("CW_BIN", str(ROOT / "target/release/changewatch"))
    # The local Chromium, launched by the server: not a remote browser from the environment.
    os.environ.pop("PLAYWRIGHT_DRIVER_URL", None)
    chrome = os.environ.get("CW_CHROME_PATH", "/usr/bin/chromium")
    if not os.access(chrome, os.X_OK):
        raise SystemExit(f"no browser at {chrome} (apt-get install chromium, or CW_CHROME_PATH)")

    results = {"n": n, "workers": workers, "settle_s": settle, "validators": validators,
               "screenshot_max_height": os.environ.get("SCREENSHOT_MAX_HEIGHT", "default"),
               "page_bytes": len(js_page(0, 0)), "date": time.strftime("%Y-%m-%d %H:%M"),
               "cpus": os.cpu_count(), "bin": cw_bin, "loadavg_before": loadavg(), "runs": {}}
    only = os.environ.get("ONLY", "")
    backends = [b for b in BACKENDS if only in ("", b[0])]
    if not backends:
        raise SystemExit(f"ONLY={only}: plain or browser")
    runs = {b: [] for b, _ in backends}
    for rep in range(repeat):
        # Alternating order, so that neither fetcher always runs on a warmer machine.
        for backend, fb in (backends if rep % 2 == 0 else backends[::-1]):
            runs[backend].append(run_backend(backend, fb, cw_bin, n, workers, settle,
                                             validators, timeout))
    for backend, rs in runs.items():
        results["runs"][backend] = median_of(rs)
    results["loadavg_after"] = loadavg()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    if len(runs) == 2:
        report(results)


def report(results):
    p, b = results["runs"]["plain"], results["runs"]["browser"]
    print(f"\n{results['n']} watches, {results['workers']} workers, pages of "
          f"{results['page_bytes'] / 1000:.0f} KB, settle {results['settle_s']} s, "
          f"SCREENSHOT_MAX_HEIGHT {results['screenshot_max_height']}, validators "
          f"{'on' if results['validators'] else 'off'}, {results['cpus']} CPUs, "
          f"{results['date']} (load {results['loadavg_before'].split()[0]} before, "
          f"{results['loadavg_after'].split()[0]} after)")
    print("| round | figure | plain (html_requests) | browser (html_webdriver) | browser ÷ plain |")
    print("|---|---|---:|---:|---:|")
    rows = (("fetch_ms_median", "wall per check (median fetch_time)", "{:.1f} ms"),
            ("fetch_ms_p90", "wall per check (p90 fetch_time)", "{:.1f} ms"),
            ("wall_ms_per_check", "round wall ÷ checks", "{:.1f} ms"),
            ("cpu_ms_per_check", "CPU per check (tree)", "{:.2f} ms"),
            ("cpu_ms_per_check_server", "… of it changewatch's processes", "{:.2f} ms"),
            ("cpu_ms_per_check_chromium", "… of it Chromium's", "{:.2f} ms"),
            ("checks_per_s", "checks/s", "{:.1f}"))
    for name, _ in ROUNDS:
        for key, title, fmt in rows:
            x, y = p[name][key], b[name][key]
            if key == "checks_per_s":  # a fraction: as one in so many
                ratio = f"1/{x / y:.0f}" if y else "-"
            else:
                ratio = f"{y / x:.0f}×" if x else "-"
            print(f"| {name} | {title} | {fmt.format(x)} | {fmt.format(y)} | {ratio} |")
    for key, title in (("peak_rss_kb", "peak RSS (tree)"), ("peak_pss_kb", "peak PSS (tree)")):
        print(f"| run | {title} | {p[key] / 1024:.1f} MB | {b[key] / 1024:.1f} MB | "
              f"{b[key] / p[key]:.0f}× |")
    print(f"| run | processes in the tree at most | {p['peak_procs']} | {b['peak_procs']} "
          f"(Chromium {b['chromium_procs_peak']}) | |")
    for label, r in (("plain", p), ("browser", b)):
        v = r["verified"]
        print(f"{label}: {v['with_js_text']}/{v['snapshots']} snapshots with the script's line, "
              f"{v['with_static_text']}/{v['snapshots']} with the stories; screenshot "
              f"{v['screenshot']}")


if __name__ == "__main__":
    main()
