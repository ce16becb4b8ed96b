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
//! # Modules
//!
//! This file holds the rule types and the two entry points ([`remove_elements`],
//! [`apply_include_filters`]); each engine has its own module: `css` (scraper),
//! `xpath` (libxml2), `json` (JSON sources and JSONPath), `jq` (jaq), with
//! `documents` sharing one parse per engine between a watch's filters, `limits`
//! holding what a rule may be before any parser runs, `inplace` applying CSS rules to
//! the page's one parsed tree for the pipeline's single-parse path, `xpath_text` turning
//! XPath matches into text from libxml2's tree without writing them out and parsing them
//! again, and `libxml_css` matching CSS subtractive rules on that tree for it.
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
use scraper::{ElementRef, Html, Selector};

use crate::html_text::parse_document;
use serde::Serialize;
use serde_json::Value;
use serde_json_path::JsonPath;

mod css;
mod documents;
mod inplace;
mod jq;
mod json;
mod libxml_css;
mod limits;
#[cfg(test)]
mod tests;
mod xpath;
mod xpath_text;

use css::*;
use documents::*;
pub use inplace::*;
use jq::*;
use json::*;
use libxml_css::*;
pub use limits::*;
use xpath::*;
pub use xpath_text::*;

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
    let (xpaths, css) = compile_subtractive(selectors)?;

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

/// The non-blank include rules, checked and split (not yet compiled).
fn split_rules<S: AsRef<str>>(filters: &[S]) -> Result<Vec<Filter>, FilterError> {
    filters
        .iter()
        .map(|rule| rule.as_ref())
        .filter(|rule| !rule.trim().is_empty())
        .map(Filter::split)
        .collect()
}

/// The non-blank subtractive rules, checked and compiled: XPath rules with their source,
/// and CSS selectors. Upstream joins CSS selectors with commas, so stray leading or
/// trailing commas are tolerated.
#[allow(clippy::type_complexity)]
fn compile_subtractive<S: AsRef<str>>(
    selectors: &[S],
) -> Result<(Vec<(String, Expression)>, Vec<Selector>), FilterError> {
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
                let expr = rule.trim_matches(|c: char| c == ',' || c.is_whitespace());
                if !expr.is_empty() {
                    css.push(css_selector(expr)?);
                }
            }
        }
    }
    Ok((xpaths, css))
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
    let parsed = split_rules(filters)?;

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
