//! POST /api/v1/import: many watches from a text body, one URL per line, configured by query
//! parameters.

use crate::validate;
use crate::validate::{ApiContext, WatchCreate};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use changewatch_core::model::{PROCESSORS, is_valid_watch_url};
use changewatch_store::Kind;
use serde_json::{Map, Value, json};

use crate::apprise::is_valid_apprise_url;
use crate::bulk::{BACKGROUND_CONCURRENCY, BACKGROUND_THRESHOLD, in_background};
use crate::error::{ApiError, json_response};
use crate::extract::strtobool;
use crate::state::AppState;
use crate::stored::decode_watch;
use crate::stored::insert_watch;
use crate::validate::{proxy_list_text, proxy_names};
use futures::StreamExt;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/import", post(import))
}

/// Query parameters that steer the import rather than configure the watches.
const SPECIAL: &[&str] = &["tag", "tag_uuids", "dedupe", "proxy"];

/// Fetchers this port has; `system` and `extra_browser_*` are accepted as upstream does.
const FETCHERS: &[&str] = &["html_requests", "html_webdriver"];

fn bad(msg: String) -> ApiError {
    ApiError::text(StatusCode::BAD_REQUEST, msg)
}

/// Upstream's conversion of a query string to the field's schema type, with Python's error
/// wording (clients show it to users).
fn convert(value: &str, ty: &str) -> Result<Value, String> {
    match ty {
        "array" => {
            if value.starts_with('[')
                && let Ok(v @ Value::Array(_)) = serde_json::from_str(value)
            {
                return Ok(v);
            }
            Ok(Value::Array(
                value.split(',').map(|v| json!(v.trim())).collect(),
            ))
        }
        "object" => serde_json::from_str(value)
            .map_err(|_| format!("Invalid JSON object for field: {value}")),
        "boolean" => strtobool(Some(&value.to_string()), false)
            .map(Value::Bool)
            .ok_or_else(|| format!("invalid truth value '{value}'")),
        "integer" => value
            .trim()
            .parse::<i64>()
            .map(|n| json!(n))
            .map_err(|_| format!("invalid literal for int() with base 10: '{value}'")),
        "number" => value
            .trim()
            .parse::<f64>()
            .map(|n| json!(n))
            .map_err(|_| format!("could not convert string to float: '{value}'")),
        _ => Ok(json!(value)),
    }
}

async fn import(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // Upstream defaults a missing Content-Type to text/plain, and its request validation
    // refuses any other media type before the body is read.
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let mimetype = ct
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if mimetype != "text/plain" {
            return Err(ApiError::message(
                StatusCode::BAD_REQUEST,
                format!(
                    "Validation failed: Content for the following mimetype not found: {mimetype}. Valid mimetypes: ['text/plain']"
                ),
            ));
        }
    }
    let settings = state.settings().await?;
    let proxies = proxy_names(&settings);
    let browsers = settings.requests.extra_browser_backends();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());

    let mut extras = Map::new();
    if let Some(proxy) = get("proxy").filter(|p| !p.is_empty()) {
        if !proxies.contains(&proxy) {
            return Err(bad(format!(
                "Invalid proxy choice, currently supported proxies are '{}'",
                proxy_list_text(&proxies)
            )));
        }
        extras.insert("proxy".into(), json!(proxy));
    }
    let dedupe = strtobool(get("dedupe").as_ref(), true)
        .ok_or_else(|| bad("Invalid value for parameter 'dedupe': not a boolean".into()))?;
    if let Some(names) = get("tag").filter(|t| !t.is_empty()) {
        extras.insert("tag".into(), json!(names));
    }
    if let Some(uuids) = get("tag_uuids").filter(|t| !t.is_empty()) {
        let list: Vec<&str> = uuids.split(',').map(str::trim).collect();
        extras.insert("tags".into(), json!(list));
    }
    for (name, value) in &params {
        if SPECIAL.contains(&name.as_str()) {
            continue;
        }
        let Some(ty) = validate::watch_field_type(name) else {
            return Err(bad(format!(
                "Unknown watch configuration parameter: {name}"
            )));
        };
        let v = convert(value, ty)
            .map_err(|e| bad(format!("Invalid value for parameter '{name}': {e}")))?;
        extras.insert(name.clone(), v);
    }
    if let Some(p) = extras.get("processor")
        && !p.as_str().is_some_and(|p| PROCESSORS.contains(&p))
    {
        return Err(bad(format!(
            "Invalid processor '{}'. Available processors: {}",
            p.as_str().unwrap_or_default(),
            PROCESSORS.join(", ")
        )));
    }
    if let Some(f) = extras.get("fetch_backend") {
        let f = f.as_str().unwrap_or_default();
        if !(f == "system" || FETCHERS.contains(&f) || f.starts_with("extra_browser_")) {
            return Err(bad(format!(
                "Invalid fetch_backend '{f}'. Available: system, {}",
                FETCHERS.join(", ")
            )));
        }
    }
    if let Some(Value::Array(urls)) = extras.get("notification_urls")
        && let Some(u) = urls
            .iter()
            .filter_map(Value::as_str)
            .find(|u| !is_valid_apprise_url(u))
    {
        return Err(bad(format!(
            "Invalid notification_urls: '{}' is not a valid AppRise URL.",
            u.trim()
        )));
    }

    // Read only when something needs it: a tenant's every watch is billed in AWS mode.
    let existing = if dedupe || state.config.page_watch_limit.is_some() {
        state.store.list(&state.tenant, Kind::Watch).await?
    } else {
        Vec::new()
    };
    let mut known: Vec<String> = Vec::new();
    if dedupe {
        for item in &existing {
            known.push(decode_watch(item)?.url.to_lowercase());
        }
    }
    let text = String::from_utf8_lossy(&body);
    let mut urls = Vec::new();
    for url in text.lines().map(str::trim).filter(|u| !u.is_empty()) {
        if !is_valid_watch_url(url) {
            return Err(bad(format!("Invalid or unsupported URL - {url}")));
        }
        if dedupe && known.contains(&url.to_lowercase()) {
            continue;
        }
        urls.push(url.to_string());
    }
    if let Some(limit) = state.config.page_watch_limit
        && existing.len() + urls.len() > limit
    {
        return Err(ApiError::text(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Watch limit reached ({}/{limit} watches), importing {} URL(s) would exceed it. No watches were imported.",
                existing.len(),
                urls.len()
            ),
        ));
    }

    // Every watch is validated before any is stored: a bad value rejects the whole batch.
    let mut created: Vec<WatchCreate> = Vec::with_capacity(urls.len());
    {
        let ctx = ApiContext {
            proxy_names: &proxies,
            extra_browsers: &browsers,
            notification_url_validator: Some(&is_valid_apprise_url),
        };
        for url in &urls {
            let mut body = extras.clone();
            body.insert("url".into(), json!(url));
            created.push(validate::create_watch_from_json(Value::Object(body), &ctx)?);
        }
    }

    let n = created.len();
    if n >= BACKGROUND_THRESHOLD {
        let st = state.clone();
        in_background(&state, async move {
            let added: usize = futures::stream::iter(created)
                .map(|c| {
                    let (st, settings) = (&st, &settings);
                    async move {
                        match insert_watch(st, settings, c).await {
                            Ok(_) => 1,
                            Err(e) => {
                                tracing::error!(error = %e, "background import: a watch failed");
                                0
                            }
                        }
                    }
                })
                .buffer_unordered(BACKGROUND_CONCURRENCY)
                .fold(0, |sum, n| async move { sum + n })
                .await;
            tracing::info!(added, "background import complete");
        })
        .await;
        return Ok(json_response(
            StatusCode::ACCEPTED,
            &json!({"status": format!("Importing {n} URLs in background"), "count": n}),
        ));
    }
    let mut added = Vec::with_capacity(n);
    for c in created {
        added.push(insert_watch(&state, &settings, c).await?);
    }
    Ok(json_response(StatusCode::OK, &json!(added)))
}
