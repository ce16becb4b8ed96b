//! Which web pages may open the socket.
//!
//! A WebSocket is not subject to CORS: any page the owner visits could connect to
//! `ws://localhost:5000/socket.io/`, and with no dashboard password (the default) read every
//! watch and send `checkbox-operation`s. Browsers always send `Origin` on a WebSocket handshake
//! and on cross-origin requests, so a handshake whose `Origin` is not the server's own origin
//! (same scheme, host and port, as upstream's python-engineio decides by default) or one listed
//! in `CW_ALLOWED_ORIGINS` is refused. A same-site page on another port is another origin.
//! Without `Origin` the client is not a browser page (python-socketio, socket.io-client in
//! Node): it is let through, and the handshake's auth still applies.

use axum::http::{HeaderMap, Uri, header};
use changewatch_core::config::parse_origin;
use url::Origin;

/// The request's own origin, as the browser that loaded the dashboard from this server sees
/// it: `X-Forwarded-Proto` / `X-Forwarded-Host` when a proxy set them (a page cannot set
/// them on a WebSocket handshake), else plain HTTP to the `Host` header.
fn own_origin(headers: &HeaderMap, uri: &Uri) -> Option<Origin> {
    let first = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let scheme = match first("x-forwarded-proto").map(|p| p.to_ascii_lowercase()) {
        Some(p) if p == "https" || p == "wss" => "https",
        _ => "http",
    };
    let host = first("x-forwarded-host")
        .or_else(|| first(header::HOST.as_str()))
        .or_else(|| uri.authority().map(|a| a.as_str().to_string()))?;
    parse_origin(&format!("{scheme}://{host}"))
}

/// The socket's origin policy: the server's own origin plus a configured list.
#[derive(Clone, Debug, Default)]
pub struct OriginPolicy {
    allowed: Vec<Origin>,
}

/// Why a handshake was refused, for the log and the 403 body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Origin {0:?} is not allowed to open the socket")]
pub struct OriginRefused(pub String);

impl OriginPolicy {
    /// `allowed`: origins as `CW_ALLOWED_ORIGINS` gives them (validated by the config);
    /// entries that do not parse are skipped.
    pub fn new(allowed: &[String]) -> Self {
        OriginPolicy {
            allowed: allowed.iter().filter_map(|o| parse_origin(o)).collect(),
        }
    }

    /// Whether a handshake request may proceed.
    pub fn check(&self, headers: &HeaderMap, uri: &Uri) -> Result<(), OriginRefused> {
        let mut values = headers.get_all(header::ORIGIN).iter();
        let Some(value) = values.next() else {
            return Ok(());
        };
        let raw = value.to_str().unwrap_or("").to_string();
        if values.next().is_some() {
            return Err(OriginRefused(raw));
        }
        let Some(origin) = parse_origin(&raw) else {
            return Err(OriginRefused(raw));
        };
        if own_origin(headers, uri).as_ref() == Some(&origin) || self.allowed.contains(&origin) {
            Ok(())
        } else {
            Err(OriginRefused(raw))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn ok(policy: &OriginPolicy, pairs: &[(&str, &str)]) -> bool {
        policy
            .check(&req(pairs), &Uri::from_static("/socket.io/"))
            .is_ok()
    }

    #[test]
    fn same_origin_only_by_default() {
        let p = OriginPolicy::default();
        assert!(
            ok(&p, &[("host", "127.0.0.1:5000")]),
            "no Origin: not a page"
        );
        assert!(ok(
            &p,
            &[
                ("host", "127.0.0.1:5000"),
                ("origin", "http://127.0.0.1:5000")
            ]
        ));
        assert!(ok(
            &p,
            &[
                ("host", "LocalHost:5000"),
                ("origin", "http://localhost:5000/")
            ]
        ));
        assert!(ok(
            &p,
            &[("host", "example.com"), ("origin", "http://example.com:80")]
        ));
        assert!(ok(
            &p,
            &[("host", "[::1]:5000"), ("origin", "http://[::1]:5000")]
        ));
        for (host, origin) in [
            ("127.0.0.1:5000", "http://evil.example"),
            ("127.0.0.1:5000", "http://127.0.0.1:8080"),
            ("localhost:5000", "http://localhost"),
            ("localhost:5000", "https://localhost:5000"),
            ("localhost:5000", "null"),
            ("localhost:5000", "http://localhost:5000.evil.example"),
            ("localhost:5000", "http://user@localhost:5000"),
        ] {
            assert!(
                !ok(&p, &[("host", host), ("origin", origin)]),
                "{origin} on {host}"
            );
        }
        assert!(
            !ok(
                &p,
                &[
                    ("host", "localhost:5000"),
                    ("origin", "http://localhost:5000"),
                    ("origin", "http://evil.example")
                ]
            ),
            "two Origin headers"
        );
        assert!(!ok(&p, &[("origin", "http://localhost:5000")]), "no Host");
    }

    #[test]
    fn behind_a_proxy_and_configured_origins() {
        let p = OriginPolicy::default();
        let proxied = [
            ("host", "127.0.0.1:5000"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "watch.example.com"),
            ("origin", "https://watch.example.com"),
        ];
        assert!(ok(&p, &proxied));
        let p = OriginPolicy::new(&[
            "https://dash.example.com".into(),
            "http://127.0.0.1:8080".into(),
        ]);
        assert!(ok(
            &p,
            &[
                ("host", "127.0.0.1:5000"),
                ("origin", "https://dash.example.com:443")
            ]
        ));
        assert!(ok(
            &p,
            &[
                ("host", "127.0.0.1:5000"),
                ("origin", "http://127.0.0.1:8080")
            ]
        ));
        assert!(!ok(
            &p,
            &[
                ("host", "127.0.0.1:5000"),
                ("origin", "http://dash.example.com")
            ]
        ));
    }
}
