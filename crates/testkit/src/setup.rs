//! What `make test` installs, checked at the top of the tests that need it: a bare
//! `cargo test` on a machine without that set-up fails those tests at once, each with one line
//! saying what is missing and how to get it, instead of timing out or failing deep inside.

use std::process::{Command, Stdio};

/// The one-line failure every missing piece ends in.
fn missing(what: &str, how: &str) -> ! {
    panic!("{what} is missing: run `make test` once (it installs it), or {how}")
}

/// Whether `program args` runs and exits 0 (output discarded).
fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Python modules the test drives (`python3 -c "import …"` must succeed).
pub fn require_python_modules(modules: &[&str], pip_spec: &str) {
    if !succeeds(
        "python3",
        &["-c", &format!("import {}", modules.join(", "))],
    ) {
        missing(
            &format!("the Python module(s) {}", modules.join(", ")),
            &format!("python3 -m pip install '{pip_spec}'"),
        );
    }
}

/// A program on `PATH`.
pub fn require_command(program: &str, apt_package: &str) {
    if !succeeds("sh", &["-c", &format!("command -v {program}")]) {
        missing(
            &format!("`{program}`"),
            &format!("apt-get install {apt_package}"),
        );
    }
}
