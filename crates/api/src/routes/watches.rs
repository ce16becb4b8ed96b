//! /api/v1/watch and /api/v1/watch/{uuid}: list, create, read (with the recheck / pause / mute
//! operations), update, delete.

use std::collections::HashMap;

use crate::validate;
use crate::validate::ApiContext;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use changewatch_core::model::{self, Tag, assigned_tags, no_render, tags_for_watch};
use changewatch_engine::scheduler::request_recheck;
use changewatch_engine::timing::next_due;
use changewatch_store::{Expect, Item, Key, Kind, Schedule};
use serde_json::{Map, Value, json};

use crate::apprise::is_valid_apprise_url;
use crate::error::{ApiError, json_response, json_string, no_content};
use crate::extract::{JsonBody, WatchUuid, query_switch, truthy};
use crate::state::AppState;
use crate::stored::{decode_watch, edit_watch, history_info, load};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/watch", get(list).post(create))
        .route("/api/v1/watch/{uuid}", get(read).put(update).delete(remove))
}

/// Upstream answers bulk rechecks of this many watches or more with 202 and queues them in the
/// background.
pub const BACKGROUND_THRESHOLD: usize = 20;

pub fn not_found(uuid: &str) -> ApiError {
    ApiError::message(
        StatusCode::NOT_FOUND,
        format!("No watch exists with the UUID of {uuid}"),
    )
}

fn ok() -> Response {
    json_string(StatusCode::OK, "OK")
}

async fn list(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let items = state.store.list(&state.tenant, Kind::Watch).await?;
    let tags = state.tags().await?;
    if truthy(q.get("recheck_all")) {
        return recheck_all(&state, &items, true).await;
    }
    let tag_filter: Option<&str> = q.get("tag").map(|name| {
        tags.iter()
            .find(|(_, t)| t.title().eq_ignore_ascii_case(name.trim()))
            .map_or("\u{0}no such tag", |(uuid, _)| uuid.as_str())
    });
    let mut out = Map::new();
    for item in &items {
        let watch = decode_watch(item)?;
        if truthy(q.get("with_errors")) && !watch.last_error.is_set() {
            continue;
        }
        let tag_uuids: Vec<String> = tags_for_watch(&watch, &tags)
            .into_iter()
            .map(|(u, _)| u.to_string())
            .collect();
        if let Some(t) = tag_filter
            && !tag_uuids.iter().any(|u| u == t)
        {
            continue;
        }
        let history = history_info(item);
        out.insert(
            item.key.id.clone(),
            watch.api_list_entry(&history, &tag_uuids, &no_render),
        );
    }
    Ok(json_response(StatusCode::OK, &Value::Object(out)))
}

/// Queues a manual recheck of every unpaused watch in `items`: at once for fewer than
/// [`BACKGROUND_THRESHOLD`], else in the background with a 202. `report_busy` adds upstream's
/// "(N already queued or running)" note, which only the watch list's `recheck_all` has; a tag's
/// recheck reports every watch as queued.
pub async fn recheck_all(
    state: &AppState,
    items: &[Item],
    report_busy: bool,
) -> Result<Response, ApiError> {
    let mut keys = Vec::new();
    let mut busy = 0;
    for item in items {
        let watch = decode_watch(item)?;
        if watch.paused {
            continue;
        }
        let s = item.schedule.clone().unwrap_or_default();
        if report_busy && (s.queued_at.is_some() || s.leased(state.now())) {
            busy += 1;
        }
        keys.push(item.key.clone());
    }
    let n = keys.len();
    if n >= BACKGROUND_THRESHOLD {
        let st = state.clone();
        tokio::spawn(async move {
            for key in keys {
                if let Err(e) =
                    request_recheck(st.store.as_ref(), st.queue.as_ref(), &key, st.now()).await
                {
                    tracing::warn!(watch_id = %key.id, error = %e, "background recheck failed");
                }
            }
        });
        return Ok(json_response(
            StatusCode::ACCEPTED,
            &json!({"status": format!("OK, queueing {n} watches in background")}),
        ));
    }
    for key in &keys {
        request_recheck(state.store.as_ref(), state.queue.as_ref(), key, state.now()).await?;
    }
    let mut status = format!("OK, queued {} watches for rechecking", n - busy);
    if busy > 0 {
        status.push_str(&format!(" ({busy} already queued or running)"));
    }
    Ok(json_response(StatusCode::OK, &json!({ "status": status })))
}

/// Proxy keys a watch may name: the UI proxies of the settings.
pub fn proxy_names(settings: &model::Settings) -> Vec<String> {
    settings.requests.ui_proxy_keys()
}

async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let settings = state.settings().await?;
    let proxies = proxy_names(&settings);
    // The context holds a non-Send validator reference: keep it out of the awaits below.
    let created = {
        let ctx = ApiContext {
            proxy_names: &proxies,
            notification_url_validator: Some(&is_valid_apprise_url),
        };
        validate::create_watch_from_json(body.clone(), &ctx)?
    };
    validate::check_notification_templates(&state.sandbox, &body).await?;
    let existing = state.store.list(&state.tenant, Kind::Watch).await?;
    if let Some(limit) = state.config.page_watch_limit
        && existing.len() >= limit
    {
        return Err(ApiError::text(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Watch limit reached ({}/{limit} watches). Cannot add more watches.",
                existing.len()
            ),
        ));
    }
    let uuid = insert_watch(&state, &settings, created).await?;
    Ok(json_response(StatusCode::CREATED, &json!({ "uuid": uuid })))
}

/// Stores a validated new watch (tags resolved, due now) and returns its uuid. Shared by
/// POST /watch and POST /import so that both create watches the same way.
pub async fn insert_watch(
    state: &AppState,
    settings: &model::Settings,
    created: validate::WatchCreate,
) -> Result<String, ApiError> {
    let mut watch = created.watch;
    let uuid = uuid::Uuid::new_v4().to_string();
    watch.uuid = uuid.clone();
    watch.date_created = Some(state.now());
    for tag_uuid in resolve_tag_names(state, &created.tag_names).await? {
        if !watch.tags.contains(&tag_uuid) {
            watch.tags.push(tag_uuid);
        }
    }
    let next = next_due(
        &watch,
        settings,
        0,
        state.now(),
        state.config.minimum_recheck_secs,
    );
    let doc = serde_json::to_value(&watch)
        .map_err(|e| ApiError::message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    state
        .store
        .put(
            &Key::watch(&state.tenant, &uuid),
            doc,
            Some(Schedule {
                next_check_at: next,
                ..Schedule::default()
            }),
            Expect::Absent,
        )
        .await?;
    Ok(uuid)
}

/// Legacy `tag` names: an existing tag with that title (case-insensitive), an existing tag's
/// uuid, or a new tag. Unknown uuid-looking names are ignored, as upstream does.
pub async fn resolve_tag_names(
    state: &AppState,
    names: &[String],
) -> Result<Vec<String>, ApiError> {
    let mut tags = state.tags().await?;
    let mut out = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        if tags.contains_key(name) {
            out.push(name.to_string());
            continue;
        }
        if crate::extract::is_canonical_uuid(name) {
            continue;
        }
        if let Some((uuid, _)) = tags
            .iter()
            .find(|(_, t)| t.title().eq_ignore_ascii_case(name))
        {
            out.push(uuid.clone());
            continue;
        }
        let uuid = uuid::Uuid::new_v4().to_string();
        let mut tag = Tag::new(name);
        tag.base.uuid = uuid.clone();
        tag.base.date_created = Some(state.now());
        let doc = serde_json::to_value(&tag)
            .map_err(|e| ApiError::message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        state
            .store
            .put(&Key::tag(&state.tenant, &uuid), doc, None, Expect::Absent)
            .await?;
        tags.insert(uuid.clone(), tag);
        out.push(uuid);
    }
    Ok(out)
}

async fn read(
    State(state): State<AppState>,
    WatchUuid(uuid): WatchUuid,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let Some(loaded) = load(&state, &uuid).await? else {
        return Err(not_found(&uuid));
    };
    // Upstream acts on the first of recheck > paused > muted; all are checked first, so a bad
    // value is refused rather than ignored.
    let paused = query_switch(&q, "paused", "paused", "unpaused")?;
    let muted = query_switch(&q, "muted", "muted", "unmuted")?;
    if truthy(q.get("recheck")) {
        request_recheck(
            state.store.as_ref(),
            state.queue.as_ref(),
            &loaded.item.key,
            state.now(),
        )
        .await?;
        return Ok(ok());
    }
    if let Some(paused) = paused {
        edit_watch(&state, &uuid, true, |w, _| {
            w.paused = paused;
            Ok(())
        })
        .await?
        .ok_or_else(|| not_found(&uuid))?;
        if paused {
            state.unqueue(std::slice::from_ref(&uuid)).await?;
        }
        return Ok(ok());
    }
    if let Some(muted) = muted {
        edit_watch(&state, &uuid, false, |w, _| {
            w.notification_muted = muted;
            Ok(())
        })
        .await?
        .ok_or_else(|| not_found(&uuid))?;
        return Ok(ok());
    }
    let history = history_info(&loaded.item);
    let tags = state.tags().await?;
    let assigned: Vec<(&str, &Tag)> = assigned_tags(&loaded.watch, &tags);
    Ok(json_response(
        StatusCode::OK,
        &loaded.watch.api_view(&history, &assigned, &no_render),
    ))
}

async fn update(
    State(state): State<AppState>,
    WatchUuid(uuid): WatchUuid,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let settings = state.settings().await?;
    let proxies = proxy_names(&settings);
    // With notification templates in the body: the write rules first (their messages are
    // upstream's), on a copy; then the templates in the sandbox; then the edit for real
    // (re-applied on a conflict), which alone is all a body without templates needs.
    if !validate::notification_templates(&body).is_empty() {
        let Some(loaded) = load(&state, &uuid).await? else {
            return Err(not_found(&uuid));
        };
        {
            let ctx = ApiContext {
                proxy_names: &proxies,
                notification_url_validator: Some(&is_valid_apprise_url),
            };
            validate::apply_watch_update(&mut loaded.watch.clone(), body.clone(), &ctx)?;
        }
        validate::check_notification_templates(&state.sandbox, &body).await?;
    }
    edit_watch(&state, &uuid, true, |w, _| {
        let ctx = ApiContext {
            proxy_names: &proxies,
            notification_url_validator: Some(&is_valid_apprise_url),
        };
        validate::apply_watch_update(w, body.clone(), &ctx).map_err(ApiError::from)
    })
    .await?
    .ok_or_else(|| not_found(&uuid))?;
    Ok(ok())
}

async fn remove(
    State(state): State<AppState>,
    WatchUuid(uuid): WatchUuid,
) -> Result<Response, ApiError> {
    let key = Key::watch(&state.tenant, &uuid);
    if !state.store.delete(&key, Expect::Any).await? {
        // Upstream answers 400 here, not 404; clients rely on it.
        return Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            format!("No watch exists with the UUID of {uuid}"),
        ));
    }
    state.unqueue(&[uuid]).await?;
    Ok(no_content())
}
