//! `x-api-key` on every /api/v1 route (but the spec), checked against the stored settings so a
//! regenerated key takes effect at once, in every process of AWS mode too.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

pub async fn require_api_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let settings = match state.settings().await {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let app = &settings.application;
    if app.api_access_token_enabled {
        let given = req.headers().get("x-api-key").and_then(|v| v.to_str().ok());
        let ok = matches!((given, app.api_access_token.as_deref()), (Some(g), Some(t)) if !t.is_empty() && constant_time_eq(g.as_bytes(), t.as_bytes()));
        if !ok {
            return ApiError::Forbidden.into_response();
        }
    }
    next.run(req).await
}

/// Compares without an early exit, so response timing does not leak how much of a key matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
