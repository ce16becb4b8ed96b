#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Delivery to every supported scheme against real local receivers: a capturing HTTP server
//! standing in for webhooks and hosted services (through `service_base`), and an SMTP server.

use std::collections::HashMap;
use std::time::Duration;

use changewatch_core::ssrf::AddressPolicy;
use changewatch_notify::{
    Attachment, BodyFormat, Deliverer, DeliveryError, DeliveryOptions, Message,
};
use serde_json::{Value, json};
use testkit::{CaptureServer, Captured, SmtpServer};

fn deliverer_with(cap: &CaptureServer, policy: AddressPolicy) -> Deliverer {
    Deliverer::new(DeliveryOptions {
        timeout: Duration::from_secs(10),
        policy,
        service_base: Some(url::Url::parse(&cap.base()).unwrap()),
    })
    .unwrap()
}

fn deliverer(cap: &CaptureServer) -> Deliverer {
    deliverer_with(cap, AddressPolicy::allow_all())
}

fn msg(title: &str, body: &str, format: BodyFormat) -> Message {
    Message {
        title: title.into(),
        body: body.into(),
        format,
        attachments: Vec::new(),
    }
}

fn text(title: &str, body: &str) -> Message {
    msg(title, body, BodyFormat::Text)
}

fn form(c: &Captured) -> HashMap<String, String> {
    url::form_urlencoded::parse(&c.body).into_owned().collect()
}

fn query(c: &Captured) -> HashMap<String, String> {
    url::form_urlencoded::parse(c.query.as_deref().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn only(cap: &CaptureServer) -> Captured {
    let mut all = cap.take();
    assert_eq!(all.len(), 1, "expected exactly one request, got {all:?}");
    all.remove(0)
}

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

#[tokio::test]
async fn json_webhook_sends_apprise_payload() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    let url = format!(
        "json://user:pw@{}/hook/in?+X-Custom=yes&:extra=1&-qp=v",
        cap.host_port()
    );
    d.deliver(&url, &text("Changed", "body text"))
        .await
        .unwrap();
    let r = only(&cap);
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/hook/in");
    assert_eq!(r.query.as_deref(), Some("qp=v"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-custom"), Some("yes"));
    assert_eq!(
        r.header("authorization"),
        Some(basic("user", "pw").as_str())
    );
    assert!(r.header("user-agent").unwrap().starts_with("changewatch/"));
    assert_eq!(
        r.json(),
        json!({
            "version": "1.0",
            "title": "Changed",
            "message": "body text",
            "attachments": [],
            "type": "info",
            "extra": "1",
        })
    );

    // method= and a renamed field; format=html turns a text body into HTML.
    let url = format!(
        "json://{}/p?method=put&:message=msg&:type=&format=html",
        cap.host_port()
    );
    d.deliver(&url, &text("T", "a < b\nc")).await.unwrap();
    let r = only(&cap);
    assert_eq!(r.method, "PUT");
    let v = r.json();
    assert_eq!(v["msg"], "a &lt; b<br>\nc");
    assert!(v.get("message").is_none() && v.get("type").is_none());
}

#[tokio::test]
async fn form_webhook_posts_fields_or_query() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    d.deliver(
        &format!("form://{}/f?:extra=x", cap.host_port()),
        &text("Title", "Body"),
    )
    .await
    .unwrap();
    let r = only(&cap);
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/f");
    assert_eq!(
        r.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let f = form(&r);
    assert_eq!(f["version"], "1.0");
    assert_eq!(f["title"], "Title");
    assert_eq!(f["message"], "Body");
    assert_eq!(f["type"], "info");
    assert_eq!(f["extra"], "x");

    d.deliver(
        &format!("form://{}/g?method=GET", cap.host_port()),
        &text("Title", "Body"),
    )
    .await
    .unwrap();
    let r = only(&cap);
    assert_eq!(r.method, "GET");
    let q = query(&r);
    assert_eq!(
        (q["title"].as_str(), q["message"].as_str()),
        ("Title", "Body")
    );
}

#[tokio::test]
async fn xml_webhook_sends_soap_envelope() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    d.deliver(
        &format!("xml://{}/x", cap.host_port()),
        &text("A & B", "1 < 2"),
    )
    .await
    .unwrap();
    let r = only(&cap);
    assert_eq!(r.method, "POST");
    assert_eq!(r.header("content-type"), Some("application/xml"));
    let body = r.body_text();
    assert!(body.starts_with("<?xml version='1.0' encoding='utf-8'?>"));
    assert!(body.contains("<soapenv:Envelope"));
    assert!(body.contains("NotifyXML-1.1.xsd"));
    assert!(body.contains("<Version>1.1</Version>"));
    assert!(body.contains("<Subject>A &amp; B</Subject>"));
    assert!(body.contains("<Message>1 &lt; 2</Message>"));
    assert!(body.contains("<MessageType>info</MessageType>"));
}

#[tokio::test]
async fn custom_post_sends_body_as_is_with_headers_and_params() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    let url = format!(
        "post://me:secret@{}/api/hook?+X-Api-Key=k1&-drop=1&drop=1&keep=2",
        cap.host_port()
    );
    let body = r#"{"watch": "changed"}"#;
    d.deliver(&url, &text("ignored title", body)).await.unwrap();
    let r = only(&cap);
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/api/hook");
    assert_eq!(r.query.as_deref(), Some("keep=2"));
    assert_eq!(r.header("x-api-key"), Some("k1"));
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(
        r.header("authorization"),
        Some(basic("me", "secret").as_str())
    );
    assert_eq!(r.body_text(), body);

    // Not JSON: no content type is invented. An explicit one is kept.
    d.deliver(
        &format!("put://{}/p?+Content-Type=text/plain", cap.host_port()),
        &text("t", "{\"x\":1}"),
    )
    .await
    .unwrap();
    assert_eq!(only(&cap).header("content-type"), Some("text/plain"));
    d.deliver(
        &format!("patch://{}/p", cap.host_port()),
        &text("t", "plain words"),
    )
    .await
    .unwrap();
    let r = only(&cap);
    assert_eq!(r.method, "PATCH");
    assert_eq!(r.header("content-type"), None);
    assert_eq!(r.body_text(), "plain words");

    for (scheme, method) in [("get", "GET"), ("delete", "DELETE"), ("head", "HEAD")] {
        d.deliver(
            &format!("{scheme}://{}/m", cap.host_port()),
            &text("t", "b"),
        )
        .await
        .unwrap();
        let r = only(&cap);
        assert_eq!((r.method.as_str(), r.path.as_str()), (method, "/m"));
    }

    // format=html converts a markdown body and is passed through, as upstream does.
    d.deliver(
        &format!("post://{}/h?format=html", cap.host_port()),
        &msg("t", "**new** <del>old</del>", BodyFormat::Markdown),
    )
    .await
    .unwrap();
    let r = only(&cap);
    assert_eq!(r.query.as_deref(), Some("format=html"));
    assert_eq!(r.body_text(), "<p><strong>new</strong> <del>old</del></p>");
}

#[tokio::test]
async fn discord_text_markdown_and_limits() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    d.deliver(
        "discord://Watcher@1234/tok-en?thread=77",
        &msg("Title", "<p>Hello <b>world</b></p>", BodyFormat::Html),
    )
    .await
    .unwrap();
    let r = only(&cap);
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/api/webhooks/1234/tok-en");
    assert_eq!(r.query.as_deref(), Some("thread_id=77"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["content"], "Title\r\nHello **world**");
    assert_eq!(v["username"], "Watcher");
    assert_eq!(v["tts"], false);

    d.deliver(
        "discord://1234/tok",
        &msg("T", "**added** <del>gone</del>", BodyFormat::Markdown),
    )
    .await
    .unwrap();
    let v = only(&cap).json();
    assert_eq!(v["embeds"][0]["title"], "T");
    assert_eq!(v["embeds"][0]["description"], "**added** ~~gone~~");

    d.deliver("discord://1234/tok", &text("T", &"x".repeat(5000)))
        .await
        .unwrap();
    let content = only(&cap).json()["content"].as_str().unwrap().to_string();
    assert!(content.chars().count() <= 2000);
    assert!(content.ends_with('…'));
}

#[tokio::test]
async fn slack_webhook_and_bot() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    d.deliver(
        "slack://bot@T1/B2/C3/#general/@bob",
        &msg("Changed", "<b>new</b> & <del>old</del>", BodyFormat::Html),
    )
    .await
    .unwrap();
    let reqs = cap.take();
    assert_eq!(reqs.len(), 2);
    for (r, channel) in reqs.iter().zip(["#general", "@bob"]) {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/services/T1/B2/C3");
        let v = r.json();
        assert_eq!(v["channel"], channel);
        assert_eq!(v["username"], "bot");
        assert_eq!(v["mrkdwn"], true);
        assert_eq!(v["attachments"][0]["title"], "Changed");
        assert_eq!(v["attachments"][0]["text"], "*new* &amp; ~old~");
        assert_eq!(v["attachments"][0]["color"], "#3AA3E3");
    }

    cap.reply(
        "/api/chat.postMessage",
        200,
        "application/json",
        r#"{"ok":true}"#,
    );
    d.deliver("slack://xoxb-123-456-abc", &text("T", "plain <x>"))
        .await
        .unwrap();
    let r = only(&cap);
    assert_eq!(r.path, "/api/chat.postMessage");
    assert_eq!(r.header("authorization"), Some("Bearer xoxb-123-456-abc"));
    let v = r.json();
    assert_eq!(v["channel"], "#general");
    assert_eq!(v["mrkdwn"], false);
    assert_eq!(v["attachments"][0]["text"], "plain &lt;x&gt;");

    cap.reply(
        "/api/chat.postMessage",
        200,
        "application/json",
        r#"{"ok":false,"error":"channel_not_found"}"#,
    );
    let err = d
        .deliver("slack://xoxb-123-456-abc/#nope", &text("T", "b"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("channel_not_found"), "{err}");
    assert!(err.is_permanent());
}

#[tokio::test]
async fn telegram_html_subset_per_chat() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    let body = "<div><h3>Diff</h3><span style='x'>kept</span> <strong>added</strong><br>\n<del>removed</del> <font color=red>red</font></div>";
    d.deliver(
        "tgram://123456:AbC-dEf/-100200/@channel:5?silent=yes",
        &msg("Watch <1>", body, BodyFormat::Html),
    )
    .await
    .unwrap();
    let reqs = cap.take();
    assert_eq!(reqs.len(), 2);
    assert!(reqs.iter().all(|r| r.method == "POST"
        && r.path == "/bot123456:AbC-dEf/sendMessage"
        && r.header("content-type") == Some("application/json")));
    let v = reqs[0].json();
    assert_eq!(v["chat_id"], "-100200");
    assert_eq!(v["parse_mode"], "HTML");
    assert_eq!(v["disable_notification"], true);
    assert_eq!(v["disable_web_page_preview"], true);
    assert_eq!(
        v["text"],
        "<b>Watch &lt;1&gt;</b>\n<b>Diff</b>\n\nkept <b>added</b>\n<s>removed</s> red"
    );
    let v2 = reqs[1].json();
    assert_eq!(v2["chat_id"], "@channel");
    assert_eq!(v2["message_thread_id"], 5);

    // Markdown becomes Telegram HTML; long bodies are cut below the 4096 limit.
    d.deliver(
        "tgram://123456:AbC-dEf/42",
        &msg(
            "T",
            &format!("**{}**", "y".repeat(6000)),
            BodyFormat::Markdown,
        ),
    )
    .await
    .unwrap();
    let t = only(&cap).json()["text"].as_str().unwrap().to_string();
    assert!(t.starts_with("<b>T</b>\n<b>yyy"), "{}", &t[..40]);
    assert!(t.ends_with("…</b>"));
    assert!(t.chars().count() <= 4096 + 20);

    let err = d
        .deliver("tgram://123456:AbC-dEf", &text("t", "b"))
        .await
        .unwrap_err();
    assert!(err.is_permanent());
    assert!(err.to_string().contains("chat id"), "{err}");
}

#[tokio::test]
async fn ntfy_cloud_and_self_hosted() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    d.deliver(
        "ntfy://alerts?priority=high&tags=warning,skull",
        &msg("T", "**x** <del>y</del>", BodyFormat::Markdown),
    )
    .await
    .unwrap();
    let r = only(&cap);
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/"));
    assert_eq!(r.header("x-markdown"), Some("yes"));
    assert_eq!(r.header("x-priority"), Some("high"));
    assert_eq!(r.header("x-tags"), Some("warning,skull"));
    assert_eq!(
        r.json(),
        json!({"topic": "alerts", "title": "T", "message": "**x** ~~y~~"})
    );

    d.deliver(
        &format!("ntfy://u:p@{}/t1/t2", cap.host_port()),
        &msg("T", "<p>hi</p>", BodyFormat::Html),
    )
    .await
    .unwrap();
    let reqs = cap.take();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].json()["topic"], "t1");
    assert_eq!(reqs[1].json()["topic"], "t2");
    assert_eq!(reqs[0].json()["message"], "hi");
    assert_eq!(
        reqs[0].header("authorization"),
        Some(basic("u", "p").as_str())
    );
    assert_eq!(reqs[0].header("x-markdown"), None);

    d.deliver(
        &format!("ntfy://{}/t?token=tk_secret", cap.host_port()),
        &text("T", &"z".repeat(10_000)),
    )
    .await
    .unwrap();
    let r = only(&cap);
    assert_eq!(r.header("authorization"), Some("Bearer tk_secret"));
    assert!(r.json()["message"].as_str().unwrap().len() <= 4096);
}

#[tokio::test]
async fn gotify_message() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    d.deliver(
        &format!("gotify://{}/sub/AppTok?priority=high", cap.host_port()),
        &msg("T", "**b**", BodyFormat::Markdown),
    )
    .await
    .unwrap();
    let r = only(&cap);
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/sub/message")
    );
    assert_eq!(r.header("x-gotify-key"), Some("AppTok"));
    assert_eq!(
        r.json(),
        json!({
            "priority": 8,
            "title": "T",
            "message": "**b**",
            "extras": {"client::display": {"contentType": "text/markdown"}},
        })
    );
    d.deliver(
        &format!("gotify://{}/Tok", cap.host_port()),
        &text("T", "b"),
    )
    .await
    .unwrap();
    let r = only(&cap);
    assert_eq!(r.path, "/message");
    assert_eq!(
        r.json(),
        json!({"priority": 5, "title": "T", "message": "b"})
    );
}

#[tokio::test]
async fn pushover_form() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    cap.reply(
        "/1/messages.json",
        200,
        "application/json",
        r#"{"status":1}"#,
    );
    let user = "u".repeat(30);
    let token = "a".repeat(30);
    d.deliver(
        &format!("pover://{user}@{token}/phone?priority=high&sound=magic"),
        &msg("T", "<p><b>bold</b> <span>x</span></p>", BodyFormat::Html),
    )
    .await
    .unwrap();
    let r = only(&cap);
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/1/messages.json")
    );
    let f = form(&r);
    assert_eq!(f["token"], token);
    assert_eq!(f["user"], user);
    assert_eq!(f["priority"], "1");
    assert_eq!(f["title"], "T");
    assert_eq!(f["message"], "<b>bold</b> x");
    assert_eq!(f["html"], "1");
    assert_eq!(f["sound"], "magic");
    assert_eq!(f["device"], "phone");

    d.deliver(
        &format!("pover://{user}@{token}"),
        &text("T", &"m".repeat(3000)),
    )
    .await
    .unwrap();
    let f = form(&only(&cap));
    assert!(f["message"].chars().count() <= 1024);
    assert!(!f.contains_key("html"));
}

#[tokio::test]
async fn mattermost_webhook() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    d.deliver(
        &format!("mmost://bot@{}/mm/hooktok?channel=town", cap.host_port()),
        &msg("T", "<b>x</b>", BodyFormat::Html),
    )
    .await
    .unwrap();
    let r = only(&cap);
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/mm/hooks/hooktok")
    );
    assert_eq!(
        r.json(),
        json!({"text": "**T**\n**x**", "username": "bot", "channel": "town"})
    );
}

#[tokio::test]
async fn workflows_adaptive_card() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    d.deliver(
        "workflows://prod-01.westus.logic.azure.com:443/wf123/sigXYZ",
        &text("T", "body"),
    )
    .await
    .unwrap();
    let r = only(&cap);
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/workflows/wf123/triggers/manual/paths/invoke");
    let q = query(&r);
    assert_eq!(q["api-version"], "2016-06-01");
    assert_eq!(q["sp"], "/triggers/manual/run");
    assert_eq!(q["sv"], "1.0");
    assert_eq!(q["sig"], "sigXYZ");
    let v = r.json();
    assert_eq!(v["type"], "message");
    let att = &v["attachments"][0];
    assert_eq!(
        att["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(att["content"]["type"], "AdaptiveCard");
    assert_eq!(att["content"]["body"][0]["text"], "T");
    assert_eq!(att["content"]["body"][1]["text"], "body");

    d.deliver(
        "workflow://host.example.com/wf/sig?pa=yes&route=9",
        &text("", "b"),
    )
    .await
    .unwrap();
    let r = only(&cap);
    assert_eq!(
        r.path,
        "/powerautomate/automations/direct/cu/9/workflows/wf/triggers/manual/paths/invoke"
    );
    assert_eq!(query(&r)["api-version"], "2022-03-01-preview");
}

#[tokio::test]
async fn matrix_login_join_send_logout() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    cap.reply(
        "/_matrix/client/v3/login",
        200,
        "application/json",
        r#"{"access_token":"tok123","user_id":"@bot:example.org","device_id":"D"}"#,
    );
    cap.reply(
        "/_matrix/client/v3/join/",
        200,
        "application/json",
        r#"{"room_id":"!abc:example.org"}"#,
    );
    cap.reply(
        "/_matrix/client/v3/rooms/",
        200,
        "application/json",
        r#"{"event_id":"$e"}"#,
    );
    d.deliver(
        &format!("matrix://bot:pw@{}/#alerts", cap.host_port()),
        &msg("T", "**new**", BodyFormat::Markdown),
    )
    .await
    .unwrap();
    let reqs = cap.take();
    assert_eq!(reqs.len(), 4, "{reqs:?}");
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].path.as_str()),
        ("POST", "/_matrix/client/v3/login")
    );
    assert_eq!(
        reqs[0].json(),
        json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "bot"},
            "password": "pw",
            "initial_device_display_name": "changewatch",
        })
    );
    assert_eq!(reqs[1].method, "POST");
    assert_eq!(
        reqs[1].path,
        "/_matrix/client/v3/join/%23alerts:example.org"
    );
    assert_eq!(reqs[1].header("authorization"), Some("Bearer tok123"));
    assert_eq!(reqs[2].method, "PUT");
    assert!(
        reqs[2]
            .path
            .starts_with("/_matrix/client/v3/rooms/!abc:example.org/send/m.room.message/"),
        "{}",
        reqs[2].path
    );
    assert_eq!(reqs[2].header("authorization"), Some("Bearer tok123"));
    assert_eq!(
        reqs[2].json(),
        json!({
            "msgtype": "m.text",
            "body": "# T\r\nnew",
            "format": "org.matrix.custom.html",
            "formatted_body": "<h1>T</h1><p><strong>new</strong></p>",
        })
    );
    assert_eq!(
        (reqs[3].method.as_str(), reqs[3].path.as_str()),
        ("POST", "/_matrix/client/v3/logout")
    );

    // An access token skips login and logout; text bodies have no formatted_body.
    d.deliver(
        &format!(
            "matrix://tokABC@{}/!room:hs.org?msgtype=notice",
            cap.host_port()
        ),
        &text("", "plain"),
    )
    .await
    .unwrap();
    let reqs = cap.take();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].path, "/_matrix/client/v3/join/!room:hs.org");
    assert_eq!(reqs[1].header("authorization"), Some("Bearer tokABC"));
    assert_eq!(
        reqs[1].json(),
        json!({"msgtype": "m.notice", "body": "plain"})
    );
}

#[tokio::test]
async fn email_plain_and_html() {
    let cap = CaptureServer::start();
    let smtp = SmtpServer::start();
    let d = deliverer(&cap);
    let url = format!(
        "mailto://alice:s3cret@127.0.0.1:{}?from=alerts@example.com&name=Watcher&to=bob@example.com,carol@example.com&cc=dave@example.com&bcc=eve@example.com",
        smtp.port()
    );
    d.deliver(&url, &text("Page changed", "line one\nline two"))
        .await
        .unwrap();
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(m.auth, Some(("alice".into(), "s3cret".into())));
    assert_eq!(m.mail_from, "alerts@example.com");
    let mut rcpt = m.rcpt_to.clone();
    rcpt.sort();
    assert_eq!(
        rcpt,
        vec![
            "bob@example.com",
            "carol@example.com",
            "dave@example.com",
            "eve@example.com"
        ]
    );
    assert_eq!(m.header("subject").as_deref(), Some("Page changed"));
    assert_eq!(
        m.header("from").as_deref(),
        Some("Watcher <alerts@example.com>")
    );
    assert!(m.header("to").unwrap().contains("bob@example.com"));
    assert!(
        m.header("cc")
            .unwrap_or_default()
            .contains("dave@example.com"),
        "{}",
        m.data
    );
    assert_eq!(m.header("bcc"), None);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    assert!(m.data.contains("line one\r\nline two"));

    d.deliver(
        &format!(
            "mailto://127.0.0.1:{}?from=a@example.com&to=b@example.com",
            smtp.port()
        ),
        &msg("T", "<p>Hello <b>there</b></p>", BodyFormat::Html),
    )
    .await
    .unwrap();
    let m = smtp.mails().pop().unwrap();
    assert_eq!(m.auth, None);
    assert_eq!(m.rcpt_to, vec!["b@example.com"]);
    assert!(
        m.header("content-type")
            .unwrap()
            .starts_with("multipart/alternative")
    );
    assert!(m.data.contains("Content-Type: text/plain"));
    assert!(m.data.contains("Content-Type: text/html"));
    assert!(m.data.contains("Hello there"));
    assert!(m.data.contains("<b>there</b>"));
}

fn with_screenshot(mut m: Message) -> Message {
    m.attachments.push(Attachment {
        filename: "screenshot-1700000000.jpg".into(),
        mimetype: "image/jpeg".into(),
        data: vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 250],
    });
    m
}

#[tokio::test]
async fn attachments_go_where_the_service_takes_files() {
    use base64::Engine;
    let b64 =
        base64::engine::general_purpose::STANDARD.encode([0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 250]);
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    // apprise's json:// payload.
    d.deliver(
        &format!("json://{}/hook", cap.host_port()),
        &with_screenshot(text("Changed", "body")),
    )
    .await
    .unwrap();
    assert_eq!(
        only(&cap).json()["attachments"],
        json!([{"filename": "screenshot-1700000000.jpg", "base64": b64, "mimetype": "image/jpeg"}])
    );

    // Email: the body, then the file, in multipart/mixed (text and HTML bodies alike).
    let smtp = SmtpServer::start();
    let url = format!(
        "mailto://127.0.0.1:{}?from=a@example.com&to=b@example.com",
        smtp.port()
    );
    for m in [
        text("T", "plain body"),
        msg("T", "<b>html body</b>", BodyFormat::Html),
    ] {
        d.deliver(&url, &with_screenshot(m)).await.unwrap();
    }
    let mails = smtp.mails();
    assert_eq!(mails.len(), 2);
    for mail in &mails {
        assert!(
            mail.header("content-type")
                .unwrap_or_default()
                .starts_with("multipart/mixed"),
            "{}",
            mail.data
        );
        assert!(
            mail.data.contains(
                "Content-Disposition: attachment; filename=\"screenshot-1700000000.jpg\""
            ),
            "{}",
            mail.data
        );
        assert!(
            mail.data.contains("Content-Type: image/jpeg"),
            "{}",
            mail.data
        );
        assert!(mail.data.contains(&b64), "{}", mail.data);
    }
    assert!(mails[0].data.contains("plain body"));
    assert!(mails[1].data.contains("html body"));
}

#[tokio::test]
async fn email_refusals_are_classified() {
    let cap = CaptureServer::start();
    let smtp = SmtpServer::start();
    let d = deliverer(&cap);
    let url = format!(
        "mailto://u:p@127.0.0.1:{}?from=a@example.com&to=b@example.com",
        smtp.port()
    );
    smtp.reject_rcpt(1, 550);
    let err = d.deliver(&url, &text("T", "b")).await.unwrap_err();
    assert!(err.is_permanent(), "{err}");
    assert!(err.to_string().starts_with("Email: "), "{err}");
    smtp.reject_rcpt(1, 451);
    let err = d.deliver(&url, &text("T", "b")).await.unwrap_err();
    assert!(!err.is_permanent(), "{err}");
    d.deliver(&url, &text("T", "b")).await.unwrap();
    assert_eq!(smtp.mails().len(), 1);

    // Nothing listening: a transient failure.
    drop(smtp);
    let err = d.deliver(&url, &text("T", "b")).await.unwrap_err();
    assert!(!err.is_permanent(), "{err}");
}

#[tokio::test]
async fn ssrf_guard_refuses_private_hosts() {
    let cap = CaptureServer::start();
    let d = deliverer_with(&cap, AddressPolicy::default());
    for url in [
        format!("json://{}/x", cap.host_port()),
        format!("post://{}/x", cap.host_port()),
        format!("post://localhost:{}/x", cap.addr().port()),
        format!("gotify://{}/tok", cap.host_port()),
    ] {
        let err = d.deliver(&url, &text("t", "b")).await.unwrap_err();
        assert!(
            matches!(err, DeliveryError::Blocked { .. }),
            "{url}: {err:?}"
        );
        assert!(err.is_permanent());
        assert!(err.to_string().contains("loopback"), "{err}");
    }
    let smtp = SmtpServer::start();
    let err = d
        .deliver(
            &format!("mailto://127.0.0.1:{}?from=a@example.com", smtp.port()),
            &text("t", "b"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Blocked { .. }), "{err:?}");
    assert!(smtp.mails().is_empty());
    assert!(cap.requests().is_empty());

    // Hosted services have fixed public hosts and are not subject to the guard.
    d.deliver("discord://1/t", &text("t", "b")).await.unwrap();
    assert_eq!(cap.take().len(), 1);

    // An exempted host name passes.
    let exempt = deliverer_with(
        &cap,
        AddressPolicy {
            allow_private: false,
            allowed_hosts: vec!["localhost".into()],
        },
    );
    exempt
        .deliver(
            &format!("post://localhost:{}/x", cap.addr().port()),
            &text("t", "b"),
        )
        .await
        .unwrap();
    assert_eq!(cap.take().len(), 1);
}

#[tokio::test]
async fn status_codes_are_classified() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    let url = format!("post://{}/s", cap.host_port());
    for (status, permanent) in [
        (503, false),
        (500, false),
        (429, false),
        (408, false),
        (404, true),
        (401, true),
    ] {
        cap.fail_next(1, status);
        let err = d.deliver(&url, &text("t", "b")).await.unwrap_err();
        assert!(
            matches!(err, DeliveryError::Status { status: s, .. } if s == status),
            "{err:?}"
        );
        assert_eq!(err.is_permanent(), permanent, "{status}");
        assert!(err.to_string().contains(&format!("HTTP {status}")), "{err}");
    }
    // Fail twice, then succeed: what a caller's retry would see.
    cap.fail_next(2, 502);
    assert!(d.deliver(&url, &text("t", "b")).await.is_err());
    assert!(d.deliver(&url, &text("t", "b")).await.is_err());
    d.deliver(&url, &text("t", "b")).await.unwrap();
    assert_eq!(cap.take().len(), 6 + 3);

    cap.reply(
        "/api/webhooks/",
        404,
        "application/json",
        r#"{"message": "Unknown Webhook", "code": 10015}"#,
    );
    let err = d
        .deliver("discord://1/bad", &text("t", "b"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Discord: the server answered HTTP 404 (Unknown Webhook)"
    );

    // Nothing listening: retryable.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = d
        .deliver(&format!("post://127.0.0.1:{closed}/x"), &text("t", "b"))
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Connect { .. }), "{err:?}");
    assert!(!err.is_permanent());
}

#[tokio::test]
async fn null_comments_and_invalid_urls() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    d.deliver("null://", &text("t", "b")).await.unwrap();
    d.deliver("#post://example.com", &text("t", "b"))
        .await
        .unwrap();
    assert!(cap.requests().is_empty());
    let err = d.deliver("bogus://x", &text("t", "b")).await.unwrap_err();
    assert_eq!(err.to_string(), "'bogus://x' is not a valid AppRise URL.");
    assert!(err.is_permanent());
    let _: Value = Value::Null;
}
