//! POST / PUT semantics of the REST API v1: upstream's checks in upstream's order, its error
//! strings, and applying validated fields to a watch or tag.

use super::*;

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
        "fetch_backend: '{0}' names no browser in the settings' extra browsers (currently: {1})"
    )]
    UnknownBrowser(String, String),
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
    /// A notification template the notification engine's own validator refuses (unknown
    /// token, a render error against example values, a blown render budget); the text names
    /// the field.
    #[error("{0}")]
    NotificationTemplateRefused(String),
    #[error("time_schedule_limit.timezone: Not a valid timezone name")]
    InvalidTimezone(String),
    /// Sorted field names.
    #[error("Unknown field(s): {}", .0.join(", "))]
    UnknownFields(Vec<String>),
    #[error("Invalid or unsupported tag")]
    InvalidTag,
    #[error("tag_colour: must be a hex colour, for example #4f8ef7")]
    InvalidTagColour,
    /// Fields set to values changewatch would store and not act on, one text per field
    /// (`field: value is not supported: why (accepted: ...)`, see [`UNSUPPORTED_FIELDS`]).
    #[error("{}", .0.join("; "))]
    Unsupported(Vec<String>),
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
    /// `fetch_backend` values of the settings' extra browsers
    /// ([`RequestsSettings::extra_browser_backends`]).
    pub extra_browsers: &'a [String],
    /// Apprise URL check; `None` accepts every URL.
    pub notification_url_validator: Option<&'a dyn Fn(&str) -> bool>,
}

impl fmt::Debug for ApiContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiContext")
            .field("proxy_names", &self.proxy_names)
            .field("extra_browsers", &self.extra_browsers)
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

pub(super) fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Bool(true)) => true,
    }
}

pub(super) fn check_proxy(
    body: &Map<String, Value>,
    ctx: &ApiContext<'_>,
) -> Result<(), ApiValidationError> {
    let Some(proxy) = body.get("proxy").filter(|v| truthy(Some(v))) else {
        return Ok(());
    };
    let known = proxy
        .as_str()
        .is_some_and(|p| ctx.proxy_names.iter().any(|n| n == p));
    if known {
        return Ok(());
    }
    Err(ApiValidationError::InvalidProxy(proxy_list_text(
        ctx.proxy_names,
    )))
}

/// An `extra_browser_<name>` fetch backend must name one of the settings' extra browsers:
/// upstream quietly fetches such a watch over plain HTTP instead.
pub(super) fn check_fetch_backend(
    body: &Map<String, Value>,
    ctx: &ApiContext<'_>,
) -> Result<(), ApiValidationError> {
    match body.get("fetch_backend").and_then(Value::as_str) {
        Some(b)
            if b.starts_with("extra_browser_") && !ctx.extra_browsers.iter().any(|e| e == b) =>
        {
            Err(ApiValidationError::UnknownBrowser(
                b.to_string(),
                proxy_list_text(ctx.extra_browsers),
            ))
        }
        _ => Ok(()),
    }
}

/// The proxy keys as upstream's messages list them: joined, or "none configured".
pub fn proxy_list_text(names: &[String]) -> String {
    if names.is_empty() {
        "none configured".to_string()
    } else {
        names.join(", ")
    }
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

pub(super) fn check_notification_urls(
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

pub(super) fn check_templates(body: &Map<String, Value>) -> Result<(), ApiValidationError> {
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
        changewatch_core::filters::check_complexity(rule)
    } else {
        changewatch_core::filters::check_text_rule_complexity(rule)
    };
    checked.map_err(|e| e.to_string())
}

/// `field.i: reason` for each rule of `field` over its limits.
pub(super) fn rule_list_errors<'a>(
    field: &str,
    rules: impl Iterator<Item = &'a str>,
) -> Vec<String> {
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
pub(super) fn validation_result(errs: Vec<String>) -> Result<(), ApiValidationError> {
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
pub(super) fn check_rules(body: &Map<String, Value>) -> Result<(), ApiValidationError> {
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

pub(super) fn check_timezone(body: &Map<String, Value>) -> Result<(), ApiValidationError> {
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
pub(super) fn public_fields(body: &Map<String, Value>) -> Map<String, Value> {
    body.iter()
        .filter(|(k, _)| !is_internal_key(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Takes the restock processor's config out of `data` (it is stored apart); the only
/// processor config there is, so any other `processor_config_*` stays behind as unknown.
pub(super) fn take_processor_config(data: &mut Map<String, Value>) -> Option<Value> {
    data.remove("processor_config_restock_diff")
}

pub(super) fn unknown_fields(data: &Map<String, Value>, extra_valid: &[&str]) -> Vec<String> {
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

pub(super) fn conv_err(what: &str) -> String {
    format!("expected {what}")
}

pub(super) fn v_bool(v: &Value) -> Result<bool, String> {
    v.as_bool().ok_or_else(|| conv_err("a boolean"))
}

pub(super) fn v_opt_bool(v: &Value) -> Result<Option<bool>, String> {
    if v.is_null() {
        Ok(None)
    } else {
        v_bool(v).map(Some)
    }
}

pub(super) fn v_string(v: &Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| conv_err("a string"))
}

pub(super) fn v_opt_string(v: &Value) -> Result<Option<String>, String> {
    if v.is_null() {
        Ok(None)
    } else {
        v_string(v).map(Some)
    }
}

pub(super) fn v_i64(v: &Value) -> Result<i64, String> {
    lenient_i64(v)
        .filter(|_| v.is_number())
        .ok_or_else(|| conv_err("an integer"))
}

pub(super) fn v_opt_i64(v: &Value) -> Result<Option<i64>, String> {
    if v.is_null() {
        Ok(None)
    } else {
        v_i64(v).map(Some)
    }
}

pub(super) fn v_opt_f64(v: &Value) -> Result<Option<f64>, String> {
    if v.is_null() {
        Ok(None)
    } else {
        v.as_f64().map(Some).ok_or_else(|| conv_err("a number"))
    }
}

pub(super) fn v_str_list(v: &Value) -> Result<Vec<String>, String> {
    v.as_array()
        .ok_or_else(|| conv_err("an array"))?
        .iter()
        .map(v_string)
        .collect()
}

pub(super) fn v_object(v: &Value) -> Result<&Map<String, Value>, String> {
    v.as_object().ok_or_else(|| conv_err("an object"))
}

pub(super) fn parse_time_between_check(v: &Value) -> Result<TimeBetweenCheck, String> {
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
pub(super) fn parse_time_schedule_limit(v: &Value) -> Result<TimeScheduleLimit, String> {
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

pub(super) fn parse_restock_config(v: &Value) -> Result<RestockConfig, String> {
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
pub(super) fn set_watch_field(w: &mut Watch, key: &str, v: &Value) -> Result<bool, String> {
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
            let steps = valid_browser_steps(steps);
            for (n, step) in steps.iter().enumerate() {
                check_browser_step(step).map_err(|e| format!("step {}: {e}", n + 1))?;
            }
            w.browser_steps = steps;
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
            let conditions = v
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
            changewatch_core::conditions::validate(&conditions)?;
            w.conditions = conditions;
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

pub(super) fn set_tag_field(t: &mut Tag, key: &str, v: &Value) -> Result<bool, String> {
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

pub(super) fn apply_fields(
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
/// URLs, then templates and timezone; ours sit among them (extra browsers and fields stored
/// but not acted on after the proxy, rule limits before the timezone). `__*`,
/// system-managed, readOnly and computed keys are dropped; any other unknown key is refused
/// as PUT refuses it (upstream stores it verbatim and never reads it: a misspelt field would
/// look saved and do nothing).
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
    check_fetch_backend(&data, ctx)?;
    check_unsupported(&data, true)?;
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

/// PUT /watch/{uuid}: partial update. On error the watch is left untouched. `tag` is not
/// resolved here: a name in it is refused ([`UNSUPPORTED_FIELDS`]).
pub fn apply_watch_update(
    watch: &mut Watch,
    body: Value,
    ctx: &ApiContext<'_>,
) -> Result<WatchUpdate, ApiValidationError> {
    let obj = schema_check(&body, UPDATE_WATCH_SCHEMA)?;
    check_proxy(obj, ctx)?;
    check_fetch_backend(obj, ctx)?;
    check_unsupported(obj, false)?;
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
    check_unsupported_on_tag(&data)?;
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
    check_unsupported_on_tag(&data)?;
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

/// Proxy keys a watch may name: upstream's proxy list (the settings' proxies, then
/// `no-proxy` while there are any).
pub fn proxy_names(settings: &Settings) -> Vec<String> {
    settings
        .requests
        .proxy_list()
        .into_iter()
        .map(|(key, _)| key)
        .collect()
}
