//! /api/v1/watch/{uuid}/history, /history/{timestamp}, /difference/{from}/{to}, /favicon and
//! /screenshot: reading what the checks stored.
//!
//! None of these mark a change as viewed: upstream's API leaves `last_viewed` alone (only the
//! UI diff page and `PUT last_viewed` set it), and clients polling diffs rely on that.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use changewatch_core::diff::{DiffFormat, DiffOptions, apply_format, render_diff};
use changewatch_core::model::NOTIFICATION_FORMAT_SYSTEM_DEFAULT;
use changewatch_engine::docs::{self, Step};
use changewatch_engine::timing::next_due;
use changewatch_store::Key;
use serde_json::{Map, Value};

use crate::error::{ApiError, json_response, no_content};
use crate::extract::{WatchUuid, strtobool, truthy};
use crate::state::AppState;
use crate::stored::not_found;
use crate::stored::{Loaded, decode_watch, load};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/watch/{uuid}/history",
            get(list_history).delete(delete_history),
        )
        .route("/api/v1/watch/{uuid}/history/{timestamp}", get(snapshot))
        .route(
            "/api/v1/watch/{uuid}/difference/{from}/{to}",
            get(difference),
        )
        .route("/api/v1/watch/{uuid}/favicon", get(favicon))
        .route("/api/v1/watch/{uuid}/screenshot", get(screenshot))
}

async fn load_or_404(state: &AppState, uuid: &str) -> Result<Loaded, ApiError> {
    load(state, uuid).await?.ok_or_else(|| not_found(uuid))
}

/// Snapshot timestamps, oldest first; a watch without any is upstream's 404.
async fn timestamps_or_404(state: &AppState, uuid: &str) -> Result<Vec<i64>, ApiError> {
    let ts = state
        .store
        .snapshots(&Key::watch(&state.tenant, uuid))
        .await?;
    if ts.is_empty() {
        return Err(ApiError::message(
            StatusCode::NOT_FOUND,
            format!("Watch found but no history exists for the UUID {uuid}"),
        ));
    }
    Ok(ts)
}

/// Upstream looks timestamps up as the string keys of its history, so only the exact decimal
/// spelling matches ("0123" does not find 123).
fn find_ts(history: &[i64], raw: &str) -> Option<i64> {
    history.iter().copied().find(|t| t.to_string() == raw)
}

fn with_content_type(body: String, code: StatusCode, content_type: &'static str) -> Response {
    let mut resp = (code, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

async fn list_history(
    State(state): State<AppState>,
    WatchUuid(uuid): WatchUuid,
) -> Result<Response, ApiError> {
    load_or_404(&state, &uuid).await?;
    let ts = state
        .store
        .snapshots(&Key::watch(&state.tenant, &uuid))
        .await?;
    // Upstream's values are snapshot file paths; snapshots here live in the store, so the value
    // is the API path that serves the snapshot (stable, and useful to a client). The map keys
    // sort as strings, which is oldest first for every epoch of ten digits (until 2286).
    let out: Map<String, Value> = ts
        .iter()
        .map(|t| {
            (
                t.to_string(),
                Value::String(format!("/api/v1/watch/{uuid}/history/{t}")),
            )
        })
        .collect();
    Ok(json_response(StatusCode::OK, &Value::Object(out)))
}

/// Wipes the history and resets the watch as if it were new, so the next tick takes a fresh
/// baseline.
async fn delete_history(
    State(state): State<AppState>,
    WatchUuid(uuid): WatchUuid,
) -> Result<Response, ApiError> {
    if !clear_history(&state, &uuid).await? {
        return Err(not_found(&uuid));
    }
    Ok(no_content())
}

/// DELETE …/history and the dashboard's clear-history operation. `Ok(false)` when the watch
/// does not exist. The reset is written first (re-applied if a check commits the watch
/// meanwhile), then the snapshots go: losing the race for the reset loses nothing.
pub async fn clear_history(state: &AppState, uuid: &str) -> Result<bool, ApiError> {
    let settings = state.settings().await?;
    let now = state.now();
    let key = Key::watch(&state.tenant, uuid);
    let found = docs::read_modify_write(state.store.as_ref(), &key, |current| {
        let Some(item) = current else {
            return Ok::<_, ApiError>(Step::Done(false));
        };
        let mut watch = decode_watch(item)?;
        watch.clear_history_state();
        let mut schedule = item.schedule.clone().unwrap_or_default();
        // A scheduled job for a due time at or before the last committed one is dropped as
        // stale, so a reset in the same second as the last check must be due one second later.
        let last_due = schedule.last_due_at;
        schedule.next_check_at =
            next_due(&watch, &settings, 0, now, state.config.minimum_recheck_secs).map(|t| {
                match last_due {
                    Some(d) if d >= t => d + 1,
                    _ => t,
                }
            });
        Ok(Step::Write {
            doc: docs::encode(&watch)?,
            schedule: Some(schedule),
            out: true,
        })
    })
    .await?;
    if found {
        state.store.delete_history(&key).await?;
    }
    Ok(found)
}

async fn snapshot(
    State(state): State<AppState>,
    WatchUuid(uuid): WatchUuid,
    Path(params): Path<HashMap<String, String>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let loaded = load_or_404(&state, &uuid).await?;
    let history = timestamps_or_404(&state, &uuid).await?;
    let raw = params.get("timestamp").map(String::as_str).unwrap_or("");
    let ts = if raw == "latest" {
        history.last().copied()
    } else {
        find_ts(&history, raw)
    };
    let Some(ts) = ts else {
        return Err(ApiError::message(
            StatusCode::NOT_FOUND,
            format!("No history snapshot found for timestamp '{raw}'"),
        ));
    };
    if truthy(q.get("html")) {
        let html = state.store.snapshot_html(&loaded.item.key, ts).await?;
        let Some(html) = html.filter(|h| !h.is_empty()) else {
            return Ok(with_content_type(
                "No content found".into(),
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
            ));
        };
        // The page is attacker-controlled HTML: served as inert text that browsers may not
        // sniff back into HTML, and as a download, so it can never run in the API's origin.
        let mut resp = with_content_type(html, StatusCode::OK, "text/plain; charset=utf-8");
        let h = resp.headers_mut();
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"snapshot-{ts}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        return Ok(resp);
    }
    let text = state
        .store
        .snapshot_text(&loaded.item.key, ts)
        .await?
        .unwrap_or_default();
    Ok(with_content_type(
        text,
        StatusCode::OK,
        "text/plain; charset=utf-8",
    ))
}

/// A boolean query flag; a value that is not a boolean is a 400 (upstream fails with a 500).
pub fn flag(q: &HashMap<String, String>, name: &str, default: bool) -> Result<bool, ApiError> {
    strtobool(q.get(name), default).ok_or_else(|| {
        ApiError::message(
            StatusCode::BAD_REQUEST,
            format!("Invalid value for '{name}': must be true or false"),
        )
    })
}

/// `format` of the difference endpoint. "System default" (any case) means the global
/// notification format, which is what a watch set to "System default" would be sent with.
/// Upstream lower-cases the value before comparing it with a mixed-case key and so rejects
/// "System default" although its error message lists it; accepting it is the useful reading.
fn resolve_format(raw: &str, global: &str) -> Result<DiffFormat, ApiError> {
    let invalid = |e: changewatch_core::diff::InvalidFormatError| {
        ApiError::message(StatusCode::BAD_REQUEST, e.to_string())
    };
    if raw.eq_ignore_ascii_case(NOTIFICATION_FORMAT_SYSTEM_DEFAULT) {
        return Ok(global.parse().unwrap_or(DiffFormat::HtmlColor));
    }
    raw.parse().map_err(invalid)
}

async fn difference(
    State(state): State<AppState>,
    WatchUuid(uuid): WatchUuid,
    Path(params): Path<HashMap<String, String>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let loaded = load_or_404(&state, &uuid).await?;
    let history = timestamps_or_404(&state, &uuid).await?;
    let from_raw = params.get("from").map(String::as_str).unwrap_or("");
    let to_raw = params.get("to").map(String::as_str).unwrap_or("");
    let to = if to_raw == "latest" {
        history.last().copied()
    } else {
        find_ts(&history, to_raw)
    };
    let from = if from_raw == "previous" {
        if history.len() < 2 {
            return Err(ApiError::message(
                StatusCode::NOT_FOUND,
                "Not enough history entries. Need at least 2 snapshots for 'previous'",
            ));
        }
        history.iter().rev().nth(1).copied()
    } else {
        find_ts(&history, from_raw)
    };
    let Some(from) = from else {
        return Err(ApiError::message(
            StatusCode::NOT_FOUND,
            format!("From timestamp {from_raw} not found in watch history"),
        ));
    };
    let Some(to) = to else {
        return Err(ApiError::message(
            StatusCode::NOT_FOUND,
            format!("To timestamp {to_raw} not found in watch history"),
        ));
    };

    let global_format = state.settings().await?.application.notification_format;
    let format = resolve_format(
        q.get("format").map(String::as_str).unwrap_or("text"),
        &global_format,
    )?;
    // Upstream reads any other `type` as diffLines; the spec lists two values, and a value
    // that would be ignored is refused instead.
    let word_type = match q.get("type").map(String::as_str) {
        None | Some("diffLines") => false,
        Some("diffWords") => true,
        Some(_) => {
            return Err(ApiError::message(
                StatusCode::BAD_REQUEST,
                "Invalid value for 'type': must be diffLines or diffWords",
            ));
        }
    };
    let word_diff = flag(&q, "word_diff", false)? || word_type;
    let no_markup = flag(&q, "no_markup", false)?;
    let opts = DiffOptions {
        include_equal: !flag(&q, "changesOnly", false)?,
        ignore_whitespace: flag(&q, "ignoreWhitespace", false)?,
        include_removed: flag(&q, "removed", true)?,
        include_added: flag(&q, "added", true)?,
        include_replaced: flag(&q, "replaced", true)?,
        word_diff,
        ..DiffOptions::default()
    };

    let key = &loaded.item.key;
    let previous = state
        .store
        .snapshot_text(key, from)
        .await?
        .unwrap_or_default();
    let current = state
        .store
        .snapshot_text(key, to)
        .await?
        .unwrap_or_default();
    let raw = render_diff(&previous, &current, &opts);
    if no_markup {
        return Ok(with_content_type(
            raw,
            StatusCode::OK,
            "text/plain; charset=utf-8",
        ));
    }
    let content_type = if format.is_html() {
        "text/html; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    Ok(with_content_type(
        apply_format(&raw, format),
        StatusCode::OK,
        content_type,
    ))
}

/// Favicons are not fetched yet (that needs the browser fetcher), so every watch answers
/// upstream's "none available" 404.
/// The browser's screenshot stored with the newest snapshot that has one (`?timestamp=` picks
/// a snapshot, `latest` the newest), as JPEG. Screenshots are kept for the newest two
/// snapshots of browser watches; anything else is a 404 saying so.
async fn screenshot(
    State(state): State<AppState>,
    WatchUuid(uuid): WatchUuid,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    match find_screenshot(&state, &uuid, q.get("timestamp").map(String::as_str)).await? {
        Some(found) => Ok(screenshot_response(found)),
        None => Err(ApiError::message(
            StatusCode::NOT_FOUND,
            format!(
                "No screenshot available for {uuid} (only browser checks take them, kept for the newest two snapshots)"
            ),
        )),
    }
}

/// The screenshot `timestamp` asks for (see [`screenshot`]) with its snapshot's timestamp:
/// `None` when there is none; a 404 for an unknown watch or snapshot.
pub(crate) async fn find_screenshot(
    state: &AppState,
    uuid: &str,
    timestamp: Option<&str>,
) -> Result<Option<(i64, Vec<u8>)>, ApiError> {
    let loaded = load_or_404(state, uuid).await?;
    let history = state.store.snapshots(&loaded.item.key).await?;
    let wanted: Vec<i64> = match timestamp {
        None | Some("latest") => history.iter().rev().take(2).copied().collect(),
        Some(raw) => match find_ts(&history, raw) {
            Some(ts) => vec![ts],
            None => {
                return Err(ApiError::message(
                    StatusCode::NOT_FOUND,
                    format!("No history snapshot found for timestamp '{raw}'"),
                ));
            }
        },
    };
    for ts in wanted {
        if let Some(image) = state
            .store
            .snapshot_screenshot(&loaded.item.key, ts)
            .await?
        {
            return Ok(Some((ts, image)));
        }
    }
    Ok(None)
}

/// A found screenshot as served: JPEG, never cached, naming its snapshot.
pub(crate) fn screenshot_response((ts, image): (i64, Vec<u8>)) -> Response {
    let mut resp = (StatusCode::OK, image).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&ts.to_string()) {
        h.insert("x-snapshot-timestamp", v);
    }
    resp
}

async fn favicon(
    State(state): State<AppState>,
    WatchUuid(uuid): WatchUuid,
) -> Result<Response, ApiError> {
    load_or_404(&state, &uuid).await?;
    Err(ApiError::message(
        StatusCode::NOT_FOUND,
        format!("No Favicon available for {uuid}"),
    ))
}
