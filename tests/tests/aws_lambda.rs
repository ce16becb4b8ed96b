//! AWS mode as deployed, on this machine: the built `functions/*` binaries under the Lambda
//! Runtime API emulator, invoked with the events AWS sends (HTTP API payload 2.0 through a
//! gateway, SQS batches received from moto and settled as the event source mapping settles
//! them, the scheduler's event), with the environment `infra/template.yaml` gives them; the
//! push-service binary with its ECS task's environment, and a socket.io-client connected to it.
//!
//! Each case deploys its own stack (fresh tables and queues). The check queues' visibility
//! timeout is `stack::VISIBILITY_SECS` so that redeliveries happen within a test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use changewatch_e2e::events::{Delivery, EventSource};
use changewatch_e2e::process::workspace_root;
use changewatch_e2e::runtime::{Function, FunctionError};
use changewatch_e2e::socket::SocketClient;
use changewatch_e2e::stack::{Stack, VISIBILITY_SECS};
use changewatch_e2e::template::Template;
use changewatch_store::{Key, WatchStore};
use serde_json::{Value, json};
use testkit::{FixtureServer, Page};

const API: &str = "ApiFunction";
const SCHEDULER: &str = "SchedulerFunction";
const CHECKER: &str = "CheckerFunction";
const NOTIFIER: &str = "NotifierFunction";

/// The fixed API key given as the `ApiAccessToken` parameter.
const KEY: &str = "e2e0123456789abcdef0123456789abcdef";
const PASSWORD: &str = "e2e dashboard password";
/// How long one SQS poll waits for a message.
const POLL: Duration = Duration::from_secs(3);
/// Without it, the stream reader of a push service started just before a write could begin
/// after it and miss it; the test-only extra of the push service in the flow cases.
const FROM_THE_STREAMS_START: (&str, &str) = ("CW_STREAM_START", "trim_horizon");

/// `DashboardPasswordHash` for [`PASSWORD`], computed once.
fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| changewatch_api::session::hash_password(PASSWORD))
}

/// The parameters of the flow cases: the required password hash, a fixed API key (the socket
/// client authenticates with it), and private addresses allowed (the fixture pages are on
/// 127.0.0.1).
fn parameters() -> Vec<(&'static str, &'static str)> {
    vec![
        ("DashboardPasswordHash", password_hash()),
        ("ApiAccessToken", KEY),
        ("AllowPrivateAddresses", "true"),
    ]
}

fn epoch_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn tenant(stack: &Stack) -> String {
    stack.deployment.function(API).unwrap().environment["CW_TENANT"].clone()
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method, url);
    if let Some(key) = key {
        req = req.header("x-api-key", key);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn get(http: &reqwest::Client, url: &str) -> (u16, Value) {
    call(http, reqwest::Method::GET, url, Some(KEY), None).await
}

async fn create_watch(http: &reqwest::Client, api: &str, page: &str) -> String {
    let (status, body) = call(
        http,
        reqwest::Method::POST,
        &format!("{api}/api/v1/watch"),
        Some(KEY),
        Some(json!({ "url": page })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["uuid"].as_str().unwrap().to_string()
}

/// One scheduler tick, as EventBridge Scheduler invokes it.
async fn tick(stack: &Stack, scheduler: &Function) -> Value {
    let event = stack.schedule_event(scheduler);
    scheduler.invoke(&event).await.unwrap()
}

/// One poll of the event source that must find a batch.
async fn deliver(stack: &Stack, source: &EventSource, function: &Function) -> Delivery {
    source
        .poll(&stack.sqs, function, POLL)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("nothing to deliver from {}", source.name))
}

fn update_for(uuid: &str, history_n: u64) -> impl Fn(&Value) -> bool + '_ {
    move |v: &Value| {
        v["event"] == "watch_update"
            && v["data"]["watch"]["uuid"] == uuid
            && v["data"]["watch"]["history_n"] == history_n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_flows_through_the_function_binaries_and_the_push_service() {
    let stack = Stack::deploy(&parameters()).await;
    let page = FixtureServer::start();
    page.set(
        "/p",
        Page::html("<html><body><p>Price: 10</p></body></html>"),
    );
    let gw = stack.gateway(stack.function(API)).await;
    let api = gw.url();
    let push = stack.push_service(&[FROM_THE_STREAMS_START]).await;
    let http = reqwest::Client::new();

    // Created over HTTP (API Gateway → the api function).
    let uuid = create_watch(&http, &api, &page.url("/p")).await;
    // Connected after the api function's first start: see
    // `the_push_service_accepts_the_api_key_before_the_api_function_ever_ran`.
    let mut socket = SocketClient::connect(&push.base, Some(KEY));
    socket
        .wait_for("the socket connection", |v| v["event"] == "connect")
        .await;

    // The scheduler's tick queues it.
    let scheduler = stack.function(SCHEDULER);
    let report = tick(&stack, &scheduler).await;
    assert_eq!(
        report["queued"], 1,
        "the new watch is due at once: {report}"
    );
    socket
        .wait_for("the queued watch_update", |v| {
            v["event"] == "watch_update"
                && v["data"]["watch"]["uuid"] == uuid.as_str()
                && v["data"]["watch"]["queued"] == true
        })
        .await;

    // The checker takes the job from the checks queue.
    let checker = stack.function(CHECKER);
    let checks = stack.event_source(&checker, "ChecksQueue");
    let d = deliver(&stack, &checks, &checker).await;
    assert_eq!(
        d.deleted, d.message_ids,
        "the job succeeded: {:?}",
        d.outcome
    );
    socket
        .wait_for("the checked watch_update", update_for(&uuid, 1))
        .await;
    let (_, w) = get(&http, &format!("{api}/api/v1/watch/{uuid}")).await;
    assert_eq!(w["history_n"], 1, "{w}");

    // The page changes; a manual recheck goes through the rechecks queue.
    page.set(
        "/p",
        Page::html("<html><body><p>Price: 11</p></body></html>"),
    );
    let (status, body) = get(&http, &format!("{api}/api/v1/watch/{uuid}?recheck=1")).await;
    assert_eq!(status, 200, "{body}");
    let rechecks = stack.event_source(&checker, "RechecksQueue");
    let d = deliver(&stack, &rechecks, &checker).await;
    assert_eq!(
        d.deleted, d.message_ids,
        "the recheck succeeded: {:?}",
        d.outcome
    );
    let changed = socket
        .wait_for("the changed watch_update", update_for(&uuid, 2))
        .await;
    assert_eq!(changed["data"]["watch"]["unviewed"], true);

    // The diff over the API.
    let (_, history) = get(&http, &format!("{api}/api/v1/watch/{uuid}/history")).await;
    let mut ts: Vec<&String> = history.as_object().unwrap().keys().collect();
    ts.sort();
    assert_eq!(ts.len(), 2, "{history}");
    let (status, diff) = get(
        &http,
        &format!(
            "{api}/api/v1/watch/{uuid}/difference/{}/{}?format=text",
            ts[0], ts[1]
        ),
    )
    .await;
    assert_eq!(status, 200);
    let diff = diff.as_str().unwrap_or_default().to_string();
    assert!(diff.contains("Price: 10"), "{diff}");
    assert!(diff.contains("Price: 11"), "{diff}");

    // The push service's health check.
    let r = http
        .get(format!("{}/healthz", push.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_message_is_a_no_op() {
    let stack = Stack::deploy(&parameters()).await;
    let page = FixtureServer::start();
    page.set("/p", Page::html("<p>once</p>"));
    let gw = stack.gateway(stack.function(API)).await;
    let http = reqwest::Client::new();
    let uuid = create_watch(&http, &gw.url(), &page.url("/p")).await;
    let scheduler = stack.function(SCHEDULER);
    assert_eq!(tick(&stack, &scheduler).await["queued"], 1);
    let checker = stack.function(CHECKER);
    let checks = stack.event_source(&checker, "ChecksQueue");
    let first = deliver(&stack, &checks, &checker).await;
    assert_eq!(first.deleted, first.message_ids, "{:?}", first.outcome);
    let store = stack.store();
    let key = Key::watch(&tenant(&stack), &uuid);
    let before = store.get(&key).await.unwrap().unwrap();
    assert_eq!(before.history.count, 1);
    let hits = page.hits("/p");

    // SQS delivers at least once: the same message again, to a new execution environment.
    checker.restart().unwrap();
    let again = checker.invoke(&first.event).await.unwrap();
    assert_eq!(
        again["batchItemFailures"],
        json!([]),
        "acknowledged, not retried: {again}"
    );
    let after = store.get(&key).await.unwrap().unwrap();
    assert_eq!(
        after.version, before.version,
        "a redelivered job is a no-op"
    );
    assert_eq!(after.history.count, 1);
    assert_eq!(page.hits("/p"), hits, "the page was not fetched again");
    assert_eq!(checker.cold_starts(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_reaches_the_checks_dead_letter_queue() {
    let stack = Stack::deploy(&parameters()).await;
    let body = "this is not a check job";
    stack
        .sqs
        .send_message()
        .queue_url(stack.queue_url("ChecksQueue"))
        .message_body(body)
        .send()
        .await
        .unwrap();
    let max_receives: usize = stack
        .deployment
        .parameter("MaxReceiveCount")
        .unwrap()
        .parse()
        .unwrap();
    let checker = stack.function(CHECKER);
    let checks = stack.event_source(&checker, "ChecksQueue");
    let deadline = Instant::now()
        + Duration::from_secs((max_receives as u64) * (u64::from(VISIBILITY_SECS) + 3) + 20);
    let mut deliveries = 0;
    while stack.depth("ChecksDeadLetterQueue").await == 0 {
        assert!(
            Instant::now() < deadline,
            "the message never reached the DLQ ({deliveries} deliveries)"
        );
        if let Some(d) = checks
            .poll(&stack.sqs, &checker, Duration::from_secs(1))
            .await
            .unwrap()
        {
            deliveries += 1;
            // Reported failed, so never deleted.
            assert_eq!(d.reported_failures(), d.message_ids, "{:?}", d.outcome);
            assert!(d.deleted.is_empty());
        }
    }
    assert_eq!(
        deliveries, max_receives,
        "delivered MaxReceiveCount times, then moved"
    );
    assert_eq!(stack.peek("ChecksDeadLetterQueue").await, [body]);
    assert_eq!(stack.depth("ChecksQueue").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checker_killed_mid_check_is_retried_by_a_new_process() {
    // The shortest checker timeout the template allows: Lambda ends an invocation at it.
    let mut params = parameters();
    params.push(("CheckerTimeout", "30"));
    let stack = Stack::deploy(&params).await;
    let page = FixtureServer::start();
    page.set(
        "/slow",
        Page::html("<p>slow</p>").delay(Duration::from_secs(120)),
    );
    let gw = stack.gateway(stack.function(API)).await;
    let api = gw.url();
    let http = reqwest::Client::new();
    let uuid = create_watch(&http, &api, &page.url("/slow")).await;
    let scheduler = stack.function(SCHEDULER);
    assert_eq!(tick(&stack, &scheduler).await["queued"], 1);

    let checker = stack.function(CHECKER);
    let checks = stack.event_source(&checker, "ChecksQueue");
    let running = {
        let (checker, checks, sqs) = (checker.clone(), checks.clone(), stack.sqs.clone());
        tokio::spawn(async move { checks.poll(&sqs, &checker, POLL).await })
    };
    // The check is fetching the page: it holds the watch's lease.
    let deadline = Instant::now() + Duration::from_secs(30);
    while page.hits("/slow") == 0 {
        assert!(
            Instant::now() < deadline,
            "the checker never fetched the page"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    checker.kill();
    let killed = Instant::now();
    let d = running.await.unwrap().unwrap().unwrap();
    assert!(
        matches!(d.outcome, Err(FunctionError::Exited { .. })),
        "{:?}",
        d.outcome
    );
    assert!(d.deleted.is_empty(), "a failed invocation leaves its batch");
    page.set("/slow", Page::html("<p>fast now</p>"));

    // Lambda ends an invocation at the function's timeout, so past it no lease of the killed
    // one can still be meant; the message is offered again within a visibility timeout.
    let bound = checker.spec().timeout + Duration::from_secs(u64::from(VISIBILITY_SECS) + 15);
    let store = stack.store();
    let key = Key::watch(&tenant(&stack), &uuid);
    let mut seen = Vec::new();
    let checked = loop {
        let (_, w) = get(&http, &format!("{api}/api/v1/watch/{uuid}")).await;
        if w["history_n"] == 1 {
            break true;
        }
        if killed.elapsed() > bound {
            break false;
        }
        if let Some(d) = checks
            .poll(&stack.sqs, &checker, Duration::from_secs(1))
            .await
            .unwrap()
        {
            seen.push(format!(
                "{:.1}s after the kill: {:?}",
                killed.elapsed().as_secs_f64(),
                d.outcome
            ));
        }
    };
    if !checked {
        let item = store.get(&key).await.unwrap().unwrap();
        let now = epoch_now();
        let schedule = item.schedule.unwrap_or_default();
        panic!(
            "the watch was not checked within {} s of the kill. Lease: owner {:?}, until {:?} \
             ({:?} s from now); queued_at {:?}; deliveries after the kill: {seen:#?}; checks \
             queue depth {}, DLQ depth {}",
            bound.as_secs(),
            schedule.lease_owner,
            schedule.lease_until,
            schedule.lease_until.map(|u| u - now),
            schedule.queued_at,
            stack.depth("ChecksQueue").await,
            stack.depth("ChecksDeadLetterQueue").await,
        );
    }
    assert!(checker.cold_starts() >= 2, "retried by a new process");
    let item = store.get(&key).await.unwrap().unwrap();
    assert_eq!(item.history.count, 1);
    assert_eq!(item.schedule.unwrap_or_default().lease_owner, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_watch_over_http_sends_watch_deleted() {
    let stack = Stack::deploy(&parameters()).await;
    let page = FixtureServer::start();
    page.set("/p", Page::html("<p>doomed</p>"));
    let gw = stack.gateway(stack.function(API)).await;
    let api = gw.url();
    let push = stack.push_service(&[FROM_THE_STREAMS_START]).await;
    let http = reqwest::Client::new();
    let uuid = create_watch(&http, &api, &page.url("/p")).await;
    let mut socket = SocketClient::connect(&push.base, Some(KEY));
    socket
        .wait_for("the socket connection", |v| v["event"] == "connect")
        .await;
    let (status, body) = call(
        &http,
        reqwest::Method::DELETE,
        &format!("{api}/api/v1/watch/{uuid}"),
        Some(KEY),
        None,
    )
    .await;
    assert!(status == 200 || status == 204, "{status} {body}");
    socket
        .wait_for("watch_deleted", |v| {
            v["event"] == "watch_deleted" && v["data"]["uuid"] == uuid.as_str()
        })
        .await;
    let (status, _) = get(&http, &format!("{api}/api/v1/watch/{uuid}")).await;
    assert_eq!(status, 404);
}

/// A fresh deployment: the push service (the dashboard's origin) runs before anything has
/// invoked the api function. The key the template fixes (`ApiAccessToken`) must let a client in
/// all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_service_accepts_the_api_key_before_the_api_function_ever_ran() {
    let stack = Stack::deploy(&parameters()).await;
    let push = stack.push_service(&[]).await;
    let http = reqwest::Client::new();
    let (status, body) = get(&http, &format!("{}/api/v1/watch", push.base)).await;
    assert_eq!(status, 200, "REST with the template's API key: {body}");
    let mut socket = SocketClient::connect(&push.base, Some(KEY));
    let first = socket
        .wait_for("the handshake's outcome", |v| {
            v["event"] == "connect" || v["event"] == "connect_error"
        })
        .await;
    assert_eq!(
        first["event"], "connect",
        "socket with the template's API key: {first}"
    );
}

/// `(status, body)` of a dashboard request (the UI header, and the session cookie).
async fn dashboard(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    cookie: &str,
) -> (u16, Value) {
    let r = http
        .request(method, url)
        .header("x-changewatch-ui", "1")
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn key_status(http: &reqwest::Client, base: &str, key: &str) -> u16 {
    call(
        http,
        reqwest::Method::GET,
        &format!("{base}/api/v1/watch"),
        Some(key),
        None,
    )
    .await
    .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_regenerated_from_the_dashboard_survives_cold_starts() {
    // The template's defaults: no fixed API key (ApiAccessToken ""), a dashboard password.
    let stack = Stack::deploy(&[("DashboardPasswordHash", password_hash())]).await;
    let api_fn = stack.function(API);
    assert!(
        !api_fn.spec().environment.contains_key("API_ACCESS_TOKEN"),
        "ApiAccessToken empty: the variable is left out"
    );
    let gw = stack.gateway(api_fn.clone()).await;
    let api = gw.url();
    let http = reqwest::Client::new();

    let r = http
        .post(format!("{api}/ui/login"))
        .header("x-changewatch-ui", "1")
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|c| c.split(';').next().unwrap_or_default().to_string())
        .collect::<Vec<_>>()
        .join("; ");
    assert!(!cookie.is_empty(), "the login sets the session cookie");

    let (status, settings) = dashboard(
        &http,
        reqwest::Method::GET,
        &format!("{api}/ui/settings"),
        &cookie,
    )
    .await;
    assert_eq!(status, 200, "{settings}");
    let old = settings["api_access_token"].as_str().unwrap().to_string();
    assert!(!old.is_empty(), "the first cold start generated a key");
    assert_eq!(key_status(&http, &api, &old).await, 200);

    let (status, body) = dashboard(
        &http,
        reqwest::Method::POST,
        &format!("{api}/ui/settings/api-key"),
        &cookie,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let new = body["api_access_token"].as_str().unwrap().to_string();
    assert_ne!(new, old);

    for restart in 1..=2 {
        api_fn.restart().unwrap();
        assert_eq!(
            key_status(&http, &api, &new).await,
            200,
            "the new key after cold start {restart}"
        );
        let refused = key_status(&http, &api, &old).await;
        assert!(
            refused == 401 || refused == 403,
            "the old key after cold start {restart}: {refused}"
        );
    }
    assert_eq!(api_fn.cold_starts(), 3);

    // The push service, another process over the same settings, agrees.
    let push = stack.push_service(&[]).await;
    assert_eq!(key_status(&http, &push.base, &new).await, 200);
    let refused = key_status(&http, &push.base, &old).await;
    assert!(refused == 401 || refused == 403, "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binaries_serve_with_exactly_the_templates_environment() {
    // Only what has no default; everything else as the template sets it by default.
    let stack = Stack::deploy(&[("DashboardPasswordHash", password_hash())]).await;
    let mut ids = stack.deployment.functions();
    ids.sort();
    assert_eq!(ids, [API, CHECKER, NOTIFIER, SCHEDULER]);
    for id in &ids {
        let f = stack.function(id);
        if let Err(e) = f.start(Duration::from_secs(30)).await {
            panic!(
                "{id} does not start with the template's environment: {e}\n{}",
                f.logs()
            );
        }
    }
    let http = reqwest::Client::new();

    let gw = stack.gateway(stack.function(API)).await;
    let r = http
        .get(format!("{}/ui/session", gw.url()))
        .header("x-changewatch-ui", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let session: Value = r.json().await.unwrap();
    assert_eq!(session["password_required"], true, "{session}");
    assert_eq!(
        session["password_set"], true,
        "SALTED_PASS reached the function"
    );

    let scheduler = stack.function(SCHEDULER);
    let report = tick(&stack, &scheduler).await;
    assert_eq!(report["queued"], 0, "{report}");

    // The SQS functions serve a batch each (a message that is not a job: reported failed).
    for (id, queue) in [(CHECKER, "ChecksQueue"), (NOTIFIER, "NotificationsQueue")] {
        stack
            .sqs
            .send_message()
            .queue_url(stack.queue_url(queue))
            .message_body("not a job")
            .send()
            .await
            .unwrap();
        let f = stack.function(id);
        let source = stack.event_source(&f, queue);
        let d = deliver(&stack, &source, &f).await;
        assert_eq!(
            d.reported_failures(),
            d.message_ids,
            "{id}: {:?}",
            d.outcome
        );
    }

    // The push service with its task's environment and nothing more.
    let push = stack.push_service(&[]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = http
            .get(format!("{}/healthz", push.base))
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/healthz: {}",
            r.text().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = http.get(format!("{}/", push.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "the dashboard");
}

fn rust_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A variable the template sets and nothing reads is a misnamed (or dead) one, which the
/// running binaries cannot reveal: they just never see the setting.
#[test]
fn every_variable_the_template_sets_is_one_the_product_reads() {
    // Read by the AWS SDK's configuration chain, not by the product's code.
    const READ_BY_THE_SDK: [&str; 1] = ["AWS_REGION"];
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["crates", "functions", "push-service"] {
        rust_sources(&root.join(dir), &mut files);
    }
    let sources: String = files
        .iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "src"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    let names = Template::load().unwrap().variable_names();
    assert!(names.contains("CW_WATCHES_TABLE"), "{names:?}");
    let unread: Vec<&String> = names
        .iter()
        .filter(|n| !READ_BY_THE_SDK.contains(&n.as_str()))
        .filter(|n| !sources.contains(&format!("\"{n}\"")))
        .collect();
    assert!(
        unread.is_empty(),
        "set by infra/template.yaml but read nowhere in the product: {unread:?}"
    );
}

/// Upstream answers an import or "recheck all" of 20 or more watches with 202 "in background".
/// Lambda freezes the environment once the reply is out (the emulator does too), so the api
/// function finishes that work before replying: every watch exists, every recheck is queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_announced_in_background_is_done_before_the_reply() {
    let stack = Stack::deploy(&parameters()).await;
    let gw = stack.gateway(stack.function(API)).await;
    let api = gw.url();
    let http = reqwest::Client::new();
    let urls: Vec<String> = (0..25).map(|i| format!("http://127.0.0.1:9/{i}")).collect();
    let r = http
        .post(format!("{api}/api/v1/import"))
        .header("x-api-key", KEY)
        .header("content-type", "text/plain")
        .body(urls.join("\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["count"], 25, "{body}");
    let store = changewatch_store::aws::DynamoStore::new(
        stack.dynamodb.clone(),
        stack.provisioned.resources.clone(),
    );
    let watches = store
        .list(&tenant(&stack), changewatch_store::Kind::Watch)
        .await
        .unwrap();
    assert_eq!(
        watches.len(),
        25,
        "every imported watch exists at the reply"
    );

    let (status, body) = get(&http, &format!("{api}/api/v1/watch?recheck_all=1")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        stack.depth("RechecksQueue").await,
        25,
        "every recheck is queued at the reply"
    );
}
