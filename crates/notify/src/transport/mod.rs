//! Delivery of one [`Message`] to one notification URL.
//!
//! [`Deliverer::deliver`] parses the URL, shapes the message for the service (format, length),
//! and sends it: an HTTP request for webhooks and chat services, an SMTP session for email. It
//! keeps no state between calls and records nothing: the caller logs the outcome and decides
//! whether to retry, using [`DeliveryError::is_permanent`].
//!
//! Long bodies are truncated to the service's limit with an ellipsis (`…`) rather than split
//! into several messages: a change notification that arrives as three posts is harder to read,
//! and a partial failure half-way through a split would leave the user with a fragment.
//!
//! Requests to user-supplied hosts (webhooks, self-hosted ntfy/Gotify/Mattermost/Matrix, SMTP)
//! go through core's SSRF guard; requests to the fixed hosts of hosted services (Discord, Slack,
//! Telegram, Pushover, Pushbullet, ntfy.sh, Power Automate) do not need it. The operator's Apprise API
//! server (`apprise_api`) is trusted like those: it may be on loopback.

mod apprise;
mod chat;
mod email;
pub(crate) mod format;
mod matrix;
mod push;
mod webhook;

use std::net::IpAddr;
use std::time::Duration;

use changewatch_core::ssrf::{AddressPolicy, Refusal};
use reqwest::Method;
use tracing::{Instrument, debug, info_span};
use url::Url;

use crate::url::{InvalidUrl, NotifyUrl, parse};
use crate::{Attachment, Message};

/// Identifies us to services; some reject requests without a User-Agent.
const USER_AGENT: &str = concat!("changewatch/", env!("CARGO_PKG_VERSION"));

/// Settings for every delivery a process makes.
#[derive(Clone, Debug)]
pub struct DeliveryOptions {
    /// Whole-request budget for one HTTP request or SMTP session.
    pub timeout: Duration,
    /// Which user-supplied hosts may be contacted.
    pub policy: AddressPolicy,
    /// Test-only: when set, hosted services (Discord, Slack, Telegram, Pushover, ntfy.sh, Power
    /// Automate) are sent here instead of their public host, with the same method, path,
    /// headers and body, so tests can capture what the service would receive.
    pub service_base: Option<Url>,
    /// The Apprise API server (base URL ending in `/`) that relays URLs of services this
    /// crate does not deliver itself; `None` fails those deliveries with a message saying so.
    pub apprise_api: Option<Url>,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            timeout: Duration::from_secs(30),
            policy: AddressPolicy::default(),
            service_base: None,
            apprise_api: None,
        }
    }
}

/// Why a delivery failed. The Display text is what the user sees in the notification log.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{0}")]
    InvalidUrl(#[from] InvalidUrl),
    /// The URL parsed but cannot work as written (missing target, bad header…).
    #[error("{service}: {reason}")]
    Config {
        service: &'static str,
        reason: String,
    },
    #[error(
        "{service}: refused to connect to '{host}': {refusal}. Set ALLOW_PRIVATE_ADDRESSES=true to allow."
    )]
    Blocked {
        service: &'static str,
        host: String,
        refusal: Refusal,
    },
    #[error("{service}: timed out after {secs} seconds waiting for '{host}'")]
    Timeout {
        service: &'static str,
        host: String,
        secs: u64,
    },
    #[error("{service}: could not connect to '{host}': {reason}")]
    Connect {
        service: &'static str,
        host: String,
        reason: String,
    },
    #[error("{service}: the server answered HTTP {status}{}", detail_suffix(.detail))]
    Status {
        service: &'static str,
        status: u16,
        detail: String,
    },
    /// The service answered 2xx but said the message was not accepted.
    #[error("{service}: {reason}")]
    Rejected {
        service: &'static str,
        reason: String,
    },
    #[error("Email: {reason}")]
    Smtp { reason: String, permanent: bool },
    /// A file the service cannot take (too large, or of a type it refuses), found before
    /// sending, as apprise refuses it.
    #[error("{service}: {reason}")]
    Attachment {
        service: &'static str,
        reason: String,
    },
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

impl DeliveryError {
    /// Whether retrying the same delivery later cannot help: bad URL or configuration, refused
    /// by policy, a file the service cannot take, or a 4xx answer other than 408 (timeout) and
    /// 429 (rate limited).
    pub fn is_permanent(&self) -> bool {
        match self {
            DeliveryError::InvalidUrl(_)
            | DeliveryError::Config { .. }
            | DeliveryError::Blocked { .. }
            | DeliveryError::Rejected { .. }
            | DeliveryError::Attachment { .. } => true,
            DeliveryError::Timeout { .. } | DeliveryError::Connect { .. } => false,
            // 424 is an Apprise API server saying a service behind it failed, which may pass.
            DeliveryError::Status { status, .. } => {
                (400..500).contains(status) && ![408, 424, 429].contains(status)
            }
            DeliveryError::Smtp { permanent, .. } => *permanent,
        }
    }
}

/// Sends messages; cheap to clone and share (the HTTP clients are pooled inside).
#[derive(Clone, Debug)]
pub struct Deliverer {
    options: DeliveryOptions,
    /// For user-supplied hosts: resolution goes through the SSRF guard.
    guarded: reqwest::Client,
    /// For the fixed hosts of hosted services and the operator's Apprise API server.
    open: reqwest::Client,
    /// apprise's `X-Apprise-ID`: one per process, so an Apprise API server relaying back to us
    /// can tell a loop.
    instance: String,
}

/// Where a request goes, which decides the client and whether `service_base` applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dest {
    /// A host from the user's URL.
    User,
    /// A hosted service's fixed public host.
    Hosted,
    /// A server the operator configured (`APPRISE_API_URL`): trusted, never redirected.
    Operator,
}

#[derive(Debug)]
pub(crate) enum Body {
    None,
    Json(serde_json::Value),
    Form(Vec<(String, String)>),
    Raw(Vec<u8>),
    /// `multipart/form-data`, parts in order (fields first, then files, as apprise sends them).
    Multipart(Vec<Part>),
}

/// One part of a `multipart/form-data` body.
#[derive(Debug)]
pub(crate) enum Part {
    Text {
        name: String,
        value: String,
    },
    /// A file: `filename` in its `Content-Disposition`, and a `Content-Type` only when
    /// `mimetype` is set (apprise leaves it out for Telegram, Pushover and Slack uploads).
    File {
        name: String,
        filename: String,
        mimetype: Option<String>,
        data: Vec<u8>,
    },
}

impl Part {
    pub(crate) fn text(name: impl Into<String>, value: impl Into<String>) -> Self {
        Part::Text {
            name: name.into(),
            value: value.into(),
        }
    }

    pub(crate) fn file(name: impl Into<String>, file: &Attachment, typed: bool) -> Self {
        Part::File {
            name: name.into(),
            filename: file.filename.clone(),
            mimetype: typed.then(|| file.mimetype.clone()),
            data: file.data.clone(),
        }
    }
}

/// The title and body as apprise hands them to every plugin: the title trimmed, the body's end
/// trimmed.
pub(crate) fn apprise_trimmed(msg: &Message) -> (&str, &str) {
    (msg.title.trim(), msg.body.trim_end())
}

/// A reqwest form of `parts`, names and file names written as they are (as Python's requests
/// writes them: `files[0]` stays `files[0]`, not `name*=utf-8''files%5B0%5D`).
fn multipart_form(
    service: &'static str,
    parts: Vec<Part>,
) -> Result<reqwest::multipart::Form, DeliveryError> {
    let mut form = reqwest::multipart::Form::new().percent_encode_noop();
    for part in parts {
        form = match part {
            Part::Text { name, value } => form.text(name, value),
            Part::File {
                name,
                filename,
                mimetype,
                data,
            } => {
                let mut file = reqwest::multipart::Part::bytes(data).file_name(filename);
                if let Some(m) = mimetype {
                    file = file.mime_str(&m).map_err(|_| DeliveryError::Attachment {
                        service,
                        reason: format!("'{m}' is not a media type"),
                    })?;
                }
                form.part(name, file)
            }
        };
    }
    Ok(form)
}

/// One HTTP request a transport wants made.
#[derive(Debug)]
pub(crate) struct Request {
    pub service: &'static str,
    pub dest: Dest,
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub basic: Option<(String, String)>,
    pub bearer: Option<String>,
    pub body: Body,
}

impl Request {
    pub(crate) fn new(service: &'static str, dest: Dest, method: Method, url: Url) -> Self {
        Request {
            service,
            dest,
            method,
            url,
            headers: Vec::new(),
            basic: None,
            bearer: None,
            body: Body::None,
        }
    }

    pub(crate) fn json(mut self, value: serde_json::Value) -> Self {
        self.body = Body::Json(value);
        self
    }

    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// A 2xx answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }
}

impl Deliverer {
    pub fn new(options: DeliveryOptions) -> Result<Self, reqwest::Error> {
        let guarded = changewatch_core::fetch::guarded_client_builder(options.policy.clone())
            .timeout(options.timeout)
            .user_agent(USER_AGENT)
            .build()?;
        let open = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(options.timeout)
            .user_agent(USER_AGENT)
            .build()?;
        Ok(Deliverer {
            options,
            guarded,
            open,
            instance: uuid::Uuid::new_v4().to_string(),
        })
    }

    pub fn options(&self) -> &DeliveryOptions {
        &self.options
    }

    /// Delivers `msg` to one notification URL. Comment URLs (`#…`) and `null://` succeed
    /// without sending anything.
    pub async fn deliver(&self, url: &str, msg: &Message) -> Result<(), DeliveryError> {
        let target = parse(url)?;
        let service = target.service();
        let span = info_span!("notify", service);
        async move {
            let result = self.deliver_parsed(&target, msg).await;
            match &result {
                Ok(()) => debug!("notification sent"),
                Err(e) => debug!(error = %e, permanent = e.is_permanent(), "notification failed"),
            }
            result
        }
        .instrument(span)
        .await
    }

    /// Delivers to an already parsed URL.
    pub async fn deliver_parsed(
        &self,
        target: &NotifyUrl,
        msg: &Message,
    ) -> Result<(), DeliveryError> {
        match target {
            NotifyUrl::Skip | NotifyUrl::Null => Ok(()),
            NotifyUrl::Apprise(w) => webhook::apprise(self, w, msg).await,
            NotifyUrl::Http(h) => webhook::custom(self, h, msg).await,
            NotifyUrl::Discord(d) => chat::discord(self, d, msg).await,
            NotifyUrl::Slack(s) => chat::slack(self, s, msg).await,
            NotifyUrl::Telegram(t) => chat::telegram(self, t, msg).await,
            NotifyUrl::Mattermost(m) => chat::mattermost(self, m, msg).await,
            NotifyUrl::RocketChat(r) => chat::rocket(self, r, msg).await,
            NotifyUrl::Signal(g) => chat::signal(self, g, msg).await,
            NotifyUrl::Workflows(w) => chat::workflows(self, w, msg).await,
            NotifyUrl::Ntfy(n) => push::ntfy(self, n, msg).await,
            NotifyUrl::Gotify(g) => push::gotify(self, g, msg).await,
            NotifyUrl::Pushover(p) => push::pushover(self, p, msg).await,
            NotifyUrl::Pushbullet(p) => push::pushbullet(self, p, msg).await,
            NotifyUrl::Matrix(m) => matrix::send(self, m, msg).await,
            NotifyUrl::Email(e) => email::send(self, e, msg).await,
            NotifyUrl::AppriseApi(a) => apprise::api(self, a, msg).await,
            NotifyUrl::Relay(r) => apprise::relay(self, r, msg).await,
        }
    }

    /// A hosted service's URL, moved to `service_base` when one is set.
    pub(crate) fn hosted_url(&self, public: &str) -> Result<Url, DeliveryError> {
        let url = Url::parse(public).map_err(|e| DeliveryError::Config {
            service: "Notification",
            reason: format!("bad service URL {public}: {e}"),
        })?;
        Ok(match &self.options.service_base {
            Some(base) => {
                let mut moved = base.clone();
                let prefix = base.path().trim_end_matches('/');
                moved.set_path(&format!("{prefix}{}", url.path()));
                moved.set_query(url.query());
                moved
            }
            None => url,
        })
    }

    pub(crate) async fn send(&self, req: Request) -> Result<Reply, DeliveryError> {
        let service = req.service;
        let host = req.url.host_str().unwrap_or_default().to_string();
        let client = match req.dest {
            Dest::Hosted | Dest::Operator => &self.open,
            Dest::User => {
                self.vet_literal_host(service, &req.url)?;
                &self.guarded
            }
        };
        let mut headers = reqwest::header::HeaderMap::new();
        if matches!(req.body, Body::Json(_)) {
            headers.insert(
                reqwest::header::CONTENT_TYPE,
                reqwest::header::HeaderValue::from_static("application/json"),
            );
        }
        // Later entries win, so a user's `+Content-Type=…` replaces the default.
        for (k, v) in &req.headers {
            let name = reqwest::header::HeaderName::from_bytes(k.trim().as_bytes());
            let value = reqwest::header::HeaderValue::from_str(v.trim());
            match (name, value) {
                (Ok(n), Ok(v)) => {
                    headers.insert(n, v);
                }
                _ => {
                    return Err(DeliveryError::Config {
                        service,
                        reason: format!("invalid HTTP header '{k}'"),
                    });
                }
            }
        }
        let builder = client.request(req.method.clone(), req.url.clone());
        let builder = match req.body {
            Body::None => builder,
            Body::Json(v) => builder.body(serde_json::to_vec(&v).unwrap_or_default()),
            Body::Form(f) => builder.form(&f),
            Body::Raw(b) => builder.body(b),
            Body::Multipart(parts) => builder.multipart(multipart_form(service, parts)?),
        };
        // After the body, so a user's `+Content-Type=…` replaces the multipart one as it does
        // with Python's requests (`form()` never replaces one already set).
        let mut builder = builder.headers(headers);
        if let Some((u, p)) = &req.basic {
            builder = builder.basic_auth(u, Some(p));
        }
        if let Some(t) = &req.bearer {
            builder = builder.bearer_auth(t);
        }
        debug!(method = %req.method, url = %redact(&req.url), "sending");
        let resp = builder
            .send()
            .await
            .map_err(|e| self.classify(service, &host, e))?;
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        if (200..300).contains(&status) {
            return Ok(Reply { status, body });
        }
        Err(DeliveryError::Status {
            service,
            status,
            detail: error_detail(&body),
        })
    }

    fn vet_literal_host(&self, service: &'static str, url: &Url) -> Result<(), DeliveryError> {
        let ip: Option<IpAddr> = match url.host() {
            Some(url::Host::Ipv4(v4)) => Some(v4.into()),
            Some(url::Host::Ipv6(v6)) => Some(v6.into()),
            _ => None,
        };
        if let Some(ip) = ip {
            self.options
                .policy
                .check(ip)
                .map_err(|refusal| DeliveryError::Blocked {
                    service,
                    host: ip.to_string(),
                    refusal,
                })?;
        }
        Ok(())
    }

    /// Resolves a user-supplied host for a non-HTTP protocol (SMTP) and vets every address, so
    /// the caller can connect to the vetted address itself.
    pub(crate) async fn resolve_vetted(
        &self,
        service: &'static str,
        host: &str,
        port: u16,
    ) -> Result<std::net::SocketAddr, DeliveryError> {
        let lookup = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((lookup, port))
            .await
            .map_err(|e| DeliveryError::Connect {
                service,
                host: host.to_string(),
                reason: format!("DNS lookup failed: {e}"),
            })?
            .collect();
        let first = *addrs.first().ok_or_else(|| DeliveryError::Connect {
            service,
            host: host.to_string(),
            reason: "DNS lookup returned no addresses".into(),
        })?;
        if !self.options.policy.host_exempt(host) {
            for a in &addrs {
                self.options
                    .policy
                    .check(a.ip())
                    .map_err(|refusal| DeliveryError::Blocked {
                        service,
                        host: host.to_string(),
                        refusal,
                    })?;
            }
        }
        Ok(first)
    }

    fn classify(&self, service: &'static str, host: &str, err: reqwest::Error) -> DeliveryError {
        if let Some(refusal) = changewatch_core::fetch::refusal_in(&err) {
            return DeliveryError::Blocked {
                service,
                host: host.to_string(),
                refusal,
            };
        }
        if err.is_timeout() {
            return DeliveryError::Timeout {
                service,
                host: host.to_string(),
                secs: self.options.timeout.as_secs(),
            };
        }
        let mut reason = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(e) = source {
            reason = e.to_string();
            source = e.source();
        }
        DeliveryError::Connect {
            service,
            host: host.to_string(),
            reason,
        }
    }
}

/// Tokens live in paths and queries (Telegram, Discord, Workflows): logs get scheme and host.
fn redact(url: &Url) -> String {
    format!(
        "{}://{}/…",
        url.scheme(),
        url.host_str().unwrap_or_default()
    )
}

/// A short, single-line excerpt of an error answer, preferring a JSON `message`/`description`/
/// `error` field when the service sends one.
fn error_detail(body: &str) -> String {
    let from_json = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            ["description", "message", "error", "errors"]
                .iter()
                .find_map(|k| {
                    v.get(*k).map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| x.to_string())
                    })
                })
        });
    let text = from_json.unwrap_or_else(|| body.to_string());
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    format::truncate(&one_line, Some(200))
}
