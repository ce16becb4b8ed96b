//! Criterion benchmarks of the check pipeline on a 50 KB and a 1 MB HTML page:
//! filter (subtractive + CSS include, or the include rule as XPath) → HTML to text → rules →
//! md5, and the diff between two versions of the result, the notification rendered from those
//! two versions, and the decode of a stored watch document (every check reads one). Run with
//! `make bench`; figures are recorded in bench/README.md.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::hint::black_box;

use changewatch_core::diff::{self, DiffFormat, DiffOptions};
use changewatch_core::model::{DEFAULT_NOTIFICATION_BODY, DEFAULT_NOTIFICATION_TITLE};
use changewatch_core::pipeline::{PreviousState, ProcessorSettings, process};
use changewatch_core::{FetchedPage, charset};
use changewatch_notify::render::{self, ChangeContext};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// The benchmarks' news page (`testkit::news_page`).
fn page_of(target: usize, version: u32) -> String {
    testkit::news_page(target, "Bench Gazette", version)
}

fn fetched(html: String) -> FetchedPage {
    let raw = html.into_bytes();
    let (text, encoding, _) = charset::decode(&raw, Some("text/html; charset=utf-8"));
    FetchedPage {
        final_url: "http://bench.test/".into(),
        status: 200,
        content_type: Some("text/html; charset=utf-8".into()),
        server: None,
        headers: Vec::new(),
        raw,
        text,
        encoding,
        fetch_time: 0.0,
        screenshot: None,
        stock_scan: None,
    }
}

fn settings() -> ProcessorSettings {
    ProcessorSettings {
        include_filters: vec!["main".into()],
        subtractive_selectors: vec![".ad".into()],
        ignore_text: vec!["/visitors: \\d+/".into()],
        ..ProcessorSettings::default()
    }
}

/// `settings()` with the include rule as XPath: the page is parsed once, by libxml2, which
/// the CSS subtractive rule is matched on too; the match's text comes from that tree.
fn xpath_settings() -> ProcessorSettings {
    ProcessorSettings {
        include_filters: vec!["//main".into()],
        ..settings()
    }
}

/// The filtered text of version 0 and version 1 of the page (every 7th story's price
/// changed): the two snapshots the diff and notification benches compare.
fn snapshots(size: usize) -> (String, String) {
    let s = settings();
    let before = process(&fetched(page_of(size, 0)), &s, &PreviousState::default()).map(|p| p.text);
    let after = process(&fetched(page_of(size, 1)), &s, &PreviousState::default()).map(|p| p.text);
    let (Ok(before), Ok(after)) = (before, after) else {
        panic!("bench pages must process");
    };
    (before, after)
}

fn bench_pipeline(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline");
    group.sample_size(20);
    for (label, size) in [("50KB", 50 * 1024), ("1MB", 1024 * 1024)] {
        let page = fetched(page_of(size, 0));
        // Identifies the page for the side-by-side baseline (bench/upstream_baseline.py prints
        // the same line for the page it builds).
        eprintln!(
            "# page {label}: {} bytes md5 {:x}",
            page.raw.len(),
            md5::compute(&page.raw)
        );
        group.throughput(Throughput::Bytes(page.raw.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("filter_text_hash", label),
            &page,
            |b, p| b.iter(|| process(black_box(p), &settings(), &PreviousState::default())),
        );
        group.bench_with_input(
            BenchmarkId::new("filter_xpath_text_hash", label),
            &page,
            |b, p| b.iter(|| process(black_box(p), &xpath_settings(), &PreviousState::default())),
        );
        group.bench_with_input(
            BenchmarkId::new("text_hash_no_filters", label),
            &page,
            |b, p| {
                b.iter(|| {
                    process(
                        black_box(p),
                        &ProcessorSettings::default(),
                        &PreviousState::default(),
                    )
                })
            },
        );
    }
    group.finish();
}

fn bench_diff(c: &mut Criterion) {
    let mut group = c.benchmark_group("diff");
    group.sample_size(20);
    for (label, size) in [("50KB", 50 * 1024), ("1MB", 1024 * 1024)] {
        let (before, after) = snapshots(size);
        group.throughput(Throughput::Bytes(after.len() as u64));
        // The API's defaults: whole document, line mode.
        let lines = DiffOptions {
            include_equal: true,
            word_diff: false,
            ..DiffOptions::default()
        };
        group.bench_function(BenchmarkId::new("lines_text", label), |b| {
            b.iter(|| {
                let raw = diff::render_diff(black_box(&before), black_box(&after), &lines);
                diff::apply_format(&raw, DiffFormat::Text)
            })
        });
        group.bench_function(BenchmarkId::new("lines_htmlcolor", label), |b| {
            b.iter(|| {
                let raw = diff::render_diff(black_box(&before), black_box(&after), &lines);
                diff::apply_format(&raw, DiffFormat::HtmlColor)
            })
        });
        let words = DiffOptions {
            word_diff: true,
            ..DiffOptions::default()
        };
        group.bench_function(BenchmarkId::new("words_text", label), |b| {
            b.iter(|| {
                let raw = diff::render_diff(black_box(&before), black_box(&after), &words);
                diff::apply_format(&raw, DiffFormat::Text)
            })
        });
    }
    group.finish();
}

/// Where the notification benches leave their two snapshots for bench/upstream_baseline.py.
const SNAPSHOT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/bench-snapshots");

/// A content-change notification with upstream's default title and body
/// (`{{watch_url}}` + `{{diff}}`), rendered from the two snapshots: diff (word-level inside
/// changed lines for htmlcolor, as upstream), template, placemarkers to the format's markup.
fn bench_notification(c: &mut Criterion) {
    let mut group = c.benchmark_group("notification");
    group.sample_size(20);
    for (label, size) in [("50KB", 50 * 1024), ("1MB", 1024 * 1024)] {
        let (before, after) = snapshots(size);
        // The baseline renders from these very texts, not from its own HTML to text (whose
        // whitespace differs): it reads the files written here and prints the same lines.
        std::fs::create_dir_all(SNAPSHOT_DIR).unwrap();
        for (name, text) in [("prev", &before), ("current", &after)] {
            std::fs::write(format!("{SNAPSHOT_DIR}/{label}-{name}.txt"), text).unwrap();
            eprintln!(
                "# snapshot {label} {name}: {} bytes md5 {:x}",
                text.len(),
                md5::compute(text)
            );
        }
        let ctx = ChangeContext {
            watch_url: "http://bench.test/".into(),
            prev_snapshot: before,
            current_snapshot: after,
            ..ChangeContext::default()
        };
        group.throughput(Throughput::Bytes(ctx.current_snapshot.len() as u64));
        for (name, format) in [
            ("render_text", DiffFormat::Text),
            ("render_htmlcolor", DiffFormat::HtmlColor),
        ] {
            group.bench_function(BenchmarkId::new(name, label), |b| {
                b.iter(|| {
                    render::render(
                        DEFAULT_NOTIFICATION_TITLE,
                        DEFAULT_NOTIFICATION_BODY,
                        black_box(&ctx),
                        format,
                    )
                    .unwrap()
                })
            });
        }
    }
    group.finish();
}

/// A watch as the API stores it after a few checks: every check decodes one of these, so
/// what decoding costs beyond parsing (defaults built and thrown away) shows here.
fn bench_documents(c: &mut Criterion) {
    use changewatch_core::model::Watch;
    let watch = Watch {
        url: "https://example.com/news/front-page".into(),
        uuid: "0b0f6a43-5ad1-4b77-8e0a-3f8c7d4c9e21".into(),
        title: Some("Front page".into()),
        include_filters: vec!["main".into()],
        subtractive_selectors: vec![".ad".into()],
        tags: vec!["4f1c2d9e-8a7b-4c3d-9e0f-1a2b3c4d5e6f".into()],
        check_count: 12,
        last_checked: 1_765_000_000,
        previous_md5: changewatch_core::model::TextOrFalse::Text(
            "9e107d9d372bb6826bd81d3542a419d6".into(),
        ),
        ..Watch::default()
    };
    let text = serde_json::to_string(&watch).unwrap();
    let mut group = c.benchmark_group("documents");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("watch_decode", |b| {
        b.iter(|| serde_json::from_str::<Watch>(black_box(&text)).unwrap())
    });
    // What the push layer decodes of each check's watch while nobody is connected.
    group.bench_function("watch_marks_decode", |b| {
        b.iter(|| {
            serde_json::from_str::<changewatch_core::model::WatchMarks>(black_box(&text)).unwrap()
        })
    });
    group.finish();
}

/// Upstream's `previous_md5` of a page's text (whitespace taken out), once per processed check.
fn bench_checksum(c: &mut Criterion) {
    let mut group = c.benchmark_group("checksum");
    for (label, size) in [("50KB", 50_000), ("1MB", 1_000_000)] {
        let text = changewatch_core::html_text::html_to_text(
            &page_of(size, 0),
            &changewatch_core::html_text::TextOptions::default(),
        );
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(BenchmarkId::new("text_md5", label), |b| {
            b.iter(|| changewatch_core::text_rules::checksum(black_box(&text), true))
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_pipeline,
    bench_diff,
    bench_notification,
    bench_documents,
    bench_checksum
);
criterion_main!(benches);
