//! The REST API v1 (changedetection.io-compatible) as one axum `Router`, served by
//! `changewatch serve` in embedded mode and by the api Lambda function in AWS mode.
//!
//! - [`state`]: `AppState` (store, queue, workers view, tenant, config).
//! - [`error`]: `ApiError` and every error body shape, mapped in one place.
//! - [`auth`]: the `x-api-key` check (the dashboard passes with its session instead).
//! - [`session`]: the dashboard password (upstream's PBKDF2 format) and signed session cookies.
//! - [`live`]: a watch's live state, shared by `GET /ui/watches` and the socket's `watch_update`.
//! - [`bulk`]: operations on many watches: the dashboard's row and bulk operations (socket and
//!   REST) and the API's "recheck all" of the watch list and of a tag.
//! - [`extract`]: strict `{uuid}` paths, JSON bodies, upstream's flag parsing.
//! - [`bootstrap`]: first-start settings (the generated API key).
//! - [`hosts`]: the `Host` check against DNS rebinding (`serve` wraps the whole app in it).
//! - [`apprise`]: which notification URLs are acceptable (apprise-style schemes).
//! - [`stored`]: stored watches and tags: loading, creating (`insert_watch`, legacy tag
//!   names) and conflict-safe editing (`edit_watch`, `edit_tag`).
//! - [`datastore`]: importing upstream's datastore directory or backup zip through the store
//!   port (`changewatch import-datastore`, `POST /api/v1/import/datastore`).
//! - [`formats`]: the Import page's formats (URL list, Distill.io JSON, Wachete or custom
//!   `.xlsx`) parsed into watch bodies, bounded against hostile files.
//! - [`validate`]: what a watch or tag body may hold (schema, upstream's checks and messages),
//!   and the same rules as the JSON Schemas `/api/v1/full-spec` publishes.
//! - `routes::*`: the endpoints, one module per resource: `watches`, `history` (snapshots and
//!   differences), `tags`, `search`, `notifications`, `import`, `system` (systeminfo and the
//!   OpenAPI document), `ops` (worker-health, queue-status, queue.json), `ui` (the dashboard's
//!   session, watch rows, bulk operations and settings), `ui_import` (the Import page's
//!   per-row imports), `rss` (upstream's feeds of unviewed
//!   changes, behind the settings' `rss_access_token`), `backup` (download and restore a
//!   backup, `docs/BACKUP.md`).
//! - [`backup`]: what a restored document must be.

pub mod apprise;
pub mod auth;
pub mod backup;
pub mod bootstrap;
pub mod bulk;
pub mod datastore;
pub mod error;
pub mod extract;
pub mod formats;
pub mod hosts;
pub mod live;
pub mod session;
pub mod state;
pub mod stored;
pub mod validate;

mod routes {
    pub mod backup;
    pub mod datastore_import;
    pub mod history;
    pub mod import;
    pub mod notifications;
    pub mod ops;
    pub mod rss;
    pub mod search;
    pub mod system;
    pub mod tags;
    pub mod ui;
    pub mod ui_import;
    pub mod watches;
}

use axum::Router;
use axum::middleware;

pub use routes::ops::healthz;
pub use routes::system::{SPEC_YAML, full_spec_yaml};
pub use state::{Access, ApiConfig, AppState, Workers};

/// The whole API. Unknown routes get Flask's HTML 404, as upstream.
pub fn router(state: AppState) -> Router {
    routes(state).fallback(not_found)
}

/// Flask's HTML 404, for a caller that puts something else (the dashboard's files) in front of
/// it.
pub async fn not_found() -> error::ApiError {
    error::ApiError::NoRoute
}

/// The API without a fallback, to compose with other services.
pub fn routes(state: AppState) -> Router {
    let api = Router::new()
        .merge(routes::watches::routes())
        .merge(routes::history::routes())
        .merge(routes::tags::routes())
        .merge(routes::search::routes())
        .merge(routes::notifications::routes())
        .merge(routes::system::routes())
        .merge(routes::import::routes())
        .merge(routes::datastore_import::routes())
        .merge(routes::backup::routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ));
    Router::new()
        .merge(api)
        .merge(routes::system::public_routes())
        .merge(
            routes::ops::routes().route_layer(middleware::from_fn_with_state(
                state.clone(),
                auth::require_login_if_password,
            )),
        )
        .merge(routes::ui::routes(state.clone()))
        .merge(routes::ui_import::routes(state.clone()))
        .merge(routes::rss::routes())
        .layer(axum::extract::DefaultBodyLimit::max(extract::MAX_BODY))
        .with_state(state)
}
