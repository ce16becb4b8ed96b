//! The restock_diff processor through the API (issue #14): which rules a check reads (a tag
//! that overrides the watch), counted off the notifications queued in the real SQLite outbox,
//! and upstream's error for a page without product data. The deliveries a user receives are
//! counted at a real receiver in crates/cli/tests/notifications.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::json;
use testkit::{FixtureServer, Page};

fn product(in_stock: bool, price: &str) -> Page {
    let availability = if in_stock { "InStock" } else { "OutOfStock" };
    Page::html(format!(
        r#"<html><head><title>Kettle</title>
        <script type="application/ld+json">{{"@context":"https://schema.org","@graph":[
          {{"@type":"WebPage","name":"Kettle"}},
          {{"@type":"Product","name":"Kettle","offers":{{"@type":"Offer","price":"{price}",
            "priceCurrency":"EUR","availability":"https://schema.org/{availability}"}}}}]}}
        </script></head><body><h1>Kettle</h1><p>{price} EUR</p></body></html>"#
    ))
}

/// Sets the page, rechecks the watch and returns the notification bodies it queued.
async fn step(app: &TestApp, srv: &FixtureServer, uuid: &str, page: Page) -> Vec<String> {
    srv.set("/kettle", page);
    let (status, _) = app
        .get_json(&format!("/api/v1/watch/{uuid}?recheck=1"))
        .await;
    assert_eq!(status, 200);
    app.run_checks().await;
    app.drain_notifications()
        .await
        .into_iter()
        .map(|j| j.body)
        .collect()
}

async fn create_tag(app: &TestApp, body: serde_json::Value) -> String {
    let r = app
        .req(Method::POST, "/api/v1/tag")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    r.json::<serde_json::Value>().await.unwrap()["uuid"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Upstream reads the restock rules of the first assigned tag with `overrides_watch`, in place
/// of the watch's own, and the watch's again once the tag stops overriding.
#[tokio::test]
async fn a_tag_that_overrides_the_watch_sets_the_restock_rules() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    srv.set("/kettle", product(true, "100.00"));
    let tag = create_tag(
        &app,
        json!({"title": "shop", "overrides_watch": true,
               "processor_config_restock_diff": {"in_stock_processing": "off",
                   "follow_price_changes": true, "price_change_threshold_percent": 5}}),
    )
    .await;
    let uuid = app
        .create_watch(json!({
            "url": srv.url("/kettle"),
            "processor": "restock_diff",
            "tags": [tag],
            "processor_config_restock_diff": {
                "in_stock_processing": "all_changes", "follow_price_changes": false},
            "notification_urls": ["json://hook.example/restock"],
            "notification_body": "{{restock.in_stock}}|{{restock.price}}",
            "notification_format": "text",
        }))
        .await;
    app.run_checks().await;
    assert!(
        app.drain_notifications().await.is_empty(),
        "the first check is a baseline"
    );

    // The tag says stock is not news (the watch's own rules would notify)...
    let sent = step(&app, &srv, &uuid, product(false, "100.00")).await;
    assert!(sent.is_empty(), "{sent:?}");
    // ...and a 10 % drop is (the watch's own rules ignore prices).
    let sent = step(&app, &srv, &uuid, product(true, "90.00")).await;
    assert_eq!(sent, ["True|90.0"]);

    // The tag stops overriding: the watch's own rules again.
    let r = app
        .req(Method::PUT, &format!("/api/v1/tag/{tag}"))
        .json(&json!({"overrides_watch": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let sent = step(&app, &srv, &uuid, product(true, "80.00")).await;
    assert!(sent.is_empty(), "{sent:?}");
    let sent = step(&app, &srv, &uuid, product(false, "80.00")).await;
    assert_eq!(sent, ["False|80.0"]);

    // An overriding tag without rules of its own turns every rule off.
    let bare = create_tag(&app, json!({"title": "bare", "overrides_watch": true})).await;
    let r = app
        .req(Method::PUT, &format!("/api/v1/watch/{uuid}"))
        .json(&json!({"tags": [bare]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let sent = step(&app, &srv, &uuid, product(true, "40.00")).await;
    assert!(sent.is_empty(), "{sent:?}");
}

#[tokio::test]
async fn a_page_without_product_data_is_upstreams_error() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    srv.set(
        "/plain",
        Page::html("<html><body><p>No product here</p></body></html>"),
    );
    let uuid = app
        .create_watch(json!({"url": srv.url("/plain"), "processor": "restock_diff"}))
        .await;
    app.run_checks().await;
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    let err = w["last_error"].as_str().unwrap_or_default().to_string();
    assert!(
        err.starts_with(
            "Unable to extract restock data for this page unfortunately. (Got code 200"
        ),
        "{w}"
    );
}
