//! The global settings document.

use super::*;

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

/// The proxy-list key that means "no proxy" (upstream's `ENABLE_NO_PROXY_OPTION`, on).
pub const NO_PROXY: &str = "no-proxy";

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

    /// The proxy list as upstream builds it: `(key, url)` of every UI proxy, then `no-proxy`
    /// with no URL (a watch's way to go direct while a list exists). Empty without proxies.
    pub fn proxy_list(&self) -> Vec<(String, String)> {
        let mut list: Vec<(String, String)> = self
            .extra_proxies
            .iter()
            .filter(|p| !p.proxy_name.is_empty() && !p.proxy_url.is_empty())
            .map(|p| (format!("ui-0{}", p.proxy_name), p.proxy_url.clone()))
            .collect();
        if !list.is_empty() {
            list.push((NO_PROXY.to_string(), String::new()));
        }
        list
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
