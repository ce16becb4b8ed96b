//! `changewatch serve` as a user runs it: the real binary on a free port, a temp data directory,
//! a local fixture server; then SIGTERM and restart, and kill -9 during a slow fetch.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use std::time::{Duration, Instant};

use common::{Api, Server};

use serde_json::json;
use testkit::{FixtureServer, Page};

#[test]
fn serve_checks_on_schedule_and_on_recheck() {
    let data = tempfile::tempdir().unwrap();
    let srv = FixtureServer::start();
    srv.set("/p", Page::html("<p>Price: 10</p>"));
    let server = Server::start(data.path(), Some("test-key-123"));
    // The server re-executed itself (same pid) with glibc's arenas limited.
    let environ = std::fs::read(format!("/proc/{}/environ", server.child.id())).unwrap();
    assert!(
        environ
            .split(|b| *b == 0)
            .any(|var| var == b"MALLOC_ARENA_MAX=2"),
        "MALLOC_ARENA_MAX=2 is in the server's environment"
    );
    let api = Api::new(&server.base, "test-key-123");
    let uuid = api.create(json!({"url": srv.url("/p")}));
    // The scheduler picks the new watch up by itself: the first check is the baseline.
    let w = api.wait_for(&uuid, "the first check", |w| w["history_n"] == 1);
    assert!(w["last_checked"].as_i64().unwrap() > 0);
    assert_eq!(w["last_changed"], 0);
    srv.set("/p", Page::html("<p>Price: 11</p>"));
    let (status, _) = api.get(&format!("/api/v1/watch/{uuid}?recheck=1"));
    assert_eq!(status, 200);
    let w = api.wait_for(&uuid, "the change", |w| w["history_n"] == 2);
    assert_eq!(w["last_changed"], w["last_checked"]);
    server.terminate();
}

#[test]
fn restart_keeps_watches_history_and_settings() {
    let data = tempfile::tempdir().unwrap();
    let srv = FixtureServer::start();
    srv.set("/p", Page::html("<p>kept</p>"));
    let server = Server::start(data.path(), None);
    let key = server.logged_api_key();
    let api = Api::new(&server.base, &key);
    let uuid = api.create(json!({"url": srv.url("/p"), "title": "Survivor"}));
    api.wait_for(&uuid, "the first check", |w| w["history_n"] == 1);
    server.terminate();

    // The key is logged only on the first start (attack_net.rs); it still opens the API.
    let server = Server::start(data.path(), None);
    let api = Api::new(&server.base, &key);
    let (status, w) = api.get(&format!("/api/v1/watch/{uuid}"));
    assert_eq!(status, 200);
    assert_eq!(w["title"], "Survivor");
    assert_eq!(w["history_n"], 1);
    server.terminate();
}

#[test]
fn kill_9_during_a_slow_fetch_then_restart_rechecks() {
    let data = tempfile::tempdir().unwrap();
    let srv = FixtureServer::start();
    srv.set(
        "/slow",
        Page::html("<p>finally</p>").delay(Duration::from_secs(30)),
    );
    let server = Server::start(data.path(), Some("k"));
    let api = Api::new(&server.base, "k");
    let uuid = api.create(json!({"url": srv.url("/slow")}));
    let deadline = Instant::now() + Duration::from_secs(20);
    while srv.hits("/slow") == 0 {
        assert!(Instant::now() < deadline, "the check never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    server.kill9();

    srv.set("/slow", Page::html("<p>finally</p>"));
    let server = Server::start(data.path(), Some("k"));
    let api = Api::new(&server.base, "k");
    let w = api.wait_for(&uuid, "the interrupted check to run again", |w| {
        w["history_n"] == 1
    });
    assert_eq!(w["last_error"], false);
    assert!(srv.hits("/slow") >= 2);
    server.terminate();
}

/// Listening beyond loopback without a dashboard password would hand the API key and the
/// password to the first visitor: `serve` refuses to start and says what to do. With a
/// password made by `changewatch hash-password` it starts, and the UI header alone opens
/// nothing.
#[test]
fn a_network_address_needs_a_dashboard_password() {
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_changewatch"))
        .args(["serve", "--host", "0.0.0.0", "--port", "0"])
        .env("DATASTORE_PATH", data.path())
        .env_remove("SALTED_PASS")
        .env_remove("CW_ALLOW_NO_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("without a dashboard password") && err.contains("hash-password"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing was served");

    let mut hasher = std::process::Command::new(env!("CARGO_BIN_EXE_changewatch"))
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    hasher
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let hashed = hasher.wait_with_output().unwrap();
    assert!(hashed.status.success());
    let hash = String::from_utf8(hashed.stdout).unwrap().trim().to_string();
    assert_eq!(hash.len(), 88, "{hash}");

    let server = Server::start_on(data.path(), "0.0.0.0", &[("SALTED_PASS", hash.as_str())]);
    let port = server.base.rsplit(':').next().unwrap().to_string();
    let local = format!("http://127.0.0.1:{port}");
    let client = reqwest::blocking::Client::new();
    let r = client
        .get(format!("{local}/ui/settings"))
        .header("x-changewatch-ui", "1")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "the UI header alone");
    let r = client
        .post(format!("{local}/ui/login"))
        .header("x-changewatch-ui", "1")
        .json(&json!({"password": "correct horse"}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "the hashed password logs in");
    server.terminate();
}
