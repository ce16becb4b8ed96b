//! Which `Host` names the server answers to: the guard against DNS rebinding.
//!
//! A page on an attacker's site can point its own name at this server's address once the browser
//! has loaded it (rebinding). The browser then treats the instance as the attacker's origin: the
//! page may send any request and read every reply, with the owner's network position, and no
//! cross-origin rule applies. What the browser cannot hide is the name it thinks it is talking
//! to: it sends it in `Host`. So the server refuses names it does not know.
//!
//! - IP literals and `localhost` (with its subdomains) always pass: a rebinding needs a name that
//!   the attacker's DNS answers for, and browsers resolve `localhost` names themselves.
//! - The name the server is bound to (`CHANGEDETECTION_HOST`, when it is a name) passes.
//! - `ALLOWED_HOSTS` set: only the names listed (`.example.com` = the domain and its subdomains,
//!   `*` = any) pass besides the above, whatever else is configured.
//! - `ALLOWED_HOSTS` unset: any other name passes only while the instance is protected, that is
//!   a dashboard password is set *and* the API requires its key. Then the rebinding page holds
//!   no session cookie (cookies belong to the real name) and no key, so it reaches nothing the
//!   Internet could not. Either one alone is not enough: without a password `/ui/settings`
//!   reads the key; without the key check `/api/v1` is open. An upgrade therefore keeps working
//!   for instances reached by name behind a password, as upstream's users run them.
//!
//! A request without any host (HTTP/1.0 tools) passes: browsers always send one.
//!
//! Wrapped around the whole app by `changewatch serve` (API, `/ui`, Socket.IO, dashboard files).
//! AWS mode does not use it: API Gateway and the push service's load balancer route by name
//! already.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use changewatch_core::config::Config;
use changewatch_core::model::Settings;

use crate::error::ApiError;
use crate::state::{Access, AppState};

/// The host names a server answers to; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct AllowedHosts {
    /// `ALLOWED_HOSTS`, normalised by [`Config`]; `None` when unset.
    listed: Option<Vec<String>>,
    /// The bind address when it is a name.
    own: Option<String>,
}

/// What a `Host` value earns before the instance's protection is looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Allow,
    /// Allowed only while a password and the API key protect the instance.
    IfProtected,
    Refuse,
}

impl AllowedHosts {
    /// From `ALLOWED_HOSTS` and `CHANGEDETECTION_HOST`.
    pub fn from_config(config: &Config) -> Self {
        Self::new(config.allowed_hosts.clone(), &config.host)
    }

    /// `listed` as normalised by [`Config`] (`None`: unset); `bind_host` is the listen address.
    pub fn new(listed: Option<Vec<String>>, bind_host: &str) -> Self {
        let own = normalise(bind_host).filter(|h| !is_local(h));
        AllowedHosts { listed, own }
    }

    fn verdict(&self, host: &str) -> Verdict {
        if is_local(host) || self.own.as_deref() == Some(host) {
            return Verdict::Allow;
        }
        let Some(listed) = &self.listed else {
            return Verdict::IfProtected;
        };
        let hit = listed.iter().any(|entry| {
            entry == "*"
                || entry == host
                || entry.strip_prefix('.').is_some_and(|domain| {
                    host == domain
                        || host
                            .strip_suffix(domain)
                            .is_some_and(|sub| sub.ends_with('.'))
                })
        });
        if hit { Verdict::Allow } else { Verdict::Refuse }
    }
}

/// Wraps `app` (everything a browser can reach) in the `Host` check.
pub fn guard(app: Router, state: AppState, hosts: AllowedHosts) -> Router {
    app.layer(middleware::from_fn_with_state(
        Guard {
            state,
            hosts: Arc::new(hosts),
        },
        check_host,
    ))
}

#[derive(Clone)]
struct Guard {
    state: AppState,
    hosts: Arc<AllowedHosts>,
}

async fn check_host(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    // An absolute-form request target wins over `Host` (RFC 9112 §3.2.2); HTTP/2 has only the
    // `:authority`, which lands in the URI too.
    let raw = match req.uri().authority() {
        Some(a) => Some(a.host().to_string()),
        None => match req.headers().get(header::HOST) {
            None => None,
            Some(v) => match v.to_str().ok().and_then(host_of_header) {
                Some(h) => Some(h),
                None => return refuse(StatusCode::BAD_REQUEST, "Invalid Host header.\n".into()),
            },
        },
    };
    let Some(host) = raw.as_deref().and_then(normalise) else {
        return match raw {
            None => next.run(req).await,
            Some(_) => refuse(StatusCode::BAD_REQUEST, "Invalid Host header.\n".into()),
        };
    };
    match guard.hosts.verdict(&host) {
        Verdict::Allow => next.run(req).await,
        Verdict::Refuse => refuse(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "This changewatch instance does not answer to the host name '{host}': it is not \
                 in ALLOWED_HOSTS. Add it there (comma-separated), or open the instance by its IP \
                 address.\n"
            ),
        ),
        Verdict::IfProtected => {
            let settings = match guard.state.settings().await {
                Ok(s) => s,
                Err(e) => return ApiError::from(e).into_response(),
            };
            if protected(guard.state.access(&settings), &settings) {
                next.run(req).await
            } else {
                tracing::debug!(%host, "refused a request for an unknown host name");
                refuse(
                    StatusCode::MISDIRECTED_REQUEST,
                    format!(
                        "This changewatch instance does not answer to the host name '{host}'. \
                         Without a dashboard password (and the API key required) it answers \
                         only to its IP address and localhost, so that a web page cannot point \
                         a name of its own at it (DNS rebinding). Set ALLOWED_HOSTS={host} \
                         (comma-separated names), or set a dashboard password, or open the \
                         instance by its IP address.\n"
                    ),
                )
            }
        }
    }
}

/// Whether nothing is open to a caller without credentials: the dashboard closed without a
/// login (a password in force, or none and network-facing) and the API key required (with a key
/// to compare against).
fn protected(access: Access, settings: &Settings) -> bool {
    let app = &settings.application;
    access != Access::Open
        && app.api_access_token_enabled
        && app
            .api_access_token
            .as_deref()
            .is_some_and(|k| !k.is_empty())
}

/// The host part of a `Host` header value (`name`, `name:port`, `[v6]:port`).
fn host_of_header(value: &str) -> Option<String> {
    let authority: axum::http::uri::Authority = value.trim().parse().ok()?;
    // `Host` never carries credentials; a value that does is not a browser's.
    if authority.as_str().contains('@') {
        return None;
    }
    Some(authority.host().to_string())
}

/// Lowercase, without a trailing dot or IPv6 brackets; `None` when empty.
fn normalise(host: &str) -> Option<String> {
    let h = host.trim().to_ascii_lowercase();
    let h = h.trim_end_matches('.');
    let h = h
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(h);
    (!h.is_empty()).then(|| h.to_string())
}

/// IP literals and `localhost` names: nothing a rebinding attacker can own.
fn is_local(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok() || host == "localhost" || host.ends_with(".localhost")
}

fn refuse(status: StatusCode, message: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        message,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(listed: Option<&[&str]>) -> AllowedHosts {
        AllowedHosts::new(
            listed.map(|l| l.iter().map(|s| s.to_string()).collect()),
            "0.0.0.0",
        )
    }

    fn verdict(h: &AllowedHosts, raw: &str) -> Verdict {
        match host_of_header(raw).as_deref().and_then(normalise) {
            Some(host) => h.verdict(&host),
            None => panic!("{raw} parses"),
        }
    }

    #[test]
    fn addresses_and_localhost_always_pass() {
        for policy in [hosts(None), hosts(Some(&["changes.example.com"]))] {
            for raw in [
                "127.0.0.1:5000",
                "192.168.1.20:5000",
                "[::1]:5000",
                "[fd00::5]",
                "localhost:5000",
                "LOCALHOST.",
                "dash.localhost:5000",
            ] {
                assert_eq!(verdict(&policy, raw), Verdict::Allow, "{raw}");
            }
        }
    }

    #[test]
    fn unset_other_names_need_protection() {
        let policy = hosts(None);
        for raw in [
            "evil.example:5000",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
        ] {
            assert_eq!(verdict(&policy, raw), Verdict::IfProtected, "{raw}");
        }
    }

    #[test]
    fn listed_names_only_when_set() {
        let policy = hosts(Some(&["changes.example.com", ".lan"]));
        for raw in [
            "changes.example.com",
            "Changes.Example.COM.:443",
            "lan",
            "nas.lan:5000",
        ] {
            assert_eq!(verdict(&policy, raw), Verdict::Allow, "{raw}");
        }
        for raw in [
            "evil.example",
            "example.com",
            "xchanges.example.com",
            "changes.example.com.evil.example",
            "evillan",
            "nas.lan.evil.example",
        ] {
            assert_eq!(verdict(&policy, raw), Verdict::Refuse, "{raw}");
        }
        assert_eq!(
            verdict(&hosts(Some(&["*"])), "anything.example"),
            Verdict::Allow
        );
    }

    #[test]
    fn the_bound_name_passes() {
        let policy = AllowedHosts::new(Some(vec![]), "NAS.home");
        assert_eq!(verdict(&policy, "nas.home:5000"), Verdict::Allow);
        assert_eq!(verdict(&policy, "other.home"), Verdict::Refuse);
    }

    #[test]
    fn malformed_hosts_do_not_parse() {
        for raw in ["", "user@evil.example", "a b", "evil.example/x"] {
            assert!(
                host_of_header(raw).as_deref().and_then(normalise).is_none(),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn protection_needs_password_and_required_key() {
        let mut s = Settings::new_with_tokens();
        assert!(s.application.api_access_token_enabled);
        assert!(protected(Access::Password("hash"), &s));
        assert!(
            !protected(Access::Open, &s),
            "no password: /ui/settings reads the key"
        );
        s.application.api_access_token_enabled = false;
        assert!(
            !protected(Access::Password("hash"), &s),
            "no key check: /api/v1 is open"
        );
        s.application.api_access_token_enabled = true;
        s.application.api_access_token = Some(String::new());
        assert!(!protected(Access::Password("hash"), &s));
    }
}
