//! Backups through the port: a round trip between SQLite datastores, one taken while a writer
//! commits checks (it must be of one moment), and the same file restored into DynamoDB (moto)
//! and exported back from it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use changewatch_store::aws::DynamoStore;
use changewatch_store::aws::provision::provision;
use changewatch_store::backup::{
    BackupError, Exporter, LiveExporter, RestoreOptions, Restored, restore, verify,
};
use changewatch_store::sqlite::SqliteStore;
use changewatch_store::sqlite::backup::SqliteExporter;
use changewatch_store::{
    CheckCommit, Expect, HistoryMeta, Key, Kind, NewSnapshot, Schedule, WatchStore,
};
use serde_json::{Value, json};

const T: &str = "default";

fn accept(_: Kind, _: &Value) -> Result<(), String> {
    Ok(())
}

fn options(force: bool) -> RestoreOptions<'static> {
    RestoreOptions {
        force,
        now: 1_000,
        check: &accept,
    }
}

/// Everything a backup should carry, read through the port (versions left out: a restore
/// writes its own).
#[derive(Debug, PartialEq)]
struct Dump {
    settings: Option<Value>,
    tags: BTreeMap<String, Value>,
    watches: BTreeMap<String, WatchDump>,
    log: Vec<Value>,
}

/// Time, text, HTML, screenshot.
type SnapshotDump = (i64, String, Option<String>, Option<Vec<u8>>);

#[derive(Debug, PartialEq)]
struct WatchDump {
    doc: Value,
    next_check_at: Option<i64>,
    history: HistoryMeta,
    snapshots: Vec<SnapshotDump>,
    text_before_filters: Option<String>,
}

async fn dump(store: &dyn WatchStore, tenant: &str) -> Dump {
    let settings = match store.get(&Key::settings(tenant)).await.unwrap() {
        Some(i) => Some(i.doc.to_value().unwrap()),
        None => None,
    };
    let mut tags = BTreeMap::new();
    for item in store.list(tenant, Kind::Tag).await.unwrap() {
        tags.insert(item.key.id.clone(), item.doc.to_value().unwrap());
    }
    let mut watches = BTreeMap::new();
    for item in store.list(tenant, Kind::Watch).await.unwrap() {
        let key = item.key.clone();
        let mut snapshots = Vec::new();
        for ts in store.snapshots(&key).await.unwrap() {
            snapshots.push((
                ts,
                store.snapshot_text(&key, ts).await.unwrap().unwrap(),
                store.snapshot_html(&key, ts).await.unwrap(),
                store.snapshot_screenshot(&key, ts).await.unwrap(),
            ));
        }
        watches.insert(
            key.id.clone(),
            WatchDump {
                doc: item.doc.to_value().unwrap(),
                next_check_at: item.schedule.clone().unwrap_or_default().next_check_at,
                history: item.history,
                snapshots,
                text_before_filters: store.text_before_filters(&key).await.unwrap(),
            },
        );
    }
    let log = store.log_recent(tenant, 100).await.unwrap();
    Dump {
        settings,
        tags,
        watches,
        log,
    }
}

/// A check's commit as the checker makes it: the lease, then one commit.
async fn check(
    store: &dyn WatchStore,
    key: &Key,
    patch: Value,
    snapshot: Option<NewSnapshot>,
    tbf: Option<&str>,
) {
    let base = store.claim(key, "w", 10_000_000_000, 0).await.unwrap();
    store
        .commit_check(
            key,
            "w",
            CheckCommit {
                patch: patch.as_object().unwrap().clone(),
                next_check_at: Some(4_000_000_000),
                due_at: 0,
                job_id: uuid_like(),
                snapshot,
                base,
                history_max: None,
                text_before_filters: tbf.map(str::to_string),
            },
        )
        .await
        .unwrap();
}

fn uuid_like() -> String {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    format!("job-{}", N.fetch_add(1, Ordering::Relaxed))
}

fn snap(ts: i64, text: &str, html: bool, screenshot: bool) -> NewSnapshot {
    NewSnapshot {
        ts,
        text: text.to_string(),
        html: html.then(|| format!("<p>{text}</p>")),
        screenshot: screenshot.then(|| vec![0xff, 0xd8, 0xff, 0x00, ts as u8]),
    }
}

/// Settings, two tags, a watch with history (HTML on every snapshot, so the newest two keep
/// theirs, and a screenshot), a paused watch without history, and a log.
async fn populate(store: &dyn WatchStore, tenant: &str) {
    store
        .put(
            &Key::settings(tenant),
            json!({"application": {"api_access_token": "k1", "fetch_backend": "html_requests"}}),
            None,
            Expect::Absent,
        )
        .await
        .unwrap();
    for (id, title) in [("t-1", "news"), ("t-2", "shop")] {
        store
            .put(
                &Key::tag(tenant, id),
                json!({"title": title}),
                None,
                Expect::Absent,
            )
            .await
            .unwrap();
    }
    let w1 = Key::watch(tenant, "7a2c1e4b-0000-4000-8000-000000000001");
    store
        .put(
            &w1,
            json!({"url": "https://example.com/", "tags": ["t-1"], "title": "Ex"}),
            Some(Schedule::due_at(2_000_000_000)),
            Expect::Absent,
        )
        .await
        .unwrap();
    check(
        store,
        &w1,
        json!({"check_count": 1}),
        Some(snap(1_700_000_000, "one", true, false)),
        None,
    )
    .await;
    check(
        store,
        &w1,
        json!({"check_count": 2}),
        Some(snap(1_700_000_100, "two\nlines", true, false)),
        None,
    )
    .await;
    check(
        store,
        &w1,
        json!({"check_count": 3, "previous_md5": "abc"}),
        Some(snap(1_700_000_200, "three é", true, true)),
        Some("before filters"),
    )
    .await;
    let w2 = Key::watch(tenant, "7a2c1e4b-0000-4000-8000-000000000002");
    store
        .put(
            &w2,
            json!({"url": "https://example.org/", "paused": true}),
            Some(Schedule::default()),
            Expect::Absent,
        )
        .await
        .unwrap();
    for (i, ts) in [1_700_000_300, 1_700_000_400, 1_700_000_500]
        .into_iter()
        .enumerate()
    {
        store
            .log_append(
                tenant,
                ts,
                json!({"ts": ts, "n": i, "url": "json://x"}),
                100,
            )
            .await
            .unwrap();
    }
}

async fn backup_of(exporter: &dyn Exporter, tenant: &str) -> Vec<u8> {
    let mut out = Vec::new();
    exporter
        .export(tenant, 1_800_000_000, &mut out)
        .await
        .unwrap();
    out
}

#[tokio::test]
async fn sqlite_round_trip_keeps_everything() {
    let a_dir = tempfile::tempdir().unwrap();
    let a = SqliteStore::open_dir(a_dir.path()).unwrap();
    populate(&a, T).await;
    let before = dump(&a, T).await;
    assert_eq!(before.watches.len(), 2);
    assert_eq!(before.watches.values().next().unwrap().snapshots.len(), 3);

    let file = backup_of(&SqliteExporter::for_dir(a_dir.path()), T).await;
    let (manifest, counts) = verify(&file[..], &accept).unwrap();
    assert_eq!(
        (manifest.source_mode.as_str(), manifest.consistent),
        ("embedded", true)
    );
    assert_eq!(
        (
            counts.tags,
            counts.watches,
            counts.snapshots,
            counts.log_entries
        ),
        (2, 2, 3, 3)
    );
    // The copy it was taken from is gone.
    let left: Vec<_> = std::fs::read_dir(a_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".backup"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    let b_dir = tempfile::tempdir().unwrap();
    let b = SqliteStore::open_dir(b_dir.path()).unwrap();
    let restored = restore(&b, T, Cursor::new(&file), &options(false))
        .await
        .unwrap();
    assert_eq!(restored.counts, counts);
    assert_eq!(dump(&b, T).await, before);

    // Not into a datastore that has watches, unless forced; forced, the result is the same.
    let e = restore(&b, T, Cursor::new(&file), &options(false))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            BackupError::NotEmpty {
                watches: 2,
                tags: 2
            }
        ),
        "{e}"
    );
    b.put(
        &Key::watch(T, "extra"),
        json!({"url": "https://x/"}),
        None,
        Expect::Absent,
    )
    .await
    .unwrap();
    let Restored { replaced, .. } = restore(&b, T, Cursor::new(&file), &options(true))
        .await
        .unwrap();
    assert_eq!(replaced, 5);
    let after = dump(&b, T).await;
    assert_eq!(after.watches, before.watches);
    assert_eq!(after.tags, before.tags);
    assert_eq!(after.settings, before.settings);
}

#[tokio::test]
async fn a_damaged_file_writes_nothing() {
    let a_dir = tempfile::tempdir().unwrap();
    let a = SqliteStore::open_dir(a_dir.path()).unwrap();
    populate(&a, T).await;
    let file = backup_of(&SqliteExporter::for_dir(a_dir.path()), T).await;
    let b_dir = tempfile::tempdir().unwrap();
    let b = SqliteStore::open_dir(b_dir.path()).unwrap();
    for cut in [file.len() / 2, file.len() - 1] {
        let e = restore(&b, T, Cursor::new(&file[..cut]), &options(false))
            .await
            .unwrap_err();
        assert!(matches!(e, BackupError::Damaged { .. }), "{e}");
    }
    let mut flipped = file.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    assert!(
        restore(&b, T, Cursor::new(&flipped), &options(false))
            .await
            .is_err()
    );
    // The callers' check refuses a document: nothing is written either.
    let picky = |kind: Kind, _: &Value| {
        if kind == Kind::Watch {
            Err("no".to_string())
        } else {
            Ok(())
        }
    };
    let opts = RestoreOptions {
        force: false,
        now: 1_000,
        check: &picky,
    };
    assert!(restore(&b, T, Cursor::new(&file), &opts).await.is_err());
    let empty = dump(&b, T).await;
    assert!(
        empty.settings.is_none()
            && empty.tags.is_empty()
            && empty.watches.is_empty()
            && empty.log.is_empty()
    );
}

/// Backups taken while a writer commits checks to two watches, always `a` then `b`, each
/// commit setting the document's `n` to the number of snapshots it leaves: a backup of one
/// moment has, for each watch, `n` equal to its snapshots, and `a` equal to `b` or one ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_writes_is_of_one_moment() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open_dir(dir.path()).unwrap());
    let (a, b) = (Key::watch(T, "a"), Key::watch(T, "b"));
    for k in [&a, &b] {
        store
            .put(
                k,
                json!({"url": "https://x/", "n": 0}),
                Some(Schedule::due_at(0)),
                Expect::Absent,
            )
            .await
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop, a, b) = (store.clone(), stop.clone(), a.clone(), b.clone());
        tokio::spawn(async move {
            let mut n = 0i64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                for k in [&a, &b] {
                    let text = format!("{n}\n{}", "filler line\n".repeat(200));
                    check(
                        store.as_ref(),
                        k,
                        json!({"n": n}),
                        Some(snap(1_000 + n, &text, true, false)),
                        None,
                    )
                    .await;
                }
            }
            n
        })
    };
    let exporter = SqliteExporter::for_dir(dir.path());
    let mut seen = Vec::new();
    for _ in 0..6 {
        let file = backup_of(&exporter, T).await;
        let fresh_dir = tempfile::tempdir().unwrap();
        let fresh = SqliteStore::open_dir(fresh_dir.path()).unwrap();
        restore(&fresh, T, Cursor::new(&file), &options(false))
            .await
            .unwrap();
        let d = dump(&fresh, T).await;
        let n = |id: &str| {
            let w = &d.watches[id];
            let n = w.doc["n"].as_i64().unwrap();
            assert_eq!(
                n as usize,
                w.snapshots.len(),
                "{id}: n against its snapshots"
            );
            assert_eq!(w.history.count, w.snapshots.len());
            n
        };
        let (na, nb) = (n("a"), n("b"));
        assert!(na == nb || na == nb + 1, "a {na}, b {nb}");
        seen.push(na);
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.unwrap();
    assert!(written > 0);
    assert!(
        seen.iter().any(|n| *n > 0),
        "no backup saw a write: {seen:?}"
    );
}

#[tokio::test]
async fn the_same_file_restores_into_dynamodb_and_back() {
    let moto = testkit::moto::MotoServer::shared();
    let conf = moto.sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let prefix = testkit::moto::unique_prefix("bk");
    let res = provision(&ddb, &sqs, &prefix, 4, 30, 3).await.unwrap();
    let dynamo: Arc<dyn WatchStore> = Arc::new(DynamoStore::new(ddb, res.resources.clone()));

    let a_dir = tempfile::tempdir().unwrap();
    let a = SqliteStore::open_dir(a_dir.path()).unwrap();
    populate(&a, T).await;
    let before = dump(&a, T).await;
    let file = backup_of(&SqliteExporter::for_dir(a_dir.path()), T).await;

    // Into a tenant of its own in DynamoDB: the same watches, history and settings.
    restore(
        dynamo.as_ref(),
        "tenant-9",
        Cursor::new(&file),
        &options(false),
    )
    .await
    .unwrap();
    assert_eq!(dump(dynamo.as_ref(), "tenant-9").await, before);

    // Exported from DynamoDB (live, item by item) and back into a fresh SQLite datastore.
    let exported = backup_of(&LiveExporter::new(dynamo.clone(), "aws"), "tenant-9").await;
    let (manifest, _) = verify(&exported[..], &accept).unwrap();
    assert_eq!(
        (
            manifest.source_mode.as_str(),
            manifest.consistent,
            manifest.tenant.as_str()
        ),
        ("aws", false, "tenant-9")
    );
    let c_dir = tempfile::tempdir().unwrap();
    let c = SqliteStore::open_dir(c_dir.path()).unwrap();
    restore(&c, T, Cursor::new(&exported), &options(false))
        .await
        .unwrap();
    assert_eq!(dump(&c, T).await, before);
}
