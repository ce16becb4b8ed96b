//! The workspace's built binaries. Integration tests of this package cannot name another
//! package's binaries (`CARGO_BIN_EXE_*` covers only its own), so they are found where cargo
//! puts them: beside the test executable's `deps/` folder, in `target/<profile>/`.
//! `cargo test --workspace --all-targets` (what `make test` runs) builds every workspace
//! binary before it runs a test; `cargo test -p changewatch-e2e` alone does not, so a binary
//! that is missing fails with what to run.

use std::path::PathBuf;

/// The api, scheduler, checker and notifier functions' binaries are named by the template
/// (`Metadata.BuildProperties.Binary`); the push service's is this one.
pub const PUSH_SERVICE: &str = "changewatch-push-service";

/// `target/<profile>/<name>`.
///
/// # Panics
/// When it is not built, with one line saying how to build it.
pub fn built(name: &str) -> PathBuf {
    // A test executable is in `target/<profile>/deps/`, a binary of this package (the cost
    // benchmark) in `target/<profile>/`.
    let dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.to_path_buf()))
        .and_then(|dir| match dir.file_name() {
            Some(name) if name == "deps" => dir.parent().map(|profile| profile.to_path_buf()),
            _ => Some(dir),
        });
    let Some(dir) = dir else {
        panic!("cannot locate the target directory from the test executable");
    };
    let path = dir.join(name);
    if !path.is_file() {
        panic!(
            "{name} is not built in {}: run `cargo build --workspace --bins` (or `make test`) first",
            dir.display()
        );
    }
    path
}
