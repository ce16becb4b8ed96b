//! Issue #13, "nothing silent": every field of the watch schema the API serves either does what
//! it says or is refused with a 400 naming the field and the value. The fields come from the
//! served spec (`/api/v1/full-spec`: `api-spec.yaml` with the request-body schemas the write
//! checks run), read when the test runs, so a field added later without an entry here fails.
//!
//! - `Acts`: a non-default value is accepted by POST and PUT and read back as sent; `proof`
//!   names the test that shows the system acting on it.
//! - `Refused`: a non-default value is a 400 naming field and value on POST, PUT, the import and
//!   the tag endpoints, and the refused write changed nothing; the value upstream's exports
//!   carry (the default) is still accepted.
//! - `Ignored`: read-only, computed or written by the server (the existing behaviour):
//!   accepted back from a GET and dropped, the watch unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use std::collections::BTreeSet;

use common::{TestApp, spawn_app};
use reqwest::{Method, Url};
use serde_json::{Map, Value, json};
use testkit::{FixtureServer, Page};

const URL: &str = "https://example.com/nothing-silent";

enum Verdict {
    /// `body` is sent (the field and any companion it needs), `expect` must be in the GET.
    Acts {
        body: Value,
        expect: Value,
        proof: &'static str,
    },
    /// Only PUT takes it: POST drops it so a GET can be posted as a copy (readOnly there).
    ActsOnPut {
        value: Value,
        proof: &'static str,
    },
    /// POST resolves it; PUT (and the tag endpoints) refuse `put_refused`.
    ActsOnPost {
        body: Value,
        expect: Value,
        put_refused: Value,
        proof: &'static str,
    },
    /// `shows`: how the message shows `value` (Python's repr, as the schema messages do).
    Refused {
        value: Value,
        shows: &'static str,
        default: Value,
    },
    Ignored,
}
use Verdict::*;

fn acts(field: &str, value: Value, proof: &'static str) -> (String, Verdict) {
    let body = json!({ field: value });
    (
        field.to_string(),
        Acts {
            expect: body.clone(),
            body,
            proof,
        },
    )
}

fn refused(field: &str, value: Value, shows: &'static str, default: Value) -> (String, Verdict) {
    (
        field.to_string(),
        Refused {
            value,
            shows,
            default,
        },
    )
}

/// Runtime values some entries need: a tag, a proxy of the settings' list, a watch as GET
/// shows it.
struct Ctx {
    tag_uuid: String,
    tag_title: String,
    proxy: String,
    base: Value,
}

fn table(c: &Ctx) -> Vec<(String, Verdict)> {
    let mut schedule = c.base["time_schedule_limit"].clone();
    schedule["enabled"] = json!(true);
    schedule["timezone"] = json!("Europe/Berlin");
    schedule["monday"]["start_time"] = json!("09:00");
    let interval = json!({"weeks": null, "days": null, "hours": 2, "minutes": 30, "seconds": null});
    let mut t = vec![
        acts(
            "url",
            json!("https://example.org/other"),
            "crates/api/tests/watches.rs::create_check_change_and_read_back",
        ),
        acts(
            "link_to_open",
            json!("https://example.org/open"),
            "crates/core/src/model/tests.rs::computed_fields (open_link)",
        ),
        acts(
            "title",
            json!("A title"),
            "crates/api/tests/notify_rules.rs::a_change_queues_one_rendered_job_per_url ({{watch_title}})",
        ),
        (
            "tag".into(),
            ActsOnPost {
                body: json!({"tag": c.tag_title}),
                expect: json!({"tag": "", "tags": [c.tag_uuid]}),
                put_refused: json!(c.tag_title),
                proof: "crates/api/tests/watches.rs::pause_mute_update_delete_and_round_trip (legacy tag names)",
            },
        ),
        acts(
            "tags",
            json!([c.tag_uuid]),
            "crates/api/tests/notify_rules.rs::urls_cascade_from_watch_to_tag_to_global",
        ),
        acts(
            "paused",
            json!(true),
            "crates/engine/tests/checker.rs::paused_watches_skip_scheduled_jobs_but_take_manual_rechecks",
        ),
        acts(
            "notification_muted",
            json!(true),
            "crates/api/tests/notify_rules.rs::muted_watches_tags_and_all_muted_send_nothing",
        ),
        acts(
            "method",
            json!("POST"),
            "crates/api/tests/fetch_templates.rs::url_headers_and_body_are_rendered_when_fetched",
        ),
        acts(
            "fetch_backend",
            json!("html_webdriver"),
            "crates/api/tests/browser_watch.rs::a_browser_watch_records_what_javascript_wrote",
        ),
        acts(
            "headers",
            json!({"X-Test": "1"}),
            "crates/api/tests/fetch_templates.rs::url_headers_and_body_are_rendered_when_fetched",
        ),
        acts(
            "body",
            json!("a=1"),
            "crates/api/tests/fetch_templates.rs::url_headers_and_body_are_rendered_when_fetched",
        ),
        acts(
            "proxy",
            json!(c.proxy),
            "crates/api/tests/proxies.rs::watches_are_checked_through_the_proxy_they_choose",
        ),
        acts(
            "ignore_status_codes",
            json!(true),
            "crates/core/tests/fetch.rs::ignore_status_codes_accepts_error_pages; crates/browser/tests/browser.rs::the_main_response_status_is_the_check_error",
        ),
        acts(
            "webdriver_delay",
            json!(3),
            "crates/browser/tests/browser.rs::javascript_runs_before_the_page_is_read (BrowserRequest.delay, from webdriver_delay in engine checker::browser_request)",
        ),
        acts(
            "webdriver_js_execute_code",
            json!("document.title = 'x'"),
            "crates/api/tests/browser_watch.rs::a_browser_watch_records_what_javascript_wrote",
        ),
        (
            "time_between_check".into(),
            Acts {
                body: json!({"time_between_check": interval}),
                expect: json!({"time_between_check": interval}),
                proof: "crates/core/src/model/tests.rs::time_between_check_seconds (effective_check_interval, engine timing::next_due)",
            },
        ),
        (
            "time_between_check_use_default".into(),
            Acts {
                body: json!({"time_between_check_use_default": false, "time_between_check": interval}),
                expect: json!({"time_between_check_use_default": false}),
                proof: "crates/core/src/model/tests.rs::time_between_check_seconds",
            },
        ),
        acts(
            "notification_urls",
            json!(["json://localhost/hook"]),
            "crates/api/tests/notify_rules.rs::urls_cascade_from_watch_to_tag_to_global",
        ),
        acts(
            "notification_title",
            json!("Changed: {{watch_url}}"),
            "crates/api/tests/notify_rules.rs::a_change_queues_one_rendered_job_per_url",
        ),
        acts(
            "notification_body",
            json!("{{diff}}"),
            "crates/api/tests/notify_rules.rs::a_change_queues_one_rendered_job_per_url",
        ),
        acts(
            "notification_format",
            json!("text"),
            "crates/api/tests/notify_rules.rs::a_change_queues_one_rendered_job_per_url",
        ),
        acts(
            "track_ldjson_price_data",
            json!("accepted"),
            "crates/core/src/model/tests.rs::merge_cascade (LD-JSON offer filters added)",
        ),
        acts(
            "browser_steps",
            json!([{"operation": "Click element", "selector": "#go", "optional_value": ""}]),
            "crates/api/tests/browser_watch.rs::browser_steps_run_before_the_text_is_recorded",
        ),
        acts(
            "processor",
            json!("restock_diff"),
            "crates/api/tests/restock.rs::stock_and_price_moves_notify_by_the_restock_rules",
        ),
        acts(
            "include_filters",
            json!(["#product"]),
            "crates/api/tests/rules.rs::include_filter_and_ignore_text",
        ),
        acts(
            "subtractive_selectors",
            json!(["nav"]),
            "crates/core/tests/pipeline.rs::subtractive_then_include_filters; crates/core/src/model/tests.rs::merge_cascade",
        ),
        acts(
            "ignore_text",
            json!(["updated"]),
            "crates/api/tests/rules.rs::include_filter_and_ignore_text",
        ),
        acts(
            "trigger_text",
            json!(["in stock"]),
            "crates/api/tests/rules.rs::trigger_text_holds_changes_back_until_it_appears",
        ),
        acts(
            "text_should_not_be_present",
            json!(["sold out"]),
            "crates/core/tests/pipeline.rs::trigger_and_block_rules",
        ),
        acts(
            "extract_lines_containing",
            json!(["price"]),
            "crates/core/tests/pipeline.rs::extract_sort_dedupe_in_upstream_order",
        ),
        acts(
            "extract_text",
            json!(["/\\d+/"]),
            "crates/core/tests/pipeline.rs::extract_sort_dedupe_in_upstream_order",
        ),
        acts(
            "trim_text_whitespace",
            json!(true),
            "crates/core/tests/pipeline.rs::plain_text_is_kept_as_is; crates/core/src/model/tests.rs::merge_cascade",
        ),
        acts(
            "sort_text_alphabetically",
            json!(true),
            "crates/core/tests/pipeline.rs::extract_sort_dedupe_in_upstream_order",
        ),
        acts(
            "remove_duplicate_lines",
            json!(true),
            "crates/core/tests/pipeline.rs::extract_sort_dedupe_in_upstream_order",
        ),
        acts(
            "check_unique_lines",
            json!(true),
            "crates/core/tests/pipeline.rs::check_unique_lines_only_counts_new_lines",
        ),
        acts(
            "strip_ignored_lines",
            json!(true),
            "crates/core/tests/pipeline.rs::ignore_text_keeps_lines_in_snapshot_but_not_in_checksum",
        ),
        acts(
            "filter_text_added",
            json!(false),
            "crates/core/src/diff.rs::tests::kind_toggles_off (include_added from filter_text_added in pipeline::process)",
        ),
        acts(
            "filter_text_removed",
            json!(false),
            "crates/api/tests/rules.rs::only_added_lines_count_when_removed_and_replaced_are_off",
        ),
        acts(
            "filter_text_replaced",
            json!(false),
            "crates/api/tests/rules.rs::only_added_lines_count_when_removed_and_replaced_are_off",
        ),
        refused("in_stock_only", json!(false), "False", json!(true)),
        refused("follow_price_changes", json!(false), "False", json!(true)),
        refused(
            "price_change_threshold_percent",
            json!(5.5),
            "5.5",
            json!(null),
        ),
        ("has_ldjson_price_data".into(), Ignored),
        acts(
            "notification_screenshot",
            json!(true),
            "crates/api/tests/browser_watch.rs::a_change_notification_carries_the_screenshot_when_asked",
        ),
        acts(
            "filter_failure_notification_send",
            json!(false),
            "crates/engine/src/outcome.rs::tests::a_failed_step_is_recorded_and_counted_only_for_watches_that_alert",
        ),
        acts(
            "use_page_title_in_list",
            json!(false),
            "dashboard/tests/unit/logic.test.ts (displayName: the settings' or the watch's choice, as upstream's row template)",
        ),
        acts(
            "history_snapshot_max_length",
            json!(2),
            "crates/api/tests/nothing_silent.rs::history_snapshot_max_length_keeps_that_many_snapshots",
        ),
        (
            "time_schedule_limit".into(),
            Acts {
                body: json!({"time_schedule_limit": schedule}),
                expect: json!({"time_schedule_limit": schedule}),
                proof: "crates/core/src/schedule.rs::tests::overdue_outside_window_waits_for_the_next_opening (engine timing::window_for)",
            },
        ),
        acts(
            "conditions",
            json!([{"field": "page_filtered_text", "operator": "contains_regex", "value": "x"}]),
            "crates/api/tests/conditions.rs::a_number_crossing_the_condition_is_reported_and_notified_only_below",
        ),
        acts(
            "conditions_match_logic",
            json!("ANY"),
            "crates/api/tests/conditions.rs::a_number_crossing_the_condition_is_reported_and_notified_only_below (ANY), crates/core/src/conditions.rs::tests::numbers_compare_as_upstream_and_all_or_any_join",
        ),
        refused(
            "llm_intent",
            json!("tell me about prices"),
            "'tell me about prices'",
            json!(""),
        ),
        refused(
            "llm_change_summary",
            json!("summarise"),
            "'summarise'",
            json!(""),
        ),
        refused(
            "llm_change_summary_mode",
            json!("append"),
            "'append'",
            json!("replace"),
        ),
        ("llm_prefilter".into(), Ignored),
        ("llm_evaluation_cache".into(), Ignored),
        ("llm_last_tokens_used".into(), Ignored),
        ("llm_tokens_used_cumulative".into(), Ignored),
        ("llm_tokens_this_period".into(), Ignored),
        ("llm_tokens_period_key".into(), Ignored),
        acts(
            "processor_config_restock_diff",
            json!({"in_stock_processing": "all_changes", "follow_price_changes": true,
                   "price_change_min": 5.0, "price_change_max": 20.0,
                   "price_change_threshold_percent": 2.5}),
            "crates/api/tests/restock.rs::stock_and_price_moves_notify_by_the_restock_rules",
        ),
        refused("llm_backend_profile", json!(false), "False", json!(true)),
        (
            "last_viewed".into(),
            ActsOnPut {
                value: json!(12345),
                proof: "crates/core/src/model/tests.rs::computed_fields (viewed, has_unviewed)",
            },
        ),
        ("uuid".into(), Ignored),
        ("date_created".into(), Ignored),
    ];
    // Read-only and computed names a GET shows (or a client may keep beside a watch): taken
    // back and dropped.
    for name in [
        "last_checked",
        "last_changed",
        "last_error",
        "link",
        "open_link",
        "page_title",
        "check_count",
        "fetch_time",
        "previous_md5",
        "previous_md5_before_filters",
        "consecutive_filter_failures",
        "last_notification_error",
        "notification_alert_count",
        "content-type",
        "remote_server_reply",
        "browser_steps_last_error_step",
        "viewed",
        "history_n",
        "processor_config_restock_diff_source",
        "data_dir",
        "domain_only_from_link",
        "error_text_ctime",
        "fetcher_supports_screenshots",
        "get_browsersteps_available_screenshots",
        "get_fetch_backend",
        "get_from_version_based_on_last_viewed",
        "has_browser_steps",
        "has_empty_checktime",
        "has_history",
        "has_restock_info",
        "has_unviewed",
        "history",
        "history_index_filename",
        "is_pdf",
        "is_source_type_url",
        "label",
        "newest_history_key",
        "open_link_override",
        "snapshot_error_screenshot_ctime",
        "snapshot_screenshot_ctime",
        "snapshot_text_ctime",
        "was_edited",
        "last_check_status",
        "last_filter_config_hash",
        "last_raw_checksum",
        "last_validators",
        "restock",
        "_llm_result",
        "_llm_intent",
        "_llm_change_summary",
    ] {
        t.push((name.to_string(), Ignored));
    }
    t
}

/// `components.schemas.<name>` of the served spec (the generated schemas are JSON flow lines).
fn schema(spec: &str, name: &str) -> Value {
    let line = spec
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{name}: {{")))
        .unwrap_or_else(|| panic!("{name} is not in the served spec"));
    serde_json::from_str(line.split_once(": ").unwrap().1).unwrap()
}

fn properties(schema: &Value) -> &Map<String, Value> {
    schema["properties"].as_object().unwrap()
}

async fn send(app: &TestApp, method: Method, path: &str, body: &Value) -> (u16, String) {
    let r = app.req(method, path).json(body).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn watch(app: &TestApp, uuid: &str) -> Value {
    let (status, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(status, 200);
    w
}

async fn count(app: &TestApp, path: &str) -> usize {
    app.get_json(path).await.1.as_object().unwrap().len()
}

fn with_url(body: &Value) -> Value {
    let mut b = body.clone();
    if b.get("url").is_none() {
        b["url"] = json!(URL);
    }
    b
}

/// `got` holds every key of `expect` with its value.
fn assert_holds(got: &Value, expect: &Value, what: &str) {
    for (k, v) in expect.as_object().unwrap() {
        assert_eq!(&got[k], v, "{what}: {k} read back differently");
    }
}

/// A value of the property's type, for read-only fields (their values are never applied).
fn sample(prop: &Value) -> Value {
    let ty = match &prop["type"] {
        Value::String(t) => t.clone(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null")
            .to_string(),
        _ => String::new(),
    };
    match ty.as_str() {
        "string" if prop["format"] == "uuid" => json!("0b1e4b0a-5b1e-4f7e-9f3e-7d8f7f4b2a11"),
        "string" => json!("sent back"),
        "integer" => json!(7),
        "number" => json!(1.5),
        "boolean" => json!(true),
        "object" => json!({"k": 1}),
        "array" => json!([]),
        _ => json!(7),
    }
}

/// The query-string form of a value for POST /api/v1/import (strings as they are, the rest
/// as JSON, which the import converts by the field's type).
fn query_form(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[tokio::test]
async fn every_watch_field_acts_or_is_refused() {
    let app = spawn_app().await;

    // The fields, from the spec the server serves.
    let r = app
        .client
        .get(format!("{}/api/v1/full-spec", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let spec = r.text().await.unwrap();
    let create = schema(&spec, "CreateWatch");
    let update = schema(&spec, "UpdateWatch");
    let spec_fields: BTreeSet<String> = properties(&create)
        .keys()
        .chain(properties(&update).keys())
        .cloned()
        .collect();
    assert!(spec_fields.len() > 50, "{spec_fields:?}");

    // What some entries need: a tag, a proxy, a watch as GET shows it.
    let (status, body) = send(
        &app,
        Method::POST,
        "/api/v1/tag",
        &json!({"title": "Group"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let tag_uuid = serde_json::from_str::<Value>(&body).unwrap()["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .client
        .put(format!("{}/ui/settings", app.base))
        .header("x-changewatch-ui", "1")
        .json(&json!({"extra_proxies": [{"proxy_name": "office", "proxy_url": "http://127.0.0.1:9"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let probe = app.create_watch(json!({"url": URL})).await;
    let ctx = Ctx {
        tag_uuid: tag_uuid.clone(),
        tag_title: "Group".into(),
        proxy: "ui-0office".into(),
        base: watch(&app, &probe).await,
    };
    let table = table(&ctx);

    // Table and spec name the same fields, each once.
    let named: BTreeSet<String> = table.iter().map(|(f, _)| f.clone()).collect();
    assert_eq!(named.len(), table.len(), "a field is in the table twice");
    let missing: Vec<&String> = spec_fields.difference(&named).collect();
    assert!(
        missing.is_empty(),
        "spec fields without an entry (acts, refused or ignored?): {missing:?}"
    );
    let stale: Vec<&String> = named.difference(&spec_fields).collect();
    assert!(
        stale.is_empty(),
        "entries for fields the spec lacks: {stale:?}"
    );

    for (field, verdict) in &table {
        let f = field.as_str();
        let in_create = properties(&create).get(f).unwrap_or(&Value::Null);
        let in_update = properties(&update).get(f).unwrap_or(&Value::Null);
        match verdict {
            Acts {
                body,
                expect,
                proof,
            } => {
                assert!(!proof.is_empty());
                assert_ne!(
                    in_update["readOnly"], true,
                    "{f}: writable, but readOnly in the spec"
                );
                let (status, text) =
                    send(&app, Method::POST, "/api/v1/watch", &with_url(body)).await;
                assert_eq!(status, 201, "{f}: POST {body}: {text}");
                let uuid = serde_json::from_str::<Value>(&text).unwrap()["uuid"]
                    .as_str()
                    .unwrap()
                    .to_string();
                assert_holds(&watch(&app, &uuid).await, expect, &format!("{f} (POST)"));

                let uuid = app.create_watch(json!({"url": URL})).await;
                let (status, text) =
                    send(&app, Method::PUT, &format!("/api/v1/watch/{uuid}"), body).await;
                assert_eq!(status, 200, "{f}: PUT {body}: {text}");
                assert_holds(&watch(&app, &uuid).await, expect, &format!("{f} (PUT)"));
            }
            ActsOnPut { value, proof } => {
                assert!(!proof.is_empty());
                assert_eq!(in_create["readOnly"], true, "{f}: POST drops it");
                assert_ne!(in_update["readOnly"], true, "{f}: PUT takes it");
                let uuid = app.create_watch(json!({"url": URL, f: value})).await;
                assert_ne!(&watch(&app, &uuid).await[f], value, "{f}: POST drops it");
                let (status, text) = send(
                    &app,
                    Method::PUT,
                    &format!("/api/v1/watch/{uuid}"),
                    &json!({ f: value }),
                )
                .await;
                assert_eq!(status, 200, "{f}: {text}");
                assert_eq!(&watch(&app, &uuid).await[f], value, "{f} (PUT)");
            }
            ActsOnPost {
                body,
                expect,
                put_refused,
                proof,
            } => {
                assert!(!proof.is_empty());
                let uuid = app.create_watch(with_url(body)).await;
                assert_holds(&watch(&app, &uuid).await, expect, &format!("{f} (POST)"));
                assert_refused_on_put_and_tags(&app, &uuid, &tag_uuid, f, put_refused, "'Group'")
                    .await;
                assert!(
                    in_update["description"]
                        .as_str()
                        .is_some_and(|d| d.starts_with("Not supported")),
                    "{f}: the spec says PUT refuses it: {in_update}"
                );
            }
            Refused {
                value,
                shows,
                default,
            } => {
                for s in [in_create, in_update] {
                    assert!(
                        s["description"]
                            .as_str()
                            .is_some_and(|d| d.starts_with("Not supported")),
                        "{f}: the spec says it is refused: {s}"
                    );
                }
                // POST: refused, nothing created.
                let before = count(&app, "/api/v1/watch").await;
                let (status, text) = send(
                    &app,
                    Method::POST,
                    "/api/v1/watch",
                    &json!({"url": URL, f: value}),
                )
                .await;
                assert_eq!(status, 400, "{f}: POST {value}: {text}");
                assert_names(&text, f, shows);
                assert_eq!(count(&app, "/api/v1/watch").await, before, "{f}: POST");

                // The import: refused, nothing imported.
                let mut url = Url::parse(&format!("{}/api/v1/import", app.base)).unwrap();
                url.query_pairs_mut().append_pair(f, &query_form(value));
                let r = app
                    .client
                    .post(url)
                    .header("x-api-key", &app.api_key)
                    .header("content-type", "text/plain")
                    .body("https://example.com/imported\n")
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let text = r.text().await.unwrap();
                assert_eq!(status, 400, "{f}: import {value}: {text}");
                assert_names(&text, f, shows);
                assert_eq!(count(&app, "/api/v1/watch").await, before, "{f}: import");

                // PUT and the tag endpoints: refused, nothing changed.
                assert_refused_on_put_and_tags(&app, &probe, &tag_uuid, f, value, shows).await;

                // What upstream's exports carry is still taken.
                let uuid = app.create_watch(json!({"url": URL, f: default})).await;
                let (status, text) = send(
                    &app,
                    Method::PUT,
                    &format!("/api/v1/watch/{uuid}"),
                    &json!({ f: default }),
                )
                .await;
                assert_eq!(status, 200, "{f}: the default {default}: {text}");
            }
            Ignored => {
                let before = watch(&app, &probe).await;
                let prop = if in_update.is_null() {
                    in_create
                } else {
                    in_update
                };
                let sent = sample(prop);
                let (status, text) = send(
                    &app,
                    Method::PUT,
                    &format!("/api/v1/watch/{probe}"),
                    &json!({ f: sent }),
                )
                .await;
                assert_eq!(status, 200, "{f}: read-only values are taken back: {text}");
                assert_eq!(watch(&app, &probe).await, before, "{f}: {sent} was applied");
            }
        }
    }
}

fn assert_names(text: &str, field: &str, shows: &str) {
    assert!(
        text.contains(&format!("{field}: ")) && text.contains(shows),
        "the 400 names neither {field} nor {shows}: {text}"
    );
}

/// PUT /watch, POST /tag and PUT /tag refuse `field: value` by name and change nothing.
async fn assert_refused_on_put_and_tags(
    app: &TestApp,
    uuid: &str,
    tag_uuid: &str,
    field: &str,
    value: &Value,
    shows: &str,
) {
    let path = format!("/api/v1/watch/{uuid}");
    let before = watch(app, uuid).await;
    // Beside a field that would apply: the whole write is refused.
    let (status, text) = send(
        app,
        Method::PUT,
        &path,
        &json!({"title": "must not land", field: value}),
    )
    .await;
    assert_eq!(status, 400, "{field}: PUT {value}: {text}");
    assert_names(&text, field, shows);
    assert_eq!(
        watch(app, uuid).await,
        before,
        "{field}: the refused PUT lost nothing"
    );

    let tags = count(app, "/api/v1/tags").await;
    let (status, text) = send(
        app,
        Method::POST,
        "/api/v1/tag",
        &json!({"title": format!("new {field}"), field: value}),
    )
    .await;
    assert_eq!(status, 400, "{field}: POST /tag {value}: {text}");
    assert_names(&text, field, shows);
    assert_eq!(count(app, "/api/v1/tags").await, tags);

    let tag_path = format!("/api/v1/tag/{tag_uuid}");
    let tag_before = app.get_json(&tag_path).await.1;
    let (status, text) = send(
        app,
        Method::PUT,
        &tag_path,
        &json!({"title": "must not land", field: value}),
    )
    .await;
    assert_eq!(status, 400, "{field}: PUT /tag {value}: {text}");
    assert_names(&text, field, shows);
    assert_eq!(app.get_json(&tag_path).await.1, tag_before, "{field}: tag");
}

/// A watch read back with GET, every refused field at its default as a GET shows it, is
/// taken back by PUT and posted as a copy: the refusals never catch a round trip.
#[tokio::test]
async fn a_watch_and_a_tag_read_back_are_taken_back() {
    let app = spawn_app().await;
    let uuid = app.create_watch(json!({"url": URL})).await;
    let w = watch(&app, &uuid).await;
    let (status, text) = send(&app, Method::PUT, &format!("/api/v1/watch/{uuid}"), &w).await;
    assert_eq!(status, 200, "{text}");
    let (status, text) = send(&app, Method::POST, "/api/v1/watch", &w).await;
    assert_eq!(status, 201, "{text}");

    let (status, body) = send(&app, Method::POST, "/api/v1/tag", &json!({"title": "T"})).await;
    assert_eq!(status, 201, "{body}");
    let tag = serde_json::from_str::<Value>(&body).unwrap()["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, t) = app.get_json(&format!("/api/v1/tag/{tag}")).await;
    let (status, text) = send(&app, Method::PUT, &format!("/api/v1/tag/{tag}"), &t).await;
    assert_eq!(status, 200, "{text}");
}

/// Several refused fields in one body are named together.
#[tokio::test]
async fn every_refused_field_of_a_body_is_named() {
    let app = spawn_app().await;
    let (status, text) = send(
        &app,
        Method::POST,
        "/api/v1/watch",
        &json!({"url": URL, "llm_intent": "x", "in_stock_only": false, "include_filters": ["p"]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!(
            "in_stock_only: False is not supported: a legacy restock field upstream no longer \
             reads; set processor_config_restock_diff instead (accepted: True); llm_intent: 'x' is \
             not supported: changewatch has no LLM features (accepted: '')"
        )
    );
}

/// The proof for `history_snapshot_max_length`: the watch's own limit trims its history.
#[tokio::test]
async fn history_snapshot_max_length_keeps_that_many_snapshots() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    srv.set("/p", Page::html("<p>version 0</p>"));
    let uuid = app
        .create_watch(json!({"url": srv.url("/p"), "history_snapshot_max_length": 2}))
        .await;
    app.run_checks().await;
    for n in 1..=3 {
        srv.set("/p", Page::html(format!("<p>version {n}</p>")));
        let (status, _) = app
            .get_json(&format!("/api/v1/watch/{uuid}?recheck=1"))
            .await;
        assert_eq!(status, 200);
        app.run_checks().await;
    }
    let w = watch(&app, &uuid).await;
    assert_eq!(w["history_n"], 2, "{w}");
    let r = app
        .req(Method::GET, &format!("/api/v1/watch/{uuid}/history/latest"))
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("version 3"));
}
