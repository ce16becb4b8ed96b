//! `changewatch serve`: embedded mode, everything in one process on one SQLite file: the API,
//! the dashboard and Socket.IO on one port, the scheduler and the checkers.
//!
//! Start-up order matters for crash recovery: the store is opened and every queue mark and lease
//! left by a previous process is cleared first (this process is the only one using the file, so
//! none of them can be live), then the scheduler re-queues whatever is due, interrupted checks
//! included; a watch whose check was interrupted twice in a row is paused with an error
//! instead, so a check that kills the process cannot do so on every start. Shutdown (SIGTERM
//! or ctrl-c) stops the scheduler and the HTTP server, gives running checks a grace period,
//! and releases what it had to cut off. Notifications wait in an outbox
//! table of the same file, so a restart resumes their delivery.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use changewatch_core::Config;
use changewatch_engine::checker::epoch_now;
use changewatch_engine::scheduler::tick;
use changewatch_push::Push;
use changewatch_push::web::{app, find_dashboard};
use changewatch_store::JobQueue;
use changewatch_store::sqlite::SqliteStore;
use changewatch_store::sqlite::queue::SqliteQueue;
use clap::Args;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::embedded::Embedded;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Data directory (env DATASTORE_PATH, default ./data).
    #[arg(short = 'd', long = "datastore-path")]
    pub datastore_path: Option<PathBuf>,
    /// Address to listen on (env LISTEN_HOST as upstream's image, then CHANGEDETECTION_HOST,
    /// default 127.0.0.1; any other address needs a dashboard password or
    /// CW_ALLOW_NO_PASSWORD=true).
    #[arg(long, env = "LISTEN_HOST")]
    pub host: Option<String>,
    /// Port (env PORT as upstream's image, then CHANGEDETECTION_PORT, default 5000; 0 picks a
    /// free one).
    #[arg(short = 'p', long, env = "PORT")]
    pub port: Option<u16>,
}

/// How long running checks may take to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub async fn run(args: ServeArgs) -> ExitCode {
    let mut config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("changewatch: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(p) = args.datastore_path {
        config.datastore_path = p;
    }
    if let Some(h) = args.host {
        config.host = h;
    }
    if let Some(p) = args.port {
        config.port = p;
    }
    match serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            eprintln!("changewatch: {e}");
            ExitCode::from(1)
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let embedded = Embedded::build(&config).await?;
    let state = embedded.state.clone();
    let (socket_layer, push) = Push::start(
        state.clone(),
        embedded.store.as_ref(),
        changewatch_push::PushOptions {
            allowed_origins: config.allowed_origins.clone(),
            ..Default::default()
        },
    );
    let dashboard = find_dashboard(config.dashboard_dir.as_deref());
    match &dashboard {
        Some(dir) => info!(dir = %dir.display(), "serving the dashboard"),
        None => warn!("the dashboard is not built (dashboard/dist); only the API is served"),
    }

    let addr = format!("{}:{}", config.host, config.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
    // The signal handlers are installed (by polling once) before the address is printed: a
    // supervisor or test that sends SIGTERM as soon as it reads the line must get the graceful
    // shutdown, not the signal's default action.
    let shutdown = changewatch_engine::process::shutdown_signal();
    tokio::pin!(shutdown);
    let _ = tokio::time::timeout(Duration::ZERO, &mut shutdown).await;
    // Printed on stdout (not only logged) so scripts and tests can find a port chosen with 0.
    println!("changewatch listening on http://{bound}");
    info!(%bound, workers = embedded.pool.size(), data = %config.datastore_path.display(), "serving");

    let (stop_tx, stop_rx) = watch::channel(false);
    let scheduler = tokio::spawn(scheduler_loop(
        embedded.store.clone(),
        embedded.queue.clone(),
        stop_rx.clone(),
    ));
    let mut http_stop = stop_rx.clone();
    // Names other than the instance's own are refused while nothing protects it (DNS rebinding).
    let hosts = changewatch_api::hosts::AllowedHosts::from_config(&config);
    let web = app(state.clone(), socket_layer, dashboard.as_deref()).route(
        "/healthz",
        axum::routing::get(changewatch_api::healthz).with_state(state.clone()),
    );
    let web = changewatch_api::hosts::guard(web, state, hosts);
    // Connect info: the login throttle counts attempts per client address.
    let web = web.into_make_service_with_connect_info::<SocketAddr>();
    let http = axum::serve(listener, web).with_graceful_shutdown(async move {
        let _ = http_stop.changed().await;
    });
    let http = tokio::spawn(async move { http.await });

    shutdown.await;
    info!("shutting down: no new checks");
    let _ = stop_tx.send(true);
    // Open sockets would hold the graceful HTTP shutdown open.
    push.close().await;
    let _ = scheduler.await;
    embedded.shutdown(SHUTDOWN_GRACE).await?;
    if let Ok(Err(e)) = http.await {
        warn!(error = %e, "HTTP server ended with an error");
    }
    info!("stopped");
    Ok(())
}

/// One tick a second, as upstream's ticker; nothing is queued while everything is paused.
async fn scheduler_loop(
    store: Arc<SqliteStore>,
    queue: Arc<SqliteQueue>,
    mut stop: watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.changed() => return,
        }
        // The tick skips the due watches of a tenant whose settings pause everything.
        if let Err(e) = tick(
            store.as_ref(),
            queue.as_ref() as &dyn JobQueue,
            epoch_now(),
            0,
        )
        .await
        {
            warn!(error = %e, "scheduler tick failed");
        }
    }
}
