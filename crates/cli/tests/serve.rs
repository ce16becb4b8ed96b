//! `changewatch serve` as a user runs it: the real binary on a free port, a temp data directory,
//! a local fixture server; then SIGTERM and restart, and kill -9 during a slow fetch.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::{FixtureServer, Page};

struct Server {
    child: Child,
    base: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(data: &Path, api_key: Option<&str>) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_changewatch"));
        cmd.args(["serve", "--host", "127.0.0.1", "--port", "0"])
            .env("DATASTORE_PATH", data)
            .env("ALLOW_PRIVATE_ADDRESSES", "true")
            .env("FETCH_WORKERS", "2")
            .env("LOG_LEVEL", "info")
            .env_remove("API_ACCESS_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(k) = api_key {
            cmd.env("API_ACCESS_TOKEN", k);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("changewatch listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line {line:?}; stderr: {:?}",
                    stderr.lock().unwrap()
                )
            })
            .to_string();
        std::thread::spawn(move || for _ in out.lines() {});
        Server {
            child,
            base,
            stderr,
        }
    }

    fn logged_api_key(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(k) = self.stderr.lock().unwrap().iter().find_map(|l| {
                l.split("API key (x-api-key header): ")
                    .nth(1)
                    .map(|k| k.trim().to_string())
            }) {
                return k;
            }
            assert!(Instant::now() < deadline, "the API key is logged at start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn terminate(mut self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "graceful shutdown exits 0, got {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Api {
    base: String,
    key: String,
    http: reqwest::blocking::Client,
}

impl Api {
    fn new(base: &str, key: &str) -> Api {
        Api {
            base: base.to_string(),
            key: key.to_string(),
            http: reqwest::blocking::Client::new(),
        }
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("x-api-key", &self.key)
            .send()
            .unwrap();
        (r.status().as_u16(), r.json().unwrap_or(Value::Null))
    }

    fn create(&self, body: Value) -> String {
        let r = self
            .http
            .post(format!("{}/api/v1/watch", self.base))
            .header("x-api-key", &self.key)
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        r.json::<Value>().unwrap()["uuid"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Polls a watch until `pred` holds (bounded: 30 s).
    fn wait_for(&self, uuid: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, w) = self.get(&format!("/api/v1/watch/{uuid}"));
            if pred(&w) {
                return w;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; watch is {w}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn serve_checks_on_schedule_and_on_recheck() {
    let data = tempfile::tempdir().unwrap();
    let srv = FixtureServer::start();
    srv.set("/p", Page::html("<p>Price: 10</p>"));
    let server = Server::start(data.path(), Some("test-key-123"));
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

    let server = Server::start(data.path(), None);
    assert_eq!(server.logged_api_key(), key, "the generated key is kept");
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
