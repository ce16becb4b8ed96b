//! Push services: ntfy, Gotify, Pushover and Pushbullet.

use reqwest::Method;
use serde_json::{Value, json};
use tracing::debug;

use super::format::{
    Flavor, for_flavor, markdown_for_chat, text_to_markdown, truncate, truncate_bytes,
};
use super::{Body, Deliverer, DeliveryError, Dest, Part, Request, apprise_trimmed};
use crate::url::{Gotify, Ntfy, NtfyAuth, Pushbullet, Pushover};
use crate::{BodyFormat, Message};

/// ntfy turns longer messages into attachments; keep them a message.
const NTFY_MAX_BYTES: usize = 4096;
const NTFY_TITLE_MAX: usize = 200;
const PUSHOVER_MAX: usize = 1024;
const PUSHOVER_TITLE_MAX: usize = 250;
/// Pushover's limit on an attached image (apprise's figure: 5 MiB).
const PUSHOVER_MAX_FILE_BYTES: usize = 5 * 1024 * 1024;
/// Pushover needs these for emergency priority; apprise's defaults (15 minutes, 1 hour).
const PUSHOVER_RETRY_SECS: u32 = 900;
const PUSHOVER_EXPIRE_SECS: u32 = 3600;
/// apprise's Pushbullet limits.
const PUSHBULLET_MAX: usize = 32_768;
const PUSHBULLET_TITLE_MAX: usize = 250;

/// Body for services that render markdown or plain text, and whether it is markdown.
fn markdown_or_text(msg: &Message) -> (String, bool) {
    match msg.format {
        BodyFormat::Markdown => (markdown_for_chat(&msg.body), true),
        BodyFormat::Html => (for_flavor(&msg.body, msg.format, Flavor::Text, None), false),
        BodyFormat::Text => (msg.body.clone(), false),
    }
}

pub(crate) async fn ntfy(d: &Deliverer, cfg: &Ntfy, msg: &Message) -> Result<(), DeliveryError> {
    let (url, dest) = match &cfg.server {
        Some(server) => (server.clone(), Dest::User),
        None => (d.hosted_url("https://ntfy.sh/")?, Dest::Hosted),
    };
    let (body, markdown) = markdown_or_text(msg);
    let body = truncate_bytes(&body, NTFY_MAX_BYTES);
    let title = truncate(&msg.title, Some(NTFY_TITLE_MAX));
    for topic in &cfg.topics {
        if msg.attachments.is_empty() {
            let mut payload = json!({ "topic": topic });
            if !title.is_empty() {
                payload["title"] = Value::from(title.clone());
            }
            if !body.is_empty() {
                payload["message"] = Value::from(body.clone());
            }
            let req = Request::new("ntfy", dest, Method::POST, url.clone())
                .header("Content-Type", "application/json")
                .json(payload);
            d.send(ntfy_options(req, cfg, markdown)).await?;
            continue;
        }
        // apprise uploads each file to `/<topic>` as the raw body, its name and (with the
        // first file only) the title and message in the query: no separate text message.
        let mut topic_url = url.clone();
        topic_url
            .path_segments_mut()
            .map_err(|_| DeliveryError::Config {
                service: "ntfy",
                reason: "the server URL cannot carry a topic".into(),
            })?
            .pop_if_empty()
            .push(topic);
        for (i, file) in msg.attachments.iter().enumerate() {
            let mut file_url = topic_url.clone();
            {
                let mut q = file_url.query_pairs_mut();
                q.append_pair("filename", &file.filename);
                if i == 0 && !title.is_empty() {
                    q.append_pair("title", &title);
                }
                if i == 0 && !body.is_empty() {
                    q.append_pair("message", &body);
                }
            }
            let mut req = Request::new("ntfy", dest, Method::POST, file_url);
            req.body = Body::Raw(file.data.clone());
            d.send(ntfy_options(req, cfg, markdown)).await?;
            debug!("ntfy attachment sent");
        }
    }
    Ok(())
}

/// The headers and credentials every ntfy request carries.
fn ntfy_options(mut req: Request, cfg: &Ntfy, markdown: bool) -> Request {
    if markdown {
        req = req.header("X-Markdown", "yes");
    }
    for (name, value) in [
        ("X-Priority", &cfg.priority),
        ("X-Tags", &cfg.tags),
        ("X-Click", &cfg.click),
        ("X-Delay", &cfg.delay),
        ("X-Email", &cfg.email),
    ] {
        if let Some(v) = value {
            req = req.header(name, v.clone());
        }
    }
    match &cfg.auth {
        NtfyAuth::None => {}
        NtfyAuth::Basic(u, p) => req.basic = Some((u.clone(), p.clone())),
        NtfyAuth::Token(t) => req.bearer = Some(t.clone()),
    }
    req
}

pub(crate) async fn gotify(
    d: &Deliverer,
    cfg: &Gotify,
    msg: &Message,
) -> Result<(), DeliveryError> {
    let url = cfg
        .server
        .join("message")
        .map_err(|e| DeliveryError::Config {
            service: "Gotify",
            reason: format!("bad server URL: {e}"),
        })?;
    // apprise marks the message as markdown only when the URL asks (`format=markdown`), and
    // then writes the body as markdown.
    let body = if cfg.markdown {
        match msg.format {
            BodyFormat::Text => text_to_markdown(&msg.body),
            _ => for_flavor(&msg.body, msg.format, Flavor::Markdown, None),
        }
    } else {
        markdown_or_text(msg).0
    };
    let mut payload = json!({
        "priority": cfg.priority,
        "title": msg.title,
        "message": body,
    });
    if cfg.markdown {
        payload["extras"] = json!({ "client::display": { "contentType": "text/markdown" } });
    }
    let req = Request::new("Gotify", Dest::User, Method::POST, url)
        .header("X-Gotify-Key", cfg.token.clone())
        .json(payload);
    d.send(req).await.map(|_| ())
}

pub(crate) async fn pushover(
    d: &Deliverer,
    cfg: &Pushover,
    msg: &Message,
) -> Result<(), DeliveryError> {
    let url = d.hosted_url("https://api.pushover.net/1/messages.json")?;
    let html = msg.format != BodyFormat::Text;
    let message = for_flavor(
        &msg.body,
        msg.format,
        if html { Flavor::Pushover } else { Flavor::Text },
        Some(PUSHOVER_MAX),
    );
    let title = if msg.title.is_empty() {
        "changewatch".to_string()
    } else {
        truncate(&msg.title, Some(PUSHOVER_TITLE_MAX))
    };
    let message_empty = message.is_empty();
    let mut form: Vec<(String, String)> = vec![
        ("token".into(), cfg.token.clone()),
        ("user".into(), cfg.user_key.clone()),
        ("priority".into(), cfg.priority.to_string()),
        ("title".into(), title),
        ("message".into(), message),
    ];
    // apprise always names a sound (its default is Pushover's own, `pushover`) and, without
    // devices, sends to its `ALL_DEVICES` placeholder.
    form.push((
        "sound".into(),
        cfg.sound.clone().unwrap_or_else(|| "pushover".into()),
    ));
    form.push((
        "device".into(),
        if cfg.devices.is_empty() {
            "ALL_DEVICES".into()
        } else {
            cfg.devices.join(",")
        },
    ));
    if html {
        form.push(("html".into(), "1".into()));
    }
    if cfg.priority == 2 {
        form.push(("retry".into(), PUSHOVER_RETRY_SECS.to_string()));
        form.push(("expire".into(), PUSHOVER_EXPIRE_SECS.to_string()));
    }
    if msg.attachments.is_empty() {
        let mut req = Request::new("Pushover", Dest::Hosted, Method::POST, url);
        req.body = Body::Form(form);
        return pushover_send(d, req).await;
    }
    // apprise: one message per file, the text with the first; later ones carry the file's name
    // as their message, no title and no sound.
    for (i, file) in msg.attachments.iter().enumerate() {
        let mut fields = form.clone();
        if i > 0 || message_empty {
            set(&mut fields, "message", &file.filename);
        }
        if i > 0 {
            set(&mut fields, "title", "");
            set(&mut fields, "sound", "none");
        }
        let mut req = Request::new("Pushover", Dest::Hosted, Method::POST, url.clone());
        if !file.mimetype.to_ascii_lowercase().starts_with("image/") {
            // Pushover shows images only; apprise sends the message without the file.
            debug!(mimetype = %file.mimetype, "Pushover takes images only; file left out");
            req.body = Body::Form(fields);
        } else {
            let size = file.data.len();
            if size == 0 || size > PUSHOVER_MAX_FILE_BYTES {
                return Err(DeliveryError::Attachment {
                    service: "Pushover",
                    reason: format!(
                        "the attachment {} ({size} bytes) is empty or larger than Pushover's \
                         5 MB limit",
                        file.filename
                    ),
                });
            }
            let mut parts: Vec<Part> = fields
                .into_iter()
                .map(|(name, value)| Part::text(name, value))
                .collect();
            parts.push(Part::file("attachment", file, false));
            req.body = Body::Multipart(parts);
        }
        pushover_send(d, req).await?;
    }
    Ok(())
}

/// Sets a form field, in place when it is there already.
fn set(fields: &mut Vec<(String, String)>, key: &str, value: &str) {
    match fields.iter_mut().find(|(k, _)| k == key) {
        Some(f) => f.1 = value.to_string(),
        None => fields.push((key.to_string(), value.to_string())),
    }
}

async fn pushover_send(d: &Deliverer, req: Request) -> Result<(), DeliveryError> {
    let reply = d.send(req).await?;
    // Pushover answers {"status": 1} when the message was queued.
    if let Some(v) = reply.json()
        && v.get("status").and_then(Value::as_i64) == Some(0)
    {
        return Err(DeliveryError::Rejected {
            service: "Pushover",
            reason: format!(
                "the message was refused ({})",
                v.get("errors").cloned().unwrap_or_default()
            ),
        });
    }
    Ok(())
}

/// As apprise sends it: each file is announced (`upload-request`), uploaded where Pushbullet
/// says, and pushed as a `file` push after the note; the note goes to each target (`#tag` a
/// channel, an address an email, else a device), or to every device without one. Pushbullet
/// shows text: HTML is made text, markdown goes as written.
pub(crate) async fn pushbullet(
    d: &Deliverer,
    cfg: &Pushbullet,
    msg: &Message,
) -> Result<(), DeliveryError> {
    let service = "Pushbullet";
    let auth = Some((cfg.token.clone(), String::new()));
    let (title, body) = apprise_trimmed(msg);
    let body = match msg.format {
        BodyFormat::Html => for_flavor(body, msg.format, Flavor::Text, Some(PUSHBULLET_MAX)),
        _ => truncate(body, Some(PUSHBULLET_MAX)),
    };
    let title = truncate(title, Some(PUSHBULLET_TITLE_MAX));
    let mut file_pushes = Vec::new();
    for file in &msg.attachments {
        let mut req = Request::new(
            service,
            Dest::Hosted,
            Method::POST,
            d.hosted_url("https://api.pushbullet.com/v2/upload-request")?,
        )
        .json(json!({ "file_name": file.filename, "file_type": file.mimetype }));
        req.basic = auth.clone();
        let reply = d.send(req).await?.json().unwrap_or(Value::Null);
        let field = |k: &str| reply.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(file_name), Some(file_type), Some(file_url), Some(upload_url)) = (
            field("file_name"),
            field("file_type"),
            field("file_url"),
            field("upload_url"),
        ) else {
            return Err(DeliveryError::Rejected {
                service,
                reason: "the upload request was not answered with an upload URL".into(),
            });
        };
        let upload_url = url::Url::parse(&upload_url).map_err(|e| DeliveryError::Rejected {
            service,
            reason: format!("bad upload URL: {e}"),
        })?;
        // Where Pushbullet said to upload (its storage host), not a user-supplied host.
        let mut up = Request::new(service, Dest::Hosted, Method::POST, upload_url);
        up.body = Body::Multipart(vec![Part::file("file", file, false)]);
        up.basic = auth.clone();
        d.send(up).await?;
        let mut push = json!({
            "type": "file",
            "file_name": file_name,
            "file_type": file_type,
            "file_url": file_url,
        });
        if file_type.starts_with("image/") {
            push["image_url"] = Value::from(file_url);
        }
        file_pushes.push(push);
    }
    let pushes = d.hosted_url("https://api.pushbullet.com/v2/pushes")?;
    let targets: Vec<Option<&String>> = if cfg.targets.is_empty() {
        vec![None]
    } else {
        cfg.targets.iter().map(Some).collect()
    };
    for target in targets {
        let mut note = json!({ "type": "note", "title": title, "body": body });
        match target {
            Some(t) if t.contains('@') && !t.starts_with('#') => {
                note["email"] = Value::from(t.clone())
            }
            Some(t) if t.starts_with('#') => note["channel_tag"] = Value::from(&t[1..]),
            Some(t) => note["device_iden"] = Value::from(t.clone()),
            None => {}
        }
        let mut all = Vec::new();
        if !body.is_empty() {
            all.push(note);
        }
        all.extend(file_pushes.iter().cloned());
        for p in all {
            let mut req = Request::new(service, Dest::Hosted, Method::POST, pushes.clone()).json(p);
            req.basic = auth.clone();
            d.send(req).await?;
        }
    }
    Ok(())
}
