//! `x-api-key` on every /api/v1 route (but the spec), checked against the stored settings so a
//! regenerated key takes effect at once, in every process of AWS mode too. The dashboard passes
//! instead with its UI header (and its session when a password is set): see [`crate::session`].

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use changewatch_core::model::Settings;

use crate::error::ApiError;
use crate::session::{self, constant_time_eq};
use crate::state::AppState;

pub async fn require_api_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let settings = match state.settings().await {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let dashboard = session::dashboard_allowed(
        req.headers(),
        &settings,
        state.access(&settings),
        state.now(),
    );
    if !dashboard && !api_key_ok(req.headers(), &settings) {
        return ApiError::Forbidden.into_response();
    }
    next.run(req).await
}

/// Whether a request passes the `x-api-key` check (always, when the check is turned off).
pub fn api_key_ok(headers: &HeaderMap, settings: &Settings) -> bool {
    let app = &settings.application;
    if !app.api_access_token_enabled {
        return true;
    }
    key_matches(
        headers.get("x-api-key").and_then(|v| v.to_str().ok()),
        settings,
    )
}

/// Whether `given` is the stored API key (whether or not the check is enabled).
pub fn key_matches(given: Option<&str>, settings: &Settings) -> bool {
    matches!((given, settings.application.api_access_token.as_deref()),
        (Some(g), Some(t)) if !t.is_empty() && constant_time_eq(g.as_bytes(), t.as_bytes()))
}

/// Upstream protects its ops endpoints with the UI login when a password is set: a session or
/// the API key then.
pub async fn require_login_if_password(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let settings = match state.settings().await {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
    if session::session_ok(
        req.headers(),
        &settings,
        state.access(&settings),
        state.now(),
    ) || key_matches(
        req.headers().get("x-api-key").and_then(|v| v.to_str().ok()),
        &settings,
    ) {
        next.run(req).await
    } else {
        ApiError::message(axum::http::StatusCode::UNAUTHORIZED, "Login required").into_response()
    }
}
