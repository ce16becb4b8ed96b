//! What every handler can reach.

use std::sync::Arc;
use std::time::Instant;

use changewatch_core::clock::Clock;
use changewatch_core::model::{Settings, Tag};
use changewatch_engine::docs;
use changewatch_engine::notifications::Dispatcher;
use changewatch_store::{CheckJob, JobQueue, QueueAdmin, StoreError, WatchStore};

use crate::error::ApiError;

/// The checkers as the ops endpoints see them. Embedded mode reports its worker pool; in AWS
/// mode the checkers are Lambda invocations and there is nothing to report.
pub trait Workers: Send + Sync + 'static {
    /// Watch ids being checked now.
    fn running(&self) -> Vec<String>;
    /// Workers configured.
    fn configured(&self) -> usize;
    /// Workers alive.
    fn alive(&self) -> usize;
}

/// Settings of the API layer, from the process config.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// `PAGE_WATCH_LIMIT`: most watches a tenant may have.
    pub page_watch_limit: Option<usize>,
    /// `MINIMUM_SECONDS_RECHECK_TIME`.
    pub minimum_recheck_secs: u64,
    /// `BASE_URL` (wins over the stored setting, as upstream).
    pub base_url: Option<String>,
    /// `SALTED_PASS` (wins over the stored dashboard password, as upstream).
    pub salted_pass: Option<String>,
    /// Whether, with no password in force, the dashboard gets in on its UI header alone
    /// (`Config::no_password_is_open`; AWS mode: `CW_ALLOW_NO_PASSWORD` only). When false and
    /// no password is set, only the API key opens anything, and a password cannot be removed.
    pub open_without_password: bool,
    /// `API_ACCESS_TOKEN` fixes the key: the dashboard cannot regenerate it, since every cold
    /// start or restart would write the configured one back.
    pub api_key_fixed: bool,
    /// `CW_TRUSTED_PROXY_HOPS`: where in `X-Forwarded-For` the client's address is.
    pub trusted_proxy_hops: usize,
    /// Whether work a reply announces as "in background" (imports and rechecks of 20 or more
    /// watches, upstream's 202) may run after the reply. Not in Lambda: the environment is
    /// frozen once the reply is out, so the work is done first (concurrently) and the reply
    /// keeps upstream's status and body.
    pub work_after_reply: bool,
}

impl ApiConfig {
    /// The API's part of the process configuration.
    pub fn from_config(config: &changewatch_core::Config) -> Self {
        ApiConfig {
            page_watch_limit: config.page_watch_limit,
            minimum_recheck_secs: config.minimum_recheck_secs,
            base_url: config.base_url.clone(),
            salted_pass: config.salted_pass.clone(),
            open_without_password: config.no_password_is_open(),
            api_key_fixed: config.api_access_token.is_some(),
            trusted_proxy_hops: config.trusted_proxy_hops,
            work_after_reply: true,
        }
    }
}

/// What [`DepthProbe::depth`] returns.
pub type DepthFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<usize, String>> + Send + 'a>>;

/// Reads the number of check jobs waiting (or running) in queues this process does not hold
/// (AWS mode's SQS queues). Where one is set, it is `queue_size` for REST and the socket alike.
pub trait DepthProbe: Send + Sync + 'static {
    fn depth(&self) -> DepthFuture<'_>;
}

/// What lets a browser's dashboard in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access<'a> {
    /// No password, on a loopback listener or a network the operator trusts: the UI header
    /// is enough (upstream's behaviour).
    Open,
    /// A session signed for this password hash.
    Password(&'a str),
    /// No password on a network-facing server: nothing but the API key, until a password is
    /// set (with the key, `POST /ui/settings/password`).
    KeyOnly,
}

impl<'a> Access<'a> {
    pub fn password(self) -> Option<&'a str> {
        match self {
            Access::Password(h) => Some(h),
            Access::Open | Access::KeyOnly => None,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn WatchStore>,
    pub queue: Arc<dyn JobQueue>,
    /// The queue's listing and removal, where the queue has them (embedded mode's in-process
    /// queue; not SQS).
    pub queue_admin: Option<Arc<dyn QueueAdmin>>,
    pub workers: Option<Arc<dyn Workers>>,
    /// Sends test notifications (and, in embedded mode, queued ones). `None`: the action
    /// answers that notifications are not configured here.
    pub notifier: Option<Arc<Dispatcher>>,
    pub tenant: String,
    pub config: ApiConfig,
    pub started: Instant,
    /// The clock answers and edits are stamped with (`Clock::system()` outside tests).
    pub clock: Clock,
    /// Where user templates are rendered (test notifications); a child process in servers.
    pub sandbox: changewatch_sandbox::Sandbox,
    /// `queue_size` read from the queues themselves (AWS mode); `None`: counted from the
    /// watches' queue marks, as the socket does in embedded mode.
    pub queue_depth: Option<Arc<dyn DepthProbe>>,
    /// What `GET /api/v1/backup` writes with: embedded mode's consistent SQLite copy; `None`
    /// reads the store item by item as it runs (`source_mode` `live`).
    pub backup: Option<Arc<dyn changewatch_store::backup::Exporter>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The state every deployment starts from: the default tenant, the system clock, no
    /// queue listing, no workers to report and no notifier until the `with_*` calls add them.
    pub fn new(
        store: Arc<dyn WatchStore>,
        queue: Arc<dyn JobQueue>,
        config: ApiConfig,
        sandbox: changewatch_sandbox::Sandbox,
    ) -> Self {
        AppState {
            store,
            queue,
            queue_admin: None,
            workers: None,
            notifier: None,
            tenant: changewatch_store::DEFAULT_TENANT.to_string(),
            config,
            started: Instant::now(),
            clock: Clock::system(),
            sandbox,
            queue_depth: None,
            backup: None,
        }
    }

    /// Backups are written by `exporter` (see [`AppState::backup`]).
    pub fn with_backup(mut self, exporter: Arc<dyn changewatch_store::backup::Exporter>) -> Self {
        self.backup = Some(exporter);
        self
    }

    /// `queue_size` comes from this probe (the one the push service polls for the socket).
    pub fn with_queue_depth(mut self, probe: Arc<dyn DepthProbe>) -> Self {
        self.queue_depth = Some(probe);
        self
    }

    /// The queue can list and drop its jobs (embedded mode's queue, held by this process).
    pub fn with_queue_admin(mut self, admin: Arc<dyn QueueAdmin>) -> Self {
        self.queue_admin = Some(admin);
        self
    }

    /// Checkers run in this process: `/worker-health` and the queue pages report them.
    pub fn with_workers(mut self, workers: Arc<dyn Workers>) -> Self {
        self.workers = Some(workers);
        self
    }

    /// Test notifications can be sent from here.
    pub fn with_notifier(mut self, notifier: Arc<Dispatcher>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// Another tenant than the default one.
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = tenant.into();
        self
    }

    /// A clock tests can move (shared with their checker).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// This tenant's waiting jobs in run order; empty where the queue cannot list them.
    pub async fn queued_jobs(&self) -> Result<Vec<CheckJob>, StoreError> {
        let Some(admin) = &self.queue_admin else {
            return Ok(Vec::new());
        };
        admin.snapshot(&self.tenant).await
    }

    /// How many checks wait: exact per tenant where the queue can list its jobs, else the
    /// queue's own (stack-wide, approximate) depth.
    pub async fn queue_size(&self) -> Result<usize, StoreError> {
        match &self.queue_admin {
            Some(admin) => admin.waiting(&self.tenant).await,
            None => Ok(self.queue.depth().await?.total()),
        }
    }

    /// Drops waiting jobs of paused or deleted watches where the queue allows it (elsewhere
    /// the checker skips them when they come up).
    pub async fn unqueue(&self, watch_ids: &[String]) -> Result<(), StoreError> {
        if let Some(admin) = &self.queue_admin {
            admin.remove(&self.tenant, watch_ids).await?;
        }
        Ok(())
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub async fn settings(&self) -> Result<Settings, StoreError> {
        docs::load_settings(self.store.as_ref(), &self.tenant).await
    }

    /// Who the dashboard lets in under these settings: see [`Access`].
    pub fn access<'a>(&'a self, settings: &'a Settings) -> Access<'a> {
        match self.dashboard_password(settings) {
            Some(hash) => Access::Password(hash),
            None if self.config.open_without_password => Access::Open,
            None => Access::KeyOnly,
        }
    }

    /// The dashboard password hash in force: `SALTED_PASS`, else the stored one.
    pub fn dashboard_password<'a>(&'a self, settings: &'a Settings) -> Option<&'a str> {
        self.config
            .salted_pass
            .as_deref()
            .or(settings.application.password.as_str())
    }

    pub async fn tags(&self) -> Result<std::collections::BTreeMap<String, Tag>, ApiError> {
        Ok(docs::load_tags(self.store.as_ref(), &self.tenant).await?)
    }
}
