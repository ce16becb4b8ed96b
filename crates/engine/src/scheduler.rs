//! The scheduler tick.
//!
//! Each due watch is marked queued with a conditional write before its job is sent, so two
//! overlapping ticks (a slow Lambda invocation and the next one, or a tick racing a manual
//! recheck) never queue one watch twice. Jobs go out in batches.

use changewatch_store::{CheckJob, JobQueue, Key, Lane, StoreError, WatchStore};
use tracing::{debug, warn};

/// What one tick did, for logs and the ops endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    pub due: usize,
    pub queued: usize,
    /// Due watches another tick or a recheck had queued already.
    pub already_queued: usize,
}

/// Upstream stops scheduling when its queue holds this many items; so do we (per tick).
pub const MAX_PER_TICK: usize = 5000;

/// Queues every watch due before `now + horizon`. `horizon` is 0 in embedded mode (a tick every
/// second); AWS mode ticks once a minute and sends jobs due within the minute with a delay.
pub async fn tick(
    store: &dyn WatchStore,
    queue: &dyn JobQueue,
    now: i64,
    horizon: i64,
) -> Result<TickReport, StoreError> {
    let due = store.due(now + horizon, now, MAX_PER_TICK).await?;
    let mut report = TickReport {
        due: due.len(),
        ..TickReport::default()
    };
    let mut jobs = Vec::with_capacity(due.len());
    for d in due {
        if store.mark_queued(&d.key, d.next_check_at, now).await? {
            // Upstream's scheduled priority is the epoch it was queued at: older first.
            jobs.push(CheckJob::new(
                &d.key,
                d.next_check_at,
                Lane::Scheduled,
                d.next_check_at,
                now,
            ));
        } else {
            report.already_queued += 1;
        }
    }
    report.queued = jobs.len();
    if !jobs.is_empty() {
        if let Err(e) = queue.enqueue(jobs).await {
            // The marks stay set; without a job the watches would never run. Surface the error:
            // the caller retries the tick, and embedded mode clears marks on restart.
            warn!(error = %e, "enqueue failed after marking watches queued");
            return Err(e);
        }
        debug!(queued = report.queued, "tick queued watches");
    }
    Ok(report)
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
    store.mark_queued(key, now, now).await?;
    queue
        .enqueue(vec![CheckJob::new(key, now, Lane::Recheck, 1, now)])
        .await?;
    Ok(true)
}
