//! Template syntax and timezone names, checked without rendering anything.

use super::*;

/// Finds the `{{ }}`, `{% %}` and `{# #}` blocks of a template: (start, end) byte ranges.
pub(super) fn template_blocks(src: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = src[i..].find('{') {
        let start = i + off;
        let close = match src.as_bytes().get(start + 1) {
            Some(b'{') => "}}",
            Some(b'%') => "%}",
            Some(b'#') => "#}",
            _ => {
                i = start + 1;
                continue;
            }
        };
        match src[start + 2..].find(close) {
            Some(e) => {
                let end = start + 2 + e + 2;
                out.push((start, end));
                i = end;
            }
            None => {
                out.push((start, src.len()));
                break;
            }
        }
    }
    out
}

pub(super) fn replace_template_blocks(src: &str, with: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut last = 0;
    for (s, e) in template_blocks(src) {
        out.push_str(&src[last..s]);
        out.push_str(with);
        last = e;
    }
    out.push_str(&src[last..]);
    out
}

/// Upstream's `{% now 'tz', 'fmt' %}` tag is an extension that minijinja does not know; it
/// is blanked out before the syntax check.
pub(super) fn blank_now_tags(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut last = 0;
    for (s, e) in template_blocks(src) {
        let inner = &src[s..e];
        if let Some(body) = inner.strip_prefix("{%") {
            let body = body.trim_start_matches(['-', '+']).trim_start();
            let is_now = body.strip_prefix("now").is_some_and(|r| {
                r.starts_with(|c: char| c.is_whitespace() || c == '%' || c == '-')
            });
            if is_now {
                out.push_str(&src[last..s]);
                last = e;
            }
        }
    }
    out.push_str(&src[last..]);
    out
}

/// Compiles `src` as a Jinja2 template (syntax only; unknown variables and filters are
/// render-time matters). The error is a one-line description with its line number.
pub fn check_template_syntax(src: &str) -> Result<(), String> {
    if !has_template_markup(src) {
        return Ok(());
    }
    let prepared = blank_now_tags(src);
    let env = minijinja::Environment::new();
    match env.template_from_str(&prepared) {
        Ok(_) => Ok(()),
        Err(e) => {
            let detail = e
                .detail()
                .map_or_else(|| e.kind().to_string(), str::to_string);
            Err(match e.line() {
                Some(line) => format!("{detail} (line {line})"),
                None => detail,
            })
        }
    }
}

/// Whether `name` is an IANA timezone name (what upstream's `zoneinfo` accepts).
pub fn is_valid_timezone(name: &str) -> bool {
    name.parse::<chrono_tz::Tz>().is_ok()
}
