//! Search endpoint through HTTP only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use common::spawn_app;
use serde_json::{Value, json};

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn exact_partial_and_tag_filter() {
    let app = spawn_app().await;
    let shop = app
        .create_watch(
            json!({"url": "https://shop.example.com/item", "title": "Price Watch", "tag": "Shops"}),
        )
        .await;
    let news = app
        .create_watch(json!({"url": "https://news.example.com/", "title": "News"}))
        .await;

    // Exact (case-insensitive) on title or URL.
    let (status, v) = app.get_json("/api/v1/search?q=price%20watch").await;
    assert_eq!(status, 200);
    assert_eq!(keys(&v), [shop.as_str()]);
    let entry = &v[&shop];
    assert_eq!(
        entry,
        &json!({
            "last_changed": 0,
            "last_checked": 0,
            "last_error": false,
            "title": "Price Watch",
            "url": "https://shop.example.com/item",
            "viewed": false
        })
    );
    let (_, v) = app
        .get_json("/api/v1/search?q=HTTPS://NEWS.EXAMPLE.COM/")
        .await;
    assert_eq!(keys(&v), [news.as_str()]);
    let (_, v) = app.get_json("/api/v1/search?q=example").await;
    assert_eq!(v, json!({}), "not a partial search");

    // Partial: substring of title or URL.
    let (_, v) = app.get_json("/api/v1/search?q=example&partial=true").await;
    assert_eq!(keys(&v), sorted(vec![shop.clone(), news.clone()]));
    let (_, v) = app.get_json("/api/v1/search?q=pric&partial=1").await;
    assert_eq!(keys(&v), [shop.as_str()]);

    // Tag filter by name (case-insensitive); an unknown tag matches nothing.
    let (_, v) = app
        .get_json("/api/v1/search?q=example&partial=true&tag=shops")
        .await;
    assert_eq!(keys(&v), [shop.as_str()]);
    let (_, v) = app
        .get_json("/api/v1/search?q=example&partial=true&tag=nothing")
        .await;
    assert_eq!(v, json!({}));
}

#[tokio::test]
async fn query_is_required() {
    let app = spawn_app().await;
    for path in [
        "/api/v1/search",
        "/api/v1/search?q=",
        "/api/v1/search?q=%20%20",
    ] {
        let (status, v) = app.get_json(path).await;
        assert_eq!(status, 400);
        assert_eq!(
            v,
            json!({"message": "Search query 'q' parameter is required"})
        );
    }
}
