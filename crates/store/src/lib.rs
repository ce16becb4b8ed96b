//! Storage ports and their adapters.
//!
//! The ports are shaped for the weaker of the two backends (DynamoDB + SQS + Streams), so that
//! callers never depend on something only SQLite can do: every write is a single-item conditional
//! write on a `version` (optimistic concurrency), a check's result is one atomic commit conditional
//! on the checker's lease, the scheduler asks for "due before T" (an index query), and every
//! committed change is published as an event with old and new images (a stream record).
//!
//! Documents (watches, tags, settings, stats) are stored as JSON objects: the model lives in
//! `changewatch-core`, and the store only knows the scheduling fields it has to index.
//!
//! Modules:
//! - [`types`]: keys, items, scheduling state, check commits, jobs, change events, errors.
//! - [`sqlite`]: the embedded adapter (one SQLite file in WAL mode, zstd snapshots, the job
//!   queue in the connection's temporary database).
//! - [`feed`]: the embedded change feed (in-process broadcast).
//! - `text_zstd`: the zstd frames snapshots are kept in (both adapters).
//! - [`backup`]: the backup format (both modes), export and restore through the port.
//! - [`aws`] (feature `aws`): DynamoDB, SQS and DynamoDB Streams adapters.
//! - [`conformance`] (feature `conformance`): the port test suites every adapter must pass.

#[cfg(feature = "aws")]
pub mod aws;
pub mod backup;
pub mod feed;
pub mod sqlite;
mod text_zstd;
pub mod types;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

use async_trait::async_trait;
use tokio::sync::broadcast;

pub use types::*;

/// Watches, tags, settings, stats and snapshots of all tenants.
#[async_trait]
pub trait WatchStore: Send + Sync + 'static {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;

    /// Every item of one kind for a tenant, in id order.
    async fn list(&self, tenant: &str, kind: Kind) -> Result<Vec<Item>, StoreError>;

    /// Every item of one kind for a tenant, handed to `f` one at a time in no particular
    /// order, for callers that keep a summary of each: a parsed watch document is several
    /// times its JSON, and holding all of them at once made a listing's memory grow with the
    /// watch count (9 MB of parsed documents for 500 watches). An error from `f` stops the
    /// walk and is returned.
    async fn list_each(
        &self,
        tenant: &str,
        kind: Kind,
        f: &mut (dyn FnMut(Item) -> Result<(), StoreError> + Send),
    ) -> Result<(), StoreError>;

    /// Up to `limit` items of one kind for a tenant whose ids follow `after`, in id order:
    /// a walk a page at a time that a caller can answer from as it goes (the watch listing
    /// streams its body). `None`, the default, when this adapter cannot read in id order by
    /// pages (DynamoDB scans its shards in hash order); such callers read with
    /// [`WatchStore::list_each`] and sort.
    async fn list_page(
        &self,
        tenant: &str,
        kind: Kind,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Option<Vec<Item>>, StoreError> {
        let _ = (tenant, kind, after, limit);
        Ok(None)
    }

    /// Writes a document if `expect` holds and returns the new version. Scheduling fields of an
    /// existing watch are kept; `schedule` (watches only) replaces them when given.
    async fn put(
        &self,
        key: &Key,
        doc: serde_json::Value,
        schedule: Option<Schedule>,
        expect: Expect,
    ) -> Result<u64, StoreError>;

    /// Deletes an item (and a watch's snapshots) if `expect` holds. `Ok(false)` when absent.
    async fn delete(&self, key: &Key, expect: Expect) -> Result<bool, StoreError>;

    /// A number that changes, before the write that changed them returns, whenever any
    /// tenant's settings or tags may have changed; a reader may keep what it decoded while
    /// the number stays the same. `None` (the default): this adapter keeps no such number
    /// (DynamoDB: other processes write without telling this one), so readers read the
    /// documents each time.
    fn docs_generation(&self) -> Option<u64> {
        None
    }

    /// Due watches are kept in this many parts, each paged on its own (DynamoDB: the shards of
    /// the `due` index, which a scheduler tick reads in parallel).
    fn due_parts(&self) -> u32 {
        1
    }

    /// One page of part `part` (`0..due_parts()`): watches whose `next_check_at` is at or
    /// before `before`, not queued, not leased, soonest first, starting after `after` (the
    /// last watch of the previous page). A page may hold a watch that was queued or leased a
    /// moment ago (an index that is eventually consistent): [`WatchStore::mark_queued`] is
    /// what decides.
    async fn due_page(
        &self,
        part: u32,
        before: i64,
        now: i64,
        after: Option<&DueWatch>,
        limit: usize,
    ) -> Result<Vec<DueWatch>, StoreError>;

    /// The first `limit` due watches over every part, soonest first (embedded mode's tick,
    /// tests and tools).
    async fn due(&self, before: i64, now: i64, limit: usize) -> Result<Vec<DueWatch>, StoreError> {
        let mut all = Vec::new();
        for part in 0..self.due_parts().max(1) {
            all.extend(self.due_page(part, before, now, None, limit).await?);
        }
        all.sort_by(|a, b| {
            (a.next_check_at, &a.key.tenant, &a.key.id).cmp(&(
                b.next_check_at,
                &b.key.tenant,
                &b.key.id,
            ))
        });
        all.truncate(limit);
        Ok(all)
    }

    /// Marks the watch queued for `job` (its due time and id), unless it is queued already, or
    /// (a scheduled job) no longer due at `job.due_at`. `Ok(false)` when it was not marked
    /// (or no longer exists): the caller must not send the job. A marked watch is not due
    /// again until its check is committed, or the mark runs out
    /// ([`QUEUED_MARK_TTL_SECS`], see [`WatchStore::recover_stranded`]).
    async fn mark_queued(&self, job: &CheckJob, now: i64) -> Result<bool, StoreError>;

    /// [`WatchStore::mark_queued`] for each of `jobs`: whether each one's watch was marked, in
    /// the order given. Adapters write the marks in as few round trips as they can (SQLite:
    /// one transaction, where a transaction per watch cost more than the unchanged checks
    /// that follow); the default keeps `concurrency` marks in flight, so two jobs of one call
    /// for the same watch may be tried in either order.
    async fn mark_queued_many(
        &self,
        jobs: &[CheckJob],
        now: i64,
        concurrency: usize,
    ) -> Result<Vec<bool>, StoreError> {
        use futures::future::BoxFuture;
        use futures::stream::{self, StreamExt, TryStreamExt};
        let marks: Vec<BoxFuture<'_, Result<bool, StoreError>>> =
            jobs.iter().map(|job| self.mark_queued(job, now)).collect();
        stream::iter(marks)
            .buffered(concurrency.max(1))
            .try_collect()
            .await
    }

    /// Makes due again the watches whose queue mark or lease ran out without a check (their
    /// job was lost: a dead-letter queue, a tick that died between marking and sending), in
    /// part `part` of `parts` of the store, so a caller can spread the sweep over its ticks.
    /// Returns how many. Adapters whose [`WatchStore::due_page`] already reads run-out marks
    /// and leases as due have nothing to do.
    async fn recover_stranded(&self, now: i64, part: u32, parts: u32) -> Result<usize, StoreError> {
        let _ = (now, part, parts);
        Ok(0)
    }

    /// Starts `job`'s check: the watch as it is now when `job` may run it, `None` when
    /// another checker holds the lease or the watch is gone. The default takes the lease
    /// ([`WatchStore::claim`]); an adapter may instead let a scheduled job whose queue mark
    /// names it run on that mark alone (no write: DynamoDB bills every one), the commit then
    /// being conditional on the mark.
    async fn begin_check(
        &self,
        job: &CheckJob,
        owner: &str,
        lease_until: i64,
        now: i64,
    ) -> Result<Option<Item>, StoreError> {
        let _ = job.lane;
        self.claim(&job.key(), owner, lease_until, now).await
    }

    /// Ends a check begun by [`WatchStore::begin_check`] without a result (a stale job, a
    /// paused watch, shutdown): the lease or the job's queue mark is given back.
    async fn end_check(&self, job: &CheckJob, owner: &str) -> Result<(), StoreError> {
        self.release(&job.key(), owner).await
    }

    /// Takes the check lease: succeeds when no unexpired lease is held by another owner.
    /// Returns the watch as it is now, or `None` when it is leased elsewhere or gone.
    async fn claim(
        &self,
        key: &Key,
        owner: &str,
        lease_until: i64,
        now: i64,
    ) -> Result<Option<Item>, StoreError>;

    /// Gives a lease back without a result (shutdown, or a job that turned out to be stale).
    async fn release(&self, key: &Key, owner: &str) -> Result<(), StoreError>;

    /// Commits a check atomically: snapshot (if any), document, schedule, lease (or the job's
    /// queue mark) released. Fails with [`StoreError::LeaseLost`] when neither `owner`'s lease
    /// nor the mark of the job `commit.job_id` is held any more.
    async fn commit_check(
        &self,
        key: &Key,
        owner: &str,
        commit: CheckCommit,
    ) -> Result<CommitOutcome, StoreError>;

    /// Snapshot timestamps of a watch, oldest first.
    async fn snapshots(&self, key: &Key) -> Result<Vec<i64>, StoreError>;

    async fn snapshot_text(&self, key: &Key, ts: i64) -> Result<Option<String>, StoreError>;

    /// Raw HTML kept for the newest two checks only.
    async fn snapshot_html(&self, key: &Key, ts: i64) -> Result<Option<String>, StoreError>;

    /// The screenshot stored with a snapshot (newest two only, browser checks only).
    async fn snapshot_screenshot(&self, key: &Key, ts: i64) -> Result<Option<Vec<u8>>, StoreError>;

    /// Removes every snapshot of a watch (and its kept text before filters).
    async fn delete_history(&self, key: &Key) -> Result<(), StoreError>;

    /// The text before filters that the last check kept ([`CheckCommit::text_before_filters`]).
    async fn text_before_filters(&self, key: &Key) -> Result<Option<String>, StoreError>;

    /// Adds one entry (at epoch second `ts`) to the tenant's notification log: one small
    /// write that reads nothing, however long the log is. Only the newest `keep` entries must
    /// stay readable; older ones go (SQLite drops them here, DynamoDB by TTL after
    /// [`LOG_RETENTION_SECS`]).
    async fn log_append(
        &self,
        tenant: &str,
        ts: i64,
        entry: serde_json::Value,
        keep: usize,
    ) -> Result<(), StoreError>;

    /// The newest `limit` log entries, newest first.
    async fn log_recent(
        &self,
        tenant: &str,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>, StoreError>;
}

/// How long DynamoDB keeps a notification log entry (its TTL): the log shows the newest
/// hundred, and a tenant that sends fewer in a month sees them all.
pub const LOG_RETENTION_SECS: i64 = 30 * 86_400;

/// Check jobs waiting to run. Embedded mode dequeues from it; in AWS mode Lambda's event source
/// does, but the adapter implements dequeue too (used by tests and tools).
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Enqueues jobs; a job for a watch that is already waiting is merged (the higher priority
    /// wins), so a burst of rechecks does not queue one watch many times.
    async fn enqueue(&self, jobs: Vec<CheckJob>) -> Result<(), StoreError>;

    /// Waits up to `wait` for the next job, manual rechecks first.
    async fn dequeue(&self, wait: std::time::Duration) -> Result<Option<CheckJob>, StoreError>;

    async fn depth(&self) -> Result<QueueDepth, StoreError>;
}

/// What only a queue held by this process can do: list its waiting jobs and drop chosen ones.
/// Embedded mode's queue has it; SQS has neither operation, so AWS mode has no
/// `QueueAdmin` (the checker skips jobs of paused or deleted watches, and the queue-status
/// endpoints report depths only).
#[async_trait]
pub trait QueueAdmin: Send + Sync + 'static {
    /// A tenant's waiting jobs in the order they will run (for the queue-status endpoints).
    async fn snapshot(&self, tenant: &str) -> Result<Vec<CheckJob>, StoreError>;

    /// How many of a tenant's jobs wait.
    async fn waiting(&self, tenant: &str) -> Result<usize, StoreError>;

    /// Drops a tenant's waiting jobs for these watches (deleted or paused watches).
    async fn remove(&self, tenant: &str, watch_ids: &[String]) -> Result<usize, StoreError>;
}

/// Notification deliveries waiting to be sent: durable (a restart or a crashed sender loses none)
/// and at-least-once. Embedded mode keeps them in the SQLite file; AWS mode uses the
/// `notifications` SQS queue, whose consumer is Lambda's event source (receive exists there for
/// tests and tools).
#[async_trait]
pub trait NotificationQueue: Send + Sync + 'static {
    async fn send(&self, jobs: Vec<NotificationJob>) -> Result<(), StoreError>;

    /// Up to `max` jobs that are visible now; each stays hidden for `lease` unless acknowledged
    /// or retried, then comes back (a sender that died mid-delivery loses nothing).
    async fn receive(
        &self,
        max: usize,
        lease: std::time::Duration,
    ) -> Result<Vec<ReceivedNotification>, StoreError>;

    /// Removes a delivered job.
    async fn ack(&self, receipt: &str) -> Result<(), StoreError>;

    /// Settles a job that failed for good (a permanent error or its last attempt): it leaves
    /// the queue and is kept, with `reason`, where an operator finds it (the SQLite outbox's
    /// dead-letter table, the SQS queue's dead-letter queue). The one way every adapter ends a
    /// final failure, so nothing is dropped silently and nothing is tried again.
    async fn dead_letter(&self, rec: &ReceivedNotification, reason: &str)
    -> Result<(), StoreError>;

    /// Jobs kept by `dead_letter` (approximate on SQS).
    async fn dead_letter_depth(&self) -> Result<usize, StoreError>;

    /// Makes a job visible again after `delay`: the retry backoff.
    async fn retry_after(
        &self,
        receipt: &str,
        delay: std::time::Duration,
    ) -> Result<(), StoreError>;

    /// Jobs waiting or in flight.
    async fn depth(&self) -> Result<usize, StoreError>;
}

/// Committed changes, in commit order per item.
pub trait ChangeFeed: Send + Sync + 'static {
    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent>;
}
