//! The browser fetcher: a page fetched by a real Chrome over the DevTools Protocol, for
//! watches whose text exists only once JavaScript has run (`fetch_backend: html_webdriver`).
//!
//! - [`BrowserFetcher`]: one browser for the process, a local Chromium launched on first use
//!   or a remote one at `PLAYWRIGHT_DRIVER_URL` (a `ws://` CDP endpoint, as browserless and
//!   sockpuppetbrowser serve); a fresh browser context per check, disposed afterwards; at
//!   most `max_pages` checks in the browser at once. A browser that died is started again
//!   by the next check.
//! - The address guard: every request the page makes (the navigation, each redirect hop,
//!   every subresource, fetch/XHR) pauses in the CDP `Fetch` domain and continues only when
//!   its target passes the same [`AddressPolicy`] as the plain fetcher (a literal address,
//!   or a name resolved here first). That misses WebSockets and a name that resolves
//!   differently for Chrome, so a launched Chrome also connects only through `relay`, a
//!   forward proxy in process that resolves, vets and connects once per connection (a
//!   watch's proxy behind it). A remote browser has only the `Fetch` guard: see
//!   docs/SECURITY.md.
//! - [`Browsers`]: the default browser and the settings' extra browsers (remote Chromes
//!   named by `extra_browser_<name>` watches), one connection per DevTools URL.
//! - The main document's response (status, headers) is read at the `Fetch` domain's
//!   response stage, so a 404 or an empty page is the same error as with the plain fetcher.
//! - A full-page JPEG screenshot of what was read (`SCREENSHOT_MAX_HEIGHT`, size-capped)
//!   comes back with the page, for the checker to store with a new snapshot.
//! - For restock watches, upstream's out-of-stock scan of the rendered page
//!   (`stock_scan.js` collects the texts, `changewatch_core::restock::stock_scan` judges).
//! - `steps`: browser steps (click, type, select, wait, …) run on the loaded page with real
//!   input events, each step's failure reported by its position.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use changewatch_core::fetch::{FetchError, FetchRequest, FetchedPage, parse_fetch_url, vet_target};
use changewatch_core::ssrf::{AddressPolicy, Refusal};
use chromiumoxide::auth::Credentials;
use chromiumoxide::browser::{Browser, BrowserConfig as CdpConfig};
use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::fetch::{
    ContinueRequestParams, EnableParams, EventRequestPaused, FailRequestParams, RequestPattern,
    RequestStage,
};
use chromiumoxide::cdp::browser_protocol::network::{
    ErrorReason, Headers, ResourceType, SetExtraHttpHeadersParams, SetUserAgentOverrideParams,
};
use chromiumoxide::cdp::browser_protocol::page::{
    CaptureScreenshotFormat, CaptureScreenshotParams, Viewport,
};
use chromiumoxide::cdp::browser_protocol::target::{
    CreateBrowserContextParams, CreateTargetParams,
};
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use chromiumoxide::handler::HandlerConfig;
use chromiumoxide::page::Page;
use futures::StreamExt;
use tokio::sync::Semaphore;
use tracing::{debug, warn};
use url::Url;

use changewatch_core::model::RunnableStep;

mod relay;
mod steps;

use relay::{Relay, Stopped, Target, Upstream};

/// Where the browser comes from.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// Start this Chrome/Chromium executable headless on first use.
    Launch { executable: PathBuf },
    /// Connect to a running browser's DevTools WebSocket (`PLAYWRIGHT_DRIVER_URL`).
    Connect { ws_url: String },
}

/// What the browser fetcher is given once.
#[derive(Clone, Debug)]
pub struct BrowserConfig {
    pub endpoint: Endpoint,
    pub policy: AddressPolicy,
    /// Checks in the browser at once; more wait for a slot (within their own timeout).
    pub max_pages: usize,
    /// The largest page (its serialized DOM) accepted, as `FETCH_MAX_BYTES`.
    pub max_bytes: usize,
    pub user_agent: String,
    /// Given to the page after each browser step before the next (upstream's 1.5 s), then
    /// any navigation the step started is waited for.
    pub step_settle: Duration,
    /// The tallest screenshot taken, in CSS pixels (`SCREENSHOT_MAX_HEIGHT`, upstream's
    /// 20000); 0 takes none.
    pub screenshot_max_height: u32,
}

/// The browser's window for every page: a desktop layout, and the screenshots' width.
const VIEWPORT: (i64, i64) = (1280, 1024);
/// Upstream's JPEG quality for screenshots, and the one tried when that is too large.
const SCREENSHOT_QUALITY: [i64; 2] = [40, 15];
/// The largest screenshot stored: past it at the lower quality, the check keeps none.
const SCREENSHOT_MAX_BYTES: usize = 4 * 1024 * 1024;
/// The page side of the restock processor's out-of-stock scan.
const STOCK_SCAN_JS: &str = include_str!("stock_scan.js");

/// One browser check: the request as the watch describes it, what to wait and run.
#[derive(Clone, Debug)]
pub struct BrowserRequest {
    pub request: FetchRequest,
    /// `webdriver_delay`: time for the page's scripts after the load event.
    pub delay: Duration,
    /// `webdriver_js_execute_code`, run once the page has loaded, before the delay.
    pub js: Option<String>,
    /// Browser steps, run after the delay; the delay is waited again after them.
    pub steps: Vec<RunnableStep>,
    /// Scan the rendered page for out-of-stock text (restock watches: upstream runs its scan
    /// on every browser fetch, only the restock processor reads it).
    pub stock_scan: bool,
}

/// A shared handle: clones use the same browser and slots.
#[derive(Clone, Debug)]
pub struct BrowserFetcher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: BrowserConfig,
    slots: Semaphore,
    running: tokio::sync::Mutex<Option<Running>>,
}

#[derive(Debug)]
struct Running {
    browser: Arc<Browser>,
    handler: tokio::task::JoinHandle<()>,
    /// A launched browser's profile directory, removed with it (two browsers must not
    /// share one: Chrome refuses a profile another instance holds).
    _profile: Option<tempfile::TempDir>,
}

/// What the interception saw of the main document and of refused requests.
#[derive(Debug, Default)]
struct Seen {
    /// The frame of the first document request: the navigation's (iframes come later).
    main_frame: Option<String>,
    /// The last main-frame document response (a redirect's target replaces its source).
    main: Option<MainResponse>,
    /// The main navigation's refused request (a redirect hop included), if one was refused.
    main_refused: Option<(String, Verdict)>,
}

#[derive(Clone, Debug)]
struct MainResponse {
    url: String,
    status: u16,
    headers: Vec<(String, String)>,
}

/// The guard's answer for one request of the page.
#[derive(Clone, Debug)]
enum Verdict {
    Pass,
    Refused(Refusal),
    /// Not http(s) and not a scheme without a network (`file:`, `ftp:`, …).
    Unsupported,
}

/// The browsers a checker can use: the default one (`PLAYWRIGHT_DRIVER_URL` or a launched
/// Chromium, if any) and the settings' extra browsers (`extra_browser_<name>` watches), one
/// connection per DevTools URL, made on first use and kept. Clones share them.
#[derive(Clone, Debug)]
pub struct Browsers {
    inner: Arc<BrowsersInner>,
}

#[derive(Debug)]
struct BrowsersInner {
    /// What every browser is given besides its endpoint.
    template: BrowserConfig,
    default: Option<BrowserFetcher>,
    /// Extra browsers by connection URL, oldest first (at most [`MAX_EXTRA_BROWSERS`]).
    extra: Mutex<Vec<(String, BrowserFetcher)>>,
}

/// Extra browsers connected at once; past this the least recently added is disconnected (the
/// settings' list is short; this bounds a list edited many times).
const MAX_EXTRA_BROWSERS: usize = 16;

impl Browsers {
    /// `template.endpoint` is the default browser when `has_default`; extra browsers get the
    /// rest of `template` with their own endpoint.
    pub fn new(template: BrowserConfig, has_default: bool) -> Self {
        let default = has_default.then(|| BrowserFetcher::new(template.clone()));
        Browsers {
            inner: Arc::new(BrowsersInner {
                template,
                default,
                extra: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The default browser, if this process has one.
    pub fn default_browser(&self) -> Option<BrowserFetcher> {
        self.inner.default.clone()
    }

    /// The remote browser at `ws_url` (an extra browser's `browser_connection_url`).
    pub fn remote(&self, ws_url: &str) -> BrowserFetcher {
        let mut extra = self
            .inner
            .extra
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, f)) = extra.iter().find(|(u, _)| u == ws_url) {
            return f.clone();
        }
        let fetcher = BrowserFetcher::new(BrowserConfig {
            endpoint: Endpoint::Connect {
                ws_url: ws_url.to_string(),
            },
            ..self.inner.template.clone()
        });
        if extra.len() >= MAX_EXTRA_BROWSERS {
            let (_, old) = extra.remove(0);
            tokio::spawn(async move { old.shutdown().await });
        }
        extra.push((ws_url.to_string(), fetcher.clone()));
        fetcher
    }

    /// Closes every browser (see [`BrowserFetcher::shutdown`]).
    pub async fn shutdown(&self) {
        let extra: Vec<BrowserFetcher> = self
            .inner
            .extra
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .map(|(_, f)| f)
            .collect();
        for f in extra {
            f.shutdown().await;
        }
        if let Some(f) = &self.inner.default {
            f.shutdown().await;
        }
    }
}

impl BrowserFetcher {
    pub fn new(config: BrowserConfig) -> Self {
        let pages = config.max_pages.max(1);
        BrowserFetcher {
            inner: Arc::new(Inner {
                config,
                slots: Semaphore::new(pages),
                running: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// Fetches a page in a new browser context. The request's timeout covers the wait for a
    /// slot, the navigation, the delay and the script; the context is disposed whatever
    /// happens.
    pub async fn fetch(&self, req: &BrowserRequest) -> Result<FetchedPage, FetchError> {
        let started = Instant::now();
        let url = parse_fetch_url(&req.request.url)?;
        if !req.request.method.eq_ignore_ascii_case("GET") || req.request.body.is_some() {
            return Err(FetchError::Connect {
                url: url.to_string(),
                reason: "the browser fetcher only loads pages (GET, no request body); use the plain HTTP fetcher for other requests".into(),
            });
        }
        let timeout = req.request.timeout;
        let timed_out = || FetchError::Timeout {
            url: url.to_string(),
            secs: timeout.as_secs(),
        };
        let _slot = tokio::time::timeout(timeout, self.inner.slots.acquire())
            .await
            .map_err(|_| timed_out())?
            .map_err(|_| browser_error(&url, "the browser fetcher is shut down"))?;
        let (relay, proxy) = self.route(req.request.proxy.as_deref(), &url).await?;
        let browser = self.browser(&url).await?;
        let mut context_params = CreateBrowserContextParams::default();
        let server = relay
            .as_ref()
            .map(Relay::server)
            .or_else(|| proxy.as_ref().map(|p| p.server.clone()));
        if let Some(server) = server {
            context_params.proxy_server = Some(server);
            // Chrome sends loopback targets around a proxy unless told otherwise: through
            // the relay they are judged like the rest, and with a watch's proxy they go
            // where the rest goes.
            context_params.proxy_bypass_list = Some("<-loopback>".into());
        }
        let context = browser
            .create_browser_context(context_params)
            .await
            .map_err(|e| browser_error(&url, &e.to_string()))?;
        let opened = browser
            .new_page(
                CreateTargetParams::builder()
                    .url("about:blank")
                    .browser_context_id(context.clone())
                    .build()
                    .map_err(|e| browser_error(&url, &e))?,
            )
            .await;
        let result = match opened {
            Ok(page) => {
                let left = timeout.saturating_sub(started.elapsed());
                let loaded = tokio::time::timeout(
                    left,
                    self.load(&page, &url, req, proxy.as_ref(), relay.as_ref(), started),
                )
                .await;
                // Closed on every path: a page left open would keep running its scripts.
                let _ = tokio::time::timeout(Duration::from_secs(5), page.close()).await;
                loaded.unwrap_or_else(|_| Err(timed_out()))
            }
            Err(e) => Err(browser_error(&url, &e.to_string())),
        };
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            browser.dispose_browser_context(context),
        )
        .await;
        // The relay goes last: the page and its context held connections through it.
        drop(relay);
        result
    }

    /// How this check's connections leave the browser. A launched Chrome connects through a
    /// relay of the check's own, the watch's proxy behind it (an `https://` proxy, which the
    /// relay does not speak, Chrome reaches itself); a remote Chrome cannot reach this
    /// process's loopback, so it is given the watch's proxy, if any, and the `Fetch` guard
    /// is its only one.
    async fn route(
        &self,
        raw_proxy: Option<&str>,
        url: &Url,
    ) -> Result<(Option<Relay>, Option<BrowserProxy>), FetchError> {
        let launched = matches!(self.inner.config.endpoint, Endpoint::Launch { .. });
        let upstream = match raw_proxy {
            Some(raw) if launched => relay_upstream(raw)?,
            Some(raw) => return Ok((None, Some(browser_proxy(raw)?))),
            None if launched => Some(Upstream::Direct),
            None => return Ok((None, None)),
        };
        let Some(upstream) = upstream else {
            return Ok((None, raw_proxy.map(browser_proxy).transpose()?));
        };
        let relay = Relay::start(self.inner.config.policy.clone(), upstream)
            .await
            .map_err(|e| browser_error(url, &format!("cannot open the browser's relay: {e}")))?;
        Ok((Some(relay), None))
    }

    /// Closes the browser (a launched one exits, its profile directory is removed; a remote
    /// one is only disconnected). Checks still running fail; a later check starts it again.
    pub async fn shutdown(&self) {
        let Some(running) = self.inner.running.lock().await.take() else {
            return;
        };
        let Running {
            browser,
            handler,
            _profile,
        } = running;
        if let Ok(mut browser) = Arc::try_unwrap(browser) {
            let closed = async {
                let _ = browser.close().await;
                let _ = browser.wait().await;
            };
            if tokio::time::timeout(Duration::from_secs(5), closed)
                .await
                .is_err()
            {
                let _ = browser.kill().await;
            }
        }
        handler.abort();
        // Only now, and once more a moment later: Chrome's helper processes outlive its
        // main one briefly and may still write their caches into the profile.
        if let Some(profile) = _profile {
            let path = profile.path().to_owned();
            drop(profile);
            tokio::time::sleep(Duration::from_millis(300)).await;
            let _ = std::fs::remove_dir_all(path);
        }
    }

    /// The running browser, started (or started again) when there is none.
    async fn browser(&self, url: &Url) -> Result<Arc<Browser>, FetchError> {
        let mut running = self.inner.running.lock().await;
        if let Some(r) = running.as_ref()
            && !r.handler.is_finished()
        {
            return Ok(r.browser.clone());
        }
        let mut profile = None;
        let (browser, mut handler) = match &self.inner.config.endpoint {
            Endpoint::Launch { executable } => {
                let dir = tempfile::Builder::new()
                    .prefix("changewatch-browser-")
                    .tempdir()
                    .map_err(|e| browser_error(url, &format!("no profile directory: {e}")))?;
                let config = CdpConfig::builder()
                    .chrome_executable(executable)
                    .user_data_dir(dir.path())
                    .no_sandbox()
                    .arg("--disable-gpu")
                    .arg("--disable-background-networking")
                    .arg("--disable-dev-shm-usage")
                    .enable_request_intercept()
                    .build()
                    .map_err(|e| browser_error(url, &format!("cannot start the browser: {e}")))?;
                profile = Some(dir);
                Browser::launch(config).await
            }
            Endpoint::Connect { ws_url } => {
                let config = HandlerConfig {
                    request_intercept: true,
                    ..HandlerConfig::default()
                };
                Browser::connect_with_config(ws_url.clone(), config).await
            }
        }
        .map_err(|e| browser_error(url, &format!("cannot reach the browser: {e}")))?;
        let handler = tokio::spawn(async move {
            while let Some(event) = handler.next().await {
                if let Err(e) = event {
                    debug!(error = %e, "browser connection event");
                }
            }
            warn!("the browser connection ended");
        });
        let browser = Arc::new(browser);
        *running = Some(Running {
            browser: browser.clone(),
            handler,
            _profile: profile,
        });
        Ok(browser)
    }

    async fn load(
        &self,
        page: &Page,
        url: &Url,
        req: &BrowserRequest,
        proxy: Option<&BrowserProxy>,
        relay: Option<&Relay>,
        started: Instant,
    ) -> Result<FetchedPage, FetchError> {
        let cdp = |e: chromiumoxide::error::CdpError| browser_error(url, &e.to_string());
        page.execute(SetDeviceMetricsOverrideParams::new(
            VIEWPORT.0, VIEWPORT.1, 1.0, false,
        ))
        .await
        .map_err(cdp)?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut paused = page
            .event_listener::<EventRequestPaused>()
            .await
            .map_err(cdp)?;
        let guard_page = page.clone();
        let policy = self.inner.config.policy.clone();
        let record = seen.clone();
        // Ends with the page's event stream, when the page is closed.
        tokio::spawn(async move {
            while let Some(ev) = paused.next().await {
                decide(&guard_page, &policy, &ev, &record).await;
            }
        });
        // chromiumoxide's network manager answers `Fetch.authRequired` (the browser is
        // started with request interception on, so it never continues paused requests
        // itself): with these credentials once per request, then cancelled, so wrong ones
        // end as the proxy's 407.
        if let Some((username, password)) = proxy.and_then(|p| p.credentials.clone()) {
            page.authenticate(Credentials { username, password })
                .await
                .map_err(cdp)?;
        }
        page.execute(EnableParams {
            patterns: Some(vec![
                RequestPattern {
                    url_pattern: Some("*".into()),
                    resource_type: None,
                    request_stage: Some(RequestStage::Request),
                },
                RequestPattern {
                    url_pattern: Some("*".into()),
                    resource_type: Some(ResourceType::Document),
                    request_stage: Some(RequestStage::Response),
                },
            ]),
            handle_auth_requests: Some(true),
        })
        .await
        .map_err(cdp)?;
        let user_agent = req
            .request
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("user-agent"))
            .map_or(self.inner.config.user_agent.clone(), |(_, v)| v.clone());
        page.execute(SetUserAgentOverrideParams::new(user_agent))
            .await
            .map_err(cdp)?;
        let extra: serde_json::Map<String, serde_json::Value> = req
            .request
            .headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("user-agent"))
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        if !extra.is_empty() {
            page.execute(SetExtraHttpHeadersParams::new(Headers::new(
                serde_json::Value::Object(extra),
            )))
            .await
            .map_err(cdp)?;
        }
        let navigated = page.goto(url.as_str()).await;
        main_refused(&seen, url)?;
        if navigated.is_err() {
            relay_stopped(relay, url)?;
        }
        navigated.map_err(cdp)?;
        if let Some(js) = req.js.as_deref().filter(|js| !js.trim().is_empty()) {
            page.evaluate(js.to_string())
                .await
                .map_err(|e| FetchError::Connect {
                    url: url.to_string(),
                    reason: format!(
                        "the page's JavaScript (webdriver_js_execute_code) failed: {e}"
                    ),
                })?;
        }
        if !req.delay.is_zero() {
            tokio::time::sleep(req.delay).await;
        }
        // The document the steps start from answers for the fetch, as upstream judges it:
        // a step that submits a form does not turn the check into its reply's status.
        let MainResponse {
            url: final_url,
            status,
            headers,
        } = lock(&seen).main.clone().unwrap_or_else(|| MainResponse {
            // No document response seen (a page Chrome made itself): the navigation
            // succeeded, so it counts as a 200.
            url: url.to_string(),
            status: 200,
            headers: Vec::new(),
        });
        if !(200..300).contains(&status) && !req.request.ignore_status_codes {
            relay_stopped(relay, url)?;
            return Err(FetchError::Status { status });
        }
        if !req.steps.is_empty() {
            let deadline = started + req.request.timeout;
            steps::Steps {
                page,
                start_url: url,
                policy: &self.inner.config.policy,
                settle: self.inner.config.step_settle,
                deadline,
            }
            .run(&req.steps)
            .await?;
            if !req.delay.is_zero() {
                tokio::time::sleep(req.delay).await;
            }
            // A navigation a step caused that the guard refused (a link to a private
            // address): the page now shows Chrome's error page, not content.
            main_refused(&seen, url)?;
        }
        let stock_scan = if req.stock_scan {
            Some(scan_stock(page, url).await?)
        } else {
            None
        };
        let html = page.content().await.map_err(cdp)?;
        let limit = self.inner.config.max_bytes;
        if html.len() > limit {
            return Err(FetchError::TooLarge { limit });
        }
        let screenshot = match self.inner.config.screenshot_max_height {
            0 => None,
            max_height => screenshot(page, max_height).await,
        };
        if html.is_empty() && !req.request.empty_pages_are_a_change {
            return Err(FetchError::EmptyReply { status });
        }
        // The DOM is text already: served as UTF-8 whatever the page's own charset was.
        let mut page = FetchedPage::from_reply(
            final_url,
            status,
            headers,
            html.into_bytes(),
            Some("text/html; charset=utf-8"),
            started.elapsed().as_secs_f64(),
        );
        page.screenshot = screenshot;
        page.stock_scan = stock_scan.map(str::to_string);
        Ok(page)
    }
}

/// The page side of the restock scan: texts the browser sees near the top of the product
/// page, judged by [`changewatch_core::restock::stock_scan`]. A page whose scripts break the
/// scan fails the check with that reason rather than passing as "possibly in stock".
async fn scan_stock(page: &Page, url: &Url) -> Result<&'static str, FetchError> {
    let params = EvaluateParams::builder()
        .expression(STOCK_SCAN_JS)
        .return_by_value(true)
        .build()
        .map_err(|e| browser_error(url, &format!("the out-of-stock scan: {e}")))?;
    let reply = page
        .execute(params)
        .await
        .map_err(|e| browser_error(url, &format!("the out-of-stock scan failed: {e}")))?;
    if let Some(details) = &reply.result.exception_details {
        return Err(browser_error(
            url,
            &format!("the out-of-stock scan failed in the page: {}", details.text),
        ));
    }
    let texts: Vec<String> = reply
        .result
        .result
        .value
        .clone()
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| browser_error(url, "the out-of-stock scan returned no list of texts"))?;
    Ok(changewatch_core::restock::stock_scan(&texts))
}

/// A full-page JPEG of what the check read, at most `max_height` CSS pixels from the top and
/// [`SCREENSHOT_MAX_BYTES`] (upstream's quality first, then a lower one). A page that cannot
/// be captured costs the check its screenshot, not its result.
async fn screenshot(page: &Page, max_height: u32) -> Option<Vec<u8>> {
    let metrics = match page.layout_metrics().await {
        Ok(m) => m,
        Err(e) => {
            warn!(error = %e, "no screenshot: the page's size is unknown");
            return None;
        }
    };
    let size = metrics.css_content_size;
    let clip = Viewport {
        x: 0.0,
        y: 0.0,
        width: size.width.clamp(1.0, VIEWPORT.0 as f64),
        height: size.height.clamp(1.0, f64::from(max_height)),
        scale: 1.0,
    };
    for quality in SCREENSHOT_QUALITY {
        let params = CaptureScreenshotParams::builder()
            .format(CaptureScreenshotFormat::Jpeg)
            .quality(quality)
            .clip(clip.clone())
            .capture_beyond_viewport(true)
            .build();
        let data = match page.execute(params).await {
            Ok(reply) => reply.result.data,
            Err(e) => {
                warn!(error = %e, "no screenshot: the browser could not capture the page");
                return None;
            }
        };
        let bytes =
            match base64::engine::general_purpose::STANDARD.decode(AsRef::<str>::as_ref(&data)) {
                Ok(b) => b,
                Err(e) => {
                    warn!(error = %e, "no screenshot: the browser's reply was not base64");
                    return None;
                }
            };
        if bytes.len() <= SCREENSHOT_MAX_BYTES {
            return Some(bytes);
        }
        debug!(quality, bytes = bytes.len(), "screenshot over its size cap");
    }
    warn!(
        limit = SCREENSHOT_MAX_BYTES,
        "no screenshot: the page's is too large even at low quality"
    );
    None
}

/// A watch's proxy as Chrome takes it: the server without credentials (a context's
/// `proxyServer`), and the credentials for `Fetch.authRequired`.
#[derive(Clone, Debug)]
struct BrowserProxy {
    server: String,
    credentials: Option<(String, String)>,
}

/// For a browser that connects without the relay (a remote one, or an `https://` proxy).
/// Chrome speaks HTTP, HTTPS and SOCKS5 proxies but authenticates only to HTTP(S) ones; a
/// SOCKS proxy with credentials is refused rather than tried without them. SOCKS5 in
/// Chrome resolves names at the proxy, as `socks5h` asks.
fn browser_proxy(raw: &str) -> Result<BrowserProxy, FetchError> {
    let bad = |reason: String| FetchError::BadProxy {
        proxy: changewatch_core::fetch::redacted(raw),
        reason,
    };
    let url = changewatch_core::fetch::parse_proxy_url(raw).map_err(bad)?;
    let credentials = proxy_credentials(&url);
    let scheme = match url.scheme() {
        "socks5" | "socks5h" if credentials.is_some() => {
            return Err(bad(
                "the browser cannot authenticate to a SOCKS proxy: use an HTTP proxy, or one without credentials".into(),
            ));
        }
        "socks5" | "socks5h" => "socks5",
        other => other,
    };
    let host = url.host_str().unwrap_or_default();
    let server = match url.port_or_known_default() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    };
    Ok(BrowserProxy {
        server,
        credentials,
    })
}

/// The relay's part in a failed navigation: the watch's own target refused (the name
/// answered the `Fetch` guard with a public address and the relay with a private one), or
/// the watch's proxy refusing its credentials, which reaches Chrome as a 502.
fn relay_stopped(relay: Option<&Relay>, url: &Url) -> Result<(), FetchError> {
    let (Some(relay), Some(host)) = (relay, url.host()) else {
        return Ok(());
    };
    let host = match host {
        url::Host::Ipv6(ip) => ip.to_string(),
        other => other.to_string().to_ascii_lowercase(),
    };
    let target = Target {
        host,
        port: url.port_or_known_default().unwrap_or(80),
    };
    match relay.stopped(&target) {
        Some(Stopped::Refused(refusal)) => Err(FetchError::Blocked {
            url: url.to_string(),
            refusal,
        }),
        Some(Stopped::ProxyAuth) => Err(FetchError::Status { status: 407 }),
        None => Ok(()),
    }
}

/// A watch's proxy behind the relay; `None` for an `https://` proxy, which Chrome is given
/// itself.
fn relay_upstream(raw: &str) -> Result<Option<Upstream>, FetchError> {
    let bad = |reason: String| FetchError::BadProxy {
        proxy: changewatch_core::fetch::redacted(raw),
        reason,
    };
    let url = changewatch_core::fetch::parse_proxy_url(raw).map_err(bad)?;
    let credentials = proxy_credentials(&url);
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        Some(h) => h.to_string(),
        None => return Err(bad("the proxy URL has no host".into())),
    };
    let port = url.port_or_known_default().unwrap_or(1080);
    let proxy: hyper::Uri = format!("http://{host}:{port}")
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| bad(e.to_string()))?;
    Ok(match url.scheme() {
        "http" => Some(Upstream::Http {
            proxy,
            auth: credentials
                .map(|(user, pass)| {
                    let token =
                        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
                    hyper::header::HeaderValue::from_str(&format!("Basic {token}"))
                        .map_err(|e| bad(e.to_string()))
                })
                .transpose()?,
        }),
        "socks5" | "socks5h" => Some(Upstream::Socks5 {
            proxy,
            auth: credentials,
            remote_dns: url.scheme() == "socks5h",
        }),
        _ => None,
    })
}

/// The credentials of a proxy URL, percent-decoded.
fn proxy_credentials(url: &Url) -> Option<(String, String)> {
    (!url.username().is_empty()).then(|| {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        (decode(url.username()), decode(url.password().unwrap_or("")))
    })
}

/// The main frame's navigation the guard refused, as the check's error: the watch's own URL
/// is `Blocked`, any later hop (a redirect, a step's navigation) `RedirectBlocked`.
fn main_refused(seen: &Mutex<Seen>, url: &Url) -> Result<(), FetchError> {
    match lock(seen).main_refused.clone() {
        Some((target, Verdict::Refused(refusal))) if target == url.as_str() => {
            Err(FetchError::Blocked {
                url: target,
                refusal,
            })
        }
        Some((target, Verdict::Refused(refusal))) => Err(FetchError::RedirectBlocked {
            url: target,
            refusal,
        }),
        Some((target, _)) => Err(FetchError::UnsupportedUrl { url: target }),
        None => Ok(()),
    }
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(PoisonError::into_inner)
}

fn browser_error(url: &Url, reason: &str) -> FetchError {
    FetchError::Connect {
        url: url.to_string(),
        reason: format!("browser: {reason}"),
    }
}

/// One paused request: continued when its target passes the guard, failed otherwise. At
/// the response stage (documents), the main frame's response is recorded and continued.
async fn decide(page: &Page, policy: &AddressPolicy, ev: &EventRequestPaused, seen: &Mutex<Seen>) {
    let is_document = ev.resource_type == ResourceType::Document;
    let frame: &str = ev.frame_id.as_ref();
    if let Some(status) = ev.response_status_code {
        record_response(seen, ev, is_document, frame, status);
        let _ = page
            .execute(ContinueRequestParams::new(ev.request_id.clone()))
            .await;
        return;
    }
    let main_navigation = is_document && is_main_frame(seen, frame);
    match vet(policy, &ev.request.url).await {
        Verdict::Pass => {
            let _ = page
                .execute(ContinueRequestParams::new(ev.request_id.clone()))
                .await;
        }
        verdict => {
            debug!(url = %ev.request.url, ?verdict, "the browser's request refused by the address guard");
            if main_navigation {
                lock(seen)
                    .main_refused
                    .get_or_insert_with(|| (ev.request.url.clone(), verdict));
            }
            let _ = page
                .execute(FailRequestParams::new(
                    ev.request_id.clone(),
                    ErrorReason::BlockedByClient,
                ))
                .await;
        }
    }
}

/// Whether `frame` is the main one: the frame of the first document request.
fn is_main_frame(seen: &Mutex<Seen>, frame: &str) -> bool {
    let mut s = lock(seen);
    s.main_frame.get_or_insert_with(|| frame.to_string()) == frame
}

fn record_response(
    seen: &Mutex<Seen>,
    ev: &EventRequestPaused,
    is_document: bool,
    frame: &str,
    status: i64,
) {
    let mut s = lock(seen);
    if is_document && s.main_frame.as_deref() == Some(frame) {
        let headers = ev
            .response_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        let status = u16::try_from(status).unwrap_or(0);
        s.main = Some(MainResponse {
            url: ev.request.url.clone(),
            status,
            headers,
        });
    }
}

/// The guard for one request of the page: schemes without a network (data, blob, about)
/// pass, http(s) targets go through [`vet_target`], other schemes are refused.
async fn vet(policy: &AddressPolicy, raw: &str) -> Verdict {
    let Ok(url) = Url::parse(raw) else {
        return Verdict::Unsupported;
    };
    match url.scheme() {
        "data" | "blob" | "about" => Verdict::Pass,
        "http" | "https" if url.host().is_some() => match vet_target(policy, &url).await {
            Ok(()) => Verdict::Pass,
            Err(refusal) => Verdict::Refused(refusal),
        },
        _ => Verdict::Unsupported,
    }
}
