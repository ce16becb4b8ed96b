//! Child processes of the suite (functions, the push service, socket clients): their output is
//! kept, the last lines only, so that a failed case can show what the process said, and the
//! processes never outlive the value that owns them.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};

/// Lines kept per process group: enough for the last invocations of a failed case.
const KEPT_LINES: usize = 400;

/// The last lines a group of processes wrote, each prefixed with who wrote it.
#[derive(Clone, Debug, Default)]
pub struct Logs {
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl Logs {
    /// Reads `stream` line by line on its own thread until it ends; each line is kept, and
    /// also sent to `tap` when given (a reader waiting for a particular line).
    pub fn capture(
        &self,
        label: String,
        stream: impl Read + Send + 'static,
        tap: Option<Sender<String>>,
    ) {
        let lines = self.lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if let Some(tap) = &tap {
                    let _ = tap.send(line.clone());
                }
                let mut kept = lines.lock().unwrap_or_else(PoisonError::into_inner);
                if kept.len() == KEPT_LINES {
                    kept.pop_front();
                }
                kept.push_back(format!("[{label}] {line}"));
            }
        });
    }

    /// Everything kept, oldest first.
    pub fn text(&self) -> String {
        let kept = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        kept.iter().map(|l| format!("{l}\n")).collect()
    }

    /// The last `n` lines.
    pub fn tail(&self, n: usize) -> String {
        let kept = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        let skip = kept.len().saturating_sub(n);
        kept.iter().skip(skip).map(|l| format!("{l}\n")).collect()
    }
}

/// The repository's root (the workspace).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `PATH`, `LANG` and `TZ` as Lambda's `provided.al2023` runtime sets them; processes start
/// from an empty environment plus these, so nothing of the test runner's leaks in.
pub const BASE_ENVIRONMENT: [(&str, &str); 3] = [
    ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin"),
    ("LANG", "en_US.UTF-8"),
    ("TZ", ":UTC"),
];
