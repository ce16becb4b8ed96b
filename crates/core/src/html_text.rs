//! HTML to plain text, the form in which page content is stored and diffed.
//!
//! Upstream changedetection.io feeds the page (or the include-filter matches,
//! each followed by `<br>`) through inscriptis `get_text()`, after stripping
//! `head`, `script`, `style`, `noscript`, `svg`, `math`, `canvas`, `iframe`
//! and `template`, and after removing a hiding `style` from `<body>` (SPAs
//! hide the body until their scripts run). Users' trigger, ignore and
//! extract rules are written against that text, so this module keeps its
//! shape wherever that shape is stable:
//!
//! * `p`, `h1`–`h6` and `figure` are separated from their neighbours by one
//!   blank line; other blocks just start a new line.
//! * `<br>` ends the line; a `<br>` on an already empty line yields a blank
//!   line, which is what makes `<span>a</span><br><span>b</span><br>` read
//!   `a\nb`.
//! * A `<span>` boundary counts as whitespace (inscriptis' "relaxed" CSS
//!   profile), so `<span>$</span><span>9</span>` reads `$ 9`.
//! * List items get inscriptis' bullets: `  * ` for the first `ul` level,
//!   then `+`, `o`, `-`; ` 1. ` for `ol`. Each level indents by four.
//! * With `render_anchor_tag_content`, links read `[text](href)`.
//!
//! Where inscriptis' output is noisy or its rules are plainly accidental,
//! this module deliberately differs (every item is a diff-stability or
//! readability choice):
//!
//! * No two-space indentation per nested `div`: it makes every line of a
//!   page change when a site adds one wrapper element.
//! * Table columns are not padded to a common width. Padding means one
//!   longer cell rewrites every row of the table in the diff. Cells of a
//!   row are joined by two spaces (inscriptis' column gap), and an empty
//!   cell still counts, so cells `a`, (empty), `c` read `a    c`. A row in which some
//!   cell spans several lines (layout tables, as on Hacker News) is written
//!   cell after cell, one line each, instead of side by side.
//! * Never more than one blank line in a row outside `<pre>`; no leading or
//!   trailing blank lines and no trailing newline; no trailing spaces.
//! * Hidden content is dropped: the `hidden` attribute, inline
//!   `display:none` and `visibility:hidden|collapse` (also with
//!   `!important`, which inscriptis misses), `<input>`, closed `<dialog>`.
//!   `aria-hidden="true"` content is kept: sites put visible text such as
//!   prices and icons' labels under it, so dropping it would lose what a
//!   person sees. Stylesheet rules are not evaluated (nor does inscriptis).
//! * `<hr>`, `<dt>`, `<dd>` end the line (inscriptis runs them into the
//!   neighbouring text); `<option>` and `<button>` are word boundaries like
//!   spans, so a size picker reads `S M L`, not `SML`.
//! * Whitespace is kept in everything inside `<pre>` (and inline
//!   `white-space: pre*`); inscriptis loses it inside `<pre><code>`, which
//!   is how most sites mark up code.
//! * An empty `<li>` writes no lone bullet.
//! * `<ol start>` is honoured.
//! * Text is decoded once; inscriptis decodes entities a second time, so it
//!   turns `&amp;lt;` into `<` where this gives `&lt;`.
//!
//! Shared with upstream: filter matches that are bare `<tr>`/`<td>` lose
//! their table when parsed on their own, so their cells run together.
//!
//! Why a walker over `scraper`'s DOM rather than the `html2text` crate:
//! `html2text` (0.17) writes markdown-ish decorations even in its plain
//! mode, draws table borders or pads columns, ignores the `hidden`
//! attribute and puts links in footnotes; bending it to the rules above
//! needs a custom decorator plus post-processing and still leaves table
//! layout out of reach. The walker is one iterative pass over the tree
//! (no recursion, so deeply nested markup cannot overflow the stack), and
//! output is only appended, so a 1 MB page costs the parse plus a linear
//! walk.

use std::cell::RefCell;
use std::collections::HashMap;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use html5ever::tree_builder::{TreeBuilder, TreeBuilderOpts, TreeSink};
use html5ever::{LocalName, TokenizerResult};
use scraper::node::Element;
use scraper::{ElementRef, Html, HtmlTreeSink, Node};

/// Limits from upstream's `extract_title`.
const MAX_TITLE_CHARS: usize = 2000;

/// Cells of tables nested deeper than this are written as plain blocks.
/// Cell text is buffered and copied once per table level, so the cap keeps
/// pathological nesting linear.
const MAX_TABLE_NESTING: usize = 8;

/// Inscriptis' bullets per `ul` nesting level.
const UL_BULLETS: [&str; 4] = ["* ", "+ ", "o ", "- "];

/// Indentation of one list level, as in inscriptis.
const LIST_PADDING: usize = 4;

/// Lists nested deeper than this indent no further. Indentation is written on every line, so
/// without a cap a page of a few hundred nested `<ul>` followed by many `<li>` would expand each
/// few input bytes into kilobytes of spaces. Real lists rarely nest past four levels.
const MAX_LIST_PADDING: usize = 8 * LIST_PADDING;

/// Open elements beyond which start tags are dropped while parsing (their text is kept, flattened
/// into the deepest kept element).
///
/// html5ever's tree builder scans its stack of open elements for many start tags (every `<div>`
/// looks for a `<p>` to close), so parsing is quadratic in nesting depth: 100,000 nested `<div>`
/// took ~57 s. Capping the depth it ever sees makes each scan O(cap) and parsing linear. Upstream
/// parses with libxml2, whose HTML parser gives up at depth 256; real pages stay far below either.
pub const MAX_OPEN_ELEMENTS: usize = 512;

/// Gap between the cells of a table row, as in inscriptis.
const CELL_GAP: &str = "  ";

const HTML_NS: &str = "http://www.w3.org/1999/xhtml";

/// Rendering switches that mirror upstream's global settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TextOptions {
    /// Upstream's `render_anchor_tag_content`: lets a watch notice changed
    /// link targets, at the cost of noisier text.
    pub render_anchor_tag_content: bool,
    /// Upstream's `is_rss`: feed items carry their headline in `<title>`,
    /// which in a page is metadata and skipped, so here it is written as
    /// a heading instead (upstream rewrites it to `<h1>`).
    pub is_rss: bool,
}

/// Converts a page, or concatenated filter matches, to the text that is
/// stored and compared between checks.
pub fn html_to_text(html: &str, opts: &TextOptions) -> String {
    let doc = parse_document(html);
    render(&doc, opts)
}

/// The text of a page already parsed with [`parse_document`] (and perhaps pruned).
pub fn render_document(doc: &Html, opts: &TextOptions) -> String {
    render(doc, opts)
}

/// [`Html::parse_document`] with nesting capped at [`MAX_OPEN_ELEMENTS`]: every HTML parse of
/// fetched content goes through here so that a hostile page costs linear time.
pub fn parse_document(html: &str) -> Html {
    let builder = TreeBuilder::new(
        HtmlTreeSink::new(Html::new_document()),
        TreeBuilderOpts::default(),
    );
    let tokenizer = Tokenizer::new(DepthLimit::new(builder), TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    // `Script` and `EncodingIndicator` only pause the tokenizer so a browser could run the
    // script or switch decoders; the text is already decoded, so carry on.
    while !matches!(tokenizer.feed(&input), TokenizerResult::Done) {}
    tokenizer.end();
    tokenizer.sink.inner.sink.finish()
}

/// Builds a document from tags, text and comments that are already told apart, for markup
/// that exists as another parser's tree (libxml2's, for XPath filters): feeding html5ever's
/// tree builder (behind the same depth cap as [`parse_document`]) the tokens its tokenizer
/// would read from that tree's serialisation gives the same document as writing the markup
/// out and parsing it, without the writing and the tokenizing. Which trees tokenize as
/// their tokens say is the caller's to judge (raw-text elements read their markup as text).
pub struct TokenFeed {
    sink: DepthLimit<TreeBuilder<ego_tree::NodeId, HtmlTreeSink>>,
}

impl std::fmt::Debug for TokenFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenFeed").finish_non_exhaustive()
    }
}

impl Default for TokenFeed {
    fn default() -> Self {
        TokenFeed {
            sink: DepthLimit::new(TreeBuilder::new(
                HtmlTreeSink::new(Html::new_document()),
                TreeBuilderOpts::default(),
            )),
        }
    }
}

impl TokenFeed {
    /// A start tag; `name` and the attributes' names are lowercase, as the tokenizer makes them.
    pub fn start<'a>(&self, name: &str, attrs: impl IntoIterator<Item = (&'a str, String)>) {
        let attrs = attrs
            .into_iter()
            .map(|(key, value)| html5ever::Attribute {
                name: html5ever::QualName::new(None, html5ever::ns!(), LocalName::from(key)),
                value: StrTendril::from(value),
            })
            .collect();
        self.tag(TagKind::StartTag, name, attrs);
    }

    /// An end tag.
    pub fn end(&self, name: &str) {
        self.tag(TagKind::EndTag, name, Vec::new());
    }

    fn tag(&self, kind: TagKind, name: &str, attrs: Vec<html5ever::Attribute>) {
        let tag = Tag {
            kind,
            name: LocalName::from(name),
            self_closing: false,
            attrs,
            had_duplicate_attributes: false,
        };
        // What the builder asks of the tokenizer (raw text, script pauses) does not apply:
        // there is no markup left to read.
        let _ = self.sink.process_token(Token::TagToken(tag), 0);
    }

    /// Character data, as decoded text.
    pub fn text(&self, text: &str) {
        if !text.is_empty() {
            let _ = self
                .sink
                .process_token(Token::CharacterTokens(StrTendril::from_slice(text)), 0);
        }
    }

    /// A comment.
    pub fn comment(&self, text: &str) {
        let _ = self
            .sink
            .process_token(Token::CommentToken(StrTendril::from_slice(text)), 0);
    }

    /// The document, as [`parse_document`] gives it once the markup has ended.
    pub fn finish(self) -> Html {
        let _ = self.sink.process_token(Token::EOFToken, 0);
        self.sink.end();
        self.sink.inner.sink.finish()
    }
}

/// Where a start tag lands, for the parts of the HTML parsing rules that depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    Html,
    /// Inside `<svg>` or `<math>`: self-closing tags are honoured, raw-text tags are not raw.
    Foreign,
    /// `<foreignObject>`, `<desc>`, `<title>` in SVG and MathML text elements: HTML inside.
    IntegrationPoint,
}

/// A token filter between html5ever's tokenizer and tree builder that keeps the builder's stack
/// of open elements at most about [`MAX_OPEN_ELEMENTS`] deep.
///
/// The builder's stack is private, so this keeps its own model of it: start tags push, end tags
/// pop through the nearest element of that name, and the implied closes that keep sloppy pages
/// flat (`<li>` after `<li>`, `<p>` before a block, table cells, headings, links) are applied.
/// The model only has to be close: on pages shallower than the cap it never drops anything, and
/// where the builder nests deeper than the model it does so by a small constant factor (implied
/// `<tbody><tr>`). Every model operation looks at most at the capped stack, so it is linear too.
#[derive(Debug)]
struct DepthLimit<S> {
    inner: S,
    model: RefCell<DepthModel>,
}

#[derive(Debug, Default)]
struct DepthModel {
    open: Vec<(LocalName, Context)>,
    /// How many of each name `open` holds, so the searches for an element to close (which run
    /// for most start tags) cost nothing when there is none.
    counts: HashMap<LocalName, usize>,
    /// Start tags dropped and not yet matched by an end tag, per name: their end tags are
    /// dropped too, so they cannot close a kept ancestor of the same name.
    dropped: HashMap<LocalName, usize>,
}

impl<S> DepthLimit<S> {
    fn new(inner: S) -> Self {
        DepthLimit {
            inner,
            model: RefCell::new(DepthModel::default()),
        }
    }
}

impl<S: TokenSink> TokenSink for DepthLimit<S> {
    type Handle = S::Handle;

    fn process_token(&self, token: Token, line_number: u64) -> TokenSinkResult<S::Handle> {
        if let Token::TagToken(tag) = &token
            && !self.model.borrow_mut().admit(tag)
        {
            return TokenSinkResult::Continue;
        }
        self.inner.process_token(token, line_number)
    }

    fn end(&self) {
        self.inner.end();
    }

    fn adjusted_current_node_present_but_not_in_html_namespace(&self) -> bool {
        self.inner
            .adjusted_current_node_present_but_not_in_html_namespace()
    }
}

impl DepthModel {
    fn context(&self) -> Context {
        match self.open.last() {
            Some((_, Context::Foreign)) => Context::Foreign,
            _ => Context::Html,
        }
    }

    fn push(&mut self, name: LocalName, context: Context) {
        *self.counts.entry(name.clone()).or_default() += 1;
        self.open.push((name, context));
    }

    fn pop(&mut self) {
        if let Some((name, _)) = self.open.pop()
            && let Some(n) = self.counts.get_mut(&name)
        {
            *n = n.saturating_sub(1);
        }
    }

    fn remove(&mut self, index: usize) {
        if index < self.open.len() {
            let (name, _) = self.open.remove(index);
            if let Some(n) = self.counts.get_mut(&name) {
                *n = n.saturating_sub(1);
            }
        }
    }

    /// Index of the topmost `name`, searching down from the top while `through` allows.
    fn find(&self, name: &str, through: impl Fn(&str) -> bool) -> Option<usize> {
        if self
            .counts
            .get(&LocalName::from(name))
            .is_none_or(|n| *n == 0)
        {
            return None;
        }
        for (i, (open, _)) in self.open.iter().enumerate().rev() {
            if &**open == name {
                return Some(i);
            }
            if !through(open) {
                return None;
            }
        }
        None
    }

    fn close_from(&mut self, index: Option<usize>) {
        if let Some(i) = index {
            while self.open.len() > i {
                self.pop();
            }
        }
    }

    /// Whether the tag goes on to the tree builder.
    fn admit(&mut self, tag: &Tag) -> bool {
        let name: &str = &tag.name;
        if tag.kind == TagKind::EndTag {
            if let Some(n) = self.dropped.get_mut(&tag.name).filter(|n| **n > 0) {
                *n -= 1;
                return false;
            }
            let found = self.find(name, |_| true);
            self.close_from(found);
            return true;
        }

        let context = self.context();
        if context == Context::Foreign && breaks_out_of_foreign_content(tag) {
            while self.context() == Context::Foreign {
                self.pop();
            }
        }
        let context = self.context();
        if context == Context::Html {
            if is_void(name)
                || is_raw_text(name)
                || matches!(name, "html" | "head" | "body" | "frameset" | "frame")
            {
                return true;
            }
            self.implied_closes(name);
        } else if tag.self_closing {
            return true;
        }

        if self.open.len() >= MAX_OPEN_ELEMENTS {
            *self.dropped.entry(tag.name.clone()).or_default() += 1;
            return false;
        }
        let pushed = match (context, name) {
            (_, "svg" | "math") => Context::Foreign,
            (
                Context::Foreign,
                "foreignObject" | "foreignobject" | "desc" | "title" | "annotation-xml" | "mi"
                | "mo" | "mn" | "ms" | "mtext",
            ) => Context::IntegrationPoint,
            (Context::Foreign, _) => Context::Foreign,
            _ => Context::Html,
        };
        self.push(tag.name.clone(), pushed);
        true
    }

    /// The HTML rules that close open elements when a start tag arrives, as far as they keep
    /// ordinary sloppy markup from looking deep.
    fn implied_closes(&mut self, name: &str) {
        if closes_p(name) {
            let p = self.find("p", |n| !is_button_scope_boundary(n));
            self.close_from(p);
        }
        match name {
            "li" => {
                let li = self.find("li", |n| {
                    !is_special(n) || matches!(n, "address" | "div" | "p")
                });
                self.close_from(li);
            }
            "dd" | "dt" => {
                let through = |n: &str| !is_special(n) || matches!(n, "address" | "div" | "p");
                let d = self.find("dd", through).max(self.find("dt", through));
                self.close_from(d);
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6"
                if self.open.last().is_some_and(|(n, _)| is_heading(n)) =>
            {
                self.pop();
            }
            "option" | "optgroup" => {
                if self.open.last().is_some_and(|(n, _)| &**n == "option") {
                    self.pop();
                }
                if name == "optgroup" && self.open.last().is_some_and(|(n, _)| &**n == "optgroup") {
                    self.pop();
                }
            }
            "td" | "th" => {
                let in_row = |n: &str| !matches!(n, "tr" | "table");
                let cell = self.find("td", in_row).max(self.find("th", in_row));
                self.close_from(cell);
            }
            "tr" => {
                let row = self.find("tr", |n| n != "table");
                self.close_from(row);
            }
            "thead" | "tbody" | "tfoot" | "caption" | "colgroup" | "table" => {
                // A table part, or a table directly inside a table, closes everything up to the
                // table it belongs to; a table inside a cell nests.
                let own_table = |n: &str| !matches!(n, "table" | "td" | "th" | "caption");
                let part = [
                    "thead", "tbody", "tfoot", "tr", "td", "th", "caption", "colgroup",
                ]
                .iter()
                .filter_map(|p| self.find(p, own_table))
                .min();
                self.close_from(part);
                if name == "table" {
                    let table = self.find("table", |_| false);
                    self.close_from(table);
                }
            }
            "select" | "button" | "form" => {
                let open = self.find(name, |n| !is_button_scope_boundary(n));
                self.close_from(open);
            }
            "a" | "nobr" => {
                // The adoption agency takes the old link out of the stack but keeps what was
                // opened inside it.
                if let Some(i) = self.find(name, |n| !is_button_scope_boundary(n)) {
                    self.remove(i);
                }
            }
            _ => {}
        }
    }
}

fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "basefont"
            | "bgsound"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "image"
            | "img"
            | "input"
            | "keygen"
            | "link"
            | "meta"
            | "param"
            | "source"
            | "track"
            | "wbr"
    )
}

/// Elements whose content the tokenizer reads as text: they cannot nest, and the tree builder
/// must see them to switch the tokenizer's state.
fn is_raw_text(name: &str) -> bool {
    matches!(
        name,
        "script"
            | "style"
            | "title"
            | "textarea"
            | "xmp"
            | "iframe"
            | "noembed"
            | "noframes"
            | "noscript"
            | "plaintext"
    )
}

fn is_heading(name: &str) -> bool {
    matches!(name, "h1" | "h2" | "h3" | "h4" | "h5" | "h6")
}

/// Start tags that close an open `<p>` first.
fn closes_p(name: &str) -> bool {
    is_heading(name)
        || matches!(
            name,
            "address"
                | "article"
                | "aside"
                | "blockquote"
                | "center"
                | "details"
                | "dialog"
                | "dir"
                | "div"
                | "dl"
                | "fieldset"
                | "figcaption"
                | "figure"
                | "footer"
                | "header"
                | "hgroup"
                | "main"
                | "menu"
                | "nav"
                | "ol"
                | "p"
                | "search"
                | "section"
                | "summary"
                | "ul"
                | "pre"
                | "listing"
                | "form"
                | "table"
                | "hr"
                | "xmp"
                | "dd"
                | "dt"
                | "li"
        )
}

fn is_button_scope_boundary(name: &str) -> bool {
    matches!(
        name,
        "applet"
            | "caption"
            | "html"
            | "table"
            | "td"
            | "th"
            | "marquee"
            | "object"
            | "template"
            | "button"
    )
}

/// The HTML "special" category, which stops the search for an open `<li>`, `<dd>` or `<dt>`.
fn is_special(name: &str) -> bool {
    is_button_scope_boundary(name)
        || closes_p(name)
        || matches!(
            name,
            "area"
                | "base"
                | "basefont"
                | "bgsound"
                | "body"
                | "br"
                | "col"
                | "colgroup"
                | "embed"
                | "frame"
                | "frameset"
                | "head"
                | "iframe"
                | "img"
                | "input"
                | "link"
                | "meta"
                | "noembed"
                | "noframes"
                | "noscript"
                | "param"
                | "script"
                | "select"
                | "source"
                | "style"
                | "tbody"
                | "textarea"
                | "tfoot"
                | "thead"
                | "title"
                | "tr"
                | "track"
                | "wbr"
        )
}

/// HTML start tags that end `<svg>`/`<math>` content (the parser pops back to HTML).
fn breaks_out_of_foreign_content(tag: &Tag) -> bool {
    let name: &str = &tag.name;
    match name {
        "font" => tag
            .attrs
            .iter()
            .any(|a| matches!(&*a.name.local, "color" | "face" | "size")),
        _ => matches!(
            name,
            "b" | "big"
                | "blockquote"
                | "body"
                | "br"
                | "center"
                | "code"
                | "dd"
                | "div"
                | "dl"
                | "dt"
                | "em"
                | "embed"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "h5"
                | "h6"
                | "head"
                | "hr"
                | "i"
                | "img"
                | "li"
                | "listing"
                | "menu"
                | "meta"
                | "nobr"
                | "ol"
                | "p"
                | "pre"
                | "ruby"
                | "s"
                | "small"
                | "span"
                | "strong"
                | "strike"
                | "sub"
                | "sup"
                | "table"
                | "tt"
                | "u"
                | "ul"
                | "var"
        ),
    }
}

/// The page `<title>`, entity-decoded and whitespace-collapsed, at most
/// 2000 characters; `None` when absent or blank.
pub fn page_title(html: &str) -> Option<String> {
    // Parsing a 1 MB page costs ~100 ms; the title needs only the few bytes around `<title>`.
    // A full parse only when an inline SVG comes first: its `<title>` is a tooltip, and telling
    // the two apart needs the tree.
    let lower = html.to_ascii_lowercase();
    let start = lower.find("<title")?;
    let end = lower[start..]
        .find("</title")
        .map(|e| start + e)
        .unwrap_or(html.len());
    if lower[..start].contains("<svg") {
        return title_of(&parse_document(html));
    }
    title_of(&parse_document(&html[start..end]))
}

/// Both results from a single parse, for callers that need the two.
pub fn html_to_text_with_title(html: &str, opts: &TextOptions) -> (String, Option<String>) {
    let doc = parse_document(html);
    (render(&doc, opts), title_of(&doc))
}

fn title_of(doc: &Html) -> Option<String> {
    // The first HTML-namespace title wins; an SVG `<title>` is a tooltip,
    // not the page name.
    let title = doc.tree.root().descendants().find(|n| {
        n.value()
            .as_element()
            .is_some_and(|el| el.name() == "title" && in_html_ns(el))
    })?;
    let mut out = String::new();
    for node in title.descendants() {
        if let Node::Text(t) = node.value() {
            for word in t.split(char::is_whitespace).filter(|w| !w.is_empty()) {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(word);
            }
        }
    }
    if out.chars().count() > MAX_TITLE_CHARS {
        out = out.chars().take(MAX_TITLE_CHARS).collect();
        out.truncate(out.trim_end().len());
    }
    (!out.is_empty()).then_some(out)
}

pub(crate) fn in_html_ns(el: &Element) -> bool {
    &*el.name.ns == HTML_NS
}

/// Text of one block context: the page, or one table cell while its row is
/// being collected.
#[derive(Debug, Default)]
struct LineBuf {
    out: String,
    /// Something was written on the current line.
    line_open: bool,
    /// Newlines owed before the next content; 2 means a blank line.
    newlines: usize,
    /// Collapsible whitespace owed before the next word on this line.
    space: bool,
    /// Where the current line's separators and its text begin, so a line
    /// that trims to nothing can be taken back.
    sep_start: usize,
    line_start: usize,
    owed_before_line: usize,
    /// Indentation of open lists.
    padding: usize,
    /// Bullet of the current list item until its first line takes it.
    bullet: Option<String>,
}

impl LineBuf {
    fn start_line(&mut self) {
        if self.line_open {
            return;
        }
        self.sep_start = self.out.len();
        self.owed_before_line = self.newlines;
        if !self.out.is_empty() {
            for _ in 0..self.newlines.max(1) {
                self.out.push('\n');
            }
        }
        self.line_start = self.out.len();
        let padding = self.padding.min(MAX_LIST_PADDING);
        match self.bullet.take() {
            Some(bullet) => {
                push_spaces(&mut self.out, padding.saturating_sub(bullet.len()));
                self.out.push_str(&bullet);
            }
            None => push_spaces(&mut self.out, padding),
        }
        self.line_open = true;
        self.newlines = 0;
        self.space = false;
    }

    fn end_line(&mut self) {
        if !self.line_open {
            return;
        }
        let kept = self.out[self.line_start..]
            .trim_end_matches([' ', '\t'])
            .len();
        self.out.truncate(self.line_start + kept);
        self.line_open = false;
        self.space = false;
        if kept == 0 {
            // Only `<pre>` whitespace was written: the line is empty, which
            // counts as one more newline rather than as content.
            self.out.truncate(self.sep_start);
            self.newlines = self.owed_before_line + 1;
        } else {
            self.newlines = 1;
        }
    }

    fn blank_line(&mut self) {
        self.newlines = self.newlines.max(2);
    }

    fn soft_space(&mut self) {
        if self.line_open {
            self.space = true;
        }
    }

    /// Writes a run without whitespace.
    fn word(&mut self, w: &str) {
        self.start_line();
        if self.space {
            self.out.push(' ');
            self.space = false;
        }
        self.out.push_str(w);
    }

    fn text_normal(&mut self, s: &str) {
        for (i, piece) in s.split(char::is_whitespace).enumerate() {
            if i > 0 {
                self.soft_space();
            }
            if !piece.is_empty() {
                self.word(piece);
            }
        }
    }

    fn text_pre(&mut self, s: &str) {
        for (i, line) in s.split('\n').enumerate() {
            if i > 0 {
                self.hard_newline();
            }
            if line.is_empty() {
                continue;
            }
            self.start_line();
            if self.space {
                self.out.push(' ');
                self.space = false;
            }
            for c in line.chars() {
                match c {
                    '\r' => {}
                    ' ' | '\t' => self.out.push(c),
                    c if c.is_whitespace() => self.out.push(' '),
                    c => self.out.push(c),
                }
            }
        }
    }

    fn hard_newline(&mut self) {
        if self.line_open {
            self.end_line();
        } else {
            self.newlines += 1;
        }
    }

    fn br(&mut self) {
        if self.line_open {
            self.end_line();
        } else {
            self.blank_line();
        }
    }

    /// Writes text that belongs to what came before (a link's `](href)`),
    /// even when that content ended with a line break, and keeps any owed
    /// space for whatever follows.
    fn glue(&mut self, s: &str) {
        if self.line_open {
            let space = self.space;
            self.space = false;
            self.out.push_str(s);
            self.space = space;
        } else if !self.out.is_empty() {
            self.out.push_str(s);
        } else {
            self.word(s);
        }
    }

    fn whole_line(&mut self, s: &str) {
        self.end_line();
        self.start_line();
        self.out.push_str(s);
        self.end_line();
    }

    fn finish(mut self) -> String {
        self.end_line();
        self.out
    }
}

fn push_spaces(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Inline,
    Line,
    /// Blank line before and after.
    Spaced,
}

#[derive(Debug)]
enum Action<'a> {
    None,
    /// Word boundary on both sides.
    Boundary,
    List,
    Item,
    Anchor(&'a str),
    Quote,
    Row,
    Cell,
}

#[derive(Debug)]
struct Frame<'a> {
    node: ElementRef<'a>,
    block: Block,
    action: Action<'a>,
    restore_pre: Option<bool>,
}

#[derive(Debug)]
enum ListKind {
    Bulleted(&'static str),
    Numbered(i64),
}

#[derive(Debug)]
struct Row {
    /// Number of buffers open when the row began; its cells sit one deeper.
    depth: usize,
    cells: Vec<String>,
}

#[derive(Debug)]
struct Renderer<'o> {
    opts: &'o TextOptions,
    /// `bufs[0]` is the page; one more per table cell being collected.
    bufs: Vec<LineBuf>,
    lists: Vec<ListKind>,
    rows: Vec<Row>,
    pre: bool,
    /// A link's `[` waits for its first text so that leading whitespace
    /// and line breaks land outside the brackets.
    bracket_pending: bool,
}

fn render(doc: &Html, opts: &TextOptions) -> String {
    let mut r = Renderer::new(opts);
    if let Some(first) = doc.tree.root().first_child() {
        r.walk(first, false);
    }
    r.finish()
}

/// One element picked out of a parsed page, to be rendered as if its markup had been cut out
/// and parsed on its own (see [`render_selection`]).
#[derive(Clone, Copy, Debug)]
pub struct Pick<'a> {
    pub element: ElementRef<'a>,
    /// A line break before it: the `<br>` that separates two matches of one filter.
    pub break_before: bool,
}

/// The text of `picks`, rendered in place in the page they were selected from: what
/// [`html_to_text`] gives for their outer HTML concatenated (with a `<br>` where
/// `break_before`), without serialising and parsing them again. Which elements render the
/// same in place as cut out is the caller's to judge (`filters::select_in_place`).
pub fn render_selection(picks: &[Pick<'_>], opts: &TextOptions) -> String {
    let mut r = Renderer::new(opts);
    for pick in picks {
        if pick.break_before {
            r.top().br();
        }
        r.walk(*pick.element, true);
    }
    r.finish()
}

impl<'o> Renderer<'o> {
    fn new(opts: &'o TextOptions) -> Self {
        Renderer {
            opts,
            bufs: vec![LineBuf::default()],
            lists: Vec::new(),
            rows: Vec::new(),
            pre: false,
            bracket_pending: false,
        }
    }

    /// Renders `first` and what follows it in document order: its whole subtree, then (unless
    /// `subtree_only`) its following siblings and theirs, as a depth-first walk without
    /// recursion (a hostile page's depth costs no stack).
    fn walk<'a>(&mut self, first: ego_tree::NodeRef<'a, Node>, subtree_only: bool) {
        let mut stack: Vec<Frame<'a>> = Vec::new();
        let mut next = Some(first);
        while let Some(node) = next {
            match node.value() {
                Node::Text(t) => self.text(t),
                Node::Element(_) => {
                    if let Some(frame) = ElementRef::wrap(node).and_then(|el| self.open(el)) {
                        match node.first_child() {
                            Some(child) => {
                                stack.push(frame);
                                next = Some(child);
                                continue;
                            }
                            None => self.close(frame),
                        }
                    }
                }
                _ => {}
            }
            let mut cur = node;
            next = loop {
                if subtree_only && stack.is_empty() {
                    // Back at `first`: its siblings are not part of the selection.
                    break None;
                }
                if let Some(sibling) = cur.next_sibling() {
                    break Some(sibling);
                }
                match stack.pop() {
                    Some(frame) => {
                        cur = *frame.node;
                        self.close(frame);
                    }
                    None => break None,
                }
            };
        }
    }

    fn top(&mut self) -> &mut LineBuf {
        // `bufs` starts with the page buffer and cells only pop what they
        // pushed; the fallback only keeps this total.
        if self.bufs.is_empty() {
            self.bufs.push(LineBuf::default());
        }
        let last = self.bufs.len() - 1;
        &mut self.bufs[last]
    }

    fn text(&mut self, s: &str) {
        if self.pre {
            if !s.is_empty() {
                self.flush_bracket();
                self.top().text_pre(s);
            }
            return;
        }
        if self.bracket_pending {
            let rest = s.trim_start();
            if rest.is_empty() {
                self.top().text_normal(s);
                return;
            }
            if rest.len() != s.len() {
                self.top().soft_space();
            }
            self.flush_bracket();
            self.top().text_normal(rest);
            return;
        }
        self.top().text_normal(s);
    }

    fn flush_bracket(&mut self) {
        if self.bracket_pending {
            self.bracket_pending = false;
            self.top().word("[");
        }
    }

    fn open<'a>(&mut self, node: ElementRef<'a>) -> Option<Frame<'a>> {
        let el = node.value();
        if !in_html_ns(el) {
            return None;
        }
        let name = el.name();
        let rss_title = name == "title" && self.opts.is_rss;
        // A feed has no real <head>: when filter output starts with an item's <title>, the HTML
        // parser files it under one, and it must still be rendered.
        let rss_head = name == "head" && self.opts.is_rss;
        if is_never_rendered(name) && !rss_title && !rss_head {
            return None;
        }
        let mut hidden = false;
        let mut open_attr = false;
        let mut white_space_pre = None;
        let mut href = None;
        let mut start = None;
        let mut value = None;
        for (key, val) in el.attrs() {
            match key {
                "hidden" => hidden = true,
                "open" => open_attr = true,
                "style" => {
                    let style = parse_style(val);
                    hidden |= style.hidden;
                    if style.pre.is_some() {
                        white_space_pre = style.pre;
                    }
                }
                "href" => href = Some(val.trim()),
                "start" => start = val.trim().parse::<i64>().ok(),
                "value" => value = val.trim().parse::<i64>().ok(),
                _ => {}
            }
        }
        // Upstream un-hides <body>: SPAs hide it until their scripts run.
        if hidden && name != "body" && name != "html" {
            return None;
        }
        if name == "dialog" && !open_attr {
            return None;
        }

        let mut frame = Frame {
            node,
            block: if rss_title {
                Block::Spaced
            } else {
                block_kind(name)
            },
            action: Action::None,
            restore_pre: None,
        };
        if matches!(name, "pre" | "xmp" | "listing" | "plaintext") {
            white_space_pre = Some(true);
        }

        match name {
            "br" => {
                if self.pre {
                    self.top().hard_newline();
                } else {
                    self.top().br();
                }
                return Some(frame);
            }
            "span" | "option" | "optgroup" | "button" | "select" | "textarea" => {
                frame.action = Action::Boundary;
            }
            "ul" | "ol" | "menu" | "dir" => {
                let kind = if name == "ol" {
                    ListKind::Numbered(start.unwrap_or(1))
                } else {
                    ListKind::Bulleted(UL_BULLETS[self.lists.len() % UL_BULLETS.len()])
                };
                self.lists.push(kind);
                frame.action = Action::List;
            }
            "li" => frame.action = Action::Item,
            "a" if self.opts.render_anchor_tag_content => {
                if let Some(h) = href.filter(|h| !h.is_empty()) {
                    frame.action = Action::Anchor(h);
                }
            }
            "q" => frame.action = Action::Quote,
            "tr" if self.bufs.len() <= MAX_TABLE_NESTING => frame.action = Action::Row,
            "td" | "th" if self.rows.last().is_some_and(|r| r.depth == self.bufs.len()) => {
                frame.action = Action::Cell;
            }
            _ => {}
        }

        match frame.block {
            Block::Inline => {}
            Block::Line => self.top().end_line(),
            Block::Spaced => {
                let top = self.top();
                top.end_line();
                top.blank_line();
            }
        }
        if let Some(pre) = white_space_pre {
            frame.restore_pre = Some(self.pre);
            self.pre = pre;
        }

        match frame.action {
            Action::None => {}
            Action::Boundary => {
                if !self.pre {
                    self.top().soft_space();
                }
            }
            Action::List => self.top().padding += LIST_PADDING,
            Action::Item => {
                let bullet = match self.lists.last_mut() {
                    Some(ListKind::Numbered(n)) => {
                        if let Some(v) = value {
                            *n = v;
                        }
                        let b = format!("{n}. ");
                        *n = n.saturating_add(1);
                        b
                    }
                    Some(ListKind::Bulleted(b)) => (*b).to_owned(),
                    None => UL_BULLETS[0].to_owned(),
                };
                self.top().bullet = Some(bullet);
            }
            Action::Anchor(_) => {
                // Keeps brackets well-nested should markup nest links.
                self.flush_bracket();
                self.bracket_pending = true;
            }
            Action::Quote => self.text("\""),
            Action::Row => {
                let depth = self.bufs.len();
                self.rows.push(Row {
                    depth,
                    cells: Vec::new(),
                });
            }
            Action::Cell => self.bufs.push(LineBuf::default()),
        }
        Some(frame)
    }

    fn close(&mut self, frame: Frame<'_>) {
        match frame.action {
            Action::None => {}
            Action::Boundary => {
                if !self.pre {
                    self.top().soft_space();
                }
            }
            Action::List => {
                self.lists.pop();
                let top = self.top();
                top.end_line();
                top.padding = top.padding.saturating_sub(LIST_PADDING);
            }
            Action::Item => {
                let top = self.top();
                top.end_line();
                top.bullet = None;
            }
            Action::Anchor(href) => {
                self.flush_bracket();
                let close = format!("]({href})");
                self.top().glue(&close);
            }
            Action::Quote => self.top().glue("\""),
            Action::Cell => {
                if self.bufs.len() > 1
                    && let Some(buf) = self.bufs.pop()
                {
                    let text = buf.finish();
                    if let Some(row) = self.rows.last_mut() {
                        row.cells.push(text);
                    }
                }
            }
            Action::Row => {
                if let Some(row) = self.rows.pop() {
                    self.emit_row(&row.cells);
                }
            }
        }
        if let Some(pre) = frame.restore_pre {
            self.pre = pre;
            let top = self.top();
            top.newlines = top.newlines.min(2);
        }
        match frame.block {
            Block::Inline => {}
            Block::Line => self.top().end_line(),
            Block::Spaced => {
                let top = self.top();
                top.end_line();
                top.blank_line();
            }
        }
    }

    fn emit_row(&mut self, cells: &[String]) {
        let top = self.top();
        if cells.iter().all(|c| !c.contains('\n')) {
            let mut line = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i > 0 {
                    line.push_str(CELL_GAP);
                }
                line.push_str(cell.trim());
            }
            let line = line.trim_end();
            if !line.is_empty() {
                top.whole_line(line);
            }
            return;
        }
        // Some cell spans several lines: side by side would interleave
        // them, so each cell gets its own lines.
        top.end_line();
        for cell in cells {
            for line in cell.split('\n') {
                if line.is_empty() {
                    top.blank_line();
                } else {
                    top.whole_line(line);
                }
            }
        }
    }

    fn finish(mut self) -> String {
        // Cells left open cannot happen with a well-formed tree; fold any
        // into the page rather than lose their text.
        while self.bufs.len() > 1 {
            if let Some(buf) = self.bufs.pop() {
                let text = buf.finish();
                self.emit_row(&[text]);
            }
        }
        self.bufs.pop().map(LineBuf::finish).unwrap_or_default()
    }
}

/// Elements whose content a reader never sees as text. Upstream strips the
/// same list before inscriptis runs, and inscriptis hides the rest.
fn is_never_rendered(name: &str) -> bool {
    matches!(
        name,
        "head"
            | "title"
            | "meta"
            | "link"
            | "base"
            | "script"
            | "style"
            | "noscript"
            | "template"
            | "svg"
            | "math"
            | "canvas"
            | "iframe"
            | "frame"
            | "frameset"
            | "noframes"
            | "datalist"
            | "input"
            | "img"
            | "embed"
            | "area"
    )
}

fn block_kind(name: &str) -> Block {
    match name {
        "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "figure" => Block::Spaced,
        "address" | "article" | "aside" | "blockquote" | "body" | "caption" | "center" | "dd"
        | "details" | "dialog" | "dir" | "div" | "dl" | "dt" | "fieldset" | "figcaption"
        | "footer" | "form" | "header" | "hgroup" | "hr" | "html" | "legend" | "li" | "listing"
        | "main" | "menu" | "nav" | "ol" | "plaintext" | "pre" | "search" | "section"
        | "summary" | "table" | "td" | "th" | "tr" | "ul" | "xmp" => Block::Line,
        _ => Block::Inline,
    }
}

#[derive(Debug, Default)]
struct InlineStyle {
    hidden: bool,
    /// `Some(true)` for the `white-space` values that keep line breaks.
    pre: Option<bool>,
}

fn parse_style(style: &str) -> InlineStyle {
    let mut out = InlineStyle::default();
    for decl in style.split(';') {
        let Some((prop, value)) = decl.split_once(':') else {
            continue;
        };
        let prop = prop.trim();
        let value = css_value(value);
        if prop.eq_ignore_ascii_case("display") {
            out.hidden |= value.eq_ignore_ascii_case("none");
        } else if prop.eq_ignore_ascii_case("visibility") {
            out.hidden |=
                value.eq_ignore_ascii_case("hidden") || value.eq_ignore_ascii_case("collapse");
        } else if prop.eq_ignore_ascii_case("white-space") {
            let v = value.to_ascii_lowercase();
            match v.as_str() {
                "pre" | "pre-wrap" | "pre-line" | "break-spaces" => out.pre = Some(true),
                "normal" | "nowrap" => out.pre = Some(false),
                _ => {}
            }
        }
    }
    out
}

/// The declaration's value without a trailing `!important`.
fn css_value(value: &str) -> &str {
    let value = value.trim();
    match value.rfind('!') {
        Some(i) if value[i + 1..].trim().eq_ignore_ascii_case("important") => value[..i].trim(),
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scraper::Selector;
    use testkit::on_small_stack;

    fn text(html: &str) -> String {
        html_to_text(html, &TextOptions::default())
    }

    fn text_links(html: &str) -> String {
        html_to_text(
            html,
            &TextOptions {
                render_anchor_tag_content: true,
                ..TextOptions::default()
            },
        )
    }

    #[test]
    fn paragraphs_and_headings_are_separated_by_one_blank_line() {
        assert_eq!(
            text("<h1>Title</h1><p>First   <b>bold</b>\n para.</p><p>Second</p>tail"),
            "Title\n\nFirst bold para.\n\nSecond\n\ntail"
        );
    }

    #[test]
    fn nested_divs_are_lines_without_indentation() {
        assert_eq!(
            text("<div><div>a</div><div>b<div>c</div>d</div></div>e"),
            "a\nb\nc\nd\ne"
        );
    }

    #[test]
    fn inline_elements_stay_on_one_line() {
        assert_eq!(
            text("<p>x <em>em</em><strong>st</strong> <code>c</code>y</p>"),
            "x emst cy"
        );
    }

    #[test]
    fn span_boundaries_count_as_whitespace_like_inscriptis() {
        assert_eq!(
            text("<p>Price: <span>$</span><span>19.99</span>!</p>"),
            "Price: $ 19.99 !"
        );
        assert_eq!(text("<p>x<span> a </span>y</p>"), "x a y");
    }

    #[test]
    fn br_breaks_lines_and_repeated_br_gives_one_blank_line() {
        assert_eq!(text("a<br>b<br><br>c<br><br><br><br>d"), "a\nb\n\nc\n\nd");
        assert_eq!(text("<p>a<br>  b</p>"), "a\nb");
    }

    #[test]
    fn filter_fragments_joined_with_br() {
        assert_eq!(text("<span>a</span><br><span>b</span><br>"), "a\nb");
        assert_eq!(text("<div>a</div><div>b</div>"), "a\nb");
        assert_eq!(text("<li>x</li><br><li>y</li><br>"), "* x\n\n* y");
    }

    #[test]
    fn non_content_elements_are_dropped() {
        let html = "<html><head><title>T</title><style>p{}</style><script>var a=1;</script></head>\
            <body><script>alert(1)</script><noscript>enable js</noscript><style>.x{}</style>\
            <template><p>tpl</p></template><svg><text>svg text</text><title>st</title></svg>\
            <math><mi>m</mi></math><iframe>if</iframe><p>kept</p></body></html>";
        assert_eq!(text(html), "kept");
    }

    #[test]
    fn hidden_content_is_dropped() {
        let html = r#"<p hidden>h1</p><p style="display:none">h2</p>
            <p style="color:red; DISPLAY : None !important">h3</p>
            <div style="visibility:hidden">h4</div><input type="hidden" value="h5">
            <dialog>h6</dialog><dialog open>dialog shown</dialog>
            <span aria-hidden="true">aria kept</span><p style="display:block">shown</p>"#;
        assert_eq!(text(html), "dialog shown\naria kept\n\nshown");
    }

    #[test]
    fn hiding_style_on_body_is_ignored_like_upstream() {
        assert_eq!(
            text(r#"<html><body style="display:none" hidden><p>app</p></body></html>"#),
            "app"
        );
        assert_eq!(
            text(r#"<body style="color: red; visibility:hidden"><p>app</p></body>"#),
            "app"
        );
    }

    #[test]
    fn table_rows_are_lines_with_two_space_gaps() {
        let html = "<table><caption>Prices</caption>\
            <thead><tr><th>Item</th><th>Price</th><th>Stock</th></tr></thead>\
            <tbody><tr><td>Widget <b>XL</b></td><td>$10</td><td>yes</td></tr>\
            <tr><td>Gadget</td><td></td><td>no</td></tr></tbody></table>after";
        assert_eq!(
            text(html),
            "Prices\nItem  Price  Stock\nWidget XL  $10  yes\nGadget    no\nafter"
        );
    }

    #[test]
    fn layout_table_cells_with_several_lines_are_stacked() {
        let html = "<table><tr><td><p>one</p><p>two</p></td><td>side</td></tr>\
            <tr><td>1.</td><td></td><td>Title <span>(site)</span></td></tr></table>";
        assert_eq!(text(html), "one\n\ntwo\nside\n1.    Title (site)");
    }

    #[test]
    fn nested_tables_render_inside_their_cell() {
        let html = "<table><tr><td><table><tr><td>a</td><td>b</td></tr>\
            <tr><td>c</td><td>d</td></tr></table></td></tr></table>";
        assert_eq!(text(html), "a  b\nc  d");
    }

    #[test]
    fn deeply_nested_tables_and_divs_do_not_overflow() {
        let depth = 3000;
        let html = format!(
            "{}x{}{}y{}",
            "<table><tr><td>".repeat(depth),
            "</td></tr></table>".repeat(depth),
            "<div>".repeat(depth),
            "</div>".repeat(depth)
        );
        assert_eq!(text(&html), "x\ny");
    }

    #[test]
    fn lists_use_inscriptis_bullets() {
        let html = "<ul><li>one</li><li>two<ul><li>nested</li></ul></li><li></li></ul>\
            <ol><li>x</li><li>y</li></ol><ol start=9><li>nine</li><li>ten</li></ol>";
        assert_eq!(
            text(html),
            "  * one\n  * two\n      + nested\n 1. x\n 2. y\n 9. nine\n10. ten"
        );
    }

    #[test]
    fn list_item_continuation_lines_keep_the_list_indent() {
        assert_eq!(
            text("<ul><li>second <div>div in li</div> tail</li></ul>"),
            "  * second\n    div in li\n    tail"
        );
    }

    #[test]
    fn pre_keeps_its_whitespace() {
        assert_eq!(
            text("<p>x</p><pre>\n  a\n    b  c   \n\n\nd\tt</pre><p>y</p>"),
            "x\n\n  a\n    b  c\n\n\nd\tt\n\ny"
        );
        assert_eq!(
            text(r#"<div style="white-space: pre">a   b</div>"#),
            "a   b"
        );
    }

    #[test]
    fn entities_and_nbsp_are_decoded() {
        assert_eq!(
            text("<p>a&amp;b&nbsp;&nbsp;c &lt;x&gt; &eacute;&#233;&#x20AC; &amp;lt;</p>"),
            "a&b c <x> éé€ &lt;"
        );
        assert_eq!(text("<pre>a&nbsp;&nbsp;b</pre>"), "a  b");
    }

    #[test]
    fn anchors_render_only_when_enabled() {
        let html = r#"<p>see <a href="http://x.com/a"> the link </a> now, <a>no href</a>,
            <a href="">empty</a> <a href="/img"><img src="i.png"></a></p>"#;
        assert_eq!(text(html), "see the link now, no href, empty");
        assert_eq!(
            text_links(html),
            "see [the link](http://x.com/a) now, no href, empty [](/img)"
        );
    }

    #[test]
    fn anchor_around_blocks_closes_on_its_last_line() {
        assert_eq!(
            text_links(r#"<p>x</p><a href="/c"><div>Title</div><p>desc</p></a><p>y</p>"#),
            "x\n\n[Title\n\ndesc](/c)\n\ny"
        );
    }

    #[test]
    fn misc_blocks_and_quotes() {
        assert_eq!(
            text("<dl><dt>term</dt><dd>def</dd></dl>a<hr>b<blockquote>q</blockquote><q>c</q>"),
            "term\ndef\na\nb\nq\n\"c\""
        );
        assert_eq!(
            text("<p>Size: <select><option>S</option><option>M</option></select>now</p>"),
            "Size: S M now"
        );
    }

    #[test]
    fn empty_and_whitespace_only_input() {
        assert_eq!(text(""), "");
        assert_eq!(text("  \n <p> </p><div>\t</div><br><br>"), "");
    }

    #[test]
    fn title_is_decoded_collapsed_and_capped() {
        assert_eq!(
            page_title("<html><head><title>\n  Caf&eacute; &amp; Bar&nbsp;&mdash;\tHome </title></head></html>")
                .as_deref(),
            Some("Café & Bar — Home")
        );
        assert_eq!(page_title("<p>no title</p>"), None);
        assert_eq!(page_title("<title>  </title>"), None);
        assert_eq!(
            page_title("<svg><title>icon</title></svg><title>Real</title>").as_deref(),
            Some("Real")
        );
        let long = format!("<title>{}</title>", "é".repeat(3000));
        assert_eq!(page_title(&long).map(|t| t.chars().count()), Some(2000));
    }

    #[test]
    fn text_and_title_from_one_parse() {
        let (body, title) =
            html_to_text_with_title("<title>T</title><p>b</p>", &TextOptions::default());
        assert_eq!((body.as_str(), title.as_deref()), ("b", Some("T")));
    }

    #[test]
    fn rss_titles_become_headings_only_for_feeds() {
        let feed = "<rss><channel><title>Feed</title><item><title>RSS Title</title>\
            <link>https://e.com/1</link><description>Content</description></item></channel></rss>";
        let rss = TextOptions {
            is_rss: true,
            ..TextOptions::default()
        };
        assert_eq!(
            html_to_text(feed, &rss),
            "Feed\n\nRSS Title\n\nhttps://e.com/1Content"
        );
        assert_eq!(text(feed), "https://e.com/1Content");
    }

    #[test]
    fn bloated_head_is_skipped() {
        let html = format!(
            "<!DOCTYPE html><html><head><title>T</title><style>{}</style><script>{}</script>{}</head>\
             <body>{}<h1>Heading</h1><footer>Footer text</footer></body></html>",
            ".c{color:red}\n".repeat(5_000),
            "console.log(1);\n".repeat(5_000),
            "<meta name=d content=x><link rel=stylesheet href=b.css><!-- c -->".repeat(2_000),
            "<svg><path d=\"M0,0\"/></svg><noscript>Enable JS</noscript>".repeat(2_000),
        );
        assert_eq!(text(&html), "Heading\n\nFooter text");
    }

    #[test]
    fn realistic_news_page() {
        let html = r##"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Daily News &ndash; Markets rally</title>
  <link rel="stylesheet" href="/s.css">
  <script>window.dataLayer = [];</script>
</head>
<body>
  <header>
    <a href="/" class="logo"><svg><path d="M0 0"/></svg>Daily News</a>
    <nav>
      <ul>
        <li><a href="/world">World</a></li>
        <li><a href="/business">Business</a></li>
        <li style="display:none"><a href="/beta">Beta</a></li>
      </ul>
    </nav>
  </header>
  <div class="cookie" hidden>We use cookies</div>
  <main>
    <article>
      <h1>Markets   rally on
          rate news</h1>
      <p class="byline">By <span class="author">Jane Doe</span> &middot; <time>2 June 2025</time></p>
      <p>Stocks rose on Tuesday after the central bank
         held rates&nbsp;steady.</p>
      <table class="quotes">
        <tr><th>Index</th><th>Close</th><th>Change</th></tr>
        <tr><td>FTSE 100</td><td>8,120.5</td><td>+1.2%</td></tr>
        <tr><td>DAX</td><td>18,402.1</td><td>+0.8%</td></tr>
      </table>
      <p>Read <a href="/analysis">our analysis</a>.</p>
    </article>
    <aside><h2>Most read</h2><ol><li>First story</li><li>Second story</li></ol></aside>
  </main>
  <footer><p>&copy; 2025 Daily News</p><p><a href="/privacy">Privacy</a> | <a href="/terms">Terms</a></p></footer>
  <script>track();</script>
</body>
</html>"##;
        let expected = [
            "Daily News",
            "  * World",
            "  * Business",
            "",
            "Markets rally on rate news",
            "",
            "By Jane Doe · 2 June 2025",
            "",
            "Stocks rose on Tuesday after the central bank held rates steady.",
            "",
            "Index  Close  Change",
            "FTSE 100  8,120.5  +1.2%",
            "DAX  18,402.1  +0.8%",
            "",
            "Read our analysis.",
            "",
            "Most read",
            "",
            " 1. First story",
            " 2. Second story",
            "",
            "© 2025 Daily News",
            "",
            "Privacy | Terms",
        ]
        .join("\n");
        assert_eq!(text(html), expected);
        assert!(text_links(html).contains("Read [our analysis](/analysis)."));
        assert!(text_links(html).contains("[Privacy](/privacy) | [Terms](/terms)"));
        assert_eq!(
            page_title(html).as_deref(),
            Some("Daily News – Markets rally")
        );
    }

    #[test]
    fn output_is_deterministic_and_linear_on_a_large_page() {
        let mut html = String::from("<html><body>");
        while html.len() < 256 * 1024 {
            html.push_str(
                "<div class=\"item\"><h2>Headline</h2><p>Some <b>text</b> &amp; more \
                 <a href=\"/x\">link</a></p><table><tr><td>a</td><td>b</td></tr></table>\
                 <ul><li>one</li><li>two</li></ul></div>\n",
            );
        }
        html.push_str("</body></html>");
        let opts = TextOptions {
            render_anchor_tag_content: true,
            ..TextOptions::default()
        };
        let first = html_to_text(&html, &opts);
        assert_eq!(first, html_to_text(&html, &opts));
        assert!(first.starts_with(
            "Headline\n\nSome text & more [link](/x)\n\na  b\n  * one\n  * two\n\nHeadline"
        ));
        assert!(!first.contains("\n\n\n"));
    }

    /// Tree depth of the deepest node: the builder's stack never exceeds it by much, and every
    /// scan the builder makes is bounded by its stack, so this bounds the work per token.
    fn max_depth(doc: &Html) -> usize {
        doc.tree
            .root()
            .descendants()
            .map(|n| n.ancestors().count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn very_deep_pages_are_flattened_and_keep_their_text() {
        on_small_stack(|| {
            for tag in ["div", "span", "b", "ul", "table", "p", "a", "svg", "div/"] {
                let (open, close) = match tag.strip_suffix('/') {
                    Some(t) => (format!("<{t}/>"), String::new()),
                    None => (format!("<{tag}>"), format!("</{tag}>")),
                };
                let n = 100_000;
                let html = format!("{}deep{}<p>after", open.repeat(n), close.repeat(n));
                let doc = parse_document(&html);
                assert!(
                    max_depth(&doc) <= 2 * MAX_OPEN_ELEMENTS + 8,
                    "{tag}: depth {}",
                    max_depth(&doc)
                );
                let out = render(&doc, &TextOptions::default());
                if tag != "svg" {
                    assert!(out.contains("deep"), "{tag}: {out:.80}");
                    assert!(out.ends_with("after"), "{tag}");
                }
                // The rest of the pipeline's HTML steps on the same page.
                assert!(page_title(&format!("<title>t</title>{html}")).is_some());
            }
        });
    }

    #[test]
    fn depth_cap_keeps_ordinary_sloppy_markup_intact() {
        // Thousands of elements whose end tags are optional or forgotten, each closed by the
        // parser's own rules: the capped parse must build exactly the uncapped tree.
        let n = 2 * MAX_OPEN_ELEMENTS;
        let pages = [
            format!("<ul>{}</ul>", "<li><b>x</b>item".repeat(n)),
            format!("<ul>{}</ul>", "<li><span>item".repeat(n)),
            format!("<dl>{}</dl>", "<dt>t<dd>d".repeat(n)),
            "<p>para".repeat(n),
            format!("<div>{}</div>", "<p>a<div>b</div>".repeat(n)),
            format!("<table>{}</table>", "<tr><td>a<td>b".repeat(n)),
            format!("<table>{}</table>", "<td>a<th>b<tr>".repeat(n)),
            format!("<table>{}</table>", "<tbody><tr><td>x".repeat(n)),
            "<a href=x>link".repeat(n),
            format!("<select>{}</select>", "<option>o<optgroup>g".repeat(n)),
            "<h1>a<h2>b".repeat(n),
            format!("<svg>{}</svg><p>after", "<path/><g><rect/></g>".repeat(n)),
            format!("<svg>{}<p>broke out", "<path/>".repeat(n)),
            format!("{}<p>after", "<form><button>b".repeat(n)),
            "<div><table><tr><td>cell</table></div>".repeat(n),
        ];
        for page in pages {
            assert_eq!(
                parse_document(&page).html(),
                Html::parse_document(&page).html(),
                "{:.60}",
                page
            );
        }
    }

    #[test]
    fn nesting_up_to_the_cap_is_kept_and_deeper_tags_are_dropped_with_their_end_tags() {
        let at_cap = format!(
            "{}x{}",
            "<section>".repeat(MAX_OPEN_ELEMENTS - 10),
            "</section>".repeat(MAX_OPEN_ELEMENTS - 10)
        );
        assert_eq!(
            parse_document(&at_cap).html(),
            Html::parse_document(&at_cap).html()
        );
        // Past the cap: the `</div>` of dropped divs must not close the kept ones early.
        let n = MAX_OPEN_ELEMENTS + 100;
        let html = format!(
            "<div id=outer>{}in{}<i>still inside</i></div><p>out",
            "<div>".repeat(n),
            "</div>".repeat(n)
        );
        let doc = parse_document(&html);
        let outer = Selector::parse("#outer > i").unwrap();
        assert_eq!(doc.select(&outer).count(), 1);
    }

    #[test]
    fn deeply_nested_lists_indent_no_further_than_the_cap() {
        let html = format!("{}<li>x", "<ul>".repeat(50));
        let bullet = UL_BULLETS[49 % UL_BULLETS.len()];
        assert_eq!(
            text(&html),
            format!("{}{bullet}x", " ".repeat(MAX_LIST_PADDING - bullet.len()))
        );
    }
}
