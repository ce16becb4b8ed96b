//! Small value types of the model: upstream's `str|false` and `bool|str` fields, intervals,
//! time-of-week limits, browser steps, conditions, restock state, and lenient number parsing.

use super::*;

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
///
/// Defaults are per field here and in the two types below: a container default builds a whole
/// default value, strings included, for every document decoded (seven days in every watch).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleDuration {
    #[serde(default = "day_hours")]
    pub hours: String,
    #[serde(default = "zero_minutes")]
    pub minutes: String,
}

fn day_hours() -> String {
    "24".into()
}

fn zero_minutes() -> String {
    "00".into()
}

fn midnight() -> String {
    "00:00".into()
}

fn yes() -> bool {
    true
}

impl Default for ScheduleDuration {
    fn default() -> Self {
        ScheduleDuration {
            hours: day_hours(),
            minutes: zero_minutes(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaySchedule {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// "HH:MM" in the schedule's timezone.
    #[serde(default = "midnight")]
    pub start_time: String,
    #[serde(default)]
    pub duration: ScheduleDuration,
}

impl Default for DaySchedule {
    fn default() -> Self {
        DaySchedule {
            enabled: true,
            start_time: midnight(),
            duration: ScheduleDuration::default(),
        }
    }
}

/// Weekly window outside which scheduled checks are skipped (manual rechecks still run).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeScheduleLimit {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub monday: DaySchedule,
    #[serde(default)]
    pub tuesday: DaySchedule,
    #[serde(default)]
    pub wednesday: DaySchedule,
    #[serde(default)]
    pub thursday: DaySchedule,
    #[serde(default)]
    pub friday: DaySchedule,
    #[serde(default)]
    pub saturday: DaySchedule,
    #[serde(default)]
    pub sunday: DaySchedule,
    /// IANA name; absent or empty means the global `scheduler_timezone_default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

    pub fn day_mut(&mut self, name: &str) -> Option<&mut DaySchedule> {
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
pub(super) mod lenient {
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

    /// A value only the checker writes: one it cannot read is as good as none (the check
    /// then does the work the value would have let it skip), never a watch that cannot load.
    pub fn or_none<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        Ok(serde_json::from_value(Value::deserialize(d)?).ok())
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

/// An integer from the number shapes older datastores and clients send (a float meaning an
/// integer, a numeric string), as the lenient deserializers read them.
pub fn lenient_i64(v: &Value) -> Option<i64> {
    lenient::value_to_i64(v)
}
