//! An Apprise API server for tests: `crates/notify/tests/apprise_api.py`, real apprise behind
//! the stateless `POST /notify`, on `127.0.0.1` and a free port.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

/// The running server; dropping it closes its stdin (it shuts down) and then kills it.
#[derive(Debug)]
pub struct AppriseApiServer {
    child: Child,
    port: u16,
}

impl AppriseApiServer {
    /// Starts the server; fails the test at once when apprise is not installed.
    pub fn start() -> Self {
        crate::setup::require_python_modules(&["apprise"], "apprise==2.0.1");
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../notify/tests/apprise_api.py"
        );
        let mut child = Command::new("python3")
            .arg(script)
            .env("NO_PROXY", "*")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = std::io::BufReader::new(out).read_line(&mut line);
        }
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{script} said {line:?} instead of its port"));
        AppriseApiServer { child, port }
    }

    /// `http://127.0.0.1:<port>/`, as `APPRISE_API_URL` would name it.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for AppriseApiServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
