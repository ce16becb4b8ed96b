//! Line rules applied to the extracted text, with upstream's semantics.
//!
//! Users move watches (and their regexes) over from changedetection.io, so patterns follow
//! Python's `re` dialect where the engine allows it (fancy-regex: look-around and back-references
//! work), and `/pattern/flags` "perl style" strings are recognised the same way: without flags a
//! slash-enclosed pattern is case-insensitive.

use fancy_regex::Regex;

/// A rule string compiled once per check.
#[derive(Debug)]
pub enum LinePattern {
    /// Case-insensitive substring (stored lowercased).
    Substring(String),
    Regex {
        re: Regex,
        /// `s` or `m` flags: the pattern may span lines and is matched on the whole text.
        multiline: bool,
    },
}

/// A rule that is not a valid regex; the message names the offending rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid regular expression '{rule}': {reason}")]
pub struct RuleError {
    pub rule: String,
    pub reason: String,
}

/// Splits `/pattern/flags` into the pattern with inline flags; `None` when `rule` is not
/// slash-enclosed.
pub fn perl_style_regex(rule: &str) -> Option<(String, String)> {
    let inner = rule.strip_prefix('/')?;
    let close = inner.rfind('/')?;
    let (pattern, flags) = (&inner[..close], &inner[close + 1..]);
    if !flags.chars().all(|c| c.is_ascii_lowercase()) {
        return None;
    }
    let flags = if flags.is_empty() {
        "i".to_string()
    } else {
        flags.to_string()
    };
    Some((pattern.to_string(), flags))
}

fn compile(rule: &str, pattern: &str, flags: &str) -> Result<Regex, RuleError> {
    // Python flags that have a Rust equivalent; `a`, `u` and `L` only change character classes
    // and are dropped rather than refused.
    let inline: String = flags
        .chars()
        .filter(|c| matches!(c, 'i' | 'm' | 's' | 'x'))
        .collect();
    let full = if inline.is_empty() {
        pattern.to_string()
    } else {
        format!("(?{inline}){pattern}")
    };
    Regex::new(&full).map_err(|e| RuleError {
        rule: rule.to_string(),
        reason: e.to_string(),
    })
}

impl LinePattern {
    pub fn parse(rule: &str) -> Result<Option<Self>, RuleError> {
        if rule.trim().is_empty() {
            return Ok(None);
        }
        if let Some((pattern, flags)) = perl_style_regex(rule) {
            let re = compile(rule, &pattern, &flags)?;
            let multiline = flags.contains('s') || flags.contains('m');
            return Ok(Some(LinePattern::Regex { re, multiline }));
        }
        Ok(Some(LinePattern::Substring(rule.trim().to_lowercase())))
    }

    pub fn parse_all(rules: &[String]) -> Result<Vec<Self>, RuleError> {
        let mut out = Vec::new();
        for r in rules {
            if let Some(p) = Self::parse(r)? {
                out.push(p);
            }
        }
        Ok(out)
    }
}

/// Checks that every rule in `rules` compiles; used to validate watch settings when saved.
pub fn validate_rules(rules: &[String]) -> Result<(), RuleError> {
    LinePattern::parse_all(rules).map(|_| ())
}

/// Indexes (0-based) of the lines of `content` that any pattern matches.
pub fn matching_lines(content: &str, patterns: &[LinePattern]) -> Vec<usize> {
    let lines: Vec<&str> = content.lines().collect();
    let mut hit = vec![false; lines.len()];
    for p in patterns {
        if let LinePattern::Regex {
            re,
            multiline: true,
        } = p
        {
            for m in re.find_iter(content).flatten() {
                // A match covers the lines from the one holding its start to the one holding its
                // end; a match inside one line marks only that line.
                let start_line = content[..m.start()].matches('\n').count();
                let end_line = content[..m.end()].matches('\n').count();
                let last = if m.end() > m.start() && content[..m.end()].ends_with('\n') {
                    end_line.saturating_sub(1).max(start_line)
                } else {
                    end_line
                };
                for flag in hit.iter_mut().take(last + 1).skip(start_line) {
                    *flag = true;
                }
            }
        }
    }
    for (i, line) in lines.iter().enumerate() {
        if hit[i] {
            continue;
        }
        let lower = line.to_lowercase();
        hit[i] = patterns.iter().any(|p| match p {
            LinePattern::Substring(s) => lower.contains(s.as_str()),
            LinePattern::Regex {
                re,
                multiline: false,
            } => re.is_match(line).unwrap_or(false),
            LinePattern::Regex {
                multiline: true, ..
            } => false,
        });
    }
    hit.iter()
        .enumerate()
        .filter_map(|(i, h)| h.then_some(i))
        .collect()
}

/// `content` without the lines any pattern matches (ignore_text).
pub fn strip_lines(content: &str, patterns: &[LinePattern]) -> String {
    if patterns.is_empty() {
        return content.to_string();
    }
    let drop: std::collections::HashSet<usize> =
        matching_lines(content, patterns).into_iter().collect();
    let mut out = String::with_capacity(content.len());
    for (i, line) in content.split_inclusive('\n').enumerate() {
        if !drop.contains(&i) {
            out.push_str(line);
        }
    }
    out
}

/// Lines that match any pattern (trigger_text's `triggered_text`).
pub fn triggered_lines(content: &str, patterns: &[LinePattern]) -> Vec<String> {
    let lines: Vec<&str> = content.lines().collect();
    matching_lines(content, patterns)
        .into_iter()
        .filter_map(|i| lines.get(i).map(|l| l.to_string()))
        .collect()
}

/// Strips each line; double newlines collapse first, as upstream does.
pub fn trim_whitespace(text: &str) -> String {
    text.replace("\n\n", "\n")
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Keeps the first occurrence of each line.
pub fn remove_duplicate_lines(text: &str) -> String {
    let mut seen = std::collections::HashSet::new();
    text.replace("\n\n", "\n")
        .lines()
        .filter(|l| seen.insert(l.to_string()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Case-insensitive stable sort.
pub fn sort_alphabetically(text: &str) -> String {
    let text = text.replace("\n\n", "\n");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_by_cached_key(|l| l.to_lowercase());
    lines.join("\n")
}

/// Keeps lines containing any needle, case-insensitively.
pub fn extract_lines_containing(text: &str, needles: &[String]) -> String {
    let needles: Vec<String> = needles
        .iter()
        .filter(|n| !n.trim().is_empty())
        .map(|n| n.to_lowercase())
        .collect();
    if needles.is_empty() {
        return text.to_string();
    }
    text.lines()
        .filter(|l| {
            let lower = l.to_lowercase();
            needles.iter().any(|n| lower.contains(n.as_str()))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// extract_text: every match of every rule, one per line. `/re/` rules yield their groups (all
/// groups concatenated when there are several, like Python's `findall`), plain rules yield the
/// case-insensitive occurrences of the literal text.
pub fn extract_by_regex(text: &str, rules: &[String]) -> Result<String, RuleError> {
    let mut out = String::new();
    for rule in rules {
        if rule.is_empty() {
            continue;
        }
        let re = match perl_style_regex(rule) {
            Some((pattern, flags)) => compile(rule, &pattern, &flags)?,
            None => compile(rule, &fancy_regex::escape(rule), "i")?,
        };
        let groups = re.captures_len() - 1;
        for caps in re.captures_iter(text).flatten() {
            match groups {
                0 => out.push_str(caps.get(0).map_or("", |m| m.as_str())),
                _ => {
                    (1..=groups).for_each(|g| out.push_str(caps.get(g).map_or("", |m| m.as_str())))
                }
            }
            out.push('\n');
        }
    }
    Ok(out)
}

/// The checksum upstream stores in `previous_md5`: with `ignore_whitespace`, spaces, tabs, CR and
/// LF are removed first so reflowed text is not a change.
pub fn checksum(text: &str, ignore_whitespace: bool) -> String {
    if ignore_whitespace {
        let squeezed: String = text
            .chars()
            .filter(|c| !matches!(c, ' ' | '\t' | '\r' | '\n'))
            .collect();
        format!("{:x}", md5::compute(squeezed.as_bytes()))
    } else {
        format!("{:x}", md5::compute(text.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats(rules: &[&str]) -> Vec<LinePattern> {
        LinePattern::parse_all(&rules.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn perl_style_parsing() {
        assert_eq!(
            perl_style_regex("/foo\\d+/"),
            Some(("foo\\d+".into(), "i".into()))
        );
        assert_eq!(perl_style_regex("/a/b/s"), Some(("a/b".into(), "s".into())));
        assert_eq!(perl_style_regex("plain"), None);
        assert_eq!(perl_style_regex("/path/Upper"), None);
    }

    #[test]
    fn ignore_text_substring_and_regex() {
        let text = "Price: 10\nUpdated at 10:31\nVisitors 1234\nStock: yes\n";
        let out = strip_lines(text, &pats(&["UPDATED AT", "/visitors \\d+/"]));
        assert_eq!(out, "Price: 10\nStock: yes\n");
    }

    #[test]
    fn ignore_text_multiline_regex_covers_spanned_lines() {
        let text = "a\nstart\nmiddle\nend\nz";
        let out = strip_lines(text, &pats(&["/start.*?end/s"]));
        assert_eq!(out, "a\nz");
    }

    #[test]
    fn blank_rules_ignore_nothing() {
        assert_eq!(strip_lines("a\nb", &pats(&["", "  "])), "a\nb");
    }

    #[test]
    fn invalid_regex_is_reported_with_the_rule() {
        let err = LinePattern::parse("/(unclosed/").unwrap_err();
        assert_eq!(err.rule, "/(unclosed/");
    }

    #[test]
    fn trigger_lines() {
        let text = "nothing\nIn stock now\nother";
        assert_eq!(
            triggered_lines(text, &pats(&["in stock"])),
            vec!["In stock now"]
        );
        assert!(triggered_lines(text, &pats(&["sold out"])).is_empty());
    }

    #[test]
    fn transformations() {
        assert_eq!(trim_whitespace("  a  \n\n b\t"), "a\nb");
        assert_eq!(remove_duplicate_lines("b\na\nb\nc\na"), "b\na\nc");
        assert_eq!(sort_alphabetically("b\nA\nc\na"), "A\na\nb\nc");
        assert_eq!(
            extract_lines_containing("Price 5\nname\nPRICE 6", &["price".into()]),
            "Price 5\nPRICE 6"
        );
        assert_eq!(extract_lines_containing("a\nb", &[" ".into()]), "a\nb");
    }

    #[test]
    fn extract_text_regex_groups_and_plain() {
        let text = "Price: $10.50\nOld price: $12.00\nSKU 991";
        assert_eq!(
            extract_by_regex(text, &["/\\$(\\d+\\.\\d+)/".into()]).unwrap(),
            "10.50\n12.00\n"
        );
        assert_eq!(
            extract_by_regex(text, &["/(sku) (\\d+)/".into()]).unwrap(),
            "SKU991\n"
        );
        assert_eq!(
            extract_by_regex(text, &["price".into()]).unwrap(),
            "Price\nprice\n"
        );
        assert_eq!(
            extract_by_regex(text, &["/\\d{3}/".into()]).unwrap(),
            "991\n"
        );
    }

    #[test]
    fn checksum_ignores_whitespace_by_default() {
        assert_eq!(checksum("a b\n c", true), checksum("abc", true));
        assert_ne!(checksum("a b\n c", false), checksum("abc", false));
        assert_eq!(checksum("", false), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
