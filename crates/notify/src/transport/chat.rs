//! Chat services: Discord, Slack, Telegram, Mattermost and Teams (Power Automate workflows).

use reqwest::Method;
use serde_json::{Value, json};

use super::format::{Flavor, escape_html, for_flavor, truncate};
use super::{Deliverer, DeliveryError, Dest, Request};
use crate::url::{Discord, Mattermost, Slack, SlackMode, Telegram, Workflows};
use crate::{BodyFormat, Message};

/// apprise's colour for "info" notifications, which users' channels already show.
const INFO_COLOR_HEX: &str = "#3AA3E3";
const INFO_COLOR: u32 = 0x3A_A3_E3;

/// Discord rejects content over 2000 characters; apprise counts the title in it.
const DISCORD_MAX: usize = 2000;
/// Telegram's limit on a message's text after entity parsing.
const TELEGRAM_MAX: usize = 4096;
/// apprise keeps Slack messages under 35 000 characters (Slack truncates at 40 000).
const SLACK_MAX: usize = 35_000;
const MATTERMOST_MAX: usize = 4000;
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
    let req = Request::new("Discord", Dest::Hosted, Method::POST, url).json(payload);
    d.send(req).await.map(|_| ())
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
            let error = v
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown error");
            return Err(DeliveryError::Rejected {
                service: "Slack",
                reason: format!("the message was refused ({error})"),
            });
        }
    }
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
    // Telegram has no title: apprise puts it in bold above the body.
    let title_len = msg.title.chars().count();
    let head = if msg.title.is_empty() {
        String::new()
    } else {
        format!("<b>{}</b>\n", escape_html(&msg.title))
    };
    let limit = TELEGRAM_MAX.saturating_sub(title_len + 1).max(1);
    let text = format!(
        "{head}{}",
        for_flavor(&msg.body, msg.format, Flavor::Telegram, Some(limit))
    );
    for (chat, topic) in &cfg.chats {
        let mut payload = json!({
            "chat_id": chat,
            "text": text,
            "parse_mode": "HTML",
            "disable_notification": cfg.silent,
            "disable_web_page_preview": !cfg.preview,
        });
        if let Some(t) = topic {
            payload["message_thread_id"] = match t.parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => Value::from(t.clone()),
            };
        }
        let req = Request::new("Telegram", Dest::Hosted, Method::POST, url.clone()).json(payload);
        d.send(req).await?;
    }
    Ok(())
}

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
    let head = if msg.title.is_empty() {
        String::new()
    } else {
        format!("**{}**\n", msg.title)
    };
    let limit = MATTERMOST_MAX.saturating_sub(head.chars().count()).max(1);
    let text = format!(
        "{head}{}",
        for_flavor(&msg.body, msg.format, Flavor::Markdown, Some(limit))
    );
    let mut payload = json!({ "text": text });
    if let Some(b) = &cfg.botname {
        payload["username"] = Value::from(b.clone());
    }
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
