//! The push service: a long-running process beside the Lambda functions. It follows the
//! `Watches` stream and turns its records into the same Socket.IO events embedded mode sends,
//! and serves the dashboard with the API on the same origin (the dashboard's REST calls and its
//! socket go to one host).
//!
//! `queue_size` is the depth of the `checks` and `rechecks` queues (waiting, in flight and
//! delayed messages), read with `GetQueueAttributes` every `CW_QUEUE_POLL_SECS` while at least
//! one client is connected, and sent when it changes. SQS reports these counts approximately
//! and for the whole stack, not per tenant.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use axum::routing::get;
use changewatch_push::web::app;
use changewatch_push::{DepthFuture, DepthProbe, Push, QueueSize};
use changewatch_store::aws::sqs::{DELAYED, IN_FLIGHT, WAITING, approximate_count};
use changewatch_store::aws::{FeedHealth, StreamFeed};
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
    // The socket's operations (pause, delete, recheck, ...) render no templates.
    let state = clients.app_state(config, changewatch_sandbox::Sandbox::in_process());
    // The dashboard's server may be the first process of a fresh stack to run: it creates the
    // tenant's settings as the api function would (the configured key, the default timeout),
    // so the template's API key works here before any API call, and whichever starts first
    // sets the same defaults.
    changewatch_api::bootstrap::ensure_settings(
        state.store.as_ref(),
        &config.tenant,
        config.base.api_access_token.as_deref(),
        Some(config.base.request_timeout.as_secs()),
    )
    .await
    .map_err(|e| format!("cannot create the first settings: {e}"))?;
    let feed = StreamFeed::for_table(
        clients.streams.clone(),
        &config.resources.watches_table,
        config.stream_start,
        STREAM_POLL,
    )
    .await
    .map_err(|e| format!("cannot follow the watches table's stream: {e}"))?;
    let queue_size = QueueSize::Polled {
        probe: state
            .queue_depth
            .clone()
            .unwrap_or_else(|| Arc::new(SqsDepth::new(clients.sqs.clone(), config))),
        every: config.queue_poll,
    };
    let options = changewatch_push::PushOptions {
        queue_size,
        allowed_origins: config.base.allowed_origins.clone(),
    };
    let (socket_layer, push) = Push::start(state.clone(), &feed, options);
    let health = feed.health();
    let stall = config.stream_stall;
    let router = app(state, socket_layer, dashboard).route(
        "/healthz",
        get(move || {
            let health = health.clone();
            async move { healthz(&health, stall) }
        }),
    );
    info!(addr = ?listener.local_addr().ok(), "push service listening");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        // Connect info: the login throttle counts attempts per client address.
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
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

/// 200 while the stream reader keeps up, 503 (with why) when it stopped or has not finished a
/// clean pass for `stall`: the load balancer's health check, so a task that no longer hears
/// of changes is replaced rather than left serving a dashboard that never updates.
fn healthz(health: &FeedHealth, stall: Duration) -> axum::response::Response {
    use axum::response::IntoResponse;
    let since = health.since_last_pass().map(|d| d.as_secs());
    let (code, status) = if health.healthy(stall) {
        (axum::http::StatusCode::OK, "ok")
    } else if !health.running() {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "stream reader stopped",
        )
    } else {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "stream reader stalled",
        )
    };
    (
        code,
        axum::Json(json!({
            "status": status,
            "stream_last_pass_secs_ago": since,
            "stall_after_secs": stall.as_secs(),
        })),
    )
        .into_response()
}

/// The attributes summed for `queue_size`: messages waiting, received but not yet deleted (a
/// checker has them), and sent with a delay (a scheduler tick queues what falls due within the
/// next minute with the delay that makes it run on time).
const DEPTH_ATTRIBUTES: [QueueAttributeName; 3] = [WAITING, IN_FLIGHT, DELAYED];

/// The depth of the `checks` and `rechecks` queues, for `queue_size`.
#[derive(Clone, Debug)]
pub struct SqsDepth {
    sqs: aws_sdk_sqs::Client,
    queue_urls: [String; 2],
}

impl SqsDepth {
    pub fn new(sqs: aws_sdk_sqs::Client, config: &AwsConfig) -> Self {
        SqsDepth {
            sqs,
            queue_urls: [
                config.resources.checks_queue_url.clone(),
                config.resources.rechecks_queue_url.clone(),
            ],
        }
    }

    /// The sum of [`DEPTH_ATTRIBUTES`] over both queues.
    pub async fn read(&self) -> Result<usize, String> {
        let mut total = 0;
        for url in &self.queue_urls {
            total += approximate_count(&self.sqs, url, &DEPTH_ATTRIBUTES)
                .await
                .map_err(|e| format!("GetQueueAttributes {url}: {e}"))?;
        }
        Ok(total)
    }
}

impl DepthProbe for SqsDepth {
    fn depth(&self) -> DepthFuture<'_> {
        Box::pin(self.read())
    }
}
