//! AWS mode's backups through its API (the Lambda's own router, HTTP API events) against moto:
//! `GET /api/v1/backup` reads the tenant's DynamoDB items through the store port (the same
//! format as embedded mode, `source_mode: aws`, not of one moment), and `POST /api/v1/backup`
//! restores it into another tenant with the same watches, history and settings.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use changewatch_aws::{AwsConfig, Clients, api};
use changewatch_sandbox::Sandbox;
use changewatch_store::aws::provision::{Provisioned, provision};
use changewatch_store::backup::verify;
use changewatch_store::{CheckCommit, Key, NewSnapshot, WatchStore};
use common::{call, json_call};
use serde_json::{Value, json};
use testkit::moto::MotoServer;

const KEY: &str = "backup-key";

fn event(method: &str, path: &str, query: &str, body: Option<&[u8]>) -> String {
    common::http_event(method, path, query, "application/zstd", Some(KEY), body)
}

/// The API of one tenant over the provisioned tables.
async fn app_for(clients: &Clients, p: &Provisioned, tenant: &str) -> (axum::Router, AwsConfig) {
    let config = common::stack_config(p, &[("CW_TENANT", tenant), ("API_ACCESS_TOKEN", KEY)]);
    let app = api::app(clients, &config, Sandbox::in_process())
        .await
        .unwrap();
    (app, config)
}

/// Each watch, its history and every snapshot's text, and the tags, as the API answers them.
async fn everything(app: &axum::Router) -> Value {
    let (_, list) = json_call(app, event("GET", "/api/v1/watch", "", None)).await;
    let mut watches = serde_json::Map::new();
    for uuid in list.as_object().unwrap().keys() {
        let (_, watch) = json_call(
            app,
            event("GET", &format!("/api/v1/watch/{uuid}"), "", None),
        )
        .await;
        let (_, history) = json_call(
            app,
            event("GET", &format!("/api/v1/watch/{uuid}/history"), "", None),
        )
        .await;
        let mut texts = serde_json::Map::new();
        for ts in history.as_object().unwrap().keys() {
            let (status, text) = call(
                app,
                event(
                    "GET",
                    &format!("/api/v1/watch/{uuid}/history/{ts}"),
                    "",
                    None,
                ),
            )
            .await;
            assert_eq!(status, 200);
            texts.insert(ts.clone(), json!(String::from_utf8(text).unwrap()));
        }
        watches.insert(
            uuid.clone(),
            json!({"watch": watch, "history": history, "texts": texts}),
        );
    }
    let (_, tags) = json_call(app, event("GET", "/api/v1/tags", "", None)).await;
    json!({"watches": watches, "tags": tags})
}

#[tokio::test]
async fn a_tenants_backup_through_the_api_restores_into_another_tenant() {
    let moto = MotoServer::shared();
    let clients = Clients::from_conf(&moto.sdk_config().await);
    let prefix = testkit::moto::unique_prefix("bk");
    let p = provision(&clients.dynamodb, &clients.sqs, &prefix, 2, 30, 3)
        .await
        .unwrap();
    let (app, config) = app_for(&clients, &p, "tenant-a").await;

    // A tag and a watch through the API, two checks' history through the store as the
    // checker writes it.
    let (status, tag) = json_call(
        &app,
        event_json("POST", "/api/v1/tag", json!({"title": "shops"})),
    )
    .await;
    assert_eq!(status, 201, "{tag}");
    let (status, created) = json_call(
        &app,
        event_json(
            "POST",
            "/api/v1/watch",
            json!({"url": "https://example.com/", "title": "Ex", "tag": "shops"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let uuid = created["uuid"].as_str().unwrap().to_string();
    let store = clients.store(&config);
    let key = Key::watch("tenant-a", &uuid);
    for (ts, text) in [(1_700_000_100, "first"), (1_700_000_200, "second")] {
        let base = store.claim(&key, "t", 4_000_000_000, 0).await.unwrap();
        store
            .commit_check(
                &key,
                "t",
                CheckCommit {
                    patch: json!({"last_checked": ts}).as_object().unwrap().clone(),
                    next_check_at: Some(4_000_000_000),
                    due_at: 0,
                    job_id: format!("j{ts}"),
                    snapshot: Some(NewSnapshot {
                        ts,
                        text: text.into(),
                        html: None,
                        screenshot: None,
                    }),
                    base,
                    history_max: None,
                    text_before_filters: None,
                },
            )
            .await
            .unwrap();
    }
    let before = everything(&app).await;
    assert_eq!(
        before["watches"][&uuid]["history"]
            .as_object()
            .unwrap()
            .len(),
        2
    );

    let (status, file) = call(&app, event("GET", "/api/v1/backup", "", None)).await;
    assert_eq!(status, 200);
    let (manifest, counts) = verify(&file[..], &changewatch_api::backup::check_doc).unwrap();
    assert_eq!(
        (
            manifest.source_mode.as_str(),
            manifest.consistent,
            manifest.tenant.as_str()
        ),
        ("aws", false, "tenant-a")
    );
    assert_eq!((counts.watches, counts.snapshots, counts.tags), (1, 2, 1));

    // Into another tenant of the same tables: the same answers from its API.
    let (app_b, _) = app_for(&clients, &p, "tenant-b").await;
    let (status, restored) =
        json_call(&app_b, event("POST", "/api/v1/backup", "", Some(&file))).await;
    assert_eq!(status, 200, "{restored}");
    assert_eq!(restored["restored"]["snapshots"], 2);
    assert_eq!(everything(&app_b).await, before);
    let (status, _) = json_call(&app_b, event("POST", "/api/v1/backup", "", Some(&file))).await;
    assert_eq!(status, 409, "not over a tenant that has watches");
    assert_eq!(
        everything(&app).await,
        before,
        "the source tenant is untouched"
    );
}

fn event_json(method: &str, path: &str, body: Value) -> String {
    let mut ev: Value =
        serde_json::from_str(&event(method, path, "", Some(body.to_string().as_bytes()))).unwrap();
    ev["headers"]["content-type"] = json!("application/json");
    ev.to_string()
}
