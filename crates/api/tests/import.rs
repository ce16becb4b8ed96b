//! POST /api/v1/import through HTTP only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use std::time::Duration;

use changewatch_api::ApiConfig;
use common::{TestApp, spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};

async fn import(app: &TestApp, query: &str, body: &str) -> (u16, String) {
    let r = app
        .req(Method::POST, &format!("/api/v1/import{query}"))
        .header("content-type", "text/plain")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn watch_count(app: &TestApp) -> usize {
    app.get_json("/api/v1/watch")
        .await
        .1
        .as_object()
        .unwrap()
        .len()
}

#[tokio::test]
async fn small_import_with_watch_fields_tags_and_dedupe() {
    let app = spawn_app().await;
    app.create_watch(json!({"url": "https://example.com/old"}))
        .await;
    let (s, b) = import(
        &app,
        "?tag=Shops,News&paused=true&title=Imported&time_between_check=%7B%22hours%22%3A2%7D&notification_urls=json%3A%2F%2Fh%2Fx",
        "https://example.com/a\n\n  https://example.com/b  \nHTTPS://EXAMPLE.COM/OLD\n",
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let uuids: Vec<String> = serde_json::from_str(&b).unwrap();
    assert_eq!(uuids.len(), 2, "the already-watched URL is skipped");
    let (_, w) = app.get_json(&format!("/api/v1/watch/{}", uuids[0])).await;
    assert_eq!(w["url"], "https://example.com/a");
    assert_eq!(w["paused"], true);
    assert_eq!(w["title"], "Imported");
    assert_eq!(w["time_between_check"]["hours"], 2);
    assert_eq!(w["notification_urls"], json!(["json://h/x"]));
    assert_eq!(w["tags"].as_array().unwrap().len(), 2);
    let (_, w2) = app.get_json(&format!("/api/v1/watch/{}", uuids[1])).await;
    assert_eq!(
        w2["tags"], w["tags"],
        "the named tags are created once and shared"
    );

    // dedupe=false imports it again.
    let (s, b) = import(&app, "?dedupe=false", "https://example.com/a").await;
    assert_eq!(s, 200);
    assert_eq!(serde_json::from_str::<Vec<String>>(&b).unwrap().len(), 1);
    assert_eq!(watch_count(&app).await, 4);
}

#[tokio::test]
async fn large_import_runs_in_the_background() {
    let app = spawn_app().await;
    let body: String = (0..25)
        .map(|i| format!("https://example.com/p{i}\n"))
        .collect();
    let (s, b) = import(&app, "", &body).await;
    assert_eq!(s, 202);
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap(),
        json!({"status": "Importing 25 URLs in background", "count": 25})
    );
    let mut n = 0;
    for _ in 0..100 {
        n = watch_count(&app).await;
        if n == 25 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(n, 25);
}

#[tokio::test]
async fn errors_reject_the_whole_batch() {
    let app = spawn_app().await;
    // Another media type is refused before the body is read, as upstream's request
    // validation does; none at all is taken as text/plain.
    let r = app
        .req(Method::POST, "/api/v1/import")
        .header("content-type", "application/json")
        .body("https://example.com/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["message"],
        "Validation failed: Content for the following mimetype not found: application/json. \
         Valid mimetypes: ['text/plain']"
    );
    assert_eq!(watch_count(&app).await, 0);
    let r = app
        .req(Method::POST, "/api/v1/import")
        .body("https://example.com/bare")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(watch_count(&app).await, 1);
    let r = app
        .req(Method::POST, "/api/v1/import?dedupe=false")
        .header("content-type", "text/plain; charset=utf-8")
        .body("https://example.com/bare")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(watch_count(&app).await, 2);
    let app = spawn_app().await;
    let cases = [
        (
            "",
            "https://example.com/ok\njavascript:alert(1)",
            "Invalid or unsupported URL - javascript:alert(1)",
        ),
        (
            "?nope=1",
            "https://example.com/ok",
            "Unknown watch configuration parameter: nope",
        ),
        (
            "?paused=maybe",
            "https://example.com/ok",
            "Invalid value for parameter 'paused': invalid truth value 'maybe'",
        ),
        (
            "?processor=nope",
            "https://example.com/ok",
            "Invalid processor 'nope'. Available processors: restock_diff, text_json_diff",
        ),
        (
            "?fetch_backend=nope",
            "https://example.com/ok",
            "Invalid fetch_backend 'nope'. Available: system, html_requests, html_webdriver",
        ),
        (
            "?notification_urls=foo%3A%2F%2Fbar",
            "https://example.com/ok",
            "Invalid notification_urls: 'foo://bar' is not a valid AppRise URL.",
        ),
        (
            "?proxy=nope",
            "https://example.com/ok",
            "Invalid proxy choice, currently supported proxies are 'none configured'",
        ),
    ];
    for (q, body, msg) in cases {
        let (s, b) = import(&app, q, body).await;
        assert_eq!((s, b), (400, format!("{}\n", json!(msg))), "{q}");
    }
    assert_eq!(watch_count(&app).await, 0, "nothing was imported");
}

#[tokio::test]
async fn watch_limit_refuses_the_import() {
    let app = spawn_app_with(ApiConfig {
        page_watch_limit: Some(2),
        minimum_recheck_secs: 3,
        base_url: None,
        salted_pass: None,
        open_without_password: true,
        api_key_fixed: false,
        trusted_proxy_hops: 0,
        work_after_reply: true,
    })
    .await;
    app.create_watch(json!({"url": "https://example.com/x"}))
        .await;
    let (s, b) = import(&app, "", "https://example.com/a\nhttps://example.com/b").await;
    assert_eq!(s, 429);
    assert_eq!(
        b,
        format!(
            "{}\n",
            json!(
                "Watch limit reached (1/2 watches), importing 2 URL(s) would exceed it. No watches were imported."
            )
        )
    );
    assert_eq!(watch_count(&app).await, 1);
}
