//! `spawn_app()`: the real API on port 0 over a temp SQLite store, with a checker the test drives
//! (`run_checks`) so that checks happen exactly when the test wants them.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test support

use std::sync::Arc;
use std::time::Duration;

use changewatch_api::{ApiConfig, AppState, Workers, bootstrap, router};
use changewatch_core::clock::Clock;
use changewatch_core::ssrf::AddressPolicy;
use changewatch_core::{Fetcher, FetcherConfig};
use changewatch_engine::checker::{Checker, CheckerConfig, JobOutcome, NotifySetup};
use changewatch_engine::notifications::Dispatcher;
use changewatch_engine::scheduler::tick;
use changewatch_store::sqlite::SqliteStore;
use changewatch_store::sqlite::queue::SqliteQueue;
use changewatch_store::{DEFAULT_TENANT, JobQueue, NotificationJob, NotificationQueue};
use reqwest::{Method, RequestBuilder};
use serde_json::Value;

pub struct TestApp {
    pub base: String,
    pub api_key: String,
    pub client: reqwest::Client,
    pub store: Arc<SqliteStore>,
    pub queue: Arc<SqliteQueue>,
    pub checker: Checker,
    /// Shared by the API and the checker: `clock.advance(n)` moves time for both.
    pub clock: Clock,
    _dir: tempfile::TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(ApiConfig {
        page_watch_limit: None,
        minimum_recheck_secs: 3,
        base_url: None,
        salted_pass: None,
        open_without_password: true,
        api_key_fixed: false,
        trusted_proxy_hops: 0,
        work_after_reply: true,
    })
    .await
}

pub async fn spawn_app_with(config: ApiConfig) -> TestApp {
    spawn_app_full(config, None).await
}

/// With a view of a worker pool, as embedded mode has.
pub async fn spawn_app_full(config: ApiConfig, workers: Option<Arc<dyn Workers>>) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open_dir(dir.path()).unwrap());
    let queue = Arc::new(store.job_queue());
    let api_key = bootstrap::ensure_settings(store.as_ref(), DEFAULT_TENANT, None, None)
        .await
        .unwrap()
        .unwrap();
    let clock = Clock::system();
    let mut state = AppState::new(
        store.clone(),
        queue.clone(),
        config,
        changewatch_sandbox::Sandbox::in_process(),
    )
    .with_queue_admin(queue.clone())
    .with_notifier(Arc::new(
        Dispatcher::from_config(
            store.clone(),
            &changewatch_core::Config {
                allow_private_addresses: true,
                ..changewatch_core::Config::default()
            },
        )
        .unwrap(),
    ))
    .with_clock(clock.clone());
    if let Some(w) = workers {
        state = state.with_workers(w);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router(state)).await.unwrap();
    });
    let fetcher = Fetcher::new(FetcherConfig {
        policy: AddressPolicy::allow_all(),
        ..FetcherConfig::default()
    })
    .unwrap();
    let checker = Checker::new(
        store.clone(),
        fetcher,
        // Debian's chromium (make test-deps) for html_webdriver watches, without upstream's
        // 5 s settle time or its 1.5 s after each browser step.
        CheckerConfig::from_config(
            "test",
            &changewatch_core::Config {
                allow_private_addresses: true,
                browser_executable: Some("/usr/bin/chromium".into()),
                browser_settle: Duration::ZERO,
                browser_step_settle: Duration::from_millis(100),
                ..changewatch_core::Config::default()
            },
        ),
    )
    .with_notifications(NotifySetup {
        queue: store.clone(),
        base_url: None,
    })
    .with_clock(clock.clone());
    TestApp {
        base: format!("http://{addr}"),
        api_key,
        client: reqwest::Client::new(),
        store,
        queue,
        checker,
        clock,
        _dir: dir,
    }
}

impl TestApp {
    /// A request with the API key set.
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{}", self.base, path))
            .header("x-api-key", &self.api_key)
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self.req(Method::GET, path).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Creates a watch through the API and returns its uuid.
    pub async fn create_watch(&self, body: Value) -> String {
        let r = self
            .req(Method::POST, "/api/v1/watch")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "{:?}", r.text().await);
        let v: Value = r.json().await.unwrap();
        v["uuid"].as_str().unwrap().to_string()
    }

    /// Queues whatever is due (as the scheduler would) and runs every queued job now.
    pub async fn run_checks(&self) -> Vec<JobOutcome> {
        tick(
            self.store.as_ref(),
            self.queue.as_ref(),
            self.clock.now(),
            0,
        )
        .await
        .unwrap();
        let mut out = Vec::new();
        while let Some(job) = self.queue.dequeue(Duration::from_millis(10)).await.unwrap() {
            out.push(self.checker.run_job(&job).await.unwrap());
        }
        out
    }

    /// Takes every notification the checks queued in the outbox (acknowledged, so the next
    /// call sees only newer ones), in queue order.
    pub async fn drain_notifications(&self) -> Vec<NotificationJob> {
        let got = self
            .store
            .receive(100, Duration::from_secs(60))
            .await
            .unwrap();
        for r in &got {
            self.store.ack(&r.receipt).await.unwrap();
        }
        got.into_iter().map(|r| r.job).collect()
    }
}
