//! Watch URL validation as upstream's `is_safe_valid_url` and `validators.url` do it.

use super::*;

/// Whether `s` has Jinja2 markup (`{{`, `{%` or `{#`): only such text goes through the
/// template engine (a watch's URL, header values and body at fetch time, its `link`).
pub fn has_template_markup(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

pub(super) fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> &'a str {
    match s.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix) => &s[prefix.len()..],
        _ => s,
    }
}

/// Whether `url` may be a watch URL: http/https/ftp (after an optional `source:` prefix), a
/// real host, no `<`, `>` or backslash, and a path of URL characters. Jinja2 markup is allowed
/// when its syntax is valid; each `{{ }}` / `{% %}` block is taken to render to a harmless
/// placeholder, since the real value is only known at fetch time.
pub fn is_valid_watch_url(url: &str) -> bool {
    if url.trim().is_empty() {
        return false;
    }
    let mut candidate = strip_prefix_ignore_case(url, "source:").to_string();
    if has_template_markup(&candidate) {
        if check_template_syntax(&candidate).is_err() {
            return false;
        }
        candidate = replace_template_blocks(&candidate, "x");
    }
    if candidate.contains(['<', '>', '\\']) {
        return false;
    }
    // urllib drops leading C0/space and every tab/CR/LF before splitting.
    let cleaned: String = candidate
        .trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .collect();
    let Some(parts) = urlsplit(&cleaned) else {
        return false;
    };
    if !matches!(parts.scheme.as_str(), "http" | "https" | "ftp") {
        return false;
    }
    // Query and fragment are re-encoded by upstream before validation, so they always pass;
    // scheme, host and path are checked as written.
    if parts.netloc.chars().any(char::is_whitespace) || parts.path.chars().any(char::is_whitespace)
    {
        return false;
    }
    validate_netloc(parts.netloc) && validate_path(parts.path)
}

pub(super) struct UrlParts<'a> {
    scheme: String,
    netloc: &'a str,
    path: &'a str,
}

/// `urllib.parse.urlsplit`, as far as validation needs it; `None` where it raises.
pub(super) fn urlsplit(url: &str) -> Option<UrlParts<'_>> {
    let mut rest = url;
    let mut scheme = String::new();
    if let Some(i) = url.find(':') {
        let cand = &url[..i];
        if i > 0
            && cand.starts_with(|c: char| c.is_ascii_alphabetic())
            && cand
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            scheme = cand.to_ascii_lowercase();
            rest = &url[i + 1..];
        }
    }
    let mut netloc = "";
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        netloc = &after[..end];
        rest = &after[end..];
        if netloc.contains('[') != netloc.contains(']') {
            return None;
        }
    }
    let path_end = rest.find(['?', '#']).unwrap_or(rest.len());
    Some(UrlParts {
        scheme,
        netloc,
        path: &rest[..path_end],
    })
}

pub(super) fn validate_path(path: &str) -> bool {
    path.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || "/-._~!$&'()*+,;=:@%".contains(c)
            || ('\u{A0}'..='\u{D7FF}').contains(&c)
            || ('\u{F900}'..='\u{FDCF}').contains(&c)
            || ('\u{FDF0}'..='\u{FFEF}').contains(&c)
            || ('\u{1F300}'..='\u{1F5FF}').contains(&c)
            || ('\u{1F600}'..='\u{1F64F}').contains(&c)
    })
}

pub(super) fn validate_netloc(netloc: &str) -> bool {
    if netloc.is_empty() || netloc.matches('@').count() > 1 {
        return false;
    }
    let (auth, host) = match netloc.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, netloc),
    };
    let skip_ipv6 = host.matches(':').count() < 2 || !host.starts_with('[');
    let host_value = if skip_ipv6 || netloc.contains("]:") {
        host.to_string()
    } else {
        host.trim_start_matches('[').replacen(']', "", 1)
    };
    validate_hostname(&host_value, skip_ipv6) && auth.is_none_or(validate_auth)
}

pub(super) fn valid_port(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 5
        && p.bytes().all(|b| b.is_ascii_digit())
        && !p.starts_with('0')
        && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
}

pub(super) fn validate_hostname(value: &str, skip_ipv6: bool) -> bool {
    if value.is_empty() {
        return false;
    }
    let split_port = || -> Option<String> {
        if value.matches("]:").count() == 1
            && let Some((h, p)) = value.rsplit_once(':')
            && valid_port(p)
        {
            return Some(h.trim_start_matches('[').trim_end_matches(']').to_string());
        }
        if value.matches(':').count() == 1
            && let Some((h, p)) = value.rsplit_once(':')
            && valid_port(p)
        {
            return Some(h.to_string());
        }
        None
    };
    let host = split_port().unwrap_or_else(|| value.to_string());
    is_simple_hostname(&host)
        || is_domain(&host)
        || host.parse::<std::net::Ipv4Addr>().is_ok()
        || (!skip_ipv6 && host.parse::<std::net::Ipv6Addr>().is_ok())
}

/// Single-label hosts such as `localhost` or `nas` (upstream allows them unless
/// BLOCK_SIMPLEHOSTS is set).
pub(super) fn is_simple_hostname(h: &str) -> bool {
    let b = h.as_bytes();
    !b.is_empty()
        && b.len() <= 61
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

pub(super) fn is_domain(h: &str) -> bool {
    if h.is_empty() || h.chars().any(char::is_whitespace) || h.contains("__") {
        return false;
    }
    let ascii = if h.is_ascii() {
        h.to_string()
    } else {
        match url::Host::parse(h) {
            Ok(url::Host::Domain(d)) => d,
            _ => return false,
        }
    };
    let labels: Vec<&str> = ascii.split('.').collect();
    let Some((tld, names)) = labels.split_last() else {
        return false;
    };
    if names.is_empty() {
        return false;
    }
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        (1..=63).contains(&b.len())
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
    };
    let tb = tld.as_bytes();
    let tld_ok = (2..=63).contains(&tb.len())
        && tb[0].is_ascii_alphanumeric()
        && tb[tb.len() - 1].is_ascii_alphabetic()
        && tb
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_');
    names.iter().all(|l| label_ok(l)) && tld_ok
}

/// `user[:password]@` part: ASCII without quotes or blanks, or starting with an extended
/// Latin letter; the password must not hide URL delimiters.
pub(super) fn validate_auth(auth: &str) -> bool {
    fn username_ok(u: &str) -> bool {
        u.starts_with(|c: char| ('\u{100}'..='\u{24F}').contains(&c))
            || u.chars()
                .all(|c| c.is_ascii() && !matches!(c, '\0' | '\t' | '\n' | '\r' | ' ' | '"' | '\\'))
    }
    if auth.is_empty() {
        return true;
    }
    match auth.matches(':').count() {
        0 => username_ok(auth),
        1 => auth
            .rsplit_once(':')
            .is_some_and(|(user, pw)| username_ok(user) && !pw.contains(['/', '?', '#', '@'])),
        _ => username_ok(&percent_decode(auth)),
    }
}

pub(super) fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
