//! Test support shared by the workspace's test suites.
//!
//! - [`FixtureServer`]: a real HTTP server on `127.0.0.1:0` serving pages that a test sets and changes
//!   while it runs. It owns a runtime on its own thread so that synchronous tests, async tests,
//!   benchmarks and tests that spawn the `changewatch` binary can all use it the same way.
//! - [`fixture`]: reads the fixture pages kept in the repository under `fixtures/`.
//! - [`moto::MotoServer`]: the AWS emulator (moto's server mode) for the aws adapters' tests.
//! - [`capture::CaptureServer`]: records every HTTP request and answers with canned or failing
//!   replies, for notification delivery tests; [`multipart`] reads the `multipart/form-data`
//!   bodies it records.
//! - [`smtp::SmtpServer`]: a small real SMTP receiver capturing envelope and message data.
//! - [`proxy::ProxyServer`]: HTTP (absolute-form and CONNECT) and SOCKS5 forward proxies, with
//!   optional credentials, recording what they were asked for.
//! - [`chrome::RemoteChrome`]: a headless Chromium with its DevTools port open, as the remote
//!   browser `PLAYWRIGHT_DRIVER_URL` or an extra browser names.
//! - [`pdf::document`]: a small valid PDF with given lines of text per page, for PDF watches.
//! - [`on_small_stack`]: runs a closure with a tokio blocking thread's stack.
//! - [`setup`]: one-line failures naming what `make test` would have installed.
//! - [`apprise_api::AppriseApiServer`]: an Apprise API server (real apprise behind the stateless
//!   `POST /notify`) for the notification relay's tests.

pub mod apprise_api;
pub mod capture;
pub mod chrome;
pub mod moto;
pub mod multipart;
pub mod pdf;
pub mod proxy;
pub mod setup;
pub mod smtp;

pub use capture::{CaptureServer, Captured};
pub use chrome::RemoteChrome;
pub use proxy::{Proxied, ProxyServer};
pub use smtp::{ReceivedMail, SmtpServer};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use tokio::sync::oneshot;

/// One canned reply. Tests build these and swap them in with [`FixtureServer::set`].
#[derive(Clone, Debug)]
pub struct Page {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Sleep before answering: lets tests exercise timeouts and "checking" states.
    pub delay: Option<Duration>,
    /// Sent in 64 KiB chunks without a `Content-Length`, so a client learns the size only
    /// while reading.
    pub chunked: bool,
}

impl Page {
    /// The value of one of the reply's headers.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn new(content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Page {
            status: 200,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
            delay: None,
            chunked: false,
        }
    }

    pub fn html(body: impl Into<Vec<u8>>) -> Self {
        Self::new("text/html; charset=utf-8", body)
    }

    pub fn text(body: impl Into<Vec<u8>>) -> Self {
        Self::new("text/plain; charset=utf-8", body)
    }

    pub fn json(body: impl Into<Vec<u8>>) -> Self {
        Self::new("application/json", body)
    }

    /// A reply with no content-type header at all, for charset and type sniffing tests.
    pub fn bare(body: impl Into<Vec<u8>>) -> Self {
        Page {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
            delay: None,
            chunked: false,
        }
    }

    pub fn redirect(location: &str) -> Self {
        Page {
            status: 302,
            headers: vec![("location".into(), location.into())],
            body: Vec::new(),
            delay: None,
            chunked: false,
        }
    }

    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    pub fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }
}

/// What the server saw of one request, so tests can assert on method, headers and body.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Shared {
    pages: HashMap<String, Page>,
    seen: Vec<SeenRequest>,
}

type SharedState = Arc<Mutex<Shared>>;

/// A real HTTP server on a free loopback port. Unknown paths answer 404.
pub struct FixtureServer {
    addr: SocketAddr,
    state: SharedState,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for FixtureServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixtureServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FixtureServer {
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
                .expect("fixture runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind fixture server");
                addr_tx
                    .send(listener.local_addr().expect("fixture addr"))
                    .expect("report fixture addr");
                let app = Router::new().fallback(serve).with_state(app_state);
                // Not a graceful shutdown: a test that ends while a delayed reply is pending must
                // not wait for it.
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = shutdown_rx => {}
                }
            });
        });
        let addr = addr_rx.recv().expect("fixture server started");
        FixtureServer {
            addr,
            state,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Absolute URL of `path` on this server (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The same URL through the `localhost` name, for tests that need name resolution.
    pub fn localhost_url(&self, path: &str) -> String {
        format!("http://localhost:{}{}", self.addr.port(), path)
    }

    pub fn set(&self, path: &str, page: Page) {
        self.lock().pages.insert(path.to_string(), page);
    }

    pub fn remove(&self, path: &str) {
        self.lock().pages.remove(path);
    }

    /// Requests received so far for `path`.
    pub fn seen(&self, path: &str) -> Vec<SeenRequest> {
        self.lock()
            .seen
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    pub fn hits(&self, path: &str) -> usize {
        self.lock().seen.iter().filter(|r| r.path == path).count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(State(state): State<SharedState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let page = {
        let mut shared = state.lock().unwrap_or_else(PoisonError::into_inner);
        shared.seen.push(SeenRequest {
            method: parts.method.to_string(),
            path: path.clone(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                .collect(),
            body,
        });
        shared.pages.get(&path).cloned()
    };
    let Some(page) = page else {
        let mut resp = Response::new(Body::from("not found"));
        *resp.status_mut() = StatusCode::NOT_FOUND;
        return resp;
    };
    if let Some(d) = page.delay {
        tokio::time::sleep(d).await;
    }
    // A page with an `ETag` answers a matching `If-None-Match` as servers do: 304, no body.
    let etag = page.header_value("etag");
    let if_none_match = parts.headers.get("if-none-match").map(|v| v.as_bytes());
    if let Some(etag) = etag
        && if_none_match == Some(etag.as_bytes())
    {
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        if let Ok(v) = HeaderValue::from_str(etag) {
            resp.headers_mut().insert("etag", v);
        }
        return resp;
    }
    let body = if page.chunked {
        let chunks: Vec<Result<Vec<u8>, std::convert::Infallible>> = page
            .body
            .chunks(64 * 1024)
            .map(|c| Ok(c.to_vec()))
            .collect();
        Body::from_stream(futures::stream::iter(chunks))
    } else {
        Body::from(page.body)
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(page.status).unwrap_or(StatusCode::OK);
    for (k, v) in &page.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            resp.headers_mut().append(k, v);
        }
    }
    resp
}

/// A news-style page of about `target` bytes titled `title`: nav, scripts, articles, a price
/// table per section; every seventh price follows `version`, so two versions differ in a few
/// lines as real edits do. The benchmarks' page (the criterion pipeline benches use the title
/// "Bench Gazette").
pub fn news_page(target: usize, title: &str, version: u32) -> String {
    let mut body = format!(
        "<!DOCTYPE html><html><head><title>{title}</title><style>body{{font:serif}}</style>\
         <script>var tracking = 'x';</script></head><body><nav><a href=/>Home</a> <a href=/w>World</a></nav><main>",
    );
    let mut i = 0u32;
    while body.len() < target {
        let price = if i.is_multiple_of(7) {
            10 + version
        } else {
            10
        };
        body.push_str(&format!(
            "<article class=story id=s{i}><h2>Story {i}: harbour news</h2>\
             <p>The <b>ferry</b> number {i} leaves at 06:{m:02}. Passengers should check the timetable.</p>\
             <table class=prices><tr><td>Cod</td><td>£{price}.40</td></tr><tr><td>Hake</td><td>£9.{m:02}</td></tr></table>\
             <div class=ad>Advert {i}</div></article>",
            m = i % 60
        ));
        i += 1;
    }
    body.push_str("</main><footer>Visitors: 1234</footer></body></html>");
    body
}

/// Path of a fixture page kept in the repository's `fixtures/` folder.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

/// Bytes of a fixture page.
///
/// # Panics
/// When the fixture is missing from the repository.
#[allow(clippy::expect_used)]
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).expect("fixture file present in the repository")
}

/// Runs `f` on a thread with a tokio blocking thread's 2 MB stack, so a test shows that deep
/// input needs no more stack than the runtime gives the work that handles it.
///
/// # Panics
/// When the thread cannot start, and with `f`'s own panic (a stack overflow aborts instead).
#[allow(clippy::expect_used)]
pub fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let thread = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(f)
        .expect("spawn a thread");
    match thread.join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
