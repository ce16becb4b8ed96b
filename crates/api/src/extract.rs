//! Request pieces with upstream's rules.

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use serde_json::Value;

use crate::error::ApiError;

/// A `{uuid}` path segment. Upstream's route converter only matches canonical lowercase
/// hyphenated uuids, so anything else is Flask's HTML 404, not a JSON error.
#[derive(Debug, Clone)]
pub struct WatchUuid(pub String);

pub fn is_canonical_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::parse_str(s).is_ok_and(|u| u.hyphenated().to_string() == s)
}

impl<S: Send + Sync> FromRequestParts<S> for WatchUuid {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NoRoute)?;
        let raw = params
            .iter()
            .find(|(k, _)| k == "uuid")
            .map(|(_, v)| v.clone())
            .ok_or(ApiError::NoRoute)?;
        if is_canonical_uuid(&raw) {
            Ok(WatchUuid(raw))
        } else {
            Err(ApiError::NoRoute)
        }
    }
}

/// Largest request body the API accepts (1 MiB): a watch is a few KB, an import of thousands
/// of URLs a few hundred.
pub const MAX_BODY: usize = 1024 * 1024;

/// A JSON body; a wrong content type or malformed JSON is upstream's "Validation failed" 400.
#[derive(Debug)]
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ct = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !ct.starts_with("application/json") {
            return Err(ApiError::message(
                axum::http::StatusCode::BAD_REQUEST,
                "Validation failed: body: request body must be JSON (Content-Type: application/json)",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| {
                ApiError::message(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "Request body too large",
                )
            })?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::message(
                axum::http::StatusCode::BAD_REQUEST,
                format!("Validation failed: body: invalid JSON ({e})"),
            )
        })?;
        Ok(JsonBody(v))
    }
}

/// Upstream tests query flags with Python truthiness (`if request.args.get("recheck")`): any
/// non-empty value is on, even "0" and "false".
pub fn truthy(v: Option<&String>) -> bool {
    v.is_some_and(|s| !s.is_empty())
}

/// Upstream's `strtobool` for boolean parameters (`changesOnly=false`): `default` when absent,
/// `None` for a value that is not a boolean.
pub fn strtobool(v: Option<&String>, default: bool) -> Option<bool> {
    match v.map(|s| s.trim().to_ascii_lowercase()) {
        None => Some(default),
        Some(s) => match s.as_str() {
            "1" | "true" | "yes" | "y" | "on" | "t" => Some(true),
            "0" | "false" | "no" | "n" | "off" | "f" => Some(false),
            _ => None,
        },
    }
}

fn bad_parameter(name: &str, why: String) -> ApiError {
    ApiError::message(
        axum::http::StatusCode::BAD_REQUEST,
        format!("Validation failed: {name}: {why}"),
    )
}

/// A two-way switch parameter (`?paused=paused|unpaused`): `Some(true)` for `on`, `Some(false)`
/// for `off`, `None` when absent. Any other value (empty too) is refused rather than read as
/// "just show the item": a typo must not look like a done pause.
pub fn query_switch(
    q: &std::collections::HashMap<String, String>,
    name: &str,
    on: &str,
    off: &str,
) -> Result<Option<bool>, ApiError> {
    match q.get(name).map(String::as_str) {
        None => Ok(None),
        Some(v) if v == on => Ok(Some(true)),
        Some(v) if v == off => Ok(Some(false)),
        Some(v) => Err(bad_parameter(
            name,
            format!("{v:?} is not one of ['{on}', '{off}']"),
        )),
    }
}

/// A non-negative integer parameter (`?offset=20`); absent is `None`.
pub fn query_count(
    q: &std::collections::HashMap<String, String>,
    name: &str,
) -> Result<Option<usize>, ApiError> {
    match q.get(name).map(String::as_str) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| bad_parameter(name, format!("{v:?} is not a non-negative integer"))),
    }
}
