//! Fuzzing the check pipeline through the sandbox, with the real `changewatch` executable as
//! its child: hostile pages × hostile filters, rules and templates. Whatever the input, every
//! request ends (a result, or an error naming what went wrong) and the next one still works;
//! nothing ever reaches the server as a broken reply.
//!
//! Bounded: `CW_FUZZ_CASES` cases (default 48 in `make test`; `make fuzz` runs thousands).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::PathBuf;
use std::time::Duration;

use changewatch_core::diff::DiffFormat;
use changewatch_core::fetch::FetchedPage;
use changewatch_core::pipeline::{PreviousState, ProcessorSettings};
use changewatch_notify::render::ChangeContext;
use changewatch_sandbox::{RenderJob, Sandbox, SandboxConfig};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

fn cases() -> u32 {
    std::env::var("CW_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })
}

/// An error text is the sandbox's answer (the processor's own error or a blown budget), never a
/// child that could not be started or a reply that could not be read.
fn sandbox_answered(text: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        !text.contains("could not be started") && !text.contains("reply could not be read"),
        "{text}"
    );
    Ok(())
}

fn sandbox() -> Sandbox {
    Sandbox::child_process(SandboxConfig {
        program: PathBuf::from(env!("CARGO_BIN_EXE_changewatch")),
        timeout: Duration::from_secs(2),
        memory_mb: 384,
        stack_mb: 16,
        max_idle: 2,
        max_running: usize::MAX,
    })
}

/// Pages an attacker would serve: deep nesting, unclosed tags, huge attributes, scripts,
/// deep JSON, feeds, bytes that are not UTF-8.
fn hostile_page() -> impl Strategy<Value = (String, Vec<u8>)> {
    let html_bits = prop_oneof![
        Just("<div>".to_string()),
        Just("</div>".to_string()),
        Just("<p>text ".to_string()),
        Just("<table><tr><td>".to_string()),
        Just("<a href='javascript:x'>".to_string()),
        Just("<script>var x = '{{7*7}}';</script>".to_string()),
        Just("<style>p{}</style>".to_string()),
        Just("<![CDATA[ x ]]>".to_string()),
        Just("<svg><foreignObject><math>".to_string()),
        Just("&amp;&#0;&#xD800;&nbsp;".to_string()),
        Just("<script type=\"application/ld+json\">{\"a\":[1,2]}</script>".to_string()),
        "[a-z <>/=\"']{0,40}",
    ];
    let html = (
        prop::collection::vec(html_bits, 0..60),
        0usize..3000,
        prop::sample::select(vec!["div", "span", "b", "li"]),
    )
        .prop_map(|(bits, depth, tag)| {
            let mut s = String::from("<html><head><title>t</title></head><body>");
            s.push_str(&format!("<{tag}>").repeat(depth));
            s.push_str(&bits.concat());
            s.push_str(&format!("</{tag}>").repeat(depth / 2));
            ("text/html".to_string(), s.into_bytes())
        });
    let json = (0usize..2000, "[a-z0-9\"]{0,20}").prop_map(|(depth, leaf)| {
        let s = format!("{}\"{}\"{}", "[".repeat(depth), leaf, "]".repeat(depth));
        ("application/json".to_string(), s.into_bytes())
    });
    let feed = "[a-z<>/ ]{0,200}".prop_map(|items| {
        let s = format!("<?xml version=\"1.0\"?><rss><channel><item><title>{items}</title></item></channel></rss>");
        ("application/rss+xml".to_string(), s.into_bytes())
    });
    let bytes = prop::collection::vec(any::<u8>(), 0..2000)
        .prop_map(|b| ("text/plain; charset=latin1".to_string(), b));
    prop_oneof![html, json, feed, bytes]
}

/// Filters users could save: ordinary and hostile, of every kind.
fn hostile_filter() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("div".to_string()),
        Just("css:*".to_string()),
        Just("div div div".to_string()),
        Just("xpath://*".to_string()),
        Just("xpath://div[count(ancestor::*) > 10]".to_string()),
        Just("xpath1://text()".to_string()),
        Just("json:$..*".to_string()),
        Just("json:$[*][*][*]".to_string()),
        Just("jq:..".to_string()),
        Just("jq:[paths]".to_string()),
        Just("jq:def f: 1 + f; f".to_string()),
        Just("jq:last(range(1e15))".to_string()),
        Just("jq:[limit(99999; repeat(\"x\" * 100000))]".to_string()),
        Just("jqraw:.. | tostring".to_string()),
        (1usize..200).prop_map(|n| format!("jq:{}.{}", "[".repeat(n), "]".repeat(n))),
        "[a-z#.:\\[\\]()*/@=' ]{1,30}",
    ]
}

fn hostile_rule() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/(?:a|(?=a)a)*b/".to_string()),
        Just("/(a+)+$/".to_string()),
        Just("/^.*$/sm".to_string()),
        Just("/\\w{1000}/".to_string()),
        Just("text".to_string()),
        "[a-z/()*+?.\\[\\]]{1,20}",
    ]
}

fn page(content_type: String, raw: Vec<u8>) -> FetchedPage {
    FetchedPage {
        final_url: "http://127.0.0.1/fuzz".into(),
        status: 200,
        text: String::from_utf8_lossy(&raw).into_owned(),
        content_type: Some(content_type),
        server: None,
        headers: Vec::new(),
        raw,
        encoding: "UTF-8",
        fetch_time: 0.0,
        screenshot: None,
        stock_scan: None,
    }
}

#[test]
fn hostile_pages_filters_and_rules_always_end() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sb = sandbox();
    let mut runner = runner();
    let strategy = (
        hostile_page(),
        prop::collection::vec(hostile_filter(), 0..3),
        prop::collection::vec(hostile_filter(), 0..2),
        prop::collection::vec(hostile_rule(), 0..2),
        prop::collection::vec(hostile_rule(), 0..2),
        any::<bool>(),
    );
    let tally = std::cell::RefCell::new(std::collections::BTreeMap::<&str, u32>::new());
    runner
        .run(
            &strategy,
            |((ct, raw), include, subtract, extract, ignore, sort)| {
                let settings = ProcessorSettings {
                    include_filters: include,
                    subtractive_selectors: subtract,
                    extract_text: extract,
                    ignore_text: ignore.clone(),
                    trigger_text: ignore,
                    sort_text_alphabetically: sort,
                    remove_duplicate_lines: sort,
                    ..ProcessorSettings::default()
                };
                let outcome =
                    runtime.block_on(sb.process(page(ct, raw), settings, PreviousState::default()));
                *tally.borrow_mut().entry(kind(&outcome)).or_default() += 1;
                match &outcome {
                    Err(e) => sandbox_answered(&e.last_error()),
                    Ok(_) => Ok(()),
                }
            },
        )
        .unwrap();
    eprintln!("pipeline fuzz outcomes: {:?}", tally.borrow());
    // After everything, the sandbox still works.
    let (_, p) = runtime
        .block_on(sb.process(
            page("text/html".into(), b"<p>ok</p>".to_vec()),
            ProcessorSettings::default(),
            PreviousState::default(),
        ))
        .unwrap();
    assert_eq!(p.text, "ok");
}

fn kind<T>(outcome: &Result<T, changewatch_core::CheckError>) -> &'static str {
    match outcome {
        Ok(_) => "processed",
        Err(e) => {
            let text = e.last_error();
            if text.contains("took longer than") {
                "timeout"
            } else if text.contains("ran out of stack") {
                "stack"
            } else if text.contains("MB of memory") {
                "memory"
            } else if text.contains("stopped unexpectedly") {
                "crashed"
            } else {
                "processor error"
            }
        }
    }
}

/// Templates: Jinja fragments glued together at random, rendered against a page's text.
#[test]
fn hostile_templates_always_end() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sb = sandbox();
    let mut runner = runner();
    let piece = prop_oneof![
        Just("{{ diff }}".to_string()),
        Just("{{ current_snapshot|upper }}".to_string()),
        Just("{% for i in range(100000) %}{{ i }}{% endfor %}".to_string()),
        Just(
            "{% set a = \"x\" * 100000000 %}{% set a = a ~ a ~ a ~ a %}{{ a|length }}".to_string()
        ),
        Just("{{ [1,2,3] * 100000000 }}".to_string()),
        Just("{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}".to_string()),
        Just("{{ watch_url|regex_replace('(a+)+$', 'b') }}".to_string()),
        Just("{% now 'UTC', '%Y' %}".to_string()),
        Just("{{ ".to_string()),
        Just("{{ 7*7 }}".to_string()),
        "[a-z{}%() |'\"]{0,30}",
    ];
    let strategy = (
        prop::collection::vec(piece.clone(), 0..4),
        prop::collection::vec(piece, 0..2),
        "[a-z\n{}%]{0,200}",
    );
    let tally = std::cell::RefCell::new(std::collections::BTreeMap::<&str, u32>::new());
    runner
        .run(&strategy, |(body, title, text)| {
            let job = RenderJob::Change {
                title: title.concat(),
                body: body.concat(),
                urls: vec!["json://127.0.0.1/{{ watch_uuid }}".into()],
                ctx: Box::new(ChangeContext {
                    watch_uuid: "u".into(),
                    watch_url: "http://127.0.0.1/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!".into(),
                    prev_snapshot: text.clone(),
                    current_snapshot: format!("{text}\nmore"),
                    ..ChangeContext::default()
                }),
                format: DiffFormat::HtmlColor,
            };
            let outcome = runtime.block_on(sb.render(job));
            let label = match &outcome {
                Ok(_) => "rendered",
                Err(e) if e.to_string().contains("MB of memory") => "memory",
                Err(e) if e.to_string().contains("took longer") => "timeout",
                Err(_) => "template error",
            };
            *tally.borrow_mut().entry(label).or_default() += 1;
            match outcome {
                Err(e) => sandbox_answered(&e.to_string()),
                Ok(_) => Ok(()),
            }
        })
        .unwrap();
    eprintln!("template fuzz outcomes: {:?}", tally.borrow());
}
