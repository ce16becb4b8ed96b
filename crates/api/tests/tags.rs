//! Tag endpoints through HTTP only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use changewatch_store::QueueAdmin;
use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

async fn post_tag(app: &TestApp, body: Value) -> (u16, Value) {
    let r = app
        .req(Method::POST, "/api/v1/tag")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn send(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> (u16, String) {
    let mut req = app.req(method, path);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

#[tokio::test]
async fn create_list_read_update() {
    let app = spawn_app().await;
    let (status, v) = app.get_json("/api/v1/tags").await;
    assert_eq!((status, v), (200, json!({})));

    let (status, v) = post_tag(&app, json!({"title": "Shops", "tag_colour": "#4f8ef7"})).await;
    assert_eq!(status, 201);
    let uuid = v["uuid"].as_str().unwrap().to_string();

    // The same title in another case is the same tag, and still a 201.
    let (status, v) = post_tag(
        &app,
        json!({"title": "  shops ", "notification_muted": true}),
    )
    .await;
    assert_eq!((status, v["uuid"].as_str()), (201, Some(uuid.as_str())));

    let (_, list) = app.get_json("/api/v1/tags").await;
    let entry = &list[&uuid];
    assert_eq!(list.as_object().unwrap().len(), 1);
    assert_eq!(entry["title"], "Shops");
    assert_eq!(entry["uuid"], uuid.as_str());
    assert_eq!(entry["notification_muted"], true);
    assert!(entry["date_created"].as_i64().unwrap() > 0);
    assert_eq!(
        entry.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["date_created", "notification_muted", "title", "uuid"]
    );

    let (status, tag) = app.get_json(&format!("/api/v1/tag/{uuid}")).await;
    assert_eq!(status, 200);
    assert_eq!(tag["title"], "Shops");
    assert_eq!(tag["tag_colour"], "#4f8ef7");
    for hidden in [
        "check_count",
        "last_checked",
        "last_error",
        "previous_md5",
        "page_title",
    ] {
        assert!(tag.get(hidden).is_none(), "{hidden} is a watch-only field");
    }

    let (status, body) = send(
        &app,
        Method::PUT,
        &format!("/api/v1/tag/{uuid}"),
        Some(json!({"title": "Stores", "include_filters": ["#price"]})),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "\"OK\"\n"));
    let (_, tag) = app.get_json(&format!("/api/v1/tag/{uuid}")).await;
    assert_eq!(tag["title"], "Stores");
    assert_eq!(tag["include_filters"], json!(["#price"]));

    // Round trip: what GET returns, PUT accepts.
    let (status, _) = send(&app, Method::PUT, &format!("/api/v1/tag/{uuid}"), Some(tag)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn validation_and_missing_tags() {
    let app = spawn_app().await;
    let (status, v) = post_tag(&app, json!({"title": "  "})).await;
    assert_eq!((status, v), (400, json!("Invalid or unsupported tag")));
    let (status, v) = post_tag(&app, json!({"title": "x", "bogus": 1})).await;
    assert_eq!((status, v), (400, json!("Unknown field(s): bogus")));
    // The schema's pattern catches a bad colour first, as upstream's request validation does.
    let (status, v) = post_tag(&app, json!({"title": "x", "tag_colour": "red;}"})).await;
    assert_eq!(status, 400);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("Validation failed: tag_colour"),
        "{v}"
    );

    let (_, v) = post_tag(&app, json!({"title": "Real"})).await;
    let uuid = v["uuid"].as_str().unwrap().to_string();
    let (status, body) = send(
        &app,
        Method::PUT,
        &format!("/api/v1/tag/{uuid}"),
        Some(json!({"nope": true})),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (400, "\"Unknown field(s): nope\"\n")
    );

    let missing = "00000000-0000-4000-8000-000000000000";
    let expected = json!({"message": format!("No tag exists with the UUID of {missing}")});
    let (status, v) = app.get_json(&format!("/api/v1/tag/{missing}")).await;
    assert_eq!((status, &v), (404, &expected));
    let (status, body) = send(
        &app,
        Method::PUT,
        &format!("/api/v1/tag/{missing}"),
        Some(json!({"title": "x"})),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), expected);
    // Upstream answers 400, not 404, for a missing tag on DELETE.
    let (status, body) = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/tag/{missing}"),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), expected);
    let (status, body) = send(&app, Method::GET, "/api/v1/tag/not-a-uuid", None).await;
    assert_eq!(status, 404);
    assert!(body.contains("<title>404 Not Found</title>"));
}

#[tokio::test]
async fn mute_and_recheck_members() {
    let app = spawn_app().await;
    let (_, v) = post_tag(&app, json!({"title": "Group"})).await;
    let tag = v["uuid"].as_str().unwrap().to_string();
    let a = app
        .create_watch(json!({"url": "https://example.com/a", "tags": [tag]}))
        .await;
    app.create_watch(json!({"url": "https://example.com/b", "tags": [tag], "paused": true}))
        .await;
    app.create_watch(json!({"url": "https://example.com/c"}))
        .await;

    let (status, body) = send(
        &app,
        Method::GET,
        &format!("/api/v1/tag/{tag}?muted=muted"),
        None,
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "\"OK\"\n"));
    let (_, t) = app.get_json(&format!("/api/v1/tag/{tag}")).await;
    assert_eq!(t["notification_muted"], true);
    send(
        &app,
        Method::GET,
        &format!("/api/v1/tag/{tag}?muted=unmuted"),
        None,
    )
    .await;
    let (_, t) = app.get_json(&format!("/api/v1/tag/{tag}")).await;
    assert_eq!(t["notification_muted"], false);

    let (status, v) = app
        .get_json(&format!("/api/v1/tag/{tag}?recheck=true"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(v, json!({"status": "OK, queued 1 watches for rechecking"}));
    let jobs = app.queue.snapshot("default").await.unwrap();
    assert_eq!(
        jobs.iter().map(|j| j.watch_id.as_str()).collect::<Vec<_>>(),
        [a.as_str()],
        "only the unpaused member is queued"
    );
}

#[tokio::test]
async fn many_members_are_queued_in_the_background() {
    let app = spawn_app().await;
    let (_, v) = post_tag(&app, json!({"title": "Big"})).await;
    let tag = v["uuid"].as_str().unwrap().to_string();
    for i in 0..20 {
        app.create_watch(json!({"url": format!("https://example.com/{i}"), "tags": [tag]}))
            .await;
    }
    let (status, v) = app.get_json(&format!("/api/v1/tag/{tag}?recheck=1")).await;
    assert_eq!(status, 202);
    assert_eq!(
        v,
        json!({"status": "OK, queueing 20 watches in background"})
    );
}

#[tokio::test]
async fn delete_unassigns_from_every_watch() {
    let app = spawn_app().await;
    let (_, v) = post_tag(&app, json!({"title": "Doomed"})).await;
    let doomed = v["uuid"].as_str().unwrap().to_string();
    let (_, v) = post_tag(&app, json!({"title": "Kept"})).await;
    let kept = v["uuid"].as_str().unwrap().to_string();
    let w1 = app
        .create_watch(json!({"url": "https://example.com/1", "tags": [doomed, kept]}))
        .await;
    let w2 = app
        .create_watch(json!({"url": "https://example.com/2", "tags": [doomed]}))
        .await;

    let (status, body) = send(&app, Method::DELETE, &format!("/api/v1/tag/{doomed}"), None).await;
    assert_eq!((status, body.as_str()), (204, ""));
    let (_, w) = app.get_json(&format!("/api/v1/watch/{w1}")).await;
    assert_eq!(w["tags"], json!([kept]));
    let (_, w) = app.get_json(&format!("/api/v1/watch/{w2}")).await;
    assert_eq!(w["tags"], json!([]));
    let (_, list) = app.get_json("/api/v1/tags").await;
    assert_eq!(
        list.as_object().unwrap().keys().collect::<Vec<_>>(),
        [&kept]
    );
    let (status, _) = app.get_json(&format!("/api/v1/tag/{doomed}")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn tag_notification_urls_and_templates_are_validated() {
    let app = spawn_app().await;
    let (status, v) = post_tag(
        &app,
        json!({"title": "bad", "notification_urls": ["nope://x"]}),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v, "'nope://x' is not a valid AppRise URL.");
    let (status, v) = post_tag(
        &app,
        json!({"title": "bad", "notification_body": "{% if %}"}),
    )
    .await;
    assert_eq!(status, 400, "{v}");

    let (status, v) = post_tag(
        &app,
        json!({"title": "ok", "notification_urls": ["json://example.com/h", "#nope://x"]}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let uuid = v["uuid"].as_str().unwrap().to_string();
    let (status, body) = send(
        &app,
        Method::PUT,
        &format!("/api/v1/tag/{uuid}"),
        Some(json!({"notification_urls": ["http://not-apprise"]})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body.trim(),
        "\"'http://not-apprise' is not a valid AppRise URL.\""
    );
    let (_, t) = app.get_json(&format!("/api/v1/tag/{uuid}")).await;
    assert_eq!(
        t["notification_urls"],
        json!(["json://example.com/h", "#nope://x"]),
        "unchanged"
    );
}

/// Concurrent writes of one tag (two clients, or a client and the dashboard) are re-applied to
/// the fresh copy, never answered with a version conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tag_writes_all_land() {
    let app = spawn_app().await;
    let (_, v) = post_tag(&app, json!({"title": "Busy"})).await;
    let uuid = v["uuid"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let req = if i % 2 == 0 {
            app.req(Method::PUT, &format!("/api/v1/tag/{uuid}"))
                .json(&json!({"notification_urls": [format!("json://127.0.0.1/{i}")]}))
        } else {
            let switch = if i % 4 == 1 { "muted" } else { "unmuted" };
            app.req(Method::GET, &format!("/api/v1/tag/{uuid}?muted={switch}"))
        };
        tasks.push(tokio::spawn(async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }));
    }
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let (status, tag) = app.get_json(&format!("/api/v1/tag/{uuid}")).await;
    assert_eq!(status, 200);
    assert_eq!(tag["title"], "Busy", "no write lost the others' fields");
    assert_eq!(tag["notification_urls"].as_array().unwrap().len(), 1);
}
