//! /api/v1/notifications: the global notification URL list in the settings document.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use changewatch_core::model::Settings;
use changewatch_engine::checker;
use serde_json::{Value, json};

use crate::apprise::is_valid_apprise_url;
use crate::error::{ApiError, json_response, no_content};
use crate::extract::JsonBody;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/v1/notifications",
        get(list).post(add).put(replace).delete(remove),
    )
}

/// Read-modify-write of the settings document. Settings are one item shared by every writer
/// (API, UI, other Lambda instances), so a lost update is retried on a fresh copy rather than
/// overwriting someone else's change.
pub async fn update_settings<T>(
    state: &AppState,
    mut change: impl FnMut(&mut Settings) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    checker::update_settings(state.store.as_ref(), &state.tenant, |s, _| {
        Ok((change(s)?, true))
    })
    .await
}

/// The `notification_urls` list of a request body, checked as the spec's schema does.
fn urls_of(body: &Value) -> Result<Vec<String>, ApiError> {
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
