//! History, snapshot, difference and favicon endpoints through HTTP only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{FixtureServer, Page};

const PAGE_1: &str = "<html><body><p>Opening hours</p><p>Price: 10</p></body></html>";
const PAGE_2: &str = "<html><body><p>Opening hours</p><p>Price: 11</p></body></html>";
const PAGE_3: &str = "<html><body><p>Opening hours</p><p>Price: 12</p></body></html>";

async fn get(app: &TestApp, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let r = app.req(Method::GET, path).send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.text().await.unwrap(), headers)
}

fn content_type(h: &reqwest::header::HeaderMap) -> &str {
    h.get("content-type").unwrap().to_str().unwrap()
}

/// Rechecks the watch now and runs the check.
async fn recheck(app: &TestApp, uuid: &str) {
    let (status, _, _) = get(app, &format!("/api/v1/watch/{uuid}?recheck=1")).await;
    assert_eq!(status, 200);
    app.run_checks().await;
}

async fn history_keys(app: &TestApp, uuid: &str) -> Vec<String> {
    let (status, h) = app.get_json(&format!("/api/v1/watch/{uuid}/history")).await;
    assert_eq!(status, 200);
    h.as_object().unwrap().keys().cloned().collect()
}

/// A watch with a baseline and one change.
async fn watch_with_change(app: &TestApp, srv: &FixtureServer) -> (String, Vec<String>) {
    srv.set("/p", Page::html(PAGE_1));
    let uuid = app.create_watch(json!({"url": srv.url("/p")})).await;
    app.run_checks().await;
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert!(w["last_checked"].as_i64().unwrap() > 0);
    assert_eq!(w["last_changed"], 0, "the first check is the baseline");
    srv.set("/p", Page::html(PAGE_2));
    recheck(app, &uuid).await;
    let keys = history_keys(app, &uuid).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    (uuid, keys)
}

#[tokio::test]
async fn history_lists_snapshots_oldest_first() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    srv.set("/p", Page::html(PAGE_1));
    let uuid = app.create_watch(json!({"url": srv.url("/p")})).await;
    let (status, h) = app.get_json(&format!("/api/v1/watch/{uuid}/history")).await;
    assert_eq!((status, h), (200, json!({})));

    app.run_checks().await;
    let keys = history_keys(&app, &uuid).await;
    assert_eq!(keys.len(), 1);
    let (status, body, _) = get(
        &app,
        &format!("/api/v1/watch/{uuid}/difference/previous/latest"),
    )
    .await;
    assert_eq!(status, 404);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["message"],
        "Not enough history entries. Need at least 2 snapshots for 'previous'"
    );

    srv.set("/p", Page::html(PAGE_2));
    recheck(&app, &uuid).await;
    let (_, h) = app.get_json(&format!("/api/v1/watch/{uuid}/history")).await;
    let entries: Vec<(&String, &Value)> = h.as_object().unwrap().iter().collect();
    assert_eq!(entries.len(), 2);
    let (t0, t1): (i64, i64) = (entries[0].0.parse().unwrap(), entries[1].0.parse().unwrap());
    assert!(t0 < t1, "oldest first");
    assert_eq!(
        entries[1].1,
        &json!(format!("/api/v1/watch/{uuid}/history/{t1}"))
    );
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["last_changed"], t1);
}

#[tokio::test]
async fn difference_in_every_format() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    let (uuid, keys) = watch_with_change(&app, &srv).await;
    let diff = |query: &str| {
        let path = format!("/api/v1/watch/{uuid}/difference/previous/latest{query}");
        let app = &app;
        async move { get(app, &path).await }
    };

    let (status, text, h) = diff("").await;
    assert_eq!(status, 200);
    assert!(content_type(&h).starts_with("text/plain"));
    assert_eq!(
        text, "Opening hours\n\n(changed) Price: 10\n(into) Price: 11",
        "changesOnly defaults to false: unchanged lines are shown"
    );

    let (_, text, _) = diff("?changesOnly=true").await;
    assert_eq!(text, "(changed) Price: 10\n(into) Price: 11");

    let (_, html, h) = diff("?format=html").await;
    assert!(content_type(&h).starts_with("text/html"));
    assert_eq!(
        html,
        "Opening hours<br>\r\n<br>\r\n(changed) Price: 10<br>\r\n(into) Price: 11"
    );

    let (_, color, h) = diff("?format=htmlcolor&changesOnly=true").await;
    assert!(content_type(&h).starts_with("text/html"));
    assert!(
        color.contains(r#"<span style="background-color: #fadad7; color: #b30000;" role="note" aria-label="Changed text" title="Changed text">Price: 10</span><br>"#),
        "{color}"
    );
    assert!(
        color.contains(r#"<span style="background-color: #eaf2c2; color: #406619;" role="note" aria-label="Changed into" title="Changed into">Price: 11</span>"#),
        "{color}"
    );

    let (_, md, h) = diff("?format=markdown&changesOnly=1").await;
    assert!(content_type(&h).starts_with("text/plain"));
    assert_eq!(md, "<del>Price: 10</del>\n**Price: 11**");

    // "System default" is the global notification format (htmlcolor unless changed).
    let (status, sys, h) = diff("?format=System%20default&changesOnly=true").await;
    assert_eq!(status, 200);
    assert!(content_type(&h).starts_with("text/html"));
    assert_eq!(sys, color);

    let (_, raw, h) = diff("?no_markup=true&format=html&changesOnly=true").await;
    assert!(content_type(&h).starts_with("text/plain"));
    assert_eq!(
        raw,
        "@changed_PLACEMARKER_OPENPrice: 10@changed_PLACEMARKER_CLOSED\n\
         @changed_into_PLACEMARKER_OPENPrice: 11@changed_into_PLACEMARKER_CLOSED"
    );

    // Word diff marks only the changed word, whichever parameter asks for it.
    let (_, words, _) = diff("?word_diff=true&changesOnly=true").await;
    assert!(words.starts_with("Price: "), "{words}");
    assert!(words.contains("10") && words.contains("11"), "{words}");
    let (_, words_type, _) = diff("?type=diffWords&changesOnly=true").await;
    assert_eq!(words, words_type);
    let (lines_status, lines_type, _) = diff("?type=diffLines&changesOnly=true").await;
    assert_eq!(lines_status, 200);
    assert_ne!(lines_type, words);
    for bad in ["", "words", "DIFFWORDS"] {
        let (status, body, _) = diff(&format!("?type={bad}")).await;
        assert_eq!(status, 400, "type={bad}");
        assert!(body.contains("'type'"), "{body}");
    }

    let (_, none, _) = diff("?replaced=false&changesOnly=true").await;
    assert_eq!(none, "");
    let (_, ws, _) = diff("?ignoreWhitespace=true&added=true&removed=false").await;
    assert!(ws.contains("(into) Price: 11"), "{ws}");

    // Explicit timestamps give the same diff as previous/latest.
    let (_, explicit, _) = get(
        &app,
        &format!("/api/v1/watch/{uuid}/difference/{}/{}", keys[0], keys[1]),
    )
    .await;
    let (_, named, _) = diff("").await;
    assert_eq!(explicit, named);

    // Reading diffs does not mark the change as viewed.
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["viewed"], false);
    assert_eq!(w["last_viewed"], 0);
}

#[tokio::test]
async fn difference_errors() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    let (uuid, keys) = watch_with_change(&app, &srv).await;
    let message =
        |body: &str| -> Value { serde_json::from_str::<Value>(body).unwrap()["message"].clone() };

    let (status, body, _) = get(
        &app,
        &format!("/api/v1/watch/{uuid}/difference/previous/latest?format=pdf"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        message(&body),
        "Invalid format. Must be one of: text, html, htmlcolor, markdown, System default"
    );
    let (status, body, _) = get(&app, &format!("/api/v1/watch/{uuid}/difference/123/latest")).await;
    assert_eq!(status, 404);
    assert_eq!(
        message(&body),
        "From timestamp 123 not found in watch history"
    );
    let (status, body, _) = get(
        &app,
        &format!("/api/v1/watch/{uuid}/difference/{}/456", keys[0]),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        message(&body),
        "To timestamp 456 not found in watch history"
    );
    let (status, _, _) = get(
        &app,
        &format!("/api/v1/watch/{uuid}/difference/previous/latest?changesOnly=maybe"),
    )
    .await;
    assert_eq!(status, 400);

    let other = app
        .create_watch(json!({"url": "https://example.com/"}))
        .await;
    let (status, body, _) = get(
        &app,
        &format!("/api/v1/watch/{other}/difference/previous/latest"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        message(&body),
        format!("Watch found but no history exists for the UUID {other}")
    );
    let missing = "00000000-0000-4000-8000-000000000000";
    let (status, body, _) = get(
        &app,
        &format!("/api/v1/watch/{missing}/difference/previous/latest"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        message(&body),
        format!("No watch exists with the UUID of {missing}")
    );
    let (status, body, _) = get(&app, "/api/v1/watch/NOT-A-UUID/difference/previous/latest").await;
    assert_eq!(status, 404);
    assert!(body.contains("<title>404 Not Found</title>"));
}

#[tokio::test]
async fn snapshots_latest_by_timestamp_and_raw_html() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    let (uuid, keys) = watch_with_change(&app, &srv).await;

    let (status, text, h) = get(&app, &format!("/api/v1/watch/{uuid}/history/latest")).await;
    assert_eq!(status, 200);
    assert_eq!(content_type(&h), "text/plain; charset=utf-8");
    assert_eq!(text, "Opening hours\n\nPrice: 11");
    let (_, text, _) = get(&app, &format!("/api/v1/watch/{uuid}/history/{}", keys[0])).await;
    assert_eq!(text, "Opening hours\n\nPrice: 10");

    let (status, html, h) = get(&app, &format!("/api/v1/watch/{uuid}/history/latest?html=1")).await;
    assert_eq!(status, 200);
    assert_eq!(html, PAGE_2);
    assert_eq!(content_type(&h), "text/plain; charset=utf-8");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(
        h["content-disposition"],
        format!("attachment; filename=\"snapshot-{}\"", keys[1]).as_str()
    );

    let (status, body, _) = get(&app, &format!("/api/v1/watch/{uuid}/history/42")).await;
    assert_eq!(status, 404);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["message"], "No history snapshot found for timestamp '42'");

    // Raw HTML is only kept for the newest two checks.
    srv.set("/p", Page::html(PAGE_3));
    recheck(&app, &uuid).await;
    assert_eq!(history_keys(&app, &uuid).await.len(), 3);
    let (status, body, h) = get(
        &app,
        &format!("/api/v1/watch/{uuid}/history/{}?html=1", keys[0]),
    )
    .await;
    assert_eq!((status, body.as_str()), (404, "No content found"));
    assert!(content_type(&h).starts_with("text/plain"));

    let other = app
        .create_watch(json!({"url": "https://example.com/"}))
        .await;
    let (status, body, _) = get(&app, &format!("/api/v1/watch/{other}/history/latest")).await;
    assert_eq!(status, 404);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["message"],
        format!("Watch found but no history exists for the UUID {other}")
    );
}

#[tokio::test]
async fn delete_history_resets_and_rechecks() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    let (uuid, _) = watch_with_change(&app, &srv).await;

    let r = app
        .req(Method::DELETE, &format!("/api/v1/watch/{uuid}/history"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(r.text().await.unwrap(), "");
    let (_, h) = app.get_json(&format!("/api/v1/watch/{uuid}/history")).await;
    assert_eq!(h, json!({}));
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["last_checked"], 0);
    assert_eq!(w["check_count"], 0);
    assert_eq!(w["previous_md5"], false);
    assert_eq!(w["history_n"], 0);

    // Due again at once, or one second on when reset within the second of the last check:
    // time is moved, not waited for.
    app.run_checks().await;
    if history_keys(&app, &uuid).await.is_empty() {
        app.clock.advance(1);
        app.run_checks().await;
    }
    assert_eq!(
        history_keys(&app, &uuid).await.len(),
        1,
        "the next tick takes a new baseline"
    );
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["last_changed"], 0);

    let missing = "00000000-0000-4000-8000-000000000000";
    let r = app
        .req(Method::DELETE, &format!("/api/v1/watch/{missing}/history"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let (status, _) = app
        .get_json(&format!("/api/v1/watch/{missing}/history"))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn favicon_is_not_available_yet() {
    let app = spawn_app().await;
    let uuid = app
        .create_watch(json!({"url": "https://example.com/"}))
        .await;
    let (status, v) = app.get_json(&format!("/api/v1/watch/{uuid}/favicon")).await;
    assert_eq!(status, 404);
    assert_eq!(v["message"], format!("No Favicon available for {uuid}"));
    let missing = "00000000-0000-4000-8000-000000000000";
    let (status, v) = app
        .get_json(&format!("/api/v1/watch/{missing}/favicon"))
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        v["message"],
        format!("No watch exists with the UUID of {missing}")
    );
}
