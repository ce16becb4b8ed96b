//! The embedded adapter: one SQLite file in WAL mode.
//!
//! One connection, owned by a thread of its own that runs the store's transactions one after
//! the other in the order they were asked for, so store calls never block the async runtime and
//! writes are serialised (SQLite has one writer anyway). Every method is all or nothing: calls
//! that wait together share one transaction, each under a savepoint of its own ([`run_group`]),
//! so a failed call is undone alone. Change events are published by that thread right after the
//! transaction commits, so subscribers never see a change that a crash could still undo, and
//! see changes in commit order. Snapshot
//! text and HTML are zstd-compressed; screenshots (JPEG) are stored as they come.
//!
//! This file opens the database (migrations, the connection, shared row helpers); each port
//! has its own module: `watch_store` (`WatchStore` and `ChangeFeed`), `notifications`
//! (`NotificationQueue`, the outbox table) and [`queue`] (`JobQueue` and `QueueAdmin`, a
//! table of the connection's temporary database).

use crate::text_zstd::{compress, decompress};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::broadcast;
use tracing::debug;

use crate::feed::BroadcastFeed;
use crate::types::*;
use crate::{ChangeFeed, NotificationQueue, WatchStore};

pub mod backup;
mod notifications;
pub mod queue;
mod watch_store;

/// Migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: items and snapshots.
    "CREATE TABLE items (
        tenant TEXT NOT NULL,
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        doc TEXT NOT NULL,
        next_check_at INTEGER,
        queued_at INTEGER,
        lease_owner TEXT,
        lease_until INTEGER,
        last_due_at INTEGER,
        last_job_id TEXT,
        PRIMARY KEY (tenant, kind, id)
    ) WITHOUT ROWID;
    CREATE INDEX items_due ON items (next_check_at) WHERE next_check_at IS NOT NULL;
    CREATE TABLE snapshots (
        tenant TEXT NOT NULL,
        watch_id TEXT NOT NULL,
        ts INTEGER NOT NULL,
        text BLOB NOT NULL,
        html BLOB,
        PRIMARY KEY (tenant, watch_id, ts)
    ) WITHOUT ROWID;",
    // 2: the text before filters, for added/removed/replaced-only change detection.
    "CREATE TABLE watch_text (
        tenant TEXT NOT NULL,
        watch_id TEXT NOT NULL,
        text BLOB NOT NULL,
        PRIMARY KEY (tenant, watch_id)
    ) WITHOUT ROWID;",
    // 3: the history summary lives on the item, written with the snapshots.
    "ALTER TABLE items ADD COLUMN history_n INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE items ADD COLUMN history_newest INTEGER;
    UPDATE items SET
        history_n = (SELECT COUNT(*) FROM snapshots s WHERE s.tenant = items.tenant AND s.watch_id = items.id),
        history_newest = (SELECT MAX(ts) FROM snapshots s WHERE s.tenant = items.tenant AND s.watch_id = items.id)
    WHERE kind = 'W';",
    // 4: the notification outbox (durable across restarts, like the SQS queue of AWS mode).
    "CREATE TABLE notification_queue (
        id TEXT PRIMARY KEY,
        job TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 0,
        visible_at INTEGER NOT NULL
    );
    CREATE INDEX notification_queue_visible ON notification_queue (visible_at);",
    // 5: checks that were running when the process died, per watch, until one commits.
    "CREATE TABLE interrupted_checks (
        tenant TEXT NOT NULL,
        watch_id TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (tenant, watch_id)
    ) WITHOUT ROWID;",
    // 6: notifications that failed for good, with why (the outbox's dead-letter table).
    "CREATE TABLE notification_dead_letters (
        id TEXT PRIMARY KEY,
        job TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        reason TEXT NOT NULL,
        failed_at INTEGER NOT NULL
    );",
    // 7: the notification log, an entry per row (appending reads nothing).
    "CREATE TABLE notification_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT NOT NULL,
        ts INTEGER NOT NULL,
        entry TEXT NOT NULL
    );
    CREATE INDEX notification_log_tenant ON notification_log (tenant, seq);",
    // 8: items, snapshots and texts in rowid tables, their keys in unique indexes. A WITHOUT
    // ROWID table keeps whole rows in its b-tree's interior pages too, so rows of more than a
    // tenth of a page (a watch document is ~3 KB, a snapshot more) spill into overflow pages
    // that every seek on the key had to read and copy: the point reads of a check cost more
    // than their transactions. Same columns, same order of rows by key.
    "CREATE TABLE items_r (
        tenant TEXT NOT NULL,
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        doc TEXT NOT NULL,
        next_check_at INTEGER,
        queued_at INTEGER,
        lease_owner TEXT,
        lease_until INTEGER,
        last_due_at INTEGER,
        last_job_id TEXT,
        history_n INTEGER NOT NULL DEFAULT 0,
        history_newest INTEGER
    );
    INSERT INTO items_r (tenant, kind, id, version, doc, next_check_at, queued_at, lease_owner,
        lease_until, last_due_at, last_job_id, history_n, history_newest)
    SELECT tenant, kind, id, version, doc, next_check_at, queued_at, lease_owner, lease_until,
        last_due_at, last_job_id, history_n, history_newest FROM items ORDER BY tenant, kind, id;
    DROP TABLE items;
    ALTER TABLE items_r RENAME TO items;
    CREATE UNIQUE INDEX items_key ON items (tenant, kind, id);
    CREATE INDEX items_due ON items (next_check_at) WHERE next_check_at IS NOT NULL;
    CREATE TABLE snapshots_r (
        tenant TEXT NOT NULL,
        watch_id TEXT NOT NULL,
        ts INTEGER NOT NULL,
        text BLOB NOT NULL,
        html BLOB
    );
    INSERT INTO snapshots_r (tenant, watch_id, ts, text, html)
    SELECT tenant, watch_id, ts, text, html FROM snapshots ORDER BY tenant, watch_id, ts;
    DROP TABLE snapshots;
    ALTER TABLE snapshots_r RENAME TO snapshots;
    CREATE UNIQUE INDEX snapshots_key ON snapshots (tenant, watch_id, ts);
    CREATE TABLE watch_text_r (
        tenant TEXT NOT NULL,
        watch_id TEXT NOT NULL,
        text BLOB NOT NULL
    );
    INSERT INTO watch_text_r (tenant, watch_id, text)
    SELECT tenant, watch_id, text FROM watch_text ORDER BY tenant, watch_id;
    DROP TABLE watch_text;
    ALTER TABLE watch_text_r RENAME TO watch_text;
    CREATE UNIQUE INDEX watch_text_key ON watch_text (tenant, watch_id);",
    // 9: browser screenshots, one per snapshot for the newest two (a table of their own: a
    // blob in the snapshot row would be read with every history listing's page).
    "CREATE TABLE screenshots (
        tenant TEXT NOT NULL,
        watch_id TEXT NOT NULL,
        ts INTEGER NOT NULL,
        image BLOB NOT NULL
    );
    CREATE UNIQUE INDEX screenshots_key ON screenshots (tenant, watch_id, ts);",
];

/// `last_error` of a watch paused because its checks kept dying with the process.
pub const INTERRUPTED_ERROR: &str = "Paused: checks of this watch were interrupted by the server stopping unexpectedly several times in a row. Check its filters, then unpause it.";

/// Raw HTML is kept for this many newest snapshots (upstream keeps two).
const HTML_KEPT: i64 = 2;

/// The embedded store. Cheap to clone; clones share the connection and the feed.
#[derive(Clone)]
pub struct SqliteStore {
    /// The connection's thread takes its work from here; it ends (closing the connection)
    /// when the last clone of the store is dropped.
    jobs: mpsc::Sender<DbJob>,
    feed: BroadcastFeed,
    path: PathBuf,
    /// See [`WatchStore::docs_generation`]: bumped on the connection's thread after a
    /// commit that wrote settings or tags, before the caller hears back, and when another
    /// connection has written the file since this one's last transaction.
    generation: Arc<AtomicU64>,
    /// The job queue's counts and wake-ups (see [`queue`]).
    queue: Arc<queue::Shared>,
}

/// A call for the connection's thread to run (see [`SqliteStore::run`]).
type DbJob = Box<dyn Call>;

/// One store call on the connection's thread: its work runs inside a group's transaction,
/// under a savepoint of its own, and it replies once that transaction's fate is known.
trait Call: Send {
    /// Runs the call's work; `true` when it succeeded (its savepoint is then kept).
    fn run(&mut self, tx: &Tx<'_>) -> bool;
    /// Replies to the caller: the call's own result if it failed, otherwise the group's.
    fn finish(self: Box<Self>, committed: Result<(), StoreError>);
}

/// A call of [`SqliteStore::run`]: `f` until it ran, then what it returned.
struct Job<T, F> {
    f: Option<F>,
    out: Option<Result<(T, Vec<ChangeEvent>), StoreError>>,
    done: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
    feed: BroadcastFeed,
    generation: Arc<AtomicU64>,
}

impl<T, F> Call for Job<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Tx<'_>) -> Result<(T, Vec<ChangeEvent>), StoreError> + Send + 'static,
{
    fn run(&mut self, tx: &Tx<'_>) -> bool {
        let Some(f) = self.f.take() else {
            return false;
        };
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(tx)))
            .unwrap_or_else(|_| Err(StoreError::backend("store task failed: it panicked")));
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn finish(self: Box<Self>, committed: Result<(), StoreError>) {
        let out = match self.out {
            Some(Err(e)) => Err(e),
            Some(Ok(done)) => committed.map(|()| done),
            None => Err(committed
                .err()
                .unwrap_or_else(|| StoreError::backend("store task failed: the call did not run"))),
        };
        let out = out.map(|(value, events)| {
            if events
                .iter()
                .any(|ev| matches!(ev.key.kind, Kind::Settings | Kind::Tag))
            {
                self.generation.fetch_add(1, Ordering::SeqCst);
            }
            for ev in events {
                self.feed.publish(ev);
            }
            value
        });
        // The caller may have stopped waiting (its future was dropped): nothing to do.
        let _ = self.done.send(out);
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

fn backend<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::backend_source(e)
}

/// `Transaction::execute` through the connection's statement cache: a check runs the same few
/// statements several times, and parsing them again each time was a tenth of its CPU.
fn exec(tx: &Connection, sql: &str, p: impl rusqlite::Params) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql)?.execute(p)
}

/// `Transaction::query_row` through the statement cache (see [`exec`]).
fn query_row<T>(
    tx: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    tx.prepare_cached(sql)?.query_row(p, f)
}

/// Plans that do not depend on the values bound. SQLite (3.54) marks a parameter compared with
/// `=` or used as `LIMIT` so that a new value can get a better plan, and rusqlite clears a
/// statement's bindings when it goes back to the cache, which expires such a statement: every
/// cached statement was parsed and planned again on its next use (a quarter of the connection
/// thread's CPU in a changed-pages round). The store's queries are key lookups and index scans
/// whose plan is the same for any value.
fn keep_plans(conn: &Connection) -> Result<(), StoreError> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map_err(backend)?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) `<dir>/changewatch.db` and migrates it.
    pub fn open_dir(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(backend)?;
        Self::open(&dir.join("changewatch.db"))
    }

    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path).map_err(backend)?;
        // WAL: readers never block the writer; NORMAL sync is durable across a process crash
        // (kill -9), which is the failure embedded mode must survive.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        // 1 MB of page cache instead of SQLite's 2: the largest part of the server's heap
        // at its peak (heaptrack, bench/README.md eleventh session). A page it no longer
        // holds is one read from the OS's cache, where the file's pages stay.
        conn.pragma_update(None, "cache_size", -1024)
            .map_err(backend)?;
        // The temporary database (the job queue's table, large sorts) in a file with a page
        // cache of 256 KB, where the bundled SQLite keeps it in memory: a queue holding every
        // watch after a `recheck_all` would otherwise grow the heap with the watch count.
        conn.pragma_update(None, "temp_store", "FILE")
            .map_err(backend)?;
        conn.pragma_update(Some("temp"), "cache_size", -256)
            .map_err(backend)?;
        keep_plans(&conn)?;
        migrate(&mut conn)?;
        queue::create(&conn)?;
        // Room for every statement the store runs (about 30), so none evicts another.
        conn.set_prepared_statement_cache_capacity(64);
        let generation = Arc::new(AtomicU64::new(0));
        let mut db = Db {
            conn,
            docs: RefCell::new(DocCache::default()),
            data_version: None,
            generation: generation.clone(),
        };
        let (jobs, queue) = mpsc::channel::<DbJob>();
        // One long-lived thread instead of a blocking-pool task per call behind a mutex: the
        // pool's hand-offs (a thread woken per call, the others waking to wait on the mutex)
        // cost as much CPU as an unchanged check's queries, and a busy thread takes the next
        // call without going to sleep.
        std::thread::Builder::new()
            .name("sqlite-store".into())
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    run_group(&mut db, first, &queue);
                }
            })
            .map_err(backend)?;
        Ok(SqliteStore {
            jobs,
            feed: BroadcastFeed::new(),
            path: path.to_path_buf(),
            generation,
            queue: Arc::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Clears every `queued_at` mark. The embedded queue does not outlive its process, so after
    /// a restart no job is waiting for a watch marked queued; without this such watches would never run again.
    pub async fn clear_queued_marks(&self) -> Result<usize, StoreError> {
        self.run(|tx| {
            let n = tx
                .execute(
                    "UPDATE items SET queued_at = NULL WHERE queued_at IS NOT NULL",
                    [],
                )
                .map_err(backend)?;
            Ok((n, Vec::new()))
        })
        .await
    }

    /// Clears every check lease. Only for a process that owns the file alone (embedded mode at
    /// start-up or after cutting checks off at shutdown): no lease can be live then, and the
    /// interrupted checks become due at once instead of after their leases expire.
    pub async fn clear_leases(&self) -> Result<usize, StoreError> {
        self.run(|tx| {
            let n = tx
                .execute(
                    "UPDATE items SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL",
                    [],
                )
                .map_err(backend)?;
            Ok((n, Vec::new()))
        })
        .await
    }

    /// Start-up recovery after a crash: every check that held a lease was running when the
    /// process died. Each such watch's interruption count grows; a watch interrupted `limit`
    /// times in a row (no commit in between) is paused with [`INTERRUPTED_ERROR`] instead of
    /// being checked again, so a check that kills the process cannot do so on every start.
    /// Then every lease is cleared. Returns (interrupted, paused).
    pub async fn recover_interrupted(&self, limit: u32) -> Result<(usize, Vec<Key>), StoreError> {
        self.run(move |tx| {
            let leased: Vec<(String, String, String)> = {
                let mut stmt = tx
                    .prepare("SELECT tenant, kind, id FROM items WHERE lease_owner IS NOT NULL")
                    .map_err(backend)?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .map_err(backend)?;
                rows.collect::<Result<_, _>>().map_err(backend)?
            };
            let mut paused = Vec::new();
            let mut events = Vec::new();
            for (tenant, kind, id) in &leased {
                if kind != Kind::Watch.as_str() {
                    continue;
                }
                let count: i64 = query_row(tx,
                        "INSERT INTO interrupted_checks (tenant, watch_id, count) VALUES (?1, ?2, 1)
                         ON CONFLICT (tenant, watch_id) DO UPDATE SET count = count + 1
                         RETURNING count",
                        params![tenant, id],
                        |r| r.get(0),
                    )
                    .map_err(backend)?;
                if count < i64::from(limit.max(1)) {
                    continue;
                }
                let key = Key::watch(tenant, id);
                let Some(old) = load(tx, &key)? else { continue };
                let mut new = old.clone();
                let mut doc = old.doc.to_value()?;
                if let Some(obj) = doc.as_object_mut() {
                    obj.insert("paused".into(), serde_json::Value::Bool(true));
                    obj.insert(
                        "last_error".into(),
                        serde_json::Value::String(INTERRUPTED_ERROR.into()),
                    );
                }
                new.doc = Doc::new(doc);
                new.version += 1;
                let mut schedule = new.schedule.clone().unwrap_or_default();
                schedule.next_check_at = None;
                schedule.lease_owner = None;
                schedule.lease_until = None;
                new.schedule = Some(schedule);
                store_item(tx, &new)?;
                // Unpausing gives the watch a fresh count.
                exec(tx,
                    "DELETE FROM interrupted_checks WHERE tenant = ?1 AND watch_id = ?2",
                    params![tenant, id],
                )
                .map_err(backend)?;
                events.extend(event(Some(old), Some(new)));
                paused.push(key);
            }
            exec(tx,
                "UPDATE items SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL",
                [],
            )
            .map_err(backend)?;
            Ok(((leased.len(), paused), events))
        })
        .await
    }

    /// Runs `f` in one transaction on the connection's thread, which publishes its events
    /// once it has committed. A panic in `f` rolls its transaction back and is returned as an
    /// error; the thread goes on with the next call.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<(T, Vec<ChangeEvent>), StoreError> + Send + 'static,
    {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: DbJob = Box::new(Job {
            f: Some(f),
            out: None,
            done,
            feed: self.feed.clone(),
            generation: self.generation.clone(),
        });
        self.jobs.send(job).map_err(|_| {
            StoreError::backend("store task failed: the connection's thread is gone")
        })?;
        result.await.map_err(|_| {
            StoreError::backend("store task failed: no reply from the connection's thread")
        })?
    }
}

/// At most this many calls share a transaction ([`run_group`]).
const GROUP_CALLS: usize = 32;

/// No call joins a group this long after it began, so a call's reply waits for at most this
/// much of the work queued behind it. The crate's unit tests allow more, so that a loaded
/// machine pausing the thread does not split the group a test builds.
const GROUP_TIME: std::time::Duration = if cfg!(test) {
    std::time::Duration::from_secs(10)
} else {
    std::time::Duration::from_millis(2)
};

/// Runs `first`, and the calls waiting behind it, in one transaction, each under a savepoint
/// of its own, then commits once and replies to all of them. A commit's fixed cost (the WAL
/// frames of pages that several calls write, its locks, its share of checkpoints) was most
/// of the connection's work in a round of unchanged checks, where 10 workers' calls arrive
/// together. A call that fails rolls back to its savepoint and alone gets its error; a failed
/// commit fails the group. The group closes when no call is waiting, after [`GROUP_CALLS`]
/// calls, or [`GROUP_TIME`] after it began, so a lone call commits at once.
fn run_group(db: &mut Db, first: DbJob, waiting: &mpsc::Receiver<DbJob>) {
    let began = std::time::Instant::now();
    let mut calls: Vec<DbJob> = Vec::new();
    let mut next = Some(first);
    let result = (|| {
        let tx = db.conn.transaction().map_err(backend)?;
        // Another connection (another process on the same file) wrote since this one's last
        // transaction: what it wrote is unknown, so kept settings and tags are stale.
        let seen: i64 = query_row(&tx, "PRAGMA data_version", [], |r| r.get(0)).map_err(backend)?;
        if db.data_version.is_some_and(|v| v != seen) {
            db.generation.fetch_add(1, Ordering::SeqCst);
        }
        db.data_version = Some(seen);
        // What the kept calls read or wrote, for the document cache once they commit.
        let mut read = Vec::new();
        let mut deleted = Vec::new();
        while let Some(call) = next.take() {
            calls.push(call);
            exec(&tx, "SAVEPOINT call", []).map_err(backend)?;
            let scope = Tx {
                tx: &tx,
                docs: &db.docs,
                read: RefCell::new(Vec::new()),
                deleted: RefCell::new(Vec::new()),
            };
            let ok = calls.last_mut().is_some_and(|call| call.run(&scope));
            if ok {
                read.push(scope.read.into_inner());
                deleted.push(scope.deleted.into_inner());
            } else {
                exec(&tx, "ROLLBACK TO call", []).map_err(backend)?;
            }
            exec(&tx, "RELEASE call", []).map_err(backend)?;
            // An error SQLite answers by rolling the whole transaction back (a full disk,
            // an I/O error) leaves nothing for the calls kept so far to commit.
            if tx.is_autocommit() {
                return Err(StoreError::backend(
                    "store transaction failed: SQLite rolled it back",
                ));
            }
            if calls.len() < GROUP_CALLS && began.elapsed() < GROUP_TIME {
                next = waiting.try_recv().ok();
            }
        }
        tx.commit().map_err(backend)?;
        // Only what committed calls read or wrote: a rolled-back write's version may be
        // written again later with another document. A key deleted and created again
        // starts over at version 1.
        let mut docs = db.docs.borrow_mut();
        for (read, deleted) in read.into_iter().zip(deleted) {
            for (key, version, doc) in read {
                docs.insert(key, version, doc);
            }
            for key in deleted {
                docs.remove(&key);
            }
        }
        Ok(())
    })();
    // A transaction that did not begin still owes its first call a reply.
    calls.extend(next);
    match result {
        Ok(()) => calls.into_iter().for_each(|c| c.finish(Ok(()))),
        Err(e) => {
            let message = e.to_string();
            for call in calls {
                call.finish(Err(StoreError::backend(message.clone())));
            }
        }
    }
}

/// The connection and what outlives one transaction on it.
struct Db {
    conn: Connection,
    docs: RefCell<DocCache>,
    /// `PRAGMA data_version` at the last transaction: it moves only for other connections'
    /// commits.
    data_version: Option<i64>,
    generation: Arc<AtomicU64>,
}

/// One transaction, with the parsed-document cache it may read and the documents it saw
/// (added to the cache once it commits).
pub(crate) struct Tx<'a> {
    tx: &'a Connection,
    docs: &'a RefCell<DocCache>,
    read: RefCell<Vec<(Key, u64, Doc)>>,
    deleted: RefCell<Vec<Key>>,
}

impl<'a> std::ops::Deref for Tx<'a> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.tx
    }
}

impl Tx<'_> {
    fn cached(&self, key: &Key, version: u64) -> Option<Doc> {
        self.docs.borrow().get(key, version)
    }

    fn remember(&self, item: &Item) {
        self.read
            .borrow_mut()
            .push((item.key.clone(), item.version, item.doc.clone()));
    }

    fn forget(&self, key: &Key) {
        self.deleted.borrow_mut().push(key.clone());
    }
}

/// Documents of the items read or written last, by key and version (each parsed at most once,
/// see [`Doc`]), so the reads of one check share one. A check reads its
/// watch three times in a few milliseconds (queue mark, lease, commit) and the settings once:
/// parsing each document again, and freeing it, was a fifth of an unchanged check's CPU. A
/// document's version grows with every write of it, so a (key, version) pair names one
/// document for good. A few dozen entries: the checks in flight, not the whole table.
#[derive(Default)]
pub(crate) struct DocCache {
    entries: std::collections::VecDeque<(Key, u64, Doc)>,
}

impl DocCache {
    const CAPACITY: usize = 64;

    fn get(&self, key: &Key, version: u64) -> Option<Doc> {
        self.entries
            .iter()
            .find(|(k, v, _)| *v == version && k == key)
            .map(|(_, _, doc)| doc.clone())
    }

    fn remove(&mut self, key: &Key) {
        self.entries.retain(|(k, _, _)| k != key);
    }

    fn insert(&mut self, key: Key, version: u64, doc: Doc) {
        self.remove(&key);
        if self.entries.len() >= Self::CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back((key, version, doc));
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let applied: usize = conn
        .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
        .map_err(backend)?
        .try_into()
        .map_err(|_| StoreError::Corrupt("negative schema version".into()))?;
    if applied > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "database schema version {applied} is newer than this changewatch ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction().map_err(backend)?;
        tx.execute_batch(sql).map_err(backend)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        debug!(version = i + 1, "applied migration");
    }
    Ok(())
}

const ITEM_COLUMNS: &str = "tenant, kind, id, version, doc, next_check_at, queued_at, lease_owner, lease_until, last_due_at, last_job_id, history_n, history_newest";

type RawItem = (Key, u64, String, Schedule, HistoryMeta);

fn row_to_item(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawItem> {
    let kind: String = row.get(1)?;
    let key = Key {
        tenant: row.get(0)?,
        kind: Kind::parse(&kind).unwrap_or(Kind::Stats),
        id: row.get(2)?,
    };
    let version: i64 = row.get(3)?;
    Ok((
        key,
        version as u64,
        row.get(4)?,
        Schedule {
            next_check_at: row.get(5)?,
            queued_at: row.get(6)?,
            lease_owner: row.get(7)?,
            lease_until: row.get(8)?,
            last_due_at: row.get(9)?,
            last_job_id: row.get(10)?,
        },
        HistoryMeta {
            count: usize::try_from(row.get::<_, i64>(11)?).unwrap_or(0),
            newest: row.get(12)?,
        },
    ))
}

fn decode_item(raw: RawItem) -> Result<Item, StoreError> {
    decode_item_with(raw, None)
}

/// [`decode_item`] with the document the cache had for this version, if any (it may have been
/// parsed already). The stored text is not parsed here: see [`Doc`].
fn decode_item_with(
    (key, version, doc, schedule, history): RawItem,
    cached: Option<Doc>,
) -> Result<Item, StoreError> {
    let doc = cached.unwrap_or_else(|| Doc::from_json(doc));
    let schedule = (key.kind == Kind::Watch).then_some(schedule);
    Ok(Item {
        key,
        version,
        doc,
        schedule,
        history,
    })
}

fn load(tx: &Tx<'_>, key: &Key) -> Result<Option<Item>, StoreError> {
    let raw = query_row(
        tx,
        &format!("SELECT {ITEM_COLUMNS} FROM items WHERE tenant = ?1 AND kind = ?2 AND id = ?3"),
        params![key.tenant, key.kind.as_str(), key.id],
        row_to_item,
    )
    .optional()
    .map_err(backend)?;
    let Some(raw) = raw else {
        return Ok(None);
    };
    let parsed = tx.cached(key, raw.1);
    let item = decode_item_with(raw, parsed)?;
    tx.remember(&item);
    Ok(Some(item))
}

fn store_item(tx: &Tx<'_>, item: &Item) -> Result<(), StoreError> {
    tx.remember(item);
    let doc = item.doc.to_json()?;
    let s = item.schedule.clone().unwrap_or_default();
    // An upsert, not `INSERT OR REPLACE`: a replace deletes the row and inserts it again
    // under a new rowid at the table's end, rewriting the old page, the last page, both
    // indexes and the b-tree above them (11 WAL frames a commit, where the update in place
    // writes 3: the row's page and the due index's entries).
    exec(
        tx,
        "INSERT INTO items (tenant, kind, id, version, doc, next_check_at, queued_at, lease_owner,
            lease_until, last_due_at, last_job_id, history_n, history_newest)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (tenant, kind, id) DO UPDATE SET version = excluded.version,
            doc = excluded.doc, next_check_at = excluded.next_check_at,
            queued_at = excluded.queued_at, lease_owner = excluded.lease_owner,
            lease_until = excluded.lease_until, last_due_at = excluded.last_due_at,
            last_job_id = excluded.last_job_id, history_n = excluded.history_n,
            history_newest = excluded.history_newest",
        params![
            item.key.tenant,
            item.key.kind.as_str(),
            item.key.id,
            item.version as i64,
            doc,
            s.next_check_at,
            s.queued_at,
            s.lease_owner,
            s.lease_until,
            s.last_due_at,
            s.last_job_id,
            item.history.count as i64,
            item.history.newest
        ],
    )
    .map_err(backend)?;
    Ok(())
}

fn check_expect(key: &Key, current: Option<&Item>, expect: Expect) -> Result<(), StoreError> {
    let ok = match (expect, current) {
        (Expect::Any, _) => true,
        (Expect::Absent, None) => true,
        (Expect::Exists, Some(_)) => true,
        (Expect::Version(v), Some(item)) => item.version == v,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::Conflict(key.clone()))
    }
}

/// Snapshots, screenshots and kept text of a watch.
fn delete_watch_data(tx: &Connection, key: &Key) -> Result<(), StoreError> {
    for table in ["snapshots", "screenshots", "watch_text"] {
        exec(
            tx,
            &format!("DELETE FROM {table} WHERE tenant = ?1 AND watch_id = ?2"),
            params![key.tenant, key.id],
        )
        .map_err(backend)?;
    }
    Ok(())
}

fn history_meta(tx: &Connection, key: &Key) -> Result<HistoryMeta, StoreError> {
    let (n, newest): (i64, Option<i64>) = query_row(
        tx,
        "SELECT COUNT(*), MAX(ts) FROM snapshots WHERE tenant = ?1 AND watch_id = ?2",
        params![key.tenant, key.id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .map_err(backend)?;
    Ok(HistoryMeta {
        count: usize::try_from(n).unwrap_or(0),
        newest,
    })
}

/// Changes only the schedule of a watch; the version is left alone because the document did not
/// change (an API edit racing a queue mark must not conflict).
fn update_schedule(
    tx: &Tx<'_>,
    key: &Key,
    f: impl FnOnce(&mut Schedule) -> bool,
) -> Result<Option<(Item, Item)>, StoreError> {
    let Some(old) = load(tx, key)? else {
        return Ok(None);
    };
    let mut new = old.clone();
    let schedule = new.schedule.get_or_insert_with(Schedule::default);
    if !f(schedule) {
        return Ok(None);
    }
    // Only the schedule's columns: the document is the same one, neither serialized nor
    // written again.
    let s = &*schedule;
    exec(
        tx,
        "UPDATE items SET next_check_at = ?4, queued_at = ?5, lease_owner = ?6, lease_until = ?7,
         last_due_at = ?8, last_job_id = ?9 WHERE tenant = ?1 AND kind = ?2 AND id = ?3",
        params![
            key.tenant,
            key.kind.as_str(),
            key.id,
            s.next_check_at,
            s.queued_at,
            s.lease_owner,
            s.lease_until,
            s.last_due_at,
            s.last_job_id
        ],
    )
    .map_err(backend)?;
    Ok(Some((old, new)))
}

fn event(old: Option<Item>, new: Option<Item>) -> Vec<ChangeEvent> {
    let key = match (&old, &new) {
        (_, Some(n)) => n.key.clone(),
        (Some(o), None) => o.key.clone(),
        (None, None) => return Vec::new(),
    };
    vec![ChangeEvent { key, old, new }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::StatementStatus;

    /// How many times a cached `WHERE … = ? LIMIT ?` statement was planned again over five
    /// uses with different values.
    fn reprepares(conn: &Connection) -> i32 {
        conn.execute_batch("CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER)")
            .unwrap();
        for i in 0..5 {
            let mut stmt = conn
                .prepare_cached("SELECT count(*) FROM t WHERE id = ?1 AND n = ?2 LIMIT ?3")
                .unwrap();
            let _: i64 = stmt
                .query_row(rusqlite::params![format!("w{i}"), i, i + 1], |r| r.get(0))
                .unwrap();
            if i == 4 {
                return stmt.get_status(StatementStatus::RePrepare);
            }
        }
        unreachable!()
    }

    /// Calls that wait behind a busy connection share one transaction: the last of them does
    /// not yet see the first one's row from another connection (it is not committed), and
    /// afterwards both are there. A call that fails (an error, a panic) in the group is undone
    /// alone and gets its own error; the others commit.
    #[tokio::test]
    async fn waiting_calls_commit_together_and_a_failed_one_is_undone_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_dir(dir.path()).unwrap();
        store
            .run(|tx| {
                tx.execute_batch("CREATE TABLE t (id TEXT PRIMARY KEY)")
                    .map_err(backend)?;
                Ok(((), Vec::new()))
            })
            .await
            .unwrap();
        let insert = |tx: &Tx<'_>, id: &str| {
            exec(tx, "INSERT INTO t (id) VALUES (?1)", [id]).map_err(backend)
        };
        let (release, held) = std::sync::mpsc::channel::<()>();
        let mut calls = vec![tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .run(move |_| {
                        let _ = held.recv();
                        Ok((0, Vec::new()))
                    })
                    .await
            }
        })];
        let reader = Connection::open(dir.path().join("changewatch.db")).unwrap();
        type Body =
            Box<dyn FnOnce(&Tx<'_>) -> Result<(usize, Vec<ChangeEvent>), StoreError> + Send>;
        let bodies: Vec<Body> = vec![
            Box::new(move |tx| Ok((insert(tx, "a")?, Vec::new()))),
            Box::new(move |tx| {
                insert(tx, "b")?;
                Err(StoreError::backend("b went wrong"))
            }),
            Box::new(move |tx| {
                insert(tx, "p")?;
                panic!("p went wrong")
            }),
            Box::new(move |tx| {
                insert(tx, "c")?;
                let seen: i64 = reader
                    .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                    .map_err(backend)?;
                Ok((seen as usize, Vec::new()))
            }),
        ];
        for body in bodies {
            let store = store.clone();
            calls.push(tokio::spawn(async move { store.run(body).await }));
            // Each call reaches the connection's queue before the next.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        release.send(()).unwrap();
        let mut out = Vec::new();
        for call in calls {
            out.push(call.await.unwrap().map_err(|e| e.to_string()));
        }
        assert_eq!(out[0], Ok(0));
        assert_eq!(out[1], Ok(1));
        assert!(out[2].as_ref().is_err_and(|e| e.contains("b went wrong")));
        assert!(out[3].as_ref().is_err_and(|e| e.contains("panicked")));
        assert_eq!(
            out[4],
            Ok(0),
            "the group's first row was committed before its last call"
        );
        let ids: Vec<String> = store
            .run(|tx| {
                let mut stmt = tx
                    .prepare("SELECT id FROM t ORDER BY id")
                    .map_err(backend)?;
                let ids = stmt
                    .query_map([], |r| r.get(0))
                    .map_err(backend)?
                    .collect::<Result<_, _>>()
                    .map_err(backend)?;
                Ok((ids, Vec::new()))
            })
            .await
            .unwrap();
        assert_eq!(ids, ["a", "c"]);
    }

    /// Writing a document again updates its row in place: the commit adds the row's page and
    /// the due index's to the WAL, not a deleted row, a new one at the table's end and both
    /// indexes' pages (`INSERT OR REPLACE` wrote 7 here).
    #[tokio::test]
    async fn a_document_written_again_stays_in_its_page() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_dir(dir.path()).unwrap();
        let doc = |n: u32| serde_json::json!({"url": "http://x", "pad": "p".repeat(2_500), "n": n});
        for i in 0..100 {
            store
                .put(
                    &Key::watch(DEFAULT_TENANT, &format!("w{i}")),
                    doc(0),
                    None,
                    Expect::Any,
                )
                .await
                .unwrap();
        }
        // Another connection: a checkpoint does not run inside a transaction. Its second
        // column is the number of frames in the WAL.
        let other = Connection::open(dir.path().join("changewatch.db")).unwrap();
        let checkpoint = |mode: &str| {
            other
                .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
                    r.get::<_, i64>(1)
                })
                .unwrap()
        };
        assert_eq!(checkpoint("TRUNCATE"), 0);
        let schedule = Schedule {
            next_check_at: Some(1_000),
            ..Schedule::default()
        };
        store
            .put(
                &Key::watch(DEFAULT_TENANT, "w40"),
                doc(1),
                Some(schedule),
                Expect::Any,
            )
            .await
            .unwrap();
        let frames = checkpoint("PASSIVE");
        assert!((1..=3).contains(&frames), "{frames} pages written");
    }

    /// The store's connection plans a cached statement once. Without `keep_plans`, the
    /// bundled SQLite plans it again on every use after the first (the control).
    #[test]
    fn cached_statements_are_not_planned_again() {
        let conn = Connection::open_in_memory().unwrap();
        keep_plans(&conn).unwrap();
        assert_eq!(reprepares(&conn), 0);

        let control = Connection::open_in_memory().unwrap();
        assert!(
            reprepares(&control) >= 4,
            "SQLite no longer replans: keep_plans may go"
        );
    }
}

#[cfg(test)]
mod generation_tests {
    use super::*;
    use serde_json::json;

    fn key(kind: Kind, id: &str) -> Key {
        Key {
            tenant: DEFAULT_TENANT.to_string(),
            kind,
            id: id.to_string(),
        }
    }

    async fn put(store: &SqliteStore, kind: Kind, id: &str, doc: serde_json::Value) {
        store
            .put(&key(kind, id), doc, None, Expect::Any)
            .await
            .unwrap();
    }

    /// The number moves as soon as a settings or tag write returns (no waiting), not for
    /// watch writes, and when another connection writes the file (seen at this store's next
    /// transaction).
    #[tokio::test]
    async fn the_docs_generation_moves_with_settings_and_tag_writes_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_dir(dir.path()).unwrap();
        let g = || store.docs_generation().unwrap();
        let g0 = g();
        put(&store, Kind::Watch, "w", json!({"url": "http://x"})).await;
        assert_eq!(g(), g0);
        put(&store, Kind::Settings, "settings", json!({"a": 1})).await;
        let g1 = g();
        assert!(g1 > g0);
        put(&store, Kind::Tag, "t", json!({"title": "x"})).await;
        let g2 = g();
        assert!(g2 > g1);
        assert!(
            store
                .delete(&key(Kind::Tag, "t"), Expect::Any)
                .await
                .unwrap()
        );
        let g3 = g();
        assert!(g3 > g2);
        store.get(&key(Kind::Watch, "w")).await.unwrap();
        assert_eq!(g(), g3);

        let other = SqliteStore::open_dir(dir.path()).unwrap();
        put(&other, Kind::Watch, "w2", json!({"url": "http://y"})).await;
        store.get(&key(Kind::Watch, "w")).await.unwrap();
        assert!(g() > g3, "another connection's write is not seen");
    }
}
