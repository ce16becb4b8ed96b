//! The handlers with event payloads of the shapes AWS delivers (generated offline with
//! `sam local generate-event`: `apigateway http-api-proxy`, `sqs receive-message`,
//! `cloudwatch scheduled-event`; kept in `tests/events/`), against the moto emulator.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use changewatch_aws::{AwsConfig, Clients, api, checker, scheduler};
use changewatch_engine::checker::epoch_now;
use changewatch_sandbox::Sandbox;
use changewatch_store::aws::provision::provision;
use serde_json::{Value, json};
use testkit::moto::MotoServer;

const KEY: &str = "events-key";

fn fixture(name: &str) -> Value {
    // The same files `sam local invoke -e` takes (infra/local/events, see infra/README.md).
    let path = format!(
        "{}/../../infra/local/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn setup() -> (Clients, AwsConfig) {
    let moto = MotoServer::shared();
    let conf = moto.sdk_config().await;
    let clients = Clients::from_conf(&conf);
    let prefix = testkit::moto::unique_prefix("ev");
    let p = provision(&clients.dynamodb, &clients.sqs, &prefix, 2, 30, 3)
        .await
        .unwrap();
    let config = common::stack_config(
        &p,
        &[
            ("API_ACCESS_TOKEN", KEY),
            ("MINIMUM_SECONDS_RECHECK_TIME", "0"),
        ],
    );
    (clients, config)
}

/// The HTTP API (payload v2) event, turned into a request for `method path` with `body`.
fn http_event(method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> String {
    let body = body.map(|b| b.to_string().into_bytes());
    common::http_event(method, path, "", "application/json", key, body.as_deref())
}

#[tokio::test]
async fn api_handler_serves_http_api_events() {
    let (clients, config) = setup().await;
    let app = api::app(
        &clients,
        &config,
        changewatch_sandbox::Sandbox::in_process(),
    )
    .await
    .unwrap();
    let (status, body) = common::json_call(
        &app,
        http_event(
            "POST",
            "/api/v1/watch",
            Some(KEY),
            Some(json!({"url": "https://example.com/", "title": "From Lambda"})),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let uuid = body["uuid"].as_str().unwrap().to_string();
    let (status, w) = common::json_call(
        &app,
        http_event("GET", &format!("/api/v1/watch/{uuid}"), Some(KEY), None),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(w["title"], "From Lambda");
    let (status, _) = common::json_call(&app, http_event("GET", "/api/v1/watch", None, None)).await;
    assert_eq!(status, 403, "the API key is checked behind API Gateway too");
    let (status, _) = common::json_call(
        &app,
        http_event(
            "POST",
            "/api/v1/watch",
            Some(KEY),
            Some(json!({"url": "javascript:alert(1)"})),
        ),
    )
    .await;
    assert_eq!(status, 400, "bad input gets the contract's error");
}

#[tokio::test]
async fn checker_handler_reports_partial_batch_failures() {
    let (clients, config) = setup().await;
    let checker = Arc::new(
        clients
            .checker(&config, "events-test", Sandbox::in_process())
            .unwrap(),
    );
    let mut ev = fixture("sqs-not-a-job.json");
    let junk = ev["Records"][0].clone();
    let mut job = junk.clone();
    job["messageId"] = json!("job-message");
    job["body"] = json!(
        json!({"id": "job-1", "tenant": "default", "watch_id": "no-such-watch", "due_at": 1,
               "lane": "Scheduled", "priority": 1, "enqueued_at": 1})
        .to_string()
    );
    ev["Records"] = json!([junk, job]);
    let event: SqsEvent = serde_json::from_value(ev).unwrap();
    let resp = checker::handle_batch(checker, event).await;
    let failed: Vec<&str> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    // "Hello from SQS!" is not a job: it fails (towards the DLQ); the job for a watch that no
    // longer exists is done with (skipped), not retried.
    assert_eq!(failed, ["19dd0b57-b21e-4ac1-bd88-01bbb068cb78"]);
}

#[tokio::test]
async fn scheduler_handler_accepts_the_schedule_event_and_ticks() {
    let (clients, config) = setup().await;
    // The function takes any JSON payload; this is the shape a schedule delivers.
    let _payload: Value = fixture("schedule.json");
    let store = clients.store(&config);
    let queue = clients.queue(&config);
    let report = scheduler::run_tick(&store, &queue, epoch_now(), None)
        .await
        .unwrap();
    assert_eq!(report.queued, 0, "nothing to queue in an empty table");
}

/// The api function's router with one watch created through it; the watch's uuid.
async fn app_with_a_watch(clients: &Clients, config: &AwsConfig) -> (axum::Router, String) {
    let app = api::app(clients, config, Sandbox::in_process())
        .await
        .unwrap();
    let (status, body) = common::json_call(
        &app,
        http_event(
            "POST",
            "/api/v1/watch",
            Some(KEY),
            Some(json!({"url": "https://example.com/"})),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let uuid = body["uuid"].as_str().unwrap().to_string();
    (app, uuid)
}

/// `GET /ui/watches`' `queue_size` is the queues' depth the push service's socket reports
/// (`SqsDepth`), not a count of queue marks: the dashboard shows one number whichever way it
/// heard it. Behind API Gateway the UI header alone opens nothing (no password here).
#[tokio::test]
async fn ui_rows_count_the_queues_as_the_socket_does() {
    use changewatch_store::{CheckJob, JobQueue, Key, Lane};
    let (clients, config) = setup().await;
    let (app, _uuid) = app_with_a_watch(&clients, &config).await;
    let store = clients.store(&config);
    let queue = clients.queue(&config);
    let report = scheduler::run_tick(&store, &queue, epoch_now(), None)
        .await
        .unwrap();
    assert_eq!(report.queued, 1);
    // A job no watch is marked queued for: marks would say 1, the queues hold 2.
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
    let depth = changewatch_aws::push::SqsDepth::new(clients.sqs.clone(), &config)
        .read()
        .await
        .unwrap();
    assert_eq!(depth, 2);
    let (status, rows) =
        common::json_call(&app, http_event("GET", "/ui/watches", Some(KEY), None)).await;
    assert_eq!(status, 200, "{rows}");
    assert_eq!(rows["queue_size"], 2, "{rows}");

    let mut ev: Value =
        serde_json::from_str(&http_event("GET", "/ui/watches", None, None)).unwrap();
    ev["headers"]["x-changewatch-ui"] = json!("1");
    let (status, _) = common::json_call(&app, ev.to_string()).await;
    assert_eq!(status, 401, "the UI header alone, no password: closed");
}

/// A manual recheck that meets the lease of another checker (a killed one, say) comes back
/// just after that lease ends, not after the queue's whole visibility timeout (30 s here, six
/// times the function timeout when deployed).
#[tokio::test]
async fn a_busy_watch_is_offered_again_when_its_lease_ends() {
    use changewatch_store::{Key, WatchStore};
    let (clients, config) = setup().await;
    let (_app, uuid) = app_with_a_watch(&clients, &config).await;
    let key = Key::watch("default", &uuid);
    let store = clients.store(&config);
    let now = epoch_now();
    assert!(
        store
            .claim(&key, "killed-checker", now + 3, now)
            .await
            .unwrap()
            .is_some()
    );
    changewatch_engine::scheduler::request_recheck(&store, &clients.queue(&config), &key, now)
        .await
        .unwrap();
    let url = config.resources.rechecks_queue_url.clone();
    let receive = || async {
        clients
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default()
    };
    let msgs = receive().await;
    assert_eq!(msgs.len(), 1);
    let name = url.rsplit('/').next().unwrap();
    let records: Vec<Value> = msgs
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{name}"),
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    let event: SqsEvent = serde_json::from_value(json!({ "Records": records })).unwrap();
    let checker = Arc::new(
        clients
            .checker(&config, "events-test", Sandbox::in_process())
            .unwrap(),
    );
    let redelivery = Arc::new(clients.redelivery(&config));
    let started = std::time::Instant::now();
    let invocation = checker::Invocation {
        redelivery: Some(redelivery),
        deadline: None,
    };
    let resp = checker::handle_batch_with(checker, invocation, event).await;
    assert_eq!(resp.batch_item_failures.len(), 1, "busy: not deleted");
    let again = loop {
        let got = receive().await;
        if !got.is_empty() {
            break got;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "not offered again within 15 s (visibility timeout 30 s)"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert_eq!(again[0].body, msgs[0].body, "the same job, after the lease");
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
}
