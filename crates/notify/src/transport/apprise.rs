//! Apprise API servers: apprise's own `apprise(s)://` notifier (a user's server and key), and
//! the relay of every URL this crate does not deliver itself to the operator's server
//! (`APPRISE_API_URL`), whose stateless `POST /notify` runs apprise on it.
//!
//! Both send the message as written with its format named, as apprise's notifier does: the
//! server converts it for each service, so nothing is converted twice.

use std::net::IpAddr;

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

use super::{Body, Deliverer, DeliveryError, Dest, Part, Request, apprise_trimmed};
use crate::url::{AppriseApi, AppriseApiMethod, Relayed};
use crate::{BodyFormat, Message};

/// apprise's notification type; changes are always informational.
const NOTIFY_TYPE: &str = "info";

fn format_name(f: BodyFormat) -> &'static str {
    match f {
        BodyFormat::Text => "text",
        BodyFormat::Html => "html",
        BodyFormat::Markdown => "markdown",
    }
}

/// apprise's JSON form of the files: `{filename, base64, mimetype}` each.
fn json_files(msg: &Message) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    Value::Array(
        msg.attachments
            .iter()
            .map(|a| {
                json!({
                    "filename": a.filename,
                    "base64": b64.encode(&a.data),
                    "mimetype": a.mimetype,
                })
            })
            .collect(),
    )
}

/// The headers apprise's notifier always sends (after any `+Header=` of the user's, which
/// cannot replace them).
fn fixed_headers(d: &Deliverer, req: Request) -> Request {
    req.header("Accept", "application/json")
        .header("X-Apprise-ID", d.instance.clone())
        .header("X-Apprise-Recursion-Count", "1")
}

/// `apprise(s)://`: what apprise 2.0.1's Apprise API notifier posts, form-encoded by default
/// (`method=json` for JSON), the key as `X-Apprise-Config-ID` (or in the path with `v=1`).
pub(crate) async fn api(
    d: &Deliverer,
    cfg: &AppriseApi,
    msg: &Message,
) -> Result<(), DeliveryError> {
    let service = "Apprise API";
    let path = if cfg.key_in_path {
        format!("notify/{}", cfg.token)
    } else {
        "notify".to_string()
    };
    let url = cfg.server.join(&path).map_err(|e| DeliveryError::Config {
        service,
        reason: format!("bad server URL: {e}"),
    })?;
    let mut req = Request::new(service, Dest::User, Method::POST, url);
    for (k, v) in &cfg.headers {
        req = req.header(k, v.clone());
    }
    if !cfg.key_in_path {
        req = req.header("X-Apprise-Config-ID", cfg.token.clone());
    }
    req = fixed_headers(d, req);
    req.basic = cfg.auth.clone();
    let (title, body) = apprise_trimmed(msg);
    let format = format_name(msg.format);
    req.body = match cfg.method {
        AppriseApiMethod::Json => {
            let mut payload = json!({
                "title": title,
                "body": body,
                "type": NOTIFY_TYPE,
                "format": format,
            });
            if !cfg.tags.is_empty() {
                payload["tag"] = json!(cfg.tags);
            }
            if !msg.attachments.is_empty() {
                payload["attachments"] = json_files(msg);
            }
            Body::Json(payload)
        }
        AppriseApiMethod::Form => {
            let mut fields = vec![
                ("title".to_string(), title.to_string()),
                ("body".to_string(), body.to_string()),
                ("type".to_string(), NOTIFY_TYPE.to_string()),
                ("format".to_string(), format.to_string()),
            ];
            fields.extend(cfg.tags.iter().map(|t| ("tag".to_string(), t.clone())));
            if msg.attachments.is_empty() {
                Body::Form(fields)
            } else {
                let mut parts: Vec<Part> =
                    fields.into_iter().map(|(k, v)| Part::text(k, v)).collect();
                parts.extend(
                    msg.attachments
                        .iter()
                        .enumerate()
                        .map(|(i, a)| Part::file(format!("file{:02}", i + 1), a, true)),
                );
                Body::Multipart(parts)
            }
        }
    };
    d.send(req).await.map(|_| ())
}

/// Any other apprise URL: handed whole to the operator's Apprise API server. Its host is
/// vetted first, as the server would connect there on our behalf.
pub(crate) async fn relay(
    d: &Deliverer,
    cfg: &Relayed,
    msg: &Message,
) -> Result<(), DeliveryError> {
    let service = "Apprise API relay";
    let base = d
        .options()
        .apprise_api
        .as_ref()
        .ok_or_else(|| DeliveryError::Config {
            service,
            reason: format!(
                "changewatch does not deliver '{}://' URLs itself; they go through an Apprise API \
                 server, and none is configured (set APPRISE_API_URL)",
                cfg.scheme
            ),
        })?;
    vet_relayed_host(d, service, &cfg.host).await?;
    let url = base.join("notify").map_err(|e| DeliveryError::Config {
        service,
        reason: format!("bad APPRISE_API_URL: {e}"),
    })?;
    let mut payload = json!({
        "urls": cfg.url,
        "title": msg.title,
        "body": msg.body,
        "type": NOTIFY_TYPE,
        "format": format_name(msg.format),
    });
    if !msg.attachments.is_empty() {
        payload["attachments"] = json_files(msg);
    }
    let req = fixed_headers(
        d,
        Request::new(service, Dest::Operator, Method::POST, url).json(payload),
    );
    let reply = d.send(req).await?;
    // The server answers 204 when apprise loaded none of the URLs: nothing was sent.
    if reply.status == 204 {
        return Err(DeliveryError::Rejected {
            service,
            reason: format!(
                "the Apprise API server could not load the '{}://' URL",
                cfg.scheme
            ),
        });
    }
    Ok(())
}

/// The relayed URL's host under the SSRF policy: an address literal, `localhost`, or a name
/// that resolves. Many services' URLs carry a token where the host goes; a name that does not
/// resolve is left to the server, which cannot reach it either.
async fn vet_relayed_host(
    d: &Deliverer,
    service: &'static str,
    host: &str,
) -> Result<(), DeliveryError> {
    let policy = &d.options().policy;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.is_empty() || policy.host_exempt(bare) {
        return Ok(());
    }
    let blocked = |ip: IpAddr| {
        policy.check(ip).map_err(|refusal| DeliveryError::Blocked {
            service,
            host: host.to_string(),
            refusal,
        })
    };
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return blocked(ip);
    }
    let lower = bare.to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return blocked(IpAddr::from([127, 0, 0, 1]));
    }
    let looks_like_name = lower.contains('.')
        && lower
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if !looks_like_name {
        return Ok(());
    }
    let lookup = tokio::time::timeout(
        d.options().timeout,
        tokio::net::lookup_host((lower.as_str(), 0)),
    )
    .await;
    if let Ok(Ok(addrs)) = lookup {
        for a in addrs {
            blocked(a.ip())?;
        }
    }
    Ok(())
}
