//! Watch endpoints through HTTP only, against the real server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use common::spawn_app;
use reqwest::Method;
use serde_json::json;
use testkit::{FixtureServer, Page};

#[tokio::test]
async fn auth_is_required_and_bad_keys_are_refused() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(format!("{}/api/v1/watch", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(
        r.text().await.unwrap(),
        "\"Invalid access - API key invalid.\"\n"
    );
    let r = app
        .client
        .get(format!("{}/api/v1/watch", app.base))
        .header("x-api-key", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let (status, body) = app.get_json("/api/v1/watch").await;
    assert_eq!((status, body), (200, json!({})));
}

#[tokio::test]
async fn create_check_change_and_read_back() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    srv.set(
        "/p",
        Page::html("<html><title>Shop</title><p>Price: 10</p></html>"),
    );
    let uuid = app
        .create_watch(json!({"url": srv.url("/p"), "title": "My shop"}))
        .await;

    let (status, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(status, 200);
    assert_eq!(w["url"], srv.url("/p"));
    assert_eq!(w["last_checked"], 0);
    assert_eq!(w["history_n"], 0);

    app.run_checks().await;
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert!(w["last_checked"].as_i64().unwrap() > 0);
    assert_eq!(w["last_changed"], 0, "the first check is the baseline");
    assert_eq!(w["history_n"], 1);
    assert_eq!(w["page_title"], "Shop");
    assert_eq!(w["last_error"], false);

    srv.set(
        "/p",
        Page::html("<html><title>Shop</title><p>Price: 11</p></html>"),
    );
    let r = app
        .req(Method::GET, &format!("/api/v1/watch/{uuid}?recheck=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "\"OK\"\n");
    app.run_checks().await;
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["history_n"], 2);
    assert!(w["last_changed"].as_i64().unwrap() > 0);

    let (_, list) = app.get_json("/api/v1/watch").await;
    assert_eq!(list[&uuid]["title"], "My shop");
    assert_eq!(list[&uuid]["viewed"], false);
}

#[tokio::test]
async fn validation_errors_use_upstream_shapes() {
    let app = spawn_app().await;
    let post = |body: serde_json::Value| app.req(Method::POST, "/api/v1/watch").json(&body).send();
    let r = post(json!({"url": "javascript:alert(1)"})).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.text().await.unwrap(), "\"Invalid or unsupported URL\"\n");
    let r = post(json!({"url": "https://example.com", "time_between_check_use_default": false, "time_between_check": {}})).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("At least one time interval")
    );
    let r = post(json!({"title": "no url"})).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("Validation failed:"),
        "{v}"
    );
    let r = app
        .req(Method::POST, "/api/v1/watch")
        .header("content-type", "text/plain")
        .body("url=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    let uuid = app
        .create_watch(json!({"url": "https://example.com/"}))
        .await;
    let r = app
        .req(Method::PUT, &format!("/api/v1/watch/{uuid}"))
        .json(&json!({"nonsense": 1, "also_bad": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.text().await.unwrap(),
        "\"Unknown field(s): also_bad, nonsense\"\n"
    );
    // POST refuses them the same way (upstream stores them and never reads them).
    let r = app
        .req(Method::POST, "/api/v1/watch")
        .json(&json!({"url": "https://example.com/x", "ignore_txt": ["typo"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.text().await.unwrap(),
        "\"Unknown field(s): ignore_txt\"\n"
    );
}

#[tokio::test]
async fn a_watch_read_back_can_be_posted_as_a_copy() {
    let app = spawn_app().await;
    let uuid = app
        .create_watch(json!({"url": "https://example.com/", "title": "Original", "tag": "news"}))
        .await;
    app.req(Method::PUT, &format!("/api/v1/watch/{uuid}"))
        .json(&json!({"last_viewed": 5}))
        .send()
        .await
        .unwrap();
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    let r = app
        .req(Method::POST, "/api/v1/watch")
        .json(&w)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{:?}", r.text().await);
    let copy: serde_json::Value = r.json().await.unwrap();
    let copy = copy["uuid"].as_str().unwrap();
    assert_ne!(copy, uuid);
    let (_, c) = app.get_json(&format!("/api/v1/watch/{copy}")).await;
    assert_eq!(c["title"], "Original");
    assert_eq!(c["tags"], w["tags"]);
}

#[tokio::test]
async fn switch_and_count_parameters_refuse_other_values() {
    let app = spawn_app().await;
    let uuid = app
        .create_watch(json!({"url": "https://example.com/"}))
        .await;
    for (q, param) in [
        ("paused=pause", "paused"),
        ("muted=yes", "muted"),
        ("paused=", "paused"),
        ("recheck=1&muted=off", "muted"),
    ] {
        let (status, v) = app.get_json(&format!("/api/v1/watch/{uuid}?{q}")).await;
        assert_eq!(status, 400, "{q}: {v}");
        let msg = v["message"].as_str().unwrap();
        assert!(
            msg.starts_with(&format!("Validation failed: {param}: ")),
            "{q}: {msg}"
        );
    }
    // Nothing was done by the refused requests: not paused, not muted, not queued.
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["paused"], false);
    assert_eq!(w["notification_muted"], false);
    let (_, info) = app.get_json("/api/v1/systeminfo").await;
    assert_eq!(info["queue_size"], 0);

    for q in ["offset=-1", "limit=ten", "offset="] {
        let (status, v) = app.get_json(&format!("/queue-status?{q}")).await;
        assert_eq!(status, 400, "{q}: {v}");
    }
    let (status, v) = app.get_json("/queue.json?page=x").await;
    assert_eq!(status, 400, "{v}");
    let (status, _) = app.get_json("/queue-status?offset=0&limit=5").await;
    assert_eq!(status, 200);
    // Huge but valid numbers are an empty page, not an arithmetic overflow.
    let (status, v) = app.get_json("/queue.json?page=368934881474191034").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["queued"], json!([]));
    let (status, v) = app
        .get_json(&format!(
            "/queue-status?offset={}&limit={}",
            usize::MAX,
            usize::MAX
        ))
        .await;
    assert_eq!(status, 200, "{v}");
}

#[tokio::test]
async fn unknown_and_malformed_uuids() {
    let app = spawn_app().await;
    let missing = "0b4f1c1e-3c5f-4a57-9b7a-1f2e3d4c5b6a";
    let (status, body) = app.get_json(&format!("/api/v1/watch/{missing}")).await;
    assert_eq!(status, 404);
    assert_eq!(
        body["message"],
        format!("No watch exists with the UUID of {missing}")
    );
    let r = app
        .req(Method::DELETE, &format!("/api/v1/watch/{missing}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        400,
        "upstream quirk: 400 on deleting an unknown watch"
    );
    let r = app
        .req(Method::GET, "/api/v1/watch/NOT-A-UUID")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("<title>404 Not Found</title>")
    );
}

#[tokio::test]
async fn pause_mute_update_delete_and_round_trip() {
    let app = spawn_app().await;
    let uuid = app
        .create_watch(json!({"url": "https://example.com/", "tag": "news, Shops"}))
        .await;
    for (q, field, want) in [
        ("paused=paused", "paused", true),
        ("paused=unpaused", "paused", false),
        ("muted=muted", "notification_muted", true),
    ] {
        let r = app
            .req(Method::GET, &format!("/api/v1/watch/{uuid}?{q}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
        assert_eq!(w[field], want, "{q}");
    }
    // GET → PUT round trip is accepted (readOnly and computed fields are dropped).
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(
        w["tags"].as_array().unwrap().len(),
        2,
        "legacy tag names become tags"
    );
    let r = app
        .req(Method::PUT, &format!("/api/v1/watch/{uuid}"))
        .json(&w)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{:?}", r.text().await);
    let r = app
        .req(Method::PUT, &format!("/api/v1/watch/{uuid}"))
        .json(&json!({"title": "Renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["title"], "Renamed");
    let r = app
        .req(Method::DELETE, &format!("/api/v1/watch/{uuid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert!(r.text().await.unwrap().is_empty());
    let (status, _) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn list_filters_and_recheck_all() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    srv.set("/ok", Page::html("<p>fine</p>"));
    srv.set("/bad", Page::html("x").status(500));
    let good = app
        .create_watch(json!({"url": srv.url("/ok"), "tag": "Group"}))
        .await;
    let bad = app.create_watch(json!({"url": srv.url("/bad")})).await;
    app.run_checks().await;
    let (_, errs) = app.get_json("/api/v1/watch?with_errors=1").await;
    assert_eq!(errs.as_object().unwrap().keys().collect::<Vec<_>>(), [&bad]);
    assert_eq!(
        errs[&bad]["last_error"],
        "Error - 500 (Internal server error) received from the web site"
    );
    let (_, tagged) = app.get_json("/api/v1/watch?tag=group").await;
    assert_eq!(
        tagged.as_object().unwrap().keys().collect::<Vec<_>>(),
        [&good]
    );
    // recheck_all queues the set the filters list, as upstream.
    let (status, body) = app
        .get_json("/api/v1/watch?with_errors=1&recheck_all=1")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "OK, queued 1 watches for rechecking");
    let (_, w) = app.get_json(&format!("/api/v1/watch/{good}")).await;
    let good_checked = w["last_checked"].clone();
    assert_eq!(app.run_checks().await.len(), 1);
    let (_, w) = app.get_json(&format!("/api/v1/watch/{good}")).await;
    assert_eq!(
        w["last_checked"], good_checked,
        "the healthy watch was rechecked"
    );
    let (_, body) = app.get_json("/api/v1/watch?tag=GROUP&recheck_all=1").await;
    assert_eq!(body["status"], "OK, queued 1 watches for rechecking");
    assert_eq!(app.run_checks().await.len(), 1);
    let (status, body) = app.get_json("/api/v1/watch?recheck_all=1").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "OK, queued 2 watches for rechecking");
    assert_eq!(app.run_checks().await.len(), 2);
}

#[tokio::test]
async fn watch_limit() {
    let app = common::spawn_app_with(changewatch_api::ApiConfig {
        page_watch_limit: Some(1),
        minimum_recheck_secs: 3,
        base_url: None,
        salted_pass: None,
        open_without_password: true,
        api_key_fixed: false,
        trusted_proxy_hops: 0,
        work_after_reply: true,
    })
    .await;
    app.create_watch(json!({"url": "https://example.com/1"}))
        .await;
    let r = app
        .req(Method::POST, "/api/v1/watch")
        .json(&json!({"url": "https://example.com/2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(
        r.text().await.unwrap(),
        "\"Watch limit reached (1/1 watches). Cannot add more watches.\"\n"
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = spawn_app().await;
    let huge = "x".repeat(2 * 1024 * 1024);
    let r = app
        .req(Method::POST, "/api/v1/watch")
        .json(&json!({"url": "https://example.com/", "title": huge}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let (_, list) = app.get_json("/api/v1/watch").await;
    assert_eq!(list, json!({}), "nothing was stored");
}

#[tokio::test]
async fn api_key_check_can_be_turned_off() {
    let app = spawn_app().await;
    changewatch_engine::docs::update_settings(app.store.as_ref(), "default", |s, _| {
        s.application.api_access_token_enabled = false;
        Ok::<_, changewatch_store::StoreError>(((), true))
    })
    .await
    .unwrap();
    let r = app
        .client
        .get(format!("{}/api/v1/watch", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "no key needed once the check is off"
    );
}

/// Past one page of the store (the listing streams its body a page of watches at a time):
/// every watch once, in uuid order, the filters and a templated link applied on every page.
#[tokio::test]
async fn a_listing_of_several_pages_is_whole_and_in_order() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    let mut tagged = Vec::new();
    let mut all = Vec::new();
    for i in 0..600 {
        let body = if i % 7 == 0 {
            json!({"url": srv.url(&format!("/p/{i}")), "tag": "Seventh"})
        } else {
            json!({"url": srv.url(&format!("/p/{i}"))})
        };
        let uuid = app.create_watch(body).await;
        if i % 7 == 0 {
            tagged.push(uuid.clone());
        }
        all.push(uuid);
    }
    let templated = app
        .create_watch(json!({"url": srv.url("/t/{{ 'abc'|upper }}")}))
        .await;
    all.push(templated.clone());
    all.sort();
    tagged.sort();

    let r = app.req(Method::GET, "/api/v1/watch").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    // Sent as it is read, so without a length.
    assert!(r.headers().get("content-length").is_none());
    let text = r.text().await.unwrap();
    assert!(
        text.ends_with("}\n"),
        "{}",
        &text[text.len().saturating_sub(80)..]
    );
    let listed: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(listed.keys().cloned().collect::<Vec<_>>(), all);
    let positions: Vec<usize> = all
        .iter()
        .map(|uuid| text.find(&format!("\"{uuid}\":")).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "keys in order");
    assert_eq!(listed[&templated]["link"], srv.url("/t/ABC"));

    let (status, only) = app.get_json("/api/v1/watch?tag=seventh").await;
    assert_eq!(status, 200);
    assert_eq!(
        only.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        tagged
    );
}
