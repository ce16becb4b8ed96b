//! The watch document, its API view and its computed fields.

use super::*;

/// A watched URL and its settings, serialized with upstream's exact keys (`watch.json`).
///
/// Fields are in key order. Scheduling state the store adds later (next check time, queue
/// position) does not belong here: it is runtime state, not part of the watch's JSON.
///
/// Defaults are per field, not the container's `Default`: a container default would build a
/// whole `Watch::default()` for every document decoded, once per check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Watch {
    /// Request body; a Jinja2 template.
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub browser_steps: Vec<BrowserStep>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub browser_steps_last_error_step: Option<i64>,
    #[serde(default, deserialize_with = "lenient::i64")]
    pub check_count: i64,
    /// Only a line never seen in any snapshot counts as a change.
    #[serde(default)]
    pub check_unique_lines: bool,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// `ALL` | `ANY`.
    #[serde(default = "defaults::all")]
    pub conditions_match_logic: String,
    #[serde(default, deserialize_with = "lenient::i64")]
    pub consecutive_filter_failures: i64,
    /// Lowercased Content-Type of the last reply; also decides PDF handling.
    #[serde(default, rename = "content-type")]
    pub content_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub date_created: Option<i64>,
    #[serde(default)]
    pub extract_lines_containing: Vec<String>,
    #[serde(default)]
    pub extract_text: Vec<String>,
    /// `system` means "the global fetch_backend".
    #[serde(default = "defaults::system")]
    pub fetch_backend: String,
    #[serde(default, deserialize_with = "lenient::f64")]
    pub fetch_time: f64,
    #[serde(default = "defaults::yes")]
    pub filter_failure_notification_send: bool,
    #[serde(default = "defaults::yes")]
    pub filter_text_added: bool,
    #[serde(default = "defaults::yes")]
    pub filter_text_removed: bool,
    #[serde(default = "defaults::yes")]
    pub filter_text_replaced: bool,
    #[serde(default = "defaults::yes")]
    pub follow_price_changes: bool,
    #[serde(default)]
    pub has_ldjson_price_data: Option<bool>,
    /// Extra request headers; values are Jinja2 templates.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub history_snapshot_max_length: Option<i64>,
    #[serde(default)]
    pub ignore_status_codes: Option<bool>,
    #[serde(default)]
    pub ignore_text: Vec<String>,
    #[serde(default = "defaults::yes")]
    pub in_stock_only: bool,
    #[serde(default)]
    pub include_filters: Vec<String>,
    /// Set when a check *starts*, so an in-flight watch is not queued again.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub last_checked: i64,
    #[serde(default)]
    pub last_error: TextOrFalse,
    #[serde(default)]
    pub last_notification_error: Option<TextOrFalse>,
    /// A watch is "viewed" when this is >= the newest snapshot's timestamp.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub last_viewed: i64,
    /// Human-facing URL opened instead of `url` (for API or feed URLs); empty = use `url`.
    #[serde(default)]
    pub link_to_open: String,
    #[serde(default = "defaults::some_yes")]
    pub llm_backend_profile: Option<bool>,
    #[serde(default)]
    pub llm_change_summary: String,
    /// `replace` | `append` (to the inherited summary prompt).
    #[serde(default = "defaults::replace")]
    pub llm_change_summary_mode: String,
    #[serde(default)]
    pub llm_intent: String,
    /// `GET` | `POST` | `DELETE` | `PUT`.
    #[serde(default = "defaults::get")]
    pub method: String,
    #[serde(default, deserialize_with = "lenient::i64")]
    pub notification_alert_count: i64,
    /// null = inherit from tag / global.
    #[serde(default)]
    pub notification_body: Option<String>,
    #[serde(default = "defaults::notification_format")]
    pub notification_format: String,
    #[serde(default)]
    pub notification_muted: bool,
    #[serde(default)]
    pub notification_screenshot: bool,
    #[serde(default)]
    pub notification_title: Option<String>,
    #[serde(default)]
    pub notification_urls: Vec<String>,
    #[serde(default)]
    pub page_title: Option<String>,
    #[serde(default)]
    pub paused: bool,
    /// md5 of the last processed text; `false` until the first unblocked check.
    #[serde(default)]
    pub previous_md5: TextOrFalse,
    #[serde(default)]
    pub price_change_threshold_percent: Option<f64>,
    #[serde(default = "defaults::processor")]
    pub processor: String,
    /// Key into the proxy list; null = tag / global choice.
    #[serde(default)]
    pub proxy: Option<String>,
    #[serde(default)]
    pub remote_server_reply: Option<String>,
    #[serde(default)]
    pub remove_duplicate_lines: bool,
    #[serde(default)]
    pub sort_text_alphabetically: bool,
    /// null = global `strip_ignored_lines`.
    #[serde(default)]
    pub strip_ignored_lines: Option<bool>,
    #[serde(default)]
    pub subtractive_selectors: Vec<String>,
    /// Deprecated single-tag field, kept because API v1 still accepts it.
    #[serde(default)]
    pub tag: String,
    /// Tag UUIDs (not validated: unknown ones are ignored at use).
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub text_should_not_be_present: Vec<String>,
    #[serde(default)]
    pub time_between_check: TimeBetweenCheck,
    #[serde(default = "defaults::yes")]
    pub time_between_check_use_default: bool,
    #[serde(default)]
    pub time_schedule_limit: TimeScheduleLimit,
    /// User title; wins over `page_title` for display.
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub track_ldjson_price_data: Option<BoolOrText>,
    #[serde(default)]
    pub trigger_text: Vec<String>,
    #[serde(default)]
    pub trim_text_whitespace: bool,
    /// May carry a `source:` prefix (keep the raw source) and Jinja2 markup.
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub use_page_title_in_list: Option<bool>,
    #[serde(default)]
    pub uuid: String,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub webdriver_delay: Option<i64>,
    #[serde(default)]
    pub webdriver_js_execute_code: Option<String>,

    // ---- readOnly, exposed by GET when present -------------------------------------------
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub llm_tokens_this_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_tokens_period_key: Option<String>,

    /// Upstream keeps this in `<watch dir>/restock_diff.json`, not `watch.json`; the store may
    /// take it out before writing. For a tag it is stored inline, as upstream does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processor_config_restock_diff: Option<RestockConfig>,

    // ---- system-managed: persisted, never exposed or accepted by the API ------------------
    #[serde(default)]
    pub llm_prefilter: Option<String>,
    #[serde(default)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_filter_config_hash: Option<String>,
    /// [`crate::reuse::Stamp`] of the last successfully processed reply: the same reply with
    /// the same settings is known to be unchanged without processing it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::or_none"
    )]
    pub last_raw_checksum: Option<String>,
    /// That reply's `ETag` / `Last-Modified`, for conditional requests.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::or_none"
    )]
    pub last_validators: Option<crate::reuse::Validators>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restock: Option<Restock>,
    #[serde(
        default,
        rename = "_llm_result",
        skip_serializing_if = "Option::is_none"
    )]
    pub llm_result: Option<Value>,
    #[serde(
        default,
        rename = "_llm_intent",
        skip_serializing_if = "Option::is_none"
    )]
    pub llm_intent_state: Option<Value>,
    #[serde(
        default,
        rename = "_llm_change_summary",
        skip_serializing_if = "Option::is_none"
    )]
    pub llm_change_summary_state: Option<Value>,
}

/// The defaults of [`Watch`]'s fields that are not their type's own, shared by its `Default`
/// and its per-field serde defaults so the two cannot drift apart.
mod defaults {
    pub fn yes() -> bool {
        true
    }
    pub fn some_yes() -> Option<bool> {
        Some(true)
    }
    pub fn all() -> String {
        "ALL".into()
    }
    pub fn system() -> String {
        "system".into()
    }
    pub fn replace() -> String {
        "replace".into()
    }
    pub fn get() -> String {
        "GET".into()
    }
    pub fn notification_format() -> String {
        super::NOTIFICATION_FORMAT_SYSTEM_DEFAULT.into()
    }
    pub fn processor() -> String {
        super::DEFAULT_PROCESSOR.into()
    }
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
            conditions_match_logic: defaults::all(),
            consecutive_filter_failures: 0,
            content_type: None,
            date_created: None,
            extract_lines_containing: Vec::new(),
            extract_text: Vec::new(),
            fetch_backend: defaults::system(),
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
            llm_change_summary_mode: defaults::replace(),
            llm_intent: String::new(),
            method: defaults::get(),
            notification_alert_count: 0,
            notification_body: None,
            notification_format: defaults::notification_format(),
            notification_muted: false,
            notification_screenshot: false,
            notification_title: None,
            notification_urls: Vec::new(),
            page_title: None,
            paused: false,
            previous_md5: TextOrFalse::False,
            price_change_threshold_percent: None,
            processor: defaults::processor(),
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
            uuid: String::new(),
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
            last_raw_checksum: None,
            last_validators: None,
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

    /// Whether a watch last viewed at `last_viewed` has seen the newest snapshot.
    pub fn seen_at(&self, last_viewed: i64) -> bool {
        last_viewed != 0 && last_viewed >= self.newest.unwrap_or(0)
    }
}

/// The fields of a watch document that the list's counters read (an error, an unread
/// change), decoded as [`Watch`] decodes them. Decoding these alone skips over the rest of a
/// ~3 KB document: the push layer does it for every check it hears of while nobody is
/// connected, and a whole `Watch` per check was a tenth of an unchanged check's CPU.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct WatchMarks {
    #[serde(default)]
    pub last_error: TextOrFalse,
    #[serde(default, deserialize_with = "lenient::i64")]
    pub last_viewed: i64,
}

/// Renders a Jinja2 template string (the URL or `link_to_open`) for display. The model does
/// not render templates itself; pass [`no_render`] when no renderer is at hand.
pub type Render<'a> = &'a dyn Fn(&str) -> Result<String, String>;

/// A [`Render`] that leaves templates as they are.
pub fn no_render(template: &str) -> Result<String, String> {
    Ok(template.to_string())
}

impl Watch {
    /// A new watch with upstream's defaults for `url`, created now, with a uuid of its own
    /// (`Default` and decoding mint none: every check decodes a watch).
    pub fn new(url: impl Into<String>) -> Self {
        Watch {
            url: url.into(),
            uuid: uuid::Uuid::new_v4().to_string(),
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
        history.seen_at(self.last_viewed)
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
        self.last_raw_checksum = None;
        self.last_validators = None;
        self.remote_server_reply = None;
        self.track_ldjson_price_data = None;
    }
}

/// A watch URL as upstream's `link` shows it: rendered when it has template markup, without
/// its `source:` prefix, `DISABLED` when unsafe, `""` when its template does not render.
pub fn resolve_link(url: &str, render: Render<'_>) -> String {
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

pub(super) fn to_value<T: Serialize + ?Sized>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

pub(super) fn to_object<T: Serialize>(v: &T) -> Map<String, Value> {
    match serde_json::to_value(v) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// Keys a client never sees or sets: `__`-prefixed runtime state and the system-managed fields.
pub fn is_internal_key(k: &str) -> bool {
    k.starts_with("__") || SYSTEM_MANAGED_FIELDS.contains(&k)
}

pub(super) fn strip_internal_keys(m: &mut Map<String, Value>) {
    m.retain(|k, _| !is_internal_key(k));
}
