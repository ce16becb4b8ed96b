//! The whole AWS path on this machine, against moto (DynamoDB, DynamoDB Streams, SQS): the api
//! handler's router creates a watch, a scheduler tick queues it, the SQS messages are fed to the
//! checker handler as Lambda's event source would feed them, and a real Socket.IO client
//! connected to the real push-service binary (which follows the table's stream) receives the
//! `watch_update`s. Also: a redelivered message changes nothing, a poisoned message ends in the
//! dead-letter queue, a checker that died mid-check leaves a lease that expires, and a connected
//! client's `queue_size` is the SQS queues' depth.
//!
//! The handlers run in this process here; `aws_lambda.rs` runs the same paths through the
//! built function binaries under the Lambda Runtime API emulator.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use changewatch_aws::{AwsConfig, Clients, api, checker, scheduler};
use changewatch_e2e::binaries;
use changewatch_engine::checker::{Checker, epoch_now};
use changewatch_store::aws::provision::{Provisioned, provision};
use changewatch_store::{CheckJob, JobQueue, Key, Lane, WatchStore};
use serde_json::{Value, json};
use testkit::moto::MotoServer;
use testkit::{FixtureServer, Page};

const KEY: &str = "aws-e2e-key";
const VISIBILITY_SECS: u32 = 2;
const MAX_RECEIVES: u32 = 2;

struct Env {
    clients: Clients,
    config: AwsConfig,
    prov: Provisioned,
    env: Vec<(String, String)>,
}

async fn setup() -> Env {
    let moto = MotoServer::shared();
    let conf = moto.sdk_config().await;
    let clients = Clients::from_conf(&conf);
    let prefix = testkit::moto::unique_prefix("e2e");
    let prov = provision(
        &clients.dynamodb,
        &clients.sqs,
        &prefix,
        2,
        VISIBILITY_SECS,
        MAX_RECEIVES,
    )
    .await
    .unwrap();
    // Exactly what the SAM template gives the functions, plus the emulator's endpoint.
    let env: Vec<(String, String)> = [
        ("CW_WATCHES_TABLE", prov.resources.watches_table.as_str()),
        (
            "CW_SNAPSHOTS_TABLE",
            prov.resources.snapshots_table.as_str(),
        ),
        (
            "CW_CHECKS_QUEUE_URL",
            prov.resources.checks_queue_url.as_str(),
        ),
        (
            "CW_RECHECKS_QUEUE_URL",
            prov.resources.rechecks_queue_url.as_str(),
        ),
        (
            "CW_NOTIFICATIONS_QUEUE_URL",
            prov.notifications_queue_url.as_str(),
        ),
        ("CW_DUE_SHARDS", "2"),
        ("API_ACCESS_TOKEN", KEY),
        ("ALLOW_PRIVATE_ADDRESSES", "true"),
        ("MINIMUM_SECONDS_RECHECK_TIME", "0"),
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let map: HashMap<String, String> = env.iter().cloned().collect();
    let config = AwsConfig::from_lookup(|k| map.get(k).cloned()).unwrap();
    Env {
        clients,
        config,
        prov,
        env,
    }
}

impl Env {
    /// The checker function's own wiring.
    fn checker(&self) -> Arc<Checker> {
        Arc::new(
            self.clients
                .checker(
                    &self.config,
                    "e2e-checker",
                    changewatch_sandbox::Sandbox::in_process(),
                )
                .unwrap(),
        )
    }

    /// The api function's router, served on a loopback port.
    async fn api(&self) -> String {
        let app = api::app(
            &self.clients,
            &self.config,
            changewatch_sandbox::Sandbox::in_process(),
        )
        .await
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    /// What Lambda's event source does with one queue: receive a batch, invoke the checker
    /// with it, delete what it did not report as failed. Returns the events it invoked with.
    async fn feed_checker(&self, queue_url: &str, checker: &Arc<Checker>) -> Vec<SqsEvent> {
        let mut events = Vec::new();
        loop {
            let out = self
                .clients
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            let msgs = out.messages.unwrap_or_default();
            if msgs.is_empty() {
                return events;
            }
            let mut event = SqsEvent::default();
            event.records = msgs
                .iter()
                .map(|m| {
                    let mut r = SqsMessage::default();
                    r.message_id = m.message_id.clone();
                    r.receipt_handle = m.receipt_handle.clone();
                    r.body = m.body.clone();
                    r
                })
                .collect();
            let resp = checker::handle_batch(checker.clone(), event.clone()).await;
            let failed: Vec<String> = resp
                .batch_item_failures
                .iter()
                .map(|f| f.item_identifier.clone())
                .collect();
            for m in &msgs {
                if !failed.iter().any(|f| Some(f) == m.message_id.as_ref()) {
                    self.clients
                        .sqs
                        .delete_message()
                        .queue_url(queue_url)
                        .receipt_handle(m.receipt_handle.clone().unwrap())
                        .send()
                        .await
                        .unwrap();
                }
            }
            events.push(event);
            if !failed.is_empty() {
                return events;
            }
        }
    }
}

/// The push-service binary, configured through the environment only.
struct PushService {
    child: Child,
    base: String,
}

impl PushService {
    fn start(env: &Env) -> PushService {
        PushService::start_with(env, &[])
    }

    /// With more environment variables than the template's.
    fn start_with(env: &Env, extra: &[(&str, &str)]) -> PushService {
        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboard/dist");
        let mut child = Command::new(binaries::built(binaries::PUSH_SERVICE))
            .envs(env.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("CHANGEDETECTION_HOST", "127.0.0.1")
            .env("CHANGEDETECTION_PORT", "0")
            .env("CW_STREAM_START", "trim_horizon")
            .env("DASHBOARD_DIR", dist)
            .envs(extra.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("changewatch-push-service listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        PushService { child, base }
    }
}

impl Drop for PushService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A socket.io-client (npm) connected to the push service, its events as JSON lines.
struct Listener {
    child: Child,
    rx: Receiver<Value>,
    seen: Vec<Value>,
}

impl Listener {
    fn start(base: &str) -> Listener {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        assert!(
            root.join("dashboard/node_modules/socket.io-client")
                .is_dir(),
            "dashboard/node_modules is missing: run `make test`"
        );
        let mut child = Command::new("node")
            .arg("dashboard/tests/socket_listen.mjs")
            .current_dir(&root)
            .env("CW_BASE_URL", base)
            .env("CW_API_KEY", KEY)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        Listener {
            child,
            rx,
            seen: Vec::new(),
        }
    }

    fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_after(0, what, pred)
    }

    /// Like [`Listener::wait_for`], among the events after the first `mark` received.
    fn wait_after(&mut self, mark: usize, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(v) = self.seen.iter().skip(mark).find(|v| pred(v)) {
            return v.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "no {what} within 30 s; events seen: {}",
            serde_json::to_string(&self.seen).unwrap()
        );
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.flush();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn update_for<'a>(uuid: &'a str, history_n: u64) -> impl Fn(&Value) -> bool + 'a {
    move |v: &Value| {
        v["event"] == "watch_update"
            && v["data"]["watch"]["uuid"] == uuid
            && v["data"]["watch"]["history_n"] == history_n
    }
}

async fn get(http: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = http.get(url).header("x-api-key", KEY).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_flows_through_api_scheduler_checker_and_push_service() {
    let env = setup().await;
    let page = FixtureServer::start();
    page.set(
        "/p",
        Page::html("<html><body><p>Price: 10</p></body></html>"),
    );
    let api = env.api().await;
    let push = PushService::start(&env);
    let mut listener = Listener::start(&push.base);
    listener.wait_for("the socket connection", |v| v["event"] == "connect");
    let http = reqwest::Client::new();

    let r = http
        .post(format!("{api}/api/v1/watch"))
        .header("x-api-key", KEY)
        .json(&json!({"url": page.url("/p")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let uuid = r.json::<Value>().await.unwrap()["uuid"]
        .as_str()
        .unwrap()
        .to_string();

    let store = env.clients.store(&env.config);
    let queue = env.clients.queue(&env.config);
    let report = scheduler::run_tick(&store, &queue, epoch_now(), None)
        .await
        .unwrap();
    assert_eq!(report.queued, 1, "the new watch is due at once");
    listener.wait_for("the queued watch_update", |v| {
        v["event"] == "watch_update"
            && v["data"]["watch"]["uuid"] == uuid.as_str()
            && v["data"]["watch"]["queued"] == true
    });

    let checker = env.checker();
    let events = env
        .feed_checker(&env.prov.resources.checks_queue_url, &checker)
        .await;
    assert_eq!(events.len(), 1);
    listener.wait_for("the checked watch_update", update_for(&uuid, 1));
    let (_, w) = get(&http, &format!("{api}/api/v1/watch/{uuid}")).await;
    assert_eq!(w["history_n"], 1);
    let version = store
        .get(&Key::watch("default", &uuid))
        .await
        .unwrap()
        .unwrap()
        .version;

    // Redelivery of the same message: acknowledged, and nothing changes.
    let resp = checker::handle_batch(checker.clone(), events[0].clone()).await;
    assert!(resp.batch_item_failures.is_empty());
    let item = store
        .get(&Key::watch("default", &uuid))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item.version, version, "a redelivered job is a no-op");
    assert_eq!(item.history.count, 1);

    // A change, through a manual recheck (the rechecks queue).
    page.set(
        "/p",
        Page::html("<html><body><p>Price: 11</p></body></html>"),
    );
    let (status, _) = get(&http, &format!("{api}/api/v1/watch/{uuid}?recheck=1")).await;
    assert_eq!(status, 200);
    env.feed_checker(&env.prov.resources.rechecks_queue_url, &checker)
        .await;
    let changed = listener.wait_for("the changed watch_update", update_for(&uuid, 2));
    assert_eq!(changed["data"]["watch"]["unviewed"], true);

    let (_, history) = get(&http, &format!("{api}/api/v1/watch/{uuid}/history")).await;
    let mut ts: Vec<&String> = history.as_object().unwrap().keys().collect();
    ts.sort();
    assert_eq!(ts.len(), 2);
    let r = http
        .get(format!(
            "{api}/api/v1/watch/{uuid}/difference/{}/{}?format=text",
            ts[0], ts[1]
        ))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let diff = r.text().await.unwrap();
    assert!(diff.contains("Price: 11"), "{diff}");
    assert!(diff.contains("Price: 10"), "{diff}");

    // The dashboard and health check are served by the push service.
    let r = http
        .get(format!("{}/healthz", push.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_message_ends_in_the_dead_letter_queue() {
    let env = setup().await;
    let url = &env.prov.resources.checks_queue_url;
    env.clients
        .sqs
        .send_message()
        .queue_url(url)
        .message_body("this is not a check job")
        .send()
        .await
        .unwrap();
    let checker = env.checker();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let events = env.feed_checker(url, &checker).await;
        for e in &events {
            // Reported failed every time: never acknowledged.
            assert_eq!(e.records.len(), 1);
        }
        let dlq = env
            .clients
            .sqs
            .receive_message()
            .queue_url(&env.prov.checks_dlq_url)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if let Some(m) = dlq.first() {
            assert_eq!(m.body.as_deref(), Some("this is not a check job"));
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the message never reached the DLQ"
        );
        tokio::time::sleep(Duration::from_secs(u64::from(VISIBILITY_SECS))).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checker_that_died_mid_check_leaves_a_lease_that_the_sweep_clears() {
    let env = setup().await;
    let page = FixtureServer::start();
    page.set("/p", Page::html("<p>hello</p>"));
    let api = env.api().await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{api}/api/v1/watch"))
        .header("x-api-key", KEY)
        .json(&json!({"url": page.url("/p")}))
        .send()
        .await
        .unwrap();
    let uuid = r.json::<Value>().await.unwrap()["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let store = env.clients.store(&env.config);
    let queue = env.clients.queue(&env.config);
    let key = Key::watch("default", &uuid);
    // A checker took the lease and died: no commit, no release.
    let now = epoch_now();
    assert!(
        store
            .claim(&key, "dead-checker", now + 2, now)
            .await
            .unwrap()
            .is_some()
    );
    let r = scheduler::run_tick(&store, &queue, now, None)
        .await
        .unwrap();
    assert_eq!(r.queued, 0, "a leased watch is not queued");

    tokio::time::sleep(Duration::from_secs(3)).await;
    // Its job's message would come back after the visibility timeout; without one, the
    // sweep for lost jobs (one part of the table per tick, here all of it) finds the watch.
    assert_eq!(
        store.recover_stranded(epoch_now(), 0, 1).await.unwrap(),
        1,
        "the sweep finds the expired lease"
    );
    let r = scheduler::run_tick(&store, &queue, epoch_now(), None)
        .await
        .unwrap();
    assert_eq!(r.queued, 1, "the expired lease makes the watch due again");
    env.feed_checker(&env.prov.resources.checks_queue_url, &env.checker())
        .await;
    let item = store.get(&key).await.unwrap().unwrap();
    assert_eq!(item.history.count, 1, "checked after the lease expired");
    assert_eq!(item.schedule.unwrap().lease_owner, None);
}

/// Messages in a queue as `queue_size` counts them: waiting, in flight and delayed.
async fn sqs_depth(env: &Env, url: &str) -> usize {
    let out = env
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names("All".into())
        .send()
        .await
        .unwrap();
    out.attributes
        .unwrap_or_default()
        .iter()
        .filter(|(name, _)| {
            [
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ]
            .contains(&name.as_str())
        })
        .map(|(_, v)| v.parse::<usize>().unwrap())
        .sum()
}

fn queue_size(n: u64) -> impl Fn(&Value) -> bool {
    move |v: &Value| v["event"] == "queue_size" && v["data"]["q_length"] == n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_size_is_the_sqs_depth_while_a_client_is_connected() {
    let env = setup().await;
    let page = FixtureServer::start();
    page.set("/p", Page::html("<p>queued</p>"));
    let api = env.api().await;
    let push = PushService::start_with(&env, &[("CW_QUEUE_POLL_SECS", "1")]);
    let mut listener = Listener::start(&push.base);
    listener.wait_for("the socket connection", |v| v["event"] == "connect");
    // Nothing was known before this client: the poller reads the (empty) queues at once.
    listener.wait_for("the first queue_size", queue_size(0));

    let http = reqwest::Client::new();
    let r = http
        .post(format!("{api}/api/v1/watch"))
        .header("x-api-key", KEY)
        .json(&json!({"url": page.url("/p")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let store = env.clients.store(&env.config);
    let queue = env.clients.queue(&env.config);
    let report = scheduler::run_tick(&store, &queue, epoch_now(), None)
        .await
        .unwrap();
    assert_eq!(report.queued, 1);
    // A job no watch is marked queued for (a watch that does not exist; the checker drops it):
    // counting queue marks would say 1, the queues hold 2.
    let now = epoch_now();
    queue
        .enqueue(vec![CheckJob::new(
            &Key::watch("default", "no-such-watch"),
            now,
            Lane::Recheck,
            1,
            now,
        )])
        .await
        .unwrap();
    let (checks, rechecks) = (
        &env.prov.resources.checks_queue_url,
        &env.prov.resources.rechecks_queue_url,
    );
    assert_eq!(
        sqs_depth(&env, checks).await + sqs_depth(&env, rechecks).await,
        2
    );
    let mark = listener.seen.len();
    listener.wait_after(mark, "queue_size 2 (the SQS depth)", queue_size(2));

    // The checker takes both jobs (and deletes them): the depth falls back to 0.
    let checker = env.checker();
    env.feed_checker(rechecks, &checker).await;
    env.feed_checker(checks, &checker).await;
    assert_eq!(
        sqs_depth(&env, checks).await + sqs_depth(&env, rechecks).await,
        0
    );
    let mark = listener.seen.len();
    listener.wait_after(mark, "queue_size 0 after the checks", queue_size(0));
}
