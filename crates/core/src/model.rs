//! The watch, tag and global-settings data model, and the REST API v1 rules for writing it.
//!
//! Everything here mirrors changedetection.io's JSON exactly (keys, defaults, `str|false`
//! fields), because existing API clients, backups and scripts read and write that JSON.
//!
//! - [`Watch`], [`Tag`], [`Settings`]: what the store persists. The system-managed fields
//!   (`restock`, `last_check_status`, `llm_evaluation_cache`, ...) live in the same struct so
//!   the store can persist one value per watch; [`Watch::api_view`] leaves them out.
//! - [`create_watch_from_json`], [`apply_watch_update`], [`create_tag_from_json`],
//!   [`apply_tag_update`]: POST / PUT semantics with upstream's checks, in upstream's order,
//!   and upstream's error strings ([`ApiValidationError`]).
//! - [`processor_settings`], [`resolve_notification_settings`], [`resolved_restock_config`]:
//!   the watch > tag > global cascades.
//!
//! Templates: only their syntax is checked here ([`check_template_syntax`]); rendering belongs
//! to the notification engine, so the functions that need a rendered URL take a renderer.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::pipeline::ProcessorSettings;

pub mod openapi;

// -------------------------------------------------------------------------------------------
// Constants shared with the rest of the system
// -------------------------------------------------------------------------------------------

/// A watch's `notification_format` meaning "use the tag / global format".
pub const NOTIFICATION_FORMAT_SYSTEM_DEFAULT: &str = "System default";
/// Global default notification format.
pub const DEFAULT_NOTIFICATION_FORMAT: &str = "htmlcolor";
pub const DEFAULT_NOTIFICATION_BODY: &str = "{{watch_url}} had a change.\n---\n{{diff}}\n---\n";
pub const DEFAULT_NOTIFICATION_TITLE: &str = "ChangeDetection.io Notification - {{watch_url}}";
/// Accepted `notification_format` values, in upstream's order (also the diff API's `format`).
pub const NOTIFICATION_FORMATS: &[&str] = &[
    "text",
    "html",
    "htmlcolor",
    "markdown",
    NOTIFICATION_FORMAT_SYSTEM_DEFAULT,
];
/// Processors the API accepts, in the spec's enum order (the order shows in error messages).
pub const PROCESSORS: &[&str] = &["restock_diff", "text_json_diff"];
pub const DEFAULT_PROCESSOR: &str = "text_json_diff";
pub const HTTP_METHODS: &[&str] = &["GET", "POST", "DELETE", "PUT"];
pub const DEFAULT_USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/87.0.4280.66 Safari/537.36";
/// Filters injected when the user accepted LD-JSON price tracking (`track_ldjson_price_data`).
pub const LD_JSON_PRODUCT_OFFER_SELECTORS: &[&str] = &["json:$..offers", "json:$..Offers"];
/// `track_ldjson_price_data` value set when the user accepts the price-tracking prompt.
pub const PRICE_DATA_TRACK_ACCEPT: &str = "accepted";
pub const PRICE_DATA_TRACK_REJECT: &str = "rejected";

/// Written by workers, never part of the public API: stripped from GET, silently dropped from
/// POST/PUT so that a GET -> PUT round trip does not trip the unknown-field check.
pub const SYSTEM_MANAGED_FIELDS: &[&str] = &[
    "last_check_status",
    "last_filter_config_hash",
    "restock",
    "_llm_result",
    "_llm_intent",
    "_llm_change_summary",
    "llm_prefilter",
    "llm_evaluation_cache",
    "llm_last_tokens_used",
    "llm_tokens_used_cumulative",
];

/// `readOnly` in the spec's Watch schema (WatchBase + Watch) plus the computed GET fields.
/// Dropped silently from PUT bodies so clients can send back what they read.
const READONLY_WATCH_FIELDS: &[&str] = &[
    "uuid",
    "date_created",
    "has_ldjson_price_data",
    "llm_prefilter",
    "llm_evaluation_cache",
    "llm_last_tokens_used",
    "llm_tokens_used_cumulative",
    "llm_tokens_this_period",
    "llm_tokens_period_key",
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
];

/// Writable on PUT but meaningless for a new watch: dropped from POST so that a watch read
/// back with GET can be posted as a copy.
const COPY_DROPPED_FIELDS: &[&str] = &["last_viewed"];

/// Upstream also drops every Python `@property` name of its Watch class from PUT bodies; a
/// client may well have stored one of these next to the watch JSON.
const WATCH_PROPERTY_NAMES: &[&str] = &[
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
    "history_n",
    "is_pdf",
    "is_source_type_url",
    "label",
    "last_changed",
    "link",
    "newest_history_key",
    "open_link",
    "open_link_override",
    "snapshot_error_screenshot_ctime",
    "snapshot_screenshot_ctime",
    "snapshot_text_ctime",
    "viewed",
    "was_edited",
];

/// `readOnly` in the spec's Tag schema (it inherits only WatchBase's).
const READONLY_TAG_FIELDS: &[&str] = &[
    "uuid",
    "date_created",
    "has_ldjson_price_data",
    "llm_prefilter",
    "llm_evaluation_cache",
    "llm_last_tokens_used",
    "llm_tokens_used_cumulative",
    "llm_tokens_this_period",
    "llm_tokens_period_key",
];

/// Watch runtime fields a tag inherits from the shared base but that mean nothing for a tag;
/// GET /tag/{uuid} hides them.
const TAG_HIDDEN_FIELDS: &[&str] = &[
    "browser_steps_last_error_step",
    "check_count",
    "consecutive_filter_failures",
    "content-type",
    "fetch_time",
    "last_changed",
    "last_checked",
    "last_error",
    "last_notification_error",
    "last_viewed",
    "notification_alert_count",
    "page_title",
    "previous_md5",
    "remote_server_reply",
];

fn now_epoch() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

// -------------------------------------------------------------------------------------------
// Small value types
// -------------------------------------------------------------------------------------------

/// A Python `str|false` field: `false` means "none", and clients test for exactly `false`
/// (`last_error`, `previous_md5`; `last_notification_error` wraps it in an `Option` for its
/// third state, `null`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TextOrFalse {
    #[default]
    False,
    Text(String),
}

impl TextOrFalse {
    pub fn text(s: impl Into<String>) -> Self {
        TextOrFalse::Text(s.into())
    }

    /// The text, when there is one worth showing (upstream treats `""` as falsy too).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            TextOrFalse::Text(s) if !s.is_empty() => Some(s),
            _ => None,
        }
    }

    pub fn is_set(&self) -> bool {
        self.as_str().is_some()
    }
}

impl From<Option<String>> for TextOrFalse {
    fn from(v: Option<String>) -> Self {
        v.map_or(TextOrFalse::False, TextOrFalse::Text)
    }
}

impl Serialize for TextOrFalse {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            TextOrFalse::False => s.serialize_bool(false),
            TextOrFalse::Text(t) => s.serialize_str(t),
        }
    }
}

impl<'de> Deserialize<'de> for TextOrFalse {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Null | Value::Bool(false) => Ok(TextOrFalse::False),
            Value::String(s) => Ok(TextOrFalse::Text(s)),
            other => Err(de::Error::custom(format!(
                "expected a string, false or null, got {other}"
            ))),
        }
    }
}

/// `track_ldjson_price_data`: the spec says boolean, the code stores `"accepted"` /
/// `"rejected"`; both must survive a round trip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BoolOrText {
    Bool(bool),
    Text(String),
}

/// Check interval of a watch (used when `time_between_check_use_default` is false) or the
/// global default. Each unit is optional because the UI stores untouched inputs as null.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimeBetweenCheck {
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub weeks: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub days: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub hours: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub minutes: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub seconds: Option<i64>,
}

impl TimeBetweenCheck {
    pub fn hours(h: i64) -> Self {
        TimeBetweenCheck {
            hours: Some(h),
            ..Default::default()
        }
    }

    /// Total interval in seconds; `None` when nothing usable is set (upstream's
    /// `has_empty_checktime`), so the caller must fall back to the global interval.
    pub fn seconds(&self) -> Option<u64> {
        let units = [
            (self.weeks, 604_800i64),
            (self.days, 86_400),
            (self.hours, 3_600),
            (self.minutes, 60),
            (self.seconds, 1),
        ];
        let total = units.iter().fold(0i64, |acc, (v, mul)| {
            acc.saturating_add(v.unwrap_or(0).saturating_mul(*mul))
        });
        u64::try_from(total).ok().filter(|t| *t > 0)
    }

    /// Whether every unit is null or zero (the "must specify an interval" condition).
    pub fn is_empty(&self) -> bool {
        [
            self.weeks,
            self.days,
            self.hours,
            self.minutes,
            self.seconds,
        ]
        .iter()
        .all(|v| v.unwrap_or(0) <= 0)
    }
}

/// Length of a day's check window; strings because the UI form stores them that way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScheduleDuration {
    pub hours: String,
    pub minutes: String,
}

impl Default for ScheduleDuration {
    fn default() -> Self {
        ScheduleDuration {
            hours: "24".into(),
            minutes: "00".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DaySchedule {
    pub enabled: bool,
    /// "HH:MM" in the schedule's timezone.
    pub start_time: String,
    pub duration: ScheduleDuration,
}

impl Default for DaySchedule {
    fn default() -> Self {
        DaySchedule {
            enabled: true,
            start_time: "00:00".into(),
            duration: ScheduleDuration::default(),
        }
    }
}

/// Weekly window outside which scheduled checks are skipped (manual rechecks still run).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimeScheduleLimit {
    pub enabled: bool,
    pub monday: DaySchedule,
    pub tuesday: DaySchedule,
    pub wednesday: DaySchedule,
    pub thursday: DaySchedule,
    pub friday: DaySchedule,
    pub saturday: DaySchedule,
    pub sunday: DaySchedule,
    /// IANA name; absent or empty means the global `scheduler_timezone_default`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

impl TimeScheduleLimit {
    /// Days in `chrono::Weekday` order (Monday first).
    pub fn days(&self) -> [(&'static str, &DaySchedule); 7] {
        [
            ("monday", &self.monday),
            ("tuesday", &self.tuesday),
            ("wednesday", &self.wednesday),
            ("thursday", &self.thursday),
            ("friday", &self.friday),
            ("saturday", &self.saturday),
            ("sunday", &self.sunday),
        ]
    }

    fn day_mut(&mut self, name: &str) -> Option<&mut DaySchedule> {
        Some(match name {
            "monday" => &mut self.monday,
            "tuesday" => &mut self.tuesday,
            "wednesday" => &mut self.wednesday,
            "thursday" => &mut self.thursday,
            "friday" => &mut self.friday,
            "saturday" => &mut self.saturday,
            "sunday" => &mut self.sunday,
            _ => return None,
        })
    }
}

/// One browser automation step. All three keys are required by the API; null is allowed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BrowserStep {
    pub operation: Option<String>,
    pub selector: Option<String>,
    pub optional_value: Option<String>,
}

impl BrowserStep {
    /// A step that does something: the UI leaves "Choose one" placeholders behind.
    pub fn is_meaningful(&self) -> bool {
        matches!(self.operation.as_deref(), Some(op) if !op.is_empty() && op != "Choose one")
    }
}

/// Upstream's cleanup of submitted steps: drop placeholders and a leading "Goto site" (the
/// fetch itself already goes to the site).
pub fn valid_browser_steps(steps: Vec<BrowserStep>) -> Vec<BrowserStep> {
    let mut out: Vec<BrowserStep> = steps.into_iter().filter(|s| s.is_meaningful()).collect();
    if out
        .first()
        .is_some_and(|s| s.operation.as_deref() == Some("Goto site"))
    {
        out.remove(0);
    }
    out
}

/// One rule of the conditions engine (json-logic on the filtered text).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Condition {
    pub field: String,
    pub operator: String,
    pub value: String,
}

/// Last restock extraction (system-managed, shown by the UI, not the API).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Restock {
    pub in_stock: Option<bool>,
    pub price: Option<f64>,
    pub currency: Option<String>,
    /// Price at the previous check, for the %-threshold and the list's up/down arrow.
    pub last_price: Option<f64>,
}

/// `processor_config_restock_diff`: how the restock processor decides a change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RestockConfig {
    /// `in_stock_only` | `all_changes` | `off`.
    pub in_stock_processing: String,
    pub follow_price_changes: bool,
    pub price_change_min: Option<f64>,
    pub price_change_max: Option<f64>,
    pub price_change_threshold_percent: Option<f64>,
}

impl Default for RestockConfig {
    fn default() -> Self {
        RestockConfig {
            in_stock_processing: "in_stock_only".into(),
            follow_price_changes: true,
            price_change_min: None,
            price_change_max: None,
            price_change_threshold_percent: None,
        }
    }
}

/// Deserializers that accept the number shapes older datastores contain (floats where an
/// integer is meant, null for zero) instead of refusing to load a watch.
mod lenient {
    use serde::{Deserialize, Deserializer, de};
    use serde_json::Value;

    pub(super) fn value_to_i64(v: &Value) -> Option<i64> {
        match v {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.trunc() as i64)
            }),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let v = Value::deserialize(d)?;
        match v {
            Value::Null => Ok(0),
            Value::Bool(b) => Ok(i64::from(b)),
            other => value_to_i64(&other).ok_or_else(|| de::Error::custom("expected an integer")),
        }
    }

    pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let v = Value::deserialize(d)?;
        match v {
            Value::Null => Ok(None),
            other => value_to_i64(&other)
                .map(Some)
                .ok_or_else(|| de::Error::custom("expected an integer or null")),
        }
    }

    pub fn f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(0.0),
            Value::Number(n) => n
                .as_f64()
                .ok_or_else(|| de::Error::custom("expected a number")),
            _ => Err(de::Error::custom("expected a number")),
        }
    }
}

// -------------------------------------------------------------------------------------------
// Watch
// -------------------------------------------------------------------------------------------

/// A watched URL and its settings, serialized with upstream's exact keys (`watch.json`).
///
/// Fields are in key order. Scheduling state the store adds later (next check time, queue
/// position) does not belong here: it is runtime state, not part of the watch's JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Watch {
    /// Request body; a Jinja2 template.
    pub body: Option<String>,
    pub browser_steps: Vec<BrowserStep>,
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub browser_steps_last_error_step: Option<i64>,
    #[serde(deserialize_with = "lenient::i64")]
    pub check_count: i64,
    /// Only a line never seen in any snapshot counts as a change.
    pub check_unique_lines: bool,
    pub conditions: Vec<Condition>,
    /// `ALL` | `ANY`.
    pub conditions_match_logic: String,
    #[serde(deserialize_with = "lenient::i64")]
    pub consecutive_filter_failures: i64,
    /// Lowercased Content-Type of the last reply; also decides PDF handling.
    #[serde(rename = "content-type")]
    pub content_type: Option<String>,
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub date_created: Option<i64>,
    pub extract_lines_containing: Vec<String>,
    pub extract_text: Vec<String>,
    /// `system` means "the global fetch_backend".
    pub fetch_backend: String,
    #[serde(deserialize_with = "lenient::f64")]
    pub fetch_time: f64,
    pub filter_failure_notification_send: bool,
    pub filter_text_added: bool,
    pub filter_text_removed: bool,
    pub filter_text_replaced: bool,
    pub follow_price_changes: bool,
    pub has_ldjson_price_data: Option<bool>,
    /// Extra request headers; values are Jinja2 templates.
    pub headers: BTreeMap<String, String>,
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub history_snapshot_max_length: Option<i64>,
    pub ignore_status_codes: Option<bool>,
    pub ignore_text: Vec<String>,
    pub in_stock_only: bool,
    pub include_filters: Vec<String>,
    /// Set when a check *starts*, so an in-flight watch is not queued again.
    #[serde(deserialize_with = "lenient::i64")]
    pub last_checked: i64,
    pub last_error: TextOrFalse,
    pub last_notification_error: Option<TextOrFalse>,
    /// A watch is "viewed" when this is >= the newest snapshot's timestamp.
    #[serde(deserialize_with = "lenient::i64")]
    pub last_viewed: i64,
    /// Human-facing URL opened instead of `url` (for API or feed URLs); empty = use `url`.
    pub link_to_open: String,
    pub llm_backend_profile: Option<bool>,
    pub llm_change_summary: String,
    /// `replace` | `append` (to the inherited summary prompt).
    pub llm_change_summary_mode: String,
    pub llm_intent: String,
    /// `GET` | `POST` | `DELETE` | `PUT`.
    pub method: String,
    #[serde(deserialize_with = "lenient::i64")]
    pub notification_alert_count: i64,
    /// null = inherit from tag / global.
    pub notification_body: Option<String>,
    pub notification_format: String,
    pub notification_muted: bool,
    pub notification_screenshot: bool,
    pub notification_title: Option<String>,
    pub notification_urls: Vec<String>,
    pub page_title: Option<String>,
    pub paused: bool,
    /// md5 of the last processed text; `false` until the first unblocked check.
    pub previous_md5: TextOrFalse,
    pub price_change_threshold_percent: Option<f64>,
    pub processor: String,
    /// Key into the proxy list; null = tag / global choice.
    pub proxy: Option<String>,
    pub remote_server_reply: Option<String>,
    pub remove_duplicate_lines: bool,
    pub sort_text_alphabetically: bool,
    /// null = global `strip_ignored_lines`.
    pub strip_ignored_lines: Option<bool>,
    pub subtractive_selectors: Vec<String>,
    /// Deprecated single-tag field, kept because API v1 still accepts it.
    pub tag: String,
    /// Tag UUIDs (not validated: unknown ones are ignored at use).
    pub tags: Vec<String>,
    pub text_should_not_be_present: Vec<String>,
    pub time_between_check: TimeBetweenCheck,
    pub time_between_check_use_default: bool,
    pub time_schedule_limit: TimeScheduleLimit,
    /// User title; wins over `page_title` for display.
    pub title: Option<String>,
    pub track_ldjson_price_data: Option<BoolOrText>,
    pub trigger_text: Vec<String>,
    pub trim_text_whitespace: bool,
    /// May carry a `source:` prefix (keep the raw source) and Jinja2 markup.
    pub url: String,
    pub use_page_title_in_list: Option<bool>,
    pub uuid: String,
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub webdriver_delay: Option<i64>,
    pub webdriver_js_execute_code: Option<String>,

    // ---- readOnly, exposed by GET when present -------------------------------------------
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub llm_tokens_this_period: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm_tokens_period_key: Option<String>,

    /// Upstream keeps this in `<watch dir>/restock_diff.json`, not `watch.json`; the store may
    /// take it out before writing. For a tag it is stored inline, as upstream does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processor_config_restock_diff: Option<RestockConfig>,

    // ---- system-managed: persisted, never exposed or accepted by the API ------------------
    pub llm_prefilter: Option<String>,
    pub llm_evaluation_cache: Map<String, Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub llm_last_tokens_used: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub llm_tokens_used_cumulative: Option<i64>,
    /// HTTP status of the last fetch.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub last_check_status: Option<i64>,
    /// Hash of the merged filter config: the raw-unchanged shortcut is only valid while it holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_filter_config_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restock: Option<Restock>,
    #[serde(rename = "_llm_result", skip_serializing_if = "Option::is_none")]
    pub llm_result: Option<Value>,
    #[serde(rename = "_llm_intent", skip_serializing_if = "Option::is_none")]
    pub llm_intent_state: Option<Value>,
    #[serde(
        rename = "_llm_change_summary",
        skip_serializing_if = "Option::is_none"
    )]
    pub llm_change_summary_state: Option<Value>,
}

impl Default for Watch {
    fn default() -> Self {
        Watch {
            body: None,
            browser_steps: Vec::new(),
            browser_steps_last_error_step: None,
            check_count: 0,
            check_unique_lines: false,
            conditions: Vec::new(),
            conditions_match_logic: "ALL".into(),
            consecutive_filter_failures: 0,
            content_type: None,
            date_created: None,
            extract_lines_containing: Vec::new(),
            extract_text: Vec::new(),
            fetch_backend: "system".into(),
            fetch_time: 0.0,
            // Upstream reads FILTER_FAILURE_NOTIFICATION_SEND_DEFAULT here; the store applies
            // that environment override, the model keeps the documented default.
            filter_failure_notification_send: true,
            filter_text_added: true,
            filter_text_removed: true,
            filter_text_replaced: true,
            follow_price_changes: true,
            has_ldjson_price_data: None,
            headers: BTreeMap::new(),
            history_snapshot_max_length: None,
            ignore_status_codes: None,
            ignore_text: Vec::new(),
            in_stock_only: true,
            include_filters: Vec::new(),
            last_checked: 0,
            last_error: TextOrFalse::False,
            last_notification_error: None,
            last_viewed: 0,
            link_to_open: String::new(),
            llm_backend_profile: Some(true),
            llm_change_summary: String::new(),
            llm_change_summary_mode: "replace".into(),
            llm_intent: String::new(),
            method: "GET".into(),
            notification_alert_count: 0,
            notification_body: None,
            notification_format: NOTIFICATION_FORMAT_SYSTEM_DEFAULT.into(),
            notification_muted: false,
            notification_screenshot: false,
            notification_title: None,
            notification_urls: Vec::new(),
            page_title: None,
            paused: false,
            previous_md5: TextOrFalse::False,
            price_change_threshold_percent: None,
            processor: DEFAULT_PROCESSOR.into(),
            proxy: None,
            remote_server_reply: None,
            remove_duplicate_lines: false,
            sort_text_alphabetically: false,
            strip_ignored_lines: None,
            subtractive_selectors: Vec::new(),
            tag: String::new(),
            tags: Vec::new(),
            text_should_not_be_present: Vec::new(),
            time_between_check: TimeBetweenCheck::default(),
            time_between_check_use_default: true,
            time_schedule_limit: TimeScheduleLimit::default(),
            title: None,
            track_ldjson_price_data: None,
            trigger_text: Vec::new(),
            trim_text_whitespace: false,
            url: String::new(),
            use_page_title_in_list: None,
            uuid: uuid::Uuid::new_v4().to_string(),
            webdriver_delay: None,
            webdriver_js_execute_code: None,
            llm_tokens_this_period: None,
            llm_tokens_period_key: None,
            processor_config_restock_diff: None,
            llm_prefilter: None,
            llm_evaluation_cache: Map::new(),
            llm_last_tokens_used: None,
            llm_tokens_used_cumulative: None,
            last_check_status: None,
            last_filter_config_hash: None,
            restock: None,
            llm_result: None,
            llm_intent_state: None,
            llm_change_summary_state: None,
        }
    }
}

/// What the model needs to know about a watch's snapshot history (kept by the store).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryInfo {
    /// Number of snapshots (`history_n`).
    pub count: usize,
    /// Timestamp of the newest snapshot.
    pub newest: Option<i64>,
}

impl HistoryInfo {
    pub fn new(count: usize, newest: Option<i64>) -> Self {
        HistoryInfo { count, newest }
    }
}

/// Renders a Jinja2 template string (the URL or `link_to_open`) for display. The model does
/// not render templates itself; pass [`no_render`] when no renderer is at hand.
pub type Render<'a> = &'a dyn Fn(&str) -> Result<String, String>;

/// A [`Render`] that leaves templates as they are.
pub fn no_render(template: &str) -> Result<String, String> {
    Ok(template.to_string())
}

impl Watch {
    /// A new watch with upstream's defaults for `url`, created now.
    pub fn new(url: impl Into<String>) -> Self {
        Watch {
            url: url.into(),
            date_created: Some(now_epoch()),
            ..Watch::default()
        }
    }

    /// `source:` URLs keep the raw page source instead of extracted text.
    pub fn is_source_type_url(&self) -> bool {
        self.url.starts_with("source:")
    }

    pub fn is_pdf(&self) -> bool {
        let ct = self
            .content_type
            .as_deref()
            .unwrap_or("")
            .to_ascii_lowercase();
        let ct = if ct == "none" || ct == "null" {
            ""
        } else {
            &ct
        };
        self.url.to_lowercase().ends_with(".pdf")
            || ct.split(';').next().unwrap_or("").trim() == "application/pdf"
    }

    /// The watch's own interval in seconds; `None` when it has none (see
    /// [`TimeBetweenCheck::seconds`]).
    pub fn threshold_seconds(&self) -> Option<u64> {
        self.time_between_check.seconds()
    }

    /// Interval the scheduler uses: global when `time_between_check_use_default`, else the
    /// watch's own (falling back to global when the watch's is empty).
    pub fn effective_check_interval(&self, settings: &Settings) -> Option<u64> {
        let global = settings.requests.time_between_check.seconds();
        if self.time_between_check_use_default {
            global
        } else {
            self.threshold_seconds().or(global)
        }
    }

    /// Schedule window in force: the global one when using global timing, else the watch's.
    pub fn effective_time_schedule_limit<'a>(
        &'a self,
        settings: &'a Settings,
    ) -> Option<&'a TimeScheduleLimit> {
        if self.time_between_check_use_default {
            settings.requests.time_schedule_limit.as_ref()
        } else {
            Some(&self.time_schedule_limit)
        }
    }

    /// `last_changed` of the API: the newest snapshot, but 0 while there is only the
    /// baseline (a first check is not a change).
    pub fn last_changed(&self, history: &HistoryInfo) -> i64 {
        if history.count <= 1 {
            0
        } else {
            history.newest.unwrap_or(0)
        }
    }

    pub fn viewed(&self, history: &HistoryInfo) -> bool {
        self.last_viewed != 0 && self.last_viewed >= history.newest.unwrap_or(0)
    }

    /// Unread change, for the UI and socket events (needs a real change, not a baseline).
    pub fn has_unviewed(&self, history: &HistoryInfo) -> bool {
        history.newest.unwrap_or(0) > self.last_viewed && history.count >= 2
    }

    /// The URL that gets fetched, rendered: `DISABLED` when unsafe, `""` when its template
    /// does not render.
    pub fn link(&self, render: Render<'_>) -> String {
        resolve_link(&self.url, render)
    }

    /// Where a human should be sent: `link_to_open` when set and usable, else [`Self::link`].
    pub fn open_link(&self, render: Render<'_>) -> String {
        let over = self.link_to_open.trim();
        if !over.is_empty() {
            let ready = resolve_link(over, render);
            if !ready.is_empty() && ready != "DISABLED" {
                return ready;
            }
        }
        self.link(render)
    }

    /// Display name: user title, else page title, else the link.
    pub fn label(&self, render: Render<'_>) -> String {
        self.title
            .clone()
            .filter(|t| !t.is_empty())
            .or_else(|| self.page_title.clone().filter(|t| !t.is_empty()))
            .unwrap_or_else(|| self.link(render))
    }

    /// Browser steps that do something (the fetch only needs a browser for these).
    pub fn has_browser_steps(&self) -> bool {
        self.browser_steps
            .iter()
            .any(|s| s.is_meaningful() && s.operation.as_deref() != Some("Goto site"))
    }

    /// Whether only some of added/removed/replaced lines count as changes.
    pub fn has_special_diff_filter_options_set(&self) -> bool {
        !(self.filter_text_added && self.filter_text_removed && self.filter_text_replaced)
    }

    /// Full JSON for GET /watch/{uuid}: stored fields minus system-managed ones, plus the
    /// computed fields. `assigned_tags` are this watch's tags in `self.tags` order (only
    /// those can override the restock config).
    pub fn api_view(
        &self,
        history: &HistoryInfo,
        assigned_tags: &[(&str, &Tag)],
        render: Render<'_>,
    ) -> Value {
        let mut m = to_object(self);
        strip_internal_keys(&mut m);
        m.retain(|k, _| !k.starts_with("processor_config_"));
        m.insert("history_n".into(), Value::from(history.count));
        m.insert(
            "last_changed".into(),
            Value::from(self.last_changed(history)),
        );
        m.insert("viewed".into(), Value::Bool(self.viewed(history)));
        m.insert("link".into(), Value::String(self.link(render)));
        m.insert("open_link".into(), Value::String(self.open_link(render)));
        let (config, source) = resolved_restock_config(self, assigned_tags);
        m.insert("processor_config_restock_diff".into(), config);
        m.insert(
            "processor_config_restock_diff_source".into(),
            Value::String(source),
        );
        Value::Object(m)
    }

    /// One entry of GET /watch. `tag_uuids` includes tags matched by `url_match_pattern`.
    pub fn api_list_entry(
        &self,
        history: &HistoryInfo,
        tag_uuids: &[String],
        render: Render<'_>,
    ) -> Value {
        let mut m = Map::new();
        m.insert(
            "last_changed".into(),
            Value::from(self.last_changed(history)),
        );
        m.insert("last_checked".into(), Value::from(self.last_checked));
        m.insert("last_error".into(), to_value(&self.last_error));
        m.insert("link".into(), Value::String(self.link(render)));
        m.insert("open_link".into(), Value::String(self.open_link(render)));
        m.insert("page_title".into(), to_value(&self.page_title));
        m.insert("tags".into(), to_value(tag_uuids));
        m.insert("title".into(), to_value(&self.title));
        m.insert("url".into(), Value::String(self.url.clone()));
        m.insert("viewed".into(), Value::Bool(self.viewed(history)));
        Value::Object(m)
    }

    /// One entry of GET /search.
    pub fn api_search_entry(&self, history: &HistoryInfo) -> Value {
        let mut m = Map::new();
        m.insert(
            "last_changed".into(),
            Value::from(self.last_changed(history)),
        );
        m.insert("last_checked".into(), Value::from(self.last_checked));
        m.insert("last_error".into(), to_value(&self.last_error));
        m.insert("title".into(), to_value(&self.title));
        m.insert("url".into(), Value::String(self.url.clone()));
        m.insert("viewed".into(), Value::Bool(self.viewed(history)));
        Value::Object(m)
    }

    /// State reset by DELETE /watch/{uuid}/history (the next tick rechecks the watch).
    pub fn clear_history_state(&mut self) {
        self.browser_steps_last_error_step = None;
        self.check_count = 0;
        self.fetch_time = 0.0;
        self.has_ldjson_price_data = None;
        self.last_checked = 0;
        self.last_error = TextOrFalse::False;
        self.last_notification_error = Some(TextOrFalse::False);
        self.last_viewed = 0;
        self.previous_md5 = TextOrFalse::False;
        self.remote_server_reply = None;
        self.track_ldjson_price_data = None;
    }
}

fn resolve_link(url: &str, render: Render<'_>) -> String {
    if !is_valid_watch_url(url) {
        return "DISABLED".into();
    }
    let mut ready = url.to_string();
    if has_template_markup(url) {
        match render(url) {
            Ok(r) => ready = r,
            Err(_) => return String::new(),
        }
    }
    if ready.starts_with("source:") {
        ready = ready.replace("source:", "");
    }
    if !is_valid_watch_url(&ready) {
        return "DISABLED".into();
    }
    ready
}

fn to_value<T: Serialize + ?Sized>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn to_object<T: Serialize>(v: &T) -> Map<String, Value> {
    match serde_json::to_value(v) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn is_internal_key(k: &str) -> bool {
    k.starts_with("__") || SYSTEM_MANAGED_FIELDS.contains(&k)
}

fn strip_internal_keys(m: &mut Map<String, Value>) {
    m.retain(|k, _| !is_internal_key(k));
}

// -------------------------------------------------------------------------------------------
// Tag
// -------------------------------------------------------------------------------------------

/// A tag (group): the watch base fields, which merge into member watches, plus its own.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tag {
    #[serde(flatten)]
    pub base: Watch,
    /// true: tag settings win over the watch's (restock config); null: undecided.
    pub overrides_watch: Option<bool>,
    /// Watches whose URL matches get this tag implicitly (see [`Tag::matches_url`]).
    pub url_match_pattern: String,
    /// `#rgb` / `#rrggbb`; absent = colour derived from the title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_colour: Option<String>,
}

/// Field-for-field twin of [`Tag`] used for loading: the flattened base would otherwise take
/// the *watch* default for `llm_backend_profile` (true) where a tag's is null.
#[derive(Deserialize)]
#[serde(default)]
struct TagFields {
    #[serde(flatten)]
    base: Watch,
    overrides_watch: Option<bool>,
    url_match_pattern: String,
    tag_colour: Option<String>,
}

impl Default for TagFields {
    fn default() -> Self {
        let t = Tag::default();
        TagFields {
            base: t.base,
            overrides_watch: t.overrides_watch,
            url_match_pattern: t.url_match_pattern,
            tag_colour: t.tag_colour,
        }
    }
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(d)?;
        let has_profile = map.contains_key("llm_backend_profile");
        let f: TagFields = serde_json::from_value(Value::Object(map)).map_err(de::Error::custom)?;
        let mut base = f.base;
        if !has_profile {
            base.llm_backend_profile = None;
        }
        Ok(Tag {
            base,
            overrides_watch: f.overrides_watch,
            url_match_pattern: f.url_match_pattern,
            tag_colour: f.tag_colour,
        })
    }
}

impl Default for Tag {
    fn default() -> Self {
        Tag {
            base: Watch {
                llm_backend_profile: None,
                ..Watch::default()
            },
            overrides_watch: None,
            url_match_pattern: String::new(),
            tag_colour: None,
        }
    }
}

impl Tag {
    pub fn new(title: &str) -> Self {
        let mut t = Tag::default();
        t.base.title = Some(title.trim().to_string());
        t.base.date_created = Some(now_epoch());
        t
    }

    pub fn uuid(&self) -> &str {
        &self.base.uuid
    }

    pub fn title(&self) -> &str {
        self.base.title.as_deref().unwrap_or("")
    }

    /// Wildcards (`*`, `?`, `[`) use shell-style matching, anything else is a
    /// case-insensitive substring test; both ignore case.
    pub fn matches_url(&self, url: &str) -> bool {
        let pattern = self.url_match_pattern.trim();
        if pattern.is_empty() || url.is_empty() {
            return false;
        }
        let (pattern, url) = (pattern.to_lowercase(), url.to_lowercase());
        if pattern.contains(['*', '?', '[']) {
            fnmatch(&url, &pattern)
        } else {
            url.contains(&pattern)
        }
    }

    /// JSON for GET /tag/{uuid}: watch-only runtime fields and internal keys removed.
    pub fn api_view(&self) -> Value {
        let mut m = to_object(self);
        strip_internal_keys(&mut m);
        m.retain(|k, _| !TAG_HIDDEN_FIELDS.contains(&k.as_str()));
        Value::Object(m)
    }

    /// One entry of GET /tags.
    pub fn api_list_entry(&self) -> Value {
        let mut m = Map::new();
        m.insert("date_created".into(), to_value(&self.base.date_created));
        m.insert(
            "notification_muted".into(),
            Value::Bool(self.base.notification_muted),
        );
        m.insert("title".into(), to_value(&self.base.title));
        m.insert("uuid".into(), Value::String(self.base.uuid.clone()));
        Value::Object(m)
    }
}

/// The watch's assigned tags that exist, in `watch.tags` order.
pub fn assigned_tags<'a>(
    watch: &Watch,
    all_tags: &'a BTreeMap<String, Tag>,
) -> Vec<(&'a str, &'a Tag)> {
    let mut seen = BTreeSet::new();
    watch
        .tags
        .iter()
        .filter(|u| seen.insert(u.as_str()))
        .filter_map(|u| all_tags.get_key_value(u.as_str()))
        .map(|(k, t)| (k.as_str(), t))
        .collect()
}

/// Every tag that applies to the watch: assigned ones, then those whose
/// `url_match_pattern` matches its URL (upstream's `get_all_tags_for_watch`).
pub fn tags_for_watch<'a>(
    watch: &Watch,
    all_tags: &'a BTreeMap<String, Tag>,
) -> Vec<(&'a str, &'a Tag)> {
    let mut out = Vec::new();
    let assigned: BTreeSet<&str> = watch.tags.iter().map(String::as_str).collect();
    for (k, t) in all_tags {
        if assigned.contains(k.as_str()) {
            out.push((k.as_str(), t));
        }
    }
    if !watch.url.is_empty() {
        for (k, t) in all_tags {
            if !assigned.contains(k.as_str()) && t.matches_url(&watch.url) {
                out.push((k.as_str(), t));
            }
        }
    }
    out
}

/// Python's `fnmatch.fnmatch` on already-lowercased strings (`*` also matches `/`).
fn fnmatch(name: &str, pattern: &str) -> bool {
    enum Tok {
        Star,
        Any,
        Lit(char),
        Class { negate: bool, set: Vec<char> },
    }
    fn class_matches(set: &[char], c: char) -> bool {
        let mut i = 0;
        while i < set.len() {
            if i + 2 < set.len() && set[i + 1] == '-' {
                if set[i] <= c && c <= set[i + 2] {
                    return true;
                }
                i += 3;
            } else {
                if set[i] == c {
                    return true;
                }
                i += 1;
            }
        }
        false
    }
    let p: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' => {
                if !matches!(toks.last(), Some(Tok::Star)) {
                    toks.push(Tok::Star);
                }
                i += 1;
            }
            '?' => {
                toks.push(Tok::Any);
                i += 1;
            }
            '[' => {
                let mut j = i + 1;
                if j < p.len() && p[j] == '!' {
                    j += 1;
                }
                if j < p.len() && p[j] == ']' {
                    j += 1;
                }
                while j < p.len() && p[j] != ']' {
                    j += 1;
                }
                if j >= p.len() {
                    toks.push(Tok::Lit('['));
                    i += 1;
                } else {
                    let inner = &p[i + 1..j];
                    let (negate, set) = match inner.first() {
                        Some('!') => (true, inner[1..].to_vec()),
                        _ => (false, inner.to_vec()),
                    };
                    toks.push(Tok::Class { negate, set });
                    i = j + 1;
                }
            }
            c => {
                toks.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    let n: Vec<char> = name.chars().collect();
    let single = |t: &Tok, c: char| match t {
        Tok::Any => true,
        Tok::Lit(l) => *l == c,
        Tok::Class { negate, set } => class_matches(set, c) != *negate,
        Tok::Star => false,
    };
    // Classic wildcard matching with one backtrack point per star.
    let (mut ti, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if ti < toks.len() && !matches!(toks[ti], Tok::Star) && single(&toks[ti], n[ni]) {
            ti += 1;
            ni += 1;
        } else if ti < toks.len() && matches!(toks[ti], Tok::Star) {
            star = Some((ti, ni));
            ti += 1;
        } else if let Some((st, sn)) = star {
            ti = st + 1;
            ni = sn + 1;
            star = Some((st, sn + 1));
        } else {
            return false;
        }
    }
    toks[ti..].iter().all(|t| matches!(t, Tok::Star))
}

// -------------------------------------------------------------------------------------------
// Global settings
// -------------------------------------------------------------------------------------------

/// `settings` of the datastore. Environment overrides upstream applies at load time
/// (DEFAULT_SETTINGS_REQUESTS_TIMEOUT, ..._WORKERS, DEFAULT_FETCH_BACKEND, BASE_URL) are the
/// store's job; these are the plain defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Headers sent with every request (below the watch's own).
    pub headers: BTreeMap<String, String>,
    pub requests: RequestsSettings,
    pub application: ApplicationSettings,
}

impl Settings {
    /// Defaults plus freshly generated API and RSS tokens, as a new datastore gets them.
    pub fn new_with_tokens() -> Self {
        let mut s = Settings::default();
        s.application.api_access_token = Some(new_token_hex());
        s.application.rss_access_token = Some(new_token_hex());
        s
    }
}

/// 32 hex characters, the shape of Python's `secrets.token_hex(16)` (122 random bits).
pub fn new_token_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExtraProxy {
    pub proxy_name: String,
    pub proxy_url: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExtraBrowser {
    pub browser_name: String,
    pub browser_connection_url: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DefaultUa {
    pub html_requests: String,
    pub html_webdriver: Option<String>,
}

impl Default for DefaultUa {
    fn default() -> Self {
        DefaultUa {
            html_requests: DEFAULT_USER_AGENT.into(),
            html_webdriver: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestsSettings {
    pub extra_proxies: Vec<ExtraProxy>,
    pub extra_browsers: Vec<ExtraBrowser>,
    /// Each watch's interval is moved by a random amount within +/- this, per queueing.
    #[serde(deserialize_with = "lenient::i64")]
    pub jitter_seconds: i64,
    pub proxy: Option<String>,
    pub time_between_check: TimeBetweenCheck,
    #[serde(deserialize_with = "lenient::i64")]
    pub timeout: i64,
    #[serde(deserialize_with = "lenient::i64")]
    pub workers: i64,
    pub default_ua: DefaultUa,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_schedule_limit: Option<TimeScheduleLimit>,
}

impl Default for RequestsSettings {
    fn default() -> Self {
        RequestsSettings {
            extra_proxies: Vec::new(),
            extra_browsers: Vec::new(),
            jitter_seconds: 0,
            proxy: None,
            time_between_check: TimeBetweenCheck::hours(3),
            timeout: 45,
            workers: 5,
            default_ua: DefaultUa::default(),
            time_schedule_limit: None,
        }
    }
}

impl RequestsSettings {
    /// Proxy-list keys of the UI-configured proxies. Upstream's counter never advances, so
    /// every key is `ui-0<name>`; watches store these keys, so they must stay that way.
    pub fn ui_proxy_keys(&self) -> Vec<String> {
        self.extra_proxies
            .iter()
            .filter(|p| !p.proxy_name.is_empty() && !p.proxy_url.is_empty())
            .map(|p| format!("ui-0{}", p.proxy_name))
            .collect()
    }

    /// `fetch_backend` values for the configured extra browsers.
    pub fn extra_browser_backends(&self) -> Vec<String> {
        self.extra_browsers
            .iter()
            .filter(|b| !b.browser_name.is_empty() && !b.browser_connection_url.is_empty())
            .map(|b| format!("extra_browser_{}", b.browser_name))
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UiSettings {
    pub use_page_title_in_list: bool,
    pub open_diff_in_new_tab: bool,
    pub socket_io_enabled: bool,
    pub favicons_enabled: bool,
    /// `long` ("1 minute ago") | `short` ("1m ago").
    pub timeago_format: String,
    /// `collapsed` | `pinned`.
    pub sidebar_mode: String,
}

impl Default for UiSettings {
    fn default() -> Self {
        UiSettings {
            use_page_title_in_list: true,
            open_diff_in_new_tab: true,
            socket_io_enabled: true,
            favicons_enabled: true,
            timeago_format: "long".into(),
            sidebar_mode: "collapsed".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApplicationSettings {
    pub all_paused: bool,
    pub all_muted: bool,
    pub api_access_token_enabled: bool,
    /// Generated on first start ([`Settings::new_with_tokens`]).
    pub api_access_token: Option<String>,
    pub base_url: Option<String>,
    pub empty_pages_are_a_change: bool,
    /// What `fetch_backend: system` means.
    pub fetch_backend: String,
    #[serde(deserialize_with = "lenient::i64")]
    pub filter_failure_notification_threshold_attempts: i64,
    pub global_ignore_text: Vec<String>,
    pub global_subtractive_selectors: Vec<String>,
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub history_snapshot_max_length: Option<i64>,
    /// Whitespace-only edits are not changes.
    pub ignore_whitespace: bool,
    pub ignore_status_codes: bool,
    pub ssim_threshold: String,
    pub notification_body: String,
    pub notification_format: String,
    pub notification_title: String,
    pub notification_urls: Vec<String>,
    #[serde(deserialize_with = "lenient::i64")]
    pub pager_size: i64,
    /// Salted hash of the UI password, or `false` when none is set.
    pub password: TextOrFalse,
    pub render_anchor_tag_content: bool,
    pub rss_access_token: Option<String>,
    pub rss_content_format: String,
    pub rss_template_type: String,
    pub rss_template_override: Option<String>,
    #[serde(deserialize_with = "lenient::i64")]
    pub rss_diff_length: i64,
    pub rss_hide_muted_watches: bool,
    pub rss_reader_mode: bool,
    pub scheduler_timezone_default: Option<String>,
    #[serde(deserialize_with = "lenient::i64")]
    pub schema_version: i64,
    pub shared_diff_access: bool,
    pub strip_ignored_lines: bool,
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub webdriver_delay: Option<i64>,
    pub ui: UiSettings,
    /// LLM settings are opaque to this model; kept so nothing is lost on a rewrite.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<Map<String, Value>>,
    /// Upstream keeps tags in their own files; this only carries them when a datastore
    /// still has them inline.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, Tag>,
    /// changewatch's own: what dashboard sessions are signed with. Kept apart from the password
    /// hash so that holding the hash (`SALTED_PASS`, a backup) does not let anyone mint a
    /// session; never part of an API response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_keys: Option<SessionKeys>,
}

/// The dashboard's session signing state (see `changewatch_api::session`).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionKeys {
    /// HMAC key of session cookies, hex; generated on first need.
    pub secret: String,
    /// Sessions logged out before their expiry: session id → its expiry (epoch seconds), so an
    /// entry can be dropped once the cookie would be refused anyway.
    pub revoked: BTreeMap<String, i64>,
}

/// Without the secret, so settings can be logged.
impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKeys")
            .field("secret", &"<redacted>")
            .field("revoked", &self.revoked.len())
            .finish()
    }
}

impl Default for ApplicationSettings {
    fn default() -> Self {
        ApplicationSettings {
            all_paused: false,
            all_muted: false,
            api_access_token_enabled: true,
            api_access_token: None,
            base_url: None,
            empty_pages_are_a_change: false,
            fetch_backend: "html_requests".into(),
            filter_failure_notification_threshold_attempts: 6,
            global_ignore_text: Vec::new(),
            global_subtractive_selectors: Vec::new(),
            history_snapshot_max_length: None,
            ignore_whitespace: true,
            ignore_status_codes: false,
            ssim_threshold: "0.96".into(),
            notification_body: DEFAULT_NOTIFICATION_BODY.into(),
            notification_format: DEFAULT_NOTIFICATION_FORMAT.into(),
            notification_title: DEFAULT_NOTIFICATION_TITLE.into(),
            notification_urls: Vec::new(),
            pager_size: 50,
            password: TextOrFalse::False,
            render_anchor_tag_content: false,
            rss_access_token: None,
            rss_content_format: "text".into(),
            rss_template_type: "system_default".into(),
            rss_template_override: None,
            rss_diff_length: 5,
            rss_hide_muted_watches: true,
            rss_reader_mode: false,
            scheduler_timezone_default: None,
            schema_version: 0,
            shared_diff_access: false,
            strip_ignored_lines: false,
            webdriver_delay: None,
            ui: UiSettings::default(),
            llm: None,
            tags: BTreeMap::new(),
            session_keys: None,
        }
    }
}

// -------------------------------------------------------------------------------------------
// Cascades: watch > tags > global
// -------------------------------------------------------------------------------------------

/// Order-preserving union; the first occurrence wins (Python's `dict.fromkeys`).
fn union_lists<'a>(lists: impl IntoIterator<Item = &'a [String]>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for list in lists {
        for item in list {
            if seen.insert(item.as_str()) {
                out.push(item.clone());
            }
        }
    }
    out
}

/// The processor's view of a watch. `tags` are all tags that apply to it (see
/// [`tags_for_watch`]). List rules are the union of watch and tags, plus the global list for
/// ignore text and subtractive selectors; flags come from the watch, else the global setting.
/// `jq_allow_risky` is process configuration: the caller sets it.
pub fn processor_settings(watch: &Watch, tags: &[&Tag], settings: &Settings) -> ProcessorSettings {
    let app = &settings.application;
    let merged = |get: fn(&Watch) -> &Vec<String>| -> Vec<String> {
        let mut lists: Vec<&[String]> = vec![get(watch).as_slice()];
        lists.extend(tags.iter().map(|t| get(&t.base).as_slice()));
        union_lists(lists)
    };
    let mut include_filters = merged(|w| &w.include_filters);
    if matches!(&watch.track_ldjson_price_data, Some(BoolOrText::Text(t)) if t == PRICE_DATA_TRACK_ACCEPT)
    {
        include_filters.extend(
            LD_JSON_PRODUCT_OFFER_SELECTORS
                .iter()
                .map(|s| s.to_string()),
        );
    }
    let ignore_text = union_lists([
        merged(|w| &w.ignore_text).as_slice(),
        app.global_ignore_text.as_slice(),
    ]);
    // Upstream concatenates these without de-duplication, tags first.
    let subtractive_selectors: Vec<String> = tags
        .iter()
        .flat_map(|t| t.base.subtractive_selectors.iter())
        .chain(watch.subtractive_selectors.iter())
        .chain(app.global_subtractive_selectors.iter())
        .cloned()
        .collect();
    ProcessorSettings {
        include_filters,
        subtractive_selectors,
        ignore_text,
        trigger_text: merged(|w| &w.trigger_text),
        text_should_not_be_present: merged(|w| &w.text_should_not_be_present),
        extract_lines_containing: merged(|w| &w.extract_lines_containing),
        extract_text: merged(|w| &w.extract_text),
        trim_text_whitespace: watch.trim_text_whitespace,
        sort_text_alphabetically: watch.sort_text_alphabetically,
        remove_duplicate_lines: watch.remove_duplicate_lines,
        check_unique_lines: watch.check_unique_lines,
        strip_ignored_lines: watch.strip_ignored_lines.unwrap_or(app.strip_ignored_lines),
        filter_text_added: watch.filter_text_added,
        filter_text_removed: watch.filter_text_removed,
        filter_text_replaced: watch.filter_text_replaced,
        ignore_whitespace: app.ignore_whitespace,
        empty_pages_are_a_change: app.empty_pages_are_a_change,
        render_anchor_tag_content: app.render_anchor_tag_content,
        source_mode: watch.is_source_type_url(),
        jq_allow_risky: false,
    }
}

/// Where a content-changed notification goes and how it looks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationSettings {
    /// Empty: nothing is sent.
    pub urls: Vec<String>,
    pub title: String,
    pub body: String,
    /// A concrete format, never `System default`.
    pub format: String,
}

/// Watch value (unless the watch is muted) > first tag with a value (unless muted) > global >
/// built-in default; `System default` resolves to the global format.
pub fn resolve_notification_settings(
    watch: &Watch,
    tags: &[&Tag],
    settings: &Settings,
) -> NotificationSettings {
    let app = &settings.application;
    fn pick<T: Clone>(
        watch: &Watch,
        tags: &[&Tag],
        get: impl Fn(&Watch) -> Option<T>,
    ) -> Option<T> {
        if !watch.notification_muted
            && let Some(v) = get(watch)
        {
            return Some(v);
        }
        tags.iter()
            .filter(|t| !t.base.notification_muted)
            .find_map(|t| get(&t.base))
    }
    let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    let global_format = if app.notification_format.is_empty()
        || app.notification_format == NOTIFICATION_FORMAT_SYSTEM_DEFAULT
    {
        DEFAULT_NOTIFICATION_FORMAT.to_string()
    } else {
        app.notification_format.clone()
    };
    let urls = pick(watch, tags, |w| {
        (!w.notification_urls.is_empty()).then(|| w.notification_urls.clone())
    })
    .unwrap_or_else(|| app.notification_urls.clone());
    let title = pick(watch, tags, |w| non_empty(&w.notification_title))
        .or_else(|| (!app.notification_title.is_empty()).then(|| app.notification_title.clone()))
        .unwrap_or_else(|| DEFAULT_NOTIFICATION_TITLE.to_string());
    let body = pick(watch, tags, |w| non_empty(&w.notification_body))
        .or_else(|| (!app.notification_body.is_empty()).then(|| app.notification_body.clone()))
        .unwrap_or_else(|| DEFAULT_NOTIFICATION_BODY.to_string());
    let format = pick(watch, tags, |w| {
        (!w.notification_format.is_empty()).then(|| w.notification_format.clone())
    })
    .filter(|f| f != NOTIFICATION_FORMAT_SYSTEM_DEFAULT)
    .unwrap_or(global_format);
    NotificationSettings {
        urls,
        title,
        body,
        format,
    }
}

/// The restock config in force and where it comes from (`watch` or `tag:<uuid>`): the first
/// assigned tag with `overrides_watch` wins, even when it has no config of its own.
pub fn resolved_restock_config(watch: &Watch, assigned_tags: &[(&str, &Tag)]) -> (Value, String) {
    for (uuid, tag) in assigned_tags {
        if tag.overrides_watch == Some(true) {
            let cfg = tag
                .base
                .processor_config_restock_diff
                .as_ref()
                .map_or_else(|| Value::Object(Map::new()), to_value);
            return (cfg, format!("tag:{uuid}"));
        }
    }
    let cfg = watch
        .processor_config_restock_diff
        .as_ref()
        .map_or_else(|| Value::Object(Map::new()), to_value);
    (cfg, "watch".into())
}

// -------------------------------------------------------------------------------------------
// URL validation (validate_url.is_safe_valid_url + the `validators.url` rules it relies on)
// -------------------------------------------------------------------------------------------

fn has_template_markup(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> &'a str {
    match s.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix) => &s[prefix.len()..],
        _ => s,
    }
}

/// Whether `url` may be a watch URL: http/https/ftp (after an optional `source:` prefix), a
/// real host, no `<`, `>` or backslash, and a path of URL characters. Jinja2 markup is allowed
/// when its syntax is valid; each `{{ }}` / `{% %}` block is taken to render to a harmless
/// placeholder, since the real value is only known at fetch time.
pub fn is_valid_watch_url(url: &str) -> bool {
    if url.trim().is_empty() {
        return false;
    }
    let mut candidate = strip_prefix_ignore_case(url, "source:").to_string();
    if has_template_markup(&candidate) {
        if check_template_syntax(&candidate).is_err() {
            return false;
        }
        candidate = replace_template_blocks(&candidate, "x");
    }
    if candidate.contains(['<', '>', '\\']) {
        return false;
    }
    // urllib drops leading C0/space and every tab/CR/LF before splitting.
    let cleaned: String = candidate
        .trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .collect();
    let Some(parts) = urlsplit(&cleaned) else {
        return false;
    };
    if !matches!(parts.scheme.as_str(), "http" | "https" | "ftp") {
        return false;
    }
    // Query and fragment are re-encoded by upstream before validation, so they always pass;
    // scheme, host and path are checked as written.
    if parts.netloc.chars().any(char::is_whitespace) || parts.path.chars().any(char::is_whitespace)
    {
        return false;
    }
    validate_netloc(parts.netloc) && validate_path(parts.path)
}

struct UrlParts<'a> {
    scheme: String,
    netloc: &'a str,
    path: &'a str,
}

/// `urllib.parse.urlsplit`, as far as validation needs it; `None` where it raises.
fn urlsplit(url: &str) -> Option<UrlParts<'_>> {
    let mut rest = url;
    let mut scheme = String::new();
    if let Some(i) = url.find(':') {
        let cand = &url[..i];
        if i > 0
            && cand.starts_with(|c: char| c.is_ascii_alphabetic())
            && cand
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            scheme = cand.to_ascii_lowercase();
            rest = &url[i + 1..];
        }
    }
    let mut netloc = "";
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        netloc = &after[..end];
        rest = &after[end..];
        if netloc.contains('[') != netloc.contains(']') {
            return None;
        }
    }
    let path_end = rest.find(['?', '#']).unwrap_or(rest.len());
    Some(UrlParts {
        scheme,
        netloc,
        path: &rest[..path_end],
    })
}

fn validate_path(path: &str) -> bool {
    path.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || "/-._~!$&'()*+,;=:@%".contains(c)
            || ('\u{A0}'..='\u{D7FF}').contains(&c)
            || ('\u{F900}'..='\u{FDCF}').contains(&c)
            || ('\u{FDF0}'..='\u{FFEF}').contains(&c)
            || ('\u{1F300}'..='\u{1F5FF}').contains(&c)
            || ('\u{1F600}'..='\u{1F64F}').contains(&c)
    })
}

fn validate_netloc(netloc: &str) -> bool {
    if netloc.is_empty() || netloc.matches('@').count() > 1 {
        return false;
    }
    let (auth, host) = match netloc.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, netloc),
    };
    let skip_ipv6 = host.matches(':').count() < 2 || !host.starts_with('[');
    let host_value = if skip_ipv6 || netloc.contains("]:") {
        host.to_string()
    } else {
        host.trim_start_matches('[').replacen(']', "", 1)
    };
    validate_hostname(&host_value, skip_ipv6) && auth.is_none_or(validate_auth)
}

fn valid_port(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 5
        && p.bytes().all(|b| b.is_ascii_digit())
        && !p.starts_with('0')
        && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
}

fn validate_hostname(value: &str, skip_ipv6: bool) -> bool {
    if value.is_empty() {
        return false;
    }
    let split_port = || -> Option<String> {
        if value.matches("]:").count() == 1
            && let Some((h, p)) = value.rsplit_once(':')
            && valid_port(p)
        {
            return Some(h.trim_start_matches('[').trim_end_matches(']').to_string());
        }
        if value.matches(':').count() == 1
            && let Some((h, p)) = value.rsplit_once(':')
            && valid_port(p)
        {
            return Some(h.to_string());
        }
        None
    };
    let host = split_port().unwrap_or_else(|| value.to_string());
    is_simple_hostname(&host)
        || is_domain(&host)
        || host.parse::<std::net::Ipv4Addr>().is_ok()
        || (!skip_ipv6 && host.parse::<std::net::Ipv6Addr>().is_ok())
}

/// Single-label hosts such as `localhost` or `nas` (upstream allows them unless
/// BLOCK_SIMPLEHOSTS is set).
fn is_simple_hostname(h: &str) -> bool {
    let b = h.as_bytes();
    !b.is_empty()
        && b.len() <= 61
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

fn is_domain(h: &str) -> bool {
    if h.is_empty() || h.chars().any(char::is_whitespace) || h.contains("__") {
        return false;
    }
    let ascii = if h.is_ascii() {
        h.to_string()
    } else {
        match url::Host::parse(h) {
            Ok(url::Host::Domain(d)) => d,
            _ => return false,
        }
    };
    let labels: Vec<&str> = ascii.split('.').collect();
    let Some((tld, names)) = labels.split_last() else {
        return false;
    };
    if names.is_empty() {
        return false;
    }
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        (1..=63).contains(&b.len())
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
    };
    let tb = tld.as_bytes();
    let tld_ok = (2..=63).contains(&tb.len())
        && tb[0].is_ascii_alphanumeric()
        && tb[tb.len() - 1].is_ascii_alphabetic()
        && tb
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_');
    names.iter().all(|l| label_ok(l)) && tld_ok
}

/// `user[:password]@` part: ASCII without quotes or blanks, or starting with an extended
/// Latin letter; the password must not hide URL delimiters.
fn validate_auth(auth: &str) -> bool {
    fn username_ok(u: &str) -> bool {
        u.starts_with(|c: char| ('\u{100}'..='\u{24F}').contains(&c))
            || u.chars()
                .all(|c| c.is_ascii() && !matches!(c, '\0' | '\t' | '\n' | '\r' | ' ' | '"' | '\\'))
    }
    if auth.is_empty() {
        return true;
    }
    match auth.matches(':').count() {
        0 => username_ok(auth),
        1 => auth
            .rsplit_once(':')
            .is_some_and(|(user, pw)| username_ok(user) && !pw.contains(['/', '?', '#', '@'])),
        _ => username_ok(&percent_decode(auth)),
    }
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// -------------------------------------------------------------------------------------------
// Templates and timezones
// -------------------------------------------------------------------------------------------

/// Finds the `{{ }}`, `{% %}` and `{# #}` blocks of a template: (start, end) byte ranges.
fn template_blocks(src: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = src[i..].find('{') {
        let start = i + off;
        let close = match src.as_bytes().get(start + 1) {
            Some(b'{') => "}}",
            Some(b'%') => "%}",
            Some(b'#') => "#}",
            _ => {
                i = start + 1;
                continue;
            }
        };
        match src[start + 2..].find(close) {
            Some(e) => {
                let end = start + 2 + e + 2;
                out.push((start, end));
                i = end;
            }
            None => {
                out.push((start, src.len()));
                break;
            }
        }
    }
    out
}

fn replace_template_blocks(src: &str, with: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut last = 0;
    for (s, e) in template_blocks(src) {
        out.push_str(&src[last..s]);
        out.push_str(with);
        last = e;
    }
    out.push_str(&src[last..]);
    out
}

/// Upstream's `{% now 'tz', 'fmt' %}` tag is an extension that minijinja does not know; it
/// is blanked out before the syntax check.
fn blank_now_tags(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut last = 0;
    for (s, e) in template_blocks(src) {
        let inner = &src[s..e];
        if let Some(body) = inner.strip_prefix("{%") {
            let body = body.trim_start_matches(['-', '+']).trim_start();
            let is_now = body.strip_prefix("now").is_some_and(|r| {
                r.starts_with(|c: char| c.is_whitespace() || c == '%' || c == '-')
            });
            if is_now {
                out.push_str(&src[last..s]);
                last = e;
            }
        }
    }
    out.push_str(&src[last..]);
    out
}

/// Compiles `src` as a Jinja2 template (syntax only; unknown variables and filters are
/// render-time matters). The error is a one-line description with its line number.
pub fn check_template_syntax(src: &str) -> Result<(), String> {
    if !has_template_markup(src) && !src.contains("{#") {
        return Ok(());
    }
    let prepared = blank_now_tags(src);
    let env = minijinja::Environment::new();
    match env.template_from_str(&prepared) {
        Ok(_) => Ok(()),
        Err(e) => {
            let detail = e
                .detail()
                .map_or_else(|| e.kind().to_string(), str::to_string);
            Err(match e.line() {
                Some(line) => format!("{detail} (line {line})"),
                None => detail,
            })
        }
    }
}

/// Whether `name` is an IANA timezone name (what upstream's `zoneinfo` accepts).
pub fn is_valid_timezone(name: &str) -> bool {
    name.parse::<chrono_tz::Tz>().is_ok()
}

// -------------------------------------------------------------------------------------------
// Request-body schema check (what openapi-core does upstream, with jsonschema's messages)
// -------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    Str,
    Int,
    Num,
    Bool,
    Null,
    Obj,
    Arr,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Str => "string",
            Ty::Int => "integer",
            Ty::Num => "number",
            Ty::Bool => "boolean",
            Ty::Null => "null",
            Ty::Obj => "object",
            Ty::Arr => "array",
        }
    }

    /// JSON Schema typing: `1.0` is an integer, booleans are not numbers.
    fn matches(self, v: &Value) -> bool {
        match (self, v) {
            (Ty::Str, Value::String(_)) => true,
            (Ty::Int, Value::Number(n)) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            (Ty::Num, Value::Number(_)) => true,
            (Ty::Bool, Value::Bool(_)) => true,
            (Ty::Null, Value::Null) => true,
            (Ty::Obj, Value::Object(_)) => true,
            (Ty::Arr, Value::Array(_)) => true,
            _ => false,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Pat {
    FetchBackend,
    StartTime,
    Digits,
    HexColourOrEmpty,
}

impl Pat {
    fn source(self) -> &'static str {
        match self {
            Pat::FetchBackend => "^(system|html_requests|html_webdriver|extra_browser_.+)$",
            Pat::StartTime => "^([0-1]?[0-9]|2[0-3]):[0-5][0-9]$",
            Pat::Digits => "^[0-9]+$",
            Pat::HexColourOrEmpty => "^(#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}))?$",
        }
    }

    fn matches(self, s: &str) -> bool {
        // Python's `$` also matches before one trailing newline.
        let s = s.strip_suffix('\n').unwrap_or(s);
        match self {
            Pat::FetchBackend => {
                matches!(s, "system" | "html_requests" | "html_webdriver")
                    || s.strip_prefix("extra_browser_")
                        .is_some_and(|r| !r.is_empty() && !r.contains('\n'))
            }
            Pat::StartTime => {
                let Some((h, m)) = s.split_once(':') else {
                    return false;
                };
                let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
                let hour_ok = match h.len() {
                    1 => digits(h),
                    2 => {
                        digits(h)
                            && (h.as_bytes()[0] <= b'1'
                                || (h.as_bytes()[0] == b'2' && h.as_bytes()[1] <= b'3'))
                    }
                    _ => false,
                };
                hour_ok && m.len() == 2 && digits(m) && m.as_bytes()[0] <= b'5'
            }
            Pat::Digits => !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()),
            Pat::HexColourOrEmpty => s.is_empty() || is_hex_colour(s),
        }
    }
}

fn is_hex_colour(s: &str) -> bool {
    s.strip_prefix('#')
        .is_some_and(|h| (h.len() == 3 || h.len() == 6) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[derive(Clone, Copy, Debug)]
enum Extra {
    Any,
    Deny,
    Each(&'static Node),
}

/// One JSON Schema node with the keywords the spec uses. Keywords are checked in the order
/// the spec lists them (type first), which is the order upstream reports errors in.
#[derive(Clone, Copy, Debug)]
struct Node {
    types: &'static [Ty],
    format_uuid: bool,
    max_len: Option<usize>,
    pattern: Option<Pat>,
    enum_vals: &'static [&'static str],
    minimum: Option<i64>,
    maximum: Option<i64>,
    items: Option<&'static Node>,
    max_items: Option<usize>,
    props: &'static [(&'static str, Node)],
    required: &'static [&'static str],
    extra: Extra,
}

const ANY: Node = Node {
    types: &[],
    format_uuid: false,
    max_len: None,
    pattern: None,
    enum_vals: &[],
    minimum: None,
    maximum: None,
    items: None,
    max_items: None,
    props: &[],
    required: &[],
    extra: Extra::Any,
};
const STR: Node = Node {
    types: &[Ty::Str],
    ..ANY
};
const STR_5000: Node = Node {
    max_len: Some(5000),
    ..STR
};
const STR_1000: Node = Node {
    max_len: Some(1000),
    ..STR
};
const STR_2000: Node = Node {
    max_len: Some(2000),
    ..STR
};
const STR_NULL: Node = Node {
    types: &[Ty::Str, Ty::Null],
    ..ANY
};
const STR_NULL_5000: Node = Node {
    max_len: Some(5000),
    ..STR_NULL
};
const BOOL: Node = Node {
    types: &[Ty::Bool],
    ..ANY
};
const BOOL_NULL: Node = Node {
    types: &[Ty::Bool, Ty::Null],
    ..ANY
};
const INT_NULL: Node = Node {
    types: &[Ty::Int, Ty::Null],
    ..ANY
};
const NUM_NULL: Node = Node {
    types: &[Ty::Num, Ty::Null],
    ..ANY
};
const OBJ: Node = Node {
    types: &[Ty::Obj],
    ..ANY
};
const STR_LIST: Node = Node {
    types: &[Ty::Arr],
    items: Some(&STR_5000),
    max_items: Some(100),
    ..ANY
};
const fn interval(max: i64) -> Node {
    Node {
        minimum: Some(0),
        maximum: Some(max),
        ..INT_NULL
    }
}
const fn enum_str(vals: &'static [&'static str]) -> Node {
    Node {
        enum_vals: vals,
        ..STR
    }
}
const DAY_SCHEDULE: Node = Node {
    types: &[Ty::Obj],
    props: &[
        ("enabled", BOOL),
        (
            "start_time",
            Node {
                pattern: Some(Pat::StartTime),
                ..STR
            },
        ),
        (
            "duration",
            Node {
                types: &[Ty::Obj],
                props: &[
                    (
                        "hours",
                        Node {
                            pattern: Some(Pat::Digits),
                            ..STR
                        },
                    ),
                    (
                        "minutes",
                        Node {
                            pattern: Some(Pat::Digits),
                            ..STR
                        },
                    ),
                ],
                ..ANY
            },
        ),
    ],
    ..ANY
};
const BROWSER_STEP: Node = Node {
    types: &[Ty::Obj],
    props: &[
        ("operation", STR_NULL_5000),
        ("selector", STR_NULL_5000),
        ("optional_value", STR_NULL_5000),
    ],
    required: &["operation", "selector", "optional_value"],
    extra: Extra::Deny,
    ..ANY
};
const CONDITION: Node = Node {
    types: &[Ty::Obj],
    props: &[("field", STR), ("operator", STR), ("value", STR)],
    required: &["field", "operator", "value"],
    ..ANY
};
const RESTOCK_CONFIG: Node = Node {
    types: &[Ty::Obj],
    props: &[
        (
            "in_stock_processing",
            enum_str(&["in_stock_only", "all_changes", "off"]),
        ),
        ("follow_price_changes", BOOL),
        ("price_change_min", NUM_NULL),
        ("price_change_max", NUM_NULL),
        (
            "price_change_threshold_percent",
            Node {
                minimum: Some(0),
                maximum: Some(100),
                ..NUM_NULL
            },
        ),
    ],
    ..ANY
};

/// WatchBase properties in spec order, with the processor config merged in as upstream does
/// at startup. `link_to_open` and `llm_backend_profile` are contract additions.
const WATCH_BASE_PROPS: &[(&str, Node)] = &[
    (
        "uuid",
        Node {
            format_uuid: true,
            ..STR
        },
    ),
    ("date_created", INT_NULL),
    ("url", STR_5000),
    ("link_to_open", STR_5000),
    ("title", STR_NULL_5000),
    ("tag", STR_5000),
    (
        "tags",
        Node {
            types: &[Ty::Arr],
            items: Some(&STR),
            ..ANY
        },
    ),
    ("paused", BOOL),
    ("notification_muted", BOOL),
    ("method", enum_str(HTTP_METHODS)),
    (
        "fetch_backend",
        Node {
            pattern: Some(Pat::FetchBackend),
            ..STR
        },
    ),
    (
        "headers",
        Node {
            types: &[Ty::Obj],
            extra: Extra::Each(&STR),
            ..ANY
        },
    ),
    ("body", STR_NULL_5000),
    ("proxy", STR_NULL_5000),
    ("ignore_status_codes", BOOL_NULL),
    ("webdriver_delay", INT_NULL),
    ("webdriver_js_execute_code", STR_NULL_5000),
    (
        "time_between_check",
        Node {
            types: &[Ty::Obj],
            props: &[
                ("weeks", interval(52_000)),
                ("days", interval(365_000)),
                ("hours", interval(8_760_000)),
                ("minutes", interval(525_600_000)),
                ("seconds", interval(31_536_000_000)),
            ],
            ..ANY
        },
    ),
    ("time_between_check_use_default", BOOL),
    (
        "notification_urls",
        Node {
            types: &[Ty::Arr],
            items: Some(&STR_1000),
            max_items: Some(100),
            ..ANY
        },
    ),
    ("notification_title", STR_NULL_5000),
    ("notification_body", STR_NULL_5000),
    ("notification_format", enum_str(NOTIFICATION_FORMATS)),
    // The spec says boolean|null but upstream stores "accepted"/"rejected" here, so a
    // GET -> PUT round trip must accept strings too.
    (
        "track_ldjson_price_data",
        Node {
            types: &[Ty::Bool, Ty::Null, Ty::Str],
            ..ANY
        },
    ),
    (
        "browser_steps",
        Node {
            types: &[Ty::Arr],
            items: Some(&BROWSER_STEP),
            max_items: Some(100),
            ..ANY
        },
    ),
    ("processor", enum_str(PROCESSORS)),
    ("include_filters", STR_LIST),
    ("subtractive_selectors", STR_LIST),
    ("ignore_text", STR_LIST),
    ("trigger_text", STR_LIST),
    ("text_should_not_be_present", STR_LIST),
    ("extract_lines_containing", STR_LIST),
    ("extract_text", STR_LIST),
    ("trim_text_whitespace", BOOL),
    ("sort_text_alphabetically", BOOL),
    ("remove_duplicate_lines", BOOL),
    ("check_unique_lines", BOOL),
    ("strip_ignored_lines", BOOL_NULL),
    ("filter_text_added", BOOL),
    ("filter_text_removed", BOOL),
    ("filter_text_replaced", BOOL),
    ("in_stock_only", BOOL),
    ("follow_price_changes", BOOL),
    ("price_change_threshold_percent", NUM_NULL),
    ("has_ldjson_price_data", BOOL_NULL),
    ("notification_screenshot", BOOL),
    ("filter_failure_notification_send", BOOL),
    ("use_page_title_in_list", BOOL_NULL),
    (
        "history_snapshot_max_length",
        Node {
            minimum: Some(1),
            maximum: Some(1000),
            ..INT_NULL
        },
    ),
    (
        "time_schedule_limit",
        Node {
            types: &[Ty::Obj],
            props: &[
                ("enabled", BOOL),
                ("monday", DAY_SCHEDULE),
                ("tuesday", DAY_SCHEDULE),
                ("wednesday", DAY_SCHEDULE),
                ("thursday", DAY_SCHEDULE),
                ("friday", DAY_SCHEDULE),
                ("saturday", DAY_SCHEDULE),
                ("sunday", DAY_SCHEDULE),
            ],
            ..ANY
        },
    ),
    (
        "conditions",
        Node {
            types: &[Ty::Arr],
            items: Some(&CONDITION),
            max_items: Some(100),
            ..ANY
        },
    ),
    ("conditions_match_logic", enum_str(&["ALL", "ANY"])),
    ("llm_intent", STR_2000),
    ("llm_change_summary", STR_2000),
    ("llm_change_summary_mode", enum_str(&["replace", "append"])),
    ("llm_prefilter", STR_NULL),
    ("llm_evaluation_cache", OBJ),
    ("llm_last_tokens_used", INT_NULL),
    ("llm_tokens_used_cumulative", INT_NULL),
    ("llm_tokens_this_period", INT_NULL),
    ("llm_tokens_period_key", STR_NULL),
    ("processor_config_restock_diff", RESTOCK_CONFIG),
    ("llm_backend_profile", BOOL_NULL),
];

const WATCH_BASE: Node = Node {
    types: &[Ty::Obj],
    props: WATCH_BASE_PROPS,
    ..ANY
};
/// The JSON type (first non-null one) of a WatchBase field, `None` for an unknown field.
/// POST /import takes any watch field as a query parameter and converts the string by it.
pub fn watch_field_type(name: &str) -> Option<&'static str> {
    let (_, node) = WATCH_BASE_PROPS.iter().find(|(n, _)| *n == name)?;
    Some(
        node.types
            .iter()
            .find(|t| **t != Ty::Null)
            .map_or("string", |t| t.name()),
    )
}

const CREATE_WATCH_SCHEMA: &[Node] = &[
    WATCH_BASE,
    Node {
        types: &[Ty::Obj],
        required: &["url"],
        ..ANY
    },
];
const UPDATE_WATCH_SCHEMA: &[Node] = &[
    WATCH_BASE,
    Node {
        types: &[Ty::Obj],
        props: &[(
            "last_viewed",
            Node {
                types: &[Ty::Int],
                minimum: Some(0),
                ..ANY
            },
        )],
        ..ANY
    },
];
const TAG_OWN_PROPS: &[(&str, Node)] = &[
    ("overrides_watch", BOOL_NULL),
    ("url_match_pattern", STR),
    (
        "tag_colour",
        Node {
            pattern: Some(Pat::HexColourOrEmpty),
            ..STR
        },
    ),
];
const TAG_SCHEMA: &[Node] = &[
    WATCH_BASE,
    Node {
        types: &[Ty::Obj],
        props: TAG_OWN_PROPS,
        ..ANY
    },
];
const CREATE_TAG_SCHEMA: &[Node] = &[
    WATCH_BASE,
    Node {
        types: &[Ty::Obj],
        props: TAG_OWN_PROPS,
        ..ANY
    },
    Node {
        types: &[Ty::Obj],
        required: &["title"],
        ..ANY
    },
];

/// jsonschema's `uuid` format: parses, and is written in the canonical hyphenated form.
fn is_uuid_format(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok_and(|u| u.hyphenated().to_string() == s.to_lowercase())
}

fn type_list_repr(types: &[Ty]) -> String {
    types
        .iter()
        .map(|t| format!("'{}'", t.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn str_list_repr(vals: &[&str]) -> String {
    let items: Vec<String> = vals.iter().map(|v| py_str_repr(v)).collect();
    format!("[{}]", items.join(", "))
}

fn validate_node(node: &Node, v: &Value, path: &mut Vec<String>, errs: &mut Vec<String>) {
    let mut push = |path: &Vec<String>, msg: String| {
        let field = if path.is_empty() {
            "body".to_string()
        } else {
            path.join(".")
        };
        errs.push(format!("{field}: {msg}"));
    };
    if !node.types.is_empty() && !node.types.iter().any(|t| t.matches(v)) {
        push(
            path,
            format!(
                "{} is not of type {}",
                py_repr(v),
                type_list_repr(node.types)
            ),
        );
    }
    if !node.enum_vals.is_empty()
        && !matches!(v, Value::String(s) if node.enum_vals.contains(&s.as_str()))
    {
        push(
            path,
            format!(
                "{} is not one of {}",
                py_repr(v),
                str_list_repr(node.enum_vals)
            ),
        );
    }
    if let Value::String(s) = v {
        if node.format_uuid && !is_uuid_format(s) {
            push(path, format!("{} is not a 'uuid'", py_repr(v)));
        }
        if let Some(max) = node.max_len
            && s.chars().count() > max
        {
            push(path, format!("{} is too long", py_repr(v)));
        }
        if let Some(p) = node.pattern
            && !p.matches(s)
        {
            push(
                path,
                format!("{} does not match {}", py_repr(v), py_str_repr(p.source())),
            );
        }
    }
    if let Value::Number(n) = v {
        let f = n.as_f64().unwrap_or(0.0);
        if let Some(min) = node.minimum
            && f < min as f64
        {
            push(
                path,
                format!("{} is less than the minimum of {min}", py_repr(v)),
            );
        }
        if let Some(max) = node.maximum
            && f > max as f64
        {
            push(
                path,
                format!("{} is greater than the maximum of {max}", py_repr(v)),
            );
        }
    }
    if let Value::Array(items) = v {
        if let Some(item_node) = node.items {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                validate_node(item_node, item, path, errs);
                path.pop();
            }
        }
        if let Some(max) = node.max_items
            && items.len() > max
        {
            let field = if path.is_empty() {
                "body".to_string()
            } else {
                path.join(".")
            };
            errs.push(format!("{field}: {} is too long", py_repr(v)));
        }
    }
    if let Value::Object(obj) = v {
        for (name, sub) in node.props {
            if let Some(child) = obj.get(*name) {
                path.push((*name).to_string());
                validate_node(sub, child, path, errs);
                path.pop();
            }
        }
        let field = if path.is_empty() {
            "body".to_string()
        } else {
            path.join(".")
        };
        for r in node.required {
            if !obj.contains_key(*r) {
                errs.push(format!(
                    "{field}: {} is a required property",
                    py_str_repr(r)
                ));
            }
        }
        let extras: Vec<&String> = obj
            .keys()
            .filter(|k| !node.props.iter().any(|(n, _)| n == k))
            .collect();
        match node.extra {
            Extra::Any => {}
            Extra::Deny if !extras.is_empty() => {
                let names: Vec<String> = extras.iter().map(|k| py_str_repr(k)).collect();
                let verb = if names.len() == 1 { "was" } else { "were" };
                errs.push(format!(
                    "{field}: Additional properties are not allowed ({} {verb} unexpected)",
                    names.join(", ")
                ));
            }
            Extra::Deny => {}
            Extra::Each(sub) => {
                for k in extras {
                    path.push(k.clone());
                    validate_node(sub, &obj[k.as_str()], path, errs);
                    path.pop();
                }
            }
        }
    }
}

/// Checks a request body against an `allOf` list of schema nodes; `Err` carries upstream's
/// "Validation failed: field: message; ..." error.
fn schema_check<'v>(
    body: &'v Value,
    schema: &[Node],
) -> Result<&'v Map<String, Value>, ApiValidationError> {
    let mut errs = Vec::new();
    for node in schema {
        validate_node(node, body, &mut Vec::new(), &mut errs);
    }
    match body {
        Value::Object(m) if errs.is_empty() => Ok(m),
        _ => Err(ApiValidationError::ValidationFailed(errs)),
    }
}

/// Python `repr()` of a JSON value, because upstream's messages embed it (`'x'`, `None`,
/// `True`, `[1, 2]`, `{'a': 1}`).
fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                py_float_repr(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => py_str_repr(s),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(py_repr).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", py_str_repr(k), py_repr(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // `{:e}` gives the shortest round-trip digits, like Python's repr.
    let sci = format!("{f:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let sign = if neg { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let body = if exp >= 0 {
            let int_len = usize::try_from(exp).unwrap_or(0) + 1;
            if digits.len() <= int_len {
                format!("{digits}{}.0", "0".repeat(int_len - digits.len()))
            } else {
                format!("{}.{}", &digits[..int_len], &digits[int_len..])
            }
        } else {
            let zeros = usize::try_from(-exp - 1).unwrap_or(0);
            format!("0.{}{digits}", "0".repeat(zeros))
        };
        format!("{sign}{body}")
    } else {
        let mant = mant.trim_start_matches('-');
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mant}e{esign}{:02}", exp.unsigned_abs())
    }
}

fn py_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control()
                || (c.is_whitespace() && c != ' ')
                || matches!(c, '\u{AD}' | '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}') =>
            {
                let n = u32::from(c);
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else if n < 0x10000 {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

// -------------------------------------------------------------------------------------------
// API errors and context
// -------------------------------------------------------------------------------------------

/// A 400 from the watch / tag write endpoints. `Display` is exactly the text upstream sends;
/// [`ApiValidationError::body_kind`] says how it is wrapped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiValidationError {
    /// Schema (type, enum, pattern, length, count, required) errors, all of them.
    #[error("Validation failed: {}", .0.join("; "))]
    ValidationFailed(Vec<String>),
    /// POST /watch with a URL that is not allowed.
    #[error("Invalid or unsupported URL")]
    InvalidUrl,
    #[error("URL cannot be null")]
    UrlNull,
    #[error("URL must be a string")]
    UrlNotString,
    #[error("URL cannot be empty or whitespace only")]
    UrlEmpty,
    /// PUT /watch/{uuid} with a URL that is not allowed.
    #[error(
        "Invalid or unsupported URL format. URL must use http://, https://, or ftp:// protocol"
    )]
    UrlBadFormat,
    /// Carries the proxy keys joined by ", " (or "none configured").
    #[error("Invalid proxy choice, currently supported proxies are '{0}'")]
    InvalidProxy(String),
    #[error(
        "At least one time interval (weeks, days, hours, minutes, or seconds) must be specified when not using global settings."
    )]
    NoTimeInterval,
    #[error("'{0}' is not a valid AppRise URL.")]
    InvalidNotificationUrl(String),
    /// Request `body` or `link_to_open` does not compile as a template.
    #[error("{field}: Invalid template syntax: {error}")]
    TemplateSyntax { field: &'static str, error: String },
    #[error("headers: Invalid template syntax in \"{header}\" header: {error}")]
    HeaderTemplateSyntax { header: String, error: String },
    /// `notification_title` / `notification_body` does not compile.
    #[error("{field}: This is not a valid Jinja2 template: {error}")]
    NotificationTemplate { field: &'static str, error: String },
    #[error("time_schedule_limit.timezone: Not a valid timezone name")]
    InvalidTimezone(String),
    /// Sorted field names.
    #[error("Unknown field(s): {}", .0.join(", "))]
    UnknownFields(Vec<String>),
    #[error("Invalid or unsupported tag")]
    InvalidTag,
    #[error("tag_colour: must be a hex colour, for example #4f8ef7")]
    InvalidTagColour,
}

/// How an error reaches the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorBody {
    /// A JSON string: upstream's handlers `return "text", 400`.
    JsonString,
    /// `{"message": "text"}`: upstream's validation layer raises BadRequest.
    MessageObject,
}

impl ApiValidationError {
    pub fn status(&self) -> u16 {
        400
    }

    pub fn body_kind(&self) -> ErrorBody {
        match self {
            ApiValidationError::ValidationFailed(_) => ErrorBody::MessageObject,
            _ => ErrorBody::JsonString,
        }
    }

    /// The JSON response body.
    pub fn to_body(&self) -> Value {
        match self.body_kind() {
            ErrorBody::JsonString => Value::String(self.to_string()),
            ErrorBody::MessageObject => {
                let mut m = Map::new();
                m.insert("message".into(), Value::String(self.to_string()));
                Value::Object(m)
            }
        }
    }
}

/// What the write checks need from outside the model.
#[derive(Default)]
pub struct ApiContext<'a> {
    /// Keys of the proxy list (proxies.json keys plus [`RequestsSettings::ui_proxy_keys`]).
    pub proxy_names: &'a [String],
    /// Apprise URL check; `None` accepts every URL.
    pub notification_url_validator: Option<&'a dyn Fn(&str) -> bool>,
}

impl fmt::Debug for ApiContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiContext")
            .field("proxy_names", &self.proxy_names)
            .field(
                "notification_url_validator",
                &self.notification_url_validator.is_some(),
            )
            .finish()
    }
}

// -------------------------------------------------------------------------------------------
// Individual checks, in the order the endpoints run them
// -------------------------------------------------------------------------------------------

fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Bool(true)) => true,
    }
}

fn check_proxy(body: &Map<String, Value>, ctx: &ApiContext<'_>) -> Result<(), ApiValidationError> {
    let Some(proxy) = body.get("proxy").filter(|v| truthy(Some(v))) else {
        return Ok(());
    };
    let known = proxy
        .as_str()
        .is_some_and(|p| ctx.proxy_names.iter().any(|n| n == p));
    if known {
        return Ok(());
    }
    let list = if ctx.proxy_names.is_empty() {
        "none configured".to_string()
    } else {
        ctx.proxy_names.join(", ")
    };
    Err(ApiValidationError::InvalidProxy(list))
}

/// Only the request body counts: a PUT that omits `time_between_check_use_default` is taken
/// as using the default, whatever the stored watch says (upstream behaviour).
pub fn check_time_between_check(body: &Map<String, Value>) -> Result<(), ApiValidationError> {
    if body
        .get("time_between_check_use_default")
        .is_none_or(|v| truthy(Some(v)))
    {
        return Ok(());
    }
    let Some(Value::Object(tbc)) = body.get("time_between_check").filter(|v| truthy(Some(v)))
    else {
        return Err(ApiValidationError::NoTimeInterval);
    };
    let any_positive = ["weeks", "days", "hours", "minutes", "seconds"]
        .iter()
        .any(|k| tbc.get(*k).and_then(Value::as_f64).is_some_and(|n| n > 0.0));
    if any_positive {
        Ok(())
    } else {
        Err(ApiValidationError::NoTimeInterval)
    }
}

fn check_notification_urls(
    body: &Map<String, Value>,
    ctx: &ApiContext<'_>,
) -> Result<(), ApiValidationError> {
    let (Some(Value::Array(urls)), Some(valid)) = (
        body.get("notification_urls"),
        ctx.notification_url_validator,
    ) else {
        return Ok(());
    };
    for u in urls.iter().filter_map(Value::as_str) {
        let u = u.trim();
        if u.starts_with('#') {
            continue;
        }
        if !valid(u) {
            return Err(ApiValidationError::InvalidNotificationUrl(u.to_string()));
        }
    }
    Ok(())
}

/// The URL checks of PUT /watch/{uuid}; returns the trimmed URL to store.
pub fn validate_put_url(v: &Value) -> Result<String, ApiValidationError> {
    let url = match v {
        Value::Null => return Err(ApiValidationError::UrlNull),
        Value::String(s) => s,
        _ => return Err(ApiValidationError::UrlNotString),
    };
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err(ApiValidationError::UrlEmpty);
    }
    if !is_valid_watch_url(trimmed) {
        return Err(ApiValidationError::UrlBadFormat);
    }
    Ok(trimmed.to_string())
}

fn check_templates(body: &Map<String, Value>) -> Result<(), ApiValidationError> {
    for field in ["body", "link_to_open"] {
        if let Some(Value::String(s)) = body.get(field) {
            check_template_syntax(s)
                .map_err(|error| ApiValidationError::TemplateSyntax { field, error })?;
        }
    }
    if let Some(Value::Object(headers)) = body.get("headers") {
        for (name, value) in headers {
            if let Value::String(s) = value {
                check_template_syntax(s).map_err(|error| {
                    ApiValidationError::HeaderTemplateSyntax {
                        header: name.clone(),
                        error,
                    }
                })?;
            }
        }
    }
    for field in ["notification_title", "notification_body"] {
        if let Some(Value::String(s)) = body.get(field) {
            check_template_syntax(s)
                .map_err(|error| ApiValidationError::NotificationTemplate { field, error })?;
        }
    }
    Ok(())
}

/// Fields holding filter rules (`FilterKind` prefixes) and text rules (substrings or
/// `/regex/flags`), checked when saved so a rule that cannot run safely is a 400 naming the
/// field, not a failing (or crashing) check later.
pub const FILTER_RULE_FIELDS: [&str; 2] = ["include_filters", "subtractive_selectors"];
pub const TEXT_RULE_FIELDS: [&str; 5] = [
    "ignore_text",
    "trigger_text",
    "text_should_not_be_present",
    "extract_text",
    "extract_lines_containing",
];

/// Limits of one rule in `field` (one of [`FILTER_RULE_FIELDS`], [`TEXT_RULE_FIELDS`] or the
/// global `global_ignore_text` / `global_subtractive_selectors`): length, bracket nesting and,
/// for jq, operator count. Only cheap linear scans run here, never a parser: validation runs in
/// the API process, which a parser's stack overflow would abort.
pub fn check_rule_limits(field: &str, rule: &str) -> Result<(), String> {
    let checked = if FILTER_RULE_FIELDS.contains(&field) || field == "global_subtractive_selectors"
    {
        crate::filters::check_complexity(rule)
    } else {
        crate::filters::check_text_rule_complexity(rule)
    };
    checked.map_err(|e| e.to_string())
}

/// `field.i: reason` for each rule of `field` over its limits.
fn rule_list_errors<'a>(field: &str, rules: impl Iterator<Item = &'a str>) -> Vec<String> {
    rules
        .enumerate()
        .filter_map(|(i, rule)| {
            check_rule_limits(field, rule)
                .err()
                .map(|e| format!("{field}.{i}: {e}"))
        })
        .collect()
}

/// `ValidationFailed` listing `errs`, when there are any.
fn validation_result(errs: Vec<String>) -> Result<(), ApiValidationError> {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiValidationError::ValidationFailed(errs))
    }
}

/// [`check_rule_limits`] over a list, for settings endpoints that hold rule lists.
pub fn validate_rule_list(field: &str, rules: &[String]) -> Result<(), ApiValidationError> {
    validation_result(rule_list_errors(field, rules.iter().map(String::as_str)))
}

/// The rule lists of a watch or tag body, after the schema check (non-strings are already
/// refused there).
fn check_rules(body: &Map<String, Value>) -> Result<(), ApiValidationError> {
    let errs = FILTER_RULE_FIELDS
        .iter()
        .chain(TEXT_RULE_FIELDS.iter())
        .filter_map(|field| match body.get(*field) {
            Some(Value::Array(items)) => Some(rule_list_errors(
                field,
                items.iter().map(|v| v.as_str().unwrap_or("")),
            )),
            _ => None,
        })
        .flatten()
        .collect();
    validation_result(errs)
}

fn check_timezone(body: &Map<String, Value>) -> Result<(), ApiValidationError> {
    let Some(Value::Object(tsl)) = body.get("time_schedule_limit") else {
        return Ok(());
    };
    match tsl.get("timezone") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s.trim().is_empty() || is_valid_timezone(s.trim()) => Ok(()),
        Some(other) => Err(ApiValidationError::InvalidTimezone(match other {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        })),
    }
}

/// Upstream re-checks the colour in code after the schema's pattern (the value ends up in a
/// stylesheet).
pub fn validate_tag_colour(v: Option<&Value>) -> Result<(), ApiValidationError> {
    match v {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s.is_empty() || is_hex_colour(s.trim()) => Ok(()),
        Some(Value::Bool(false)) => Ok(()),
        Some(_) => Err(ApiValidationError::InvalidTagColour),
    }
}

/// The body without `__*` transient keys and system-managed fields.
fn public_fields(body: &Map<String, Value>) -> Map<String, Value> {
    body.iter()
        .filter(|(k, _)| !is_internal_key(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Takes the restock processor's config out of `data` (it is stored apart); the only
/// processor config there is, so any other `processor_config_*` stays behind as unknown.
fn take_processor_config(data: &mut Map<String, Value>) -> Option<Value> {
    data.remove("processor_config_restock_diff")
}

fn unknown_fields(data: &Map<String, Value>, extra_valid: &[&str]) -> Vec<String> {
    let mut unknown: Vec<String> = data
        .keys()
        .filter(|k| {
            !WATCH_BASE_PROPS.iter().any(|(n, _)| n == k) && !extra_valid.contains(&k.as_str())
        })
        .cloned()
        .collect();
    unknown.sort();
    unknown
}

// -------------------------------------------------------------------------------------------
// Applying validated fields
// -------------------------------------------------------------------------------------------

fn conv_err(what: &str) -> String {
    format!("expected {what}")
}

fn v_bool(v: &Value) -> Result<bool, String> {
    v.as_bool().ok_or_else(|| conv_err("a boolean"))
}

fn v_opt_bool(v: &Value) -> Result<Option<bool>, String> {
    if v.is_null() {
        Ok(None)
    } else {
        v_bool(v).map(Some)
    }
}

fn v_string(v: &Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| conv_err("a string"))
}

fn v_opt_string(v: &Value) -> Result<Option<String>, String> {
    if v.is_null() {
        Ok(None)
    } else {
        v_string(v).map(Some)
    }
}

fn v_i64(v: &Value) -> Result<i64, String> {
    lenient::value_to_i64(v)
        .filter(|_| v.is_number())
        .ok_or_else(|| conv_err("an integer"))
}

fn v_opt_i64(v: &Value) -> Result<Option<i64>, String> {
    if v.is_null() {
        Ok(None)
    } else {
        v_i64(v).map(Some)
    }
}

fn v_opt_f64(v: &Value) -> Result<Option<f64>, String> {
    if v.is_null() {
        Ok(None)
    } else {
        v.as_f64().map(Some).ok_or_else(|| conv_err("a number"))
    }
}

fn v_str_list(v: &Value) -> Result<Vec<String>, String> {
    v.as_array()
        .ok_or_else(|| conv_err("an array"))?
        .iter()
        .map(v_string)
        .collect()
}

fn v_object(v: &Value) -> Result<&Map<String, Value>, String> {
    v.as_object().ok_or_else(|| conv_err("an object"))
}

fn parse_time_between_check(v: &Value) -> Result<TimeBetweenCheck, String> {
    let o = v_object(v)?;
    let get = |k: &str| o.get(k).map_or(Ok(None), v_opt_i64);
    Ok(TimeBetweenCheck {
        weeks: get("weeks")?,
        days: get("days")?,
        hours: get("hours")?,
        minutes: get("minutes")?,
        seconds: get("seconds")?,
    })
}

/// Upstream replaces the whole object; missing days and parts fall back to the defaults
/// here instead of disappearing.
fn parse_time_schedule_limit(v: &Value) -> Result<TimeScheduleLimit, String> {
    let o = v_object(v)?;
    let mut t = TimeScheduleLimit::default();
    if let Some(e) = o.get("enabled") {
        t.enabled = v_bool(e)?;
    }
    for (name, dv) in o {
        let Some(day) = t.day_mut(name) else {
            continue;
        };
        let d = v_object(dv)?;
        if let Some(e) = d.get("enabled") {
            day.enabled = v_bool(e)?;
        }
        if let Some(s) = d.get("start_time") {
            day.start_time = v_string(s)?;
        }
        if let Some(Value::Object(dur)) = d.get("duration") {
            if let Some(h) = dur.get("hours") {
                day.duration.hours = v_string(h)?;
            }
            if let Some(m) = dur.get("minutes") {
                day.duration.minutes = v_string(m)?;
            }
        }
    }
    t.timezone = match o.get("timezone") {
        None | Some(Value::Null) => None,
        Some(tz) => Some(v_string(tz)?.trim().to_string()),
    };
    Ok(t)
}

fn parse_restock_config(v: &Value) -> Result<RestockConfig, String> {
    let o = v_object(v)?;
    let mut c = RestockConfig::default();
    if let Some(x) = o.get("in_stock_processing") {
        c.in_stock_processing = v_string(x)?;
    }
    if let Some(x) = o.get("follow_price_changes") {
        c.follow_price_changes = v_bool(x)?;
    }
    if let Some(x) = o.get("price_change_min") {
        c.price_change_min = v_opt_f64(x)?;
    }
    if let Some(x) = o.get("price_change_max") {
        c.price_change_max = v_opt_f64(x)?;
    }
    if let Some(x) = o.get("price_change_threshold_percent") {
        c.price_change_threshold_percent = v_opt_f64(x)?;
    }
    Ok(c)
}

/// Sets one writable field from an already schema-checked value. `Ok(false)`: not a field
/// this setter knows.
fn set_watch_field(w: &mut Watch, key: &str, v: &Value) -> Result<bool, String> {
    match key {
        "url" => w.url = v_string(v)?.trim().to_string(),
        "link_to_open" => w.link_to_open = v_string(v)?,
        "title" => w.title = v_opt_string(v)?,
        "tag" => w.tag = v_string(v)?,
        "tags" => {
            let mut seen = BTreeSet::new();
            w.tags = v_str_list(v)?
                .into_iter()
                .map(|t| t.trim().to_string())
                .filter(|t| seen.insert(t.clone()))
                .collect();
        }
        "paused" => w.paused = v_bool(v)?,
        "notification_muted" => w.notification_muted = v_bool(v)?,
        "method" => w.method = v_string(v)?,
        "fetch_backend" => w.fetch_backend = v_string(v)?,
        "headers" => {
            w.headers = v_object(v)?
                .iter()
                .map(|(k, hv)| v_string(hv).map(|s| (k.clone(), s)))
                .collect::<Result<_, _>>()?;
        }
        "body" => w.body = v_opt_string(v)?,
        "proxy" => w.proxy = v_opt_string(v)?.filter(|p| !p.is_empty()),
        "ignore_status_codes" => w.ignore_status_codes = v_opt_bool(v)?,
        "webdriver_delay" => w.webdriver_delay = v_opt_i64(v)?,
        "webdriver_js_execute_code" => w.webdriver_js_execute_code = v_opt_string(v)?,
        "time_between_check" => w.time_between_check = parse_time_between_check(v)?,
        "time_between_check_use_default" => w.time_between_check_use_default = v_bool(v)?,
        "notification_urls" => w.notification_urls = v_str_list(v)?,
        "notification_title" => w.notification_title = v_opt_string(v)?,
        "notification_body" => w.notification_body = v_opt_string(v)?,
        "notification_format" => w.notification_format = v_string(v)?,
        "track_ldjson_price_data" => {
            w.track_ldjson_price_data = match v {
                Value::Null => None,
                Value::Bool(b) => Some(BoolOrText::Bool(*b)),
                other => Some(BoolOrText::Text(v_string(other)?)),
            }
        }
        "browser_steps" => {
            let steps = v
                .as_array()
                .ok_or_else(|| conv_err("an array"))?
                .iter()
                .map(|s| {
                    let o = v_object(s)?;
                    let f = |k: &str| o.get(k).map_or(Ok(None), v_opt_string);
                    Ok(BrowserStep {
                        operation: f("operation")?,
                        selector: f("selector")?,
                        optional_value: f("optional_value")?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            w.browser_steps = valid_browser_steps(steps);
        }
        "processor" => w.processor = v_string(v)?,
        "include_filters" => w.include_filters = v_str_list(v)?,
        "subtractive_selectors" => w.subtractive_selectors = v_str_list(v)?,
        "ignore_text" => w.ignore_text = v_str_list(v)?,
        "trigger_text" => w.trigger_text = v_str_list(v)?,
        "text_should_not_be_present" => w.text_should_not_be_present = v_str_list(v)?,
        "extract_lines_containing" => w.extract_lines_containing = v_str_list(v)?,
        "extract_text" => w.extract_text = v_str_list(v)?,
        "trim_text_whitespace" => w.trim_text_whitespace = v_bool(v)?,
        "sort_text_alphabetically" => w.sort_text_alphabetically = v_bool(v)?,
        "remove_duplicate_lines" => w.remove_duplicate_lines = v_bool(v)?,
        "check_unique_lines" => w.check_unique_lines = v_bool(v)?,
        "strip_ignored_lines" => w.strip_ignored_lines = v_opt_bool(v)?,
        "filter_text_added" => w.filter_text_added = v_bool(v)?,
        "filter_text_removed" => w.filter_text_removed = v_bool(v)?,
        "filter_text_replaced" => w.filter_text_replaced = v_bool(v)?,
        "in_stock_only" => w.in_stock_only = v_bool(v)?,
        "follow_price_changes" => w.follow_price_changes = v_bool(v)?,
        "price_change_threshold_percent" => w.price_change_threshold_percent = v_opt_f64(v)?,
        "notification_screenshot" => w.notification_screenshot = v_bool(v)?,
        "filter_failure_notification_send" => w.filter_failure_notification_send = v_bool(v)?,
        "use_page_title_in_list" => w.use_page_title_in_list = v_opt_bool(v)?,
        "history_snapshot_max_length" => w.history_snapshot_max_length = v_opt_i64(v)?,
        "time_schedule_limit" => w.time_schedule_limit = parse_time_schedule_limit(v)?,
        "conditions" => {
            w.conditions = v
                .as_array()
                .ok_or_else(|| conv_err("an array"))?
                .iter()
                .map(|c| {
                    let o = v_object(c)?;
                    let f = |k: &str| o.get(k).map_or(Ok(String::new()), v_string);
                    Ok(Condition {
                        field: f("field")?,
                        operator: f("operator")?,
                        value: f("value")?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
        }
        "conditions_match_logic" => w.conditions_match_logic = v_string(v)?,
        "llm_intent" => w.llm_intent = v_string(v)?,
        "llm_change_summary" => w.llm_change_summary = v_string(v)?,
        "llm_change_summary_mode" => w.llm_change_summary_mode = v_string(v)?,
        "llm_backend_profile" => w.llm_backend_profile = v_opt_bool(v)?,
        "last_viewed" => w.last_viewed = v_i64(v)?,
        // `{}` is what GET shows for "no config"; sending it back must not invent one.
        "processor_config_restock_diff" => {
            w.processor_config_restock_diff = match v {
                Value::Object(o) if o.is_empty() => None,
                Value::Null => None,
                other => Some(parse_restock_config(other)?),
            };
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn set_tag_field(t: &mut Tag, key: &str, v: &Value) -> Result<bool, String> {
    match key {
        "overrides_watch" => t.overrides_watch = v_opt_bool(v)?,
        "url_match_pattern" => t.url_match_pattern = v_string(v)?,
        "tag_colour" => {
            t.tag_colour = match v {
                Value::Null => None,
                other => Some(v_string(other)?.trim().to_string()),
            }
        }
        _ => return set_watch_field(&mut t.base, key, v),
    }
    Ok(true)
}

fn apply_fields(
    data: &Map<String, Value>,
    mut set: impl FnMut(&str, &Value) -> Result<bool, String>,
) -> Result<(), ApiValidationError> {
    let mut errs = Vec::new();
    for (k, v) in data {
        if let Err(e) = set(k, v) {
            errs.push(format!("{k}: {e}"));
        }
    }
    validation_result(errs)
}

// -------------------------------------------------------------------------------------------
// Endpoints
// -------------------------------------------------------------------------------------------

/// Result of POST /watch before the store adds it.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchCreate {
    pub watch: Watch,
    /// Legacy `tag` field: comma-separated tag *names* the store resolves (existing title,
    /// case-insensitive, else a new tag) and appends to `watch.tags`.
    pub tag_names: Vec<String>,
}

/// POST /watch. Checks run in upstream's order: schema, URL, proxy, interval, notification
/// URLs, then templates and timezone. `__*`, system-managed, readOnly and computed keys are
/// dropped; any other unknown key is refused as PUT refuses it (upstream stores it verbatim
/// and never reads it: a misspelt field would look saved and do nothing).
pub fn create_watch_from_json(
    body: Value,
    ctx: &ApiContext<'_>,
) -> Result<WatchCreate, ApiValidationError> {
    let obj = schema_check(&body, CREATE_WATCH_SCHEMA)?;
    let mut data = public_fields(obj);
    let url = data
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_string();
    if !is_valid_watch_url(&url) {
        return Err(ApiValidationError::InvalidUrl);
    }
    check_proxy(&data, ctx)?;
    check_time_between_check(&data)?;
    check_notification_urls(&data, ctx)?;
    check_templates(&data)?;
    check_rules(&data)?;
    check_timezone(&data)?;

    let restock = take_processor_config(&mut data);
    let tag_names: Vec<String> = match data.remove("tag") {
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    data.retain(|k, _| {
        !READONLY_WATCH_FIELDS.contains(&k.as_str())
            && !WATCH_PROPERTY_NAMES.contains(&k.as_str())
            && !COPY_DROPPED_FIELDS.contains(&k.as_str())
            && k != "url"
    });
    let unknown = unknown_fields(&data, &[]);
    if !unknown.is_empty() {
        return Err(ApiValidationError::UnknownFields(unknown));
    }

    let mut watch = Watch::new(url);
    apply_fields(&data, |k, v| set_watch_field(&mut watch, k, v))?;
    if let Some(r) = restock {
        apply_fields(
            &Map::from_iter([("processor_config_restock_diff".to_string(), r)]),
            |k, v| set_watch_field(&mut watch, k, v),
        )?;
    }
    Ok(WatchCreate { watch, tag_names })
}

/// Result of a successful PUT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchUpdate {
    /// A setting changed (anything but `last_viewed`): the next check must not take the
    /// "raw content unchanged" shortcut.
    pub edited: bool,
}

/// PUT /watch/{uuid}: partial update. On error the watch is left untouched.
pub fn apply_watch_update(
    watch: &mut Watch,
    body: Value,
    ctx: &ApiContext<'_>,
) -> Result<WatchUpdate, ApiValidationError> {
    let obj = schema_check(&body, UPDATE_WATCH_SCHEMA)?;
    check_proxy(obj, ctx)?;
    check_time_between_check(obj)?;
    check_notification_urls(obj, ctx)?;
    if let Some(u) = obj.get("url") {
        validate_put_url(u)?;
    }
    check_templates(obj)?;
    check_rules(obj)?;
    check_timezone(obj)?;

    let mut data = public_fields(obj);
    let restock = take_processor_config(&mut data);
    data.retain(|k, _| {
        !READONLY_WATCH_FIELDS.contains(&k.as_str()) && !WATCH_PROPERTY_NAMES.contains(&k.as_str())
    });
    let unknown = unknown_fields(&data, &["last_viewed"]);
    if !unknown.is_empty() {
        return Err(ApiValidationError::UnknownFields(unknown));
    }
    if let Some(r) = restock {
        data.insert("processor_config_restock_diff".into(), r);
    }

    let mut updated = watch.clone();
    apply_fields(&data, |k, v| set_watch_field(&mut updated, k, v))?;
    *watch = updated;
    Ok(WatchUpdate {
        edited: data.keys().any(|k| k != "last_viewed"),
    })
}

/// Result of POST /tag before the store adds it: a tag with the same title (ignoring case)
/// is reused, and receives the other fields ([`TagCreate::apply_to`]).
#[derive(Clone, Debug, PartialEq)]
pub struct TagCreate {
    /// Trimmed title.
    pub title: String,
    fields: Map<String, Value>,
    tag: Tag,
}

impl TagCreate {
    /// The new tag (fresh uuid, created now).
    pub fn into_tag(self) -> Tag {
        self.tag
    }

    /// Applies the request's fields (other than `title`) to an existing tag.
    pub fn apply_to(&self, existing: &mut Tag) {
        for (k, v) in &self.fields {
            // Already applied once to `self.tag` without error.
            let _applied = set_tag_field(existing, k, v);
        }
    }
}

/// POST /tag.
pub fn create_tag_from_json(body: Value) -> Result<TagCreate, ApiValidationError> {
    let obj = schema_check(&body, CREATE_TAG_SCHEMA)?;
    let mut data = public_fields(obj);
    let title = data
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_string();
    let unknown = unknown_fields(
        &data,
        &["overrides_watch", "url_match_pattern", "tag_colour"],
    );
    if !unknown.is_empty() {
        return Err(ApiValidationError::UnknownFields(unknown));
    }
    validate_tag_colour(data.get("tag_colour"))?;
    if title.is_empty() {
        return Err(ApiValidationError::InvalidTag);
    }
    check_templates(&data)?;
    check_rules(&data)?;
    check_timezone(&data)?;
    data.retain(|k, _| !READONLY_TAG_FIELDS.contains(&k.as_str()) && k != "title");
    data.retain(|k, _| !k.starts_with("processor_config_") || k == "processor_config_restock_diff");

    let mut tag = Tag::new(&title);
    apply_fields(&data, |k, v| set_tag_field(&mut tag, k, v))?;
    Ok(TagCreate {
        title,
        fields: data,
        tag,
    })
}

/// PUT /tag/{uuid}: partial update. On error the tag is left untouched. The caller should
/// then clear member watches' raw-content checksums so they fully reprocess.
pub fn apply_tag_update(
    tag: &mut Tag,
    body: Value,
    ctx: &ApiContext<'_>,
) -> Result<(), ApiValidationError> {
    let obj = schema_check(&body, TAG_SCHEMA)?;
    let mut data = public_fields(obj);
    check_notification_urls(&data, ctx)?;
    data.retain(|k, _| !READONLY_TAG_FIELDS.contains(&k.as_str()));
    let unknown = unknown_fields(
        &data,
        &["overrides_watch", "url_match_pattern", "tag_colour"],
    );
    if !unknown.is_empty() {
        return Err(ApiValidationError::UnknownFields(unknown));
    }
    validate_tag_colour(data.get("tag_colour"))?;
    check_templates(&data)?;
    check_rules(&data)?;
    check_timezone(&data)?;
    if let Some(Value::String(t)) = data.get("title")
        && t.trim().is_empty()
    {
        return Err(ApiValidationError::InvalidTag);
    }

    let mut updated = tag.clone();
    apply_fields(&data, |k, v| set_tag_field(&mut updated, k, v))?;
    *tag = updated;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// upstream `watch_base` defaults (model/__init__.py), plus `link_to_open` (0.60) and
    /// `llm_backend_profile` (contract), uuid left out.
    fn upstream_watch_defaults() -> Value {
        let day = r#"{"enabled": true, "start_time": "00:00", "duration": {"hours": "24", "minutes": "00"}}"#;
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

    // ---- data model ------------------------------------------------------------------

    #[test]
    fn default_watch_has_upstream_keys_and_defaults() {
        let w = Watch::default();
        let v = serde_json::to_value(&w).unwrap();
        assert_eq!(without_uuid(v.clone()), upstream_watch_defaults());
        let id = uuid::Uuid::parse_str(v["uuid"].as_str().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 4);
        assert_ne!(Watch::default().uuid, w.uuid);
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
        let loaded: Settings = serde_json::from_value(
            json!({"application": {"password": "salted", "pager_size": 20.0}}),
        )
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
        assert!(is_uuid_format("0B1E4B0A-5B1E-4F7E-9F3E-7D8F7F4B2A11"));
        assert!(!is_uuid_format("0b1e4b0a5b1e4f7e9f3e7d8f7f4b2a11"));
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
            "conditions": [{"field": "page_filtered_text", "operator": "contains_regex", "value": "x"}],
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

    #[test]
    fn post_minimal_and_legacy_tag() {
        let c =
            post(json!({"url": "  https://example.com/  ", "tag": "a, b,,", "tags": ["u1", "u1"]}))
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
            "processor_config_restock_diff": {"in_stock_processing": "all_changes"},
        }))
        .unwrap();
        let w = c.watch;
        assert_ne!(w.uuid, "0b1e4b0a-5b1e-4f7e-9f3e-7d8f7f4b2a11");
        assert_eq!(w.check_count, 0);
        assert_eq!(w.last_error, TextOrFalse::False);
        assert!(w.restock.is_none());
        assert_eq!(
            w.processor_config_restock_diff
                .as_ref()
                .unwrap()
                .in_stock_processing,
            "all_changes"
        );
        assert!(
            w.processor_config_restock_diff
                .as_ref()
                .unwrap()
                .follow_price_changes
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
        post(
            json!({"url": url, "fetch_backend": "extra_browser_mychrome", "webdriver_delay": 2.0}),
        )
        .unwrap();
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
        post(json!({"url": url, "body": "{\"a\": \"{{ 1 }}\"}", "notification_title": "{{watch_url}}"}))
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

    // ---- PUT /watch ------------------------------------------------------------------

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
                "processor_config_restock_diff": {"price_change_min": 1.5},
            }),
        )
        .unwrap();
        assert_eq!(w.include_filters, vec!["a"]);
        assert_eq!(w.time_between_check, TimeBetweenCheck::hours(2));
        assert_eq!(w.browser_steps.len(), 1);
        assert_eq!(w.browser_steps[0].selector.as_deref(), Some("#x"));
        assert!(w.has_browser_steps());
        let cfg = w.processor_config_restock_diff.as_ref().unwrap();
        assert_eq!(cfg.price_change_min, Some(1.5));
        assert_eq!(cfg.in_stock_processing, "in_stock_only");
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

    // ---- tags --------------------------------------------------------------------------

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
                                         "processor_config_restock_diff": {"follow_price_changes": false}}), &ctx())
            .unwrap();
        assert_eq!(t.url_match_pattern, "*.example.com/*");
        assert!(
            !t.base
                .processor_config_restock_diff
                .as_ref()
                .unwrap()
                .follow_price_changes
        );
        assert_eq!(serde_json::to_value(&t).unwrap()["tag_colour"], "#fff");
    }

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
        let long = "x".repeat(crate::filters::MAX_RULE_CHARS + 1);
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
            if rule.len() > crate::filters::MAX_RULE_CHARS {
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
}
