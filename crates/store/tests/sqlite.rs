//! The SQLite adapter and the embedded queue against the port conformance suites, plus what
//! only the embedded adapter promises: data survives reopening the file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use changewatch_store::conformance;
use changewatch_store::queue::MemoryQueue;
use changewatch_store::sqlite::SqliteStore;
use changewatch_store::{CheckJob, Expect, Key, Lane, Schedule, WatchStore};
use serde_json::json;

fn fresh() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_dir(dir.path()).unwrap();
    (dir, store)
}

#[tokio::test]
async fn documents() {
    let (_d, s) = fresh();
    conformance::documents(&s).await;
}

#[tokio::test]
async fn scheduling() {
    let (_d, s) = fresh();
    conformance::scheduling(&s).await;
}

#[tokio::test]
async fn due_pages() {
    let (_d, s) = fresh();
    conformance::due_pages(&s).await;
}

#[tokio::test]
async fn notification_log() {
    let (_d, s) = fresh();
    conformance::notification_log(&s).await;
}

#[tokio::test]
async fn snapshots() {
    let (_d, s) = fresh();
    conformance::snapshots(&s).await;
}

#[tokio::test]
async fn change_feed() {
    let (_d, s) = fresh();
    conformance::change_feed(&s, &s).await;
}

#[tokio::test]
async fn notification_queue() {
    let (_d, s) = fresh();
    conformance::notification_queue(&s).await;
}

#[tokio::test]
async fn memory_queue() {
    conformance::job_queue(&MemoryQueue::new()).await;
    conformance::job_queue_ordering(&MemoryQueue::new()).await;
}

#[tokio::test]
async fn reopening_keeps_everything_and_clears_queue_marks() {
    let dir = tempfile::tempdir().unwrap();
    let k = Key::watch("default", "w");
    {
        let s = SqliteStore::open_dir(dir.path()).unwrap();
        s.put(
            &k,
            json!({"url": "u"}),
            Some(Schedule::due_at(5)),
            Expect::Absent,
        )
        .await
        .unwrap();
        let job = CheckJob::new(&k, 5, Lane::Scheduled, 5, 10);
        assert!(s.mark_queued(&job, 10).await.unwrap());
    }
    let s = SqliteStore::open_dir(dir.path()).unwrap();
    let item = s.get(&k).await.unwrap().unwrap();
    assert_eq!(item.doc["url"], "u");
    assert_eq!(item.schedule.as_ref().unwrap().queued_at, Some(10));
    assert_eq!(s.clear_queued_marks().await.unwrap(), 1);
    assert_eq!(
        s.due(10, 10, 10).await.unwrap().len(),
        1,
        "due again after the restart"
    );
}

#[tokio::test]
async fn a_newer_schema_is_refused_not_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("changewatch.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        err.to_string().contains("newer than this changewatch"),
        "{err}"
    );
}

#[tokio::test]
async fn migration_3_fills_the_history_summary_of_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("changewatch.db");
    {
        // A file as schema version 2 left it: one watch with two snapshots.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE items (tenant TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL,
                version INTEGER NOT NULL, doc TEXT NOT NULL, next_check_at INTEGER,
                queued_at INTEGER, lease_owner TEXT, lease_until INTEGER, last_due_at INTEGER,
                last_job_id TEXT, PRIMARY KEY (tenant, kind, id)) WITHOUT ROWID;
             CREATE TABLE snapshots (tenant TEXT NOT NULL, watch_id TEXT NOT NULL,
                ts INTEGER NOT NULL, text BLOB NOT NULL, html BLOB,
                PRIMARY KEY (tenant, watch_id, ts)) WITHOUT ROWID;
             CREATE TABLE watch_text (tenant TEXT NOT NULL, watch_id TEXT NOT NULL,
                text BLOB NOT NULL, PRIMARY KEY (tenant, watch_id)) WITHOUT ROWID;
             INSERT INTO items (tenant, kind, id, version, doc) VALUES ('default', 'W', 'w', 3, '{}');
             INSERT INTO items (tenant, kind, id, version, doc) VALUES ('default', 'W', 'empty', 1, '{}');
             INSERT INTO snapshots VALUES ('default', 'w', 10, x'00', NULL);
             INSERT INTO snapshots VALUES ('default', 'w', 20, x'00', NULL);
             PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    let w = s.get(&Key::watch("default", "w")).await.unwrap().unwrap();
    assert_eq!((w.history.count, w.history.newest), (2, Some(20)));
    let e = s
        .get(&Key::watch("default", "empty"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((e.history.count, e.history.newest), (0, None));
}
