//! Hostile filters and templates against the real `changewatch serve`: each costs its own watch
//! an error, never the server, its workers or its shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use std::time::{Duration, Instant};

use common::{Api, Server};
use serde_json::{Value, json};
use testkit::capture::CaptureServer;
use testkit::{FixtureServer, Page};

fn error_of(w: &Value) -> String {
    w["last_error"].as_str().unwrap_or_default().to_string()
}

#[test]
fn hostile_jq_filters_cost_their_watch_not_the_server() {
    let data = tempfile::tempdir().unwrap();
    let srv = FixtureServer::start();
    srv.set("/j", Page::json(r#"{"price": 10, "items": [1, 2, 3]}"#));
    srv.set("/p", Page::html("<p>Price: 10</p>"));
    let server = Server::start_with(
        data.path(),
        Some("k"),
        &[
            ("CW_SANDBOX_TIMEOUT_SECS", "3"),
            ("CW_SANDBOX_MEMORY_MB", "256"),
        ],
    );
    let api = Api::new(&server.base, "k");
    let hostile = [
        ("jq:def f: 1 + f; f", "ran out of stack"),
        ("jq:last(range(1e15))", "took longer than 3 seconds"),
        ("jq:last(repeat(1))", "took longer than 3 seconds"),
        (
            r#"jq:[limit(99999; repeat("x" * 100000))]"#,
            "more than 256 MB",
        ),
    ];
    // More hostile watches than workers (FETCH_WORKERS=2): a wedged pool would never get
    // to the ordinary watch created last.
    let uuids: Vec<(String, &str)> = hostile
        .iter()
        .map(|(filter, expect)| {
            let uuid = api.create(json!({"url": srv.url("/j"), "include_filters": [filter]}));
            (uuid, *expect)
        })
        .collect();
    let ordinary = api.create(json!({"url": srv.url("/p")}));
    for (uuid, expect) in &uuids {
        let w = api.wait_for(uuid, expect, |w| error_of(w).contains(expect));
        assert!(error_of(&w).starts_with("Exception: "), "{w}");
        assert_eq!(w["history_n"], 0, "no snapshot from a failed check");
    }
    api.wait_for(&ordinary, "the ordinary check", |w| w["history_n"] == 1);

    // Workers are free: a change on the ordinary watch is still found at once.
    srv.set("/p", Page::html("<p>Price: 11</p>"));
    let (status, _) = api.get(&format!("/api/v1/watch/{ordinary}?recheck=1"));
    assert_eq!(status, 200);
    api.wait_for(&ordinary, "the change", |w| w["history_n"] == 2);
    let (status, health) = api.get("/worker-health");
    assert_eq!(status, 200, "{health}");

    // Rechecking a hostile watch fails the same way again (no loop, no crash).
    let (uuid, expect) = &uuids[0];
    let before = api.get(&format!("/api/v1/watch/{uuid}")).1["check_count"]
        .as_i64()
        .unwrap();
    api.get(&format!("/api/v1/watch/{uuid}?recheck=1"));
    api.wait_for(uuid, "the second failed check", |w| {
        w["check_count"].as_i64().unwrap() > before && error_of(w).contains(expect)
    });
    server.terminate();
}

#[test]
fn sigterm_stops_the_server_while_a_check_spins() {
    let data = tempfile::tempdir().unwrap();
    let srv = FixtureServer::start();
    srv.set("/j", Page::json(r#"{"a": 1}"#));
    // The deadline is far away: only shutdown can end this check.
    let server = Server::start_with(
        data.path(),
        Some("k"),
        &[("CW_SANDBOX_TIMEOUT_SECS", "600")],
    );
    let api = Api::new(&server.base, "k");
    let uuid =
        api.create(json!({"url": srv.url("/j"), "include_filters": ["jq:last(range(1e15))"]}));
    // Wait until the check is running (the fetch happened), then stop the server.
    let deadline = Instant::now() + Duration::from_secs(30);
    while srv.hits("/j") == 0 {
        assert!(Instant::now() < deadline, "the check never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = uuid;
    // `terminate` fails the test unless the process exits 0 within 20 s.
    server.terminate();
}

#[test]
fn a_notification_template_asking_for_gigabytes_fails_the_notification_only() {
    let data = tempfile::tempdir().unwrap();
    let srv = FixtureServer::start();
    let cap = CaptureServer::start();
    let server = Server::start_with(data.path(), Some("k"), &[("CW_SANDBOX_MEMORY_MB", "256")]);
    let api = Api::new(&server.base, "k");
    srv.set("/p", Page::text("Price: 10\n"));
    let bomb = r#"{% set a = "x" * 100000000 %}{% set a = a ~ a %}{% set a = a ~ a %}{% set a = a ~ a %}{{ a }}"#;
    // Saving validates the template as the test send does, by rendering it against example
    // values in the sandbox: this one is refused there, naming the field and the budget.
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/watch", server.base))
        .header("x-api-key", "k")
        .json(&json!({"url": srv.url("/p"), "notification_body": bomb}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let text = r.text().unwrap();
    assert!(
        text.contains("notification_body") && text.contains("more than 256 MB"),
        "{text}"
    );
    // One that behaves with the example values and explodes only with the real watch's
    // passes that check: its notification fails, nothing else does.
    // (Built from the title: a constant expression would be folded when the template
    // compiles, and so refused at save like the one above.)
    let bomb = r#"{% if watch_title == "bomb me" %}{% set a = watch_title * 10000000 %}{% set a = a ~ a %}{% set a = a ~ a %}{% set a = a ~ a %}{{ a }}{% endif %}changed"#;
    let uuid = api.create(json!({
        "title": "bomb me",
        "url": srv.url("/p"),
        "notification_urls": [format!("json://{}/hook", cap.host_port())],
        "notification_format": "text",
        "notification_body": bomb,
    }));
    api.wait_for(&uuid, "the first check", |w| w["history_n"] == 1);
    srv.set("/p", Page::text("Price: 12\n"));
    api.get(&format!("/api/v1/watch/{uuid}?recheck=1"));
    let w = api.wait_for(&uuid, "the notification error", |w| {
        w["last_notification_error"].is_string()
    });
    assert_eq!(w["history_n"], 2, "the change itself is recorded");
    let (_, log) = api.get("/api/v1/notifications/log");
    let text = log.to_string();
    assert!(text.contains("more than 256 MB"), "{log}");
    assert!(cap.requests().is_empty(), "nothing half-rendered is sent");

    // The server still renders ordinary notifications.
    let (status, reply) = api.get("/api/v1/systeminfo");
    assert_eq!(status, 200, "{reply}");
    server.terminate();
}

/// A check that dies with the process (simulated with kill -9 during its fetch) runs again
/// after one crash, but not after a second in a row: the watch is paused with an error.
#[test]
fn a_check_that_keeps_killing_the_server_is_paused_not_rerun_forever() {
    let data = tempfile::tempdir().unwrap();
    let srv = FixtureServer::start();
    srv.set(
        "/slow",
        Page::html("<p>never</p>").delay(Duration::from_secs(60)),
    );
    let wait_hits = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while srv.hits("/slow") < n {
            assert!(Instant::now() < deadline, "check {n} never started");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let server = Server::start(data.path(), Some("k"));
    let uuid = Api::new(&server.base, "k").create(json!({"url": srv.url("/slow")}));
    wait_hits(1);
    server.kill9();
    // First crash: the interrupted check runs again.
    let server = Server::start(data.path(), Some("k"));
    wait_hits(2);
    server.kill9();
    // Second crash in a row: paused with an error, not fetched again.
    let server = Server::start(data.path(), Some("k"));
    let api = Api::new(&server.base, "k");
    let (_, w) = api.get(&format!("/api/v1/watch/{uuid}"));
    assert_eq!(w["paused"], true, "{w}");
    assert!(error_of(&w).contains("interrupted"), "{w}");
    // Give the scheduler a few ticks: a paused watch must not be checked.
    let (_, _) = api.get("/api/v1/systeminfo");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(srv.hits("/slow"), 2);
    // Unpausing brings it back (a fresh count).
    srv.set("/slow", Page::html("<p>fine now</p>"));
    let (status, _) = api.get(&format!("/api/v1/watch/{uuid}?paused=unpaused"));
    assert_eq!(status, 200);
    api.wait_for(&uuid, "the check after unpausing", |w| w["history_n"] == 1);
    server.terminate();
}
