//! The embedded job queue: a table in the connection's temporary database.
//!
//! Order is upstream's: manual rechecks (priority 1) before scheduled checks (priority = due
//! epoch), lower first, FIFO among equals. One entry per watch: enqueueing a watch that is
//! already waiting keeps the better priority.
//!
//! Why a table and not a heap structure: after a `recheck_all` every watch waits at once (as
//! upstream queues them all), and an in-process queue held ~230 bytes per waiting watch, the
//! largest part of the server's memory at 50,000 watches. The temporary database lives in a
//! file of its own (`temp_store = FILE`, unlinked at once) behind a small page cache of its
//! own, so a long queue costs disk pages, not resident memory. It is neither journalled
//! to the WAL nor durable, by design: the truth is in the store (`next_check_at`,
//! `queued_at`), and a restart clears the queued marks so the scheduler queues again whatever
//! is due. Being the connection's own, it is only reached through the store's thread.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use tokio::sync::Notify;

use super::{SqliteStore, Tx, backend, exec, query_row};
use crate::types::{CheckJob, Lane, QueueDepth, StoreError};
use crate::{JobQueue, QueueAdmin};

/// Created when the store opens (see [`create`]); `seq` (the rowid) is the FIFO order among
/// equals: a new row's rowid is above every row's in the table.
const SCHEMA: &str = "CREATE TEMP TABLE check_queue (
        seq INTEGER PRIMARY KEY,
        rank INTEGER NOT NULL,
        priority INTEGER NOT NULL,
        tenant TEXT NOT NULL,
        watch_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        due_at INTEGER NOT NULL,
        enqueued_at INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX temp.check_queue_watch ON check_queue (tenant, watch_id);
    CREATE INDEX temp.check_queue_order ON check_queue (rank, priority, seq);";

/// Makes the queue's table on a connection that was just opened.
pub(super) fn create(conn: &rusqlite::Connection) -> Result<(), StoreError> {
    conn.execute_batch(SCHEMA).map_err(backend)
}

const POP: &str = "DELETE FROM temp.check_queue WHERE seq =
        (SELECT seq FROM temp.check_queue ORDER BY rank, priority, seq LIMIT 1)
    RETURNING job_id, tenant, watch_id, due_at, rank, priority, enqueued_at";

/// A tenant's jobs in run order; columns as [`job_of`] reads them.
const LIST: &str = "SELECT job_id, tenant, watch_id, due_at, rank, priority, enqueued_at
    FROM temp.check_queue WHERE tenant = ?1 ORDER BY rank, priority, seq";

fn lane_rank(lane: Lane) -> i64 {
    match lane {
        Lane::Recheck => 0,
        Lane::Scheduled => 1,
    }
}

/// The lane a rank from [`lane_rank`] stands for.
fn lane_of(rank: i64) -> Lane {
    if rank == lane_rank(Lane::Recheck) {
        Lane::Recheck
    } else {
        Lane::Scheduled
    }
}

/// A row of [`POP`] or [`LIST`].
fn job_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<CheckJob> {
    Ok(CheckJob {
        id: r.get(0)?,
        tenant: r.get(1)?,
        watch_id: r.get(2)?,
        due_at: r.get(3)?,
        lane: lane_of(r.get(4)?),
        priority: r.get(5)?,
        enqueued_at: r.get(6)?,
    })
}

/// Waiting jobs per lane, kept beside the table so that an idle worker's poll and the
/// scheduler's depth read cost no query. Changed only on the store's thread, by the
/// transaction that changed the table (so in commit order); a transaction that fails after
/// changing them leaves them `stale`, and they are counted again from the table.
#[derive(Default)]
struct Counts {
    depth: QueueDepth,
    stale: bool,
}

impl Counts {
    fn lane(&mut self, rank: i64) -> &mut usize {
        match lane_of(rank) {
            Lane::Recheck => &mut self.depth.rechecks,
            Lane::Scheduled => &mut self.depth.scheduled,
        }
    }

    fn add(&mut self, rank: i64) {
        *self.lane(rank) += 1;
    }

    fn sub(&mut self, rank: i64) {
        let n = self.lane(rank);
        *n = n.saturating_sub(1);
    }
}

/// What every handle on one store's queue shares (kept by the store, so that its clones share
/// it too).
#[derive(Default)]
pub(super) struct Shared {
    counts: Mutex<Counts>,
    /// One permit per job queued.
    ready: Notify,
}

impl Shared {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// See the module docs; made by [`SqliteStore::job_queue`]. Every handle on one store is the
/// same queue.
#[derive(Clone)]
pub struct SqliteQueue {
    store: SqliteStore,
}

impl std::fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteQueue").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// The job queue of this store's connection.
    pub fn job_queue(&self) -> SqliteQueue {
        SqliteQueue {
            store: self.clone(),
        }
    }
}

impl SqliteQueue {
    fn shared(&self) -> &Arc<Shared> {
        &self.store.queue
    }

    /// Runs `f` on the store's thread with the counts it keeps up to date; a failure marks
    /// them for a recount.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Tx<'_>, &mut Counts) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let shared = self.shared().clone();
        let out = self
            .store
            .run(move |tx| {
                let mut counts = shared.counts();
                if counts.stale {
                    counts.depth = count(tx)?;
                    counts.stale = false;
                }
                Ok((f(tx, &mut counts)?, Vec::new()))
            })
            .await;
        if out.is_err() {
            self.shared().counts().stale = true;
        }
        out
    }

    /// Whether a job may be waiting: when the counts say none, an idle worker's poll costs
    /// nothing. A stale count says yes.
    fn maybe_waiting(&self) -> bool {
        let counts = self.shared().counts();
        counts.stale || counts.depth.total() > 0
    }

    async fn try_pop(&self) -> Result<Option<CheckJob>, StoreError> {
        if !self.maybe_waiting() {
            return Ok(None);
        }
        self.run(|tx, counts| {
            let job = query_row(tx, POP, [], job_of).optional().map_err(backend)?;
            if let Some(job) = &job {
                counts.sub(lane_rank(job.lane));
            }
            Ok(job)
        })
        .await
    }
}

/// The table's depth, counted.
fn count(tx: &Tx<'_>) -> Result<QueueDepth, StoreError> {
    let mut stmt = tx
        .prepare_cached("SELECT rank, count(*) FROM temp.check_queue GROUP BY rank")
        .map_err(backend)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .map_err(backend)?;
    let mut counts = Counts::default();
    for row in rows {
        let (rank, n) = row.map_err(backend)?;
        *counts.lane(rank) = usize::try_from(n).unwrap_or(0);
    }
    Ok(counts.depth)
}

#[async_trait]
impl JobQueue for SqliteQueue {
    async fn enqueue(&self, jobs: Vec<CheckJob>) -> Result<(), StoreError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let added = self
            .run(move |tx, counts| {
                let mut added = 0;
                for job in &jobs {
                    let rank = lane_rank(job.lane);
                    let waiting: Option<(i64, i64, i64)> = query_row(
                        tx,
                        "SELECT seq, rank, priority FROM temp.check_queue
                         WHERE tenant = ?1 AND watch_id = ?2",
                        params![job.tenant, job.watch_id],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()
                    .map_err(backend)?;
                    if let Some((seq, was_rank, was_priority)) = waiting {
                        if (was_rank, was_priority) <= (rank, job.priority) {
                            continue;
                        }
                        exec(
                            tx,
                            "DELETE FROM temp.check_queue WHERE seq = ?1",
                            params![seq],
                        )
                        .map_err(backend)?;
                        counts.sub(was_rank);
                    }
                    exec(
                        tx,
                        "INSERT INTO temp.check_queue
                            (rank, priority, tenant, watch_id, job_id, due_at, enqueued_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![
                            rank,
                            job.priority,
                            job.tenant,
                            job.watch_id,
                            job.id,
                            job.due_at,
                            job.enqueued_at
                        ],
                    )
                    .map_err(backend)?;
                    counts.add(rank);
                    added += 1;
                }
                Ok(added)
            })
            .await?;
        for _ in 0..added {
            self.shared().ready.notify_one();
        }
        Ok(())
    }

    async fn dequeue(&self, wait: Duration) -> Result<Option<CheckJob>, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Asked for before looking: a job queued between the look and the wait leaves a
            // permit that wakes us.
            let notified = self.shared().ready.notified();
            if let Some(job) = self.try_pop().await? {
                return Ok(Some(job));
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.try_pop().await;
            }
        }
    }

    async fn depth(&self) -> Result<QueueDepth, StoreError> {
        {
            let counts = self.shared().counts();
            if !counts.stale {
                return Ok(counts.depth);
            }
        }
        self.run(|_, counts| Ok(counts.depth)).await
    }
}

#[async_trait]
impl QueueAdmin for SqliteQueue {
    async fn snapshot(&self, tenant: &str) -> Result<Vec<CheckJob>, StoreError> {
        let tenant = tenant.to_string();
        self.run(move |tx, _| {
            let mut stmt = tx.prepare_cached(LIST).map_err(backend)?;
            let rows = stmt.query_map([&tenant], job_of).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn waiting(&self, tenant: &str) -> Result<usize, StoreError> {
        let tenant = tenant.to_string();
        self.run(move |tx, _| {
            let n: i64 = query_row(
                tx,
                "SELECT count(*) FROM temp.check_queue WHERE tenant = ?1",
                [&tenant],
                |r| r.get(0),
            )
            .map_err(backend)?;
            Ok(usize::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn remove(&self, tenant: &str, watch_ids: &[String]) -> Result<usize, StoreError> {
        let tenant = tenant.to_string();
        let ids = watch_ids.to_vec();
        self.run(move |tx, counts| {
            let mut removed = 0;
            for id in &ids {
                let rank: Option<i64> = query_row(
                    tx,
                    "DELETE FROM temp.check_queue WHERE tenant = ?1 AND watch_id = ?2
                     RETURNING rank",
                    params![tenant, id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
                if let Some(rank) = rank {
                    counts.sub(rank);
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

    use super::*;

    fn job(tenant: &str, watch: &str, lane: Lane, priority: i64) -> CheckJob {
        CheckJob {
            id: format!("job-{watch}"),
            tenant: tenant.into(),
            watch_id: watch.into(),
            due_at: 7,
            lane,
            priority,
            enqueued_at: 3,
        }
    }

    #[tokio::test]
    async fn jobs_leave_whole_in_order_and_per_tenant_views_see_only_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_dir(dir.path()).unwrap();
        let q = store.job_queue();
        let a1 = job("a", "w1", Lane::Scheduled, 200);
        let b1 = job("b", "w1", Lane::Scheduled, 100);
        let a2 = job("a", "w2", Lane::Recheck, 1);
        q.enqueue(vec![a1.clone(), b1.clone(), a2.clone()])
            .await
            .unwrap();
        // The same watch id in another tenant is another watch.
        assert_eq!(q.waiting("a").await.unwrap(), 2);
        assert_eq!(q.snapshot("a").await.unwrap(), [a2.clone(), a1.clone()]);
        assert_eq!(q.remove("b", &["w2".into()]).await.unwrap(), 0);
        assert_eq!(q.remove("b", &["w1".into()]).await.unwrap(), 1);
        // Another handle on the same store is the same queue.
        let other = store.clone().job_queue();
        assert_eq!(other.depth().await.unwrap().total(), 2);
        assert_eq!(other.dequeue(Duration::ZERO).await.unwrap(), Some(a2));
        assert_eq!(q.dequeue(Duration::ZERO).await.unwrap(), Some(a1));
        assert_eq!(q.dequeue(Duration::ZERO).await.unwrap(), None);
    }

    #[tokio::test]
    async fn stale_counts_are_counted_again_from_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_dir(dir.path()).unwrap();
        let q = store.job_queue();
        q.enqueue(vec![
            job("t", "r", Lane::Recheck, 1),
            job("t", "s", Lane::Scheduled, 9),
        ])
        .await
        .unwrap();
        {
            let mut counts = q.shared().counts();
            counts.depth = QueueDepth::default();
            counts.stale = true;
        }
        let depth = q.depth().await.unwrap();
        assert_eq!((depth.rechecks, depth.scheduled), (1, 1));
        assert!(!q.shared().counts().stale);
    }

    #[tokio::test]
    async fn a_store_opened_again_has_an_empty_queue() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SqliteStore::open_dir(dir.path()).unwrap();
            let q = store.job_queue();
            q.enqueue(vec![job("t", "w", Lane::Scheduled, 9)])
                .await
                .unwrap();
        }
        let store = SqliteStore::open_dir(dir.path()).unwrap();
        let q = store.job_queue();
        assert_eq!(q.depth().await.unwrap().total(), 0);
        assert_eq!(q.dequeue(Duration::ZERO).await.unwrap(), None);
    }
}
