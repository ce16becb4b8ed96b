//! The dashboard's `WatchRow` type (`dashboard/src/types.ts`) against the server's
//! `live::WatchRow`: every field the dashboard reads is sent, with a JSON type its TypeScript
//! type accepts, and every field sent is either typed there or listed here as unused. A field
//! renamed or retyped on one side fails here instead of in a browser.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use changewatch_api::live::WatchRow;
use changewatch_core::model::{Restock, TextOrFalse};
use serde_json::Value;

/// Computed by the dashboard from other fields, not sent.
const DERIVED_IN_THE_DASHBOARD: &[&str] = &["notification_error"];
/// Sent (upstream's `watch_update` has them) but not read by the dashboard.
const SENT_NOT_READ: &[&str] = &["event_timestamp"];

/// `name: type` of each field of an `export interface <name> { … }` block.
fn interface_fields(src: &str, name: &str) -> Vec<(String, String, bool)> {
    let start = src
        .find(&format!("export interface {name} {{"))
        .unwrap_or_else(|| panic!("no interface {name} in types.ts"));
    let body = &src[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find("\n}").unwrap()];
    let mut fields = Vec::new();
    for line in body.lines().map(str::trim) {
        if line.is_empty()
            || line.starts_with("/*")
            || line.starts_with('*')
            || line.starts_with("//")
        {
            continue;
        }
        let (field, ty) = line.trim_end_matches(';').split_once(':').unwrap();
        let optional = field.ends_with('?');
        fields.push((
            field.trim_end_matches('?').trim().to_string(),
            ty.trim().to_string(),
            optional,
        ));
    }
    fields
}

/// Whether a JSON value is one the TypeScript type (a union of simple types, or an interface
/// of `types.ts` checked field by field) accepts.
fn accepts(src: &str, ty: &str, v: &Value) -> bool {
    ty.split('|').map(str::trim).any(|t| match t {
        "string" => v.is_string(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "false" => v == &Value::Bool(false),
        "true" => v == &Value::Bool(true),
        "string[]" => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        "RestockState" => v.as_object().is_some_and(|o| {
            let fields = interface_fields(src, t);
            o.keys().all(|k| fields.iter().any(|(n, ..)| n == k))
                && fields.iter().all(|(n, ty, optional)| match o.get(n) {
                    Some(v) => accepts(src, ty, v),
                    None => *optional,
                })
        }),
        other => panic!("types.ts: teach this test the type {other:?}"),
    })
}

fn row(title: Option<&str>, last_error: TextOrFalse, restock: Option<Restock>) -> Value {
    serde_json::to_value(WatchRow {
        checking_now: false,
        error_text: String::new(),
        event_timestamp: 1.5,
        fetch_time: 0.25,
        has_error: false,
        has_favicon: false,
        history_n: 2,
        last_changed_text: "Not yet".into(),
        last_checked: 1,
        last_checked_text: "Not yet".into(),
        notification_muted: false,
        paused: false,
        queued: false,
        unviewed: false,
        uuid: "u".into(),
        url: "https://example.com/".into(),
        link: Some("https://example.com/".into()),
        title: title.map(str::to_string),
        page_title: None,
        use_page_title_in_list: Some(false),
        tags: vec!["t".into()],
        last_changed: 0,
        last_error,
        processor: if restock.is_some() {
            "restock_diff"
        } else {
            "text_json_diff"
        }
        .into(),
        restock,
    })
    .unwrap()
}

#[test]
fn the_dashboard_row_type_matches_what_the_server_sends() {
    let src = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dashboard/src/types.ts"),
    )
    .unwrap();
    let fields = interface_fields(&src, "WatchRow");
    assert!(fields.len() > 15, "{fields:?}");
    let samples = [
        row(
            Some("A title"),
            TextOrFalse::Text("boom".into()),
            Some(Restock {
                in_stock: Some(true),
                price: Some(9.5),
                currency: Some("EUR".into()),
                last_price: Some(10.0),
            }),
        ),
        row(None, TextOrFalse::False, Some(Restock::default())),
        row(None, TextOrFalse::False, None),
    ];
    for (name, ty, optional) in &fields {
        if DERIVED_IN_THE_DASHBOARD.contains(&name.as_str()) {
            continue;
        }
        for sample in &samples {
            match sample.get(name) {
                Some(v) => assert!(accepts(&src, ty, v), "{name}: {v} is not a {ty}"),
                None => assert!(*optional, "{name} is typed in the dashboard but never sent"),
            }
        }
    }
    let typed: Vec<&str> = fields.iter().map(|(n, ..)| n.as_str()).collect();
    for key in samples[0].as_object().unwrap().keys() {
        assert!(
            typed.contains(&key.as_str()) || SENT_NOT_READ.contains(&key.as_str()),
            "{key} is sent but neither typed in types.ts nor listed as unread"
        );
    }
}
