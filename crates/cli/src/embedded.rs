//! Embedded mode's composition root: every long-lived part of `changewatch serve` built from
//! one [`Config`] and wired together, in the order crash recovery needs (see `serve`). The
//! HTTP server, Socket.IO and the scheduler loop are started by `serve` on top of it.

use std::sync::Arc;
use std::time::Duration;

use changewatch_api::{ApiConfig, AppState, Workers, bootstrap};
use changewatch_core::{Config, Fetcher};
use changewatch_engine::checker::{Checker, CheckerConfig, NotifySetup};
use changewatch_engine::notifications::{Dispatcher, NotificationSender};
use changewatch_engine::pool::{PoolState, WorkerPool};
use changewatch_sandbox::{Sandbox, SandboxConfig};
use changewatch_store::DEFAULT_TENANT;
use changewatch_store::sqlite::SqliteStore;
use changewatch_store::sqlite::queue::SqliteQueue;
use tracing::{info, warn};

/// Crashes in a row during one watch's check after which start-up pauses it.
const INTERRUPTED_LIMIT: u32 = 2;

/// The parts of a running embedded instance.
pub struct Embedded {
    pub store: Arc<SqliteStore>,
    pub queue: Arc<SqliteQueue>,
    /// Filters, rules and templates run in children of this executable.
    pub sandbox: Sandbox,
    /// The browsers of `html_webdriver` and extra-browser watches (each started on its first
    /// check), closed at shutdown.
    pub browsers: changewatch_engine::checker::Browsers,
    pub pool: WorkerPool,
    /// Delivers queued notifications from the outbox table.
    pub sender: NotificationSender,
    /// What the API, the dashboard endpoints and Socket.IO run on.
    pub state: AppState,
}

struct PoolWorkers {
    state: PoolState,
    size: usize,
}

impl Workers for PoolWorkers {
    fn running(&self) -> Vec<String> {
        self.state.running()
    }
    fn configured(&self) -> usize {
        self.size
    }
    fn alive(&self) -> usize {
        self.size
    }
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded")
            .field("workers", &self.pool.size())
            .finish_non_exhaustive()
    }
}

impl Embedded {
    /// Opens the datastore, clears what a previous process left (queue marks, leases; a
    /// watch interrupted by a crash twice in a row is paused), makes sure the settings and the
    /// API key exist, and starts the checkers and the notification sender.
    pub async fn build(config: &Config) -> Result<Embedded, String> {
        let store = Arc::new(SqliteStore::open_dir(&config.datastore_path).map_err(|e| {
            format!(
                "cannot open the datastore at {}: {e}",
                config.datastore_path.display()
            )
        })?);
        let marks = store
            .clear_queued_marks()
            .await
            .map_err(|e| e.to_string())?;
        // Checks still leased were running when the previous process died. They run again,
        // unless the same watch was interrupted twice in a row: then it is paused with an error,
        // so a check that kills the process cannot do so on every start.
        let (leases, paused) = store
            .recover_interrupted(INTERRUPTED_LIMIT)
            .await
            .map_err(|e| e.to_string())?;
        for key in &paused {
            warn!(watch = %key.id, "paused: its checks were interrupted by a crash {INTERRUPTED_LIMIT} times in a row");
        }
        if marks + leases > 0 {
            info!(
                queued = marks,
                interrupted = leases,
                "recovered state left by the previous run"
            );
        }
        bootstrap::ensure_settings(
            store.as_ref(),
            DEFAULT_TENANT,
            config.api_access_token.as_deref(),
            Some(config.request_timeout.as_secs()),
        )
        .await
        .map_err(|e| e.to_string())?;
        if !config.no_password_is_open() && config.salted_pass.is_none() {
            let settings = changewatch_engine::docs::load_settings(store.as_ref(), DEFAULT_TENANT)
                .await
                .map_err(|e| e.to_string())?;
            if !settings.application.password.is_set() {
                return Err(format!(
                    "refusing to listen on {} without a dashboard password: anyone who can reach it could read the API key and set the password first. Give it one with SALTED_PASS (`changewatch hash-password` makes the value), or set one while listening on 127.0.0.1, or set CW_ALLOW_NO_PASSWORD=true if this network is trusted",
                    config.host
                ));
            }
        }

        // Waiting checks are rows of the connection's temporary database: a queue of every
        // watch costs disk pages, not memory.
        let queue = Arc::new(store.job_queue());
        let fetcher = Fetcher::new(config.fetcher_config())
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let dispatcher = Arc::new(Dispatcher::from_config(store.clone(), config)?);
        // Filters, rules and templates run in children of this executable, each request with the
        // time, memory and stack budgets of CW_SANDBOX_*: a hostile one costs one child.
        let sandbox = Sandbox::child_process(
            SandboxConfig::current_exe(&config.sandbox)
                .map_err(|e| format!("cannot find this executable for the sandbox: {e}"))?,
        );
        // The outbox lives in the same SQLite file: queued notifications survive a restart.
        let sender = NotificationSender::spawn(
            store.clone(),
            dispatcher.clone(),
            Duration::from_millis(500),
            config.notification_timeout + Duration::from_secs(30),
        );
        let checker_config =
            CheckerConfig::from_config(format!("embedded-{}", std::process::id()), config);
        let browsers = checker_config.browsers.clone();
        let checker = Arc::new(
            Checker::new(store.clone(), fetcher, checker_config)
                .with_notifications(NotifySetup {
                    queue: store.clone(),
                    base_url: config.base_url.clone(),
                })
                .with_sandbox(sandbox.clone()),
        );
        let pool = WorkerPool::start(config.fetch_workers, queue.clone(), checker);

        let state = AppState::new(
            store.clone(),
            queue.clone(),
            ApiConfig::from_config(config),
            sandbox.clone(),
        )
        .with_queue_admin(queue.clone())
        .with_workers(Arc::new(PoolWorkers {
            state: pool.state(),
            size: pool.size(),
        }))
        .with_notifier(dispatcher)
        // Downloads copy the database as of one moment before exporting it.
        .with_backup(Arc::new(
            changewatch_store::sqlite::backup::SqliteExporter::new(store.path()),
        ));
        Ok(Embedded {
            store,
            queue,
            sandbox,
            browsers,
            pool,
            sender,
            state,
        })
    }

    /// Stops taking checks, gives running ones `grace` to finish (what is cut off runs again
    /// on the next start), stops the sandbox's children and the notification sender.
    pub async fn shutdown(self, grace: Duration) -> Result<(), String> {
        let cut = self.pool.shutdown(grace).await;
        if !cut.is_empty() {
            warn!(
                count = cut.len(),
                "checks cut off at shutdown will run again on next start"
            );
            self.store.clear_leases().await.map_err(|e| e.to_string())?;
        }
        self.sandbox.shutdown();
        self.browsers.shutdown().await;
        // Deliveries in flight finish or stay queued for the next start.
        self.sender.shutdown(Duration::from_secs(5)).await;
        Ok(())
    }
}
