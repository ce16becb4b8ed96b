//! POST /api/v1/import/datastore: upstream's backup zip (its Backups page's download) as the
//! request body, imported as `changewatch import-datastore` imports it; `?dry_run=true` only
//! reports. Behind the API key (or a dashboard session), like every `/api/v1` route.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use std::collections::HashMap;

use crate::datastore::{self, ImportError, Options, zip::MAX_ZIP_BYTES};
use crate::error::{ApiError, json_response};
use crate::extract::strtobool;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/import/datastore", post(upload))
        // Upstream's restore takes zips up to this size; the API's usual 1 MB is for JSON.
        .layer(DefaultBodyLimit::max(MAX_ZIP_BYTES))
}

/// Watches between two progress lines in the log.
const PROGRESS_EVERY: usize = 100;

async fn upload(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let bad = |m: String| ApiError::message(StatusCode::BAD_REQUEST, m);
    let dry_run =
        strtobool(q.get("dry_run"), false).ok_or_else(|| bad("dry_run: not a boolean".into()))?;
    if let Some(k) = q.keys().find(|k| *k != "dry_run") {
        return Err(bad(format!("{k}: not a parameter of this endpoint")));
    }
    if !body.starts_with(b"PK") {
        return Err(bad(
            "body: not a zip file (send upstream's backup zip as the request body)".into(),
        ));
    }
    let opts = Options {
        tenant: state.tenant.clone(),
        dry_run,
        minimum_recheck_secs: state.config.minimum_recheck_secs,
        now: state.now(),
        progress_every: PROGRESS_EVERY,
        keep_api_key: true,
    };
    let mut progress = |done: usize, total: usize| {
        tracing::info!(done, total, "datastore import: watches");
    };
    let report = datastore::import_zip(
        state.store.as_ref(),
        Some(&state.sandbox),
        body.to_vec(),
        &opts,
        &mut progress,
    )
    .await
    .map_err(|e| match e {
        ImportError::Store(e) => ApiError::Store(e),
        ImportError::Io { .. } => {
            ApiError::message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
        other => bad(format!("body: {other}")),
    })?;
    let body = serde_json::to_value(&report)
        .map_err(|e| ApiError::message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(json_response(StatusCode::OK, &body))
}
