//! The SQLite adapter and the embedded queue against the port conformance suites, plus what
//! only the embedded adapter promises: data survives reopening the file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use changewatch_store::conformance;
use changewatch_store::queue::MemoryQueue;
use changewatch_store::sqlite::SqliteStore;
use changewatch_store::{Expect, Key, Schedule, WatchStore};
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
async fn snapshots() {
    let (_d, s) = fresh();
    conformance::snapshots(&s).await;
}

#[tokio::test]
async fn change_feed() {
    let (_d, s) = fresh();
    conformance::change_feed(&s).await;
}

#[tokio::test]
async fn memory_queue() {
    conformance::job_queue(&MemoryQueue::new()).await;
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
        assert!(s.mark_queued(&k, 5, 10).await.unwrap());
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
