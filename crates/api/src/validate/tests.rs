//! The write rules against upstream's messages, field by field.

use super::*;
use serde_json::json;

fn ctx() -> ApiContext<'static> {
    ApiContext::default()
}

fn post(body: Value) -> Result<WatchCreate, ApiValidationError> {
    create_watch_from_json(body, &ctx())
}

fn put(w: &mut Watch, body: Value) -> Result<WatchUpdate, ApiValidationError> {
    apply_watch_update(w, body, &ctx())
}

fn err_text(r: Result<impl fmt::Debug, ApiValidationError>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn get_put_round_trip() {
    let mut tag = Tag::new("t");
    tag.overrides_watch = Some(false);
    let tag_uuid = tag.base.uuid.clone();
    let mut w = post(json!({
        "url": "https://example.com/",
        "title": "x",
        "include_filters": ["#main"],
        "headers": {"X-A": "1"},
        "track_ldjson_price_data": null,
        "browser_steps": [{"operation": "Click element", "selector": "#b", "optional_value": null}],
        "tags": [tag_uuid.clone()],
    }))
    .unwrap()
    .watch;
    w.track_ldjson_price_data = Some(BoolOrText::Text("accepted".into()));
    w.last_error = TextOrFalse::text("boom");
    w.previous_md5 = TextOrFalse::text("md5");
    w.check_count = 3;
    w.llm_evaluation_cache.insert("k".into(), json!(1));
    let before = w.clone();
    let view = w.api_view(
        &HistoryInfo::new(3, Some(10)),
        &[(&tag_uuid, &tag)],
        &no_render,
    );
    let mut body = view.clone();
    body["__check_status"] = json!("Fetching...");
    let out = put(&mut w, body).unwrap();
    assert_eq!(w, before);
    assert!(out.edited);

    // Computed and readOnly values in the body are ignored, not applied.
    let mut body = view;
    body["last_checked"] = json!(999);
    body["history_n"] = json!(999);
    body["link"] = json!("https://evil.example/");
    body["previous_md5"] = json!(false);
    put(&mut w, body).unwrap();
    assert_eq!(w, before);
}

#[test]
fn put_last_viewed_only_is_not_an_edit() {
    let mut w = Watch::new("https://example.com/");
    let out = put(&mut w, json!({"last_viewed": 123})).unwrap();
    assert!(!out.edited);
    assert_eq!(w.last_viewed, 123);
    let out = put(&mut w, json!({"paused": true})).unwrap();
    assert!(out.edited);
    assert!(w.paused);
}

#[test]
fn post_minimal_and_legacy_tag() {
    let c = post(json!({"url": "  https://example.com/  ", "tag": "a, b,,", "tags": ["u1", "u1"]}))
        .unwrap();
    assert_eq!(c.watch.url, "https://example.com/");
    assert_eq!(c.tag_names, vec!["a", "b"]);
    assert_eq!(c.watch.tags, vec!["u1"]);
    assert_eq!(c.watch.tag, "");
    assert!(c.watch.date_created.is_some());
    assert_eq!(c.watch.last_checked, 0);
}

#[test]
fn post_drops_system_readonly_and_unknown_keys() {
    let c = post(json!({
        "url": "https://example.com/",
        "uuid": "0b1e4b0a-5b1e-4f7e-9f3e-7d8f7f4b2a11",
        "check_count": 99,
        "last_error": "x",
        "restock": {"in_stock": true},
        "__check_status": "x",
        "last_checked": 5,
        "history_n": 3,
        "processor_config_restock_diff": {"in_stock_processing": "in_stock_only"},
    }))
    .unwrap();
    let w = c.watch;
    assert_ne!(w.uuid, "0b1e4b0a-5b1e-4f7e-9f3e-7d8f7f4b2a11");
    assert_eq!(w.check_count, 0);
    assert_eq!(w.last_error, TextOrFalse::False);
    assert!(w.restock.is_none());
    // The restock config sent is kept.
    assert_eq!(
        w.processor_config_restock_diff,
        Some(RestockConfig::default())
    );
}

#[test]
fn post_refuses_unknown_keys_by_name() {
    let err = post(json!({
        "url": "https://example.com/",
        "not_a_field": 1,
        "processor_config_other": {"a": 1},
        "__dropped": true,
    }))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Unknown field(s): not_a_field, processor_config_other"
    );
    assert_eq!(
        err.to_body(),
        json!("Unknown field(s): not_a_field, processor_config_other")
    );
}

#[test]
fn post_url_errors() {
    let e = post(json!({"title": "x"})).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Validation failed: body: 'url' is a required property"
    );
    assert_eq!(e.body_kind(), ErrorBody::MessageObject);
    assert_eq!(
        e.to_body(),
        json!({"message": "Validation failed: body: 'url' is a required property"})
    );
    let e = post(json!({"url": "javascript:alert(1)"})).unwrap_err();
    assert_eq!(e, ApiValidationError::InvalidUrl);
    assert_eq!(e.to_body(), json!("Invalid or unsupported URL"));
    assert_eq!(e.status(), 400);
    assert_eq!(
        err_text(post(json!({"url": null}))),
        "Validation failed: url: None is not of type 'string'"
    );
    assert_eq!(
        err_text(post(json!([1]))),
        "Validation failed: body: [1] is not of type 'object'; body: [1] is not of type 'object'"
    );
}

#[test]
fn schema_messages() {
    let url = "https://example.com/";
    let cases = [
        (
            json!({"url": url, "method": "FOO"}),
            "Validation failed: method: 'FOO' is not one of ['GET', 'POST', 'DELETE', 'PUT']",
        ),
        (
            json!({"url": url, "processor": "nope"}),
            "Validation failed: processor: 'nope' is not one of ['restock_diff', 'text_json_diff']",
        ),
        (
            json!({"url": url, "fetch_backend": "chrome"}),
            "Validation failed: fetch_backend: 'chrome' does not match '^(system|html_requests|html_webdriver|extra_browser_.+)$'",
        ),
        (
            json!({"url": url, "notification_format": "pdf"}),
            "Validation failed: notification_format: 'pdf' is not one of ['text', 'html', 'htmlcolor', 'markdown', 'System default']",
        ),
        (
            json!({"url": url, "conditions_match_logic": "SOME"}),
            "Validation failed: conditions_match_logic: 'SOME' is not one of ['ALL', 'ANY']",
        ),
        (
            json!({"url": url, "paused": "yes"}),
            "Validation failed: paused: 'yes' is not of type 'boolean'",
        ),
        (
            json!({"url": url, "method": 5}),
            "Validation failed: method: 5 is not of type 'string'; method: 5 is not one of ['GET', 'POST', 'DELETE', 'PUT']",
        ),
        (
            json!({"url": url, "webdriver_delay": "5"}),
            "Validation failed: webdriver_delay: '5' is not of type 'integer', 'null'",
        ),
        (
            json!({"url": url, "webdriver_delay": 1.5}),
            "Validation failed: webdriver_delay: 1.5 is not of type 'integer', 'null'",
        ),
        (
            json!({"url": url, "time_between_check": {"hours": -1}}),
            "Validation failed: time_between_check.hours: -1 is less than the minimum of 0",
        ),
        (
            json!({"url": url, "history_snapshot_max_length": 1001}),
            "Validation failed: history_snapshot_max_length: 1001 is greater than the maximum of 1000",
        ),
        (
            json!({"url": url, "headers": {"X-A": 1}}),
            "Validation failed: headers.X-A: 1 is not of type 'string'",
        ),
        (
            json!({"url": url, "include_filters": ["ok", 5]}),
            "Validation failed: include_filters.1: 5 is not of type 'string'",
        ),
        (
            json!({"url": url, "browser_steps": [{"operation": "Click", "selector": "#a", "x": 1}]}),
            "Validation failed: browser_steps.0: 'optional_value' is a required property; browser_steps.0: Additional properties are not allowed ('x' was unexpected)",
        ),
        (
            json!({"url": url, "time_schedule_limit": {"monday": {"start_time": "25:00", "duration": {"hours": "x"}}}}),
            "Validation failed: time_schedule_limit.monday.start_time: '25:00' does not match '^([0-1]?[0-9]|2[0-3]):[0-5][0-9]$'; time_schedule_limit.monday.duration.hours: 'x' does not match '^[0-9]+$'",
        ),
        (
            json!({"url": url, "processor_config_restock_diff": {"in_stock_processing": "x", "price_change_threshold_percent": 150.5}}),
            "Validation failed: processor_config_restock_diff.in_stock_processing: 'x' is not one of ['in_stock_only', 'all_changes', 'off']; processor_config_restock_diff.price_change_threshold_percent: 150.5 is greater than the maximum of 100",
        ),
        (
            json!({"url": url, "uuid": "not-a-uuid"}),
            "Validation failed: uuid: 'not-a-uuid' is not a 'uuid'",
        ),
        // Several errors come out in the spec's property order.
        (
            json!({"url": url, "processor": "x", "paused": 1, "method": "x"}),
            "Validation failed: paused: 1 is not of type 'boolean'; method: 'x' is not one of ['GET', 'POST', 'DELETE', 'PUT']; processor: 'x' is not one of ['restock_diff', 'text_json_diff']",
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(err_text(post(body)), expected);
    }
    let long = "a".repeat(5001);
    let msg = err_text(post(json!({"url": url, "title": long})));
    assert!(msg.starts_with("Validation failed: title: 'aaaa"), "{msg}");
    assert!(msg.ends_with("a' is too long"), "{msg}");
    let urls: Vec<String> = (0..101).map(|i| format!("json://h/{i}")).collect();
    let msg = err_text(post(json!({"url": url, "notification_urls": urls})));
    assert!(
        msg.starts_with("Validation failed: notification_urls: ['json://h/0', "),
        "{msg}"
    );
    assert!(msg.ends_with("'json://h/100'] is too long"), "{msg}");
    // Accepted edge values.
    let browsers = vec!["extra_browser_mychrome".to_string()];
    let with_browser = ApiContext {
        extra_browsers: &browsers,
        ..ApiContext::default()
    };
    create_watch_from_json(
        json!({"url": url, "fetch_backend": "extra_browser_mychrome", "webdriver_delay": 2.0}),
        &with_browser,
    )
    .unwrap();
    assert_eq!(
        err_text(post(
            json!({"url": url, "fetch_backend": "extra_browser_other"})
        )),
        "fetch_backend: 'extra_browser_other' names no browser in the settings' extra browsers (currently: none configured)"
    );
    post(json!({"url": url, "track_ldjson_price_data": "rejected"})).unwrap();
}

#[test]
fn interval_proxy_and_notification_checks() {
    let url = "https://example.com/";
    let msg = "At least one time interval (weeks, days, hours, minutes, or seconds) must be specified when not using global settings.";
    assert_eq!(
        err_text(post(
            json!({"url": url, "time_between_check_use_default": false})
        )),
        msg
    );
    assert_eq!(
        err_text(post(
            json!({"url": url, "time_between_check_use_default": false,
                             "time_between_check": {"hours": 0, "minutes": null}})
        )),
        msg
    );
    let w = post(json!({"url": url, "time_between_check_use_default": false,
                        "time_between_check": {"minutes": 5}}))
    .unwrap()
    .watch;
    assert_eq!(w.threshold_seconds(), Some(300));
    assert_eq!(w.time_between_check.hours, None);
    assert_eq!(
        ApiValidationError::NoTimeInterval.to_body(),
        json!(msg),
        "plain JSON string body"
    );

    assert_eq!(
        err_text(post(json!({"url": url, "proxy": "p1"}))),
        "Invalid proxy choice, currently supported proxies are 'none configured'"
    );
    let names = vec!["ui-0a".to_string(), "b".to_string()];
    let c = ApiContext {
        proxy_names: &names,
        extra_browsers: &[],
        notification_url_validator: Some(&|u: &str| u.starts_with("json://")),
    };
    assert_eq!(
        create_watch_from_json(json!({"url": url, "proxy": "zz"}), &c)
            .unwrap_err()
            .to_string(),
        "Invalid proxy choice, currently supported proxies are 'ui-0a, b'"
    );
    create_watch_from_json(
        json!({"url": url, "proxy": "b", "notification_urls": ["json://x", " #off"]}),
        &c,
    )
    .unwrap();
    assert_eq!(
        create_watch_from_json(json!({"url": url, "notification_urls": ["nope://x "]}), &c)
            .unwrap_err()
            .to_string(),
        "'nope://x' is not a valid AppRise URL."
    );
}

#[test]
fn template_and_timezone_errors() {
    let url = "https://example.com/";
    let msg = err_text(post(json!({"url": url, "body": "{{ x"})));
    assert!(msg.starts_with("body: Invalid template syntax: "), "{msg}");
    let msg = err_text(post(
        json!({"url": url, "link_to_open": "https://x.com/{% if %}"}),
    ));
    assert!(
        msg.starts_with("link_to_open: Invalid template syntax: "),
        "{msg}"
    );
    let msg = err_text(post(json!({"url": url, "headers": {"x-bad": "{{"}})));
    assert!(
        msg.starts_with("headers: Invalid template syntax in \"x-bad\" header: "),
        "{msg}"
    );
    let msg = err_text(post(
        json!({"url": url, "notification_body": "{% endif %}"}),
    ));
    assert!(
        msg.starts_with("notification_body: This is not a valid Jinja2 template: "),
        "{msg}"
    );
    post(
        json!({"url": url, "body": "{\"a\": \"{{ 1 }}\"}", "notification_title": "{{watch_url}}"}),
    )
    .unwrap();

    assert_eq!(
        err_text(post(
            json!({"url": url, "time_schedule_limit": {"enabled": true, "timezone": "Mars/Base"}})
        )),
        "time_schedule_limit.timezone: Not a valid timezone name"
    );
    let w = post(
        json!({"url": url, "time_schedule_limit": {"enabled": true, "timezone": "Europe/Berlin",
                                                            "tuesday": {"enabled": false}}}),
    )
    .unwrap()
    .watch;
    assert_eq!(
        w.time_schedule_limit.timezone.as_deref(),
        Some("Europe/Berlin")
    );
    assert!(!w.time_schedule_limit.tuesday.enabled);
    assert!(w.time_schedule_limit.monday.enabled);
    post(json!({"url": url, "time_schedule_limit": {"timezone": ""}})).unwrap();
}

#[test]
fn put_url_messages() {
    assert_eq!(
        validate_put_url(&json!(null)),
        Err(ApiValidationError::UrlNull)
    );
    assert_eq!(
        validate_put_url(&json!(5)),
        Err(ApiValidationError::UrlNotString)
    );
    assert_eq!(
        validate_put_url(&json!(" \t")),
        Err(ApiValidationError::UrlEmpty)
    );
    assert_eq!(
        validate_put_url(&json!("javascript:alert(1)")),
        Err(ApiValidationError::UrlBadFormat)
    );
    assert_eq!(
        ApiValidationError::UrlNull.to_string(),
        "URL cannot be null"
    );
    assert_eq!(
        ApiValidationError::UrlNotString.to_string(),
        "URL must be a string"
    );
    assert_eq!(
        ApiValidationError::UrlEmpty.to_string(),
        "URL cannot be empty or whitespace only"
    );

    let mut w = Watch::new("https://example.com/");
    let before = w.clone();
    assert_eq!(
        err_text(put(&mut w, json!({"url": "   "}))),
        "URL cannot be empty or whitespace only"
    );
    assert_eq!(
        err_text(put(
            &mut w,
            json!({"url": "file:///etc/passwd", "paused": true})
        )),
        "Invalid or unsupported URL format. URL must use http://, https://, or ftp:// protocol"
    );
    // The schema layer answers first for a null URL, as upstream's does.
    assert_eq!(
        err_text(put(&mut w, json!({"url": null}))),
        "Validation failed: url: None is not of type 'string'"
    );
    assert_eq!(w, before, "failed PUT must not change the watch");
    put(&mut w, json!({"url": " https://example.org/ "})).unwrap();
    assert_eq!(w.url, "https://example.org/");
}

#[test]
fn put_unknown_and_dropped_fields() {
    let mut w = Watch::new("https://example.com/");
    assert_eq!(
        err_text(put(&mut w, json!({"zeta": 1, "alpha": 2, "paused": true}))),
        "Unknown field(s): alpha, zeta"
    );
    assert!(!w.paused);
    let before = w.clone();
    put(
        &mut w,
        json!({
            "check_count": 7, "last_checked": 1, "viewed": true, "history_n": 4,
            "label": "x", "newest_history_key": 1, "processor_config_restock_diff_source": "watch",
            "restock": {}, "last_check_status": 200, "__x": 1, "llm_evaluation_cache": {},
            "uuid": "0b1e4b0a-5b1e-4f7e-9f3e-7d8f7f4b2a11", "date_created": 5,
        }),
    )
    .unwrap();
    assert_eq!(w, before);
    assert_eq!(
        err_text(put(&mut w, json!({"last_viewed": -1}))),
        "Validation failed: last_viewed: -1 is less than the minimum of 0"
    );
}

#[test]
fn put_partial_semantics() {
    let mut w = Watch::new("https://example.com/");
    w.include_filters = vec!["a".into()];
    put(
        &mut w,
        json!({
            "time_between_check": {"hours": 2},
            "browser_steps": [
                {"operation": "Goto site", "selector": null, "optional_value": null},
                {"operation": "Choose one", "selector": "", "optional_value": ""},
                {"operation": "Click element", "selector": "#x", "optional_value": ""}
            ],
            "processor_config_restock_diff": {"price_change_min": null},
        }),
    )
    .unwrap();
    assert_eq!(w.include_filters, vec!["a"]);
    assert_eq!(w.time_between_check, TimeBetweenCheck::hours(2));
    assert_eq!(w.browser_steps.len(), 1);
    assert_eq!(w.browser_steps[0].selector.as_deref(), Some("#x"));
    assert!(w.has_browser_steps());
    // Missing settings of the config are the defaults.
    assert_eq!(
        w.processor_config_restock_diff,
        Some(RestockConfig::default())
    );
    // A PUT without use_default=false does not require an interval.
    put(&mut w, json!({"time_between_check": {}})).unwrap();
    assert_eq!(
        err_text(put(
            &mut w,
            json!({"time_between_check_use_default": false, "time_between_check": {}})
        )),
        "At least one time interval (weeks, days, hours, minutes, or seconds) must be specified when not using global settings."
    );
}

#[test]
fn tag_create_and_errors() {
    let tc = create_tag_from_json(json!({"title": "  Shops ", "tag_colour": "#4f8ef7",
                                          "include_filters": ["#price"], "overrides_watch": true,
                                          "uuid": "0b1e4b0a-5b1e-4f7e-9f3e-7d8f7f4b2a11"}))
    .unwrap();
    assert_eq!(tc.title, "Shops");
    let mut existing = Tag::new("shops");
    let existing_uuid = existing.base.uuid.clone();
    tc.apply_to(&mut existing);
    assert_eq!(existing.base.uuid, existing_uuid);
    assert_eq!(existing.base.include_filters, vec!["#price"]);
    let t = tc.into_tag();
    assert_eq!(t.title(), "Shops");
    assert_eq!(t.tag_colour.as_deref(), Some("#4f8ef7"));
    assert_eq!(t.overrides_watch, Some(true));
    assert_ne!(t.base.uuid, "0b1e4b0a-5b1e-4f7e-9f3e-7d8f7f4b2a11");
    assert!(t.base.date_created.is_some());

    assert_eq!(
        err_text(create_tag_from_json(json!({"title": "  "}))),
        "Invalid or unsupported tag"
    );
    assert_eq!(
        err_text(create_tag_from_json(json!({"name": "x"}))),
        "Validation failed: body: 'title' is a required property"
    );
    assert_eq!(
        err_text(create_tag_from_json(json!({"title": "x", "b": 1, "a": 2}))),
        "Unknown field(s): a, b"
    );
    assert_eq!(
        err_text(create_tag_from_json(
            json!({"title": "x", "tag_colour": "red"})
        )),
        "Validation failed: tag_colour: 'red' does not match '^(#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}))?$'"
    );
    assert_eq!(
        err_text(create_tag_from_json(
            json!({"title": "x", "processor_config_restock_diff": {"in_stock_processing": "sometimes"}})
        )),
        "Validation failed: processor_config_restock_diff.in_stock_processing: 'sometimes' is not one of ['in_stock_only', 'all_changes', 'off']"
    );
    assert_eq!(
        validate_tag_colour(Some(&json!("red} *{x"))),
        Err(ApiValidationError::InvalidTagColour)
    );
    assert_eq!(
        ApiValidationError::InvalidTagColour.to_string(),
        "tag_colour: must be a hex colour, for example #4f8ef7"
    );
    assert!(validate_tag_colour(Some(&json!(""))).is_ok());
    assert!(validate_tag_colour(Some(&json!("#abc"))).is_ok());
}

#[test]
fn tag_put_round_trip_and_unknown() {
    let mut t = Tag::new("Shops");
    t.base.check_count = 4;
    let before = t.clone();
    let view = t.api_view();
    apply_tag_update(&mut t, view, &ctx()).unwrap();
    assert_eq!(t, before);
    // Watch runtime fields are not tag fields.
    assert_eq!(
        err_text(apply_tag_update(&mut t, json!({"check_count": 1}), &ctx())),
        "Unknown field(s): check_count"
    );
    apply_tag_update(&mut t, json!({"url_match_pattern": "*.example.com/*", "tag_colour": "#fff",
                                     "processor_config_restock_diff": {"follow_price_changes": true}}), &ctx())
        .unwrap();
    assert_eq!(t.url_match_pattern, "*.example.com/*");
    assert_eq!(
        t.base.processor_config_restock_diff,
        Some(RestockConfig::default())
    );
    assert_eq!(serde_json::to_value(&t).unwrap()["tag_colour"], "#fff");
}

#[test]
fn python_reprs() {
    assert_eq!(py_repr(&json!(null)), "None");
    assert_eq!(
        py_repr(&json!([true, false, 1, "a"])),
        "[True, False, 1, 'a']"
    );
    assert_eq!(py_repr(&json!({"a": [1]})), "{'a': [1]}");
    assert_eq!(py_str_repr("it's"), "\"it's\"");
    assert_eq!(py_str_repr("both ' and \""), "'both \\' and \"'");
    assert_eq!(py_str_repr("a\nb\\c\u{1}"), "'a\\nb\\\\c\\x01'");
    assert_eq!(py_str_repr("naïve ☃"), "'naïve ☃'");
    for (f, s) in [
        (1.0, "1.0"),
        (1.5, "1.5"),
        (-0.25, "-0.25"),
        (150.5, "150.5"),
        (1e16, "1e+16"),
        (1.5e20, "1.5e+20"),
        (123456789012345.0, "123456789012345.0"),
        (1e-5, "1e-05"),
        (0.0001, "0.0001"),
        (0.1, "0.1"),
    ] {
        assert_eq!(py_float_repr(f), s, "{f}");
    }
}

#[test]
fn watch_field_types_for_import_parameters() {
    assert_eq!(watch_field_type("paused"), Some("boolean"));
    assert_eq!(watch_field_type("title"), Some("string"));
    assert_eq!(watch_field_type("notification_urls"), Some("array"));
    assert_eq!(watch_field_type("time_between_check"), Some("object"));
    assert_eq!(watch_field_type("nope"), None);
}

#[test]
fn hostile_filters_and_rules_are_refused_naming_the_field() {
    let ctx = ApiContext::default();
    let deep_jq = format!("jq:{}1{}", "(".repeat(1000), ")".repeat(1000));
    let long = "x".repeat(changewatch_core::filters::MAX_RULE_CHARS + 1);
    let deep_regex = format!("/{}a{}/", "(".repeat(100), ")".repeat(100));
    for (field, rule) in [
        ("include_filters", deep_jq.clone()),
        ("include_filters", format!("jq:1{}", "+1".repeat(2400))),
        (
            "subtractive_selectors",
            format!("{}a{}", ":is(".repeat(100), ")".repeat(100)),
        ),
        ("ignore_text", long.clone()),
        ("trigger_text", deep_regex.clone()),
        ("text_should_not_be_present", long.clone()),
        ("extract_text", deep_regex.clone()),
        ("extract_lines_containing", long.clone()),
    ] {
        let body = json!({"url": "https://example.com/", field: ["ok", rule]});
        let err = create_watch_from_json(body.clone(), &ctx).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("Validation failed: {field}.1: '")),
            "{msg:.200}"
        );
        if rule.len() > changewatch_core::filters::MAX_RULE_CHARS {
            // The schema's maxLength (upstream's message) comes first.
            assert!(msg.ends_with("' is too long"), "{msg:.200}");
        } else {
            assert!(msg.contains("is too complex"), "{msg:.200}");
            assert!(msg.len() < 300, "the message quotes only the rule's start");
        }
        assert_eq!(err.body_kind(), ErrorBody::MessageObject);

        let mut w = Watch::new("https://example.com/");
        let before = w.clone();
        let update = json!({field: [rule]});
        assert!(apply_watch_update(&mut w, update.clone(), &ctx).is_err());
        assert_eq!(w, before);
        let tag = json!({"title": "t", field: [rule.clone()]});
        assert!(create_tag_from_json(tag).is_err());
        let mut t = Tag::new("t");
        assert!(apply_tag_update(&mut t, update, &ctx).is_err());
    }
    assert!(validate_rule_list("global_subtractive_selectors", &[deep_jq]).is_err());
    assert!(validate_rule_list("global_ignore_text", std::slice::from_ref(&long)).is_err());
    let err = check_rule_limits("ignore_text", &long).unwrap_err();
    assert!(
        err.ends_with("is too complex: longer than 5000 characters"),
        "{err:.100}"
    );
    assert!(validate_rule_list("global_ignore_text", &["Visitors:".into()]).is_ok());
}

#[test]
fn ordinary_filters_and_rules_are_accepted() {
    let body = json!({
        "url": "https://example.com/",
        "include_filters": ["jq:.items[] | select(.price < 10) | .name", "#main .price"],
        "subtractive_selectors": ["nav", "xpath://footer"],
        "ignore_text": ["Updated at", "/visitors \\d+/i"],
        "extract_text": ["/\\$(\\d+\\.\\d+)/"],
    });
    create_watch_from_json(body, &ApiContext::default()).unwrap();
}

#[test]
fn uuid_format_is_jsonschemas() {
    assert!(is_uuid_format("0B1E4B0A-5B1E-4F7E-9F3E-7D8F7F4B2A11"));
    assert!(!is_uuid_format("0b1e4b0a5b1e4f7e9f3e7d8f7f4b2a11"));
}

/// Upstream's `watch_base` values of the fields stored but not acted on: what its exports and
/// a GET carry, taken everywhere.
fn unsupported_defaults() -> Value {
    json!({
        "tag": "", "track_ldjson_price_data": null,
        "in_stock_only": true, "follow_price_changes": true,
        "price_change_threshold_percent": null,
        "llm_intent": "",
        "llm_change_summary": "", "llm_change_summary_mode": "replace",
        "llm_backend_profile": true,
    })
}

#[test]
fn fields_stored_but_not_acted_on_take_only_their_defaults() {
    // Every field of the list has its default here, and every default is taken.
    let defaults = unsupported_defaults();
    let names: BTreeSet<&str> = UNSUPPORTED_FIELDS.iter().map(|u| u.field).collect();
    let given: BTreeSet<&str> = defaults
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, given);
    let mut body = defaults.clone();
    body["url"] = json!("https://example.com/");
    post(body).unwrap();
    let mut w = Watch::new("https://example.com/");
    put(&mut w, defaults.clone()).unwrap();
    let mut tag_body = defaults.clone();
    tag_body["title"] = json!("t");
    create_tag_from_json(tag_body).unwrap();
    apply_tag_update(&mut Tag::new("t"), defaults, &ctx()).unwrap();
    // The other values that mean "off".
    for (field, v) in [
        ("tag", json!(" , ")),
        ("track_ldjson_price_data", json!(false)),
        ("track_ldjson_price_data", json!("accepted")),
        ("track_ldjson_price_data", json!("rejected")),
        ("llm_backend_profile", json!(null)),
    ] {
        put(&mut w, json!({field: v})).unwrap_or_else(|e| panic!("{field}: {v}: {e}"));
    }

    // Anything else is refused, naming the field and the value; the watch is untouched.
    let before = w.clone();
    for (field, v, text) in [
        (
            "tag",
            json!("news"),
            "tag: 'news' is not supported: tag names are read only when a watch is created; \
             send 'tags' (tag uuids) instead (accepted: '')",
        ),
        (
            "track_ldjson_price_data",
            json!(true),
            "track_ldjson_price_data: True is not supported: only 'accepted' turns LD-JSON \
             price tracking on (accepted: None, False, 'accepted', 'rejected')",
        ),
        (
            "in_stock_only",
            json!(false),
            "in_stock_only: False is not supported: a legacy restock field upstream no longer \
             reads; set processor_config_restock_diff instead (accepted: True)",
        ),
        (
            "price_change_threshold_percent",
            json!(2.5),
            "price_change_threshold_percent: 2.5 is not supported: a legacy restock field \
             upstream no longer reads; set processor_config_restock_diff instead (accepted: None)",
        ),
        (
            "llm_change_summary_mode",
            json!("append"),
            "llm_change_summary_mode: 'append' is not supported: changewatch has no LLM features \
             (accepted: 'replace')",
        ),
        (
            "llm_backend_profile",
            json!(false),
            "llm_backend_profile: False is not supported: changewatch has no LLM features \
             (accepted: None, True)",
        ),
    ] {
        let err = put(&mut w, json!({"paused": true, field: v})).unwrap_err();
        assert_eq!(err.to_string(), text);
        assert_eq!(err.body_kind(), ErrorBody::JsonString);
        assert_eq!(w, before, "{field}");
        let mut t = Tag::new("t");
        let tag_before = t.clone();
        assert_eq!(
            apply_tag_update(&mut t, json!({field: v.clone()}), &ctx())
                .unwrap_err()
                .to_string(),
            text
        );
        assert_eq!(t, tag_before);
        assert_eq!(
            err_text(create_tag_from_json(
                json!({"title": "t", field: v.clone()})
            )),
            text
        );
        if field != "tag" {
            assert_eq!(
                err_text(post(json!({"url": "https://example.com/", field: v}))),
                text
            );
        }
    }

    // A long value is cut in the message.
    let long = "x".repeat(500);
    let msg = err_text(put(&mut w, json!({"llm_intent": long})));
    assert!(
        msg.starts_with(&format!("llm_intent: '{}…", "x".repeat(99))),
        "{msg}"
    );
    assert!(msg.len() < 250, "{msg}");
}

#[test]
fn legacy_tag_names_act_on_create_only() {
    let c = post(json!({"url": "https://example.com/", "tag": "news"})).unwrap();
    assert_eq!(c.tag_names, vec!["news"]);
    // A watch stored with a value nothing acts on (before these checks existed) is not taken
    // back as it is: the GET -> PUT round trip names the field to clear.
    let mut w = Watch::new("https://example.com/");
    w.llm_intent = "prices".into();
    let view = w.api_view(&HistoryInfo::new(0, None), &[], &no_render);
    assert!(err_text(put(&mut w, view)).starts_with("llm_intent: 'prices'"));
}

#[test]
fn conditions_are_checked_when_saved_and_refused_on_tags() {
    let url = "https://example.com/";
    let rule = |f: &str, o: &str, v: &str| json!({"field": f, "operator": o, "value": v});
    let ok = json!([rule("extracted_number", "<", "100"), rule("", "", "")]);
    let c = post(json!({"url": url, "conditions": ok, "conditions_match_logic": "ANY"})).unwrap();
    assert_eq!(c.watch.conditions.len(), 2);
    assert_eq!(c.watch.conditions_match_logic, "ANY");
    let mut w = Watch::new(url);
    put(
        &mut w,
        json!({"conditions": [rule("word_count", ">=", "3")]}),
    )
    .unwrap();
    assert_eq!(w.conditions[0].field, "word_count");
    for (rules, want) in [
        (
            json!([rule("price", "<", "1")]),
            "Validation failed: conditions: rule 1: unknown field 'price' (one of: extracted_number,",
        ),
        (
            json!([rule("extracted_number", "~", "1")]),
            "Validation failed: conditions: rule 1: unknown operator '~'",
        ),
        (
            json!([rule("extracted_number", "<", "")]),
            "Validation failed: conditions: rule 1: 'value' is required",
        ),
        (
            json!([rule("extracted_number", "<", "cheap")]),
            "Validation failed: conditions: rule 1: operator '<' needs a number, got 'cheap'",
        ),
        (
            json!([rule("page_filtered_text", "contains_regex", "(")]),
            "Validation failed: conditions: rule 1: Invalid regular expression '('",
        ),
    ] {
        let before = w.clone();
        let err = err_text(put(&mut w, json!({"conditions": rules.clone()})));
        assert!(err.starts_with(want), "{err}");
        assert_eq!(w, before);
        assert!(err_text(post(json!({"url": url, "conditions": rules}))).starts_with(want));
    }
    let many: Vec<Value> = (0..101).map(|_| rule("word_count", ">", "1")).collect();
    let err = err_text(put(&mut w, json!({"conditions": many})));
    assert!(err.contains("conditions"), "{err}");
    // A tag's conditions would do nothing: refused, naming the field.
    let err = err_text(create_tag_from_json(
        json!({"title": "t", "conditions": [rule("word_count", ">", "1")]}),
    ));
    assert!(
        err.starts_with("conditions: [{'field': 'word_count'"),
        "{err}"
    );
    let mut t = Tag::new("t");
    assert!(
        apply_tag_update(&mut t, json!({"conditions_match_logic": "ANY"}), &ctx())
            .unwrap_err()
            .to_string()
            .starts_with("conditions_match_logic: 'ANY' is not supported")
    );
    create_tag_from_json(json!({"title": "t", "conditions": [], "conditions_match_logic": "ALL"}))
        .unwrap();
}
