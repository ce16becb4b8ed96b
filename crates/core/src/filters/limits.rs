//! What a filter or rule may be before any parser runs (length, nesting, jq operators),
//! and how much output a page's filters may produce.

use super::*;

/// Longest filter or text rule accepted, in characters: the API schema's `maxLength` of these
/// list items (upstream's), applied here too so that rules arriving another way (settings,
/// older stored watches) meet the same bound. Hand-written and generated filters (visual
/// selector XPaths, long jq programs) stay well under 2,000.
pub const MAX_RULE_CHARS: usize = 5_000;

/// Deepest bracket nesting (`(`, `[`, `{`) accepted in a filter or regex rule.
///
/// jaq's parser and compiler, serde_json_path's parser and the CSS selector parser recurse per
/// level: on a 2 MB stack (a tokio thread) jaq overflows at ~150 nested parentheses in a debug
/// build and ~700 in release, and an overflow aborts the whole process, so the parsers never see
/// anything deeper than this. Real filters nest a handful of levels.
pub const MAX_RULE_NESTING: usize = 32;

/// Most operators (`|`, `,`, arithmetic, comparisons, `and`/`or`, `as`, `if`, `reduce` …) a jq
/// program may contain. jaq parses and compiles operator chains recursively too, even without
/// brackets: `1+1+…` and `.|.|…` overflow a 2 MB stack at ~250 terms in a debug build and
/// ~2,000 in release. Together with [`MAX_RULE_NESTING`] this keeps the worst case under half
/// of that stack.
pub const MAX_JQ_OPERATORS: usize = 100;

/// Refuses a filter rule that is too long or too deeply nested to be parsed safely; runs before
/// any parser sees the rule, both when a watch is saved and before each use.
pub fn check_complexity(rule: &str) -> Result<(), FilterError> {
    let (kind, expr) = FilterKind::split(rule);
    let jq = matches!(kind, FilterKind::Jq | FilterKind::JqRaw);
    check_shape(rule, expr, !matches!(kind, FilterKind::Css), jq)
}

/// [`check_complexity`] for a text rule (ignore, trigger, extract): its length, and for a
/// `/regex/flags` rule the pattern's bracket nesting.
pub fn check_text_rule_complexity(rule: &str) -> Result<(), FilterError> {
    let pattern = crate::text_rules::perl_style_regex(rule).map(|(pattern, _)| pattern);
    check_shape(rule, pattern.as_deref().unwrap_or(""), false, false)
}

/// The limits themselves: `rule` as written, `expr` the part a parser would read.
pub(super) fn check_shape(
    rule: &str,
    expr: &str,
    quotes: bool,
    jq: bool,
) -> Result<(), FilterError> {
    let too_complex = |reason: String| FilterError::TooComplex {
        rule: rule_snippet(rule),
        reason,
    };
    if rule.chars().count() > MAX_RULE_CHARS {
        return Err(too_complex(format!(
            "longer than {MAX_RULE_CHARS} characters"
        )));
    }
    let shape = scan_expression(expr, quotes);
    if shape.nesting > MAX_RULE_NESTING {
        return Err(too_complex(format!(
            "brackets nested deeper than {MAX_RULE_NESTING} levels"
        )));
    }
    if jq && shape.operators > MAX_JQ_OPERATORS {
        return Err(too_complex(format!(
            "more than {MAX_JQ_OPERATORS} jq operators"
        )));
    }
    Ok(())
}

/// The first 60 characters of a rule, for messages that must stay short whatever the input.
pub fn rule_snippet(rule: &str) -> String {
    let mut chars = rule.trim().chars();
    let head: String = chars.by_ref().take(60).collect();
    match chars.next() {
        Some(_) => format!("{head}…"),
        None => head,
    }
}

/// Bracket depth and operator count of an expression, outside string literals.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExpressionShape {
    /// Deepest `(`/`[`/`{` nesting.
    pub nesting: usize,
    /// Operator characters and keywords (an over-count: `==` counts twice).
    pub operators: usize,
}

/// One linear pass; `quotes` makes `'…'` and `"…"` opaque (not for CSS, where quotes are
/// rare and attribute values are bounded by the length limit anyway). Backslash escapes are
/// skipped in both.
pub fn scan_expression(expr: &str, quotes: bool) -> ExpressionShape {
    const KEYWORDS: [&str; 15] = [
        "and", "or", "as", "if", "elif", "then", "else", "reduce", "foreach", "try", "catch",
        "def", "label", "import", "include",
    ];
    let mut shape = ExpressionShape::default();
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut word = String::new();
    let mut chars = expr.chars();
    let end_word = |word: &mut String, shape: &mut ExpressionShape| {
        if KEYWORDS.contains(&word.as_str()) {
            shape.operators += 1;
        }
        word.clear();
    };
    while let Some(c) = chars.next() {
        if c == '\\' {
            chars.next();
            continue;
        }
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            if word.len() < 8 {
                word.push(c);
            } else {
                word.push('_');
            }
            continue;
        }
        end_word(&mut word, &mut shape);
        match c {
            '"' | '\'' if quotes => quote = Some(c),
            '(' | '[' | '{' => {
                depth += 1;
                shape.nesting = shape.nesting.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '|' | ',' | '+' | '-' | '*' | '/' | '%' | '<' | '>' | '=' | '?' | ';' => {
                shape.operators += 1;
            }
            _ => {}
        }
    }
    end_word(&mut word, &mut shape);
    shape
}

/// Output budget of the include filters for content of `input_len` bytes:
/// [`FILTER_OUTPUT_RATIO`] times the input, and never less than [`MIN_FILTER_OUTPUT_BYTES`].
///
/// A match's outer HTML contains all its descendants, so `div` on a page of nested divs
/// produces about depth × size bytes (2,500 levels gave 620 MB). Ordinary filters produce
/// at most a few times the page; ten times, or 16 MiB for small pages, leaves room for
/// broad selectors on real pages while bounding the hostile ones.
pub fn filter_output_limit(input_len: usize) -> usize {
    input_len
        .saturating_mul(FILTER_OUTPUT_RATIO)
        .max(MIN_FILTER_OUTPUT_BYTES)
}

/// See [`filter_output_limit`].
pub const FILTER_OUTPUT_RATIO: usize = 10;

/// See [`filter_output_limit`].
pub const MIN_FILTER_OUTPUT_BYTES: usize = 16 * 1024 * 1024;
