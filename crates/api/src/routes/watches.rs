//! /api/v1/watch and /api/v1/watch/{uuid}: list, create, read (with the recheck / pause / mute
//! operations), update, delete.

use std::collections::{BTreeMap, HashMap};

use crate::validate;
use crate::validate::ApiContext;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use changewatch_core::model::{
    Tag, Watch, assigned_tags, has_template_markup, no_render, tags_for_watch,
};
use changewatch_engine::docs;
use changewatch_engine::scheduler::request_recheck;
use changewatch_store::{Expect, Key, Kind, StoreError};
use serde_json::json;
use serde_json::value::RawValue;

use crate::apprise::is_valid_apprise_url;
use crate::bulk::{recheck_all, recheck_target};
use crate::error::{ApiError, json_bytes_response, json_response, json_string, no_content};
use crate::extract::{JsonBody, WatchUuid, query_switch, truthy};
use crate::state::AppState;
use crate::stored::{
    count_watches, edit_watch, history_info, insert_watch, load, not_found, rendered_links,
};
use crate::validate::proxy_names;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/watch", get(list).post(create))
        .route("/api/v1/watch/{uuid}", get(read).put(update).delete(remove))
}

fn ok() -> Response {
    json_string(StatusCode::OK, "OK")
}

async fn list(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let tags = state.tags().await?;
    let tag_filter: Option<&str> = q.get("tag").map(|name| {
        tags.iter()
            .find(|(_, t)| t.title().eq_ignore_ascii_case(name.trim()))
            .map_or("\u{0}no such tag", |(uuid, _)| uuid.as_str())
    });
    let with_errors = truthy(q.get("with_errors"));
    // Whether a watch is in the listed set: the tag (by title, url_match_pattern included)
    // and `with_errors` filters.
    let listed = |watch: &Watch| {
        if with_errors && !watch.last_error.is_set() {
            return false;
        }
        tag_filter.is_none_or(|t| tags_for_watch(watch, &tags).iter().any(|(u, _)| *u == t))
    };
    if truthy(q.get("recheck_all")) {
        // Upstream rechecks the set it would have listed (never a paused watch).
        let filtered = tag_filter.is_some() || with_errors;
        let now = state.now();
        let mut targets = Vec::new();
        state
            .store
            .list_each(&state.tenant, Kind::Watch, &mut |item| {
                if filtered && !listed(&docs::decode::<Watch>(&item)?) {
                    return Ok(());
                }
                targets.extend(recheck_target(&item, now)?);
                Ok(())
            })
            .await?;
        // In id order, as the listing always queued them.
        targets.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        return recheck_all(&state, targets, true).await;
    }
    // One watch at a time, each entry serialized as soon as it is made: only the entries'
    // JSON is kept (a tree per entry was 3-4 times its size: ~15 MB more at 5,000 watches),
    // never every document.
    // By uuid, as the object's keys always came.
    let mut out: BTreeMap<String, Box<RawValue>> = BTreeMap::new();
    // Watches whose `link` needs a template rendered (in the sandbox, which this walk cannot
    // wait for): their entries are made after it.
    let mut templated = Vec::new();
    state
        .store
        .list_each(&state.tenant, Kind::Watch, &mut |item| {
            let watch: Watch = docs::decode(&item)?;
            if !listed(&watch) {
                return Ok(());
            }
            let tag_uuids: Vec<String> = tags_for_watch(&watch, &tags)
                .into_iter()
                .map(|(u, _)| u.to_string())
                .collect();
            let history = history_info(&item);
            if has_template_markup(&watch.url) || has_template_markup(&watch.link_to_open) {
                templated.push((item.key.id, watch, history, tag_uuids));
                return Ok(());
            }
            let entry = watch.api_list_entry(&history, &tag_uuids, &no_render);
            let json = serde_json::value::to_raw_value(&entry)
                .map_err(|e| StoreError::Corrupt(format!("watch {}: {e}", item.key.id)))?;
            out.insert(item.key.id, json);
            Ok(())
        })
        .await?;
    for (id, watch, history, tag_uuids) in templated {
        let links = rendered_links(&state, &watch).await;
        let entry = watch.api_list_entry(&history, &tag_uuids, &|t| links.render(t));
        let json = serde_json::value::to_raw_value(&entry)
            .map_err(|e| StoreError::Corrupt(format!("watch {id}: {e}")))?;
        out.insert(id, json);
    }
    let body =
        serde_json::to_vec(&out).map_err(|e| StoreError::Corrupt(format!("watch list: {e}")))?;
    Ok(json_bytes_response(StatusCode::OK, body))
}

async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let settings = state.settings().await?;
    let proxies = proxy_names(&settings);
    let browsers = settings.requests.extra_browser_backends();
    // The context holds a non-Send validator reference: keep it out of the awaits below.
    let created = {
        let ctx = ApiContext {
            proxy_names: &proxies,
            extra_browsers: &browsers,
            notification_url_validator: Some(&is_valid_apprise_url),
        };
        validate::create_watch_from_json(body.clone(), &ctx)?
    };
    validate::check_notification_templates(&state.sandbox, &body).await?;
    // The tenant's watches are read only to enforce a limit (in AWS mode a listing is billed
    // for every watch): creating the thousandth watch costs what creating the first does.
    if let Some(limit) = state.config.page_watch_limit {
        let existing = count_watches(&state).await?;
        if existing >= limit {
            return Err(ApiError::text(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Watch limit reached ({existing}/{limit} watches). Cannot add more watches."
                ),
            ));
        }
    }
    let uuid = insert_watch(&state, &settings, created).await?;
    Ok(json_response(StatusCode::CREATED, &json!({ "uuid": uuid })))
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
    let links = rendered_links(&state, &loaded.watch).await;
    Ok(json_response(
        StatusCode::OK,
        &loaded
            .watch
            .api_view(&history, &assigned, &|t| links.render(t)),
    ))
}

async fn update(
    State(state): State<AppState>,
    WatchUuid(uuid): WatchUuid,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let settings = state.settings().await?;
    let proxies = proxy_names(&settings);
    let browsers = settings.requests.extra_browser_backends();
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
                extra_browsers: &browsers,
                notification_url_validator: Some(&is_valid_apprise_url),
            };
            validate::apply_watch_update(&mut loaded.watch.clone(), body.clone(), &ctx)?;
        }
        validate::check_notification_templates(&state.sandbox, &body).await?;
    }
    edit_watch(&state, &uuid, true, |w, _| {
        let ctx = ApiContext {
            proxy_names: &proxies,
            extra_browsers: &browsers,
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
