//! Notifications in AWS mode against moto: a checker with the `notifications` queue queues a
//! job when a watch changes; the notifier handler delivers it from SQS batches shaped as Lambda
//! delivers them, retries with the message's visibility, and a receiver that never accepts ends
//! in the dead-letter queue with the failure recorded on the watch and in the log.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use changewatch_aws::{AwsConfig, Clients, notifier};
use changewatch_engine::checker::{Checker, JobOutcome, epoch_now};
use changewatch_engine::notifications::{Dispatcher, NOTIFICATION_ERROR, read_log};
use changewatch_sandbox::Sandbox;
use changewatch_store::aws::provision::{Provisioned, provision};
use changewatch_store::{CheckJob, Expect, Key, Lane, NotificationQueue, Schedule, WatchStore};
use serde_json::{Value, json};
use testkit::capture::CaptureServer;
use testkit::moto::MotoServer;
use testkit::{FixtureServer, Page};

const ATTEMPTS: u32 = 3;

struct Env {
    clients: Clients,
    config: AwsConfig,
    res: Provisioned,
}

async fn setup() -> Env {
    setup_with(&[]).await
}

/// The notifier's environment as the stack sets it, plus `extra`.
async fn setup_with(extra: &[(&'static str, String)]) -> Env {
    let moto = MotoServer::shared();
    let conf = moto.sdk_config().await;
    let clients = Clients::from_conf(&conf);
    let prefix = testkit::moto::unique_prefix("nt");
    let res = provision(&clients.dynamodb, &clients.sqs, &prefix, 2, 30, ATTEMPTS)
        .await
        .unwrap();
    let mut env: HashMap<&str, String> = HashMap::from([
        ("CW_WATCHES_TABLE", res.resources.watches_table.clone()),
        ("CW_SNAPSHOTS_TABLE", res.resources.snapshots_table.clone()),
        (
            "CW_CHECKS_QUEUE_URL",
            res.resources.checks_queue_url.clone(),
        ),
        (
            "CW_RECHECKS_QUEUE_URL",
            res.resources.rechecks_queue_url.clone(),
        ),
        (
            "CW_NOTIFICATIONS_QUEUE_URL",
            res.notifications_queue_url.clone(),
        ),
        ("ALLOW_PRIVATE_ADDRESSES", "true".into()),
        ("NOTIFICATION_MAX_ATTEMPTS", ATTEMPTS.to_string()),
        ("NOTIFICATION_RETRY_DELAY_SECS", "1".into()),
        ("MINIMUM_SECONDS_RECHECK_TIME", "0".into()),
        ("BASE_URL", "https://cw.example".into()),
    ]);
    env.extend(extra.iter().cloned());
    let config = AwsConfig::from_lookup(|k| env.get(k).cloned()).unwrap();
    Env {
        clients,
        config,
        res,
    }
}

impl Env {
    /// The checker function's own wiring (store, fetcher, notifications queue).
    fn checker(&self) -> Checker {
        self.clients
            .checker(&self.config, "notify-test", Sandbox::in_process())
            .unwrap()
    }

    /// A watch notifying `hook` on a page that changes between its two checks.
    async fn changed_watch(&self, srv: &FixtureServer, hook: &str) -> Key {
        let store = self.clients.store(&self.config);
        let key = Key::watch("default", "w-1");
        srv.set("/p", Page::text("Price: 10\n"));
        store
            .put(
                &key,
                json!({
                    "url": srv.url("/p"),
                    "notification_urls": [hook],
                    "notification_format": "text",
                    "notification_body": "{{diff_url}}\n{{diff}}",
                }),
                Some(Schedule::due_at(1)),
                Expect::Absent,
            )
            .await
            .unwrap();
        let checker = self.checker();
        let job = |n: i64| CheckJob::new(&key, n, Lane::Recheck, 1, epoch_now());
        assert!(
            matches!(checker.run_job(&job(1)).await.unwrap(), JobOutcome::Checked(r) if !r.notify)
        );
        srv.set("/p", Page::text("Price: 12\n"));
        match checker.run_job(&job(2)).await.unwrap() {
            JobOutcome::Checked(r) => assert!(r.notify, "{r:?}"),
            other => panic!("{other:?}"),
        }
        key
    }

    fn dispatcher(&self) -> Arc<Dispatcher> {
        Arc::new(
            Dispatcher::from_config(
                Arc::new(self.clients.store(&self.config)),
                &self.config.base,
            )
            .unwrap(),
        )
    }

    /// Receives what is visible on `url` as the Lambda event source would hand it over.
    async fn receive_event(&self, url: &str) -> Option<SqsEvent> {
        let out = self
            .clients
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        let msgs = out.messages.unwrap_or_default();
        if msgs.is_empty() {
            return None;
        }
        let records: Vec<Value> = msgs
            .iter()
            .map(|m| {
                let attrs: HashMap<String, String> = m
                    .attributes
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k.as_str().to_string(), v))
                    .collect();
                json!({
                    "messageId": m.message_id,
                    "receiptHandle": m.receipt_handle,
                    "body": m.body,
                    "attributes": attrs,
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:notifications",
                    "awsRegion": "us-east-1",
                })
            })
            .collect();
        Some(serde_json::from_value(json!({ "Records": records })).unwrap())
    }

    /// Runs notifier batches until `done` holds (bounded: 30 s); returns the failures reported.
    async fn run_notifier(&self, done: impl Fn() -> bool) -> usize {
        let dispatcher = self.dispatcher();
        let queue: Arc<dyn NotificationQueue> =
            Arc::new(self.clients.notification_queue(&self.config).unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut failures = 0;
        while !done() {
            assert!(Instant::now() < deadline, "notifier did not finish");
            if let Some(ev) = self.receive_event(&self.res.notifications_queue_url).await {
                let resp = notifier::handle_batch(dispatcher.clone(), queue.clone(), ev).await;
                failures += resp.batch_item_failures.len();
            } else {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        failures
    }
}

#[tokio::test]
async fn a_change_is_delivered_by_the_notifier_after_a_retry() {
    let env = setup().await;
    let srv = FixtureServer::start();
    let cap = CaptureServer::start();
    cap.fail_next(1, 503);
    let key = env
        .changed_watch(&srv, &format!("json://{}/hook", cap.host_port()))
        .await;
    let failures = env.run_notifier(|| cap.requests().len() >= 2).await;
    assert_eq!(
        failures, 1,
        "the first try is reported failed, for SQS to offer it again"
    );
    let seen = cap.requests();
    let msg = seen[1].json();
    let text = msg["message"].as_str().unwrap();
    assert!(
        text.contains("https://cw.example/diff/w-1?from_version="),
        "{text}"
    );
    assert!(text.contains("(into) Price: 12"), "{text}");

    let store = env.clients.store(&env.config);
    let log = read_log(&store, "default").await.unwrap();
    assert_eq!(log[0].outcome, "sent");
    assert_eq!(log[0].attempt, 2);
    assert_eq!(log[1].outcome, "retrying");
    let w = store.get(&key).await.unwrap().unwrap();
    assert_eq!(w.doc.value().unwrap()["notification_alert_count"], 1);
    // Delivered: nothing waits any more.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        env.receive_event(&env.res.notifications_queue_url)
            .await
            .is_none()
    );
}

/// The one message in the dead-letter queue: its job and the reason it was given.
async fn dead_letter(env: &Env) -> (Value, String) {
    let out = env
        .clients
        .sqs
        .receive_message()
        .queue_url(&env.res.notifications_dlq_url)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    let msgs = out.messages.unwrap_or_default();
    assert_eq!(msgs.len(), 1, "one dead letter: {msgs:?}");
    let body = serde_json::from_str(msgs[0].body.as_deref().unwrap()).unwrap();
    let reason = msgs[0]
        .message_attributes
        .as_ref()
        .and_then(|a| a.get("reason"))
        .and_then(|v| v.string_value.clone())
        .unwrap_or_default();
    (body, reason)
}

#[tokio::test]
async fn a_receiver_that_never_accepts_ends_in_the_dead_letter_queue() {
    let env = setup().await;
    let srv = FixtureServer::start();
    let cap = CaptureServer::start();
    cap.reply("/", 500, "text/plain", "broken");
    let key = env
        .changed_watch(&srv, &format!("json://{}/hook", cap.host_port()))
        .await;
    let failures = env
        .run_notifier(|| cap.requests().len() >= ATTEMPTS as usize)
        .await;
    assert_eq!(
        failures,
        ATTEMPTS as usize - 1,
        "every try but the last is reported back for a retry"
    );

    let store = env.clients.store(&env.config);
    let w = store.get(&key).await.unwrap().unwrap();
    assert_eq!(
        w.doc.value().unwrap()["last_notification_error"],
        NOTIFICATION_ERROR
    );
    let log = read_log(&store, "default").await.unwrap();
    assert_eq!(log[0].outcome, "failed");
    assert_eq!(log[0].attempt, ATTEMPTS);

    // Settled by the notifier itself: in the DLQ with its reason, gone from the source queue.
    let (body, reason) = dead_letter(&env).await;
    assert_eq!(body["watch_id"], "w-1");
    assert!(reason.contains("500"), "{reason}");
    assert!(
        env.receive_event(&env.res.notifications_queue_url)
            .await
            .is_none()
    );
    assert_eq!(
        cap.requests().len(),
        ATTEMPTS as usize,
        "no delivery after the last try"
    );
}

#[tokio::test]
async fn a_permanent_failure_goes_to_the_dead_letter_queue_at_once() {
    let env = setup().await;
    let srv = FixtureServer::start();
    let cap = CaptureServer::start();
    cap.reply("/", 404, "text/plain", "no such hook");
    env.changed_watch(&srv, &format!("json://{}/hook", cap.host_port()))
        .await;
    let failures = env.run_notifier(|| !cap.requests().is_empty()).await;
    assert_eq!(failures, 0, "nothing to retry");
    let (body, reason) = dead_letter(&env).await;
    assert_eq!(body["watch_id"], "w-1");
    assert!(reason.contains("404"), "{reason}");
    let queue = env.clients.notification_queue(&env.config).unwrap();
    assert_eq!(queue.depth().await.unwrap(), 0);
    assert_eq!(cap.requests().len(), 1, "a 4xx is not tried again");
}

#[tokio::test]
async fn the_notifier_relays_other_services_through_apprise_api_url() {
    let apprise = testkit::apprise_api::AppriseApiServer::start();
    let env = setup_with(&[("APPRISE_API_URL", apprise.base())]).await;
    let srv = FixtureServer::start();
    let cap = CaptureServer::start();
    // Home Assistant, which changewatch does not speak: apprise delivers it for the notifier.
    env.changed_watch(&srv, &format!("hassio://{}/TOKEN", cap.host_port()))
        .await;
    let failures = env.run_notifier(|| !cap.requests().is_empty()).await;
    assert_eq!(failures, 0);
    let got = cap.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/api/services/persistent_notification/create");
    assert_eq!(got[0].header("authorization"), Some("Bearer TOKEN"));
    let message = got[0].json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(message.contains("https://cw.example"), "{message}");
}
