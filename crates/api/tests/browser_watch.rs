//! `fetch_backend: html_webdriver` watches are fetched by a real browser (Debian's
//! Chromium, installed by `make test-deps`): text made by JavaScript is what they record,
//! where the plain fetcher sees only the page's source.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::json;
use testkit::{FixtureServer, Page};

const JS_PAGE: &str = r#"<!doctype html><html><body><p id="stock">checking…</p>
<script>document.getElementById('stock').textContent = 'In stock: ' + (40 + 2) + ' units';</script>
</body></html>"#;

async fn latest_snapshot(app: &TestApp, uuid: &str) -> String {
    app.req(Method::GET, &format!("/api/v1/watch/{uuid}/history/latest"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_browser_watch_records_what_javascript_wrote() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    srv.set("/shop", Page::html(JS_PAGE));
    let browser = app
        .create_watch(json!({
            "url": srv.url("/shop"),
            "fetch_backend": "html_webdriver",
            "webdriver_js_execute_code": "document.body.insertAdjacentHTML('beforeend', '<p>added by the watch</p>')",
        }))
        .await;
    let plain = app
        .create_watch(json!({"url": srv.url("/shop"), "fetch_backend": "html_requests"}))
        .await;
    app.run_checks().await;

    let (_, w) = app.get_json(&format!("/api/v1/watch/{browser}")).await;
    assert_eq!(w["last_error"], false, "{w}");
    let text = latest_snapshot(&app, &browser).await;
    assert!(text.contains("In stock: 42 units"), "{text}");
    assert!(text.contains("added by the watch"), "{text}");
    let text = latest_snapshot(&app, &plain).await;
    assert!(text.contains("checking…") && !text.contains("42"), "{text}");
}

#[tokio::test]
async fn what_the_browser_cannot_do_yet_is_the_watch_error() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    srv.set("/p", Page::html("<p>x</p>"));
    let steps = app
        .create_watch(json!({
            "url": srv.url("/p"),
            "fetch_backend": "html_webdriver",
            "browser_steps": [{"operation": "Click element", "selector": "#go", "optional_value": ""}],
        }))
        .await;
    app.run_checks().await;
    let (_, w) = app.get_json(&format!("/api/v1/watch/{steps}")).await;
    let err = w["last_error"].as_str().unwrap_or_default();
    assert!(
        err.ends_with("not supported by this server's browser fetcher yet: browser steps"),
        "{w}"
    );
    assert_eq!(srv.hits("/p"), 0, "not fetched another way");
}
