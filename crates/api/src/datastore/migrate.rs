//! Upstream's own load-time migrations that change what a value means, applied to a datastore
//! read from an older release before it is mapped (upstream runs them on load, by schema
//! version; each one here leaves a current value as it is, so they run on every datastore).
//! Upstream's numbers: `update_20` (page title in list), `update_21` (time zone), `update_23`
//! (notification format labels), `update_24` (RSS format), `update_30` (restock settings),
//! `update_31` (LLM keys), `update_33` (restock prices); `update_25` (a processor's history
//! index) is [`super::read::history_index_for`].

use serde_json::{Map, Value};

use super::read::Datastore;

/// Keys upstream wrote into documents for its own bookkeeping, meaning nothing to a reader.
const INTERNAL_KEYS: &[&str] = &["datastore_path"];

/// `update_23`: the formats as labels (what the settings form once stored) to their keys.
fn format_key(v: &str) -> Option<&'static str> {
    Some(match v {
        "Plain Text" | "Plain text" | "Text" => "text",
        "HTML" => "html",
        "HTML Color" => "htmlcolor",
        "Markdown to HTML" | "Markdown" => "markdown",
        _ => return None,
    })
}

fn fix_format(doc: &mut Map<String, Value>) {
    if let Some(Value::String(f)) = doc.get("notification_format")
        && let Some(key) = format_key(f)
    {
        doc.insert("notification_format".into(), Value::String(key.into()));
    }
}

/// An item's keys as upstream reads them today.
pub(super) fn item(doc: &mut Map<String, Value>, is_tag: bool) {
    for k in INTERNAL_KEYS {
        doc.remove(*k);
    }
    fix_format(doc);
    // 0.50 wrote the last reply's type as `content_type`; 0.60 reads `content-type`.
    if let Some(v) = doc.remove("content_type")
        && doc.get("content-type").is_none_or(Value::is_null)
    {
        doc.insert("content-type".into(), v);
    }
    if let Some(v) = doc.remove("extract_title_as_title")
        && v.as_bool() == Some(true)
    {
        doc.entry("use_page_title_in_list")
            .or_insert(Value::Bool(true));
    }
    if let Some(settings) = doc.remove("restock_settings")
        && !settings.is_null()
    {
        // Watches: upstream moves it into `restock_diff.json` (read under the processor's
        // name); tags keep it inline under the API's name.
        let key = match is_tag {
            true => "processor_config_restock_diff",
            false => "__restock_settings",
        };
        doc.entry(key).or_insert(settings);
    }
    if let Some(Value::Object(restock)) = doc.get_mut("restock")
        && let Some(old) = restock.remove("original_price")
    {
        restock.entry("last_price").or_insert(old);
        restock.remove("prev_price");
    }
}

pub fn apply(ds: &mut Datastore) {
    for doc in ds.watches.values_mut() {
        item(doc, false);
    }
    for doc in ds.tags.values_mut() {
        item(doc, true);
    }
    let Some(app) = ds
        .settings
        .as_mut()
        .and_then(|s| s.get_mut("application"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    fix_format(app);
    if let Some(Value::String(f)) = app.get("rss_content_format")
        && !["text", "html", "htmlcolor"].contains(&f.as_str())
    {
        let key = if f.contains("html") {
            "htmlcolor"
        } else {
            "text"
        };
        app.insert("rss_content_format".into(), Value::String(key.into()));
    }
    if let Some(tz) = app.remove("timezone")
        && !tz.is_null()
    {
        app.entry("scheduler_timezone_default").or_insert(tz);
    }
    if let Some(v) = app.remove("extract_title_as_title")
        && let Some(Value::Object(ui)) = app.get_mut("ui")
    {
        ui.insert("use_page_title_in_list".into(), v);
    }
    let flat: Vec<String> = app
        .keys()
        .filter(|k| k.starts_with("llm_"))
        .cloned()
        .collect();
    if !flat.is_empty() {
        let mut nested = match app.remove("llm") {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        for k in flat {
            if let Some(v) = app.remove(&k) {
                nested.insert(k.trim_start_matches("llm_").to_string(), v);
            }
        }
        app.insert("llm".into(), Value::Object(nested));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn older_values_read_as_upstream_reads_them_now_and_current_ones_stay() {
        let mut ds = Datastore {
            root: std::path::PathBuf::new(),
            layout: "url-watches.json",
            settings: Some(json!({"application": {
                "notification_format": "HTML Color", "rss_content_format": "plaintext",
                "timezone": "Europe/Berlin", "extract_title_as_title": true,
                "ui": {"use_page_title_in_list": false},
                "llm_enabled": true, "llm": {"model": "m"}
            }})),
            watches: BTreeMap::from([
                (
                    "w".to_string(),
                    obj(
                        json!({"notification_format": "Markdown", "content_type": "text/html",
                        "extract_title_as_title": true, "processor": "restock_diff",
                        "restock_settings": {"in_stock_processing": "all_changes"},
                        "restock": {"price": 2.0, "original_price": 1.5}}),
                    ),
                ),
                (
                    "current".to_string(),
                    obj(
                        json!({"notification_format": "System default", "content-type": "a/b",
                        "content_type": "c/d"}),
                    ),
                ),
            ]),
            tags: BTreeMap::from([(
                "t".to_string(),
                obj(
                    json!({"datastore_path": "/datastore", "notification_format": "Plain Text",
                    "restock_settings": {"follow_price_changes": false}}),
                ),
            )]),
            watch_files: BTreeMap::new(),
            unreadable: Vec::new(),
        };
        apply(&mut ds);
        let app = &ds.settings.as_ref().unwrap()["application"];
        assert_eq!(app["notification_format"], "htmlcolor");
        assert_eq!(app["rss_content_format"], "text");
        assert_eq!(app["scheduler_timezone_default"], "Europe/Berlin");
        assert_eq!(app["ui"]["use_page_title_in_list"], true);
        assert_eq!(app["llm"], json!({"model": "m", "enabled": true}));
        assert!(app.get("llm_enabled").is_none() && app.get("timezone").is_none());
        let w = &ds.watches["w"];
        assert_eq!(w["notification_format"], "markdown");
        assert_eq!(w["content-type"], "text/html");
        assert_eq!(w["use_page_title_in_list"], true);
        assert_eq!(
            w["__restock_settings"]["in_stock_processing"],
            "all_changes"
        );
        assert_eq!(w["restock"], json!({"price": 2.0, "last_price": 1.5}));
        let current = &ds.watches["current"];
        assert_eq!(current["notification_format"], "System default");
        assert_eq!(current["content-type"], "a/b", "the current key wins");
        let t = &ds.tags["t"];
        assert!(t.get("datastore_path").is_none());
        assert_eq!(t["notification_format"], "text");
        assert_eq!(
            t["processor_config_restock_diff"]["follow_price_changes"],
            false
        );

        // A current datastore's values are left as they are.
        let mut now = Datastore {
            settings: Some(
                json!({"application": {"rss_content_format": "html", "notification_format": "html"}}),
            ),
            watches: BTreeMap::new(),
            tags: BTreeMap::new(),
            ..ds
        };
        apply(&mut now);
        let app = &now.settings.as_ref().unwrap()["application"];
        assert_eq!(
            (
                app["rss_content_format"].as_str(),
                app["notification_format"].as_str()
            ),
            (Some("html"), Some("html"))
        );
    }
}
