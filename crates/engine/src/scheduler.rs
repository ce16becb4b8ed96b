//! The scheduler tick.
//!
//! Due watches are read page by page from every part of the store at once (DynamoDB: the
//! shards of the `due` index), and each page's jobs are sent before the next page is read, so
//! a tick that stops half-way (an error, its deadline) has sent everything it took. A job is
//! sent first and its watch marked queued after: a tick that dies between the two leaves a
//! watch that is still due, so the next tick sends it again (its check runs once: the checker
//! skips a job whose due time is already committed), never a marked watch without a job. The
//! mark is conditional, so two overlapping ticks (a slow invocation and the next one, or a tick
//! racing a manual recheck) queue a watch once: a job whose mark failed is a duplicate the
//! checker drops.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use changewatch_store::{CheckJob, DueWatch, JobQueue, Key, Lane, StoreError, WatchStore};
use futures::future::{BoxFuture, FutureExt};
use tokio::sync::OnceCell;
use tracing::{debug, warn};

use crate::docs::load_settings;

/// What one tick did, for logs and the ops endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Due watches read.
    pub due: usize,
    /// Jobs sent and marked.
    pub queued: usize,
    /// Due watches another tick or a recheck had queued already (their job is a duplicate).
    pub already_queued: usize,
    /// Due watches of tenants whose settings pause everything (`all_paused`).
    pub paused: usize,
    /// Pages read over all parts.
    pub pages: usize,
    /// Watches whose lost job was found by the sweep and that are due again.
    pub recovered: usize,
    /// The tick stopped at its deadline or its cap with due watches left for the next one.
    pub cut_short: bool,
}

impl TickReport {
    fn add(&mut self, other: &TickReport) {
        self.due += other.due;
        self.queued += other.queued;
        self.already_queued += other.already_queued;
        self.paused += other.paused;
        self.pages += other.pages;
        self.recovered += other.recovered;
        self.cut_short |= other.cut_short;
    }
}

/// Upstream stops scheduling when its queue holds this many items; so does embedded mode (per
/// tick, which comes every second).
pub const MAX_PER_TICK: usize = 5000;

/// Upstream's `MAX_QUEUE_SIZE`: a tick queues nothing more once this many checks wait. 50,000
/// watches due at once (a first start, a long stop) then stay due in the store, not all
/// queued within ten ticks, and the most overdue go first as room appears.
pub const MAX_QUEUE_SIZE: usize = 5000;

/// How one tick runs.
#[derive(Clone, Debug)]
pub struct TickOptions {
    /// Queue what is due before `now + horizon`: 0 in embedded mode (a tick every second); AWS
    /// mode ticks once a minute and sends jobs due within the minute with a delay.
    pub horizon: i64,
    /// Due watches read per page.
    pub page: usize,
    /// Queue marks written at once, per part.
    pub concurrency: usize,
    /// At most this many due watches per tick.
    pub max: usize,
    /// No new page is read after this instant (a Lambda invocation's end, with a margin).
    pub deadline: Option<Instant>,
    /// Sweep this part of that many for lost jobs ([`WatchStore::recover_stranded`]).
    pub sweep: Option<(u32, u32)>,
    /// Queue no more once the queue holds this many jobs (every lane counted, as upstream's
    /// `qsize()`): embedded mode's [`MAX_QUEUE_SIZE`]. `None` where the queue is a service
    /// that holds any number (SQS).
    pub queue_cap: Option<usize>,
}

impl TickOptions {
    /// Embedded mode's tick: everything due now, up to [`MAX_PER_TICK`].
    pub fn embedded(horizon: i64) -> Self {
        TickOptions {
            horizon,
            page: 500,
            concurrency: 8,
            max: MAX_PER_TICK,
            deadline: None,
            sweep: None,
            queue_cap: Some(MAX_QUEUE_SIZE),
        }
    }
}

/// Queues every watch due before `now + horizon`, with embedded mode's options.
pub async fn tick(
    store: &dyn WatchStore,
    queue: &dyn JobQueue,
    now: i64,
    horizon: i64,
) -> Result<TickReport, StoreError> {
    tick_with(store, queue, now, &TickOptions::embedded(horizon)).await
}

/// One tick: every part paged at once, each page sent and marked before the next is read.
pub async fn tick_with(
    store: &dyn WatchStore,
    queue: &dyn JobQueue,
    now: i64,
    opts: &TickOptions,
) -> Result<TickReport, StoreError> {
    let mut total = TickReport::default();
    if let Some((part, parts)) = opts.sweep {
        total.recovered = store.recover_stranded(now, part, parts).await?;
    }
    let mut max = opts.max;
    if let Some(cap) = opts.queue_cap {
        let room = cap.saturating_sub(queue.depth().await?.total());
        if room == 0 {
            total.cut_short = true;
            debug!(cap, "tick skipped: the queue is full");
            return Ok(total);
        }
        max = max.min(room);
    }
    let parts = store.due_parts().max(1);
    let per_part = max.div_ceil(parts as usize).max(1);
    // Futures built before they are polled together: a closure producing them inside the
    // stream would make the tick's future not `Send` for every lifetime (rustc's limits).
    let tenants = PausedTenants::default();
    let parts_ticks: Vec<BoxFuture<'_, Result<TickReport, StoreError>>> = (0..parts)
        .map(|part| tick_part(store, queue, now, part, per_part, opts, &tenants).boxed())
        .collect();
    let reports = futures::future::join_all(parts_ticks).await;
    let mut first_error = None;
    for r in reports {
        match r {
            Ok(r) => total.add(&r),
            Err(e) => {
                warn!(error = %e, "a part of the tick failed; the next tick takes it up");
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    debug!(?total, "tick");
    Ok(total)
}

/// Which tenants' settings pause everything (`all_paused`): read once per tenant per tick,
/// shared by the parts paged at once.
#[derive(Default)]
struct PausedTenants {
    map: std::sync::Mutex<HashMap<String, Arc<OnceCell<bool>>>>,
}

impl PausedTenants {
    async fn paused(&self, store: &dyn WatchStore, tenant: &str) -> Result<bool, StoreError> {
        let cell = {
            // A poisoned lock only means another part panicked: the map is still whole.
            let mut map = self
                .map
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.entry(tenant.to_string()).or_default().clone()
        };
        cell.get_or_try_init(|| async {
            Ok::<_, StoreError>(load_settings(store, tenant).await?.application.all_paused)
        })
        .await
        .copied()
    }
}

async fn tick_part(
    store: &dyn WatchStore,
    queue: &dyn JobQueue,
    now: i64,
    part: u32,
    max: usize,
    opts: &TickOptions,
    tenants: &PausedTenants,
) -> Result<TickReport, StoreError> {
    let mut report = TickReport::default();
    let mut after: Option<DueWatch> = None;
    // The longest page so far: no page is started that could run past the deadline.
    let mut longest = std::time::Duration::ZERO;
    loop {
        if report.due >= max
            || opts
                .deadline
                .is_some_and(|d| Instant::now() + longest * 2 >= d)
        {
            report.cut_short = true;
            return Ok(report);
        }
        let page_started = Instant::now();
        let limit = opts.page.min(max - report.due).max(1);
        let page = store
            .due_page(part, now + opts.horizon, now, after.as_ref(), limit)
            .await?;
        report.pages += 1;
        report.due += page.len();
        let full = page.len() == limit;
        let mut jobs = Vec::with_capacity(page.len());
        for d in &page {
            if tenants.paused(store, &d.key.tenant).await? {
                report.paused += 1;
                continue;
            }
            // Upstream's scheduled priority is the epoch it was queued at: older first.
            jobs.push(CheckJob::new(
                &d.key,
                d.next_check_at,
                Lane::Scheduled,
                d.next_check_at,
                now,
            ));
        }
        after = page.last().cloned();
        if !jobs.is_empty() {
            queue.enqueue(jobs.clone()).await?;
            let marked = store.mark_queued_many(&jobs, now, opts.concurrency).await?;
            let queued = marked.iter().filter(|m| **m).count();
            report.queued += queued;
            report.already_queued += marked.len() - queued;
        }
        longest = longest.max(page_started.elapsed());
        if !full {
            return Ok(report);
        }
    }
}

/// Queues a manual recheck ahead of scheduled work (API `?recheck=1`, the dashboard button).
/// The job is sent even when the watch is already queued: the queue keeps the better priority,
/// and the checker skips a job whose check has already been committed.
pub async fn request_recheck(
    store: &dyn WatchStore,
    queue: &dyn JobQueue,
    key: &Key,
    now: i64,
) -> Result<bool, StoreError> {
    if store.get(key).await?.is_none() {
        return Ok(false);
    }
    let job = CheckJob::new(key, now, Lane::Recheck, 1, now);
    store.mark_queued(&job, now).await?;
    queue.enqueue(vec![job]).await?;
    Ok(true)
}

/// [`request_recheck`] of many watches that a listing has just shown to exist: their marks in
/// one store call ([`WatchStore::mark_queued_many`]), their jobs in one send. A watch deleted
/// since gets a job that its checker skips.
pub async fn request_rechecks(
    store: &dyn WatchStore,
    queue: &dyn JobQueue,
    keys: &[Key],
    now: i64,
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let jobs: Vec<CheckJob> = keys
        .iter()
        .map(|key| CheckJob::new(key, now, Lane::Recheck, 1, now))
        .collect();
    store.mark_queued_many(&jobs, now, MARK_CONCURRENCY).await?;
    queue.enqueue(jobs).await?;
    Ok(())
}

/// Marks a batch of manual rechecks keeps in flight where the store writes them one by one.
const MARK_CONCURRENCY: usize = 16;
