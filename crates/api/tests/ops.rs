//! Ops endpoints (/worker-health, /queue-status, /queue.json) through HTTP only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use std::sync::Arc;

use changewatch_api::{ApiConfig, Workers};
use common::{spawn_app, spawn_app_full};
use reqwest::Method;
use serde_json::{Value, json};

async fn get_open(app: &common::TestApp, path: &str) -> Value {
    // No API key: these are outside /api/v1.
    let r = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{path}");
    assert_eq!(r.headers()["content-type"], "application/json");
    r.json().await.unwrap()
}

#[tokio::test]
async fn worker_health_without_a_local_pool() {
    let app = spawn_app().await;
    let v = get_open(&app, "/worker-health").await;
    assert_eq!(v["status"], "success");
    assert_eq!(v["worker_status"]["worker_type"], "async");
    assert_eq!(v["worker_status"]["running_uuids"], json!([]));
    assert_eq!(v["health_check"]["status"], "healthy");
    assert_eq!(v["expected_workers"], 0);
}

#[tokio::test]
async fn queue_status_position_summary_and_pages() {
    let app = spawn_app().await;
    let a = app
        .create_watch(json!({"url": "https://example.com/a"}))
        .await;
    let b = app
        .create_watch(json!({"url": "https://example.com/b"}))
        .await;
    let idle = app
        .create_watch(json!({"url": "https://example.com/c"}))
        .await;
    for u in [&a, &b] {
        app.req(Method::GET, &format!("/api/v1/watch/{u}?recheck=1"))
            .send()
            .await
            .unwrap();
    }

    let v = get_open(&app, &format!("/queue-status?uuid={b}")).await;
    assert_eq!(v["status"], "success");
    assert_eq!(v["uuid"], b.as_str());
    assert_eq!(v["queue_position"]["found"], true);
    assert_eq!(v["queue_position"]["position"], 1);
    assert_eq!(v["queue_position"]["total_items"], 2);
    assert_eq!(v["queue_position"]["priority"], 1);
    let v = get_open(&app, &format!("/queue-status?uuid={idle}")).await;
    assert_eq!(v["queue_position"]["found"], false);
    assert_eq!(v["queue_position"]["position"], Value::Null);

    let v = get_open(&app, "/queue-status?summary=1").await;
    let s = &v["queue_summary"];
    assert_eq!(s["total_items"], 2);
    assert_eq!(s["immediate_items"], 2);
    assert_eq!(s["clone_items"], 0);
    assert_eq!(s["scheduled_items"], 0);
    assert_eq!(s["priority_breakdown"], json!({"1": 2}));
    assert_eq!(
        (s["min_priority"].clone(), s["max_priority"].clone()),
        (json!(1), json!(1))
    );

    let v = get_open(&app, "/queue-status").await;
    assert_eq!(v["queue_size"], 2);
    let d = &v["queued_data"];
    assert_eq!(d["total_items"], 2);
    assert_eq!(d["returned_items"], 2);
    assert_eq!(d["has_more"], false);
    assert_eq!(d["items"][0]["uuid"], a.as_str());
    let v = get_open(&app, "/queue-status?limit=1&offset=1").await;
    let d = &v["queued_data"];
    assert_eq!(d["returned_items"], 1);
    assert_eq!(d["items"][0]["uuid"], b.as_str());
    assert_eq!(d["items"][0]["position"], 1);
    assert_eq!(d["has_more"], false);
    let v = get_open(&app, "/queue-status?limit=1").await;
    assert_eq!(v["queued_data"]["has_more"], true);
}

#[tokio::test]
async fn queue_json_lists_queued_watches() {
    let app = spawn_app().await;
    let a = app
        .create_watch(json!({"url": "https://example.com/a", "title": "A"}))
        .await;
    app.req(Method::GET, &format!("/api/v1/watch/{a}?recheck=1"))
        .send()
        .await
        .unwrap();
    let v = get_open(&app, "/queue.json").await;
    assert_eq!(v["worker_count"], 0);
    assert_eq!(v["running_count"], 0);
    assert_eq!(v["queued_count"], 1);
    assert_eq!(v["summary"]["immediate"], 1);
    assert_eq!(v["queued"][0]["uuid"], a.as_str());
    assert_eq!(v["queued"][0]["title"], "A");
    assert_eq!(v["queued"][0]["priority_label"], "immediate");
    assert_eq!(v["page"], 1);
    assert_eq!(v["total_pages"], 1);
}

/// A pool of three workers, one dead, one busy with `watch`.
struct Pool {
    watch: String,
}

impl Workers for Pool {
    fn running(&self) -> Vec<String> {
        vec![self.watch.clone()]
    }
    fn configured(&self) -> usize {
        3
    }
    fn alive(&self) -> usize {
        2
    }
}

#[tokio::test]
async fn worker_health_and_running_checks_of_a_local_pool() {
    let watch = "8d1c2f3e-0000-4000-8000-000000000001".to_string();
    let app = spawn_app_full(
        ApiConfig {
            page_watch_limit: None,
            minimum_recheck_secs: 3,
            base_url: None,
            salted_pass: None,
            open_without_password: true,
            api_key_fixed: false,
            trusted_proxy_hops: 0,
            work_after_reply: true,
        },
        Some(Arc::new(Pool {
            watch: watch.clone(),
        })),
    )
    .await;
    let v = get_open(&app, "/worker-health").await;
    assert_eq!(v["expected_workers"], 3);
    assert_eq!(v["worker_status"]["worker_count"], 2);
    assert_eq!(v["worker_status"]["running_uuids"], json!([watch]));
    assert_eq!(v["health_check"]["status"], "degraded");
    assert_eq!(v["health_check"]["dead_workers"], 1);
    assert_eq!(v["health_check"]["expected_count"], 3);
    assert_eq!(v["health_check"]["actual_count"], 2);
    let v = get_open(&app, "/queue.json").await;
    assert_eq!(v["worker_count"], 2);
    assert_eq!(v["running_count"], 1);
    assert_eq!(v["running"][0]["uuid"], watch.as_str());
}
