//! Notifications end to end in embedded mode: the real `changewatch serve`, a fixture page that
//! changes, and a capturing HTTP receiver that fails on purpose.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use std::time::{Duration, Instant};

use common::{Api, Server};
use serde_json::{Value, json};
use testkit::capture::{CaptureServer, Captured};
use testkit::{FixtureServer, Page};

/// Polls until `pred` holds for the receiver's requests (bounded: 30 s).
fn wait_requests(
    cap: &CaptureServer,
    what: &str,
    pred: impl Fn(&[Captured]) -> bool,
) -> Vec<Captured> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = cap.requests();
        if pred(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; receiver saw {} requests",
            seen.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn log(api: &Api) -> Vec<Value> {
    let (status, v) = api.get("/api/v1/notifications/log");
    assert_eq!(status, 200, "{v}");
    v["log"].as_array().unwrap().clone()
}

fn post(api: &Api, path: &str, body: Value) -> (u16, Value) {
    let r = api
        .http
        .post(format!("{}{path}", api.base))
        .header("x-api-key", &api.key)
        .json(&body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A watch notifying `hook`, checked once (the baseline, which never notifies), then changed
/// and rechecked.
fn watch_then_change(api: &Api, srv: &FixtureServer, hook: &str) -> String {
    srv.set("/p", Page::text("Price: 10\nStock: yes\n"));
    let uuid = api.create(json!({
        "url": srv.url("/p"),
        "title": "Shop",
        "notification_urls": [hook],
        "notification_format": "text",
        "notification_title": "{{watch_title}} changed",
        "notification_body": "{{watch_url}}\n{{diff}}",
    }));
    api.wait_for(&uuid, "the first check", |w| {
        w["last_checked"].as_i64().unwrap_or(0) > 0 && w["history_n"] == 1
    });
    srv.set("/p", Page::text("Price: 12\nStock: yes\n"));
    let (status, _) = api.get(&format!("/api/v1/watch/{uuid}?recheck=1"));
    assert_eq!(status, 200);
    api.wait_for(&uuid, "the change", |w| w["history_n"] == 2);
    uuid
}

#[test]
fn a_change_is_delivered_once_after_two_failed_tries() {
    let data = tempfile::tempdir().unwrap();
    let srv = FixtureServer::start();
    let cap = CaptureServer::start();
    cap.fail_next(2, 503);
    let server = Server::start_with(
        data.path(),
        Some("k"),
        &[("NOTIFICATION_RETRY_DELAY_SECS", "1")],
    );
    let api = Api::new(&server.base, "k");
    let hook = format!("json://{}/hook", cap.host_port());
    let uuid = watch_then_change(&api, &srv, &hook);

    let seen = wait_requests(&cap, "three tries", |s| s.len() >= 3);
    // Nothing more arrives: the third try was accepted.
    std::thread::sleep(Duration::from_secs(3));
    let seen_after = cap.requests();
    assert_eq!(seen_after.len(), 3, "delivered once, after two failures");
    for r in &seen {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/hook");
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("application/json")
        );
        let body = r.json();
        assert_eq!(body["title"], "Shop changed");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(&srv.url("/p")), "{message}");
        assert!(message.contains("(changed) Price: 10"), "{message}");
        assert!(message.contains("(into) Price: 12"), "{message}");
    }

    let w = api.wait_for(&uuid, "the alert count", |w| {
        w["notification_alert_count"] == 1
    });
    assert!(
        w["last_notification_error"].is_null() || w["last_notification_error"] == false,
        "{w}"
    );
    let entries = log(&api);
    let outcomes: Vec<&str> = entries
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["sent", "retrying", "retrying"], "{entries:?}");
    assert_eq!(entries[0]["attempt"], 3);
    assert_eq!(entries[0]["watch_uuid"], uuid.as_str());
    assert!(
        entries[1]["message"].as_str().unwrap().contains("503"),
        "{entries:?}"
    );
    server.terminate();
}

#[test]
fn a_receiver_that_never_accepts_is_recorded_and_the_check_is_unaffected() {
    let data = tempfile::tempdir().unwrap();
    let srv = FixtureServer::start();
    let cap = CaptureServer::start();
    cap.reply("/", 500, "text/plain", "down for maintenance");
    let server = Server::start_with(
        data.path(),
        Some("k"),
        &[
            ("NOTIFICATION_RETRY_DELAY_SECS", "1"),
            ("NOTIFICATION_MAX_ATTEMPTS", "2"),
        ],
    );
    let api = Api::new(&server.base, "k");
    let hook = format!("post://{}/never", cap.host_port());
    let uuid = watch_then_change(&api, &srv, &hook);

    let w = api.wait_for(&uuid, "the notification error", |w| {
        w["last_notification_error"] == "Notification error detected, goto notification log."
    });
    // The check itself went fine and stored the change.
    assert_eq!(w["last_error"], false, "{w}");
    assert_eq!(w["history_n"], 2);
    assert_eq!(
        cap.requests().len(),
        2,
        "tried exactly NOTIFICATION_MAX_ATTEMPTS times"
    );
    let entries = log(&api);
    assert_eq!(entries[0]["outcome"], "failed", "{entries:?}");
    assert_eq!(entries[0]["attempt"], 2);
    assert!(
        entries[0]["message"].as_str().unwrap().contains("500"),
        "{entries:?}"
    );
    // `post://` sends the body as is, not apprise's JSON envelope.
    let r = &cap.requests()[0];
    assert_eq!(r.method, "POST");
    assert!(
        r.body_text().contains("(into) Price: 12"),
        "{}",
        r.body_text()
    );
    server.terminate();

    // Settled as a dead letter: out of the outbox, kept with its reason.
    let store = changewatch_store::sqlite::SqliteStore::open_dir(data.path()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    use changewatch_store::NotificationQueue;
    assert_eq!(rt.block_on(store.depth()).unwrap(), 0);
    assert_eq!(rt.block_on(store.dead_letter_depth()).unwrap(), 1);
}

#[test]
fn queued_notifications_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let srv = FixtureServer::start();
    let cap = CaptureServer::start();
    cap.fail_next(1, 503);
    let env = [("NOTIFICATION_RETRY_DELAY_SECS", "4")];
    let server = Server::start_with(data.path(), Some("k"), &env);
    let api = Api::new(&server.base, "k");
    let hook = format!("json://{}/hook", cap.host_port());
    watch_then_change(&api, &srv, &hook);
    wait_requests(&cap, "the first (failed) try", |s| !s.is_empty());
    // Stopped while the retry waits in the outbox.
    server.terminate();
    assert_eq!(cap.requests().len(), 1);

    let server = Server::start_with(data.path(), Some("k"), &env);
    let api = Api::new(&server.base, "k");
    let seen = wait_requests(&cap, "the retry after the restart", |s| s.len() >= 2);
    assert_eq!(seen[0].body, seen[1].body, "the same notification, retried");
    let entries = log(&api);
    assert_eq!(entries[0]["outcome"], "sent", "{entries:?}");
    assert_eq!(entries[0]["attempt"], 2);
    server.terminate();
}

#[test]
fn send_test_notification() {
    let data = tempfile::tempdir().unwrap();
    let cap = CaptureServer::start();
    let server = Server::start(data.path(), Some("k"));
    let api = Api::new(&server.base, "k");

    let hook = format!("json://{}/test", cap.host_port());
    let (status, v) = post(
        &api,
        "/api/v1/notifications/test",
        json!({"notification_urls": [hook], "notification_format": "text"}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    let r = wait_requests(&cap, "the test notification", |s| !s.is_empty());
    let body = r[0].json();
    // Upstream's default title, rendered; the example diff stands in for a real one.
    assert!(
        body["title"]
            .as_str()
            .unwrap()
            .starts_with("ChangeDetection.io Notification"),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("fantastic"),
        "{body}"
    );

    let (status, v) = post(
        &api,
        "/api/v1/notifications/test",
        json!({"notification_urls": ["foo://bar"]}),
    );
    assert_eq!(status, 400);
    assert_eq!(v, "'foo://bar' is not a valid AppRise URL.");

    cap.fail_next(1, 500);
    let (status, v) = post(
        &api,
        "/api/v1/notifications/test",
        json!({"notification_urls": [format!("json://{}/x", cap.host_port())]}),
    );
    assert_eq!(status, 200);
    assert_eq!(v["ok"], false, "{v}");
    assert!(
        v["results"][0]["error"].as_str().unwrap().contains("500"),
        "{v}"
    );

    let (status, v) = post(&api, "/api/v1/notifications/test", json!({}));
    assert_eq!(status, 400, "no URLs anywhere: {v}");
    let entries = log(&api);
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0]["kind"], "test");
    server.terminate();
}

/// A product page as a shop renders one: JSON-LD in a `@graph`, the offer's price and stock.
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

/// The restock_diff processor as a user runs it (issue #14): a product goes out of stock, back
/// in, and its price moves inside and past the watch's thresholds; what a real receiver gets
/// is counted after every step.
#[test]
fn restock_moves_arrive_at_a_receiver_by_the_restock_rules() {
    let data = tempfile::tempdir().unwrap();
    let srv = FixtureServer::start();
    let cap = CaptureServer::start();
    let server = Server::start(data.path(), Some("k"));
    let api = Api::new(&server.base, "k");
    srv.set("/kettle", product(true, "100.00"));
    let uuid = api.create(json!({
        "url": srv.url("/kettle"),
        "processor": "restock_diff",
        "processor_config_restock_diff": {
            "in_stock_processing": "in_stock_only",
            "follow_price_changes": true,
            "price_change_threshold_percent": 5,
        },
        "notification_urls": [format!("json://{}/restock", cap.host_port())],
        "notification_title": "{{watch_title}}",
        "notification_body": "{{restock.in_stock}}|{{restock.price}}|{{restock.previous_price}}",
        "notification_format": "text",
    }));
    let w = api.wait_for(&uuid, "the baseline", |w| w["history_n"] == 1);
    assert_eq!(w["last_error"], false, "{w}");

    // A step that the rules do not make news records no snapshot: count checks instead.
    let mut checks = w["check_count"].as_i64().unwrap();
    // Deliveries are asynchronous: a step waits for its check, then for the receiver to hold
    // `total` requests. A step that should not notify is proven by the exact lists that follow
    // and by the quiet wait at the end.
    let mut step = |page: Page, total: usize| -> Vec<String> {
        srv.set("/kettle", page);
        let (status, _) = api.get(&format!("/api/v1/watch/{uuid}?recheck=1"));
        assert_eq!(status, 200);
        checks += 1;
        api.wait_for(&uuid, "the step's check", |w| w["check_count"] == checks);
        wait_requests(&cap, "the step's notifications", |s| s.len() >= total)
            .iter()
            .map(|r| r.json()["message"].as_str().unwrap().trim().to_string())
            .collect()
    };

    // In stock -> out of stock is not news under in_stock_only; back in stock is.
    step(product(false, "100.00"), 0);
    assert_eq!(step(product(true, "100.00"), 1), ["True|100.0|100.0"]);
    // A 2 % move is inside the 5 % threshold; an 11.8 % drop is not.
    step(product(true, "102.00"), 1);
    assert_eq!(
        step(product(true, "90.00"), 2),
        ["True|100.0|100.0", "True|90.0|100.0"]
    );

    // Limits instead: a price inside [50, 150] is not reported, one below is.
    let r = api
        .http
        .put(format!("{}/api/v1/watch/{uuid}", api.base))
        .header("x-api-key", "k")
        .json(&json!({"processor_config_restock_diff": {
            "in_stock_processing": "in_stock_only", "follow_price_changes": true,
            "price_change_min": 50, "price_change_max": 150}}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    step(product(true, "70.00"), 2);
    step(product(true, "40.00"), 3);
    // Nothing more arrives.
    std::thread::sleep(Duration::from_secs(2));
    let seen: Vec<String> = cap
        .requests()
        .iter()
        .map(|r| r.json()["message"].as_str().unwrap().trim().to_string())
        .collect();
    assert_eq!(
        seen,
        ["True|100.0|100.0", "True|90.0|100.0", "True|40.0|90.0"]
    );
    assert_eq!(cap.requests()[0].json()["title"], "Kettle");
    let w = api.wait_for(&uuid, "the alert count", |w| {
        w["notification_alert_count"] == 3
    });
    assert!(w["last_notification_error"].is_null() || w["last_notification_error"] == false);
    server.terminate();
}
