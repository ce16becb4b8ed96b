//! Backup and restore as a user runs them: `changewatch backup` while `serve` runs on the
//! same data directory, the API download, `changewatch restore` into a fresh directory and
//! `POST /api/v1/backup` into a fresh server; the restored servers answer the API with the
//! same watches, history, snapshot texts, tags and settings (the API key among them). Also
//! `changewatch healthcheck`, the container image's HEALTHCHECK.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{Api, Server};
use serde_json::{Value, json};
use testkit::{FixtureServer, Page};

const KEY: &str = "backup-test-key";

fn changewatch(args: &[&str], data: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_changewatch"))
        .args(args)
        .env("DATASTORE_PATH", data)
        .env_remove("PORT")
        .env_remove("API_ACCESS_TOKEN")
        .output()
        .unwrap()
}

/// What a user sees through the API: each watch, its history and every snapshot's text, and
/// the tags.
fn everything(api: &Api) -> Value {
    let (status, list) = api.get("/api/v1/watch");
    assert_eq!(status, 200, "{list}");
    let mut watches = serde_json::Map::new();
    for uuid in list.as_object().unwrap().keys() {
        let (_, watch) = api.get(&format!("/api/v1/watch/{uuid}"));
        let (_, history) = api.get(&format!("/api/v1/watch/{uuid}/history"));
        let mut texts = serde_json::Map::new();
        for ts in history.as_object().unwrap().keys() {
            let r = api
                .http
                .get(format!("{}/api/v1/watch/{uuid}/history/{ts}", api.base))
                .header("x-api-key", &api.key)
                .send()
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            texts.insert(ts.clone(), json!(r.text().unwrap()));
        }
        watches.insert(
            uuid.clone(),
            json!({"watch": watch, "history": history, "texts": texts}),
        );
    }
    let (_, tags) = api.get("/api/v1/tags");
    json!({"watches": watches, "tags": tags})
}

fn download(api: &Api) -> Vec<u8> {
    let r = api
        .http
        .get(format!("{}/api/v1/backup", api.base))
        .header("x-api-key", &api.key)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"changewatch-backup-")
            && disposition.ends_with(".jsonl.zst\""),
        "{disposition}"
    );
    r.bytes().unwrap().to_vec()
}

fn upload(api: &Api, body: Vec<u8>, query: &str) -> (u16, Value) {
    let r = api
        .http
        .post(format!("{}/api/v1/backup{query}", api.base))
        .header("x-api-key", &api.key)
        .body(body)
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

#[test]
fn a_backup_taken_while_serving_restores_the_same_instance() {
    let srv = FixtureServer::start();
    srv.set("/a", Page::html("<p>Price: 10</p>"));
    srv.set("/b", Page::html("<p>Stock: none</p>"));
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), Some(KEY));
    let api = Api::new(&server.base, KEY);
    let r = api
        .http
        .post(format!("{}/api/v1/tag", api.base))
        .header("x-api-key", KEY)
        .json(&json!({"title": "shops"}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let a = api.create(json!({"url": srv.url("/a"), "title": "A", "tag": "shops"}));
    let b = api.create(json!({"url": srv.url("/b"), "paused": true}));
    api.wait_for(&a, "the first check", |w| w["history_n"] == 1);
    srv.set("/a", Page::html("<p>Price: 12</p>"));
    api.get(&format!("/api/v1/watch/{a}?recheck=1"));
    api.wait_for(&a, "the change", |w| w["history_n"] == 2);
    let before = everything(&api);
    assert_eq!(before["watches"].as_object().unwrap().len(), 2);
    assert!(before["watches"][&b].is_object());

    // The backup needs the key like the rest of API v1.
    let r = api
        .http
        .get(format!("{}/api/v1/backup", api.base))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    // `changewatch backup` on the directory the server is using, and the API download.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cw.jsonl.zst");
    let out = changewatch(&["backup", file.to_str().unwrap()], data.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        said.contains("backed up 2 watches, 2 snapshots, 1 tags"),
        "{said}"
    );
    assert!(!dir.path().join("cw.jsonl.zst.partial").exists());
    let downloaded = download(&api);
    server.terminate();

    // Restored into a fresh directory: the server that opens it has the backup's key.
    let fresh = tempfile::tempdir().unwrap();
    let out = changewatch(&["restore", file.to_str().unwrap()], fresh.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        said.contains("restored 2 watches, 2 snapshots, 1 tags"),
        "{said}"
    );
    assert!(said.contains("in embedded mode"), "{said}");
    // Not a second time over it without --force.
    let out = changewatch(&["restore", file.to_str().unwrap()], fresh.path());
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("the datastore is not empty (2 watches, 1 tags)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = Server::start(fresh.path(), None);
    let api2 = Api::new(&restored.base, KEY);
    assert_eq!(everything(&api2), before);
    restored.terminate();

    // The downloaded file through the API of a new server, whose own key opens it until the
    // backup's settings replace it.
    let third = tempfile::tempdir().unwrap();
    let server3 = Server::start(third.path(), Some("another-key"));
    let api3 = Api::new(&server3.base, "another-key");
    let (status, body) = upload(&api3, downloaded.clone(), "?force=maybe");
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("Validation failed: force: not a boolean"))
    );
    let (status, body) = upload(&api3, b"not a backup".to_vec(), "");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("not a changewatch backup"),
        "{body}"
    );
    let (status, body) = upload(&api3, downloaded.clone(), "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["restored"]["watches"], 2);
    assert_eq!(body["backup"]["source_mode"], "embedded");
    assert_eq!(body["backup"]["consistent"], true);
    let api3 = Api::new(&server3.base, KEY);
    assert_eq!(everything(&api3), before);
    let (status, body) = upload(&api3, downloaded.clone(), "");
    assert_eq!(status, 409, "{body}");
    let (status, body) = upload(&api3, downloaded, "?force=true");
    assert_eq!((status, &body["replaced"]), (200, &json!(3)), "{body}");
    assert_eq!(everything(&api3), before);
    server3.terminate();
}

#[test]
fn restore_refuses_what_is_not_a_backup_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.zst");
    std::fs::write(&bogus, b"{\"type\": \"manifest\"}\n").unwrap();
    let data = dir.path().join("data");
    let out = changewatch(&["restore", bogus.to_str().unwrap()], &data);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("not a changewatch backup: it is not a zstd stream"),
        "{said}"
    );
    let out = changewatch(
        &["backup", dir.path().join("x").to_str().unwrap()],
        &dir.path().join("none"),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no datastore at"));
    assert!(!dir.path().join("x").exists() && !dir.path().join("x.partial").exists());
}

#[test]
fn healthcheck_asks_the_local_server() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), Some(KEY));
    let port = server.base.rsplit(':').next().unwrap().to_string();
    let r = reqwest::blocking::get(format!("{}/healthz", server.base)).unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.json::<Value>().unwrap(),
        json!({"status": "healthy", "workers": 2})
    );
    let out = changewatch(&["healthcheck", "--port", &port], data.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // PORT, as upstream's image names it, is read too.
    let out = Command::new(env!("CARGO_BIN_EXE_changewatch"))
        .arg("healthcheck")
        .env("PORT", &port)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.terminate();
    let out = changewatch(&["healthcheck", "--port", &port], data.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect to 127.0.0.1:"));
}
