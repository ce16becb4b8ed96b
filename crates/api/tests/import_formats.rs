//! The dashboard's Import page endpoints: a URL list, Distill.io's JSON export and `.xlsx`
//! files (written by openpyxl, the library upstream reads them with, from the changedetection.io
//! venv `make test-deps` makes), each row reported as imported or skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use std::path::PathBuf;
use std::process::Command;

use changewatch_api::ApiConfig;
use common::{TestApp, spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};

const UI: &str = "x-changewatch-ui";

async fn post(app: &TestApp, path: &str, ct: &str, body: Vec<u8>) -> (u16, Value) {
    let resp = app
        .client
        .post(format!("{}{}", app.base, path))
        .header(UI, "1")
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn watch(app: &TestApp, uuid: &str) -> Value {
    let (s, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
    assert_eq!(s, 200);
    w
}

/// A watch as the API shows it, less what differs between any two watches.
fn comparable(mut w: Value) -> Value {
    for k in ["uuid", "date_created", "last_changed", "link"] {
        w.as_object_mut().unwrap().remove(k);
    }
    w
}

async fn tag_titles(app: &TestApp, w: &Value) -> Vec<String> {
    let (_, tags) = app.get_json("/api/v1/tags").await;
    let mut t: Vec<String> = w["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            tags[u.as_str().unwrap()]["title"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    t.sort();
    t
}

#[tokio::test]
async fn url_list_imports_each_line_and_reports_the_rest() {
    let app = spawn_app().await;
    let (s, r) = post(
        &app,
        "/ui/import/urls",
        "application/json",
        serde_json::to_vec(&json!({
            "urls": "https://a.example/ one, two\nnot a url\n\nhttps://b.example/\nhttp:// spaced\n",
            "tag": "common",
        }))
        .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["imported"], 2);
    assert_eq!(r["skipped"], 2);
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows[0]["row"], 1);
    assert_eq!(rows[0]["status"], "imported");
    assert_eq!(rows[1]["status"], "skipped");
    assert_eq!(rows[1]["row"], 2);
    assert_eq!(rows[2]["row"], 4);
    // "http://" with "spaced" as its tag: the URL fails the API's validation.
    assert_eq!(rows[3]["url"], "http://");
    assert_eq!(rows[3]["reason"], "Invalid or unsupported URL");
    let w = watch(&app, rows[0]["uuid"].as_str().unwrap()).await;
    assert_eq!(w["url"], "https://a.example/");
    assert_eq!(tag_titles(&app, &w).await, ["common", "one", "two"]);
}

#[tokio::test]
async fn url_list_refuses_what_it_does_not_take() {
    let app = spawn_app().await;
    for (body, want) in [
        (
            json!({"urls": "https://a.example/", "dedupe": true}),
            "dedupe",
        ),
        (json!({"tag": "x"}), "urls: required"),
        (json!({"urls": 5}), "urls: must be a string"),
        (
            json!({"urls": "https://a.example/", "processor": "nope"}),
            "",
        ),
    ] {
        let (s, r) = post(
            &app,
            "/ui/import/urls",
            "application/json",
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
        if want.is_empty() {
            // A bad processor is the API's own validation, reported on the row.
            assert_eq!(s, 200);
            assert_eq!(r["rows"][0]["status"], "skipped");
            assert!(
                r["rows"][0]["reason"]
                    .as_str()
                    .unwrap()
                    .contains("processor"),
                "{r}"
            );
        } else {
            assert_eq!(s, 400, "{body}");
            assert!(r["message"].as_str().unwrap().contains(want), "{r}");
        }
    }
}

#[tokio::test]
async fn the_import_endpoints_need_the_dashboard_or_the_key() {
    let app = spawn_app().await;
    for path in ["/ui/import/urls", "/ui/import/distill", "/ui/import/xlsx"] {
        let resp = app
            .client
            .post(format!("{}{}", app.base, path))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{path}");
    }
    // A network-facing server without a password: the UI header alone opens nothing.
    let closed = spawn_app_with(ApiConfig {
        page_watch_limit: None,
        minimum_recheck_secs: 3,
        base_url: None,
        salted_pass: None,
        open_without_password: false,
        api_key_fixed: false,
        trusted_proxy_hops: 0,
        work_after_reply: true,
    })
    .await;
    let (s, _) = post(
        &closed,
        "/ui/import/urls",
        "application/json",
        br#"{"urls": "https://a.example/"}"#.to_vec(),
    )
    .await;
    assert_eq!(s, 401);
    let (_, all) = closed.get_json("/api/v1/watch").await;
    assert_eq!(all, json!({}));
    // The API key is enough.
    let resp = app
        .req(Method::POST, "/ui/import/urls")
        .json(&json!({"urls": "https://k.example/"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

const DISTILL: &str = r##"{"client":{"local":1},"data":[
 {"name":"Unraid | News","uri":"https://unraid.net/blog",
  "config":"{\"selections\":[{\"frames\":[{\"index\":0,\"excludes\":[{\"type\":\"css\",\"expr\":\".ad\"}],\"includes\":[{\"type\":\"xpath\",\"expr\":\"//main\"}]}],\"dynamic\":true,\"delay\":2}],\"ignoreEmptyText\":true}",
  "tags":["news"],"content_type":2,"state":40,
  "schedule":"{\"type\":\"INTERVAL\",\"params\":{\"interval\":4447}}","ts":"2022-03-27T15:51:15.667Z"},
 {"name":"Local file","uri":"file:///etc/passwd","config":"{}"},
 {"name":"Tags not a list","uri":"https://c.example/","tags":"x"}
]}"##;

#[tokio::test]
async fn distill_export_makes_the_watch_the_api_would_make() {
    let app = spawn_app().await;
    let (s, r) = post(
        &app,
        "/ui/import/distill",
        "application/json",
        DISTILL.into(),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["imported"], 1, "{r}");
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows[1]["status"], "skipped");
    assert_eq!(rows[1]["reason"], "Invalid or unsupported URL");
    assert_eq!(rows[2]["status"], "skipped");
    assert_eq!(rows[2]["reason"], "\"tags\" is not a list");
    let imported = watch(&app, rows[0]["uuid"].as_str().unwrap()).await;
    assert_eq!(imported["title"], "Unraid | News");
    assert_eq!(imported["include_filters"], json!(["xpath://main"]));
    assert_eq!(imported["subtractive_selectors"], json!([".ad"]));
    assert_eq!(tag_titles(&app, &imported).await, ["news"]);

    // The same watch through POST /api/v1/watch.
    let by_api = app
        .create_watch(
            json!({"url": "https://unraid.net/blog", "title": "Unraid | News",
            "include_filters": ["xpath://main"], "subtractive_selectors": [".ad"], "tag": "news"}),
        )
        .await;
    assert_eq!(comparable(watch(&app, &by_api).await), comparable(imported));
}

#[tokio::test]
async fn a_broken_distill_export_is_a_400_in_upstreams_words() {
    let app = spawn_app().await;
    for (body, want) in [
        (
            &b"{not json"[..],
            "Unable to read JSON file, was it broken?",
        ),
        (&b"\xff\xfe"[..], "Unable to read JSON file, was it broken?"),
        (
            &br#"{"client": {}}"#[..],
            "JSON structure looks invalid, was it broken?",
        ),
    ] {
        let (s, r) = post(&app, "/ui/import/distill", "application/json", body.into()).await;
        assert_eq!(s, 400);
        assert_eq!(r["message"], want);
    }
    let (_, all) = app.get_json("/api/v1/watch").await;
    assert_eq!(all, json!({}));
}

#[tokio::test]
async fn the_watch_limit_skips_the_rows_past_it() {
    let app = spawn_app_with(ApiConfig {
        page_watch_limit: Some(2),
        minimum_recheck_secs: 3,
        base_url: None,
        salted_pass: None,
        open_without_password: true,
        api_key_fixed: false,
        trusted_proxy_hops: 0,
        work_after_reply: true,
    })
    .await;
    app.create_watch(json!({"url": "https://first.example/"}))
        .await;
    let (s, r) = post(
        &app,
        "/ui/import/urls",
        "application/json",
        serde_json::to_vec(&json!({"urls": "https://a.example/\nhttps://b.example/"})).unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(r["imported"], 1);
    assert_eq!(
        r["rows"][1]["reason"],
        "Watch limit reached, row was skipped."
    );
}

/// Upstream's xlsx writer (openpyxl) from the changedetection.io venv.
fn openpyxl(rows: Value) -> Vec<u8> {
    let venv = std::env::var("CDIO_VENV").unwrap_or_else(|_| "/tmp/cdio-venv-0.60.10".into());
    let python = PathBuf::from(&venv).join("bin/python");
    assert!(
        python.is_file(),
        "changedetection.io (with openpyxl) is not installed in {venv}: run `make test-deps`"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("book.xlsx");
    let script = r#"
import json, sys
from openpyxl import Workbook
wb = Workbook()
for row in json.loads(sys.argv[1]):
    wb.active.append(row)
wb.save(sys.argv[2])
"#;
    let st = Command::new(python)
        .args(["-c", script, &rows.to_string(), out.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::read(out).unwrap()
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

#[tokio::test]
async fn wachete_export_maps_its_columns() {
    let app = spawn_app().await;
    let book = openpyxl(json!([
        [
            "Name",
            "Url",
            "XPath",
            "Interval (min)",
            "Dynamic wachet",
            "Folder",
            "Id"
        ],
        ["Shop", "https://s.example/", "//p", 1501, true, "shops", 7],
        [null, "https://t.example/", null, 60, false, null, 8],
        ["Bad", "javascript:alert(1)", null, null, null, null, 9],
        [
            "Bad interval",
            "https://u.example/",
            null,
            "soon",
            null,
            null,
            10
        ]
    ]));
    let (s, r) = post(&app, "/ui/import/xlsx?mapping=wachete", XLSX, book).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["imported"], 2, "{r}");
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows[0]["row"], 2);
    let w = watch(&app, rows[0]["uuid"].as_str().unwrap()).await;
    assert_eq!(w["title"], "Shop");
    assert_eq!(w["include_filters"], json!(["//p"]));
    assert_eq!(w["fetch_backend"], "html_webdriver");
    assert_eq!(
        w["time_between_check"],
        json!({"weeks": 0, "days": 1, "hours": 1, "minutes": 1, "seconds": 0})
    );
    assert_eq!(tag_titles(&app, &w).await, ["shops"]);
    let w = watch(&app, rows[1]["uuid"].as_str().unwrap()).await;
    assert_eq!(w["fetch_backend"], "html_requests");
    assert_eq!(
        rows[2]["reason"],
        "URL value was incorrect, row was skipped."
    );
    assert_eq!(rows[3]["row"], 5);
    assert_eq!(
        rows[3]["reason"],
        "check all cell data types are correct, row was skipped."
    );
}

#[tokio::test]
async fn custom_mapping_reads_the_columns_it_names() {
    let app = spawn_app().await;
    let book = openpyxl(json!([
        ["Where", "What", "Every"],
        ["https://a.example/", "A", 90],
        ["https://b.example/", "B", null]
    ]));
    let (s, r) = post(
        &app,
        "/ui/import/xlsx?mapping=custom&col_1=url&col_2=title&col_3=interval_minutes",
        XLSX,
        book.clone(),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["imported"], 2);
    // The header row is data: its URL cell is reported.
    assert_eq!(r["rows"][0]["status"], "skipped");
    let w = watch(&app, r["rows"][1]["uuid"].as_str().unwrap()).await;
    assert_eq!(w["title"], "A");
    assert_eq!(w["time_between_check"]["hours"], 1);
    assert_eq!(w["time_between_check"]["minutes"], 30);

    for (q, want) in [
        ("", "mapping: required"),
        ("?mapping=other", "mapping: 'other'"),
        ("?mapping=custom&col_2=title", "a column of type url"),
        ("?mapping=custom&col_0=url", "col_0: the column number"),
        (
            "?mapping=custom&col_1=url&col_2=price",
            "unknown column type 'price'",
        ),
        (
            "?mapping=custom&col_1=url&col_1=title",
            "col_1: given twice",
        ),
        ("?mapping=wachete&col_1=url", "only a custom mapping"),
        ("?mapping=wachete&sheet=2", "sheet: not a parameter"),
    ] {
        let (s, r) = post(&app, &format!("/ui/import/xlsx{q}"), XLSX, book.clone()).await;
        assert_eq!(s, 400, "{q}");
        assert!(r["message"].as_str().unwrap().contains(want), "{q}: {r}");
    }
    let (s, r) = post(
        &app,
        "/ui/import/xlsx?mapping=wachete",
        XLSX,
        b"PK junk".to_vec(),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("Unable to read export XLSX file"),
        "{r}"
    );
}

#[tokio::test]
async fn past_5000_urls_the_rest_is_one_row_to_import_again() {
    let app = spawn_app().await;
    let list: String = (0..5003)
        .map(|i| format!("https://e.example/{i}\n"))
        .collect();
    let (s, r) = post(
        &app,
        "/ui/import/urls",
        "application/json",
        serde_json::to_vec(&json!({"urls": list})).unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(r["imported"], 5000);
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5001);
    assert_eq!(rows[5000]["row"], 5001);
    assert_eq!(rows[5000]["rest"], true);
    assert!(rows[..5000].iter().all(|r| r.get("rest").is_none()));
}
