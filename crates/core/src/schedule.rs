//! When a watch is next due for a check, and the weekly time window that limits it.
//!
//! Upstream polls every second and asks "has `now - last_checked` passed the threshold, and is
//! `now` inside the weekly window?". We store `next_check_at` instead, so a store can index
//! due watches (SQLite index, DynamoDB GSI) and a tick only reads what is due. The two are
//! equivalent: the poll first succeeds at the earliest instant that is both past the
//! threshold and inside the window, which is what [`next_check_at`] returns.
//!
//! Everything here is pure: the caller passes `now`, the resolved interval, the resolved time
//! zone and the random jitter sample, so the results are reproducible in tests.

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
use chrono::{TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde_json::Value;

/// Upstream's `MINIMUM_SECONDS_RECHECK_TIME` default: no watch is rechecked sooner than this
/// after its last check, whatever its interval or jitter says.
pub const DEFAULT_MINIMUM_RECHECK_SECS: u64 = 3;

/// The day keys of upstream's `time_schedule_limit` object, Monday first (chrono's
/// `num_days_from_monday` order, and upstream's `Weekday` enum order).
pub const DAY_KEYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

const MINUTES_PER_DAY: u32 = 24 * 60;
/// A slot of a week or longer, repeated weekly, already covers every instant; capping there
/// keeps the day scans below bounded without changing any answer.
const MAX_SLOT_MINUTES: u32 = 7 * MINUTES_PER_DAY;
/// Upstream's form default for a day's duration when the field is left out.
const DEFAULT_DURATION_HOURS: u32 = 24;

/// A schedule value that cannot be used; the messages are meant to be shown as an API 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Upstream's settings/edit form wording for a bad `timezone` (zoneinfo name check).
    #[error("Not a valid timezone name")]
    InvalidTimezone { name: String },
    #[error("Invalid start_time '{value}' for {day}. Must be in 'HH:MM' format.")]
    InvalidStartTime { day: &'static str, value: String },
    #[error("Invalid duration {field} '{value}' for {day}. Must be a whole number.")]
    InvalidDuration {
        day: &'static str,
        field: &'static str,
        value: String,
    },
    #[error("Invalid time_schedule_limit: {field} must be {expected}.")]
    WrongType {
        field: String,
        expected: &'static str,
    },
}

/// Parses an IANA time zone name, the check upstream's forms apply to `timezone` and
/// `scheduler_timezone_default`.
///
/// Surrounding whitespace is ignored because upstream's scheduler strips it before use, so a
/// stored `" UTC "` has always worked there. An empty name is an error: "unset" is the
/// caller's decision (fall back to the global default), not a zone.
pub fn validate_timezone(tz: &str) -> Result<Tz, ScheduleError> {
    tz.trim()
        .parse::<Tz>()
        .map_err(|_| ScheduleError::InvalidTimezone {
            name: tz.to_string(),
        })
}

/// Upstream's `threshold_seconds()`: the `time_between_check` parts as one interval.
/// Saturates instead of overflowing, since the API accepts arbitrarily large parts.
pub fn threshold_seconds(weeks: u64, days: u64, hours: u64, minutes: u64, seconds: u64) -> u64 {
    [
        (weeks, 604_800),
        (days, 86_400),
        (hours, 3_600),
        (minutes, 60),
        (seconds, 1),
    ]
    .iter()
    .fold(0u64, |acc, (n, unit)| {
        acc.saturating_add(n.saturating_mul(*unit))
    })
}

/// One day's allowed slot: starts at a local wall-clock time and lasts a number of minutes,
/// possibly past midnight into the following days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaySlot {
    start_minute: u32,
    duration_minutes: u32,
}

impl DaySlot {
    /// `None` when the start is not a time of day. Durations of a week or more are capped at
    /// a week: repeated weekly, such a slot already covers every instant.
    pub fn new(start_hour: u32, start_minute: u32, duration_minutes: u32) -> Option<DaySlot> {
        (start_hour < 24 && start_minute < 60).then_some(DaySlot {
            start_minute: start_hour * 60 + start_minute,
            duration_minutes: duration_minutes.min(MAX_SLOT_MINUTES),
        })
    }

    pub fn start_hour(&self) -> u32 {
        self.start_minute / 60
    }

    pub fn start_minute(&self) -> u32 {
        self.start_minute % 60
    }

    pub fn duration_minutes(&self) -> u32 {
        self.duration_minutes
    }
}

/// Upstream's `time_schedule_limit` once enabled: per weekday at most one slot, read in one
/// IANA time zone.
///
/// Slots are read as local wall-clock time, so "09:00 for 8 hours" ends at 17:00 local time
/// even on a day when the clocks change (upstream's arrow `shift` does the same wall-clock
/// arithmetic). Both ends are inclusive, as upstream's `start <= now <= end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeeklyWindow {
    tz: Tz,
    days: [Option<DaySlot>; 7],
}

/// Which instant to take for a wall-clock time that occurs twice (clocks going back).
#[derive(Clone, Copy)]
enum Occurrence {
    Earliest,
    Latest,
}

impl WeeklyWindow {
    /// `days` is indexed Monday first. Zero-length slots are dropped: upstream's
    /// once-a-second poll only ever hits such a single instant by luck, so treating it as a
    /// weekly appointment would check far more often than upstream does.
    pub fn new(tz: Tz, days: [Option<DaySlot>; 7]) -> WeeklyWindow {
        let days = days.map(|slot| slot.filter(|s| s.duration_minutes > 0));
        WeeklyWindow { tz, days }
    }

    /// Reads upstream's JSON shape:
    /// `{enabled, timezone?, monday..sunday: {enabled, start_time: "HH:MM", duration: {hours, minutes}}}`.
    ///
    /// Returns `Ok(None)` when the window is off (`enabled` false, missing or null, or the
    /// whole value null), meaning "no limit". Every field is still validated when it is off,
    /// as upstream's form does, so an API can reject bad input whatever the switch says.
    ///
    /// `default_tz` is used when `timezone` is missing or blank; resolving it (watch tz >
    /// `scheduler_timezone_default` > `$TZ` > UTC) is the caller's job.
    ///
    /// Missing pieces: a missing or null day is closed (nothing was allowed for it); inside a
    /// day, `enabled` defaults to true, `start_time` to "00:00" and the duration to 24 h 0 min
    /// (the API spec's `DaySchedule` defaults). Hours and minutes may be digit strings (what
    /// upstream stores) or non-negative integers.
    pub fn parse(value: &Value, default_tz: Tz) -> Result<Option<WeeklyWindow>, ScheduleError> {
        let obj = match value {
            Value::Null => return Ok(None),
            Value::Object(obj) => obj,
            _ => return Err(wrong_type("time_schedule_limit", "an object")),
        };
        let enabled = match obj.get("enabled") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(wrong_type("enabled", "a boolean")),
        };
        let tz = match obj.get("timezone") {
            None | Some(Value::Null) => default_tz,
            Some(Value::String(s)) if s.trim().is_empty() => default_tz,
            Some(Value::String(s)) => validate_timezone(s)?,
            Some(_) => return Err(wrong_type("timezone", "a string")),
        };
        let mut days = [None; 7];
        for (slot, key) in days.iter_mut().zip(DAY_KEYS) {
            *slot = parse_day(key, obj.get(key))?;
        }
        Ok(enabled.then(|| WeeklyWindow::new(tz, days)))
    }

    pub fn tz(&self) -> Tz {
        self.tz
    }

    pub fn slot(&self, day: Weekday) -> Option<DaySlot> {
        self.days[day.num_days_from_monday() as usize]
    }

    /// False when every day is closed: such a window never opens, so a watch under it is
    /// never due (upstream skips it on every tick).
    pub fn has_open_day(&self) -> bool {
        self.days.iter().any(Option::is_some)
    }

    /// Whether a check may run at `at`: inside any day's slot, including a slot that started
    /// on an earlier day and runs past midnight.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        let today = at.with_timezone(&self.tz).date_naive();
        // A slot lasts at most 7 days, so it can reach `today` from 8 days back at most
        // (one extra day of slack for clock changes around midnight).
        (-8..=1).any(|offset| {
            self.bounds_on(today, offset)
                .is_some_and(|(start, end)| start <= at && at <= end)
        })
    }

    /// The earliest instant at or after `from` at which a check may run; `None` when no day
    /// is open.
    pub fn next_open(&self, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.has_open_day() {
            return None;
        }
        if self.contains(from) {
            return Some(from);
        }
        // Outside every slot, so the answer is the next slot start. The same weekday a week
        // later is the furthest it can be; one day back covers a start pushed past midnight
        // by a clock change.
        let today = from.with_timezone(&self.tz).date_naive();
        (-1..=8)
            .filter_map(|offset| self.bounds_on(today, offset))
            .map(|(start, _)| start)
            .filter(|start| *start >= from)
            .min()
    }

    /// The instants a slot of the day `offset` days from `date` covers, if that day is open.
    fn bounds_on(&self, date: NaiveDate, offset: i64) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let day = date.checked_add_signed(TimeDelta::days(offset))?;
        let slot = self.days[day.weekday().num_days_from_monday() as usize]?;
        let start_time = NaiveTime::from_hms_opt(slot.start_hour(), slot.start_minute(), 0)?;
        let start_wall = day.and_time(start_time);
        let end_wall =
            start_wall.checked_add_signed(TimeDelta::minutes(i64::from(slot.duration_minutes)))?;
        let start = resolve_local(&self.tz, start_wall, Occurrence::Earliest)?;
        let end = resolve_local(&self.tz, end_wall, Occurrence::Latest)?;
        Some((start, end.max(start)))
    }
}

fn wrong_type(field: &str, expected: &'static str) -> ScheduleError {
    ScheduleError::WrongType {
        field: field.to_string(),
        expected,
    }
}

fn parse_day(day: &'static str, value: Option<&Value>) -> Result<Option<DaySlot>, ScheduleError> {
    let obj = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(obj)) => obj,
        Some(_) => return Err(wrong_type(day, "an object")),
    };
    let enabled = match obj.get("enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(wrong_type(&format!("{day}.enabled"), "a boolean")),
    };
    let (hour, minute) = match obj.get("start_time") {
        None | Some(Value::Null) => (0, 0),
        Some(Value::String(s)) => parse_hhmm(s).ok_or_else(|| ScheduleError::InvalidStartTime {
            day,
            value: s.clone(),
        })?,
        Some(other) => {
            return Err(ScheduleError::InvalidStartTime {
                day,
                value: other.to_string(),
            });
        }
    };
    let (hours, minutes) = match obj.get("duration") {
        None | Some(Value::Null) => (DEFAULT_DURATION_HOURS, 0),
        Some(Value::Object(d)) => (
            parse_count(day, "hours", d.get("hours"), DEFAULT_DURATION_HOURS)?,
            parse_count(day, "minutes", d.get("minutes"), 0)?,
        ),
        Some(_) => return Err(wrong_type(&format!("{day}.duration"), "an object")),
    };
    let duration = hours.saturating_mul(60).saturating_add(minutes);
    Ok(if enabled {
        DaySlot::new(hour, minute, duration)
    } else {
        None
    })
}

/// `H:MM` or `HH:MM`, the API spec's `start_time` pattern.
fn parse_hhmm(s: &str) -> Option<(u32, u32)> {
    let (h, m) = s.split_once(':')?;
    let digits =
        |p: &str, lens: &[usize]| lens.contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(h, &[1, 2]) || !digits(m, &[2]) {
        return None;
    }
    let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
    (h < 24 && m < 60).then_some((h, m))
}

fn parse_count(
    day: &'static str,
    field: &'static str,
    value: Option<&Value>,
    default: u32,
) -> Result<u32, ScheduleError> {
    let bad = |v: String| ScheduleError::InvalidDuration {
        day,
        field,
        value: v,
    };
    match value {
        None | Some(Value::Null) => Ok(default),
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(s.clone()));
            }
            // All digits, so a parse failure can only be overflow: past the week cap anyway.
            Ok(t.parse::<u32>().unwrap_or(u32::MAX))
        }
        Some(Value::Number(n)) => n
            .as_u64()
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            .ok_or_else(|| bad(n.to_string())),
        Some(other) => Err(bad(other.to_string())),
    }
}

/// The instant a local wall-clock reading stands for, without ever failing on clock changes.
///
/// A reading that occurs twice (clocks going back) gives the first or the last occurrence,
/// so a slot spans both. A reading that never occurs (clocks going forward) gives the moment
/// the clocks jump: the first instant whose reading is later, which keeps the part of a slot
/// that does exist that day.
fn resolve_local(tz: &Tz, wall: NaiveDateTime, which: Occurrence) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&wall) {
        LocalResult::Single(dt) => Some(dt.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
            Some(match which {
                Occurrence::Earliest => a.min(b),
                Occurrence::Latest => a.max(b),
            })
        }
        LocalResult::None => first_instant_reading_at_least(tz, wall),
    }
}

/// Binary search over whole seconds. UTC offsets stay within ±26 h, so the reading is before
/// `wall` 26 h before it (read as UTC) and after it 26 h after; about 18 steps, never a loop.
fn first_instant_reading_at_least(tz: &Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    const MARGIN: i64 = 26 * 3600;
    let base = wall.and_utc().timestamp();
    let (mut lo, mut hi) = (base - MARGIN, base + MARGIN);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let reading = DateTime::from_timestamp(mid, 0)?
            .with_timezone(tz)
            .naive_local();
        if reading >= wall {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0)
}

/// Epoch second at which a watch is next due, given the check that started at `last_checked`.
///
/// - `last_checked == 0` (never checked): due at `now`, as upstream's `now - 0 >= threshold`.
/// - Otherwise `last_checked + interval_secs + jitter_sample * jitter_secs`, rounded up to a
///   whole second (upstream compares with `>=` against a float), and never sooner than
///   `last_checked + minimum_recheck_secs` (upstream's `MINIMUM_SECONDS_RECHECK_TIME`).
///   `jitter_sample` is clamped to [-1, 1] (NaN counts as 0); draw it once per scheduling,
///   as upstream holds one `uniform(-j, j)` per watch until it is queued.
/// - With a window, a due time outside it moves to the window's next opening. Upstream skips
///   ticks outside the window and queues on the first tick inside it, which is the same
///   instant.
///
/// A result before `now` means overdue (due at once); it is kept rather than raised to `now`
/// so "most overdue first" ordering survives. With a window, an overdue result is only
/// returned when `now` is inside the window; otherwise the next opening after `now` is.
/// Recompute whenever the interval, jitter setting or window changes.
///
/// `None` means never: the window has no open day (upstream skips such a watch forever).
/// The interval counts elapsed seconds, not wall-clock time, as upstream's epoch arithmetic
/// does: a daily check drifts by an hour local time across a clock change.
pub fn next_check_at(
    last_checked: i64,
    interval_secs: u64,
    jitter_secs: u64,
    jitter_sample: f64,
    window: Option<&WeeklyWindow>,
    now: i64,
    minimum_recheck_secs: u64,
) -> Option<i64> {
    let due = if last_checked == 0 {
        now
    } else {
        let sample = if jitter_sample.is_nan() {
            0.0
        } else {
            jitter_sample.clamp(-1.0, 1.0)
        };
        // Saturating float-to-int cast: a jitter beyond i64 is nonsense but must not wrap.
        let jitter = (sample * jitter_secs as f64).ceil() as i64;
        let base = last_checked.saturating_add(secs_i64(interval_secs));
        let earliest = last_checked.saturating_add(secs_i64(minimum_recheck_secs));
        base.saturating_add(jitter).max(earliest)
    };
    let Some(window) = window else {
        return Some(due);
    };
    if !window.has_open_day() {
        return None;
    }
    let Some(from) = DateTime::from_timestamp(due.max(now), 0) else {
        // Beyond chrono's calendar (hundreds of millennia): no window can be read there.
        return Some(due);
    };
    if due < now && window.contains(from) {
        return Some(due);
    }
    window.next_open(from).map(|t| t.timestamp())
}

fn secs_i64(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// A fresh jitter sample for [`next_check_at`], uniform in [-1, 1] like upstream's
/// `random.uniform(-j, j)` divided by `j`.
pub fn random_jitter_sample() -> f64 {
    rand::random_range(-1.0..=1.0)
}

/// Which of upstream's English `timeago` tables to use (`settings.application.ui.timeago_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeagoStyle {
    /// "3 minutes ago", "in 2 hours".
    #[default]
    Long,
    /// "3m ago", "in 2h" (timeago's `en_short`).
    Short,
}

/// `last_checked_text` / `last_changed_text` as upstream renders them: "Not yet" when the
/// timestamp is 0, else the python `timeago` package's English text ("just now",
/// "10 seconds ago", "3 minutes ago", "in 5 minutes", "1 week ago", ...).
pub fn timeago(then: i64, now: i64) -> String {
    timeago_styled(then, now, TimeagoStyle::Long)
}

/// [`timeago`] in either style. Follows the `timeago` package's unit ladder exactly,
/// including its float division by 60, 60, 24, 7, 365/7/12 and 12, so boundary cases (31
/// days is "1 month ago", ten 365-day years are "9 years ago") match upstream's text.
pub fn timeago_styled(then: i64, now: i64, style: TimeagoStyle) -> String {
    const STEPS: [f64; 6] = [60.0, 60.0, 24.0, 7.0, 365.0 / 7.0 / 12.0, 12.0];
    const LONG: [(&str, &str); 14] = [
        ("just now", "a while"),
        ("%s seconds ago", "in %s seconds"),
        ("1 minute ago", "in 1 minute"),
        ("%s minutes ago", "in %s minutes"),
        ("1 hour ago", "in 1 hour"),
        ("%s hours ago", "in %s hours"),
        ("1 day ago", "in 1 day"),
        ("%s days ago", "in %s days"),
        ("1 week ago", "in 1 week"),
        ("%s weeks ago", "in %s weeks"),
        ("1 month ago", "in 1 month"),
        ("%s months ago", "in %s months"),
        ("1 year ago", "in 1 year"),
        ("%s years ago", "in %s years"),
    ];
    const SHORT: [(&str, &str); 14] = [
        ("just now", "right now"),
        ("%ss ago", "in %ss"),
        ("1m ago", "in 1m"),
        ("%sm ago", "in %sm"),
        ("1h ago", "in 1h"),
        ("%sh ago", "in %sh"),
        ("1d ago", "in 1d"),
        ("%sd ago", "in %sd"),
        ("1w ago", "in 1w"),
        ("%sw ago", "in %sw"),
        ("1mo ago", "in 1mo"),
        ("%smo ago", "in %smo"),
        ("1yr ago", "in 1yr"),
        ("%syr ago", "in %syr"),
    ];
    if then == 0 {
        return "Not yet".to_string();
    }
    let diff = i128::from(now) - i128::from(then);
    let future = diff < 0;
    let mut amount = diff.unsigned_abs() as f64;
    let mut index = 0;
    while index < STEPS.len() && amount >= STEPS[index] {
        amount /= STEPS[index];
        index += 1;
    }
    // Truncation, as python's int(): the amount is non-negative here.
    let count = amount as u64;
    index *= 2;
    if count > if index == 0 { 9 } else { 1 } {
        index += 1;
    }
    let table = match style {
        TimeagoStyle::Long => &LONG,
        TimeagoStyle::Short => &SHORT,
    };
    let (past, ahead) = table[index];
    let template = if future { ahead } else { past };
    template.replace("%s", &count.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    /// A window open only on the given days, each with the same slot.
    fn window(tz: Tz, days: &[Weekday], hour: u32, minute: u32, minutes: u32) -> WeeklyWindow {
        let mut slots = [None; 7];
        for d in days {
            slots[d.num_days_from_monday() as usize] = DaySlot::new(hour, minute, minutes);
        }
        WeeklyWindow::new(tz, slots)
    }

    const ALL_DAYS: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    #[test]
    fn interval_only() {
        assert_eq!(
            next_check_at(1_000, 600, 0, 0.0, None, 1_005, 3),
            Some(1_600)
        );
        // Overdue results stay in the past so the most overdue sort first.
        assert_eq!(
            next_check_at(1_000, 600, 0, 0.0, None, 9_999, 3),
            Some(1_600)
        );
    }

    #[test]
    fn never_checked_is_due_now() {
        assert_eq!(next_check_at(0, 600, 30, 1.0, None, 5_000, 3), Some(5_000));
    }

    #[test]
    fn never_checked_waits_for_the_window() {
        // 2024-01-01 is a Monday; window Monday 12:00 for 1 h, UTC.
        let w = window(Tz::UTC, &[Weekday::Mon], 12, 0, 60);
        let now = utc(2024, 1, 1, 9, 0, 0).timestamp();
        let open = utc(2024, 1, 1, 12, 0, 0).timestamp();
        assert_eq!(next_check_at(0, 600, 0, 0.0, Some(&w), now, 3), Some(open));
        let inside = utc(2024, 1, 1, 12, 30, 0).timestamp();
        assert_eq!(
            next_check_at(0, 600, 0, 0.0, Some(&w), inside, 3),
            Some(inside)
        );
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let at = |sample| next_check_at(1_000, 600, 60, sample, None, 1_000, 3);
        assert_eq!(at(-1.0), Some(1_540));
        assert_eq!(at(1.0), Some(1_660));
        assert_eq!(at(0.0), Some(1_600));
        assert_eq!(at(5.0), Some(1_660), "samples are clamped");
        assert_eq!(at(-5.0), Some(1_540), "samples are clamped");
        assert_eq!(at(f64::NAN), Some(1_600), "NaN means no jitter");
        // 0.5 * 7 = 3.5 s: rounded up, as upstream's `>=` against the float first holds then.
        assert_eq!(
            next_check_at(1_000, 600, 7, 0.5, None, 1_000, 3),
            Some(1_604)
        );
        for _ in 0..1_000 {
            let sample = random_jitter_sample();
            assert!((-1.0..=1.0).contains(&sample));
            let due = next_check_at(1_000, 600, 60, sample, None, 1_000, 3).unwrap();
            assert!((1_540..=1_660).contains(&due), "{due}");
        }
    }

    #[test]
    fn minimum_recheck_floor() {
        assert_eq!(next_check_at(1_000, 0, 0, 0.0, None, 1_000, 3), Some(1_003));
        assert_eq!(
            next_check_at(1_000, 5, 10, -1.0, None, 1_000, 3),
            Some(1_003)
        );
        assert_eq!(
            next_check_at(1_000, 1, 0, 0.0, None, 1_000, DEFAULT_MINIMUM_RECHECK_SECS),
            Some(1_003)
        );
        assert_eq!(
            next_check_at(1_000, 60, 0, 0.0, None, 1_000, 3),
            Some(1_060)
        );
    }

    #[test]
    fn huge_values_saturate() {
        assert_eq!(
            next_check_at(i64::MAX - 5, u64::MAX, u64::MAX, 1.0, None, 0, u64::MAX),
            Some(i64::MAX)
        );
    }

    #[test]
    fn window_on_one_weekday_jumps_to_next_week() {
        // Wednesday 2024-01-03 09:00-10:00 UTC only.
        let w = window(Tz::UTC, &[Weekday::Wed], 9, 0, 60);
        assert!(w.contains(utc(2024, 1, 3, 9, 0, 0)), "start is inclusive");
        assert!(w.contains(utc(2024, 1, 3, 10, 0, 0)), "end is inclusive");
        assert!(!w.contains(utc(2024, 1, 3, 10, 0, 1)));
        assert!(!w.contains(utc(2024, 1, 3, 8, 59, 59)));
        assert!(!w.contains(utc(2024, 1, 4, 9, 30, 0)), "Thursday is closed");
        assert_eq!(
            w.next_open(utc(2024, 1, 3, 10, 30, 0)),
            Some(utc(2024, 1, 10, 9, 0, 0))
        );
        assert_eq!(
            w.next_open(utc(2024, 1, 1, 0, 0, 0)),
            Some(utc(2024, 1, 3, 9, 0, 0))
        );
        let from = utc(2024, 1, 3, 9, 15, 0);
        assert_eq!(w.next_open(from), Some(from));

        // Checked inside the window, interval of 1 h: the next due time falls outside.
        let last = utc(2024, 1, 3, 9, 15, 0).timestamp();
        assert_eq!(
            next_check_at(last, 3_600, 0, 0.0, Some(&w), last + 60, 3),
            Some(utc(2024, 1, 10, 9, 0, 0).timestamp())
        );
        // 30 min interval lands inside the same slot.
        assert_eq!(
            next_check_at(last, 1_800, 0, 0.0, Some(&w), last + 60, 3),
            Some(last + 1_800)
        );
    }

    #[test]
    fn overdue_outside_window_waits_for_the_next_opening() {
        let w = window(Tz::UTC, &[Weekday::Wed], 9, 0, 60);
        // Due on Monday (a window opened since), but now is Wednesday 11:00, outside.
        let last = utc(2024, 1, 1, 0, 0, 0).timestamp();
        let now = utc(2024, 1, 3, 11, 0, 0).timestamp();
        assert_eq!(
            next_check_at(last, 3_600, 0, 0.0, Some(&w), now, 3),
            Some(utc(2024, 1, 10, 9, 0, 0).timestamp())
        );
        // Same, but now is inside the window: overdue, keep the original due time.
        let now = utc(2024, 1, 3, 9, 30, 0).timestamp();
        assert_eq!(
            next_check_at(last, 3_600, 0, 0.0, Some(&w), now, 3),
            Some(last + 3_600)
        );
    }

    #[test]
    fn window_crossing_midnight() {
        // Monday 2024-01-01 23:00 for 2 h, Tuesday closed.
        let w = window(Tz::UTC, &[Weekday::Mon], 23, 0, 120);
        assert!(w.contains(utc(2024, 1, 1, 23, 30, 0)));
        assert!(w.contains(utc(2024, 1, 2, 0, 30, 0)), "spills into Tuesday");
        assert!(w.contains(utc(2024, 1, 2, 1, 0, 0)));
        assert!(!w.contains(utc(2024, 1, 2, 1, 0, 1)));
        assert!(!w.contains(utc(2024, 1, 1, 22, 59, 59)));
        // Sunday night into Monday morning wraps around the week.
        let w = window(Tz::UTC, &[Weekday::Sun], 22, 0, 240);
        assert!(
            w.contains(utc(2024, 1, 8, 1, 59, 0)),
            "Monday 01:59 after Sunday 22:00"
        );
        assert_eq!(
            w.next_open(utc(2024, 1, 8, 2, 0, 1)),
            Some(utc(2024, 1, 14, 22, 0, 0))
        );
    }

    #[test]
    fn twenty_four_hour_slots() {
        let w = window(Tz::UTC, &[Weekday::Mon], 0, 0, 24 * 60);
        assert!(w.contains(utc(2024, 1, 1, 0, 0, 0)));
        assert!(w.contains(utc(2024, 1, 1, 12, 0, 0)));
        assert!(w.contains(utc(2024, 1, 1, 23, 59, 59)));
        assert!(
            w.contains(utc(2024, 1, 2, 0, 0, 0)),
            "end (midnight) is inclusive"
        );
        assert!(!w.contains(utc(2024, 1, 2, 0, 0, 1)));

        // Upstream's default: every day 00:00 for 24 h, i.e. always open.
        let always = window(Tz::UTC, &ALL_DAYS, 0, 0, 24 * 60);
        let mut t = utc(2024, 1, 1, 0, 0, 0);
        while t < utc(2024, 1, 15, 0, 0, 0) {
            assert!(always.contains(t), "{t}");
            assert_eq!(always.next_open(t), Some(t));
            t += TimeDelta::minutes(37);
        }
    }

    #[test]
    fn durations_past_a_week_are_capped_without_changing_answers() {
        let slot = DaySlot::new(9, 0, 100_000);
        assert_eq!(slot.map(|s| s.duration_minutes()), Some(7 * 24 * 60));
        let w = window(Tz::UTC, &[Weekday::Wed], 9, 0, 100_000);
        let mut t = utc(2024, 1, 1, 0, 0, 0);
        while t < utc(2024, 1, 30, 0, 0, 0) {
            assert!(w.contains(t), "{t}");
            t += TimeDelta::minutes(53);
        }
    }

    #[test]
    fn all_days_closed_is_never_due() {
        let w = WeeklyWindow::new(Tz::UTC, [None; 7]);
        assert!(!w.has_open_day());
        assert!(!w.contains(utc(2024, 1, 1, 0, 0, 0)));
        assert_eq!(w.next_open(utc(2024, 1, 1, 0, 0, 0)), None);
        assert_eq!(next_check_at(1_000, 60, 0, 0.0, Some(&w), 1_000, 3), None);
        assert_eq!(next_check_at(0, 60, 0, 0.0, Some(&w), 1_000, 3), None);
        // Zero-length slots count as closed.
        let w = window(Tz::UTC, &ALL_DAYS, 9, 0, 0);
        assert!(!w.has_open_day());
    }

    #[test]
    fn london_spring_forward() {
        let london: Tz = "Europe/London".parse().unwrap();
        // Sunday 2024-03-31: 01:00 GMT jumps to 02:00 BST. 01:30-02:30 local only exists
        // from 02:00 BST (01:00Z) to 02:30 BST (01:30Z).
        let w = window(london, &[Weekday::Sun], 1, 30, 60);
        assert_eq!(
            w.next_open(utc(2024, 3, 30, 12, 0, 0)),
            Some(utc(2024, 3, 31, 1, 0, 0))
        );
        assert!(!w.contains(utc(2024, 3, 31, 0, 59, 59)));
        assert!(w.contains(utc(2024, 3, 31, 1, 0, 0)));
        assert!(w.contains(utc(2024, 3, 31, 1, 30, 0)));
        assert!(!w.contains(utc(2024, 3, 31, 1, 30, 1)));
        // The week after, a normal Sunday: 01:30 BST = 00:30Z.
        assert_eq!(
            w.next_open(utc(2024, 3, 31, 2, 0, 0)),
            Some(utc(2024, 4, 7, 0, 30, 0))
        );

        // A whole local day is 23 h long that Sunday.
        let day = window(london, &[Weekday::Sun], 0, 0, 24 * 60);
        assert!(day.contains(utc(2024, 3, 31, 0, 0, 0)));
        assert!(day.contains(utc(2024, 3, 31, 23, 0, 0)), "Monday 00:00 BST");
        assert!(!day.contains(utc(2024, 3, 31, 23, 0, 1)));
        assert!(!day.contains(utc(2024, 3, 30, 23, 59, 59)));
    }

    #[test]
    fn london_fall_back() {
        let london: Tz = "Europe/London".parse().unwrap();
        // Sunday 2024-10-27: 02:00 BST goes back to 01:00 GMT, so 01:00-01:59 happens twice.
        // A slot 01:30 + 15 min spans the first 01:30 (00:30Z) to the last 01:45 (01:45Z).
        let w = window(london, &[Weekday::Sun], 1, 30, 15);
        assert_eq!(
            w.next_open(utc(2024, 10, 26, 12, 0, 0)),
            Some(utc(2024, 10, 27, 0, 30, 0))
        );
        assert!(!w.contains(utc(2024, 10, 27, 0, 29, 59)));
        assert!(w.contains(utc(2024, 10, 27, 0, 30, 0)));
        assert!(w.contains(utc(2024, 10, 27, 1, 40, 0)), "second 01:40 GMT");
        assert!(w.contains(utc(2024, 10, 27, 1, 45, 0)));
        assert!(!w.contains(utc(2024, 10, 27, 1, 45, 1)));

        // A whole local day is 25 h long that Sunday.
        let day = window(london, &[Weekday::Sun], 0, 0, 24 * 60);
        assert!(
            day.contains(utc(2024, 10, 26, 23, 0, 0)),
            "Sunday 00:00 BST"
        );
        assert!(day.contains(utc(2024, 10, 28, 0, 0, 0)), "Monday 00:00 GMT");
        assert!(!day.contains(utc(2024, 10, 28, 0, 0, 1)));
        assert!(!day.contains(utc(2024, 10, 26, 22, 59, 59)));
    }

    #[test]
    fn new_york_spring_forward() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // Sunday 2024-03-10: 02:00 EST jumps to 03:00 EDT. 02:30-03:00 local only exists
        // at its inclusive end, 03:00 EDT (07:00Z): a single instant, not a crash or loop.
        let w = window(ny, &[Weekday::Sun], 2, 30, 30);
        assert_eq!(
            w.next_open(utc(2024, 3, 9, 12, 0, 0)),
            Some(utc(2024, 3, 10, 7, 0, 0))
        );
        assert!(w.contains(utc(2024, 3, 10, 7, 0, 0)));
        assert!(!w.contains(utc(2024, 3, 10, 7, 0, 1)));
        assert!(!w.contains(utc(2024, 3, 10, 6, 59, 59)));
        // Next week: 02:30 EDT = 06:30Z.
        assert_eq!(
            w.next_open(utc(2024, 3, 10, 7, 0, 1)),
            Some(utc(2024, 3, 17, 6, 30, 0))
        );
        // A due time inside the gap's missing hour moves to the jump.
        let last = utc(2024, 3, 10, 6, 0, 0).timestamp(); // 01:00 EST
        let due = next_check_at(last, 1_800, 0, 0.0, Some(&w), last + 10, 3);
        assert_eq!(due, Some(utc(2024, 3, 10, 7, 0, 0).timestamp()));
    }

    #[test]
    fn new_york_fall_back() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // Sunday 2024-11-03: 02:00 EDT goes back to 01:00 EST. A slot 01:00 for 60 min runs
        // from the first 01:00 (EDT, 05:00Z) to 02:00 EST (07:00Z): two real hours.
        let w = window(ny, &[Weekday::Sun], 1, 0, 60);
        assert_eq!(
            w.next_open(utc(2024, 11, 2, 12, 0, 0)),
            Some(utc(2024, 11, 3, 5, 0, 0))
        );
        assert!(w.contains(utc(2024, 11, 3, 5, 0, 0)));
        assert!(w.contains(utc(2024, 11, 3, 6, 30, 0)), "01:30 EST");
        assert!(w.contains(utc(2024, 11, 3, 7, 0, 0)));
        assert!(!w.contains(utc(2024, 11, 3, 7, 0, 1)));
        assert!(!w.contains(utc(2024, 11, 3, 4, 59, 59)));
    }

    #[test]
    fn a_skipped_calendar_day_does_not_crash() {
        // Samoa skipped Friday 2011-12-30 entirely: Thursday 23:59:59 (-10) was followed by
        // Saturday 00:00 (+14) at 10:00Z. A Friday slot collapses onto that jump.
        let apia: Tz = "Pacific/Apia".parse().unwrap();
        let w = window(apia, &[Weekday::Fri], 9, 0, 60);
        let jump = utc(2011, 12, 30, 10, 0, 0);
        assert_eq!(w.next_open(utc(2011, 12, 29, 0, 0, 0)), Some(jump));
        assert!(w.contains(jump));
        assert!(!w.contains(jump + TimeDelta::seconds(1)));
    }

    #[test]
    fn extreme_offsets() {
        // Upstream's scheduler tests use the zones furthest ahead of and behind UTC.
        let kiritimati: Tz = "Pacific/Kiritimati".parse().unwrap();
        let w = window(kiritimati, &[Weekday::Mon], 0, 0, 60);
        // Monday 2024-01-08 00:00 at +14 is Sunday 2024-01-07 10:00Z.
        assert_eq!(
            w.next_open(utc(2024, 1, 6, 0, 0, 0)),
            Some(utc(2024, 1, 7, 10, 0, 0))
        );
        let behind: Tz = "Etc/GMT+12".parse().unwrap();
        let w = window(behind, &[Weekday::Mon], 23, 0, 60);
        // Monday 2024-01-01 23:00 at -12 is Tuesday 2024-01-02 11:00Z.
        assert!(w.contains(utc(2024, 1, 2, 11, 30, 0)));
        assert!(!w.contains(utc(2024, 1, 1, 23, 30, 0)));
    }

    #[test]
    fn upstream_default_schedule_is_always_open() {
        let day = json!({"enabled": true, "start_time": "00:00", "duration": {"hours": "24", "minutes": "00"}});
        let mut v = json!({"enabled": true});
        for key in DAY_KEYS {
            v[key] = day.clone();
        }
        let w = WeeklyWindow::parse(&v, chrono_tz::America::New_York)
            .unwrap()
            .unwrap();
        let last = utc(2024, 3, 10, 6, 59, 0).timestamp(); // a minute before the jump
        assert_eq!(
            next_check_at(last, 300, 0, 0.0, Some(&w), last, 3),
            Some(last + 300)
        );
    }

    #[test]
    fn next_open_is_always_inside_across_a_year_of_clock_changes() {
        let zones = [
            "Europe/London",
            "America/New_York",
            "Australia/Lord_Howe",
            "Pacific/Apia",
        ];
        let slots = [(0, 0, 24 * 60), (1, 30, 30), (2, 15, 1), (23, 45, 90)];
        for zone in zones {
            let tz: Tz = zone.parse().unwrap();
            for (i, (h, m, d)) in slots.iter().enumerate() {
                let w = window(tz, &[ALL_DAYS[i], ALL_DAYS[(i + 3) % 7]], *h, *m, *d);
                let mut t = utc(2024, 1, 1, 0, 0, 0);
                while t < utc(2025, 1, 1, 0, 0, 0) {
                    let open = w.next_open(t).unwrap();
                    assert!(open >= t, "{zone} {t}");
                    assert!(open - t <= TimeDelta::days(8), "{zone} {t} {open}");
                    assert!(w.contains(open), "{zone} {t} {open}");
                    t += TimeDelta::minutes(97);
                }
            }
        }
    }

    #[test]
    fn parse_upstream_shape() {
        let v = json!({
            "enabled": true,
            "timezone": "Europe/Berlin",
            "monday": {"enabled": true, "start_time": "09:00", "duration": {"hours": "8", "minutes": "30"}},
            "tuesday": {"enabled": false, "start_time": "00:00", "duration": {"hours": "24", "minutes": "00"}},
            "wednesday": {"enabled": true, "start_time": "7:05", "duration": {"hours": 1, "minutes": 0}},
        });
        let w = WeeklyWindow::parse(&v, Tz::UTC).unwrap().unwrap();
        assert_eq!(w.tz(), chrono_tz::Europe::Berlin);
        let mon = w.slot(Weekday::Mon).unwrap();
        assert_eq!(
            (mon.start_hour(), mon.start_minute(), mon.duration_minutes()),
            (9, 0, 510)
        );
        assert_eq!(w.slot(Weekday::Tue), None);
        let wed = w.slot(Weekday::Wed).unwrap();
        assert_eq!(
            (wed.start_hour(), wed.start_minute(), wed.duration_minutes()),
            (7, 5, 60)
        );
        assert_eq!(w.slot(Weekday::Thu), None, "missing days are closed");
        // Berlin is UTC+1 in January: Monday 09:00 local is 08:00Z.
        assert!(w.contains(utc(2024, 1, 1, 8, 0, 0)));
        assert!(!w.contains(utc(2024, 1, 1, 7, 59, 59)));
    }

    #[test]
    fn parse_defaults_and_disabled() {
        assert_eq!(WeeklyWindow::parse(&Value::Null, Tz::UTC), Ok(None));
        assert_eq!(WeeklyWindow::parse(&json!({}), Tz::UTC), Ok(None));
        assert_eq!(
            WeeklyWindow::parse(&json!({"enabled": false}), Tz::UTC),
            Ok(None)
        );
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let w = WeeklyWindow::parse(
            &json!({"enabled": true, "timezone": "  ", "friday": {}}),
            paris,
        )
        .unwrap()
        .unwrap();
        assert_eq!(w.tz(), paris, "blank timezone falls back to the default");
        let fri = w.slot(Weekday::Fri).unwrap();
        assert_eq!(
            (fri.start_hour(), fri.start_minute(), fri.duration_minutes()),
            (0, 0, 1440)
        );
        let w = WeeklyWindow::parse(&json!({"enabled": true, "timezone": " UTC "}), paris)
            .unwrap()
            .unwrap();
        assert_eq!(w.tz(), Tz::UTC);
        assert!(!w.has_open_day(), "enabled with no day: never open");
    }

    #[test]
    fn invalid_timezone_message() {
        let err = validate_timezone("Mars/Olympus_Mons").unwrap_err();
        assert_eq!(err.to_string(), "Not a valid timezone name");
        assert_eq!(
            err,
            ScheduleError::InvalidTimezone {
                name: "Mars/Olympus_Mons".into()
            }
        );
        assert!(validate_timezone("").is_err());
        assert!(
            validate_timezone("utc").is_err(),
            "names are case-sensitive, as zoneinfo's"
        );
        assert_eq!(
            validate_timezone(" Europe/Berlin "),
            Ok(chrono_tz::Europe::Berlin)
        );
        assert!(validate_timezone("Etc/GMT+12").is_ok());
        assert!(validate_timezone("US/Pacific").is_ok());
        // Validated even when the window is off, like upstream's form.
        let v = json!({"enabled": false, "timezone": "Invalid/Timezone"});
        assert_eq!(
            WeeklyWindow::parse(&v, Tz::UTC).unwrap_err().to_string(),
            "Not a valid timezone name"
        );
    }

    #[test]
    fn invalid_times_and_durations() {
        let day = |d: Value| json!({"enabled": true, "monday": d});
        let err = |v: Value| WeeklyWindow::parse(&v, Tz::UTC).unwrap_err().to_string();
        assert_eq!(
            err(day(json!({"start_time": "25:99"}))),
            "Invalid start_time '25:99' for monday. Must be in 'HH:MM' format."
        );
        assert_eq!(
            err(day(json!({"start_time": "twelve:thirty"}))),
            "Invalid start_time 'twelve:thirty' for monday. Must be in 'HH:MM' format."
        );
        for bad in ["24:00", "9:5", "09:000", "0900", "", "-1:00"] {
            assert!(
                WeeklyWindow::parse(&day(json!({"start_time": bad})), Tz::UTC).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            err(day(json!({"duration": {"hours": "x", "minutes": "0"}}))),
            "Invalid duration hours 'x' for monday. Must be a whole number."
        );
        assert_eq!(
            err(day(json!({"duration": {"hours": "1", "minutes": -5}}))),
            "Invalid duration minutes '-5' for monday. Must be a whole number."
        );
        assert_eq!(
            err(json!({"enabled": "yes"})),
            "Invalid time_schedule_limit: enabled must be a boolean."
        );
        assert_eq!(
            err(json!([1])),
            "Invalid time_schedule_limit: time_schedule_limit must be an object."
        );
    }

    #[test]
    fn threshold_seconds_matches_upstream_units() {
        assert_eq!(
            threshold_seconds(1, 1, 1, 1, 1),
            604_800 + 86_400 + 3_600 + 60 + 1
        );
        assert_eq!(threshold_seconds(0, 0, 3, 0, 0), 10_800);
        assert_eq!(threshold_seconds(u64::MAX, 1, 0, 0, 0), u64::MAX);
    }

    #[test]
    fn timeago_matches_python_package() {
        let now = 2_000_000_000;
        let ago = |secs: i64| timeago(now - secs, now);
        assert_eq!(timeago(0, now), "Not yet");
        let cases: [(i64, &str, &str, &str); 21] = [
            (0, "just now", "just now", "just now"),
            (9, "just now", "a while", "just now"),
            (10, "10 seconds ago", "in 10 seconds", "10s ago"),
            (59, "59 seconds ago", "in 59 seconds", "59s ago"),
            (60, "1 minute ago", "in 1 minute", "1m ago"),
            (119, "1 minute ago", "in 1 minute", "1m ago"),
            (120, "2 minutes ago", "in 2 minutes", "2m ago"),
            (180, "3 minutes ago", "in 3 minutes", "3m ago"),
            (3_599, "59 minutes ago", "in 59 minutes", "59m ago"),
            (3_600, "1 hour ago", "in 1 hour", "1h ago"),
            (7_200, "2 hours ago", "in 2 hours", "2h ago"),
            (86_399, "23 hours ago", "in 23 hours", "23h ago"),
            (86_400, "1 day ago", "in 1 day", "1d ago"),
            (604_799, "6 days ago", "in 6 days", "6d ago"),
            (604_800, "1 week ago", "in 1 week", "1w ago"),
            (2_592_000, "4 weeks ago", "in 4 weeks", "4w ago"),
            (2_678_400, "1 month ago", "in 1 month", "1mo ago"),
            (5_270_400, "2 months ago", "in 2 months", "2mo ago"),
            (31_536_000, "1 year ago", "in 1 year", "1yr ago"),
            (63_072_000, "2 years ago", "in 2 years", "2yr ago"),
            (315_360_000, "9 years ago", "in 9 years", "9yr ago"),
        ];
        for (secs, past, future, short) in cases {
            assert_eq!(ago(secs), past, "{secs}");
            if secs != 0 {
                assert_eq!(timeago(now + secs, now), future, "{secs}");
            }
            assert_eq!(
                timeago_styled(now - secs, now, TimeagoStyle::Short),
                short,
                "{secs}"
            );
        }
        assert_eq!(
            timeago_styled(now + 5, now, TimeagoStyle::Short),
            "right now"
        );
    }
}
