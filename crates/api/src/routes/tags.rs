//! /api/v1/tags and /api/v1/tag/{uuid}: list, create, read (with the mute and recheck
//! operations), update, delete.
//!
//! Tags are `Kind::Tag` items whose document is the serialized [`Tag`]; watches refer to them
//! by uuid in their `tags` list.

use std::collections::HashMap;

use crate::validate;
use crate::validate::ApiContext;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use changewatch_core::model::{Tag, Watch};
use changewatch_engine::docs::{self, Step};
use changewatch_store::{Expect, Item, Key, Kind};
use serde_json::{Map, Value, json};

use crate::apprise::is_valid_apprise_url;
use crate::bulk::{Target, recheck_all};
use crate::error::{ApiError, json_response, json_string, no_content};
use crate::extract::{JsonBody, WatchUuid, query_switch, truthy};
use crate::state::AppState;
use crate::stored::{decode_watch, edit_tag, load_tag, tag_not_found};
use crate::validate::proxy_names;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tags", get(list))
        .route("/api/v1/tag", post(create))
        .route("/api/v1/tag/{uuid}", get(read).put(update).delete(remove))
}

fn decode_tag(item: &Item) -> Result<Tag, ApiError> {
    Ok(docs::decode(item)?)
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Value, ApiError> {
    Ok(docs::encode(v)?)
}

async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let out: Map<String, Value> = state
        .tags()
        .await?
        .iter()
        .map(|(uuid, tag)| (uuid.clone(), tag.api_list_entry()))
        .collect();
    Ok(json_response(StatusCode::OK, &Value::Object(out)))
}

/// A title that exists already (ignoring case) answers with that tag's uuid and 201, as
/// upstream does, after applying the request's other fields to it.
/// A tag's notification URLs are held to the same rule as a watch's: only URLs the notifier
/// can deliver to (`#` comments aside).
fn check_urls(body: &serde_json::Value) -> Result<(), ApiError> {
    let Some(urls) = body.get("notification_urls").and_then(|v| v.as_array()) else {
        return Ok(());
    };
    for u in urls.iter().filter_map(|v| v.as_str()).map(str::trim) {
        if !u.starts_with('#') && !is_valid_apprise_url(u) {
            return Err(validate::ApiValidationError::InvalidNotificationUrl(u.to_string()).into());
        }
    }
    Ok(())
}

async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    check_urls(&body)?;
    let created = validate::create_tag_from_json(body.clone())?;
    validate::check_notification_templates(&state.sandbox, &body).await?;
    let wanted = created.title.to_lowercase();
    for item in state.store.list(&state.tenant, Kind::Tag).await? {
        let tag = decode_tag(&item)?;
        if tag.title().trim().to_lowercase() == wanted
            && edit_tag(&state, &item.key.id, |tag| {
                created.apply_to(tag);
                Ok(())
            })
            .await?
            .is_some()
        {
            return Ok(json_response(
                StatusCode::CREATED,
                &json!({ "uuid": item.key.id }),
            ));
        }
    }
    let mut tag = created.into_tag();
    let uuid = uuid::Uuid::new_v4().to_string();
    tag.base.uuid = uuid.clone();
    tag.base.date_created = Some(state.now());
    state
        .store
        .put(
            &Key::tag(&state.tenant, &uuid),
            encode(&tag)?,
            None,
            Expect::Absent,
        )
        .await?;
    Ok(json_response(StatusCode::CREATED, &json!({ "uuid": uuid })))
}

async fn read(
    State(state): State<AppState>,
    WatchUuid(uuid): WatchUuid,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let Some((_, tag)) = load_tag(&state, &uuid).await? else {
        return Err(tag_not_found(&uuid));
    };
    let muted = query_switch(&q, "muted", "muted", "unmuted")?;
    if truthy(q.get("recheck")) {
        // Members by assignment only (not by url_match_pattern), least recently checked
        // first, muted ones included: upstream's selection.
        let now = state.now();
        let mut members = Vec::new();
        state
            .store
            .list_each(&state.tenant, Kind::Watch, &mut |w| {
                let watch: Watch = docs::decode(&w)?;
                if watch.tags.contains(&uuid)
                    && let Some(target) = Target::of(&w, now)?
                {
                    members.push((watch.last_checked, target));
                }
                Ok(())
            })
            .await?;
        members.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp_id(&b.1)));
        let targets = members.into_iter().map(|(_, t)| t).collect();
        return recheck_all(&state, targets, false).await;
    }
    if let Some(muted) = muted {
        edit_tag(&state, &uuid, |tag| {
            tag.base.notification_muted = muted;
            Ok(())
        })
        .await?
        .ok_or_else(|| tag_not_found(&uuid))?;
        return Ok(json_string(StatusCode::OK, "OK"));
    }
    Ok(json_response(StatusCode::OK, &tag.api_view()))
}

/// Upstream also clears member watches' raw-content checksums here so that their next check
/// reprocesses with the new tag settings. There is nothing to clear: a check here always runs
/// the whole pipeline with the merged settings of the moment, it never skips on an unchanged
/// fetch.
async fn update(
    State(state): State<AppState>,
    WatchUuid(uuid): WatchUuid,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let Some((_, mut tag)) = load_tag(&state, &uuid).await? else {
        return Err(tag_not_found(&uuid));
    };
    let settings = state.settings().await?;
    let proxies = proxy_names(&settings);
    let browsers = settings.requests.extra_browser_backends();
    // Refused before the sandbox is asked about templates, in upstream's order; applied again
    // to the copy the write starts from. The context holds a non-Send validator reference:
    // keep it out of the awaits.
    {
        let ctx = ApiContext {
            proxy_names: &proxies,
            extra_browsers: &browsers,
            notification_url_validator: Some(&is_valid_apprise_url),
        };
        validate::apply_tag_update(&mut tag, body.clone(), &ctx)?;
    }
    validate::check_notification_templates(&state.sandbox, &body).await?;
    edit_tag(&state, &uuid, |tag| {
        let ctx = ApiContext {
            proxy_names: &proxies,
            extra_browsers: &browsers,
            notification_url_validator: Some(&is_valid_apprise_url),
        };
        Ok(validate::apply_tag_update(tag, body.clone(), &ctx)?)
    })
    .await?
    .ok_or_else(|| tag_not_found(&uuid))?;
    Ok(json_string(StatusCode::OK, "OK"))
}

/// Drops the tag from one watch's `tags`, re-applied when a check or an edit wrote the watch
/// in between (conditional writes never overwrite someone else's change).
async fn unassign(state: &AppState, key: &Key, tag_uuid: &str) -> Result<(), ApiError> {
    docs::read_modify_write(state.store.as_ref(), key, |current| {
        let Some(item) = current else {
            return Ok::<_, ApiError>(Step::Done(()));
        };
        let mut watch = decode_watch(item)?;
        if !watch.tags.iter().any(|t| t == tag_uuid) {
            return Ok(Step::Done(()));
        }
        watch.tags.retain(|t| t != tag_uuid);
        Ok(Step::Write {
            doc: encode(&watch)?,
            schedule: None,
            out: (),
        })
    })
    .await
}

async fn remove(
    State(state): State<AppState>,
    WatchUuid(uuid): WatchUuid,
) -> Result<Response, ApiError> {
    if !state
        .store
        .delete(&Key::tag(&state.tenant, &uuid), Expect::Any)
        .await?
    {
        // Upstream answers 400 here, not 404; clients rely on it.
        return Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            format!("No tag exists with the UUID of {uuid}"),
        ));
    }
    for item in state.store.list(&state.tenant, Kind::Watch).await? {
        if decode_watch(&item)?.tags.contains(&uuid) {
            unassign(&state, &item.key, &uuid).await?;
        }
    }
    Ok(no_content())
}
