//! Matrix through the client-server API: log in (or use a token), join each room, send an
//! `m.room.message`, and log out again so password logins do not leave a device behind per
//! notification.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::{Value, json};
use tracing::debug;
use url::Url;

use super::format::{Flavor, convert, escape_html, for_flavor, truncate};
use super::{Body, Deliverer, DeliveryError, Dest, Request};
use crate::url::{Matrix, MatrixAuth};
use crate::{BodyFormat, Message};

const SERVICE: &str = "Matrix";
/// apprise's limits: plain bodies up to 60 000 characters, formatted ones up to 29 000.
const PLAIN_MAX: usize = 60_000;
const FORMATTED_MAX: usize = 29_000;

/// Transaction ids must be unique per access token; tokens here live for one delivery, but a
/// token given in the URL is reused, so ids combine the clock and a process-wide counter.
static TXN: AtomicU64 = AtomicU64::new(0);

fn txn_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("cw{nanos}{}", TXN.fetch_add(1, Ordering::Relaxed))
}

fn endpoint(cfg: &Matrix, segments: &[&str]) -> Result<Url, DeliveryError> {
    let mut url = cfg.server.clone();
    {
        let mut path = url.path_segments_mut().map_err(|_| DeliveryError::Config {
            service: SERVICE,
            reason: "the server URL cannot carry a path".into(),
        })?;
        path.pop_if_empty();
        path.extend(cfg.api_path.split('/').filter(|s| !s.is_empty()));
        path.extend(segments);
    }
    Ok(url)
}

fn api(
    cfg: &Matrix,
    method: Method,
    segments: &[&str],
    token: Option<&str>,
    body: Value,
) -> Result<Request, DeliveryError> {
    let mut req = Request::new(SERVICE, Dest::User, method, endpoint(cfg, segments)?).json(body);
    req.bearer = token.map(str::to_string);
    Ok(req)
}

fn field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

pub(crate) async fn send(d: &Deliverer, cfg: &Matrix, msg: &Message) -> Result<(), DeliveryError> {
    let (token, user_id, logged_in) = match &cfg.auth {
        MatrixAuth::Token(t) => (t.clone(), None, false),
        MatrixAuth::Password { user, password } => {
            let body = if cfg.api_path.ends_with("/r0") {
                json!({ "type": "m.login.password", "user": user, "password": password })
            } else {
                json!({
                    "type": "m.login.password",
                    "identifier": { "type": "m.id.user", "user": user },
                    "password": password,
                    "initial_device_display_name": "changewatch",
                })
            };
            let reply = d
                .send(api(cfg, Method::POST, &["login"], None, body)?)
                .await?;
            let v = reply.json().unwrap_or_default();
            let token = field(&v, "access_token").ok_or_else(|| DeliveryError::Rejected {
                service: SERVICE,
                reason: "login answered without an access token".into(),
            })?;
            (token, field(&v, "user_id"), true)
        }
    };
    let result = send_all(d, cfg, msg, &token, user_id.as_deref()).await;
    if logged_in {
        // Best effort: the message went (or not) either way.
        let _ = d
            .send(api(
                cfg,
                Method::POST,
                &["logout"],
                Some(&token),
                json!({}),
            )?)
            .await;
    }
    result
}

async fn send_all(
    d: &Deliverer,
    cfg: &Matrix,
    msg: &Message,
    token: &str,
    user_id: Option<&str>,
) -> Result<(), DeliveryError> {
    // Room aliases without a server part belong to the user's home server.
    let home_server = user_id
        .and_then(|u| u.split_once(':').map(|(_, hs)| hs.to_string()))
        .or_else(|| cfg.server.host_str().map(str::to_string))
        .unwrap_or_default();
    let content = content(cfg, msg);
    // Files are uploaded once, after the first room is joined, and shown in every room before
    // the text, as apprise does.
    let mut files: Option<Vec<Value>> = None;
    for room in &cfg.rooms {
        let room = room.trim();
        let target = if room.starts_with('!') || room.starts_with('#') {
            room.to_string()
        } else {
            format!("#{room}")
        };
        let target = if target.contains(':') {
            target
        } else {
            format!("{target}:{home_server}")
        };
        let joined = d
            .send(api(
                cfg,
                Method::POST,
                &["join", &target],
                Some(token),
                json!({}),
            )?)
            .await?;
        let room_id = joined
            .json()
            .and_then(|v| field(&v, "room_id"))
            .unwrap_or_else(|| target.clone());
        if files.is_none() {
            files = Some(upload_all(d, cfg, msg, token).await?);
        }
        for file in files.iter().flatten() {
            let mut event = file.clone();
            event["room_id"] = Value::from(room_id.clone());
            event["type"] = Value::from("m.room.message");
            let txn = txn_id();
            let req = api(
                cfg,
                Method::PUT,
                &["rooms", &room_id, "send", "m.room.message", &txn],
                Some(token),
                event,
            )?;
            d.send(req).await?;
        }
        let txn = txn_id();
        let req = api(
            cfg,
            Method::PUT,
            &["rooms", &room_id, "send", "m.room.message", &txn],
            Some(token),
            content.clone(),
        )?;
        d.send(req).await?;
    }
    Ok(())
}

/// Uploads the message's files to the media repository and returns the event content for
/// each, as apprise builds it: with the v3 API an `m.image` (images) or `m.file` (the rest,
/// with its `filename`) carrying its type and size; with `v=2` (r0) images only, as `m.image`.
async fn upload_all(
    d: &Deliverer,
    cfg: &Matrix,
    msg: &Message,
    token: &str,
) -> Result<Vec<Value>, DeliveryError> {
    let legacy = cfg.api_path.ends_with("/r0");
    let mut events = Vec::new();
    for file in &msg.attachments {
        let image = file.mimetype.to_ascii_lowercase().starts_with("image/");
        if legacy && !image {
            debug!(mimetype = %file.mimetype, "Matrix r0 takes images only; file left out");
            continue;
        }
        let mut url = cfg.server.clone();
        {
            let mut path = url.path_segments_mut().map_err(|_| DeliveryError::Config {
                service: SERVICE,
                reason: "the server URL cannot carry a path".into(),
            })?;
            path.pop_if_empty().extend([
                "_matrix",
                "media",
                if legacy { "r0" } else { "v3" },
                "upload",
            ]);
        }
        url.query_pairs_mut()
            .append_pair("filename", &file.filename);
        let mut req = Request::new(SERVICE, Dest::User, Method::POST, url)
            .header("Content-Type", file.mimetype.clone())
            .header("Accept", "application/json");
        req.bearer = Some(token.to_string());
        req.body = Body::Raw(file.data.clone());
        let uri = d
            .send(req)
            .await?
            .json()
            .and_then(|v| field(&v, "content_uri"))
            .ok_or_else(|| DeliveryError::Rejected {
                service: SERVICE,
                reason: format!(
                    "the upload of {} answered without a content URI",
                    file.filename
                ),
            })?;
        events.push(if legacy {
            json!({
                "info": { "mimetype": file.mimetype },
                "msgtype": "m.image",
                "body": "tta.webp",
                "url": uri,
            })
        } else {
            let mut e = json!({
                "body": file.filename,
                "info": { "mimetype": file.mimetype, "size": file.data.len() },
                "msgtype": if image { "m.image" } else { "m.file" },
                "url": uri,
            });
            if !image {
                e["filename"] = Value::from(file.filename.clone());
            }
            e
        });
    }
    Ok(events)
}

fn content(cfg: &Matrix, msg: &Message) -> Value {
    let plain = for_flavor(&msg.body, msg.format, Flavor::Text, Some(PLAIN_MAX));
    let body = if msg.title.is_empty() {
        plain
    } else {
        format!("# {}\r\n{plain}", msg.title)
    };
    let mut v = json!({
        "msgtype": format!("m.{}", cfg.msgtype),
        "body": truncate(&body, Some(PLAIN_MAX)),
    });
    if msg.format != BodyFormat::Text {
        let title = if msg.title.is_empty() {
            String::new()
        } else {
            format!("<h1>{}</h1>", escape_html(&msg.title))
        };
        let html = format!(
            "{title}{}",
            convert(&msg.body, msg.format, BodyFormat::Html)
        );
        // HTML cannot be cut safely at an arbitrary point; an oversized body goes as text only.
        if html.chars().count() <= FORMATTED_MAX {
            v["format"] = Value::from("org.matrix.custom.html");
            v["formatted_body"] = Value::from(html);
        }
    }
    v
}
