//! Running one check job against the store: the part of upstream's worker that embedded workers
//! and the checker Lambda share.
//!
//! claim the lease → skip jobs that are stale or redelivered → fetch and process → one commit of
//! status patch + snapshot + next due time. At-least-once delivery is safe: a second delivery of
//! a job either finds the lease held (and is retried later by its queue) or finds its `due_at`
//! already committed and does nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use changewatch_browser::{BrowserConfig, BrowserRequest, Endpoint};
/// Named by [`CheckerConfig::browsers`]; re-exported so a server can shut them down.
pub use changewatch_browser::{BrowserFetcher, Browsers};
use changewatch_core::budget::{PageBudget, PageHold};
use changewatch_core::clock::Clock;
use changewatch_core::fetch::FetchError;
use changewatch_core::model::{
    RunnableStep, Settings, Tag, Watch, has_template_markup, processor_settings, proxy_for,
    resolve_notification_settings, tags_for_watch, valid_browser_steps,
};
use changewatch_core::pipeline::{ChangeStatus, PreviousState, history_line_key};
use changewatch_core::reuse::{Fingerprint, Stamp};
use changewatch_core::{CheckError, CheckResult, FetchRequest, Fetcher, ProcessorSettings};
use changewatch_notify::render::render_request_template;
use changewatch_sandbox::Sandbox;
use changewatch_store::{
    CheckCommit, CheckJob, HistoryMeta, Item, Key, Lane, NotificationQueue, StoreError, WatchStore,
};
use tokio::sync::OnceCell;
use tracing::{debug, info, warn};

use crate::docs::{load_settings, load_tags};
use crate::notifications;
use crate::outcome::{self, Checked, Decision, Plan};
use crate::pool::JobRunner;
use crate::timing;

/// What became of a job.
#[derive(Clone, Debug, PartialEq)]
pub enum JobOutcome {
    /// The check ran and was committed.
    Checked(CheckReport),
    /// Another checker holds the lease: the job should be retried later (SQS: not deleted),
    /// best just after `lease_until` (epoch seconds), when the lease runs out if nobody ends
    /// it first; `None` when unknown.
    Busy { lease_until: Option<i64> },
    /// Nothing to do: the watch is gone, paused, or this job's check is already committed.
    Skipped(&'static str),
}

/// The committed result of a check, for logs and notifications.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckReport {
    pub status: Option<ChangeStatus>,
    pub error: Option<String>,
    pub history_len: usize,
    /// A notification was due: a change after the first check, or a filter missing too often,
    /// with somewhere to send it.
    pub notify: bool,
    /// The reply was the last processed one (same bytes, or a 304): not processed again.
    pub reused: bool,
}

/// Settings of the checker itself.
#[derive(Clone, Debug)]
pub struct CheckerConfig {
    /// Lease owner id: unique per process (and per Lambda invocation).
    pub owner: String,
    /// Lease length beyond the fetch timeout, covering processing and the commit.
    pub lease_margin: Duration,
    /// `MINIMUM_SECONDS_RECHECK_TIME`.
    pub minimum_recheck_secs: u64,
    /// `JQ_ALLOW_RISKY_EXPRESSIONS`.
    pub jq_allow_risky: bool,
    /// The longest a fetch may take here, whatever the settings say: a Lambda checker must
    /// finish (and commit) inside its invocation timeout. `None` in embedded mode.
    pub max_fetch_timeout: Option<Duration>,
    /// The memory pages may take while checks run at once (`None`: unlimited, as embedded
    /// mode runs). A check holds its share from the fetch to the commit.
    pub page_budget: Option<Arc<PageBudget>>,
    /// Time kept free before a job's deadline (a Lambda invocation's end) to commit its
    /// result: a check whose fetch and processing run past `deadline - commit_margin` is
    /// committed with a deadline error, alone, instead of the invocation dying with its batch.
    pub commit_margin: Duration,
    /// The browsers: for `fetch_backend: html_webdriver` watches a remote one at
    /// `PLAYWRIGHT_DRIVER_URL`, else a local Chromium when one is installed, else none (such
    /// watches then fail with a message saying what to set); for `extra_browser_<name>`
    /// watches the settings' extra browser of that name.
    pub browsers: Browsers,
    /// `WEBDRIVER_DELAY_BEFORE_CONTENT_READY`: waited by every browser check before the
    /// watch's own `webdriver_delay`.
    pub browser_settle: Duration,
}

impl CheckerConfig {
    /// The settings both modes read from the process configuration; `owner` must be unique
    /// among the checkers sharing a store. No fetch budget (see `max_fetch_timeout`).
    pub fn from_config(owner: impl Into<String>, config: &changewatch_core::Config) -> Self {
        CheckerConfig {
            owner: owner.into(),
            lease_margin: Duration::from_secs(60),
            minimum_recheck_secs: config.minimum_recheck_secs,
            jq_allow_risky: config.jq_allow_risky,
            max_fetch_timeout: None,
            page_budget: None,
            commit_margin: Duration::from_secs(5),
            browsers: browsers_for(config),
            browser_settle: config.browser_settle,
        }
    }
}

/// The browsers a process's checker uses (see [`CheckerConfig::browsers`]); each starts on
/// its first check, not here.
fn browsers_for(config: &changewatch_core::Config) -> Browsers {
    let endpoint = match (&config.playwright_driver_url, &config.browser_executable) {
        (Some(ws_url), _) => Some(Endpoint::Connect {
            ws_url: ws_url.clone(),
        }),
        (None, Some(executable)) => Some(Endpoint::Launch {
            executable: executable.clone(),
        }),
        (None, None) => None,
    };
    let has_default = endpoint.is_some();
    Browsers::new(
        BrowserConfig {
            endpoint: endpoint.unwrap_or(Endpoint::Connect {
                ws_url: String::new(),
            }),
            policy: config.address_policy(),
            // Each page is a renderer process of its own: a few at a time.
            max_pages: config.fetch_workers.clamp(1, 4),
            max_bytes: config.fetch_max_bytes,
            user_agent: config.user_agent.clone(),
            step_settle: config.browser_step_settle,
            screenshot_max_height: config.screenshot_max_height,
        },
        has_default,
    )
}

/// Where a checker puts the notifications its checks cause.
#[derive(Clone)]
pub struct NotifySetup {
    pub queue: Arc<dyn NotificationQueue>,
    /// `BASE_URL` from the environment; wins over the tenant's `base_url` setting.
    pub base_url: Option<String>,
}

impl std::fmt::Debug for NotifySetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifySetup")
            .field("base_url", &self.base_url)
            .finish()
    }
}

/// The tenant documents every check reads (settings, tags), read once for a batch of jobs:
/// the checker function's batch of ten reads them once instead of ten times. A batch lives
/// for one invocation, so an edit is seen by the next one.
#[derive(Debug, Default)]
pub struct BatchDocs {
    settings: PerTenant<Settings>,
    tags: PerTenant<BTreeMap<String, Tag>>,
}

/// One document per tenant, loaded once by whichever check asks first.
type PerTenant<T> = std::sync::Mutex<HashMap<String, Arc<OnceCell<Arc<T>>>>>;

/// The cell of `tenant` in `map` (a poisoned lock only means another check panicked: the map
/// is still whole).
fn cell<T>(
    map: &std::sync::Mutex<HashMap<String, Arc<OnceCell<T>>>>,
    tenant: &str,
) -> Arc<OnceCell<T>> {
    let mut map = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    map.entry(tenant.to_string()).or_default().clone()
}

impl BatchDocs {
    async fn settings(
        &self,
        store: &dyn WatchStore,
        tenant: &str,
        kept: &KeptDocs,
    ) -> Result<Arc<Settings>, StoreError> {
        cell(&self.settings, tenant)
            .get_or_try_init(|| {
                KeptDocs::get(&kept.settings, store, tenant, load_settings(store, tenant))
            })
            .await
            .cloned()
    }

    async fn tags(
        &self,
        store: &dyn WatchStore,
        tenant: &str,
        kept: &KeptDocs,
    ) -> Result<Arc<BTreeMap<String, Tag>>, StoreError> {
        cell(&self.tags, tenant)
            .get_or_try_init(|| KeptDocs::get(&kept.tags, store, tenant, load_tags(store, tenant)))
            .await
            .cloned()
    }
}

/// Tenants whose documents a checker keeps; past this many it starts over (embedded mode has
/// one tenant).
const KEPT_TENANTS: usize = 64;

/// Settings and tags kept from one check to the next while the store's
/// [`WatchStore::docs_generation`] stays the same (embedded mode: the store moves it before a
/// settings or tag write returns, so a check started after the write reads the new ones).
/// Reading and decoding both for every check was two of an unchanged check's four round
/// trips to the store's thread. Stores without a generation are read every time.
#[derive(Debug, Default)]
pub(crate) struct KeptDocs {
    settings: KeptMap<Settings>,
    tags: KeptMap<BTreeMap<String, Tag>>,
}

/// Per tenant: the generation a document was read at, and what it decoded to.
type KeptMap<T> = std::sync::Mutex<HashMap<String, (u64, Arc<T>)>>;

impl KeptDocs {
    /// What `map` kept for `tenant` if the store's generation has not moved since; else
    /// `load`, kept under the generation read before it (a write during the load moves the
    /// generation past it, so that value is read again next time).
    async fn get<T>(
        map: &KeptMap<T>,
        store: &dyn WatchStore,
        tenant: &str,
        load: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<Arc<T>, StoreError> {
        let lock = || {
            map.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let Some(generation) = store.docs_generation() else {
            return load.await.map(Arc::new);
        };
        if let Some((at, value)) = lock().get(tenant)
            && *at == generation
        {
            return Ok(value.clone());
        }
        let value = Arc::new(load.await?);
        let mut kept = lock();
        if kept.len() >= KEPT_TENANTS && !kept.contains_key(tenant) {
            kept.clear();
        }
        kept.insert(tenant.to_string(), (generation, value.clone()));
        Ok(value)
    }
}

/// A job whose lease this checker holds, with what was read to run it.
struct Claimed<'a> {
    key: &'a Key,
    item: &'a Item,
    watch: &'a Watch,
    settings: &'a Settings,
    tags: &'a BTreeMap<String, Tag>,
    job: &'a CheckJob,
    /// When the check started (before it is moved past the newest snapshot).
    started: i64,
    timeout: Duration,
    /// When fetch and processing must be over (the job's deadline less the commit margin).
    work_deadline: Option<tokio::time::Instant>,
}

/// Runs check jobs; cheap to share (`Arc`).
pub struct Checker {
    store: Arc<dyn WatchStore>,
    fetcher: Fetcher,
    config: CheckerConfig,
    notify: Option<NotifySetup>,
    sandbox: Sandbox,
    clock: Clock,
    kept: KeptDocs,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker")
            .field("config", &self.config)
            .finish()
    }
}

/// Seconds since the epoch on the system clock (re-exported: callers of the checker read it
/// from here).
pub use changewatch_core::clock::epoch_now;

impl Checker {
    pub fn new(store: Arc<dyn WatchStore>, fetcher: Fetcher, config: CheckerConfig) -> Self {
        Checker {
            store,
            fetcher,
            config,
            notify: None,
            sandbox: Sandbox::in_process(),
            clock: Clock::system(),
            kept: KeptDocs::default(),
        }
    }

    /// The clock checks are stamped with; tests pass a clone of theirs to move time.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Where filters, rules and notification templates run. Servers pass a child-process
    /// sandbox: without one, a hostile filter can take the whole process down.
    pub fn with_sandbox(mut self, sandbox: Sandbox) -> Self {
        self.sandbox = sandbox;
        self
    }

    /// Checks that find a change (or keep missing their filter) queue notifications here.
    pub fn with_notifications(mut self, setup: NotifySetup) -> Self {
        self.notify = Some(setup);
        self
    }

    /// Runs one job to completion. Store errors are returned; check failures are results.
    pub async fn run_job(&self, job: &CheckJob) -> Result<JobOutcome, StoreError> {
        self.run_job_by(job, None).await
    }

    /// [`Checker::run_job`] in a process that is stopped at `deadline` (epoch seconds; a Lambda
    /// invocation's end): the lease ends then at the latest, since nothing can hold it longer,
    /// so a killed invocation's watch is free (and shown idle) as soon as it is dead.
    pub async fn run_job_by(
        &self,
        job: &CheckJob,
        deadline: Option<i64>,
    ) -> Result<JobOutcome, StoreError> {
        self.run_job_in(job, deadline, &BatchDocs::default()).await
    }

    /// [`Checker::run_job_by`] as one job of a batch that shares `docs`.
    pub async fn run_job_in(
        &self,
        job: &CheckJob,
        deadline: Option<i64>,
        docs: &BatchDocs,
    ) -> Result<JobOutcome, StoreError> {
        let key = job.key();
        let settings = docs
            .settings(self.store.as_ref(), &key.tenant, &self.kept)
            .await?;
        let settings = settings.as_ref();
        let now = self.clock.now();
        let timeout = Duration::from_secs(settings.requests.timeout.max(1) as u64);
        let timeout = self
            .config
            .max_fetch_timeout
            .map_or(timeout, |max| timeout.min(max));
        let lease_until = now + (timeout + self.config.lease_margin).as_secs() as i64;
        let lease_until = deadline.map_or(lease_until, |d| lease_until.min(d.max(now + 1)));
        let Some(item) = self
            .store
            .begin_check(job, &self.config.owner, lease_until, now)
            .await?
        else {
            return Ok(match self.store.get(&key).await? {
                Some(item) => JobOutcome::Busy {
                    lease_until: item.schedule.and_then(|s| s.lease_until),
                },
                None => JobOutcome::Skipped("watch deleted"),
            });
        };
        let skip = |why| async move {
            self.store.end_check(job, &self.config.owner).await?;
            Ok::<_, StoreError>(JobOutcome::Skipped(why))
        };
        let schedule = item.schedule.clone().unwrap_or_default();
        if schedule.last_job_id.as_deref() == Some(job.id.as_str()) {
            return skip("already checked (redelivered job)").await;
        }
        // A scheduled job for a due time that a later check already covered is stale. Manual
        // rechecks always run: the user asked for a check now.
        if job.lane == Lane::Scheduled && schedule.last_due_at.is_some_and(|d| d >= job.due_at) {
            return skip("already checked for this due time").await;
        }
        let watch: Watch = crate::docs::decode(&item)?;
        if job.lane == Lane::Scheduled && (watch.paused || settings.application.all_paused) {
            return skip("paused").await;
        }
        let tags = docs
            .tags(self.store.as_ref(), &key.tenant, &self.kept)
            .await?;
        // The deadline is the system clock's (Lambda's), whatever clock stamps the checks.
        let work_deadline = deadline.map(|d| {
            let left = (d - epoch_now()).max(0) as u64;
            let left = Duration::from_secs(left).saturating_sub(self.config.commit_margin);
            tokio::time::Instant::now() + left
        });
        self.check(Claimed {
            key: &key,
            item: &item,
            watch: &watch,
            settings,
            tags: tags.as_ref(),
            job,
            started: now,
            timeout,
            work_deadline,
        })
        .await
    }

    async fn check(&self, claimed: Claimed<'_>) -> Result<JobOutcome, StoreError> {
        let Claimed {
            key,
            item,
            watch,
            settings,
            tags,
            job,
            started,
            timeout,
            work_deadline,
        } = claimed;
        let watch_tags: Vec<&Tag> = tags_for_watch(watch, tags)
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        let mut rules = processor_settings(watch, &watch_tags, settings);
        rules.jq_allow_risky = self.config.jq_allow_risky;

        // The history summary the claim returned: an unchanged check lists no snapshots (in
        // AWS mode a listing is billed for every snapshot's full size).
        let history = item.history;
        // Two checks within one second: stamp this one a second later so that its snapshot
        // (whose timestamp must be unique) and `last_checked` stay equal, as clients expect of
        // `last_changed == last_checked` after a change.
        let started = history
            .newest
            .map_or(started, |newest| started.max(newest + 1));
        let diff_filtered = watch.has_special_diff_filter_options_set();
        let mut request = fetch_request(watch, settings, timeout);
        request.proxy = proxy_for(watch, &watch_tags, settings);
        // Rendered before the fingerprint: a URL with `{% now %}` in it is another request
        // when the date moves on.
        let rendered = self.render_request(&mut request).await;
        let fingerprint = Fingerprint::of(&rules, &request);
        // The last processed reply stands for this one only under the same settings and
        // request, and only while its result is still the watch's (history kept, a checksum
        // recorded).
        let last = watch
            .last_raw_checksum
            .as_deref()
            .and_then(Stamp::parse)
            .filter(|s| {
                *s.fingerprint() == fingerprint && history.count > 0 && watch.previous_md5.is_set()
            });
        if last.is_some() {
            request.validators = watch.last_validators.clone();
        }
        // Held until the result is committed: the page and its text live that long.
        let mut hold = match &self.config.page_budget {
            Some(budget) => budget.enter().await,
            None => PageHold::unbounded(),
        };
        let has_conditions = !rules.conditions.is_empty();
        // The reply's stamp, hashed once: compared with the last one here and recorded by the
        // outcome when the reply is processed.
        let mut stamp = None;
        let work = async {
            if let Err(e) = rendered {
                return Ok(Err(e));
            }
            let fetched = match self.browser_request(watch, settings, &request).await {
                Ok(None) => self.fetcher.fetch_within(&request, &mut hold).await,
                Ok(Some((browser_request, None))) => match self.config.browsers.default_browser() {
                    Some(browser) => browser.fetch(&browser_request).await,
                    None => return Ok(Err(CheckError::Processor(NO_BROWSER.into()))),
                },
                Ok(Some((browser_request, Some(ws_url)))) => {
                    self.config
                        .browsers
                        .remote(&ws_url)
                        .fetch(&browser_request)
                        .await
                }
                Err(e) => return Ok(Err(e)),
            };
            let page = match fetched {
                Ok(page) => page,
                Err(e) => return Ok(Err(CheckError::from(e))),
            };
            // Upstream's check, before the checksum shortcut (a browser's unchanging viewer
            // page would otherwise pass as "unchanged" every time).
            let pdf_reply = page
                .content_type
                .as_deref()
                .is_some_and(|ct| ct.contains("application/pdf"));
            if (watch.is_pdf() || pdf_reply)
                && !page
                    .raw
                    .get(..1024)
                    .unwrap_or(&page.raw)
                    .windows(4)
                    .any(|w| w == b"%PDF")
                && !page.not_modified()
            {
                return Ok(Err(CheckError::PdfNotAvailable {
                    content_type: page.content_type.clone(),
                }));
            }
            let stamp = stamp.insert(Stamp::new(fingerprint.clone(), &page));
            if let Some(last) = &last
                && (page.not_modified() || stamp == last)
            {
                debug!("reply unchanged since the last processed one: not processed again");
                return Ok(Ok(Checked::Reused(page)));
            }
            // Read only now: an unchanged reply needs none of the history.
            let previous = self
                .previous_state(key, watch, &rules, &history, diff_filtered)
                .await?;
            Ok::<_, StoreError>(
                self.sandbox
                    .process(page, rules, previous)
                    .await
                    .map(|(page, processed)| Checked::Processed(CheckResult { page, processed })),
            )
        };
        let result = match work_deadline {
            Some(at) => {
                let secs = at
                    .saturating_duration_since(tokio::time::Instant::now())
                    .as_secs()
                    .max(1);
                match tokio::time::timeout_at(at, work).await {
                    Ok(result) => result?,
                    Err(_) => {
                        warn!(secs, "check stopped at its deadline");
                        Err(CheckError::Deadline { secs })
                    }
                }
            }
            None => work.await?,
        };
        if let Ok(Checked::Processed(r)) = &result
            && r.processed.status == ChangeStatus::Blocked
            && has_conditions
        {
            debug!(watch_id = %key.id, "blocked: trigger text, forbidden text or conditions");
        }

        let muted = watch.notification_muted || settings.application.all_muted;
        let can_notify = self.notify.is_some()
            && !muted
            && !notifications::active_urls(
                &resolve_notification_settings(watch, &watch_tags, settings).urls,
            )
            .is_empty();
        let Decision {
            patch,
            snapshot,
            text_before_filters: kept_text,
            plan,
            report,
        } = outcome::decide(
            &outcome::Context {
                watch,
                settings,
                history_len: history.count,
                started,
                diff_filtered,
                can_notify,
                stamp: stamp.as_ref(),
            },
            &result,
        );
        let now = self.clock.now();
        let next_check_at = timing::next_due(
            watch,
            settings,
            started,
            now,
            self.config.minimum_recheck_secs,
        );
        let history_max = watch
            .history_snapshot_max_length
            .or(settings.application.history_snapshot_max_length)
            .filter(|n| *n > 0)
            .map(|n| n as usize);
        let commit = CheckCommit {
            patch: patch.into_map(),
            next_check_at,
            due_at: job.due_at,
            job_id: job.id.clone(),
            snapshot,
            base: Some(item.clone()),
            history_max,
            text_before_filters: kept_text,
        };
        match self
            .store
            .commit_check(key, &self.config.owner, commit)
            .await
        {
            Ok(out) => {
                let notify = match plan {
                    Plan::Change => out.snapshot_ts.is_some(),
                    Plan::FilterFailure | Plan::StepFailure(_) => true,
                    Plan::None => false,
                };
                if notify && let Some(setup) = &self.notify {
                    let prev = match history.newest {
                        Some(ts) => self.store.snapshot_text(key, ts).await?.map(|t| (ts, t)),
                        None => None,
                    };
                    let current = match (&result, out.snapshot_ts) {
                        (Ok(Checked::Processed(r)), Some(ts)) => Some((
                            ts,
                            r.processed.text.as_str(),
                            r.processed.triggered_text.join("\n"),
                        )),
                        _ => None,
                    };
                    // The notification shows the state this check found (upstream renders
                    // after saving it).
                    let updated;
                    let watch = match &result {
                        Ok(Checked::Processed(r)) if r.processed.restock.is_some() => {
                            updated = Watch {
                                restock: r.processed.restock.clone(),
                                ..watch.clone()
                            };
                            &updated
                        }
                        _ => watch,
                    };
                    let ctx = notifications::WatchContext {
                        key,
                        watch,
                        tags: &watch_tags,
                        settings,
                        base_url: setup.base_url.as_deref(),
                        now: self.clock.now(),
                    };
                    let queued = match (plan, prev, current) {
                        (Plan::Change, Some((from, prev)), Some((to, text, triggered))) => {
                            notifications::queue_change(
                                &self.sandbox,
                                setup.queue.as_ref(),
                                self.store.as_ref(),
                                &ctx,
                                (from, &prev),
                                (to, text),
                                &triggered,
                            )
                            .await
                        }
                        (Plan::FilterFailure | Plan::StepFailure(_), _, _) => {
                            let threshold = settings
                                .application
                                .filter_failure_notification_threshold_attempts;
                            let step = match plan {
                                Plan::StepFailure(n) => Some(n),
                                _ => None,
                            };
                            notifications::queue_filter_failure(
                                &self.sandbox,
                                setup.queue.as_ref(),
                                self.store.as_ref(),
                                &ctx,
                                u32::try_from(threshold).unwrap_or(0),
                                step,
                            )
                            .await
                        }
                        _ => Ok(()),
                    };
                    if let Err(e) = queued {
                        warn!(error = %e, "notification could not be queued");
                    }
                }
                let report = CheckReport {
                    history_len: out.history_len,
                    notify,
                    ..report
                };
                info!(status = ?report.status, error = ?report.error, history = report.history_len, version = item.version, "check committed");
                Ok(JobOutcome::Checked(report))
            }
            Err(StoreError::LeaseLost(_)) => {
                // Our lease expired and another checker took over: its result wins.
                warn!("lease lost before commit; result dropped");
                Ok(JobOutcome::Busy { lease_until: None })
            }
            Err(e) => Err(e),
        }
    }

    /// What processing compares the reply with: the last checksum, and the stored texts the
    /// watch's settings need (the unfiltered text for a diff filter, every line ever seen for
    /// `check_unique_lines`).
    /// The browser check this watch asks for (`fetch_backend` html_webdriver or an
    /// `extra_browser_<name>`, itself or through `system`) with the extra browser's DevTools
    /// URL, or `None` for the plain HTTP fetcher. What the browser fetcher cannot do is the
    /// check's error, never silently done another way.
    async fn browser_request(
        &self,
        watch: &Watch,
        settings: &Settings,
        request: &FetchRequest,
    ) -> Result<Option<(BrowserRequest, Option<String>)>, CheckError> {
        let backend = match watch.fetch_backend.as_str() {
            "system" | "" => settings.application.fetch_backend.as_str(),
            other => other,
        };
        // Browsers show a PDF in their viewer and cannot hand over the file: a watch known to
        // be a PDF is fetched with the plain client, whatever its fetch method (upstream's
        // `get_fetch_backend`).
        if watch.is_pdf() {
            return Ok(None);
        }
        let remote = match backend.strip_prefix("extra_browser_") {
            Some(name) => {
                let found = settings
                    .requests
                    .extra_browsers
                    .iter()
                    .find(|b| b.browser_name == name && !b.browser_connection_url.is_empty());
                match found {
                    Some(b) => Some(b.browser_connection_url.clone()),
                    None => {
                        return Err(CheckError::Processor(format!(
                            "Exception: fetch_backend '{backend}' names no browser in the settings' extra browsers"
                        )));
                    }
                }
            }
            None => None,
        };
        if backend != "html_webdriver" && remote.is_none() {
            if watch.has_browser_steps() {
                return Err(CheckError::Processor(STEPS_NEED_BROWSER.into()));
            }
            return Ok(None);
        }
        let delay = watch
            .webdriver_delay
            .or(settings.application.webdriver_delay)
            .and_then(|s| u64::try_from(s).ok())
            .map_or(Duration::ZERO, Duration::from_secs);
        let browser_request = BrowserRequest {
            request: request.clone(),
            delay: self.config.browser_settle + delay,
            js: watch.webdriver_js_execute_code.clone(),
            steps: self.browser_steps(watch).await?,
            stock_scan: watch.processor == "restock_diff",
        };
        Ok(Some((browser_request, remote)))
    }

    /// The watch's browser steps ready to run: placeholders and a leading "Goto site"
    /// dropped as upstream drops them, selectors and values rendered as Jinja2 in the
    /// sandbox. A step this system cannot run (saved before the API checked steps) fails
    /// as that step.
    async fn browser_steps(&self, watch: &Watch) -> Result<Vec<RunnableStep>, CheckError> {
        let kept = valid_browser_steps(watch.browser_steps.clone());
        let mut steps = Vec::with_capacity(kept.len());
        let mut templates = Vec::new();
        for (n, step) in kept.iter().enumerate() {
            let action = step.action().ok_or_else(|| FetchError::BrowserStep {
                step: n + 1,
                reason: format!(
                    "unknown operation '{}'",
                    step.operation.as_deref().unwrap_or("")
                ),
                not_found: false,
            })?;
            let selector = step.selector.clone().unwrap_or_default();
            let value = step.optional_value.clone().unwrap_or_default();
            for (what, text) in [("selector", &selector), ("value", &value)] {
                if has_template_markup(text) {
                    templates.push((format!("browser step {} {what}", n + 1), text.clone()));
                }
            }
            steps.push(RunnableStep {
                action,
                selector,
                value,
            });
        }
        if templates.is_empty() {
            return Ok(steps);
        }
        let mut texts = self.sandbox.render_request(templates).await?.into_iter();
        for step in &mut steps {
            for text in [&mut step.selector, &mut step.value] {
                if has_template_markup(text) {
                    *text = texts.next().unwrap_or_default();
                }
            }
        }
        Ok(steps)
    }

    /// Renders the request's Jinja2 templates as upstream does at fetch time: the URL when
    /// it has markup, every header value and the body (a plain one only loses a trailing
    /// newline, as Jinja2 drops it). Templates run in the sandbox, as notifications do;
    /// a request without markup never goes there.
    async fn render_request(&self, request: &mut FetchRequest) -> Result<(), CheckError> {
        let mut templates = Vec::new();
        if has_template_markup(&request.url) {
            templates.push(("url".to_string(), request.url.clone()));
        }
        for (name, value) in &request.headers {
            if has_template_markup(value) {
                templates.push((format!("header '{name}'"), value.clone()));
            }
        }
        match &mut request.body {
            Some(body) if has_template_markup(body) => {
                templates.push(("body".to_string(), body.clone()));
            }
            Some(body) => *body = render_request_template(body).unwrap_or_default(),
            None => {}
        }
        if templates.is_empty() {
            return Ok(());
        }
        let mut texts = self.sandbox.render_request(templates).await?.into_iter();
        let mut next = || texts.next().unwrap_or_default();
        if has_template_markup(&request.url) {
            request.url = next();
        }
        for (_, value) in request.headers.iter_mut() {
            if has_template_markup(value) {
                *value = next();
            }
        }
        if let Some(body) = request.body.as_mut().filter(|b| has_template_markup(b)) {
            *body = next();
        }
        Ok(())
    }

    async fn previous_state(
        &self,
        key: &Key,
        watch: &Watch,
        rules: &ProcessorSettings,
        history: &HistoryMeta,
        diff_filtered: bool,
    ) -> Result<PreviousState, StoreError> {
        let history_lines = if rules.check_unique_lines {
            let all = self.store.snapshots(key).await?;
            Some(Arc::new(
                self.history_lines(key, &all, rules.ignore_whitespace)
                    .await?,
            ))
        } else {
            None
        };
        Ok(PreviousState {
            md5: watch.previous_md5.as_str().map(str::to_string),
            has_history: history.count > 0,
            text_before_filters: if diff_filtered {
                self.store.text_before_filters(key).await?
            } else {
                None
            },
            history_lines,
            last_snapshot: match history.newest {
                Some(ts)
                    if changewatch_core::conditions::needs_previous_text(&rules.conditions) =>
                {
                    self.store.snapshot_text(key, ts).await?
                }
                _ => None,
            },
            restock: watch.restock.clone(),
        })
    }

    async fn history_lines(
        &self,
        key: &Key,
        history: &[i64],
        ignore_whitespace: bool,
    ) -> Result<HashSet<String>, StoreError> {
        let mut lines = HashSet::new();
        for ts in history {
            if let Some(text) = self.store.snapshot_text(key, *ts).await? {
                lines.extend(text.lines().map(|l| history_line_key(l, ignore_whitespace)));
            }
        }
        Ok(lines)
    }
}

#[async_trait]
impl JobRunner for Checker {
    async fn run(&self, job: CheckJob) {
        if let Err(e) = self.run_job(&job).await {
            warn!(watch_id = %job.watch_id, error = %e, "check job failed in the store");
        }
    }
}

/// Upstream's error for a watch with browser steps and the plain HTTP fetcher.
const STEPS_NEED_BROWSER: &str = "This watch has Browser Steps configured and so it cannot run with the 'Basic fast Plaintext/HTTP Client', either remove the Browser Steps or select a Chrome fetcher.";

/// A browser watch on a checker without a browser.
const NO_BROWSER: &str = "Exception: this watch fetches with a browser (fetch_backend html_webdriver) and none is available: set PLAYWRIGHT_DRIVER_URL to a Chrome DevTools WebSocket, or install Chromium (CW_CHROME_PATH)";

/// The request a watch describes; the URL's `source:` prefix is a processing flag, not part
/// of the address.
fn fetch_request(watch: &Watch, settings: &Settings, timeout: Duration) -> FetchRequest {
    let url = watch
        .url
        .strip_prefix("source:")
        .unwrap_or(&watch.url)
        .to_string();
    let mut headers: Vec<(String, String)> = settings
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // The watch's own headers win over the global ones.
    for (k, v) in &watch.headers {
        headers.retain(|(gk, _)| !gk.eq_ignore_ascii_case(k));
        headers.push((k.clone(), v.clone()));
    }
    FetchRequest {
        url,
        method: watch.method.clone(),
        headers,
        body: watch.body.clone().filter(|b| !b.is_empty()),
        timeout,
        ignore_status_codes: watch
            .ignore_status_codes
            .unwrap_or(settings.application.ignore_status_codes),
        empty_pages_are_a_change: settings.application.empty_pages_are_a_change,
        validators: None,
        proxy: None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failed test

    use super::*;
    use changewatch_store::sqlite::SqliteStore;
    use changewatch_store::{DEFAULT_TENANT, Expect};
    use serde_json::json;

    /// Kept settings and tags are the same decoded value while nothing was written, and the
    /// written one as soon as the write has returned (no wait, no event to catch up with).
    #[tokio::test]
    async fn kept_documents_follow_every_write_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_dir(dir.path()).unwrap();
        let kept = KeptDocs::default();
        let settings = || async {
            BatchDocs::default()
                .settings(&store, DEFAULT_TENANT, &kept)
                .await
                .unwrap()
        };
        let tags = || async {
            BatchDocs::default()
                .tags(&store, DEFAULT_TENANT, &kept)
                .await
                .unwrap()
        };
        let store = &store;
        let put = |key: Key, doc: serde_json::Value| async move {
            store.put(&key, doc, None, Expect::Any).await.unwrap();
        };

        put(
            Key::settings(DEFAULT_TENANT),
            json!({"requests": {"timeout": 21}}),
        )
        .await;
        let first = settings().await;
        assert_eq!(first.requests.timeout, 21);
        assert!(Arc::ptr_eq(&first, &settings().await), "read again");
        put(
            Key::settings(DEFAULT_TENANT),
            json!({"requests": {"timeout": 22}}),
        )
        .await;
        assert_eq!(settings().await.requests.timeout, 22);

        assert!(tags().await.is_empty());
        let none = tags().await;
        put(Key::tag(DEFAULT_TENANT, "t1"), json!({"title": "News"})).await;
        let one = tags().await;
        assert!(!Arc::ptr_eq(&none, &one));
        assert_eq!(one["t1"].title(), "News");
        // A watch's write leaves them kept.
        put(
            Key::watch(DEFAULT_TENANT, "w"),
            json!({"url": "http://127.0.0.1/"}),
        )
        .await;
        assert!(Arc::ptr_eq(&one, &tags().await));
    }
}
