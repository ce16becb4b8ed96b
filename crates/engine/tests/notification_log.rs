//! The notification log on the real embedded store: one entry per delivery, newest first,
//! and the log item that earlier versions kept is still shown after an upgrade.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use changewatch_engine::notifications::{LOG_LEN, LogEntry, append_log, read_log};
use changewatch_store::sqlite::SqliteStore;
use changewatch_store::{Expect, Key, WatchStore};
use serde_json::json;

fn entry(ts: i64, n: usize) -> LogEntry {
    LogEntry {
        ts,
        watch_uuid: Some(format!("w{n}")),
        kind: "change".into(),
        url: "json://127.0.0.1/hook".into(),
        outcome: "sent".into(),
        attempt: 1,
        message: format!("entry {n}"),
    }
}

#[tokio::test]
async fn entries_are_appended_and_the_old_log_item_follows_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_dir(dir.path()).unwrap();
    // The single item an older version rewrote on every delivery.
    let old = vec![entry(10, 0), entry(9, 1)];
    store
        .put(
            &Key::notification_log("default"),
            json!({ "entries": old }),
            None,
            Expect::Absent,
        )
        .await
        .unwrap();
    append_log(&store, "default", entry(20, 2)).await.unwrap();
    append_log(&store, "default", entry(21, 3)).await.unwrap();
    let log = read_log(&store, "default").await.unwrap();
    let messages: Vec<_> = log.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["entry 3", "entry 2", "entry 0", "entry 1"]);

    // A full log shows the newest LOG_LEN, all from the append-only entries.
    for n in 0..LOG_LEN + 5 {
        append_log(&store, "default", entry(100 + n as i64, 100 + n))
            .await
            .unwrap();
    }
    let log = read_log(&store, "default").await.unwrap();
    assert_eq!(log.len(), LOG_LEN);
    assert_eq!(log[0].message, format!("entry {}", 100 + LOG_LEN + 4));
    assert_eq!(log[LOG_LEN - 1].message, "entry 105");
    // Nothing else is read for it: the old item is no longer needed once the log is full,
    // and SQLite keeps no more rows than the log shows.
    assert_eq!(
        store.log_recent("default", 1000).await.unwrap().len(),
        LOG_LEN
    );
}
