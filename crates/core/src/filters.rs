//! Include filters and subtractive selectors for fetched content.
//!
//! A watch narrows a page down to the parts the user cares about: first the
//! subtractive selectors delete noise (navigation, footers, ads), then the
//! include filters pick what is left to compare. This mirrors
//! changedetection.io's `html_tools` and `text_json_diff` processor so that
//! snapshots taken by either implementation line up.
//!
//! # Filter rules
//!
//! A rule's prefix picks its language:
//!
//! | prefix              | kind                        | engine                        |
//! |---------------------|-----------------------------|-------------------------------|
//! | `/…` or `xpath:`    | [`FilterKind::XPath`]       | libxml2 XPath 1.0             |
//! | `xpath1:`           | [`FilterKind::XPath1`]      | libxml2 XPath 1.0             |
//! | `json:`             | [`FilterKind::JsonPath`]    | RFC 9535 JSONPath             |
//! | `jq:`               | [`FilterKind::Jq`]          | jaq                           |
//! | `jqraw:`            | [`FilterKind::JqRaw`]       | jaq, raw string output        |
//! | anything else       | [`FilterKind::Css`]         | CSS selectors (html5ever DOM) |
//!
//! Upstream evaluates `/` and `xpath:` with an XPath 3.1 engine; here every
//! XPath rule runs on libxml2's XPath 1.0. The one 3.1 convenience that is
//! kept is the default-namespace rule: for `/` and `xpath:` an unprefixed name
//! such as `//title` matches elements of an XML document's default namespace
//! (Atom feeds), while `xpath1:` keeps strict XPath 1.0 namespace semantics.
//!
//! # Outcomes
//!
//! A filter that matches nothing yields `Ok` with an empty string; the caller
//! turns an empty overall result into its "filter not found" outcome. Invalid
//! rules and unparsable JSON are errors, so the two are never confused.
//!
//! libxml2 documents are neither `Send` nor `Sync`, so every document lives and
//! dies inside a single call; run these functions on a blocking thread.
//!
//! # Known differences from upstream
//!
//! These follow from the engines and are kept on purpose:
//! * XPath is 1.0 only: XPath 2.0+ functions and syntax and EXSLT `re:` are
//!   rejected. The default-namespace rule is emulated by dropping
//!   `xmlns="…"` declarations before parsing.
//! * An XPath element match is its markup only; lxml also appended the
//!   text that follows the element ("tail"). Likewise subtractive XPath
//!   keeps that following text, which lxml deleted with the element.
//! * CSS runs on an html5ever DOM with the `selectors` crate, not
//!   BeautifulSoup's lenient tree with soupsieve: no `:contains()`, and
//!   serialisation differs in details (attribute quoting, `<br>`).
//! * JSON output has sorted keys (serde_json without `preserve_order`);
//!   JSONPath is RFC 9535, so jsonpath-ng extensions (`==Sold` unquoted,
//!   `len`, `sorted`, arithmetic) are unavailable, and `$..x` lists follow
//!   key order rather than document order.
//! * jq is jaq; `jqraw:` prints non-string values as JSON (`true`, `null`)
//!   where upstream printed Python reprs (`True`, `None`).
//! * Malformed JSON is an error instead of an empty result.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use jaq_core::data::JustLut;
use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Native, Vars};
use jaq_json::Val;
use libxml::parser::{Parser, ParserOptions};
use libxml::readonly::RoNode;
use libxml::tree::{Document, Node, NodeType, SaveOptions};
use libxml::xpath::{Context, Expression};
use scraper::{Html, Selector};

use crate::html_text::parse_document;
use serde::Serialize;
use serde_json::Value;
use serde_json_path::JsonPath;

/// Inserted between consecutive matches of one filter so that the
/// html-to-text step puts each match on its own line (upstream's
/// `TEXT_FILTER_LIST_LINE_SUFFIX`).
const MATCH_SEPARATOR: &str = "<br>";

/// Elements that already end a line in html-to-text, so no separator is
/// needed before them.
const SELF_SEPARATING_TAGS: [&str; 4] = ["br", "hr", "div", "p"];

/// Upstream lets `re:test()` style EXSLT calls resolve their prefix; we only
/// register the prefix so such calls fail with "unregistered function"
/// rather than "undefined namespace prefix".
const EXSLT_REGEX_NS: &str = "http://exslt.org/regular-expressions";

/// A jq program that emits more values than this is almost certainly runaway
/// (`repeat`, `range(1e12)`); stop instead of exhausting memory.
const MAX_JQ_OUTPUTS: usize = 100_000;

/// jq builtins that must not run on user-supplied expressions, with the
/// reason shown to the user. The names are jq's plus jaq's internal helpers
/// behind `debug`/`stderr`, which are reachable by name too.
const JQ_BLOCKED: &[(&str, &str)] = &[
    ("env", "env (reads environment variables)"),
    ("$ENV", "$ENV (reads environment variables)"),
    ("input", "input/inputs (reads beyond provided data)"),
    ("inputs", "input/inputs (reads beyond provided data)"),
    ("debug", "debug (leaks data to stderr)"),
    ("debug_empty", "debug (leaks data to stderr)"),
    ("stderr", "stderr (leaks data to stderr)"),
    ("stderr_empty", "stderr (leaks data to stderr)"),
    ("halt", "halt/halt_error (terminates the process)"),
    ("halt_error", "halt/halt_error (terminates the process)"),
    ("$__loc__", "$__loc__ (leaks file path information)"),
    ("builtins", "builtins (enumerates available functions)"),
    ("modulemeta", "modulemeta (leaks module information)"),
    (
        "$JQ_BUILD_CONFIGURATION",
        "$JQ_BUILD_CONFIGURATION (leaks build information)",
    ),
];

type JqData = JustLut<Val>;
type JqFilter = jaq_core::compile::Filter<Native<JqData>>;

/// Why a filter could not be applied.
///
/// "Matched nothing" is not an error: it is `Ok` with an empty string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// The rule has a prefix but no expression (`xpath:`, `json:` …) or is blank.
    #[error("'{rule}' is an empty filter")]
    Empty {
        /// The rule as written.
        rule: String,
    },
    /// CSS selector syntax error.
    #[error("'{expr}' is not a valid CSS selector. ({reason})")]
    InvalidCss {
        /// The selector.
        expr: String,
        /// Parser message.
        reason: String,
    },
    /// XPath syntax error.
    #[error("'{expr}' is not a valid XPath expression. ({reason})")]
    InvalidXPath {
        /// The expression, without prefix.
        expr: String,
        /// libxml2 message.
        reason: String,
    },
    /// XPath that compiles but cannot be evaluated (unknown function or prefix).
    #[error("XPath expression '{expr}' failed: {reason}")]
    XPathFailed {
        /// The expression, without prefix.
        expr: String,
        /// libxml2 message.
        reason: String,
    },
    /// JSONPath syntax error.
    #[error("'{expr}' is not a valid JSONPath expression. ({reason})")]
    InvalidJsonPath {
        /// The expression, without prefix.
        expr: String,
        /// Parser message.
        reason: String,
    },
    /// jq syntax error or use of an undefined filter/variable.
    #[error("'{expr}' is not a valid jq expression. ({reason})")]
    InvalidJq {
        /// The expression, without prefix.
        expr: String,
        /// Parser/compiler message.
        reason: String,
    },
    /// jq expression uses a builtin that can leak secrets or harm the server.
    #[error("jq expression uses disallowed builtin: {builtin}")]
    JqBlocked {
        /// The expression, without prefix.
        expr: String,
        /// Which builtin, and why it is blocked.
        builtin: String,
    },
    /// jq raised an error while running (`error("x")`, type errors …).
    #[error("jq expression '{expr}' failed: {reason}")]
    JqFailed {
        /// The expression, without prefix.
        expr: String,
        /// jq's error value.
        reason: String,
    },
    /// A JSON filter was used but the document holds no JSON at all.
    #[error("No parsable JSON found in this document")]
    JsonNotFound,
    /// The document starts like JSON but is malformed.
    #[error("The document looks like JSON but could not be parsed: {reason}")]
    InvalidJson {
        /// serde_json's message with line and column.
        reason: String,
    },
    /// libxml2 could not build any tree from the document.
    #[error("The document could not be parsed as {format}")]
    Unparsable {
        /// `"HTML"` or `"XML"`.
        format: &'static str,
    },
    /// The rule is too long or too deeply nested to be parsed safely (see
    /// [`check_complexity`]).
    #[error("'{rule}' is too complex: {reason}")]
    TooComplex {
        /// The start of the rule as written.
        rule: String,
        /// Which limit, with its value.
        reason: String,
    },
    /// The filters' combined output passed [`filter_output_limit`] (element matches repeat
    /// their descendants, so `div` on nested divs grows with depth × size).
    #[error("Filter output too large: '{rule}' took the output past {limit} bytes")]
    OutputTooLarge {
        /// The rule as written (with its prefix).
        rule: String,
        /// The budget in bytes.
        limit: usize,
    },
}

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
fn check_shape(rule: &str, expr: &str, quotes: bool, jq: bool) -> Result<(), FilterError> {
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

/// The language of a filter rule, decided by its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterKind {
    /// CSS selector (no prefix).
    Css,
    /// `/…` or `xpath:…`; unprefixed names also match an XML default namespace.
    XPath,
    /// `xpath1:…`; strict XPath 1.0 namespace handling.
    XPath1,
    /// `json:…` JSONPath.
    JsonPath,
    /// `jq:…`, results printed as JSON.
    Jq,
    /// `jqraw:…`, string results printed raw, one per line.
    JqRaw,
}

impl FilterKind {
    /// Splits a rule into its kind and the expression after the prefix.
    ///
    /// Surrounding whitespace is trimmed from both, as the form layer upstream does.
    pub fn split(rule: &str) -> (FilterKind, &str) {
        let rule = rule.trim();
        let (kind, expr) = if let Some(rest) = rule.strip_prefix("xpath1:") {
            (FilterKind::XPath1, rest)
        } else if let Some(rest) = rule.strip_prefix("xpath:") {
            (FilterKind::XPath, rest)
        } else if rule.starts_with('/') {
            (FilterKind::XPath, rule)
        } else if let Some(rest) = rule.strip_prefix("json:") {
            (FilterKind::JsonPath, rest)
        } else if let Some(rest) = rule.strip_prefix("jqraw:") {
            (FilterKind::JqRaw, rest)
        } else if let Some(rest) = rule.strip_prefix("jq:") {
            (FilterKind::Jq, rest)
        } else {
            (FilterKind::Css, rule)
        };
        (kind, expr.trim())
    }

    /// JSON filters read JSON (possibly embedded in HTML) instead of markup.
    pub fn is_json(self) -> bool {
        matches!(
            self,
            FilterKind::JsonPath | FilterKind::Jq | FilterKind::JqRaw
        )
    }

    fn prefix(self) -> &'static str {
        match self {
            FilterKind::Css => "",
            FilterKind::XPath => "xpath:",
            FilterKind::XPath1 => "xpath1:",
            FilterKind::JsonPath => "json:",
            FilterKind::Jq => "jq:",
            FilterKind::JqRaw => "jqraw:",
        }
    }
}

/// Whether a rule is a JSON filter (`json:`, `jq:`, `jqraw:`).
///
/// The processor needs this before filtering: JSON documents are only
/// re-formatted up front when no JSON filter will format them anyway.
pub fn is_json_filter(rule: &str) -> bool {
    FilterKind::split(rule).0.is_json()
}

/// A validated filter rule.
///
/// Holding only the kind and text keeps it `Send` and cheap to store; the
/// compiled forms (libxml2, jaq) are not thread-safe and are rebuilt per call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Filter {
    /// Language of the rule.
    pub kind: FilterKind,
    /// Expression without its prefix.
    pub expr: String,
}

impl Filter {
    /// Parses and compiles a rule, refusing risky jq builtins.
    ///
    /// Use this to validate user input at the API/form boundary: the error
    /// names the offending expression.
    pub fn parse(rule: &str) -> Result<Filter, FilterError> {
        Filter::parse_with(rule, false)
    }

    /// As [`Filter::parse`], but `allow_risky_jq` admits `env`, `halt`,
    /// `debug`, `stderr` (upstream's `JQ_ALLOW_RISKY_EXPRESSIONS`).
    pub fn parse_with(rule: &str, allow_risky_jq: bool) -> Result<Filter, FilterError> {
        let filter = Filter::split(rule)?;
        match filter.kind {
            FilterKind::Css => {
                css_selector(&filter.expr)?;
            }
            FilterKind::XPath | FilterKind::XPath1 => {
                validate_xpath(&filter.expr)?;
            }
            FilterKind::JsonPath => {
                json_path(&filter.expr)?;
            }
            FilterKind::Jq | FilterKind::JqRaw => {
                compile_jq(&filter.expr, allow_risky_jq)?;
            }
        }
        Ok(filter)
    }

    /// Splits without compiling; the filtering functions compile each rule
    /// exactly once when they use it.
    fn split(rule: &str) -> Result<Filter, FilterError> {
        check_complexity(rule)?;
        let (kind, expr) = FilterKind::split(rule);
        if expr.is_empty() {
            return Err(FilterError::Empty {
                rule: rule.trim().to_owned(),
            });
        }
        Ok(Filter {
            kind,
            expr: expr.to_owned(),
        })
    }
}

impl FromStr for Filter {
    type Err = FilterError;

    fn from_str(rule: &str) -> Result<Self, Self::Err> {
        Filter::parse(rule)
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == FilterKind::XPath && self.expr.starts_with('/') {
            f.write_str(&self.expr)
        } else {
            write!(f, "{}{}", self.kind.prefix(), self.expr)
        }
    }
}

/// What the fetched document is, as far as filtering cares.
///
/// Only [`ContentKind::Xml`] changes behaviour: XPath then uses libxml2's XML
/// parser (case-sensitive names, CDATA kept, namespaces). JSON filters sniff
/// the content themselves, and CSS always parses HTML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContentKind {
    /// HTML page (also the fallback for unknown types).
    #[default]
    Html,
    /// XML, RSS or Atom feed.
    Xml,
    /// JSON document.
    Json,
    /// Plain text.
    Text,
}

/// Knobs for [`apply_include_filters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterOptions {
    /// How to parse the content for XPath.
    pub content_kind: ContentKind,
    /// Put `<br>` between the matches of one filter so each lands on its own
    /// line after html-to-text. Upstream turns this off only for
    /// `source:` watches, whose raw HTML must stay untouched.
    pub separate_matches: bool,
    /// Allow jq's `env`, `halt`, `debug`, `stderr`.
    pub allow_risky_jq: bool,
}

impl Default for FilterOptions {
    fn default() -> Self {
        FilterOptions {
            content_kind: ContentKind::Html,
            separate_matches: true,
            allow_risky_jq: false,
        }
    }
}

impl FilterOptions {
    /// Default options for a given content kind.
    pub fn for_kind(content_kind: ContentKind) -> Self {
        FilterOptions {
            content_kind,
            ..FilterOptions::default()
        }
    }
}

/// Removes every element matched by the subtractive `selectors` and returns
/// the re-serialised document.
///
/// Removal runs before include filters so that selectors relying on context
/// (`.main .ads`) still see the whole page. XPath selectors (`/`, `xpath:`,
/// `xpath1:`) are applied first, all on one parse, then CSS selectors on one
/// HTML parse. When nothing matches, the input is returned unchanged rather
/// than re-serialised. Blank selectors are ignored.
pub fn remove_elements<S: AsRef<str>>(
    content: &str,
    selectors: &[S],
    kind: ContentKind,
) -> Result<String, FilterError> {
    let mut xpaths = Vec::new();
    let mut css = Vec::new();
    for selector in selectors {
        let rule = selector.as_ref().trim();
        if rule.is_empty() {
            continue;
        }
        check_complexity(rule)?;
        match FilterKind::split(rule) {
            (FilterKind::XPath | FilterKind::XPath1, expr) => {
                if expr.is_empty() {
                    return Err(FilterError::Empty {
                        rule: rule.to_owned(),
                    });
                }
                xpaths.push((expr.to_owned(), compile_xpath(expr)?));
            }
            _ => {
                // Upstream joins CSS selectors with commas, so stray leading
                // or trailing commas are tolerated.
                let expr = rule.trim_matches(|c: char| c == ',' || c.is_whitespace());
                if !expr.is_empty() {
                    css.push(css_selector(expr)?);
                }
            }
        }
    }

    let after_xpath = match xpaths.is_empty() {
        true => None,
        false => remove_xpath_matches(content, &xpaths, kind)?,
    };
    let current = after_xpath.map_or(Cow::Borrowed(content), Cow::Owned);
    let after_css = match css.is_empty() {
        true => None,
        false => remove_css_matches(&current, &css),
    };
    Ok(after_css.unwrap_or_else(|| current.into_owned()))
}

/// Applies the include `filters` in order and concatenates their results.
///
/// Each filter contributes:
/// * CSS/XPath element matches: their outer HTML (XML for XML content), with
///   `<br>` between consecutive matches unless the match is itself a
///   line-breaking element (`br`, `hr`, `div`, `p`);
/// * XPath text, attribute and scalar results (`string()`, `count()`): the text;
/// * JSON filters: the single match as pretty JSON, several matches as a
///   pretty JSON list, `jqraw:` strings one per line.
///
/// The document is parsed at most once per engine (HTML DOM, libxml2 tree,
/// JSON) however many filters there are. Blank rules are skipped. An empty
/// result means no filter matched.
pub fn apply_include_filters<S: AsRef<str>>(
    content: &str,
    filters: &[S],
    options: &FilterOptions,
) -> Result<String, FilterError> {
    let parsed = filters
        .iter()
        .map(|rule| rule.as_ref())
        .filter(|rule| !rule.trim().is_empty())
        .map(Filter::split)
        .collect::<Result<Vec<_>, _>>()?;

    let mut docs = Documents::new(content, options.content_kind);
    let limit = filter_output_limit(content.len());
    let mut out = String::new();
    for filter in &parsed {
        let budget = Budget {
            bytes: limit.saturating_sub(out.len()),
            filter,
            limit,
        };
        let piece = match filter.kind {
            FilterKind::Css => {
                let selector = css_selector(&filter.expr)?;
                css_matches(docs.html(), &selector, options.separate_matches, &budget)?
            }
            FilterKind::XPath | FilterKind::XPath1 => {
                let expression = compile_xpath(&filter.expr)?;
                let default_ns_as_unprefixed = filter.kind == FilterKind::XPath;
                let html = options.content_kind != ContentKind::Xml;
                match docs.markup(default_ns_as_unprefixed)? {
                    Some(doc) => xpath_matches(
                        doc,
                        html,
                        &expression,
                        &filter.expr,
                        options.separate_matches,
                        &budget,
                    )?,
                    None => String::new(),
                }
            }
            FilterKind::JsonPath | FilterKind::Jq | FilterKind::JqRaw => {
                let evaluator = JsonEvaluator::new(filter, options.allow_risky_jq)?;
                let source = docs.json()?;
                source.evaluate(&evaluator)?
            }
        };
        budget.check(piece.len())?;
        out.push_str(&piece);
    }
    Ok(out)
}

/// Re-formats a JSON document for storage: keys sorted, two-space indent.
///
/// Watches of JSON without JSON filters store this form so that key
/// reordering by the server is not reported as a change. JSONP and JSON
/// inside HTML are unwrapped like for filters; [`FilterError::JsonNotFound`]
/// tells the caller to keep the raw content.
pub fn pretty_print_json_document(content: &str) -> Result<String, FilterError> {
    let source = match JsonSource::detect_direct(content)? {
        Some(source) => source,
        None => JsonSource::from_html(&parse_document(content))?,
    };
    let doc = match &source {
        JsonSource::Whole(doc) | JsonSource::Jsonp(doc) => Some(doc),
        JsonSource::Embedded(docs) => docs.first(),
    };
    match doc {
        Some(doc) => Ok(dumps(&doc.value, b"  ")),
        None => Err(FilterError::JsonNotFound),
    }
}

// ---------------------------------------------------------------------------
// Lazily parsed views of one document.

/// Holds every parse of the content made during one call, so several filters
/// of the same engine share a single parse.
struct Documents<'a> {
    content: &'a str,
    kind: ContentKind,
    html: Option<Html>,
    markup: Option<Option<Document>>,
    /// XML re-parsed without default namespace declarations, for `xpath:`.
    markup_unprefixed: Option<Option<Document>>,
    json: Option<JsonSource<'a>>,
}

impl<'a> Documents<'a> {
    fn new(content: &'a str, kind: ContentKind) -> Self {
        Documents {
            content,
            kind,
            html: None,
            markup: None,
            markup_unprefixed: None,
            json: None,
        }
    }

    fn html(&mut self) -> &Html {
        self.html
            .get_or_insert_with(|| parse_document(self.content))
    }

    /// libxml2 tree for XPath; `None` when the content is empty (nothing can match).
    fn markup(&mut self, default_ns_as_unprefixed: bool) -> Result<Option<&Document>, FilterError> {
        let is_xml = self.kind == ContentKind::Xml;
        if self.markup.is_none() {
            self.markup = Some(parse_markup(self.content, is_xml)?);
        }
        let needs_unprefixed = default_ns_as_unprefixed
            && is_xml
            && self
                .markup
                .as_ref()
                .and_then(Option::as_ref)
                .is_some_and(root_has_default_namespace);
        if !needs_unprefixed {
            return Ok(self.markup.as_ref().and_then(Option::as_ref));
        }
        if self.markup_unprefixed.is_none() {
            let stripped = strip_default_namespaces(self.content);
            self.markup_unprefixed = Some(parse_markup(&stripped, true)?);
        }
        Ok(self.markup_unprefixed.as_ref().and_then(Option::as_ref))
    }

    fn json(&mut self) -> Result<&JsonSource<'a>, FilterError> {
        if self.json.is_none() {
            let source = match JsonSource::detect_direct(self.content)? {
                Some(source) => source,
                None => JsonSource::from_html(self.html())?,
            };
            self.json = Some(source);
        }
        match &self.json {
            Some(source) => Ok(source),
            None => Err(FilterError::JsonNotFound),
        }
    }
}

// ---------------------------------------------------------------------------
// CSS (scraper / html5ever).

fn css_selector(expr: &str) -> Result<Selector, FilterError> {
    Selector::parse(expr).map_err(|e| FilterError::InvalidCss {
        expr: expr.to_owned(),
        reason: css_reason(&e.to_string()),
    })
}

/// scraper wraps most selector errors in "Unexpected error occurred. Please
/// report this to the developer" followed by a variant name such as
/// `DanglingCombinator`; end users get just "dangling combinator".
fn css_reason(message: &str) -> String {
    let Some((_, variant)) = message.split_once('\n') else {
        return message.to_owned();
    };
    let mut words = String::new();
    for c in variant.trim().chars() {
        if c.is_uppercase() && !words.is_empty() {
            words.push(' ');
        }
        words.extend(c.to_lowercase());
    }
    words
}

/// What one filter may still add to the include filters' output.
struct Budget<'f> {
    bytes: usize,
    filter: &'f Filter,
    limit: usize,
}

impl Budget<'_> {
    fn check(&self, len: usize) -> Result<(), FilterError> {
        if len <= self.bytes {
            return Ok(());
        }
        Err(FilterError::OutputTooLarge {
            rule: self.filter.to_string(),
            limit: self.limit,
        })
    }
}

fn css_matches(
    html: &Html,
    selector: &Selector,
    separate: bool,
    budget: &Budget<'_>,
) -> Result<String, FilterError> {
    let mut block = String::new();
    for element in html.select(selector) {
        push_match(
            &mut block,
            &element.html(),
            Some(element.value().name()),
            separate,
        );
        budget.check(block.len())?;
    }
    Ok(block)
}

fn remove_css_matches(content: &str, selectors: &[Selector]) -> Option<String> {
    let mut html = parse_document(content);
    let ids: Vec<_> = selectors
        .iter()
        .flat_map(|selector| html.select(selector).map(|element| element.id()))
        .collect();
    if ids.is_empty() {
        return None;
    }
    for id in ids {
        if let Some(mut node) = html.tree.get_mut(id) {
            node.detach();
        }
    }
    Some(html.html())
}

/// Appends one match, preceded by the separator when it would otherwise run
/// into the previous match's last line.
///
/// Table parts (`tr`, `td`, `tbody`, …) are wrapped in a `<table>`: outside one, the HTML parser
/// that turns matches into text drops their tags and the cells of a row run together
/// (`Cod£12.40+0.20`). Raw `source:` output is left exactly as matched.
fn push_match(block: &mut String, piece: &str, element_name: Option<&str>, separate: bool) {
    let table_part = element_name.is_some_and(|name| TABLE_PARTS.contains(&name));
    let breaks_line =
        table_part || element_name.is_some_and(|name| SELF_SEPARATING_TAGS.contains(&name));
    if separate && !block.is_empty() && !breaks_line {
        block.push_str(MATCH_SEPARATOR);
    }
    if separate && table_part {
        block.push_str("<table>");
        block.push_str(piece);
        block.push_str("</table>");
    } else {
        block.push_str(piece);
    }
}

const TABLE_PARTS: &[&str] = &[
    "caption", "colgroup", "col", "thead", "tbody", "tfoot", "tr", "td", "th",
];

// ---------------------------------------------------------------------------
// XPath (libxml2).

fn compile_xpath(expr: &str) -> Result<Expression, FilterError> {
    Expression::compile(expr).map_err(|e| FilterError::InvalidXPath {
        expr: expr.to_owned(),
        reason: libxml_reason(e.message),
    })
}

/// Compiles and then evaluates against an empty page, as upstream's form
/// validation does, so top-level calls to functions libxml2 lacks (XPath 2.0+
/// `lower-case()`, EXSLT `re:test()`) are rejected when the rule is saved
/// rather than at every check. Calls inside predicates that never run on an
/// empty page still only fail at check time.
fn validate_xpath(expr: &str) -> Result<(), FilterError> {
    let expression = compile_xpath(expr)?;
    if let Some(doc) = parse_markup("<html><body></body></html>", false)? {
        let context = xpath_context(&doc, expr)?;
        context
            .evaluate_compiled(&expression)
            .map_err(|e| FilterError::InvalidXPath {
                expr: expr.to_owned(),
                reason: libxml_reason(e.message),
            })?;
    }
    Ok(())
}

fn libxml_reason(message: Option<String>) -> String {
    match message {
        Some(m) if !m.trim().is_empty() => m.trim().to_owned(),
        _ => "libxml2 gave no detail".to_owned(),
    }
}

/// Parses HTML or XML so that hostile or sloppy input cannot reach the
/// network, expand external entities, or spam stderr; the declared charset is
/// ignored because the content is already decoded UTF-8.
///
/// Returns `None` for blank content, which libxml2 refuses to parse but which
/// simply matches nothing.
fn parse_markup(content: &str, xml: bool) -> Result<Option<Document>, FilterError> {
    if content.trim().is_empty() {
        return Ok(None);
    }
    let options = ParserOptions {
        recover: true,
        no_def_dtd: true,
        no_error: true,
        no_warning: true,
        pedantic: false,
        no_blanks: false,
        no_net: true,
        no_implied: false,
        huge: false,
        compact: false,
        ignore_enc: true,
        encoding: Some("UTF-8"),
    };
    let (parser, format) = if xml {
        (Parser::default(), "XML")
    } else {
        (Parser::default_html(), "HTML")
    };
    let doc = parser
        .parse_string_with_options(content, options)
        .map_err(|_| FilterError::Unparsable { format })?;
    // Recovery turns even plain text into a document, but one without a root
    // element; for a feed that means the server sent something else.
    if doc.get_root_readonly().is_none() {
        return Err(FilterError::Unparsable { format });
    }
    Ok(Some(doc))
}

fn root_has_default_namespace(doc: &Document) -> bool {
    doc.get_root_readonly()
        .and_then(RoNode::get_namespace)
        .is_some_and(|ns| ns.get_prefix().is_empty())
}

/// Drops `xmlns="…"` declarations so that XPath 1.0 name tests without a
/// prefix match what used to be default-namespace elements, the way upstream's
/// XPath 3.1 engine does. Prefixed declarations (`xmlns:dc=…`) are kept.
fn strip_default_namespaces(xml: &str) -> Cow<'_, str> {
    let bytes = xml.as_bytes();
    let mut out = String::with_capacity(xml.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = xml[search..].find("xmlns") {
        let start = search + found;
        search = start + "xmlns".len();
        let preceded_by_space = start > 0 && bytes[start - 1].is_ascii_whitespace();
        if !preceded_by_space {
            continue;
        }
        let mut i = search;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let Some(&quote) = bytes.get(i).filter(|q| **q == b'"' || **q == b'\'') else {
            continue;
        };
        let Some(len) = xml[i + 1..].find(char::from(quote)) else {
            continue;
        };
        let end = i + 1 + len + 1;
        out.push_str(&xml[copied..start - 1]);
        copied = end;
        search = end;
    }
    if copied == 0 {
        return Cow::Borrowed(xml);
    }
    out.push_str(&xml[copied..]);
    Cow::Owned(out)
}

fn xpath_context(doc: &Document, expr: &str) -> Result<Context, FilterError> {
    let context = Context::new(doc).map_err(|()| FilterError::XPathFailed {
        expr: expr.to_owned(),
        reason: "could not create an XPath context".to_owned(),
    })?;
    // Registration only fails on allocation failure; evaluation then reports
    // the unknown prefix itself.
    let _ = context.register_namespace("re", EXSLT_REGEX_NS);
    Ok(context)
}

fn xpath_matches(
    doc: &Document,
    html: bool,
    expression: &Expression,
    expr: &str,
    separate: bool,
    budget: &Budget<'_>,
) -> Result<String, FilterError> {
    let context = xpath_context(doc, expr)?;
    let result = context
        .evaluate_compiled(expression)
        .map_err(|e| FilterError::XPathFailed {
            expr: expr.to_owned(),
            reason: libxml_reason(e.message),
        })?;
    let nodes = result.get_readonly_nodes_as_vec();
    if nodes.is_empty() {
        // A scalar (string, number, boolean) or an empty node-set, whose
        // string value is "".
        return Ok(result.to_string());
    }

    // Only HTML elements need the wrapping `Node` API (for the HTML
    // serialiser). Namespace nodes are never wrapped: libxml2 frees them with
    // the result, which the wrapper's bookkeeping would not notice.
    let wrapped = if html
        && nodes
            .iter()
            .any(|n| n.get_type() == Some(NodeType::ElementNode))
        && !nodes
            .iter()
            .any(|n| n.get_type() == Some(NodeType::NamespaceDecl))
    {
        result.get_nodes_as_vec()
    } else {
        Vec::new()
    };

    let mut block = String::new();
    for (index, node) in nodes.iter().enumerate() {
        match node.get_type() {
            Some(NodeType::ElementNode) => {
                let piece = match wrapped.get(index) {
                    Some(element) => html_outer(element),
                    None => format!("{}\n", doc.ronode_to_string(node)),
                };
                push_match(&mut block, &piece, Some(&node.get_name()), separate);
            }
            Some(NodeType::DocumentNode | NodeType::HtmlDocumentNode) => {
                let piece = match doc.get_root_element() {
                    Some(root) if html => html_outer(&root),
                    Some(root) => format!("{}\n", doc.node_to_string(&root)),
                    None => String::new(),
                };
                push_match(&mut block, &piece, None, separate);
            }
            Some(NodeType::CommentNode | NodeType::PiNode) => {
                push_match(&mut block, &doc.ronode_to_string(node), None, separate);
            }
            _ => push_match(&mut block, &node.get_content(), None, separate),
        }
        budget.check(block.len())?;
    }
    Ok(block)
}

/// Serialises an HTML element the way lxml's `tostring(method="html",
/// pretty_print=True)` does, so void and raw-text elements (`<br>`,
/// `<script></script>`) survive a later HTML re-parse. libxml2's node dump
/// would write XML (`<script/>`), which an HTML parser reads as an unclosed
/// script swallowing the rest of the page.
fn html_outer(element: &Node) -> String {
    match Document::dup_node_into_new_doc(element) {
        Ok(copy) => copy.to_string_with_options(SaveOptions {
            format: true,
            as_html: true,
            no_declaration: true,
            ..SaveOptions::default()
        }),
        Err(()) => String::new(),
    }
}

fn is_removable(node_type: Option<NodeType>) -> bool {
    matches!(
        node_type,
        Some(
            NodeType::ElementNode
                | NodeType::TextNode
                | NodeType::CDataSectionNode
                | NodeType::CommentNode
                | NodeType::PiNode
        )
    )
}

fn remove_xpath_matches(
    content: &str,
    expressions: &[(String, Expression)],
    kind: ContentKind,
) -> Result<Option<String>, FilterError> {
    let xml = kind == ContentKind::Xml;
    let Some(mut doc) = parse_markup(content, xml)? else {
        return Ok(None);
    };
    // Upstream parses even feeds with an HTML parser, where `xmlns` is just an
    // attribute, so `//entry` removes Atom entries; keep that working.
    if xml && root_has_default_namespace(&doc) {
        match parse_markup(&strip_default_namespaces(content), true)? {
            Some(stripped) => doc = stripped,
            None => return Ok(None),
        }
    }

    let context = xpath_context(&doc, "")?;
    let mut targets: Vec<Node> = Vec::new();
    let mut seen = HashSet::new();
    for (expr, expression) in expressions {
        let result =
            context
                .evaluate_compiled(expression)
                .map_err(|e| FilterError::XPathFailed {
                    expr: expr.clone(),
                    reason: libxml_reason(e.message),
                })?;
        let nodes = result.get_readonly_nodes_as_vec();
        if nodes.is_empty()
            || nodes
                .iter()
                .any(|n| n.get_type() == Some(NodeType::NamespaceDecl))
        {
            continue;
        }
        for node in result.get_nodes_as_vec() {
            if is_removable(node.get_type()) && seen.insert(node.to_hashable()) {
                targets.push(node);
            }
        }
    }
    if targets.is_empty() {
        return Ok(None);
    }

    // Freeing an ancestor frees its descendants; freeing those again would be
    // a double free, so only the outermost matches are released.
    let outermost: Vec<Node> = targets
        .into_iter()
        .filter(|node| {
            !node
                .ancestors()
                .iter()
                .any(|ancestor| seen.contains(&ancestor.to_hashable()))
        })
        .collect();
    for node in outermost {
        node.free_subtree();
    }

    let serialised = doc.to_string_with_options(SaveOptions {
        as_html: !xml,
        no_declaration: true,
        ..SaveOptions::default()
    });
    Ok(Some(serialised))
}

// ---------------------------------------------------------------------------
// JSON.

/// One parsed JSON value plus the text it came from: jq reads the text again
/// so objects keep document key order (`keys_unsorted`, `to_entries`).
struct JsonDoc<'a> {
    text: Cow<'a, str>,
    value: Value,
}

/// Where the JSON in a document was found; this decides the fallback rules.
enum JsonSource<'a> {
    /// The whole document is JSON.
    Whole(JsonDoc<'a>),
    /// `callback({...});` wrapper around JSON.
    Jsonp(JsonDoc<'a>),
    /// JSON blobs in `<script>` elements, then in `<body>` text (JSON shown
    /// in a `<pre>`), in that order. Never empty.
    Embedded(Vec<JsonDoc<'a>>),
}

impl<'a> JsonSource<'a> {
    /// JSON that is the whole document or JSONP; `None` means "look inside
    /// the HTML", an error means it looked like JSON but is malformed.
    fn detect_direct(content: &'a str) -> Result<Option<Self>, FilterError> {
        let body = content.trim_start_matches('\u{feff}');
        let trimmed = body.trim();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            return parse_json_text(Cow::Borrowed(body))
                .map(|doc| Some(JsonSource::Whole(doc)))
                .map_err(|reason| FilterError::InvalidJson { reason });
        }
        Ok(jsonp_payload(trimmed)
            .and_then(|inner| parse_json_text(Cow::Borrowed(inner)).ok())
            .map(JsonSource::Jsonp))
    }

    fn from_html(html: &Html) -> Result<Self, FilterError> {
        let blobs = json_blobs_in_html(html);
        if blobs.is_empty() {
            return Err(FilterError::JsonNotFound);
        }
        Ok(JsonSource::Embedded(blobs))
    }

    fn evaluate(&self, evaluator: &JsonEvaluator) -> Result<String, FilterError> {
        match self {
            JsonSource::Whole(doc) | JsonSource::Jsonp(doc) => evaluator.run(doc),
            JsonSource::Embedded(docs) => {
                // First blob that yields anything wins; pages often carry
                // several ld+json blocks and only one has the wanted key.
                for doc in docs {
                    let text = evaluator.run(doc)?;
                    if !text.is_empty() {
                        return Ok(text);
                    }
                }
                Ok(String::new())
            }
        }
    }
}

/// Parses JSON text; a document with unpaired UTF-16 surrogate escapes
/// (`"\uD800"`) is retried with those replaced by U+FFFD, as upstream does,
/// instead of failing every filter on the page.
fn parse_json_text(text: Cow<'_, str>) -> Result<JsonDoc<'_>, String> {
    match serde_json::from_str::<Value>(&text) {
        Ok(value) => Ok(JsonDoc { text, value }),
        Err(first_error) => match replace_lone_surrogate_escapes(&text) {
            Some(fixed) => match serde_json::from_str::<Value>(&fixed) {
                Ok(value) => Ok(JsonDoc {
                    text: Cow::Owned(fixed),
                    value,
                }),
                Err(_) => Err(first_error.to_string()),
            },
            None => Err(first_error.to_string()),
        },
    }
}

/// Returns the text with every unpaired `\uD800`–`\uDFFF` escape replaced by
/// `\uFFFD`, or `None` when there is none.
fn replace_lone_surrogate_escapes(text: &str) -> Option<String> {
    fn escape_at(bytes: &[u8], at: usize) -> Option<u16> {
        if bytes.get(at) != Some(&b'\\') || bytes.get(at + 1) != Some(&b'u') {
            return None;
        }
        let hex = bytes.get(at + 2..at + 6)?;
        let hex = std::str::from_utf8(hex).ok()?;
        u16::from_str_radix(hex, 16).ok()
    }

    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    let mut changed = false;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        let Some(unit) = escape_at(bytes, i) else {
            // Any other escape: skip the escaped character so `\\u` is not
            // mistaken for a unicode escape.
            i += 2;
            continue;
        };
        let is_high = (0xD800..=0xDBFF).contains(&unit);
        let is_low = (0xDC00..=0xDFFF).contains(&unit);
        if is_high && escape_at(bytes, i + 6).is_some_and(|next| (0xDC00..=0xDFFF).contains(&next))
        {
            i += 12;
        } else if is_high || is_low {
            out.push_str(&text[copied..i]);
            out.push_str("\\uFFFD");
            i += 6;
            copied = i;
            changed = true;
        } else {
            i += 6;
        }
    }
    if !changed {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// The JSON inside a JSONP response such as `jQuery123({...});` or
/// `some.ns.cb([...])`: servers often label these `application/json`.
fn jsonp_payload(text: &str) -> Option<&str> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut chars = text.char_indices();
    let (_, first) = chars.next()?;
    if !is_word(first) {
        return None;
    }
    let open = text.find(|c: char| !(is_word(c) || c == '.'))?;
    let after_name = text[open..].trim_start();
    let after_paren = after_name.strip_prefix('(')?;
    let tail = after_paren.trim_end();
    let tail = tail.strip_suffix(';').unwrap_or(tail).trim_end();
    let inner = tail.strip_suffix(')')?.trim();
    (!inner.is_empty()).then_some(inner)
}

/// Collects JSON values from `<script>` texts and then `<body>` texts.
///
/// Body text leaves out script, style and template contents, matching what
/// BeautifulSoup's `.text` gives upstream, so a JSON document rendered in a
/// `<pre>` by a browser is found.
fn json_blobs_in_html(html: &Html) -> Vec<JsonDoc<'static>> {
    let mut scripts = Vec::new();
    let mut bodies = Vec::new();
    for node in html.tree.root().descendants() {
        if let Some(element) = scraper::ElementRef::wrap(node) {
            match element.value().name() {
                "script" => scripts.push(element.text().collect::<String>()),
                "body" => bodies.push(visible_text(element)),
                _ => {}
            }
        }
    }
    scripts
        .into_iter()
        .chain(bodies)
        .filter_map(|text| {
            let candidate = text.trim_start_matches('\u{feff}').trim();
            if !(candidate.starts_with('{') || candidate.starts_with('[')) {
                return None;
            }
            let owned = candidate.to_owned();
            parse_json_text(Cow::Owned(owned)).ok().map(|doc| JsonDoc {
                text: Cow::Owned(doc.text.into_owned()),
                value: doc.value,
            })
        })
        .collect()
}

fn visible_text(element: scraper::ElementRef<'_>) -> String {
    let mut text = String::new();
    // Explicit stack: deeply nested pages must not overflow the call stack.
    let mut stack: Vec<_> = element.children().collect();
    stack.reverse();
    while let Some(node) = stack.pop() {
        match node.value() {
            scraper::Node::Text(t) => text.push_str(t),
            scraper::Node::Element(e) if !matches!(e.name(), "script" | "style" | "template") => {
                let start = stack.len();
                stack.extend(node.children());
                stack[start..].reverse();
            }
            _ => {}
        }
    }
    text
}

/// A compiled JSON filter, built once per filter and run per JSON blob.
enum JsonEvaluator<'f> {
    Path(JsonPath),
    Jq {
        filter: JqFilter,
        raw: bool,
        expr: &'f str,
    },
}

impl<'f> JsonEvaluator<'f> {
    fn new(filter: &'f Filter, allow_risky_jq: bool) -> Result<Self, FilterError> {
        match filter.kind {
            FilterKind::Jq | FilterKind::JqRaw => Ok(JsonEvaluator::Jq {
                filter: compile_jq(&filter.expr, allow_risky_jq)?,
                raw: filter.kind == FilterKind::JqRaw,
                expr: &filter.expr,
            }),
            _ => Ok(JsonEvaluator::Path(json_path(&filter.expr)?)),
        }
    }

    fn run(&self, doc: &JsonDoc<'_>) -> Result<String, FilterError> {
        match self {
            JsonEvaluator::Path(path) => {
                let matches = path.query(&doc.value).all();
                Ok(match matches.as_slice() {
                    [] => String::new(),
                    [single] => dumps(single, b"    "),
                    many => dumps(
                        &Value::Array(many.iter().map(|v| (*v).clone()).collect()),
                        b"    ",
                    ),
                })
            }
            JsonEvaluator::Jq { filter, raw, expr } => {
                let outputs = run_jq(filter, &doc.text, expr)?;
                if *raw {
                    return Ok(outputs
                        .iter()
                        .map(raw_jq_output)
                        .collect::<Vec<_>>()
                        .join("\n"));
                }
                Ok(match outputs.as_slice() {
                    [] => String::new(),
                    [single] => dumps(&val_to_json(single), b"    "),
                    many => dumps(
                        &Value::Array(many.iter().map(val_to_json).collect()),
                        b"    ",
                    ),
                })
            }
        }
    }
}

/// Upstream's jsonpath-ng accepts paths without the `$` root (`json:boss.name`);
/// RFC 9535 does not, so the root is supplied.
fn normalise_json_path(expr: &str) -> Cow<'_, str> {
    if expr.starts_with('$') {
        Cow::Borrowed(expr)
    } else if expr.starts_with('.') || expr.starts_with('[') {
        Cow::Owned(format!("${expr}"))
    } else {
        Cow::Owned(format!("$.{expr}"))
    }
}

fn json_path(expr: &str) -> Result<JsonPath, FilterError> {
    JsonPath::parse(&normalise_json_path(expr)).map_err(|e| FilterError::InvalidJsonPath {
        expr: expr.to_owned(),
        reason: e.to_string(),
    })
}

/// Pretty-prints like Python's `json.dumps(indent=…, ensure_ascii=False)`;
/// keys come out sorted because serde_json's map is ordered.
fn dumps(value: &Value, indent: &[u8]) -> String {
    let mut buffer = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(indent);
    let mut serializer = serde_json::Serializer::with_formatter(&mut buffer, formatter);
    if value.serialize(&mut serializer).is_err() {
        return String::new();
    }
    String::from_utf8(buffer).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// jq (jaq).

/// Compiles a jq program with only side-effect-free builtins loaded.
///
/// Rather than pattern-matching the source like upstream (which also rejects
/// harmless paths such as `.env`), the dangerous builtins are simply absent;
/// using one surfaces as an undefined name, reported as [`FilterError::JqBlocked`].
/// Module loading (`include`, `import`) has no reader and always fails.
fn compile_jq(expr: &str, allow_risky: bool) -> Result<JqFilter, FilterError> {
    let blocked = |name: &str| -> Option<&'static str> {
        if allow_risky && !name.starts_with('$') {
            return None;
        }
        JQ_BLOCKED
            .iter()
            .find(|(blocked, _)| *blocked == name)
            .map(|(_, why)| *why)
    };
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs())
        .filter(|def| blocked(def.name).is_none());
    let funs = jaq_core::funs::<JqData>()
        .chain(jaq_std::funs::<JqData>())
        .chain(jaq_json::funs::<JqData>())
        .filter(|(name, _, _)| blocked(name).is_none());

    let invalid = |reason: String| FilterError::InvalidJq {
        expr: expr.to_owned(),
        reason,
    };
    let arena = Arena::default();
    let program = File {
        code: expr,
        path: (),
    };
    let modules = Loader::new(defs).load(&arena, program).map_err(|errors| {
        let mut reasons = Vec::new();
        for (_, error) in errors {
            match error {
                jaq_core::load::Error::Io(items) => {
                    let builtin = if contains_word(expr, "import") {
                        "import (reads files from disk)"
                    } else {
                        "include (reads files from disk)"
                    };
                    if !items.is_empty() {
                        return FilterError::JqBlocked {
                            expr: expr.to_owned(),
                            builtin: builtin.to_owned(),
                        };
                    }
                }
                jaq_core::load::Error::Lex(items) => {
                    reasons.extend(items.iter().map(|(expected, found)| {
                        format!("expected {} at '{}'", expected.as_str(), snippet(found))
                    }));
                }
                jaq_core::load::Error::Parse(items) => {
                    reasons.extend(items.iter().map(|(expected, found)| {
                        format!("expected {} at '{}'", expected.as_str(), snippet(found))
                    }));
                }
            }
        }
        invalid(reasons.join("; "))
    })?;

    Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errors| {
            let undefined: Vec<(&str, &'static str)> = errors
                .iter()
                .flat_map(|(_, items)| items.iter())
                .map(|(name, kind)| (*name, kind.as_str()))
                .collect();
            let blocked_use = undefined.iter().find_map(|(name, kind)| match *kind {
                "variable" if !name.starts_with('$') => blocked(&format!("${name}")),
                _ => blocked(name),
            });
            match blocked_use {
                Some(builtin) => FilterError::JqBlocked {
                    expr: expr.to_owned(),
                    builtin: builtin.to_owned(),
                },
                None => invalid(
                    undefined
                        .iter()
                        .map(|(name, kind)| format!("undefined {kind} '{name}'"))
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            }
        })
}

fn snippet(found: &str) -> String {
    let s: String = found.chars().take(20).collect();
    if s.is_empty() {
        "end of input".to_owned()
    } else {
        s
    }
}

fn contains_word(haystack: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    haystack.match_indices(word).any(|(at, _)| {
        let before = haystack[..at].chars().next_back();
        let after = haystack[at + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

fn run_jq(filter: &JqFilter, text: &str, expr: &str) -> Result<Vec<Val>, FilterError> {
    let failed = |reason: String| FilterError::JqFailed {
        expr: expr.to_owned(),
        reason,
    };
    let input: Val = serde_json::from_str(text).map_err(|e| failed(e.to_string()))?;
    let context = Ctx::<JqData>::new(&filter.lut, Vars::new([]));
    let mut outputs = Vec::new();
    for output in filter.id.run((context, input)) {
        match output {
            Ok(value) => outputs.push(value),
            // `halt` must not end the server process, unlike jaq's own
            // `unwrap_valr`, so exceptions are unpacked here.
            Err(exception) => {
                return Err(failed(match exception.get_err() {
                    Ok(error) => error.to_string(),
                    Err(_) => "halt was called".to_owned(),
                }));
            }
        }
        if outputs.len() > MAX_JQ_OUTPUTS {
            return Err(failed(format!(
                "produced more than {MAX_JQ_OUTPUTS} results"
            )));
        }
    }
    Ok(outputs)
}

fn val_to_json(value: &Val) -> Value {
    match value {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(n) => number_to_json(&n.to_string()),
        Val::TStr(bytes) | Val::BStr(bytes) => {
            Value::String(String::from_utf8_lossy(bytes).into_owned())
        }
        Val::Arr(items) => Value::Array(items.iter().map(val_to_json).collect()),
        Val::Obj(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (val_key(key), val_to_json(value)))
                .collect(),
        ),
    }
}

fn val_key(key: &Val) -> String {
    match key {
        Val::TStr(bytes) | Val::BStr(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => other.to_string(),
    }
}

fn number_to_json(text: &str) -> Value {
    if let Ok(number) = serde_json::from_str::<serde_json::Number>(text) {
        return Value::Number(number);
    }
    // NaN and infinities are not JSON; jq prints them as null / ±1.797e308.
    match text.parse::<f64>() {
        Ok(f) if f.is_infinite() => {
            let max = if f > 0.0 { f64::MAX } else { f64::MIN };
            serde_json::Number::from_f64(max).map_or(Value::Null, Value::Number)
        }
        _ => Value::Null,
    }
}

/// `jqraw:` prints strings without quotes, like `jq -r`; other values as
/// compact JSON.
fn raw_jq_output(value: &Val) -> String {
    match value {
        Val::TStr(bytes) | Val::BStr(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => serde_json::to_string(&val_to_json(other)).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::on_small_stack;

    fn html_opts() -> FilterOptions {
        FilterOptions::default()
    }

    fn include(content: &str, filters: &[&str]) -> Result<String, FilterError> {
        apply_include_filters(content, filters, &html_opts())
    }

    fn include_xml(content: &str, filters: &[&str]) -> Result<String, FilterError> {
        apply_include_filters(content, filters, &FilterOptions::for_kind(ContentKind::Xml))
    }

    const PAGE: &str = r#"<!DOCTYPE html>
<html><head><title>Shop</title><meta charset="iso-8859-1"></head>
<body>
<nav><a href="/">Home</a><a href="/about">About</a></nav>
<div id="main">
  <span class="price">10 €</span>
  <span class="price">20 €</span>
  <p class="note">Note <b>bold</b></p>
  <a id="more" href="/more?a=1&amp;b=2">More</a>
</div>
<footer><p>Footer text</p></footer>
</body></html>"#;

    #[test]
    fn prefixes_select_the_kind() {
        assert_eq!(FilterKind::split("//a"), (FilterKind::XPath, "//a"));
        assert_eq!(FilterKind::split(" xpath://a "), (FilterKind::XPath, "//a"));
        assert_eq!(FilterKind::split("xpath1://a"), (FilterKind::XPath1, "//a"));
        assert_eq!(FilterKind::split("json:$.a"), (FilterKind::JsonPath, "$.a"));
        assert_eq!(FilterKind::split("jq:.a"), (FilterKind::Jq, ".a"));
        assert_eq!(FilterKind::split("jqraw:.a"), (FilterKind::JqRaw, ".a"));
        assert_eq!(
            FilterKind::split("div.x > a"),
            (FilterKind::Css, "div.x > a")
        );
        assert!(is_json_filter("json:$.a"));
        assert!(is_json_filter(" jq:.a"));
        assert!(is_json_filter("jqraw:.a"));
        assert!(!is_json_filter("#json"));
        assert!(!is_json_filter("//json"));
    }

    #[test]
    fn filter_display_round_trips() {
        for rule in [
            "//a",
            "xpath:string(//a)",
            "xpath1://a",
            "json:$.a",
            "jq:.a",
            "jqraw:.a",
            "#x",
        ] {
            let filter: Filter = rule.parse().unwrap();
            assert_eq!(filter.to_string(), rule);
            assert_eq!(Filter::parse(&filter.to_string()).unwrap(), filter);
        }
    }

    #[test]
    fn css_single_match_is_outer_html() {
        assert_eq!(
            include(PAGE, &["#more"]).unwrap(),
            r#"<a id="more" href="/more?a=1&amp;b=2">More</a>"#
        );
    }

    #[test]
    fn css_multiple_matches_are_separated_by_br() {
        assert_eq!(
            include(PAGE, &[".price"]).unwrap(),
            r#"<span class="price">10 €</span><br><span class="price">20 €</span>"#
        );
    }

    #[test]
    fn css_line_breaking_elements_need_no_separator() {
        let html = "<div>a</div><div>b</div><p>c</p>";
        assert_eq!(
            include(html, &["div, p"]).unwrap(),
            "<div>a</div><div>b</div><p>c</p>"
        );
    }

    #[test]
    fn separator_can_be_turned_off_for_source_watches() {
        let options = FilterOptions {
            separate_matches: false,
            ..FilterOptions::default()
        };
        let out = apply_include_filters(PAGE, &[".price"], &options).unwrap();
        assert_eq!(
            out,
            r#"<span class="price">10 €</span><span class="price">20 €</span>"#
        );
    }

    #[test]
    fn table_parts_keep_their_cells_apart() {
        let page = "<table><tbody><tr><td>Cod</td><td>12</td></tr><tr><td>Hake</td><td>9</td></tr></tbody></table>";
        for filter in ["tbody", "tr", "//tr"] {
            let out = include(page, &[filter]).unwrap();
            let text = crate::html_text::html_to_text(&out, &Default::default());
            assert_eq!(text, "Cod  12\nHake  9", "{filter}: {out}");
        }
    }

    #[test]
    fn several_filters_concatenate_in_order() {
        let out = include(PAGE, &["#more", "", "//title/text()", ".note b"]).unwrap();
        assert_eq!(
            out,
            r#"<a id="more" href="/more?a=1&amp;b=2">More</a>Shop<b>bold</b>"#
        );
    }

    #[test]
    fn xpath_element_is_html_serialised() {
        assert_eq!(
            include(PAGE, &["//p[@class='note']"]).unwrap(),
            "<p class=\"note\">Note <b>bold</b></p>\n"
        );
        assert_eq!(
            include(PAGE, &["xpath://span"]).unwrap(),
            "<span class=\"price\">10 €</span>\n<br><span class=\"price\">20 €</span>\n"
        );
    }

    #[test]
    fn xpath_text_attribute_and_scalars() {
        assert_eq!(include(PAGE, &["//span/text()"]).unwrap(), "10 €<br>20 €");
        assert_eq!(
            include(PAGE, &["//a[@id='more']/@href"]).unwrap(),
            "/more?a=1&b=2"
        );
        assert_eq!(include(PAGE, &["xpath:string(//title)"]).unwrap(), "Shop");
        assert_eq!(include(PAGE, &["xpath:count(//span)"]).unwrap(), "2");
        assert_eq!(
            include(PAGE, &["xpath:count(//span) div 4"]).unwrap(),
            "0.5"
        );
        assert_eq!(include(PAGE, &["xpath:boolean(//nav)"]).unwrap(), "true");
    }

    #[test]
    fn xpath1_takes_every_match() {
        assert_eq!(
            include(PAGE, &["xpath1://span/text()"]).unwrap(),
            "10 €<br>20 €"
        );
        assert_eq!(include(PAGE, &["xpath1://title/text()"]).unwrap(), "Shop");
    }

    #[test]
    fn serialised_raw_text_elements_stay_open_closed() {
        let html = "<div id=x><script></script><i class=icon></i><br>text</div>";
        let out = include(html, &["//div[@id='x']"]).unwrap();
        assert!(out.contains("<script></script>"), "{out}");
        assert!(out.contains("<i class=\"icon\"></i>"), "{out}");
        assert!(!out.contains("/>"), "{out}");
    }

    const RSS: &str = r#"<?xml version="1.0" encoding="ISO-8859-1"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>Feed</title>
<item><title>First é</title><link>https://example.com/1</link><pubDate>Mon, 01 Jan 2024</pubDate><dc:creator>Ann</dc:creator></item>
<item><title>Second</title><link>https://example.com/2</link><description><![CDATA[<b>rich</b>]]></description></item>
</channel></rss>"#;

    #[test]
    fn xpath_over_rss() {
        assert_eq!(
            include_xml(RSS, &["//item/title/text()"]).unwrap(),
            "First é<br>Second"
        );
        // XML keeps case and <link> text, which an HTML parser would drop.
        assert_eq!(
            include_xml(RSS, &["//item/link/text()"]).unwrap(),
            "https://example.com/1<br>https://example.com/2"
        );
        assert_eq!(
            include_xml(RSS, &["//pubDate"]).unwrap(),
            "<pubDate>Mon, 01 Jan 2024</pubDate>\n"
        );
        assert_eq!(
            include_xml(RSS, &["//description/text()"]).unwrap(),
            "<b>rich</b>"
        );
        assert_eq!(
            include_xml(RSS, &["//*[local-name()='creator']/text()"]).unwrap(),
            "Ann"
        );
        assert_eq!(include_xml(RSS, &["xpath1:count(//item)"]).unwrap(), "2");
        assert_eq!(
            include_xml("just text", &["//a"]),
            Err(FilterError::Unparsable { format: "XML" })
        );
        // Without a prefix, `count(...)` is not XPath but (invalid) CSS, as upstream.
        assert!(matches!(
            include_xml(RSS, &["count(//item)"]),
            Err(FilterError::InvalidCss { .. })
        ));
    }

    const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom</title>
<entry><title>One</title></entry><entry><title>Two</title></entry></feed>"#;

    #[test]
    fn xpath_default_namespace_matches_unprefixed_names() {
        assert_eq!(
            include_xml(ATOM, &["//entry/title/text()"]).unwrap(),
            "One<br>Two"
        );
        // xpath1 keeps XPath 1.0 semantics, as upstream's lxml path does.
        assert_eq!(
            include_xml(ATOM, &["xpath1://entry/title/text()"]).unwrap(),
            ""
        );
        assert_eq!(
            include_xml(
                ATOM,
                &["xpath1://*[local-name()='entry']/*[local-name()='title']/text()"]
            )
            .unwrap(),
            "One<br>Two"
        );
    }

    #[test]
    fn xml_parser_does_not_expand_external_entities() {
        let xml = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r><x>&xxe;</x></r>"#;
        let out = include_xml(xml, &["//x"]).unwrap();
        assert!(!out.contains("root:"), "{out}");
    }

    #[test]
    fn messy_html_is_tolerated_and_charset_hint_ignored() {
        let html = "<html><head><meta charset=windows-1252></head><body><p>caf\u{e9} <b>un<i>closed</b><table><td>x</div>&nbsp;&bogus; <<<";
        assert_eq!(include(html, &["//p/text()"]).unwrap(), "café ");
        assert_eq!(
            include(html, &["xpath:string(//td)"]).unwrap(),
            "x\u{a0}&bogus; <<<"
        );
        assert_eq!(include(html, &["td"]).unwrap().matches("<td>").count(), 1);
    }

    #[test]
    fn matching_nothing_is_empty_ok() {
        assert_eq!(include(PAGE, &[".missing"]).unwrap(), "");
        assert_eq!(include(PAGE, &["//missing"]).unwrap(), "");
        assert_eq!(include(PAGE, &["xpath1://missing/@x"]).unwrap(), "");
        assert_eq!(include(r#"{"a":1}"#, &["json:$.b"]).unwrap(), "");
        assert_eq!(
            include(r#"{"a":1}"#, &["jq:.[]? | select(. > 5)"]).unwrap(),
            ""
        );
        assert_eq!(include(r#"{"a":1}"#, &["jqraw:empty"]).unwrap(), "");
        assert_eq!(include("", &["//a", "a"]).unwrap(), "");
    }

    #[test]
    fn invalid_rules_are_errors_naming_the_expression() {
        let err = include(PAGE, &["div[", "//a"]).unwrap_err();
        assert!(
            matches!(err, FilterError::InvalidCss { ref expr, .. } if expr == "div["),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("'div[' is not a valid CSS selector.")
        );

        let err = Filter::parse("//div[").unwrap_err();
        assert!(
            matches!(err, FilterError::InvalidXPath { ref expr, .. } if expr == "//div["),
            "{err:?}"
        );
        assert!(matches!(
            Filter::parse("xpath1:)("),
            Err(FilterError::InvalidXPath { .. })
        ));

        let err = Filter::parse("json:$.[").unwrap_err();
        assert!(
            matches!(err, FilterError::InvalidJsonPath { .. }),
            "{err:?}"
        );

        let err = Filter::parse("jq:.a |").unwrap_err();
        assert!(matches!(err, FilterError::InvalidJq { .. }), "{err:?}");
        let err = Filter::parse("jq:no_such_function").unwrap_err();
        assert!(err.to_string().contains("no_such_function"), "{err}");

        assert!(matches!(
            Filter::parse("xpath:  "),
            Err(FilterError::Empty { .. })
        ));
        assert!(matches!(
            Filter::parse("  "),
            Err(FilterError::Empty { .. })
        ));
    }

    #[test]
    fn xpath_functions_libxml_lacks_are_rejected_at_parse() {
        let err = Filter::parse("xpath:lower-case(//title)").unwrap_err();
        assert!(matches!(err, FilterError::InvalidXPath { .. }), "{err:?}");
        assert!(Filter::parse("xpath:string-join(//a, ',')").is_err());
        assert!(Filter::parse("xpath1:normalize-space(//title)").is_ok());
    }

    #[test]
    fn xpath_runtime_failure_is_an_error() {
        let err = include(PAGE, &["//a[re:test(., 'x')]"]).unwrap_err();
        assert!(matches!(err, FilterError::XPathFailed { .. }), "{err:?}");
    }

    const PRODUCT_PAGE: &str = r#"<html><head>
<script>alert('nothing here');</script>
<script type="application/ld+json">
 xx {"@type":"Product","offers":{"price":1}}
</script>
</head><body>
<script type="application/ld+json">
  {"@context":"http://schema.org","@type":"Product","name":"Formula 800g",
   "offers":{"@type":"Offer","price":23.5,"priceCurrency":"AUD"},"review":[]}
</script>
<h4>ok</h4></body></html>"#;

    #[test]
    fn jsonpath_on_json() {
        let json = r#"{"id": 5, "name": "José", "tags": ["a", "b"], "boss": {"name": "Örnsköldsvik", "age": 50}}"#;
        assert_eq!(include(json, &["json:$.id"]).unwrap(), "5");
        assert_eq!(include(json, &["json:$.name"]).unwrap(), "\"José\"");
        assert_eq!(
            include(json, &["json:boss.name"]).unwrap(),
            "\"Örnsköldsvik\""
        );
        assert_eq!(
            include(json, &["json:$.tags[*]"]).unwrap(),
            "[\n    \"a\",\n    \"b\"\n]"
        );
        assert_eq!(
            include(json, &["json:$.boss"]).unwrap(),
            "{\n    \"age\": 50,\n    \"name\": \"Örnsköldsvik\"\n}"
        );
        assert_eq!(
            include(&format!("\u{feff}{json}"), &["json:$.id"]).unwrap(),
            "5"
        );
    }

    #[test]
    fn jsonpath_on_ld_json_inside_html() {
        assert_eq!(
            include(PRODUCT_PAGE, &["json:$.offers.priceCurrency"]).unwrap(),
            "\"AUD\""
        );
        assert_eq!(include(PRODUCT_PAGE, &["json:$..price"]).unwrap(), "23.5");
    }

    #[test]
    fn json_shown_in_a_pre_body_is_found() {
        let html = "<html><head></head><body><pre style=\"white-space: pre-wrap\">\n {\"testKey\": 42}\n</pre></body></html>";
        assert_eq!(include(html, &["json:$.testKey"]).unwrap(), "42");
    }

    #[test]
    fn jsonp_is_unwrapped() {
        let jsonp = r#"weixin.update.callback({"platforms": {"android": {"variants": [{"versionName": "8.0.68"}, {"arch": "arm32", "url": "https://example.com/a.apk"}]}}});"#;
        assert_eq!(
            include(jsonp, &["json:$.platforms.android.variants[0].versionName"]).unwrap(),
            "\"8.0.68\""
        );
        assert_eq!(
            include(jsonp, &["jq:.platforms.android.variants[1].arch"]).unwrap(),
            "\"arm32\""
        );
        assert_eq!(
            include(jsonp, &["jqraw:.platforms.android.variants[1].url"]).unwrap(),
            "https://example.com/a.apk"
        );
    }

    #[test]
    fn jq_and_jqraw() {
        let json = r#"[{"status": "ForSale", "n": 1}, {"status": "Sold", "n": 2}, {"status": "Sold", "n": 3}]"#;
        assert_eq!(include(json, &["jq:.[0].n"]).unwrap(), "1");
        assert_eq!(
            include(json, &["jq:.[] | select(.status == \"ForSale\")"]).unwrap(),
            "{\n    \"n\": 1,\n    \"status\": \"ForSale\"\n}"
        );
        assert_eq!(
            include(
                json,
                &["jq:.[] | select(.status | contains(\"Sold\")) | .n"]
            )
            .unwrap(),
            "[\n    2,\n    3\n]"
        );
        assert_eq!(
            include(json, &["jqraw:.[].status"]).unwrap(),
            "ForSale\nSold\nSold"
        );
        assert_eq!(include(json, &["jqraw:.[0].n"]).unwrap(), "1");
        assert_eq!(
            include(json, &["jqraw:.[0]"]).unwrap(),
            r#"{"n":1,"status":"ForSale"}"#
        );
        assert_eq!(
            include(r#"{"available": false}"#, &["jq:.available"]).unwrap(),
            "false"
        );
        assert_eq!(
            include(PRODUCT_PAGE, &["jqraw:.offers.priceCurrency"]).unwrap(),
            "AUD"
        );
        // Objects keep document order for keys_unsorted.
        assert_eq!(
            include(r#"{"b":1,"a":2}"#, &["jqraw:keys_unsorted | join(\",\")"]).unwrap(),
            "b,a"
        );
    }

    #[test]
    fn jq_blocks_dangerous_builtins() {
        let cases = [
            ("jq:env", "env (reads environment variables)"),
            ("jq:env.HOME", "env (reads environment variables)"),
            ("jq:$ENV.PATH", "$ENV (reads environment variables)"),
            ("jqraw:input", "input/inputs (reads beyond provided data)"),
            ("jq:[inputs]", "input/inputs (reads beyond provided data)"),
            ("jq:debug", "debug (leaks data to stderr)"),
            ("jq:debug(\"x\")", "debug (leaks data to stderr)"),
            ("jq:stderr", "stderr (leaks data to stderr)"),
            ("jq:stderr_empty", "stderr (leaks data to stderr)"),
            ("jq:halt", "halt/halt_error (terminates the process)"),
            (
                "jq:halt_error(1)",
                "halt/halt_error (terminates the process)",
            ),
            ("jq:$__loc__", "$__loc__ (leaks file path information)"),
            ("jq:builtins", "builtins (enumerates available functions)"),
            ("jq:modulemeta", "modulemeta (leaks module information)"),
            (
                "jq:$JQ_BUILD_CONFIGURATION",
                "$JQ_BUILD_CONFIGURATION (leaks build information)",
            ),
            ("jq:include \"x\"; .", "include (reads files from disk)"),
            ("jq:import \"x\" as x; .", "import (reads files from disk)"),
        ];
        for (rule, why) in cases {
            let err = Filter::parse(rule).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("jq expression uses disallowed builtin: {why}"),
                "{rule}"
            );
            assert!(
                matches!(include("{}", &[rule]), Err(FilterError::JqBlocked { .. })),
                "{rule}"
            );
        }
        // Field names that merely look like builtins are fine.
        assert_eq!(
            include(r#"{"env": {"input": 1}}"#, &["jq:.env.input"]).unwrap(),
            "1"
        );
    }

    #[test]
    fn risky_jq_can_be_allowed_explicitly() {
        assert!(Filter::parse_with("jq:env | type", true).is_ok());
        let options = FilterOptions {
            allow_risky_jq: true,
            ..FilterOptions::default()
        };
        assert_eq!(
            apply_include_filters("{}", &["jqraw:env | type"], &options).unwrap(),
            "object"
        );
        // `halt` ends the jq program, never the server.
        let err = apply_include_filters("{}", &["jq:halt"], &options).unwrap_err();
        assert!(matches!(err, FilterError::JqFailed { .. }), "{err:?}");
        // Variables and module loading stay unavailable.
        assert!(Filter::parse_with("jq:$ENV", true).is_err());
        assert!(Filter::parse_with("jq:include \"x\"; .", true).is_err());
    }

    #[test]
    fn jq_runtime_errors_and_runaway_output() {
        let err = include(r#"{"a": "x"}"#, &["jq:.a + 1"]).unwrap_err();
        assert!(matches!(err, FilterError::JqFailed { .. }), "{err:?}");
        let err = include("{}", &["jq:error(\"boom\")"]).unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
        let err = include("{}", &["jq:repeat(1)"]).unwrap_err();
        assert!(err.to_string().contains("more than"), "{err}");
    }

    #[test]
    fn json_errors() {
        assert_eq!(
            include("COMPLETE GIBBERISH, NO JSON!", &["json:$.id"]),
            Err(FilterError::JsonNotFound)
        );
        assert_eq!(
            include("COMPLETE GIBBERISH, NO JSON!", &["jqraw:.id"]),
            Err(FilterError::JsonNotFound)
        );
        assert!(matches!(
            include("{\"a\": ", &["json:$.a"]),
            Err(FilterError::InvalidJson { .. })
        ));
        assert_eq!(include("", &["json:$.a"]), Err(FilterError::JsonNotFound));
    }

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        let json = r#"{"title": "Example \uD800", "low": "\udc00x", "pair": "smile \uD83D\uDE00", "esc": "\\uD800"}"#;
        assert_eq!(
            include(json, &["json:$.title"]).unwrap(),
            "\"Example \u{fffd}\""
        );
        assert_eq!(include(json, &["jqraw:.low"]).unwrap(), "\u{fffd}x");
        assert_eq!(include(json, &["jqraw:.pair"]).unwrap(), "smile \u{1f600}");
        assert_eq!(include(json, &["jqraw:.esc"]).unwrap(), "\\uD800");
    }

    #[test]
    fn pretty_printed_json_document_is_sorted_with_two_spaces() {
        assert_eq!(
            pretty_print_json_document(r#"{"b": [1], "a": "é"}"#).unwrap(),
            "{\n  \"a\": \"é\",\n  \"b\": [\n    1\n  ]\n}"
        );
        assert_eq!(
            pretty_print_json_document("cb({\"x\":1})").unwrap(),
            "{\n  \"x\": 1\n}"
        );
        assert_eq!(
            pretty_print_json_document("not json"),
            Err(FilterError::JsonNotFound)
        );
    }

    #[test]
    fn subtractive_css_removes_nav_and_footer() {
        let out = remove_elements(PAGE, &["nav", " footer, "], ContentKind::Html).unwrap();
        assert!(
            !out.contains("Home") && !out.contains("Footer text"),
            "{out}"
        );
        assert!(
            out.contains("10 €") && out.contains("<title>Shop</title>"),
            "{out}"
        );
    }

    #[test]
    fn subtractive_xpath_removes_nav_and_footer() {
        let out = remove_elements(
            PAGE,
            &["//nav", "xpath://footer", "xpath1://span[1]"],
            ContentKind::Html,
        )
        .unwrap();
        assert!(
            !out.contains("Home") && !out.contains("Footer text") && !out.contains("10 €"),
            "{out}"
        );
        assert!(
            out.contains("20 €") && out.contains("Note <b>bold</b>"),
            "{out}"
        );
    }

    #[test]
    fn subtractive_selectors_like_upstream_test() {
        let content = r##"<html>
    <header><h2>Header</h2></header>
    <nav><ul><li><a href="#">A</a></li></ul></nav>
       <body>
     Some initial text<br>
     <p>across multiple lines</p>
     <div id="changetext">Some text that changes</div>
     <div>Some text should be matched by xPath // selector</div>
     <div>Some text should be matched by xPath selector</div>
     <div>Some text should be matched by xPath1 selector</div>
     </body>
    <footer><p>Footer</p></footer>
     </html>"##;
        let out = remove_elements(
            content,
            &[
                "header",
                "footer",
                "nav",
                "#changetext",
                "//*[contains(text(), 'xPath // selector')]",
                "xpath://*[contains(text(), 'xPath selector')]",
                "xpath1://*[contains(text(), 'xPath1 selector')]",
            ],
            ContentKind::Html,
        )
        .unwrap();
        assert!(
            out.contains("Some initial text") && out.contains("across multiple lines"),
            "{out}"
        );
        for gone in ["Header", ">A<", "changes", "selector", "Footer"] {
            assert!(!out.contains(gone), "{gone} left in {out}");
        }
    }

    #[test]
    fn subtractive_nested_matches_and_text_nodes() {
        let html =
            "<div class=ad><div class=ad>inner</div>outer</div><p>keep <span>me</span> tail</p>";
        let out =
            remove_elements(html, &["//div[@class='ad']", "//p/span"], ContentKind::Html).unwrap();
        assert!(!out.contains("inner") && !out.contains("outer"), "{out}");
        // Text after a removed element stays (lxml would drop it).
        assert!(out.contains("<p>keep  tail</p>"), "{out}");
        let out = remove_elements(html, &["//p/text()"], ContentKind::Html).unwrap();
        assert!(out.contains("<p><span>me</span></p>"), "{out}");
    }

    #[test]
    fn subtractive_then_include_pipeline() {
        let cleaned =
            remove_elements(PAGE, &[".price:first-child", "//footer"], ContentKind::Html).unwrap();
        assert_eq!(
            include(
                &cleaned,
                &["span/text()".replace("span", "//span").as_str()]
            )
            .unwrap(),
            "20 €"
        );
    }

    #[test]
    fn subtractive_on_xml_feed() {
        let out = remove_elements(ATOM, &["//entry[title='One']"], ContentKind::Xml).unwrap();
        assert!(!out.contains("One") && out.contains("Two"), "{out}");
        let out = remove_elements(RSS, &["xpath1://item[2]"], ContentKind::Xml).unwrap();
        assert!(
            out.contains("First é") && !out.contains("Second") && out.contains("<pubDate>"),
            "{out}"
        );
    }

    #[test]
    fn subtractive_no_match_returns_input_unchanged() {
        assert_eq!(
            remove_elements(PAGE, &[".missing", "//missing", ""], ContentKind::Html).unwrap(),
            PAGE
        );
        assert_eq!(
            remove_elements(PAGE, &[] as &[&str], ContentKind::Html).unwrap(),
            PAGE
        );
    }

    #[test]
    fn subtractive_invalid_selector_is_an_error() {
        assert!(matches!(
            remove_elements(PAGE, &["nav", "div["], ContentKind::Html),
            Err(FilterError::InvalidCss { .. })
        ));
        assert!(matches!(
            remove_elements(PAGE, &["//div["], ContentKind::Html),
            Err(FilterError::InvalidXPath { .. })
        ));
    }

    /// 200 nested divs around 100 KB of text: `div` repeats the text once per level.
    fn nested_divs_around_text() -> String {
        format!(
            "<html><body>{}<p>{}</p>{}</body></html>",
            "<div>".repeat(200),
            "word ".repeat(20_000),
            "</div>".repeat(200)
        )
    }

    #[test]
    fn element_output_past_the_budget_is_an_error_naming_the_rule() {
        let page = nested_divs_around_text();
        assert!(200 * page.len() > filter_output_limit(page.len()));
        for rule in ["div", "xpath://div", "//div"] {
            match include(&page, &[rule]) {
                Err(FilterError::OutputTooLarge { rule: named, limit }) => {
                    assert_eq!(named, Filter::split(rule).unwrap().to_string());
                    assert_eq!(limit, filter_output_limit(page.len()));
                }
                other => panic!("{rule}: {:?}", other.map(|o| o.len())),
            }
        }
        let err = include(&page, &["div"]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("Filter output too large: 'div'"),
            "{err}"
        );
        // The budget is shared by all filters of the watch.
        assert_eq!(filter_output_limit(page.len()), MIN_FILTER_OUTPUT_BYTES);
        assert!(include(&page, &["p"; 150]).is_ok());
        assert!(include(&page, &["p"; 180]).is_err());
        // Narrow filters on the same page are fine.
        assert_eq!(
            include(&page, &["p"]).unwrap().len(),
            "<p></p>".len() + 100_000
        );
    }

    #[test]
    fn filters_on_a_very_deep_page_finish_on_a_small_stack() {
        let result = on_small_stack(|| {
            let n = 100_000;
            let page = format!("{}x{}", "<div>".repeat(n), "</div>".repeat(n));
            let css = include(&page, &["div"]).map(|o| o.len());
            let xpath = include(&page, &["//div"]).map(|o| o.len());
            let removed = remove_elements(&page, &["div div"], ContentKind::Html);
            let json = include(&page, &["json:$.a"]).map(|o| o.len());
            (css, xpath, removed, json)
        });
        assert!(result.0.is_ok() && result.1.is_ok(), "{result:?}");
        assert_eq!(
            result.2.unwrap(),
            "<html><head></head><body><div></div></body></html>"
        );
        assert_eq!(result.3, Err(FilterError::JsonNotFound));
    }

    /// Expressions that overflow a parser's stack unless refused first.
    fn hostile_rules() -> Vec<String> {
        let nested = |open: &str, inner: &str, close: &str, n: usize| {
            format!("{}{inner}{}", open.repeat(n), close.repeat(n))
        };
        vec![
            format!("jq:{}", nested("(", "1", ")", 1000)),
            format!("jq:1{}", "+1".repeat(2400)),
            format!("jq:.{}", "|.".repeat(5000)),
            format!("jqraw:{}", nested("[", "1", "]", 1000)),
            format!("jq:{}", nested("if . then ", "1", " else 1 end", 400)),
            format!("json:$.a{}", nested("[?(@", ".b", ")]", 500)),
            format!("xpath:{}", nested("(", "//a", ")", 1000)),
            nested(":is(", "a", ")", 1000),
            format!("div{}", " a".repeat(MAX_RULE_CHARS)),
        ]
    }

    #[test]
    fn hostile_expressions_are_refused_before_any_parser_runs() {
        on_small_stack(|| {
            for rule in hostile_rules() {
                match Filter::parse(&rule) {
                    Err(FilterError::TooComplex {
                        rule: named,
                        reason,
                    }) => {
                        assert!(named.chars().count() <= 61, "{named}");
                        assert!(!reason.is_empty());
                    }
                    other => panic!("{:.40}: {other:?}", rule),
                }
                let err = include("<p>x</p>", &[rule.as_str()]).unwrap_err();
                assert!(matches!(err, FilterError::TooComplex { .. }));
                let err = remove_elements("<p>x</p>", &[rule.as_str()], ContentKind::Html);
                assert!(matches!(err, Err(FilterError::TooComplex { .. })));
            }
        });
    }

    #[test]
    fn expressions_at_the_limits_still_compile_on_a_small_stack() {
        // The worst accepted jq: nesting and operator chain both at their caps.
        let ops = MAX_JQ_OPERATORS - 2 * MAX_RULE_NESTING;
        let jq = format!(
            "jq:{}1{}{}",
            "[(".repeat(MAX_RULE_NESTING / 2),
            "+1".repeat(ops),
            ")]".repeat(MAX_RULE_NESTING / 2)
        );
        assert_eq!(scan_expression(&jq[3..], true).nesting, MAX_RULE_NESTING);
        let pipes = format!("jq:.{}", "|.".repeat(MAX_JQ_OPERATORS));
        let rules = [jq, pipes];
        on_small_stack(move || {
            for rule in &rules {
                Filter::parse(rule).unwrap();
                assert!(include(r#"{"a": 1}"#, &[rule.as_str()]).is_ok());
            }
        });
        let nested = format!(
            "xpath:{}//a{}",
            "(".repeat(MAX_RULE_NESTING),
            ")".repeat(MAX_RULE_NESTING)
        );
        Filter::parse(&nested).unwrap();
        // Ordinary filters are nowhere near the limits.
        for rule in [
            "jq:.items[] | select(.price < 10 and .stock > 0) | {name, price: (.price * 100)}",
            "json:$.store.book[?(@.price < 10)].title",
            "xpath://div[@id='main']//span[contains(@class, 'price')]/text()",
            "div#main > ul li:not(.ad):nth-child(2n+1) a[href^='https']",
        ] {
            Filter::parse(rule).unwrap();
        }
    }

    #[test]
    fn scanning_ignores_brackets_and_operators_in_strings() {
        let shape = scan_expression(r#".a | select(.b == "((((|||,,,") and .c != '[[[')"#, true);
        assert_eq!(shape.nesting, 1);
        // `|`, `==`, `and`, and the `=` of `!=`.
        assert_eq!(shape.operators, 1 + 2 + 1 + 1);
    }
}
