#!/usr/bin/env python3
"""`make symbol-order`: regenerates crates/cli/symbol-order.txt, the order in which the linker
lays out the `changewatch` binary's functions.

Why: this machine's kernel (6.18, ext4 large folios) maps a whole page-cache folio of the
binary on a fault, hundreds of KB once readahead has grown. A release build's 30 MB of code
puts the functions a server runs all over it, so nearly every folio holds one: the server kept
~18 MB of its text resident, each sandbox child ~3.3 MB. With the functions that run laid out
together, that was 10.5 and 1.6 MB (bench/README.md, tenth session).

How:
  1. an instrumented build of the same sources (`-Cprofile-generate`, in target/symbol-order,
     so the release build's artifacts are kept); RUSTFLAGS do not change symbol names, so the
     profile names the release build's functions;
  2. it runs bench/serve_compare.py's rounds (N watches, changewatch only) and a short
     bench/socket_load.sh (Socket.IO clients, rechecks), one raw profile per process;
  3. llvm-profdata (rustup's llvm-tools, or the system's LLVM of rustc's major) reads each
     process's profile; a process that ran `changewatch_sandbox::child::serve_stdin` is a
     sandbox child;
  4. the file lists the functions the children ran, then those only the server ran, each
     group hottest first (by block count, summed over processes), each with the ThinLTO
     names target/release/changewatch gives
     it (`promoted_names`), then the standard library's (`std_functions`) and the C
     libraries' (`c_functions`), which have no profile. Functions that never ran are left
     where the linker puts them.

A stale list costs nothing but memory: names the build no longer has are skipped
(`--no-warn-symbol-ordering`), and functions not listed are laid out as before. Symbol names
carry a hash of the crate's dependency graph, so bumping a dependency or the toolchain makes
the list of the crates above it stale, and a ThinLTO name changes with its module's code: run
this again then, or when bench-serve's RSS creeps up.

Env: N (watches in the training rounds: 500), KEEP (1: keep target/symbol-order's raw profiles for a look), BIN (an
instrumented build to train instead of building one).
"""

import os
import pathlib
import re
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "crates/cli/symbol-order.txt"
TARGET_DIR = ROOT / "target/symbol-order"
CHILD_MARK = "19changewatch_sandbox5child11serve_stdin"


def llvm_profdata() -> str:
    """rustup's llvm-tools match rustc's LLVM exactly; else the system's tool of that major."""
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True,
                             check=True, cwd=ROOT).stdout.strip()
    version = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True,
                             cwd=ROOT).stdout
    host = re.search(r"^host: (\S+)", version, re.M).group(1)
    candidates = [pathlib.Path(sysroot) / "lib/rustlib" / host / "bin/llvm-profdata"]
    major = re.search(r"^LLVM version: (\d+)", version, re.M)
    if major:
        m = major.group(1)
        candidates += [pathlib.Path(f"/usr/lib/llvm-{m}/bin/llvm-profdata"),
                       pathlib.Path(shutil.which(f"llvm-profdata-{m}") or "/nonexistent")]
    for c in candidates:
        if c.is_file():
            return str(c)
    sys.exit("no llvm-profdata for rustc's LLVM: `rustup component add llvm-tools`")


def build_instrumented(profile_dir: pathlib.Path) -> pathlib.Path:
    flags = (os.environ.get("RUSTFLAGS", "") + f" -Cprofile-generate={profile_dir}").strip()
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "changewatch",
                    "--target-dir", str(TARGET_DIR)], cwd=ROOT, check=True,
                   env={**os.environ, "RUSTFLAGS": flags})
    return TARGET_DIR / "release/changewatch"


def train(binary: pathlib.Path, raw_dir: pathlib.Path):
    """One raw profile per process (%p): the server's and each child's stay apart."""
    env = {**os.environ, "LLVM_PROFILE_FILE": str(raw_dir / "cw-%p.profraw"),
           "CW_BIN": str(binary), "ONLY": "changewatch", "COLD": "0", "IDLE_S": "0",
           "OUT": str(raw_dir / "serve.json")}
    # Twice: a server stopped by SIGTERM writes its profile but kills its children first;
    # one stopped by SIGKILL writes none, and its children, left alone, leave and write theirs.
    for stop in ("term", "kill"):
        subprocess.run([sys.executable, str(ROOT / "bench/serve_compare.py")], cwd=ROOT,
                       check=True, env={**env, "STOP": stop})
    if (ROOT / "dashboard/node_modules/socket.io-client").is_dir() and shutil.which("node"):
        subprocess.run(["bash", str(ROOT / "bench/socket_load.sh"), "50", "10"], cwd=ROOT,
                       check=True, env={**env, "RECHECK_ROUNDS": "20"})
    else:
        print("symbol-order: no socket.io-client (npm ci --prefix dashboard): "
              "the Socket.IO path is not in the profile", file=sys.stderr)


def functions_run(profdata: str, raw: pathlib.Path) -> dict:
    """The functions this process entered, each with its largest block count."""
    indexed = raw.with_suffix(".profdata")
    subprocess.run([profdata, "merge", "-o", str(indexed), str(raw)], check=True)
    shown = subprocess.run([profdata, "show", "--all-functions", "--counts", str(indexed)],
                           capture_output=True, text=True, check=True).stdout
    ran, name = {}, None
    for line in shown.splitlines():
        if line.startswith("  ") and not line.startswith("    ") and line.endswith(":"):
            # A local function's profile name is `<file>;<symbol>`.
            name = line.strip()[:-1].rsplit(";", 1)[-1]
        elif name and line.strip().startswith("Block counts:"):
            count = max((int(c) for c in re.findall(r"\d+", line.split(":", 1)[1])), default=0)
            if count:
                ran[name] = max(count, ran.get(name, 0))
            name = None
    return ran


def release_functions(release: pathlib.Path) -> list:
    """The function symbols of the current release build, which names functions the way the
    next link will; empty without one (`cargo build --release -p changewatch` first)."""
    if not release.is_file():
        print(f"symbol-order: no {release}: ThinLTO-renamed functions and the standard "
              "library are not listed", file=sys.stderr)
        return []
    listing = subprocess.run(["nm", "--defined-only", str(release)], capture_output=True,
                             text=True, check=True).stdout
    return [parts[2] for parts in map(str.split, listing.splitlines())
            if len(parts) == 3 and parts[1] in "tTwW"]


def promoted_names(functions: list) -> dict:
    """ThinLTO renames a local function another module calls `<name>.llvm.<hash of its
    module>`: the profile knows it by `<name>`. The hash moves only when that module's code
    does, so the names the current release build has are listed too."""
    promoted = {}
    for name in functions:
        if ".llvm." in name:
            promoted.setdefault(name.split(".llvm.", 1)[0], []).append(name)
    return promoted


def std_functions(functions: list, listed: set) -> list:
    """The standard library comes precompiled, without instrumentation: the profile has only
    what our crates instantiated of it. The rest (core::fmt::write, str searchers, the
    allocator shims, runtime start: 0.65 MB) runs everywhere, so all of it the release build
    keeps follows the profiled functions. Its symbols are the v0-mangled ones (`_R…`): the
    workspace's crates use the legacy scheme."""
    return sorted({name for name in functions if name.startswith("_R") and name not in listed})


def c_functions(binary: pathlib.Path) -> list:
    """The C code linked in (SQLite, zstd, ring) has no profile: the instrumentation is
    rustc's. The server runs much of SQLite and of zstd's compressor and decoder, so their
    functions follow the Rust ones, by archive and object, except the objects that never run:
    zstd's legacy-format decoders, its dictionary builder and multithreaded compressor, and
    ring's test helpers."""
    never = re.compile(r"zstd_v0\d|cover|zdict|divsufsort|zstdmt|_test")
    names, seen = [], set()
    for archive in sorted(binary.parent.glob("build/*/out/*.a")):
        if never.search(archive.name):
            continue
        listing = subprocess.run(["nm", "-A", "--defined-only", str(archive)],
                                 capture_output=True, text=True, check=True).stdout
        for line in listing.splitlines():
            # "<archive>:<object>: <address> <type> <name>"
            where, _, symbol = line.rpartition(" ")
            kind = where.split()[-1] if where.split() else ""
            obj = where.split(":")[1] if where.count(":") >= 2 else ""
            if kind in ("t", "T") and not never.search(obj) and symbol not in seen:
                seen.add(symbol)
                names.append(symbol)
    return names


def main():
    profdata = llvm_profdata()
    # A fixed path: RUSTFLAGS that change between runs would rebuild everything.
    binary = (pathlib.Path(os.environ["BIN"]).resolve() if os.environ.get("BIN")
              else build_instrumented(TARGET_DIR / "build-profiles"))
    raw_dir = TARGET_DIR / "profiles"
    shutil.rmtree(raw_dir, ignore_errors=True)
    raw_dir.mkdir(parents=True)
    train(binary, raw_dir)
    child, server = {}, {}
    raws = sorted(raw_dir.glob("cw-*.profraw"))
    if not raws:
        sys.exit("symbol-order: the instrumented server wrote no profile")
    for raw in raws:
        ran = functions_run(profdata, raw)
        into = child if any(CHILD_MARK in f for f in ran) else server
        for f, count in ran.items():
            into[f] = into.get(f, 0) + count
    if not child:
        sys.exit("symbol-order: no sandbox child's profile among " + str(len(raws)))
    c_code = c_functions(binary)
    functions = release_functions(ROOT / "target/release/changewatch")
    promoted = promoted_names(functions)
    server_only = {f: c for f, c in server.items() if f not in child}
    # Hottest first: what runs for every check shares the fewest pages. A sort by name put
    # each crate's drop glue together, away from its callers: 10-35 % more CPU per check.
    by_heat = sorted(child, key=lambda f: (-child[f], f)) + sorted(
        server_only, key=lambda f: (-server_only[f], f))
    body = [name for f in by_heat for name in [f, *promoted.get(f, [])]]
    std = std_functions(functions, set(body))
    body += std + c_code
    OUT.write_text(
        "# The changewatch binary's function layout: written by `make symbol-order`\n"
        "# (bench/symbol_order.py), read by crates/cli/build.rs. Functions the sandbox\n"
        f"# children ran ({len(child)}), then those only the server ran ({len(server_only)}),\n"
        f"# then the standard library's ({len(std)}) and the C libraries' ({len(c_code)}).\n"
        + "\n".join(body) + "\n")
    print(f"{OUT.relative_to(ROOT)}: {len(child)} child + {len(server_only)} server "
          f"functions from {len(raws)} processes")
    if os.environ.get("KEEP", "0") != "1":
        shutil.rmtree(raw_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
