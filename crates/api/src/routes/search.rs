//! /api/v1/search: watches whose title, URL or last error match a query.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use changewatch_core::model::Watch;
use changewatch_store::Kind;
use serde_json::{Map, Value};

use super::history::flag;
use crate::error::{ApiError, json_response};
use crate::state::AppState;
use crate::stored::{decode_watch, history_info};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/search", get(search))
}

/// Upstream compares lower-cased strings: equality by default, substring with `partial`.
/// An empty title or error never matches.
fn matches(watch: &Watch, query: &str, partial: bool) -> bool {
    let hit = |field: &str| {
        let field = field.to_lowercase();
        if partial {
            field.contains(query)
        } else {
            field == query
        }
    };
    watch
        .title
        .as_deref()
        .is_some_and(|t| !t.is_empty() && hit(t))
        || hit(&watch.url)
        || watch
            .last_error
            .as_str()
            .is_some_and(|e| !e.is_empty() && hit(e))
}

/// The answer is the bare `{uuid: {...}}` map (upstream's spec wraps it in `watches`, its code
/// does not, and clients follow the code).
async fn search(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = q
        .get("q")
        .map(|s| s.trim().to_lowercase())
        .unwrap_or_default();
    if query.is_empty() {
        return Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            "Search query 'q' parameter is required",
        ));
    }
    let partial = flag(&q, "partial", false)?;
    // Only assigned tags count here, not url_match_pattern ones, as upstream. An unknown tag
    // name matches nothing (upstream fails with a 500).
    let tag_filter: Option<Option<String>> = match q.get("tag").map(|t| t.trim()) {
        Some(name) if !name.is_empty() => Some(
            state
                .tags()
                .await?
                .into_iter()
                .find(|(_, t)| t.title().to_lowercase() == name.to_lowercase())
                .map(|(uuid, _)| uuid),
        ),
        _ => None,
    };
    let mut out = Map::new();
    for item in state.store.list(&state.tenant, Kind::Watch).await? {
        let watch = decode_watch(&item)?;
        if let Some(tag) = &tag_filter
            && !tag.as_ref().is_some_and(|t| watch.tags.contains(t))
        {
            continue;
        }
        if !matches(&watch, &query, partial) {
            continue;
        }
        let history = history_info(&item);
        out.insert(item.key.id.clone(), watch.api_search_entry(&history));
    }
    Ok(json_response(StatusCode::OK, &Value::Object(out)))
}
