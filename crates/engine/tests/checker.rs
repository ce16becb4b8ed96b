//! The checker end to end on the real embedded store, a real fetcher and a local fixture server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::sync::Arc;
use std::time::Duration;

use changewatch_core::budget::PageBudget;
use changewatch_core::model::Watch;
use changewatch_core::pipeline::ChangeStatus;
use changewatch_core::ssrf::AddressPolicy;
use changewatch_core::{Fetcher, FetcherConfig};
use changewatch_engine::checker::{
    CheckReport, Checker, CheckerConfig, JobOutcome, NotifySetup, epoch_now,
};
use changewatch_engine::scheduler::{request_recheck, tick};
use changewatch_store::sqlite::SqliteStore;
use changewatch_store::sqlite::queue::SqliteQueue;
use changewatch_store::{
    CheckJob, Expect, JobQueue, Key, Lane, NotificationQueue, Schedule, WatchStore,
};
use testkit::{FixtureServer, Page};

struct Rig {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    queue: SqliteQueue,
    checker: Checker,
    srv: FixtureServer,
}

fn rig() -> Rig {
    rig_with(None)
}

fn rig_with(max_fetch_timeout: Option<Duration>) -> Rig {
    rig_config(|c| c.max_fetch_timeout = max_fetch_timeout)
}

fn rig_config(adjust: impl FnOnce(&mut CheckerConfig)) -> Rig {
    let mut config =
        CheckerConfig::from_config("test-worker", &changewatch_core::Config::default());
    adjust(&mut config);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open_dir(dir.path()).unwrap());
    let fetcher = Fetcher::new(FetcherConfig {
        policy: AddressPolicy::allow_all(),
        ..FetcherConfig::default()
    })
    .unwrap();
    let checker = Checker::new(store.clone(), fetcher, config).with_notifications(NotifySetup {
        queue: store.clone(),
        base_url: None,
    });
    let queue = store.job_queue();
    Rig {
        _dir: dir,
        store,
        queue,
        checker,
        srv: FixtureServer::start(),
    }
}

impl Rig {
    async fn add(&self, id: &str, watch: Watch) -> Key {
        let key = Key::watch("default", id);
        let mut watch = watch;
        watch.uuid = id.to_string();
        self.store
            .put(
                &key,
                serde_json::to_value(&watch).unwrap(),
                Some(Schedule::due_at(0)),
                Expect::Absent,
            )
            .await
            .unwrap();
        key
    }

    /// Edits the stored watch document as a user's PUT would.
    async fn edit(&self, key: &Key, change: impl FnOnce(&mut serde_json::Value)) {
        let item = self.store.get(key).await.unwrap().unwrap();
        let mut doc = item.doc.to_value().unwrap();
        change(&mut doc);
        self.store
            .put(key, doc, None, Expect::Version(item.version))
            .await
            .unwrap();
    }

    async fn watch(&self, key: &Key) -> Watch {
        changewatch_engine::docs::decode(&self.store.get(key).await.unwrap().unwrap()).unwrap()
    }

    /// Queues whatever is due (or a manual recheck) and runs the next job.
    async fn run_next(&self) -> (CheckJob, JobOutcome) {
        let job = self
            .queue
            .dequeue(Duration::from_millis(50))
            .await
            .unwrap()
            .expect("a job is queued");
        let out = self.checker.run_job(&job).await.unwrap();
        (job, out)
    }
}

fn checked(out: JobOutcome) -> CheckReport {
    match out {
        JobOutcome::Checked(r) => r,
        other => panic!("expected a committed check, got {other:?}"),
    }
}

#[tokio::test]
async fn baseline_then_change_then_redelivery() {
    let r = rig();
    r.srv.set("/p", Page::html("<p>Price: 10</p>"));
    let mut watch = Watch::new(r.srv.url("/p"));
    watch.notification_urls = vec!["json://127.0.0.1/hook".into()];
    let key = r.add("w1", watch).await;

    let report = tick(r.store.as_ref(), &r.queue, epoch_now(), 0)
        .await
        .unwrap();
    assert_eq!(report.queued, 1);
    let (_, out) = r.run_next().await;
    let first = checked(out);
    assert_eq!(first.status, Some(ChangeStatus::Baseline));
    assert!(!first.notify, "the first check never notifies");
    let w = r.watch(&key).await;
    assert!(w.last_checked > 0);
    assert_eq!(w.check_count, 1);
    assert!(w.previous_md5.is_set());
    assert!(!w.last_error.is_set());
    assert_eq!(r.store.snapshots(&key).await.unwrap().len(), 1);
    let item = r.store.get(&key).await.unwrap().unwrap();
    let next = item.schedule.unwrap().next_check_at.unwrap();
    assert!(
        next >= w.last_checked + 3 * 3600 - 1,
        "global default interval applies"
    );

    // Same page again: no new snapshot.
    request_recheck(r.store.as_ref(), &r.queue, &key, epoch_now() + 1)
        .await
        .unwrap();
    assert_eq!(
        checked(r.run_next().await.1).status,
        Some(ChangeStatus::Unchanged)
    );
    assert_eq!(r.store.snapshots(&key).await.unwrap().len(), 1);

    // The page changes: a second snapshot, and a notification is due.
    r.srv.set("/p", Page::html("<p>Price: 11</p>"));
    request_recheck(r.store.as_ref(), &r.queue, &key, epoch_now() + 2)
        .await
        .unwrap();
    let (job, out) = r.run_next().await;
    let changed = checked(out);
    assert_eq!(changed.status, Some(ChangeStatus::Changed));
    assert_eq!(changed.history_len, 2);
    assert!(changed.notify);
    let queued = r.store.receive(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(queued.len(), 1, "one notification job for the one URL");
    assert_eq!(queued[0].job.url, "json://127.0.0.1/hook");
    let hist = r.store.snapshots(&key).await.unwrap();
    assert_eq!(
        r.store
            .snapshot_text(&key, hist[1])
            .await
            .unwrap()
            .as_deref(),
        Some("Price: 11")
    );
    // Checks within the same second still give last_checked == the change's snapshot time.
    assert_eq!(r.watch(&key).await.last_checked, hist[1]);
    assert_eq!(
        r.store
            .snapshot_html(&key, hist[1])
            .await
            .unwrap()
            .as_deref(),
        Some("<p>Price: 11</p>")
    );

    // SQS-style redelivery of the same job changes nothing.
    let before = r.store.get(&key).await.unwrap().unwrap();
    assert_eq!(
        r.checker.run_job(&job).await.unwrap(),
        JobOutcome::Skipped("already checked (redelivered job)")
    );
    let after = r.store.get(&key).await.unwrap().unwrap();
    assert_eq!(before.version, after.version);
    assert_eq!(
        after.schedule.unwrap().lease_owner,
        None,
        "the skip releases the lease"
    );
}

#[tokio::test]
async fn errors_are_recorded_on_the_watch() {
    let r = rig();
    r.srv.set("/gone", Page::html("x").status(404));
    r.srv.set("/p", Page::html("<div id=a>text</div>"));
    let gone = r.add("gone", Watch::new(r.srv.url("/gone"))).await;
    let mut filtered = Watch::new(r.srv.url("/p"));
    filtered.include_filters = vec!["#missing".into()];
    let filtered = r.add("filtered", filtered).await;

    tick(r.store.as_ref(), &r.queue, epoch_now(), 0)
        .await
        .unwrap();
    for _ in 0..2 {
        let out = checked(r.run_next().await.1);
        assert!(out.error.is_some());
    }
    let w = r.watch(&gone).await;
    assert_eq!(
        w.last_error.as_str(),
        Some("Error - 404 (Page not found) received")
    );
    assert_eq!(w.check_count, 1);
    assert!(r.store.snapshots(&gone).await.unwrap().is_empty());
    let w = r.watch(&filtered).await;
    assert!(
        w.last_error
            .as_str()
            .unwrap()
            .starts_with("Warning, no filters were found")
    );
    assert_eq!(w.consecutive_filter_failures, 1);

    // The filter is fixed: the error clears and the failure count resets.
    r.edit(&filtered, |doc| {
        doc["include_filters"] = serde_json::json!(["#a"])
    })
    .await;
    request_recheck(r.store.as_ref(), &r.queue, &filtered, epoch_now() + 1)
        .await
        .unwrap();
    let out = checked(r.run_next().await.1);
    assert_eq!(out.status, Some(ChangeStatus::Baseline));
    let w = r.watch(&filtered).await;
    assert!(!w.last_error.is_set());
    assert_eq!(w.consecutive_filter_failures, 0);
}

#[tokio::test]
async fn a_leased_watch_is_busy_and_an_expired_lease_is_taken_over() {
    let r = rig();
    r.srv.set("/p", Page::html("<p>a</p>"));
    let key = r.add("w", Watch::new(r.srv.url("/p"))).await;
    let now = epoch_now();
    // Another checker (a crashed one, say) holds a lease that has not expired.
    assert!(
        r.store
            .claim(&key, "other", now + 5, now)
            .await
            .unwrap()
            .is_some()
    );
    let job = CheckJob {
        id: "job-1".into(),
        tenant: "default".into(),
        watch_id: "w".into(),
        due_at: now,
        lane: Lane::Scheduled,
        priority: now,
        enqueued_at: now,
    };
    assert_eq!(
        r.checker.run_job(&job).await.unwrap(),
        JobOutcome::Busy {
            lease_until: Some(now + 5)
        },
        "busy, and until when"
    );
    // After expiry the watch is claimable again and the check runs.
    assert!(
        r.store
            .claim(&key, "other", now - 1, now - 100)
            .await
            .unwrap()
            .is_some()
    );
    let out = checked(r.checker.run_job(&job).await.unwrap());
    assert_eq!(out.status, Some(ChangeStatus::Baseline));
}

#[tokio::test]
async fn paused_watches_skip_scheduled_jobs_but_take_manual_rechecks() {
    let r = rig();
    r.srv.set("/p", Page::html("<p>a</p>"));
    let mut w = Watch::new(r.srv.url("/p"));
    w.paused = true;
    let key = r.add("w", w).await;
    let now = epoch_now();
    let mut job = CheckJob {
        id: "job-2".into(),
        tenant: "default".into(),
        watch_id: "w".into(),
        due_at: now,
        lane: Lane::Scheduled,
        priority: now,
        enqueued_at: now,
    };
    assert_eq!(
        r.checker.run_job(&job).await.unwrap(),
        JobOutcome::Skipped("paused")
    );
    job.lane = Lane::Recheck;
    checked(r.checker.run_job(&job).await.unwrap());
    let item = r.store.get(&key).await.unwrap().unwrap();
    assert_eq!(
        item.schedule.unwrap().next_check_at,
        None,
        "a paused watch is never due"
    );
}

#[tokio::test]
async fn the_fetch_budget_caps_a_longer_timeout_setting() {
    // Settings allow 45 s; the runtime (a Lambda invocation) allows 1 s: the budget wins.
    let r = rig_with(Some(Duration::from_secs(1)));
    r.srv.set(
        "/slow",
        Page::html("<p>late</p>").delay(Duration::from_secs(3)),
    );
    let key = r.add("slow", Watch::new(r.srv.url("/slow"))).await;
    tick(r.store.as_ref(), &r.queue, epoch_now(), 0)
        .await
        .unwrap();
    let out = checked(r.run_next().await.1);
    let err = out.error.expect("the fetch is cut off at the budget");
    assert!(err.to_lowercase().contains("timed out"), "{err}");
    assert!(r.store.snapshots(&key).await.unwrap().is_empty());
}

/// In a process stopped at a deadline (a Lambda invocation), the lease ends by then: a killed
/// invocation's watch is free as soon as nothing can be holding it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_never_outlives_the_deadline() {
    let r = Arc::new(rig());
    r.srv.set(
        "/slow",
        Page::html("<p>slow</p>").delay(Duration::from_secs(2)),
    );
    let key = r.add("w", Watch::new(r.srv.url("/slow"))).await;
    let now = epoch_now();
    let job = CheckJob {
        id: "job-d".into(),
        tenant: "default".into(),
        watch_id: "w".into(),
        due_at: now,
        lane: Lane::Recheck,
        priority: now,
        enqueued_at: now,
    };
    let deadline = now + 30;
    let running = {
        let (r, job) = (r.clone(), job.clone());
        tokio::spawn(async move { r.checker.run_job_by(&job, Some(deadline)).await })
    };
    let lease = loop {
        let s = r.store.get(&key).await.unwrap().unwrap().schedule.unwrap();
        if let Some(until) = s.lease_until.filter(|_| s.lease_owner.is_some()) {
            break until;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        lease <= deadline,
        "lease until {lease}, deadline {deadline} (the usual lease: 45 s + 60 s)"
    );
    checked(running.await.unwrap().unwrap());
}

fn recheck_job(id: &str, watch_id: &str) -> CheckJob {
    let now = epoch_now();
    CheckJob {
        id: id.into(),
        tenant: "default".into(),
        watch_id: watch_id.into(),
        due_at: now,
        lane: Lane::Recheck,
        priority: now,
        enqueued_at: now,
    }
}

/// A check that would run past its invocation's end is stopped in time to commit: the watch
/// gets an error and its lease back, instead of the invocation dying with the whole batch.
#[tokio::test]
async fn a_check_past_its_deadline_is_committed_with_an_error_in_time() {
    let r = rig_config(|c| c.commit_margin = Duration::from_secs(5));
    r.srv.set(
        "/slow",
        Page::html("<p>late</p>").delay(Duration::from_secs(30)),
    );
    let key = r.add("slow", Watch::new(r.srv.url("/slow"))).await;
    let deadline = epoch_now() + 7;
    let out = r
        .checker
        .run_job_by(&recheck_job("j1", "slow"), Some(deadline))
        .await
        .unwrap();
    assert!(epoch_now() < deadline, "committed before the deadline");
    let err = checked(out).error.expect("the check is stopped");
    assert!(err.contains("did not finish within"), "{err}");
    let w = r.watch(&key).await;
    assert!(w.last_error.is_set());
    let schedule = r.store.get(&key).await.unwrap().unwrap().schedule.unwrap();
    assert!(schedule.lease_owner.is_none(), "the lease is released");
}

/// A page larger than the checker's page budget fails its own check with a clear error; the
/// next check of an ordinary page is unaffected.
#[tokio::test]
async fn a_page_over_the_page_budget_fails_its_own_check() {
    let r =
        rig_config(|c| c.page_budget = Some(Arc::new(PageBudget::new(2, 64 * 1024, 100 * 1024))));
    r.srv.set(
        "/big",
        Page::html(format!("<p>{}</p>", "x".repeat(300_000))),
    );
    r.srv.set("/small", Page::html("<p>fine</p>"));
    r.add("big", Watch::new(r.srv.url("/big"))).await;
    r.add("small", Watch::new(r.srv.url("/small"))).await;
    let big = checked(r.checker.run_job(&recheck_job("j1", "big")).await.unwrap());
    let err = big.error.expect("over the budget");
    assert!(err.contains("one check may hold"), "{err}");
    let small = checked(
        r.checker
            .run_job(&recheck_job("j2", "small"))
            .await
            .unwrap(),
    );
    assert_eq!(small.error, None);
    assert_eq!(small.status, Some(ChangeStatus::Baseline));
}

/// Rechecks `key` now and runs its job.
async fn recheck(r: &Rig, key: &Key, at: i64) -> CheckReport {
    request_recheck(r.store.as_ref(), &r.queue, key, at)
        .await
        .unwrap();
    checked(r.run_next().await.1)
}

#[tokio::test]
async fn an_unchanged_reply_is_not_processed_again_until_the_settings_change() {
    let r = rig();
    r.srv.set("/p", Page::html("<main><p>Price: 10</p></main>"));
    let key = r.add("w", Watch::new(r.srv.url("/p"))).await;
    let now = epoch_now();
    let first = recheck(&r, &key, now).await;
    assert_eq!(
        (first.status, first.reused),
        (Some(ChangeStatus::Baseline), false)
    );
    assert!(r.watch(&key).await.last_raw_checksum.is_some());

    // The same bytes: known unchanged without processing.
    let same = recheck(&r, &key, now + 1).await;
    assert_eq!(
        (same.status, same.reused),
        (Some(ChangeStatus::Unchanged), true)
    );
    assert_eq!(r.watch(&key).await.check_count, 2);

    // An edited filter must be applied to the same bytes: processed, and its error shows.
    r.edit(&key, |doc| {
        doc["include_filters"] = serde_json::json!(["#missing"])
    })
    .await;
    let missing = recheck(&r, &key, now + 2).await;
    assert!(!missing.reused);
    assert!(missing.error.is_some());
    let w = r.watch(&key).await;
    assert_eq!(
        w.last_raw_checksum, None,
        "a failed processing proves nothing"
    );

    // And the failure is not "reused" into a success: the same bytes fail again.
    let again = recheck(&r, &key, now + 3).await;
    assert!(!again.reused && again.error.is_some());

    // Global settings are part of the fingerprint too.
    r.edit(&key, |doc| {
        doc["include_filters"] = serde_json::json!(["main"])
    })
    .await;
    assert!(!recheck(&r, &key, now + 4).await.reused);
    assert!(recheck(&r, &key, now + 5).await.reused);
    let settings_key = Key::settings("default");
    let mut settings = changewatch_core::model::Settings::default();
    settings.application.global_ignore_text = vec!["nothing".into()];
    r.store
        .put(
            &settings_key,
            serde_json::to_value(&settings).unwrap(),
            None,
            Expect::Any,
        )
        .await
        .unwrap();
    assert!(!recheck(&r, &key, now + 6).await.reused);

    // New bytes are processed and recorded as a change.
    r.srv.set("/p", Page::html("<main><p>Price: 11</p></main>"));
    let changed = recheck(&r, &key, now + 7).await;
    assert_eq!(
        (changed.status, changed.reused),
        (Some(ChangeStatus::Changed), false)
    );
    assert_eq!(r.store.snapshots(&key).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_server_with_validators_answers_304_and_the_page_is_not_fetched_again() {
    let r = rig();
    let v1 = Page::html("<p>Price: 10</p>")
        .header("etag", "\"v1\"")
        .header("last-modified", "Sat, 05 Dec 2026 10:00:00 GMT");
    r.srv.set("/p", v1);
    let key = r.add("w", Watch::new(r.srv.url("/p"))).await;
    let now = epoch_now();
    recheck(&r, &key, now).await;
    let w = r.watch(&key).await;
    let validators = w.last_validators.clone().expect("validators kept");
    assert_eq!(validators.etag.as_deref(), Some("\"v1\""));

    let same = recheck(&r, &key, now + 1).await;
    assert_eq!(
        (same.status, same.reused),
        (Some(ChangeStatus::Unchanged), true)
    );
    let seen = r.srv.seen("/p");
    let last = seen.last().unwrap();
    assert_eq!(last.header("if-none-match"), Some("\"v1\""));
    assert_eq!(
        last.header("if-modified-since"),
        Some("Sat, 05 Dec 2026 10:00:00 GMT")
    );
    let w = r.watch(&key).await;
    assert_eq!(w.last_check_status, Some(304));
    assert_eq!(
        w.content_type.as_deref(),
        Some("text/html; charset=utf-8"),
        "a 304 leaves the page's content type"
    );
    assert!(!w.last_error.is_set());

    // A new version with a new ETag is fetched whole and processed.
    r.srv.set(
        "/p",
        Page::html("<p>Price: 12</p>").header("etag", "\"v2\""),
    );
    let changed = recheck(&r, &key, now + 2).await;
    assert_eq!(changed.status, Some(ChangeStatus::Changed));
    assert_eq!(
        r.watch(&key).await.last_validators.unwrap().etag.as_deref(),
        Some("\"v2\"")
    );

    // The watch's own If-None-Match header wins, and a changed request (another header)
    // sends no validators at all: a 304 speaks only for the request it answers.
    r.edit(&key, |doc| {
        doc["headers"] = serde_json::json!({"X-Token": "a"})
    })
    .await;
    let other = recheck(&r, &key, now + 3).await;
    assert!(!other.reused);
    assert_eq!(
        r.srv.seen("/p").last().unwrap().header("if-none-match"),
        None
    );
}
