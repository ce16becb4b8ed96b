//! The sandboxed template engine shared by every render.
//!
//! minijinja has no file system, loader or host access unless given one, and none is given
//! here: templates see only the context values of one render. What remains to bound is
//! time and size, because notification templates are user input (several tenants' in AWS
//! mode): fuel caps the instructions of one render, the recursion limit caps nesting, and
//! the output writer stops at upstream's 10 MiB payload cap.

use std::collections::HashSet;
use std::io;
use std::sync::LazyLock;

use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior};

/// Instructions one render may execute. A template printing a few tokens uses tens; a loop
/// over every line of a large snapshot a few hundred thousand. A runaway loop stops here,
/// in well under a second.
pub(crate) const FUEL: u64 = 2_000_000;
/// Nesting of macros, includes and loops.
const RECURSION_LIMIT: usize = 64;
/// Upstream's `JINJA2_MAX_RETURN_PAYLOAD_SIZE` default: output past this is cut off.
pub(crate) const MAX_OUTPUT: usize = 10 * 1024 * 1024;
/// What `{% now ... %}` tags are rewritten to call.
pub(crate) const NOW_FN: &str = "__cw_now";

pub(crate) static ENV: LazyLock<Environment<'static>> = LazyLock::new(build);

fn build() -> Environment<'static> {
    let mut env = Environment::new();
    // Jinja2's defaults upstream: no autoescape (escaping of page text is done on the
    // values), lenient undefined, trailing newline of the template dropped.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
    env.set_formatter(format_value);
    // It prints the render state; nothing a notification needs.
    env.remove_global("debug");
    env.add_filter("truncate", truncate);
    env.add_filter("wordcount", wordcount);
    env.add_filter("capitalize", capitalize);
    env.add_filter("regex_replace", regex_replace);
    env.set_unknown_method_callback(python_methods);
    env
}

/// Python renders `None` as "None" and booleans as "True"/"False". The booleans are kept
/// (webhook payloads built from `restock.in_stock` rely on them); `None` prints nothing,
/// because an unset token (no screenshot, no MIME type) reading "None" in a message is noise.
fn format_value(
    out: &mut minijinja::Output<'_>,
    state: &State<'_, '_>,
    value: &Value,
) -> Result<(), Error> {
    match value.kind() {
        ValueKind::None | ValueKind::Undefined => Ok(()),
        ValueKind::Bool => {
            let text = if value.is_true() { "True" } else { "False" };
            out.write_str(text).map_err(Error::from)
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// Upstream's `regex_replace(pattern, replacement, count=0)` filter. The `regex` crate runs
/// in linear time, so a hostile pattern cannot stall a render; Python's `\1` group
/// references are accepted alongside `$1`. `count` 0 replaces every match.
fn regex_replace(
    s: String,
    pattern: String,
    replacement: String,
    count: Option<usize>,
) -> Result<String, Error> {
    let re = regex::RegexBuilder::new(&pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("regex_replace: {e}")))?;
    let mut repl = String::with_capacity(replacement.len());
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(d)) if d.is_ascii_digit() => {
                let d = *d;
                chars.next();
                repl.push_str(&format!("${{{d}}}"));
            }
            ('$', _) => repl.push_str("$$"),
            _ => repl.push(c),
        }
    }
    Ok(re
        .replacen(&s, count.unwrap_or(0), repl.as_str())
        .into_owned())
}

/// Jinja2's `truncate(length=255, killwords=False, end='...', leeway=5)`, in characters.
/// Arguments by position or by name.
fn truncate(s: String, args: Rest<Value>) -> Result<String, Error> {
    let (positional, kwargs) = match args.split_last() {
        Some((last, rest)) if last.is_kwargs() => (rest, Some(Kwargs::try_from(last.clone())?)),
        _ => (&args[..], None),
    };
    if positional.len() > 4 {
        return Err(Error::from(ErrorKind::TooManyArguments));
    }
    let arg = |i: usize, name: &str| -> Result<Option<Value>, Error> {
        let named = match &kwargs {
            Some(kw) => kw.get::<Option<Value>>(name)?,
            None => None,
        };
        Ok(named
            .or_else(|| positional.get(i).cloned())
            .filter(|v| !v.is_none()))
    };
    let number = |v: Option<Value>, default: usize| -> Result<usize, Error> {
        v.map_or(Ok(default), |v| {
            usize::try_from(v).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    "truncate: expected a positive integer",
                )
            })
        })
    };
    let length = number(arg(0, "length")?, 255)?;
    let killwords = arg(1, "killwords")?.is_some_and(|v| v.is_true());
    let end = arg(2, "end")?.map_or_else(|| "...".to_string(), |v| v.to_string());
    let leeway = number(arg(3, "leeway")?, 5)?;
    if let Some(kw) = &kwargs {
        kw.assert_all_used()?;
    }
    let end_len = end.chars().count();
    if length < end_len {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "truncate: length must be at least the length of end",
        ));
    }
    if s.chars().count() <= length + leeway {
        return Ok(s);
    }
    let cut: String = s.chars().take(length - end_len).collect();
    if killwords {
        return Ok(cut + &end);
    }
    let kept = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    Ok(format!("{kept}{end}"))
}

/// Jinja2's `wordcount`: runs of word characters.
fn wordcount(s: String) -> usize {
    s.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .count()
}

/// Jinja2's `capitalize`: first character upper case, the rest lower case.
fn capitalize(s: String) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

fn str_arg(args: &[Value], i: usize) -> Option<String> {
    args.get(i).filter(|v| !v.is_none()).map(Value::to_string)
}

fn usize_arg(args: &[Value], i: usize) -> Option<i64> {
    args.get(i).and_then(|v| i64::try_from(v.clone()).ok())
}

/// The Python `str` and `dict` methods upstream templates call on tokens
/// (`{{ diff.splitlines()[0] }}`, `{{ restock.get('price') }}`), which minijinja lacks.
fn python_methods(
    _state: &State<'_, '_>,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    let unknown = || {
        Error::new(
            ErrorKind::UnknownMethod,
            format!("{} has no method named {method}", value.kind()),
        )
    };
    if value.kind() == ValueKind::Map {
        return match method {
            "get" => {
                let key = args.first().cloned().unwrap_or(Value::UNDEFINED);
                let found = value.get_item(&key).unwrap_or(Value::UNDEFINED);
                Ok(if found.is_undefined() {
                    args.get(1).cloned().unwrap_or(Value::from(()))
                } else {
                    found
                })
            }
            "keys" => Ok(Value::from(value.try_iter()?.collect::<Vec<_>>())),
            "values" => Ok(Value::from(
                value
                    .try_iter()?
                    .map(|k| value.get_item(&k).unwrap_or(Value::UNDEFINED))
                    .collect::<Vec<_>>(),
            )),
            "items" => Ok(Value::from(
                value
                    .try_iter()?
                    .map(|k| {
                        let v = value.get_item(&k).unwrap_or(Value::UNDEFINED);
                        Value::from(vec![k, v])
                    })
                    .collect::<Vec<_>>(),
            )),
            _ => Err(unknown()),
        };
    }
    let Some(s) = value.as_str() else {
        return Err(unknown());
    };
    let strip_set = |args: &[Value]| str_arg(args, 0);
    let out = match method {
        "upper" => Value::from(s.to_uppercase()),
        "lower" => Value::from(s.to_lowercase()),
        "capitalize" => Value::from(capitalize(s.to_string())),
        "strip" | "lstrip" | "rstrip" => {
            let chars = strip_set(args);
            let is_strip = |c: char| {
                chars
                    .as_ref()
                    .map_or(c.is_whitespace(), |set| set.contains(c))
            };
            Value::from(match method {
                "lstrip" => s.trim_start_matches(is_strip),
                "rstrip" => s.trim_end_matches(is_strip),
                _ => s.trim_matches(is_strip),
            })
        }
        "startswith" => Value::from(str_arg(args, 0).is_some_and(|p| s.starts_with(&p))),
        "endswith" => Value::from(str_arg(args, 0).is_some_and(|p| s.ends_with(&p))),
        "splitlines" => Value::from(s.lines().map(Value::from).collect::<Vec<_>>()),
        "split" => {
            let sep = str_arg(args, 0);
            let max = usize_arg(args, 1)
                .filter(|n| *n >= 0)
                .and_then(|n| usize::try_from(n).ok());
            let parts: Vec<Value> = match (sep.as_deref(), max) {
                (Some(""), _) => {
                    return Err(Error::new(ErrorKind::InvalidOperation, "empty separator"));
                }
                (Some(sep), Some(n)) => s.splitn(n + 1, sep).map(Value::from).collect(),
                (Some(sep), None) => s.split(sep).map(Value::from).collect(),
                (None, _) => s.split_whitespace().map(Value::from).collect(),
            };
            Value::from(parts)
        }
        "replace" => {
            let (Some(old), Some(new)) = (str_arg(args, 0), str_arg(args, 1)) else {
                return Err(Error::new(ErrorKind::MissingArgument, "replace(old, new)"));
            };
            match usize_arg(args, 2)
                .filter(|n| *n >= 0)
                .and_then(|n| usize::try_from(n).ok())
            {
                Some(n) => Value::from(s.replacen(&old, &new, n)),
                None => Value::from(s.replace(&old, &new)),
            }
        }
        "count" => Value::from(str_arg(args, 0).map_or(0, |p| {
            if p.is_empty() {
                s.chars().count() + 1
            } else {
                s.matches(&p).count()
            }
        })),
        "find" => Value::from(str_arg(args, 0).map_or(-1, |p| {
            s.find(&p)
                .map_or(-1, |i| i64::try_from(s[..i].chars().count()).unwrap_or(-1))
        })),
        _ => return Err(unknown()),
    };
    Ok(out)
}

/// Spans of `{{ ... }}` and `{% ... %}` in a template source.
fn tag_spans(src: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut pos = 0;
    while let Some(rel) = src[pos..].find('{') {
        let at = pos + rel;
        let close = match src[at + 1..].chars().next() {
            Some('{') => "}}",
            Some('%') => "%}",
            _ => {
                pos = at + 1;
                continue;
            }
        };
        match src[at + 2..].find(close) {
            Some(end) => {
                let end = at + 2 + end + close.len();
                spans.push((at, end));
                pos = end;
            }
            None => break,
        }
    }
    spans
}

/// Names followed by `(` inside template tags: the tokens the template calls, which must be
/// callable objects rather than plain strings.
pub(crate) fn called_names(src: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    for (start, end) in tag_spans(src) {
        let inner = &src[start..end];
        let bytes = inner.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            if c.is_ascii_alphabetic() || c == b'_' {
                let begin = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let preceded_by_dot = inner[..begin].trim_end().ends_with('.');
                let next = inner[i..].trim_start();
                if !preceded_by_dot && next.starts_with('(') {
                    out.insert(inner[begin..i].to_string());
                }
            } else {
                i += 1;
            }
        }
    }
    out
}

/// Rewrites upstream's `{% now 'tz' [+|- 'offset'] [, 'fmt'] %}` tag, which is a Jinja2
/// extension minijinja cannot parse, into a call of [`NOW_FN`]. Anything else that starts
/// with `now` is left alone, for the parser to report.
pub(crate) fn rewrite_now_tags(src: &str) -> String {
    if !src.contains("now") {
        return src.to_string();
    }
    let mut out = String::with_capacity(src.len());
    let mut last = 0;
    for (start, end) in tag_spans(src) {
        let tag = &src[start..end];
        let Some(inner) = tag.strip_prefix("{%").and_then(|t| t.strip_suffix("%}")) else {
            continue;
        };
        let (open_ws, inner) = match inner.strip_prefix(['-', '+']) {
            Some(rest) => (&inner[..1], rest),
            None => ("", inner),
        };
        let (inner, close_ws) = match inner.strip_suffix(['-', '+']) {
            Some(rest) => (rest, &inner[inner.len() - 1..]),
            None => (inner, ""),
        };
        let Some(args) = inner.trim_start().strip_prefix("now") else {
            continue;
        };
        if !args.starts_with(char::is_whitespace) {
            continue;
        }
        let Some(call) = now_call(args) else {
            continue;
        };
        // Jinja2's "+" whitespace modifier means "keep", which {{ }} does by default.
        let open_ws = if open_ws == "-" { "-" } else { "" };
        let close_ws = if close_ws == "-" { "-" } else { "" };
        out.push_str(&src[last..start]);
        out.push_str(&format!("{{{{{open_ws} {call} {close_ws}}}}}"));
        last = end;
    }
    out.push_str(&src[last..]);
    out
}

/// One quoted string literal at the start of `s` (after whitespace): its source text and
/// the rest.
fn string_literal(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    let quote = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == quote {
            return Some((&s[..=i], &s[i + 1..]));
        }
    }
    None
}

fn now_call(args: &str) -> Option<String> {
    let (tz, mut rest) = string_literal(args)?;
    let mut op = "none";
    let mut offset = "none";
    let trimmed = rest.trim_start();
    if let Some(sign) = trimmed.chars().next().filter(|c| *c == '+' || *c == '-') {
        let (lit, after) = string_literal(&trimmed[1..])?;
        op = if sign == '+' { "'+'" } else { "'-'" };
        offset = lit;
        rest = after;
    }
    let mut format = "none";
    let trimmed = rest.trim_start();
    if let Some(after_comma) = trimmed.strip_prefix(',') {
        let (lit, after) = string_literal(after_comma)?;
        format = lit;
        rest = after;
    }
    if !rest.trim().is_empty() {
        return None;
    }
    Some(format!("{NOW_FN}({tz}, {op}, {offset}, {format})"))
}

/// A one-line description of a template error with its line, for logs and form errors.
pub(crate) fn describe(err: &Error) -> String {
    let mut out = err.kind().to_string();
    if let Some(detail) = err.detail() {
        out.push_str(": ");
        out.push_str(detail);
    }
    if let Some(line) = err.line() {
        out.push_str(&format!(" (line {line})"));
    }
    out
}

/// Collects output up to [`MAX_OUTPUT`] and then fails the write, which stops the render
/// instead of letting a template grow a gigantic string.
#[derive(Debug, Default)]
pub(crate) struct CappedWriter {
    pub buf: Vec<u8>,
    pub overflowed: bool,
}

impl io::Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = MAX_OUTPUT.saturating_sub(self.buf.len());
        if data.len() > room {
            self.buf.extend_from_slice(&data[..room]);
            self.overflowed = true;
            return Err(io::Error::other("notification output limit reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl CappedWriter {
    /// The output as text; a cut in the middle of a character drops that character.
    pub(crate) fn into_string(self) -> String {
        match String::from_utf8(self.buf) {
            Ok(s) => s,
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let mut bytes = e.into_bytes();
                bytes.truncate(valid);
                String::from_utf8(bytes).unwrap_or_default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn now_tags_become_calls() {
        assert_eq!(
            rewrite_now_tags("a {% now 'UTC' %} b"),
            format!("a {{{{ {NOW_FN}('UTC', none, none, none) }}}} b")
        );
        assert_eq!(
            rewrite_now_tags("{%- now 'Europe/Paris' + 'hours=2', '%Y' -%}"),
            format!("{{{{- {NOW_FN}('Europe/Paris', '+', 'hours=2', '%Y') -}}}}")
        );
        assert_eq!(
            rewrite_now_tags("{% now '' - 'days=1' %}"),
            format!("{{{{ {NOW_FN}('', '-', 'days=1', none) }}}}")
        );
        // Not the tag: left for the parser.
        assert_eq!(rewrite_now_tags("{% nowhere %}"), "{% nowhere %}");
        assert_eq!(rewrite_now_tags("{% now x %}"), "{% now x %}");
    }

    #[test]
    fn called_names_only_inside_tags() {
        let names = called_names(
            "diff (x) {{ diff(lines=2) }} {{ diff_added }} {{ x.split(',') }} {% if change_datetime ('%Y') %}",
        );
        assert!(names.contains("diff"));
        assert!(names.contains("change_datetime"));
        assert!(!names.contains("diff_added"));
        assert!(!names.contains("split"));
    }

    #[test]
    fn regex_replace_with_python_group_references() {
        let mut env = Environment::new();
        env.add_filter("regex_replace", regex_replace);
        let out = |t: &str| env.render_str(t, minijinja::context! {}).unwrap();
        assert_eq!(
            out(r#"{{ "price: 10 EUR" | regex_replace("(\\d+) EUR", "\\1 euros") }}"#),
            "price: 10 euros"
        );
        assert_eq!(
            out(r#"{{ "a-b-c" | regex_replace("-", "+", 1) }}"#),
            "a+b-c"
        );
        assert_eq!(out(r#"{{ "cost" | regex_replace("cost", "$5") }}"#), "$5");
        assert!(
            env.render_str(
                r#"{{ "x" | regex_replace("(", "") }}"#,
                minijinja::context! {}
            )
            .is_err()
        );
    }

    #[test]
    fn truncate_like_jinja2() {
        let s = "foo bar baz qux".to_string();
        let env = Environment::new();
        let run = |tpl: &str| {
            let mut env = env.clone();
            env.add_filter("truncate", truncate);
            env.render_str(tpl, minijinja::context! { s => s.clone() })
        };
        assert_eq!(run("{{ s|truncate(9, leeway=0) }}").unwrap(), "foo...");
        assert_eq!(
            run("{{ s|truncate(9, true, leeway=0) }}").unwrap(),
            "foo ba..."
        );
        assert_eq!(
            run("{{ s|truncate(9, end='~', leeway=0) }}").unwrap(),
            "foo bar~"
        );
        assert_eq!(
            run("{{ s|truncate(9, False, '!', 0) }}").unwrap(),
            "foo bar!"
        );
        assert_eq!(run("{{ s|truncate(12) }}").unwrap(), s);
        assert!(run("{{ s|truncate(1) }}").is_err());
        assert!(run("{{ s|truncate(5, bogus=1) }}").is_err());
    }

    #[test]
    fn capped_writer_cuts_on_char_boundary() {
        use std::io::Write as _;
        let mut w = CappedWriter {
            buf: vec![b'a'; MAX_OUTPUT - 1],
            ..CappedWriter::default()
        };
        assert!(w.write("é".as_bytes()).is_err());
        assert!(w.overflowed);
        assert_eq!(w.into_string().len(), MAX_OUTPUT - 1);
    }
}
