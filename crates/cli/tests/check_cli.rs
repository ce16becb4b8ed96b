//! `changewatch check` run as a user runs it: the real binary against a real local HTTP server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::process::{Command, Output};

use serde_json::Value;
use testkit::{FixtureServer, Page, fixture};

fn changewatch(args: &[&str], allow_private: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_changewatch"));
    cmd.args(args)
        .env_remove("ALLOW_IANA_RESTRICTED_ADDRESSES")
        .env(
            "ALLOW_PRIVATE_ADDRESSES",
            if allow_private { "true" } else { "false" },
        );
    cmd.output().unwrap()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn check_prints_text_md5_title_and_status() {
    let srv = FixtureServer::start();
    srv.set("/news", Page::html(fixture("news.html")));
    let out = changewatch(&["check", &srv.url("/news")], true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("status:     200"), "{stdout}");
    assert!(
        stdout.contains("title:      Harbour Town Gazette & Bulletin"),
        "{stdout}"
    );
    assert!(stdout.contains("Ferry timetable changes from Monday"));
    assert!(!stdout.contains("tracking-code-should-not-appear"));
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("md5:") && l.len() == "md5:        ".len() + 32)
    );
}

#[test]
fn json_output_with_filters_and_rules() {
    let srv = FixtureServer::start();
    srv.set("/news", Page::html(fixture("news.html")));
    let out = changewatch(
        &[
            "check",
            &srv.url("/news"),
            "--include-filter",
            "#prices tbody",
            "--include-filter",
            "//aside//li[1]",
            "--ignore-text",
            "haddock",
            "--trigger-text",
            "/cod/",
            "--json",
        ],
        true,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    assert_eq!(v["ok"], true);
    assert_eq!(v["status_code"], 200);
    assert_eq!(v["triggered"], true);
    let text = v["text"].as_str().unwrap();
    assert!(text.contains("Cod"), "{text}");
    assert!(text.contains("Wind: 12 knots NW"), "{text}");
    assert!(!text.contains("Ferry"), "{text}");
    assert!(!text.contains("Tide"), "{text}");
    assert_eq!(v["md5"].as_str().unwrap().len(), 32);
    assert!(v["fetch_time"].as_f64().unwrap() > 0.0);
}

#[test]
fn same_page_same_md5_and_change_shows_in_md5() {
    let srv = FixtureServer::start();
    srv.set("/p", Page::html("<p>Price: 10</p>"));
    let md5 = |out: Output| json_of(&out)["md5"].as_str().unwrap().to_string();
    let a = md5(changewatch(&["check", &srv.url("/p"), "--json"], true));
    let b = md5(changewatch(&["check", &srv.url("/p"), "--json"], true));
    srv.set("/p", Page::html("<p>Price: 11</p>"));
    let c = md5(changewatch(&["check", &srv.url("/p"), "--json"], true));
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn json_api_reply_is_sorted_and_filterable() {
    let srv = FixtureServer::start();
    srv.set("/api", Page::json(fixture("api.json")));
    let out = changewatch(&["check", &srv.url("/api"), "--json"], true);
    let text = json_of(&out)["text"].as_str().unwrap().to_string();
    assert!(text.starts_with("{\n  \"count\": 3,"), "{text}");
    let out = changewatch(
        &[
            "check",
            &srv.url("/api"),
            "--include-filter",
            "json:$.items[*].name",
            "--json",
        ],
        true,
    );
    let text = json_of(&out)["text"].as_str().unwrap().to_string();
    assert!(
        text.contains("\"widget\"") && text.contains("\"gizmo\""),
        "{text}"
    );
    let out = changewatch(
        &[
            "check",
            &srv.url("/api"),
            "--include-filter",
            "jqraw:.items[].name",
            "--json",
        ],
        true,
    );
    assert_eq!(
        json_of(&out)["text"].as_str().unwrap().trim(),
        "widget\ngadget\ngizmo"
    );
}

#[test]
fn errors_are_reported_with_upstream_text_and_exit_1() {
    let srv = FixtureServer::start();
    srv.set("/gone", Page::html("x").status(404));
    srv.set("/news", Page::html(fixture("news.html")));
    let out = changewatch(&["check", &srv.url("/gone"), "--json"], true);
    assert_eq!(out.status.code(), Some(1));
    let v = json_of(&out);
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"], "Error - 404 (Page not found) received");
    assert_eq!(v["status_code"], 404);

    let out = changewatch(
        &[
            "check",
            &srv.url("/news"),
            "--include-filter",
            "#does-not-exist",
            "--json",
        ],
        true,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        json_of(&out)["error"]
            .as_str()
            .unwrap()
            .starts_with("Warning, no filters were found")
    );

    // With the guard on (the default), loopback is refused with a clear message.
    let out = changewatch(&["check", &srv.url("/news")], false);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("Fetch blocked"), "{stdout}");
    assert_eq!(
        srv.hits("/news"),
        1,
        "the refused check must not reach the server"
    );
}

#[test]
fn bad_arguments_exit_2() {
    let out = changewatch(
        &["check", "http://example.invalid/", "--header", "no-colon"],
        true,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Name: value"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_changewatch"));
    let out = cmd
        .args(["check", "http://x/"])
        .env("FETCH_MAX_BYTES", "lots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FETCH_MAX_BYTES"));
}
