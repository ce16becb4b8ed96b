//! Filters, ignore text and trigger text set through the API, observed through the API.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::json;
use testkit::{FixtureServer, Page};

async fn latest(app: &TestApp, uuid: &str) -> String {
    let r = app
        .req(Method::GET, &format!("/api/v1/watch/{uuid}/history/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.text().await.unwrap()
}

async fn history_n(app: &TestApp, uuid: &str) -> i64 {
    app.get_json(&format!("/api/v1/watch/{uuid}")).await.1["history_n"]
        .as_i64()
        .unwrap()
}

async fn recheck(app: &TestApp, uuid: &str) {
    let r = app
        .req(Method::GET, &format!("/api/v1/watch/{uuid}?recheck=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    app.run_checks().await;
}

fn page(price: &str, updated: &str, stock: &str) -> Page {
    Page::html(format!(
        "<html><body><nav>Home | Shop</nav><div id=product><h1>Widget</h1><p class=price>Price: {price}</p>\
         <p class=updated>Updated {updated}</p><p class=stock>{stock}</p></div><footer>(c) shop</footer></body></html>"
    ))
}

#[tokio::test]
async fn include_filter_and_ignore_text() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    srv.set("/p", page("10", "10:00", "Sold out"));
    let uuid = app
        .create_watch(json!({
            "url": srv.url("/p"),
            "include_filters": ["#product"],
            "ignore_text": ["updated"],
        }))
        .await;
    app.run_checks().await;
    let text = latest(&app, &uuid).await;
    assert!(
        text.contains("Price: 10") && !text.contains("Home") && !text.contains("(c) shop"),
        "{text}"
    );

    // Only an ignored line changes: no new snapshot.
    srv.set("/p", page("10", "11:30", "Sold out"));
    recheck(&app, &uuid).await;
    assert_eq!(history_n(&app, &uuid).await, 1);
    // Outside the filter: nothing either.
    srv.set("/p", Page::html(
        "<html><body><nav>Home | Shop | New</nav><div id=product><h1>Widget</h1><p class=price>Price: 10</p>\
         <p class=updated>Updated 12:00</p><p class=stock>Sold out</p></div><footer>(c) shop</footer></body></html>",
    ));
    recheck(&app, &uuid).await;
    assert_eq!(history_n(&app, &uuid).await, 1);
    // Inside the filter: a change.
    srv.set("/p", page("12", "12:00", "Sold out"));
    recheck(&app, &uuid).await;
    assert_eq!(history_n(&app, &uuid).await, 2);

    // A filter that stops matching is reported and counted, and nothing is stored.
    let r = app
        .req(Method::PUT, &format!("/api/v1/watch/{uuid}"))
        .json(&json!({"include_filters": ["#gone"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    recheck(&app, &uuid).await;
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert!(
        w["last_error"]
            .as_str()
            .unwrap()
            .starts_with("Warning, no filters were found")
    );
    assert_eq!(w["consecutive_filter_failures"], 1);
    assert_eq!(w["history_n"], 2);
}

#[tokio::test]
async fn trigger_text_holds_changes_back_until_it_appears() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    srv.set("/p", page("10", "10:00", "Sold out"));
    let uuid = app
        .create_watch(json!({"url": srv.url("/p"), "trigger_text": ["in stock"]}))
        .await;
    app.run_checks().await;
    assert_eq!(history_n(&app, &uuid).await, 1, "the baseline is stored");
    // The price moves, but the trigger is absent: not a change.
    srv.set("/p", page("9", "10:05", "Sold out"));
    recheck(&app, &uuid).await;
    assert_eq!(history_n(&app, &uuid).await, 1);
    // The trigger appears: a change.
    srv.set("/p", page("9", "10:10", "In stock"));
    recheck(&app, &uuid).await;
    let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(w["history_n"], 2);
    assert!(w["last_changed"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn only_added_lines_count_when_removed_and_replaced_are_off() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    srv.set("/list", Page::text("alpha\nbeta\ngamma"));
    let uuid = app
        .create_watch(json!({
            "url": srv.url("/list"),
            "filter_text_removed": false,
            "filter_text_replaced": false,
        }))
        .await;
    app.run_checks().await;
    assert_eq!(history_n(&app, &uuid).await, 1);
    // A line goes away: not a change of the kind asked for.
    srv.set("/list", Page::text("alpha\ngamma"));
    recheck(&app, &uuid).await;
    assert_eq!(history_n(&app, &uuid).await, 1);
    // A line is added (compared with the previous check, not the baseline): a change.
    srv.set("/list", Page::text("alpha\ngamma\ndelta"));
    recheck(&app, &uuid).await;
    assert_eq!(history_n(&app, &uuid).await, 2);
    assert_eq!(latest(&app, &uuid).await.trim(), "delta");
}
