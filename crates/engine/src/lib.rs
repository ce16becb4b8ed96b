//! Scheduling and checking, written once against the store ports so that embedded mode (a loop in
//! `changewatch serve`) and AWS mode (the scheduler and checker Lambda functions) run the same
//! logic.
//!
//! - [`scheduler`]: one tick: due watches → queue marks → jobs (batched).
//! - [`checker`]: one job: lease, redelivery check, fetch + process, one atomic commit.
//! - [`docs`]: typed loaders of the store's documents and the one read-modify-write loop
//!   (conditional write, re-read and re-apply on a conflict) every writer uses.
//! - [`outcome`]: what a check's result does to its watch, decided without I/O (the typed
//!   status patch, the snapshot, the notification plan).
//! - [`timing`]: a watch's next due time from its model and the tenant's settings.
//! - [`notifications`]: queueing notifications after a check; delivering queued ones with
//!   retries, the notification log, `last_notification_error`; the embedded sender task.
//! - [`pool`]: the embedded worker pool: N tasks pulling jobs, the set of running checks,
//!   graceful shutdown.
//! - [`process`]: log set-up and the stop signal every binary shares.

pub mod checker;
pub mod docs;
pub mod notifications;
pub mod outcome;
pub mod pool;
pub mod process;
pub mod scheduler;
pub mod timing;
