//! The embedded worker pool.
//!
//! `FETCH_WORKERS` tasks each loop: take the next job, run it, repeat. The set of watches being
//! checked right now is kept here (upstream's "running uuids") for the ops endpoints and the
//! `checking_now` count. Shutdown stops taking jobs at once and gives running checks a grace
//! period; a check cut off after it is left to its lease, which expires so the watch is checked
//! again (the same path as a crash).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use changewatch_store::{CheckJob, JobQueue};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{Instrument, info, info_span, warn};

/// Runs one job. Errors are the runner's to record on the watch; the pool only keeps going.
#[async_trait]
pub trait JobRunner: Send + Sync + 'static {
    async fn run(&self, job: CheckJob);
}

/// Observable state of the pool.
#[derive(Clone, Debug, Default)]
pub struct PoolState {
    running: Arc<Mutex<BTreeSet<String>>>,
}

impl PoolState {
    /// Watch ids being checked now.
    pub fn running(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    pub fn running_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
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
        let (stop, stop_rx) = watch::channel(false);
        let state = PoolState::default();
        let mut workers = JoinSet::new();
        for n in 0..size.max(1) {
            let queue = queue.clone();
            let runner = runner.clone();
            let state = state.clone();
            let stop_rx = stop_rx.clone();
            workers.spawn(
                worker_loop(queue, runner, state, stop_rx).instrument(info_span!("worker", n)),
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
        state.lock().remove(&id);
    }
}
