//! The push-service binary as ECS runs it: the task definition's container environment from
//! the template, with what a test on loopback must change (listen on `127.0.0.1`, port 0) and
//! what the platform adds (the emulator's endpoint and credentials).

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use crate::binaries;
use crate::process::{BASE_ENVIRONMENT, Logs, workspace_root};

/// What the binary prints first on stdout.
const LISTENING: &str = "changewatch-push-service listening on ";

/// A running push service; killed when dropped.
#[derive(Debug)]
pub struct PushService {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    logs: Logs,
}

impl PushService {
    /// Starts the binary with exactly `environment` (plus `PATH`, `LANG`, `TZ`) and waits
    /// until it listens.
    ///
    /// # Panics
    /// When it does not start listening within 30 s (it exited: the panic shows its output).
    pub async fn start(environment: BTreeMap<String, String>) -> PushService {
        let binary = binaries::built(binaries::PUSH_SERVICE);
        let mut child = match Command::new(&binary)
            .env_clear()
            .envs(BASE_ENVIRONMENT)
            .envs(&environment)
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => panic!("cannot start {}: {e}", binary.display()),
        };
        let logs = Logs::default();
        let (tap, lines) = channel();
        if let Some(out) = child.stdout.take() {
            logs.capture("push-service".into(), out, Some(tap));
        }
        if let Some(err) = child.stderr.take() {
            logs.capture("push-service".into(), err, None);
        }
        let found = tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                match lines.recv_timeout(left) {
                    Ok(line) => {
                        if let Some(url) = line.strip_prefix(LISTENING) {
                            return Some(url.trim().to_string());
                        }
                    }
                    Err(_) => return None,
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let Some(base) = found else {
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            panic!(
                "the push service did not start listening ({status}); its output:\n{}",
                logs.text()
            );
        };
        PushService { child, base, logs }
    }

    pub fn logs(&self) -> String {
        self.logs.text()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for PushService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- push service, last output:\n{}", self.logs.text());
        }
    }
}
