//! Chat services: Discord, Slack, Telegram, Mattermost, Rocket.Chat, Signal (signal-cli REST
//! API) and Teams (Power Automate workflows).

use reqwest::Method;
use serde_json::{Value, json};
use tracing::{debug, warn};

use super::format::{
    Flavor, escape_html, for_flavor, markdown_for_chat, markdown_to_telegram, truncate,
};
use super::{Body, Deliverer, DeliveryError, Dest, Part, Request, apprise_trimmed};
use crate::url::{
    APPRISE_INFO_ICON_128, Discord, Mattermost, RocketChat, RocketMode, Signal, Slack, SlackMode,
    Telegram, Workflows,
};
use crate::{Attachment, BodyFormat, Message};

/// apprise's colour for "info" notifications, which users' channels already show.
const INFO_COLOR_HEX: &str = "#3AA3E3";
const INFO_COLOR: u32 = 0x3A_A3_E3;

/// Discord rejects content over 2000 characters; apprise counts the title in it.
const DISCORD_MAX: usize = 2000;
/// apprise's limits for one Discord message's files: count and total bytes.
const DISCORD_MAX_FILES: usize = 10;
const DISCORD_MAX_FILE_BYTES: usize = 25 * 1024 * 1024;
/// Telegram's limit on a caption; apprise captions the first file with the text when the text
/// is shorter, instead of sending it as a message.
const TELEGRAM_CAPTION_MAX: usize = 1024;
/// Telegram's upload limits (apprise's figures): photos over 10 MB go as documents, nothing
/// over 50 MB goes at all.
const TELEGRAM_PHOTO_MAX_BYTES: usize = 10_000_000;
const TELEGRAM_FILE_MAX_BYTES: usize = 50_000_000;
/// Telegram's limit on a message's text after entity parsing.
const TELEGRAM_MAX: usize = 4096;
/// apprise keeps Slack messages under 35 000 characters (Slack truncates at 40 000).
const SLACK_MAX: usize = 35_000;
const MATTERMOST_MAX: usize = 4000;
/// apprise's batch of Signal recipients with `batch=yes`.
const SIGNAL_BATCH: usize = 10;
/// apprise's limit for a Rocket.Chat message.
const ROCKET_MAX: usize = 1000;
/// apprise's `app_id` in upstream's asset: the sender name services show when the URL names
/// none.
const UPSTREAM_APP_ID: &str = "changedetection.io";
/// apprise's limit for an adaptive card text block.
const WORKFLOWS_MAX: usize = 1000;

pub(crate) async fn discord(
    d: &Deliverer,
    cfg: &Discord,
    msg: &Message,
) -> Result<(), DeliveryError> {
    let mut url = d.hosted_url(&format!(
        "https://discord.com/api/webhooks/{}/{}",
        cfg.webhook_id, cfg.webhook_token
    ))?;
    if let Some(thread) = &cfg.thread {
        url.query_pairs_mut().append_pair("thread_id", thread);
    }
    let mut payload = json!({ "tts": cfg.tts, "wait": !cfg.tts });
    let title_len = msg.title.chars().count();
    if msg.format == BodyFormat::Markdown {
        // Markdown reads best in an embed, as apprise sends it.
        let body = for_flavor(
            &msg.body,
            msg.format,
            Flavor::Markdown,
            Some(DISCORD_MAX.saturating_sub(title_len).max(1)),
        );
        payload["embeds"] = json!([{
            "title": truncate(&msg.title, Some(256)),
            "description": body,
            "color": INFO_COLOR,
        }]);
    } else {
        let sep = if msg.title.is_empty() { 0 } else { 2 };
        let limit = DISCORD_MAX.saturating_sub(title_len + sep).max(1);
        let body = for_flavor(&msg.body, msg.format, Flavor::Markdown, Some(limit));
        let content = if msg.title.is_empty() {
            body
        } else {
            truncate(&format!("{}\r\n{body}", msg.title), Some(DISCORD_MAX))
        };
        payload["content"] = Value::from(content);
    }
    if let Some(u) = &cfg.username {
        payload["username"] = Value::from(u.clone());
    }
    if let Some(a) = &cfg.avatar_url {
        payload["avatar_url"] = Value::from(a.clone());
    }
    let req =
        Request::new("Discord", Dest::Hosted, Method::POST, url.clone()).json(payload.clone());
    d.send(req).await?;
    if msg.attachments.is_empty() {
        return Ok(());
    }
    // apprise then posts the files as messages of their own: the same payload without the
    // text, never spoken, as `payload_json` beside `files[0]`, `files[1]`…
    if let Some(obj) = payload.as_object_mut() {
        obj.remove("content");
        obj.remove("embeds");
        obj.insert("tts".into(), Value::Bool(false));
        obj.insert("wait".into(), Value::Bool(true));
    }
    for batch in discord_batches(&msg.attachments) {
        let mut parts = vec![Part::text("payload_json", payload.to_string())];
        parts.extend(
            batch
                .iter()
                .enumerate()
                .map(|(i, a)| Part::file(format!("files[{i}]"), a, true)),
        );
        let mut req = Request::new("Discord", Dest::Hosted, Method::POST, url.clone());
        req.body = Body::Multipart(parts);
        d.send(req).await?;
        debug!(files = batch.len(), "Discord attachments sent");
    }
    Ok(())
}

/// apprise's batches: up to 10 files and 25 MiB a message, in order; a file larger than that
/// goes alone (and Discord decides).
fn discord_batches(files: &[Attachment]) -> Vec<&[Attachment]> {
    let mut batches = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, f) in files.iter().enumerate() {
        if i > start
            && (i - start >= DISCORD_MAX_FILES || size + f.data.len() > DISCORD_MAX_FILE_BYTES)
        {
            batches.push(&files[start..i]);
            start = i;
            size = 0;
        }
        size += f.data.len();
    }
    if start < files.len() {
        batches.push(&files[start..]);
    }
    batches
}

pub(crate) async fn slack(d: &Deliverer, cfg: &Slack, msg: &Message) -> Result<(), DeliveryError> {
    let (flavor_body, mrkdwn) = match msg.format {
        BodyFormat::Text => (
            for_flavor(&msg.body, msg.format, Flavor::Slack, Some(SLACK_MAX)),
            false,
        ),
        _ => (
            for_flavor(&msg.body, msg.format, Flavor::Slack, Some(SLACK_MAX)),
            true,
        ),
    };
    let title = msg
        .title
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let mut payload = json!({
        "mrkdwn": mrkdwn,
        "attachments": [{
            "title": title,
            "text": flavor_body,
            "color": INFO_COLOR_HEX,
        }],
    });
    if let Some(b) = &cfg.botname {
        payload["username"] = Value::from(b.clone());
    }
    let (url, bearer) = match &cfg.mode {
        SlackMode::Webhook {
            token_a,
            token_b,
            token_c,
        } => (
            d.hosted_url(&format!(
                "https://hooks.slack.com/services/{token_a}/{token_b}/{token_c}"
            ))?,
            None,
        ),
        SlackMode::Bot { token } => (
            d.hosted_url("https://slack.com/api/chat.postMessage")?,
            Some(token.clone()),
        ),
    };
    let mut channels: Vec<Option<String>> = cfg.channels.iter().cloned().map(Some).collect();
    if channels.is_empty() {
        // Webhooks post to their own channel; bots have none, so apprise uses #general.
        channels.push(bearer.as_ref().map(|_| "#general".to_string()));
    }
    // Where a bot's files go: the channel ids Slack answered with.
    let mut posted_to: Vec<String> = Vec::new();
    for channel in channels {
        let mut p = payload.clone();
        if let Some(c) = channel {
            p["channel"] = Value::from(c);
        }
        let mut req = Request::new("Slack", Dest::Hosted, Method::POST, url.clone()).json(p);
        if let Some(t) = &bearer {
            req.bearer = Some(t.clone());
            req = req.header("Content-Type", "application/json; charset=utf-8");
        }
        let reply = d.send(req).await?;
        // The Web API answers 200 with {"ok": false, "error": …} when it refuses a message.
        if let Some(v) = reply.json()
            && v.get("ok") == Some(&Value::Bool(false))
        {
            return Err(slack_refused("the message was refused", &v));
        }
        if bearer.is_some() && !msg.attachments.is_empty() {
            let id = reply
                .json()
                .and_then(|v| v.get("channel").and_then(Value::as_str).map(str::to_string))
                .ok_or_else(|| DeliveryError::Rejected {
                    service: "Slack",
                    reason: "Slack did not say which channel the message went to, so the \
                             attachment has nowhere to go"
                        .into(),
                })?;
            posted_to.push(id);
        }
    }
    match &bearer {
        Some(token) => {
            for (i, file) in msg.attachments.iter().enumerate() {
                slack_file(d, token, file, i + 1, &posted_to).await?;
            }
        }
        None if !msg.attachments.is_empty() => {
            warn!("Slack webhooks take no attachments; sent the message only");
        }
        None => {}
    }
    Ok(())
}

fn slack_refused(what: &str, v: &Value) -> DeliveryError {
    let error = v
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("unknown error");
    DeliveryError::Rejected {
        service: "Slack",
        reason: format!("{what} ({error})"),
    }
}

/// A bot's file, as apprise sends it: ask `files.getUploadURLExternal` for an upload URL, post
/// the file there (`multipart/form-data`, field `file`), then share it to every channel the
/// message went to with `files.completeUploadExternal`.
async fn slack_file(
    d: &Deliverer,
    token: &str,
    file: &Attachment,
    no: usize,
    channels: &[String],
) -> Result<(), DeliveryError> {
    let name = if file.filename.is_empty() {
        format!("file{no:03}.dat")
    } else {
        file.filename.clone()
    };
    let mut url = d.hosted_url("https://slack.com/api/files.getUploadURLExternal")?;
    url.query_pairs_mut()
        .append_pair("filename", &name)
        .append_pair("length", &file.data.len().to_string());
    let mut req = Request::new("Slack", Dest::Hosted, Method::GET, url)
        .header("Accept", "application/json")
        .header("Content-Type", "application/json; charset=utf-8");
    req.bearer = Some(token.to_string());
    let reply = d.send(req).await?.json().unwrap_or_default();
    let field = |k: &str| reply.get(k).and_then(Value::as_str).map(str::to_string);
    let (Some(file_id), Some(upload)) = (field("file_id"), field("upload_url")) else {
        return Err(slack_refused("no upload URL for the attachment", &reply));
    };
    // The upload URL comes from Slack's answer: tests move it to their server like any hosted
    // URL; otherwise it is treated as a user-supplied host (the SSRF guard vets it).
    let (upload_url, dest) = if d.options().service_base.is_some() {
        (d.hosted_url(&upload)?, Dest::Hosted)
    } else {
        let parsed = url::Url::parse(&upload).map_err(|e| DeliveryError::Rejected {
            service: "Slack",
            reason: format!("the upload URL Slack gave is not a URL: {e}"),
        })?;
        (parsed, Dest::User)
    };
    let mut req =
        Request::new("Slack", dest, Method::POST, upload_url).header("Accept", "application/json");
    req.bearer = Some(token.to_string());
    req.body = Body::Multipart(vec![Part::File {
        name: "file".into(),
        filename: name,
        mimetype: None,
        data: file.data.clone(),
    }]);
    let uploaded = d.send(req).await?;
    // Uploads answer `OK - <length>` in text, or JSON.
    let ok = uploaded
        .json()
        .and_then(|v| v.get("ok").and_then(Value::as_bool))
        == Some(true)
        || uploaded.body.contains("OK");
    if !ok {
        return Err(DeliveryError::Rejected {
            service: "Slack",
            reason: format!(
                "the attachment upload was refused ({})",
                uploaded.body.trim()
            ),
        });
    }
    let complete = d.hosted_url("https://slack.com/api/files.completeUploadExternal")?;
    for channel in channels {
        let payload = json!({
            "files": [{ "id": file_id, "title": file.filename }],
            "channel_id": channel,
        });
        let mut req = Request::new("Slack", Dest::Hosted, Method::POST, complete.clone())
            .header("Accept", "application/json")
            .header("Content-Type", "application/json; charset=utf-8")
            .json(payload);
        req.bearer = Some(token.to_string());
        let v = d.send(req).await?.json().unwrap_or_default();
        let shared = v
            .get("files")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if !shared || v.get("ok") == Some(&Value::Bool(false)) {
            return Err(slack_refused("the attachment was not shared", &v));
        }
    }
    debug!(channels = channels.len(), "Slack attachment sent");
    Ok(())
}

pub(crate) async fn telegram(
    d: &Deliverer,
    cfg: &Telegram,
    msg: &Message,
) -> Result<(), DeliveryError> {
    if cfg.chats.is_empty() {
        return Err(DeliveryError::Config {
            service: "Telegram",
            reason: "no chat id in the URL (tgram://bot_token/chat_id)".into(),
        });
    }
    let url = d.hosted_url(&format!(
        "https://api.telegram.org/bot{}/sendMessage",
        cfg.bot_token
    ))?;
    // Telegram has no title: apprise puts it in bold above the body, then `\r\n` (in HTML)
    // or `\n` (a markdown body goes as Telegram's own Markdown).
    let markdown = msg.format == BodyFormat::Markdown;
    let parse_mode = if markdown { "MARKDOWN" } else { "HTML" };
    let title_len = msg.title.chars().count();
    let head = match (msg.title.is_empty(), markdown) {
        (true, _) => String::new(),
        (false, true) => format!("*{}*\n", markdown_to_telegram(&msg.title)),
        (false, false) => format!("<b>{}</b>\r\n", escape_html(&msg.title)),
    };
    let limit = TELEGRAM_MAX.saturating_sub(title_len + 2).max(1);
    let body = if markdown {
        close_telegram_markup(truncate(&markdown_to_telegram(&msg.body), Some(limit)))
    } else {
        for_flavor(&msg.body, msg.format, Flavor::Telegram, Some(limit))
    };
    let text = format!("{head}{body}");
    let files = &msg.attachments;
    // apprise (content placement "before", its default): a text shorter than a caption rides
    // on the first file; a longer one goes first as a message, the files after it.
    let caption =
        (!files.is_empty() && !text.is_empty() && text.chars().count() < TELEGRAM_CAPTION_MAX)
            .then_some(text.as_str());
    let message = files.is_empty() || (caption.is_none() && !text.is_empty());
    // apprise reads its targets through `parse_list`: sorted, each once.
    let mut chats = cfg.chats.clone();
    chats.sort();
    chats.dedup();
    for (chat, topic) in &chats {
        if message {
            let mut payload = json!({
                "chat_id": telegram_chat_id(chat),
                "text": text,
                "parse_mode": parse_mode,
                "disable_notification": cfg.silent,
                "disable_web_page_preview": !cfg.preview,
            });
            if let Some(t) = topic {
                payload["message_thread_id"] = match t.parse::<i64>() {
                    Ok(n) => Value::from(n),
                    Err(_) => Value::from(t.clone()),
                };
            }
            let req =
                Request::new("Telegram", Dest::Hosted, Method::POST, url.clone()).json(payload);
            d.send(req).await?;
        }
        for (i, file) in files.iter().enumerate() {
            let caption = if i == 0 { caption } else { None };
            let caption = caption.map(|c| (c, parse_mode));
            telegram_file(d, cfg, chat, topic.as_deref(), file, caption).await?;
        }
    }
    Ok(())
}

/// Telegram's upload method and field for a file type, as apprise picks them (first match).
fn telegram_method(mimetype: &str) -> (&'static str, &'static str) {
    let m = mimetype.to_ascii_lowercase();
    if m.starts_with("image/gif") || m.starts_with("video/h264") {
        ("sendAnimation", "animation")
    } else if m.starts_with("image/") {
        ("sendPhoto", "photo")
    } else if m.starts_with("video/mp4") {
        ("sendVideo", "video")
    } else if m.starts_with("application/ogg") || m.starts_with("audio/ogg") {
        ("sendVoice", "voice")
    } else if m.starts_with("audio/mpeg") || m.starts_with("audio/mp4a-latm") {
        ("sendAudio", "audio")
    } else {
        ("sendDocument", "document")
    }
}

/// One file to one chat: `multipart/form-data` with (on the first file only) the caption, then
/// `title` (the file name), `chat_id`, the topic, and the file (no `Content-Type`, as apprise
/// sends it).
async fn telegram_file(
    d: &Deliverer,
    cfg: &Telegram,
    chat: &str,
    topic: Option<&str>,
    file: &Attachment,
    caption: Option<(&str, &str)>,
) -> Result<(), DeliveryError> {
    let size = file.data.len();
    if size > TELEGRAM_FILE_MAX_BYTES {
        return Err(DeliveryError::Attachment {
            service: "Telegram",
            reason: format!(
                "the attachment {} ({size} bytes) is larger than Telegram's 50 MB upload limit",
                file.filename
            ),
        });
    }
    let (mut method, mut field) = telegram_method(&file.mimetype);
    if method == "sendPhoto" && size > TELEGRAM_PHOTO_MAX_BYTES {
        (method, field) = ("sendDocument", "document");
    }
    let url = d.hosted_url(&format!(
        "https://api.telegram.org/bot{}/{method}",
        cfg.bot_token
    ))?;
    let mut parts = Vec::new();
    if let Some((c, parse_mode)) = caption {
        parts.push(Part::text("caption", c));
        // Python's str(True): the text goes above the picture.
        parts.push(Part::text("show_caption_above_media", "True"));
        parts.push(Part::text("parse_mode", parse_mode));
    }
    parts.push(Part::text("title", file.filename.clone()));
    parts.push(Part::text("chat_id", chat));
    if let Some(t) = topic {
        parts.push(Part::text("message_thread_id", t));
    }
    parts.push(Part::file(field, file, false));
    let mut req = Request::new("Telegram", Dest::Hosted, Method::POST, url);
    req.body = Body::Multipart(parts);
    d.send(req).await?;
    debug!(method, "Telegram attachment sent");
    Ok(())
}

/// apprise's webhook post: Mattermost has no title, so the title goes before the body
/// (`title\r\nbody`); HTML becomes text, markdown and text go as written; the sender is the
/// URL's bot name or upstream's app id, with apprise's icon.
pub(crate) async fn mattermost(
    d: &Deliverer,
    cfg: &Mattermost,
    msg: &Message,
) -> Result<(), DeliveryError> {
    let url = cfg
        .server
        .join(&format!("hooks/{}", cfg.token))
        .map_err(|e| DeliveryError::Config {
            service: "Mattermost",
            reason: format!("bad webhook URL: {e}"),
        })?;
    let (title, body) = apprise_trimmed(msg);
    let body = match msg.format {
        BodyFormat::Html => for_flavor(body, msg.format, Flavor::Text, None),
        BodyFormat::Markdown => markdown_for_chat(body),
        BodyFormat::Text => body.to_string(),
    };
    let text = if title.is_empty() {
        body
    } else {
        format!("{title}\r\n{body}")
    };
    let mut payload = json!({ "text": truncate(&text, Some(MATTERMOST_MAX)) });
    if let Some(icon) = &cfg.icon_url {
        payload["icon_url"] = Value::from(icon.clone());
    }
    payload["username"] = Value::from(
        cfg.botname
            .clone()
            .unwrap_or_else(|| UPSTREAM_APP_ID.to_string()),
    );
    let mut channels: Vec<Option<&String>> = cfg.channels.iter().map(Some).collect();
    if channels.is_empty() {
        channels.push(None);
    }
    for channel in channels {
        let mut p = payload.clone();
        if let Some(c) = channel {
            p["channel"] = Value::from(c.clone());
        }
        let req = Request::new("Mattermost", Dest::User, Method::POST, url.clone()).json(p);
        d.send(req).await?;
    }
    Ok(())
}

/// apprise's text-to-markdown: a backslash before every CommonMark-significant character
/// (and before `&` starting an entity), so text shows as written.
fn commonmark_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        let entity = c == '&' && {
            let rest = &text[i + 1..];
            let rest = rest.strip_prefix('#').unwrap_or(rest);
            let name = rest
                .bytes()
                .take_while(u8::is_ascii_alphanumeric)
                .take(33)
                .count();
            (1..=32).contains(&name) && rest.as_bytes().get(name) == Some(&b';')
        };
        if entity || "\\_*[]()~`>#+=|{}.!-".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// apprise's Rocket.Chat post: no title field, so `# title\nbody` in markdown; a webhook post
/// per target (`channel` = `@user`, `#channel` or a room id), or REST `chat.postMessage` with a
/// token, or after a login (and a logout after).
pub(crate) async fn rocket(
    d: &Deliverer,
    cfg: &RocketChat,
    msg: &Message,
) -> Result<(), DeliveryError> {
    let service = "Rocket.Chat";
    let join = |path: &str| {
        cfg.server.join(path).map_err(|e| DeliveryError::Config {
            service,
            reason: format!("bad server URL: {e}"),
        })
    };
    // Rocket.Chat speaks markdown: plain text is escaped (title too) as apprise escapes it.
    let (title, body) = apprise_trimmed(msg);
    let (body, title) = match msg.format {
        BodyFormat::Text => (commonmark_escape(body), commonmark_escape(title)),
        _ => (
            for_flavor(body, msg.format, Flavor::Markdown, None),
            title.to_string(),
        ),
    };
    // apprise makes the title a markdown heading (its leading `#`, `-` and spaces dropped).
    let title = title.trim_start_matches(['\r', '\n', ' ', '\t', '\x0b', '\x0c', '#', '-']);
    let text = if title.is_empty() {
        body
    } else {
        format!("# {title}\n{body}")
    };
    let mut payload = json!({ "text": truncate(&text, Some(ROCKET_MAX)) });
    if cfg.avatar {
        payload["avatar"] = Value::from(APPRISE_INFO_ICON_128);
    }
    let post = |url: url::Url, p: Value, auth: &[(String, String)]| {
        let mut req = Request::new(service, Dest::User, Method::POST, url).json(p);
        for (k, v) in auth {
            req = req.header(k, v.clone());
        }
        req
    };
    let mut named: Vec<String> = cfg.users.iter().map(|u| format!("@{u}")).collect();
    named.extend(cfg.channels.iter().map(|c| format!("#{c}")));
    let token = match &cfg.mode {
        RocketMode::Webhook(hook) => {
            let url = join(&format!("hooks/{hook}"))?;
            let mut targets = named;
            targets.extend(cfg.rooms.iter().cloned());
            if targets.is_empty() {
                d.send(post(url.clone(), payload.clone(), &[])).await?;
            }
            for t in targets {
                let mut p = payload.clone();
                p["channel"] = Value::from(t);
                d.send(post(url.clone(), p, &[])).await?;
            }
            return Ok(());
        }
        RocketMode::Token { user, token } => vec![
            ("X-User-Id".to_string(), user.clone()),
            ("X-Auth-Token".to_string(), token.clone()),
        ],
        RocketMode::Basic { user, password } => {
            let mut login = Request::new(service, Dest::User, Method::POST, join("api/v1/login")?);
            login.body = Body::Form(vec![
                ("username".into(), user.clone()),
                ("password".into(), password.clone()),
            ]);
            let reply = d.send(login).await?.json().unwrap_or(Value::Null);
            let data = reply.get("data");
            let field = |k: &str| {
                data.and_then(|v| v.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            match (
                reply.get("status").and_then(Value::as_str),
                field("authToken"),
                field("userId"),
            ) {
                (Some("success"), Some(token), Some(id)) => vec![
                    ("X-Auth-Token".to_string(), token),
                    ("X-User-Id".to_string(), id),
                ],
                _ => {
                    return Err(DeliveryError::Rejected {
                        service,
                        reason: format!("could not log in as {user}"),
                    });
                }
            }
        }
    };
    let url = join("api/v1/chat.postMessage")?;
    let mut result = Ok(());
    for c in named {
        let mut p = payload.clone();
        p["channel"] = Value::from(c);
        if let Err(e) = d.send(post(url.clone(), p, &token)).await {
            result = Err(e);
            break;
        }
    }
    if result.is_ok() {
        for r in &cfg.rooms {
            let mut p = payload.clone();
            p["roomId"] = Value::from(r.clone());
            if let Err(e) = d.send(post(url.clone(), p, &token)).await {
                result = Err(e);
                break;
            }
        }
    }
    if matches!(cfg.mode, RocketMode::Basic { .. }) {
        // The session ends either way; a failed logout does not undo what was sent.
        let mut logout = Request::new(service, Dest::User, Method::POST, join("api/v1/logout")?);
        for (k, v) in &token {
            logout = logout.header(k, v.clone());
        }
        if let Err(e) = d.send(logout).await {
            warn!(error = %e, "Rocket.Chat logout failed");
        }
    }
    result
}

/// apprise's post to a signal-cli REST API: plain text (`title\r\nbody`, HTML made text,
/// markdown as written, trailing space trimmed), files as base64, one recipient a request (ten with
/// `batch=yes`).
pub(crate) async fn signal(
    d: &Deliverer,
    cfg: &Signal,
    msg: &Message,
) -> Result<(), DeliveryError> {
    use base64::Engine as _;
    let service = "Signal API";
    let url = cfg
        .server
        .join("v2/send")
        .map_err(|e| DeliveryError::Config {
            service,
            reason: format!("bad server URL: {e}"),
        })?;
    // apprise's markdown-to-text leaves markdown as written.
    let (title, body) = apprise_trimmed(msg);
    let body = match msg.format {
        BodyFormat::Html => for_flavor(body, msg.format, Flavor::Text, None),
        _ => body.to_string(),
    };
    let text = if title.is_empty() {
        body
    } else {
        format!("{title}\r\n{body}")
    };
    let status = if cfg.status { "[i] " } else { "" };
    let mut payload = json!({
        "message": format!("{status}{text}").trim_end(),
        "number": cfg.source,
        "text_mode": "normal",
    });
    if !msg.attachments.is_empty() {
        let b64 = base64::engine::general_purpose::STANDARD;
        payload["base64_attachments"] = msg
            .attachments
            .iter()
            .map(|a| Value::from(b64.encode(&a.data)))
            .collect();
    }
    let size = if cfg.batch { SIGNAL_BATCH } else { 1 };
    for recipients in cfg.targets.chunks(size) {
        let mut p = payload.clone();
        p["recipients"] = json!(recipients);
        let mut req = Request::new(service, Dest::User, Method::POST, url.clone()).json(p);
        req.basic = cfg.auth.clone();
        d.send(req).await?;
    }
    Ok(())
}

pub(crate) async fn workflows(
    d: &Deliverer,
    cfg: &Workflows,
    msg: &Message,
) -> Result<(), DeliveryError> {
    let service = "Power Automate workflow";
    let mut path = String::new();
    if cfg.power_automate {
        path.push_str("/powerautomate/automations/direct");
        if let Some(r) = &cfg.route {
            path.push_str(&format!("/cu/{r}"));
        }
    }
    let port = cfg.port.map(|p| format!(":{p}")).unwrap_or_default();
    let public = format!(
        "https://{}{port}{path}/workflows/{}/triggers/manual/paths/invoke",
        cfg.host, cfg.workflow
    );
    // The host comes from the user's URL, so it is guarded like any webhook, unless tests have
    // redirected hosted services.
    let (mut url, dest) = if d.options().service_base.is_some() {
        (d.hosted_url(&public)?, Dest::Hosted)
    } else {
        let url = url::Url::parse(&public).map_err(|e| DeliveryError::Config {
            service,
            reason: format!("bad workflow URL: {e}"),
        })?;
        (url, Dest::User)
    };
    url.query_pairs_mut()
        .append_pair("api-version", &cfg.api_version)
        .append_pair("sp", "/triggers/manual/run")
        .append_pair("sv", "1.0")
        .append_pair("sig", &cfg.signature);
    let body = for_flavor(&msg.body, msg.format, Flavor::Markdown, Some(WORKFLOWS_MAX));
    let mut blocks = Vec::new();
    if !msg.title.is_empty() {
        blocks.push(json!({
            "type": "TextBlock",
            "text": msg.title,
            "style": "heading",
            "weight": "Bolder",
            "size": "Large",
            "id": "title",
        }));
    }
    blocks.push(json!({
        "type": "TextBlock",
        "text": body,
        "style": "default",
        "wrap": cfg.wrap,
        "id": "body",
    }));
    let payload = json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": blocks,
                "msteams": { "width": "full" },
            },
        }],
    });
    let req = Request::new(service, dest, Method::POST, url).json(payload);
    d.send(req).await.map(|_| ())
}

/// A chat id as apprise sends it: a number when it is one (`12345`, `-100200`), else the
/// `@channel` name as text.
fn telegram_chat_id(chat: &str) -> Value {
    chat.parse::<i64>()
        .map_or_else(|_| Value::from(chat), Value::from)
}

/// A cut Telegram Markdown text with its open `*` / `_` closed: Telegram refuses a message
/// whose markup does not pair up.
fn close_telegram_markup(mut text: String) -> String {
    let mut open = Vec::new();
    let mut escaped = false;
    for c in text.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '*' | '_' => {
                if open.last() == Some(&c) {
                    open.pop();
                } else {
                    open.push(c);
                }
            }
            _ => {}
        }
    }
    while let Some(c) = open.pop() {
        text.push(c);
    }
    text
}
