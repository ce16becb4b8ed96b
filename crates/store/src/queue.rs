//! The embedded job queue: an in-process priority queue.
//!
//! Order is upstream's: manual rechecks (priority 1) before scheduled checks (priority = due
//! epoch), lower first, FIFO among equals. One entry per watch: enqueueing a watch that is
//! already waiting keeps the better priority. Nothing here is durable, by design: the truth is
//! in the store (`next_check_at`, `queued_at`), and a restart clears the queued marks so the
//! scheduler re-queues whatever is due.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::types::{CheckJob, Lane, QueueDepth, StoreError};
use crate::{JobQueue, QueueAdmin};

#[derive(Default)]
struct Inner {
    /// (lane rank, priority, sequence) → job: iteration order is run order.
    order: BTreeSet<(u8, i64, u64, String)>,
    jobs: HashMap<String, (u8, i64, u64, CheckJob)>,
    seq: u64,
}

/// See the module docs.
#[derive(Default)]
pub struct MemoryQueue {
    inner: Mutex<Inner>,
    ready: Notify,
}

impl std::fmt::Debug for MemoryQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryQueue").finish_non_exhaustive()
    }
}

fn lane_rank(lane: Lane) -> u8 {
    match lane {
        Lane::Recheck => 0,
        Lane::Scheduled => 1,
    }
}

fn slot(job: &CheckJob) -> String {
    format!("{}\u{0}{}", job.tenant, job.watch_id)
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn try_pop(&self) -> Option<CheckJob> {
        let mut inner = self.lock();
        let first = inner.order.iter().next().cloned()?;
        inner.order.remove(&first);
        inner.jobs.remove(&first.3).map(|(_, _, _, job)| job)
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn enqueue(&self, jobs: Vec<CheckJob>) -> Result<(), StoreError> {
        let mut added = 0;
        {
            let mut inner = self.lock();
            for job in jobs {
                let id = slot(&job);
                let rank = (lane_rank(job.lane), job.priority);
                if let Some((r, p, s, _)) = inner.jobs.get(&id).cloned() {
                    if (r, p) <= rank {
                        continue;
                    }
                    inner.order.remove(&(r, p, s, id.clone()));
                }
                inner.seq += 1;
                let seq = inner.seq;
                inner.order.insert((rank.0, rank.1, seq, id.clone()));
                inner.jobs.insert(id, (rank.0, rank.1, seq, job));
                added += 1;
            }
        }
        for _ in 0..added {
            self.ready.notify_one();
        }
        Ok(())
    }

    async fn dequeue(&self, wait: Duration) -> Result<Option<CheckJob>, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register interest before looking, so a push between the look and the wait wakes us.
            let notified = self.ready.notified();
            if let Some(job) = self.try_pop() {
                return Ok(Some(job));
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(self.try_pop());
            }
        }
    }

    async fn depth(&self) -> Result<QueueDepth, StoreError> {
        let inner = self.lock();
        let rechecks = inner.order.iter().filter(|(r, ..)| *r == 0).count();
        Ok(QueueDepth {
            rechecks,
            scheduled: inner.order.len() - rechecks,
        })
    }
}

#[async_trait]
impl QueueAdmin for MemoryQueue {
    async fn snapshot(&self) -> Result<Vec<CheckJob>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .order
            .iter()
            .filter_map(|k| inner.jobs.get(&k.3).map(|(_, _, _, j)| j.clone()))
            .collect())
    }

    async fn remove(&self, watch_ids: &[String]) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let doomed: Vec<(u8, i64, u64, String)> = inner
            .jobs
            .iter()
            .filter(|(_, (_, _, _, j))| watch_ids.contains(&j.watch_id))
            .map(|(id, (r, p, s, _))| (*r, *p, *s, id.clone()))
            .collect();
        for k in &doomed {
            inner.order.remove(k);
            inner.jobs.remove(&k.3);
        }
        Ok(doomed.len())
    }
}
