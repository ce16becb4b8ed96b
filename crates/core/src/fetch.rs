//! Fetching a page: the "Basic fast Plaintext/HTTP Client" fetcher.
//!
//! Redirects are followed by hand (at most [`MAX_REDIRECTS`]) rather than by reqwest, so that
//! every hop's target goes through the SSRF guard and the user sees which hop was refused. Host
//! names are resolved by [`GuardedResolver`], which vets the addresses it hands to the connector:
//! there is no second lookup between check and connect for a rebinding DNS server to exploit.
//! Literal IP hosts never reach a resolver, so they are vetted before each request.
//!
//! A watch's credentials (`Authorization`, `Cookie`, `Proxy-Authorization`) are meant for the
//! site the user typed. A redirect is the site's say, not the user's: once a hop leaves that
//! origin (scheme, host and port), the credentials are dropped for the rest of the chain, as
//! browsers and curl do, so a page cannot forward them to a host of its choosing or downgrade
//! them to plain http. See [`keeps_credentials`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tracing::debug;
use url::Url;

use crate::budget::{BudgetError, PageHold};
use crate::charset;
use crate::reuse::Validators;
use crate::ssrf::{AddressPolicy, Refusal};

/// Upstream follows at most 10 redirects; clients' expectations were set by that.
pub const MAX_REDIRECTS: usize = 10;

/// A current desktop Chrome: some sites serve bots a different (or no) page.
pub const DEFAULT_USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// Settings shared by every fetch a process makes.
#[derive(Clone, Debug)]
pub struct FetcherConfig {
    pub policy: AddressPolicy,
    /// Replies larger than this are refused rather than buffered (a watch must not be a way to
    /// exhaust the server's memory).
    pub max_bytes: usize,
    pub user_agent: String,
    /// Tries again after a failure to connect or a reply that broke off before its headers
    /// (upstream's urllib3 `Retry`): a site that drops one connection is not "down". Never
    /// for refusals, timeouts or HTTP statuses; see [`retryable`].
    pub retries: u32,
    /// [`retry_wait`]'s factor.
    pub retry_backoff: Duration,
}

impl Default for FetcherConfig {
    fn default() -> Self {
        FetcherConfig {
            policy: AddressPolicy::default(),
            max_bytes: 10 * 1024 * 1024,
            user_agent: DEFAULT_USER_AGENT.to_string(),
            retries: 6,
            retry_backoff: Duration::from_millis(500),
        }
    }
}

/// One request, as the watch describes it.
#[derive(Clone, Debug)]
pub struct FetchRequest {
    pub url: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub timeout: Duration,
    pub ignore_status_codes: bool,
    pub empty_pages_are_a_change: bool,
    /// The last processed reply's validators: sent as `If-None-Match` / `If-Modified-Since`
    /// (unless the watch sets those headers itself), and a `304 Not Modified` is then a page
    /// with no body rather than an error ([`FetchedPage::not_modified`]).
    pub validators: Option<Validators>,
    /// The proxy this request goes through (`http`, `https`, `socks5`, `socks5h`, with
    /// credentials in the URL); `None` connects directly. See [`parse_proxy_url`].
    pub proxy: Option<String>,
}

impl FetchRequest {
    pub fn get(url: impl Into<String>) -> Self {
        FetchRequest {
            url: url.into(),
            method: "GET".into(),
            headers: Vec::new(),
            body: None,
            timeout: Duration::from_secs(45),
            ignore_status_codes: false,
            empty_pages_are_a_change: false,
            validators: None,
            proxy: None,
        }
    }
}

/// What came back, decoded.
#[derive(Clone, Debug)]
pub struct FetchedPage {
    /// The URL after redirects.
    pub final_url: String,
    pub status: u16,
    /// Lowercased `Content-Type`, as upstream stores it in the watch's `content-type`.
    pub content_type: Option<String>,
    /// Lowercased `Server` header (max 255 chars), upstream's `remote_server_reply`.
    pub server: Option<String>,
    pub headers: Vec<(String, String)>,
    pub raw: Vec<u8>,
    pub text: String,
    pub encoding: &'static str,
    /// Seconds from the first request to the last byte.
    pub fetch_time: f64,
    /// The browser's screenshot of the page (JPEG); none from the plain fetcher. It stays
    /// with the checker (the sandbox is not sent it) and is stored with a new snapshot.
    pub screenshot: Option<Vec<u8>>,
    /// The browser's out-of-stock scan of the rendered page, taken for restock watches
    /// ([`crate::restock::stock_scan`], upstream's `instock_data`); none from the plain fetcher.
    pub stock_scan: Option<String>,
}

impl FetchedPage {
    /// A reply as either fetcher hands it on: `content_type` and `server` read from the
    /// headers as upstream stores them (lowercased; the server's name at most 255
    /// characters), the text decoded by [`charset::decode`] as `charset_from` says (the
    /// reply's own content type when `None`). The checks on status and emptiness stay with
    /// each fetcher: upstream makes them at different points of a plain and a browser fetch.
    pub fn from_reply(
        final_url: String,
        status: u16,
        headers: Vec<(String, String)>,
        raw: Vec<u8>,
        charset_from: Option<&str>,
        fetch_time: f64,
    ) -> FetchedPage {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_lowercase())
        };
        let content_type = header("content-type");
        let server = header("server").map(|s| s.chars().take(255).collect());
        let (text, encoding, source) =
            charset::decode(&raw, charset_from.or(content_type.as_deref()));
        debug!(encoding, ?source, bytes = raw.len(), "decoded reply");
        FetchedPage {
            final_url,
            status,
            content_type,
            server,
            headers,
            raw,
            text,
            encoding,
            fetch_time,
            screenshot: None,
            stock_scan: None,
        }
    }

    /// The server answered a conditional request with `304 Not Modified`: the content is
    /// what the validators' reply had, and this page carries no body.
    pub fn not_modified(&self) -> bool {
        self.status == 304
    }
}

/// Everything that can go wrong before there is a page to process. [`FetchError::last_error`]
/// gives the message users see in `last_error`.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("The URL is invalid or uses an unsupported protocol.")]
    UnsupportedUrl { url: String },
    #[error(
        "Fetch blocked: '{url}' resolves to a private/reserved IP address ({refusal}). Set ALLOW_PRIVATE_ADDRESSES=true to allow."
    )]
    Blocked { url: String, refusal: Refusal },
    #[error(
        "Redirect blocked: '{url}' resolves to a private/reserved IP address ({refusal}). Set ALLOW_PRIVATE_ADDRESSES=true to allow."
    )]
    RedirectBlocked { url: String, refusal: Refusal },
    #[error("Could not resolve host '{host}' (DNS lookup failed: {reason})")]
    Dns { host: String, reason: String },
    #[error("Timed out after {secs} seconds waiting for '{url}'")]
    Timeout { url: String, secs: u64 },
    #[error("Could not connect to '{url}': {reason}")]
    Connect { url: String, reason: String },
    #[error("Too many redirects (more than {MAX_REDIRECTS})")]
    TooManyRedirects,
    #[error("Page too large: the reply is over the {limit} byte limit (FETCH_MAX_BYTES)")]
    TooLarge { limit: usize },
    /// The page fits `FETCH_MAX_BYTES` but not the memory this checker has for one page
    /// (`crate::budget`): a bigger function (or fewer checks at once) would take it.
    #[error(
        "Page too large for this checker's memory: the reply is over the {limit} bytes one check may hold (give the checker more memory)"
    )]
    OverBudget { limit: usize },
    #[error("Invalid request header '{name}'")]
    BadHeader { name: String },
    /// The proxy's URL cannot be used (the settings' validation keeps such URLs out; this is
    /// for one stored before). `proxy` is the URL without its credentials.
    #[error("Proxy '{proxy}' cannot be used: {reason}")]
    BadProxy { proxy: String, reason: String },
    #[error("Empty reply with status code {status}")]
    EmptyReply { status: u16 },
    #[error("HTTP status code {status}")]
    Status { status: u16 },
    /// A browser step failed: `step` counts from 1 as the editor shows them; `not_found` when
    /// what it waited for (its element, its text) never turned up.
    #[error("browser step {step} could not run: {reason}")]
    BrowserStep {
        step: usize,
        reason: String,
        not_found: bool,
    },
}

impl FetchError {
    /// Upstream's `last_error` wording, which users and their scripts already know.
    pub fn last_error(&self) -> String {
        match self {
            FetchError::Status { status } => match status {
                403 => "Error - 403 (Access denied) received".into(),
                404 => "Error - 404 (Page not found) received".into(),
                407 => "Error - 407 (Proxy authentication required) received, did you need a username and password for the proxy?".into(),
                500 => "Error - 500 (Internal server error) received from the web site".into(),
                s => {
                    let extra = if (400..500).contains(s) { " (Access denied or blocked)" } else { "" };
                    format!("Error - Request returned a HTTP error code {s}{extra}")
                }
            },
            FetchError::EmptyReply { status } => format!(
                "EmptyReply - try increasing 'Wait seconds before extracting text', Status Code {status}"
            ),
            FetchError::BrowserStep {
                step,
                reason,
                not_found,
            } => {
                let detail = if *not_found {
                    "Could not find the target."
                } else {
                    reason.lines().next().unwrap_or("")
                };
                format!(
                    "Browser step at position {step} could not run, check the watch, add a delay if necessary, view Browser Steps to see screenshot at that step. {detail}"
                )
            }
            other => format!("Exception: {other}"),
        }
    }
}

/// The address-vetting resolver handed to reqwest; see the module docs.
#[derive(Debug)]
struct GuardedResolver {
    policy: AddressPolicy,
}

/// Error type the resolver returns so the fetch loop can recognise a refusal in reqwest's error
/// chain and report it as such, not as a generic connection failure.
#[derive(Debug, thiserror::Error)]
enum ResolveError {
    #[error("{0}")]
    Refused(Refusal),
    #[error("{0}")]
    Lookup(String),
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| ResolveError::Lookup(e.to_string()))?
                .collect();
            if addrs.is_empty() {
                return Err(ResolveError::Lookup("no addresses".into()).into());
            }
            if !policy.host_exempt(&host) {
                // Refuse when any answer is restricted, as upstream does: a name that mixes public
                // and private answers is a rebinding setup, not a real site.
                if let Some(refusal) = addrs.iter().find_map(|a| policy.check(a.ip()).err()) {
                    return Err(ResolveError::Refused(refusal).into());
                }
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// A client builder whose name lookups go through the SSRF guard, for other outbound requests to
/// user-supplied hosts (notification webhooks). Redirects and proxies are off for the reasons
/// given in [`Fetcher::new`]. Literal IP hosts never reach a resolver, so callers still vet those
/// with [`AddressPolicy::check`].
pub fn guarded_client_builder(policy: AddressPolicy) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .no_proxy()
}

/// The guard's refusal found in a failed request's error chain, so a caller can tell "refused by
/// policy" (permanent, worth saying so) from an ordinary connection failure.
pub fn refusal_in(err: &(dyn std::error::Error + 'static)) -> Option<Refusal> {
    let mut source = Some(err);
    while let Some(e) = source {
        if let Some(ResolveError::Refused(refusal)) = e.downcast_ref::<ResolveError>() {
            return Some(refusal.clone());
        }
        source = e.source();
    }
    None
}

/// Reusable HTTP client with the guard, limits and defaults applied.
#[derive(Clone, Debug)]
pub struct Fetcher {
    client: reqwest::Client,
    config: Arc<FetcherConfig>,
    /// One client per proxy URL (a client's proxy is fixed when it is built), so each
    /// proxy keeps its pooled connections. Proxies come from the settings: a handful.
    proxied: Arc<std::sync::Mutex<HashMap<String, reqwest::Client>>>,
}

/// More distinct proxy URLs than this in one process means the list is being edited: the
/// cached clients are dropped and built again as needed.
const MAX_PROXY_CLIENTS: usize = 64;

impl Fetcher {
    pub fn new(config: FetcherConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver {
                policy: config.policy.clone(),
            }))
            // Proxies would connect somewhere the guard never saw; per-watch proxies come later
            // and will be vetted explicitly.
            .no_proxy()
            // Upstream fetches with verify=False: monitoring a page with a broken certificate is
            // a normal thing to want, and the fetched text is never trusted anyway.
            .danger_accept_invalid_certs(true)
            .build()?;
        Ok(Fetcher {
            client,
            config: Arc::new(config),
            proxied: Arc::default(),
        })
    }

    /// The client for `proxy`: without a proxy, the guarded one. Through a proxy the proxy
    /// connects to the site, so the guard's resolver never sees the target: the target is
    /// vetted before each hop instead ([`Fetcher::vet_proxied_target`]). The proxy's own
    /// address is the operator's choice (often a private one) and is not vetted.
    fn client_for(&self, proxy: Option<&str>) -> Result<reqwest::Client, FetchError> {
        let Some(raw) = proxy else {
            return Ok(self.client.clone());
        };
        let mut cache = self
            .proxied
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(client) = cache.get(raw) {
            return Ok(client.clone());
        }
        let bad = |reason: String| FetchError::BadProxy {
            proxy: redacted(raw),
            reason,
        };
        let url = parse_proxy_url(raw).map_err(bad)?;
        let proxy = reqwest::Proxy::all(url.as_str()).map_err(|e| bad(e.to_string()))?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .proxy(proxy)
            .danger_accept_invalid_certs(true)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        if cache.len() >= MAX_PROXY_CLIENTS {
            cache.clear();
        }
        cache.insert(raw.to_string(), client.clone());
        Ok(client)
    }

    /// The guard for a proxied hop: see [`vet_target`]. The proxy resolves the name again,
    /// so this is a check on the target, not a pin of the connected address.
    async fn vet_proxied_target(&self, url: &Url, hop: usize) -> Result<(), FetchError> {
        vet_target(&self.config.policy, url)
            .await
            .map_err(|refusal| blocked(url, hop, refusal))
    }

    pub fn config(&self) -> &FetcherConfig {
        &self.config
    }

    pub async fn fetch(&self, req: &FetchRequest) -> Result<FetchedPage, FetchError> {
        self.fetch_within(req, &mut PageHold::unbounded()).await
    }

    /// [`Fetcher::fetch`] with the page's bytes counted against `hold` as they arrive: a page
    /// that outgrows the check's share waits for the budget's large lane, and one that can
    /// never fit fails before it is read (from its `Content-Length`) or as soon as it is over.
    pub async fn fetch_within(
        &self,
        req: &FetchRequest,
        hold: &mut PageHold,
    ) -> Result<FetchedPage, FetchError> {
        let started = Instant::now();
        let mut url = parse_fetch_url(&req.url)?;
        let mut method = reqwest::Method::from_bytes(req.method.to_ascii_uppercase().as_bytes())
            .unwrap_or(reqwest::Method::GET);
        let mut body = req.body.clone();
        let mut headers = self.headers(req)?;
        let client = self.client_for(req.proxy.as_deref())?;

        for hop in 0..=MAX_REDIRECTS {
            self.vet_literal_host(&url, hop)?;
            if req.proxy.is_some() {
                self.vet_proxied_target(&url, hop).await?;
            }
            let mut retry = 0;
            let resp = loop {
                let mut builder = client
                    .request(method.clone(), url.clone())
                    .headers(headers.clone())
                    .timeout(remaining(req.timeout, started));
                if let Some(b) = &body {
                    builder = builder.body(b.clone());
                }
                let err = match builder.send().await {
                    Ok(resp) => break resp,
                    Err(e) => e,
                };
                let again = retry < self.config.retries && retryable(&err, &method);
                let err = classify(err, &url, hop, req.timeout);
                retry += 1;
                let wait = retry_wait(self.config.retry_backoff, retry);
                // Retries live inside the request's own timeout: a wait that would end past it
                // is not started, and the failure is reported as it is.
                if !again || started.elapsed() + wait >= req.timeout {
                    return Err(err);
                }
                debug!(retry, wait_ms = wait.as_millis() as u64, error = %err, "retrying the request");
                tokio::time::sleep(wait).await;
            };
            let status = resp.status();
            // A 304 is an answer to a conditional request, not a redirect.
            if let Some(loc) = (status.is_redirection() && status.as_u16() != 304)
                .then(|| resp.headers().get(reqwest::header::LOCATION))
                .flatten()
            {
                let loc = String::from_utf8_lossy(loc.as_bytes()).into_owned();
                let next = url
                    .join(&loc)
                    .map_err(|_| FetchError::UnsupportedUrl { url: loc.clone() })?;
                if !matches!(next.scheme(), "http" | "https") {
                    return Err(FetchError::UnsupportedUrl { url: loc });
                }
                debug!(from = %url, to = %next, "following redirect");
                // 307/308 keep the method and body; the others become a GET, as browsers do.
                if !matches!(status.as_u16(), 307 | 308) {
                    method = reqwest::Method::GET;
                    body = None;
                }
                // Once removed they stay removed: a foreign hop that sends the chain back to the
                // first origin has chosen the URL, so it gets no credentials there either.
                if !keeps_credentials(&url, &next) {
                    for name in CREDENTIAL_HEADERS {
                        if headers.remove(*name).is_some() {
                            debug!(header = *name, to = %next, "not forwarding credentials to another origin");
                        }
                    }
                }
                url = next;
                continue;
            }
            return self.read(resp, req, &url, started, hold).await;
        }
        Err(FetchError::TooManyRedirects)
    }

    fn headers(&self, req: &FetchRequest) -> Result<HeaderMap, FetchError> {
        let mut map = HeaderMap::new();
        let ua =
            HeaderValue::from_str(&self.config.user_agent).map_err(|_| FetchError::BadHeader {
                name: "User-Agent".into(),
            })?;
        map.insert(reqwest::header::USER_AGENT, ua);
        map.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static(
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            ),
        );
        for (k, v) in &req.headers {
            let bad = || FetchError::BadHeader { name: k.clone() };
            let name = HeaderName::from_bytes(k.trim().as_bytes()).map_err(|_| bad())?;
            let value = HeaderValue::from_str(v.trim()).map_err(|_| bad())?;
            map.insert(name, value);
        }
        if let Some(v) = &req.validators {
            // Stored from a reply's headers, so they are valid values; one that is not is
            // simply not sent (the check then fetches the whole page).
            let conditional = [
                (reqwest::header::IF_NONE_MATCH, v.etag.as_deref()),
                (
                    reqwest::header::IF_MODIFIED_SINCE,
                    v.last_modified.as_deref(),
                ),
            ];
            for (name, value) in conditional {
                if let Some(value) = value.and_then(|s| HeaderValue::from_str(s).ok())
                    && !map.contains_key(&name)
                {
                    map.insert(name, value);
                }
            }
        }
        Ok(map)
    }

    fn vet_literal_host(&self, url: &Url, hop: usize) -> Result<(), FetchError> {
        let ip: Option<IpAddr> = match url.host() {
            Some(url::Host::Ipv4(v4)) => Some(v4.into()),
            Some(url::Host::Ipv6(v6)) => Some(v6.into()),
            _ => None,
        };
        match ip {
            Some(ip) => self
                .config
                .policy
                .check(ip)
                .map_err(|refusal| blocked(url, hop, refusal)),
            None => Ok(()),
        }
    }

    async fn read(
        &self,
        mut resp: reqwest::Response,
        req: &FetchRequest,
        url: &Url,
        started: Instant,
        hold: &mut PageHold,
    ) -> Result<FetchedPage, FetchError> {
        let limit = self.config.max_bytes;
        let announced = resp.content_length();
        if announced.is_some_and(|n| n > limit as u64) {
            return Err(FetchError::TooLarge { limit });
        }
        let timed_out = || FetchError::Timeout {
            url: url.to_string(),
            secs: req.timeout.as_secs(),
        };
        // Room for `size` page bytes; waiting for the budget's lane counts against the
        // request's own timeout.
        let grow = async |hold: &mut PageHold, size: usize| {
            tokio::time::timeout(remaining(req.timeout, started), hold.grow(size))
                .await
                .map_err(|_| timed_out())?
                .map_err(|e: BudgetError| FetchError::OverBudget { limit: e.limit })
        };
        if let Some(n) = announced {
            grow(hold, n as usize).await?;
        }
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();

        // Sized once when the length is known (and counted above): no doubling buffer.
        let mut raw = Vec::with_capacity(announced.map_or(0, |n| n as usize));
        loop {
            let chunk = tokio::time::timeout(remaining(req.timeout, started), resp.chunk())
                .await
                .map_err(|_| timed_out())?
                .map_err(|e| classify(e, url, 0, req.timeout))?;
            let Some(chunk) = chunk else { break };
            let size = raw.len() + chunk.len();
            if size > limit {
                return Err(FetchError::TooLarge { limit });
            }
            grow(hold, size).await?;
            raw.extend_from_slice(&chunk);
        }

        let not_modified = status == 304 && req.validators.is_some();
        if raw.is_empty() && !req.empty_pages_are_a_change && !not_modified {
            return Err(FetchError::EmptyReply { status });
        }
        if !(200..300).contains(&status) && !req.ignore_status_codes && !not_modified {
            return Err(FetchError::Status { status });
        }
        Ok(FetchedPage::from_reply(
            url.to_string(),
            status,
            headers,
            raw,
            None,
            started.elapsed().as_secs_f64(),
        ))
    }
}

/// Request headers that carry the user's credentials for one site. Browsers never let a page set
/// `Cookie` and drop `Authorization` on a cross-origin redirect; curl drops both (and a proxy's)
/// when the host, port or scheme changes. Custom token headers (`X-Api-Key`, …) cannot be told
/// apart from ordinary ones and are kept, as everywhere else.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie", "cookie2"];

/// Whether a redirect from `from` to `to` may carry the watch's credentials: only within the same
/// origin (scheme, host, port). The single exception is upstream's (python-requests):
/// `http://host` to `https://host` on the default ports, an upgrade to the same site that sends
/// nothing anywhere it was not already sent in clear. https to http is always a change of
/// origin, so credentials never go out unencrypted after a redirect.
pub fn keeps_credentials(from: &Url, to: &Url) -> bool {
    if from.origin() == to.origin() {
        return true;
    }
    from.scheme() == "http"
        && to.scheme() == "https"
        && from.host() == to.host()
        && from.port_or_known_default() == Some(80)
        && to.port_or_known_default() == Some(443)
}

/// A remote browser's DevTools WebSocket URL (`PLAYWRIGHT_DRIVER_URL`, an extra browser's
/// `browser_connection_url`): `ws://` or `wss://` with a host.
pub fn parse_devtools_url(raw: &str) -> Result<Url, String> {
    match Url::parse(raw.trim()) {
        Ok(u) if matches!(u.scheme(), "ws" | "wss") && u.host().is_some() => Ok(u),
        _ => Err(format!(
            "'{}' is not a ws:// or wss:// DevTools URL",
            raw.trim()
        )),
    }
}

/// Checks a proxy URL as the fetcher will use it: `http`, `https`, `socks5` (names resolved
/// here) or `socks5h` (names resolved by the proxy), a host, credentials as
/// `user:password@` if any. The error says what is wrong without repeating the URL, which
/// may hold a password.
pub fn parse_proxy_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https" | "socks5" | "socks5h") {
        return Err(format!(
            "unsupported proxy scheme '{}' (http, https, socks5 or socks5h)",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the proxy URL has no host".into());
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err("a proxy URL is scheme://[user:password@]host[:port] only".into());
    }
    Ok(url)
}

/// The address guard for a connection this process does not make itself (through a proxy,
/// or by a browser): a literal address is checked; a name is resolved here and refused when
/// any answer is restricted. A name this machine cannot resolve passes (whoever connects
/// resolves it, or fails).
pub async fn vet_target(policy: &AddressPolicy, url: &Url) -> Result<(), Refusal> {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => policy.check(ip.into()),
        Some(url::Host::Ipv6(ip)) => policy.check(ip.into()),
        Some(url::Host::Domain(host)) if !policy.host_exempt(host) => {
            let port = url.port_or_known_default().unwrap_or(80);
            match tokio::net::lookup_host((host, port)).await {
                Ok(mut addrs) => addrs.try_for_each(|a| policy.check(a.ip())),
                Err(_) => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// A proxy URL fit for messages and logs: its credentials replaced.
pub fn redacted(raw: &str) -> String {
    match Url::parse(raw.trim()) {
        Ok(mut url) => {
            if !url.username().is_empty() || url.password().is_some() {
                let _ = url.set_username("***");
                let _ = url.set_password(None);
            }
            url.to_string()
        }
        Err(_) => "(not a URL)".into(),
    }
}

/// Parses and scheme-checks a watch URL. Only http and https are fetched.
pub fn parse_fetch_url(raw: &str) -> Result<Url, FetchError> {
    let unsupported = || FetchError::UnsupportedUrl {
        url: raw.to_string(),
    };
    let url = Url::parse(raw.trim()).map_err(|_| unsupported())?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(unsupported());
    }
    Ok(url)
}

/// Whether a failed request is worth another try, as upstream's urllib3 `Retry` judges it: a
/// connection that could not be made (the request never left, so any method), or one that
/// broke off before the reply's headers, for the methods upstream retries then. Not a
/// refusal by the address guard, nor a timeout (the request's time is spent).
fn retryable(err: &reqwest::Error, method: &reqwest::Method) -> bool {
    if refusal_in(err).is_some() || err.is_timeout() {
        return false;
    }
    if err.is_connect() {
        return true;
    }
    err.is_request()
        && [
            reqwest::Method::HEAD,
            reqwest::Method::GET,
            reqwest::Method::OPTIONS,
            reqwest::Method::POST,
        ]
        .contains(method)
}

/// urllib3's backoff: nothing before the first retry, then `factor` × 2^(n−1) before the
/// n-th (0.5 s: 1, 2, 4, 8, 16 s), at most two minutes.
pub fn retry_wait(factor: Duration, retry: u32) -> Duration {
    if retry <= 1 {
        return Duration::ZERO;
    }
    factor
        .saturating_mul(1u32 << (retry - 1).min(20))
        .min(Duration::from_secs(120))
}

fn remaining(total: Duration, started: Instant) -> Duration {
    total
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(1))
}

fn blocked(url: &Url, hop: usize, refusal: Refusal) -> FetchError {
    let url = url.to_string();
    if hop == 0 {
        FetchError::Blocked { url, refusal }
    } else {
        FetchError::RedirectBlocked { url, refusal }
    }
}

/// Maps reqwest's error to the user-facing kinds, finding our resolver's verdict in the chain.
fn classify(err: reqwest::Error, url: &Url, hop: usize, timeout: Duration) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = source {
        let found = e.downcast_ref::<ResolveError>();
        if let Some(r) = found {
            return match r {
                ResolveError::Refused(refusal) => blocked(url, hop, refusal.clone()),
                ResolveError::Lookup(reason) => FetchError::Dns {
                    host: url.host_str().unwrap_or_default().to_string(),
                    reason: reason.clone(),
                },
            };
        }
        source = e.source();
    }
    if err.is_timeout() {
        return FetchError::Timeout {
            url: url.to_string(),
            secs: timeout.as_secs(),
        };
    }
    let mut reason = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(e) = source {
        reason = e.to_string();
        source = e.source();
    }
    FetchError::Connect {
        url: url.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keeps(from: &str, to: &str) -> bool {
        match (Url::parse(from), Url::parse(to)) {
            (Ok(f), Ok(t)) => keeps_credentials(&f, &t),
            _ => panic!("test URLs parse"),
        }
    }

    #[test]
    fn retry_waits_double_as_urllib3_counts_them() {
        let waits: Vec<u64> = (1..=7)
            .map(|n| retry_wait(Duration::from_millis(500), n).as_millis() as u64)
            .collect();
        assert_eq!(waits, [0, 1000, 2000, 4000, 8000, 16000, 32000]);
        assert_eq!(
            retry_wait(Duration::from_secs(60), 40),
            Duration::from_secs(120)
        );
        assert_eq!(retry_wait(Duration::ZERO, 5), Duration::ZERO);
    }

    #[test]
    fn credentials_stay_within_the_origin() {
        assert!(keeps("https://a.example/x", "https://a.example/y?z"));
        assert!(keeps("https://a.example/x", "https://A.EXAMPLE:443/y"));
        assert!(keeps(
            "http://a.example:8080/",
            "http://a.example:8080/next"
        ));
        // Another host, port or scheme is another origin.
        assert!(!keeps("https://a.example/", "https://b.example/"));
        assert!(!keeps("https://a.example/", "https://sub.a.example/"));
        assert!(!keeps("http://a.example:8080/", "http://a.example:8081/"));
        assert!(!keeps("http://127.0.0.1:8080/", "http://localhost:8080/"));
        // Downgrades never keep them, not even to the same host and port.
        assert!(!keeps("https://a.example/", "http://a.example/"));
        assert!(!keeps("https://a.example:8443/", "http://a.example:8443/"));
        // The one upgrade upstream allows: same host, default ports.
        assert!(keeps("http://a.example/", "https://a.example/"));
        assert!(!keeps("http://a.example/", "https://b.example/"));
        assert!(!keeps("http://a.example:8080/", "https://a.example/"));
        assert!(!keeps("http://a.example/", "https://a.example:8443/"));
    }
}
