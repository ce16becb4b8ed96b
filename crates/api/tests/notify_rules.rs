//! When a check queues a notification, and what goes in it: the first check never notifies,
//! muting (watch, tag, everything), the watch > tag > global cascade, `#` URLs, the filter
//! failure alert. The jobs are read off the real SQLite outbox.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use changewatch_engine::docs::update_settings;
use changewatch_store::{DEFAULT_TENANT, NotificationJob, StoreError};
use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{FixtureServer, Page};

/// Every queued job, removed from the outbox.
/// The queued notifications, by URL (a watch's several URLs queue in no set order).
async fn drain(app: &TestApp) -> Vec<NotificationJob> {
    let mut jobs = app.drain_notifications().await;
    jobs.sort_by(|a, b| a.url.cmp(&b.url));
    jobs
}

async fn recheck(app: &TestApp, uuid: &str) {
    let (status, _) = app
        .get_json(&format!("/api/v1/watch/{uuid}?recheck=1"))
        .await;
    assert_eq!(status, 200);
    app.run_checks().await;
}

async fn settings(app: &TestApp, f: impl Fn(&mut changewatch_core::model::Settings)) {
    update_settings::<(), StoreError>(app.store.as_ref(), DEFAULT_TENANT, |s, _| {
        f(s);
        Ok(((), true))
    })
    .await
    .unwrap();
}

/// A watch on a page, checked once (baseline), then the page changes and it is checked again.
async fn change(app: &TestApp, srv: &FixtureServer, path: &str, watch: Value) -> String {
    srv.set(path, Page::text("Price: 10\nIn stock\n"));
    let mut body = watch;
    body["url"] = json!(srv.url(path));
    let uuid = app.create_watch(body).await;
    app.run_checks().await;
    assert!(
        drain(app).await.is_empty(),
        "the first check never notifies"
    );
    srv.set(path, Page::text("Price: 12\nIn stock\n"));
    recheck(app, &uuid).await;
    uuid
}

#[tokio::test]
async fn a_change_queues_one_rendered_job_per_url() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    let uuid = change(
        &app,
        &srv,
        "/p",
        json!({
            "title": "Shop",
            "notification_urls": ["json://a.example/hook", "#json://commented.example", "ntfy://topic"],
            "notification_title": "{{watch_title}}: {{diff_changed_to}}",
            "notification_body": "{{diff}}|{{watch_uuid}}|{{diff_url}}",
            "notification_format": "text",
        }),
    )
    .await;
    let jobs = drain(&app).await;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert_eq!(jobs[0].url, "json://a.example/hook");
    assert_eq!(jobs[1].url, "ntfy://topic");
    let job = &jobs[0];
    assert_eq!(job.kind, "change");
    assert_eq!(job.watch_id.as_deref(), Some(uuid.as_str()));
    assert_eq!(job.title, "Shop: 12");
    assert_eq!(job.format, "text");
    let parts: Vec<&str> = job.body.split('|').collect();
    assert!(parts[0].contains("(changed) Price: 10"), "{}", job.body);
    assert!(parts[0].contains("(into) Price: 12"), "{}", job.body);
    assert_eq!(parts[1], uuid);
    assert!(
        parts[2].contains(&format!("/diff/{uuid}?from_version=")),
        "{}",
        job.body
    );
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["notification_alert_count"], 1);

    // No change, no notification.
    recheck(&app, &uuid).await;
    assert!(drain(&app).await.is_empty());
}

#[tokio::test]
async fn muted_watches_tags_and_all_muted_send_nothing() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    let urls = json!(["json://a.example/hook"]);
    change(
        &app,
        &srv,
        "/muted",
        json!({"notification_urls": urls, "notification_muted": true}),
    )
    .await;
    assert!(drain(&app).await.is_empty(), "muted watch");

    settings(&app, |s| {
        s.application.all_muted = true;
        s.application.notification_urls = vec!["json://global.example".into()];
    })
    .await;
    change(&app, &srv, "/all", json!({"notification_urls": urls})).await;
    assert!(drain(&app).await.is_empty(), "all_muted");
}

#[tokio::test]
async fn urls_cascade_from_watch_to_tag_to_global() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    settings(&app, |s| {
        s.application.notification_urls = vec!["json://global.example".into()];
        s.application.notification_format = "text".into();
    })
    .await;
    let r = app
        .req(Method::POST, "/api/v1/tag")
        .json(&json!({"title": "shops", "notification_urls": ["json://tag.example"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let tag: Value = r.json().await.unwrap();
    let tag_uuid = tag["uuid"].as_str().unwrap().to_string();
    let r = app
        .req(Method::POST, "/api/v1/tag")
        .json(&json!({"title": "quiet", "notification_urls": ["json://quiet.example"], "notification_muted": true}))
        .send()
        .await
        .unwrap();
    let quiet: Value = r.json().await.unwrap();
    let quiet_uuid = quiet["uuid"].as_str().unwrap().to_string();

    change(
        &app,
        &srv,
        "/own",
        json!({"notification_urls": ["json://watch.example"], "tags": [tag_uuid]}),
    )
    .await;
    let jobs = drain(&app).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0].url, "json://watch.example",
        "the watch's own URLs win"
    );

    change(&app, &srv, "/tagged", json!({"tags": [tag_uuid]})).await;
    let jobs = drain(&app).await;
    assert_eq!(jobs[0].url, "json://tag.example", "then the tag's");

    change(&app, &srv, "/quiet", json!({"tags": [quiet_uuid]})).await;
    let jobs = drain(&app).await;
    assert_eq!(
        jobs[0].url, "json://global.example",
        "a muted tag is passed over"
    );

    change(&app, &srv, "/plain", json!({})).await;
    let jobs = drain(&app).await;
    assert_eq!(jobs[0].url, "json://global.example", "then the global list");
    assert!(
        jobs[0]
            .title
            .starts_with("ChangeDetection.io Notification - "),
        "upstream's default title: {}",
        jobs[0].title
    );
}

#[tokio::test]
async fn a_filter_missing_too_often_sends_one_alert_and_starts_counting_again() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    settings(&app, |s| {
        s.application.filter_failure_notification_threshold_attempts = 2;
    })
    .await;
    srv.set(
        "/f",
        Page::html("<html><body><p>no such element here</p></body></html>"),
    );
    let uuid = app
        .create_watch(json!({
            "url": srv.url("/f"),
            "include_filters": ["#price"],
            "notification_urls": ["json://alerts.example"],
        }))
        .await;
    app.run_checks().await;
    assert!(
        drain(&app).await.is_empty(),
        "one miss is below the threshold"
    );
    recheck(&app, &uuid).await;
    let jobs = drain(&app).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].kind, "filter_failure");
    assert_eq!(
        jobs[0].title,
        "Changedetection.io - Alert - CSS/xPath filter was not present in the page"
    );
    assert!(jobs[0].body.contains("#price"), "{}", jobs[0].body);
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["consecutive_filter_failures"], 0, "reset after the alert");

    // Turned off on the watch: the count still resets, nothing is sent.
    let r = app
        .req(Method::PUT, &format!("/api/v1/watch/{uuid}"))
        .json(&json!({"filter_failure_notification_send": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    recheck(&app, &uuid).await;
    recheck(&app, &uuid).await;
    assert!(drain(&app).await.is_empty());
}
