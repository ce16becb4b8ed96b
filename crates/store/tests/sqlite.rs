//! The SQLite adapter and the embedded queue against the port conformance suites, plus what
//! only the embedded adapter promises: data survives reopening the file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use changewatch_store::conformance;
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

/// `list_each` reads in pages: every item once, across page boundaries, in id order.
#[tokio::test]
async fn list_each_walks_every_page() {
    let (_d, s) = fresh();
    for i in 0..600 {
        s.put(
            &Key::watch("default", &format!("w{i:04}")),
            json!({"n": i}),
            None,
            Expect::Absent,
        )
        .await
        .unwrap();
    }
    s.put(&Key::watch("other", "x"), json!({}), None, Expect::Absent)
        .await
        .unwrap();
    let mut seen = Vec::new();
    s.list_each("default", changewatch_store::Kind::Watch, &mut |item| {
        seen.push(item.key.id);
        Ok(())
    })
    .await
    .unwrap();
    let expected: Vec<String> = (0..600).map(|i| format!("w{i:04}")).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn mark_many() {
    let (_d, s) = fresh();
    conformance::mark_many(&s).await;
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
async fn job_queue() {
    let (_d, s) = fresh();
    conformance::job_queue(&s.job_queue()).await;
    let (_d, s) = fresh();
    conformance::job_queue_ordering(&s.job_queue()).await;
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
    assert_eq!(item.doc.value().unwrap()["url"], "u");
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

/// Migration 8 moves rows from WITHOUT ROWID tables into rowid tables: every column of an
/// item (document, schedule, history summary), snapshot texts and the text before filters
/// must read back as they were, and the keys must stay unique.
#[tokio::test]
async fn migration_8_keeps_every_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("changewatch.db");
    let zst = |s: &str| zstd::bulk::compress(s.as_bytes(), 3).unwrap();
    {
        let s = SqliteStore::open(&path).unwrap();
        drop(s);
        // Rebuild the file as schema version 7 left it (the tables as WITHOUT ROWID).
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE items; DROP TABLE snapshots; DROP TABLE watch_text; DROP TABLE screenshots;
             CREATE TABLE items (tenant TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL,
                version INTEGER NOT NULL, doc TEXT NOT NULL, next_check_at INTEGER,
                queued_at INTEGER, lease_owner TEXT, lease_until INTEGER, last_due_at INTEGER,
                last_job_id TEXT, history_n INTEGER NOT NULL DEFAULT 0, history_newest INTEGER,
                PRIMARY KEY (tenant, kind, id)) WITHOUT ROWID;
             CREATE INDEX items_due ON items (next_check_at) WHERE next_check_at IS NOT NULL;
             CREATE TABLE snapshots (tenant TEXT NOT NULL, watch_id TEXT NOT NULL,
                ts INTEGER NOT NULL, text BLOB NOT NULL, html BLOB,
                PRIMARY KEY (tenant, watch_id, ts)) WITHOUT ROWID;
             CREATE TABLE watch_text (tenant TEXT NOT NULL, watch_id TEXT NOT NULL,
                text BLOB NOT NULL, PRIMARY KEY (tenant, watch_id)) WITHOUT ROWID;
             PRAGMA user_version = 7;",
        )
        .unwrap();
        let big = format!("{{\"title\": \"{}\"}}", "x".repeat(5000));
        conn.execute(
            "INSERT INTO items VALUES ('default', 'W', 'w', 4, ?1, 100, 90, 'me', 200, 80, 'job-1', 2, 20)",
            [&big],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO items (tenant, kind, id, version, doc) VALUES ('default', 'W', 'v', 1, '{}')",
            [],
        )
        .unwrap();
        for (ts, text) in [(10, "first"), (20, "second")] {
            conn.execute(
                "INSERT INTO snapshots VALUES ('default', 'w', ?1, ?2, NULL)",
                rusqlite::params![ts, zst(text)],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO watch_text VALUES ('default', 'w', ?1)",
            [zst("before filters")],
        )
        .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    let key = Key::watch("default", "w");
    let w = s.get(&key).await.unwrap().unwrap();
    assert_eq!(w.version, 4);
    assert_eq!(
        w.doc.value().unwrap()["title"].as_str().map(str::len),
        Some(5000)
    );
    assert_eq!(
        w.schedule,
        Some(Schedule {
            next_check_at: Some(100),
            queued_at: Some(90),
            lease_owner: Some("me".into()),
            lease_until: Some(200),
            last_due_at: Some(80),
            last_job_id: Some("job-1".into()),
        })
    );
    assert_eq!((w.history.count, w.history.newest), (2, Some(20)));
    assert_eq!(s.snapshots(&key).await.unwrap(), vec![10, 20]);
    assert_eq!(
        s.snapshot_text(&key, 10).await.unwrap().as_deref(),
        Some("first")
    );
    assert_eq!(
        s.text_before_filters(&key).await.unwrap().as_deref(),
        Some("before filters")
    );
    // The keys are still unique: writing an item again replaces it, listing keeps key order.
    s.put(&key, json!({"title": "t"}), None, Expect::Version(4))
        .await
        .unwrap();
    let ids: Vec<String> = s
        .list("default", changewatch_store::Kind::Watch)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.key.id)
        .collect();
    assert_eq!(ids, vec!["v".to_string(), "w".to_string()]);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let without_rowid: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('items', 'snapshots', 'watch_text') AND sql LIKE '%WITHOUT ROWID%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(without_rowid, 0);
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
