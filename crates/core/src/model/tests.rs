//! The model's unit tests: upstream's JSON shapes, defaults, cascades and write rules.

use super::*;
use serde_json::json;

/// upstream `watch_base` defaults (model/__init__.py), plus `link_to_open` (0.60) and
/// `llm_backend_profile` (contract), uuid left out.
fn upstream_watch_defaults() -> Value {
    let day =
        r#"{"enabled": true, "start_time": "00:00", "duration": {"hours": "24", "minutes": "00"}}"#;
    let text = r#"{
        "body": null,
        "browser_steps": [],
        "browser_steps_last_error_step": null,
        "conditions": [],
        "conditions_match_logic": "ALL",
        "check_count": 0,
        "check_unique_lines": false,
        "consecutive_filter_failures": 0,
        "content-type": null,
        "date_created": null,
        "extract_lines_containing": [],
        "extract_text": [],
        "llm_intent": "",
        "llm_change_summary": "",
        "llm_change_summary_mode": "replace",
        "llm_prefilter": null,
        "llm_evaluation_cache": {},
        "fetch_backend": "system",
        "fetch_time": 0.0,
        "filter_failure_notification_send": true,
        "filter_text_added": true,
        "filter_text_removed": true,
        "filter_text_replaced": true,
        "follow_price_changes": true,
        "has_ldjson_price_data": null,
        "history_snapshot_max_length": null,
        "headers": {},
        "ignore_text": [],
        "ignore_status_codes": null,
        "in_stock_only": true,
        "include_filters": [],
        "last_checked": 0,
        "last_error": false,
        "last_notification_error": null,
        "last_viewed": 0,
        "link_to_open": "",
        "llm_backend_profile": true,
        "method": "GET",
        "notification_alert_count": 0,
        "notification_body": null,
        "notification_format": "System default",
        "notification_muted": false,
        "notification_screenshot": false,
        "notification_title": null,
        "notification_urls": [],
        "page_title": null,
        "paused": false,
        "previous_md5": false,
        "processor": "text_json_diff",
        "price_change_threshold_percent": null,
        "proxy": null,
        "remote_server_reply": null,
        "sort_text_alphabetically": false,
        "strip_ignored_lines": null,
        "subtractive_selectors": [],
        "tag": "",
        "tags": [],
        "text_should_not_be_present": [],
        "time_between_check": {"weeks": null, "days": null, "hours": null, "minutes": null, "seconds": null},
        "time_between_check_use_default": true,
        "time_schedule_limit": {
            "enabled": false,
            "monday": DAY, "tuesday": DAY, "wednesday": DAY, "thursday": DAY,
            "friday": DAY, "saturday": DAY, "sunday": DAY
        },
        "title": null,
        "track_ldjson_price_data": null,
        "trim_text_whitespace": false,
        "remove_duplicate_lines": false,
        "trigger_text": [],
        "url": "",
        "use_page_title_in_list": null,
        "webdriver_delay": null,
        "webdriver_js_execute_code": null
    }"#;
    serde_json::from_str(&text.replace("DAY", day)).unwrap()
}

fn without_uuid(v: Value) -> Value {
    let mut m = v.as_object().cloned().unwrap();
    m.remove("uuid");
    Value::Object(m)
}

// ---- data model ------------------------------------------------------------------

#[test]
fn default_watch_has_upstream_keys_and_defaults() {
    let w = Watch::default();
    let v = serde_json::to_value(&w).unwrap();
    assert_eq!(without_uuid(v.clone()), upstream_watch_defaults());
    // The uuid is minted where a watch is stored (`insert_watch`), not by every default.
    assert_eq!(v["uuid"], "");
}

#[test]
fn missing_keys_decode_to_the_defaults() {
    // Per-field serde defaults must say what `Default` says, key by key.
    assert_eq!(
        serde_json::from_str::<Watch>("{}").unwrap(),
        Watch::default()
    );
    assert_eq!(
        serde_json::from_value::<Watch>(upstream_watch_defaults()).unwrap(),
        Watch::default()
    );
    assert_eq!(
        serde_json::from_str::<TimeScheduleLimit>("{}").unwrap(),
        TimeScheduleLimit::default()
    );
    let day: DaySchedule = serde_json::from_str(r#"{"duration": {"hours": "8"}}"#).unwrap();
    assert!(day.enabled);
    assert_eq!(day.start_time, "00:00");
    assert_eq!(
        (day.duration.hours.as_str(), day.duration.minutes.as_str()),
        ("8", "00")
    );
    assert_eq!(
        serde_json::from_str::<DaySchedule>("{}").unwrap(),
        DaySchedule::default()
    );
}

#[test]
fn watch_loads_upstream_json_with_quirks() {
    let v = json!({
        "url": "https://example.com",
        "uuid": "0b1e4b0a-5b1e-4f7e-9f3e-7d8f7f4b2a11",
        "last_checked": 1700000000.7,
        "last_error": "Error - 404 (Page not found) received",
        "last_notification_error": false,
        "previous_md5": "abc",
        "track_ldjson_price_data": "accepted",
        "fetch_time": 1,
        "time_between_check": {"hours": 2},
        "time_schedule_limit": {"enabled": true, "monday": {"enabled": false}},
        "restock": {"in_stock": true, "price": 9.5, "currency": "EUR", "last_price": null},
        "some_legacy_key": 1,
        "__check_status": "Fetching..."
    });
    let w: Watch = serde_json::from_value(v).unwrap();
    assert_eq!(w.last_checked, 1_700_000_000);
    assert_eq!(
        w.last_error.as_str(),
        Some("Error - 404 (Page not found) received")
    );
    assert_eq!(w.last_notification_error, Some(TextOrFalse::False));
    assert_eq!(w.previous_md5, TextOrFalse::text("abc"));
    assert_eq!(
        w.track_ldjson_price_data,
        Some(BoolOrText::Text("accepted".into()))
    );
    assert_eq!(w.time_between_check.seconds(), Some(7200));
    assert!(w.time_schedule_limit.enabled);
    assert!(!w.time_schedule_limit.monday.enabled);
    assert_eq!(w.time_schedule_limit.monday.start_time, "00:00");
    assert_eq!(w.restock.as_ref().unwrap().price, Some(9.5));
    // Persisting keeps system fields, drops unknown and transient ones.
    let back = serde_json::to_value(&w).unwrap();
    assert_eq!(back["restock"]["currency"], "EUR");
    assert!(back.get("some_legacy_key").is_none());
    assert!(back.get("__check_status").is_none());
    assert_eq!(serde_json::from_value::<Watch>(back).unwrap(), w);
}

#[test]
fn str_or_false_fields() {
    assert_eq!(
        serde_json::to_value(TextOrFalse::False).unwrap(),
        json!(false)
    );
    assert_eq!(
        serde_json::to_value(TextOrFalse::text("x")).unwrap(),
        json!("x")
    );
    for (input, expected) in [
        (json!(false), TextOrFalse::False),
        (json!(null), TextOrFalse::False),
        (json!("boom"), TextOrFalse::text("boom")),
    ] {
        assert_eq!(
            serde_json::from_value::<TextOrFalse>(input).unwrap(),
            expected
        );
    }
    assert!(serde_json::from_value::<TextOrFalse>(json!(true)).is_err());
    assert!(!TextOrFalse::text("").is_set());
    // Three states for last_notification_error.
    let mut w = Watch::default();
    assert_eq!(
        serde_json::to_value(&w).unwrap()["last_notification_error"],
        json!(null)
    );
    w.clear_history_state();
    assert_eq!(
        serde_json::to_value(&w).unwrap()["last_notification_error"],
        json!(false)
    );
    w.last_notification_error = Some(TextOrFalse::text("Notification error detected"));
    let v = serde_json::to_value(&w).unwrap();
    assert_eq!(v["last_notification_error"], "Notification error detected");
    let w2: Watch = serde_json::from_value(v).unwrap();
    assert_eq!(w2.last_notification_error, w.last_notification_error);
}

#[test]
fn time_between_check_seconds() {
    assert_eq!(TimeBetweenCheck::default().seconds(), None);
    let zero = TimeBetweenCheck {
        hours: Some(0),
        minutes: Some(0),
        ..Default::default()
    };
    assert_eq!(zero.seconds(), None);
    assert!(zero.is_empty());
    let t = TimeBetweenCheck {
        weeks: Some(1),
        days: Some(1),
        hours: Some(1),
        minutes: Some(1),
        seconds: Some(1),
    };
    assert_eq!(t.seconds(), Some(604_800 + 86_400 + 3_600 + 60 + 1));
    let s = Settings::default();
    let mut w = Watch::default();
    assert_eq!(w.effective_check_interval(&s), Some(3 * 3600));
    w.time_between_check_use_default = false;
    w.time_between_check = TimeBetweenCheck {
        minutes: Some(5),
        ..Default::default()
    };
    assert_eq!(w.effective_check_interval(&s), Some(300));
}

#[test]
fn settings_defaults() {
    let v = serde_json::to_value(Settings::default()).unwrap();
    assert_eq!(
        v["requests"]["time_between_check"],
        json!({"weeks": null, "days": null, "hours": 3, "minutes": null, "seconds": null})
    );
    assert_eq!(v["requests"]["timeout"], 45);
    assert_eq!(v["requests"]["workers"], 5);
    assert_eq!(v["requests"]["jitter_seconds"], 0);
    assert_eq!(
        v["requests"]["default_ua"]["html_requests"],
        DEFAULT_USER_AGENT
    );
    assert_eq!(v["requests"]["default_ua"]["html_webdriver"], json!(null));
    let app = &v["application"];
    assert_eq!(app["ignore_whitespace"], true);
    assert_eq!(app["notification_format"], "htmlcolor");
    assert_eq!(
        app["notification_title"],
        "ChangeDetection.io Notification - {{watch_url}}"
    );
    assert_eq!(
        app["notification_body"],
        "{{watch_url}} had a change.\n---\n{{diff}}\n---\n"
    );
    assert_eq!(app["pager_size"], 50);
    assert_eq!(app["api_access_token_enabled"], true);
    assert_eq!(app["password"], false);
    assert_eq!(app["fetch_backend"], "html_requests");
    assert_eq!(app["filter_failure_notification_threshold_attempts"], 6);
    assert_eq!(app["ui"]["socket_io_enabled"], true);
    assert_eq!(app["rss_content_format"], "text");
    assert!(app.get("tags").is_none());
    let s = Settings::new_with_tokens();
    let token = s.application.api_access_token.unwrap();
    assert_eq!(token.len(), 32);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    // Settings survive a trip through JSON, including older shapes.
    let loaded: Settings =
        serde_json::from_value(json!({"application": {"password": "salted", "pager_size": 20.0}}))
            .unwrap();
    assert_eq!(loaded.application.password, TextOrFalse::text("salted"));
    assert_eq!(loaded.application.pager_size, 20);
    assert_eq!(loaded.requests.timeout, 45);
}

#[test]
fn ui_proxy_keys_keep_upstream_naming() {
    let r = RequestsSettings {
        extra_proxies: vec![
            ExtraProxy {
                proxy_name: "a".into(),
                proxy_url: "http://p1".into(),
            },
            ExtraProxy {
                proxy_name: "b".into(),
                proxy_url: String::new(),
            },
            ExtraProxy {
                proxy_name: "c".into(),
                proxy_url: "socks5://p3".into(),
            },
        ],
        ..Default::default()
    };
    assert_eq!(r.ui_proxy_keys(), vec!["ui-0a", "ui-0c"]);
    let keys: Vec<String> = r.proxy_list().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["ui-0a", "ui-0c", "no-proxy"]);
    assert!(RequestsSettings::default().proxy_list().is_empty());
}

#[test]
fn proxy_choice_cascades_as_upstream() {
    let mut s = Settings::default();
    let w = Watch::new("https://example.com/");
    assert_eq!(proxy_for(&w, &[], &s), None, "no list, no proxy");
    s.requests.extra_proxies = ["a", "b"]
        .iter()
        .map(|n| ExtraProxy {
            proxy_name: (*n).into(),
            proxy_url: format!("http://{n}.proxy:3128"),
        })
        .collect();
    let url = |n: &str| Some(format!("http://{n}.proxy:3128"));
    // Nothing chosen anywhere: the list's first.
    assert_eq!(proxy_for(&w, &[], &s), url("a"));
    // The settings' default, unless it names nothing.
    s.requests.proxy = Some("ui-0b".into());
    assert_eq!(proxy_for(&w, &[], &s), url("b"));
    s.requests.proxy = Some("ui-0gone".into());
    assert_eq!(proxy_for(&w, &[], &s), url("a"));
    // A tag's choice, then the watch's, win over it.
    let mut tag = Tag::new("t");
    tag.base.proxy = Some("ui-0b".into());
    assert_eq!(proxy_for(&w, &[&tag], &s), url("b"));
    let mut w2 = w.clone();
    w2.proxy = Some("ui-0a".into());
    assert_eq!(proxy_for(&w2, &[&tag], &s), url("a"));
    // `no-proxy` anywhere on the way is a direct request.
    w2.proxy = Some("no-proxy".into());
    assert_eq!(proxy_for(&w2, &[&tag], &s), None);
    s.requests.proxy = Some("no-proxy".into());
    assert_eq!(proxy_for(&w, &[], &s), None);
}

#[test]
fn tag_defaults_and_views() {
    let t = Tag::new("  Shops ");
    let v = serde_json::to_value(&t).unwrap();
    assert_eq!(v["title"], "Shops");
    assert_eq!(v["overrides_watch"], json!(null));
    assert_eq!(v["url_match_pattern"], "");
    assert_eq!(v["llm_backend_profile"], json!(null));
    assert!(v.get("tag_colour").is_none());
    assert_eq!(v["include_filters"], json!([]));
    let back: Tag = serde_json::from_value(v).unwrap();
    assert_eq!(back, t);

    let view = t.api_view();
    for hidden in [
        "check_count",
        "last_checked",
        "last_error",
        "previous_md5",
        "page_title",
    ] {
        assert!(view.get(hidden).is_none(), "{hidden} shown");
    }
    assert!(view.get("llm_evaluation_cache").is_none());
    assert_eq!(view["uuid"], t.base.uuid.as_str());
    assert_eq!(
        t.api_list_entry(),
        json!({"date_created": t.base.date_created, "notification_muted": false,
               "title": "Shops", "uuid": t.base.uuid})
    );
}

#[test]
fn tag_key_set_and_minimal_load() {
    let v = serde_json::to_value(Tag::default()).unwrap();
    let mut expected = upstream_watch_defaults();
    expected["llm_backend_profile"] = json!(null);
    expected["overrides_watch"] = json!(null);
    expected["url_match_pattern"] = json!("");
    assert_eq!(without_uuid(v), expected);
    let t: Tag = serde_json::from_value(json!({
        "title": "x", "uuid": "0b1e4b0a-5b1e-4f7e-9f3e-7d8f7f4b2a11", "tag_colour": "#abc",
        "overrides_watch": true, "date_created": 5, "whatever": [1],
        "processor_config_restock_diff": {"in_stock_processing": "off"}
    }))
    .unwrap();
    assert_eq!(t.title(), "x");
    assert_eq!(t.base.llm_backend_profile, None);
    assert_eq!(t.uuid(), "0b1e4b0a-5b1e-4f7e-9f3e-7d8f7f4b2a11");
    assert_eq!(t.overrides_watch, Some(true));
    assert_eq!(t.base.fetch_backend, "system");
    assert_eq!(
        t.base
            .processor_config_restock_diff
            .as_ref()
            .unwrap()
            .in_stock_processing,
        "off"
    );
}

// ---- computed fields -------------------------------------------------------------

#[test]
fn computed_fields() {
    let mut w = Watch::new("https://example.com/");
    let none = HistoryInfo::new(0, None);
    let one = HistoryInfo::new(1, Some(100));
    let two = HistoryInfo::new(2, Some(200));
    assert_eq!(w.last_changed(&none), 0);
    assert_eq!(w.last_changed(&one), 0);
    assert_eq!(w.last_changed(&two), 200);
    assert!(!w.viewed(&none));
    assert!(w.has_unviewed(&two));
    assert!(!w.has_unviewed(&one));
    w.last_viewed = 200;
    assert!(w.viewed(&two));
    assert!(!w.has_unviewed(&two));

    assert_eq!(w.link(&no_render), "https://example.com/");
    assert_eq!(w.open_link(&no_render), "https://example.com/");
    w.link_to_open = "https://example.com/human".into();
    assert_eq!(w.open_link(&no_render), "https://example.com/human");
    w.link_to_open = "javascript:alert(1)".into();
    assert_eq!(w.open_link(&no_render), "https://example.com/");
    w.url = "source:https://example.com/x".into();
    assert_eq!(w.link(&no_render), "https://example.com/x");
    w.url = "javascript:alert(1)".into();
    assert_eq!(w.link(&no_render), "DISABLED");
    w.url = "https://example.com/{{ today }}".into();
    let render = |s: &str| -> Result<String, String> { Ok(s.replace("{{ today }}", "2024")) };
    assert_eq!(w.link(&render), "https://example.com/2024");
    let failing = |_: &str| -> Result<String, String> { Err("boom".into()) };
    assert_eq!(w.link(&failing), "");
    w.title = None;
    w.page_title = Some("Page".into());
    assert_eq!(w.label(&render), "Page");
}

#[test]
fn api_view_hides_internal_and_adds_computed() {
    let mut w = Watch::new("https://example.com/");
    w.last_check_status = Some(200);
    w.last_filter_config_hash = Some("abc".into());
    w.restock = Some(Restock::default());
    w.llm_result = Some(json!({"important": true}));
    let v = w.api_view(&HistoryInfo::new(2, Some(50)), &[], &no_render);
    for k in SYSTEM_MANAGED_FIELDS {
        assert!(v.get(*k).is_none(), "{k} exposed");
    }
    assert_eq!(v["history_n"], 2);
    assert_eq!(v["last_changed"], 50);
    assert_eq!(v["viewed"], false);
    assert_eq!(v["link"], "https://example.com/");
    assert_eq!(v["open_link"], "https://example.com/");
    assert_eq!(v["processor_config_restock_diff"], json!({}));
    assert_eq!(v["processor_config_restock_diff_source"], "watch");
    assert_eq!(v["content-type"], json!(null));

    let brief = w.api_list_entry(&HistoryInfo::default(), &["t1".into()], &no_render);
    let keys: Vec<&String> = brief.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "last_changed",
            "last_checked",
            "last_error",
            "link",
            "open_link",
            "page_title",
            "tags",
            "title",
            "url",
            "viewed"
        ]
    );
    assert_eq!(brief["last_error"], false);
}

// ---- URL validation --------------------------------------------------------------

#[test]
fn url_validity() {
    for ok in [
        "http://example.com",
        "https://example.com/path?q=1#frag",
        "ftp://example.com/file.txt",
        "HTTPS://EXAMPLE.COM",
        "source:https://example.com",
        "SOURCE:http://example.com",
        "http://localhost:5000/test",
        "http://nas/x",
        "http://127.0.0.1:8080/",
        "http://[::1]:8080/",
        "http://[2001:db8::1]/",
        "https://user:pass@example.com/",
        "https://example.com/?q=a b",
        "https://example.com/#a|b",
        "https://bücher.de/",
        "https://sub.example.co.uk/a;b=c/d",
        "https://example.com/{{ 1 + 1 }}",
        "https://example.com/?d={% now 'UTC', '%Y-%m-%d' %}",
        "https://example.com/{{ now }}",
        // upstream's own test cases
        "https://www.fnac.com/Pack-Tablette/a21903823/w-4#int=S:PFreco|PF|48966|21903823|BL4|L1",
        "https://example.com/docs#section-2.1",
        "https://example.com/app#/route/sub?tab=1",
        "https://example.com/page#key=val&other=a:b@c!$&'()*+,;=",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fc00::1]/",
        "http://this-host-does-not-exist-xyz987.invalid/some/path",
    ] {
        assert!(is_valid_watch_url(ok), "should be valid: {ok}");
    }
    for bad in [
        "",
        "   ",
        "javascript:alert(1)",
        "source:javascript:alert(1)",
        "file:///etc/passwd",
        "example.com",
        "http://",
        "http:///path",
        "https://example.com/<script>alert(1)</script>",
        "https://example.com/\\evil",
        "http://exa mple.com/",
        "https://example.com/a b",
        "http://example.com:99999/",
        "http://example.com:0/",
        "http://-bad.com/",
        "http://a..b.com/",
        "http://example.123/",
        "http://[::1/",
        "mailto:someone@example.com",
        "https://example.com/{{ broken",
        "https://example.com/{% if %}",
        "data:text/html,hi",
        "http://a@b@c.com/",
        "https://example.com/page#<script>",
        "http://INTERNAL:8888\\@PUBLIC/",
        "http://1.2.3/",
    ] {
        assert!(!is_valid_watch_url(bad), "should be invalid: {bad}");
    }
}

#[test]
fn template_syntax_check() {
    assert!(check_template_syntax("plain text {").is_ok());
    assert!(check_template_syntax("{{ watch_url }} {% if x %}y{% endif %}").is_ok());
    assert!(check_template_syntax("{% now 'Europe/London', '%Y' %}").is_ok());
    assert!(check_template_syntax("{{ diff(lines=5) }}").is_ok());
    let e = check_template_syntax("line1\n{{ oops").unwrap_err();
    assert!(e.contains("line 2"), "{e}");
    assert!(check_template_syntax("{% for x in y %}").is_err());
}

// ---- POST /watch -----------------------------------------------------------------

// ---- PUT /watch ------------------------------------------------------------------

// ---- tags --------------------------------------------------------------------------

#[test]
fn tag_url_matching() {
    let mut t = Tag::new("t");
    assert!(!t.matches_url("https://example.com"));
    t.url_match_pattern = "Example.COM".into();
    assert!(t.matches_url("https://www.example.com/x"));
    t.url_match_pattern = "*://*.example.com/*".into();
    assert!(t.matches_url("https://shop.EXAMPLE.com/a/b"));
    assert!(!t.matches_url("https://example.org/"));
    t.url_match_pattern = "https://site?.com/[!x]*".into();
    assert!(t.matches_url("https://site1.com/abc"));
    assert!(!t.matches_url("https://site1.com/xbc"));
    t.url_match_pattern = "github.com/[a-c]org*".into();
    assert!(
        !t.matches_url("https://github.com/borg"),
        "fnmatch is a full match"
    );
    t.url_match_pattern = "*github.com/[a-c]org*".into();
    assert!(t.matches_url("https://github.com/borg/x"));
    assert!(fnmatch("a[b", "a[b"));
}

// ---- cascades ----------------------------------------------------------------------

#[test]
fn merge_cascade() {
    let mut w = Watch::new("source:https://example.com/");
    w.include_filters = vec!["#a".into(), "#b".into()];
    w.ignore_text = vec!["x".into()];
    w.subtractive_selectors = vec!["nav".into()];
    w.trigger_text = vec!["t".into()];
    w.track_ldjson_price_data = Some(BoolOrText::Text(PRICE_DATA_TRACK_ACCEPT.into()));
    w.trim_text_whitespace = true;
    let mut t1 = Tag::new("one");
    t1.base.include_filters = vec!["#b".into(), "#c".into()];
    t1.base.ignore_text = vec!["y".into(), "x".into()];
    t1.base.subtractive_selectors = vec!["footer".into(), "nav".into()];
    t1.base.extract_text = vec!["/\\d+/".into()];
    t1.base.trim_text_whitespace = false;
    let mut t2 = Tag::new("two");
    t2.base.include_filters = vec!["#d".into()];
    t2.base.trigger_text = vec!["t".into(), "u".into()];
    let mut s = Settings::default();
    s.application.global_ignore_text = vec!["z".into(), "y".into()];
    s.application.global_subtractive_selectors = vec!["header".into()];
    s.application.strip_ignored_lines = true;
    s.application.ignore_whitespace = false;

    let p = processor_settings(&w, &[&t1, &t2], &s);
    assert_eq!(
        p.include_filters,
        ["#a", "#b", "#c", "#d", "json:$..offers", "json:$..Offers"]
    );
    assert_eq!(p.ignore_text, ["x", "y", "z"]);
    assert_eq!(p.subtractive_selectors, ["footer", "nav", "nav", "header"]);
    assert_eq!(p.trigger_text, ["t", "u"]);
    assert_eq!(p.extract_text, ["/\\d+/"]);
    assert!(p.trim_text_whitespace, "flags come from the watch");
    assert!(p.strip_ignored_lines, "null falls back to global");
    assert!(!p.ignore_whitespace);
    assert!(p.source_mode);
    assert!(p.filter_text_added && p.filter_text_removed && p.filter_text_replaced);
    w.strip_ignored_lines = Some(false);
    assert!(!processor_settings(&w, &[], &s).strip_ignored_lines);
}

#[test]
fn tags_for_watch_includes_pattern_matches() {
    let mut all = BTreeMap::new();
    let a = Tag::new("a");
    let mut b = Tag::new("b");
    b.url_match_pattern = "example.com".into();
    let c = Tag::new("c");
    let (ua, ub, uc) = (
        a.base.uuid.clone(),
        b.base.uuid.clone(),
        c.base.uuid.clone(),
    );
    all.insert(ua.clone(), a);
    all.insert(ub.clone(), b);
    all.insert(uc.clone(), c);
    let mut w = Watch::new("https://example.com/");
    w.tags = vec![ua.clone(), "missing".into()];
    let got: Vec<&str> = tags_for_watch(&w, &all).iter().map(|(u, _)| *u).collect();
    assert_eq!(got, [ua.as_str(), ub.as_str()]);
    let assigned: Vec<&str> = assigned_tags(&w, &all).iter().map(|(u, _)| *u).collect();
    assert_eq!(assigned, [ua.as_str()]);
}

#[test]
fn notification_cascade() {
    let mut s = Settings::default();
    let mut w = Watch::new("https://example.com/");
    let mut t = Tag::new("t");
    let n = resolve_notification_settings(&w, &[&t], &s);
    assert!(n.urls.is_empty());
    assert_eq!(n.title, DEFAULT_NOTIFICATION_TITLE);
    assert_eq!(n.body, DEFAULT_NOTIFICATION_BODY);
    assert_eq!(n.format, "htmlcolor");

    s.application.notification_urls = vec!["global://".into()];
    s.application.notification_format = "text".into();
    t.base.notification_urls = vec!["tag://".into()];
    t.base.notification_title = Some("tag title".into());
    w.notification_body = Some("watch body".into());
    let n = resolve_notification_settings(&w, &[&t], &s);
    assert_eq!(n.urls, ["tag://"]);
    assert_eq!(n.title, "tag title");
    assert_eq!(n.body, "watch body");
    assert_eq!(n.format, "text", "System default resolves to global");

    w.notification_format = "markdown".into();
    w.notification_urls = vec!["watch://".into()];
    let n = resolve_notification_settings(&w, &[&t], &s);
    assert_eq!(
        (n.urls[0].as_str(), n.format.as_str()),
        ("watch://", "markdown")
    );

    t.base.notification_muted = true;
    w.notification_muted = true;
    let n = resolve_notification_settings(&w, &[&t], &s);
    assert_eq!(n.urls, ["global://"]);
    assert_eq!(n.body, DEFAULT_NOTIFICATION_BODY);
}

#[test]
fn restock_config_resolution() {
    let mut w = Watch::new("https://example.com/");
    w.processor_config_restock_diff = Some(RestockConfig {
        price_change_min: Some(1.0),
        ..Default::default()
    });
    let mut t = Tag::new("t");
    let (cfg, src) = resolved_restock_config(&w, &[("t-uuid", &t)]);
    assert_eq!(src, "watch");
    assert_eq!(cfg["price_change_min"], 1.0);
    t.overrides_watch = Some(true);
    let (cfg, src) = resolved_restock_config(&w, &[("t-uuid", &t)]);
    assert_eq!(src, "tag:t-uuid");
    assert_eq!(cfg, json!({}));
}

// ---- Python reprs ------------------------------------------------------------------

/// `WatchMarks` reads its two fields as a whole `Watch` does, in every spelling the lenient
/// decoders accept, and ignores everything else.
#[test]
fn watch_marks_agree_with_the_whole_watch() {
    for doc in [
        json!({}),
        json!({"url": "http://x", "last_error": false, "last_viewed": 0}),
        json!({"last_error": "Timeout", "last_viewed": "1700000000", "tags": ["a"]}),
        json!({"last_error": null, "last_viewed": 1_700_000_000.0, "headers": {"a": "b"}}),
        json!({"last_error": "", "last_viewed": null}),
    ] {
        let watch: Watch = serde_json::from_value(doc.clone()).unwrap();
        let marks: WatchMarks = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(marks.last_error, watch.last_error, "{doc}");
        assert_eq!(marks.last_viewed, watch.last_viewed, "{doc}");
    }
    let history = HistoryInfo::new(3, Some(1_700_000_000));
    assert!(history.seen_at(1_700_000_000));
    assert!(!history.seen_at(1_699_999_999));
    assert!(!HistoryInfo::new(0, None).seen_at(0));
}
