//! /api/v1/notifications: the global notification URL list in the settings document.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use changewatch_core::diff::DiffFormat;
use changewatch_core::model::{
    NOTIFICATION_FORMAT_SYSTEM_DEFAULT, Settings, Tag, Watch, resolve_notification_settings,
    tags_for_watch,
};
use changewatch_engine::{docs, notifications};
use changewatch_store::Key;
use serde_json::{Value, json};

use crate::apprise::is_valid_apprise_url;
use crate::error::{ApiError, json_response, no_content};
use crate::extract::JsonBody;
use crate::state::AppState;
use crate::validate::ApiValidationError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/notifications",
            get(list).post(add).put(replace).delete(remove),
        )
        .route("/api/v1/notifications/log", get(log))
        .route("/api/v1/notifications/test", post(send_test))
}

/// Read-modify-write of the settings document. Settings are one item shared by every writer
/// (API, UI, other Lambda instances), so a lost update is retried on a fresh copy rather than
/// overwriting someone else's change.
pub async fn update_settings<T>(
    state: &AppState,
    mut change: impl FnMut(&mut Settings) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    docs::update_settings(state.store.as_ref(), &state.tenant, |s, _| {
        Ok((change(s)?, true))
    })
    .await
}

/// Keys of a request body other than `allowed`, refused as the watch and tag endpoints refuse
/// them: a misspelt key must not look accepted.
fn refuse_unknown(body: &Value, allowed: &[&str]) -> Result<(), ApiError> {
    let Some(obj) = body.as_object() else {
        return Ok(());
    };
    let mut unknown: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort_unstable();
    Err(ApiValidationError::UnknownFields(unknown.into_iter().map(str::to_string).collect()).into())
}

/// The body of the list endpoints: `notification_urls` and nothing else.
fn urls_of(body: &Value) -> Result<Vec<String>, ApiError> {
    let urls = url_list(body)?;
    refuse_unknown(body, &["notification_urls"])?;
    Ok(urls)
}

/// The `notification_urls` list of a request body, checked as the spec's schema does.
fn url_list(body: &Value) -> Result<Vec<String>, ApiError> {
    let invalid = |what: &str| {
        ApiError::message(
            StatusCode::BAD_REQUEST,
            format!("Validation failed: notification_urls: {what}"),
        )
    };
    let Some(list) = body.as_object().and_then(|o| o.get("notification_urls")) else {
        return Err(invalid("'notification_urls' is a required property"));
    };
    let Some(items) = list.as_array() else {
        return Err(invalid(&format!("{list} is not of type 'array'")));
    };
    items
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| invalid(&format!("{v} is not of type 'string'")))
        })
        .collect()
}

/// Upstream's apprise check: the first URL apprise cannot use rejects the whole request.
fn validate(urls: &[String]) -> Result<(), ApiError> {
    match urls.iter().find(|u| !is_valid_apprise_url(u)) {
        Some(bad) => Err(ApiError::text(
            StatusCode::BAD_REQUEST,
            format!("'{}' is not a valid AppRise URL.", bad.trim()),
        )),
        None => Ok(()),
    }
}

fn listing(urls: &[String]) -> Value {
    json!({ "notification_urls": urls })
}

async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let settings = state.settings().await?;
    Ok(json_response(
        StatusCode::OK,
        &listing(&settings.application.notification_urls),
    ))
}

async fn add(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let urls = urls_of(&body)?;
    validate(&urls)?;
    let added = update_settings(&state, |s| {
        let mut added = Vec::new();
        for url in urls.iter().map(|u| u.trim()).filter(|u| !u.is_empty()) {
            let list = &mut s.application.notification_urls;
            if !list.iter().any(|u| u == url) {
                list.push(url.to_string());
            }
            added.push(url.to_string());
        }
        if added.is_empty() {
            return Err(ApiError::text(
                StatusCode::BAD_REQUEST,
                "No valid notification URLs were added",
            ));
        }
        Ok(added)
    })
    .await?;
    Ok(json_response(StatusCode::CREATED, &listing(&added)))
}

async fn replace(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let urls = urls_of(&body)?;
    validate(&urls)?;
    let clean: Vec<String> = urls.iter().map(|u| u.trim().to_string()).collect();
    update_settings(&state, |s| {
        s.application.notification_urls = clean.clone();
        Ok(())
    })
    .await?;
    Ok(json_response(StatusCode::OK, &listing(&clean)))
}

async fn remove(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let urls = urls_of(&body)?;
    update_settings(&state, |s| {
        let list = &mut s.application.notification_urls;
        let before = list.len();
        let wanted: Vec<&str> = urls.iter().map(|u| u.trim()).collect();
        list.retain(|u| !wanted.contains(&u.as_str()));
        if list.len() == before {
            return Err(ApiError::message(
                StatusCode::BAD_REQUEST,
                "No matching notification URLs found.",
            ));
        }
        Ok(())
    })
    .await?;
    Ok(no_content())
}

/// The last deliveries, newest first (upstream's settings → notification logs).
async fn log(State(state): State<AppState>) -> Result<Response, ApiError> {
    let entries = notifications::read_log(state.store.as_ref(), &state.tenant).await?;
    Ok(json_response(StatusCode::OK, &json!({ "log": entries })))
}

/// An optional string field of the test request; `null` counts as absent.
fn opt_str(body: &Value, name: &str) -> Result<Option<String>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            format!("Validation failed: {name}: {v} is not of type 'string'"),
        )),
    }
}

/// "Send test notification": renders the given (else the watch's, else the global) templates
/// with the watch's last two snapshots (else example text) and delivers at once, answering with
/// each URL's outcome. Nothing is queued or retried: the user is waiting for the verdict.
async fn send_test(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    if !body.is_object() {
        return Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            "Validation failed: expected a JSON object",
        ));
    }
    refuse_unknown(
        &body,
        &[
            "notification_urls",
            "notification_title",
            "notification_body",
            "notification_format",
            "watch_uuid",
        ],
    )?;
    let Some(dispatcher) = state.notifier.clone() else {
        return Err(ApiError::message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Notifications cannot be sent from here",
        ));
    };
    let given_urls = match body.get("notification_urls") {
        None | Some(Value::Null) => None,
        Some(_) => Some(url_list(&body)?),
    };
    let title = opt_str(&body, "notification_title")?;
    let text = opt_str(&body, "notification_body")?;
    let format = opt_str(&body, "notification_format")?;
    let watch_id = opt_str(&body, "watch_uuid")?;

    let settings = state.settings().await?;
    let tags = state.tags().await?;
    let key = Key::watch(&state.tenant, watch_id.as_deref().unwrap_or(""));
    let watch: Option<Watch> = match &watch_id {
        Some(_) => {
            let Some(item) = state.store.get(&key).await? else {
                return Err(ApiError::message(StatusCode::NOT_FOUND, "Watch not found"));
            };
            Some(docs::decode(&item)?)
        }
        None => None,
    };
    let default_watch = Watch::default();
    let w = watch.as_ref().unwrap_or(&default_watch);
    let watch_tags: Vec<&Tag> = if watch.is_some() {
        tags_for_watch(w, &tags)
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    } else {
        Vec::new()
    };
    let resolved = resolve_notification_settings(w, &watch_tags, &settings);
    let urls = given_urls.unwrap_or(resolved.urls);
    validate(&urls)?;
    if notifications::active_urls(&urls).is_empty() {
        return Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            "No Notification URLs set/found",
        ));
    }
    let title = title
        .filter(|t| !t.trim().is_empty())
        .unwrap_or(resolved.title);
    let text = text
        .filter(|t| !t.trim().is_empty())
        .unwrap_or(resolved.body);
    let format = match format.filter(|f| f != NOTIFICATION_FORMAT_SYSTEM_DEFAULT) {
        Some(f) => f
            .parse::<DiffFormat>()
            .map_err(|e| ApiError::message(StatusCode::BAD_REQUEST, e.to_string()))?,
        None => resolved.format.parse().unwrap_or(DiffFormat::HtmlColor),
    };
    let ctx = notifications::WatchContext {
        key: &key,
        watch: w,
        tags: &watch_tags,
        settings: &settings,
        base_url: state.config.base_url.as_deref(),
        now: state.now(),
    };
    let mut cc = ctx.change_context();
    if watch.is_some() {
        let history = state.store.snapshots(&key).await?;
        if let [.., from, to] = history.as_slice() {
            cc.prev_snapshot = state
                .store
                .snapshot_text(&key, *from)
                .await?
                .unwrap_or_default();
            cc.current_snapshot = state
                .store
                .snapshot_text(&key, *to)
                .await?
                .unwrap_or_default();
            cc.timestamp_from = Some(*from);
            cc.timestamp_to = Some(*to);
        }
    }
    let msg = notifications::test_message(&state.sandbox, &title, &text, format, &cc)
        .await
        .map_err(|e| ApiError::message(StatusCode::BAD_REQUEST, e))?;
    let results = dispatcher
        .send_now(&state.tenant, watch_id.as_deref(), &urls, &msg)
        .await;
    let ok = results.iter().all(|(_, r)| r.is_ok());
    let list: Vec<Value> = results
        .into_iter()
        .map(|(url, r)| match r {
            Ok(()) => json!({"url": url, "ok": true}),
            Err(e) => json!({"url": url, "ok": false, "error": e}),
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"ok": ok, "results": list}),
    ))
}
