//! Port conformance suites: written once, run against every adapter.
//!
//! Each suite takes a fresh, empty adapter and panics (fails the calling test) on the first
//! behaviour that differs from the port's contract. Adapters' test crates call them, e.g.
//! `conformance::watch_store(&store).await`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test

use std::time::Duration;

use serde_json::json;

use crate::types::*;
use crate::{ChangeFeed, JobQueue, NotificationQueue, QueueAdmin, WatchStore};

const T: &str = "tenant-a";

/// The notification log: appends read nothing back, the newest come first, `keep` newest
/// always stay, tenants are kept apart.
pub async fn notification_log<S: WatchStore>(store: &S) {
    assert!(store.log_recent(T, 10).await.unwrap().is_empty());
    // Two entries in the same second stay two entries, in the order they were added.
    for (i, ts) in [100, 101, 101, 102, 103].into_iter().enumerate() {
        store
            .log_append(T, ts, json!({"n": i, "ts": ts}), 3)
            .await
            .unwrap();
    }
    store
        .log_append("tenant-b", 200, json!({"n": "b"}), 3)
        .await
        .unwrap();
    let recent = store.log_recent(T, 10).await.unwrap();
    let ns: Vec<_> = recent.iter().map(|e| e["n"].clone()).collect();
    // SQLite drops what is past `keep` at once, DynamoDB when the TTL says: at least the
    // newest three, newest first, and nothing out of order.
    assert!(ns.len() >= 3 && ns.len() <= 5, "{ns:?}");
    assert_eq!(ns[..3], [json!(4), json!(3), json!(2)][..], "{ns:?}");
    if ns.len() == 5 {
        assert_eq!(ns[3..], [json!(1), json!(0)][..]);
    }
    let two = store.log_recent(T, 2).await.unwrap();
    assert_eq!(
        two,
        vec![json!({"n": 4, "ts": 103}), json!({"n": 3, "ts": 102})]
    );
    assert_eq!(
        store.log_recent("tenant-b", 10).await.unwrap(),
        vec![json!({"n": "b"})]
    );
}

/// Documents: create, conditional writes, list, delete, tenants kept apart.
pub async fn documents<S: WatchStore>(store: &S) {
    let k = Key::watch(T, "w1");
    assert!(store.get(&k).await.unwrap().is_none());
    let v1 = store
        .put(
            &k,
            json!({"url": "https://a.example/"}),
            None,
            Expect::Absent,
        )
        .await
        .unwrap();
    assert_eq!(v1, 1);
    // Creating again is a conflict, not an overwrite.
    assert!(matches!(
        store
            .put(&k, json!({"url": "x"}), None, Expect::Absent)
            .await,
        Err(StoreError::Conflict(_))
    ));
    let v2 = store
        .put(
            &k,
            json!({"url": "https://b.example/"}),
            None,
            Expect::Version(1),
        )
        .await
        .unwrap();
    assert_eq!(v2, 2);
    // A writer holding a stale version loses.
    assert!(matches!(
        store
            .put(&k, json!({"url": "stale"}), None, Expect::Version(1))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let item = store.get(&k).await.unwrap().unwrap();
    assert_eq!(item.version, 2);
    assert_eq!(item.doc.value().unwrap()["url"], "https://b.example/");
    assert!(item.schedule.is_some(), "watches carry a schedule");
    assert!(matches!(
        store
            .put(&Key::watch(T, "nope"), json!({}), None, Expect::Exists)
            .await,
        Err(StoreError::Conflict(_))
    ));

    store
        .put(
            &Key::watch(T, "w0"),
            json!({"url": "0"}),
            None,
            Expect::Absent,
        )
        .await
        .unwrap();
    store
        .put(
            &Key::watch("tenant-b", "w9"),
            json!({"url": "9"}),
            None,
            Expect::Absent,
        )
        .await
        .unwrap();
    store
        .put(
            &Key::tag(T, "t1"),
            json!({"title": "news"}),
            None,
            Expect::Absent,
        )
        .await
        .unwrap();
    store
        .put(
            &Key::settings(T),
            json!({"application": {}}),
            None,
            Expect::Any,
        )
        .await
        .unwrap();
    let ids: Vec<String> = store
        .list(T, Kind::Watch)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.key.id)
        .collect();
    assert_eq!(ids, ["w0", "w1"]);
    // By pages, where the adapter reads them in id order: the same items, no other tenant's.
    if let Some(first) = store.list_page(T, Kind::Watch, None, 1).await.unwrap() {
        let first: Vec<String> = first.into_iter().map(|i| i.key.id).collect();
        assert_eq!(first, ["w0"]);
        let rest = store
            .list_page(T, Kind::Watch, Some("w0"), 5)
            .await
            .unwrap();
        let rest: Vec<String> = rest
            .unwrap_or_default()
            .into_iter()
            .map(|i| i.key.id)
            .collect();
        assert_eq!(rest, ["w1"]);
        let after = store
            .list_page(T, Kind::Watch, Some("w1"), 5)
            .await
            .unwrap();
        assert_eq!(after.map(|p| p.len()), Some(0));
    }
    // The same items one at a time; an error from the callback stops the walk.
    let mut seen = Vec::new();
    store
        .list_each(T, Kind::Watch, &mut |item| {
            seen.push((item.key.id, item.doc.value().unwrap()["url"].clone()));
            Ok(())
        })
        .await
        .unwrap();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        [
            ("w0".to_string(), json!("0")),
            ("w1".to_string(), json!("https://b.example/"))
        ]
    );
    let mut calls = 0;
    let stopped = store
        .list_each(T, Kind::Watch, &mut |_| {
            calls += 1;
            Err(StoreError::backend("stop"))
        })
        .await;
    assert!(stopped.is_err());
    assert_eq!(calls, 1);
    let tags = store.list(T, Kind::Tag).await.unwrap();
    assert_eq!(tags.len(), 1);
    assert!(tags[0].schedule.is_none());
    assert_eq!(
        *store
            .get(&Key::settings(T))
            .await
            .unwrap()
            .unwrap()
            .doc
            .value()
            .unwrap(),
        json!({"application": {}})
    );

    assert!(store.delete(&k, Expect::Exists).await.unwrap());
    assert!(!store.delete(&k, Expect::Any).await.unwrap());
    assert!(matches!(
        store.delete(&k, Expect::Exists).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.get(&k).await.unwrap().is_none());
    assert_eq!(store.list("tenant-b", Kind::Watch).await.unwrap().len(), 1);

    // Made again after its deletion, a key starts over at version 1 with the new document:
    // nothing read before the deletion comes back under the same key and version.
    let v = store
        .put(
            &k,
            json!({"url": "https://c.example/"}),
            None,
            Expect::Absent,
        )
        .await
        .unwrap();
    assert_eq!(v, 1);
    let again = store.get(&k).await.unwrap().unwrap();
    assert_eq!(again.doc.value().unwrap()["url"], "https://c.example/");
    store
        .put(
            &k,
            again.doc.to_value().unwrap(),
            Some(Schedule::due_at(1_000)),
            Expect::Version(1),
        )
        .await
        .unwrap();
    let scheduled = store.get(&k).await.unwrap().unwrap();
    assert_eq!(scheduled.schedule.unwrap().next_check_at, Some(1_000));
    assert_eq!(scheduled.doc.value().unwrap()["url"], "https://c.example/");
    assert!(store.delete(&k, Expect::Exists).await.unwrap());
}

/// Scheduling: due query, queue marks, leases, commits, redelivery bookkeeping.
pub async fn scheduling<S: WatchStore>(store: &S) {
    let now = 1_000_000;
    let a = Key::watch(T, "a");
    let b = Key::watch(T, "b");
    let paused = Key::watch(T, "paused");
    store
        .put(
            &a,
            json!({"url": "a", "n": 0}),
            Some(Schedule::due_at(now - 10)),
            Expect::Absent,
        )
        .await
        .unwrap();
    store
        .put(
            &b,
            json!({"url": "b"}),
            Some(Schedule::due_at(now + 30)),
            Expect::Absent,
        )
        .await
        .unwrap();
    store
        .put(
            &paused,
            json!({"url": "p"}),
            Some(Schedule::default()),
            Expect::Absent,
        )
        .await
        .unwrap();

    let due = store.due(now, now, 100).await.unwrap();
    assert_eq!(
        due,
        vec![DueWatch {
            key: a.clone(),
            next_check_at: now - 10
        }]
    );
    let soon = store.due(now + 60, now, 100).await.unwrap();
    assert_eq!(
        soon.iter().map(|d| d.key.id.as_str()).collect::<Vec<_>>(),
        ["a", "b"],
        "soonest first, paused never"
    );
    assert_eq!(
        store.due(now + 60, now, 1).await.unwrap().len(),
        1,
        "limit holds"
    );

    // Queue marks: only the first marker wins.
    let job_a = scheduled(&a, now - 10, now);
    assert!(store.mark_queued(&job_a, now).await.unwrap());
    assert!(!store.mark_queued(&job_a, now).await.unwrap());
    assert!(
        !store
            .mark_queued(&scheduled(&a, now - 10, now), now)
            .await
            .unwrap(),
        "a second job for the same due time is not marked"
    );
    assert!(
        !store
            .mark_queued(&scheduled(&Key::watch(T, "gone"), now, now), now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .mark_queued(&scheduled(&b, now, now), now)
            .await
            .unwrap(),
        "a scheduled job for a due time the watch no longer has is not marked"
    );
    assert!(
        store.due(now, now, 100).await.unwrap().is_empty(),
        "queued watches are not due again"
    );
    // A mark whose job was lost stops blocking after QUEUED_MARK_TTL_SECS.
    let later = now + QUEUED_MARK_TTL_SECS;
    store.recover_stranded(later, 0, 1).await.unwrap();
    assert_eq!(
        store.due(now, later, 100).await.unwrap().len(),
        1,
        "a stale queue mark does not keep a watch from being due"
    );
    assert!(
        store
            .mark_queued(&scheduled(&a, now - 10, later), later)
            .await
            .unwrap()
    );
    assert!(
        !store
            .mark_queued(&scheduled(&a, now - 10, later), later)
            .await
            .unwrap()
    );
    let version_before = store.get(&a).await.unwrap().unwrap().version;

    // Leases: one holder at a time; an expired lease can be taken over.
    let item = store
        .claim(&a, "worker-1", now + 60, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        item.schedule.as_ref().unwrap().lease_owner.as_deref(),
        Some("worker-1")
    );
    assert_eq!(
        item.schedule.as_ref().unwrap().queued_at,
        None,
        "claiming takes the job off the queue"
    );
    assert_eq!(
        item.version, version_before,
        "schedule changes do not bump the document version"
    );
    assert!(
        store
            .claim(&a, "worker-2", now + 60, now + 1)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store.due(now, now + 1, 100).await.unwrap().is_empty(),
        "leased watches are not due"
    );
    store.recover_stranded(now + 61, 0, 1).await.unwrap();
    assert!(
        store.due(now, now + 61, 100).await.unwrap().len() == 1,
        "an expired lease makes it due again"
    );
    assert!(
        store
            .claim(&a, "worker-2", now + 200, now + 61)
            .await
            .unwrap()
            .is_some()
    );

    // The old holder can no longer commit.
    let commit = |n: i64, snap: Option<NewSnapshot>| CheckCommit {
        patch: serde_json::Map::from_iter([
            ("n".to_string(), json!(n)),
            ("last_checked".to_string(), json!(now)),
        ]),
        next_check_at: Some(now + 3600),
        due_at: now - 10,
        job_id: format!("job-{n}"),
        snapshot: snap,
        base: None,
        history_max: None,
        text_before_filters: None,
    };
    assert!(matches!(
        store.commit_check(&a, "worker-1", commit(1, None)).await,
        Err(StoreError::LeaseLost(_))
    ));

    // A user edit during the check is kept: the commit patches status fields only.
    let current = store.get(&a).await.unwrap().unwrap();
    let mut edited = current.doc.to_value().unwrap();
    edited["url"] = json!("a-edited");
    store
        .put(&a, edited, None, Expect::Version(current.version))
        .await
        .unwrap();
    let still_leased = store.get(&a).await.unwrap().unwrap();
    assert_eq!(
        still_leased.schedule.unwrap().lease_owner.as_deref(),
        Some("worker-2"),
        "a put keeps the schedule"
    );

    let out = store
        .commit_check(
            &a,
            "worker-2",
            commit(
                2,
                Some(NewSnapshot {
                    ts: now,
                    text: "first".into(),
                    html: Some("<p>first</p>".into()),
                    screenshot: None,
                }),
            ),
        )
        .await
        .unwrap();
    assert_eq!(out.snapshot_ts, Some(now));
    assert_eq!(out.history_len, 1);
    let after = store.get(&a).await.unwrap().unwrap();
    assert_eq!(after.doc.value().unwrap()["url"], "a-edited");
    assert_eq!(after.doc.value().unwrap()["n"], 2);
    let s = after.schedule.unwrap();
    assert_eq!(
        (s.lease_owner, s.lease_until, s.next_check_at, s.last_due_at),
        (None, None, Some(now + 3600), Some(now - 10))
    );
    assert!(
        matches!(
            store.commit_check(&a, "worker-2", commit(3, None)).await,
            Err(StoreError::LeaseLost(_))
        ),
        "a commit releases the lease"
    );

    // Release gives the lease back without a result; only the holder can release.
    store.claim(&b, "w", now + 60, now).await.unwrap().unwrap();
    store.release(&b, "someone-else").await.unwrap();
    assert!(store.claim(&b, "x", now + 60, now).await.unwrap().is_none());
    store.release(&b, "w").await.unwrap();
    assert!(store.claim(&b, "x", now + 60, now).await.unwrap().is_some());

    // A scheduled job runs on its mark (with or without a lease: the adapter's choice), and
    // its commit ends the mark; a job whose check is given back leaves the watch due.
    let c = Key::watch(T, "c");
    store
        .put(
            &c,
            json!({"url": "c"}),
            Some(Schedule::due_at(now)),
            Expect::Absent,
        )
        .await
        .unwrap();
    let job_c = scheduled(&c, now, now);
    assert!(store.mark_queued(&job_c, now).await.unwrap());
    let begun = store
        .begin_check(&job_c, "w-c", now + 60, now)
        .await
        .unwrap()
        .unwrap();
    store.end_check(&job_c, "w-c").await.unwrap();
    assert_eq!(
        store.due(now, now, 100).await.unwrap(),
        vec![DueWatch {
            key: c.clone(),
            next_check_at: now
        }],
        "a check given back leaves the watch due"
    );
    let job_c2 = scheduled(&c, now, now);
    assert!(store.mark_queued(&job_c2, now).await.unwrap());
    let begun2 = store
        .begin_check(&job_c2, "w-c", now + 60, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(begun2.version, begun.version);
    let commit_c = |job: &CheckJob, base: Option<Item>| CheckCommit {
        patch: serde_json::Map::from_iter([("last_checked".to_string(), json!(now))]),
        next_check_at: Some(now + 600),
        due_at: job.due_at,
        job_id: job.id.clone(),
        snapshot: None,
        base,
        history_max: None,
        text_before_filters: None,
    };
    assert!(
        matches!(
            store
                .commit_check(&c, "w-other", commit_c(&job_c, None))
                .await,
            Err(StoreError::LeaseLost(_))
        ),
        "a job whose mark was given back cannot commit"
    );
    let out = store
        .commit_check(&c, "w-c", commit_c(&job_c2, Some(begun2.clone())))
        .await
        .unwrap();
    assert_eq!(out.version, begun2.version + 1);
    let s = store.get(&c).await.unwrap().unwrap().schedule.unwrap();
    assert_eq!(
        (s.queued_at, s.lease_owner, s.next_check_at, s.last_job_id),
        (None, None, Some(now + 600), Some(job_c2.id.clone())),
        "the commit ends the mark and moves the due time"
    );
    assert!(
        matches!(
            store
                .commit_check(&c, "w-c", commit_c(&job_c2, Some(begun2)))
                .await,
            Err(StoreError::LeaseLost(_))
        ),
        "a job commits once, even with a stale base"
    );
    assert_eq!(
        store
            .due(now + 600, now, 100)
            .await
            .unwrap()
            .iter()
            .filter(|d| d.key == c)
            .count(),
        1,
        "committed, the watch is due at its new time"
    );
}

/// A scheduled job for `key` due at `due`.
fn scheduled(key: &Key, due: i64, now: i64) -> CheckJob {
    CheckJob::new(key, due, Lane::Scheduled, due, now)
}

/// Due watches read page by page, part by part: every one exactly once, in order per part.
/// `mark_queued_many` marks exactly what `mark_queued` would, job by job, in order.
pub async fn mark_many<S: WatchStore>(store: &S) {
    let now = 2_000_000;
    let m1 = Key::watch(T, "many-1");
    let m2 = Key::watch(T, "many-2");
    let m3 = Key::watch(T, "many-3");
    for key in [&m1, &m2, &m3] {
        store
            .put(
                key,
                json!({"url": key.id}),
                Some(Schedule::due_at(now - 10)),
                Expect::Absent,
            )
            .await
            .unwrap();
    }
    let recheck = |key: &Key| CheckJob::new(key, now, Lane::Recheck, 1, now);
    assert!(store.mark_queued(&recheck(&m2), now).await.unwrap());
    let marked = store
        .mark_queued_many(
            &[
                recheck(&m1),
                recheck(&m2),
                recheck(&Key::watch(T, "many-gone")),
                scheduled(&m3, now - 5, now),
            ],
            now,
            4,
        )
        .await
        .unwrap();
    assert_eq!(
        marked,
        [true, false, false, false],
        "marked; already queued; no such watch; a scheduled job for a due time it does not have"
    );
    let s = store.get(&m1).await.unwrap().unwrap().schedule.unwrap();
    assert_eq!(s.queued_at, Some(now));
    assert!(
        store
            .due(now, now, 100)
            .await
            .unwrap()
            .iter()
            .map(|d| d.key.id.as_str())
            .eq(["many-3"]),
        "marked watches are not due"
    );
    assert!(
        store
            .mark_queued_many(&[], now, 4)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn due_pages<S: WatchStore>(store: &S) {
    let now = 2_000_000;
    let mut expected = Vec::new();
    for i in 0..23 {
        let k = Key::watch(T, &format!("page{i:02}"));
        // Some share a due time: pages must not lose or repeat ties.
        let due = now - 100 + (i / 3);
        store
            .put(
                &k,
                json!({"url": i}),
                Some(Schedule::due_at(due)),
                Expect::Absent,
            )
            .await
            .unwrap();
        expected.push(k);
    }
    let mut seen = Vec::new();
    for part in 0..store.due_parts() {
        let mut after: Option<DueWatch> = None;
        let mut last_due = i64::MIN;
        loop {
            let page = store
                .due_page(part, now, now, after.as_ref(), 4)
                .await
                .unwrap();
            assert!(page.len() <= 4);
            for d in &page {
                assert!(d.next_check_at >= last_due, "soonest first within a part");
                last_due = d.next_check_at;
                seen.push(d.key.clone());
            }
            if page.len() < 4 {
                break;
            }
            after = page.last().cloned();
        }
    }
    seen.retain(|k| k.id.starts_with("page"));
    seen.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(seen, expected, "every due watch once");
}

/// Snapshots: timestamps, collisions, compression round trip, HTML kept for two, trimming,
/// history deletion, deletion with the watch.
pub async fn snapshots<S: WatchStore>(store: &S) {
    let k = Key::watch(T, "snap");
    store
        .put(
            &k,
            json!({"url": "s"}),
            Some(Schedule::due_at(0)),
            Expect::Absent,
        )
        .await
        .unwrap();
    let big = "line of page text ".repeat(50_000);
    // A screenshot is binary and may be larger than one store item (AWS: 400 KB).
    let image = |i: usize| -> Vec<u8> {
        let len = if i == 3 { 900_000 } else { 1000 + i };
        (0..len).map(|n| ((n * 7 + i) % 256) as u8).collect()
    };
    let mut stored = Vec::new();
    for (i, ts) in [100, 100, 50, 200].into_iter().enumerate() {
        store.claim(&k, "w", 10_000, 0).await.unwrap().unwrap();
        let text = if i == 0 {
            big.clone()
        } else {
            format!("version {i}")
        };
        let out = store
            .commit_check(
                &k,
                "w",
                CheckCommit {
                    patch: serde_json::Map::new(),
                    next_check_at: Some(1),
                    due_at: i as i64,
                    job_id: format!("job-{i}"),
                    snapshot: Some(NewSnapshot {
                        ts,
                        text: text.clone(),
                        html: Some(format!("<p>{i}</p>")),
                        screenshot: (i != 2).then(|| image(i)),
                    }),
                    base: None,
                    history_max: Some(3),
                    text_before_filters: Some(format!("before filters {i}")),
                },
            )
            .await
            .unwrap();
        stored.push((out.snapshot_ts.unwrap(), text));
        assert_eq!(out.history_len, (i + 1).min(3));
    }
    // 100, then a collision moves to 101, an older ts moves past the newest (102), then 200.
    assert_eq!(
        stored.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        [100, 101, 102, 200]
    );
    assert_eq!(
        store.snapshots(&k).await.unwrap(),
        [101, 102, 200],
        "trimmed to the newest 3"
    );
    assert_eq!(
        store.get(&k).await.unwrap().unwrap().history,
        HistoryMeta {
            count: 3,
            newest: Some(200)
        },
        "the item's history summary matches its snapshots"
    );
    assert_eq!(
        store.snapshot_text(&k, 101).await.unwrap().as_deref(),
        Some("version 1")
    );
    assert_eq!(store.snapshot_text(&k, 100).await.unwrap(), None);
    assert_eq!(
        store.snapshot_html(&k, 200).await.unwrap().as_deref(),
        Some("<p>3</p>")
    );
    assert_eq!(
        store.snapshot_html(&k, 102).await.unwrap().as_deref(),
        Some("<p>2</p>")
    );
    assert_eq!(
        store.snapshot_html(&k, 101).await.unwrap(),
        None,
        "raw HTML kept for the newest two only"
    );
    assert_eq!(
        store.snapshot_screenshot(&k, 200).await.unwrap(),
        Some(image(3)),
        "a screenshot round-trips exactly"
    );
    assert_eq!(
        store.snapshot_screenshot(&k, 102).await.unwrap(),
        None,
        "a snapshot without one has none"
    );
    assert_eq!(
        store.snapshot_screenshot(&k, 101).await.unwrap(),
        None,
        "screenshots kept for the newest two snapshots only"
    );

    // A large snapshot round-trips exactly.
    let k2 = Key::watch(T, "big");
    store
        .put(&k2, json!({}), Some(Schedule::due_at(0)), Expect::Absent)
        .await
        .unwrap();
    store.claim(&k2, "w", 10, 0).await.unwrap().unwrap();
    let out = store
        .commit_check(
            &k2,
            "w",
            CheckCommit {
                patch: Default::default(),
                next_check_at: None,
                due_at: 0,
                job_id: "big".into(),
                snapshot: Some(NewSnapshot {
                    ts: 5,
                    text: big.clone(),
                    html: None,
                    screenshot: None,
                }),
                base: None,
                history_max: None,
                text_before_filters: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .snapshot_text(&k2, out.snapshot_ts.unwrap())
            .await
            .unwrap()
            .as_deref(),
        Some(big.as_str())
    );

    assert_eq!(
        store.text_before_filters(&k).await.unwrap().as_deref(),
        Some("before filters 3"),
        "the newest kept text wins"
    );
    assert_eq!(
        store.text_before_filters(&k2).await.unwrap(),
        None,
        "a commit without one keeps none"
    );
    let before = store.get(&k).await.unwrap().unwrap();
    store.delete_history(&k).await.unwrap();
    assert!(store.snapshots(&k).await.unwrap().is_empty());
    assert_eq!(store.snapshot_screenshot(&k, 200).await.unwrap(), None);
    let after = store.get(&k).await.unwrap().unwrap();
    assert_eq!(after.history, HistoryMeta::default());
    assert!(
        after.version > before.version,
        "clearing history is a change"
    );
    assert_eq!(
        store.text_before_filters(&k).await.unwrap(),
        None,
        "deleting history forgets the kept text"
    );
    store.delete(&k2, Expect::Exists).await.unwrap();
    assert!(
        store.snapshots(&k2).await.unwrap().is_empty(),
        "deleting a watch deletes its snapshots"
    );
}

/// Change events: every committed write, with old and new images, in order.
pub async fn change_feed<S: WatchStore, F: ChangeFeed>(store: &S, feed: &F) {
    let mut rx = feed.subscribe();
    let k = Key::watch(T, "fed");
    store
        .put(
            &k,
            json!({"url": "1"}),
            Some(Schedule::due_at(5)),
            Expect::Absent,
        )
        .await
        .unwrap();
    let ev = next_event(&mut rx).await;
    assert_eq!(ev.key, k);
    assert!(ev.old.is_none());
    assert_eq!(ev.new.as_ref().unwrap().doc.value().unwrap()["url"], "1");

    store
        .put(&k, json!({"url": "2"}), None, Expect::Version(1))
        .await
        .unwrap();
    let ev = next_event(&mut rx).await;
    assert_eq!(ev.old.as_ref().unwrap().doc.value().unwrap()["url"], "1");
    assert_eq!(ev.new.as_ref().unwrap().doc.value().unwrap()["url"], "2");

    // A failed conditional write publishes nothing.
    let _ = store
        .put(&k, json!({"url": "x"}), None, Expect::Version(1))
        .await;
    store
        .mark_queued(&CheckJob::new(&k, 10, Lane::Recheck, 1, 10), 10)
        .await
        .unwrap();
    let ev = next_event(&mut rx).await;
    assert_eq!(
        ev.new
            .as_ref()
            .unwrap()
            .schedule
            .as_ref()
            .unwrap()
            .queued_at,
        Some(10),
        "queue marks are published"
    );
    assert_eq!(ev.new.as_ref().unwrap().doc.value().unwrap()["url"], "2");

    store.delete(&k, Expect::Exists).await.unwrap();
    let ev = next_event(&mut rx).await;
    assert!(ev.new.is_none());
    assert_eq!(ev.old.unwrap().doc.value().unwrap()["url"], "2");
}

/// The next event, within a bound (a stream-backed feed delivers after a poll, not at once).
async fn next_event(rx: &mut tokio::sync::broadcast::Receiver<ChangeEvent>) -> ChangeEvent {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("a change event within 20 s")
        .unwrap()
}

fn job(id: &str, lane: Lane, priority: i64) -> CheckJob {
    CheckJob {
        id: format!("job-{id}"),
        tenant: T.into(),
        watch_id: id.into(),
        due_at: priority,
        lane,
        priority,
        enqueued_at: 0,
    }
}

/// Job queue, what every adapter (SQS included) promises: nothing waiting means `None` after
/// the wait; manual rechecks are delivered before scheduled checks; every job arrives once; depth
/// counts both lanes.
pub async fn job_queue<Q: JobQueue>(q: &Q) {
    assert!(
        q.dequeue(Duration::from_millis(20))
            .await
            .unwrap()
            .is_none()
    );
    q.enqueue(vec![
        job("s2", Lane::Scheduled, 200),
        job("s1", Lane::Scheduled, 100),
        job("r1", Lane::Recheck, 1),
    ])
    .await
    .unwrap();
    assert_eq!(
        q.depth().await.unwrap(),
        QueueDepth {
            rechecks: 1,
            scheduled: 2
        }
    );
    let mut got = Vec::new();
    while let Some(j) = q.dequeue(Duration::from_millis(200)).await.unwrap() {
        assert_eq!(j.id, format!("job-{}", j.watch_id), "the job arrives whole");
        assert_eq!(j.tenant, T);
        got.push(j.watch_id);
    }
    assert_eq!(
        got.first().map(String::as_str),
        Some("r1"),
        "rechecks first"
    );
    got.sort();
    assert_eq!(got, ["r1", "s1", "s2"], "each job exactly once");
    assert_eq!(q.depth().await.unwrap().total(), 0);
}

/// Job queue, what a queue held by this process adds: one entry per watch (the better
/// priority wins), priority order within a lane, a snapshot of the order, removal.
pub async fn job_queue_ordering<Q: JobQueue + QueueAdmin>(q: &Q) {
    q.enqueue(vec![
        job("s2", Lane::Scheduled, 200),
        job("s1", Lane::Scheduled, 100),
        job("r1", Lane::Recheck, 1),
    ])
    .await
    .unwrap();
    // The same watch again: merged, the better priority wins.
    q.enqueue(vec![
        job("s2", Lane::Scheduled, 50),
        job("s1", Lane::Scheduled, 900),
    ])
    .await
    .unwrap();
    assert_eq!(
        q.depth().await.unwrap(),
        QueueDepth {
            rechecks: 1,
            scheduled: 2
        }
    );
    let order: Vec<String> = q
        .snapshot(T)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.watch_id)
        .collect();
    assert_eq!(order, ["r1", "s2", "s1"]);
    assert_eq!(q.waiting(T).await.unwrap(), 3);
    assert_eq!(q.remove(T, &["s1".to_string()]).await.unwrap(), 1);
    assert_eq!(q.waiting(T).await.unwrap(), 2);
    let mut got = Vec::new();
    while let Some(j) = q.dequeue(Duration::from_millis(20)).await.unwrap() {
        got.push(j.watch_id);
    }
    assert_eq!(got, ["r1", "s2"]);
    assert_eq!(q.depth().await.unwrap().total(), 0);
}

fn notification(id: &str) -> NotificationJob {
    NotificationJob {
        id: id.to_string(),
        tenant: T.to_string(),
        watch_id: Some(format!("w-{id}")),
        kind: "change".into(),
        url: format!("json://127.0.0.1/{id}"),
        title: "Title ü".into(),
        body: "line 1\n<b>line 2</b>".into(),
        format: "html".into(),
        created_at: 1_700_000_000,
        screenshot: Some(1_700_000_001),
    }
}

/// Notification queue: jobs arrive whole, a received job is hidden for its lease and comes back
/// after it with a higher attempt count, `retry_after` delays it, `ack` removes it for good.
pub async fn notification_queue<Q: NotificationQueue>(q: &Q) {
    let lease = Duration::from_secs(30);
    assert!(q.receive(10, lease).await.unwrap().is_empty());
    q.send(vec![notification("a"), notification("b")])
        .await
        .unwrap();
    assert_eq!(q.depth().await.unwrap(), 2);
    let mut got = q.receive(10, lease).await.unwrap();
    if got.len() < 2 {
        // SQS may hand out fewer than asked for per call.
        got.extend(q.receive(10, lease).await.unwrap());
    }
    got.sort_by(|x, y| x.job.id.cmp(&y.job.id));
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].job, notification("a"), "the job arrives whole");
    assert_eq!(got[0].attempt, 1);
    assert!(
        q.receive(10, lease).await.unwrap().is_empty(),
        "received jobs are hidden for their lease"
    );
    assert_eq!(q.depth().await.unwrap(), 2, "in-flight jobs still count");

    q.ack(&got[0].receipt).await.unwrap();
    q.retry_after(&got[1].receipt, Duration::ZERO)
        .await
        .unwrap();
    let again = q.receive(10, lease).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].job.id, "b");
    assert_eq!(again[0].attempt, 2, "a retry counts as another attempt");

    // A short lease runs out: the job comes back by itself.
    q.retry_after(&again[0].receipt, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(q.receive(10, lease).await.unwrap().is_empty());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let third = loop {
        let got = q.receive(10, lease).await.unwrap();
        if !got.is_empty() || std::time::Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(third.len(), 1, "a delayed job becomes visible again");
    assert_eq!(third[0].attempt, 3);
    q.ack(&third[0].receipt).await.unwrap();
    assert_eq!(q.depth().await.unwrap(), 0);

    // A final failure leaves the queue for the dead letters, and is not offered again.
    let before = q.dead_letter_depth().await.unwrap();
    q.send(vec![notification("c")]).await.unwrap();
    let got = q.receive(10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(got.len(), 1);
    q.dead_letter(&got[0], "HTTP 404 from the receiver")
        .await
        .unwrap();
    assert_eq!(
        q.depth().await.unwrap(),
        0,
        "a dead letter leaves the queue"
    );
    assert_eq!(q.dead_letter_depth().await.unwrap(), before + 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        q.receive(10, lease).await.unwrap().is_empty(),
        "a dead letter is not offered again when its lease would have ended"
    );
}
