//! Every error response the API sends, mapped in one place.
//!
//! Upstream (Flask-RESTful) answers errors in three shapes, and clients parse them: a JSON
//! string (`"Invalid or unsupported URL"`), a JSON object (`{"message": "..."}`), and Flask's
//! HTML page for routes that do not match (a malformed uuid never reaches a handler).

use crate::validate::{ApiValidationError, ErrorBody};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use changewatch_store::StoreError;
use tracing::error;

/// Flask's 404 page, byte for byte: what upstream serves for unknown routes and bad uuids.
pub const FLASK_404: &str = "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.</p>\n";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A JSON string body (`return "...", code` upstream).
    #[error("{1}")]
    Text(StatusCode, String),
    /// `{"message": ...}` (`abort(code, message=...)` upstream).
    #[error("{1}")]
    Message(StatusCode, String),
    /// A plain-text body (upstream's RSS feeds answer their errors as bare strings).
    #[error("{1}")]
    Plain(StatusCode, String),
    /// Flask's HTML 404.
    #[error("not found")]
    NoRoute,
    #[error("Invalid access - API key invalid.")]
    Forbidden,
    #[error(transparent)]
    Validation(#[from] ApiValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError {
    pub fn text(code: StatusCode, msg: impl Into<String>) -> Self {
        ApiError::Text(code, msg.into())
    }

    pub fn message(code: StatusCode, msg: impl Into<String>) -> Self {
        ApiError::Message(code, msg.into())
    }
}

/// A JSON-encoded string body with a trailing newline, as Flask-RESTful writes it.
pub fn json_string(code: StatusCode, s: &str) -> Response {
    json_response(code, &serde_json::Value::String(s.to_string()))
}

/// A JSON body with upstream's trailing newline.
pub fn json_response(code: StatusCode, v: &serde_json::Value) -> Response {
    let mut body = serde_json::to_string(v).unwrap_or_else(|_| "null".into());
    body.push('\n');
    let mut resp = (code, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// [`json_response`] for a body already serialized (the same trailing newline and type).
pub fn json_bytes_response(code: StatusCode, mut body: Vec<u8>) -> Response {
    body.push(b'\n');
    let mut resp = (code, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// 204 with the empty body HTTP requires.
pub fn no_content() -> Response {
    let mut r = Response::new(axum::body::Body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Text(code, s) => json_string(code, &s),
            ApiError::Message(code, s) => json_response(code, &serde_json::json!({ "message": s })),
            ApiError::Plain(code, s) => {
                let mut resp = (code, s).into_response();
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                resp
            }
            ApiError::NoRoute => {
                let mut resp = (StatusCode::NOT_FOUND, FLASK_404).into_response();
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                resp
            }
            ApiError::Forbidden => {
                json_string(StatusCode::FORBIDDEN, "Invalid access - API key invalid.")
            }
            ApiError::Validation(e) => {
                let msg = e.to_string();
                match e.body_kind() {
                    ErrorBody::MessageObject => {
                        ApiError::Message(StatusCode::BAD_REQUEST, msg).into_response()
                    }
                    ErrorBody::JsonString => {
                        ApiError::Text(StatusCode::BAD_REQUEST, msg).into_response()
                    }
                }
            }
            ApiError::Store(StoreError::Conflict(_)) => ApiError::message(
                StatusCode::CONFLICT,
                "The item was changed by another request at the same time; please retry.",
            )
            .into_response(),
            ApiError::Store(e) => {
                error!(error = %e, "store error while serving a request");
                ApiError::message(StatusCode::INTERNAL_SERVER_ERROR, "Internal storage error")
                    .into_response()
            }
        }
    }
}
