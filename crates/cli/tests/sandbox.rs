//! The sandbox with the real `changewatch` executable as its child: hostile filters and
//! templates end as errors naming the budget they blew, and the next request still works.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::PathBuf;
use std::time::Duration;

use changewatch_core::diff::DiffFormat;
use changewatch_core::fetch::FetchedPage;
use changewatch_core::pipeline::{ChangeStatus, PreviousState, ProcessorSettings};
use changewatch_notify::render::ChangeContext;
use changewatch_sandbox::{RenderJob, Sandbox, SandboxConfig};

fn sandbox_config(timeout_secs: u64, memory_mb: u64) -> SandboxConfig {
    SandboxConfig {
        program: PathBuf::from(env!("CARGO_BIN_EXE_changewatch")),
        timeout: Duration::from_secs(timeout_secs),
        memory_mb,
        stack_mb: 16,
        max_idle: 2,
        max_running: usize::MAX,
    }
}

fn sandbox(timeout_secs: u64, memory_mb: u64) -> Sandbox {
    Sandbox::child_process(sandbox_config(timeout_secs, memory_mb))
}

fn page(content_type: &str, body: &str) -> FetchedPage {
    FetchedPage {
        final_url: "http://127.0.0.1/p".into(),
        status: 200,
        content_type: Some(content_type.into()),
        server: None,
        headers: Vec::new(),
        raw: body.as_bytes().to_vec(),
        text: body.to_string(),
        encoding: "UTF-8",
        fetch_time: 0.01,
        screenshot: None,
        stock_scan: None,
    }
}

fn filtered(filter: &str) -> ProcessorSettings {
    ProcessorSettings {
        include_filters: vec![filter.to_string()],
        ..ProcessorSettings::default()
    }
}

async fn process_error(sb: &Sandbox, p: FetchedPage, settings: ProcessorSettings) -> String {
    match sb.process(p, settings, PreviousState::default()).await {
        Ok((_, processed)) => panic!("expected an error, got {:?}", processed.text),
        Err(e) => e.last_error(),
    }
}

async fn works(sb: &Sandbox) {
    let (page, processed) = sb
        .process(
            page(
                "text/html",
                "<html><body><p id=a>Price: 10</p><p>x</p></body></html>",
            ),
            filtered("#a"),
            PreviousState::default(),
        )
        .await
        .unwrap();
    assert_eq!(page.status, 200, "the page comes back with the result");
    assert_eq!(processed.text, "Price: 10");
    assert_eq!(processed.status, ChangeStatus::Baseline);
}

#[tokio::test]
async fn ordinary_pages_are_processed_and_children_reused() {
    let sb = sandbox(30, 1024);
    assert!(sb.is_isolated());
    for _ in 0..3 {
        works(&sb).await;
    }
    // The processor's own errors cross the boundary with their meaning intact.
    let e = sb
        .process(
            page("text/html", "<p>x</p>"),
            filtered("#missing"),
            PreviousState::default(),
        )
        .await
        .unwrap_err();
    assert!(e.is_filter_failure(), "{e:?}");
}

#[tokio::test]
async fn endless_jq_recursion_blows_the_stack_of_a_child_only() {
    let sb = sandbox(60, 1024);
    let err = process_error(
        &sb,
        page("application/json", r#"{"a": 1}"#),
        filtered("jq:def f: 1 + f; f"),
    )
    .await;
    assert!(err.contains("ran out of stack"), "{err}");
    works(&sb).await;
}

#[tokio::test]
async fn a_jq_loop_without_end_is_stopped_at_the_deadline() {
    let sb = sandbox(2, 1024);
    let err = process_error(
        &sb,
        page("application/json", r#"{"a": 1}"#),
        filtered("jq:last(range(1e15))"),
    )
    .await;
    assert!(err.contains("took longer than 2 seconds"), "{err}");
    works(&sb).await;
}

#[tokio::test]
async fn jq_asking_for_gigabytes_hits_the_memory_cap() {
    let sb = sandbox(60, 256);
    let err = process_error(
        &sb,
        page("application/json", r#"{"a": 1}"#),
        filtered(r#"jq:[limit(99999; repeat("x" * 100000))]"#),
    )
    .await;
    assert!(err.contains("more than 256 MB"), "{err}");
    works(&sb).await;
}

/// A PDF whose 6 MB content stream inflates to 1 GiB: the child reading it meets its memory
/// cap, the check ends in an error naming it, and the next page is processed as ever.
#[tokio::test]
async fn a_pdf_decompression_bomb_hits_the_memory_cap() {
    let sb = sandbox(60, 256);
    let bomb = testkit::pdf::bomb(1024);
    assert!(bomb.len() < 8 * 1024 * 1024, "{} bytes", bomb.len());
    let mut p = page("application/pdf", "");
    p.text = String::from_utf8_lossy(&bomb).into_owned();
    p.raw = bomb;
    let err = process_error(&sb, p, ProcessorSettings::default()).await;
    assert!(err.contains("more than 256 MB"), "{err}");
    works(&sb).await;
}

#[tokio::test]
async fn a_template_asking_for_gigabytes_fails_its_render_only() {
    let sb = sandbox(60, 256);
    let bomb = r#"{% set a = "x" * 100000000 %}{% set a = a ~ a %}{% set a = a ~ a %}{% set a = a ~ a %}{{ a|length }}"#;
    let job = RenderJob::Change {
        title: "t".into(),
        body: bomb.into(),
        urls: vec!["json://127.0.0.1/{{ watch_uuid }}".into()],
        ctx: Box::new(ChangeContext {
            watch_uuid: "u1".into(),
            ..ChangeContext::default()
        }),
        format: DiffFormat::Text,
    };
    let err = sb.render(job).await.unwrap_err().to_string();
    assert!(err.contains("more than 256 MB"), "{err}");
    // Ordinary templates still render, URL templates included.
    let job = RenderJob::Change {
        title: "Change on {{ watch_uuid }}".into(),
        body: "{{ current_snapshot }}".into(),
        urls: vec!["json://127.0.0.1/{{ watch_uuid }}".into()],
        ctx: Box::new(ChangeContext {
            watch_uuid: "u1".into(),
            current_snapshot: "now".into(),
            ..ChangeContext::default()
        }),
        format: DiffFormat::Text,
    };
    let rendered = sb.render(job).await.unwrap();
    let message = rendered.message.unwrap();
    assert_eq!(message.title, "Change on u1");
    assert_eq!(message.body, "now");
    assert_eq!(rendered.urls, vec!["json://127.0.0.1/u1".to_string()]);
}

#[tokio::test]
async fn concurrent_requests_each_get_a_child() {
    let sb = sandbox(30, 1024);
    let mut tasks = Vec::new();
    for i in 0..4 {
        let sb = sb.clone();
        tasks.push(tokio::spawn(async move {
            let body = format!("<p id=a>n{i}</p>");
            let (_, p) = sb
                .process(
                    page("text/html", &body),
                    filtered("#a"),
                    PreviousState::default(),
                )
                .await
                .unwrap();
            assert_eq!(p.text, format!("n{i}"));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    sb.shutdown();
}

/// How many children of this process have a memory cap of `memory_mb` now.
fn live_children(memory_mb: u64) -> usize {
    children_pids(memory_mb).len()
}

/// Runs `n` requests that each spin until the 2 s deadline, at once, and returns the most
/// children seen alive meanwhile and every request's error.
async fn spinning_at_once(max_running: usize, n: usize) -> (usize, Vec<String>) {
    let sb = Sandbox::child_process(SandboxConfig {
        max_running,
        max_idle: 0,
        ..sandbox_config(2, 1021)
    });
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let sb = sb.clone();
            tokio::spawn(async move {
                process_error(
                    &sb,
                    page("application/json", r#"{"a": 1}"#),
                    filtered("jq:last(range(1e15))"),
                )
                .await
            })
        })
        .collect();
    let mut most = 0;
    while !tasks.iter().all(|t| t.is_finished()) {
        most = most.max(live_children(1021));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut errors = Vec::new();
    for t in tasks {
        errors.push(t.await.unwrap());
    }
    (most, errors)
}

/// The checker function caps the children working at once (each may grow to its memory
/// cap): requests beyond the cap wait for a child instead of starting another.
#[tokio::test]
async fn children_at_once_are_capped_and_the_rest_wait() {
    let (most, errors) = spinning_at_once(1, 3).await;
    assert_eq!(most, 1, "never more than one child at once");
    for e in &errors {
        assert!(e.contains("took longer than 2 seconds"), "{e}");
    }
    // The control: uncapped, the same requests run side by side (so the count above is not
    // blind to children).
    let (most, _) = spinning_at_once(usize::MAX, 3).await;
    assert_eq!(most, 3);
}

/// The pids of this process's children with a memory cap of `memory_mb` (each thread lists
/// those it started; the cap tells them from the children of tests running alongside).
fn children_pids(memory_mb: u64) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let marker = format!("CHANGEWATCH_SANDBOX_MEMORY_MB={memory_mb}\0");
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| c.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| String::from_utf8_lossy(&env).contains(&marker))
        })
        .collect()
}

/// Minor page faults of a process so far (`/proc/<pid>/stat`, field 10).
fn minor_faults(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(7).unwrap().parse().unwrap()
}

/// A news page of `stories` stories of 76 words each, the words drawn by `seed`: pages that
/// differ in size and text, as a round of checks has (bench/serve_compare.py's pages). Not
/// `testkit::news_page`: its stories repeat one sentence, and a round of those pages frees too
/// little for glibc to trim (11 faults without the child's malloc settings, this one 179).
fn news_page(seed: u64, stories: usize) -> String {
    const WORDS: [&str; 12] = [
        "market", "council", "weather", "harbour", "election", "festival", "railway", "library",
        "budget", "river", "school", "stadium",
    ];
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut word = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        WORDS[(state >> 33) as usize % WORDS.len()]
    };
    let mut body =
        String::from("<!DOCTYPE html><html><head><title>News</title></head><body><main>");
    for k in 0..stories {
        let words: Vec<&str> = (0..76).map(|_| word()).collect();
        body.push_str(&format!(
            "<article id='s{k}'><h2><a href='/story/{seed}/{k}'>Story {k}: {} {}</a></h2>\
             <p class='meta'>By Reporter {}</p><p>{}.</p><p class='price'>Price: ${}.00</p></article>",
            word(),
            word(),
            k % 9,
            words.join(" "),
            seed * 31 + k as u64
        ));
    }
    body.push_str("</main></body></html>");
    body
}

/// A warm child processes the next pages in the memory it already has: glibc used to hand
/// the top of its heap back after a parse, and the next check faulted the same pages in again
/// (bench/README.md, seventeenth session).
#[tokio::test]
async fn a_warm_child_reuses_its_heap_for_the_next_pages() {
    let sb = Sandbox::child_process(SandboxConfig {
        max_running: 1,
        max_idle: 1,
        ..sandbox_config(30, 1019)
    });
    let pages: Vec<String> = (0..12)
        .map(|k| news_page(k, 40 + 5 * (k % 5) as usize))
        .collect();
    let round = || async {
        for (k, body) in pages.iter().enumerate() {
            let (_, p) = sb
                .process(
                    page("text/html", body),
                    ProcessorSettings::default(),
                    PreviousState::default(),
                )
                .await
                .unwrap();
            assert!(p.text.contains(&format!("Price: ${}.00", k * 31)));
        }
    };
    round().await;
    let pids = children_pids(1019);
    assert_eq!(pids.len(), 1, "one child, kept between requests");
    let before = minor_faults(&pids[0]);
    round().await;
    assert_eq!(
        children_pids(1019),
        pids,
        "the same child did the second round"
    );
    let faults = minor_faults(&pids[0]) - before;
    // Trimmed after each parse, the round faulted ~180 pages in again.
    assert!(
        faults < 3 * pages.len() as u64,
        "{faults} minor faults processing {} pages a second time",
        pages.len()
    );
    sb.shutdown();
}
