//! Filters and rules that cannot run safely are refused when saved, through HTTP only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use common::spawn_app;
use reqwest::Method;
use serde_json::{Value, json};

fn hostile() -> Vec<(&'static str, String)> {
    vec![
        (
            "include_filters",
            format!("jq:{}1{}", "(".repeat(1000), ")".repeat(1000)),
        ),
        ("include_filters", format!("jq:1{}", "+1".repeat(2400))),
        ("include_filters", format!("jq:.{}", "|.".repeat(2000))),
        (
            "subtractive_selectors",
            format!("xpath:{}//a{}", "(".repeat(500), ")".repeat(500)),
        ),
        (
            "extract_text",
            format!("/{}a{}/", "(".repeat(200), ")".repeat(200)),
        ),
    ]
}

async fn refused(r: reqwest::Response, field: &str) {
    assert_eq!(r.status().as_u16(), 400);
    let v: Value = r.json().await.unwrap();
    let msg = v["message"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with(&format!("Validation failed: {field}.0: '")) && msg.contains("too complex"),
        "{v}"
    );
}

#[tokio::test]
async fn hostile_filters_are_refused_with_a_400_naming_the_field() {
    let app = spawn_app().await;
    let uuid = app
        .create_watch(json!({"url": "https://example.com/"}))
        .await;
    let r = app
        .req(Method::POST, "/api/v1/tag")
        .json(&json!({"title": "t"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let tag = r.json::<Value>().await.unwrap()["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    for (field, rule) in hostile() {
        let r = app
            .req(Method::POST, "/api/v1/watch")
            .json(&json!({"url": "https://example.com/x", field: [rule]}))
            .send()
            .await
            .unwrap();
        refused(r, field).await;
        let r = app
            .req(Method::PUT, &format!("/api/v1/watch/{uuid}"))
            .json(&json!({field: [rule]}))
            .send()
            .await
            .unwrap();
        refused(r, field).await;
        let r = app
            .req(Method::PUT, &format!("/api/v1/tag/{tag}"))
            .json(&json!({field: [rule]}))
            .send()
            .await
            .unwrap();
        refused(r, field).await;
    }
    // Nothing was stored, and the server is still there.
    let (status, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(status, 200);
    assert_eq!(w["include_filters"], json!([]));
    let (_, list) = app.get_json("/api/v1/watch").await;
    assert_eq!(list.as_object().unwrap().len(), 1);
}

#[tokio::test]
async fn hostile_global_rules_are_refused_by_the_settings_page() {
    let app = spawn_app().await;
    let deep_selector = format!("xpath:{}//a{}", "(".repeat(500), ")".repeat(500));
    let deep_regex = format!("/{}a{}/", "(".repeat(200), ")".repeat(200));
    for (field, rule) in [
        ("global_subtractive_selectors", deep_selector),
        ("global_ignore_text", deep_regex),
    ] {
        let r = app
            .client
            .put(format!("{}/ui/settings", app.base))
            .header("x-changewatch-ui", "1")
            .json(&json!({field: ["nav", rule]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let v: Value = r.json().await.unwrap();
        let msg = v["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains(&format!("{field}.1: '")) && msg.contains("too complex"),
            "{v}"
        );
    }
    let r = app
        .client
        .get(format!("{}/ui/settings", app.base))
        .header("x-changewatch-ui", "1")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["global_subtractive_selectors"],
        json!([]),
        "nothing stored"
    );
    assert_eq!(v["global_ignore_text"], json!([]), "nothing stored");
}

/// Notification templates are checked on save by the validator the test send uses (the
/// notification engine's own): a token it does not know is refused wherever a template is
/// saved, not only when a test is sent.
#[tokio::test]
async fn notification_templates_are_checked_on_save_as_the_test_send_checks_them() {
    let app = spawn_app().await;
    let want =
        "notification_body: The following tokens used in the notification are not valid: wath_url";
    let body = json!({"url": "https://example.com/", "notification_body": "{{ wath_url }}"});
    let r = app
        .req(Method::POST, "/api/v1/watch")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.json::<Value>().await.unwrap(), json!(want));

    let uuid = app
        .create_watch(json!({"url": "https://example.com/", "notification_body": "{{ watch_url }} {{ diff }}"}))
        .await;
    let r = app
        .req(Method::PUT, &format!("/api/v1/watch/{uuid}"))
        .json(&json!({"notification_body": "{{ wath_url }}", "paused": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.json::<Value>().await.unwrap(), json!(want));
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["paused"], false, "a refused PUT changes nothing");

    let r = app
        .req(Method::POST, "/api/v1/tag")
        .json(&json!({"title": "t", "notification_title": "{{ nope }}"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let msg = r.json::<Value>().await.unwrap();
    assert!(
        msg.as_str().unwrap().starts_with("notification_title: "),
        "{msg}"
    );

    let r = app
        .client
        .put(format!("{}/ui/settings", app.base))
        .header("x-changewatch-ui", "1")
        .json(&json!({"notification_body": "{{ wath_url }}"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v.to_string().contains("wath_url"), "{v}");
}
