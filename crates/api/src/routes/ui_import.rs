//! The dashboard's Import page: `POST /ui/import/urls` (a URL list, JSON), `/ui/import/distill`
//! (a Distill.io export as the body) and `/ui/import/xlsx?mapping=...` (the file's bytes).
//! Unlike `POST /api/v1/import` (all or nothing), each row stands alone as on upstream's page:
//! every row the file maps to a watch goes through `POST /api/v1/watch`'s validation, and the
//! reply lists each row as imported (with its uuid) or skipped (with the reason); a row with
//! `"rest": true` is where a bound stopped the reading (it and the rows after it are left).

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

use crate::apprise::is_valid_apprise_url;
use crate::error::{ApiError, json_response};
use crate::extract::JsonBody;
use crate::formats::xlsx::{self, Column, Mapping};
use crate::formats::{self, FormatError, MAX_TEXT_BYTES, Row};
use crate::routes::ui::require_dashboard;
use crate::state::AppState;
use crate::stored::{count_watches, insert_watch};
use crate::validate::{self, ApiContext, proxy_names};

pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/ui/import/urls", post(urls))
        .route("/ui/import/distill", post(distill))
        .route("/ui/import/xlsx", post(xlsx_file))
        .layer(DefaultBodyLimit::max(
            MAX_TEXT_BYTES.max(xlsx::MAX_XLSX_BYTES),
        ))
        .route_layer(middleware::from_fn_with_state(state, require_dashboard))
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::message(StatusCode::BAD_REQUEST, msg)
}

impl From<FormatError> for ApiError {
    fn from(e: FormatError) -> Self {
        bad(e.to_string())
    }
}

/// `{"urls": "...", "tag": "a,b", "processor": "..."}`: `tag` and `processor` are optional.
async fn urls(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let Value::Object(obj) = body else {
        return Err(bad("body: must be a JSON object"));
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !["urls", "tag", "processor"].contains(&k.as_str()))
    {
        return Err(bad(format!("{k}: not a field of this endpoint")));
    }
    let text = |k: &str| match obj.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(bad(format!("{k}: must be a string"))),
    };
    let list = text("urls")?.ok_or_else(|| bad("urls: required"))?;
    let tag = text("tag")?.filter(|t| !t.trim().is_empty());
    let processor = text("processor")?.filter(|p| !p.is_empty());
    let rows = formats::url_list(list, tag, processor);
    import(&state, rows, "list").await
}

/// The export file itself as the body, as Distill.io saves it.
async fn distill(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let text = std::str::from_utf8(&body).map_err(|_| FormatError::BadJson)?;
    let rows = formats::distill_json(text)?;
    import(&state, rows, "Distill.io").await
}

/// `?mapping=wachete`, or `?mapping=custom&col_1=url&col_2=title...` (columns from 1, types
/// among [`Column::NAMES`]); the body is the `.xlsx` file.
async fn xlsx_file(
    State(state): State<AppState>,
    Query(q): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut mapping = None;
    let mut cols = BTreeMap::new();
    for (k, v) in &q {
        if k == "mapping" {
            mapping = Some(v.as_str());
            continue;
        }
        let Some(n) = k.strip_prefix("col_") else {
            return Err(bad(format!("{k}: not a parameter of this endpoint")));
        };
        let n: u32 = n
            .parse()
            .ok()
            .filter(|n| (1..=16384).contains(n))
            .ok_or_else(|| bad(format!("{k}: the column number must be 1 to 16384")))?;
        if v.is_empty() {
            continue;
        }
        let c = Column::parse(v).ok_or_else(|| {
            bad(format!(
                "{k}: unknown column type '{v}' (one of {})",
                Column::NAMES.join(", ")
            ))
        })?;
        if cols.insert(n, c).is_some() {
            return Err(bad(format!("{k}: given twice")));
        }
    }
    let (mapping, what) = match mapping {
        Some("wachete") if cols.is_empty() => (Mapping::Wachete, "Wachete .xlsx"),
        Some("wachete") => return Err(bad("col_*: only a custom mapping takes columns")),
        Some("custom") => {
            if !cols.values().any(|c| *c == Column::Url) {
                return Err(bad("col_*: a custom mapping needs a column of type url"));
            }
            (Mapping::Custom(cols), "custom .xlsx")
        }
        Some(m) => return Err(bad(format!("mapping: '{m}' is not wachete or custom"))),
        None => return Err(bad("mapping: required (wachete or custom)")),
    };
    if body.is_empty() {
        return Err(bad("body: the .xlsx file is missing"));
    }
    let rows = tokio::task::spawn_blocking(move || xlsx::read(&body, &mapping))
        .await
        .map_err(|e| ApiError::message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    import(&state, rows, what).await
}

/// Each row validated as `POST /api/v1/watch` validates a body, then stored; the watch limit
/// skips the rows past it.
async fn import(state: &AppState, rows: Vec<Row>, what: &str) -> Result<Response, ApiError> {
    let settings = state.settings().await?;
    let proxies = proxy_names(&settings);
    let browsers = settings.requests.extra_browser_backends();
    let mut room = match state.config.page_watch_limit {
        Some(limit) => Some(limit.saturating_sub(count_watches(state).await?)),
        None => None,
    };
    let mut report = Vec::with_capacity(rows.len());
    let mut imported = 0;
    for row in rows {
        let created = row.body.and_then(|body| {
            let ctx = ApiContext {
                proxy_names: &proxies,
                extra_browsers: &browsers,
                notification_url_validator: Some(&is_valid_apprise_url),
            };
            validate::create_watch_from_json(Value::Object(body), &ctx).map_err(|e| e.to_string())
        });
        let outcome = match created {
            Err(reason) => Err(reason),
            Ok(_) if room == Some(0) => Err("Watch limit reached, row was skipped.".to_string()),
            Ok(c) => match insert_watch(state, &settings, c).await {
                Ok(uuid) => {
                    room = room.map(|r| r - 1);
                    Ok(uuid)
                }
                Err(e) => {
                    tracing::error!(row = row.row, error = %e, "import: storing a watch failed");
                    Err(format!("Could not be stored: {e}"))
                }
            },
        };
        report.push(match outcome {
            Ok(uuid) => {
                imported += 1;
                json!({"row": row.row, "url": row.url, "status": "imported", "uuid": uuid})
            }
            Err(reason) if row.rest => json!({"row": row.row, "url": row.url,
                "status": "skipped", "reason": reason, "rest": true}),
            Err(reason) => {
                json!({"row": row.row, "url": row.url, "status": "skipped", "reason": reason})
            }
        });
    }
    let skipped = report.len() - imported;
    tracing::info!(imported, skipped, what, "dashboard import");
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "message": format!("{imported} imported from {what}, {skipped} skipped."),
            "imported": imported,
            "skipped": skipped,
            "rows": report,
        }),
    ))
}
