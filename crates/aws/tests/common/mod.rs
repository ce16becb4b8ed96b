//! What the aws function tests share: API Gateway's HTTP API (payload v2) event for a request,
//! and a call of the API function's router with one.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test support

use std::collections::HashMap;

use base64::Engine;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The HTTP API event `sam local generate-event apigateway http-api-proxy` gives (the file
/// `sam local invoke -e` takes, infra/local/events), made into `method path?query` with
/// `content_type`, the API key when given, and `body` (base64, as API Gateway sends binary).
pub fn http_event(
    method: &str,
    path: &str,
    query: &str,
    content_type: &str,
    key: Option<&str>,
    body: Option<&[u8]>,
) -> String {
    let mut ev: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/../../infra/local/events/http-api.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    ev["rawPath"] = json!(path);
    ev["rawQueryString"] = json!(query);
    let params: HashMap<&str, &str> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    ev["queryStringParameters"] = json!(params);
    ev["pathParameters"] = json!({});
    ev["cookies"] = json!([]);
    ev["requestContext"]["http"]["method"] = json!(method);
    ev["requestContext"]["http"]["path"] = json!(path);
    let mut headers = json!({ "content-type": content_type });
    if let Some(k) = key {
        headers["x-api-key"] = json!(k);
    }
    ev["headers"] = headers;
    match body {
        Some(b) => {
            ev["body"] = json!(base64::engine::general_purpose::STANDARD.encode(b));
            ev["isBase64Encoded"] = json!(true);
        }
        None => {
            ev["body"] = Value::Null;
            ev["isBase64Encoded"] = json!(false);
        }
    }
    ev.to_string()
}

/// The router's answer to an event: status and body bytes (up to 64 MB).
pub async fn call(app: &axum::Router, event: String) -> (u16, Vec<u8>) {
    let req = lambda_http::request::from_str(&event).unwrap();
    let resp = app
        .clone()
        .oneshot(req.map(axum::body::Body::new))
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap();
    (status, bytes.to_vec())
}

/// [`call`] with the body read as JSON (`Null` when it is not).
pub async fn json_call(app: &axum::Router, event: String) -> (u16, Value) {
    let (status, bytes) = call(app, event).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The functions' configuration over provisioned tables and queues (`CW_*` resource names),
/// with `extra` variables on top (`API_ACCESS_TOKEN`, `CW_TENANT`, …).
pub fn stack_config(
    p: &changewatch_store::aws::provision::Provisioned,
    extra: &[(&str, &str)],
) -> changewatch_aws::AwsConfig {
    let mut env: HashMap<&str, String> = HashMap::from([
        ("CW_WATCHES_TABLE", p.resources.watches_table.clone()),
        ("CW_SNAPSHOTS_TABLE", p.resources.snapshots_table.clone()),
        ("CW_CHECKS_QUEUE_URL", p.resources.checks_queue_url.clone()),
        (
            "CW_RECHECKS_QUEUE_URL",
            p.resources.rechecks_queue_url.clone(),
        ),
    ]);
    for (k, v) in extra {
        env.insert(k, (*v).to_string());
    }
    changewatch_aws::AwsConfig::from_lookup(|k| env.get(k).cloned()).unwrap()
}
