//! A capturing HTTP server: records every request (method, path, query, headers, body) and
//! answers with canned replies, so notification tests can assert on exactly what a service
//! would receive, and make it fail on purpose (`fail_next`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use tokio::sync::oneshot;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Captured {
    pub method: String,
    pub path: String,
    /// Raw query string, without the `?`.
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, or `Value::Null` when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The body's parts when it is `multipart/form-data`, or why it is not a well-formed one.
    pub fn multipart(&self) -> Result<Vec<crate::multipart::FormPart>, String> {
        crate::multipart::parse(self.header("content-type").unwrap_or_default(), &self.body)
    }
}

/// A canned answer for requests whose path starts with a prefix.
#[derive(Clone, Debug)]
struct Canned {
    prefix: String,
    status: u16,
    content_type: String,
    body: String,
}

#[derive(Debug, Default)]
struct Shared {
    seen: Vec<Captured>,
    canned: Vec<Canned>,
    /// Statuses to answer with before any canned reply, first one next.
    failures: Vec<u16>,
}

type SharedState = Arc<Mutex<Shared>>;

/// A real HTTP server on `127.0.0.1:0` that answers 200 `ok` unless told otherwise.
pub struct CaptureServer {
    addr: SocketAddr,
    state: SharedState,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for CaptureServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl CaptureServer {
    /// Starts the server and returns once it is listening.
    ///
    /// # Panics
    /// When the loopback socket cannot be bound: a test environment fault, not a test outcome.
    #[allow(clippy::expect_used)]
    pub fn start() -> Self {
        let state: SharedState = Arc::default();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let app_state = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("capture runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind capture server");
                addr_tx
                    .send(listener.local_addr().expect("capture addr"))
                    .expect("report capture addr");
                let app = Router::new().fallback(capture).with_state(app_state);
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = shutdown_rx => {}
                }
            });
        });
        let addr = addr_rx.recv().expect("capture server started");
        CaptureServer {
            addr,
            state,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` with no trailing slash.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:<port>`, for building notification URLs.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Answers requests whose path starts with `prefix` (the longest matching prefix wins).
    pub fn reply(&self, prefix: &str, status: u16, content_type: &str, body: &str) {
        self.lock().canned.push(Canned {
            prefix: prefix.to_string(),
            status,
            content_type: content_type.to_string(),
            body: body.to_string(),
        });
    }

    /// Answers the next `n` requests (any path) with `status`, then goes back to normal.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.lock().failures.extend(std::iter::repeat_n(status, n));
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Captured> {
        self.lock().seen.clone()
    }

    /// Every request so far, and forgets them.
    pub fn take(&self) -> Vec<Captured> {
        std::mem::take(&mut self.lock().seen)
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for CaptureServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn capture(State(state): State<SharedState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let (status, content_type, text) = {
        let mut shared = state.lock().unwrap_or_else(PoisonError::into_inner);
        shared.seen.push(Captured {
            method: parts.method.to_string(),
            path: path.clone(),
            query: parts.uri.query().map(str::to_string),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                .collect(),
            body,
        });
        if shared.failures.is_empty() {
            shared
                .canned
                .iter()
                .filter(|c| path.starts_with(&c.prefix))
                .max_by_key(|c| c.prefix.len())
                .map(|c| (c.status, c.content_type.clone(), c.body.clone()))
                .unwrap_or((200, "text/plain".into(), "ok".into()))
        } else {
            let status = shared.failures.remove(0);
            (
                status,
                "text/plain".into(),
                format!("failing on purpose ({status})"),
            )
        }
    };
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        resp.headers_mut().insert("content-type", v);
    }
    resp
}
