#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Notification templates: tokens, callable diffs, formats, escaping and the sandbox.

use std::time::{Duration, Instant};

use changewatch_core::diff::DiffFormat;
use changewatch_notify::BodyFormat;
use changewatch_notify::render::{
    ChangeContext, FILTER_FAILURE_TITLE, RenderError, TEST_CURRENT_SNAPSHOT, TEST_PREV_SNAPSHOT,
    finish_body, render, render_filter_failure, render_raw, render_step_failure, render_test,
    render_url, validate_template,
};

const DEFAULT_TITLE: &str = "ChangeDetection.io Notification - {{watch_url}}";
const DEFAULT_BODY: &str = "{{watch_url}} had a change.\n---\n{{diff}}\n---\n";

fn ctx() -> ChangeContext {
    ChangeContext {
        base_url: "https://cw.example/".into(),
        watch_uuid: "1234".into(),
        watch_url: "https://shop.example/item".into(),
        watch_title: "Shop item".into(),
        watch_tag: "shops, deals".into(),
        watch_mime_type: Some("text/html".into()),
        prev_snapshot: "Line one\nPrice: $10\nFooter".into(),
        current_snapshot: "Line one\nPrice: $12\nFooter\nNew line".into(),
        timestamp_from: Some(1_700_000_000),
        timestamp_to: Some(1_700_000_600),
        triggered_text: "Price: $12".into(),
        notification_timestamp: 1_700_000_601.5,
        ..ChangeContext::default()
    }
}

fn body(tpl: &str, format: DiffFormat) -> String {
    render("t", tpl, &ctx(), format).unwrap().body
}

fn text(tpl: &str) -> String {
    body(tpl, DiffFormat::Text)
}

#[test]
fn plain_tokens() {
    let c = ctx();
    let tpl = "{{base_url}}|{{watch_url}}|{{watch_open_url}}|{{watch_uuid}}|{{uuid}}|{{watch_title}}|\
               {{watch_tag}}|{{watch_mime_type}}|{{diff_url}}|{{preview_url}}|{{edit_url}}|\
               {{screenshot}}|{{timestamp_from}}|{{timestamp_to}}|{{triggered_text}}|\
               {{notification_timestamp}}|{{llm_summary}}|{{llm_intent}}|{{restock}}";
    let m = render("t", tpl, &c, DiffFormat::Text).unwrap();
    assert_eq!(
        m.body,
        "https://cw.example/|https://shop.example/item|https://shop.example/item|1234||Shop item|\
         shops, deals|text/html|https://cw.example/diff/1234?from_version=1700000000&to_version=1700000600|\
         https://cw.example/preview/1234|https://cw.example/edit/1234|\
         |1700000000|1700000600|Price: $12|\
         1700000601.5|||{}"
    );
    assert_eq!(m.format, BodyFormat::Text);

    let snapshots = text("{{prev_snapshot}}\n==\n{{current_snapshot}}");
    assert_eq!(
        snapshots,
        "Line one\nPrice: $10\nFooter\n==\nLine one\nPrice: $12\nFooter\nNew line"
    );
}

#[test]
fn optional_tokens_when_set() {
    let mut c = ctx();
    c.watch_open_url = Some("https://shop.example/open".into());
    c.screenshot = Some("/data/1234/last-screenshot.png".into());
    c.llm_summary = "Price went up".into();
    c.llm_intent = "price changes".into();
    c.restock.insert("price".into(), serde_json::json!(12.5));
    c.restock.insert("in_stock".into(), serde_json::json!(true));
    let m = render(
        "t",
        "{{watch_open_url}}|{{screenshot}}|{{llm_summary}}|{{llm_intent}}|{{restock.price}}|\
         {{restock.in_stock}}|{{restock.get('currency', 'EUR')}}",
        &c,
        DiffFormat::Text,
    )
    .unwrap();
    assert_eq!(
        m.body,
        "https://shop.example/open|/data/1234/last-screenshot.png|Price went up|price changes|\
         12.5|True|EUR"
    );
}

#[test]
fn urls_without_base_or_versions() {
    let mut c = ctx();
    c.base_url = String::new();
    c.timestamp_from = None;
    let m = render(
        "t",
        "{{base_url}} {{diff_url}} {{preview_url}}",
        &c,
        DiffFormat::Text,
    )
    .unwrap();
    assert_eq!(m.body, "/ /diff/1234 /preview/1234");
}

#[test]
fn diff_tokens_text() {
    // Text notifications diff whole lines (no word markers), like upstream.
    assert_eq!(
        text("{{diff}}"),
        "(changed) Price: $10\n(into) Price: $12\n(added) New line"
    );
    assert_eq!(text("{{raw_diff}}"), text("{{diff}}"));
    assert_eq!(text("{{diff_clean}}"), "Price: $10\nPrice: $12\nNew line");
    assert_eq!(
        text("{{diff_added}}"),
        "(changed) Price: $10\n(into) Price: $12\n(added) New line"
    );
    assert_eq!(
        text("{{diff_added_clean}}"),
        "Price: $10\nPrice: $12\nNew line"
    );
    assert_eq!(
        text("{{diff_removed}}"),
        "(changed) Price: $10\n(into) Price: $12"
    );
    assert_eq!(text("{{diff_removed_clean}}"), "Price: $10\nPrice: $12");
    assert_eq!(
        text("{{diff_full}}"),
        "Line one\n(changed) Price: $10\n(into) Price: $12\nFooter\n(added) New line"
    );
    assert_eq!(
        text("{{diff_full_clean}}"),
        "Line one\nPrice: $10\nPrice: $12\nFooter\nNew line"
    );
    assert_eq!(
        text("{{diff_patch}}"),
        "--- \n+++ \n@@ -1,3 +1,4 @@\n Line one\n-Price: $10\n+Price: $12\n Footer\n+New line"
    );
    // The changed fragments only, from a word diff whatever the format.
    assert_eq!(text("{{diff_changed_from}}"), "$10");
    assert_eq!(text("{{diff_changed_to}}"), "$12\nNew line");
}

#[test]
fn removed_lines() {
    let mut c = ctx();
    c.prev_snapshot = "a\ngone\nb".into();
    c.current_snapshot = "a\nb".into();
    let m = render(
        "t",
        "{{diff}}|{{diff_removed}}|{{diff_added}}",
        &c,
        DiffFormat::Text,
    )
    .unwrap();
    assert_eq!(m.body, "(removed) gone|(removed) gone|");
}

#[test]
fn no_snapshots_no_diff() {
    let mut c = ctx();
    c.prev_snapshot.clear();
    c.current_snapshot.clear();
    let m = render(
        "t",
        "[{{diff}}][{{diff_patch}}][{{diff(lines=2)}}]",
        &c,
        DiffFormat::Html,
    )
    .unwrap();
    assert_eq!(m.body, "[][][]");
}

#[test]
fn callable_diffs() {
    assert_eq!(text("{{ diff(lines=1) }}"), "(changed) Price: $10");
    assert_eq!(text("{{ diff(1) }}"), "(changed) Price: $10");
    assert_eq!(
        text("{{ diff(lines=-1) }}"),
        "(changed) Price: $10\n(into) Price: $12"
    );
    assert_eq!(text("{{ diff(added_only=True) }}"), text("{{diff_added}}"));
    assert_eq!(
        text("{{ diff(removed_only=true) }}"),
        text("{{diff_removed}}")
    );
    assert_eq!(
        text("{{ diff(context=1) }}"),
        "Line one\n(changed) Price: $10\n(into) Price: $12\nFooter\n(added) New line"
    );
    assert_eq!(
        text("{{ diff_removed(context=1, lines=2) }}"),
        "Line one\n(changed) Price: $10"
    );
    assert_eq!(
        text("{{ diff_full_clean(lines=2) }}"),
        "Line one\nPrice: $10"
    );
    assert_eq!(
        text("{{ diff_patch(lines=3) }}"),
        "--- \n+++ \n@@ -1,3 +1,4 @@"
    );
    assert_eq!(
        text("{{ diff_patch(context=0) }}"),
        text("{{ diff_patch }}"),
        "context=0 is upstream's default"
    );
    // word_diff=True marks the changed words even in text format.
    assert_eq!(
        text("{{ diff(word_diff=True, lines=1) }}"),
        "Price: (removed) $10(added) $12"
    );
    // A called token still prints as its default, and is usable in conditions.
    assert_eq!(
        text("{% if diff %}{{ diff(lines=1) }} / {{ diff_clean(lines=1) }}{% endif %}|{{diff}}"),
        "(changed) Price: $10 / Price: $10|(changed) Price: $10\n(into) Price: $12\n(added) New line"
    );
    // Python's case_insensitive and ignore_junk switches.
    let mut c = ctx();
    c.prev_snapshot = "Hello   World".into();
    c.current_snapshot = "hello world".into();
    let m = render(
        "t",
        "[{{ diff(case_insensitive=True) }}][{{ diff(ignore_junk=True, case_insensitive=True) }}]",
        &c,
        DiffFormat::Text,
    )
    .unwrap();
    assert_eq!(m.body, "[(changed) Hello   World\n(into) hello world][]");
}

#[test]
fn callable_diff_argument_errors() {
    let err = render("t", "{{ diff(bogus=1) }}", &ctx(), DiffFormat::Text).unwrap_err();
    assert!(
        matches!(err, RenderError::Template { field: "body", .. }),
        "{err}"
    );
    let err = render("t", "{{ diff(lines='many') }}", &ctx(), DiffFormat::Text).unwrap_err();
    assert!(
        err.to_string().contains("lines must be an integer"),
        "{err}"
    );
    assert!(render("t", "{{ diff(1, lines=2) }}", &ctx(), DiffFormat::Text).is_err());
}

#[test]
fn string_operations_on_tokens() {
    assert_eq!(text("{{ diff|length > 0 }}"), "True");
    assert_eq!(
        text("{{ diff_clean|upper }}"),
        "PRICE: $10\nPRICE: $12\nNEW LINE"
    );
    // Case filters on a diff with markers keep the markers working.
    assert_eq!(
        text("{{ diff_added(lines=1)|upper }}"),
        "(changed) PRICE: $10"
    );
    assert_eq!(
        text("{{ diff|upper }}"),
        "(changed) PRICE: $10\n(into) PRICE: $12\n(added) NEW LINE"
    );
    assert_eq!(text("{{ current_snapshot.splitlines()[1] }}"), "Price: $12");
    assert_eq!(text("{{ watch_url.startswith('https') }}"), "True");
    assert_eq!(text("{{ watch_url.split('/')[2] }}"), "shop.example");
    assert_eq!(
        text("{{ watch_title|replace('item', 'thing')|lower }}"),
        "shop thing"
    );
    assert_eq!(
        text("{{ current_snapshot|truncate(12, leeway=0) }}"),
        "Line..."
    );
    assert_eq!(text("{{ current_snapshot|wordcount }}"), "7");
    assert_eq!(
        text("{{ watch_tag.split(', ')|join(' & ') }}"),
        "shops & deals"
    );
    assert_eq!(text("{{ llm_summary|default('none', true) }}"), "none");
    assert_eq!(
        text(
            "{% for line in current_snapshot|lines %}{{ loop.index }}:{{ line|trim }} {% endfor %}"
        ),
        "1:Line one 2:Price: $12 3:Footer 4:New line "
    );
    assert_eq!(
        text("{{ watch_url|urlencode }}"),
        "https%3A//shop.example/item"
    );
    // JSON bodies for webhooks: markers are replaced after tojson, inside the JSON string.
    assert_eq!(
        text(r#"{"text": {{ diff(lines=1)|tojson }}}"#),
        r#"{"text": "(changed) Price: $10"}"#
    );
}

#[test]
fn default_templates_each_format() {
    let c = ctx();
    let m = render(DEFAULT_TITLE, DEFAULT_BODY, &c, DiffFormat::Text).unwrap();
    assert_eq!(
        m.title,
        "ChangeDetection.io Notification - https://shop.example/item"
    );
    assert_eq!(
        m.body,
        "https://shop.example/item had a change.\n---\n(changed) Price: $10\n(into) Price: $12\n(added) New line\n---"
    );
    assert_eq!(m.format, BodyFormat::Text);

    let m = render(DEFAULT_TITLE, DEFAULT_BODY, &c, DiffFormat::Html).unwrap();
    assert_eq!(
        m.body,
        "https://shop.example/item had a change.<br>\n---<br>\nPrice: (removed) $10(added) $12<br>\n(added) New line<br>\n---"
    );
    assert_eq!(m.format, BodyFormat::Html);

    let m = render(DEFAULT_TITLE, DEFAULT_BODY, &c, DiffFormat::HtmlColor).unwrap();
    assert_eq!(
        m.body,
        "https://shop.example/item had a change.<br>\n---<br>\n\
         Price: <span style=\"background-color: #fadad7; color: #b30000;\" role=\"deletion\" aria-label=\"Removed text\" title=\"Removed text\">$10</span>\
         <span style=\"background-color: #eaf2c2; color: #406619;\" role=\"insertion\" aria-label=\"Added text\" title=\"Added text\">$12</span><br>\n\
         <span style=\"background-color: #eaf2c2; color: #406619;\" role=\"insertion\" aria-label=\"Added text\" title=\"Added text\">New line</span><br>\n---"
    );
    assert_eq!(m.format, BodyFormat::Html);

    let m = render(DEFAULT_TITLE, DEFAULT_BODY, &c, DiffFormat::Markdown).unwrap();
    assert_eq!(
        m.body,
        "https://shop.example/item had a change.\n\n\n---\n\n\nPrice: <del>$10</del>**$12**\n**New line**\n\n\n---\n\n"
    );
    assert_eq!(m.format, BodyFormat::Markdown);
}

#[test]
fn raw_body_keeps_placemarkers() {
    use changewatch_core::diff::{ADDED_PLACEMARKER_CLOSED, ADDED_PLACEMARKER_OPEN};
    let mut c = ctx();
    c.prev_snapshot = "a".into();
    c.current_snapshot = "a\n<b>new</b>".into();
    let raw = render_raw("{{diff}}", "{{diff}}\n", &c, DiffFormat::Html).unwrap();
    assert_eq!(
        raw.body,
        format!("{ADDED_PLACEMARKER_OPEN}&lt;b&gt;new&lt;/b&gt;{ADDED_PLACEMARKER_CLOSED}")
    );
    assert_eq!(raw.title, "(added) <b>new</b>");
    assert_eq!(raw.format, BodyFormat::Html);
    let done = render("{{diff}}", "{{diff}}\n", &c, DiffFormat::Html).unwrap();
    assert_eq!(finish_body(&raw.body, DiffFormat::Html), done.body);
    assert_eq!(done.body, "(added) &lt;b&gt;new&lt;/b&gt;");
}

#[test]
fn title_is_plain_text_in_every_format() {
    let mut c = ctx();
    c.watch_title = "Tom & Jerry <shop>".into();
    for format in [
        DiffFormat::Html,
        DiffFormat::HtmlColor,
        DiffFormat::Markdown,
    ] {
        let m = render("{{watch_title}}: {{diff(lines=1)}}", "x", &c, format).unwrap();
        assert_eq!(
            m.title, "Tom & Jerry <shop>: Price: (removed) $10(added) $12",
            "{format}"
        );
    }
}

#[test]
fn html_spaces_and_line_breaks() {
    let mut c = ctx();
    c.prev_snapshot = "a".into();
    c.current_snapshot = "a\n    indented  text".into();
    let m = render("t", "<p>{{diff}}</p>\r\nend", &c, DiffFormat::Html).unwrap();
    assert_eq!(
        m.body,
        "<p>(added) &nbsp;&nbsp;&nbsp;&nbsp;indented&nbsp;&nbsp;text</p><br>\nend"
    );
}

#[test]
fn page_markup_is_escaped_in_html_formats() {
    let mut c = ctx();
    c.watch_title = "<img src=x onerror=alert(1)>".into();
    c.prev_snapshot = "Hello".into();
    c.current_snapshot =
        "Hello\n<script>alert('x')</script> & <a href=\"https://evil\">click</a>".into();
    c.triggered_text = "<b>trigger</b>".into();
    let tpl = "<a href=\"{{watch_url}}\">{{watch_title}}</a>\n{{diff}}\n{{ diff(lines=1) }}\n\
               {{diff_changed_to}}\n{{current_snapshot}}\n{{prev_snapshot}}\n{{triggered_text}}\n\
               {{diff_full_clean}}\n{{raw_diff}}";
    for format in [DiffFormat::Html, DiffFormat::HtmlColor] {
        let m = render("{{diff}} {{watch_title}}", tpl, &c, format).unwrap();
        assert!(!m.body.contains("<script"), "{format}: {}", m.body);
        assert!(!m.body.contains("<img"), "{format}: {}", m.body);
        assert!(!m.body.contains("<b>"), "{format}: {}", m.body);
        assert!(
            !m.body.contains("<a href=\"https://evil"),
            "{format}: {}",
            m.body
        );
        assert!(m.body.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;a href=&#34;https://evil&#34;&gt;"));
        // The operator's own markup stays.
        assert!(
            m.body
                .starts_with("<a href=\"https://shop.example/item\">&lt;img"),
            "{}",
            m.body
        );
        // Titles are plain text: nothing escaped, markers as text.
        assert_eq!(
            m.title,
            "(added) <script>alert('x')</script> & <a href=\"https://evil\">click</a> <img src=x onerror=alert(1)>"
        );
    }
    // Plain text is not escaped.
    let m = render("t", "{{diff}}", &c, DiffFormat::Text).unwrap();
    assert_eq!(
        m.body,
        "(added) <script>alert('x')</script> & <a href=\"https://evil\">click</a>"
    );
}

#[test]
fn page_text_is_never_template_source() {
    let mut c = ctx();
    c.prev_snapshot = "price".into();
    c.current_snapshot =
        "price\n{{ 7*7 }} {% for i in range(3) %}x{% endfor %} {{ watch_uuid }} {# c #}".into();
    c.watch_title = "{{ base_url }}".into();
    c.triggered_text = "{% raw %}".into();
    let m = render(
        "{{watch_title}}",
        "{{diff_clean}}|{{ diff_added_clean(lines=5) }}|{{current_snapshot.splitlines()[1]}}|{{triggered_text}}",
        &c,
        DiffFormat::Text,
    )
    .unwrap();
    let payload = "{{ 7*7 }} {% for i in range(3) %}x{% endfor %} {{ watch_uuid }} {# c #}";
    assert_eq!(m.body, format!("{payload}|{payload}|{payload}|{{% raw %}}"));
    assert_eq!(m.title, "{{ base_url }}");
}

#[test]
fn hostile_templates_stop_quickly() {
    let started = Instant::now();
    let cases = [
        "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}",
        "{% for i in range(10**9) %}x{% endfor %}",
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
        "{% set ns = namespace(x=1) %}{% for i in range(100000) %}{% for j in range(100000) %}{% set ns.x = ns.x + 1 %}{% endfor %}{% endfor %}",
        "{{ 'x' * 1000000000 }}",
    ];
    for tpl in cases {
        let err = render("t", tpl, &ctx(), DiffFormat::Text).unwrap_err();
        assert!(
            matches!(
                err,
                RenderError::Budget { .. } | RenderError::Template { .. }
            ),
            "{tpl}: {err}"
        );
    }
    assert!(matches!(
        render("t", cases[0], &ctx(), DiffFormat::Text),
        Err(RenderError::Budget { field: "body" })
    ));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn no_access_to_other_templates_or_files() {
    for tpl in [
        "{% include '/etc/passwd' %}",
        "{% extends 'base.html' %}",
        "{% import 'macros.html' as m %}{{ m.x() }}",
        "{% from '../secrets' import key %}{{ key }}",
    ] {
        let err = render("t", tpl, &ctx(), DiffFormat::Text).unwrap_err();
        assert!(matches!(err, RenderError::Template { .. }), "{tpl}: {err}");
    }
    // Nothing but the tokens is reachable.
    assert_eq!(text("{{ debug }}|{{ self }}|{{ config }}|{{ env }}"), "|||");
}

#[test]
fn huge_output_is_cut_at_upstream_cap() {
    let mut c = ctx();
    c.current_snapshot = "x".repeat(1024 * 1024);
    let m = render(
        "t",
        "{% for i in range(50) %}{{ current_snapshot }}{% endfor %}",
        &c,
        DiffFormat::Text,
    )
    .unwrap();
    assert_eq!(m.body.len(), 10 * 1024 * 1024);
}

#[test]
fn syntax_errors() {
    let err = render("{{ watch_url", "ok", &ctx(), DiffFormat::Text).unwrap_err();
    assert!(
        matches!(err, RenderError::Syntax { field: "title", .. }),
        "{err}"
    );
    let err = render("t", "line\n{% if diff %}", &ctx(), DiffFormat::Text).unwrap_err();
    assert!(
        matches!(err, RenderError::Syntax { field: "body", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("line 2"), "{err}");
}

#[test]
fn validation_messages() {
    assert_eq!(validate_template(DEFAULT_BODY), Ok(()));
    assert_eq!(validate_template(DEFAULT_TITLE), Ok(()));
    assert_eq!(validate_template("no tokens at all"), Ok(()));
    assert_eq!(
        validate_template(
            "{{ diff(lines=5, added_only=True) }} {{ change_datetime(format='%A') }}"
        ),
        Ok(())
    );
    assert_eq!(
        validate_template("{% for x in range(3) %}{{ loop.index }}{% endfor %}{{ restock.price }}"),
        Ok(())
    );
    assert_eq!(validate_template("{% now 'Europe/London', '%Y' %}"), Ok(()));
    assert_eq!(validate_template("{% set x = 1 %}{{ x }}"), Ok(()));

    let err = validate_template("{{ watch_url ").unwrap_err();
    assert!(
        err.starts_with("This is not a valid Jinja2 template: "),
        "{err}"
    );
    assert!(err.contains("line 1"), "{err}");
    let err = validate_template("{% for %}").unwrap_err();
    assert!(
        err.starts_with("This is not a valid Jinja2 template: "),
        "{err}"
    );

    assert_eq!(
        validate_template("{{ watch_url }} {{ wath_url }} {{ diffs }}"),
        Err("The following tokens used in the notification are not valid: diffs, wath_url".into())
    );

    let err = validate_template("{{ diff|no_such_filter }}").unwrap_err();
    assert!(
        err.starts_with("A variable or function is not defined: "),
        "{err}"
    );

    let err = validate_template(
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    )
    .unwrap_err();
    assert!(err.contains("too long"), "{err}");
}

#[test]
fn change_datetime_default_format_and_zone() {
    // 1700000600 is 2023-11-14 22:23:20 UTC, a Tuesday.
    let mut c = ctx();
    let m = render(
        "{{change_datetime}}",
        "{{ change_datetime(format='%Y') }}",
        &c,
        DiffFormat::Text,
    )
    .unwrap();
    assert_eq!(m.title, "2023-11-14 22:23:20 UTC");
    assert_eq!(m.body, "2023");

    c.timezone = Some("Europe/Paris".into());
    let m = render(
        "{{change_datetime}}",
        "{{ change_datetime(format='%A %H:%M %Z') }}|{{ change_datetime('%d.%m.') }}|{{ change_datetime() }}|{{ change_datetime }}",
        &c,
        DiffFormat::Text,
    )
    .unwrap();
    assert_eq!(m.title, "2023-11-14 23:23:20 CET");
    assert_eq!(
        m.body,
        "Tuesday 23:23 CET|14.11.|2023-11-14 23:23:20 CET|2023-11-14 23:23:20 CET"
    );

    c.timezone = Some("Asia/Tokyo".into());
    assert_eq!(
        render(
            "t",
            "{{ change_datetime(format='%Y-%m-%d %H:%M') }}",
            &c,
            DiffFormat::Text
        )
        .unwrap()
        .body,
        "2023-11-15 07:23"
    );

    // An unknown zone is UTC; a format Python cannot apply gives the ISO form.
    c.timezone = Some("Mars/Olympus".into());
    assert_eq!(
        render(
            "t",
            "{{ change_datetime(format='%Q') }}",
            &c,
            DiffFormat::Text
        )
        .unwrap()
        .body,
        "2023-11-14T22:23:20+00:00"
    );

    // Without a snapshot time the notification time is used.
    c.timestamp_to = None;
    c.timezone = None;
    assert_eq!(
        render("t", "{{ change_datetime }}", &c, DiffFormat::Text)
            .unwrap()
            .body,
        "2023-11-14 22:23:21 UTC"
    );
}

#[test]
fn now_tag() {
    let m = render(
        "t",
        "{% now 'UTC', '%Y' %}|{% now 'Europe/Paris' + 'days=400', '%Y' %}",
        &ctx(),
        DiffFormat::Text,
    )
    .unwrap();
    let (a, b) = m.body.split_once('|').unwrap();
    let (a, b): (i32, i32) = (a.parse().unwrap(), b.parse().unwrap());
    assert!(a >= 2025, "{a}");
    assert!(b == a + 1 || b == a + 2, "{a} {b}");
    let m = render("t", "{% now 'UTC' %}", &ctx(), DiffFormat::Text).unwrap();
    // '%a, %d %b %Y %H:%M:%S'
    assert_eq!(
        m.body.len(),
        "Tue, 14 Nov 2023 22:23:20".len(),
        "{}",
        m.body
    );
    assert!(render("t", "{% now 'Nowhere/City' %}", &ctx(), DiffFormat::Text).is_err());
}

#[test]
fn url_templates() {
    let url = render_url(
        "ntfys://ntfy.example/topic?click={{ diff_url|urlencode }}&title={{ watch_title }}",
        &ctx(),
        DiffFormat::Html,
    )
    .unwrap();
    assert_eq!(
        url,
        "ntfys://ntfy.example/topic?click=https%3A//cw.example/diff/1234%3Ffrom_version%3D1700000000%26to_version%3D1700000600&title=Shop item"
    );
}

#[test]
fn test_notification_uses_example_texts() {
    let mut c = ctx();
    c.prev_snapshot.clear();
    c.current_snapshot.clear();
    let m = render_test("", "{{ diff }}", &c, DiffFormat::Text).unwrap();
    assert_eq!(m.title, "Test title");
    assert_eq!(
        m.body,
        "(changed) Example text: change detection is cool\n\
         (changed) Example text: some more examples\n\
         (into) Example text: change detection is fantastic\n\
         (into) Example text: even more examples\n\
         (into) Example text: a lot more examples"
    );
    assert!(TEST_PREV_SNAPSHOT.starts_with("Example text: example test\n"));
    assert!(TEST_CURRENT_SNAPSHOT.ends_with("a lot more examples"));

    let m = render_test("  ", "", &c, DiffFormat::Html).unwrap();
    assert_eq!(
        (m.title.as_str(), m.body.as_str()),
        ("Test title", "Test body")
    );

    // With real snapshots those are used.
    let m = render_test(
        "{{watch_url}}",
        "{{ diff(lines=1) }}",
        &ctx(),
        DiffFormat::Text,
    )
    .unwrap();
    assert_eq!(m.title, "https://shop.example/item");
    assert_eq!(m.body, "(changed) Price: $10");
}

#[test]
fn filter_failure_wording() {
    let m = render_filter_failure(
        &["#price".into(), "//div[@id='x']".into()],
        6,
        &ctx(),
        DiffFormat::Text,
    );
    assert_eq!(m.title, FILTER_FAILURE_TITLE);
    assert_eq!(
        m.body,
        "Hello,\n\n\
         Your configured CSS/xPath filters of '#price, //div[@id='x']' for https://shop.example/item did not appear on the page after 6 attempts.\n\n\
         It's possible the page changed layout and the filter needs updating ( Try the 'Visual Selector' tab )\n\n\
         Edit link: https://cw.example/edit/1234\n\n\
         Thanks - Your omniscient changedetection.io installation."
    );
    assert_eq!(m.format, BodyFormat::Text);

    // Filters are shown, never evaluated, and escaped in HTML.
    let m = render_filter_failure(
        &["<b>{{ 7*7 }}</b>".into()],
        6,
        &ctx(),
        DiffFormat::HtmlColor,
    );
    assert!(m.body.contains("&#39;&lt;b&gt;{{ 7*7 }}&lt;/b&gt;&#39; for <a href=\"https://shop.example/item\">https://shop.example/item</a>"), "{}", m.body);
    assert!(m.body.starts_with("Hello,<br>\n<br>\nYour"), "{}", m.body);
    assert_eq!(m.format, BodyFormat::Html);
}

#[test]
fn step_failure_wording() {
    let m = render_step_failure(3, 6, &ctx(), DiffFormat::Markdown);
    assert_eq!(
        m.title,
        "Changedetection.io - Alert - Browser step at position 3 could not be run"
    );
    assert_eq!(
        m.body,
        "Hello,\n\n\
         Your configured browser step at position 3 for the web page watch https://shop.example/item did not appear on the page after 6 attempts, did the page change layout?\n\n\
         The element may have moved and needs editing, or does it need a delay added?\n\n\
         Edit link: https://cw.example/edit/1234\n\n\
         Thanks - Your omniscient changedetection.io installation."
    );
    assert_eq!(m.format, BodyFormat::Markdown);
}

#[test]
fn context_round_trips_through_serde() {
    let mut c = ctx();
    c.restock.insert("price".into(), serde_json::json!(1.5));
    let json = serde_json::to_string(&c).unwrap();
    let back: ChangeContext = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c);
    // Missing fields take their defaults, so older queued items still load.
    let partial: ChangeContext = serde_json::from_str(r#"{"watch_url": "https://a"}"#).unwrap();
    assert_eq!(partial.watch_url, "https://a");
}
