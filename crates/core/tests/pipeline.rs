//! The processor on the fixture pages kept in the repository: one test per stage and rule.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use changewatch_core::charset;
use changewatch_core::content::StreamType;
use changewatch_core::pipeline::{ChangeStatus, PreviousState, ProcessorSettings, process};
use changewatch_core::{CheckError, FetchedPage};
use testkit::{fixture, on_small_stack};

fn page(content_type: &str, raw: Vec<u8>) -> FetchedPage {
    let ct = (!content_type.is_empty()).then(|| content_type.to_string());
    let (text, encoding, _) = charset::decode(&raw, ct.as_deref());
    FetchedPage {
        final_url: "http://fixture.test/".into(),
        status: 200,
        content_type: ct,
        server: None,
        headers: Vec::new(),
        raw,
        text,
        encoding,
        fetch_time: 0.01,
        screenshot: None,
        stock_scan: None,
    }
}

fn news() -> FetchedPage {
    page("text/html; charset=utf-8", fixture("news.html"))
}

fn first(p: &FetchedPage, s: &ProcessorSettings) -> changewatch_core::Processed {
    process(p, s, &PreviousState::default()).unwrap()
}

fn after(md5: &str) -> PreviousState {
    PreviousState {
        md5: Some(md5.to_string()),
        has_history: true,
        ..PreviousState::default()
    }
}

#[test]
fn news_page_to_text() {
    let out = first(&news(), &ProcessorSettings::default());
    assert_eq!(out.stream_type, StreamType::Html);
    assert_eq!(out.status, ChangeStatus::Baseline);
    assert_eq!(
        out.title.as_deref(),
        Some("Harbour Town Gazette & Bulletin – Front page")
    );
    let t = &out.text;
    for want in [
        "Harbour Town Gazette",
        "Ferry timetable changes from Monday",
        "Passengers are advised to check the new timetable.",
        "* Wind: 12 knots NW",
    ] {
        assert!(
            t.lines().any(|l| l.trim() == want),
            "missing line {want:?} in:\n{t}"
        );
    }
    // Table rows stay rows, cells stay apart.
    let cod = t.lines().find(|l| l.contains("Cod")).unwrap();
    assert!(cod.contains("£12.40") && cod.contains("+0.20"), "{cod}");
    assert!(!cod.contains("Cod£12.40"), "{cod}");
    for absent in [
        "tracking-code-should-not-appear",
        "font-family",
        "hidden advert",
        "Invisible tracking",
        "NewsArticle",
    ] {
        assert!(!t.contains(absent), "{absent:?} leaked into:\n{t}");
    }
    assert_eq!(out.md5.len(), 32);
}

#[test]
fn subtractive_then_include_filters() {
    let s = ProcessorSettings {
        subtractive_selectors: vec![
            "nav".into(),
            "//footer".into(),
            ".weather li:last-child".into(),
        ],
        ..ProcessorSettings::default()
    };
    let t = first(&news(), &s).text;
    assert!(
        !t.contains("World") && !t.contains("Visitors today") && !t.contains("Tide"),
        "{t}"
    );
    assert!(t.contains("Wind: 12 knots NW"));

    // Subtractive selectors run first, so an include filter cannot bring removed content back.
    let s = ProcessorSettings {
        include_filters: vec!["main".into()],
        subtractive_selectors: vec!["table".into()],
        ..ProcessorSettings::default()
    };
    let t = first(&news(), &s).text;
    assert!(
        t.contains("Ferry timetable") && !t.contains("Haddock"),
        "{t}"
    );
}

#[test]
fn several_include_filters_concatenate_in_order() {
    let s = ProcessorSettings {
        include_filters: vec![
            "aside h3".into(),
            "xpath://article[1]/h2".into(),
            "#prices td:first-child".into(),
        ],
        ..ProcessorSettings::default()
    };
    let t = first(&news(), &s).text;
    let lines: Vec<&str> = t.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines,
        [
            "Weather",
            "Ferry timetable changes from Monday",
            "Cod",
            "Haddock",
            "Mackerel"
        ]
    );
}

#[test]
fn xpath_variants() {
    for f in ["//h2", "xpath://h2", "xpath1://h2"] {
        let s = ProcessorSettings {
            include_filters: vec![f.into()],
            ..ProcessorSettings::default()
        };
        let t = first(&news(), &s).text;
        assert!(
            t.contains("Ferry timetable changes from Monday"),
            "{f}: {t}"
        );
        assert!(!t.contains("Passengers"), "{f}: {t}");
    }
}

#[test]
fn filter_not_found_is_its_own_outcome() {
    let s = ProcessorSettings {
        include_filters: vec!["#no-such-element".into()],
        ..ProcessorSettings::default()
    };
    let err = process(&news(), &s, &PreviousState::default()).unwrap_err();
    assert!(err.is_filter_failure());
    assert_eq!(
        err.last_error(),
        "Warning, no filters were found, no change detection ran - Did the page change layout? update your Visual Filter if necessary."
    );
}

#[test]
fn json_reply_is_pretty_printed_with_sorted_keys() {
    let p = page("application/json", fixture("api.json"));
    let out = first(&p, &ProcessorSettings::default());
    assert_eq!(out.stream_type, StreamType::Json);
    assert!(
        out.text
            .starts_with("{\n  \"count\": 3,\n  \"generated_at\""),
        "{}",
        out.text
    );
    let keys: Vec<&str> = out
        .text
        .lines()
        .filter(|l| l.starts_with("      \""))
        .take(4)
        .collect();
    assert_eq!(keys[0].trim(), "\"id\": 1,");
    assert_eq!(keys[1].trim(), "\"name\": \"widget\",");
    // Reordered keys on the server are not a change.
    let reordered = page(
        "application/json",
        br#"{"meta": {"api_version": "2.1", "page": 1}, "generated_at": "2026-11-26T10:00:00Z", "items": [{"id": 1, "name": "widget", "price": 9.99, "tags": ["blue", "small"]}, {"id": 2, "name": "gadget", "price": 19.5, "tags": []}, {"id": 3, "name": "gizmo", "price": 4.25, "tags": ["red"]}], "count": 3, "status": "ok"}"#.to_vec(),
    );
    let again = process(&reordered, &ProcessorSettings::default(), &after(&out.md5)).unwrap();
    assert_eq!(again.status, ChangeStatus::Unchanged);
}

#[test]
fn json_filters_jsonpath_and_jq() {
    let p = page("application/json", fixture("api.json"));
    let with = |f: &str| {
        let s = ProcessorSettings {
            include_filters: vec![f.into()],
            ..ProcessorSettings::default()
        };
        first(&p, &s).text
    };
    let t = with("json:$.items[?(@.price < 10)].name");
    assert!(
        t.contains("widget") && t.contains("gizmo") && !t.contains("gadget"),
        "{t}"
    );
    let t = with("jq:[.items[] | .id] | add");
    assert_eq!(t.trim(), "6");
    let t = with("jqraw:.items[] | .name");
    assert_eq!(t.trim(), "widget\ngadget\ngizmo");
    let s = ProcessorSettings {
        include_filters: vec!["jq:env".into()],
        ..ProcessorSettings::default()
    };
    let err = process(&p, &s, &PreviousState::default()).unwrap_err();
    assert!(matches!(err, CheckError::Filter(_)), "{err:?}");
}

#[test]
fn json_filter_on_html_reads_ld_json() {
    let s = ProcessorSettings {
        include_filters: vec!["json:$.author.name".into()],
        ..ProcessorSettings::default()
    };
    assert!(first(&news(), &s).text.contains("J. Fisher"));
}

#[test]
fn rss_feed_to_text() {
    let p = page("application/rss+xml", fixture("feed.rss"));
    let out = first(&p, &ProcessorSettings::default());
    assert_eq!(out.stream_type, StreamType::Rss);
    let t = &out.text;
    assert!(
        t.lines()
            .any(|l| l.trim() == "Ferry timetable changes from Monday"),
        "{t}"
    );
    assert!(t.contains("The early ferry will leave at 06:15."), "{t}");
    assert!(t.contains("Cod is up to £12.40 a kilo."), "{t}");
    assert!(!t.contains("CDATA") && !t.contains("<p>"), "{t}");
    // XPath over the feed as XML.
    let s = ProcessorSettings {
        include_filters: vec!["//item/title".into()],
        ..ProcessorSettings::default()
    };
    let t = first(&p, &s).text;
    assert!(
        t.contains("Ferry timetable")
            && t.contains("Fish market prices rise")
            && !t.contains("06:15"),
        "{t}"
    );
}

#[test]
fn latin1_page_without_charset_header() {
    let p = page("", fixture("latin1.html"));
    let out = first(&p, &ProcessorSettings::default());
    assert_eq!(out.title.as_deref(), Some("Café du Port - Menú"));
    assert!(
        out.text.contains("Crème brûlée à la façon du chef"),
        "{}",
        out.text
    );
}

#[test]
fn plain_text_is_kept_as_is() {
    let p = page("text/plain", b"line one\n  line two  \nline three".to_vec());
    let out = first(&p, &ProcessorSettings::default());
    assert_eq!(out.stream_type, StreamType::Text);
    assert_eq!(out.text, "line one\n  line two  \nline three");
    let s = ProcessorSettings {
        trim_text_whitespace: true,
        ..ProcessorSettings::default()
    };
    assert_eq!(first(&p, &s).text, "line one\nline two\nline three");
}

#[test]
fn no_text_is_reported_with_status() {
    let p = page(
        "text/html",
        b"<html><body><img src=x.png><script>var a=1</script></body></html>".to_vec(),
    );
    let err = process(&p, &ProcessorSettings::default(), &PreviousState::default()).unwrap_err();
    assert_eq!(
        err.last_error(),
        "Got HTML content but no text found (With 200 reply code)"
    );
    let s = ProcessorSettings {
        include_filters: vec!["body".into()],
        ..ProcessorSettings::default()
    };
    let err = process(&p, &s, &PreviousState::default()).unwrap_err();
    assert!(
        err.last_error()
            .ends_with("give an empty result or contain only an image."),
        "{}",
        err.last_error()
    );
    let s = ProcessorSettings {
        empty_pages_are_a_change: true,
        ..ProcessorSettings::default()
    };
    assert!(process(&p, &s, &PreviousState::default()).is_ok());
}

#[test]
fn change_decision_and_whitespace() {
    let s = ProcessorSettings::default();
    let a = first(&page("text/plain", b"price 10\nstock yes".to_vec()), &s);
    assert_eq!(a.status, ChangeStatus::Baseline);
    let same = process(
        &page("text/plain", b"price   10\n\nstock  yes ".to_vec()),
        &s,
        &after(&a.md5),
    )
    .unwrap();
    assert_eq!(
        same.status,
        ChangeStatus::Unchanged,
        "whitespace-only edits are not changes"
    );
    let changed = process(
        &page("text/plain", b"price 11\nstock yes".to_vec()),
        &s,
        &after(&a.md5),
    )
    .unwrap();
    assert_eq!(changed.status, ChangeStatus::Changed);
    let strict = ProcessorSettings {
        ignore_whitespace: false,
        ..ProcessorSettings::default()
    };
    let a2 = first(&page("text/plain", b"price 10".to_vec()), &strict);
    let ws = process(
        &page("text/plain", b"price  10".to_vec()),
        &strict,
        &after(&a2.md5),
    )
    .unwrap();
    assert_eq!(ws.status, ChangeStatus::Changed);
}

#[test]
fn ignore_text_keeps_lines_in_snapshot_but_not_in_checksum() {
    let s = ProcessorSettings {
        ignore_text: vec!["updated at".into(), "/visitors today: \\d+/".into()],
        ..ProcessorSettings::default()
    };
    let base = first(&news(), &s);
    assert!(
        base.text.contains("Updated at 10:31"),
        "snapshot keeps ignored lines by default"
    );
    let html = String::from_utf8(fixture("news.html")).unwrap();
    let edited = html.replace("10:31", "11:45").replace("4821", "5000");
    let next = process(
        &page("text/html", edited.into_bytes()),
        &s,
        &after(&base.md5),
    )
    .unwrap();
    assert_eq!(next.status, ChangeStatus::Unchanged);
    let strip = ProcessorSettings {
        strip_ignored_lines: true,
        ..s.clone()
    };
    assert!(!first(&news(), &strip).text.contains("Updated at"));
}

#[test]
fn trigger_and_block_rules() {
    let sold_out = page("text/plain", b"Widget\nSold out".to_vec());
    let in_stock = page("text/plain", b"Widget\nIn stock".to_vec());
    let s = ProcessorSettings {
        trigger_text: vec!["in stock".into()],
        ..ProcessorSettings::default()
    };
    let base = first(&sold_out, &s);
    assert_eq!(base.status, ChangeStatus::Blocked);
    assert_eq!(
        base.md5_to_record(),
        None,
        "a blocked baseline records no md5"
    );
    let still = process(
        &page("text/plain", b"Widget\nSold out!".to_vec()),
        &s,
        &PreviousState {
            has_history: true,
            ..PreviousState::default()
        },
    )
    .unwrap();
    assert_eq!(still.status, ChangeStatus::Blocked);
    let hit = process(
        &in_stock,
        &s,
        &PreviousState {
            has_history: true,
            ..PreviousState::default()
        },
    )
    .unwrap();
    assert_eq!(hit.status, ChangeStatus::Changed);
    assert_eq!(hit.triggered_text, vec!["In stock"]);

    let s = ProcessorSettings {
        text_should_not_be_present: vec!["/sold\\s+out/".into()],
        ..ProcessorSettings::default()
    };
    let base = first(&in_stock, &s);
    let blocked = process(&sold_out, &s, &after(&base.md5)).unwrap();
    assert_eq!(blocked.status, ChangeStatus::Blocked);
}

#[test]
fn extract_sort_dedupe_in_upstream_order() {
    let p = page(
        "text/plain",
        b"b price 2\na price 1\nnoise\nb price 2\nc price 3".to_vec(),
    );
    let s = ProcessorSettings {
        extract_lines_containing: vec!["PRICE".into()],
        remove_duplicate_lines: true,
        sort_text_alphabetically: true,
        ..ProcessorSettings::default()
    };
    assert_eq!(first(&p, &s).text, "a price 1\nb price 2\nc price 3");
    let s = ProcessorSettings {
        extract_text: vec!["/price (\\d)/".into()],
        ..ProcessorSettings::default()
    };
    assert_eq!(first(&p, &s).text, "2\n1\n2\n3\n");
}

#[test]
fn check_unique_lines_only_counts_new_lines() {
    let history: std::collections::HashSet<String> = ["alpha", "beta", "gamma"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let prev = |md5: &str| PreviousState {
        md5: Some(md5.into()),
        has_history: true,
        history_lines: Some(std::sync::Arc::new(history.clone())),
        ..PreviousState::default()
    };
    let s = ProcessorSettings {
        check_unique_lines: true,
        ..ProcessorSettings::default()
    };
    let reshuffled = process(
        &page("text/plain", b"gamma\nalpha".to_vec()),
        &s,
        &prev("0"),
    )
    .unwrap();
    assert_eq!(reshuffled.status, ChangeStatus::Unchanged);
    let new = process(
        &page("text/plain", b"gamma\ndelta".to_vec()),
        &s,
        &prev("0"),
    )
    .unwrap();
    assert_eq!(new.status, ChangeStatus::Changed);
}

#[test]
fn added_only_filter_ignores_removals() {
    let s = ProcessorSettings {
        filter_text_removed: false,
        filter_text_replaced: false,
        ..ProcessorSettings::default()
    };
    let base = first(&page("text/plain", b"one\ntwo\nthree".to_vec()), &s);
    let prev = PreviousState {
        md5: Some(base.md5.clone()),
        has_history: true,
        text_before_filters: Some(base.text_before_filters.clone()),
        ..PreviousState::default()
    };
    let removed = process(&page("text/plain", b"one\nthree".to_vec()), &s, &prev).unwrap();
    assert_eq!(removed.status, ChangeStatus::Unchanged);
    let added = process(
        &page("text/plain", b"one\ntwo\nthree\nfour".to_vec()),
        &s,
        &prev,
    )
    .unwrap();
    assert_eq!(added.status, ChangeStatus::Changed);
    assert_eq!(added.text.trim(), "four");
}

#[test]
fn source_mode_keeps_markup() {
    let s = ProcessorSettings {
        source_mode: true,
        ..ProcessorSettings::default()
    };
    assert!(
        first(&news(), &s)
            .text
            .contains("<article class=\"story lead\">")
    );
}

#[test]
fn binary_reply_is_represented_by_its_checksum() {
    let body = b"\x89PNG\r\n\x1a\n binary \x00\x01 stuff".to_vec();
    let want = format!(
        "Document checksum - {:X} Original file size - {} bytes",
        md5::compute(&body),
        body.len()
    );
    let out = first(&page("image/png", body), &ProcessorSettings::default());
    assert_eq!(out.text, want);
}

#[test]
fn pdf_reply_is_its_text_and_upstreams_checksum_line() {
    let body = testkit::pdf::document(&[&["Menu", "Soup 4.50"]]);
    let want = format!(
        "Menu\nSoup 4.50\n\nAdded by changedetection.io: Document checksum - {:X} Original file size - {} bytes",
        md5::compute(&body),
        body.len()
    );
    let out = first(
        &page("application/pdf", body),
        &ProcessorSettings::default(),
    );
    assert_eq!(out.stream_type, StreamType::Pdf);
    assert_eq!(out.text.trim(), want);
    // Filters see the pdftohtml-like markup.
    let filtered = ProcessorSettings {
        include_filters: vec!["#page1-div".into()],
        ..ProcessorSettings::default()
    };
    let body = testkit::pdf::document(&[&["Menu", "Soup 4.50"]]);
    let out = first(&page("application/pdf", body), &filtered);
    assert_eq!(out.text.trim(), "Menu\nSoup 4.50");
}

// --- hostile pages and rules: bounded, and the watch's error rather than a wedged worker ------

fn html_page(body: &str) -> FetchedPage {
    page("text/html; charset=utf-8", body.as_bytes().to_vec())
}

#[test]
fn very_deep_page_is_processed_on_a_small_stack() {
    let out = on_small_stack(|| {
        let n = 100_000;
        let html = format!(
            "<title>deep</title>{}deep text{}<p>after",
            "<div>".repeat(n),
            "</div>".repeat(n)
        );
        let settings = ProcessorSettings {
            subtractive_selectors: vec!["nav".into()],
            ..ProcessorSettings::default()
        };
        process(&html_page(&html), &settings, &PreviousState::default())
    })
    .unwrap();
    assert_eq!(out.text, "deep text\n\nafter");
    assert_eq!(out.title.as_deref(), Some("deep"));
}

#[test]
fn element_filter_output_past_its_budget_is_the_watchs_error() {
    let html = format!(
        "{}<p>{}</p>{}",
        "<div>".repeat(200),
        "word ".repeat(20_000),
        "</div>".repeat(200)
    );
    let settings = ProcessorSettings {
        include_filters: vec!["div".into()],
        ..ProcessorSettings::default()
    };
    let err = process(&html_page(&html), &settings, &PreviousState::default()).unwrap_err();
    assert!(matches!(err, CheckError::Filter(_)), "{err:?}");
    assert!(
        err.last_error()
            .starts_with("Exception: Filter output too large: 'div'"),
        "{}",
        err.last_error()
    );
    assert!(!err.is_filter_failure());
}

#[test]
fn backtracking_extract_rule_is_the_watchs_error() {
    let rule = "/(?:a|(?=a)a)*b/";
    let settings = ProcessorSettings {
        extract_text: vec![rule.into()],
        ..ProcessorSettings::default()
    };
    let html = format!("<p>{}</p>", "a".repeat(64));
    let err = process(&html_page(&html), &settings, &PreviousState::default()).unwrap_err();
    assert!(matches!(err, CheckError::Rule(_)), "{err:?}");
    assert!(err.last_error().contains(rule), "{}", err.last_error());
}

#[test]
fn backtracking_ignore_and_trigger_rules_end() {
    // Multiline rules are matched on the whole text. The check must end; when the pipeline
    // reports rule failures the error names the rule.
    let html = format!("<p>keep</p><p>{}</p>", "a".repeat(64));
    for (i, flags) in ["s", "m"].iter().enumerate() {
        let rule = format!("/(?:a|(?=a)a)*b/{flags}");
        let mut settings = ProcessorSettings::default();
        match i {
            0 => settings.ignore_text = vec![rule.clone()],
            _ => settings.trigger_text = vec![rule.clone()],
        }
        settings.text_should_not_be_present = vec![rule.clone()];
        match process(&html_page(&html), &settings, &PreviousState::default()) {
            Ok(out) => assert!(out.text.starts_with("keep"), "{}", out.text),
            Err(err) => assert!(err.last_error().contains(&rule), "{}", err.last_error()),
        }
    }
}
