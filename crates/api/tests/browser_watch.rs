//! `fetch_backend: html_webdriver` watches are fetched by a real browser (Debian's
//! Chromium, installed by `make test-deps`): text made by JavaScript is what they record,
//! where the plain fetcher sees only the page's source; browser steps run before the text
//! is read, and a step that fails is the watch's error and, too often, an alert.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use changewatch_engine::docs::update_settings;
use changewatch_store::{DEFAULT_TENANT, NotificationQueue, StoreError};
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

    // The browser's screenshot is stored with the snapshot; a plain fetch has none.
    let r = app
        .req(Method::GET, &format!("/api/v1/watch/{browser}/screenshot"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let (_, history) = app
        .get_json(&format!("/api/v1/watch/{browser}/history"))
        .await;
    let ts = history.as_object().unwrap().keys().next().unwrap().clone();
    assert_eq!(r.headers()["x-snapshot-timestamp"], ts.as_str());
    let image = r.bytes().await.unwrap();
    assert_eq!(&image[..3], &[0xFF, 0xD8, 0xFF], "a JPEG");
    let r = app
        .req(
            Method::GET,
            &format!("/api/v1/watch/{browser}/screenshot?timestamp={ts}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), image);
    for path in [
        format!("/api/v1/watch/{plain}/screenshot"),
        format!("/api/v1/watch/{browser}/screenshot?timestamp=123"),
    ] {
        let r = app.req(Method::GET, &path).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }

    // The dashboard's route: the same image, and "none" as 204 rather than an error.
    let ui = |uuid: &str| {
        app.client
            .get(format!(
                "{}/ui/watch/{uuid}/screenshot?timestamp=latest",
                app.base
            ))
            .header("x-changewatch-ui", "1")
            .send()
    };
    let r = ui(&browser).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), image);
    let r = ui(&plain).await.unwrap();
    assert_eq!(r.status(), 204);
    let r = ui("00000000-0000-4000-8000-000000000000").await.unwrap();
    assert_eq!(r.status(), 404);
}

const OFFER_PAGE: &str = r#"<!doctype html><html><body>
<input id="code"> <button id="apply">Apply code</button>
<p id="price">Price: 100 EUR</p>
<script>
  document.getElementById('apply').addEventListener('click', function () {
    var code = document.getElementById('code').value;
    document.getElementById('price').textContent =
      code === 'SAVE10' ? 'Price with SAVE10: 90 EUR' : 'Unknown code ' + code;
  });
</script></body></html>"#;

fn step(operation: &str, selector: &str, value: &str) -> serde_json::Value {
    json!({"operation": operation, "selector": selector, "optional_value": value})
}

#[tokio::test]
async fn browser_steps_run_before_the_text_is_recorded() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    srv.set("/offer", Page::html(OFFER_PAGE));
    // The editor's leftovers (a leading "Goto site", "Choose one" rows) are dropped at save;
    // the step's value is a template, rendered at the check.
    let uuid = app
        .create_watch(json!({
            "url": srv.url("/offer"),
            "fetch_backend": "html_webdriver",
            "browser_steps": [
                step("Goto site", "", ""),
                step("Enter text in field", "#code", "{{ 'save10' | upper }}"),
                step("Choose one", "", ""),
                step("Click element", "#apply", ""),
            ],
        }))
        .await;
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["browser_steps"].as_array().map(Vec::len), Some(2), "{w}");
    app.run_checks().await;
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["last_error"], false, "{w}");
    assert_eq!(w["browser_steps_last_error_step"], json!(null));
    let text = latest_snapshot(&app, &uuid).await;
    assert!(text.contains("Price with SAVE10: 90 EUR"), "{text}");
}

#[tokio::test]
async fn a_failing_step_is_the_watch_error_and_alerts_at_the_threshold() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    srv.set("/offer", Page::html(OFFER_PAGE));
    // A short request timeout: the missing element is waited for until just before it.
    update_settings::<(), StoreError>(app.store.as_ref(), DEFAULT_TENANT, |s, _| {
        s.application.filter_failure_notification_threshold_attempts = 2;
        s.requests.timeout = 3;
        Ok(((), true))
    })
    .await
    .unwrap();
    let uuid = app
        .create_watch(json!({
            "url": srv.url("/offer"),
            "fetch_backend": "html_webdriver",
            "notification_urls": ["json://alerts.example"],
            "browser_steps": [
                step("Enter text in field", "#code", "SAVE10"),
                step("Click element", "#gone-button", ""),
            ],
        }))
        .await;
    app.run_checks().await;
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["browser_steps_last_error_step"], 2, "{w}");
    let err = w["last_error"].as_str().unwrap_or_default();
    assert!(
        err.starts_with("Browser step at position 2 could not run")
            && err.ends_with("Could not find the target."),
        "{w}"
    );
    assert_eq!(w["consecutive_filter_failures"], 1, "{w}");
    assert!(
        app.drain_notifications().await.is_empty(),
        "below the threshold"
    );

    let (status, _) = app
        .get_json(&format!("/api/v1/watch/{uuid}?recheck=1"))
        .await;
    assert_eq!(status, 200);
    app.run_checks().await;
    let jobs = app.drain_notifications().await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].kind, "step_failure");
    assert_eq!(
        jobs[0].title,
        "Changedetection.io - Alert - Browser step at position 2 could not be run"
    );
    assert!(
        jobs[0].body.contains("after 2 attempts"),
        "{}",
        jobs[0].body
    );
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["consecutive_filter_failures"], 0, "reset after the alert");

    // Fixed by the user: the next check clears the step and the error.
    let r = app
        .req(Method::PUT, &format!("/api/v1/watch/{uuid}"))
        .json(&json!({"browser_steps": [
            step("Enter text in field", "#code", "SAVE10"),
            step("Click element", "#apply", ""),
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.get_json(&format!("/api/v1/watch/{uuid}?recheck=1"))
        .await;
    app.run_checks().await;
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["last_error"], false, "{w}");
    assert_eq!(w["browser_steps_last_error_step"], json!(null), "{w}");
}

#[tokio::test]
async fn steps_that_cannot_run_are_refused_or_reported() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    srv.set("/p", Page::html("<p>x</p>"));
    for (steps, wanted) in [
        (
            json!([step("Teleport", "", "")]),
            "unknown operation 'Teleport'",
        ),
        (json!([step("Click element", "", "")]), "needs a selector"),
        (
            json!([step("Click X,Y", "", "left")]),
            "not an x,y position",
        ),
        (
            json!([step("Wait for seconds", "", "soon")]),
            "number of seconds",
        ),
    ] {
        let r = app
            .req(Method::POST, "/api/v1/watch")
            .json(&json!({"url": srv.url("/p"), "browser_steps": steps}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let body = r.text().await.unwrap();
        assert!(
            body.contains("browser_steps") && body.contains(wanted),
            "{wanted}: {body}"
        );
    }
    // Steps with the plain HTTP fetcher: upstream's error, nothing fetched.
    let plain = app
        .create_watch(json!({
            "url": srv.url("/p"),
            "fetch_backend": "html_requests",
            "browser_steps": [step("Click element", "#go", "")],
        }))
        .await;
    app.run_checks().await;
    let (_, w) = app.get_json(&format!("/api/v1/watch/{plain}")).await;
    assert_eq!(
        w["last_error"],
        "This watch has Browser Steps configured and so it cannot run with the 'Basic fast Plaintext/HTTP Client', either remove the Browser Steps or select a Chrome fetcher."
    );
    assert_eq!(srv.hits("/p"), 0);
}

#[tokio::test]
async fn a_change_notification_carries_the_screenshot_when_asked() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    let cap = testkit::CaptureServer::start();
    srv.set("/shop", Page::html(JS_PAGE));
    let uuid = app
        .create_watch(json!({
            "url": srv.url("/shop"),
            "fetch_backend": "html_webdriver",
            "notification_screenshot": true,
            "notification_urls": [format!("json://{}/hook", cap.host_port())],
        }))
        .await;
    app.run_checks().await;
    srv.set("/shop", Page::html(JS_PAGE.replace("40 + 2", "40 + 3")));
    app.get_json(&format!("/api/v1/watch/{uuid}?recheck=1"))
        .await;
    app.run_checks().await;
    let (_, history) = app.get_json(&format!("/api/v1/watch/{uuid}/history")).await;
    let newest: i64 = history
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.parse().unwrap())
        .max()
        .unwrap();
    let received = app
        .store
        .receive(10, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].job.screenshot,
        Some(newest),
        "the new snapshot's"
    );

    // Delivered, the job's screenshot is read from the store and attached.
    let dispatcher = changewatch_engine::notifications::Dispatcher::from_config(
        app.store.clone(),
        &changewatch_core::Config {
            allow_private_addresses: true,
            ..changewatch_core::Config::default()
        },
    )
    .unwrap();
    dispatcher.attempt(&received[0]).await;
    let sent = cap.take();
    assert_eq!(sent.len(), 1);
    let attachments = sent[0].json()["attachments"].clone();
    assert_eq!(attachments[0]["mimetype"], "image/jpeg", "{attachments}");
    let stored = app
        .req(Method::GET, &format!("/api/v1/watch/{uuid}/screenshot"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    use base64::Engine;
    assert_eq!(
        attachments[0]["base64"],
        base64::engine::general_purpose::STANDARD.encode(&stored)
    );
}

#[tokio::test]
async fn an_extra_browser_from_the_settings_fetches_its_watches() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    srv.set("/shop", Page::html(JS_PAGE));
    let remote = testkit::RemoteChrome::start();
    let put = |body: serde_json::Value| {
        app.client
            .put(format!("{}/ui/settings", app.base))
            .header("x-changewatch-ui", "1")
            .json(&body)
            .send()
    };
    // Refused: not a DevTools URL, a name that cannot be a fetch method.
    for (bad, wanted) in [
        (
            json!([{"browser_name": "remote", "browser_connection_url": "http://x/"}]),
            "not a ws:// or wss://",
        ),
        (
            json!([{"browser_name": "a b", "browser_connection_url": "ws://x/"}]),
            "may only have",
        ),
    ] {
        let r = put(json!({"extra_browsers": bad})).await.unwrap();
        assert_eq!(r.status(), 400);
        let body = r.text().await.unwrap();
        assert!(
            body.contains("extra_browsers") && body.contains(wanted),
            "{body}"
        );
    }
    let r = put(json!({"extra_browsers": [
        {"browser_name": "remote", "browser_connection_url": remote.ws_url()},
    ]}))
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // A watch may name it, and no other.
    let r = app
        .req(Method::POST, "/api/v1/watch")
        .json(&json!({"url": srv.url("/shop"), "fetch_backend": "extra_browser_nothere"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("'extra_browser_nothere' names no browser"),
        "{body}"
    );
    let uuid = app
        .create_watch(json!({"url": srv.url("/shop"), "fetch_backend": "extra_browser_remote"}))
        .await;
    app.run_checks().await;
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["last_error"], false, "{w}");
    let text = latest_snapshot(&app, &uuid).await;
    assert!(text.contains("In stock: 42 units"), "{text}");

    // The browser removed from the settings: the watch says so instead of fetching another way.
    put(json!({"extra_browsers": []})).await.unwrap();
    app.get_json(&format!("/api/v1/watch/{uuid}?recheck=1"))
        .await;
    let hits = srv.hits("/shop");
    app.run_checks().await;
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(
        w["last_error"],
        "Exception: fetch_backend 'extra_browser_remote' names no browser in the settings' extra browsers",
        "{w}"
    );
    assert_eq!(srv.hits("/shop"), hits, "not fetched another way");
}

#[tokio::test]
async fn a_browser_watch_goes_through_its_proxy() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    srv.set("/shop", Page::html(JS_PAGE));
    let proxy = testkit::ProxyServer::http(Some(("u", "p")));
    let r = app
        .client
        .put(format!("{}/ui/settings", app.base))
        .header("x-changewatch-ui", "1")
        .json(&json!({"extra_proxies": [
            {"proxy_name": "office", "proxy_url": format!("http://u:p@{}", proxy.addr())},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let uuid = app
        .create_watch(json!({
            "url": srv.url("/shop"),
            "fetch_backend": "html_webdriver",
            "proxy": "ui-0office",
        }))
        .await;
    app.run_checks().await;
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["last_error"], false, "{w}");
    assert!(
        latest_snapshot(&app, &uuid)
            .await
            .contains("In stock: 42 units")
    );
    let asked = proxy.requests();
    assert!(
        asked
            .iter()
            .any(|r| r.allowed && r.target.ends_with("/shop") && r.auth.is_some()),
        "the page came through the proxy: {asked:?}"
    );
}

/// A restock watch fetched by the browser: upstream's out-of-stock scan of the rendered page
/// decides what the page's data leaves open (here, none at all: a plain fetch would be
/// upstream's "unable to extract" error) and overrides data that claims the product is in stock.
#[tokio::test]
async fn a_browser_restock_watch_reads_stock_from_the_rendered_page() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    let page = |block: &str, data: &str| {
        Page::html(format!(
            r#"<!doctype html><html><head><title>Kettle</title>{data}<style>
            body {{ margin: 0 }} header {{ height: 380px }}</style></head><body>
            <header>Shop</header><section><h1>Kettle</h1>{block}</section></body></html>"#
        ))
    };
    let in_stock_data = r#"<script type="application/ld+json">{"@type":"Product","offers":{"price":"20","priceCurrency":"EUR","availability":"InStock"}}</script>"#;
    srv.set("/kettle", page("<p>Sold out</p>", ""));
    let uuid = app
        .create_watch(json!({
            "url": srv.url("/kettle"),
            "processor": "restock_diff",
            "fetch_backend": "html_webdriver",
            "processor_config_restock_diff": {"in_stock_processing": "all_changes"},
        }))
        .await;
    app.run_checks().await;
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["last_error"], false, "{w}");
    assert_eq!(
        latest_snapshot(&app, &uuid).await,
        "In Stock: False - Price:"
    );

    // Data says in stock and the text agrees: in stock, with the data's price.
    srv.set(
        "/kettle",
        page(r#"<button>Add to cart</button>"#, in_stock_data),
    );
    app.req(Method::GET, &format!("/api/v1/watch/{uuid}?recheck=1"))
        .send()
        .await
        .unwrap();
    app.run_checks().await;
    assert_eq!(
        latest_snapshot(&app, &uuid).await,
        "In Stock: True - Price: 20.0"
    );

    // The data still says in stock, the page says sold out: the page wins.
    srv.set("/kettle", page("<p>Sold out</p>", in_stock_data));
    app.req(Method::GET, &format!("/api/v1/watch/{uuid}?recheck=1"))
        .send()
        .await
        .unwrap();
    app.run_checks().await;
    assert_eq!(
        latest_snapshot(&app, &uuid).await,
        "In Stock: False - Price: 20.0"
    );
}

/// A browser shows a PDF in its viewer and cannot hand over the file: the first check says so
/// as upstream does and remembers the content type; from then on the watch is known to be a
/// PDF and is fetched with the plain client, so its text is recorded.
#[tokio::test]
async fn a_pdf_watch_set_to_the_browser_falls_back_to_the_plain_client() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    srv.set(
        "/menu",
        Page::bare(testkit::pdf::document(&[&["Menu", "Soup 4.50"]]))
            .header("Content-Type", "application/pdf"),
    );
    let uuid = app
        .create_watch(json!({"url": srv.url("/menu"), "fetch_backend": "html_webdriver"}))
        .await;
    app.run_checks().await;
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(
        w["last_error"],
        "Content is a PDF but this fetcher could not provide the original PDF file, try the 'Basic fast Plaintext/HTTP Client' fetcher instead.",
        "{w}"
    );
    assert_eq!(w["content-type"], "application/pdf", "{w}");

    app.req(Method::GET, &format!("/api/v1/watch/{uuid}?recheck=1"))
        .send()
        .await
        .unwrap();
    app.run_checks().await;
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["last_error"], false, "{w}");
    let text = latest_snapshot(&app, &uuid).await;
    assert!(text.contains("Soup 4.50"), "{text}");
}
