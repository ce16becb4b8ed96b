//! The restock_diff processor end to end (issue #14): a product page goes in stock, out, back
//! in, and its price moves below and above the watch's thresholds; the notifications queued
//! are counted off the real SQLite outbox and carry the `{{restock.*}}` tokens.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::time::Duration;

use changewatch_store::{NotificationJob, NotificationQueue};
use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::json;
use testkit::{FixtureServer, Page};

async fn drain(app: &TestApp) -> Vec<NotificationJob> {
    let got = app
        .store
        .receive(100, Duration::from_secs(60))
        .await
        .unwrap();
    for r in &got {
        app.store.ack(&r.receipt).await.unwrap();
    }
    got.into_iter().map(|r| r.job).collect()
}

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
    drain(app).await.into_iter().map(|j| j.body).collect()
}

#[tokio::test]
async fn stock_and_price_moves_notify_by_the_restock_rules() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    srv.set("/kettle", product(true, "100.00"));
    let uuid = app
        .create_watch(json!({
            "url": srv.url("/kettle"),
            "processor": "restock_diff",
            "processor_config_restock_diff": {
                "in_stock_processing": "in_stock_only",
                "follow_price_changes": true,
                "price_change_threshold_percent": 5,
            },
            "notification_urls": ["json://hook.example/restock"],
            "notification_body": "{{restock.in_stock}}|{{restock.price}}|{{restock.previous_price}}",
            "notification_format": "text",
        }))
        .await;
    app.run_checks().await;
    assert!(
        drain(&app).await.is_empty(),
        "the first check is a baseline"
    );
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["processor"], "restock_diff");
    assert_eq!(w["last_error"], false, "{w}");
    assert_eq!(
        w["processor_config_restock_diff"]["price_change_threshold_percent"],
        5.0
    );

    // In stock -> out of stock is not news under in_stock_only.
    let sent = step(&app, &srv, &uuid, product(false, "100.00")).await;
    assert!(sent.is_empty(), "{sent:?}");
    // Back in stock is.
    let sent = step(&app, &srv, &uuid, product(true, "100.00")).await;
    assert_eq!(sent, vec!["True|100.0|100.0".to_string()]);
    // A 2% move is inside the 5% threshold.
    let sent = step(&app, &srv, &uuid, product(true, "102.00")).await;
    assert!(sent.is_empty(), "{sent:?}");
    // An 11.8% drop is not.
    let sent = step(&app, &srv, &uuid, product(true, "90.00")).await;
    assert_eq!(sent, vec!["True|90.0|100.0".to_string()]);

    // Limits: a price inside [50, 150] is not reported, one below is.
    let r = app
        .req(Method::PUT, &format!("/api/v1/watch/{uuid}"))
        .json(&json!({"processor_config_restock_diff": {
            "in_stock_processing": "in_stock_only", "follow_price_changes": true,
            "price_change_min": 50, "price_change_max": 150}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let sent = step(&app, &srv, &uuid, product(true, "70.00")).await;
    assert!(sent.is_empty(), "{sent:?}");
    let sent = step(&app, &srv, &uuid, product(true, "40.00")).await;
    assert_eq!(sent, vec!["True|40.0|90.0".to_string()]);

    // Three notifications in all: back in stock, the drop past 5%, the drop below 50.
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["notification_alert_count"], 3, "{w}");
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
