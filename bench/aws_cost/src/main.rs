//! `make bench-aws-cost`: what one check costs in AWS mode, measured rather than estimated.
//!
//! The stack of the end-to-end suite (the built `functions/*` binaries under its Lambda
//! Runtime API emulator, with the environment `infra/template.yaml` gives them) runs against
//! moto behind `pricing_proxy.py`, which records every DynamoDB and SQS call with the capacity
//! DynamoDB would bill for it. The SQS event source mapping's own calls (receive, delete) go
//! through the proxy too: Lambda bills them to the account. Each round makes a set of watches
//! due, runs one scheduler tick and drains the checks queue through the checker, then divides
//! what the proxy and the emulator's billing counters saw by the number of checks.
//!
//! Rounds: the first check of N watches; N unchanged checks (history of 1); N changed checks;
//! then M watches are brought to 100 snapshots and checked unchanged and changed again.
//! Prices (us-east-1 list) and the table are printed by `report.py` from the JSON this writes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use changewatch_e2e::events::EventSource;
use changewatch_e2e::process::workspace_root;
use changewatch_e2e::runtime::Function;
use changewatch_e2e::stack::Stack;
use changewatch_store::aws::DynamoStore;
use changewatch_store::{Expect, Key, Schedule, WatchStore};
use serde_json::{Value, json};
use testkit::moto::MotoServer;
use testkit::{FixtureServer, Page};

mod memory;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const KEY: &str = "bench0123456789abcdef0123456789abcdef";
const PAGE_BYTES: usize = 50 * 1024;
/// How long one round may take before the benchmark gives up.
const ROUND_LIMIT: Duration = Duration::from_secs(900);

/// Watch `watch`'s page: the benchmarks' news page, its own title, prices at `version`.
fn page(target: usize, watch: usize, version: u32) -> String {
    testkit::news_page(target, &format!("Harbour Gazette {watch}"), version)
}

/// `pricing_proxy.py` in front of moto, for as long as this value lives.
struct Proxy {
    child: Child,
    endpoint: String,
    http: reqwest::Client,
}

impl Proxy {
    fn start(upstream: &str) -> Res<Proxy> {
        let dir = workspace_root().join("bench/aws_cost");
        let port_file = std::env::temp_dir().join(format!("aws-cost-{}.port", std::process::id()));
        let _ = std::fs::remove_file(&port_file);
        let child = Command::new("python3")
            .arg(dir.join("pricing_proxy.py"))
            .args(["--upstream", upstream, "--port-file"])
            .arg(&port_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(p) = std::fs::read_to_string(&port_file)
                && let Ok(port) = p.trim().parse::<u16>()
            {
                return Ok(Proxy {
                    child,
                    endpoint: format!("http://127.0.0.1:{port}"),
                    http: reqwest::Client::new(),
                });
            }
            if Instant::now() > deadline {
                return Err("the pricing proxy did not start within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    async fn reset(&self) -> Res<()> {
        self.http
            .post(format!("{}/__reset", self.endpoint))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// The last `n` calls the proxy priced, for finding where units go (`CW_BENCH_LOG=n`).
    async fn log(&self, n: usize) -> Res<Value> {
        self.get_json(&format!("__log?n={n}")).await
    }

    async fn stats(&self) -> Res<Value> {
        self.get_json("__stats").await
    }

    async fn get_json(&self, path: &str) -> Res<Value> {
        Ok(self
            .http
            .get(format!("{}/{path}", self.endpoint))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Bench {
    stack: Stack,
    proxy: Proxy,
    /// Through the proxy: the event source mapping's receives and deletes are billed.
    sqs: aws_sdk_sqs::Client,
    /// Straight to moto: the benchmark's own set-up and checks, not billed.
    store: DynamoStore,
    tenant: String,
    scheduler: Arc<Function>,
    checker: Arc<Function>,
    checks: EventSource,
    pages: FixtureServer,
    http: reqwest::Client,
    /// The HTTP API in front of the api function (serving while this lives).
    gateway: changewatch_e2e::gateway::Gateway,
}

#[derive(Debug)]
struct Round {
    name: String,
    checks: usize,
    seconds: f64,
    proxy: Value,
    /// Per function: (invocations, billed ms, memory MB).
    lambda: BTreeMap<String, (u64, u64, u32)>,
}

impl Bench {
    async fn new() -> Res<Bench> {
        let moto = MotoServer::shared();
        let proxy = Proxy::start(&moto.endpoint)?;
        let hash = changewatch_api::session::hash_password("aws cost bench");
        let mut stack = Stack::deploy(&[
            ("DashboardPasswordHash", hash.as_str()),
            ("ApiAccessToken", KEY),
            ("AllowPrivateAddresses", "true"),
        ])
        .await;
        let store = DynamoStore::new(stack.dynamodb.clone(), stack.provisioned.resources.clone());
        // Every process of the stack reaches AWS through the proxy from here on, unless
        // `CW_BENCH_DIRECT=1`: straight to moto, nothing priced, for timings (the proxy reads
        // an item before and after each write to price it, tripling moto's calls).
        let direct = std::env::var("CW_BENCH_DIRECT").is_ok_and(|v| v == "1");
        let endpoint = if direct {
            moto.endpoint.clone()
        } else {
            proxy.endpoint.clone()
        };
        stack.endpoint = endpoint.clone();
        let via_proxy = MotoServer {
            endpoint: endpoint.clone(),
        }
        .sdk_config()
        .await;
        let sqs = aws_sdk_sqs::Client::new(&via_proxy);
        let api_fn = stack.function("ApiFunction");
        let tenant = api_fn
            .spec()
            .environment
            .get("CW_TENANT")
            .cloned()
            .unwrap_or_default();
        let gateway = stack.gateway(api_fn).await;
        let scheduler = stack.function("SchedulerFunction");
        let checker = stack.function("CheckerFunction");
        let checks = stack.event_source(&checker, "ChecksQueue");
        Ok(Bench {
            gateway,
            stack,
            proxy,
            sqs,
            store,
            tenant,
            scheduler,
            checker,
            checks,
            pages: FixtureServer::start(),
            http: reqwest::Client::new(),
        })
    }

    fn set_pages(&self, watches: usize, version: u32) {
        for i in 0..watches {
            self.pages
                .set(&format!("/p/{i}"), Page::html(page(PAGE_BYTES, i, version)));
        }
    }

    async fn create_watches(&self, n: usize) -> Res<Vec<String>> {
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let resp = self
                .http
                .post(format!("{}/api/v1/watch", self.gateway.url()))
                .header("x-api-key", KEY)
                .json(&json!({"url": self.pages.url(&format!("/p/{i}")), "title": format!("w{i}")}))
                .send()
                .await?;
            let status = resp.status();
            let body: Value = resp.json().await?;
            let Some(uuid) = body.get("uuid").and_then(Value::as_str) else {
                return Err(format!("creating watch {i}: {status} {body}").into());
            };
            ids.push(uuid.to_string());
        }
        Ok(ids)
    }

    /// Makes the watches due now, the way time passing would (not billed: straight to moto).
    async fn make_due(&self, ids: &[String], now: i64) -> Res<()> {
        for id in ids {
            let key = Key::watch(&self.tenant, id);
            let Some(item) = self.store.get(&key).await? else {
                return Err(format!("watch {id} is gone").into());
            };
            let schedule = Schedule {
                next_check_at: Some(now),
                ..item.schedule.unwrap_or_default()
            };
            self.store
                .put(
                    &key,
                    item.doc.to_value()?,
                    Some(schedule),
                    Expect::Version(item.version),
                )
                .await?;
        }
        Ok(())
    }

    async fn history_lens(&self, ids: &[String]) -> Res<Vec<usize>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let item = self.store.get(&Key::watch(&self.tenant, id)).await?;
            out.push(item.map_or(0, |i| i.history.count));
        }
        Ok(out)
    }

    /// One round: `ids` due now, one scheduler tick, the checks queue drained by the checker.
    async fn round(&self, name: &str, ids: &[String], measured: bool) -> Res<Round> {
        let now = epoch_now();
        self.make_due(ids, now).await?;
        if measured {
            self.proxy.reset().await?;
        }
        let before = [self.scheduler.billing(), self.checker.billing()];
        let started = Instant::now();
        let tick = self
            .scheduler
            .invoke(&self.stack.schedule_event(&self.scheduler))
            .await
            .map_err(|e| format!("scheduler tick: {e}"))?;
        let mut checked = 0usize;
        while checked < ids.len() {
            if started.elapsed() > ROUND_LIMIT {
                return Err(format!(
                    "{name}: {checked} of {} checks after {ROUND_LIMIT:?} (tick: {tick})",
                    ids.len()
                )
                .into());
            }
            if let Some(d) = self
                .checks
                .poll(&self.sqs, &self.checker, Duration::from_secs(1))
                .await?
            {
                checked += d.deleted.len();
                if let Err(e) = &d.outcome {
                    eprintln!("{name}: checker invocation failed: {e}");
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        // Every watch of the round was checked once in it: a figure per check is only
        // meaningful if the round did what it says.
        let mut unchecked = 0;
        for id in ids {
            let item = self.store.get(&Key::watch(&self.tenant, id)).await?;
            let last = item
                .as_ref()
                .and_then(|i| i.doc.value().ok()?.get("last_checked"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if last < now {
                unchecked += 1;
            }
        }
        if unchecked > 0 {
            return Err(format!("{name}: {unchecked} of {} watches not checked", ids.len()).into());
        }
        let proxy = if measured {
            let mut stats = self.proxy.stats().await?;
            if let Some(n) = std::env::var("CW_BENCH_LOG")
                .ok()
                .and_then(|v| v.parse().ok())
            {
                stats["log"] = self.proxy.log(n).await?;
            }
            stats
        } else {
            Value::Null
        };
        let after = [self.scheduler.billing(), self.checker.billing()];
        let mut lambda = BTreeMap::new();
        for (i, f) in [&self.scheduler, &self.checker].into_iter().enumerate() {
            lambda.insert(
                f.spec().logical_id.clone(),
                (
                    after[i].0 - before[i].0,
                    after[i].1 - before[i].1,
                    f.spec().memory_mb,
                ),
            );
        }
        Ok(Round {
            name: name.to_string(),
            checks: ids.len(),
            seconds,
            proxy,
            lambda,
        })
    }
}

fn epoch_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn round_json(r: &Round) -> Value {
    let lambda: serde_json::Map<String, Value> = r
        .lambda
        .iter()
        .map(|(k, (inv, ms, mb))| {
            (
                k.clone(),
                json!({"invocations": inv, "billed_ms": ms, "memory_mb": mb}),
            )
        })
        .collect();
    json!({
        "name": r.name,
        "checks": r.checks,
        "seconds": r.seconds,
        "proxy": r.proxy,
        "lambda": lambda,
    })
}

fn arg(name: &str, default: usize) -> Res<usize> {
    match std::env::var(name) {
        Ok(v) => Ok(v.parse()?),
        Err(_) => Ok(default),
    }
}

async fn run() -> Res<()> {
    let n = arg("CW_BENCH_WATCHES", 200)?;
    let m = arg("CW_BENCH_LONG_HISTORY_WATCHES", 10)?.min(n);
    let long = arg("CW_BENCH_LONG_HISTORY", 100)?;
    let out: PathBuf = std::env::var("CW_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target/aws-cost.json"));

    let save = |rounds: &[Round], lens: Option<&[usize]>| -> Res<()> {
        let result = json!({
            "watches": n,
            "page_bytes": PAGE_BYTES,
            "history_lengths": lens.map(|l| json!({"min": l.iter().min(), "max": l.iter().max()})),
            "rounds": rounds.iter().map(round_json).collect::<Vec<_>>(),
        });
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&out, serde_json::to_string_pretty(&result)?)?;
        Ok(())
    };
    let bench = Bench::new().await?;
    bench.set_pages(n, 0);
    let ids = bench.create_watches(n).await?;
    eprintln!("{n} watches created");
    let mut rounds = Vec::new();
    // Results are written after every round: a long run that fails keeps what it measured.
    rounds.push(bench.round("first check", &ids, true).await?);
    save(&rounds, None)?;
    rounds.push(bench.round("unchanged, history 1", &ids, true).await?);
    save(&rounds, None)?;
    bench.set_pages(n, 1);
    rounds.push(bench.round("changed, history 2", &ids, true).await?);
    save(&rounds, None)?;
    let few = &ids[..m];
    // The same few watches before their history grows: the long-history rounds below spread
    // one tick, one sweep segment and the batch's settings and tags over `m` checks instead of
    // `n`, so this round is what they compare with.
    rounds.push(
        bench
            .round(&format!("unchanged, history 2 ({m} checks)"), few, true)
            .await?,
    );
    save(&rounds, None)?;
    let mut version = 1;
    let mut lens = bench.history_lens(few).await?;
    while lens.iter().copied().min().unwrap_or(0) < long - 1 {
        version += 1;
        bench.set_pages(m, version);
        bench.round("growing history", few, false).await?;
        lens = bench.history_lens(few).await?;
    }
    eprintln!(
        "{m} watches at {} snapshots",
        lens.iter().min().unwrap_or(&0)
    );
    rounds.push(
        bench
            .round(
                &format!("unchanged, history {} ({m} checks)", long - 1),
                few,
                true,
            )
            .await?,
    );
    save(&rounds, None)?;
    bench.set_pages(m, version + 1);
    rounds.push(
        bench
            .round(&format!("changed, history {long} ({m} checks)"), few, true)
            .await?,
    );
    let lens = bench.history_lens(&ids).await?;
    save(&rounds, Some(&lens))?;
    eprintln!("results in {}", out.display());
    Ok(())
}

/// `CW_BENCH_MODE=scheduler`: `CW_BENCH_DUE` watches (20,000) due at once, ticks of the real
/// scheduler function until every one is queued; per tick its duration and result, and the
/// calls the proxy saw.
async fn scheduler_run() -> Res<()> {
    use futures::stream::{self, StreamExt, TryStreamExt};
    let n = arg("CW_BENCH_DUE", 20_000)?;
    let out: PathBuf = std::env::var("CW_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target/aws-scheduler.json"));
    let mut bench = Bench::new().await?;
    // moto answers a few hundred calls a second, DynamoDB thousands: one tick over 20,000 due
    // watches cannot finish within the template's 50 s here. `CW_BENCH_TICK_TIMEOUT` (default
    // 900 s) gives the scheduler long enough to show what one tick does: its calls, and that
    // every due watch is queued exactly once. The time per call on AWS turns that into the
    // time of a tick there (bench/aws_cost/README.md).
    let timeout = arg("CW_BENCH_TICK_TIMEOUT", 900)?;
    let mut spec = bench.stack.deployment.function("SchedulerFunction")?;
    spec.timeout = Duration::from_secs(timeout as u64);
    let binary = changewatch_e2e::binaries::built(&spec.binary);
    bench.scheduler = Arc::new(Function::new(
        spec,
        binary,
        bench.stack.platform_environment(),
    ));
    let now = epoch_now();
    // Set-up straight to moto (not billed): watches due over the last minute.
    let store = &bench.store;
    let tenant = bench.tenant.clone();
    stream::iter(0..n)
        .map(|i| {
            let key = Key::watch(&tenant, &format!("sched-{i:06}"));
            async move {
                store
                    .put(
                        &key,
                        json!({"url": format!("http://127.0.0.1:9/{i}"), "uuid": key.id}),
                        Some(Schedule::due_at(now - (i as i64 % 60))),
                        Expect::Absent,
                    )
                    .await
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    eprintln!("{n} due watches written");
    bench.proxy.reset().await?;
    let mut ticks = Vec::new();
    let mut queued = 0u64;
    for _ in 0..10 {
        let started = Instant::now();
        let result = match bench
            .scheduler
            .invoke(&bench.stack.schedule_event(&bench.scheduler))
            .await
        {
            Ok(r) => r,
            Err(e) => {
                let stats = bench.proxy.stats().await.unwrap_or_default();
                return Err(format!(
                    "scheduler tick: {e}\nits log:\n{}\nproxy: {stats}",
                    bench.scheduler.logs()
                )
                .into());
            }
        };
        let ms = started.elapsed().as_millis() as u64;
        queued += result.get("queued").and_then(Value::as_u64).unwrap_or(0);
        eprintln!("tick: {result} in {ms} ms");
        ticks.push(json!({"result": result, "ms": ms}));
        if queued >= n as u64 {
            break;
        }
    }
    let stats = bench.proxy.stats().await?;
    let mut depth = 0u64;
    let attrs = bench
        .stack
        .sqs
        .get_queue_attributes()
        .queue_url(bench.stack.queue_url("ChecksQueue"))
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await?;
    for (name, v) in attrs.attributes.unwrap_or_default() {
        if matches!(
            name,
            aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages
                | aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed
        ) {
            depth += v.parse::<u64>().unwrap_or(0);
        }
    }
    let sum = |field: &str| -> u64 {
        ticks
            .iter()
            .filter_map(|t| t["result"].get(field).and_then(Value::as_u64))
            .sum()
    };
    let (already, recovered) = (sum("already_queued"), sum("recovered"));
    let marks = queue_marks(&bench).await?;
    let result = json!({
        "due": n,
        "queued": queued,
        "already_queued": already,
        "recovered": recovered,
        "watches_marked": marks.marked,
        "distinct_jobs": marks.jobs,
        "still_in_due_index": marks.in_due_index,
        "messages_in_queue": depth,
        "ticks": ticks,
        "proxy": stats,
        "memory_mb": bench.scheduler.spec().memory_mb,
    });
    std::fs::write(&out, serde_json::to_string_pretty(&result)?)?;
    eprintln!("results in {}", out.display());
    // Every due watch marked once with its own job and out of the due index, and one message
    // per job sent (a second send whose mark lost to the first is `already_queued`: the
    // checker drops that job). Read from the table and the queue's depth: receiving 20,000
    // messages back from moto, which walks the whole queue per call, would take hours.
    let n = n as u64;
    if marks.marked != n || marks.jobs != n || marks.in_due_index != 0 || queued != n {
        return Err(format!("for {n} due watches: {marks:?}, {queued} queued").into());
    }
    if depth != queued + already + recovered {
        return Err(format!(
            "{depth} messages for {queued} queued + {already} already queued + {recovered} recovered"
        )
        .into());
    }
    Ok(())
}

/// What a scheduler run left on the watches: marked (a `queued_job`), how many distinct jobs,
/// and how many are still in the `due` index.
#[derive(Debug)]
struct Marks {
    marked: u64,
    jobs: u64,
    in_due_index: u64,
}

async fn queue_marks(bench: &Bench) -> Res<Marks> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let table = &bench.stack.provisioned.resources.watches_table;
    let mut jobs = std::collections::HashSet::new();
    let (mut marked, mut in_due_index) = (0u64, 0u64);
    let mut start = None;
    loop {
        let page = bench
            .stack
            .dynamodb
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start.take())
            .send()
            .await?;
        for item in page.items.unwrap_or_default() {
            let watch =
                matches!(item.get("sk"), Some(AttributeValue::S(sk)) if sk.starts_with("W#"));
            if !watch {
                continue;
            }
            if let Some(AttributeValue::S(job)) = item.get("queued_job") {
                marked += 1;
                jobs.insert(job.clone());
            }
            in_due_index += u64::from(item.contains_key("due_shard"));
        }
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => break,
        }
    }
    Ok(Marks {
        marked,
        jobs: jobs.len() as u64,
        in_due_index,
    })
}

#[tokio::main]
async fn main() {
    let mode = std::env::var("CW_BENCH_MODE").unwrap_or_default();
    let result = match mode.as_str() {
        "scheduler" => scheduler_run().await,
        "memory" => memory::run().await,
        _ => run().await,
    };
    if let Err(e) = result {
        eprintln!("aws-cost: {e}");
        std::process::exit(1);
    }
}
