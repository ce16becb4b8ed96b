//! The browser fetcher against Debian's Chromium (installed by `make test-deps`) and real
//! fixture pages: text that exists only after JavaScript, the main response's status, the
//! watch's script and delay, and the address guard on everything the page loads.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::PathBuf;
use std::time::Duration;

use changewatch_browser::{BrowserConfig, BrowserFetcher, BrowserRequest, Endpoint};
use changewatch_core::fetch::{FetchError, FetchRequest};
use changewatch_core::ssrf::AddressPolicy;
use testkit::{FixtureServer, Page};

fn chromium() -> PathBuf {
    let path = PathBuf::from("/usr/bin/chromium");
    assert!(
        path.exists(),
        "the browser tests need Debian's chromium: run `make test-deps`"
    );
    path
}

fn fetcher(policy: AddressPolicy) -> BrowserFetcher {
    BrowserFetcher::new(BrowserConfig {
        endpoint: Endpoint::Launch {
            executable: chromium(),
        },
        policy,
        max_pages: 2,
        max_bytes: 10 * 1024 * 1024,
        user_agent: "changewatch-test".into(),
    })
}

fn get(url: String) -> BrowserRequest {
    let mut request = FetchRequest::get(url);
    request.timeout = Duration::from_secs(30);
    BrowserRequest {
        request,
        delay: Duration::ZERO,
        js: None,
    }
}

const JS_PAGE: &str = r#"<!doctype html><html><head><title>t</title></head><body>
<div id="out">Loading…</div>
<script>
  document.getElementById('out').textContent = 'Price: ' + (6 * 7) + ' EUR';
  setTimeout(function () { document.body.insertAdjacentHTML('beforeend', '<p id="late">late text</p>'); }, 300);
</script></body></html>"#;

#[tokio::test]
async fn javascript_runs_before_the_page_is_read() {
    let srv = FixtureServer::start();
    srv.set("/js", Page::html(JS_PAGE).header("Server", "Fixture/1"));
    let f = fetcher(AddressPolicy::allow_all());

    let page = f.fetch(&get(srv.url("/js"))).await.unwrap();
    assert!(page.text.contains("Price: 42 EUR"), "{}", page.text);
    assert!(!page.text.contains("Loading…"));
    assert_eq!(page.status, 200);
    assert_eq!(
        page.content_type.as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.server.as_deref(), Some("fixture/1"));
    let seen = srv.seen("/js");
    assert_eq!(seen[0].header("user-agent"), Some("changewatch-test"));

    // The delay lets the late script run; the watch's own script runs after it.
    let mut req = get(srv.url("/js"));
    req.delay = Duration::from_millis(800);
    req.js = Some("document.getElementById('out').textContent = 'changed by the watch';".into());
    let page = f.fetch(&req).await.unwrap();
    assert!(page.text.contains("late text"), "{}", page.text);
    assert!(page.text.contains("changed by the watch"), "{}", page.text);
    f.shutdown().await;
}

#[tokio::test]
async fn the_main_response_status_is_the_check_error() {
    let srv = FixtureServer::start();
    srv.set("/gone", Page::html("<p>not here</p>").status(404));
    let f = fetcher(AddressPolicy::allow_all());
    let err = f.fetch(&get(srv.url("/gone"))).await.unwrap_err();
    assert!(matches!(err, FetchError::Status { status: 404 }), "{err:?}");
    let mut req = get(srv.url("/gone"));
    req.request.ignore_status_codes = true;
    let page = f.fetch(&req).await.unwrap();
    assert_eq!(page.status, 404);
    assert!(page.text.contains("not here"));
    f.shutdown().await;
}

#[tokio::test]
async fn a_page_cannot_make_the_browser_load_private_addresses() {
    let srv = FixtureServer::start();
    let port = srv
        .url("/")
        .split(':')
        .nth(2)
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    // The page is on an allowed name; everything it pulls from loopback or the metadata
    // address must be refused before it leaves the browser.
    let page_html = format!(
        r#"<!doctype html><html><body><p id="p">public page</p>
<img src="http://127.0.0.1:{port}/secret.png">
<iframe src="http://127.0.0.1:{port}/frame"></iframe>
<script src="http://127.0.0.1:{port}/secret.js"></script>
<script>
  fetch('http://127.0.0.1:{port}/xhr').catch(function () {{}});
  fetch('http://169.254.169.254/latest/meta-data/').catch(function () {{}});
</script></body></html>"#
    );
    srv.set("/public", Page::html(page_html));
    for secret in ["/secret.png", "/frame", "/secret.js", "/xhr", "/private"] {
        srv.set(secret, Page::html("<p>internal</p>"));
    }
    srv.set(
        "/hop",
        Page::redirect(&format!("http://127.0.0.1:{port}/private")),
    );
    let f = fetcher(AddressPolicy {
        allow_private: false,
        allowed_hosts: vec!["localhost".into()],
    });

    let public = srv.url("/public").replace("127.0.0.1", "localhost");
    let mut req = get(public);
    req.delay = Duration::from_millis(500);
    let page = f.fetch(&req).await.unwrap();
    assert!(page.text.contains("public page"));
    for secret in ["/secret.png", "/frame", "/secret.js", "/xhr"] {
        assert_eq!(
            srv.hits(secret),
            0,
            "{secret} was loaded through the browser"
        );
    }

    // Navigating to a private address, directly or by a redirect, is the check's error.
    let err = f.fetch(&get(srv.url("/private"))).await.unwrap_err();
    assert!(matches!(err, FetchError::Blocked { .. }), "{err:?}");
    let hop = srv.url("/hop").replace("127.0.0.1", "localhost");
    let err = f.fetch(&get(hop)).await.unwrap_err();
    assert!(matches!(err, FetchError::RedirectBlocked { .. }), "{err:?}");
    assert_eq!(srv.hits("/private"), 0);
    f.shutdown().await;
}
