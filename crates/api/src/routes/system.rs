//! /api/v1/systeminfo and the unauthenticated /api/v1/full-spec.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use changewatch_store::Kind;
use serde_json::json;
use std::sync::LazyLock;

use crate::error::{ApiError, json_response};
use crate::state::AppState;
use crate::stored::decode_watch;
use crate::validate::openapi;

/// The OpenAPI document of exactly the endpoints this crate serves, before the request-body
/// schemas are filled in from the model ([`full_spec_yaml`]).
pub const SPEC_YAML: &str = include_str!("../../api-spec.yaml");

/// The served document: [`SPEC_YAML`] with its `# @generated` lines replaced by the schemas
/// the model's write checks run, written as JSON (YAML's flow style), so the spec describes
/// every body exactly as it is validated.
pub fn full_spec_yaml() -> &'static str {
    static SPEC: LazyLock<String> = LazyLock::new(|| {
        let mut out = String::with_capacity(SPEC_YAML.len() * 3);
        for line in SPEC_YAML.lines() {
            match line.trim() {
                "# @generated request-body-schemas" => {
                    for (name, schema) in openapi::request_body_schemas() {
                        out.push_str(&format!("    {name}: {schema}\n"));
                    }
                }
                "# @generated import-field-parameters" => {
                    for name in openapi::watch_field_names().filter(|n| {
                        // Already listed with their own meaning.
                        !["tag", "proxy"].contains(n)
                    }) {
                        let param =
                            json!({"name": name, "in": "query", "schema": {"type": "string"}});
                        out.push_str(&format!("        - {param}\n"));
                    }
                }
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    });
    &SPEC
}

/// Upstream's grace period before a watch counts as overdue, so that a check that is merely
/// queued behind others is not reported.
const OVERDUE_GRACE_SECS: i64 = 300;

/// Routes behind the API key.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/systeminfo", get(systeminfo))
}

/// Routes open to everyone: clients fetch the spec before they have a key.
pub fn public_routes() -> Router<AppState> {
    Router::new().route("/api/v1/full-spec", get(full_spec))
}

async fn systeminfo(State(state): State<AppState>) -> Result<Response, ApiError> {
    let settings = state.settings().await?;
    let items = state.store.list(&state.tenant, Kind::Watch).await?;
    let tags = state.tags().await?;
    let now = state.now();
    let mut overdue = Vec::new();
    for item in &items {
        let watch = decode_watch(item)?;
        if watch.paused {
            continue;
        }
        let threshold = watch
            .effective_check_interval(&settings)
            .map_or(0, |s| i64::try_from(s).unwrap_or(i64::MAX));
        if now - watch.last_checked - OVERDUE_GRACE_SECS > threshold {
            overdue.push(item.key.id.clone());
        }
    }
    let queue_size = state.queue_size().await?;
    let base_url = state
        .config
        .base_url
        .clone()
        .or(settings.application.base_url.clone())
        .unwrap_or_default();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "all_muted": settings.application.all_muted,
            "all_paused": settings.application.all_paused,
            "base_url": base_url,
            "new_version_available": false,
            "overdue_watches": overdue,
            "queue_size": queue_size,
            "tag_count": tags.len(),
            "uptime": state.started.elapsed().as_secs_f64(),
            "version": env!("CARGO_PKG_VERSION"),
            "watch_count": items.len(),
        }),
    ))
}

async fn full_spec() -> Response {
    let mut resp = (StatusCode::OK, full_spec_yaml()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/yaml"),
    );
    resp
}
