//! The scheduler function: one tick per EventBridge Scheduler invocation (every minute).
//!
//! A tick queues every watch due before the next tick, each job delayed to its due time by
//! SQS (`DelaySeconds`), so intervals shorter than a minute still run on time without a
//! per-second loop. Due watches beyond one query's cap are taken by further passes of the same
//! tick, so a large backlog drains in one invocation.

use changewatch_engine::scheduler::{MAX_PER_TICK, TickReport, tick};
use changewatch_store::{JobQueue, StoreError, WatchStore};
use tracing::info;

/// How far ahead a tick looks: up to the next tick.
pub const HORIZON_SECS: i64 = 60;
/// Passes per invocation: bounds one invocation's work when something keeps watches due.
const MAX_PASSES: usize = 20;

pub async fn run_tick(
    store: &dyn WatchStore,
    queue: &dyn JobQueue,
    now: i64,
) -> Result<TickReport, StoreError> {
    let mut total = TickReport::default();
    for _ in 0..MAX_PASSES {
        let r = tick(store, queue, now, HORIZON_SECS).await?;
        total.due += r.due;
        total.queued += r.queued;
        total.already_queued += r.already_queued;
        if r.due < MAX_PER_TICK || r.queued == 0 {
            break;
        }
    }
    info!(
        due = total.due,
        queued = total.queued,
        already_queued = total.already_queued,
        "tick"
    );
    Ok(total)
}
