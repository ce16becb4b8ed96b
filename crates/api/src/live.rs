//! A watch's live state as the dashboard shows it: the payload of the Socket.IO `watch_update`
//! event and of each row of `GET /ui/watches`, derived from one stored item. One function serves
//! both so that a row loaded over REST and a row updated by the socket never disagree.

use changewatch_core::diff::escape_html;
use changewatch_core::model::{
    HistoryInfo, Restock, TextOrFalse, Watch, has_template_markup, no_render,
};
use changewatch_core::schedule::timeago;
use changewatch_store::Item;
use serde::Serialize;
use serde_json::{Value, json};

use crate::stored::history_info;

/// Seconds since the epoch with a fraction, like Python's `time.time()` in upstream's events.
pub fn event_timestamp() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Upstream's `error_text`: HTML, with every stored text escaped (page and server text is
/// attacker-controlled).
pub fn error_text(watch: &Watch) -> String {
    let mut out = String::new();
    if let Some(e) = watch.last_error.as_str() {
        out.push_str(&escape_html(e));
    }
    if let Some(TextOrFalse::Text(n)) = &watch.last_notification_error
        && !n.is_empty()
    {
        out.push_str(&format!(
            "<div class=\"notification-error\">{}</div>",
            escape_html(n)
        ));
    }
    out
}

/// The watch of a stored item; `None` for a document that does not decode (logged).
pub fn decode_watch_doc(item: &Item) -> Option<Watch> {
    changewatch_engine::docs::decode(item)
        .inspect_err(|e| tracing::warn!(watch_id = %item.key.id, error = %e, "undecodable watch"))
        .ok()
}

/// Whether the watch counts as an unread change (upstream's `unread_changes_count`).
pub fn unread(watch: &Watch, history: &HistoryInfo) -> bool {
    unread_at(watch.last_viewed, history)
}

/// [`unread`] for a watch last viewed at `last_viewed`.
pub fn unread_at(last_viewed: i64, history: &HistoryInfo) -> bool {
    history.count >= 2 && !history.seen_at(last_viewed)
}

/// The `watch` object of `watch_update` (every upstream field) plus what the dashboard needs to
/// draw a row it has not seen yet (`url`, `title`, `tags`, …); upstream clients ignore extras.
/// The dashboard's `WatchRow` (`dashboard/src/types.ts`) is checked against this struct by a
/// test (`tests/watch_row_type.rs`), so a renamed or retyped field fails the build there.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WatchRow {
    pub checking_now: bool,
    /// HTML (escaped stored text): upstream's `error_text`.
    pub error_text: String,
    pub event_timestamp: f64,
    pub fetch_time: f64,
    pub has_error: bool,
    pub has_favicon: bool,
    pub history_n: usize,
    pub last_changed_text: String,
    pub last_checked: i64,
    pub last_checked_text: String,
    pub notification_muted: bool,
    pub paused: bool,
    pub queued: bool,
    pub unviewed: bool,
    pub uuid: String,
    // Extras for the dashboard.
    pub url: String,
    /// Left out for a templated URL, which only the sandbox renders: the dashboard keeps
    /// the rendered one its list brought (`/ui/watches` renders it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    pub title: Option<String>,
    pub page_title: Option<String>,
    /// The watch's own choice; the list's label shows `page_title` when it or the settings'
    /// `ui.use_page_title_in_list` is on, as upstream's row template decides.
    pub use_page_title_in_list: Option<bool>,
    pub tags: Vec<String>,
    pub last_changed: i64,
    pub last_error: TextOrFalse,
    /// `text_json_diff` or `restock_diff`: a restock row shows stock and price.
    pub processor: String,
    /// A restock row's last extraction (in stock, price, currency, last price). Upstream's
    /// API keeps `restock` internal and its list renders it on the server; here the list is
    /// drawn in the browser, so the row carries it. Left out for other processors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restock: Option<Restock>,
}

/// A watch's row, from its stored item (history summary and schedule included).
pub fn watch_row(item: &Item, watch: &Watch, now: i64) -> WatchRow {
    let history = history_info(item);
    let schedule = item.schedule.clone().unwrap_or_default();
    let errors = error_text(watch);
    let last_changed = watch.last_changed(&history);
    // A snapshot can be stamped a second ahead of the clock (two checks in one second): that
    // is "just now", not "a while" in the future.
    let ago = |t: i64| {
        if t > 0 {
            timeago(t.min(now), now)
        } else {
            "Not yet".to_string()
        }
    };
    WatchRow {
        checking_now: schedule.leased(now),
        has_error: !errors.is_empty(),
        error_text: errors,
        event_timestamp: event_timestamp(),
        fetch_time: watch.fetch_time,
        has_favicon: false,
        history_n: history.count,
        last_changed_text: if history.count >= 2 {
            ago(last_changed)
        } else {
            "Not yet".to_string()
        },
        last_checked: watch.last_checked,
        last_checked_text: ago(watch.last_checked),
        notification_muted: watch.notification_muted,
        paused: watch.paused,
        queued: schedule.queued_at.is_some(),
        unviewed: watch.has_unviewed(&history),
        uuid: item.key.id.clone(),
        url: watch.url.clone(),
        link: (!has_template_markup(&watch.url)).then(|| watch.link(&no_render)),
        title: watch.title.clone(),
        page_title: watch.page_title.clone(),
        use_page_title_in_list: watch.use_page_title_in_list,
        tags: watch.tags.clone(),
        last_changed,
        last_error: watch.last_error.clone(),
        processor: watch.processor.clone(),
        restock: (watch.processor == "restock_diff")
            .then(|| watch.restock.clone().unwrap_or_default()),
    }
}

/// Counters of `general_stats_update`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub count_errors: usize,
    pub unread_changes_count: usize,
}

impl Stats {
    pub fn to_json(self) -> Value {
        json!({
            "count_errors": self.count_errors,
            "unread_changes_count": self.unread_changes_count,
        })
    }
}

/// Upstream's sanitising of `watch_small_status_comment`: letters, digits, space and `().,/:-`,
/// at most 80 characters.
pub fn sanitize_status(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || " ().,/:-".contains(*c))
        .take(80)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_comment_is_sanitised() {
        assert_eq!(
            sanitize_status("<b>Fetching…</b> page (1/2)"),
            "bFetching/b page (1/2)"
        );
        assert_eq!(sanitize_status(&"x".repeat(100)).len(), 80);
    }

    #[test]
    fn a_live_row_leaves_a_templated_link_out() {
        let row = |url: &str| {
            let item = changewatch_store::Item {
                key: changewatch_store::Key::watch("t", "w"),
                version: 1,
                doc: serde_json::json!({}).into(),
                schedule: None,
                history: Default::default(),
            };
            let watch = Watch {
                url: url.into(),
                ..Watch::default()
            };
            serde_json::to_value(watch_row(&item, &watch, 0)).unwrap_or_default()
        };
        let plain = row("https://example.com/a");
        assert_eq!(plain["link"], "https://example.com/a");
        let templated = row("https://example.com/{{ 1 + 1 }}");
        assert!(templated.get("link").is_none(), "{templated}");
        assert_eq!(templated["url"], "https://example.com/{{ 1 + 1 }}");
    }

    #[test]
    fn error_text_escapes() {
        let w = Watch {
            last_error: TextOrFalse::text("<img src=x onerror=alert(1)>"),
            ..Watch::default()
        };
        assert_eq!(error_text(&w), "&lt;img src=x onerror=alert(1)&gt;");
    }
}
