//! Line rules applied to the extracted text, with upstream's semantics.
//!
//! Users move watches (and their regexes) over from changedetection.io, so patterns follow
//! Python's `re` dialect where the engine allows it (fancy-regex: look-around and back-references
//! work), and `/pattern/flags` "perl style" strings are recognised the same way: without flags a
//! slash-enclosed pattern is case-insensitive.
//!
//! # Budgets
//!
//! Rules are user input and pages are attacker input, so every match is bounded:
//! * one match attempt may backtrack at most [`BACKTRACK_LIMIT`] times (look-around and
//!   back-references run on fancy-regex's backtracking VM; everything else on the `regex`
//!   crate's linear engines);
//! * compiled programs are capped ([`REGEX_SIZE_LIMIT`], [`REGEX_DFA_SIZE_LIMIT`]), so huge
//!   repetitions (`\w{1000}{1000}`) are refused when compiled instead of eating memory;
//! * one rule may match at most [`MAX_MATCHES_PER_RULE`] times in one text.
//!
//! The backtracking VM also counts each start position it skips as a step, so a look-around
//! rule with the `s` or `m` flag (matched on the whole text) fails on texts over about a million
//! characters; per-line rules are unaffected.
//!
//! Hitting a budget ends the rule with a [`RuleError::Runtime`] naming it, which becomes the
//! watch's error. fancy-regex's iterators report a failed attempt as `Some(Err)` without moving
//! on, so an iterator consumed with `.flatten()` asks again for ever: every iteration here stops
//! at the first error.

use fancy_regex::{Regex, RegexBuilder};

/// Backtracking steps allowed for one match attempt (fancy-regex's own default, made explicit
/// because the rest of the budget is reasoned from it). Upstream's Python `re` has no limit; a
/// catastrophic pattern such as `(?:a|(?=a)a)*b` on a run of `a` reaches this in ~30 ms.
pub const BACKTRACK_LIMIT: usize = 1_000_000;

/// Size cap of one compiled program in the `regex` crate (its default, made explicit): enough
/// for `\w{100}` (Unicode classes are large), not for `\w{1000}`. Memory stays bounded
/// whatever the repetition: `a{1000}{1000}` compiles to a 1 MB literal, `\w{1000}{1000}` is
/// refused.
pub const REGEX_SIZE_LIMIT: usize = 10 * 1024 * 1024;

/// Cache cap of the `regex` crate's lazy DFA per program (its default, made explicit).
pub const REGEX_DFA_SIZE_LIMIT: usize = 2 * 1024 * 1024;

/// Matches one rule may produce in one text. Far above what a real extract or ignore rule
/// finds on a page; it bounds the total work of a rule to this many bounded attempts.
pub const MAX_MATCHES_PER_RULE: usize = 100_000;

/// A rule string compiled once per check.
#[derive(Debug)]
pub enum LinePattern {
    /// Case-insensitive substring (stored lowercased).
    Substring(String),
    Regex {
        re: Regex,
        /// `s` or `m` flags: the pattern may span lines and is matched on the whole text.
        multiline: bool,
        /// The rule as written, to name it in errors.
        rule: String,
    },
}

/// A rule that is not a valid regex, or that exceeded its budget on this text; the message
/// names the offending rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("Invalid regular expression '{rule}': {reason}")]
    Invalid { rule: String, reason: String },
    #[error("Regular expression '{rule}' could not be applied: {reason}")]
    Runtime { rule: String, reason: String },
}

impl RuleError {
    /// The rule as written.
    pub fn rule(&self) -> &str {
        match self {
            RuleError::Invalid { rule, .. } | RuleError::Runtime { rule, .. } => rule,
        }
    }

    pub(crate) fn runtime(rule: &str, error: &fancy_regex::Error) -> Self {
        let reason = match error {
            fancy_regex::Error::RuntimeError(fancy_regex::RuntimeError::BacktrackLimitExceeded) => {
                format!(
                    "it backtracks too much on this text (more than {BACKTRACK_LIMIT} steps for one match)"
                )
            }
            other => other.to_string(),
        };
        RuleError::Runtime {
            rule: rule.to_string(),
            reason,
        }
    }

    fn too_many_matches(rule: &str) -> Self {
        RuleError::Runtime {
            rule: rule.to_string(),
            reason: format!("it matches more than {MAX_MATCHES_PER_RULE} times"),
        }
    }
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

pub(crate) fn compile(rule: &str, pattern: &str, flags: &str) -> Result<Regex, RuleError> {
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
    RegexBuilder::new(&full)
        .backtrack_limit(BACKTRACK_LIMIT)
        .delegate_size_limit(REGEX_SIZE_LIMIT)
        .delegate_dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| RuleError::Invalid {
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
            return Ok(Some(LinePattern::Regex {
                re,
                multiline,
                rule: rule.to_string(),
            }));
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

/// Indexes (0-based) of the lines of `content` that any pattern matches, or the first rule that
/// failed on this text.
pub fn matching_lines(content: &str, patterns: &[LinePattern]) -> Result<Vec<usize>, RuleError> {
    // Every check asks (triggers, forbidden text), most watches have no rules, and the walk
    // below splits and lowercases every line: 9 % of a changed check's processing for nothing.
    if patterns.is_empty() {
        return Ok(Vec::new());
    }
    let lines: Vec<&str> = content.lines().collect();
    let mut hit = vec![false; lines.len()];
    // Byte offset where each line starts, so a match's lines are found by binary search rather
    // than by counting newlines from the top for every match.
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(content.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line_of = |offset: usize| {
        line_starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1)
    };
    for p in patterns {
        if let LinePattern::Regex {
            re,
            multiline: true,
            rule,
        } = p
        {
            for (n, m) in re.find_iter(content).enumerate() {
                let m = m.map_err(|e| RuleError::runtime(rule, &e))?;
                if n >= MAX_MATCHES_PER_RULE {
                    return Err(RuleError::too_many_matches(rule));
                }
                // A match covers the lines from the one holding its start to the one holding its
                // end; a match inside one line marks only that line.
                let start_line = line_of(m.start());
                let end_line = line_of(m.end());
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
    let substrings = patterns
        .iter()
        .any(|p| matches!(p, LinePattern::Substring(_)));
    for (i, line) in lines.iter().enumerate() {
        if hit[i] {
            continue;
        }
        // Only substring rules compare lowercased; regex-only rules need no copy of the line.
        let lower = if substrings {
            line.to_lowercase()
        } else {
            String::new()
        };
        for p in patterns {
            let matched = match p {
                LinePattern::Substring(s) => lower.contains(s.as_str()),
                LinePattern::Regex {
                    re,
                    multiline: false,
                    rule,
                } => re
                    .is_match(line)
                    .map_err(|e| RuleError::runtime(rule, &e))?,
                LinePattern::Regex {
                    multiline: true, ..
                } => false,
            };
            if matched {
                hit[i] = true;
                break;
            }
        }
    }
    Ok(hit
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.then_some(i))
        .collect())
}

/// `content` without the lines any pattern matches (ignore_text), or the first rule that
/// failed on this text.
pub fn strip_lines(content: &str, patterns: &[LinePattern]) -> Result<String, RuleError> {
    if patterns.is_empty() {
        return Ok(content.to_string());
    }
    let drop = matching_lines(content, patterns)?;
    Ok(keep_lines_except(content, &drop))
}

fn keep_lines_except(content: &str, drop: &[usize]) -> String {
    let drop: std::collections::HashSet<usize> = drop.iter().copied().collect();
    let mut out = String::with_capacity(content.len());
    for (i, line) in content.split_inclusive('\n').enumerate() {
        if !drop.contains(&i) {
            out.push_str(line);
        }
    }
    out
}

/// Lines that match any pattern (trigger_text's `triggered_text`), or the first rule that
/// failed on this text.
pub fn triggered_lines(content: &str, patterns: &[LinePattern]) -> Result<Vec<String>, RuleError> {
    let hits = matching_lines(content, patterns)?;
    Ok(lines_at(content, &hits))
}

fn lines_at(content: &str, indexes: &[usize]) -> Vec<String> {
    let lines: Vec<&str> = content.lines().collect();
    indexes
        .iter()
        .filter_map(|&i| lines.get(i).map(|l| l.to_string()))
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
        for (n, caps) in re.captures_iter(text).enumerate() {
            let caps = caps.map_err(|e| RuleError::runtime(rule, &e))?;
            if n >= MAX_MATCHES_PER_RULE {
                return Err(RuleError::too_many_matches(rule));
            }
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

/// Bytes hashed per call by [`checksum`].
const CHUNK: usize = 4096;

/// The checksum upstream stores in `previous_md5`: with `ignore_whitespace`, spaces, tabs, CR and
/// LF are removed first so reflowed text is not a change.
pub fn checksum(text: &str, ignore_whitespace: bool) -> String {
    if ignore_whitespace {
        // The text without its whitespace, through a small buffer: the same digest with no
        // copy of the text, and one hash call per 4 KB rather than one per word (a call per
        // word was most of the hashing's cost). The four are ASCII, so a UTF-8 sequence is
        // never split. Every byte is written and only the kept ones advance the end: a
        // branch on each byte of prose guessed wrong at every space, and cost more than MD5.
        let mut ctx = md5::Context::new();
        let mut buf = [0u8; CHUNK];
        for chunk in text.as_bytes().chunks(CHUNK) {
            let mut len = 0;
            for &b in chunk {
                // `len` is at most the byte's place in the chunk: always in the buffer.
                if let Some(out) = buf.get_mut(len) {
                    *out = b;
                }
                len += usize::from(!matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
            }
            ctx.consume(buf.get(..len).unwrap_or_default());
        }
        format!("{:x}", ctx.compute())
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
    fn no_rules_match_no_lines() {
        assert!(matching_lines("a\nb\n", &[]).unwrap().is_empty());
        assert!(triggered_lines("a\nb\n", &[]).unwrap().is_empty());
        // A regex-only rule set still matches as before (no lowercased copy is made for it).
        assert_eq!(
            matching_lines("x\nab1\n", &pats(&["/b\\d/"])).unwrap(),
            vec![1]
        );
        assert_eq!(matching_lines("x\nAB1\n", &pats(&["ab"])).unwrap(), vec![1]);
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
        let out = strip_lines(text, &pats(&["UPDATED AT", "/visitors \\d+/"])).unwrap();
        assert_eq!(out, "Price: 10\nStock: yes\n");
    }

    #[test]
    fn ignore_text_multiline_regex_covers_spanned_lines() {
        let text = "a\nstart\nmiddle\nend\nz";
        let out = strip_lines(text, &pats(&["/start.*?end/s"])).unwrap();
        assert_eq!(out, "a\nz");
    }

    #[test]
    fn blank_rules_ignore_nothing() {
        assert_eq!(strip_lines("a\nb", &pats(&["", "  "])).unwrap(), "a\nb");
    }

    #[test]
    fn invalid_regex_is_reported_with_the_rule() {
        let err = LinePattern::parse("/(unclosed/").unwrap_err();
        assert_eq!(err.rule(), "/(unclosed/");
        assert!(matches!(err, RuleError::Invalid { .. }));
    }

    #[test]
    fn trigger_lines() {
        let text = "nothing\nIn stock now\nother";
        assert_eq!(
            triggered_lines(text, &pats(&["in stock"])).unwrap(),
            vec!["In stock now"]
        );
        assert!(
            triggered_lines(text, &pats(&["sold out"]))
                .unwrap()
                .is_empty()
        );
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

    const CATASTROPHIC: &str = "/(?:a|(?=a)a)*b/";

    #[test]
    fn backtracking_extract_ends_with_an_error_naming_the_rule() {
        let text = "a".repeat(64);
        let err = extract_by_regex(&text, &[CATASTROPHIC.into()]).unwrap_err();
        assert!(matches!(err, RuleError::Runtime { .. }), "{err}");
        assert_eq!(err.rule(), CATASTROPHIC);
        assert!(err.to_string().contains("backtracks too much"), "{err}");
    }

    #[test]
    fn backtracking_multiline_ignore_and_trigger_end_with_an_error() {
        let text = format!("keep\n{}\nmore", "a".repeat(64));
        for flags in ["s", "m"] {
            let rule = format!("/(?:a|(?=a)a)*b/{flags}");
            let p = pats(&[rule.as_str()]);
            let err = strip_lines(&text, &p).unwrap_err();
            assert_eq!(err.rule(), rule);
            assert!(triggered_lines(&text, &p).is_err());
        }
    }

    #[test]
    fn backtracking_single_line_rule_is_an_error_not_a_silent_miss() {
        let text = format!("x\n{}", "a".repeat(64));
        let p = pats(&[CATASTROPHIC, "x"]);
        assert!(matching_lines(&text, &p).is_err());
    }

    #[test]
    fn matches_per_rule_are_capped() {
        let text = "a".repeat(MAX_MATCHES_PER_RULE + 1);
        let err = extract_by_regex(&text, &["/a/".into()]).unwrap_err();
        assert!(err.to_string().contains("matches more than"), "{err}");
        let err = matching_lines(&text, &pats(&["/a/s"])).unwrap_err();
        assert_eq!(err.rule(), "/a/s");
        // At the cap itself everything is still found.
        let text = "a".repeat(MAX_MATCHES_PER_RULE);
        assert_eq!(
            extract_by_regex(&text, &["/a/".into()]).unwrap().len(),
            2 * MAX_MATCHES_PER_RULE
        );
    }

    #[test]
    fn huge_compiled_programs_are_refused_at_parse() {
        let err = LinePattern::parse("/\\w{1000}{1000}/").unwrap_err();
        assert!(matches!(err, RuleError::Invalid { .. }), "{err}");
        assert!(extract_by_regex("x", &["/\\w{1000}{1000}/".into()]).is_err());
        // Ordinary bounded repetitions still compile.
        assert!(LinePattern::parse("/\\w{100}/").is_ok());
    }

    #[test]
    fn multiline_match_lines_are_located_by_offset() {
        let text = "l0\nstart\nx\nend\nl4\nstart\nend\n";
        assert_eq!(
            matching_lines(text, &pats(&["/start.*?end/s"])).unwrap(),
            vec![1, 2, 3, 5, 6]
        );
        assert_eq!(
            matching_lines(text, &pats(&["/^l\\d$/m"])).unwrap(),
            vec![0, 4]
        );
    }

    #[test]
    fn checksum_ignores_whitespace_by_default() {
        assert_eq!(checksum("a b\n c", true), checksum("abc", true));
        assert_ne!(checksum("a b\n c", false), checksum("abc", false));
        assert_eq!(checksum("", false), "d41d8cd98f00b204e9800998ecf8427e");
        // Upstream's digest: MD5 of the text with the whitespace taken out.
        assert_eq!(
            checksum(" é\u{a0}x\r\n\t中 文 ", true),
            format!("{:x}", md5::compute("é\u{a0}x中文"))
        );
        // Longer than the hashing buffer, a multiple of it and one byte over.
        for words in [1500, 2048, 2049] {
            let text: String = (0..words).map(|i| format!("w{} \n", i % 7)).collect();
            let stripped: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            assert_eq!(
                checksum(&text, true),
                format!("{:x}", md5::compute(stripped.as_bytes())),
                "{words} words"
            );
        }
        let exact = "ab".repeat(2048);
        assert_eq!(
            checksum(&exact, true),
            format!("{:x}", md5::compute(exact.as_bytes()))
        );
    }
}
