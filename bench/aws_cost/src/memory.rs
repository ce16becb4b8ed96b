//! `CW_BENCH_MODE=memory`: one batch of ten large pages through the checker function inside
//! a memory cgroup limited to the template's `CheckerMemory`, as Lambda limits an execution
//! environment. Lambda kills an environment that goes over, and SQS then redelivers the whole
//! batch; here the kernel does the killing. Prints the cgroup's peak and what became of each
//! check. `CW_BENCH_CHECKER_BIN` runs another build of the checker (a baseline);
//! `CW_BENCH_PAGE_MB` (default 10, the template's FETCH_MAX_BYTES) sizes the pages.
//!
//! Needs a writable cgroup v1 memory controller (`/sys/fs/cgroup/memory`, root).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use changewatch_e2e::runtime::Function;
use changewatch_store::{Key, WatchStore};
use serde_json::{Value, json};
use testkit::Page;

use super::{Bench, KEY, Res, arg, epoch_now, page};

/// A memory cgroup that exists while this lives.
struct Cgroup {
    dir: PathBuf,
}

impl Cgroup {
    fn create(limit_mb: u64) -> Res<Cgroup> {
        let root = PathBuf::from("/sys/fs/cgroup/memory");
        if !root.join("memory.limit_in_bytes").exists() {
            return Err("no cgroup v1 memory controller at /sys/fs/cgroup/memory".into());
        }
        let dir = root.join(format!("cw-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        // No swap to hide in: over the limit is killed, as in Lambda.
        let _ = std::fs::write(dir.join("memory.swappiness"), "0");
        std::fs::write(
            dir.join("memory.limit_in_bytes"),
            (limit_mb * 1024 * 1024).to_string(),
        )?;
        Ok(Cgroup { dir })
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file)).unwrap_or_default()
    }

    fn peak_mb(&self) -> f64 {
        self.read("memory.max_usage_in_bytes")
            .trim()
            .parse::<f64>()
            .unwrap_or(0.0)
            / 1024.0
            / 1024.0
    }

    /// Processes the kernel killed for going over the limit.
    fn oom_kills(&self) -> u64 {
        self.read("memory.oom_control")
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Empty once the function's processes are gone.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The ten pages of the batch: ordinary HTML, text of control characters (JSON escapes each
/// as six bytes), bytes that are not UTF-8 (each decodes to a 3-byte U+FFFD), and a small JSON
/// page with a filter that asks for gigabytes.
fn pages(mb: usize) -> Vec<(&'static str, Page, Option<&'static str>)> {
    let bytes = mb * 1024 * 1024;
    let lines = |byte: u8| {
        let mut body = vec![byte; bytes];
        for i in (99..bytes).step_by(100) {
            body[i] = b'\n';
        }
        body
    };
    let mut out = Vec::new();
    for i in 0..3 {
        // The generator overshoots its target a little: stay under FETCH_MAX_BYTES.
        out.push(("html", Page::html(page(bytes - bytes / 16, i, 1)), None));
    }
    for _ in 0..3 {
        out.push(("control", Page::text(lines(1)), None));
    }
    for _ in 0..3 {
        out.push((
            "invalid",
            Page::new("text/plain; charset=utf-8", lines(0xff)),
            None,
        ));
    }
    out.push((
        "hostile-filter",
        Page::json(r#"{"a": 1}"#),
        Some(r#"jq:[limit(99999; repeat("x" * 100000))]"#),
    ));
    out
}

pub(crate) async fn run() -> Res<()> {
    let page_mb = arg("CW_BENCH_PAGE_MB", 10)?;
    let mut bench = Bench::new().await?;
    let mut spec = bench.stack.deployment.function("CheckerFunction")?;
    let binary = match std::env::var("CW_BENCH_CHECKER_BIN") {
        Ok(path) => PathBuf::from(path),
        Err(_) => changewatch_e2e::binaries::built(&spec.binary),
    };
    // Each page takes a few seconds in the emulator; the template's timeout stays.
    spec.timeout = spec.timeout.max(Duration::from_secs(60));
    let memory_mb = u64::from(spec.memory_mb);
    bench.checker = Arc::new(Function::new(
        spec,
        binary.clone(),
        bench.stack.platform_environment(),
    ));
    let cgroup = Cgroup::create(memory_mb)?;
    bench.checker.place_in_cgroup(cgroup.dir.clone());

    let mut ids = Vec::new();
    let mut kinds = Vec::new();
    for (i, (kind, body, filter)) in pages(page_mb).into_iter().enumerate() {
        let path = format!("/m/{i}");
        bench.pages.set(&path, body);
        let mut watch = json!({"url": bench.pages.url(&path), "title": format!("{kind} {i}")});
        if let Some(f) = filter {
            watch["include_filters"] = json!([f]);
        }
        let resp = bench
            .http
            .post(format!("{}/api/v1/watch", bench.gateway.url()))
            .header("x-api-key", KEY)
            .json(&watch)
            .send()
            .await?;
        let body: Value = resp.json().await?;
        let Some(uuid) = body.get("uuid").and_then(Value::as_str) else {
            return Err(format!("creating watch {i}: {body}").into());
        };
        ids.push(uuid.to_string());
        kinds.push(kind);
    }
    let now = epoch_now();
    bench.make_due(&ids, now).await?;
    bench
        .scheduler
        .invoke(&bench.stack.schedule_event(&bench.scheduler))
        .await
        .map_err(|e| format!("scheduler tick: {e}"))?;

    // The first delivery of every message: as many batches as SQS hands out for the ten.
    let started = Instant::now();
    let mut delivered = 0;
    let mut batches = Vec::new();
    while delivered < ids.len() && started.elapsed() < Duration::from_secs(600) {
        let Some(d) = bench
            .checks
            .poll(&bench.sqs, &bench.checker, Duration::from_secs(2))
            .await?
        else {
            break;
        };
        delivered += d.message_ids.len();
        batches.push(json!({
            "messages": d.message_ids.len(),
            "deleted": d.deleted.len(),
            "outcome": match &d.outcome {
                Ok(_) => "answered".to_string(),
                Err(e) => format!("failed: {e}"),
            },
        }));
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut checks = Vec::new();
    for (id, kind) in ids.iter().zip(&kinds) {
        let doc = bench
            .store
            .get(&Key::watch(&bench.tenant, id))
            .await?
            .map(|i| i.doc.to_value())
            .transpose()?
            .unwrap_or(Value::Null);
        let checked = doc["last_checked"].as_i64().unwrap_or(0) >= now;
        checks.push(json!({
            "kind": kind,
            "checked": checked,
            "last_error": doc["last_error"],
        }));
    }
    bench.checker.kill();
    let report = json!({
        "checker": binary.display().to_string(),
        "memory_limit_mb": memory_mb,
        "page_mb": page_mb,
        "peak_mb": (cgroup.peak_mb() * 10.0).round() / 10.0,
        "oom_kills": cgroup.oom_kills(),
        "seconds": seconds,
        "batches": batches,
        "checks": checks,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
