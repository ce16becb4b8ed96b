//! Conditions (issue #14): a page whose number crosses "extracted number < 100". A check whose
//! conditions do not hold records no change and sends nothing (upstream's text_json_diff
//! processor blocks it like trigger_text); one where they hold is a change as any other.
//! Notifications are counted at a real receiver.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use std::time::Duration;

use changewatch_store::NotificationQueue;
use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{CaptureServer, FixtureServer, Page};

/// Upstream's conditions test page: one number in a container the watch filters on.
fn page(value: &str, note: &str) -> Page {
    Page::html(format!(
        "<html><body><h1>Test Page for Conditions</h1>\
         <p>This page contains a number that will be tested with conditions.</p>\
         <div class=\"number-container\">Current value: {value} {note}</div></body></html>"
    ))
}

async fn history_len(app: &TestApp, uuid: &str) -> usize {
    let (_, h) = app.get_json(&format!("/api/v1/watch/{uuid}/history")).await;
    h.as_object().map_or(0, |o| o.len())
}

async fn recheck(app: &TestApp, uuid: &str) {
    app.get_json(&format!("/api/v1/watch/{uuid}?recheck=1"))
        .await;
    app.run_checks().await;
}

/// Delivers what the checks queued and returns the messages the receiver got.
async fn deliver(app: &TestApp, cap: &CaptureServer) -> Vec<String> {
    let dispatcher = changewatch_engine::notifications::Dispatcher::from_config(
        app.store.clone(),
        &changewatch_core::Config {
            allow_private_addresses: true,
            ..changewatch_core::Config::default()
        },
    )
    .unwrap();
    let received = app
        .store
        .receive(10, Duration::from_secs(60))
        .await
        .unwrap();
    for r in &received {
        dispatcher.attempt(r).await;
    }
    cap.take()
        .iter()
        .map(|c| c.json()["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn a_number_crossing_the_condition_is_reported_and_notified_only_below() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    let cap = CaptureServer::start();
    srv.set("/price", page("120", ""));
    let uuid = app
        .create_watch(json!({
            "url": srv.url("/price"),
            "include_filters": [".number-container"],
            "conditions_match_logic": "ALL",
            "conditions": [
                {"field": "extracted_number", "operator": "<", "value": "100"},
            ],
            "notification_urls": [format!("json://{}/hook", cap.host_port())],
            "notification_body": "{{current_snapshot}}",
        }))
        .await;

    // The first check stores its baseline whatever the conditions say (upstream).
    app.run_checks().await;
    assert_eq!(history_len(&app, &uuid).await, 1);
    assert!(deliver(&app, &cap).await.is_empty());

    // Above: a change, but the condition does not hold. Nothing stored, nothing sent.
    srv.set("/price", page("150", ""));
    recheck(&app, &uuid).await;
    assert_eq!(history_len(&app, &uuid).await, 1);
    assert!(deliver(&app, &cap).await.is_empty());
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["last_error"], json!(false), "{w}");

    // Below: reported and notified.
    srv.set("/price", page("80", ""));
    recheck(&app, &uuid).await;
    assert_eq!(history_len(&app, &uuid).await, 2);
    let sent = deliver(&app, &cap).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].contains("Current value: 80"), "{sent:?}");

    // Still below, another value: another change.
    srv.set("/price", page("90.50", ""));
    recheck(&app, &uuid).await;
    assert_eq!(history_len(&app, &uuid).await, 3);
    assert_eq!(deliver(&app, &cap).await.len(), 1);

    // Above again, twice (the second reply is the same: a blocked check is not reused).
    srv.set("/price", page("1,200", ""));
    recheck(&app, &uuid).await;
    recheck(&app, &uuid).await;
    assert_eq!(history_len(&app, &uuid).await, 3);
    assert!(deliver(&app, &cap).await.is_empty());

    // ANY: the number is above, the text matches: reported.
    let r = app
        .req(Method::PUT, &format!("/api/v1/watch/{uuid}"))
        .json(&json!({
            "conditions_match_logic": "ANY",
            "conditions": [
                {"field": "extracted_number", "operator": "<", "value": "100"},
                {"field": "page_filtered_text", "operator": "contains_regex", "value": "clear(ance)?"},
            ],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{:?}", r.text().await);
    srv.set("/price", page("1,300", "CLEARANCE"));
    recheck(&app, &uuid).await;
    assert_eq!(history_len(&app, &uuid).await, 4);
    assert_eq!(deliver(&app, &cap).await.len(), 1);

    // Read back as sent.
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["conditions_match_logic"], "ANY");
    assert_eq!(
        w["conditions"][1],
        json!({"field": "page_filtered_text", "operator": "contains_regex", "value": "clear(ance)?"})
    );
}

#[tokio::test]
async fn levenshtein_compares_with_the_newest_snapshot() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    let text =
        "Some initial text<br><p>Which is across multiple lines</p><br>So let's see what happens.";
    srv.set(
        "/t",
        Page::html(format!("<html><body>{text}</body></html>")),
    );
    let uuid = app
        .create_watch(json!({
            "url": srv.url("/t"),
            "conditions": [
                {"field": "levenshtein_ratio", "operator": "<", "value": "0.8"},
            ],
        }))
        .await;
    app.run_checks().await;
    assert_eq!(history_len(&app, &uuid).await, 1);
    // A little change: still similar, not reported.
    srv.set(
        "/t",
        Page::html(format!(
            "<html><body>{}</body></html>",
            text.replace("happens", "happenxxxxxxxxx")
        )),
    );
    recheck(&app, &uuid).await;
    assert_eq!(history_len(&app, &uuid).await, 1);
    // Mostly rewritten: reported.
    srv.set(
        "/t",
        Page::html(
            "<html><body>Some sxxxx<br><p>Which is across a lines</p><br>ok.</body></html>"
                .to_string(),
        ),
    );
    recheck(&app, &uuid).await;
    assert_eq!(history_len(&app, &uuid).await, 2);
    let (_, w): (u16, Value) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["last_error"], json!(false), "{w}");
}
