//! One HTTP app for a process that faces browsers: the API, Socket.IO at `/socket.io`, and the
//! built dashboard's files at `/`. `changewatch serve` and the AWS push service both serve it.

use std::path::{Path, PathBuf};

use crate::server::SocketLayer;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use changewatch_api::AppState;

/// Page text and titles are attacker-controlled: even if an escaping bug slipped through, no
/// injected script or foreign resource may run or load. `blob:` images are the screenshots and
/// favicons the dashboard fetched itself (an `<img>` cannot send its header).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data: blob:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; \
form-action 'self'";

/// Where the built dashboard is: `configured` when given, else `dashboard/dist` under the
/// working directory or two levels above the executable (`target/<profile>/changewatch`).
pub fn find_dashboard(configured: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = configured {
        return Some(dir.to_path_buf());
    }
    let mut candidates = vec![PathBuf::from("dashboard/dist")];
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join("../../dashboard/dist"));
        candidates.push(dir.join("dashboard"));
    }
    candidates
        .into_iter()
        .find(|d| d.join("index.html").is_file())
}

/// The API (with its Flask 404 for unknown paths), the socket layer and the dashboard.
pub fn app(state: AppState, socket: SocketLayer, dashboard: Option<&Path>) -> Router {
    let api = changewatch_api::routes(state);
    let files = match dashboard {
        Some(dir) => Router::new().fallback_service(
            ServeDir::new(dir)
                .append_index_html_on_directories(true)
                .not_found_service(axum::routing::any(changewatch_api::not_found)),
        ),
        None => Router::new().fallback(not_built),
    }
    .layer(SetResponseHeaderLayer::overriding(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    ))
    .layer(SetResponseHeaderLayer::overriding(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ));
    socket.wrap(api.merge(files))
}

async fn not_built() -> impl IntoResponse {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "The dashboard is not built. Run `make run`, or `npm ci && npm run build` in dashboard/, \
         or point DASHBOARD_DIR at a built copy. The API is up.\n",
    )
}
