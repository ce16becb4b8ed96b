//! The RSS feeds (`/rss`, `/rss?tag=`, `/rss/tag/{uuid}`, `/rss/watch/{uuid}`) over HTTP, each
//! feed read by a real feed parser (python `feedparser`, `make test-deps`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{FixtureServer, Page};

/// A page title and text built to break a careless feed: markup, a CDATA end, quotes.
const HOSTILE_TITLE: &str = "Shop &amp; \"co\" ]]&gt; &lt;/title&gt;&lt;script&gt;x&lt;/script&gt;";
const HOSTILE_TITLE_TEXT: &str = "Shop & \"co\" ]]> </title><script>x</script>";

fn page(price: u32) -> String {
    format!(
        "<html><head><title>{HOSTILE_TITLE}</title></head><body><p>Opening hours</p>\
         <p>Price: {price} ]]&gt; &lt;b&gt;bold&lt;/b&gt;</p></body></html>"
    )
}

/// Parses a feed with feedparser: `{bozo, title, entries: [{title, link, id, summary, tags}]}`.
fn parse_feed(xml: &str) -> Value {
    testkit::setup::require_python_modules(&["feedparser"], "feedparser==6.0.14");
    const SCRIPT: &str = r#"
import json, sys, feedparser
d = feedparser.parse(sys.stdin.buffer.read())
print(json.dumps({
    "bozo": int(d.bozo),
    "bozo_exception": str(d.get("bozo_exception", "")),
    "version": d.version,
    "title": d.feed.get("title"),
    "entries": [{
        "title": e.get("title"),
        "link": e.get("link"),
        "id": e.get("id"),
        "summary": e.get("summary"),
        "published": e.get("published"),
        "tags": [t.get("term") for t in e.get("tags", [])],
    } for e in d.entries],
}))
"#;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (run make test-deps)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(xml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "feedparser failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["bozo"], 0,
        "feedparser: {} in\n{xml}",
        v["bozo_exception"]
    );
    assert_eq!(v["version"], "rss20", "{xml}");
    v
}

/// GET without the API key (feed readers have none): status, content type, body.
async fn fetch(app: &TestApp, path: &str) -> (u16, String, String) {
    let r = app
        .client
        .get(format!("{}{}", app.base, path))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, r.text().await.unwrap())
}

/// The feed at `path` (token added), parsed.
async fn feed(app: &TestApp, path: &str, token: &str) -> Value {
    let sep = if path.contains('?') { '&' } else { '?' };
    let (status, ct, body) = fetch(app, &format!("{path}{sep}token={token}")).await;
    assert_eq!(status, 200, "{path}: {body}");
    assert_eq!(ct, "application/rss+xml;charset=utf-8");
    parse_feed(&body)
}

async fn rss_token(app: &TestApp) -> String {
    let (status, s) = app.get_json("/ui/settings").await;
    assert_eq!(status, 200);
    let token = s["rss_access_token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 32, "a generated token: {s}");
    token
}

async fn recheck(app: &TestApp, uuid: &str) {
    let (status, _) = app
        .get_json(&format!("/api/v1/watch/{uuid}?recheck=1"))
        .await;
    assert_eq!(status, 200);
    app.run_checks().await;
}

/// A watch on `path` checked three times over three prices: a baseline and two changes.
async fn watch_changed_twice(
    app: &TestApp,
    srv: &FixtureServer,
    path: &str,
    body: Value,
) -> String {
    srv.set(path, Page::html(page(10)));
    let mut body = body;
    body["url"] = json!(srv.url(path));
    let uuid = app.create_watch(body).await;
    app.run_checks().await;
    for price in [11, 12] {
        app.clock.advance(5);
        srv.set(path, Page::html(page(price)));
        recheck(app, &uuid).await;
    }
    let (_, h) = app.get_json(&format!("/api/v1/watch/{uuid}/history")).await;
    assert_eq!(h.as_object().unwrap().len(), 3, "{h}");
    uuid
}

fn titles(feed: &Value) -> Vec<String> {
    feed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["title"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn unviewed_changes_appear_with_their_diff_until_viewed() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    let token = rss_token(&app).await;
    let changed = watch_changed_twice(&app, &srv, "/changed", json!({})).await;
    // Only a baseline: not a change, never in the feed.
    srv.set("/baseline", Page::html(page(1)));
    let baseline = app
        .create_watch(json!({"url": srv.url("/baseline"), "title": "Baseline only"}))
        .await;
    app.run_checks().await;

    let f = feed(&app, "/rss", &token).await;
    assert_eq!(f["title"], "changedetection.io");
    let entries = f["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{f}");
    let e = &entries[0];
    // The label is the page's title (titles shown in the list, the default), hostile text kept
    // as text.
    assert_eq!(e["title"], HOSTILE_TITLE_TEXT);
    assert_eq!(e["link"], format!("{}/#/history/{changed}", app.base));
    let (_, h) = app
        .get_json(&format!("/api/v1/watch/{changed}/history"))
        .await;
    let newest = h.as_object().unwrap().keys().max().unwrap().clone();
    assert_eq!(e["id"], format!("{changed}/{newest}"));
    // The text format: upstream's <pre> with the text diff, page markup escaped in it.
    let summary = e["summary"].as_str().unwrap();
    assert!(summary.starts_with("<pre>"), "{summary}");
    assert!(summary.contains("had a change."), "{summary}");
    assert!(summary.contains("(changed) Price: 11"), "{summary}");
    assert!(summary.contains("(into) Price: 12"), "{summary}");
    assert!(summary.contains("&lt;b&gt;bold&lt;/b&gt;"), "{summary}");
    assert!(!summary.contains("<b>"), "{summary}");
    assert!(!summary.contains("Baseline only"));
    assert!(e["published"].as_str().unwrap().ends_with("+0000"), "{e}");

    // The html colour format carries the styled diff.
    let r = app
        .req(Method::PUT, "/ui/settings")
        .json(&json!({"rss_content_format": "htmlcolor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{:?}", r.text().await);
    let f = feed(&app, "/rss", &token).await;
    let summary = f["entries"][0]["summary"].as_str().unwrap();
    assert!(summary.contains("background-color"), "{summary}");
    assert!(summary.contains(">12</span>"), "{summary}");
    assert!(summary.contains("&lt;b&gt;bold"), "{summary}");
    assert!(!summary.contains("<b>"), "{summary}");

    // Viewed: gone from /rss (the watch's own feed keeps its changes).
    let r = app
        .req(Method::POST, &format!("/ui/watch/{changed}/viewed"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let f = feed(&app, "/rss", &token).await;
    assert_eq!(f["entries"].as_array().unwrap().len(), 0, "{f}");
    let f = feed(&app, &format!("/rss/watch/{changed}"), &token).await;
    assert_eq!(f["entries"].as_array().unwrap().len(), 2, "{f}");

    // A watch with one snapshot has no changes to show: upstream's 400.
    let (status, _, body) = fetch(&app, &format!("/rss/watch/{baseline}?token={token}")).await;
    assert_eq!(status, 400);
    assert!(body.contains("need at least 2"), "{body}");
}

#[tokio::test]
async fn a_watch_feed_lists_its_changes_newest_first() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    let token = rss_token(&app).await;
    let uuid = watch_changed_twice(&app, &srv, "/w", json!({"title": "My <shop>"})).await;
    let f = feed(&app, &format!("/rss/watch/{uuid}"), &token).await;
    let url = srv.url("/w");
    assert_eq!(
        f["title"],
        format!("changedetection.io - My <shop> ({url})")
    );
    let entries = f["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{f}");
    for e in entries {
        assert!(
            e["title"]
                .as_str()
                .unwrap()
                .starts_with("My <shop> - Change @ "),
            "{e}"
        );
        assert_eq!(e["link"], url);
    }
    let newest = entries[0]["summary"].as_str().unwrap();
    assert!(newest.contains("(into) Price: 12"), "{newest}");
    let older = entries[1]["summary"].as_str().unwrap();
    assert!(older.contains("(into) Price: 11"), "{older}");
    assert!(!older.contains("Price: 12"), "{older}");

    // rss_diff_length bounds the items.
    let r = app
        .req(Method::PUT, "/ui/settings")
        .json(&json!({"rss_diff_length": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let f = feed(&app, &format!("/rss/watch/{uuid}"), &token).await;
    assert_eq!(f["entries"].as_array().unwrap().len(), 1, "{f}");

    let missing = "00000000-0000-4000-8000-000000000000";
    let (status, _, body) = fetch(&app, &format!("/rss/watch/{missing}?token={token}")).await;
    assert_eq!(status, 404);
    assert_eq!(body, format!("Watch with UUID {missing} not found"));
}

#[tokio::test]
async fn tag_feeds_list_the_tags_watches() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    let token = rss_token(&app).await;
    let r = app
        .req(Method::POST, "/api/v1/tag")
        .json(&json!({"title": "Shops & <Co>"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let tag: Value = r.json().await.unwrap();
    let tag = tag["uuid"].as_str().unwrap().to_string();
    let tagged = watch_changed_twice(
        &app,
        &srv,
        "/tagged",
        json!({"tags": [tag], "title": "Tagged"}),
    )
    .await;
    let _other = watch_changed_twice(&app, &srv, "/other", json!({"title": "Other"})).await;

    assert_eq!(titles(&feed(&app, "/rss", &token).await).len(), 2);
    let f = feed(&app, &format!("/rss/tag/{tag}"), &token).await;
    assert_eq!(f["title"], "changedetection.io - Shops & <Co>");
    let entries = f["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{f}");
    assert!(
        entries[0]["title"]
            .as_str()
            .unwrap()
            .starts_with("Tagged - Change @ "),
        "{f}"
    );
    assert_eq!(
        entries[0]["link"],
        format!("{}/#/history/{tagged}", app.base)
    );
    assert_eq!(entries[0]["tags"], json!(["Shops & <Co>"]));

    // ?tag= takes the title in any case, or the uuid; a name of nothing lists nothing.
    for q in ["shops%20%26%20%3Cco%3E", tag.as_str()] {
        let f = feed(&app, &format!("/rss?tag={q}"), &token).await;
        assert_eq!(titles(&f), vec!["Tagged".to_string()], "{q}");
    }
    let f = feed(&app, "/rss?tag=nothing", &token).await;
    assert!(titles(&f).is_empty());

    // Muted watches are left out (rss_hide_muted_watches, on by default).
    let (status, _) = app
        .get_json(&format!("/api/v1/watch/{tagged}?muted=muted"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        titles(&feed(&app, "/rss", &token).await),
        vec!["Other".to_string()]
    );
    assert!(titles(&feed(&app, &format!("/rss/tag/{tag}"), &token).await).is_empty());

    let missing = "00000000-0000-4000-8000-000000000000";
    let (status, _, body) = fetch(&app, &format!("/rss/tag/{missing}?token={token}")).await;
    assert_eq!(status, 404);
    assert_eq!(body, format!("Tag with UUID {missing} not found"));
}

#[tokio::test]
async fn every_feed_needs_the_token() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    let token = rss_token(&app).await;
    let uuid = watch_changed_twice(&app, &srv, "/t", json!({})).await;
    let paths = [
        "/rss".to_string(),
        "/rss?tag=x".to_string(),
        format!("/rss/watch/{uuid}"),
        format!("/rss/tag/{uuid}"),
    ];
    for path in &paths {
        let sep = if path.contains('?') { '&' } else { '?' };
        for suffix in [
            String::new(),
            format!("{sep}token="),
            format!("{sep}token=wrong"),
            format!("{sep}token={}", token.to_uppercase()),
        ] {
            let (status, ct, body) = fetch(&app, &format!("{path}{suffix}")).await;
            assert_eq!(status, 403, "{path}{suffix}");
            assert_eq!(body, "Access denied, bad token");
            assert!(ct.starts_with("text/plain"), "{ct}");
        }
    }
    // The API key is not the feed's token.
    let (status, _, _) = fetch(&app, &format!("/rss?token={}", app.api_key)).await;
    assert_eq!(status, 403);
    // `/rss/` goes to the feed with its query.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/rss/?token={token}", app.base))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection());
    assert_eq!(r.headers()["location"], format!("/rss?token={token}"));
}

#[tokio::test]
async fn a_store_without_an_rss_token_gets_one_at_start() {
    let app = spawn_app().await;
    let first = rss_token(&app).await;
    changewatch_engine::docs::update_settings(
        app.store.as_ref(),
        changewatch_store::DEFAULT_TENANT,
        |s, _| {
            s.application.rss_access_token = None;
            Ok::<_, changewatch_store::StoreError>(((), true))
        },
    )
    .await
    .unwrap();
    let (status, _, _) = fetch(&app, "/rss?token=").await;
    assert_eq!(status, 403, "no token stored: nobody gets in");
    changewatch_api::bootstrap::ensure_settings(
        app.store.as_ref(),
        changewatch_store::DEFAULT_TENANT,
        None,
        None,
    )
    .await
    .unwrap();
    let second = rss_token(&app).await;
    assert_ne!(first, second);
    feed(&app, "/rss", &second).await;
}

/// The settings page's RSS fields: a template override with upstream's `{{watch_label}}`
/// (the feed label) beside `{{watch_title}}`, a refused template, and a new token that
/// retires every feed link handed out before.
#[tokio::test]
async fn the_item_template_and_the_token_are_the_settings() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    let token = rss_token(&app).await;
    let uuid = watch_changed_twice(&app, &srv, "/t", json!({"title": "Shop"})).await;
    let put = |body: Value| app.req(Method::PUT, "/ui/settings").json(&body).send();
    let r = put(json!({"rss_template_override": "LABEL={{watch_label}} TITLE={{watch_title}}"}))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let f = feed(&app, &format!("/rss/watch/{uuid}"), &token).await;
    // Titles are shown in the list by default: the label is the title (else the URL).
    assert_eq!(f["entries"][0]["summary"], "LABEL=Shop TITLE=Shop");
    let (_, s) = app.get_json("/ui/settings").await;
    assert_eq!(s["rss_template_type"], "system_default");

    let r = put(json!({"rss_template_override": "{% if %}"}))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("rss_template_override"));
    let r = put(json!({"rss_template_type": "markdown"})).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("rss_template_type: must be one of")
    );
    // Each watch's notification body instead.
    let r = put(json!({"rss_template_type": "notification_body", "rss_template_override": null}))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, s) = app.get_json("/ui/settings").await;
    assert_eq!(s["rss_template_override"], Value::Null);

    let r = app
        .req(Method::POST, "/ui/settings/rss-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let fresh = r.json::<Value>().await.unwrap()["rss_access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(fresh.len(), 32);
    assert_ne!(fresh, token);
    let (status, _, _) = fetch(&app, &format!("/rss?token={token}")).await;
    assert_eq!(status, 403, "the old token is retired");
    feed(&app, "/rss", &fresh).await;
}
