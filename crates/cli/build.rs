//! Link settings of the `changewatch` binary on Linux.
//!
//! `-no-pie`: a position-independent executable is relocated when it starts: its 2 MB of
//! `.data.rel.ro` (vtables, tables of pointers) are written, so they are private memory in
//! every process, and its 2 MB of relocation records are read in. `serve` runs as three or more
//! such processes (the server and its sandbox children, which re-execute the same binary), so
//! that was ~4 MB of resident memory per process. The trade: the binary's own code and data
//! are not placed at random addresses (shared libraries, heap and stacks still are), as with
//! Go's default executables.
//!
//! `--symbol-ordering-file=symbol-order.txt` (release builds linked by rustc's own lld): the
//! functions a server and its children run are laid out together at the front of the code
//! instead of across all 30 MB of it, so far fewer of the binary's pages are resident in each
//! process (the list and how it is made: `bench/symbol_order.py`). Names the build does not
//! have are skipped, so a stale list only costs memory. `CW_SYMBOL_ORDER=0` links without it.
use std::env;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=symbol-order.txt");
    println!("cargo:rerun-if-env-changed=CW_SYMBOL_ORDER");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-no-pie");
    if env::var("PROFILE").as_deref() == Ok("release")
        && env::var("CW_SYMBOL_ORDER").as_deref() != Ok("0")
        && links_with_rust_lld()
    {
        let order = format!(
            "{}/symbol-order.txt",
            env::var("CARGO_MANIFEST_DIR").unwrap_or_default()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={order}");
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// The ordering option is lld's; GNU ld refuses it. rustc links x86_64 Linux with its own lld
/// from 1.90 on, unless the build names another linker, so only that case gets the option.
fn links_with_rust_lld() -> bool {
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    if env::var("TARGET").as_deref() != Ok("x86_64-unknown-linux-gnu")
        || env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some()
        || env::var_os("RUSTC_LINKER").is_some()
    {
        return false;
    }
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if flags
        .split('\x1f')
        .any(|f| f.contains("linker") || f.contains("link-self-contained") || f.contains("fuse-ld"))
    {
        return false;
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("-V").output() else {
        return false;
    };
    let version = String::from_utf8_lossy(&out.stdout);
    // "rustc 1.95.0 (…)": major 1, minor 95.
    let minor = version
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').nth(1))
        .and_then(|m| m.parse::<u32>().ok());
    matches!(minor, Some(m) if m >= 90)
}
