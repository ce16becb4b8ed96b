//! Scheduling and checking, written once against the store ports so that embedded mode (a loop in
//! `changewatch serve`) and AWS mode (the scheduler and checker Lambda functions) run the same
//! logic.
//!
//! - [`scheduler`]: one tick: due watches → queue marks → jobs (batched).
//! - [`pool`]: the embedded worker pool: N tasks pulling jobs, the set of running checks,
//!   graceful shutdown.

pub mod pool;
pub mod scheduler;
