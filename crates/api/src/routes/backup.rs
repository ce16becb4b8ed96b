//! `GET /api/v1/backup` (download a backup of this tenant) and `POST /api/v1/backup` (restore
//! one into it), behind the API key or the dashboard session like the rest of API v1. The
//! format and what each mode's backup promises are in `docs/BACKUP.md`; what the file holds
//! is built in `changewatch_store::backup`.

use std::collections::HashMap;
use std::io::{Seek, SeekFrom, Write};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use changewatch_store::backup::{BackupError, Exporter, LiveExporter, RestoreOptions, restore};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tracing::info;

use crate::backup::check_doc;
use crate::error::{ApiError, json_response};
use crate::extract::strtobool;
use crate::state::AppState;

/// The largest backup the API restores (the request is read whole first). A larger one goes in
/// with `changewatch restore`.
pub const MAX_RESTORE_BYTES: usize = 512 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/v1/backup",
        get(download)
            .post(upload)
            .layer(DefaultBodyLimit::max(MAX_RESTORE_BYTES)),
    )
}

/// The file's name: its time in UTC, sortable.
fn file_name(now: i64) -> String {
    let stamp = chrono::DateTime::from_timestamp(now, 0)
        .map(|t| t.format("%Y%m%d-%H%M%S").to_string())
        .unwrap_or_else(|| now.to_string());
    format!("changewatch-backup-{stamp}.jsonl.zst")
}

fn backup_failed(e: BackupError) -> ApiError {
    match e {
        BackupError::Store(e) => ApiError::Store(e),
        other => ApiError::message(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    }
}

async fn download(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    if let Some(name) = q.keys().next() {
        return Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            format!("Validation failed: {name}: unknown parameter"),
        ));
    }
    let now = state.now();
    // Written to an unnamed temporary file, then sent from it: the backup is as large as the
    // history, and the answer's length is known before the first byte goes.
    let mut file = tempfile_in_tmp().map_err(|e| backup_failed(e.into()))?;
    let exporter: std::sync::Arc<dyn Exporter> = match &state.backup {
        Some(e) => e.clone(),
        None => std::sync::Arc::new(LiveExporter::new(state.store.clone(), "live")),
    };
    let counts = {
        let mut out = std::io::BufWriter::new(&mut file);
        let counts = exporter
            .export(&state.tenant, now, &mut out)
            .await
            .map_err(backup_failed)?;
        out.flush().map_err(|e| backup_failed(e.into()))?;
        counts
    };
    let len = file
        .seek(SeekFrom::End(0))
        .map_err(|e| backup_failed(e.into()))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| backup_failed(e.into()))?;
    info!(
        watches = counts.watches,
        snapshots = counts.snapshots,
        bytes = len,
        "backup downloaded"
    );
    let file = tokio::fs::File::from_std(file);
    let body = Body::from_stream(futures::stream::unfold(file, |mut f| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    }));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/zstd")
        .header(header::CONTENT_LENGTH, len)
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", file_name(now)),
        )
        .header(header::CACHE_CONTROL, "no-store")
        .body(body)
        .map_err(|e| ApiError::message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// A file in the temporary directory that is unlinked at once: nothing is left behind whatever
/// happens to the request.
fn tempfile_in_tmp() -> std::io::Result<std::fs::File> {
    let path = std::env::temp_dir().join(format!(
        "changewatch-backup-{}.tmp",
        uuid::Uuid::new_v4().simple()
    ));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

async fn upload(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if let Some(name) = q.keys().find(|k| *k != "force") {
        return Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            format!("Validation failed: {name}: unknown parameter"),
        ));
    }
    let Some(force) = strtobool(q.get("force"), false) else {
        return Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            "Validation failed: force: not a boolean",
        ));
    };
    let opts = RestoreOptions {
        force,
        now: state.now(),
        check: &check_doc,
    };
    let restored = restore(
        state.store.as_ref(),
        &state.tenant,
        std::io::Cursor::new(body),
        &opts,
    )
    .await
    .map_err(|e| match e {
        BackupError::Store(e) => ApiError::Store(e),
        BackupError::NotEmpty { .. } => ApiError::message(StatusCode::CONFLICT, e.to_string()),
        BackupError::Io(_) => ApiError::message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        other => ApiError::message(StatusCode::BAD_REQUEST, other.to_string()),
    })?;
    info!(
        watches = restored.counts.watches,
        snapshots = restored.counts.snapshots,
        replaced = restored.replaced,
        "backup restored"
    );
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "restored": {
                "tags": restored.counts.tags,
                "watches": restored.counts.watches,
                "snapshots": restored.counts.snapshots,
                "log_entries": restored.counts.log_entries,
            },
            "replaced": restored.replaced,
            "backup": {
                "format_version": restored.manifest.format_version,
                "changewatch_version": restored.manifest.changewatch_version,
                "created": restored.manifest.created,
                "source_mode": restored.manifest.source_mode,
                "consistent": restored.manifest.consistent,
            },
        }),
    ))
}
