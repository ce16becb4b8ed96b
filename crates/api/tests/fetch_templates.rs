//! A watch's URL, header values and body are Jinja2 templates rendered at fetch time (in
//! the sandbox), as upstream renders them; `link` shows the rendered URL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use common::spawn_app;
use serde_json::json;
use testkit::{FixtureServer, Page};

#[tokio::test]
async fn url_headers_and_body_are_rendered_when_fetched() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    srv.set("/p/ABC", Page::html("<p>rendered page</p>"));
    let uuid = app
        .create_watch(json!({
            "url": srv.url("/p/{{ 'abc' | upper }}"),
            "method": "POST",
            "headers": {"X-Token": "{{ 'tok' ~ '-' ~ 3 }}", "X-Plain": "as written"},
            "body": "{\"n\": {{ 6 * 7 }}, \"today\": \"{{ today }}\"}\n",
        }))
        .await;
    app.run_checks().await;

    let seen = srv.seen("/p/ABC");
    assert_eq!(seen.len(), 1, "the rendered URL was fetched");
    assert_eq!(seen[0].header("x-token"), Some("tok-3"));
    assert_eq!(seen[0].header("x-plain"), Some("as written"));
    // No variables exist at fetch time (upstream's), so `today` renders as nothing.
    assert_eq!(
        String::from_utf8_lossy(&seen[0].body),
        "{\"n\": 42, \"today\": \"\"}"
    );
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["last_error"], false, "{w}");
    assert_eq!(w["link"], srv.url("/p/ABC"));
    assert_eq!(
        w["url"],
        srv.url("/p/{{ 'abc' | upper }}"),
        "stored as written"
    );
    let (_, list) = app.get_json("/api/v1/watch").await;
    assert_eq!(list[&uuid]["link"], srv.url("/p/ABC"));
}

#[tokio::test]
async fn a_template_that_fails_at_fetch_time_is_the_check_error() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    srv.set("/ok", Page::html("<p>fine</p>"));
    // Valid syntax (accepted at save, as upstream checks only that), but no such filter.
    let bad_url = app
        .create_watch(json!({"url": srv.url("/x/{{ 'a' | no_such_filter }}")}))
        .await;
    let bad_header = app
        .create_watch(json!({
            "url": srv.url("/ok"),
            "headers": {"X-Broken": "{{ 'a' | no_such_filter }}"},
        }))
        .await;
    app.run_checks().await;

    let (_, w) = app.get_json(&format!("/api/v1/watch/{bad_url}")).await;
    let err = w["last_error"].as_str().unwrap_or_default();
    assert!(err.starts_with("Exception: url template:"), "{w}");
    assert!(
        err.contains("no_such_filter") || err.contains("unknown filter"),
        "{err}"
    );
    // Upstream's `link` of a URL whose template fails.
    assert_eq!(w["link"], "");

    let (_, w) = app.get_json(&format!("/api/v1/watch/{bad_header}")).await;
    let err = w["last_error"].as_str().unwrap_or_default();
    assert!(
        err.starts_with("Exception: header 'X-Broken' template:"),
        "{w}"
    );
    assert_eq!(
        srv.hits("/ok"),
        0,
        "nothing is fetched with a header that did not render"
    );
}
