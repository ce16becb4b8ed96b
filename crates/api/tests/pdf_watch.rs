//! A PDF watch through HTTP only: its text is stored and diffed like a page's, with upstream's
//! checksum line; a broken PDF is the watch's error and the server goes on checking.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::json;
use testkit::{FixtureServer, Page};

async fn get_text(app: &TestApp, path: &str) -> (u16, String) {
    let r = app.req(Method::GET, path).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn recheck(app: &TestApp, uuid: &str) {
    let (status, _) = get_text(app, &format!("/api/v1/watch/{uuid}?recheck=1")).await;
    assert_eq!(status, 200);
    app.run_checks().await;
}

fn checksum_line(raw: &[u8]) -> String {
    changewatch_core::pdf::checksum_line(raw)
}

#[tokio::test]
async fn a_pdf_watch_stores_and_diffs_the_documents_text() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    let v1 = testkit::pdf::document(&[&["Opening hours", "Price: 10.00 EUR"], &["Second page"]]);
    let v2 = testkit::pdf::document(&[&["Opening hours", "Price: 12.50 EUR"], &["Second page"]]);
    srv.set("/doc", Page::new("application/pdf", v1.clone()));
    let uuid = app.create_watch(json!({"url": srv.url("/doc")})).await;
    app.run_checks().await;

    let (status, first) = get_text(&app, &format!("/api/v1/watch/{uuid}/history/latest")).await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = first
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let want = checksum_line(&v1);
    assert_eq!(
        lines,
        [
            "Opening hours",
            "Price: 10.00 EUR",
            "Second page",
            want.as_str()
        ],
        "{first}"
    );

    // Served with a generic type this time: the bytes say PDF.
    srv.set("/doc", Page::new("application/octet-stream", v2.clone()));
    recheck(&app, &uuid).await;
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["last_error"], false, "{w}");
    let (_, h) = app.get_json(&format!("/api/v1/watch/{uuid}/history")).await;
    assert_eq!(h.as_object().unwrap().len(), 2, "{h}");

    let (status, diff) = get_text(
        &app,
        &format!("/api/v1/watch/{uuid}/difference/previous/latest?format=text"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(diff.contains("Price: 10.00 EUR"), "{diff}");
    assert!(diff.contains("Price: 12.50 EUR"), "{diff}");
    assert!(diff.contains(&checksum_line(&v1)), "{diff}");
    assert!(diff.contains(&checksum_line(&v2)), "{diff}");
    assert!(!diff.contains("(changed) Opening hours"), "{diff}");
}

#[tokio::test]
async fn a_broken_pdf_is_the_watchs_error_and_checks_go_on() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    let good = testkit::pdf::document(&[&["Still readable"]]);
    srv.set(
        "/broken",
        Page::new("application/pdf", b"%PDF-1.7\n1 0 obj\n<< /Type".to_vec()),
    );
    srv.set("/good", Page::new("application/pdf", good.clone()));
    let broken = app.create_watch(json!({"url": srv.url("/broken")})).await;
    let fine = app.create_watch(json!({"url": srv.url("/good")})).await;
    app.run_checks().await;

    let (_, w) = app.get_json(&format!("/api/v1/watch/{broken}")).await;
    let err = w["last_error"].as_str().unwrap_or_default();
    assert!(
        err.starts_with("Exception: the PDF could not be read"),
        "{w}"
    );
    let (_, w) = app.get_json(&format!("/api/v1/watch/{fine}")).await;
    assert_eq!(w["last_error"], false, "{w}");

    // The broken document mended: the same watch checks normally.
    srv.set("/broken", Page::new("application/pdf", good.clone()));
    recheck(&app, &broken).await;
    let (_, w) = app.get_json(&format!("/api/v1/watch/{broken}")).await;
    assert_eq!(w["last_error"], false, "{w}");
    let (_, text) = get_text(&app, &format!("/api/v1/watch/{broken}/history/latest")).await;
    assert!(text.contains("Still readable"), "{text}");
    assert!(text.contains(&checksum_line(&good)), "{text}");
}
