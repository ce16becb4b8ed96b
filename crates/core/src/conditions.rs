//! Conditions: upstream's conditions plugin (json-logic rules on the filtered text), evaluated
//! where upstream evaluates them, after the checksum and beside trigger_text: a check whose
//! rules do not hold is blocked (no change, `previous_md5` kept, no snapshot past the first).
//!
//! A watch's `conditions` are `{field, operator, value}` rows joined by `conditions_match_logic`
//! (`ALL` = and, anything else = or). Rows with an empty field, operator or value (or the
//! string `None`) are skipped, as upstream's `filter_complete_rules`; no complete row = holds.
//!
//! Facts (upstream's default, word count and Levenshtein plugins), computed from the text the
//! check would store:
//! - `page_filtered_text`: the text;
//! - `extracted_number`: price-parser's amount of the text (the first number, with its
//!   thousand/decimal separator guess; `free` = 0); absent when there is none;
//! - `word_count`: whitespace-separated words;
//! - `levenshtein_ratio` (Indel normalised similarity, 0..1), `levenshtein_distance` (edits)
//!   and `levenshtein_similarity` (ratio in %, 2 decimals), against the newest stored snapshot;
//!   absent without one, or when the part that differs is over [`MAX_EDIT_CELLS`] (upstream
//!   gives a plugin 10 s and then drops its facts).
//!
//! The value is converted as upstream converts it (a `.` in it: float, else int, else the
//! string) and compared with panzi-json-logic's JavaScript-like coercion: an absent fact is
//! `null`, which counts as 0 against a number (so `extracted_number < 100` holds on a page
//! without a number, as upstream). Where upstream raises a TypeError (a numeric-looking value
//! for `!in` or a regex, a text operator on a number) changewatch either refuses the rule at
//! save time ([`validate`]) or uses the value as text.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use crate::model::Condition;
use crate::text_rules::{self, RuleError};

/// Upstream's API schema: `maxItems: 100`.
pub const MAX_CONDITIONS: usize = 100;
/// A value longer than this is refused at save (like filters and rules).
pub const MAX_VALUE_CHARS: usize = 5_000;
/// Levenshtein on the differing middle of the two texts (after the common prefix and suffix)
/// is skipped past this many DP cells (len × len): ~25 M cells is tens of milliseconds.
pub const MAX_EDIT_CELLS: usize = 25_000_000;

/// The fields, as upstream's choices (value, label).
pub const FIELDS: &[(&str, &str)] = &[
    (
        "extracted_number",
        "Extracted number after 'Filters & Triggers'",
    ),
    ("page_filtered_text", "Page text after 'Filters & Triggers'"),
    ("word_count", "Word count of content"),
    ("levenshtein_ratio", "Levenshtein - Text similarity ratio"),
    ("levenshtein_distance", "Levenshtein - Text change distance"),
    ("levenshtein_similarity", "Levenshtein - Percent similar"),
];

/// The operators, as upstream's choices (value, label).
pub const OPERATORS: &[(&str, &str)] = &[
    (">", "Greater Than"),
    ("<", "Less Than"),
    (">=", "Greater Than or Equal To"),
    ("<=", "Less Than or Equal To"),
    ("==", "Equals"),
    ("!=", "Not Equals"),
    ("in", "Contains"),
    ("!in", "Does NOT Contain"),
    ("starts_with", "Text Starts With"),
    ("ends_with", "Text Ends With"),
    ("length_min", "Length minimum"),
    ("length_max", "Length maximum"),
    ("contains_regex", "Text Matches Regex"),
    ("!contains_regex", "Text Does NOT Match Regex"),
];

const TEXT_FIELDS: &[&str] = &["page_filtered_text"];
/// Operators that read the field as text (upstream raises on a number for most of them).
const TEXT_OPERATORS: &[&str] = &[
    "in",
    "!in",
    "starts_with",
    "ends_with",
    "length_min",
    "length_max",
];
/// Operators whose value must be a number.
const NUMERIC_OPERATORS: &[&str] = &[">", "<", ">=", "<=", "length_min", "length_max"];
const LEVENSHTEIN_FIELDS: &[&str] = &[
    "levenshtein_ratio",
    "levenshtein_distance",
    "levenshtein_similarity",
];

/// Upstream's `filter_complete_rules`: field, operator and value all set and not `None`.
pub fn is_complete(c: &Condition) -> bool {
    [&c.field, &c.operator, &c.value]
        .iter()
        .all(|s| !s.is_empty() && s.as_str() != "None")
}

fn empty(s: &str) -> bool {
    s.is_empty() || s == "None"
}

/// Whether evaluating `conditions` needs the newest snapshot's text.
pub fn needs_previous_text(conditions: &[Condition]) -> bool {
    conditions
        .iter()
        .any(|c| is_complete(c) && LEVENSHTEIN_FIELDS.contains(&c.field.as_str()))
}

/// Save-time check of a watch's rows; the message names the row (1-based) and says what to fix.
pub fn validate(conditions: &[Condition]) -> Result<(), String> {
    if conditions.len() > MAX_CONDITIONS {
        return Err(format!(
            "at most {MAX_CONDITIONS} rules, got {}",
            conditions.len()
        ));
    }
    for (i, c) in conditions.iter().enumerate() {
        let n = i + 1;
        // A row left wholly empty is what the edit form sends for "no rule": skipped.
        if empty(&c.field) && empty(&c.operator) && empty(&c.value) {
            continue;
        }
        if empty(&c.field) {
            return Err(format!("rule {n}: 'field' is required"));
        }
        if empty(&c.operator) {
            return Err(format!("rule {n}: 'operator' is required"));
        }
        if empty(&c.value) {
            return Err(format!("rule {n}: 'value' is required"));
        }
        if !FIELDS.iter().any(|(f, _)| *f == c.field) {
            return Err(format!(
                "rule {n}: unknown field '{}' (one of: {})",
                c.field,
                names(FIELDS)
            ));
        }
        let op = c.operator.as_str();
        if !OPERATORS.iter().any(|(o, _)| *o == op) {
            return Err(format!(
                "rule {n}: unknown operator '{op}' (one of: {})",
                names(OPERATORS)
            ));
        }
        if c.value.chars().count() > MAX_VALUE_CHARS {
            return Err(format!(
                "rule {n}: 'value' is longer than {MAX_VALUE_CHARS} characters"
            ));
        }
        if TEXT_OPERATORS.contains(&op) && !TEXT_FIELDS.contains(&c.field.as_str()) {
            return Err(format!(
                "rule {n}: operator '{op}' applies to text, and '{}' is a number",
                c.field
            ));
        }
        if NUMERIC_OPERATORS.contains(&op) {
            let number = match argument(&c.value) {
                Val::Int(_) => true,
                Val::Float(f) => f.is_finite(),
                _ => false,
            };
            if !number {
                return Err(format!(
                    "rule {n}: operator '{op}' needs a number, got '{}'",
                    c.value
                ));
            }
        }
        if op.ends_with("contains_regex") {
            regex(&c.value).map_err(|e| format!("rule {n}: {e}"))?;
        }
    }
    Ok(())
}

fn names(list: &[(&str, &str)]) -> String {
    list.iter().map(|(v, _)| *v).collect::<Vec<_>>().join(", ")
}

/// Whether the rules hold on `text` (the text the check would store); `previous` is the newest
/// stored snapshot, read only by the Levenshtein fields. No complete rule, or an empty
/// `logic` (upstream skips the evaluation then): holds.
pub fn holds(
    conditions: &[Condition],
    logic: &str,
    text: &str,
    previous: Option<&str>,
) -> Result<bool, RuleError> {
    let rules: Vec<&Condition> = conditions.iter().filter(|c| is_complete(c)).collect();
    if rules.is_empty() || logic.is_empty() {
        return Ok(true);
    }
    let facts = facts(text, previous, needs_previous_text(conditions));
    let mut results = Vec::with_capacity(rules.len());
    for rule in rules {
        results.push(rule_holds(rule, &facts)?);
    }
    Ok(if logic == "ALL" {
        results.iter().all(|r| *r)
    } else {
        results.iter().any(|r| *r)
    })
}

/// The facts the rules are evaluated against (what upstream's plugins' `add_data` give).
fn facts(text: &str, previous: Option<&str>, levenshtein: bool) -> HashMap<&'static str, Val> {
    let mut f = HashMap::new();
    f.insert("page_filtered_text", Val::Str(text.to_string()));
    if let Some(n) = extract_number(text) {
        f.insert("extracted_number", Val::Float(n));
    }
    f.insert(
        "word_count",
        Val::Int(i64::try_from(text.split_whitespace().count()).unwrap_or(i64::MAX)),
    );
    if levenshtein
        && let Some(prev) = previous.filter(|p| !p.is_empty())
        && !text.is_empty()
        && let Some((distance, ratio)) = edit_stats(prev, text)
    {
        f.insert(
            "levenshtein_distance",
            Val::Int(i64::try_from(distance).unwrap_or(i64::MAX)),
        );
        f.insert("levenshtein_ratio", Val::Float(ratio));
        f.insert(
            "levenshtein_similarity",
            Val::Float((ratio * 10_000.0).round() / 100.0),
        );
    }
    f
}

fn rule_holds(rule: &Condition, facts: &HashMap<&'static str, Val>) -> Result<bool, RuleError> {
    let field = facts.get(rule.field.as_str()).cloned().unwrap_or(Val::Null);
    let arg = argument(&rule.value);
    Ok(match rule.operator.as_str() {
        ">" => compare(&field, &arg, |o| o.is_gt()),
        "<" => compare(&field, &arg, |o| o.is_lt()),
        ">=" => compare(&field, &arg, |o| o.is_ge()),
        "<=" => compare(&field, &arg, |o| o.is_le()),
        "==" => equals(&field, &arg),
        "!=" => !equals(&field, &arg),
        "in" => matches!(&field, Val::Str(h) if h.contains(&to_string(&arg))),
        "!in" => !matches!(&field, Val::Str(h) if h.contains(&to_string(&arg))),
        "starts_with" => py_str(&field)
            .to_lowercase()
            .trim()
            .starts_with(&to_string(&arg).trim().to_lowercase()),
        "ends_with" => py_str(&field)
            .to_lowercase()
            .trim()
            .ends_with(&to_string(&arg).trim().to_lowercase()),
        "length_min" => length_limit(&arg).is_some_and(|n| py_len(&field) >= n),
        "length_max" => length_limit(&arg).is_some_and(|n| py_len(&field) <= n),
        "contains_regex" => regex_matches(&rule.value, &py_str(&field))?,
        "!contains_regex" => !regex_matches(&rule.value, &py_str(&field))?,
        // Refused at save; a stored rule from before is not a reason to report a change.
        other => {
            tracing::warn!(operator = other, "unknown conditions operator, rule fails");
            false
        }
    })
}

fn regex(pattern: &str) -> Result<fancy_regex::Regex, RuleError> {
    text_rules::compile(pattern, pattern, "i")
}

fn regex_matches(pattern: &str, text: &str) -> Result<bool, RuleError> {
    regex(pattern)?
        .is_match(text)
        .map_err(|e| RuleError::runtime(pattern, &e))
}

fn length_limit(arg: &Val) -> Option<i128> {
    match arg {
        Val::Int(n) => Some(i128::from(*n)),
        // Python's int(float) truncates; the casts saturate, and NaN is refused at save.
        Val::Float(f) if f.is_finite() => Some(f.trunc() as i128),
        Val::Str(s) => s.trim().parse::<i128>().ok(),
        _ => None,
    }
}

fn py_len(v: &Val) -> i128 {
    i128::try_from(py_str(v).chars().count()).unwrap_or(i128::MAX)
}

/// A json-logic value as upstream's rules see it.
#[derive(Clone, Debug, PartialEq)]
enum Val {
    Null,
    Int(i64),
    Float(f64),
    Str(String),
}

impl Val {
    fn number(&self) -> Option<f64> {
        match self {
            Val::Int(n) => Some(*n as f64),
            Val::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// Upstream's conversion of a rule's value: float when it has a `.`, else int, else the text.
fn argument(value: &str) -> Val {
    let t = value.trim();
    if value.contains('.') {
        if let Some(f) = py_float(t) {
            return Val::Float(f);
        }
    } else if let Ok(n) = t.parse::<i64>() {
        return Val::Int(n);
    }
    Val::Str(value.to_string())
}

/// Python's `float()` on a trimmed string (Rust's grammar is the same for what users type:
/// digits, one `.`, an exponent, `inf`, `nan`).
fn py_float(t: &str) -> Option<f64> {
    t.parse::<f64>().ok()
}

/// panzi-json-logic's `to_number`.
fn to_number(v: &Val) -> f64 {
    match v {
        Val::Null => 0.0,
        Val::Int(_) | Val::Float(_) => v.number().unwrap_or(f64::NAN),
        Val::Str(s) => {
            let t = s.trim();
            if matches!(t.to_lowercase().as_str(), "inf" | "-inf" | "+inf") {
                f64::NAN
            } else {
                py_float(t).unwrap_or(f64::NAN)
            }
        }
    }
}

/// panzi-json-logic's `to_string`.
fn to_string(v: &Val) -> String {
    match v {
        Val::Null => "null".into(),
        other => py_str(other),
    }
}

/// Python's `str()`.
fn py_str(v: &Val) -> String {
    match v {
        Val::Null => "None".into(),
        Val::Int(n) => n.to_string(),
        Val::Float(f) => py_float_repr(*f),
        Val::Str(s) => s.clone(),
    }
}

/// Python's `repr(float)`: shortest round trip, exponent below 1e-4 and from 1e16.
fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let e = format!("{f:e}");
        let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let s = format!("{f}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

/// panzi-json-logic's `<`, `>`, `<=`, `>=` (`less_than` and friends).
fn compare(a: &Val, b: &Val, ok: fn(std::cmp::Ordering) -> bool) -> bool {
    let num = |x: f64, y: f64| x.partial_cmp(&y).is_some_and(ok);
    if let Some(x) = a.number() {
        return num(x, to_number(b));
    }
    if let Some(y) = b.number() {
        return num(to_number(a), y);
    }
    if let Val::Str(x) = a {
        return ok(x.as_str().cmp(to_string(b).as_str()));
    }
    if let Val::Str(y) = b {
        return ok(to_string(a).as_str().cmp(y.as_str()));
    }
    num(to_number(a), to_number(b))
}

/// panzi-json-logic's `==`.
fn equals(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Str(x), Val::Str(y)) => x == y,
        _ => match (a.number(), b.number()) {
            (Some(x), Some(y)) => x == y,
            (Some(x), None) => x == to_number(b),
            (None, Some(y)) => to_number(a) == y,
            (None, None) => false,
        },
    }
}

static EURO_PRICE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"[0-9\s.,]*?[0-9]\s*?€\s*?[0-9][0-9](?:$|[^0-9])").ok());
static PRICE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"([0-9][0-9\s.,]*)\s*?(?:[^%0-9]|$)").ok());
static DECIMAL_SEPARATOR: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"[0-9]([.,€])(?:[0-9]{1,2}?|[0-9]{4}[0-9]*?)$").ok());

/// price-parser's `Price.fromstring(text).amount` as a float (upstream's `extracted_number`).
/// Digits are ASCII (Python's `\d` also takes other scripts' digits).
pub fn extract_number(text: &str) -> Option<f64> {
    parse_number(&extract_price_text(text)?)
}

/// price-parser's `extract_price_text`: the first number-looking run not followed by `%`, or
/// `0` for a text saying "free".
fn extract_price_text(text: &str) -> Option<String> {
    if text.matches('€').count() == 1
        && let Some(m) = EURO_PRICE.as_ref().and_then(|re| re.find(text))
    {
        return Some(m.as_str().replace(' ', ""));
    }
    if let Some(g) = PRICE
        .as_ref()
        .and_then(|re| re.captures(text))
        .and_then(|c| c.get(1))
    {
        return Some(
            g.as_str()
                .trim_matches(|c| c == ',' || c == '.')
                .trim()
                .to_string(),
        );
    }
    text.to_lowercase().contains("free").then(|| "0".into())
}

/// price-parser's `parse_number`: guesses the decimal separator (1, 2 or 4+ digits after the
/// last one; 3 means thousands), drops the others, then reads a decimal.
fn parse_number(num: &str) -> Option<f64> {
    let num = num.trim().replace(' ', "");
    if num.is_empty() {
        return None;
    }
    let sep = DECIMAL_SEPARATOR
        .as_ref()
        .and_then(|re| re.captures(&num))
        .and_then(|c| c.get(1))
        .map(|m| m.as_str());
    let num = match sep {
        None => num.replace(['.', ','], ""),
        Some(".") => num.replace(',', ""),
        Some(",") => num.replace('.', "").replace(',', "."),
        Some(_) => num.replace(['.', ','], "").replace('€', "."),
    };
    // Python's Decimal(): digits with at most one point (the separators are all gone).
    let digits = num.chars().filter(char::is_ascii_digit).count();
    let points = num.chars().filter(|c| *c == '.').count();
    if digits == 0 || points > 1 || digits + points != num.chars().count() {
        return None;
    }
    num.parse::<f64>().ok()
}

/// Levenshtein distance and the Indel normalised similarity (rapidfuzz's
/// `Indel.normalized_similarity`, upstream's "ratio"), by code point. `None` when the differing
/// middle is over [`MAX_EDIT_CELLS`].
pub fn edit_stats(a: &str, b: &str) -> Option<(usize, f64)> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let total = a.len() + b.len();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let (a_rest, b_rest) = (&a[prefix..], &b[prefix..]);
    let suffix = a_rest
        .iter()
        .rev()
        .zip(b_rest.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let a_mid = &a_rest[..a_rest.len() - suffix];
    let b_mid = &b_rest[..b_rest.len() - suffix];
    if a_mid.len().saturating_mul(b_mid.len()) > MAX_EDIT_CELLS {
        return None;
    }
    let distance = levenshtein(a_mid, b_mid);
    let lcs = prefix + suffix + lcs_len(a_mid, b_mid);
    let ratio = if total == 0 {
        1.0
    } else {
        1.0 - (total - 2 * lcs) as f64 / total as f64
    };
    Some((distance, ratio))
}

fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == cb {
                diag
            } else {
                1 + diag.min(above).min(row[j])
            };
            diag = above;
        }
    }
    row[b.len()]
}

fn lcs_len(a: &[char], b: &[char]) -> usize {
    let mut row = vec![0usize; b.len() + 1];
    for ca in a {
        let mut diag = 0;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == cb {
                diag + 1
            } else {
                above.max(row[j])
            };
            diag = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(field: &str, operator: &str, value: &str) -> Condition {
        Condition {
            field: field.into(),
            operator: operator.into(),
            value: value.into(),
        }
    }

    fn check(rules: &[Condition], logic: &str, text: &str, prev: Option<&str>) -> bool {
        holds(rules, logic, text, prev).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn extracted_number_is_price_parsers_amount() {
        for (text, want) in [
            ("Current value: 70.5", Some(70.5)),
            ("price: $12.99", Some(12.99)),
            ("1,235 USD", Some(1235.0)),
            ("12,34 €", Some(12.34)),
            ("35€ 99", Some(35.99)),
            ("1 234.99 left", Some(1234.99)),
            ("50% OFF, now 20", Some(20.0)),
            ("50%", None),
            ("It's free!", Some(0.0)),
            ("nothing here", None),
            ("Price 99\nSecond line 3", Some(99.0)),
            ("12.999", Some(12999.0)),
            ("3,0000", Some(3.0)),
        ] {
            assert_eq!(extract_number(text), want, "{text:?}");
        }
    }

    #[test]
    fn numbers_compare_as_upstream_and_all_or_any_join() {
        let lt = [rule("extracted_number", "<", "100")];
        assert!(check(&lt, "ALL", "Price: 99.50", None));
        assert!(!check(&lt, "ALL", "Price: 150", None));
        // No number: null counts as 0 against a number (json-logic), as upstream.
        assert!(check(&lt, "ALL", "sold out", None));
        let both = [
            rule("extracted_number", ">=", "20"),
            rule("extracted_number", "<=", "100"),
            rule("page_filtered_text", "in", "5"),
        ];
        assert!(check(&both, "ALL", "Current value: 70.5", None));
        assert!(!check(&both, "ALL", "Current value: 150.5", None));
        assert!(check(&both, "ANY", "Current value: 150.5", None));
        let any = [
            rule("extracted_number", ">=", "20"),
            rule("page_filtered_text", "in", "5"),
        ];
        assert!(!check(&any, "ANY", "Current value: 1", None));
        assert!(check(&any, "ANY", "Current value: 15", None));
        assert!(!check(&any, "ALL", "Current value: 15", None));
        assert!(check(
            &[rule("extracted_number", "==", "70.5")],
            "ALL",
            "v 70.50",
            None
        ));
        assert!(check(
            &[rule("extracted_number", "!=", "7")],
            "ALL",
            "v 70.50",
            None
        ));
    }

    #[test]
    fn text_operators() {
        let t = "  Hello World, 42 items  ";
        let yes = [
            rule("page_filtered_text", "in", "World"),
            rule("page_filtered_text", "!in", "world"),
            rule("page_filtered_text", "starts_with", "hello "),
            rule("page_filtered_text", "ends_with", "ITEMS"),
            rule("page_filtered_text", "length_min", "25"),
            rule("page_filtered_text", "length_max", "25"),
            rule("page_filtered_text", "contains_regex", r"\d+ ITEMS"),
            rule("page_filtered_text", "!contains_regex", "goodbye"),
            rule("page_filtered_text", "==", t),
            rule("word_count", "==", "4"),
            rule("word_count", ">", "3.5"),
        ];
        for r in &yes {
            assert!(check(std::slice::from_ref(r), "ALL", t, None), "{r:?}");
        }
        assert!(check(&yes, "ALL", t, None));
        assert!(!check(
            &[rule("page_filtered_text", "length_min", "26")],
            "ALL",
            t,
            None
        ));
        // A numeric value in `in` is matched as Python prints it.
        assert!(check(
            &[rule("page_filtered_text", "in", "5.0")],
            "ALL",
            "x 5.0",
            None
        ));
        assert!(check(
            &[rule("page_filtered_text", "in", ".5")],
            "ALL",
            "x 0.5",
            None
        ));
    }

    #[test]
    fn incomplete_rows_are_skipped_and_no_rule_holds() {
        let rows = [rule("", "", ""), rule("extracted_number", "None", "1")];
        assert!(check(&rows, "ALL", "500", None));
        assert!(check(
            &[rule("extracted_number", ">", "1000")],
            "",
            "5",
            None
        ));
        assert!(!check(
            &[rule("extracted_number", ">", "1000")],
            "ALL",
            "5",
            None
        ));
    }

    #[test]
    fn levenshtein_against_the_newest_snapshot() {
        let (d, r) = edit_stats("kitten", "sitting").unwrap_or_default();
        assert_eq!(d, 3);
        // Indel: LCS 4 ("ittn"), 1 - (13 - 8) / 13.
        assert!((r - 8.0 / 13.0).abs() < 1e-12, "{r}");
        let prev = "Some initial text\nWhich is across multiple lines\nSo let's see what happens.";
        let little =
            "Some initial text\nWhich is across multiple lines\nSo let's see what happenxxxxxxxxx.";
        let much = "Some sxxxx\nWhich is across a lines\nok.";
        let lt = [rule("levenshtein_ratio", "<", "0.8")];
        assert!(!check(&lt, "ALL", little, Some(prev)));
        assert!(check(&lt, "ALL", much, Some(prev)));
        let dist = [rule("levenshtein_distance", ">", "5")];
        assert!(check(&dist, "ALL", little, Some(prev)));
        assert!(!check(&dist, "ALL", prev, Some(prev)));
        // Without a snapshot the facts are absent (null = 0).
        assert!(check(&lt, "ALL", much, None));
        assert!(!check(&dist, "ALL", much, None));
    }

    #[test]
    fn levenshtein_is_bounded() {
        let a = "a".repeat(6_000);
        let b = "b".repeat(6_000);
        assert!(edit_stats(&a, &b).is_none());
        // A long common prefix and suffix cost nothing.
        let big = "x".repeat(200_000);
        let (d, r) =
            edit_stats(&format!("{big}1{big}"), &format!("{big}22{big}")).unwrap_or_default();
        assert_eq!(d, 2);
        assert!(r > 0.99);
    }

    #[test]
    fn save_time_validation_names_the_rule() {
        let ok = [
            rule("", "", ""),
            rule("extracted_number", "<", "100"),
            rule("page_filtered_text", "contains_regex", r"\d+"),
            rule("levenshtein_ratio", ">=", "0.5"),
            rule("page_filtered_text", "==", "Sold out"),
        ];
        assert_eq!(validate(&ok), Ok(()));
        for (rows, want) in [
            (
                vec![rule("price", "<", "1")],
                "rule 1: unknown field 'price'",
            ),
            (
                vec![rule("", "", ""), rule("extracted_number", "~", "1")],
                "rule 2: unknown operator '~'",
            ),
            (
                vec![rule("extracted_number", "<", "")],
                "rule 1: 'value' is required",
            ),
            (vec![rule("", "<", "3")], "rule 1: 'field' is required"),
            (
                vec![rule("extracted_number", "<", "cheap")],
                "rule 1: operator '<' needs a number, got 'cheap'",
            ),
            (
                vec![rule("page_filtered_text", "length_min", "nan.")],
                "rule 1: operator 'length_min' needs a number",
            ),
            (
                vec![rule("extracted_number", "starts_with", "1")],
                "rule 1: operator 'starts_with' applies to text",
            ),
            (
                vec![rule("page_filtered_text", "contains_regex", "(")],
                "rule 1: ",
            ),
            (
                vec![rule("word_count", ">", "1"); MAX_CONDITIONS + 1],
                "at most 100 rules",
            ),
        ] {
            let err = validate(&rows).err().unwrap_or_default();
            assert!(err.starts_with(want), "{err:?} vs {want:?}");
        }
    }

    #[test]
    fn python_number_printing() {
        for (f, s) in [
            (5.0, "5.0"),
            (70.5, "70.5"),
            (1e16, "1e+16"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123456789.25, "123456789.25"),
        ] {
            assert_eq!(py_float_repr(f), s);
        }
    }
}
