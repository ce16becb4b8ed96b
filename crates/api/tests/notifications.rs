//! Global notification URL endpoints through HTTP only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use common::spawn_app;
use reqwest::Method;
use serde_json::{Value, json};

async fn send(app: &common::TestApp, method: Method, body: Value) -> (u16, String) {
    let r = app
        .req(method, "/api/v1/notifications")
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn add_replace_delete_round_trip() {
    let app = spawn_app().await;
    let (s, b) = app.get_json("/api/v1/notifications").await;
    assert_eq!((s, b), (200, json!({"notification_urls": []})));

    let (s, b) = send(
        &app,
        Method::POST,
        json!({"notification_urls": [" json://example.com/a ", "mailto://u:p@example.com"]}),
    )
    .await;
    assert_eq!(s, 201);
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(
        v,
        json!({"notification_urls": ["json://example.com/a", "mailto://u:p@example.com"]})
    );
    // Adding one that is already present reports it, without a duplicate.
    let (s, b) = send(
        &app,
        Method::POST,
        json!({"notification_urls": ["json://example.com/a"]}),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap(),
        json!({"notification_urls": ["json://example.com/a"]})
    );
    let (_, v) = app.get_json("/api/v1/notifications").await;
    assert_eq!(v["notification_urls"].as_array().unwrap().len(), 2);

    let (s, b) = send(
        &app,
        Method::PUT,
        json!({"notification_urls": ["tgram://123456789:AAbot-token_x/12345"]}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap(),
        json!({"notification_urls": ["tgram://123456789:AAbot-token_x/12345"]})
    );

    let (s, b) = send(
        &app,
        Method::DELETE,
        json!({"notification_urls": ["tgram://123456789:AAbot-token_x/12345"]}),
    )
    .await;
    assert_eq!((s, b.as_str()), (204, ""));
    let (_, v) = app.get_json("/api/v1/notifications").await;
    assert_eq!(v, json!({"notification_urls": []}));

    // An empty replacement list is allowed.
    let (s, _) = send(&app, Method::PUT, json!({"notification_urls": []})).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn errors_use_upstream_strings() {
    let app = spawn_app().await;
    for method in [Method::POST, Method::PUT] {
        let (s, b) = send(
            &app,
            method,
            json!({"notification_urls": ["json://ok.example", "foo://bar"]}),
        )
        .await;
        assert_eq!(
            (s, b.as_str()),
            (400, "\"'foo://bar' is not a valid AppRise URL.\"\n")
        );
    }
    let (s, b) = send(&app, Method::POST, json!({"notification_urls": []})).await;
    assert_eq!(
        (s, b.as_str()),
        (400, "\"No valid notification URLs were added\"\n")
    );
    let (s, b) = send(
        &app,
        Method::DELETE,
        json!({"notification_urls": ["json://nope.example"]}),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap(),
        json!({"message": "No matching notification URLs found."})
    );
    let (_, v) = app.get_json("/api/v1/notifications").await;
    assert_eq!(v, json!({"notification_urls": []}), "nothing was stored");
}

#[tokio::test]
async fn watch_notification_urls_are_checked_with_apprise_rules() {
    let app = spawn_app().await;
    let r = app
        .req(Method::POST, "/api/v1/watch")
        .json(&json!({"url": "https://example.com", "notification_urls": ["nope://x"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("is not a valid AppRise URL"),
        "watch create uses the apprise check"
    );
    app.create_watch(json!({"url": "https://example.com", "notification_urls": ["json://h/x"]}))
        .await;
}

#[tokio::test]
async fn unknown_keys_are_refused_by_name() {
    let app = spawn_app().await;
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let (s, b) = send(
            &app,
            method.clone(),
            json!({"notification_urls": ["json://example.com/a"], "notification_url": "x"}),
        )
        .await;
        assert_eq!(
            (s, b.as_str()),
            (400, "\"Unknown field(s): notification_url\"\n"),
            "{method}"
        );
    }
    let (_, v) = app.get_json("/api/v1/notifications").await;
    assert_eq!(v, json!({"notification_urls": []}), "nothing was added");

    let r = app
        .req(Method::POST, "/api/v1/notifications/test")
        .json(&json!({"notification_urls": ["json://example.com/a"], "title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.text().await.unwrap(), "\"Unknown field(s): title\"\n");
}
