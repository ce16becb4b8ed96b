//! /api/v1/systeminfo and /api/v1/full-spec through HTTP only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use changewatch_api::ApiConfig;
use common::{spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn systeminfo_counts_and_overdue() {
    let app = spawn_app_with(ApiConfig {
        page_watch_limit: None,
        minimum_recheck_secs: 3,
        base_url: Some("https://cw.example".into()),
        salted_pass: None,
        open_without_password: true,
        api_key_fixed: false,
        trusted_proxy_hops: 0,
        work_after_reply: true,
    })
    .await;
    let never = app
        .create_watch(json!({"url": "https://example.com/a"}))
        .await;
    app.create_watch(json!({"url": "https://example.com/b", "paused": true, "tag": "Shops"}))
        .await;
    let (s, v) = app.get_json("/api/v1/systeminfo").await;
    assert_eq!(s, 200);
    assert_eq!(v["watch_count"], 2);
    assert_eq!(v["tag_count"], 1);
    assert_eq!(v["queue_size"], 0);
    assert_eq!(v["all_paused"], false);
    assert_eq!(v["all_muted"], false);
    assert_eq!(v["new_version_available"], false);
    assert_eq!(v["base_url"], "https://cw.example");
    assert!(v["uptime"].is_f64());
    assert!(v["version"].is_string());
    // Never checked and not paused: overdue; the paused one is not.
    assert_eq!(v["overdue_watches"], json!([never]));

    app.req(Method::GET, &format!("/api/v1/watch/{never}?recheck=1"))
        .send()
        .await
        .unwrap();
    let (_, v) = app.get_json("/api/v1/systeminfo").await;
    assert_eq!(v["queue_size"], 1);
}

#[tokio::test]
async fn systeminfo_needs_the_key_but_full_spec_does_not() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(format!("{}/api/v1/systeminfo", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = app
        .client
        .get(format!("{}/api/v1/full-spec", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/yaml");
    let served = r.text().await.unwrap();
    assert!(served.starts_with("openapi: 3.1"));
    assert_eq!(served, changewatch_api::full_spec_yaml());
    // The generated parts replaced their markers, as JSON flow mappings YAML reads as is.
    assert!(!served.contains("# @generated"));
    for name in ["CreateWatch", "UpdateWatch", "CreateTag", "UpdateTag"] {
        let line = served
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("{name} missing"));
        let schema: serde_json::Value =
            serde_json::from_str(line.split_once(": ").unwrap().1).unwrap();
        assert_eq!(schema["additionalProperties"], json!(false), "{name}");
    }
    let import_params = served
        .lines()
        .filter(|l| l.contains(r#""in":"query""#))
        .count();
    assert!(
        import_params > 50,
        "every watch field is an import parameter"
    );
}

/// `(path, methods)` of the spec, read from its `paths:` block by indentation.
fn spec_operations(spec: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_paths = false;
    for line in spec.lines() {
        if line == "paths:" {
            in_paths = true;
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  /") {
            out.push((format!("/{}", p.trim_end_matches(':')), Vec::new()));
        } else if let Some(m) = line.strip_prefix("    ")
            && !m.starts_with(' ')
            && let Some(m) = m.strip_suffix(':')
            && ["get", "post", "put", "delete", "patch"].contains(&m)
        {
            out.last_mut().unwrap().1.push(m.to_uppercase());
        }
    }
    out
}

/// Paths given to `.route(...)` in the route modules.
fn registered_paths() -> Vec<String> {
    let sources = [
        include_str!("../src/routes/watches.rs"),
        include_str!("../src/routes/history.rs"),
        include_str!("../src/routes/tags.rs"),
        include_str!("../src/routes/search.rs"),
        include_str!("../src/routes/notifications.rs"),
        include_str!("../src/routes/system.rs"),
        include_str!("../src/routes/import.rs"),
        include_str!("../src/routes/ops.rs"),
        include_str!("../src/routes/backup.rs"),
        include_str!("../src/routes/datastore_import.rs"),
    ];
    let mut out = Vec::new();
    for src in sources {
        for part in src.split(".route(").skip(1) {
            let part = part.trim_start().trim_start_matches('"');
            out.push(part.split('"').next().unwrap().to_string());
        }
    }
    out
}

#[tokio::test]
async fn spec_and_router_describe_the_same_endpoints() {
    let app = spawn_app().await;
    let spec = changewatch_api::SPEC_YAML;
    let ops = spec_operations(spec);
    let spec_paths: Vec<&String> = ops.iter().map(|(p, _)| p).collect();
    let mut registered = registered_paths();
    registered.sort();
    let mut documented: Vec<String> = spec_paths.iter().map(|p| p.to_string()).collect();
    documented.sort();
    assert_eq!(registered, documented, "routes vs spec paths");

    // Every documented operation is routed: not Flask's 404 page, not 405.
    let id = "00000000-0000-4000-8000-000000000000";
    for (path, methods) in &ops {
        assert!(!methods.is_empty(), "{path} has no operations");
        for m in methods {
            let url = path.replace("{uuid}", id);
            let r = app
                .req(Method::from_bytes(m.as_bytes()).unwrap(), &url)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let ct = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            assert_ne!(r.status().as_u16(), 405, "{m} {path}");
            assert!(!ct.starts_with("text/html"), "{m} {path} is not routed");
        }
    }
}
