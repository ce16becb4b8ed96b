//! A Chromium of its own with its DevTools port open, standing in for a remote browser
//! (browserless, sockpuppetbrowser, a second container) that `PLAYWRIGHT_DRIVER_URL` or an
//! extra browser's connection URL names. Killed, and its profile removed, on drop.

#![allow(clippy::expect_used)] // test support: a browser that cannot start fails the test

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running headless Chromium and its DevTools WebSocket URL.
#[derive(Debug)]
pub struct RemoteChrome {
    child: Child,
    ws_url: String,
    profile: PathBuf,
}

impl RemoteChrome {
    /// Starts Debian's Chromium (`make test-deps`) on a free DevTools port on 127.0.0.1.
    pub fn start() -> Self {
        let profile = std::env::temp_dir().join(format!(
            "testkit-chrome-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let mut child = Command::new("/usr/bin/chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "about:blank",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the tests need Debian's chromium: run `make test-deps`");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        // Chrome prints the URL once; the rest of its stderr is drained so it never blocks.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("ws://") {
                    let _ = tx.send(line[at..].trim().to_string());
                }
            }
        });
        let ws_url = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("chromium printed its DevTools URL");
        RemoteChrome {
            child,
            ws_url,
            profile,
        }
    }

    /// `ws://127.0.0.1:<port>/devtools/browser/<id>`.
    pub fn ws_url(&self) -> &str {
        &self.ws_url
    }
}

impl Drop for RemoteChrome {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(200));
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
