//! Golden files pin the exact bytes users see for one realistic change, so a
//! change in matching, markers, styles or escaping shows up as a reviewable
//! file diff. Run with `UPDATE_GOLDEN=1` to rewrite them after an intended
//! change, then check the new files by eye.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::PathBuf;

use changewatch_core::diff::{DiffFormat, DiffOptions, apply_format, render_diff, unified_patch};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn read(name: &str) -> String {
    let path = golden_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn check(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let expected = read(name);
    assert!(
        expected == actual,
        "golden {name} differs (run with UPDATE_GOLDEN=1 to accept)\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

/// What the API `difference` endpoint computes for `?type=diffWords`
/// (all lines, changed words marked).
fn raw() -> String {
    let opts = DiffOptions {
        include_equal: true,
        word_diff: true,
        ..DiffOptions::default()
    };
    render_diff(&read("before.txt"), &read("after.txt"), &opts)
}

#[test]
fn golden_raw() {
    check("raw.txt", &raw());
}

#[test]
fn golden_text() {
    check("text.txt", &apply_format(&raw(), DiffFormat::Text));
}

#[test]
fn golden_html() {
    check("html.html", &apply_format(&raw(), DiffFormat::Html));
}

#[test]
fn golden_htmlcolor() {
    check(
        "htmlcolor.html",
        &apply_format(&raw(), DiffFormat::HtmlColor),
    );
}

#[test]
fn golden_markdown() {
    check("markdown.md", &apply_format(&raw(), DiffFormat::Markdown));
}

#[test]
fn golden_line_mode_text() {
    // Notifications in text format use line mode and only changed lines.
    let opts = DiffOptions {
        word_diff: false,
        ..DiffOptions::default()
    };
    let raw = render_diff(&read("before.txt"), &read("after.txt"), &opts);
    check("lines.txt", &apply_format(&raw, DiffFormat::Text));
}

#[test]
fn golden_patch() {
    check(
        "patch.diff",
        &unified_patch(
            &read("before.txt"),
            &read("after.txt"),
            "previous",
            "current",
            3,
        ),
    );
}
