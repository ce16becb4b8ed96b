//! The aws adapters (DynamoDB, SQS, DynamoDB Streams) against the same port conformance suites
//! as the SQLite adapter, on moto's server mode started by the test (see `testkit::moto`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::time::Duration;

use changewatch_store::aws::provision::{Provisioned, provision};
use changewatch_store::aws::{DynamoStore, SqsNotificationQueue, SqsQueue, StartAt, StreamFeed};
use changewatch_store::conformance;
use changewatch_store::{CheckCommit, Expect, Key, NewSnapshot, Schedule, WatchStore};
use serde_json::json;
use testkit::moto::MotoServer;

struct Aws {
    ddb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    res: Provisioned,
}

/// Fresh tables and queues (unique names) on the shared emulator.
async fn fresh() -> Aws {
    let moto = MotoServer::shared();
    let conf = moto.sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let streams = aws_sdk_dynamodbstreams::Client::new(&conf);
    let prefix = testkit::moto::unique_prefix("t");
    let res = provision(&ddb, &sqs, &prefix, 4, 30, 3).await.unwrap();
    Aws {
        ddb,
        sqs,
        streams,
        res,
    }
}

impl Aws {
    fn store(&self) -> DynamoStore {
        DynamoStore::new(self.ddb.clone(), self.res.resources.clone())
    }

    fn queue(&self) -> SqsQueue {
        SqsQueue::new(
            self.sqs.clone(),
            self.res.resources.checks_queue_url.clone(),
            self.res.resources.rechecks_queue_url.clone(),
        )
    }
}

#[tokio::test]
async fn documents() {
    let aws = fresh().await;
    conformance::documents(&aws.store()).await;
}

#[tokio::test]
async fn scheduling() {
    let aws = fresh().await;
    conformance::scheduling(&aws.store()).await;
}

#[tokio::test]
async fn mark_many() {
    let aws = fresh().await;
    conformance::mark_many(&aws.store()).await;
}

#[tokio::test]
async fn due_pages() {
    let aws = fresh().await;
    conformance::due_pages(&aws.store()).await;
}

#[tokio::test]
async fn notification_log() {
    let aws = fresh().await;
    conformance::notification_log(&aws.store()).await;
}

#[tokio::test]
async fn snapshots() {
    let aws = fresh().await;
    conformance::snapshots(&aws.store()).await;
}

#[tokio::test]
async fn change_feed() {
    let aws = fresh().await;
    let feed = StreamFeed::for_table(
        aws.streams.clone(),
        &aws.res.resources.watches_table,
        StartAt::TrimHorizon,
        Duration::from_millis(100),
    )
    .await
    .unwrap();
    conformance::change_feed(&aws.store(), &feed).await;
}

/// The feed's health is what the push service's `/healthz` answers with: a reader that keeps
/// finishing passes is healthy; one that cannot read its stream turns unhealthy after the stall
/// time, while the process itself is fine.
#[tokio::test]
async fn feed_health_follows_the_reader() {
    let aws = fresh().await;
    let feed = StreamFeed::for_table(
        aws.streams.clone(),
        &aws.res.resources.watches_table,
        StartAt::Latest,
        Duration::from_millis(100),
    )
    .await
    .unwrap();
    let health = feed.health();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while health.since_last_pass().is_none() {
        assert!(std::time::Instant::now() < deadline, "no clean pass");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(health.healthy(Duration::from_secs(2)) && health.running());

    // A stream that cannot be read (it names no stream the emulator has).
    let broken = StreamFeed::start(
        aws.streams.clone(),
        "arn:aws:dynamodb:us-east-1:123456789012:table/none/stream/2026-01-01T00:00:00.000".into(),
        StartAt::Latest,
        Duration::from_millis(100),
    );
    let bad = broken.health();
    assert!(
        bad.healthy(Duration::from_secs(60)),
        "a fresh start has its grace"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while bad.healthy(Duration::from_secs(1)) {
        assert!(
            std::time::Instant::now() < deadline,
            "never reported stalled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(bad.since_last_pass().is_none());
    assert!(bad.running(), "stalled, not stopped");
    assert!(
        health.healthy(Duration::from_secs(2)),
        "the good reader is unaffected"
    );
    drop(broken);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!bad.running(), "a reader whose task ended is stopped");
}

#[tokio::test]
async fn job_queue() {
    let aws = fresh().await;
    conformance::job_queue(&aws.queue()).await;
}

#[tokio::test]
async fn notification_queue() {
    let aws = fresh().await;
    let q = SqsNotificationQueue::new(aws.sqs.clone(), aws.res.notifications_queue_url.clone());
    conformance::notification_queue(&q).await;
}

/// Text that does not compress, larger than one DynamoDB item: stored in several chunks.
#[tokio::test]
async fn snapshots_over_the_item_limit_are_chunked() {
    let aws = fresh().await;
    let store = aws.store();
    let k = Key::watch("t", "big");
    store
        .put(&k, json!({}), Some(Schedule::due_at(0)), Expect::Absent)
        .await
        .unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let text: String = (0..900_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'!' + (x % 90) as u8)
        })
        .collect();
    store
        .claim(&k, "w", i64::MAX / 2, 0)
        .await
        .unwrap()
        .unwrap();
    let out = store
        .commit_check(
            &k,
            "w",
            CheckCommit {
                patch: Default::default(),
                next_check_at: Some(10),
                due_at: 0,
                job_id: "j".into(),
                snapshot: Some(NewSnapshot {
                    ts: 100,
                    text: text.clone(),
                    html: Some(text.clone()),
                    screenshot: None,
                }),
                base: None,
                history_max: None,
                text_before_filters: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(out.snapshot_ts, Some(100));
    assert_eq!(
        store.snapshot_text(&k, 100).await.unwrap(),
        Some(text.clone())
    );
    assert_eq!(store.snapshot_html(&k, 100).await.unwrap(), Some(text));
    assert_eq!(store.snapshots(&k).await.unwrap(), [100]);
}
