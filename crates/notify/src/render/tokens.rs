//! The values behind the template tokens.
//!
//! Diffs are the expensive tokens (a 1 MB page takes real time to diff), so only the tokens a
//! template names are built, and those that the template *calls* (`{{ diff(lines=5) }}`) are
//! objects that diff on demand. Tokens that are only read stay plain strings, so every string
//! filter, test and comparison works on them exactly as on any other string.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use changewatch_core::diff::{
    DiffFormat, DiffOptions, changed_from, changed_to, escape_html, render_diff, unified_patch,
};
use chrono::{DateTime, Datelike, Duration, Months, TimeZone, Utc};
use chrono_tz::Tz;
use minijinja::value::{Kwargs, Object, ObjectRepr, Value};
use minijinja::{Error, ErrorKind, State};

use super::ChangeContext;

/// Upstream's `{{change_datetime}}` format when none is passed.
pub(crate) const CHANGE_DATETIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S %Z";
/// Upstream's `{% now %}` format when none is passed.
pub(crate) const NOW_FORMAT: &str = "%a, %d %b %Y %H:%M:%S";
/// `difflib.unified_diff`'s default, which upstream's `{{diff_patch}}` uses.
const PATCH_CONTEXT: usize = 3;

/// The diff_* tokens that render a diff, and what each one shows by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Variant {
    Diff,
    Clean,
    Added,
    AddedClean,
    Removed,
    RemovedClean,
    Full,
    FullClean,
    Patch,
}

impl Variant {
    pub(crate) const ALL: [(&'static str, Variant); 9] = [
        ("diff", Variant::Diff),
        ("diff_clean", Variant::Clean),
        ("diff_added", Variant::Added),
        ("diff_added_clean", Variant::AddedClean),
        ("diff_removed", Variant::Removed),
        ("diff_removed_clean", Variant::RemovedClean),
        ("diff_full", Variant::Full),
        ("diff_full_clean", Variant::FullClean),
        ("diff_patch", Variant::Patch),
    ];

    fn base(self, word_diff: bool, ignore_whitespace: bool) -> Spec {
        let mut spec = Spec {
            include_equal: false,
            include_added: true,
            include_removed: true,
            prefix: true,
            word_diff,
            context: 0,
            case_insensitive: false,
            ignore_whitespace,
            patch: false,
        };
        match self {
            Variant::Diff => {}
            Variant::Clean => spec.prefix = false,
            Variant::Added => spec.include_removed = false,
            Variant::AddedClean => {
                spec.include_removed = false;
                spec.prefix = false;
            }
            Variant::Removed => spec.include_added = false,
            Variant::RemovedClean => {
                spec.include_added = false;
                spec.prefix = false;
            }
            Variant::Full => spec.include_equal = true,
            Variant::FullClean => {
                spec.include_equal = true;
                spec.prefix = false;
            }
            Variant::Patch => spec.patch = true,
        }
        spec
    }
}

/// Everything that decides the text of one diff; the cache key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Spec {
    include_equal: bool,
    include_added: bool,
    include_removed: bool,
    prefix: bool,
    word_diff: bool,
    context: usize,
    case_insensitive: bool,
    ignore_whitespace: bool,
    patch: bool,
}

/// The two snapshots plus every diff computed from them so far. Title and body are rendered
/// from the same source, so `{{diff}}` in both costs one diff.
#[derive(Debug)]
pub(crate) struct DiffSource {
    prev: String,
    current: String,
    word_diff: bool,
    ignore_whitespace: bool,
    cache: Mutex<HashMap<Spec, Arc<str>>>,
}

impl DiffSource {
    pub(crate) fn new(ctx: &ChangeContext, format: DiffFormat) -> Arc<Self> {
        Arc::new(Self {
            prev: ctx.prev_snapshot.clone(),
            current: ctx.current_snapshot.clone(),
            // Word-level markers inside a line are too hard to read as plain text.
            word_diff: format != DiffFormat::Text,
            ignore_whitespace: ctx.ignore_whitespace,
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn raw(&self, spec: Spec) -> Arc<str> {
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&spec)
        {
            return Arc::clone(hit);
        }
        let text: Arc<str> = if self.prev.is_empty() && self.current.is_empty() {
            Arc::from("")
        } else if spec.patch {
            let context = if spec.context > 0 {
                spec.context
            } else {
                PATCH_CONTEXT
            };
            Arc::from(unified_patch(&self.prev, &self.current, "", "", context))
        } else {
            let opts = DiffOptions {
                include_equal: spec.include_equal,
                include_added: spec.include_added,
                include_removed: spec.include_removed,
                include_replaced: true,
                word_diff: spec.word_diff,
                ignore_whitespace: spec.ignore_whitespace,
                case_insensitive: spec.case_insensitive,
                include_change_type_prefix: spec.prefix,
                context_lines: spec.context,
            };
            Arc::from(render_diff(&self.prev, &self.current, &opts))
        };
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(spec, Arc::clone(&text));
        text
    }

    /// `diff_changed_from` / `diff_changed_to`: extracted from a word diff whatever the
    /// format, because only word diffs mark the changed fragments inside a line.
    fn extract(&self, to: bool) -> String {
        let spec = Variant::Diff.base(true, false);
        let raw = self.raw(spec);
        if to {
            changed_to(&raw)
        } else {
            changed_from(&raw)
        }
    }
}

fn escaped(text: &str, escape: bool) -> String {
    if escape {
        escape_html(text)
    } else {
        text.to_string()
    }
}

/// A diff token that the template calls: renders its default diff when printed, and a
/// diff with the caller's options when called.
#[derive(Debug)]
struct DiffToken {
    source: Arc<DiffSource>,
    variant: Variant,
    escape: bool,
    default: OnceLock<String>,
}

impl DiffToken {
    fn default_text(&self) -> &str {
        self.default.get_or_init(|| {
            let spec = self
                .variant
                .base(self.source.word_diff, self.source.ignore_whitespace);
            escaped(&self.source.raw(spec), self.escape)
        })
    }

    /// Upstream's `FormattableDiff.__call__(lines=None, added_only=False, removed_only=False,
    /// context=0, word_diff=None, case_insensitive=False, ignore_junk=False)`, positional
    /// arguments included.
    fn call_with(&self, args: &[Value]) -> Result<String, Error> {
        const PARAMS: [&str; 7] = [
            "lines",
            "added_only",
            "removed_only",
            "context",
            "word_diff",
            "case_insensitive",
            "ignore_junk",
        ];
        let (positional, kwargs) = split_kwargs(args)?;
        if positional.len() > PARAMS.len() {
            return Err(Error::new(
                ErrorKind::TooManyArguments,
                "diff tokens take at most 7 arguments",
            ));
        }
        let mut given: BTreeMap<&str, Value> = BTreeMap::new();
        for (name, value) in PARAMS.iter().zip(positional) {
            given.insert(name, value.clone());
        }
        if let Some(kwargs) = &kwargs {
            for name in PARAMS {
                if let Some(value) = kwargs.get::<Option<Value>>(name)?
                    && given.insert(name, value).is_some()
                {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("got multiple values for argument '{name}'"),
                    ));
                }
            }
            kwargs.assert_all_used()?;
        }
        let flag = |name: &str| given.get(name).is_some_and(Value::is_true);

        let mut spec = self
            .variant
            .base(self.source.word_diff, self.source.ignore_whitespace);
        if flag("added_only") {
            spec.include_removed = false;
        }
        if flag("removed_only") {
            spec.include_added = false;
        }
        if let Some(context) = given.get("context").filter(|v| v.is_true()) {
            spec.context = usize::try_from(as_int(context, "context")?).unwrap_or(0);
        }
        if let Some(word_diff) = given.get("word_diff").filter(|v| !v.is_none()) {
            spec.word_diff = word_diff.is_true();
        }
        if flag("case_insensitive") {
            spec.case_insensitive = true;
        }
        if flag("ignore_junk") {
            spec.ignore_whitespace = true;
        }
        let raw = self.source.raw(spec);
        let text = match given.get("lines").filter(|v| !v.is_none()) {
            Some(lines) => first_lines(&raw, as_int(lines, "lines")?),
            None => raw.to_string(),
        };
        Ok(escaped(&text, self.escape))
    }
}

impl Object for DiffToken {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn is_true(self: &Arc<Self>) -> bool {
        !self.default_text().is_empty()
    }

    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        self.call_with(args).map(Value::from)
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.default_text())
    }
}

fn split_kwargs(args: &[Value]) -> Result<(&[Value], Option<Kwargs>), Error> {
    match args.split_last() {
        Some((last, rest)) if last.is_kwargs() => Ok((rest, Some(Kwargs::try_from(last.clone())?))),
        _ => Ok((args, None)),
    }
}

/// Python's `int(x)` for the numeric arguments, which also accepts numeric strings.
fn as_int(value: &Value, name: &str) -> Result<i64, Error> {
    if let Ok(n) = i64::try_from(value.clone()) {
        return Ok(n);
    }
    if let Some(s) = value.as_str()
        && let Ok(n) = s.trim().parse::<i64>()
    {
        return Ok(n);
    }
    Err(Error::new(
        ErrorKind::InvalidOperation,
        format!("{name} must be an integer"),
    ))
}

/// `'\n'.join(text.splitlines()[:n])`, negative `n` counting from the end as in Python.
fn first_lines(text: &str, n: i64) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let len = i64::try_from(lines.len()).unwrap_or(i64::MAX);
    let keep = if n < 0 { (len + n).max(0) } else { n.min(len) };
    lines[..usize::try_from(keep).unwrap_or(0)].join("\n")
}

/// `strftime` with upstream's fallback: a format Python cannot apply gives the ISO form.
pub(crate) fn strftime(dt: &DateTime<Tz>, format: &str) -> String {
    use chrono::format::{Item, StrftimeItems};
    use std::fmt::Write as _;
    let items: Vec<Item<'_>> = StrftimeItems::new(format).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return dt.to_rfc3339();
    }
    let mut out = String::new();
    if write!(out, "{}", dt.format_with_items(items.into_iter())).is_err() {
        return dt.to_rfc3339();
    }
    out
}

pub(crate) fn zone(name: Option<&str>) -> Tz {
    name.and_then(|n| n.trim().parse::<Tz>().ok())
        .unwrap_or(chrono_tz::UTC)
}

/// `change_datetime` when the template calls it: `change_datetime(format='%A')`.
#[derive(Debug)]
struct ChangeDatetime {
    at: DateTime<Tz>,
}

impl Object for ChangeDatetime {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (positional, kwargs) = split_kwargs(args)?;
        let mut format = positional.first().cloned();
        if positional.len() > 1 {
            return Err(Error::new(
                ErrorKind::TooManyArguments,
                "change_datetime takes one argument, format",
            ));
        }
        if let Some(kwargs) = kwargs {
            if let Some(f) = kwargs.get::<Option<Value>>("format")? {
                format = Some(f);
            }
            kwargs.assert_all_used()?;
        }
        let format = format.map_or_else(|| CHANGE_DATETIME_FORMAT.to_string(), |f| f.to_string());
        Ok(Value::from(strftime(&self.at, &format)))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&strftime(&self.at, CHANGE_DATETIME_FORMAT))
    }
}

/// What `{% now 'tz' + 'hours=2', 'fmt' %}` becomes after the tag is rewritten to a call:
/// `__cw_now('tz', '+', 'hours=2', 'fmt')`.
#[derive(Debug)]
struct NowFn {
    default_zone: Tz,
}

impl Object for NowFn {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let arg = |i: usize| args.get(i).filter(|v| !v.is_none()).map(Value::to_string);
        let tz = match arg(0).filter(|s| !s.trim().is_empty()) {
            Some(name) => name.trim().parse::<Tz>().map_err(|_| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("unknown timezone '{name}'"),
                )
            })?,
            None => self.default_zone,
        };
        let mut at = DateTime::<Utc>::from(std::time::SystemTime::now()).with_timezone(&tz);
        if let (Some(op), Some(offset)) = (arg(1), arg(2)) {
            at = shift(at, op == "-", &offset)?;
        }
        let format = arg(3).unwrap_or_else(|| NOW_FORMAT.to_string());
        Ok(Value::from(strftime(&at, &format)))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("now")
    }
}

fn bad_offset(offset: &str) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("invalid time offset '{offset}'"),
    )
}

/// Arrow's `shift(**{k: ±v})` for the offsets upstream's `{% now %}` accepts.
fn shift(mut at: DateTime<Tz>, negative: bool, offset: &str) -> Result<DateTime<Tz>, Error> {
    let sign = if negative { -1.0 } else { 1.0 };
    for part in offset.split(',').filter(|p| !p.trim().is_empty()) {
        let (unit, value) = part.split_once('=').ok_or_else(|| bad_offset(offset))?;
        let value: f64 = value.trim().parse().map_err(|_| bad_offset(offset))?;
        let value = value * sign;
        let seconds = |per: f64| -> Result<Duration, Error> {
            let micros = value * per * 1e6;
            if !micros.is_finite() || micros.abs() > 1e17 {
                return Err(bad_offset(offset));
            }
            #[allow(clippy::cast_possible_truncation)]
            Ok(Duration::microseconds(micros.round() as i64))
        };
        let months = |per: f64| -> Result<DateTime<Tz>, Error> {
            let n = value * per;
            if !n.is_finite() || n.abs() > 1e6 {
                return Err(bad_offset(offset));
            }
            #[allow(clippy::cast_possible_truncation)]
            let n = n.trunc() as i64;
            let m = Months::new(u32::try_from(n.unsigned_abs()).map_err(|_| bad_offset(offset))?);
            let shifted = if n < 0 {
                at.checked_sub_months(m)
            } else {
                at.checked_add_months(m)
            };
            shifted.ok_or_else(|| bad_offset(offset))
        };
        at = match unit.trim() {
            "years" => months(12.0)?,
            "months" => months(1.0)?,
            "weeks" => at + seconds(7.0 * 86_400.0)?,
            "days" => at + seconds(86_400.0)?,
            "hours" => at + seconds(3_600.0)?,
            "minutes" => at + seconds(60.0)?,
            "seconds" => at + seconds(1.0)?,
            "microseconds" => at + seconds(1e-6)?,
            "weekday" => {
                // dateutil's relativedelta(weekday=N): the next such day, today included.
                #[allow(clippy::cast_possible_truncation)]
                let target = (value.abs() as i64).rem_euclid(7);
                let today = i64::from(at.weekday().num_days_from_monday());
                at + Duration::days((target - today).rem_euclid(7))
            }
            _ => return Err(bad_offset(offset)),
        };
    }
    Ok(at)
}

/// Names of the page-derived tokens: in HTML formats their text is escaped before the
/// template sees it, so a page cannot inject markup into the operator's notification while
/// the operator's own markup in the template stays live.
const PAGE_DERIVED: [&str; 8] = [
    "current_snapshot",
    "prev_snapshot",
    "triggered_text",
    "watch_title",
    "watch_label",
    "llm_summary",
    "diff_changed_from",
    "diff_changed_to",
];

pub(crate) struct Build<'a> {
    pub ctx: &'a ChangeContext,
    pub source: &'a Arc<DiffSource>,
    /// Names the template reads; nothing else is computed.
    pub used: &'a HashSet<String>,
    /// Names the template calls; those become callable objects.
    pub called: &'a HashSet<String>,
    /// Escape page-derived text (HTML bodies).
    pub escape: bool,
}

/// `base_url` as upstream builds it: the configured URL without trailing slashes, plus one.
pub(crate) fn base_url(ctx: &ChangeContext) -> String {
    format!("{}/", ctx.base_url.trim_end_matches('/'))
}

/// The template context: every token the template names, nothing more.
pub(crate) fn build_context(b: &Build<'_>) -> BTreeMap<String, Value> {
    let ctx = b.ctx;
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    let wants = |name: &str| b.used.contains(name);
    let text = |name: &str, value: &str| {
        if b.escape && PAGE_DERIVED.contains(&name) {
            Value::from(escape_html(value))
        } else {
            Value::from(value)
        }
    };
    let opt = |v: &Option<String>| v.as_deref().map_or(Value::from(()), Value::from);

    let base = base_url(ctx);
    let uuid = &ctx.watch_uuid;
    let diff_url = match (ctx.timestamp_from, ctx.timestamp_to) {
        (Some(from), Some(to)) => {
            format!("{base}diff/{uuid}?from_version={from}&to_version={to}")
        }
        _ => format!("{base}diff/{uuid}"),
    };
    let simple: [(&str, Value); 20] = [
        ("base_url", Value::from(base.clone())),
        ("watch_url", Value::from(ctx.watch_url.as_str())),
        (
            "watch_open_url",
            Value::from(ctx.watch_open_url.as_deref().unwrap_or(&ctx.watch_url)),
        ),
        ("watch_uuid", Value::from(uuid.as_str())),
        ("watch_title", text("watch_title", &ctx.watch_title)),
        ("watch_label", text("watch_label", &ctx.watch_label)),
        ("watch_tag", Value::from(ctx.watch_tag.as_str())),
        ("watch_mime_type", opt(&ctx.watch_mime_type)),
        ("diff_url", Value::from(diff_url)),
        ("preview_url", Value::from(format!("{base}preview/{uuid}"))),
        ("edit_url", Value::from(format!("{base}edit/{uuid}"))),
        ("screenshot", opt(&ctx.screenshot)),
        (
            "timestamp_from",
            ctx.timestamp_from.map_or(Value::from(()), Value::from),
        ),
        (
            "timestamp_to",
            ctx.timestamp_to.map_or(Value::from(()), Value::from),
        ),
        (
            "triggered_text",
            text("triggered_text", &ctx.triggered_text),
        ),
        (
            "current_snapshot",
            text("current_snapshot", &ctx.current_snapshot),
        ),
        ("prev_snapshot", text("prev_snapshot", &ctx.prev_snapshot)),
        ("llm_summary", text("llm_summary", &ctx.llm_summary)),
        ("llm_intent", Value::from(ctx.llm_intent.as_str())),
        (
            "notification_timestamp",
            Value::from(ctx.notification_timestamp),
        ),
    ];
    for (name, value) in simple {
        if wants(name) {
            out.insert(name.to_string(), value);
        }
    }
    if wants("restock") {
        out.insert("restock".into(), Value::from_serialize(&ctx.restock));
    }
    if wants("change_datetime") {
        let secs = ctx
            .timestamp_to
            .map_or(ctx.notification_timestamp, |t| t as f64);
        let at = datetime_at(secs, zone(ctx.timezone.as_deref()));
        let value = if b.called.contains("change_datetime") {
            Value::from_object(ChangeDatetime { at })
        } else {
            Value::from(strftime(&at, CHANGE_DATETIME_FORMAT))
        };
        out.insert("change_datetime".into(), value);
    }
    if wants(super::env::NOW_FN) {
        out.insert(
            super::env::NOW_FN.into(),
            Value::from_object(NowFn {
                default_zone: zone(ctx.timezone.as_deref()),
            }),
        );
    }
    // raw_diff is {{diff}} even when an AI summary would replace {{diff}} upstream.
    let diff_names = Variant::ALL
        .iter()
        .copied()
        .chain(std::iter::once(("raw_diff", Variant::Diff)));
    for (name, variant) in diff_names {
        if !wants(name) {
            continue;
        }
        let token = DiffToken {
            source: Arc::clone(b.source),
            variant,
            escape: b.escape,
            default: OnceLock::new(),
        };
        let value = if b.called.contains(name) {
            Value::from_object(token)
        } else {
            Value::from(token.default_text())
        };
        out.insert(name.to_string(), value);
    }
    for (name, to) in [("diff_changed_from", false), ("diff_changed_to", true)] {
        if wants(name) {
            out.insert(name.to_string(), text(name, &b.source.extract(to)));
        }
    }
    out
}

/// What a request template (a watch's URL, header value or body) can use: upstream renders
/// those with no variables, only its `{% now %}` extension (in UTC unless the tag names a
/// zone).
pub(crate) fn request_context() -> BTreeMap<String, Value> {
    BTreeMap::from([(
        super::env::NOW_FN.to_string(),
        Value::from_object(NowFn {
            default_zone: zone(None),
        }),
    )])
}

fn datetime_at(secs: f64, tz: Tz) -> DateTime<Tz> {
    #[allow(clippy::cast_possible_truncation)]
    let whole = if secs.is_finite() {
        secs.trunc() as i64
    } else {
        0
    };
    tz.timestamp_opt(whole, 0)
        .single()
        .unwrap_or_else(|| DateTime::<Utc>::from(std::time::SystemTime::now()).with_timezone(&tz))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn first_lines_is_python_slicing() {
        assert_eq!(first_lines("a\nb\nc", 2), "a\nb");
        assert_eq!(first_lines("a\nb\nc", 10), "a\nb\nc");
        assert_eq!(first_lines("a\nb\nc", -1), "a\nb");
        assert_eq!(first_lines("a\nb\nc", -5), "");
        assert_eq!(first_lines("a\nb\nc", 0), "");
    }

    #[test]
    fn bad_strftime_falls_back_to_iso() {
        let at = datetime_at(0.0, chrono_tz::UTC);
        assert_eq!(strftime(&at, "%Y"), "1970");
        assert_eq!(strftime(&at, "%Q"), "1970-01-01T00:00:00+00:00");
    }

    #[test]
    fn offsets_shift_like_arrow() {
        let at = datetime_at(0.0, chrono_tz::UTC);
        let s = shift(at, false, "hours=2,minutes=30").unwrap();
        assert_eq!(strftime(&s, "%H:%M"), "02:30");
        let s = shift(at, true, "days=1").unwrap();
        assert_eq!(strftime(&s, "%Y-%m-%d"), "1969-12-31");
        let s = shift(at, false, "months=1").unwrap();
        assert_eq!(strftime(&s, "%Y-%m-%d"), "1970-02-01");
        // 1970-01-01 was a Thursday; weekday=0 is the next Monday.
        let s = shift(at, false, "weekday=0").unwrap();
        assert_eq!(strftime(&s, "%Y-%m-%d %a"), "1970-01-05 Mon");
        assert!(shift(at, false, "fortnights=1").is_err());
        assert!(shift(at, false, "days=1e300").is_err());
    }
}
