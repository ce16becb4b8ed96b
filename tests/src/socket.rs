//! A real Socket.IO client (socket.io-client from npm, `dashboard/tests/socket_listen.mjs`)
//! connected to the push service; every event it receives arrives here as JSON.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::process::workspace_root;

/// How long a test waits for one event.
pub const EVENT_WAIT: Duration = Duration::from_secs(30);

/// One connected client; the node process ends when this is dropped.
#[derive(Debug)]
pub struct SocketClient {
    child: Child,
    rx: mpsc::UnboundedReceiver<Value>,
    /// Every event received so far, oldest first.
    pub seen: Vec<Value>,
}

impl SocketClient {
    /// Connects to `base`, authenticating with `api_key` in the handshake when given.
    ///
    /// # Panics
    /// When node or the dashboard's npm packages are missing (`make test` installs them).
    pub fn connect(base: &str, api_key: Option<&str>) -> SocketClient {
        testkit::setup::require_command("node", "nodejs");
        let root = workspace_root();
        assert!(
            root.join("dashboard/node_modules/socket.io-client")
                .is_dir(),
            "dashboard/node_modules is missing: run `make test` once (or `cd dashboard && npm ci`)"
        );
        let mut cmd = Command::new("node");
        cmd.arg("dashboard/tests/socket_listen.mjs")
            .current_dir(&root)
            .env("CW_BASE_URL", base)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(key) = api_key {
            cmd.env("CW_API_KEY", key);
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => panic!("cannot start node: {e}"),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Ok(v) = serde_json::from_str::<Value>(&line)
                        && tx.send(v).is_err()
                    {
                        break;
                    }
                }
            });
        }
        SocketClient {
            child,
            rx,
            seen: Vec::new(),
        }
    }

    /// The number of events seen so far: pass it to [`SocketClient::wait_after`] to look only
    /// at later events.
    pub fn mark(&self) -> usize {
        self.seen.len()
    }

    /// The first event (ever received) matching `pred`, waiting up to [`EVENT_WAIT`].
    ///
    /// # Panics
    /// When none arrives in time, listing what did.
    pub async fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_after(0, what, pred).await
    }

    /// Like [`SocketClient::wait_for`], among the events after the first `mark`.
    ///
    /// # Panics
    /// When none arrives in time, listing what did.
    pub async fn wait_after(
        &mut self,
        mark: usize,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        if let Some(v) = self.seen.iter().skip(mark).find(|v| pred(v)) {
            return v.clone();
        }
        let deadline = tokio::time::Instant::now() + EVENT_WAIT;
        while let Ok(Some(v)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            self.seen.push(v.clone());
            if pred(&v) {
                return v;
            }
        }
        panic!(
            "no {what} within {} s; events seen: {}",
            EVENT_WAIT.as_secs(),
            serde_json::to_string(&self.seen).unwrap_or_default()
        );
    }
}

impl Drop for SocketClient {
    fn drop(&mut self) {
        // Closing stdin ends the script; kill in case it does not.
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
