//! The datastore import's edges on a hand-made 0.60 datastore (crates/cli's
//! `import_datastore` test covers datastores the real upstream wrote): values the API refuses
//! are left out and reported with the item and the reason while the rest comes over, history
//! indexes as older versions wrote them (absolute paths, repeated timestamps, missing and binary
//! snapshots), a dry run, a second run, and the backup zip's guards. Real SQLite, the
//! in-process sandbox for the template check.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;

use changewatch_api::datastore::{self, ImportError, Options, Problem, Report};
use changewatch_core::model::Watch;
use changewatch_engine::docs;
use changewatch_sandbox::Sandbox;
use changewatch_store::sqlite::SqliteStore;
use changewatch_store::{DEFAULT_TENANT, Key, Kind, WatchStore};
use serde_json::{Value, json};

const W1: &str = "6a0e7f43-2b1c-4d55-9b1e-3f0a2c1d4e5f";
const W4: &str = "0b8c2d7e-91aa-4c3f-8e2d-5a6b7c8d9e0f";
const W3: &str = "c2f1e0d9-8b7a-4c6d-9e5f-4a3b2c1d0e9f";
const T1: &str = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a";
const UNKNOWN_TAG: &str = "11111111-1111-4111-8111-111111111111";
const SHOP: &str = "3e4f5a6b-7c8d-4e9f-8a0b-1c2d3e4f5a6b";

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn write_json(path: &Path, v: &Value) {
    write(path, &serde_json::to_string_pretty(v).unwrap());
}

/// 0.60's layout, with what a migration meets in the wild.
fn datastore(dir: &Path) {
    write_json(
        &dir.join("changedetection.json"),
        &json!({
            "note": "Settings file - watches are in {uuid}/watch.json, tags are in {uuid}/tag.json",
            "settings": {
                "headers": {"X-Team": "ops"},
                "requests": {
                    "extra_proxies": [{"proxy_name": "p1", "proxy_url": "http://127.0.0.1:3128"}],
                    "extra_browsers": [],
                    "jitter_seconds": 0,
                    "proxy": "ui-0p1",
                    "time_between_check": {"weeks": null, "days": null, "hours": 2, "minutes": null, "seconds": null},
                    "timeout": 30,
                    "workers": 5
                },
                "application": {
                    "api_access_token": "upstream-key",
                    "notification_urls": ["json://127.0.0.1:9/ok", "nonsense://x"],
                    "notification_format": "markdown",
                    "notification_title": "{{watch_title}} changed",
                    "fetch_backend": "html_requests",
                    "password": false,
                    "global_ignore_text": ["Updated at"],
                    "rss_reader_mode": true,
                    "tags": {}
                }
            }
        }),
    );
    write_json(
        &dir.join(T1).join("tag.json"),
        &json!({
            "uuid": T1, "title": "Shop", "date_created": 1_700_000_000,
            "notification_urls": ["json://127.0.0.1:9/t", "nonsense://y"],
            "processor": "restock_diff"
        }),
    );
    let w1 = dir.join(W1);
    write_json(
        &w1.join("watch.json"),
        &json!({
            "uuid": W1,
            "url": "http://127.0.0.1:9/page",
            "title": "One",
            "tags": [T1, UNKNOWN_TAG],
            "notification_urls": ["json://127.0.0.1:9/w", "nonsense://z"],
            "notification_body": "{{ not_a_token }}",
            "proxy": "ui-0p1",
            "include_filters": ["#main"],
            "a_field_from_the_future": "on",
            "another_unknown": null,
            "last_checked": 1_700_000_300,
            "last_viewed": 1_700_000_200,
            "previous_md5": "0123456789abcdef0123456789abcdef",
            "date_created": 1_699_999_000,
            "check_count": 4
        }),
    );
    write(
        &w1.join("history.txt"),
        &format!(
            "1700000100,/datastore/{W1}/a.txt\n1700000200,b.txt\n1700000200,c.txt\n\
             1700000250,missing.txt\n1700000300,shot.png\ngarbage line\n"
        ),
    );
    write(&w1.join("a.txt"), "first\n");
    write(
        &w1.join("b.txt"),
        "second, overwritten by the repeated timestamp\n",
    );
    write(&w1.join("c.txt"), "third\n");
    write(&w1.join("shot.png"), "\u{89}PNG");
    write(&w1.join("1700000200.html"), "<p>third</p>");
    write(&w1.join("favicon.ico"), "icon");
    write_json(
        &dir.join("not-a-uuid").join("watch.json"),
        &json!({"url": "http://127.0.0.1:9/x"}),
    );
    write_json(
        &dir.join(W3).join("watch.json"),
        &json!({"uuid": W3, "url": "javascript:alert(1)"}),
    );
    // A restock watch: its config in `restock_diff.json` under the processor's name, its
    // history in `history-restock_diff.txt`.
    let shop = dir.join(SHOP);
    write_json(
        &shop.join("watch.json"),
        &json!({"uuid": SHOP, "url": "http://127.0.0.1:9/product", "processor": "restock_diff",
            "restock": {"in_stock": true, "price": 10.5, "currency": "EUR", "original_price": 10.5},
            "last_checked": 1_700_000_500}),
    );
    write_json(
        &shop.join("restock_diff.json"),
        &json!({"restock_diff": {"in_stock_processing": "all_changes", "follow_price_changes": true,
            "price_change_min": null, "price_change_max": null, "price_change_threshold_percent": 5}}),
    );
    write(&shop.join("history-restock_diff.txt"), "1700000500,r.txt\n");
    write(&shop.join("r.txt"), "In Stock: True - Price: 10.5");
    write_json(
        &dir.join(W4).join("watch.json"),
        &json!({"uuid": W4, "url": "http://127.0.0.1:9/quiet", "paused": true}),
    );
}

fn opts(dry_run: bool) -> Options {
    Options {
        tenant: DEFAULT_TENANT.into(),
        dry_run,
        minimum_recheck_secs: 0,
        now: 1_700_001_000,
        progress_every: 1,
        keep_api_key: false,
    }
}

async fn run(store: &SqliteStore, dir: &Path, dry_run: bool) -> (Report, Vec<(usize, usize)>) {
    let mut calls = Vec::new();
    let report = datastore::import_dir(
        store,
        Some(&Sandbox::in_process()),
        dir,
        &opts(dry_run),
        &mut |done, total| calls.push((done, total)),
    )
    .await
    .unwrap();
    (report, calls)
}

fn has(problems: &[Problem], item: &str, field: Option<&str>, reason_part: &str) -> bool {
    problems
        .iter()
        .any(|p| p.item == item && p.field.as_deref() == field && p.reason.contains(reason_part))
}

#[tokio::test]
async fn what_cannot_come_over_is_reported_and_the_rest_comes_over() {
    let src = tempfile::tempdir().unwrap();
    datastore(src.path());
    let db = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_dir(db.path()).unwrap();

    let (dry, _) = run(&store, src.path(), true).await;
    assert!(
        store
            .list(DEFAULT_TENANT, Kind::Watch)
            .await
            .unwrap()
            .is_empty(),
        "a dry run writes nothing"
    );
    assert!(
        store
            .get(&Key::settings(DEFAULT_TENANT))
            .await
            .unwrap()
            .is_none()
    );

    let (report, progress) = run(&store, src.path(), false).await;
    assert_eq!(progress, vec![(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]);
    assert_eq!(
        (dry.watches, dry.snapshots, dry.tags),
        (report.watches, report.snapshots, report.tags)
    );
    assert_eq!(report.layout, "changedetection.json");
    assert_eq!(report.settings, "imported");
    assert_eq!(
        (report.watches.added, report.watches.refused),
        (3, 2),
        "{report:#?}"
    );
    assert_eq!(
        (report.snapshots.added, report.snapshots.refused),
        (3, 2),
        "{report:#?}"
    );
    assert_eq!(report.tags.added, 1);

    let p = &report.problems;
    // A setting nothing here acts on is reported, not stored.
    assert!(
        has(p, "settings", Some("rss_reader_mode"), "not supported"),
        "{p:#?}"
    );
    let w1 = format!("watch {W1}");
    assert!(
        has(
            p,
            &w1,
            Some("a_field_from_the_future"),
            "not a field changewatch has"
        ),
        "{p:#?}"
    );
    assert!(
        !p.iter()
            .any(|x| x.field.as_deref() == Some("another_unknown")),
        "an empty unknown field loses nothing"
    );
    assert!(has(p, &w1, Some("tags"), UNKNOWN_TAG), "{p:#?}");
    assert!(
        has(p, &w1, Some("notification_urls"), "nonsense://z"),
        "{p:#?}"
    );
    assert!(
        has(p, &w1, Some("notification_body"), "notification_body"),
        "{p:#?}"
    );
    assert!(has(p, &w1, Some("history.txt"), "garbage line"), "{p:#?}");
    assert!(has(p, &w1, Some("missing.txt"), "missing"), "{p:#?}");
    assert!(has(p, &w1, Some("shot.png"), "binary snapshot"), "{p:#?}");
    assert!(has(p, &w1, None, "favicon.ico"), "{p:#?}");
    assert!(has(p, "watch not-a-uuid", None, "canonical UUID"), "{p:#?}");
    assert!(
        has(
            p,
            &format!("watch {W3}"),
            None,
            "Invalid or unsupported URL"
        ),
        "{p:#?}"
    );
    assert!(
        has(p, "settings", Some("notification_urls"), "nonsense://x"),
        "{p:#?}"
    );
    assert!(
        has(
            p,
            &format!("tag {T1}"),
            Some("notification_urls"),
            "nonsense://y"
        ),
        "{p:#?}"
    );

    // The watch: what the API took, its state, its history with the original timestamps.
    let key = Key::watch(DEFAULT_TENANT, W1);
    let item = store.get(&key).await.unwrap().unwrap();
    let w: Watch = docs::decode(&item).unwrap();
    assert_eq!(w.uuid, W1);
    assert_eq!(w.tags, vec![T1.to_string()]);
    assert_eq!(
        w.notification_urls,
        vec!["json://127.0.0.1:9/w".to_string()]
    );
    assert_eq!(w.notification_body, None);
    assert_eq!(w.proxy.as_deref(), Some("ui-0p1"));
    assert_eq!(w.include_filters, vec!["#main".to_string()]);
    assert_eq!(
        (w.last_checked, w.last_viewed, w.check_count),
        (1_700_000_300, 1_700_000_200, 4)
    );
    assert_eq!(w.date_created, Some(1_699_999_000));
    assert_eq!(
        store.snapshots(&key).await.unwrap(),
        vec![1_700_000_100, 1_700_000_200]
    );
    assert_eq!(
        store
            .snapshot_text(&key, 1_700_000_100)
            .await
            .unwrap()
            .as_deref(),
        Some("first\n")
    );
    assert_eq!(
        store
            .snapshot_text(&key, 1_700_000_200)
            .await
            .unwrap()
            .as_deref(),
        Some("third\n")
    );
    assert_eq!(
        store
            .snapshot_html(&key, 1_700_000_200)
            .await
            .unwrap()
            .as_deref(),
        Some("<p>third</p>")
    );
    assert_eq!(item.history.count, 2);
    let next = item.schedule.as_ref().and_then(|s| s.next_check_at);
    assert!(next.is_some(), "due again from upstream's last check");
    let paused = store
        .get(&Key::watch(DEFAULT_TENANT, W4))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        paused.schedule.and_then(|s| s.next_check_at),
        None,
        "a paused watch is not due"
    );

    let shop_key = Key::watch(DEFAULT_TENANT, SHOP);
    let shop: Watch = docs::decode(&store.get(&shop_key).await.unwrap().unwrap()).unwrap();
    assert_eq!(shop.processor, "restock_diff");
    let config = shop
        .processor_config_restock_diff
        .expect("restock_diff.json came over");
    assert_eq!(config.in_stock_processing, "all_changes");
    assert_eq!(config.price_change_threshold_percent, Some(5.0));
    let state = shop.restock.expect("the restock state came over");
    assert_eq!((state.in_stock, state.price), (Some(true), Some(10.5)));
    assert_eq!(
        store.snapshots(&shop_key).await.unwrap(),
        vec![1_700_000_500]
    );
    assert!(
        !report
            .problems
            .iter()
            .any(|p| p.item == format!("watch {SHOP}")),
        "{:#?}",
        report.problems
    );

    let tag = store
        .get(&Key::tag(DEFAULT_TENANT, T1))
        .await
        .unwrap()
        .unwrap();
    let tag: Value = docs::decode(&tag).unwrap();
    assert_eq!(tag["title"], "Shop");
    assert_eq!(tag["notification_urls"], json!(["json://127.0.0.1:9/t"]));

    let s = docs::load_settings(&store, DEFAULT_TENANT).await.unwrap();
    assert_eq!(
        s.application.notification_urls,
        vec!["json://127.0.0.1:9/ok".to_string()]
    );
    assert_eq!(s.application.notification_format, "markdown");
    assert_eq!(s.application.notification_title, "{{watch_title}} changed");
    assert_eq!(
        s.application.api_access_token.as_deref(),
        Some("upstream-key")
    );
    assert_eq!(
        s.application.global_ignore_text,
        vec!["Updated at".to_string()]
    );
    assert_eq!(s.requests.proxy.as_deref(), Some("ui-0p1"));
    assert_eq!(s.requests.timeout, 30);
    assert_eq!(s.requests.time_between_check.seconds(), Some(7200));
    assert_eq!(s.headers.get("X-Team").map(String::as_str), Some("ops"));
    assert!(
        s.application.rss_access_token.is_some(),
        "a fresh store's own token"
    );

    // Again: nothing changes; a newer snapshot upstream took since is added alone.
    let (again, _) = run(&store, src.path(), false).await;
    assert!(!again.changed(), "{again:#?}");
    assert_eq!(again.watches.present, 3);
    assert_eq!(again.snapshots.present, 3);
    write(&src.path().join(W1).join("d.txt"), "fourth\n");
    let mut index = std::fs::OpenOptions::new()
        .append(true)
        .open(src.path().join(W1).join("history.txt"))
        .unwrap();
    writeln!(index, "1700000400,d.txt").unwrap();
    let (newer, _) = run(&store, src.path(), false).await;
    assert_eq!(newer.snapshots.added, 1, "{newer:#?}");
    assert_eq!(
        store.snapshots(&key).await.unwrap(),
        vec![1_700_000_100, 1_700_000_200, 1_700_000_400]
    );
}

#[tokio::test]
async fn the_older_single_file_layout() {
    let src = tempfile::tempdir().unwrap();
    write_json(
        &src.path().join("url-watches.json"),
        &json!({
            "watching": {W1: {"url": "http://127.0.0.1:9/page", "tags": [T1], "last_checked": 1_600_000_000}},
            "settings": {"application": {"tags": {T1: {"title": "Old group"}}, "notification_urls": []}}
        }),
    );
    write(
        &src.path().join(W1).join("history.txt"),
        "1600000000,a.txt\n",
    );
    write(&src.path().join(W1).join("a.txt"), "old text");
    let db = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_dir(db.path()).unwrap();
    let (report, _) = run(&store, src.path(), false).await;
    assert_eq!(report.layout, "url-watches.json");
    assert_eq!(report.problems, vec![], "{report:#?}");
    let key = Key::watch(DEFAULT_TENANT, W1);
    let w: Watch = docs::decode(&store.get(&key).await.unwrap().unwrap()).unwrap();
    assert_eq!(w.tags, vec![T1.to_string()]);
    assert_eq!(store.snapshots(&key).await.unwrap(), vec![1_600_000_000]);
    let tag: Value = docs::decode(
        &store
            .get(&Key::tag(DEFAULT_TENANT, T1))
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(tag["title"], "Old group");
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut out);
    for (name, bytes) in entries {
        z.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
    out.into_inner()
}

#[tokio::test]
async fn a_backup_zip_and_what_it_may_not_hold() {
    let settings = br#"{"settings": {"application": {"notification_urls": []}}}"#;
    let watch = format!(r#"{{"uuid": "{W1}", "url": "http://127.0.0.1:9/page"}}"#);
    let good = zip_of(&[
        ("changedetection.json", settings),
        (&format!("{W1}/watch.json"), watch.as_bytes()),
        (&format!("{W1}/history.txt"), b"1700000000,a.txt\n"),
        (&format!("{W1}/a.txt"), b"zipped text"),
        ("url-list.txt", b"http://127.0.0.1:9/page\r\n"),
    ]);
    let db = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_dir(db.path()).unwrap();
    let report = datastore::import_zip(&store, None, good, &opts(false), &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!(report.snapshots.added, 1, "{report:#?}");
    let key = Key::watch(DEFAULT_TENANT, W1);
    assert_eq!(
        store
            .snapshot_text(&key, 1_700_000_000)
            .await
            .unwrap()
            .as_deref(),
        Some("zipped text")
    );

    for (name, why) in [("../evil.json", "leaves"), ("a/b/c.txt", "deeper")] {
        let bad = zip_of(&[("changedetection.json", settings), (name, b"x")]);
        let err = datastore::import_zip(&store, None, bad, &opts(false), &mut |_, _| {})
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ImportError::BadZip(m) if m.contains(why)),
            "{name}: {err}"
        );
    }
    let err = datastore::import_zip(
        &store,
        None,
        b"not a zip".to_vec(),
        &opts(false),
        &mut |_, _| {},
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ImportError::BadZip(_)), "{err}");
    let empty = zip_of(&[("readme.txt", b"hello")]);
    let err = datastore::import_zip(&store, None, empty, &opts(false), &mut |_, _| {})
        .await
        .unwrap_err();
    assert!(matches!(err, ImportError::NotADatastore(_)), "{err}");
}
