//! The watch, tag and global-settings data model, as changedetection.io's JSON has it.
//!
//! Everything here mirrors changedetection.io's JSON exactly (keys, defaults, `str|false`
//! fields), because existing API clients, backups and scripts read and write that JSON.
//! Every item is re-exported here, so callers name `model::Watch`, not the file it lives in.
//!
//! - `values`: the small value types (`TextOrFalse`, intervals, time-of-week limits, browser
//!   steps, conditions, restock state) and lenient number parsing for older datastores.
//! - `steps`: the browser steps' operations by upstream's names, and what makes a step
//!   runnable (the API refuses any other).
//! - `watch`, `tag`, `settings`: [`Watch`], [`Tag`], [`Settings`], what the store persists.
//!   The system-managed fields (`restock`, `last_check_status`, ...) live in the same struct
//!   so the store can persist one value per watch; [`Watch::api_view`] leaves them out.
//! - `cascade`: [`processor_settings`], [`resolve_notification_settings`],
//!   [`resolved_restock_config`], the watch > tag > global cascades.
//! - `watch_url`, `template`: URL validity as upstream judges it, template syntax and
//!   timezone names; nothing is rendered here (rendering belongs to the notification engine,
//!   so the functions that need a rendered URL take a renderer).
//!
//! The REST API's rules for writing these (schema, upstream's checks and messages) live in
//! `changewatch_api::validate`; the constants below say which fields those rules drop.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::pipeline::ProcessorSettings;

mod cascade;
mod settings;
mod steps;
mod tag;
mod template;
#[cfg(test)]
mod tests;
mod values;
mod watch;
mod watch_url;

pub use cascade::*;
pub use settings::*;
pub use steps::*;
pub use tag::*;
pub use template::*;
pub use values::*;
pub use watch::*;
pub use watch_url::*;

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
    "last_raw_checksum",
    "last_validators",
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
pub const READONLY_WATCH_FIELDS: &[&str] = &[
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
pub const COPY_DROPPED_FIELDS: &[&str] = &["last_viewed"];

/// Upstream also drops every Python `@property` name of its Watch class from PUT bodies; a
/// client may well have stored one of these next to the watch JSON.
pub const WATCH_PROPERTY_NAMES: &[&str] = &[
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
pub const READONLY_TAG_FIELDS: &[&str] = &[
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

use crate::clock::epoch_now as now_epoch;
