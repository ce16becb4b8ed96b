//! `/ui/*`: what the browser dashboard needs beyond API v1 — its session (login with the
//! optional dashboard password), the watch list with live state in one call, bulk operations
//! without a socket, and the global settings page.
//!
//! With a password set, every guarded route needs the dashboard's session (or the API key
//! itself), whatever `api_access_token_enabled` says: that setting opens API v1, not the page
//! that shows the key and changes the password.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use crate::validate::{self, proxy_list_text, proxy_names, validate_rule_list};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use changewatch_core::fetch::{parse_devtools_url, parse_proxy_url};
use changewatch_core::model::{
    ExtraBrowser, ExtraProxy, SessionKeys, Settings, TextOrFalse, TimeBetweenCheck,
    check_template_syntax,
};
use changewatch_engine::docs::update_settings;
use changewatch_store::Kind;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::apprise::is_valid_apprise_url;
use crate::auth::{api_key_ok, key_matches};
use crate::bulk::{checkbox_operation, update_watch};
use crate::error::{ApiError, json_response, no_content};
use crate::extract::{JsonBody, WatchUuid};
use crate::live::{Stats, unread, watch_row};
use crate::session::{self, Issued, LoginLimiter};
use crate::state::{Access, AppState};
use crate::stored::{history_info, rendered_templates};

pub fn routes(state: AppState) -> Router<AppState> {
    let guarded = Router::new()
        .route("/ui/watches", get(watches))
        .route("/ui/watch/{uuid}/viewed", post(viewed))
        .route("/ui/watch/{uuid}/screenshot", get(screenshot))
        .route("/ui/checkbox-operations", post(checkbox))
        .route("/ui/settings", get(read_settings).put(write_settings))
        .route("/ui/settings/password", post(set_password))
        .route("/ui/settings/api-key", post(regenerate_key))
        .route("/ui/settings/rss-token", post(regenerate_rss_token))
        .route_layer(middleware::from_fn_with_state(state, require_dashboard));
    // One limiter per router: per process in both modes.
    let limiter = Arc::new(LoginLimiter::default());
    Router::new()
        .route("/ui/session", get(session_state))
        .route("/ui/login", post(login).layer(Extension(limiter)))
        .route("/ui/logout", post(logout))
        .merge(guarded)
}

/// Why a network-facing server without a password lets no browser in.
const PASSWORD_REQUIRED: &str = "A dashboard password is required on a server reachable from the network (set CW_ALLOW_NO_PASSWORD=true only on a trusted network)";

fn no_password_yet() -> ApiError {
    ApiError::message(
        StatusCode::UNAUTHORIZED,
        "No dashboard password is set on this server and it is reachable from the network: set one with the API key (POST /ui/settings/password with the x-api-key header), or start it with SALTED_PASS (changewatch hash-password makes one)",
    )
}

fn login_required() -> ApiError {
    ApiError::message(StatusCode::UNAUTHORIZED, "Login required")
}

/// The dashboard (UI header, plus a session when a password is set) or an API key. With a
/// password set, "the API key check is off" lets nobody in here: only the key itself does.
pub(crate) async fn require_dashboard(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let settings = match state.settings().await {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let access = state.access(&settings);
    let headers = req.headers();
    let key_ok = match access {
        Access::Password(_) | Access::KeyOnly => key_matches(
            headers.get("x-api-key").and_then(|v| v.to_str().ok()),
            &settings,
        ),
        Access::Open => api_key_ok(headers, &settings),
    };
    if key_ok || session::dashboard_allowed(headers, &settings, access, state.now()) {
        next.run(req).await
    } else {
        login_required().into_response()
    }
}

async fn session_state(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let settings = state.settings().await?;
    let access = state.access(&settings);
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "password_required": access != Access::Open,
            "password_set": access.password().is_some(),
            "authenticated": session::session_ok(&headers, &settings, access, state.now()),
        }),
    ))
}

fn with_cookie(mut resp: Response, session: Option<&Issued>) -> Response {
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(session)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

fn internal(what: &str) -> ApiError {
    ApiError::message(StatusCode::INTERNAL_SERVER_ERROR, what)
}

/// The client's address for the login throttle: behind `CW_TRUSTED_PROXY_HOPS` proxies (the
/// AWS stack's load balancer), the entry that many from the right of `X-Forwarded-For` (what
/// the nearest trusted proxy saw; entries further left are the client's own claims); else the
/// peer address when the server was started with connect info (`changewatch serve`, the push
/// service); `None` behind Lambda, where only the global login bucket applies.
struct ClientIp(Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let hops = state.config.trusted_proxy_hops;
        if hops == 0 {
            return Ok(ClientIp(peer));
        }
        Ok(ClientIp(forwarded_client(&parts.headers, hops).or(peer)))
    }
}

/// The address `hops` entries from the right of all `X-Forwarded-For` headers together.
fn forwarded_client(headers: &HeaderMap, hops: usize) -> Option<IpAddr> {
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let i = entries.len().checked_sub(hops)?;
    entries.get(i)?.parse().ok()
}

/// Usable session keys of `s`, created in it when missing.
fn ensure_keys(s: &mut Settings) -> (SessionKeys, bool) {
    match &s.application.session_keys {
        Some(k) if k.secret.len() >= 32 => (k.clone(), false),
        _ => {
            let k = session::new_keys();
            s.application.session_keys = Some(k.clone());
            (k, true)
        }
    }
}

/// The tenant's session keys, generated and stored on first need (when two processes race,
/// the conditional write keeps the first and the other reads it).
async fn session_keys(state: &AppState) -> Result<SessionKeys, ApiError> {
    update_settings(state.store.as_ref(), &state.tenant, |s, _| {
        Ok::<_, ApiError>(ensure_keys(s))
    })
    .await
}

/// PBKDF2 is slow by design: on the blocking pool, so logins cannot stall other requests.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| internal("password hashing failed"))
}

async fn login(
    State(state): State<AppState>,
    Extension(limiter): Extension<Arc<LoginLimiter>>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let settings = state.settings().await?;
    let hash = match state.access(&settings) {
        Access::Password(hash) => hash.to_string(),
        Access::Open => {
            return Ok(json_response(
                StatusCode::OK,
                &json!({"authenticated": true}),
            ));
        }
        Access::KeyOnly => return Err(no_password_yet()),
    };
    if let Err(wait) = limiter.attempt(ip, Instant::now()) {
        let secs = wait.as_secs() + 1;
        tracing::warn!(client = ?ip, "dashboard login refused: too many attempts");
        let mut resp = ApiError::message(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many login attempts, try again in {secs} seconds"),
        )
        .into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return Ok(resp);
    }
    let given = body
        .get("password")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let remember = body
        .get("remember")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let stored = hash.clone();
    if !blocking(move || session::verify_password(&stored, &given)).await? {
        tracing::warn!(client = ?ip, "dashboard login refused: incorrect password");
        return Err(ApiError::message(
            StatusCode::UNAUTHORIZED,
            "Incorrect password",
        ));
    }
    let keys = session_keys(&state).await?;
    let cookie = session::issue(&keys, &hash, state.now(), remember)
        .ok_or_else(|| internal("session signing failed"))?;
    Ok(with_cookie(
        json_response(StatusCode::OK, &json!({"authenticated": true})),
        Some(&cookie),
    ))
}

/// Clears the cookie and, when it was a valid session, records it as logged out, so a copy of
/// the cookie is refused too and its sockets are disconnected (the push layer sees the write).
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(cookie) = session::cookie_value(&headers) {
        let settings = state.settings().await?;
        let now = state.now();
        let live = state.dashboard_password(&settings).is_some_and(|hash| {
            session::valid(
                settings.application.session_keys.as_ref(),
                hash,
                &cookie,
                now,
            )
        });
        if let (true, Some((id, expires))) = (live, session::parse(&cookie)) {
            update_settings(state.store.as_ref(), &state.tenant, |s, _| {
                let Some(keys) = s.application.session_keys.as_mut() else {
                    return Ok::<_, ApiError>(((), false));
                };
                session::revoke(keys, id, expires, now);
                Ok(((), true))
            })
            .await?;
        }
    }
    Ok(with_cookie(no_content(), None))
}

async fn watches(State(state): State<AppState>) -> Result<Response, ApiError> {
    let now = state.now();
    let mut rows = Vec::new();
    let mut stats = Stats::default();
    let mut checking = 0;
    let mut queued = 0;
    // Rows whose URL is a template, with it: rendered in the sandbox once the walk is done.
    let mut templated = Vec::new();
    // One watch at a time: the rows are kept, the documents are not.
    state
        .store
        .list_each(&state.tenant, Kind::Watch, &mut |item| {
            let watch: changewatch_core::model::Watch = changewatch_engine::docs::decode(&item)?;
            let row = watch_row(&item, &watch, now);
            if row.link.is_none() {
                templated.push((rows.len(), watch.url.clone()));
            }
            if row.checking_now {
                checking += 1;
            }
            // The queue size the socket reports in embedded mode: watches marked queued.
            if row.queued {
                queued += 1;
            }
            if watch.last_error.is_set() {
                stats.count_errors += 1;
            }
            if unread(&watch, &history_info(&item)) {
                stats.unread_changes_count += 1;
            }
            rows.push(row);
            Ok(())
        })
        .await?;
    for (i, url) in templated {
        let links = rendered_templates(&state, &[&url]).await;
        if let Some(row) = rows.get_mut(i) {
            row.link = Some(changewatch_core::model::resolve_link(&url, &|t| {
                links.render(t)
            }));
        }
    }
    // In id order, as the list always came.
    rows.sort_by(|a, b| a.uuid.cmp(&b.uuid));
    let settings = state.settings().await?;
    let rss_token = settings.application.rss_access_token.unwrap_or_default();
    let settings_ui = settings.application.ui;
    let tags: Vec<Value> = state
        .tags()
        .await?
        .iter()
        .map(|(uuid, t)| json!({"uuid": uuid, "title": t.title()}))
        .collect();
    // Where the socket reads the queues' depth (AWS mode), so does this: the two must agree.
    if let Some(probe) = &state.queue_depth {
        queued = probe.depth().await.map_err(|e| {
            ApiError::message(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot read the queue depth: {e}"),
            )
        })?;
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "watches": rows,
            "tags": tags,
            "queue_size": queued,
            "checking_now": checking,
            "count_errors": stats.count_errors,
            "unread_changes_count": stats.unread_changes_count,
            "use_page_title_in_list": settings_ui.use_page_title_in_list,
            "rss_access_token": rss_token,
        }),
    ))
}

async fn viewed(
    State(state): State<AppState>,
    WatchUuid(uuid): WatchUuid,
) -> Result<Response, ApiError> {
    let now = state.now();
    let found = update_watch(&state, &uuid, false, |w, l| {
        w.last_viewed = now.max(l.item.history.newest.unwrap_or(0));
    })
    .await?;
    if !found {
        return Err(crate::stored::not_found(&uuid));
    }
    Ok(no_content())
}

/// The API's screenshot for the dashboard's preview and history pages, with "none" as
/// `204 No Content` instead of a 404: most watches have none, and a browser logs every 404 as
/// an error.
async fn screenshot(
    State(state): State<AppState>,
    WatchUuid(uuid): WatchUuid,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let found = crate::routes::history::find_screenshot(
        &state,
        &uuid,
        q.get("timestamp").map(String::as_str),
    )
    .await?;
    Ok(found.map_or_else(no_content, crate::routes::history::screenshot_response))
}

#[derive(Deserialize)]
struct CheckboxBody {
    op: String,
    #[serde(default)]
    uuids: Vec<String>,
    #[serde(default)]
    extra_data: Option<String>,
}

async fn checkbox(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let body: CheckboxBody = serde_json::from_value(body)
        .map_err(|e| ApiError::message(StatusCode::BAD_REQUEST, format!("Invalid request: {e}")))?;
    let out = checkbox_operation(&state, &body.op, &body.uuids, body.extra_data.as_deref()).await?;
    let code = if out.kind == "error" {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(json_response(
        code,
        &json!({"message": out.message, "type": out.kind}),
    ))
}

fn settings_view(s: &Settings) -> Value {
    let a = &s.application;
    json!({
        "time_between_check": s.requests.time_between_check,
        "jitter_seconds": s.requests.jitter_seconds,
        "extra_proxies": s.requests.extra_proxies,
        "extra_browsers": s.requests.extra_browsers,
        "proxy": s.requests.proxy,
        "proxy_choices": proxy_names(s),
        "global_ignore_text": a.global_ignore_text,
        "global_subtractive_selectors": a.global_subtractive_selectors,
        "notification_urls": a.notification_urls,
        "notification_title": a.notification_title,
        "notification_body": a.notification_body,
        "notification_format": a.notification_format,
        "api_access_token": a.api_access_token.clone().unwrap_or_default(),
        "api_access_token_enabled": a.api_access_token_enabled,
        "password_set": a.password.is_set(),
        "rss_access_token": a.rss_access_token.clone().unwrap_or_default(),
        "rss_content_format": a.rss_content_format,
        "rss_diff_length": a.rss_diff_length,
        "rss_hide_muted_watches": a.rss_hide_muted_watches,
        "rss_template_type": a.rss_template_type,
        "rss_template_override": a.rss_template_override,
    })
}

async fn read_settings(State(state): State<AppState>) -> Result<Response, ApiError> {
    let settings = state.settings().await?;
    let mut view = settings_view(&settings);
    fixed_by_deployment(&state, &mut view);
    Ok(json_response(StatusCode::OK, &view))
}

/// What the deployment decides and the settings page must show as not editable: a password
/// or key fixed by the environment, and whether a password may be removed.
fn fixed_by_deployment(state: &AppState, view: &mut Value) {
    if state.config.salted_pass.is_some() {
        view["password_set"] = json!(true);
    }
    view["password_fixed"] = json!(state.config.salted_pass.is_some());
    view["password_required"] = json!(!state.config.open_without_password);
    view["api_key_fixed"] = json!(state.config.api_key_fixed);
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::message(StatusCode::BAD_REQUEST, msg)
}

fn string_list(v: &Value, field: &str) -> Result<Vec<String>, ApiError> {
    let Some(arr) = v.as_array() else {
        return Err(bad(format!("{field}: must be a list of strings")));
    };
    arr.iter()
        .map(|x| {
            x.as_str()
                .map(|s| s.trim().to_string())
                .ok_or_else(|| bad(format!("{field}: must be a list of strings")))
        })
        .filter(|r| r.as_ref().map_or(true, |s| !s.is_empty()))
        .collect()
}

fn text(v: &Value, field: &str) -> Result<String, ApiError> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| bad(format!("{field}: must be a string")))
}

const NOTIFICATION_FORMATS: [&str; 4] = ["text", "html", "htmlcolor", "markdown"];
/// Upstream's RSS formats: the notification formats without markdown.
const RSS_FORMATS: [&str; 3] = ["text", "html", "htmlcolor"];
/// Upstream's `RSS_TEMPLATE_TYPE_OPTIONS`: the built-in item body, or each watch's
/// notification body.
const RSS_TEMPLATE_TYPES: [&str; 2] = ["system_default", "notification_body"];

/// Validates the whole body before anything is written, so a bad field changes nothing.
/// The datastore import runs upstream's settings through it, one field at a time.
pub(crate) fn apply_settings(s: &mut Settings, body: &Map<String, Value>) -> Result<(), ApiError> {
    for (k, v) in body {
        match k.as_str() {
            "time_between_check" => {
                let t: TimeBetweenCheck = serde_json::from_value(v.clone())
                    .map_err(|e| bad(format!("time_between_check: {e}")))?;
                let parts = [t.weeks, t.days, t.hours, t.minutes, t.seconds];
                if parts.iter().flatten().any(|n| *n < 0) {
                    return Err(bad("time_between_check: values must not be negative"));
                }
                if t.seconds().unwrap_or(0) < 1 {
                    return Err(bad("time_between_check: must be at least one second"));
                }
                s.requests.time_between_check = t;
            }
            "extra_browsers" => {
                let browsers: Vec<ExtraBrowser> = serde_json::from_value(v.clone()).map_err(|_| {
                    bad("extra_browsers: must be a list of {browser_name, browser_connection_url}")
                })?;
                let mut names = HashSet::new();
                let mut kept = Vec::with_capacity(browsers.len());
                for b in browsers {
                    let name = b.browser_name.trim().to_string();
                    let ws = b.browser_connection_url.trim().to_string();
                    if name.is_empty() || ws.is_empty() {
                        return Err(bad(
                            "extra_browsers: every browser needs a name and a connection URL",
                        ));
                    }
                    if !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    {
                        return Err(bad(format!(
                            "extra_browsers: the name '{name}' may only have letters, digits, '_' and '-' (it becomes the fetch method extra_browser_{name})"
                        )));
                    }
                    if !names.insert(name.clone()) {
                        return Err(bad(format!(
                            "extra_browsers: the name '{name}' is used twice"
                        )));
                    }
                    parse_devtools_url(&ws)
                        .map_err(|e| bad(format!("extra_browsers: browser '{name}': {e}")))?;
                    kept.push(ExtraBrowser {
                        browser_name: name,
                        browser_connection_url: ws,
                    });
                }
                s.requests.extra_browsers = kept;
            }
            "extra_proxies" => {
                let proxies: Vec<ExtraProxy> = serde_json::from_value(v.clone())
                    .map_err(|_| bad("extra_proxies: must be a list of {proxy_name, proxy_url}"))?;
                let mut names = HashSet::new();
                for p in &proxies {
                    let name = p.proxy_name.trim();
                    if name.is_empty() || p.proxy_url.trim().is_empty() {
                        return Err(bad("extra_proxies: every proxy needs a name and a URL"));
                    }
                    if !names.insert(name.to_string()) {
                        return Err(bad(format!(
                            "extra_proxies: the name '{name}' is used twice"
                        )));
                    }
                    parse_proxy_url(&p.proxy_url)
                        .map_err(|e| bad(format!("extra_proxies: proxy '{name}': {e}")))?;
                }
                s.requests.extra_proxies = proxies
                    .into_iter()
                    .map(|p| ExtraProxy {
                        proxy_name: p.proxy_name.trim().to_string(),
                        proxy_url: p.proxy_url.trim().to_string(),
                    })
                    .collect();
            }
            "jitter_seconds" => {
                let j = v
                    .as_i64()
                    .filter(|j| *j >= 0)
                    .ok_or_else(|| bad("jitter_seconds: must be a whole number, 0 or more"))?;
                s.requests.jitter_seconds = j;
            }
            "global_ignore_text" | "global_subtractive_selectors" => {
                let rules = string_list(v, k)?;
                validate_rule_list(k, &rules).map_err(|e| bad(e.to_string()))?;
                if k == "global_ignore_text" {
                    s.application.global_ignore_text = rules;
                } else {
                    s.application.global_subtractive_selectors = rules;
                }
            }
            "notification_urls" => {
                let urls = string_list(v, k)?;
                if let Some(badurl) = urls.iter().find(|u| !is_valid_apprise_url(u)) {
                    return Err(bad(format!("'{badurl}' is not a valid AppRise URL.")));
                }
                s.application.notification_urls = urls;
            }
            "notification_title" | "notification_body" => {
                let t = text(v, k)?;
                check_template_syntax(&t)
                    .map_err(|e| bad(format!("{k}: Invalid template syntax: {e}")))?;
                if k == "notification_title" {
                    s.application.notification_title = t;
                } else {
                    s.application.notification_body = t;
                }
            }
            "notification_format" => {
                let f = text(v, k)?;
                if !NOTIFICATION_FORMATS.contains(&f.as_str()) {
                    return Err(bad(format!(
                        "notification_format: must be one of {}",
                        NOTIFICATION_FORMATS.join(", ")
                    )));
                }
                s.application.notification_format = f;
            }
            "rss_content_format" => {
                let f = text(v, k)?;
                if !RSS_FORMATS.contains(&f.as_str()) {
                    return Err(bad(format!(
                        "rss_content_format: must be one of {}",
                        RSS_FORMATS.join(", ")
                    )));
                }
                s.application.rss_content_format = f;
            }
            "rss_diff_length" => {
                s.application.rss_diff_length = v
                    .as_i64()
                    .filter(|n| (0..=1000).contains(n))
                    .ok_or_else(|| {
                        bad("rss_diff_length: must be a whole number from 0 (all) to 1000")
                    })?;
            }
            "rss_template_type" => {
                let t = text(v, k)?;
                if !RSS_TEMPLATE_TYPES.contains(&t.as_str()) {
                    return Err(bad(format!(
                        "rss_template_type: must be one of {}",
                        RSS_TEMPLATE_TYPES.join(", ")
                    )));
                }
                s.application.rss_template_type = t;
            }
            "rss_template_override" => {
                let t = if v.is_null() {
                    String::new()
                } else {
                    text(v, k)?
                };
                changewatch_core::model::check_template_syntax(&t)
                    .map_err(|e| bad(format!("rss_template_override: {e}")))?;
                s.application.rss_template_override = (!t.trim().is_empty()).then_some(t);
            }
            "rss_hide_muted_watches" => {
                s.application.rss_hide_muted_watches = v
                    .as_bool()
                    .ok_or_else(|| bad("rss_hide_muted_watches: must be true or false"))?;
            }
            "api_access_token_enabled" => {
                s.application.api_access_token_enabled = v
                    .as_bool()
                    .ok_or_else(|| bad("api_access_token_enabled: must be true or false"))?;
            }
            "proxy" => {
                s.requests.proxy = match v {
                    Value::Null => None,
                    Value::String(p) if p.trim().is_empty() => None,
                    Value::String(p) => Some(p.trim().to_string()),
                    _ => return Err(bad("proxy: must be a proxy's key or null")),
                };
            }
            other => return Err(bad(format!("{other}: not a setting this page can change"))),
        }
    }
    // Checked once the list is final: the default must name a proxy of it (removing the
    // proxy it names needs the default changed in the same save).
    if let Some(p) = &s.requests.proxy {
        let names = proxy_names(s);
        if !names.contains(p) {
            return Err(bad(format!(
                "proxy: '{p}' is not in the proxy list ({})",
                proxy_list_text(&names)
            )));
        }
    }
    Ok(())
}

async fn write_settings(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let Some(body) = body.as_object().cloned() else {
        return Err(bad("Request body must be a JSON object"));
    };
    // With notification templates in the body: the page's own checks first (on a copy), then
    // the templates in the sandbox; then the write.
    let body_value = Value::Object(body.clone());
    if !validate::notification_templates(&body_value).is_empty() {
        apply_settings(&mut state.settings().await?, &body)?;
        validate::check_notification_templates(&state.sandbox, &body_value)
            .await
            .map_err(|e| bad(e.to_string()))?;
    }
    let mut view = update_settings(state.store.as_ref(), &state.tenant, |s, _| {
        apply_settings(s, &body)?;
        Ok::<_, ApiError>((settings_view(s), true))
    })
    .await?;
    fixed_by_deployment(&state, &mut view);
    Ok(json_response(StatusCode::OK, &view))
}

/// Sets the dashboard password; an empty one removes it. The response carries a fresh session
/// cookie, so the browser that set the password stays logged in (older sessions end).
async fn set_password(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    if state.config.salted_pass.is_some() {
        return Err(bad(
            "The dashboard password is set by the SALTED_PASS environment variable",
        ));
    }
    let password = body
        .get("password")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("password: must be a string"))?
        .to_string();
    let hash = if password.is_empty() {
        if !state.config.open_without_password {
            return Err(bad(PASSWORD_REQUIRED));
        }
        None
    } else {
        Some(blocking(move || session::hash_password(&password)).await?)
    };
    let stored = hash.clone();
    let keys = update_settings(state.store.as_ref(), &state.tenant, |s, _| {
        s.application.password = stored.clone().map_or(TextOrFalse::False, TextOrFalse::Text);
        Ok::<_, ApiError>((ensure_keys(s).0, true))
    })
    .await?;
    let cookie = hash
        .as_deref()
        .and_then(|h| session::issue(&keys, h, state.now(), false));
    Ok(with_cookie(no_content(), cookie.as_ref()))
}

async fn regenerate_key(State(state): State<AppState>) -> Result<Response, ApiError> {
    if state.config.api_key_fixed {
        return Err(bad(
            "The API key is set by the API_ACCESS_TOKEN environment variable",
        ));
    }
    let key = changewatch_core::model::new_token_hex();
    let stored = key.clone();
    update_settings(state.store.as_ref(), &state.tenant, |s, _| {
        s.application.api_access_token = Some(stored.clone());
        Ok::<_, ApiError>(((), true))
    })
    .await?;
    tracing::info!("API key regenerated from the dashboard");
    Ok(json_response(
        StatusCode::OK,
        &json!({"api_access_token": key}),
    ))
}

/// A new `rss_access_token`: every feed URL handed out before stops working (a leaked
/// feed link is otherwise a permanent read key to every watch's changes).
async fn regenerate_rss_token(State(state): State<AppState>) -> Result<Response, ApiError> {
    let token = changewatch_core::model::new_token_hex();
    let stored = token.clone();
    update_settings(state.store.as_ref(), &state.tenant, |s, _| {
        s.application.rss_access_token = Some(stored.clone());
        Ok::<_, ApiError>(((), true))
    })
    .await?;
    tracing::info!("RSS access token regenerated from the dashboard");
    Ok(json_response(
        StatusCode::OK,
        &json!({"rss_access_token": token}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_client_is_counted_from_the_trusted_end() {
        // A client that forges the header only adds entries on the left.
        let h = xff(&["6.6.6.6, 203.0.113.7"]);
        assert_eq!(forwarded_client(&h, 1), "203.0.113.7".parse().ok());
        assert_eq!(forwarded_client(&h, 2), "6.6.6.6".parse().ok());
        assert_eq!(forwarded_client(&h, 3), None, "fewer entries than proxies");
        let h = xff(&["6.6.6.6", "2001:db8::1"]);
        assert_eq!(forwarded_client(&h, 1), "2001:db8::1".parse().ok());
        assert_eq!(forwarded_client(&xff(&["not an address"]), 1), None);
        assert_eq!(forwarded_client(&HeaderMap::new(), 1), None);
    }
}
