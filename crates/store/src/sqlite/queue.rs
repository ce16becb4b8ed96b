//! The embedded job queue: a table in the connection's temporary database, and the next few
//! jobs in memory.
//!
//! Order is upstream's: manual rechecks (priority 1) before scheduled checks (priority = due
//! epoch), lower first, FIFO among equals. One entry per watch: enqueueing a watch that is
//! already waiting keeps the better priority.
//!
//! Why a table and not a heap structure: after a `recheck_all` every watch waits at once (as
//! upstream queues them all), and an in-process queue held ~230 bytes per waiting watch, the
//! largest part of the server's memory at 50,000 watches. The temporary database lives in a
//! file of its own (`temp_store = FILE`, unlinked at once) behind a small page cache of its
//! own, so a long queue costs disk pages, not resident memory. It is neither in the WAL nor
//! durable, by design: the truth is in the store (`next_check_at`, `queued_at`), and a
//! restart clears the queued marks so the scheduler queues again whatever is due. Being the
//! connection's own, the table is only reached through the store's thread.
//!
//! Why the head in memory: a transaction on the store's thread per dequeue cost an unchanged
//! check a third more CPU (the hand-off to the thread and back, and the transaction). So the
//! best [`HEAD`] jobs move out of the table together, and workers take them from memory. Every
//! job in the head runs before every job in the table: a job that belongs in front of the
//! head's last goes into the head, and pushes that last one back into the table when the head
//! is full.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use tokio::sync::Notify;

use super::{SqliteStore, Tx, backend, exec, query_row};
use crate::types::{CheckJob, Lane, QueueDepth, StoreError};
use crate::{JobQueue, QueueAdmin};

/// Jobs a refill moves from the table into memory: a dequeue costs a transaction only once in
/// this many.
const HEAD: usize = 32;

/// Jobs written per transaction by one enqueue: the queue's lock is held for a transaction, and
/// workers taking jobs from the head wait for it.
const ENQUEUE_BATCH: usize = 256;

/// Created when the store opens (see [`create`]). `seq` is the FIFO order among equals, given
/// by [`Inner::seq`] and kept by a job that moves between the head and the table.
const SCHEMA: &str = "CREATE TEMP TABLE check_queue (
        seq INTEGER NOT NULL,
        rank INTEGER NOT NULL,
        priority INTEGER NOT NULL,
        tenant TEXT NOT NULL,
        watch_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        due_at INTEGER NOT NULL,
        enqueued_at INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX temp.check_queue_watch ON check_queue (tenant, watch_id);
    CREATE UNIQUE INDEX temp.check_queue_order ON check_queue (rank, priority, seq);";

/// Makes the queue's table on a connection that was just opened.
pub(super) fn create(conn: &rusqlite::Connection) -> Result<(), StoreError> {
    conn.execute_batch(SCHEMA).map_err(backend)
}

/// The table's first `?1` jobs, taken; columns as [`row_of`] reads them.
const REFILL: &str = "DELETE FROM temp.check_queue WHERE rowid IN
        (SELECT rowid FROM temp.check_queue ORDER BY rank, priority, seq LIMIT ?1)
    RETURNING seq, job_id, tenant, watch_id, due_at, rank, priority, enqueued_at";

/// A tenant's jobs in the table in run order; columns as [`row_of`] reads them.
const LIST: &str = "SELECT seq, job_id, tenant, watch_id, due_at, rank, priority, enqueued_at
    FROM temp.check_queue WHERE tenant = ?1 ORDER BY rank, priority, seq";

const INSERT: &str = "INSERT INTO temp.check_queue
        (seq, rank, priority, tenant, watch_id, job_id, due_at, enqueued_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// A job's place in the run order: (lane rank, priority, seq).
type Place = (i64, i64, i64);

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

/// A row of [`REFILL`] or [`LIST`]: its place and its job.
fn row_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Place, CheckJob)> {
    let (seq, rank, priority) = (r.get(0)?, r.get(5)?, r.get(6)?);
    let job = CheckJob {
        id: r.get(1)?,
        tenant: r.get(2)?,
        watch_id: r.get(3)?,
        due_at: r.get(4)?,
        lane: lane_of(rank),
        priority,
        enqueued_at: r.get(7)?,
    };
    Ok(((rank, priority, seq), job))
}

fn store_row(tx: &Tx<'_>, place: Place, job: &CheckJob) -> Result<(), StoreError> {
    exec(
        tx,
        INSERT,
        params![
            place.2,
            place.0,
            place.1,
            job.tenant,
            job.watch_id,
            job.id,
            job.due_at,
            job.enqueued_at
        ],
    )
    .map_err(backend)?;
    Ok(())
}

/// The part of the queue in memory. Changed by workers taking from the head, and on the store's
/// thread by the transaction that changes the table (which holds the lock throughout, so the
/// two stay in step).
#[derive(Default)]
struct Inner {
    /// The next jobs to run, each before every job in the table.
    head: BTreeMap<Place, CheckJob>,
    /// Waiting jobs per lane, head and table: an idle worker's poll and the scheduler's depth
    /// read cost no query.
    depth: QueueDepth,
    /// Set when a transaction failed after changing `depth`: it is counted again.
    stale: bool,
    seq: i64,
}

impl Inner {
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

    fn pop_head(&mut self) -> Option<CheckJob> {
        let (place, job) = self.head.pop_first()?;
        self.sub(place.0);
        Some(job)
    }

    fn head_place(&self, tenant: &str, watch: &str) -> Option<Place> {
        self.head
            .iter()
            .find(|(_, j)| j.tenant == tenant && j.watch_id == watch)
            .map(|(place, _)| *place)
    }

    /// The place of a watch's waiting job, in the head or in the table.
    fn find(&self, tx: &Tx<'_>, tenant: &str, watch: &str) -> Result<Option<Place>, StoreError> {
        if let Some(place) = self.head_place(tenant, watch) {
            return Ok(Some(place));
        }
        query_row(
            tx,
            "SELECT rank, priority, seq FROM temp.check_queue WHERE tenant = ?1 AND watch_id = ?2",
            params![tenant, watch],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(backend)
    }

    /// Drops the job at `place` (from [`Inner::find`]).
    fn drop_at(&mut self, tx: &Tx<'_>, place: Place) -> Result<(), StoreError> {
        if self.head.remove(&place).is_none() {
            exec(
                tx,
                "DELETE FROM temp.check_queue WHERE rank = ?1 AND priority = ?2 AND seq = ?3",
                params![place.0, place.1, place.2],
            )
            .map_err(backend)?;
        }
        self.sub(place.0);
        Ok(())
    }

    /// Adds a job that is not waiting yet: into the head when it runs before the head's last,
    /// else into the table.
    fn push(&mut self, tx: &Tx<'_>, job: CheckJob) -> Result<(), StoreError> {
        self.seq += 1;
        let place = (lane_rank(job.lane), job.priority, self.seq);
        self.add(place.0);
        if self
            .head
            .last_key_value()
            .is_some_and(|(last, _)| place < *last)
        {
            self.head.insert(place, job);
            if self.head.len() > HEAD
                && let Some((last, job)) = self.head.pop_last()
            {
                store_row(tx, last, &job)?;
            }
            return Ok(());
        }
        store_row(tx, place, &job)
    }

    /// Counts the head and the table again (after a failed transaction).
    fn recount(&mut self, tx: &Tx<'_>) -> Result<(), StoreError> {
        let rechecks = self.head.keys().filter(|p| p.0 == lane_rank(Lane::Recheck));
        let rechecks = rechecks.count();
        self.depth = QueueDepth {
            rechecks,
            scheduled: self.head.len() - rechecks,
        };
        let mut stmt = tx
            .prepare_cached("SELECT rank, count(*) FROM temp.check_queue GROUP BY rank")
            .map_err(backend)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .map_err(backend)?;
        for row in rows {
            let (rank, n) = row.map_err(backend)?;
            *self.lane(rank) += usize::try_from(n).unwrap_or(0);
        }
        self.stale = false;
        Ok(())
    }

    /// Moves the table's first jobs into the (empty) head.
    fn refill(&mut self, tx: &Tx<'_>) -> Result<(), StoreError> {
        let mut stmt = tx.prepare_cached(REFILL).map_err(backend)?;
        let rows = stmt.query_map([HEAD as i64], row_of).map_err(backend)?;
        for row in rows {
            let (place, job) = row.map_err(backend)?;
            self.head.insert(place, job);
        }
        Ok(())
    }
}

/// What every handle on one store's queue shares (kept by the store, so that its clones share
/// it too).
#[derive(Default)]
pub(super) struct Shared {
    inner: Mutex<Inner>,
    /// One permit per job queued.
    ready: Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// Runs `f` on the store's thread with the queue's lock held; a failure marks the counts
    /// for a recount.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Tx<'_>, &mut Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let shared = self.shared().clone();
        let out = self
            .store
            .run(move |tx| {
                let mut inner = shared.lock();
                if inner.stale {
                    inner.recount(tx)?;
                }
                Ok((f(tx, &mut inner)?, Vec::new()))
            })
            .await;
        if out.is_err() {
            self.shared().lock().stale = true;
        }
        out
    }

    async fn try_pop(&self) -> Result<Option<CheckJob>, StoreError> {
        {
            let mut inner = self.shared().lock();
            if let Some(job) = inner.pop_head() {
                return Ok(Some(job));
            }
            // An idle worker's poll: nothing waits, and no query says so.
            if !inner.stale && inner.depth.total() == 0 {
                return Ok(None);
            }
        }
        self.run(|tx, inner| {
            // Another worker may have refilled the head in the meantime.
            if inner.head.is_empty() {
                inner.refill(tx)?;
            }
            Ok(inner.pop_head())
        })
        .await
    }
}

#[async_trait]
impl JobQueue for SqliteQueue {
    async fn enqueue(&self, jobs: Vec<CheckJob>) -> Result<(), StoreError> {
        let mut jobs = jobs.into_iter().peekable();
        while jobs.peek().is_some() {
            let batch: Vec<CheckJob> = jobs.by_ref().take(ENQUEUE_BATCH).collect();
            let added = self
                .run(move |tx, inner| {
                    let mut added = 0;
                    for job in batch {
                        let rank = (lane_rank(job.lane), job.priority);
                        if let Some(place) = inner.find(tx, &job.tenant, &job.watch_id)? {
                            if (place.0, place.1) <= rank {
                                continue;
                            }
                            inner.drop_at(tx, place)?;
                        }
                        inner.push(tx, job)?;
                        added += 1;
                    }
                    Ok(added)
                })
                .await?;
            for _ in 0..added {
                self.shared().ready.notify_one();
            }
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
            let inner = self.shared().lock();
            if !inner.stale {
                return Ok(inner.depth);
            }
        }
        self.run(|_, inner| Ok(inner.depth)).await
    }
}

#[async_trait]
impl QueueAdmin for SqliteQueue {
    async fn snapshot(&self, tenant: &str) -> Result<Vec<CheckJob>, StoreError> {
        let tenant = tenant.to_string();
        self.run(move |tx, inner| {
            let mut jobs: Vec<CheckJob> = inner
                .head
                .values()
                .filter(|j| j.tenant == tenant)
                .cloned()
                .collect();
            let mut stmt = tx.prepare_cached(LIST).map_err(backend)?;
            let rows = stmt.query_map([&tenant], row_of).map_err(backend)?;
            for row in rows {
                jobs.push(row.map_err(backend)?.1);
            }
            Ok(jobs)
        })
        .await
    }

    async fn waiting(&self, tenant: &str) -> Result<usize, StoreError> {
        let tenant = tenant.to_string();
        self.run(move |tx, inner| {
            let n: i64 = query_row(
                tx,
                "SELECT count(*) FROM temp.check_queue WHERE tenant = ?1",
                [&tenant],
                |r| r.get(0),
            )
            .map_err(backend)?;
            let head = inner.head.values().filter(|j| j.tenant == tenant).count();
            Ok(usize::try_from(n).unwrap_or(0) + head)
        })
        .await
    }

    async fn remove(&self, tenant: &str, watch_ids: &[String]) -> Result<usize, StoreError> {
        let tenant = tenant.to_string();
        let ids = watch_ids.to_vec();
        self.run(move |tx, inner| {
            let mut removed = 0;
            for id in &ids {
                if let Some(place) = inner.find(tx, &tenant, id)? {
                    inner.drop_at(tx, place)?;
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

    fn queue() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_dir(dir.path()).unwrap();
        (dir, store)
    }

    async fn drain(q: &SqliteQueue) -> Vec<String> {
        let mut got = Vec::new();
        while let Some(j) = q.dequeue(Duration::ZERO).await.unwrap() {
            got.push(j.watch_id);
        }
        got
    }

    #[tokio::test]
    async fn jobs_leave_whole_in_order_and_per_tenant_views_see_only_their_own() {
        let (_d, store) = queue();
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

    /// More jobs than the head holds: the order, the merge, the snapshot and removal see the
    /// head and the table as one queue.
    #[tokio::test]
    async fn the_head_and_the_table_are_one_queue() {
        let (_d, store) = queue();
        let q = store.job_queue();
        let n = HEAD + 10;
        let scheduled: Vec<CheckJob> = (0..n)
            .map(|i| job("t", &format!("s{i:02}"), Lane::Scheduled, 100 + i as i64))
            .collect();
        q.enqueue(scheduled).await.unwrap();
        // The first dequeue moves HEAD jobs into memory.
        let first = q.dequeue(Duration::ZERO).await.unwrap().unwrap();
        assert_eq!(first.watch_id, "s00");
        assert_eq!(q.shared().lock().head.len(), HEAD - 1);
        // A recheck of a watch in the table goes to the front and fills the head; a new
        // watch's recheck follows, and the head's last goes back to the table.
        let in_table = format!("s{:02}", n - 1);
        q.enqueue(vec![job("t", &in_table, Lane::Recheck, 1)])
            .await
            .unwrap();
        assert_eq!(q.shared().lock().head.len(), HEAD);
        q.enqueue(vec![job("t", "new", Lane::Recheck, 1)])
            .await
            .unwrap();
        assert_eq!(q.shared().lock().head.len(), HEAD);
        // A recheck of a watch in the head replaces its scheduled job.
        q.enqueue(vec![job("t", "s05", Lane::Recheck, 1)])
            .await
            .unwrap();
        // A worse job for a waiting watch changes nothing.
        q.enqueue(vec![job("t", "s01", Lane::Scheduled, 9999)])
            .await
            .unwrap();
        let depth = q.depth().await.unwrap();
        assert_eq!((depth.rechecks, depth.scheduled), (3, n - 3));
        assert_eq!(q.shared().lock().head.len(), HEAD);
        let snap: Vec<String> = q
            .snapshot("t")
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.watch_id)
            .collect();
        let mut want = vec![in_table.clone(), "new".to_string(), "s05".to_string()];
        want.extend((1..n - 1).filter(|i| *i != 5).map(|i| format!("s{i:02}")));
        assert_eq!(snap, want);
        assert_eq!(q.waiting("t").await.unwrap(), n);
        // Removal from the head and from the table.
        let removed = q
            .remove(
                "t",
                &["s02".into(), format!("s{:02}", n - 2), "nope".into()],
            )
            .await
            .unwrap();
        assert_eq!(removed, 2);
        want.retain(|w| *w != "s02" && *w != format!("s{:02}", n - 2));
        assert_eq!(drain(&q).await, want);
        assert_eq!(q.depth().await.unwrap().total(), 0);
        // FIFO among equals, across a refill.
        let same: Vec<CheckJob> = (0..n)
            .map(|i| job("t", &format!("e{i:02}"), Lane::Scheduled, 5))
            .collect();
        q.enqueue(same).await.unwrap();
        let want: Vec<String> = (0..n).map(|i| format!("e{i:02}")).collect();
        assert_eq!(drain(&q).await, want);
    }

    #[tokio::test]
    async fn stale_counts_are_counted_again_from_the_table_and_the_head() {
        let (_d, store) = queue();
        let q = store.job_queue();
        let jobs: Vec<CheckJob> = (0..HEAD + 2)
            .map(|i| job("t", &format!("s{i}"), Lane::Scheduled, 9))
            .chain([job("t", "r", Lane::Recheck, 1)])
            .collect();
        q.enqueue(jobs).await.unwrap();
        q.dequeue(Duration::ZERO).await.unwrap().unwrap();
        {
            let mut inner = q.shared().lock();
            inner.depth = QueueDepth::default();
            inner.stale = true;
        }
        let depth = q.depth().await.unwrap();
        assert_eq!((depth.rechecks, depth.scheduled), (0, HEAD + 2));
        assert!(!q.shared().lock().stale);
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
