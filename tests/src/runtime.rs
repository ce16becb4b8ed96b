//! A Lambda Runtime API of our own, and the execution environments it serves: each function
//! binary runs as a child process that finds the API through `AWS_LAMBDA_RUNTIME_API`, exactly
//! as under Lambda, and `lambda_runtime` inside it long-polls for events and posts results.
//!
//! What the binaries call (`lambda_runtime` 1.x):
//! - `GET /2018-06-01/runtime/invocation/next`: blocks until an event is invoked; answers it
//!   with the `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`, `-Invoked-Function-Arn` and
//!   `-Trace-Id` headers.
//! - `POST /2018-06-01/runtime/invocation/{id}/response` and `.../{id}/error`.
//! - `POST /2018-06-01/runtime/init/error`.
//!
//! Lambda's own behaviour around them: an environment is started on the first invocation that
//! finds none alive (a cold start, with the Lambda-provided variables and the function's
//! environment from the template, nothing else); one invocation at a time; an invocation past
//! the function's timeout kills the environment; a process that dies fails the invocation it
//! was running, and the next invocation starts a new one. Each environment gets its own
//! Runtime API endpoint, so a killed process can never take an event meant for its successor.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::process::{BASE_ENVIRONMENT, Logs};
use crate::template::{ACCOUNT_ID, FunctionSpec, REGION, STACK_NAME};

/// How an invocation failed, as Lambda reports it to the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FunctionError {
    /// The handler returned an error (`POST .../error`).
    Handled { error_type: String, message: String },
    /// The environment did not initialise: the process exited before asking for an event.
    Init {
        status: String,
        init_error: Option<String>,
    },
    /// The process died during the invocation (`Runtime.ExitError`).
    Exited { status: String },
    /// No result within the function's timeout; the environment was killed.
    Timeout(Duration),
    /// The emulator itself could not run the invocation.
    Emulator(String),
}

impl std::fmt::Display for FunctionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FunctionError::Handled {
                error_type,
                message,
            } => write!(f, "handler error {error_type}: {message}"),
            FunctionError::Init { status, init_error } => {
                write!(f, "init failed ({status})")?;
                if let Some(e) = init_error {
                    write!(f, ": {e}")?;
                }
                Ok(())
            }
            FunctionError::Exited { status } => {
                write!(f, "Runtime exited during the invocation: {status}")
            }
            FunctionError::Timeout(t) => write!(f, "Task timed out after {} seconds", t.as_secs()),
            FunctionError::Emulator(e) => write!(f, "emulator: {e}"),
        }
    }
}

impl std::error::Error for FunctionError {}

type Outcome = Result<Value, FunctionError>;

/// One event waiting for the runtime's next `GET .../next`.
struct Pending {
    id: String,
    body: Vec<u8>,
    deadline_ms: u128,
    trace_id: String,
    reply: oneshot::Sender<Outcome>,
}

/// The Runtime API of one execution environment.
struct RuntimeApi {
    function_arn: String,
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>,
    in_flight: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    /// The runtime asked for its first event: initialisation is over.
    ready: AtomicBool,
    init_error: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

async fn next(State(api): State<Arc<RuntimeApi>>) -> Response {
    api.ready.store(true, Ordering::SeqCst);
    let pending = api.queue.lock().await.recv().await;
    let Some(p) = pending else {
        return StatusCode::GONE.into_response();
    };
    lock(&api.in_flight).insert(p.id.clone(), p.reply);
    let mut resp = Response::new(Body::from(p.body));
    let headers = resp.headers_mut();
    for (name, value) in [
        ("content-type", "application/json".to_string()),
        ("lambda-runtime-aws-request-id", p.id),
        ("lambda-runtime-deadline-ms", p.deadline_ms.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            api.function_arn.clone(),
        ),
        ("lambda-runtime-trace-id", p.trace_id),
    ] {
        if let Ok(v) = value.parse() {
            headers.insert(name, v);
        }
    }
    resp
}

async fn respond(
    State(api): State<Arc<RuntimeApi>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(reply) = lock(&api.in_flight).remove(&id) else {
        return (StatusCode::BAD_REQUEST, "unknown request id").into_response();
    };
    let outcome = serde_json::from_slice(&body)
        .map_err(|e| FunctionError::Emulator(format!("the response is not JSON ({e}): {body:?}")));
    let _ = reply.send(outcome);
    accepted()
}

async fn error(
    State(api): State<Arc<RuntimeApi>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(reply) = lock(&api.in_flight).remove(&id) else {
        return (StatusCode::BAD_REQUEST, "unknown request id").into_response();
    };
    let report: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let error_type = report["errorType"]
        .as_str()
        .or_else(|| {
            headers
                .get("lambda-runtime-function-error-type")
                .and_then(|v| v.to_str().ok())
        })
        .unwrap_or("Unhandled")
        .to_string();
    let message = report["errorMessage"].as_str().map_or_else(
        || String::from_utf8_lossy(&body).into_owned(),
        str::to_string,
    );
    let _ = reply.send(Err(FunctionError::Handled {
        error_type,
        message,
    }));
    accepted()
}

async fn init_error(State(api): State<Arc<RuntimeApi>>, body: Bytes) -> Response {
    *lock(&api.init_error) = Some(String::from_utf8_lossy(&body).into_owned());
    accepted()
}

/// One execution environment: the process and its Runtime API.
struct Environment {
    child: Mutex<Child>,
    /// Invocations sent and not yet answered: the process is frozen when none is left.
    in_flight: Mutex<usize>,
    api: Arc<RuntimeApi>,
    sender: mpsc::UnboundedSender<Pending>,
    server: tokio::task::JoinHandle<()>,
}

impl Environment {
    /// The process's exit status, once it has exited.
    fn exited(&self) -> Option<String> {
        match lock(&self.child).try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("cannot wait for it: {e}")),
        }
    }

    /// Stops (`STOP`) or resumes (`CONT`) the process, as Lambda freezes an environment between
    /// invocations: nothing a function leaves running after its reply (a spawned task, a
    /// timer) gets any time until the next event, if one ever comes.
    fn signal(&self, signal: &str) {
        let pid = lock(&self.child).id();
        // `kill` is there wherever the suite runs (procps); no unsafe FFI for two signals.
        let _ = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// An invocation begins: the process runs.
    fn begin(&self) {
        let mut n = lock(&self.in_flight);
        *n += 1;
        self.signal("CONT");
    }

    /// An invocation was answered: the process is frozen unless another one is under way.
    fn answered(&self) {
        let mut n = lock(&self.in_flight);
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.signal("STOP");
        }
    }

    /// SIGKILL, as Lambda ends an environment.
    fn kill(&self) {
        let mut child = lock(&self.child);
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        self.kill();
        self.server.abort();
    }
}

/// How often an invocation looks at its process while it waits for the result.
const WATCH_EVERY: Duration = Duration::from_millis(50);

/// A deployed function: the binary, its configuration from the template, and at most one
/// live execution environment.
#[derive(Debug)]
pub struct Function {
    spec: FunctionSpec,
    binary: PathBuf,
    /// What the platform adds beyond Lambda's own variables: the execution role's credentials
    /// and the emulator's endpoint.
    platform: BTreeMap<String, String>,
    current: Mutex<Option<Arc<Environment>>>,
    cold_starts: AtomicU64,
    /// Invocations answered and their billed milliseconds (each rounded up to 1 ms, as Lambda
    /// bills): what the cost benchmark prices as GB-seconds and requests.
    invocations: AtomicU64,
    billed_ms: AtomicU64,
    logs: Logs,
    /// A cgroup (v1 memory controller directory) each new environment's process joins, so
    /// that it and its children live under a memory limit as they would in Lambda.
    cgroup: Mutex<Option<PathBuf>>,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment").finish_non_exhaustive()
    }
}

fn epoch_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

impl Function {
    pub fn new(spec: FunctionSpec, binary: PathBuf, platform: BTreeMap<String, String>) -> Self {
        Function {
            spec,
            binary,
            platform,
            current: Mutex::new(None),
            cold_starts: AtomicU64::new(0),
            invocations: AtomicU64::new(0),
            billed_ms: AtomicU64::new(0),
            logs: Logs::default(),
            cgroup: Mutex::new(None),
        }
    }

    /// Environments started from now on run in the cgroup `dir` (its `cgroup.procs` gets
    /// their process id; the sandbox children they start inherit it).
    pub fn place_in_cgroup(&self, dir: PathBuf) {
        if let Ok(mut cgroup) = self.cgroup.lock() {
            *cgroup = Some(dir);
        }
    }

    pub fn spec(&self) -> &FunctionSpec {
        &self.spec
    }

    /// The physical name CloudFormation would give it.
    pub fn name(&self) -> String {
        format!("{STACK_NAME}-{}", self.spec.logical_id)
    }

    pub fn arn(&self) -> String {
        format!(
            "arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{}",
            self.name()
        )
    }

    /// Execution environments started so far.
    pub fn cold_starts(&self) -> u64 {
        self.cold_starts.load(Ordering::SeqCst)
    }

    /// Invocations so far and their billed duration in milliseconds.
    pub fn billing(&self) -> (u64, u64) {
        (
            self.invocations.load(Ordering::SeqCst),
            self.billed_ms.load(Ordering::SeqCst),
        )
    }

    /// What the function's processes wrote (the last lines).
    pub fn logs(&self) -> String {
        self.logs.text()
    }

    /// The exact environment of a new process: Lambda's variables, the platform's, the
    /// function's from the template.
    pub fn environment(&self, runtime_api: &str, generation: u64) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = BASE_ENVIRONMENT
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let name = self.name();
        let day = chrono::DateTime::from_timestamp_millis(epoch_ms() as i64)
            .map(|t| t.format("%Y/%m/%d").to_string())
            .unwrap_or_default();
        let lambda = [
            ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", name.clone()),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                self.spec.memory_mb.to_string(),
            ),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                self.spec
                    .log_group
                    .clone()
                    .unwrap_or_else(|| format!("/aws/lambda/{name}")),
            ),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME",
                format!(
                    "{day}/[$LATEST]{}{generation:04x}",
                    &uuid::Uuid::new_v4().simple().to_string()[..28]
                ),
            ),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_string()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_DEFAULT_REGION", REGION.to_string()),
            ("_HANDLER", "bootstrap".to_string()),
            (
                "LAMBDA_TASK_ROOT",
                self.binary
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
        ];
        env.extend(lambda.into_iter().map(|(k, v)| (k.to_string(), v)));
        env.extend(self.platform.clone());
        env.extend(self.spec.environment.clone());
        env
    }

    /// The live environment, or a new one (a cold start).
    fn environment_for_invoke(&self) -> Result<Arc<Environment>, FunctionError> {
        let mut current = lock(&self.current);
        if let Some(env) = current.as_ref()
            && env.exited().is_none()
        {
            return Ok(env.clone());
        }
        let env = Arc::new(self.cold_start()?);
        *current = Some(env.clone());
        Ok(env)
    }

    fn cold_start(&self) -> Result<Environment, FunctionError> {
        let emulator = |e: std::io::Error| FunctionError::Emulator(e.to_string());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(emulator)?;
        listener.set_nonblocking(true).map_err(emulator)?;
        let addr = listener.local_addr().map_err(emulator)?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(emulator)?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let api = Arc::new(RuntimeApi {
            function_arn: self.arn(),
            queue: tokio::sync::Mutex::new(receiver),
            in_flight: Mutex::new(HashMap::new()),
            ready: AtomicBool::new(false),
            init_error: Mutex::new(None),
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let generation = self.cold_starts.fetch_add(1, Ordering::SeqCst) + 1;
        let spawned = Command::new(&self.binary)
            .env_clear()
            .envs(self.environment(&addr.to_string(), generation))
            .current_dir(self.binary.parent().unwrap_or(std::path::Path::new(".")))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                server.abort();
                return Err(FunctionError::Emulator(format!(
                    "cannot start {}: {e}",
                    self.binary.display()
                )));
            }
        };
        let cgroup = self.cgroup.lock().ok().and_then(|c| c.clone());
        if let Some(dir) = cgroup
            && let Err(e) = std::fs::write(dir.join("cgroup.procs"), child.id().to_string())
        {
            let _ = child.kill();
            let _ = child.wait();
            server.abort();
            return Err(FunctionError::Emulator(format!(
                "cannot place the process in {}: {e}",
                dir.display()
            )));
        }
        let label = format!("{} #{generation}", self.spec.logical_id);
        if let Some(out) = child.stdout.take() {
            self.logs.capture(label.clone(), out, None);
        }
        if let Some(err) = child.stderr.take() {
            self.logs.capture(label, err, None);
        }
        Ok(Environment {
            child: Mutex::new(child),
            in_flight: Mutex::new(0),
            api,
            sender,
            server,
        })
    }

    /// Invokes the function synchronously with `event` (`RequestResponse`), as Lambda does:
    /// the result, the handler's error, or how the environment failed.
    pub async fn invoke(&self, event: &Value) -> Outcome {
        let started = Instant::now();
        let outcome = self.invoke_in_environment(event).await;
        let ms = u64::try_from(started.elapsed().as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
        self.invocations.fetch_add(1, Ordering::SeqCst);
        self.billed_ms.fetch_add(ms.max(1), Ordering::SeqCst);
        outcome
    }

    async fn invoke_in_environment(&self, event: &Value) -> Outcome {
        let env = self.environment_for_invoke()?;
        let id = uuid::Uuid::new_v4().to_string();
        let (reply, mut result) = oneshot::channel();
        let now = epoch_ms();
        let trace = uuid::Uuid::new_v4().simple().to_string();
        let pending = Pending {
            id,
            body: serde_json::to_vec(event).map_err(|e| FunctionError::Emulator(e.to_string()))?,
            deadline_ms: now + self.spec.timeout.as_millis(),
            trace_id: format!(
                "Root=1-{:08x}-{};Parent={};Sampled=0",
                now / 1000,
                &trace[..24],
                &trace[16..32]
            ),
            reply,
        };
        env.begin();
        if env.sender.send(pending).is_err() {
            return Err(FunctionError::Emulator("the Runtime API is gone".into()));
        }
        let started = Instant::now();
        loop {
            tokio::select! {
                r = &mut result => {
                    env.answered();
                    return r.unwrap_or_else(|_| Err(FunctionError::Emulator("the invocation was dropped".into())));
                }
                () = tokio::time::sleep(WATCH_EVERY) => {}
            }
            if let Some(status) = env.exited() {
                if let Ok(r) = result.try_recv() {
                    return r;
                }
                return Err(if env.api.ready.load(Ordering::SeqCst) {
                    FunctionError::Exited { status }
                } else {
                    FunctionError::Init {
                        status,
                        init_error: lock(&env.api.init_error).clone(),
                    }
                });
            }
            if started.elapsed() > self.spec.timeout {
                self.end(&env);
                return Err(FunctionError::Timeout(self.spec.timeout));
            }
        }
    }

    /// Starts an environment now and waits until it asks for its first event: a process whose
    /// initialisation fails (a missing or invalid variable) exits instead.
    pub async fn start(&self, within: Duration) -> Result<(), FunctionError> {
        let env = self.environment_for_invoke()?;
        let deadline = Instant::now() + within;
        loop {
            if env.api.ready.load(Ordering::SeqCst) {
                return Ok(());
            }
            if let Some(status) = env.exited() {
                return Err(FunctionError::Init {
                    status,
                    init_error: lock(&env.api.init_error).clone(),
                });
            }
            if Instant::now() > deadline {
                return Err(FunctionError::Emulator(format!(
                    "not ready within {within:?}"
                )));
            }
            tokio::time::sleep(WATCH_EVERY).await;
        }
    }

    /// Kills the live environment with SIGKILL, whatever it is doing (an invocation in
    /// progress fails with [`FunctionError::Exited`]). The next invocation cold-starts.
    pub fn kill(&self) {
        if let Some(env) = lock(&self.current).take() {
            env.kill();
        }
    }

    /// A new environment now (kill, then cold start).
    pub fn restart(&self) -> Result<(), FunctionError> {
        self.kill();
        self.environment_for_invoke().map(|_| ())
    }

    fn end(&self, env: &Arc<Environment>) {
        env.kill();
        let mut current = lock(&self.current);
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, env)) {
            *current = None;
        }
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- {} ({} cold starts), last output:\n{}",
                self.spec.logical_id,
                self.cold_starts(),
                self.logs.text()
            );
        }
    }
}
