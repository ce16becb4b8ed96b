//! The scheduler function: one tick per EventBridge Scheduler invocation (every minute).
//!
//! A tick queues every watch due before the next tick, each job delayed to its due time by
//! SQS (`DelaySeconds`), so intervals shorter than a minute still run on time without a
//! per-second loop. The `due` index's shards are paged in parallel and each page's jobs are
//! sent as it is read (see `changewatch_engine::scheduler`), so a tick's time grows with the
//! number of due watches divided by the shards, and a tick cut short by its deadline has sent
//! everything it read. Each tick also sweeps one sixtieth of the table for watches whose job
//! was lost, so the whole table is swept once an hour.

use std::time::{Duration, Instant};

use changewatch_engine::scheduler::{TickOptions, TickReport, tick_with};
use changewatch_store::{JobQueue, StoreError, WatchStore};
use tracing::info;

/// How far ahead a tick looks: up to the next tick.
pub const HORIZON_SECS: i64 = 60;
/// Due watches one tick takes at most: ten times the 17,000 a minute of a million watches
/// checked hourly, so a backlog drains within a few ticks.
pub const MAX_PER_TICK: usize = 200_000;
/// The sweep for lost jobs covers the table in this many ticks.
pub const SWEEP_PARTS: u32 = 60;
/// No page is read this close to the invocation's end (nor one that, as long as the longest
/// page so far, could run past it).
const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// The options of one tick at `now`, ending before `deadline`.
pub fn options(now: i64, deadline: Option<Instant>) -> TickOptions {
    TickOptions {
        horizon: HORIZON_SECS,
        page: 200,
        concurrency: 16,
        max: MAX_PER_TICK,
        deadline: deadline.map(|d| d.checked_sub(DEADLINE_MARGIN).unwrap_or(d)),
        sweep: Some((
            u32::try_from((now / 60).rem_euclid(i64::from(SWEEP_PARTS))).unwrap_or(0),
            SWEEP_PARTS,
        )),
        queue_cap: None,
    }
}

pub async fn run_tick(
    store: &dyn WatchStore,
    queue: &dyn JobQueue,
    now: i64,
    deadline: Option<Instant>,
) -> Result<TickReport, StoreError> {
    let started = Instant::now();
    let r = tick_with(store, queue, now, &options(now, deadline)).await?;
    info!(
        due = r.due,
        queued = r.queued,
        already_queued = r.already_queued,
        paused = r.paused,
        pages = r.pages,
        recovered = r.recovered,
        cut_short = r.cut_short,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "tick"
    );
    Ok(r)
}

/// The instant of a Lambda deadline given in epoch milliseconds.
pub fn deadline_of(deadline_ms: u64) -> Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}
