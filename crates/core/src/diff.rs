//! Line and word diffs of snapshot text, as changedetection.io renders them.
//!
//! A diff is produced in two stages, like upstream:
//!
//! 1. [`render_diff`] compares two snapshots line by line and returns a *raw*
//!    diff: plain text in which changed fragments are wrapped in placemarkers
//!    such as [`ADDED_PLACEMARKER_OPEN`] / [`ADDED_PLACEMARKER_CLOSED`]. The
//!    placemarkers survive HTML escaping and Jinja-style templating untouched,
//!    which is why the raw form is what gets stored, templated and passed
//!    around (the API's `no_markup=true` returns it as is).
//! 2. [`apply_format`] (or the lower-level [`replace_placemarkers`]) turns the
//!    placemarkers into the markup of one output format: `(added) ` style
//!    prefixes for text and html, inline-styled `<span>`s for htmlcolor (mail
//!    clients such as Gmail drop `<style>`, `<ins>` and `<del>`), and `**` /
//!    `<del>` for markdown.
//!
//! # Differences from upstream (Python `difflib` + `diff_match_patch`)
//!
//! Lines are aligned with `similar`'s patience algorithm and words with its
//! Myers algorithm, instead of `difflib.SequenceMatcher` (Ratcliff/Obershelp)
//! and diff-match-patch. For ordinary edits (some lines added, removed or
//! changed) the output is byte-identical: in a randomised comparison with
//! upstream (texts of up to 40 lines, random edits, random options) 98-99% of
//! rendered diffs were identical. The rest differ only where several
//! alignments are equally good:
//!
//! * An insertion or deletion inside a run of identical lines (blank lines,
//!   repeated "Read more" links) may be attributed to another line of the
//!   run, e.g. the last of three blank lines instead of the first; context
//!   lines and whether neighbouring changes form one replaced block follow
//!   from that.
//! * A changed word among repeated words or spaces may be marked at a
//!   different repeat, and when two word alignments are equally short one
//!   may keep a shared word (inline markers) where the other keeps only the
//!   shared spaces (whole line shown as changed/into).
//! * `difflib` treats blank lines as junk that never anchors a match; that
//!   is emulated (see `line_opcodes`). Its "autojunk" heuristic (in texts of
//!   200+ lines, lines repeated in more than 1% of them stop anchoring
//!   matches) is not, so on long pages with many repeated lines the grouping
//!   of changes can differ.
//! * diff-match-patch's half-match speed-up can return a non-minimal word
//!   diff on long lines; Myers here always returns a minimal one.
//! * Both word diffs give up after one second (diff-match-patch's default
//!   `Diff_Timeout`) and return a coarser diff, so only a line of tens of
//!   thousands of words can render differently from run to run.
//!
//! Quirks of upstream that *are* reproduced because users see them: lines
//! are right-stripped before comparing; lines are split on every boundary
//! Python's `str.splitlines` knows (`\r`, form feed, U+2028, ...); in word
//! mode the last word of a line never matches the same word elsewhere in the
//! other line (appending " USD" to "Price 10" shows `10` removed and
//! `10 USD` added); unchanged lines are shown in their *previous* spelling
//! even when `case_insensitive`/`ignore_whitespace` made them compare equal.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::time::{Duration, Instant};

use similar::algorithms::{Capture, diff_slices, diff_slices_deadline};
use similar::{Algorithm, DiffTag};

/// Opens a line (or word run) that only exists in the previous snapshot.
pub const REMOVED_PLACEMARKER_OPEN: &str = "@removed_PLACEMARKER_OPEN";
/// Closes [`REMOVED_PLACEMARKER_OPEN`].
pub const REMOVED_PLACEMARKER_CLOSED: &str = "@removed_PLACEMARKER_CLOSED";
/// Opens a line (or word run) that only exists in the current snapshot.
pub const ADDED_PLACEMARKER_OPEN: &str = "@added_PLACEMARKER_OPEN";
/// Closes [`ADDED_PLACEMARKER_OPEN`].
pub const ADDED_PLACEMARKER_CLOSED: &str = "@added_PLACEMARKER_CLOSED";
/// Opens the old side of a replaced line.
pub const CHANGED_PLACEMARKER_OPEN: &str = "@changed_PLACEMARKER_OPEN";
/// Closes [`CHANGED_PLACEMARKER_OPEN`].
pub const CHANGED_PLACEMARKER_CLOSED: &str = "@changed_PLACEMARKER_CLOSED";
/// Opens the new side of a replaced line.
pub const CHANGED_INTO_PLACEMARKER_OPEN: &str = "@changed_into_PLACEMARKER_OPEN";
/// Closes [`CHANGED_INTO_PLACEMARKER_OPEN`].
pub const CHANGED_INTO_PLACEMARKER_CLOSED: &str = "@changed_into_PLACEMARKER_CLOSED";

/// Inline style of removed and "changed" text. Inline because mail clients
/// strip `<style>` blocks.
pub const REMOVED_STYLE: &str = "background-color: #fadad7; color: #b30000;";
/// Inline style of added and "changed into" text.
pub const ADDED_STYLE: &str = "background-color: #eaf2c2; color: #406619;";
/// Darker style the web UI uses for the changed words inside a removed line.
pub const REMOVED_INNER_STYLE: &str = "background-color: #ff867a; color: #111;";
/// Darker style the web UI uses for the changed words inside an added line.
pub const ADDED_INNER_STYLE: &str = "background-color: #b2e841; color: #444;";

/// Which parts of a diff [`render_diff`] emits and how lines are compared.
///
/// [`Default`] matches the defaults of upstream's `render_diff()`, which is
/// what notifications start from. Note that other callers upstream override
/// some of them: the API `difference` endpoint defaults to
/// `include_equal: true` (`changesOnly=false`) and `word_diff: false`, and
/// text-format notifications use `word_diff: false`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffOptions {
    /// Emit unchanged lines too (upstream "diff_full"; API `changesOnly=false`).
    pub include_equal: bool,
    /// Emit lines that only exist in the current snapshot.
    pub include_added: bool,
    /// Emit lines that only exist in the previous snapshot.
    pub include_removed: bool,
    /// Emit replaced lines (old and new side).
    pub include_replaced: bool,
    /// Mark the changed words inside a line replaced one-for-one, instead of
    /// showing the whole old line and the whole new line.
    pub word_diff: bool,
    /// Compare lines with runs of whitespace collapsed to one space
    /// (upstream `ignore_junk`, API `ignoreWhitespace`).
    pub ignore_whitespace: bool,
    /// Compare lines lower-cased. The word diff inside a replaced line stays
    /// case-sensitive, like upstream.
    pub case_insensitive: bool,
    /// Wrap changes in placemarkers. Off gives upstream's `*_clean` tokens
    /// and the text the "only trigger on added/removed" filter checksums.
    pub include_change_type_prefix: bool,
    /// With `include_equal` off, also emit this many unchanged lines before
    /// and after each change (like `grep -C`).
    pub context_lines: usize,
}

impl Default for DiffOptions {
    fn default() -> Self {
        Self {
            include_equal: false,
            include_added: true,
            include_removed: true,
            include_replaced: true,
            word_diff: true,
            ignore_whitespace: false,
            case_insensitive: false,
            include_change_type_prefix: true,
            context_lines: 0,
        }
    }
}

/// Output formats of notifications and of the API `difference` endpoint.
///
/// `"System default"` is a per-watch *reference* to the global setting, not a
/// format, so the caller resolves it before parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DiffFormat {
    /// `(added) `-style prefixes, plain text.
    Text,
    /// `(added) `-style prefixes, HTML-escaped, `<br>` line breaks.
    Html,
    /// Inline-styled `<span>`s, HTML-escaped, `<br>` line breaks.
    HtmlColor,
    /// `**added**` and `<del>removed</del>`, not escaped (see [`apply_format`]).
    Markdown,
}

impl DiffFormat {
    /// The name used in settings, API query strings and upstream's data.
    pub fn as_str(self) -> &'static str {
        match self {
            DiffFormat::Text => "text",
            DiffFormat::Html => "html",
            DiffFormat::HtmlColor => "htmlcolor",
            DiffFormat::Markdown => "markdown",
        }
    }

    /// Whether the output is HTML, and so page text in it must be escaped.
    pub fn is_html(self) -> bool {
        matches!(self, DiffFormat::Html | DiffFormat::HtmlColor)
    }
}

impl fmt::Display for DiffFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A format name that is none of the known ones. The message is the one
/// upstream's API answers with (HTTP 400), so clients see the same text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid format. Must be one of: text, html, htmlcolor, markdown, System default")]
pub struct InvalidFormatError {
    /// The rejected input, kept for logging.
    pub given: String,
}

impl FromStr for DiffFormat {
    type Err = InvalidFormatError;

    /// Case-insensitive because the API lower-cases `?format=` before
    /// validating it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        match lower.as_str() {
            "text" => Ok(DiffFormat::Text),
            "html" => Ok(DiffFormat::Html),
            "htmlcolor" => Ok(DiffFormat::HtmlColor),
            "markdown" => Ok(DiffFormat::Markdown),
            _ => Err(InvalidFormatError {
                given: s.to_string(),
            }),
        }
    }
}

/// Line counts of a diff, e.g. for a "3 added, 1 removed" summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffStats {
    /// Lines only in the current snapshot.
    pub added: usize,
    /// Lines only in the previous snapshot.
    pub removed: usize,
    /// Old-side lines of replaced blocks.
    pub changed: usize,
    /// New-side lines of replaced blocks.
    pub changed_into: usize,
    /// Lines that compare equal.
    pub unchanged: usize,
}

// ---------------------------------------------------------------------------
// Python string semantics
// ---------------------------------------------------------------------------

/// Python's `str.isspace()` (and `\s` in `re`): Unicode `White_Space` plus
/// the ASCII information separators U+001C..U+001F, which Python counts as
/// whitespace and Rust does not. Needed so `rstrip()` and the tokenizer cut
/// exactly where upstream does.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn py_rstrip(s: &str) -> &str {
    s.trim_end_matches(is_py_space)
}

/// Python's `str.splitlines()` followed by `rstrip()` of each line. Upstream
/// splits on more than `\n`/`\r\n` (e.g. `\r`, form feed, U+2028), and a page
/// using those must split into the same lines here.
fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\u{0b}'
                | '\u{0c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if !is_break {
            continue;
        }
        lines.push(py_rstrip(&text[start..i]));
        let mut end = i + c.len_utf8();
        if c == '\r'
            && let Some(&(j, '\n')) = chars.peek()
        {
            chars.next();
            end = j + 1;
        }
        start = end;
    }
    if start < text.len() {
        lines.push(py_rstrip(&text[start..]));
    }
    lines
}

/// `re.sub(r'\s+', ' ', s)`.
fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_space = false;
    for c in s.chars() {
        if is_py_space(c) {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

/// Upstream's `words_and_html` tokenizer: every whitespace character is its
/// own token, HTML tags stay whole (spaces inside them included), everything
/// else splits on whitespace. Tokens are contiguous slices, so joining them
/// gives the input back.
fn tokenize_words_and_html(text: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut start: Option<usize> = None;
    let mut in_tag = false;
    for (i, c) in text.char_indices() {
        if c == '<' {
            if let Some(s) = start {
                tokens.push(&text[s..i]);
            }
            start = Some(i);
            in_tag = true;
        } else if c == '>' && in_tag {
            let s = start.unwrap_or(i);
            tokens.push(&text[s..=i]);
            start = None;
            in_tag = false;
        } else if is_py_space(c) && !in_tag {
            if let Some(s) = start.take() {
                tokens.push(&text[s..i]);
            }
            tokens.push(&text[i..i + c.len_utf8()]);
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        tokens.push(&text[s..]);
    }
    tokens
}

// ---------------------------------------------------------------------------
// Line alignment
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Equal,
    Delete,
    Insert,
    Replace,
}

/// One `difflib`-style opcode: `old` lines of the previous text correspond to
/// `new` lines of the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Opcode {
    tag: Tag,
    old: Range<usize>,
    new: Range<usize>,
}

fn change_tag(old: &Range<usize>, new: &Range<usize>) -> Tag {
    match (old.is_empty(), new.is_empty()) {
        (false, false) => Tag::Replace,
        (true, _) => Tag::Insert,
        (false, true) => Tag::Delete,
    }
}

/// Aligns two line lists into `difflib`-style opcodes, where every gap
/// between two unchanged stretches is exactly one delete, insert or replace.
///
/// With `blank_is_junk`, blank lines behave like junk in `difflib` with
/// upstream's `isjunk=lambda x: x in " \t"` (true for `""`): they never
/// anchor a match, but a match of real lines grows over the identical blank
/// lines right before and after it, and identical blank lines at the very
/// start of both texts match. So a blank line between two changes becomes
/// part of the change, while blank lines next to unchanged text stay
/// unchanged.
fn line_opcodes<K>(old: &[K], new: &[K], blank_is_junk: bool) -> Vec<Opcode>
where
    K: AsRef<str>,
{
    let junk = |k: &K| blank_is_junk && k.as_ref().is_empty();
    // Lines that cannot match are left out before aligning: junk, and lines
    // that do not occur on the other side at all. That is the same alignment
    // problem, but a page that changed almost entirely no longer costs the
    // quadratic worst case of the Myers fallback (seconds for 10k lines).
    let old_set: HashSet<&str> = old.iter().filter(|k| !junk(k)).map(AsRef::as_ref).collect();
    let new_set: HashSet<&str> = new.iter().filter(|k| !junk(k)).map(AsRef::as_ref).collect();
    let old_idx: Vec<usize> = (0..old.len())
        .filter(|&i| !junk(&old[i]) && new_set.contains(old[i].as_ref()))
        .collect();
    let new_idx: Vec<usize> = (0..new.len())
        .filter(|&j| !junk(&new[j]) && old_set.contains(new[j].as_ref()))
        .collect();
    let old_kept: Vec<&str> = old_idx.iter().map(|&i| old[i].as_ref()).collect();
    let new_kept: Vec<&str> = new_idx.iter().map(|&j| new[j].as_ref()).collect();
    let mut capture = Capture::new();
    let Ok(()) = diff_slices(Algorithm::Patience, &mut capture, &old_kept, &new_kept);

    // Matching blocks as (old start, new start, length), in order.
    let mut blocks: Vec<(usize, usize, usize)> = Vec::new();
    for op in capture.ops() {
        if let similar::DiffOp::Equal {
            old_index,
            new_index,
            len,
        } = *op
        {
            for k in 0..len {
                let (i, j) = (old_idx[old_index + k], new_idx[new_index + k]);
                match blocks.last_mut() {
                    Some((bi, bj, n)) if *bi + *n == i && *bj + *n == j => *n += 1,
                    _ => blocks.push((i, j, 1)),
                }
            }
        }
    }

    if blank_is_junk {
        let both_junk = |i: usize, j: usize| junk(&old[i]) && junk(&new[j]);
        let mut grown: Vec<(usize, usize, usize)> = Vec::with_capacity(blocks.len() + 1);
        let mut lead = 0;
        while lead < old.len() && lead < new.len() && both_junk(lead, lead) {
            lead += 1;
        }
        if lead > 0 {
            grown.push((0, 0, lead));
        }
        for (k, &(mut i, mut j, mut n)) in blocks.iter().enumerate() {
            let (lo_i, lo_j) = grown
                .last()
                .map_or((0, 0), |&(pi, pj, pn)| (pi + pn, pj + pn));
            while i > lo_i && j > lo_j && both_junk(i - 1, j - 1) {
                i -= 1;
                j -= 1;
                n += 1;
            }
            let (hi_i, hi_j) = blocks
                .get(k + 1)
                .map_or((old.len(), new.len()), |&(ni, nj, _)| (ni, nj));
            while i + n < hi_i && j + n < hi_j && both_junk(i + n, j + n) {
                n += 1;
            }
            match grown.last_mut() {
                Some((pi, pj, pn)) if *pi + *pn == i && *pj + *pn == j => *pn += n,
                _ => grown.push((i, j, n)),
            }
        }
        blocks = grown;
    }

    let mut ops = Vec::with_capacity(blocks.len() * 2 + 1);
    let (mut i, mut j) = (0, 0);
    for (bi, bj, n) in blocks
        .into_iter()
        .chain(std::iter::once((old.len(), new.len(), 0)))
    {
        if i < bi || j < bj {
            let (o, nw) = (i..bi, j..bj);
            ops.push(Opcode {
                tag: change_tag(&o, &nw),
                old: o,
                new: nw,
            });
        }
        if n > 0 {
            ops.push(Opcode {
                tag: Tag::Equal,
                old: bi..bi + n,
                new: bj..bj + n,
            });
        }
        i = bi + n;
        j = bj + n;
    }
    ops
}

/// Both snapshots split into lines and aligned as `opts` compares them.
/// [`render_diff`], [`has_changes`] and [`diff_stats`] all start from here so
/// they cannot disagree about what changed.
struct Prepared<'a> {
    before: Vec<&'a str>,
    after: Vec<&'a str>,
    ops: Vec<Opcode>,
}

fn prepare<'a>(previous: &'a str, current: &'a str, opts: &DiffOptions) -> Prepared<'a> {
    let before = split_lines(previous);
    let after = split_lines(current);
    let key = |line: &&'a str| -> Cow<'a, str> {
        let mut k: Cow<'a, str> = Cow::Borrowed(line);
        if opts.case_insensitive {
            k = Cow::Owned(k.to_lowercase());
        }
        if opts.ignore_whitespace {
            k = Cow::Owned(collapse_whitespace(&k));
        }
        k
    };
    let old_keys: Vec<Cow<'a, str>> = before.iter().map(key).collect();
    let new_keys: Vec<Cow<'a, str>> = after.iter().map(key).collect();
    let ops = line_opcodes(&old_keys, &new_keys, true);
    Prepared { before, after, ops }
}

// ---------------------------------------------------------------------------
// Word diff inside a replaced line
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seg {
    Equal,
    Delete,
    Insert,
}

/// Time allowed for the word diff of one replaced line.
const WORD_DIFF_TIMEOUT: Duration = Duration::from_secs(1);

/// A token plus whether it is the last of its line. Upstream joins tokens
/// with "\n" and diffs them as diff-match-patch "lines", so the last token
/// (the only one without a trailing "\n") never equals the same word
/// elsewhere; keying on the flag keeps that behaviour.
type Tok<'t> = (&'t str, bool);

fn keyed_tokens<'t>(tokens: &[&'t str]) -> Vec<Tok<'t>> {
    let last = tokens.len().saturating_sub(1);
    tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (*t, i == last))
        .collect()
}

fn common_prefix(a: &[Tok<'_>], b: &[Tok<'_>]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn common_suffix(a: &[Tok<'_>], b: &[Tok<'_>]) -> usize {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

fn push_equal<'t>(out: &mut Vec<(Seg, Vec<Tok<'t>>)>, toks: Vec<Tok<'t>>) {
    if toks.is_empty() {
        return;
    }
    match out.last_mut() {
        Some((Seg::Equal, prev)) => prev.extend(toks),
        _ => out.push((Seg::Equal, toks)),
    }
}

/// One pass of diff-match-patch's merge cleanup: every run of edits between
/// two equalities becomes one delete followed by one insert, with tokens
/// common to both moved out into the equalities.
fn merge_runs<'t>(diffs: Vec<(Seg, Vec<Tok<'t>>)>) -> Vec<(Seg, Vec<Tok<'t>>)> {
    let mut out: Vec<(Seg, Vec<Tok<'t>>)> = Vec::with_capacity(diffs.len());
    let mut deleted: Vec<Tok<'t>> = Vec::new();
    let mut inserted: Vec<Tok<'t>> = Vec::new();
    let mut edits = 0usize;
    let mut iter = diffs.into_iter();
    loop {
        let next = iter.next();
        let at_end = next.is_none();
        let equal = match next {
            Some((Seg::Delete, toks)) => {
                deleted.extend(toks);
                edits += 1;
                continue;
            }
            Some((Seg::Insert, toks)) => {
                inserted.extend(toks);
                edits += 1;
                continue;
            }
            Some((Seg::Equal, toks)) => Some(toks),
            None => None,
        };
        let mut equal = equal.unwrap_or_default();
        if edits > 1 && !deleted.is_empty() && !inserted.is_empty() {
            let p = common_prefix(&deleted, &inserted);
            if p > 0 {
                push_equal(&mut out, inserted.drain(..p).collect());
                deleted.drain(..p);
            }
            let s = common_suffix(&deleted, &inserted);
            if s > 0 {
                let tail: Vec<Tok<'t>> = inserted.split_off(inserted.len() - s);
                deleted.truncate(deleted.len() - s);
                equal.splice(0..0, tail);
            }
        }
        if !deleted.is_empty() {
            out.push((Seg::Delete, std::mem::take(&mut deleted)));
        }
        if !inserted.is_empty() {
            out.push((Seg::Insert, std::mem::take(&mut inserted)));
        }
        edits = 0;
        push_equal(&mut out, equal);
        if at_end {
            return out;
        }
    }
}

/// Second half of diff-match-patch's merge cleanup: a single edit between
/// two equalities slides sideways when that swallows one of them, e.g.
/// `A [+B A+] C` becomes `[+A B+] A C`. This decides where an inserted word
/// sits among repeated words and spaces. Returns whether anything moved.
fn shift_single_edits(diffs: &mut Vec<(Seg, Vec<Tok<'_>>)>) -> bool {
    let mut changed = false;
    let mut i = 1;
    while i + 1 < diffs.len() {
        if diffs[i - 1].0 == Seg::Equal && diffs[i + 1].0 == Seg::Equal {
            let prev_len = diffs[i - 1].1.len();
            let next_len = diffs[i + 1].1.len();
            if diffs[i].1.ends_with(&diffs[i - 1].1) {
                let prev = diffs.remove(i - 1).1;
                // The edit is now at i - 1 and the next equality at i.
                let edit = &mut diffs[i - 1].1;
                edit.truncate(edit.len() - prev_len);
                edit.splice(0..0, prev.iter().copied());
                diffs[i].1.splice(0..0, prev);
                changed = true;
            } else if diffs[i].1.starts_with(&diffs[i + 1].1) {
                let next = diffs.remove(i + 1).1;
                diffs[i - 1].1.extend(next.iter().copied());
                let edit = &mut diffs[i].1;
                edit.drain(..next_len);
                edit.extend(next);
                changed = true;
            }
        }
        i += 1;
    }
    changed
}

/// Word-level diff of two lines as runs of text, in the shape
/// diff-match-patch gives upstream: each gap between unchanged runs is one
/// delete run followed by one insert run.
fn word_segments(before: &str, after: &str) -> Vec<(Seg, String)> {
    let old_tokens = tokenize_words_and_html(before);
    let new_tokens = tokenize_words_and_html(if after.is_empty() { " " } else { after });
    let old_keys = keyed_tokens(&old_tokens);
    let new_keys = keyed_tokens(&new_tokens);
    // A deadline, like diff-match-patch's default `Diff_Timeout` upstream,
    // so a line of tens of thousands of words cannot stall a check.
    let deadline = Instant::now().checked_add(WORD_DIFF_TIMEOUT);
    let mut capture = Capture::new();
    let Ok(()) = diff_slices_deadline(
        Algorithm::Myers,
        &mut capture,
        &old_keys,
        &new_keys,
        deadline,
    );

    let mut diffs: Vec<(Seg, Vec<Tok<'_>>)> = Vec::new();
    for op in capture.ops() {
        let (tag, o, n) = op.as_tag_tuple();
        if matches!(tag, DiffTag::Equal) {
            diffs.push((Seg::Equal, old_keys[o].to_vec()));
            continue;
        }
        if !o.is_empty() {
            diffs.push((Seg::Delete, old_keys[o].to_vec()));
        }
        if !n.is_empty() {
            diffs.push((Seg::Insert, new_keys[n].to_vec()));
        }
    }
    loop {
        diffs = merge_runs(diffs);
        if !shift_single_edits(&mut diffs) {
            break;
        }
    }
    diffs
        .into_iter()
        .map(|(seg, toks)| (seg, toks.iter().map(|(t, _)| *t).collect()))
        .collect()
}

/// `open + text.rstrip() + close + trailing whitespace`: markers never enclose
/// trailing whitespace, so markdown and highlighted spans stay tight.
fn wrap_rstripped(out: &mut String, text: &str, open: &str, close: &str) {
    let content = py_rstrip(text);
    out.push_str(open);
    out.push_str(content);
    out.push_str(close);
    out.push_str(&text[content.len()..]);
}

/// Renders one line replaced by one line with the changed words marked.
/// `None` means the lines differ only in whitespace while whitespace is
/// ignored, so upstream drops the line entirely.
fn inline_word_diff(before: &str, after: &str, opts: &DiffOptions) -> Option<String> {
    let (before_n, after_n);
    let (before, after) = if opts.ignore_whitespace {
        before_n = collapse_whitespace(before);
        after_n = collapse_whitespace(after);
        (before_n.as_str(), after_n.as_str())
    } else {
        (before, after)
    };
    let segments = word_segments(before, after);
    let has_changes = segments.iter().any(|(s, _)| *s != Seg::Equal);
    if opts.ignore_whitespace && !has_changes {
        return None;
    }
    let prefix = opts.include_change_type_prefix;
    let mut out = String::new();

    // With no unchanged word left (only shared spaces), per-word markers
    // would be noise: show the whole old line, then the whole new line.
    let whole_line_replaced = !segments
        .iter()
        .any(|(s, t)| *s == Seg::Equal && !t.trim_matches(is_py_space).is_empty());
    if whole_line_replaced {
        let mut removed: Option<String> = None;
        let mut added: Option<String> = None;
        for (seg, text) in &segments {
            if *seg != Seg::Insert {
                removed.get_or_insert_with(String::new).push_str(text);
            }
            if *seg != Seg::Delete {
                added.get_or_insert_with(String::new).push_str(text);
            }
        }
        if let Some(removed) = &removed {
            if prefix {
                wrap_rstripped(
                    &mut out,
                    removed,
                    CHANGED_PLACEMARKER_OPEN,
                    CHANGED_PLACEMARKER_CLOSED,
                );
            } else {
                out.push_str(removed);
            }
        }
        if let Some(added) = &added {
            if removed.is_some() {
                out.push('\n');
            }
            if prefix {
                wrap_rstripped(
                    &mut out,
                    added,
                    CHANGED_INTO_PLACEMARKER_OPEN,
                    CHANGED_INTO_PLACEMARKER_CLOSED,
                );
            } else {
                out.push_str(added);
            }
        }
        return Some(out);
    }

    for (seg, text) in &segments {
        let (open, close) = match seg {
            Seg::Equal => {
                out.push_str(text);
                continue;
            }
            Seg::Insert => (ADDED_PLACEMARKER_OPEN, ADDED_PLACEMARKER_CLOSED),
            Seg::Delete => (REMOVED_PLACEMARKER_OPEN, REMOVED_PLACEMARKER_CLOSED),
        };
        if !prefix {
            out.push_str(text);
        } else if py_rstrip(text).is_empty() {
            // A whitespace-only change is kept as plain whitespace.
            out.push_str(text);
        } else {
            wrap_rstripped(&mut out, text, open, close);
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

fn wrap_line(line: &str, open: &str, close: &str) -> String {
    let mut s = String::with_capacity(open.len() + line.len() + close.len());
    s.push_str(open);
    s.push_str(line);
    s.push_str(close);
    s
}

/// Renders the raw diff (with placemarkers) of two snapshots, lines joined by
/// `"\n"`. An empty string means nothing of the enabled kinds changed.
pub fn render_diff(previous: &str, current: &str, opts: &DiffOptions) -> String {
    let Prepared { before, after, ops } = prepare(previous, current, opts);
    let prefix = opts.include_change_type_prefix;

    // Unchanged lines to show as context, indexed by previous-line number.
    // Context is taken around every change, even of a kind that is not
    // shown, as upstream does.
    let mut context = vec![false; before.len()];
    if opts.context_lines > 0 && !opts.include_equal {
        let n = opts.context_lines;
        for (i, op) in ops.iter().enumerate() {
            if op.tag == Tag::Equal {
                continue;
            }
            if let Some(prev) = i.checked_sub(1).and_then(|p| ops.get(p))
                && prev.tag == Tag::Equal
            {
                let from = prev.old.start.max(prev.old.end.saturating_sub(n));
                context[from..prev.old.end].fill(true);
            }
            if let Some(next) = ops.get(i + 1)
                && next.tag == Tag::Equal
            {
                let to = next.old.end.min(next.old.start + n);
                context[next.old.start..to].fill(true);
            }
        }
    }

    let mut out: Vec<Cow<'_, str>> = Vec::new();
    for op in &ops {
        let old_lines = &before[op.old.clone()];
        let new_lines = &after[op.new.clone()];
        match op.tag {
            Tag::Equal => {
                if opts.include_equal {
                    out.extend(old_lines.iter().map(|l| Cow::Borrowed(*l)));
                } else if opts.context_lines > 0 {
                    out.extend(
                        op.old
                            .clone()
                            .filter(|&i| context[i])
                            .map(|i| Cow::Borrowed(before[i])),
                    );
                }
            }
            Tag::Delete if opts.include_removed => {
                out.extend(old_lines.iter().map(|l| {
                    if prefix {
                        Cow::Owned(wrap_line(
                            l,
                            REMOVED_PLACEMARKER_OPEN,
                            REMOVED_PLACEMARKER_CLOSED,
                        ))
                    } else {
                        Cow::Borrowed(*l)
                    }
                }));
            }
            Tag::Insert if opts.include_added => {
                out.extend(new_lines.iter().map(|l| {
                    if prefix {
                        Cow::Owned(wrap_line(
                            l,
                            ADDED_PLACEMARKER_OPEN,
                            ADDED_PLACEMARKER_CLOSED,
                        ))
                    } else {
                        Cow::Borrowed(*l)
                    }
                }));
            }
            Tag::Replace if opts.include_replaced => {
                if opts.word_diff && old_lines.len() == 1 && new_lines.len() == 1 {
                    if let Some(line) = inline_word_diff(old_lines[0], new_lines[0], opts) {
                        out.push(Cow::Owned(line));
                    }
                } else if prefix {
                    out.extend(old_lines.iter().map(|l| {
                        Cow::Owned(wrap_line(
                            l,
                            CHANGED_PLACEMARKER_OPEN,
                            CHANGED_PLACEMARKER_CLOSED,
                        ))
                    }));
                    out.extend(new_lines.iter().map(|l| {
                        Cow::Owned(wrap_line(
                            l,
                            CHANGED_INTO_PLACEMARKER_OPEN,
                            CHANGED_INTO_PLACEMARKER_CLOSED,
                        ))
                    }));
                } else {
                    out.extend(old_lines.iter().map(|l| Cow::Borrowed(*l)));
                    out.extend(new_lines.iter().map(|l| Cow::Borrowed(*l)));
                }
            }
            Tag::Delete | Tag::Insert | Tag::Replace => {}
        }
    }
    out.join("\n")
}

/// Whether `current` differs from `previous` by a change of a kind enabled in
/// `opts` (`include_added` / `include_removed` / `include_replaced`), with
/// `case_insensitive` and `ignore_whitespace` applied. This backs the
/// per-watch "only trigger on added / removed / replaced lines" filters.
///
/// Upstream decides this by checking whether the clean rendered diff
/// (`include_change_type_prefix: false`) is an empty string. That differs
/// from this function only when the sole change is a single blank line,
/// which renders as `""`: upstream then reports no change, this reports one.
pub fn has_changes(previous: &str, current: &str, opts: &DiffOptions) -> bool {
    prepare(previous, current, opts)
        .ops
        .iter()
        .any(|op| match op.tag {
            Tag::Equal => false,
            Tag::Delete => opts.include_removed,
            Tag::Insert => opts.include_added,
            Tag::Replace => opts.include_replaced,
        })
}

/// Counts the lines of each kind, comparing lines as `opts` says (only
/// `case_insensitive` and `ignore_whitespace` matter here).
pub fn diff_stats(previous: &str, current: &str, opts: &DiffOptions) -> DiffStats {
    let mut stats = DiffStats::default();
    for op in prepare(previous, current, opts).ops {
        match op.tag {
            Tag::Equal => stats.unchanged += op.old.len(),
            Tag::Delete => stats.removed += op.old.len(),
            Tag::Insert => stats.added += op.new.len(),
            Tag::Replace => {
                stats.changed += op.old.len();
                stats.changed_into += op.new.len();
            }
        }
    }
    stats
}

/// `difflib`'s hunk range: `start,len`, just `start` for one line, and the
/// line *before* the hunk for an empty range.
fn hunk_range(range: &Range<usize>) -> String {
    let len = range.len();
    match len {
        1 => format!("{}", range.start + 1),
        0 => format!("{},0", range.start),
        _ => format!("{},{}", range.start + 1, len),
    }
}

/// `difflib.SequenceMatcher.get_grouped_opcodes`: hunks of changes with up
/// to `n` unchanged lines around them.
fn group_opcodes(mut ops: Vec<Opcode>, n: usize) -> Vec<Vec<Opcode>> {
    if let Some(first) = ops.first_mut()
        && first.tag == Tag::Equal
    {
        first.old.start = first.old.start.max(first.old.end.saturating_sub(n));
        first.new.start = first.new.start.max(first.new.end.saturating_sub(n));
    }
    if let Some(last) = ops.last_mut()
        && last.tag == Tag::Equal
    {
        last.old.end = last.old.end.min(last.old.start + n);
        last.new.end = last.new.end.min(last.new.start + n);
    }
    let mut groups = Vec::new();
    let mut group: Vec<Opcode> = Vec::new();
    for mut op in ops {
        if op.tag == Tag::Equal && op.old.len() > 2 * n {
            group.push(Opcode {
                tag: Tag::Equal,
                old: op.old.start..op.old.end.min(op.old.start + n),
                new: op.new.start..op.new.end.min(op.new.start + n),
            });
            groups.push(std::mem::take(&mut group));
            op.old.start = op.old.start.max(op.old.end.saturating_sub(n));
            op.new.start = op.new.start.max(op.new.end.saturating_sub(n));
        }
        group.push(op);
    }
    if !(group.is_empty() || (group.len() == 1 && group[0].tag == Tag::Equal)) {
        groups.push(group);
    }
    groups
}

/// A unified diff (`---`/`+++` header, `@@` hunks with `context` lines of
/// context) of the right-stripped lines of both snapshots, lines joined by
/// `"\n"` without a trailing newline. Empty when nothing changed.
///
/// Upstream's `{{diff_patch}}` joins `difflib.unified_diff` output whose
/// header lines still carry their own `"\n"`, so there every `---`, `+++` and
/// `@@` line is followed by an empty line. That artefact breaks `patch` and
/// is not reproduced; everything else (range format, order of `-` before
/// `+` lines) follows `difflib`. Labels are used verbatim; upstream passes
/// none, which gives `"--- "` and `"+++ "`.
pub fn unified_patch(
    previous: &str,
    current: &str,
    from_label: &str,
    to_label: &str,
    context: usize,
) -> String {
    let before = split_lines(previous);
    let after = split_lines(current);
    let groups = group_opcodes(line_opcodes(&before, &after, false), context);
    if groups.is_empty() {
        return String::new();
    }
    let mut lines = vec![format!("--- {from_label}"), format!("+++ {to_label}")];
    for group in groups {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        lines.push(format!(
            "@@ -{} +{} @@",
            hunk_range(&(first.old.start..last.old.end)),
            hunk_range(&(first.new.start..last.new.end)),
        ));
        for op in &group {
            if op.tag == Tag::Equal {
                lines.extend(before[op.old.clone()].iter().map(|l| format!(" {l}")));
                continue;
            }
            lines.extend(before[op.old.clone()].iter().map(|l| format!("-{l}")));
            lines.extend(after[op.new.clone()].iter().map(|l| format!("+{l}")));
        }
    }
    lines.join("\n")
}

/// Collects the text between `open` and its nearest `close` on the same line,
/// for each of the two marker pairs, in order of appearance. Mirrors the
/// non-DOTALL regex upstream uses, so a marker whose close is on a later line
/// is skipped.
fn extract_between(raw: &str, pairs: [(&str, &str); 2]) -> String {
    let mut found: Vec<&str> = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        let next = pairs
            .iter()
            .filter_map(|(open, close)| raw[pos..].find(open).map(|i| (pos + i, *open, *close)))
            .min_by_key(|(i, _, _)| *i);
        let Some((at, open, close)) = next else {
            break;
        };
        let body_start = at + open.len();
        let line_end = raw[body_start..]
            .find('\n')
            .map_or(raw.len(), |i| body_start + i);
        match raw[body_start..line_end].find(close) {
            Some(i) => {
                found.push(&raw[body_start..body_start + i]);
                pos = body_start + i + close.len();
            }
            None => pos = body_start,
        }
    }
    found.join("\n")
}

/// The old values of a word diff, one per line (upstream's
/// `{{diff_changed_from}}`), e.g. `"$99.99"` out of a changed price line.
/// Needs a raw diff rendered with placemarkers, normally with `word_diff`.
pub fn changed_from(raw: &str) -> String {
    extract_between(
        raw,
        [
            (REMOVED_PLACEMARKER_OPEN, REMOVED_PLACEMARKER_CLOSED),
            (CHANGED_PLACEMARKER_OPEN, CHANGED_PLACEMARKER_CLOSED),
        ],
    )
}

/// The new values of a word diff, one per line (upstream's
/// `{{diff_changed_to}}`).
pub fn changed_to(raw: &str) -> String {
    extract_between(
        raw,
        [
            (ADDED_PLACEMARKER_OPEN, ADDED_PLACEMARKER_CLOSED),
            (
                CHANGED_INTO_PLACEMARKER_OPEN,
                CHANGED_INTO_PLACEMARKER_CLOSED,
            ),
        ],
    )
}

/// Escapes text for HTML element content and attribute values, with the
/// same entities as Python's markupsafe so escaped output matches upstream.
/// Placemarkers contain none of these characters and pass through intact.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Markdown replacement of one marker pair: whitespace just inside the
/// markers is moved outside, because `** text**` is not bold in markdown.
fn markdown_pair(text: &str, open: &str, close: &str, md_open: &str, md_close: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(open) {
        let body_start = at + open.len();
        let Some(close_at) = rest[body_start..].find(close) else {
            break;
        };
        let body = &rest[body_start..body_start + close_at];
        let inner = body.trim_start_matches(is_py_space);
        let leading = &body[..body.len() - inner.len()];
        let content = py_rstrip(inner);
        let trailing = &inner[content.len()..];
        out.push_str(&rest[..at]);
        out.push_str(leading);
        out.push_str(md_open);
        out.push_str(content);
        out.push_str(md_close);
        out.push_str(trailing);
        rest = &rest[body_start + close_at + close.len()..];
    }
    out.push_str(rest);
    out
}

/// Replaces placemarkers with the markup of `format` and does nothing else:
/// no escaping, no line breaks. For text that already went through a
/// template, as upstream's notification handler does. Replacements run in
/// upstream's order so odd input (stray or nested markers) ends up the same.
pub fn replace_placemarkers(text: &str, format: DiffFormat) -> String {
    match format {
        DiffFormat::Text | DiffFormat::Html => text
            .replace(REMOVED_PLACEMARKER_OPEN, "(removed) ")
            .replace(REMOVED_PLACEMARKER_CLOSED, "")
            .replace(ADDED_PLACEMARKER_OPEN, "(added) ")
            .replace(ADDED_PLACEMARKER_CLOSED, "")
            .replace(CHANGED_PLACEMARKER_OPEN, "(changed) ")
            .replace(CHANGED_PLACEMARKER_CLOSED, "")
            .replace(CHANGED_INTO_PLACEMARKER_OPEN, "(into) ")
            .replace(CHANGED_INTO_PLACEMARKER_CLOSED, ""),
        DiffFormat::HtmlColor => text
            .replace(
                REMOVED_PLACEMARKER_OPEN,
                &format!(
                    r#"<span style="{REMOVED_STYLE}" role="deletion" aria-label="Removed text" title="Removed text">"#
                ),
            )
            .replace(REMOVED_PLACEMARKER_CLOSED, "</span>")
            .replace(
                ADDED_PLACEMARKER_OPEN,
                &format!(
                    r#"<span style="{ADDED_STYLE}" role="insertion" aria-label="Added text" title="Added text">"#
                ),
            )
            .replace(ADDED_PLACEMARKER_CLOSED, "</span>")
            .replace(
                CHANGED_PLACEMARKER_OPEN,
                &format!(
                    r#"<span style="{REMOVED_STYLE}" role="note" aria-label="Changed text" title="Changed text">"#
                ),
            )
            .replace(CHANGED_PLACEMARKER_CLOSED, "</span>")
            .replace(
                CHANGED_INTO_PLACEMARKER_OPEN,
                &format!(
                    r#"<span style="{ADDED_STYLE}" role="note" aria-label="Changed into" title="Changed into">"#
                ),
            )
            .replace(CHANGED_INTO_PLACEMARKER_CLOSED, "</span>"),
        DiffFormat::Markdown => {
            let t = markdown_pair(
                text,
                REMOVED_PLACEMARKER_OPEN,
                REMOVED_PLACEMARKER_CLOSED,
                "<del>",
                "</del>",
            );
            let t = markdown_pair(
                &t,
                ADDED_PLACEMARKER_OPEN,
                ADDED_PLACEMARKER_CLOSED,
                "**",
                "**",
            );
            let t = markdown_pair(
                &t,
                CHANGED_PLACEMARKER_OPEN,
                CHANGED_PLACEMARKER_CLOSED,
                "<del>",
                "</del>",
            );
            markdown_pair(
                &t,
                CHANGED_INTO_PLACEMARKER_OPEN,
                CHANGED_INTO_PLACEMARKER_CLOSED,
                "**",
                "**",
            )
        }
    }
}

/// `\r\n`, `\r` and `\n` each become `<br>\r\n`, as the API does for HTML
/// formats so the markup still reads line by line.
fn html_line_breaks(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("<br>\r\n");
            }
            '\n' => out.push_str("<br>\r\n"),
            _ => out.push(c),
        }
    }
    out
}

/// Turns a raw diff into the body the API `difference` endpoint returns for
/// `format`.
///
/// HTML formats escape the page text first (it is attacker-controlled), then
/// insert markup, then turn line breaks into `<br>\r\n`. Upstream's endpoint
/// does not escape (its notifications do), and for `html` it converts line
/// breaks twice, giving `<br><br>\r\n`; both are deliberately not copied.
///
/// Markdown is *not* escaped, as upstream: the API serves it as text/plain
/// and escaping would show `&lt;` to readers. Whoever renders it to HTML
/// (markdown notifications) must escape or sanitise the page text first,
/// since the `<del>` markers rely on inline HTML being allowed.
///
/// Notifications differ in two more details that belong to the caller:
/// they use `<br>\n`, and in HTML formats replace double spaces with
/// `&nbsp;&nbsp;` before the markers are inserted.
pub fn apply_format(raw: &str, format: DiffFormat) -> String {
    match format {
        DiffFormat::Text | DiffFormat::Markdown => replace_placemarkers(raw, format),
        DiffFormat::Html | DiffFormat::HtmlColor => {
            html_line_breaks(&replace_placemarkers(&escape_html(raw), format))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> DiffOptions {
        DiffOptions::default()
    }

    fn line_opts() -> DiffOptions {
        DiffOptions {
            word_diff: false,
            ..DiffOptions::default()
        }
    }

    const RO: &str = REMOVED_PLACEMARKER_OPEN;
    const RC: &str = REMOVED_PLACEMARKER_CLOSED;
    const AO: &str = ADDED_PLACEMARKER_OPEN;
    const AC: &str = ADDED_PLACEMARKER_CLOSED;
    const CO: &str = CHANGED_PLACEMARKER_OPEN;
    const CC: &str = CHANGED_PLACEMARKER_CLOSED;
    const IO: &str = CHANGED_INTO_PLACEMARKER_OPEN;
    const IC: &str = CHANGED_INTO_PLACEMARKER_CLOSED;

    #[test]
    fn added_line() {
        let raw = render_diff("a\nb", "a\nnew\nb", &opts());
        assert_eq!(raw, format!("{AO}new{AC}"));
        assert_eq!(apply_format(&raw, DiffFormat::Text), "(added) new");
    }

    #[test]
    fn removed_line() {
        let raw = render_diff("a\nold\nb", "a\nb", &opts());
        assert_eq!(raw, format!("{RO}old{RC}"));
        assert_eq!(apply_format(&raw, DiffFormat::Text), "(removed) old");
    }

    #[test]
    fn replaced_lines_changed_then_into() {
        let raw = render_diff("a\nx1\nx2\nb", "a\ny1\nb", &line_opts());
        assert_eq!(raw, format!("{CO}x1{CC}\n{CO}x2{CC}\n{IO}y1{IC}"));
        assert_eq!(
            apply_format(&raw, DiffFormat::Text),
            "(changed) x1\n(changed) x2\n(into) y1"
        );
    }

    #[test]
    fn include_equal_toggle() {
        let o = DiffOptions {
            include_equal: true,
            ..line_opts()
        };
        assert_eq!(
            render_diff("a\nb\nc", "a\nB\nc", &o),
            format!("a\n{CO}b{CC}\n{IO}B{IC}\nc")
        );
        assert_eq!(
            render_diff("a\nb\nc", "a\nB\nc", &line_opts()),
            format!("{CO}b{CC}\n{IO}B{IC}")
        );
    }

    #[test]
    fn kind_toggles_off() {
        let prev = "keep\ngone\nsame\nold value";
        let cur = "keep\nsame\nnew value\nfresh";
        let all = render_diff(prev, cur, &line_opts());
        assert!(all.contains("gone") && all.contains("fresh") && all.contains("old value"));

        let no_removed = DiffOptions {
            include_removed: false,
            ..line_opts()
        };
        let r = render_diff(prev, cur, &no_removed);
        assert!(!r.contains("gone"), "{r}");
        assert!(r.contains("fresh") || r.contains("new value"));

        let only_added = DiffOptions {
            include_removed: false,
            include_replaced: false,
            ..line_opts()
        };
        let r = render_diff("a\nb", "a\nb\nc", &only_added);
        assert_eq!(r, format!("{AO}c{AC}"));
        assert_eq!(render_diff("a\nb", "a\nB", &only_added), "");

        let nothing = DiffOptions {
            include_added: false,
            include_removed: false,
            include_replaced: false,
            ..line_opts()
        };
        assert_eq!(render_diff(prev, cur, &nothing), "");
        assert!(!has_changes(prev, cur, &nothing));
        assert!(has_changes("a", "a\nb", &only_added));
        assert!(!has_changes("a\nb", "a", &only_added));
        assert!(!has_changes("a\nb", "a\nB", &only_added));
    }

    #[test]
    fn no_prefix_is_clean() {
        let o = DiffOptions {
            include_change_type_prefix: false,
            ..opts()
        };
        assert_eq!(render_diff("73", "100", &o), "73\n100");
        assert_eq!(
            render_diff("the price is 50 dollars", "the price is 75 dollars", &o),
            "the price is 5075 dollars"
        );
    }

    #[test]
    fn word_diff_inside_replaced_line() {
        let raw = render_diff(
            "The quick brown fox jumps over the lazy dog",
            "The fast brown cat jumps over the lazy dog",
            &opts(),
        );
        assert_eq!(
            raw,
            format!(
                "The {RO}quick{RC}{AO}fast{AC} brown {RO}fox{RC}{AO}cat{AC} jumps over the lazy dog"
            )
        );
        assert_eq!(
            render_diff("110 points by user", "111 points by user", &opts()),
            format!("{RO}110{RC}{AO}111{AC} points by user")
        );
    }

    #[test]
    fn word_diff_whole_line_replaced() {
        assert_eq!(
            render_diff("73", "100", &opts()),
            format!("{CO}73{CC}\n{IO}100{IC}")
        );
        // Only the spaces are shared: whole line, not per word.
        assert_eq!(
            render_diff("Price: 10 USD", "Cost: 12 EUR", &opts()),
            format!("{CO}Price: 10 USD{CC}\n{IO}Cost: 12 EUR{IC}")
        );
        // A line replaced by a blank one: upstream diffs against " ".
        assert_eq!(
            render_diff("x\nfoo\ny", "x\n\ny", &opts()),
            format!("{CO}foo{CC}\n{IO}{IC} ")
        );
    }

    #[test]
    fn word_diff_last_token_quirk() {
        assert_eq!(
            render_diff("Price 10", "Price 10 USD", &opts()),
            format!("Price {RO}10{RC}{AO}10 USD{AC}")
        );
    }

    #[test]
    fn changed_from_to() {
        let raw = render_diff(
            "Widget costs $99.99 per month",
            "Widget costs $109.99 per month",
            &opts(),
        );
        assert_eq!(changed_from(&raw), "$99.99");
        assert_eq!(changed_to(&raw), "$109.99");

        let raw = render_diff(
            "Price $99\nunchanged\nTax $5",
            "Price $149\nunchanged\nTax $12",
            &opts(),
        );
        assert_eq!(changed_from(&raw), "$99\n$5");
        assert_eq!(changed_to(&raw), "$149\n$12");

        let raw = render_diff("quick brown fox jumps", "slow brown fox hops", &opts());
        assert_eq!(changed_from(&raw), "quick\njumps");
        assert_eq!(changed_to(&raw), "slow\nhops");

        let raw = render_diff("$99", "$109", &opts());
        assert_eq!(changed_from(&raw), "$99");
        assert_eq!(changed_to(&raw), "$109");

        assert_eq!(changed_from("no markers"), "");
        // An open marker without a close on its line is skipped.
        assert_eq!(changed_from(&format!("{RO}a\nb{RC} {RO}c{RC}")), "c");
    }

    #[test]
    fn whitespace_only_change() {
        let ws = DiffOptions {
            ignore_whitespace: true,
            ..opts()
        };
        assert_ne!(render_diff("Hello  World", "Hello World", &line_opts()), "");
        assert_eq!(render_diff("Hello  World", "Hello World", &ws), "");
        assert_eq!(render_diff("a\tb\tc", "a    b    c", &ws), "");
        assert!(!has_changes("Hello  World", "Hello World", &ws));
        // A real change is still found, and whitespace is shown collapsed.
        assert_eq!(
            render_diff("Value:  100  points", "Value: 200 points", &ws),
            format!("Value: {RO}100{RC}{AO}200{AC} points")
        );
        // Trailing whitespace never counts: lines are right-stripped.
        assert_eq!(render_diff("a  \nb", "a\nb\t", &opts()), "");
    }

    #[test]
    fn case_insensitive() {
        let ci = DiffOptions {
            case_insensitive: true,
            ..opts()
        };
        assert_eq!(
            render_diff("The Quick Brown Fox", "The QUICK brown FOX", &ci),
            ""
        );
        assert_ne!(
            render_diff("The Quick Brown Fox", "The QUICK brown FOX", &opts()),
            ""
        );
        let raw = render_diff(
            "Hello World\nGoodbye WORLD to all my friends and family",
            "HELLO world\nGoodbye Friend to all my friends and family",
            &ci,
        );
        assert_eq!(
            raw,
            format!("Goodbye {RO}WORLD{RC}{AO}Friend{AC} to all my friends and family")
        );
        // Equal lines keep their previous spelling.
        let full = DiffOptions {
            include_equal: true,
            ..ci
        };
        assert_eq!(render_diff("Hello", "HELLO", &full), "Hello");
    }

    #[test]
    fn context_lines() {
        let before = "Line 1\nLine 2\nLine 3\nOld line\nLine 5\nLine 6\nLine 7\nAnother old\nLine 9\nLine 10";
        let after = "Line 1\nLine 2\nLine 3\nNew line\nLine 5\nLine 6\nLine 7\nAnother new\nLine 9\nLine 10";
        let c1 = DiffOptions {
            context_lines: 1,
            ..opts()
        };
        assert_eq!(
            render_diff(before, after, &c1),
            format!(
                "Line 3\n{RO}Old{RC}{AO}New{AC} line\nLine 5\nLine 7\n\
                 Another {RO}old{RC}{AO}new{AC}\nLine 9"
            )
        );
        let c2 = DiffOptions {
            context_lines: 2,
            ..opts()
        };
        let r = render_diff(before, after, &c2);
        assert!(r.starts_with("Line 2\nLine 3\n"), "{r}");
        assert!(r.ends_with("Line 9\nLine 10"), "{r}");
        assert!(!r.contains("Line 1\n"), "{r}");
    }

    #[test]
    fn blank_lines_between_changes_fold_into_change() {
        // difflib never anchors on blank lines: the blank line is part of
        // the replaced block, not an unchanged line between two changes.
        let o = DiffOptions {
            include_equal: true,
            ..line_opts()
        };
        assert_eq!(
            render_diff("a\nx\n\ny\nb", "a\np\n\nq\nb", &o),
            format!("a\n{CO}x{CC}\n{CO}{CC}\n{CO}y{CC}\n{IO}p{IC}\n{IO}{IC}\n{IO}q{IC}\nb")
        );
        // Leading blank lines still match.
        assert_eq!(
            render_diff("\nx", "\ny", &o),
            format!("\n{CO}x{CC}\n{IO}y{IC}")
        );
    }

    #[test]
    fn python_splitlines() {
        assert_eq!(split_lines(""), Vec::<&str>::new());
        assert_eq!(split_lines("\n"), vec![""]);
        assert_eq!(
            split_lines("a\r\nb\rc\u{2028}d\u{0c}e\n"),
            vec!["a", "b", "c", "d", "e"]
        );
        assert_eq!(split_lines("a \u{1f}\nb\u{a0}"), vec!["a", "b"]);
        assert_eq!(
            tokenize_words_and_html("<a href='x y'>Hi  there</a>"),
            vec!["<a href='x y'>", "Hi", " ", " ", "there", "</a>"]
        );
    }

    #[test]
    fn stats() {
        let s = diff_stats("a\nb\nc\nd", "a\nB\nc\nnew\nd\ne", &opts());
        assert_eq!(
            s,
            DiffStats {
                added: 2,
                removed: 0,
                changed: 1,
                changed_into: 1,
                unchanged: 3
            }
        );
    }

    #[test]
    fn unified_patch_header_and_hunks() {
        let prev = (1..=12)
            .map(|i| format!("line {i}"))
            .collect::<Vec<_>>()
            .join("\n");
        let cur = prev
            .replace("line 2\n", "line two\n")
            .replace("line 11\n", "");
        let patch = unified_patch(&prev, &cur, "previous", "current", 1);
        assert_eq!(
            patch,
            "--- previous\n+++ current\n\
             @@ -1,3 +1,3 @@\n line 1\n-line 2\n+line two\n line 3\n\
             @@ -10,3 +10,2 @@\n line 10\n-line 11\n line 12"
        );
        assert_eq!(unified_patch("same", "same", "a", "b", 3), "");
        assert_eq!(
            unified_patch("", "new", "", "", 3),
            "--- \n+++ \n@@ -0,0 +1 @@\n+new"
        );
        assert_eq!(
            unified_patch("a\nb", "a\nc", "", "", 3),
            "--- \n+++ \n@@ -1,2 +1,2 @@\n a\n-b\n+c"
        );
    }

    #[test]
    fn html_escapes_page_text() {
        let raw = render_diff("safe", "safe\n<script>alert('x\"&')</script>", &opts());
        let html = apply_format(&raw, DiffFormat::Html);
        assert_eq!(
            html,
            "(added) &lt;script&gt;alert(&#39;x&#34;&amp;&#39;)&lt;/script&gt;"
        );
        let color = apply_format(&raw, DiffFormat::HtmlColor);
        assert!(!color.contains("<script>"));
        assert!(color.starts_with(&format!(
            r#"<span style="{ADDED_STYLE}" role="insertion" aria-label="Added text" title="Added text">&lt;script&gt;"#
        )));
        assert!(color.ends_with("</span>"));
    }

    #[test]
    fn html_line_breaks_and_formats() {
        let raw = format!("a\n{RO}b{RC}\r\n{AO}c{AC}");
        assert_eq!(
            apply_format(&raw, DiffFormat::Html),
            "a<br>\r\n(removed) b<br>\r\n(added) c"
        );
        assert_eq!(
            apply_format(
                &format!("{AO} x  {AC}|{RO}y{RC}|{CO}{CC}"),
                DiffFormat::Markdown
            ),
            " **x**  |<del>y</del>|<del></del>"
        );
        assert_eq!(
            apply_format(&format!("{CO}old{CC}\n{IO}new{IC}"), DiffFormat::HtmlColor),
            format!(
                r#"<span style="{REMOVED_STYLE}" role="note" aria-label="Changed text" title="Changed text">old</span><br>{}<span style="{ADDED_STYLE}" role="note" aria-label="Changed into" title="Changed into">new</span>"#,
                "\r\n"
            )
        );
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        /// Lines over a tiny alphabet, so that repeats, blank lines and
        /// whitespace-only differences are common.
        fn lines() -> impl Strategy<Value = Vec<String>> {
            prop::collection::vec("[ab<>& ]{0,5}", 0..12)
        }

        fn text(lines: &[String]) -> String {
            lines.iter().map(|l| format!("{l}\n")).collect()
        }

        fn strip(line: &str, open: &str, close: &str) -> Option<String> {
            line.strip_prefix(open)
                .and_then(|l| l.strip_suffix(close))
                .map(str::to_string)
        }

        proptest! {
            /// With everything shown, the raw diff is a complete, ordered
            /// account of both texts: reading only the previous side gives
            /// back the previous lines, reading only the current side gives
            /// back the current lines.
            #[test]
            fn full_diff_accounts_for_every_line(before in lines(), after in lines()) {
                let opts = DiffOptions {
                    include_equal: true,
                    word_diff: false,
                    ..DiffOptions::default()
                };
                let raw = render_diff(&text(&before), &text(&after), &opts);
                let expect_old: Vec<String> =
                    before.iter().map(|l| l.trim_end().to_string()).collect();
                let expect_new: Vec<String> =
                    after.iter().map(|l| l.trim_end().to_string()).collect();
                let mut old_side = Vec::new();
                let mut new_side = Vec::new();
                if !(before.is_empty() && after.is_empty()) {
                    for line in raw.split('\n') {
                        if let Some(l) = strip(line, REMOVED_PLACEMARKER_OPEN, REMOVED_PLACEMARKER_CLOSED) {
                            old_side.push(l);
                        } else if let Some(l) = strip(line, CHANGED_PLACEMARKER_OPEN, CHANGED_PLACEMARKER_CLOSED) {
                            old_side.push(l);
                        } else if let Some(l) = strip(line, ADDED_PLACEMARKER_OPEN, ADDED_PLACEMARKER_CLOSED) {
                            new_side.push(l);
                        } else if let Some(l) = strip(line, CHANGED_INTO_PLACEMARKER_OPEN, CHANGED_INTO_PLACEMARKER_CLOSED) {
                            new_side.push(l);
                        } else {
                            prop_assert!(!line.contains("PLACEMARKER"), "stray marker in {line:?}");
                            old_side.push(line.to_string());
                            new_side.push(line.to_string());
                        }
                    }
                } else {
                    prop_assert_eq!(&raw, "");
                }
                prop_assert_eq!(old_side, expect_old);
                prop_assert_eq!(new_side, expect_new);
            }

            /// Stats and the raw diff agree on how many lines changed.
            #[test]
            fn stats_match_line_counts(before in lines(), after in lines()) {
                let opts = DiffOptions { word_diff: false, ..DiffOptions::default() };
                let s = diff_stats(&text(&before), &text(&after), &opts);
                prop_assert_eq!(s.unchanged + s.removed + s.changed, before.len());
                prop_assert_eq!(s.unchanged + s.added + s.changed_into, after.len());
                let raw = render_diff(&text(&before), &text(&after), &opts);
                prop_assert_eq!(raw.is_empty(), s.added + s.removed + s.changed + s.changed_into == 0);
            }

            /// `has_changes` agrees with whether a marked-up diff of the same
            /// kinds is non-empty, for every combination of toggles.
            #[test]
            fn has_changes_matches_render(
                before in lines(),
                after in lines(),
                flags in prop::array::uniform6(any::<bool>()),
            ) {
                let opts = DiffOptions {
                    include_added: flags[0],
                    include_removed: flags[1],
                    include_replaced: flags[2],
                    word_diff: flags[3],
                    ignore_whitespace: flags[4],
                    case_insensitive: flags[5],
                    ..DiffOptions::default()
                };
                let (b, a) = (text(&before), text(&after));
                prop_assert_eq!(has_changes(&b, &a, &opts), !render_diff(&b, &a, &opts).is_empty());
            }

            /// Whatever the page text, HTML output contains no markup but
            /// the markup this module inserts.
            #[test]
            fn html_output_has_no_page_markup(
                before in "[a<>&\"' \n]{0,40}",
                after in "[a<>&\"' \n]{0,40}",
                word_diff in any::<bool>(),
            ) {
                let opts = DiffOptions { include_equal: true, word_diff, ..DiffOptions::default() };
                let raw = render_diff(&before, &after, &opts);
                for format in [DiffFormat::Html, DiffFormat::HtmlColor] {
                    let mut out = apply_format(&raw, format);
                    for style in [REMOVED_STYLE, ADDED_STYLE] {
                        for (role, label) in [
                            ("deletion", "Removed text"),
                            ("insertion", "Added text"),
                            ("note", "Changed text"),
                            ("note", "Changed into"),
                        ] {
                            out = out.replace(
                                &format!(r#"<span style="{style}" role="{role}" aria-label="{label}" title="{label}">"#),
                                "",
                            );
                        }
                    }
                    let out = out.replace("</span>", "").replace("<br>\r\n", "");
                    prop_assert!(
                        !out.contains(['<', '>', '"', '\'']),
                        "unescaped markup in {:?}", out
                    );
                }
            }
        }
    }

    #[test]
    fn format_names() {
        assert_eq!("htmlcolor".parse::<DiffFormat>(), Ok(DiffFormat::HtmlColor));
        assert_eq!("HTML".parse::<DiffFormat>(), Ok(DiffFormat::Html));
        let err = "System default".parse::<DiffFormat>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid format. Must be one of: text, html, htmlcolor, markdown, System default"
        );
        for f in [
            DiffFormat::Text,
            DiffFormat::Html,
            DiffFormat::HtmlColor,
            DiffFormat::Markdown,
        ] {
            assert_eq!(f.to_string().parse::<DiffFormat>(), Ok(f));
        }
    }
}
