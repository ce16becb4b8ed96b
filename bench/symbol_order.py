#!/usr/bin/env python3
"""`make symbol-order`: regenerates crates/cli/symbol-order.txt, the order in which the linker
lays out the `changewatch` binary's functions.

Why: a fault in a mapped file maps the page-cache pages around it that are already cached
(fault-around, 64 KB here), or its whole folio (this machine's kernel, 6.18 with ext4 large
folios, after readahead). A release build's 30 MB of code puts the functions a server runs all
over it, so nearly every window holds one: the server kept ~18 MB of its text resident, each
sandbox child ~3.3 MB (bench/README.md, tenth session). With exactly the functions that run
laid out together, it is the few MB they take (eleventh session).

How:
  1. valgrind's callgrind runs the release build itself (target/release/changewatch: the
     layout it was linked with does not change a function's name) through
     bench/serve_compare.py's rounds (N watches, changewatch only) and a short
     bench/socket_load.sh (Socket.IO clients, rechecks), following the sandbox children
     (`--trace-children`): one output per process, naming every function of the binary the
     process entered, with the instructions it ran there. The names are the binary's own:
     ThinLTO's `<name>.llvm.<hash>`, the precompiled standard library's and the C libraries'
     (SQLite, zstd, ring) included;
  2. a process that ran `changewatch_sandbox::child::serve_stdin` is a sandbox child;
  3. the file lists the functions the children ran, then those only the server ran, each
     group hottest first (instructions summed over processes);
  4. then, with `perf` at hand, what only a native run enters: the rounds once more, natively,
     under `perf record -e page-faults -d`. A fault on code is taken at the instruction that
     needs the page, so each fault in the binary's code outside the listed functions names
     one more function the server or a child ran (valgrind's CPU has no SHA-NI, its children
     reap through another tokio path, ...). Each such function costs a whole folio of code
     where it lies. Functions that never ran are left where the linker puts them.

A stale list costs nothing but memory: names the build no longer has are skipped
(`--no-warn-symbol-ordering`), and functions not listed are laid out as before. Symbol names
carry a hash of the crate's dependency graph, so bumping a dependency or the toolchain makes
the list of the crates above it stale, and a ThinLTO name changes with its module's code: run
this again then, or when bench-serve's RSS creeps up. What valgrind's CPU lacks (SHA-NI,
AVX-512) runs another function natively than under callgrind: the native one is not listed.

Env: N (watches in the training rounds: 500), BIN (the binary to train and name: the release
build), KEEP (1: keep target/symbol-order's callgrind outputs for a look).
"""

import bisect
import collections
import os
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "crates/cli/symbol-order.txt"
WORK = ROOT / "target/symbol-order"
CHILD_MARK = "19changewatch_sandbox5child11serve_stdin"


def wrapper(binary: pathlib.Path, outputs: pathlib.Path) -> pathlib.Path:
    """The harnesses start CW_BIN with the server's arguments: this script runs the binary
    under callgrind instead, one output file per process (%p)."""
    script = WORK / "callgrind-changewatch"
    script.write_text(
        "#!/bin/sh\n"
        "exec valgrind -q --tool=callgrind --trace-children=yes --demangle=no "
        "--compress-strings=no --compress-pos=no --dump-line=no "
        f"--callgrind-out-file={outputs}/cg.%p {binary} \"$@\"\n")
    script.chmod(0o755)
    return script


def train(script: pathlib.Path, outputs: pathlib.Path):
    # The children run ~50x slower under valgrind and map its tool besides theirs: their
    # deadline and address-space cap would end them.
    env = {**os.environ, "CW_BIN": str(script), "ONLY": "changewatch", "COLD": "0",
           "IDLE_S": "0", "N": os.environ.get("N", "500"), "OUT": str(outputs / "serve.json"),
           "CW_SANDBOX_TIMEOUT_SECS": "600", "CW_SANDBOX_MEMORY_MB": "8192"}
    # Twice: a server stopped by SIGTERM writes its output but kills its children first; one
    # stopped by SIGKILL writes none, and its children, left alone, leave and write theirs.
    for stop in ("term", "kill"):
        subprocess.run([sys.executable, str(ROOT / "bench/serve_compare.py")], cwd=ROOT,
                       check=True, env={**env, "STOP": stop})
    if (ROOT / "dashboard/node_modules/socket.io-client").is_dir() and shutil.which("node"):
        subprocess.run(["bash", str(ROOT / "bench/socket_load.sh"), "50", "5"], cwd=ROOT,
                       check=True, env={**env, "RECHECK_ROUNDS": "10"})
    else:
        print("symbol-order: no socket.io-client (npm ci --prefix dashboard): "
              "the Socket.IO path is not listed", file=sys.stderr)


def functions_run(output: pathlib.Path, binary: pathlib.Path) -> dict:
    """The binary's functions this process entered, each with the instructions it ran in it
    (its own, not its callees'). callgrind's format: `ob=` names the object and `fn=` the
    function of the cost lines that follow; the line after `calls=` is a call's inclusive
    cost; `'N` marks a recursion depth."""
    ran = collections.Counter()
    ours, name, call_cost = False, None, False
    with open(output, errors="replace") as f:
        for line in f:
            if line.startswith("ob="):
                ours = line[3:].strip() == str(binary)
            elif line.startswith("fn="):
                name = line[3:].strip().split("'", 1)[0] if ours else None
                if name == "(below main)":
                    # valgrind's name for the code that calls main: here, the entry point.
                    name = "_start"
            elif line.startswith("calls="):
                call_cost = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                if call_cost:
                    call_cost = False
                elif name and not name.startswith("0x"):
                    parts = line.split()
                    ran[name] += int(parts[1]) if len(parts) > 1 else 0
    return ran


def native_faults(binary: pathlib.Path, listed: set) -> list:
    """The binary's functions, not in `listed`, that a native run of the rounds faulted on
    (in the order it first did); empty without perf."""
    if not shutil.which("perf"):
        print("symbol-order: no perf: what only runs natively is not listed", file=sys.stderr)
        return []
    data = WORK / "native-faults.data"
    script = WORK / "perf-changewatch"
    script.write_text(f"#!/bin/sh\nexec perf record -q -e page-faults -c 1 -d -o {data} "
                      f"-- {binary} \"$@\"\n")
    script.chmod(0o755)
    env = {**os.environ, "CW_BIN": str(script), "ONLY": "changewatch", "COLD": "1",
           "IDLE_S": "0", "N": os.environ.get("N", "500"), "OUT": str(WORK / "native.json")}
    try:
        subprocess.run([sys.executable, str(ROOT / "bench/serve_compare.py")], cwd=ROOT,
                       check=True, env=env)
        shown = subprocess.run(["perf", "script", "-i", str(data), "-F", "addr"],
                               capture_output=True, text=True, check=True).stdout
    except subprocess.CalledProcessError as e:
        # perf_event_paranoid above 2, or no page-fault event in this kernel: the list
        # from callgrind stands alone.
        print(f"symbol-order: the native run under perf failed ({e}): not listed",
              file=sys.stderr)
        return []
    starts, names = [], []
    listing = subprocess.run(["nm", "-S", "--defined-only", str(binary)], capture_output=True,
                             text=True, check=True).stdout
    for parts in sorted(map(str.split, listing.splitlines()), key=lambda p: p[0]):
        if len(parts) == 4 and parts[2] in "tTwW":
            starts.append(int(parts[0], 16))
            names.append((int(parts[0], 16) + int(parts[1], 16), parts[3]))
    found = []
    for line in shown.splitlines():
        try:
            address = int(line.strip(), 16)
        except ValueError:
            continue
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0 and address < names[i][0] and names[i][1] not in listed:
            listed.add(names[i][1])
            found.append(names[i][1])
    data.unlink(missing_ok=True)
    return found


def main():
    if not shutil.which("valgrind"):
        sys.exit("symbol-order: valgrind is needed (apt-get install valgrind)")
    binary = pathlib.Path(os.environ.get("BIN") or ROOT / "target/release/changewatch").resolve()
    if not binary.is_file():
        sys.exit(f"symbol-order: no {binary}: cargo build --release -p changewatch first")
    outputs = WORK / "callgrind"
    shutil.rmtree(outputs, ignore_errors=True)
    outputs.mkdir(parents=True)
    train(wrapper(binary, outputs), outputs)
    child, server = collections.Counter(), collections.Counter()
    runs = [p for p in sorted(outputs.glob("cg.*")) if p.stat().st_size]
    for output in runs:
        ran = functions_run(output, binary)
        (child if any(CHILD_MARK in f for f in ran) else server).update(ran)
    if not child or not server:
        sys.exit(f"symbol-order: {len(runs)} outputs, no server's or no child's among them")
    server_only = {f: n for f, n in server.items() if f not in child}
    # Hottest first: what runs for every check shares the fewest pages. A sort by name put
    # each crate's drop glue together, away from its callers: 10-35 % more CPU per check.
    body = sorted(child, key=lambda f: (-child[f], f)) + sorted(
        server_only, key=lambda f: (-server_only[f], f))
    native = native_faults(binary, set(body))
    body += native
    OUT.write_text(
        "# The changewatch binary's function layout: written by `make symbol-order`\n"
        "# (bench/symbol_order.py), read by crates/cli/build.rs. Functions the sandbox\n"
        f"# children ran ({len(child)}), then those only the server ran ({len(server_only)}),\n"
        f"# then those only a native run faulted on ({len(native)}).\n"
        + "\n".join(body) + "\n")
    print(f"{OUT.relative_to(ROOT)}: {len(child)} child + {len(server_only)} server "
          f"functions from {len(runs)} processes, {len(native)} more from a native run")
    if os.environ.get("KEEP", "0") != "1":
        shutil.rmtree(outputs, ignore_errors=True)


if __name__ == "__main__":
    main()
