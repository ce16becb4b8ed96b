//! A watch's live state as the dashboard shows it: the payload of the Socket.IO `watch_update`
//! event and of each row of `GET /ui/watches`, derived from one stored item. One function serves
//! both so that a row loaded over REST and a row updated by the socket never disagree.

use changewatch_core::diff::escape_html;
use changewatch_core::model::{HistoryInfo, TextOrFalse, Watch, no_render};
use changewatch_core::schedule::timeago;
use changewatch_store::Item;
use serde_json::{Map, Value, json};

use crate::routes::watches::history_info;

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

/// A watch's history summary (from the item, never a second read).
pub fn history_of(item: &Item) -> HistoryInfo {
    history_info(item)
}

/// The watch of a stored item; `None` for a document that does not decode (logged).
pub fn decode_watch_doc(item: &Item) -> Option<Watch> {
    serde_json::from_value(item.doc.clone())
        .inspect_err(|e| tracing::warn!(watch_id = %item.key.id, error = %e, "undecodable watch"))
        .ok()
}

/// Whether the watch counts as an unread change (upstream's `unread_changes_count`).
pub fn unread(watch: &Watch, history: &HistoryInfo) -> bool {
    history.count >= 2 && !watch.viewed(history)
}

/// The `watch` object of `watch_update` (every upstream field) plus what the dashboard needs to
/// draw a row it has not seen yet (`url`, `title`, `tags`, …); upstream clients ignore extras.
pub fn watch_status(item: &Item, watch: &Watch, now: i64) -> Map<String, Value> {
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
    let mut m = Map::new();
    m.insert("checking_now".into(), json!(schedule.leased(now)));
    m.insert("error_text".into(), json!(errors));
    m.insert("event_timestamp".into(), json!(event_timestamp()));
    m.insert("fetch_time".into(), json!(watch.fetch_time));
    m.insert("has_error".into(), json!(!errors.is_empty()));
    m.insert("has_favicon".into(), json!(false));
    m.insert("history_n".into(), json!(history.count));
    m.insert(
        "last_changed_text".into(),
        json!(if history.count >= 2 {
            ago(last_changed)
        } else {
            "Not yet".to_string()
        }),
    );
    m.insert("last_checked".into(), json!(watch.last_checked));
    m.insert("last_checked_text".into(), json!(ago(watch.last_checked)));
    m.insert("notification_muted".into(), json!(watch.notification_muted));
    m.insert("paused".into(), json!(watch.paused));
    m.insert("queued".into(), json!(schedule.queued_at.is_some()));
    m.insert("unviewed".into(), json!(watch.has_unviewed(&history)));
    m.insert("uuid".into(), json!(item.key.id));
    // Extras for the dashboard.
    m.insert("url".into(), json!(watch.url));
    m.insert("link".into(), json!(watch.link(&no_render)));
    m.insert("title".into(), json!(watch.title));
    m.insert("page_title".into(), json!(watch.page_title));
    m.insert("tags".into(), json!(watch.tags));
    m.insert("last_changed".into(), json!(last_changed));
    m.insert("last_error".into(), json!(watch.last_error));
    m
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
    fn error_text_escapes() {
        let w = Watch {
            last_error: TextOrFalse::text("<img src=x onerror=alert(1)>"),
            ..Watch::default()
        };
        assert_eq!(error_text(&w), "&lt;img src=x onerror=alert(1)&gt;");
    }
}
