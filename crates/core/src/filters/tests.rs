//! Filter rules against pages and documents: each language, the budgets, upstream's quirks.

use super::*;
use testkit::on_small_stack;

fn html_opts() -> FilterOptions {
    FilterOptions::default()
}

fn include(content: &str, filters: &[&str]) -> Result<String, FilterError> {
    apply_include_filters(content, filters, &html_opts())
}

fn include_xml(content: &str, filters: &[&str]) -> Result<String, FilterError> {
    apply_include_filters(content, filters, &FilterOptions::for_kind(ContentKind::Xml))
}

const PAGE: &str = r#"<!DOCTYPE html>
<html><head><title>Shop</title><meta charset="iso-8859-1"></head>
<body>
<nav><a href="/">Home</a><a href="/about">About</a></nav>
<div id="main">
  <span class="price">10 €</span>
  <span class="price">20 €</span>
  <p class="note">Note <b>bold</b></p>
  <a id="more" href="/more?a=1&amp;b=2">More</a>
</div>
<footer><p>Footer text</p></footer>
</body></html>"#;

#[test]
fn prefixes_select_the_kind() {
    assert_eq!(FilterKind::split("//a"), (FilterKind::XPath, "//a"));
    assert_eq!(FilterKind::split(" xpath://a "), (FilterKind::XPath, "//a"));
    assert_eq!(FilterKind::split("xpath1://a"), (FilterKind::XPath1, "//a"));
    assert_eq!(FilterKind::split("json:$.a"), (FilterKind::JsonPath, "$.a"));
    assert_eq!(FilterKind::split("jq:.a"), (FilterKind::Jq, ".a"));
    assert_eq!(FilterKind::split("jqraw:.a"), (FilterKind::JqRaw, ".a"));
    assert_eq!(
        FilterKind::split("div.x > a"),
        (FilterKind::Css, "div.x > a")
    );
    assert!(is_json_filter("json:$.a"));
    assert!(is_json_filter(" jq:.a"));
    assert!(is_json_filter("jqraw:.a"));
    assert!(!is_json_filter("#json"));
    assert!(!is_json_filter("//json"));
}

#[test]
fn filter_display_round_trips() {
    for rule in [
        "//a",
        "xpath:string(//a)",
        "xpath1://a",
        "json:$.a",
        "jq:.a",
        "jqraw:.a",
        "#x",
    ] {
        let filter: Filter = rule.parse().unwrap();
        assert_eq!(filter.to_string(), rule);
        assert_eq!(Filter::parse(&filter.to_string()).unwrap(), filter);
    }
}

#[test]
fn css_single_match_is_outer_html() {
    assert_eq!(
        include(PAGE, &["#more"]).unwrap(),
        r#"<a id="more" href="/more?a=1&amp;b=2">More</a>"#
    );
}

#[test]
fn css_multiple_matches_are_separated_by_br() {
    assert_eq!(
        include(PAGE, &[".price"]).unwrap(),
        r#"<span class="price">10 €</span><br><span class="price">20 €</span>"#
    );
}

#[test]
fn css_line_breaking_elements_need_no_separator() {
    let html = "<div>a</div><div>b</div><p>c</p>";
    assert_eq!(
        include(html, &["div, p"]).unwrap(),
        "<div>a</div><div>b</div><p>c</p>"
    );
}

#[test]
fn separator_can_be_turned_off_for_source_watches() {
    let options = FilterOptions {
        separate_matches: false,
        ..FilterOptions::default()
    };
    let out = apply_include_filters(PAGE, &[".price"], &options).unwrap();
    assert_eq!(
        out,
        r#"<span class="price">10 €</span><span class="price">20 €</span>"#
    );
}

#[test]
fn table_parts_keep_their_cells_apart() {
    let page = "<table><tbody><tr><td>Cod</td><td>12</td></tr><tr><td>Hake</td><td>9</td></tr></tbody></table>";
    for filter in ["tbody", "tr", "//tr"] {
        let out = include(page, &[filter]).unwrap();
        let text = crate::html_text::html_to_text(&out, &Default::default());
        assert_eq!(text, "Cod  12\nHake  9", "{filter}: {out}");
    }
}

#[test]
fn several_filters_concatenate_in_order() {
    let out = include(PAGE, &["#more", "", "//title/text()", ".note b"]).unwrap();
    assert_eq!(
        out,
        r#"<a id="more" href="/more?a=1&amp;b=2">More</a>Shop<b>bold</b>"#
    );
}

#[test]
fn xpath_element_is_html_serialised() {
    assert_eq!(
        include(PAGE, &["//p[@class='note']"]).unwrap(),
        "<p class=\"note\">Note <b>bold</b></p>\n"
    );
    assert_eq!(
        include(PAGE, &["xpath://span"]).unwrap(),
        "<span class=\"price\">10 €</span>\n<br><span class=\"price\">20 €</span>\n"
    );
}

#[test]
fn xpath_text_attribute_and_scalars() {
    assert_eq!(include(PAGE, &["//span/text()"]).unwrap(), "10 €<br>20 €");
    assert_eq!(
        include(PAGE, &["//a[@id='more']/@href"]).unwrap(),
        "/more?a=1&b=2"
    );
    assert_eq!(include(PAGE, &["xpath:string(//title)"]).unwrap(), "Shop");
    assert_eq!(include(PAGE, &["xpath:count(//span)"]).unwrap(), "2");
    assert_eq!(
        include(PAGE, &["xpath:count(//span) div 4"]).unwrap(),
        "0.5"
    );
    assert_eq!(include(PAGE, &["xpath:boolean(//nav)"]).unwrap(), "true");
}

#[test]
fn xpath1_takes_every_match() {
    assert_eq!(
        include(PAGE, &["xpath1://span/text()"]).unwrap(),
        "10 €<br>20 €"
    );
    assert_eq!(include(PAGE, &["xpath1://title/text()"]).unwrap(), "Shop");
}

#[test]
fn serialised_raw_text_elements_stay_open_closed() {
    let html = "<div id=x><script></script><i class=icon></i><br>text</div>";
    let out = include(html, &["//div[@id='x']"]).unwrap();
    assert!(out.contains("<script></script>"), "{out}");
    assert!(out.contains("<i class=\"icon\"></i>"), "{out}");
    assert!(!out.contains("/>"), "{out}");
}

const RSS: &str = r#"<?xml version="1.0" encoding="ISO-8859-1"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>Feed</title>
<item><title>First é</title><link>https://example.com/1</link><pubDate>Mon, 01 Jan 2024</pubDate><dc:creator>Ann</dc:creator></item>
<item><title>Second</title><link>https://example.com/2</link><description><![CDATA[<b>rich</b>]]></description></item>
</channel></rss>"#;

#[test]
fn xpath_over_rss() {
    assert_eq!(
        include_xml(RSS, &["//item/title/text()"]).unwrap(),
        "First é<br>Second"
    );
    // XML keeps case and <link> text, which an HTML parser would drop.
    assert_eq!(
        include_xml(RSS, &["//item/link/text()"]).unwrap(),
        "https://example.com/1<br>https://example.com/2"
    );
    assert_eq!(
        include_xml(RSS, &["//pubDate"]).unwrap(),
        "<pubDate>Mon, 01 Jan 2024</pubDate>\n"
    );
    assert_eq!(
        include_xml(RSS, &["//description/text()"]).unwrap(),
        "<b>rich</b>"
    );
    assert_eq!(
        include_xml(RSS, &["//*[local-name()='creator']/text()"]).unwrap(),
        "Ann"
    );
    assert_eq!(include_xml(RSS, &["xpath1:count(//item)"]).unwrap(), "2");
    assert_eq!(
        include_xml("just text", &["//a"]),
        Err(FilterError::Unparsable { format: "XML" })
    );
    // Without a prefix, `count(...)` is not XPath but (invalid) CSS, as upstream.
    assert!(matches!(
        include_xml(RSS, &["count(//item)"]),
        Err(FilterError::InvalidCss { .. })
    ));
}

const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom</title>
<entry><title>One</title></entry><entry><title>Two</title></entry></feed>"#;

#[test]
fn xpath_default_namespace_matches_unprefixed_names() {
    assert_eq!(
        include_xml(ATOM, &["//entry/title/text()"]).unwrap(),
        "One<br>Two"
    );
    // xpath1 keeps XPath 1.0 semantics, as upstream's lxml path does.
    assert_eq!(
        include_xml(ATOM, &["xpath1://entry/title/text()"]).unwrap(),
        ""
    );
    assert_eq!(
        include_xml(
            ATOM,
            &["xpath1://*[local-name()='entry']/*[local-name()='title']/text()"]
        )
        .unwrap(),
        "One<br>Two"
    );
}

#[test]
fn xml_parser_does_not_expand_external_entities() {
    let xml = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r><x>&xxe;</x></r>"#;
    let out = include_xml(xml, &["//x"]).unwrap();
    assert!(!out.contains("root:"), "{out}");
}

#[test]
fn messy_html_is_tolerated_and_charset_hint_ignored() {
    let html = "<html><head><meta charset=windows-1252></head><body><p>caf\u{e9} <b>un<i>closed</b><table><td>x</div>&nbsp;&bogus; <<<";
    assert_eq!(include(html, &["//p/text()"]).unwrap(), "café ");
    assert_eq!(
        include(html, &["xpath:string(//td)"]).unwrap(),
        "x\u{a0}&bogus; <<<"
    );
    assert_eq!(include(html, &["td"]).unwrap().matches("<td>").count(), 1);
}

#[test]
fn matching_nothing_is_empty_ok() {
    assert_eq!(include(PAGE, &[".missing"]).unwrap(), "");
    assert_eq!(include(PAGE, &["//missing"]).unwrap(), "");
    assert_eq!(include(PAGE, &["xpath1://missing/@x"]).unwrap(), "");
    assert_eq!(include(r#"{"a":1}"#, &["json:$.b"]).unwrap(), "");
    assert_eq!(
        include(r#"{"a":1}"#, &["jq:.[]? | select(. > 5)"]).unwrap(),
        ""
    );
    assert_eq!(include(r#"{"a":1}"#, &["jqraw:empty"]).unwrap(), "");
    assert_eq!(include("", &["//a", "a"]).unwrap(), "");
}

#[test]
fn invalid_rules_are_errors_naming_the_expression() {
    let err = include(PAGE, &["div[", "//a"]).unwrap_err();
    assert!(
        matches!(err, FilterError::InvalidCss { ref expr, .. } if expr == "div["),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("'div[' is not a valid CSS selector.")
    );

    let err = Filter::parse("//div[").unwrap_err();
    assert!(
        matches!(err, FilterError::InvalidXPath { ref expr, .. } if expr == "//div["),
        "{err:?}"
    );
    assert!(matches!(
        Filter::parse("xpath1:)("),
        Err(FilterError::InvalidXPath { .. })
    ));

    let err = Filter::parse("json:$.[").unwrap_err();
    assert!(
        matches!(err, FilterError::InvalidJsonPath { .. }),
        "{err:?}"
    );

    let err = Filter::parse("jq:.a |").unwrap_err();
    assert!(matches!(err, FilterError::InvalidJq { .. }), "{err:?}");
    let err = Filter::parse("jq:no_such_function").unwrap_err();
    assert!(err.to_string().contains("no_such_function"), "{err}");

    assert!(matches!(
        Filter::parse("xpath:  "),
        Err(FilterError::Empty { .. })
    ));
    assert!(matches!(
        Filter::parse("  "),
        Err(FilterError::Empty { .. })
    ));
}

#[test]
fn xpath_functions_libxml_lacks_are_rejected_at_parse() {
    let err = Filter::parse("xpath:lower-case(//title)").unwrap_err();
    assert!(matches!(err, FilterError::InvalidXPath { .. }), "{err:?}");
    assert!(Filter::parse("xpath:string-join(//a, ',')").is_err());
    assert!(Filter::parse("xpath1:normalize-space(//title)").is_ok());
}

#[test]
fn xpath_runtime_failure_is_an_error() {
    let err = include(PAGE, &["//a[re:test(., 'x')]"]).unwrap_err();
    assert!(matches!(err, FilterError::XPathFailed { .. }), "{err:?}");
}

const PRODUCT_PAGE: &str = r#"<html><head>
<script>alert('nothing here');</script>
<script type="application/ld+json">
 xx {"@type":"Product","offers":{"price":1}}
</script>
</head><body>
<script type="application/ld+json">
  {"@context":"http://schema.org","@type":"Product","name":"Formula 800g",
   "offers":{"@type":"Offer","price":23.5,"priceCurrency":"AUD"},"review":[]}
</script>
<h4>ok</h4></body></html>"#;

#[test]
fn jsonpath_on_json() {
    let json = r#"{"id": 5, "name": "José", "tags": ["a", "b"], "boss": {"name": "Örnsköldsvik", "age": 50}}"#;
    assert_eq!(include(json, &["json:$.id"]).unwrap(), "5");
    assert_eq!(include(json, &["json:$.name"]).unwrap(), "\"José\"");
    assert_eq!(
        include(json, &["json:boss.name"]).unwrap(),
        "\"Örnsköldsvik\""
    );
    assert_eq!(
        include(json, &["json:$.tags[*]"]).unwrap(),
        "[\n    \"a\",\n    \"b\"\n]"
    );
    assert_eq!(
        include(json, &["json:$.boss"]).unwrap(),
        "{\n    \"age\": 50,\n    \"name\": \"Örnsköldsvik\"\n}"
    );
    assert_eq!(
        include(&format!("\u{feff}{json}"), &["json:$.id"]).unwrap(),
        "5"
    );
}

#[test]
fn jsonpath_on_ld_json_inside_html() {
    assert_eq!(
        include(PRODUCT_PAGE, &["json:$.offers.priceCurrency"]).unwrap(),
        "\"AUD\""
    );
    assert_eq!(include(PRODUCT_PAGE, &["json:$..price"]).unwrap(), "23.5");
}

#[test]
fn json_shown_in_a_pre_body_is_found() {
    let html = "<html><head></head><body><pre style=\"white-space: pre-wrap\">\n {\"testKey\": 42}\n</pre></body></html>";
    assert_eq!(include(html, &["json:$.testKey"]).unwrap(), "42");
}

#[test]
fn jsonp_is_unwrapped() {
    let jsonp = r#"weixin.update.callback({"platforms": {"android": {"variants": [{"versionName": "8.0.68"}, {"arch": "arm32", "url": "https://example.com/a.apk"}]}}});"#;
    assert_eq!(
        include(jsonp, &["json:$.platforms.android.variants[0].versionName"]).unwrap(),
        "\"8.0.68\""
    );
    assert_eq!(
        include(jsonp, &["jq:.platforms.android.variants[1].arch"]).unwrap(),
        "\"arm32\""
    );
    assert_eq!(
        include(jsonp, &["jqraw:.platforms.android.variants[1].url"]).unwrap(),
        "https://example.com/a.apk"
    );
}

#[test]
fn jq_and_jqraw() {
    let json = r#"[{"status": "ForSale", "n": 1}, {"status": "Sold", "n": 2}, {"status": "Sold", "n": 3}]"#;
    assert_eq!(include(json, &["jq:.[0].n"]).unwrap(), "1");
    assert_eq!(
        include(json, &["jq:.[] | select(.status == \"ForSale\")"]).unwrap(),
        "{\n    \"n\": 1,\n    \"status\": \"ForSale\"\n}"
    );
    assert_eq!(
        include(
            json,
            &["jq:.[] | select(.status | contains(\"Sold\")) | .n"]
        )
        .unwrap(),
        "[\n    2,\n    3\n]"
    );
    assert_eq!(
        include(json, &["jqraw:.[].status"]).unwrap(),
        "ForSale\nSold\nSold"
    );
    assert_eq!(include(json, &["jqraw:.[0].n"]).unwrap(), "1");
    assert_eq!(
        include(json, &["jqraw:.[0]"]).unwrap(),
        r#"{"n":1,"status":"ForSale"}"#
    );
    assert_eq!(
        include(r#"{"available": false}"#, &["jq:.available"]).unwrap(),
        "false"
    );
    assert_eq!(
        include(PRODUCT_PAGE, &["jqraw:.offers.priceCurrency"]).unwrap(),
        "AUD"
    );
    // Objects keep document order for keys_unsorted.
    assert_eq!(
        include(r#"{"b":1,"a":2}"#, &["jqraw:keys_unsorted | join(\",\")"]).unwrap(),
        "b,a"
    );
}

#[test]
fn jq_blocks_dangerous_builtins() {
    let cases = [
        ("jq:env", "env (reads environment variables)"),
        ("jq:env.HOME", "env (reads environment variables)"),
        ("jq:$ENV.PATH", "$ENV (reads environment variables)"),
        ("jqraw:input", "input/inputs (reads beyond provided data)"),
        ("jq:[inputs]", "input/inputs (reads beyond provided data)"),
        ("jq:debug", "debug (leaks data to stderr)"),
        ("jq:debug(\"x\")", "debug (leaks data to stderr)"),
        ("jq:stderr", "stderr (leaks data to stderr)"),
        ("jq:stderr_empty", "stderr (leaks data to stderr)"),
        ("jq:halt", "halt/halt_error (terminates the process)"),
        (
            "jq:halt_error(1)",
            "halt/halt_error (terminates the process)",
        ),
        ("jq:$__loc__", "$__loc__ (leaks file path information)"),
        ("jq:builtins", "builtins (enumerates available functions)"),
        ("jq:modulemeta", "modulemeta (leaks module information)"),
        (
            "jq:$JQ_BUILD_CONFIGURATION",
            "$JQ_BUILD_CONFIGURATION (leaks build information)",
        ),
        ("jq:include \"x\"; .", "include (reads files from disk)"),
        ("jq:import \"x\" as x; .", "import (reads files from disk)"),
    ];
    for (rule, why) in cases {
        let err = Filter::parse(rule).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("jq expression uses disallowed builtin: {why}"),
            "{rule}"
        );
        assert!(
            matches!(include("{}", &[rule]), Err(FilterError::JqBlocked { .. })),
            "{rule}"
        );
    }
    // Field names that merely look like builtins are fine.
    assert_eq!(
        include(r#"{"env": {"input": 1}}"#, &["jq:.env.input"]).unwrap(),
        "1"
    );
}

#[test]
fn risky_jq_can_be_allowed_explicitly() {
    assert!(Filter::parse_with("jq:env | type", true).is_ok());
    let options = FilterOptions {
        allow_risky_jq: true,
        ..FilterOptions::default()
    };
    assert_eq!(
        apply_include_filters("{}", &["jqraw:env | type"], &options).unwrap(),
        "object"
    );
    // `halt` ends the jq program, never the server.
    let err = apply_include_filters("{}", &["jq:halt"], &options).unwrap_err();
    assert!(matches!(err, FilterError::JqFailed { .. }), "{err:?}");
    // Variables and module loading stay unavailable.
    assert!(Filter::parse_with("jq:$ENV", true).is_err());
    assert!(Filter::parse_with("jq:include \"x\"; .", true).is_err());
}

#[test]
fn jq_runtime_errors_and_runaway_output() {
    let err = include(r#"{"a": "x"}"#, &["jq:.a + 1"]).unwrap_err();
    assert!(matches!(err, FilterError::JqFailed { .. }), "{err:?}");
    let err = include("{}", &["jq:error(\"boom\")"]).unwrap_err();
    assert!(err.to_string().contains("boom"), "{err}");
    let err = include("{}", &["jq:repeat(1)"]).unwrap_err();
    assert!(err.to_string().contains("more than"), "{err}");
}

#[test]
fn json_errors() {
    assert_eq!(
        include("COMPLETE GIBBERISH, NO JSON!", &["json:$.id"]),
        Err(FilterError::JsonNotFound)
    );
    assert_eq!(
        include("COMPLETE GIBBERISH, NO JSON!", &["jqraw:.id"]),
        Err(FilterError::JsonNotFound)
    );
    assert!(matches!(
        include("{\"a\": ", &["json:$.a"]),
        Err(FilterError::InvalidJson { .. })
    ));
    assert_eq!(include("", &["json:$.a"]), Err(FilterError::JsonNotFound));
}

#[test]
fn lone_surrogates_become_replacement_characters() {
    let json = r#"{"title": "Example \uD800", "low": "\udc00x", "pair": "smile \uD83D\uDE00", "esc": "\\uD800"}"#;
    assert_eq!(
        include(json, &["json:$.title"]).unwrap(),
        "\"Example \u{fffd}\""
    );
    assert_eq!(include(json, &["jqraw:.low"]).unwrap(), "\u{fffd}x");
    assert_eq!(include(json, &["jqraw:.pair"]).unwrap(), "smile \u{1f600}");
    assert_eq!(include(json, &["jqraw:.esc"]).unwrap(), "\\uD800");
}

#[test]
fn pretty_printed_json_document_is_sorted_with_two_spaces() {
    assert_eq!(
        pretty_print_json_document(r#"{"b": [1], "a": "é"}"#).unwrap(),
        "{\n  \"a\": \"é\",\n  \"b\": [\n    1\n  ]\n}"
    );
    assert_eq!(
        pretty_print_json_document("cb({\"x\":1})").unwrap(),
        "{\n  \"x\": 1\n}"
    );
    assert_eq!(
        pretty_print_json_document("not json"),
        Err(FilterError::JsonNotFound)
    );
}

#[test]
fn subtractive_css_removes_nav_and_footer() {
    let out = remove_elements(PAGE, &["nav", " footer, "], ContentKind::Html).unwrap();
    assert!(
        !out.contains("Home") && !out.contains("Footer text"),
        "{out}"
    );
    assert!(
        out.contains("10 €") && out.contains("<title>Shop</title>"),
        "{out}"
    );
}

#[test]
fn subtractive_xpath_removes_nav_and_footer() {
    let out = remove_elements(
        PAGE,
        &["//nav", "xpath://footer", "xpath1://span[1]"],
        ContentKind::Html,
    )
    .unwrap();
    assert!(
        !out.contains("Home") && !out.contains("Footer text") && !out.contains("10 €"),
        "{out}"
    );
    assert!(
        out.contains("20 €") && out.contains("Note <b>bold</b>"),
        "{out}"
    );
}

#[test]
fn subtractive_selectors_like_upstream_test() {
    let content = r##"<html>
<header><h2>Header</h2></header>
<nav><ul><li><a href="#">A</a></li></ul></nav>
   <body>
 Some initial text<br>
 <p>across multiple lines</p>
 <div id="changetext">Some text that changes</div>
 <div>Some text should be matched by xPath // selector</div>
 <div>Some text should be matched by xPath selector</div>
 <div>Some text should be matched by xPath1 selector</div>
 </body>
<footer><p>Footer</p></footer>
 </html>"##;
    let out = remove_elements(
        content,
        &[
            "header",
            "footer",
            "nav",
            "#changetext",
            "//*[contains(text(), 'xPath // selector')]",
            "xpath://*[contains(text(), 'xPath selector')]",
            "xpath1://*[contains(text(), 'xPath1 selector')]",
        ],
        ContentKind::Html,
    )
    .unwrap();
    assert!(
        out.contains("Some initial text") && out.contains("across multiple lines"),
        "{out}"
    );
    for gone in ["Header", ">A<", "changes", "selector", "Footer"] {
        assert!(!out.contains(gone), "{gone} left in {out}");
    }
}

#[test]
fn subtractive_nested_matches_and_text_nodes() {
    let html = "<div class=ad><div class=ad>inner</div>outer</div><p>keep <span>me</span> tail</p>";
    let out =
        remove_elements(html, &["//div[@class='ad']", "//p/span"], ContentKind::Html).unwrap();
    assert!(!out.contains("inner") && !out.contains("outer"), "{out}");
    // Text after a removed element stays (lxml would drop it).
    assert!(out.contains("<p>keep  tail</p>"), "{out}");
    let out = remove_elements(html, &["//p/text()"], ContentKind::Html).unwrap();
    assert!(out.contains("<p><span>me</span></p>"), "{out}");
}

#[test]
fn subtractive_then_include_pipeline() {
    let cleaned =
        remove_elements(PAGE, &[".price:first-child", "//footer"], ContentKind::Html).unwrap();
    assert_eq!(
        include(
            &cleaned,
            &["span/text()".replace("span", "//span").as_str()]
        )
        .unwrap(),
        "20 €"
    );
}

#[test]
fn subtractive_on_xml_feed() {
    let out = remove_elements(ATOM, &["//entry[title='One']"], ContentKind::Xml).unwrap();
    assert!(!out.contains("One") && out.contains("Two"), "{out}");
    let out = remove_elements(RSS, &["xpath1://item[2]"], ContentKind::Xml).unwrap();
    assert!(
        out.contains("First é") && !out.contains("Second") && out.contains("<pubDate>"),
        "{out}"
    );
}

#[test]
fn subtractive_no_match_returns_input_unchanged() {
    assert_eq!(
        remove_elements(PAGE, &[".missing", "//missing", ""], ContentKind::Html).unwrap(),
        PAGE
    );
    assert_eq!(
        remove_elements(PAGE, &[] as &[&str], ContentKind::Html).unwrap(),
        PAGE
    );
}

#[test]
fn subtractive_invalid_selector_is_an_error() {
    assert!(matches!(
        remove_elements(PAGE, &["nav", "div["], ContentKind::Html),
        Err(FilterError::InvalidCss { .. })
    ));
    assert!(matches!(
        remove_elements(PAGE, &["//div["], ContentKind::Html),
        Err(FilterError::InvalidXPath { .. })
    ));
}

/// 200 nested divs around 100 KB of text: `div` repeats the text once per level.
fn nested_divs_around_text() -> String {
    format!(
        "<html><body>{}<p>{}</p>{}</body></html>",
        "<div>".repeat(200),
        "word ".repeat(20_000),
        "</div>".repeat(200)
    )
}

#[test]
fn element_output_past_the_budget_is_an_error_naming_the_rule() {
    let page = nested_divs_around_text();
    assert!(200 * page.len() > filter_output_limit(page.len()));
    for rule in ["div", "xpath://div", "//div"] {
        match include(&page, &[rule]) {
            Err(FilterError::OutputTooLarge { rule: named, limit }) => {
                assert_eq!(named, Filter::split(rule).unwrap().to_string());
                assert_eq!(limit, filter_output_limit(page.len()));
            }
            other => panic!("{rule}: {:?}", other.map(|o| o.len())),
        }
    }
    let err = include(&page, &["div"]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Filter output too large: 'div'"),
        "{err}"
    );
    // The budget is shared by all filters of the watch.
    assert_eq!(filter_output_limit(page.len()), MIN_FILTER_OUTPUT_BYTES);
    assert!(include(&page, &["p"; 150]).is_ok());
    assert!(include(&page, &["p"; 180]).is_err());
    // Narrow filters on the same page are fine.
    assert_eq!(
        include(&page, &["p"]).unwrap().len(),
        "<p></p>".len() + 100_000
    );
}

#[test]
fn filters_on_a_very_deep_page_finish_on_a_small_stack() {
    let result = on_small_stack(|| {
        let n = 100_000;
        let page = format!("{}x{}", "<div>".repeat(n), "</div>".repeat(n));
        let css = include(&page, &["div"]).map(|o| o.len());
        let xpath = include(&page, &["//div"]).map(|o| o.len());
        let removed = remove_elements(&page, &["div div"], ContentKind::Html);
        let json = include(&page, &["json:$.a"]).map(|o| o.len());
        (css, xpath, removed, json)
    });
    assert!(result.0.is_ok() && result.1.is_ok(), "{result:?}");
    assert_eq!(
        result.2.unwrap(),
        "<html><head></head><body><div></div></body></html>"
    );
    assert_eq!(result.3, Err(FilterError::JsonNotFound));
}

/// Expressions that overflow a parser's stack unless refused first.
fn hostile_rules() -> Vec<String> {
    let nested = |open: &str, inner: &str, close: &str, n: usize| {
        format!("{}{inner}{}", open.repeat(n), close.repeat(n))
    };
    vec![
        format!("jq:{}", nested("(", "1", ")", 1000)),
        format!("jq:1{}", "+1".repeat(2400)),
        format!("jq:.{}", "|.".repeat(5000)),
        format!("jqraw:{}", nested("[", "1", "]", 1000)),
        format!("jq:{}", nested("if . then ", "1", " else 1 end", 400)),
        format!("json:$.a{}", nested("[?(@", ".b", ")]", 500)),
        format!("xpath:{}", nested("(", "//a", ")", 1000)),
        nested(":is(", "a", ")", 1000),
        format!("div{}", " a".repeat(MAX_RULE_CHARS)),
    ]
}

#[test]
fn hostile_expressions_are_refused_before_any_parser_runs() {
    on_small_stack(|| {
        for rule in hostile_rules() {
            match Filter::parse(&rule) {
                Err(FilterError::TooComplex {
                    rule: named,
                    reason,
                }) => {
                    assert!(named.chars().count() <= 61, "{named}");
                    assert!(!reason.is_empty());
                }
                other => panic!("{:.40}: {other:?}", rule),
            }
            let err = include("<p>x</p>", &[rule.as_str()]).unwrap_err();
            assert!(matches!(err, FilterError::TooComplex { .. }));
            let err = remove_elements("<p>x</p>", &[rule.as_str()], ContentKind::Html);
            assert!(matches!(err, Err(FilterError::TooComplex { .. })));
        }
    });
}

#[test]
fn expressions_at_the_limits_still_compile_on_a_small_stack() {
    // The worst accepted jq: nesting and operator chain both at their caps.
    let ops = MAX_JQ_OPERATORS - 2 * MAX_RULE_NESTING;
    let jq = format!(
        "jq:{}1{}{}",
        "[(".repeat(MAX_RULE_NESTING / 2),
        "+1".repeat(ops),
        ")]".repeat(MAX_RULE_NESTING / 2)
    );
    assert_eq!(scan_expression(&jq[3..], true).nesting, MAX_RULE_NESTING);
    let pipes = format!("jq:.{}", "|.".repeat(MAX_JQ_OPERATORS));
    let rules = [jq, pipes];
    on_small_stack(move || {
        for rule in &rules {
            Filter::parse(rule).unwrap();
            assert!(include(r#"{"a": 1}"#, &[rule.as_str()]).is_ok());
        }
    });
    let nested = format!(
        "xpath:{}//a{}",
        "(".repeat(MAX_RULE_NESTING),
        ")".repeat(MAX_RULE_NESTING)
    );
    Filter::parse(&nested).unwrap();
    // Ordinary filters are nowhere near the limits.
    for rule in [
        "jq:.items[] | select(.price < 10 and .stock > 0) | {name, price: (.price * 100)}",
        "json:$.store.book[?(@.price < 10)].title",
        "xpath://div[@id='main']//span[contains(@class, 'price')]/text()",
        "div#main > ul li:not(.ad):nth-child(2n+1) a[href^='https']",
    ] {
        Filter::parse(rule).unwrap();
    }
}

#[test]
fn scanning_ignores_brackets_and_operators_in_strings() {
    let shape = scan_expression(r#".a | select(.b == "((((|||,,,") and .c != '[[[')"#, true);
    assert_eq!(shape.nesting, 1);
    // `|`, `==`, `and`, and the `=` of `!=`.
    assert_eq!(shape.operators, 1 + 2 + 1 + 1);
}
