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
use testkit::apprise_api::AppriseApiServer;
use testkit::multipart::FormPart;
use testkit::{CaptureServer, Captured, SmtpServer};

fn deliverer_with(cap: &CaptureServer, policy: AddressPolicy) -> Deliverer {
    Deliverer::new(DeliveryOptions {
        timeout: Duration::from_secs(10),
        policy,
        service_base: Some(url::Url::parse(&cap.base()).unwrap()),
        apprise_api: None,
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
    // A numeric chat id is a number, as apprise sends it; the text is compared with apprise's
    // own in `telegram_sends_what_apprise_sends`.
    assert_eq!(v["chat_id"], -100_200);
    assert_eq!(v["parse_mode"], "HTML");
    assert_eq!(v["disable_notification"], true);
    assert_eq!(v["disable_web_page_preview"], true);
    assert!(
        v["text"]
            .as_str()
            .unwrap()
            .starts_with("<b>Watch &lt;1&gt;</b>\r\n<b>Diff</b>"),
        "{v}"
    );
    let v2 = reqs[1].json();
    assert_eq!(v2["chat_id"], "@channel");
    assert_eq!(v2["message_thread_id"], 5);

    // Markdown goes as Telegram's Markdown; long bodies are cut below the 4096 limit, their
    // markup closed.
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
    assert!(t.starts_with("*T*\n*yyy"), "{}", &t[..40]);
    assert!(t.ends_with("…*"), "{}", &t[t.len() - 20..]);
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
        &format!(
            "gotify://{}/sub/AppTok?priority=high&format=markdown",
            cap.host_port()
        ),
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
        json!({
            "text": "T\r\nx",
            "username": "bot",
            "channel": "town",
            "icon_url": changewatch_notify::url::APPRISE_INFO_ICON_72,
        })
    );
}

/// One message of each format (title, body, format) for comparisons with apprise: HTML with
/// an entity, markdown, and text with markdown's characters, trailing spaces and no title.
const EACH_FORMAT: [(&str, &str, BodyFormat); 3] = [
    ("Title", "<b>bold</b> &amp; more", BodyFormat::Html),
    ("Title", "**md** line", BodyFormat::Markdown),
    ("", "plain *line*  ", BodyFormat::Text),
];

/// A screenshot file on disk for apprise to attach, removed when dropped.
struct ShotFile {
    dir: std::path::PathBuf,
    path: std::path::PathBuf,
}

impl ShotFile {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("cw-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(SHOT_NAME);
        std::fs::write(&path, SHOT).unwrap();
        ShotFile { dir, path }
    }
}

impl Drop for ShotFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One message sent to `url` by apprise (as upstream calls it, `format` named) and by
/// changewatch, with the screenshot when `file` is given: the requests of each, paired in
/// order, after checking there are as many and they go to the same paths.
async fn sent_by_both(
    d: &Deliverer,
    cap: &CaptureServer,
    url: &str,
    (title, body, format): (&str, &str, BodyFormat),
    file: Option<&std::path::Path>,
) -> Vec<(Captured, Captured)> {
    let name = match format {
        BodyFormat::Text => "text",
        BodyFormat::Html => "html",
        BodyFormat::Markdown => "markdown",
    };
    let theirs = apprise_sends_for_upstream(cap, url, title, body, file, name);
    let m = msg(title, body, format);
    d.deliver(url, &if file.is_some() { shot(m) } else { m })
        .await
        .unwrap();
    let mine = cap.take();
    assert_eq!(mine.len(), theirs.len(), "{url} {name}: {mine:?}");
    for (m, t) in mine.iter().zip(&theirs) {
        assert_eq!(m.path, t.path, "{url} {name}");
    }
    mine.into_iter().zip(theirs).collect()
}

#[tokio::test]
async fn mattermost_sends_what_apprise_sends() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    // (apprise keeps a space before a `<br>`; our HTML-to-text trims line ends.)
    let cases = [
        (
            "",
            ("T", "<b>bold</b> &amp; more<br>next", BodyFormat::Html),
        ),
        ("", ("T", "**bold**\nnext", BodyFormat::Markdown)),
        ("", ("", "plain *text*", BodyFormat::Text)),
        ("?image=no&channel=town,%23b", ("T", "x", BodyFormat::Text)),
        (
            "?icon_url=http://i.example/x.png",
            ("T", "x", BodyFormat::Text),
        ),
        // apprise trims the title and the body's end before any plugin sees them.
        ("", (" T ", "x  \n", BodyFormat::Text)),
    ];
    for (query, m) in cases {
        for user in ["", "bot@"] {
            let url = format!("mmost://{user}{}/mm/tok{query}", cap.host_port());
            for (mine, theirs) in sent_by_both(&d, &cap, &url, m, None).await {
                assert_eq!(mine.json(), theirs.json(), "{url} {m:?}");
            }
        }
    }
}

#[tokio::test]
async fn pushbullet_sends_what_apprise_sends() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    let answer = json!({
        "file_name": SHOT_NAME,
        "file_type": "image/jpeg",
        "file_url": "https://dl.pushbulletusercontent.example/abc/shot.jpg",
        "upload_url": format!("{}/upload/abc", cap.base()),
    });
    cap.reply(
        "/v2/upload-request",
        200,
        "application/json",
        &answer.to_string(),
    );
    let file = ShotFile::new("pbul");
    let cases = [
        (
            "pbul://o.tok1",
            ("Title", "Body line", BodyFormat::Text),
            None,
        ),
        (
            "pbul://o.tok1/dev2/%23chan?to=a@b.example,dev1",
            ("T", "<b>bold</b> &amp; more", BodyFormat::Html),
            None,
        ),
        (
            "pbul://o.tok1/dev1",
            ("", "**md**", BodyFormat::Markdown),
            Some(file.path.as_path()),
        ),
    ];
    for (url, m, file) in cases {
        for (mine, theirs) in sent_by_both(&d, &cap, url, m, file).await {
            assert_eq!(mine.header("authorization"), theirs.header("authorization"));
            if mine.path.starts_with("/upload/") {
                assert_eq!(
                    String::from_utf8_lossy(&normalized(&mine)),
                    String::from_utf8_lossy(&normalized(&theirs))
                );
            } else {
                assert_eq!(mine.json(), theirs.json(), "{url} {}", mine.path);
            }
        }
    }
}

#[tokio::test]
async fn rocket_chat_sends_what_apprise_sends() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    cap.reply(
        "/api/v1/login",
        200,
        "application/json",
        r#"{"status": "success", "data": {"authToken": "AT", "userId": "UID"}}"#,
    );
    let hp = cap.host_port();
    let token = "t".repeat(40);
    let urls = [
        format!("rocket://AbC/dEf@{hp}"),
        format!("rocket://bot:AbC/dEf@{hp}/%23gen/@ann/ROOM1?avatar=no"),
        format!("rocket://user:secret@{hp}/%23gen/ROOM1/@ann"),
        format!("rocket://user:{token}@{hp}/@ann?to=%23gen"),
    ];
    let heading = ("## Title", "plain *line*", BodyFormat::Text);
    for url in &urls {
        for m in EACH_FORMAT.into_iter().chain([heading]) {
            for (mine, theirs) in sent_by_both(&d, &cap, url, m, None).await {
                for h in ["x-auth-token", "x-user-id"] {
                    assert_eq!(mine.header(h), theirs.header(h), "{url} {h}");
                }
                if mine.path == "/api/v1/login" {
                    assert_eq!(form(&mine), form(&theirs));
                } else if mine.path != "/api/v1/logout" {
                    assert_eq!(mine.json(), theirs.json(), "{url} {m:?}");
                }
            }
        }
    }
}

#[tokio::test]
async fn signal_sends_what_apprise_sends() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    cap.reply("/v2/send", 201, "application/json", "{}");
    let file = ShotFile::new("signal");
    let hp = cap.host_port();
    let urls = [
        format!("signal://{hp}/15551234567"),
        format!("signal://u:p@{hp}/+15551234567/15551234568/group.abc?status=yes"),
        format!("signal://{hp}/15551234567/15551234568/@grp1?batch=yes"),
    ];
    for url in &urls {
        for m in EACH_FORMAT {
            for f in [None, Some(file.path.as_path())] {
                for (mine, theirs) in sent_by_both(&d, &cap, url, m, f).await {
                    assert_eq!(mine.header("authorization"), theirs.header("authorization"));
                    assert_eq!(mine.json(), theirs.json(), "{url} {m:?}");
                }
            }
        }
    }
}

#[tokio::test]
async fn telegram_text_is_what_apprise_sends() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    cap.reply("/bot", 200, "application/json", r#"{"ok": true}"#);
    let url = "tgram://123456789:abcdefg_hijklmnop/12345/";
    for m in [
        ("Title", "<b>bold</b> &amp; more", BodyFormat::Html),
        ("Title <1>", "plain *line*", BodyFormat::Text),
    ] {
        let both = sent_by_both(&d, &cap, url, m, None).await;
        assert_eq!(both.len(), 1);
        let (mine, theirs) = &both[0];
        for key in ["text", "parse_mode"] {
            assert_eq!(mine.json()[key], theirs.json()[key], "{m:?} {key}");
        }
    }
}

/// The formats a comparison runs each URL through: html, markdown and text bodies.
const FORMATS: [(&str, &str, BodyFormat); 3] = [
    ("Title", "<b>bold</b> &amp; more<br>next", BodyFormat::Html),
    ("Title", "**bold** and *em*\nnext", BodyFormat::Markdown),
    ("Title <1>", "plain *line* & more", BodyFormat::Text),
];

#[tokio::test]
async fn pushover_sends_what_apprise_sends() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    cap.reply(
        "/1/messages.json",
        200,
        "application/json",
        r#"{"status":1}"#,
    );
    let (user, token) = ("u".repeat(30), "a".repeat(30));
    for query in ["", "/phone?priority=high&sound=magic"] {
        let url = format!("pover://{user}@{token}{query}");
        for m in FORMATS {
            for (mine, theirs) in sent_by_both(&d, &cap, &url, m, None).await {
                assert_eq!(form(&mine), form(&theirs), "{url} {m:?}");
            }
        }
    }
}

#[tokio::test]
async fn gotify_sends_what_apprise_sends() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    for path in ["/Tok", "/sub/AppTok?priority=high", "/Tok?format=markdown"] {
        let url = format!("gotify://{}{path}", cap.host_port());
        // Not compared: HTML sent as markdown, where apprise writes a `<br>` as a markdown
        // hard break (two spaces, then the line break) and ours is the line break alone.
        let html_as_markdown = |m: &(&str, &str, BodyFormat)| {
            path.ends_with("format=markdown") && m.2 == BodyFormat::Html
        };
        for m in FORMATS.into_iter().filter(|m| !html_as_markdown(m)) {
            for (mine, theirs) in sent_by_both(&d, &cap, &url, m, None).await {
                assert_eq!(mine.json(), theirs.json(), "{url} {m:?}");
                assert_eq!(mine.header("x-gotify-key"), theirs.header("x-gotify-key"));
            }
        }
    }
}

#[tokio::test]
async fn telegram_sends_what_apprise_sends() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    cap.reply("/bot", 200, "application/json", r#"{"ok": true}"#);
    let more = [
        (
            "Watch <1>",
            "<div><h3>Diff</h3><span style='x'>kept</span> <strong>added</strong><br>\n<del>removed</del> <font color=red>red</font></div>",
            BodyFormat::Html,
        ),
        (
            "T",
            "# Head\n\nSome `code` and [a link](https://e.com/?a=1) and snake_case\n\n- one\n- two",
            BodyFormat::Markdown,
        ),
    ];
    for chats in ["12345/", "12345/-100200/@channel"] {
        let url = format!("tgram://123456789:abcdefg_hijklmnop/{chats}");
        for m in FORMATS.into_iter().chain(more) {
            for (mine, theirs) in sent_by_both(&d, &cap, &url, m, None).await {
                assert_eq!(mine.json(), theirs.json(), "{url} {m:?}");
            }
        }
    }
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

// --- Files beside the text (`notification_screenshot`), as apprise sends them ---------------

/// Screenshot bytes that would break a careless multipart reader: CR LF and `--` inside.
const SHOT: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, b'\r', b'\n', b'-', b'-', 0, 250, b'\r', b'\n', 0xFF, 0xD9,
];
const SHOT_NAME: &str = "screenshot-1700000000.jpg";

fn file(filename: &str, mimetype: &str, data: &[u8]) -> Attachment {
    Attachment {
        filename: filename.into(),
        mimetype: mimetype.into(),
        data: data.to_vec(),
    }
}

fn with_files(mut m: Message, files: Vec<Attachment>) -> Message {
    m.attachments = files;
    m
}

fn shot(m: Message) -> Message {
    with_files(m, vec![file(SHOT_NAME, "image/jpeg", SHOT)])
}

fn parts(c: &Captured) -> Vec<FormPart> {
    c.multipart()
        .unwrap_or_else(|e| panic!("{e}: {} {:?}", c.path, c.body_text()))
}

/// The text fields of a multipart body, in order.
fn fields(parts: &[FormPart]) -> Vec<(String, String)> {
    parts
        .iter()
        .filter(|p| p.filename.is_none())
        .map(|p| (p.name.clone(), p.text()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A file part's header lines exactly as Python's requests writes them.
fn file_headers(name: &str, filename: &str, mimetype: Option<&str>) -> String {
    let mut h = format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"");
    if let Some(m) = mimetype {
        h.push_str(&format!("\r\nContent-Type: {m}"));
    }
    h
}

#[tokio::test]
async fn form_sends_files_as_multipart_fields() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    let url = format!("form://u:p@{}/f?:extra=x", cap.host_port());
    // Without a file: unchanged, urlencoded.
    d.deliver(&url, &text("Title", "Body")).await.unwrap();
    let r = only(&cap);
    assert_eq!(
        r.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        r.body_text(),
        "version=1.0&title=Title&message=Body&type=info&extra=x"
    );

    d.deliver(&url, &shot(text("Title", "Body"))).await.unwrap();
    let r = only(&cap);
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/f"));
    assert_eq!(r.header("authorization"), Some(basic("u", "p").as_str()));
    let p = parts(&r);
    assert_eq!(p.len(), 6);
    assert_eq!(
        fields(&p),
        pairs(&[
            ("version", "1.0"),
            ("title", "Title"),
            ("message", "Body"),
            ("type", "info"),
            ("extra", "x"),
        ])
    );
    assert_eq!(
        p[5].raw_headers,
        file_headers("file01", SHOT_NAME, Some("image/jpeg"))
    );
    assert_eq!(p[5].data, SHOT);

    // Numbered fields by default; `attach-as` without a wildcard names every file the same.
    let two = || {
        with_files(
            text("T", "B"),
            vec![
                file("a.jpg", "image/jpeg", b"first"),
                file("b.pdf", "application/pdf", b"second"),
            ],
        )
    };
    for (query, names) in [
        ("", ["file01", "file02"]),
        ("?attach-as=*shot", ["01shot", "02shot"]),
        ("?attach-as=shot", ["shot", "shot"]),
    ] {
        d.deliver(&format!("form://{}/f{query}", cap.host_port()), &two())
            .await
            .unwrap();
        let p = parts(&only(&cap));
        let files: Vec<_> = p.iter().filter(|p| p.filename.is_some()).collect();
        assert_eq!(files.len(), 2);
        assert_eq!([files[0].name.as_str(), files[1].name.as_str()], names);
        assert_eq!(
            files[1].raw_headers,
            file_headers(names[1], "b.pdf", Some("application/pdf"))
        );
        assert_eq!(
            (files[0].data.as_slice(), files[1].data.as_slice()),
            (&b"first"[..], &b"second"[..])
        );
    }

    // GET: the fields stay in the query and the files still go in the body.
    d.deliver(
        &format!("form://{}/g?method=GET", cap.host_port()),
        &shot(text("Title", "Body")),
    )
    .await
    .unwrap();
    let r = only(&cap);
    assert_eq!(r.method, "GET");
    assert_eq!(query(&r)["message"], "Body");
    let p = parts(&r);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].name, "file01");
    assert_eq!(p[0].data, SHOT);

    // A user's Content-Type wins, as with Python's requests.
    d.deliver(
        &format!("form://{}/h?+Content-Type=text/plain", cap.host_port()),
        &shot(text("T", "B")),
    )
    .await
    .unwrap();
    assert_eq!(only(&cap).header("content-type"), Some("text/plain"));
}

#[tokio::test]
async fn xml_carries_files_as_base64_elements() {
    use base64::Engine;
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    let url = format!("xml://{}/x", cap.host_port());
    d.deliver(&url, &text("T", "B")).await.unwrap();
    let plain = only(&cap).body_text();
    assert!(!plain.contains("Attachments"), "{plain}");
    assert!(plain.contains("<MessageType>info</MessageType>\n        </Notification>"));

    d.deliver(
        &url,
        &with_files(
            text("T", "B"),
            vec![
                file(SHOT_NAME, "image/jpeg", SHOT),
                file("a\"b.txt", "text/plain", b"hi"),
            ],
        ),
    )
    .await
    .unwrap();
    let body = only(&cap).body_text();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let expected = format!(
        "<MessageType>info</MessageType>\n            <Attachments format=\"base64\">\
         <Attachment filename=\"{SHOT_NAME}\" mimetype=\"image/jpeg\">{}</Attachment>\
         <Attachment filename=\"a&quot;b.txt\" mimetype=\"text/plain\">{}</Attachment>\
         </Attachments>\n        </Notification>",
        b64(SHOT),
        b64(b"hi")
    );
    assert!(body.contains(&expected), "{body}");
}

#[tokio::test]
async fn discord_posts_files_after_the_message() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    let url = "discord://Watcher@1234/tok-en?thread=77";
    d.deliver(url, &text("Title", "Body")).await.unwrap();
    let r = only(&cap);
    assert_eq!(r.header("content-type"), Some("application/json"));

    d.deliver(url, &shot(text("Title", "Body"))).await.unwrap();
    let reqs = cap.take();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].json()["content"], "Title\r\nBody");
    let r = &reqs[1];
    assert_eq!(
        (r.method.as_str(), r.path.as_str(), r.query.as_deref()),
        ("POST", "/api/webhooks/1234/tok-en", Some("thread_id=77"))
    );
    let p = parts(r);
    assert_eq!(p.len(), 2);
    assert_eq!(
        p[0].raw_headers,
        "Content-Disposition: form-data; name=\"payload_json\""
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&p[0].data).unwrap(),
        json!({"tts": false, "wait": true, "username": "Watcher"})
    );
    assert_eq!(
        p[1].raw_headers,
        file_headers("files[0]", SHOT_NAME, Some("image/jpeg"))
    );
    assert_eq!(p[1].data, SHOT);

    // The file message never speaks and carries no embed; eleven files make two messages.
    let many: Vec<Attachment> = (0..11)
        .map(|i| file(&format!("f{i}.jpg"), "image/jpeg", &[i]))
        .collect();
    d.deliver(
        "discord://1234/tok?tts=yes&avatar_url=https://example.com/a.png",
        &with_files(msg("T", "**x**", BodyFormat::Markdown), many),
    )
    .await
    .unwrap();
    let reqs = cap.take();
    assert_eq!(reqs.len(), 3);
    assert!(reqs[0].json()["embeds"].is_array());
    let batches: Vec<Vec<FormPart>> = reqs[1..].iter().map(parts).collect();
    assert_eq!(batches[0].len(), 11);
    assert_eq!(batches[1].len(), 2);
    for b in &batches {
        assert_eq!(
            serde_json::from_slice::<Value>(&b[0].data).unwrap(),
            json!({"tts": false, "wait": true, "avatar_url": "https://example.com/a.png"})
        );
    }
    assert_eq!(batches[0][10].name, "files[9]");
    assert_eq!(batches[1][1].name, "files[0]");
    assert_eq!(batches[1][1].filename.as_deref(), Some("f10.jpg"));
}

#[tokio::test]
async fn telegram_sends_photos_with_a_caption_or_after_the_text() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    let url = "tgram://123456:AbC-dEf/42/-100200:5";
    // A short text is the photo's caption: no separate message.
    d.deliver(url, &shot(text("T", "body"))).await.unwrap();
    let reqs = cap.take();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    // Chats in apprise's order (`parse_list` sorts them).
    for (r, chat, topic) in [(&reqs[0], "-100200", Some("5")), (&reqs[1], "42", None)] {
        assert_eq!(r.path, "/bot123456:AbC-dEf/sendPhoto");
        let p = parts(r);
        let mut want = pairs(&[
            ("caption", "<b>T</b>\r\nbody"),
            ("show_caption_above_media", "True"),
            ("parse_mode", "HTML"),
            ("title", SHOT_NAME),
            ("chat_id", chat),
        ]);
        if let Some(t) = topic {
            want.push(("message_thread_id".into(), t.into()));
        }
        assert_eq!(fields(&p), want);
        let f = p.last().unwrap();
        assert_eq!(f.raw_headers, file_headers("photo", SHOT_NAME, None));
        assert_eq!(f.data, SHOT);
    }

    // A text too long for a caption goes first; files follow without it. Only the first file
    // of a message is captioned; other types go through their own methods.
    let long = "x".repeat(1500);
    d.deliver(
        "tgram://123456:AbC-dEf/42",
        &with_files(
            text("", &long),
            vec![
                file("a.pdf", "application/pdf", b"%PDF"),
                file("b.gif", "image/gif", b"GIF89a"),
            ],
        ),
    )
    .await
    .unwrap();
    let reqs = cap.take();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[0].path, "/bot123456:AbC-dEf/sendMessage");
    assert_eq!(reqs[0].json()["text"], long.as_str());
    assert_eq!(reqs[1].path, "/bot123456:AbC-dEf/sendDocument");
    assert_eq!(
        fields(&parts(&reqs[1])),
        pairs(&[("title", "a.pdf"), ("chat_id", "42")])
    );
    assert_eq!(parts(&reqs[1])[2].name, "document");
    assert_eq!(reqs[2].path, "/bot123456:AbC-dEf/sendAnimation");
    assert_eq!(parts(&reqs[2])[2].name, "animation");

    d.deliver(
        "tgram://123456:AbC-dEf/42",
        &with_files(
            text("T", "short"),
            vec![
                file("a.jpg", "image/jpeg", b"1"),
                file("b.jpg", "image/jpeg", b"2"),
            ],
        ),
    )
    .await
    .unwrap();
    let reqs = cap.take();
    assert_eq!(reqs.len(), 2);
    assert_eq!(fields(&parts(&reqs[0]))[0].0, "caption");
    assert_eq!(
        fields(&parts(&reqs[1])),
        pairs(&[("title", "b.jpg"), ("chat_id", "42")])
    );

    // Over 10 MB a photo goes as a document; over 50 MB nothing goes.
    let big = vec![7u8; 10_000_001];
    d.deliver(
        "tgram://123456:AbC-dEf/42",
        &with_files(text("T", "b"), vec![file("big.jpg", "image/jpeg", &big)]),
    )
    .await
    .unwrap();
    let r = only(&cap);
    assert_eq!(r.path, "/bot123456:AbC-dEf/sendDocument");
    assert_eq!(parts(&r).last().unwrap().data.len(), big.len());
    let huge = vec![7u8; 50_000_001];
    let err = d
        .deliver(
            "tgram://123456:AbC-dEf/42",
            &with_files(text("T", "b"), vec![file("huge.jpg", "image/jpeg", &huge)]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Attachment { .. }), "{err:?}");
    assert!(err.is_permanent());
    assert!(err.to_string().contains("50 MB"), "{err}");
    assert!(cap.take().is_empty());
}

#[tokio::test]
async fn ntfy_uploads_the_file_with_the_text() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    let url = format!("ntfy://u:p@{}/t1/t2?priority=high", cap.host_port());
    d.deliver(&url, &shot(text("T", "Body line")))
        .await
        .unwrap();
    let reqs = cap.take();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    for (r, topic) in reqs.iter().zip(["/t1", "/t2"]) {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", topic));
        assert_eq!(
            r.query.as_deref(),
            Some(format!("filename={SHOT_NAME}&title=T&message=Body+line").as_str())
        );
        assert_eq!(r.body, SHOT);
        assert_eq!(r.header("content-type"), None);
        assert_eq!(r.header("x-priority"), Some("high"));
        assert_eq!(r.header("authorization"), Some(basic("u", "p").as_str()));
    }

    // The text goes with the first file only; ntfy.sh topics are paths too.
    d.deliver(
        "ntfy://alerts",
        &with_files(
            text("T", "B"),
            vec![
                file("a.jpg", "image/jpeg", b"1"),
                file("b.png", "image/png", b"2"),
            ],
        ),
    )
    .await
    .unwrap();
    let reqs = cap.take();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].path, "/alerts");
    assert_eq!(
        reqs[0].query.as_deref(),
        Some("filename=a.jpg&title=T&message=B")
    );
    assert_eq!(reqs[1].query.as_deref(), Some("filename=b.png"));
    assert_eq!(reqs[1].body, b"2");

    // Without a file: the JSON message, unchanged.
    d.deliver("ntfy://alerts", &text("T", "B")).await.unwrap();
    let r = only(&cap);
    assert_eq!(r.path, "/");
    assert_eq!(
        r.json(),
        json!({"topic": "alerts", "title": "T", "message": "B"})
    );
}

#[tokio::test]
async fn pushover_attaches_images_only() {
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
    let url = format!("pover://{user}@{token}/phone?sound=magic");
    d.deliver(
        &url,
        &with_files(
            text("T", "Body"),
            vec![
                file(SHOT_NAME, "image/jpeg", SHOT),
                file("b.png", "image/png", b"png"),
            ],
        ),
    )
    .await
    .unwrap();
    let reqs = cap.take();
    assert_eq!(reqs.len(), 2);
    let first = parts(&reqs[0]);
    assert_eq!(
        fields(&first),
        pairs(&[
            ("token", &token),
            ("user", &user),
            ("priority", "0"),
            ("title", "T"),
            ("message", "Body"),
            ("sound", "magic"),
            ("device", "phone"),
        ])
    );
    let f = first.last().unwrap();
    assert_eq!(f.raw_headers, file_headers("attachment", SHOT_NAME, None));
    assert_eq!(f.data, SHOT);
    // Later files: their name as the message, no title, no sound.
    let second = fields(&parts(&reqs[1]));
    assert!(
        second.contains(&("message".into(), "b.png".into())),
        "{second:?}"
    );
    assert!(second.contains(&("title".into(), String::new())));
    assert!(second.contains(&("sound".into(), "none".into())));

    // Not an image: the message alone, as a plain form.
    d.deliver(
        &url,
        &with_files(
            text("T", "Body"),
            vec![file("a.pdf", "application/pdf", b"%PDF")],
        ),
    )
    .await
    .unwrap();
    let r = only(&cap);
    assert_eq!(
        r.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(form(&r)["message"], "Body");

    // Over 5 MiB: refused before anything is sent, as apprise refuses it.
    let err = d
        .deliver(
            &url,
            &with_files(
                text("T", "Body"),
                vec![file("big.jpg", "image/jpeg", &vec![0; 5 * 1024 * 1024 + 1])],
            ),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Attachment { .. }), "{err:?}");
    assert!(err.is_permanent());
    assert!(cap.take().is_empty());
}

#[tokio::test]
async fn slack_bot_uploads_files_to_each_channel() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    cap.reply(
        "/api/chat.postMessage",
        200,
        "application/json",
        r#"{"ok":true,"channel":"C42"}"#,
    );
    cap.reply(
        "/api/files.getUploadURLExternal",
        200,
        "application/json",
        r#"{"ok":true,"upload_url":"https://files.slack.com/upload/v1/ABC","file_id":"F9"}"#,
    );
    cap.reply("/upload/v1/ABC", 200, "text/plain", "OK - 14");
    cap.reply(
        "/api/files.completeUploadExternal",
        200,
        "application/json",
        r#"{"ok":true,"files":[{"id":"F9","title":"x"}]}"#,
    );
    d.deliver("slack://xoxb-123-456-abc/#a/#b", &shot(text("T", "B")))
        .await
        .unwrap();
    let reqs = cap.take();
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/api/chat.postMessage",
            "/api/chat.postMessage",
            "/api/files.getUploadURLExternal",
            "/upload/v1/ABC",
            "/api/files.completeUploadExternal",
            "/api/files.completeUploadExternal",
        ]
    );
    assert!(
        reqs.iter()
            .all(|r| r.header("authorization") == Some("Bearer xoxb-123-456-abc"))
    );
    assert_eq!(reqs[2].method, "GET");
    assert_eq!(
        reqs[2].query.as_deref(),
        Some(format!("filename={SHOT_NAME}&length={}", SHOT.len()).as_str())
    );
    let p = parts(&reqs[3]);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].raw_headers, file_headers("file", SHOT_NAME, None));
    assert_eq!(p[0].data, SHOT);
    assert_eq!(
        reqs[4].json(),
        json!({"files": [{"id": "F9", "title": SHOT_NAME}], "channel_id": "C42"})
    );

    // An upload Slack refuses fails the delivery.
    cap.reply(
        "/api/files.getUploadURLExternal",
        200,
        "application/json",
        r#"{"ok":false,"error":"missing_scope"}"#,
    );
    let err = d
        .deliver("slack://xoxb-123-456-abc/#a", &shot(text("T", "B")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("missing_scope"), "{err}");
    cap.take();

    // Webhooks take no files: the message alone, unchanged.
    d.deliver("slack://T1/B2/C3", &shot(text("T", "B")))
        .await
        .unwrap();
    let r = only(&cap);
    assert_eq!(r.path, "/services/T1/B2/C3");
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn matrix_uploads_files_and_shows_them_before_the_text() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    cap.reply(
        "/_matrix/client/v3/join/",
        200,
        "application/json",
        r#"{"room_id":"!abc:hs.org"}"#,
    );
    cap.reply(
        "/_matrix/media/v3/upload",
        200,
        "application/json",
        r#"{"content_uri":"mxc://hs.org/up1"}"#,
    );
    d.deliver(
        &format!("matrix://tokABC@{}/!abc:hs.org", cap.host_port()),
        &with_files(
            text("", "plain"),
            vec![
                file(SHOT_NAME, "image/jpeg", SHOT),
                file("a.pdf", "application/pdf", b"%PDF"),
            ],
        ),
    )
    .await
    .unwrap();
    let reqs = cap.take();
    let what: Vec<(&str, &str)> = reqs
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(what.len(), 6, "{what:?}");
    assert_eq!(what[1], ("POST", "/_matrix/media/v3/upload"));
    assert_eq!(
        reqs[1].query.as_deref(),
        Some(format!("filename={SHOT_NAME}").as_str())
    );
    assert_eq!(reqs[1].header("content-type"), Some("image/jpeg"));
    assert_eq!(reqs[1].header("authorization"), Some("Bearer tokABC"));
    assert_eq!(reqs[1].body, SHOT);
    assert_eq!(reqs[2].header("content-type"), Some("application/pdf"));
    assert_eq!(
        reqs[3].json(),
        json!({
            "body": SHOT_NAME,
            "info": {"mimetype": "image/jpeg", "size": SHOT.len()},
            "msgtype": "m.image",
            "url": "mxc://hs.org/up1",
            "room_id": "!abc:hs.org",
            "type": "m.room.message",
        })
    );
    assert_eq!(reqs[4].json()["msgtype"], "m.file");
    assert_eq!(reqs[4].json()["filename"], "a.pdf");
    assert_eq!(
        reqs[5].json(),
        json!({"msgtype": "m.text", "body": "plain"})
    );
    assert!(what[3..].iter().all(|(m, p)| *m == "PUT"
        && p.starts_with("/_matrix/client/v3/rooms/!abc:hs.org/send/m.room.message/")));
}

/// Runs apprise (Python, upstream's pinned version) against `cap` for one URL, with `file` as
/// its attachment when given, and returns what it sent. Hosted services are pointed at `cap`
/// the way `service_base` points changewatch at it.
fn apprise_sends(
    cap: &CaptureServer,
    url: &str,
    title: &str,
    body: &str,
    file: Option<&std::path::Path>,
) -> Vec<Captured> {
    apprise_sends_as(cap, url, title, body, file, None)
}

/// [`apprise_sends`] as upstream calls apprise: with the body's format named and upstream's
/// asset (`app_id` "changedetection.io", which services show as the sender's name).
fn apprise_sends_for_upstream(
    cap: &CaptureServer,
    url: &str,
    title: &str,
    body: &str,
    file: Option<&std::path::Path>,
    format: &str,
) -> Vec<Captured> {
    apprise_sends_as(cap, url, title, body, file, Some(format))
}

fn apprise_sends_as(
    cap: &CaptureServer,
    url: &str,
    title: &str,
    body: &str,
    file: Option<&std::path::Path>,
    upstream_format: Option<&str>,
) -> Vec<Captured> {
    const SCRIPT: &str = r#"
import sys, apprise
from apprise.plugins.discord import NotifyDiscord
from apprise.plugins.telegram import NotifyTelegram
from apprise.plugins.pushover import NotifyPushover
from apprise.plugins.pushbullet import NotifyPushBullet
from apprise.plugins.rocketchat import NotifyRocketChat
from apprise.plugins.signal_api import NotifySignalAPI
base, url, title, body, attach, fmt = sys.argv[1:7]
NotifyDiscord.notify_url = base + "/api/webhooks"
NotifyTelegram.notify_url = base + "/bot"
NotifyPushover.notify_url = base + "/1/messages.json"
NotifyPushBullet.notify_url = base + "/v2/{}"
for plugin in (NotifyDiscord, NotifyTelegram, NotifyPushover, NotifyPushBullet, NotifyRocketChat,
               NotifySignalAPI):
    plugin.request_rate_per_sec = 0
asset = apprise.AppriseAsset(app_id="changedetection.io") if fmt else apprise.AppriseAsset()
a = apprise.Apprise(asset=asset)
if not a.add(url):
    sys.exit("apprise refused " + url)
ok = a.notify(body=body, title=title, attach=attach or None, body_format=fmt or None)
sys.exit(0 if ok else 1)
"#;
    testkit::setup::require_python_modules(&["apprise"], "apprise==2.0.1");
    cap.take();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(cap.base())
        .arg(url)
        .arg(title)
        .arg(body)
        .arg(file.map(|f| f.display().to_string()).unwrap_or_default())
        .arg(upstream_format.unwrap_or_default())
        .env("NO_PROXY", "*")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "apprise {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    cap.take()
}

/// A multipart body with its boundary replaced by a fixed one, so two senders' bodies compare.
fn normalized(c: &Captured) -> Vec<u8> {
    let ct = c.header("content-type").unwrap_or_default();
    let boundary = testkit::multipart::boundary(ct).unwrap_or_else(|| panic!("{ct}"));
    let mut out = Vec::new();
    let mut rest = c.body.as_slice();
    while let Some(i) = rest
        .windows(boundary.len())
        .position(|w| w == boundary.as_bytes())
    {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(b"BOUNDARY");
        rest = &rest[i + boundary.len()..];
    }
    out.extend_from_slice(rest);
    out
}

#[tokio::test]
async fn apprise_sends_the_same_files() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    let dir = std::env::temp_dir().join(format!("cw-apprise-attach-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(SHOT_NAME);
    std::fs::write(&path, SHOT).unwrap();
    let ours = |m: Message| shot(m);
    let changewatch = |url: String, m: Message| {
        let d = d.clone();
        let cap = &cap;
        async move {
            cap.take();
            d.deliver(&url, &m).await.unwrap();
            cap.take()
        }
    };

    // form://: byte for byte once the random boundary is set aside, with and without a file.
    let url = format!("form://{}/f?:extra=x", cap.host_port());
    let theirs = apprise_sends(&cap, &url, "Title", "Body line", Some(&path));
    let mine = changewatch(url.clone(), ours(text("Title", "Body line"))).await;
    assert_eq!((theirs.len(), mine.len()), (1, 1));
    assert_eq!(
        String::from_utf8_lossy(&normalized(&mine[0])),
        String::from_utf8_lossy(&normalized(&theirs[0]))
    );
    let theirs = apprise_sends(&cap, &url, "Title", "Body line", None);
    let mine = changewatch(url.clone(), text("Title", "Body line")).await;
    assert_eq!(
        mine[0].header("content-type"),
        theirs[0].header("content-type")
    );
    assert_eq!(mine[0].body_text(), theirs[0].body_text());

    // tgram://: the captioned photo, byte for byte.
    let url = "tgram://123456789:abcdefg_hijklmnop/12345/".to_string();
    let theirs = apprise_sends(&cap, &url, "", "Body line", Some(&path));
    let mine = changewatch(url, ours(text("", "Body line"))).await;
    assert_eq!((theirs.len(), mine.len()), (1, 1));
    assert_eq!(mine[0].path, theirs[0].path);
    assert_eq!(
        String::from_utf8_lossy(&normalized(&mine[0])),
        String::from_utf8_lossy(&normalized(&theirs[0]))
    );

    // discord://: the text, then the file message (payload_json compared as JSON: Python
    // writes `", "` between members).
    let url = "discord://user@111/tok?avatar=no".to_string();
    let theirs = apprise_sends(&cap, &url, "Title", "Body line", Some(&path));
    let mine = changewatch(url, ours(text("Title", "Body line"))).await;
    assert_eq!((theirs.len(), mine.len()), (2, 2));
    assert_eq!(mine[0].json(), theirs[0].json());
    let (tp, mp) = (parts(&theirs[1]), parts(&mine[1]));
    assert_eq!(mp.len(), tp.len());
    assert_eq!(mp[0].raw_headers, tp[0].raw_headers);
    assert_eq!(
        serde_json::from_slice::<Value>(&mp[0].data).unwrap(),
        serde_json::from_slice::<Value>(&tp[0].data).unwrap()
    );
    assert_eq!(mp[1], tp[1]);

    // ntfy://: the file as the body, its name and the text in the query.
    let url = format!("ntfy://{}/topic1?image=no", cap.host_port());
    let theirs = apprise_sends(&cap, &url, "Title", "Body line", Some(&path));
    let mine = changewatch(url, ours(text("Title", "Body line"))).await;
    assert_eq!((theirs.len(), mine.len()), (1, 1));
    assert_eq!(
        (mine[0].path.as_str(), mine[0].query.as_deref()),
        (theirs[0].path.as_str(), theirs[0].query.as_deref())
    );
    assert_eq!(
        mine[0].header("content-type"),
        theirs[0].header("content-type")
    );
    assert_eq!(mine[0].body, theirs[0].body);

    // pover://: the same file part after the fields (which differ: apprise names its own
    // defaults, device and sound).
    cap.reply(
        "/1/messages.json",
        200,
        "application/json",
        r#"{"status":1}"#,
    );
    let url = format!("pover://{}@{}", "u".repeat(30), "a".repeat(30));
    let theirs = apprise_sends(&cap, &url, "Title", "Body line", Some(&path));
    let mine = changewatch(url, ours(text("Title", "Body line"))).await;
    assert_eq!((theirs.len(), mine.len()), (1, 1));
    let (tp, mp) = (parts(&theirs[0]), parts(&mine[0]));
    assert_eq!(mp.last(), tp.last());
    for name in ["token", "user", "title", "message", "priority"] {
        let get = |p: &[FormPart]| p.iter().find(|x| x.name == name).map(FormPart::text);
        assert_eq!(get(&mp), get(&tp), "{name}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// --- Apprise API: apprise's own `apprise://` notifier, and the relay of other services -----

fn relaying(server: Option<&AppriseApiServer>, policy: AddressPolicy) -> Deliverer {
    Deliverer::new(DeliveryOptions {
        timeout: Duration::from_secs(20),
        policy,
        service_base: None,
        apprise_api: server.map(|s| url::Url::parse(&s.base()).unwrap()),
    })
    .unwrap()
}

#[tokio::test]
async fn other_services_go_through_the_apprise_api_server() {
    let server = AppriseApiServer::start();
    let cap = CaptureServer::start();
    let d = relaying(Some(&server), AddressPolicy::allow_all());

    // Home Assistant, which changewatch does not speak: what arrives is apprise's own request,
    // the same as apprise sends for that URL when run directly.
    let url = format!("hassio://{}/TOKEN", cap.host_port());
    d.deliver(&url, &text("Title", "Body line")).await.unwrap();
    let mine = only(&cap);
    let theirs = apprise_sends(&cap, &url, "Title", "Body line", None);
    assert_eq!(theirs.len(), 1);
    for r in [&mine, &theirs[0]] {
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/api/services/persistent_notification/create")
        );
        assert_eq!(r.header("authorization"), Some("Bearer TOKEN"));
    }
    for key in ["title", "message"] {
        assert_eq!(mine.json()[key], theirs[0].json()[key], "{key}");
    }
    assert_eq!(mine.json()["message"], "Body line");

    // The body's format travels with it, and apprise converts for the service.
    d.deliver(&url, &msg("T", "<b>bold</b> &amp; more", BodyFormat::Html))
        .await
        .unwrap();
    assert_eq!(only(&cap).json()["message"], "bold & more");

    // Files go along (JSON `attachments`), and reach the service as apprise uploads them.
    let url = format!(
        "fluxer://{}/123456789012345678/abcdefghijklmnopqrstuvwxyz0123456789",
        cap.host_port()
    );
    d.deliver(&url, &shot(text("Title", "Body line")))
        .await
        .unwrap();
    let got = cap.take();
    assert!(
        got.iter()
            .any(|r| r.body.windows(SHOT.len()).any(|w| w == SHOT)),
        "the screenshot did not arrive: {got:?}"
    );

    // A service that fails: the server answers 424, which may pass on a later try.
    cap.fail_next(1, 500);
    let err = d
        .deliver(
            &format!("hassio://{}/TOKEN", cap.host_port()),
            &text("T", "B"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeliveryError::Status { status: 424, .. }),
        "{err}"
    );
    assert!(!err.is_permanent());
    cap.take();

    // A URL apprise cannot load: the server sends nothing and says so (204).
    let err = d.deliver("hassio://", &text("T", "B")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apprise API relay: the Apprise API server could not load the 'hassio://' URL"
    );
    assert!(err.is_permanent());
    assert!(cap.take().is_empty());
}

#[tokio::test]
async fn without_an_apprise_api_server_other_services_fail_clearly() {
    let cap = CaptureServer::start();
    let d = relaying(None, AddressPolicy::allow_all());
    let err = d
        .deliver(
            &format!("hassio://{}/TOKEN", cap.host_port()),
            &text("T", "B"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apprise API relay: changewatch does not deliver 'hassio://' URLs itself; they go \
         through an Apprise API server, and none is configured (set APPRISE_API_URL)"
    );
    assert!(err.is_permanent());
    assert!(cap.take().is_empty());
}

#[tokio::test]
async fn relayed_urls_obey_the_ssrf_policy_but_the_server_may_be_loopback() {
    let server = AppriseApiServer::start();
    let cap = CaptureServer::start();
    let strict = AddressPolicy {
        allow_private: false,
        allowed_hosts: vec!["localhost".into()],
    };
    let d = relaying(Some(&server), strict);
    for host in [
        "127.0.0.1",
        "[::1]",
        "10.0.0.1",
        "169.254.169.254",
        "db.localhost",
    ] {
        let err = d
            .deliver(
                &format!("hassio://{host}:{}/TOKEN", cap.addr().port()),
                &text("T", "B"),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, DeliveryError::Blocked { .. }),
            "{host}: {err}"
        );
        assert!(err.is_permanent());
    }
    assert!(cap.take().is_empty());
    // A host the operator allowed goes through the (loopback) server to the service.
    d.deliver(
        &format!("hassio://localhost:{}/TOKEN", cap.addr().port()),
        &text("T", "B"),
    )
    .await
    .unwrap();
    assert_eq!(only(&cap).json()["message"], "B");
}

#[tokio::test]
async fn apprise_api_urls_send_what_apprise_sends() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap);
    let file = ShotFile::new("apprise-api");
    let same_headers = |mine: &Captured, theirs: &Captured| {
        let media = |c: &Captured| {
            let ct = c.header("content-type").unwrap_or_default();
            ct.split(';').next().unwrap_or_default().to_string()
        };
        assert_eq!(media(mine), media(theirs));
        for h in [
            "accept",
            "authorization",
            "x-apprise-config-id",
            "x-apprise-recursion-count",
            "x-custom",
        ] {
            assert_eq!(mine.header(h), theirs.header(h), "{h}");
        }
        let id = mine.header("x-apprise-id").unwrap();
        assert_eq!(id.len(), 36, "{id}");
    };
    let plain = ("Title", "Body line", BodyFormat::Text);

    // The default: a form post to /notify, the key in X-Apprise-Config-ID.
    let url = format!("apprise://{}/KEY_1", cap.host_port());
    let both = sent_by_both(&d, &cap, &url, plain, None).await;
    let (mine, theirs) = &both[0];
    assert_eq!((both.len(), mine.path.as_str()), (1, "/notify"));
    same_headers(mine, theirs);
    assert_eq!(mine.body_text(), theirs.body_text());
    assert_eq!(
        mine.body_text(),
        "title=Title&body=Body+line&type=info&format=text"
    );

    // With a file: multipart, fields then `file01`, byte for byte.
    let both = sent_by_both(&d, &cap, &url, plain, Some(&file.path)).await;
    let (mine, theirs) = &both[0];
    same_headers(mine, theirs);
    assert_eq!(
        String::from_utf8_lossy(&normalized(mine)),
        String::from_utf8_lossy(&normalized(theirs))
    );

    // JSON, version 1 (the key in the path), a path prefix, credentials, tags and a header.
    let url = format!(
        "apprise://user:pw@{}/pre/KEY_2?method=json&v=1&tags=b,a&+X-Custom=yes",
        cap.host_port()
    );
    let md = ("Title", "**Body** line", BodyFormat::Markdown);
    for f in [None, Some(file.path.as_path())] {
        let both = sent_by_both(&d, &cap, &url, md, f).await;
        let (mine, theirs) = &both[0];
        assert_eq!(mine.path, "/pre/notify/KEY_2");
        same_headers(mine, theirs);
        assert_eq!(mine.json(), theirs.json());
    }
}

#[test]
fn the_relayed_schemes_are_exactly_apprises() {
    testkit::setup::require_python_modules(&["apprise"], "apprise==2.0.1");
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "from apprise.manager_plugins import NotificationManager\n\
             print(' '.join(sorted(NotificationManager().schemas())))",
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(changewatch_notify::url::APPRISE_SCHEMES, theirs);
}
