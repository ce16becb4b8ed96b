//! Links `changewatch` as a position-dependent executable (`-no-pie`) on Linux.
//!
//! A position-independent executable is relocated when it starts: its 2 MB of
//! `.data.rel.ro` (vtables, tables of pointers) are written, so they are private memory in
//! every process, and its 2 MB of relocation records are read in. `serve` runs as three or more
//! such processes (the server and its sandbox children, which re-execute the same binary), so
//! that was ~4 MB of resident memory per process. The trade: the binary's own code and data
//! are not placed at random addresses (shared libraries, heap and stacks still are), as with
//! Go's default executables.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
