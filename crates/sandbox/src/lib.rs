//! The process boundary around everything users' filters, rules and templates drive.
//!
//! A watch's filters and templates are user input and its pages attacker input. Some of the
//! engines they drive have no budget of their own: jaq recurses on the native stack and has
//! no fuel, minijinja's fuel counts instructions but not bytes (`"x" * 10**9`). Inside the
//! server, one such watch could overflow a stack (abort), exhaust memory (abort) or spin a
//! worker forever (a wedged pool that SIGTERM cannot stop). Here that work runs in a child
//! process with an address-space cap, a fixed stack and a wall-clock deadline: blowing any
//! of them kills only the child, and the check ends as that watch's error.
//!
//! - [`Sandbox`]: what callers hold; `process` (the check pipeline) and `render` (templates).
//!   [`Sandbox::child_process`] is the real thing; [`Sandbox::in_process`] runs the same code
//!   on a blocking thread, for tests of other behaviour and tools that trust their input.
//! - `pool`: the parent's idle children, spawning, deadlines, and reading why a child died.
//! - `child`: the child's loop, its limits, and [`run_child_if_requested`] for `main`.
//! - `protocol`: the requests and replies and their framing.

mod child;
mod pool;
mod protocol;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use changewatch_core::CheckError;
use changewatch_core::fetch::FetchedPage;
use changewatch_core::pipeline::{PreviousState, Processed, ProcessorSettings};
use changewatch_notify::RenderError;

pub use child::{CHILD_ENV, run_child_if_requested};
pub use protocol::{RenderJob, Rendered};

use protocol::{Request, Response};

/// How children are started and what they may use.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// The executable to start; it must call [`run_child_if_requested`] first thing.
    pub program: PathBuf,
    /// Wall-clock time one request may take, from sending it to the last byte of the reply.
    pub timeout: Duration,
    /// Address-space limit of a child in MiB (0 = none). It counts mappings, not only what is
    /// touched, so it sits well above the largest legitimate page's working set.
    pub memory_mb: u64,
    /// Stack of the child's work thread in MiB.
    pub stack_mb: u64,
    /// Children kept alive between requests; more run while more requests are in flight.
    pub max_idle: usize,
    /// Children working at once; further requests wait for one to finish. Each child may
    /// use up to `memory_mb`, so this times that is the sandbox's share of the memory.
    pub max_running: usize,
}

impl SandboxConfig {
    /// Children of this very executable, with the limits from the environment's config.
    pub fn current_exe(limits: &changewatch_core::config::SandboxLimits) -> std::io::Result<Self> {
        Ok(SandboxConfig {
            program: std::env::current_exe()?,
            timeout: limits.timeout,
            memory_mb: limits.memory_mb,
            stack_mb: limits.stack_mb,
            max_idle: limits.max_idle,
            max_running: limits.max_running,
        })
    }
}

/// Why sandboxed work produced no result. Its text is what the user sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "processing took longer than {0} seconds and was stopped (a filter, rule or template too expensive for this page?)"
    )]
    Timeout(u64),
    #[error("a filter, rule or template nests or recurses too deeply (it ran out of stack)")]
    Stack,
    #[error("a filter, rule or template needed more than {0} MB of memory and was stopped")]
    Memory(u64),
    #[error("the page processor stopped unexpectedly ({0})")]
    Crashed(String),
    #[error("the page processor could not be started: {0}")]
    Spawn(String),
    #[error("the page processor's reply could not be read: {0}")]
    Protocol(String),
}

/// Runs pipeline and template work, in a child process or (for tests) in this one.
#[derive(Clone, Debug)]
pub struct Sandbox {
    inner: Arc<Mode>,
}

#[derive(Debug)]
enum Mode {
    InProcess,
    Child(pool::Pool),
}

impl Sandbox {
    /// No isolation: the same work on a blocking thread of this process. A hostile filter can
    /// take the process down here; only for tests of other behaviour and trusted one-shots.
    pub fn in_process() -> Self {
        Sandbox {
            inner: Arc::new(Mode::InProcess),
        }
    }

    /// Every request in a child process with the config's limits.
    pub fn child_process(config: SandboxConfig) -> Self {
        Sandbox {
            inner: Arc::new(Mode::Child(pool::Pool::new(config))),
        }
    }

    /// Whether work is isolated (for `/worker-health` and logs).
    pub fn is_isolated(&self) -> bool {
        matches!(*self.inner, Mode::Child(_))
    }

    /// Runs the text_json_diff processor on a fetched page. The page comes back with the
    /// result, as [`changewatch_core::run_check`] returns it.
    pub async fn process(
        &self,
        page: FetchedPage,
        settings: ProcessorSettings,
        previous: PreviousState,
    ) -> Result<(FetchedPage, Processed), CheckError> {
        match &*self.inner {
            Mode::InProcess => tokio::task::spawn_blocking(move || {
                changewatch_core::pipeline::process(&page, &settings, &previous).map(|p| (page, p))
            })
            .await
            .map_err(|e| CheckError::Internal(e.to_string()))?,
            Mode::Child(pool) => {
                // Framed straight from the page (no copies of it besides the frame), and the
                // previous state dropped before the wait for a child.
                let payload =
                    protocol::process_frame(&page, &settings, &previous).map_err(|e| {
                        CheckError::Processor(format!(
                            "Exception: {}",
                            SandboxError::Protocol(e.to_string())
                        ))
                    })?;
                drop((settings, previous));
                match pool.call_with(payload).await {
                    Ok(Response::Processed(result)) => {
                        result.map(|p| (page, p)).map_err(CheckError::from)
                    }
                    Ok(Response::Rendered(_)) => Err(CheckError::Processor(format!(
                        "Exception: {}",
                        SandboxError::Protocol("a render reply to a processing request".into())
                    ))),
                    Err(e) => Err(CheckError::Processor(format!("Exception: {e}"))),
                }
            }
        }
    }

    /// Renders a check's request templates (`(field, template)`, see [`RenderJob::Request`]):
    /// the texts in order, or the check's `last_error` when one cannot be rendered.
    pub async fn render_request(
        &self,
        templates: Vec<(String, String)>,
    ) -> Result<Vec<String>, CheckError> {
        let fields: Vec<String> = templates.iter().map(|(f, _)| f.clone()).collect();
        match self.render(RenderJob::Request { templates }).await {
            Ok(rendered) if rendered.texts.len() == fields.len() => Ok(rendered.texts),
            Ok(_) => Err(CheckError::Processor(format!(
                "Exception: {}",
                SandboxError::Protocol("a render reply without every request template".into())
            ))),
            Err(RenderError::Isolated(message)) => {
                Err(CheckError::Processor(format!("Exception: {message}")))
            }
            Err(other) => Err(CheckError::Processor(format!("Exception: {other}"))),
        }
    }

    /// Renders notification templates.
    pub async fn render(&self, job: RenderJob) -> Result<Rendered, RenderError> {
        match &*self.inner {
            Mode::InProcess => tokio::task::spawn_blocking(move || child::render_job(job))
                .await
                .map_err(|e| RenderError::Isolated(e.to_string()))?
                .map_err(RenderError::Isolated),
            Mode::Child(pool) => {
                let what = match job {
                    RenderJob::Request { .. } => "request template",
                    _ => "notification template",
                };
                let request = Request::Render(Box::new(job));
                match pool.call(&request).await {
                    Ok(Response::Rendered(result)) => result.map_err(RenderError::Isolated),
                    Ok(Response::Processed(_)) => Err(RenderError::Isolated(
                        SandboxError::Protocol("a processing reply to a render request".into())
                            .to_string(),
                    )),
                    Err(e) => Err(RenderError::Isolated(format!("{what}: {e}"))),
                }
            }
        }
    }

    /// Stops the idle children (busy ones end with their request or its deadline).
    pub fn shutdown(&self) {
        if let Mode::Child(pool) = &*self.inner {
            pool.shutdown();
        }
    }
}
