//! The parent's side: warm children, one request each at a time, a deadline on every
//! request, and an autopsy when a child dies.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::child::{CHILD_ENV, MEMORY_ENV, STACK_ENV};
use crate::protocol::{MAX_FRAME, Request, Response};
use crate::{SandboxConfig, SandboxError};

/// An idle child older than this is retired rather than reused, so a burst of work does not
/// leave its children's memory behind for good.
const IDLE_LIFETIME: Duration = Duration::from_secs(60);
/// The stderr lines kept per child: enough for Rust's abort message.
const STDERR_LINES: usize = 20;
/// Free heap a child keeps at its top between requests (see `spawn`): more than a 46 KB
/// page's parse frees, and bounded, so a child that once handled a big page does not sit on it.
const TRIM_KEPT: usize = 4 << 20;
/// Blocks from this size up get their own mapping: a multi-megabyte page or text is rare,
/// and mapping it keeps it out of the heap top that `TRIM_KEPT` lets a child hold on to.
const MMAP_FROM: usize = 1 << 20;

#[derive(Debug)]
pub(crate) struct Pool {
    config: SandboxConfig,
    idle: Mutex<Vec<Worker>>,
    /// Children working at once (`SandboxConfig::max_running`): each may grow to its memory
    /// cap, so their number times the cap is what the sandbox can cost.
    running: Arc<tokio::sync::Semaphore>,
}

#[derive(Debug)]
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    stderr_task: JoinHandle<()>,
    idle_since: Instant,
}

impl Pool {
    pub(crate) fn new(config: SandboxConfig) -> Self {
        let running = Arc::new(tokio::sync::Semaphore::new(
            config
                .max_running
                .clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
        ));
        Pool {
            config,
            idle: Mutex::new(Vec::new()),
            running,
        }
    }

    pub(crate) fn shutdown(&self) {
        // Dropping a worker kills its child (`kill_on_drop`).
        self.idle.lock().map(|mut idle| idle.clear()).ok();
    }

    fn take_idle(&self) -> Option<Worker> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(mut w) = idle.pop() {
            let exited = w.child.try_wait().map_or(true, |s| s.is_some());
            if !exited && w.idle_since.elapsed() < IDLE_LIFETIME {
                return Some(w);
            }
        }
        None
    }

    fn put_back(&self, mut worker: Worker) {
        worker.idle_since = Instant::now();
        if let Ok(mut idle) = self.idle.lock() {
            idle.retain(|w| w.idle_since.elapsed() < IDLE_LIFETIME);
            if idle.len() < self.config.max_idle {
                idle.push(worker);
            }
        }
    }

    fn spawn(&self) -> Result<Worker, SandboxError> {
        let mut child = Command::new(&self.config.program)
            .env(CHILD_ENV, "1")
            .env(MEMORY_ENV, self.config.memory_mb.to_string())
            .env(STACK_ENV, self.config.stack_mb.to_string())
            // glibc reserves 64 MB of address space per malloc arena and thread; the child
            // has two threads, and the address-space cap should measure data, not arenas.
            .env("MALLOC_ARENA_MAX", "1")
            // glibc gives the top of the heap back to the kernel once a free leaves more than
            // its trim threshold there (128 KB to start). A check's parse frees a tree of
            // several hundred KB, so every check shrank the heap and the next one faulted the
            // same pages in again: ~9.5 % of a changed check's CPU in page faults, brk and
            // munmap (bench/README.md, seventeenth session). The child keeps up to TRIM_KEPT
            // free at the top instead; one idle past IDLE_LIFETIME is retired, memory and all.
            // Setting the trim threshold turns glibc's sliding mmap threshold off, so that is
            // set too: blocks from MMAP_FROM up are mapped and unmapped on their own.
            .env("MALLOC_TRIM_THRESHOLD_", TRIM_KEPT.to_string())
            .env("MALLOC_MMAP_THRESHOLD_", MMAP_FROM.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| SandboxError::Spawn(format!("{}: {e}", self.config.program.display())))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(SandboxError::Spawn("pipes were not set up".into()));
        };
        let lines = Arc::new(Mutex::new(VecDeque::new()));
        let sink = lines.clone();
        // Drained all the time: a child whose stderr pipe filled up (libxml2 reports XPath
        // errors there) would block mid-request.
        let stderr_task = tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Ok(mut l) = sink.lock() {
                    if l.len() == STDERR_LINES {
                        l.pop_front();
                    }
                    l.push_back(line.chars().take(500).collect());
                }
            }
        });
        debug!(pid = child.id(), "sandbox child started");
        Ok(Worker {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            stderr: lines,
            stderr_task,
            idle_since: Instant::now(),
        })
    }

    /// Sends one request and waits for its reply within the deadline. A child that misses the
    /// deadline is killed; one that dies is examined to say which budget it blew.
    pub(crate) async fn call(&self, request: &Request) -> Result<Response, SandboxError> {
        let payload =
            serde_json::to_vec(request).map_err(|e| SandboxError::Protocol(e.to_string()))?;
        self.call_with(payload).await
    }

    /// [`Pool::call`] with the request already framed, so the caller can drop what it was
    /// made of first. Waits while `max_running` children are busy; the wait is not counted in
    /// the request's deadline (the caller's own deadline covers it).
    pub(crate) async fn call_with(&self, payload: Vec<u8>) -> Result<Response, SandboxError> {
        // Never closed; were it, the request would run unlimited rather than not at all.
        let _running = self.running.clone().acquire_owned().await.ok();
        let mut worker = match self.take_idle() {
            Some(w) => w,
            None => self.spawn()?,
        };
        let exchange = async {
            write_frame(&mut worker.stdin, &payload).await?;
            drop(payload);
            read_frame(&mut worker.stdout).await
        };
        match tokio::time::timeout(self.config.timeout, exchange).await {
            Ok(Ok(reply)) => {
                let response =
                    crate::protocol::read_response(&reply).map_err(SandboxError::Protocol);
                if response.is_ok() {
                    self.put_back(worker);
                }
                response
            }
            Ok(Err(io)) => Err(autopsy(worker, &io, self.config.memory_mb).await),
            Err(_) => {
                let _ = worker.child.start_kill();
                let _ = worker.child.wait().await;
                warn!(
                    timeout_secs = self.config.timeout.as_secs(),
                    "sandbox child killed at its deadline"
                );
                Err(SandboxError::Timeout(self.config.timeout.as_secs()))
            }
        }
    }
}

/// Why a child stopped answering: its exit and the last lines it wrote to stderr.
async fn autopsy(mut worker: Worker, io: &std::io::Error, memory_mb: u64) -> SandboxError {
    let status = match tokio::time::timeout(Duration::from_secs(2), worker.child.wait()).await {
        Ok(Ok(status)) => Some(status),
        _ => {
            let _ = worker.child.start_kill();
            worker.child.wait().await.ok()
        }
    };
    // The stderr reader ends at the child's exit; give it a moment to take the last lines.
    let _ = tokio::time::timeout(Duration::from_secs(1), &mut worker.stderr_task).await;
    let tail: Vec<String> = worker
        .stderr
        .lock()
        .map(|l| l.iter().cloned().collect())
        .unwrap_or_default();
    let text = tail.join("\n");
    let verdict = if text.contains("has overflowed its stack") {
        SandboxError::Stack
    } else if text.contains("memory allocation of") || text.contains("capacity overflow") {
        SandboxError::Memory(memory_mb)
    } else {
        SandboxError::Crashed(match status {
            Some(s) => describe_exit(s),
            None => io.to_string(),
        })
    };
    warn!(%verdict, stderr = %text, "sandbox child died");
    verdict
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(6)) => "aborted".into(),
        (None, Some(9)) => "killed".into(),
        (None, Some(11)) => "segmentation fault".into(),
        (None, Some(sig)) => format!("signal {sig}"),
        (None, None) => "unknown exit".into(),
    }
}

async fn write_frame(stdin: &mut ChildStdin, bytes: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|&l| l as usize <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "request too large"))?;
    stdin.write_all(&len.to_be_bytes()).await?;
    stdin.write_all(bytes).await?;
    stdin.flush().await
}

async fn read_frame(stdout: &mut BufReader<ChildStdout>) -> std::io::Result<Vec<u8>> {
    let len = stdout.read_u32().await? as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("reply frame of {len} bytes"),
        ));
    }
    let mut frame = vec![0u8; len];
    stdout.read_exact(&mut frame).await?;
    Ok(frame)
}
