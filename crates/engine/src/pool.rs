//! The embedded worker pool.
//!
//! `FETCH_WORKERS` tasks each loop: take the next job, run it, repeat. The set of watches being
//! checked right now is kept here (upstream's "running uuids") for the ops endpoints and the
//! `checking_now` count. Shutdown stops taking jobs at once and gives running checks a grace
//! period; a check cut off after it is left to its lease, which expires so the watch is checked
//! again (the same path as a crash). When the last running check ends and none starts for a
//! moment, the pool trims the heap ([`IdleTrim`]).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use changewatch_store::{CheckJob, JobQueue};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{Instrument, debug, info, info_span, warn};

/// Runs one job. Errors are the runner's to record on the watch; the pool only keeps going.
#[async_trait]
pub trait JobRunner: Send + Sync + 'static {
    async fn run(&self, job: CheckJob);
}

/// What the pool does once the last running check has ended and none has started for
/// `after`: glibc keeps the memory a burst of checks freed in its arenas, so a server's RSS
/// stepped up round after round (50,000 watches: 92 → 124 MB over four rounds); a trim between
/// bursts gives it back. It cannot lower a burst's own peak.
#[derive(Clone, Copy, Debug)]
pub struct IdleTrim {
    pub after: Duration,
    /// Returns whether memory was released; [`crate::process::trim_heap`] by default.
    pub trim: fn() -> bool,
}

impl Default for IdleTrim {
    fn default() -> Self {
        IdleTrim {
            after: Duration::from_secs(2),
            trim: crate::process::trim_heap,
        }
    }
}

/// Observable state of the pool.
#[derive(Clone, Debug, Default)]
pub struct PoolState {
    running: Arc<Mutex<BTreeSet<String>>>,
    trim_pending: Arc<AtomicBool>,
    idle_trims: Arc<AtomicU64>,
}

impl PoolState {
    /// Watch ids being checked now.
    pub fn running(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    pub fn running_count(&self) -> usize {
        self.lock().len()
    }

    /// Heap trims the pool has made after going idle.
    pub fn idle_trims(&self) -> u64 {
        self.idle_trims.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called when the running set has just become empty: one timer at a time, and the trim
    /// only if nothing is running when it fires (checks that end later schedule their own).
    fn schedule_trim(&self, idle: IdleTrim) {
        if self.trim_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let state = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(idle.after).await;
            state.trim_pending.store(false, Ordering::Release);
            if state.running_count() == 0 {
                let released = tokio::task::spawn_blocking(idle.trim)
                    .await
                    .unwrap_or(false);
                state.idle_trims.fetch_add(1, Ordering::Relaxed);
                debug!(released, "heap trimmed after the pool went idle");
            }
        });
    }
}

/// A started pool; dropping it without [`WorkerPool::shutdown`] aborts the workers.
pub struct WorkerPool {
    workers: JoinSet<()>,
    stop: watch::Sender<bool>,
    state: PoolState,
    size: usize,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("size", &self.size)
            .finish()
    }
}

/// How long a worker waits on an empty queue before checking for shutdown again.
const POLL: Duration = Duration::from_millis(250);

impl WorkerPool {
    pub fn start(size: usize, queue: Arc<dyn JobQueue>, runner: Arc<dyn JobRunner>) -> Self {
        Self::start_with(size, queue, runner, IdleTrim::default())
    }

    /// [`WorkerPool::start`] with the idle trim given (tests shorten its wait and count it).
    pub fn start_with(
        size: usize,
        queue: Arc<dyn JobQueue>,
        runner: Arc<dyn JobRunner>,
        idle: IdleTrim,
    ) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let state = PoolState::default();
        let mut workers = JoinSet::new();
        for n in 0..size.max(1) {
            let queue = queue.clone();
            let runner = runner.clone();
            let state = state.clone();
            let stop_rx = stop_rx.clone();
            workers.spawn(
                worker_loop(queue, runner, state, stop_rx, idle)
                    .instrument(info_span!("worker", n)),
            );
        }
        WorkerPool {
            workers,
            stop,
            state,
            size: size.max(1),
        }
    }

    pub fn state(&self) -> PoolState {
        self.state.clone()
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Workers still alive (a worker only ends on shutdown or a panic in a runner).
    pub fn alive(&self) -> usize {
        self.workers.len()
    }

    /// Stops taking jobs and waits up to `grace` for running checks; returns the watch ids that
    /// were still running when the grace period ended (their leases will expire).
    pub async fn shutdown(mut self, grace: Duration) -> Vec<String> {
        let _ = self.stop.send(true);
        let all_done = async { while self.workers.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all_done).await.is_err() {
            let cut = self.state.running();
            warn!(running = ?cut, "shutdown grace period over; aborting running checks");
            self.workers.abort_all();
            while self.workers.join_next().await.is_some() {}
            return cut;
        }
        info!("worker pool stopped");
        Vec::new()
    }
}

async fn worker_loop(
    queue: Arc<dyn JobQueue>,
    runner: Arc<dyn JobRunner>,
    state: PoolState,
    mut stop: watch::Receiver<bool>,
    idle: IdleTrim,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let job = tokio::select! {
            job = queue.dequeue(POLL) => job,
            _ = stop.changed() => return,
        };
        let job = match job {
            Ok(Some(job)) => job,
            Ok(None) => continue,
            Err(e) => {
                warn!(error = %e, "dequeue failed");
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        let id = job.watch_id.clone();
        state.lock().insert(id.clone());
        runner
            .run(job)
            .instrument(info_span!("check", watch_id = %id))
            .await;
        let now_idle = {
            let mut running = state.lock();
            running.remove(&id);
            running.is_empty()
        };
        if now_idle {
            state.schedule_trim(idle);
        }
    }
}
