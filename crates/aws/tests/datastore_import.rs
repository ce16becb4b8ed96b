//! Upstream's backup zip uploaded to AWS mode's API (`POST /api/v1/import/datastore` as an HTTP
//! API event, the zip base64-encoded as API Gateway delivers binary bodies) lands in DynamoDB
//! through the same store port as in embedded mode, history timestamps included; against
//! moto. (What upstream writes and the mapping's edges are tested in crates/cli and
//! crates/api.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use std::io::Write;

use changewatch_aws::{Clients, api};
use changewatch_sandbox::Sandbox;
use changewatch_store::aws::provision::provision;
use changewatch_store::{Key, WatchStore};
use serde_json::{Value, json};
use testkit::moto::MotoServer;

const KEY: &str = "import-key";
const W1: &str = "6a0e7f43-2b1c-4d55-9b1e-3f0a2c1d4e5f";
const T1: &str = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a";

fn backup_zip() -> Vec<u8> {
    let files: Vec<(String, Vec<u8>)> = vec![
        (
            "changedetection.json".into(),
            json!({"settings": {"application": {
                "api_access_token": "upstream-key",
                "notification_urls": ["json://127.0.0.1:9/all"],
                "tags": {}
            }}})
            .to_string()
            .into_bytes(),
        ),
        (
            format!("{T1}/tag.json"),
            json!({"uuid": T1, "title": "Shop"})
                .to_string()
                .into_bytes(),
        ),
        (
            format!("{W1}/watch.json"),
            json!({"uuid": W1, "url": "http://127.0.0.1:9/page", "title": "One",
                "tags": [T1], "last_checked": 1_700_000_300})
            .to_string()
            .into_bytes(),
        ),
        (
            format!("{W1}/history.txt"),
            b"1700000100,a.txt\n1700000200,b.txt\n1700000300,c.txt\n".to_vec(),
        ),
        (format!("{W1}/a.txt"), b"first".to_vec()),
        (format!("{W1}/b.txt"), b"second".to_vec()),
        (format!("{W1}/c.txt"), b"third".to_vec()),
    ];
    let mut out = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut out);
    for (name, bytes) in files {
        z.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(&bytes).unwrap();
    }
    z.finish().unwrap();
    out.into_inner()
}

async fn call(app: &axum::Router, event: String) -> (u16, Value, String) {
    let (status, bytes) = common::call(app, event).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        String::from_utf8_lossy(&bytes).to_string(),
    )
}

fn event(method: &str, path: &str, query: &str, body: Option<&[u8]>) -> String {
    common::http_event(method, path, query, "application/zip", Some(KEY), body)
}

#[tokio::test]
async fn a_backup_zip_uploaded_to_aws_mode_lands_in_dynamodb() {
    let moto = MotoServer::shared();
    let clients = Clients::from_conf(&moto.sdk_config().await);
    let prefix = testkit::moto::unique_prefix("im");
    let p = provision(&clients.dynamodb, &clients.sqs, &prefix, 2, 30, 3)
        .await
        .unwrap();
    let config = common::stack_config(&p, &[("API_ACCESS_TOKEN", KEY)]);
    let app = api::app(&clients, &config, Sandbox::in_process())
        .await
        .unwrap();
    let zip = backup_zip();

    let (status, report, _) = call(
        &app,
        event(
            "POST",
            "/api/v1/import/datastore",
            "dry_run=true",
            Some(&zip),
        ),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["snapshots"]["added"], 3, "{report}");
    let (_, list, _) = call(&app, event("GET", "/api/v1/watch", "", None)).await;
    assert_eq!(list, json!({}), "a dry run wrote nothing");

    let (status, report, _) = call(
        &app,
        event("POST", "/api/v1/import/datastore", "", Some(&zip)),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["watches"]["added"], 1, "{report}");
    assert_eq!(report["snapshots"]["added"], 3, "{report}");

    let store = clients.store(&config);
    let key = Key::watch(&config.tenant, W1);
    assert_eq!(
        store.snapshots(&key).await.unwrap(),
        vec![1_700_000_100, 1_700_000_200, 1_700_000_300]
    );
    let (status, w, _) = call(&app, event("GET", &format!("/api/v1/watch/{W1}"), "", None)).await;
    assert_eq!(status, 200, "{w}");
    assert_eq!(w["title"], "One");
    assert_eq!(w["tags"], json!([T1]));
    assert_eq!(w["history_n"], 3);
    assert_eq!(w["last_changed"], 1_700_000_300);
    let (_, text, raw) = call(
        &app,
        event(
            "GET",
            &format!("/api/v1/watch/{W1}/history/1700000200"),
            "",
            None,
        ),
    )
    .await;
    assert_eq!(raw, "second", "{text}");
    let (_, tags, _) = call(&app, event("GET", "/api/v1/tags", "", None)).await;
    assert_eq!(tags[T1]["title"], "Shop");
    let (_, n, _) = call(&app, event("GET", "/api/v1/notifications", "", None)).await;
    assert_eq!(n["notification_urls"], json!(["json://127.0.0.1:9/all"]));

    // Again: nothing changes, and the deployment's key stayed in force throughout.
    let (status, again, _) = call(
        &app,
        event("POST", "/api/v1/import/datastore", "", Some(&zip)),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["settings"], "unchanged", "{again}");
    assert_eq!(again["watches"]["present"], 1);
    assert_eq!(again["snapshots"]["added"], 0);
}

/// A datastore too large for API Gateway goes in with `changewatch-aws-admin` from the
/// operator's machine: the real binary, configured like the functions (resource names in
/// `CW_*`, the SDK's endpoint, region and credentials from the environment), into DynamoDB.
#[tokio::test]
async fn the_admin_command_imports_a_datastore_into_the_stack() {
    let moto = MotoServer::shared();
    let clients = Clients::from_conf(&moto.sdk_config().await);
    let prefix = testkit::moto::unique_prefix("ia");
    let p = provision(&clients.dynamodb, &clients.sqs, &prefix, 2, 30, 3)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("backup.zip");
    std::fs::write(&zip_path, backup_zip()).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_changewatch-aws-admin"))
            .args(args)
            .env("AWS_ENDPOINT_URL", &moto.endpoint)
            .env("AWS_REGION", testkit::moto::REGION)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("CW_WATCHES_TABLE", &p.resources.watches_table)
            .env("CW_SNAPSHOTS_TABLE", &p.resources.snapshots_table)
            .env("CW_CHECKS_QUEUE_URL", &p.resources.checks_queue_url)
            .env("CW_RECHECKS_QUEUE_URL", &p.resources.rechecks_queue_url)
            .env("CW_TENANT", "ops")
            .output()
            .unwrap()
    };
    let zip = zip_path.to_str().unwrap();
    let out = run(&["import-datastore", zip, "--dry-run", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["dry_run"], true, "{report}");
    let key = Key::watch("ops", W1);
    let store = clients.store(&common::stack_config(&p, &[]));
    assert!(
        store.get(&key).await.unwrap().is_none(),
        "a dry run writes nothing"
    );

    let out = run(&["import-datastore", zip]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("watches: imported 1"), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("import-datastore: 1/1 watches"),
        "progress on stderr"
    );
    assert!(store.get(&key).await.unwrap().is_some());
    assert_eq!(
        store.snapshots(&key).await.unwrap(),
        vec![1_700_000_100, 1_700_000_200, 1_700_000_300]
    );
    // A second run changes nothing.
    let out = run(&["import-datastore", zip]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(": nothing to change"), "{text}");
}
