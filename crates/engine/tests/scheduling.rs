//! The scheduler tick and the worker pool over the real embedded store and queue.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use changewatch_engine::pool::{IdleTrim, JobRunner, WorkerPool};
use changewatch_engine::scheduler::{
    MAX_QUEUE_SIZE, TickOptions, request_recheck, tick, tick_with,
};
use changewatch_store::sqlite::SqliteStore;
use changewatch_store::sqlite::queue::SqliteQueue;
use changewatch_store::{CheckJob, Expect, JobQueue, Key, Lane, QueueAdmin, Schedule, WatchStore};
use serde_json::json;

async fn store_with(due: &[(&str, Option<i64>)]) -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_dir(dir.path()).unwrap();
    for (id, at) in due {
        let schedule = Schedule {
            next_check_at: *at,
            ..Schedule::default()
        };
        store
            .put(
                &Key::watch("default", id),
                json!({"url": id}),
                Some(schedule),
                Expect::Absent,
            )
            .await
            .unwrap();
    }
    (dir, store)
}

#[tokio::test]
async fn tick_queues_each_due_watch_once() {
    let (_d, store) = store_with(&[
        ("a", Some(90)),
        ("b", Some(100)),
        ("later", Some(500)),
        ("paused", None),
    ])
    .await;
    let queue = store.job_queue();
    let r = tick(&store, &queue, 100, 0).await.unwrap();
    assert_eq!((r.due, r.queued, r.already_queued), (2, 2, 0));
    let jobs = queue.snapshot("default").await.unwrap();
    assert_eq!(
        jobs.iter()
            .map(|j| (j.watch_id.as_str(), j.due_at))
            .collect::<Vec<_>>(),
        [("a", 90), ("b", 100)]
    );
    // The next tick finds nothing new: the watches are marked queued.
    let r = tick(&store, &queue, 101, 0).await.unwrap();
    assert_eq!(r.queued, 0);
    assert_eq!(queue.depth().await.unwrap().total(), 2);
    // A horizon reaches ahead (AWS mode sends those with a delay).
    let r = tick(&store, &queue, 101, 400).await.unwrap();
    assert_eq!(r.queued, 1);
}

#[tokio::test]
async fn a_tick_pages_stops_at_its_deadline_and_skips_paused_tenants() {
    let due: Vec<(String, Option<i64>)> = (0..25)
        .map(|i| (format!("w{i:02}"), Some(50 + i)))
        .collect();
    let refs: Vec<(&str, Option<i64>)> = due.iter().map(|(id, at)| (id.as_str(), *at)).collect();
    let (_d, store) = store_with(&refs).await;
    let queue = store.job_queue();
    let opts = |deadline| TickOptions {
        page: 4,
        deadline,
        ..TickOptions::embedded(0)
    };
    // A deadline already passed: nothing is read, nothing is left half-done.
    let r = tick_with(&store, &queue, 100, &opts(Some(Instant::now())))
        .await
        .unwrap();
    assert!(r.cut_short);
    assert_eq!((r.due, r.queued), (0, 0));
    // Everything paused in the settings: read, not queued.
    store
        .put(
            &Key::settings("default"),
            json!({"application": {"all_paused": true}}),
            None,
            Expect::Any,
        )
        .await
        .unwrap();
    let r = tick_with(&store, &queue, 100, &opts(None)).await.unwrap();
    assert_eq!((r.due, r.paused, r.queued), (25, 25, 0));
    assert_eq!(queue.depth().await.unwrap().total(), 0);
    store
        .put(
            &Key::settings("default"),
            json!({"application": {"all_paused": false}}),
            None,
            Expect::Any,
        )
        .await
        .unwrap();
    // Pages of four: all 25 in seven pages, each once.
    let r = tick_with(&store, &queue, 100, &opts(None)).await.unwrap();
    assert_eq!((r.due, r.queued, r.pages, r.cut_short), (25, 25, 7, false));
    let jobs = queue.snapshot("default").await.unwrap();
    let mut ids: Vec<&str> = jobs.iter().map(|j| j.watch_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 25);
}

#[tokio::test]
async fn a_tick_queues_no_more_once_the_queue_holds_its_cap() {
    let due: Vec<(String, Option<i64>)> = (0..6).map(|i| (format!("w{i}"), Some(50 + i))).collect();
    let refs: Vec<(&str, Option<i64>)> = due.iter().map(|(id, at)| (id.as_str(), *at)).collect();
    let (_d, store) = store_with(&refs).await;
    let queue = store.job_queue();
    // A manual recheck waiting already counts toward the cap, as in upstream's qsize().
    let recheck = CheckJob::new(&Key::watch("default", "other"), 100, Lane::Recheck, 1, 100);
    queue.enqueue(vec![recheck]).await.unwrap();
    let opts = TickOptions {
        queue_cap: Some(4),
        ..TickOptions::embedded(0)
    };
    let scheduled = |jobs: Vec<CheckJob>| -> Vec<String> {
        jobs.into_iter()
            .filter(|j| j.lane == Lane::Scheduled)
            .map(|j| j.watch_id)
            .collect()
    };
    let r = tick_with(&store, &queue, 100, &opts).await.unwrap();
    assert_eq!((r.due, r.queued, r.cut_short), (3, 3, true));
    // The most overdue first.
    assert_eq!(
        scheduled(queue.snapshot("default").await.unwrap()),
        ["w0", "w1", "w2"]
    );
    // Full: nothing is read, and the rest stay due in the store.
    let r = tick_with(&store, &queue, 101, &opts).await.unwrap();
    assert_eq!((r.due, r.queued, r.cut_short), (0, 0, true));
    // Two leave (the recheck, then w0): two more go in, the next most overdue.
    for _ in 0..2 {
        queue.dequeue(Duration::ZERO).await.unwrap().unwrap();
    }
    let r = tick_with(&store, &queue, 102, &opts).await.unwrap();
    assert_eq!((r.due, r.queued), (2, 2));
    assert_eq!(
        scheduled(queue.snapshot("default").await.unwrap()),
        ["w1", "w2", "w3", "w4"]
    );
    // Embedded mode's tick has upstream's cap.
    assert_eq!(TickOptions::embedded(0).queue_cap, Some(MAX_QUEUE_SIZE));
    assert_eq!(MAX_QUEUE_SIZE, 5000);
}

#[tokio::test]
async fn manual_recheck_goes_first() {
    let (_d, store) = store_with(&[("a", Some(90)), ("b", Some(5000))]).await;
    let queue = store.job_queue();
    tick(&store, &queue, 100, 0).await.unwrap();
    assert!(
        request_recheck(&store, &queue, &Key::watch("default", "b"), 100)
            .await
            .unwrap()
    );
    assert!(
        !request_recheck(&store, &queue, &Key::watch("default", "missing"), 100)
            .await
            .unwrap()
    );
    let first = queue
        .dequeue(Duration::from_millis(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (first.watch_id.as_str(), first.lane, first.priority),
        ("b", Lane::Recheck, 1)
    );
}

struct Recorder {
    seen: Mutex<Vec<String>>,
    delay: Duration,
}

/// A runner whose every check takes `delay` and records its watch id.
fn recorder(delay: Duration) -> Arc<Recorder> {
    Arc::new(Recorder {
        seen: Mutex::new(Vec::new()),
        delay,
    })
}

#[async_trait]
impl JobRunner for Recorder {
    async fn run(&self, job: CheckJob) {
        tokio::time::sleep(self.delay).await;
        self.seen.lock().unwrap().push(job.watch_id);
    }
}

/// A queue for tests of the pool alone: the queue of an empty store.
async fn bare_queue() -> (tempfile::TempDir, Arc<SqliteQueue>) {
    let (dir, store) = store_with(&[]).await;
    (dir, Arc::new(store.job_queue()))
}

fn job(id: &str) -> CheckJob {
    CheckJob {
        id: format!("job-{id}"),
        tenant: "default".into(),
        watch_id: id.into(),
        due_at: 1,
        lane: Lane::Scheduled,
        priority: 1,
        enqueued_at: 1,
    }
}

#[tokio::test]
async fn pool_runs_jobs_concurrently_and_reports_running() {
    let (_d, queue) = bare_queue().await;
    let runner = recorder(Duration::from_millis(300));
    let pool = WorkerPool::start(3, queue.clone(), runner.clone());
    queue
        .enqueue(vec![job("a"), job("b"), job("c"), job("d")])
        .await
        .unwrap();
    let state = pool.state();
    wait_until("three workers busy at once", || state.running_count() == 3).await;
    assert_eq!(queue.depth().await.unwrap().total(), 1);
    // Shutdown lets running checks finish within the grace period; the waiting job stays queued.
    let cut = pool.shutdown(Duration::from_secs(5)).await;
    assert!(cut.is_empty());
    let mut seen = runner.seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, ["a", "b", "c"]);
    assert_eq!(queue.depth().await.unwrap().total(), 1);
}

#[tokio::test]
async fn shutdown_cuts_off_checks_that_overrun_the_grace_period() {
    let (_d, queue) = bare_queue().await;
    let runner = recorder(Duration::from_secs(30));
    let pool = WorkerPool::start(1, queue.clone(), runner.clone());
    queue.enqueue(vec![job("slow")]).await.unwrap();
    let state = pool.state();
    wait_until("the slow check running", || state.running_count() == 1).await;
    let cut = pool.shutdown(Duration::from_millis(200)).await;
    assert_eq!(cut, ["slow"]);
    assert!(runner.seen.lock().unwrap().is_empty());
}

/// Polls `cond` until it holds (a loaded runner may take a while to start tasks); fails after
/// 10 s. Asserting after a fixed sleep instead flakes on a busy 2-core machine.
async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

static TRIMS_ASKED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn counting_trim() -> bool {
    TRIMS_ASKED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    true
}

#[tokio::test]
async fn pool_trims_the_heap_once_idle_and_never_while_a_check_runs() {
    let (_d, queue) = bare_queue().await;
    let runner = recorder(Duration::from_millis(10));
    let idle = IdleTrim {
        after: Duration::from_millis(50),
        trim: counting_trim,
    };
    let pool = WorkerPool::start_with(2, queue.clone(), runner.clone(), idle);
    let state = pool.state();
    assert_eq!(state.idle_trims(), 0, "no trim before any check ran");
    queue.enqueue(vec![job("a"), job("b")]).await.unwrap();
    wait_until("a trim after the burst", || state.idle_trims() == 1).await;
    assert_eq!(TRIMS_ASKED.load(std::sync::atomic::Ordering::SeqCst), 1);

    // A long check: the trim waits for it, however long past `after` it runs.
    let slow = recorder(Duration::from_millis(400));
    let (_d2, queue2) = bare_queue().await;
    let pool2 = WorkerPool::start_with(1, queue2.clone(), slow.clone(), idle);
    let state2 = pool2.state();
    queue2.enqueue(vec![job("slow")]).await.unwrap();
    wait_until("the slow check running", || state2.running_count() == 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(state2.idle_trims(), 0, "trimmed while a check was running");
    wait_until("a trim after the slow check", || state2.idle_trims() == 1).await;
    assert_eq!(slow.seen.lock().unwrap().as_slice(), ["slow"]);

    pool.shutdown(Duration::from_secs(5)).await;
    pool2.shutdown(Duration::from_secs(5)).await;
}
