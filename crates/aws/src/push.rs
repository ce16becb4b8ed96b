//! The push service: a long-running process beside the Lambda functions. It follows the
//! `Watches` stream and turns its records into the same Socket.IO events embedded mode sends,
//! and serves the dashboard with the API on the same origin (the dashboard's REST calls and its
//! socket go to one host).

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use axum::routing::get;
use changewatch_push::Push;
use changewatch_push::web::app;
use changewatch_store::aws::StreamFeed;
use serde_json::json;
use tracing::info;

use crate::{AwsConfig, Clients};

/// How often the stream's shards are polled for records.
pub const STREAM_POLL: Duration = Duration::from_millis(500);

/// Serves until `shutdown` resolves, then closes every socket and returns.
pub async fn serve(
    clients: &Clients,
    config: &AwsConfig,
    listener: tokio::net::TcpListener,
    dashboard: Option<&Path>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let state = clients.app_state(config);
    let feed = StreamFeed::for_table(
        clients.streams.clone(),
        &config.resources.watches_table,
        config.stream_start,
        STREAM_POLL,
    )
    .await
    .map_err(|e| format!("cannot follow the watches table's stream: {e}"))?;
    let (socket_layer, push) = Push::start(state.clone(), &feed);
    let router = app(state, socket_layer, dashboard).route(
        "/healthz",
        get(|| async { axum::Json(json!({"status": "ok"})) }),
    );
    info!(addr = ?listener.local_addr().ok(), "push service listening");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .into_future(),
    );
    shutdown.await;
    info!("push service shutting down");
    push.close().await;
    let _ = stop_tx.send(());
    match server.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}
