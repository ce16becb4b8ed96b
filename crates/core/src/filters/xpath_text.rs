//! XPath include filters on an HTML page, turned into text from libxml2's tree.
//!
//! The other path writes each match out with libxml2's formatting HTML serialiser (as lxml's
//! `tostring(pretty_print=True)` does upstream), joins the pieces with `<br>` and parses that
//! markup with html5ever for its text: the page is parsed twice and the matches written and
//! read once more. Here the matches' tokens (tags, text, comments) go straight to html5ever's
//! tree builder, as its tokenizer would read them from that markup: the formatting newlines,
//! the tags the serialiser leaves unclosed, the attribute escaping and the text encoding are
//! reproduced, so the tree builder makes the same document and the text is the same.
//!
//! Where the markup would not tokenize as the tree it came from, this path declines and the
//! caller's other path runs on the same parsed page: raw-text elements (`script`, `style`,
//! `xmp`, `noscript` …) whose content the tokenizer would read differently, `plaintext`,
//! comments that end early, text results holding markup characters, matches of the whole
//! document, `html`/`head`/`meta` roots (the serialiser adds a charset `meta` to those),
//! namespace nodes, and output that might pass the filters' output budget (which the other
//! path enforces byte for byte).

use crate::html_text::{TextOptions, TokenFeed, html_to_text, render_document};

use super::*;

/// What the XPath include step gives the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XPathText {
    /// The filters' markup is blank: no filter matched anything.
    NotFound,
    /// The matches' text; with their markup when the text is blank (the pipeline tells a
    /// filter that kept only images from one that kept nothing readable).
    Text {
        /// The text, as [`html_to_text`] gives it for the matches' markup.
        text: String,
        /// The markup [`apply_include_filters`] gives, only when `text` is blank.
        markup: Option<String>,
    },
}

/// Whether there is an include rule and every non-blank one is XPath (`/…`, `xpath:`,
/// `xpath1:`): the rules [`xpath_include_text`] applies.
pub fn all_xpath<S: AsRef<str>>(rules: &[S]) -> bool {
    let mut rules = rules
        .iter()
        .map(|r| r.as_ref().trim())
        .filter(|r| !r.is_empty())
        .peekable();
    rules.peek().is_some()
        && rules.all(|r| {
            matches!(
                FilterKind::split(r).0,
                FilterKind::XPath | FilterKind::XPath1
            )
        })
}

/// The text of an HTML page's matches for XPath include `filters` once the `subtractive`
/// rules have removed their matches: what `html_to_text(apply_include_filters(..))` gives
/// for the pruned page, from one libxml2 parse of the page (see the module docs). CSS
/// subtractive rules match on libxml2's tree here (`libxml_css`). Errors are those of
/// [`remove_elements`] and [`apply_include_filters`].
pub fn xpath_include_text<S: AsRef<str>, T: AsRef<str>>(
    content: &str,
    subtractive: &[T],
    filters: &[S],
    opts: &TextOptions,
) -> Result<XPathText, FilterError> {
    let (xpaths, _) = compile_subtractive(subtractive)?;
    let css = css_subtractive(subtractive);
    let parsed = split_rules(filters)?;
    if parsed
        .iter()
        .any(|f| !matches!(f.kind, FilterKind::XPath | FilterKind::XPath1))
    {
        // Not the rules this applies: the general path, as the caller would have taken.
        let content = remove_elements(content, subtractive, ContentKind::Html)?;
        let markup = apply_include_filters(&content, filters, &FilterOptions::default())?;
        return Ok(text_of_markup(markup, opts));
    }
    let doc = parse_markup(content, false)?;
    if let Some(doc) = &doc {
        if !xpaths.is_empty() {
            remove_xpath_in(doc, &xpaths)?;
        }
        if !css.is_empty() {
            remove_css_in(doc, &css)?;
        }
    }
    let limit = filter_output_limit(content.len());
    if let Some(doc) = &doc
        && let Some(fed) = feed_matches(doc, &parsed, limit)
    {
        if !fed.nonblank {
            return Ok(XPathText::NotFound);
        }
        let text = render_document(&fed.feed.finish(), opts);
        let markup = match text.trim().is_empty() {
            true => Some(matches_markup(doc, &parsed, limit)?),
            false => None,
        };
        return Ok(XPathText::Text { text, markup });
    }
    let markup = match &doc {
        Some(doc) => matches_markup(doc, &parsed, limit)?,
        None => {
            // A blank page matches nothing, but a rule that does not compile is still its
            // error, as on the other path.
            for filter in &parsed {
                compile_xpath(&filter.expr)?;
            }
            String::new()
        }
    };
    Ok(text_of_markup(markup, opts))
}

fn text_of_markup(markup: String, opts: &TextOptions) -> XPathText {
    if markup.trim().is_empty() {
        return XPathText::NotFound;
    }
    let text = html_to_text(&markup, opts);
    let markup = text.trim().is_empty().then_some(markup);
    XPathText::Text { text, markup }
}

/// [`apply_include_filters`] for XPath rules on an HTML page already parsed.
fn matches_markup(doc: &Document, parsed: &[Filter], limit: usize) -> Result<String, FilterError> {
    let mut out = String::new();
    for filter in parsed {
        let budget = Budget {
            bytes: limit.saturating_sub(out.len()),
            filter,
            limit,
        };
        let expression = compile_xpath(&filter.expr)?;
        let piece = xpath_matches(doc, true, &expression, &filter.expr, true, &budget)?;
        budget.check(piece.len())?;
        out.push_str(&piece);
    }
    Ok(out)
}

struct Fed {
    feed: TokenFeed,
    /// Whether the markup the other path writes would be non-blank.
    nonblank: bool,
}

/// Feeds every filter's matches to a new document; `None` to decline (see the module docs),
/// including on any error, which the other path then reports as it always has.
fn feed_matches(doc: &Document, parsed: &[Filter], limit: usize) -> Option<Fed> {
    let feed = TokenFeed::default();
    let mut nonblank = false;
    // An upper bound on the bytes the other path writes, kept under the output budget so
    // that this path never succeeds where that one fails.
    let mut bound = Bound { bytes: 0, limit };
    for filter in parsed {
        let expression = compile_xpath(&filter.expr).ok()?;
        let context = xpath_context(doc, &filter.expr).ok()?;
        let result = context.evaluate_compiled(&expression).ok()?;
        let nodes = result.get_readonly_nodes_as_vec();
        if nodes.is_empty() {
            let value = result.to_string();
            bound.add(value.len())?;
            nonblank |= !value.trim().is_empty();
            text_piece(&feed, &value)?;
            continue;
        }
        // Whether this filter's markup so far is empty (separators go between matches).
        let mut block_empty = true;
        for node in nodes {
            match node.get_type() {
                Some(NodeType::ElementNode) => {
                    let name = node.get_name();
                    if matches!(name.as_str(), "html" | "head" | "meta") {
                        return None;
                    }
                    let table_part = TABLE_PARTS.contains(&name.as_str());
                    let breaks_line = table_part || SELF_SEPARATING_TAGS.contains(&name.as_str());
                    if !block_empty && !breaks_line {
                        bound.add(MATCH_SEPARATOR.len())?;
                        feed.start("br", []);
                    }
                    if table_part {
                        bound.add("<table></table>".len())?;
                        feed.start("table", []);
                    }
                    feed_element(&feed, node, &mut bound)?;
                    feed.text("\n");
                    if table_part {
                        feed.end("table");
                    }
                    block_empty = false;
                    nonblank = true;
                }
                Some(NodeType::TextNode | NodeType::CDataSectionNode | NodeType::AttributeNode) => {
                    let value = node.get_content();
                    if !block_empty {
                        bound.add(MATCH_SEPARATOR.len())?;
                        feed.start("br", []);
                        nonblank = true;
                    }
                    bound.add(value.len())?;
                    text_piece(&feed, &value)?;
                    block_empty &= value.is_empty();
                    nonblank |= !value.trim().is_empty();
                }
                _ => return None,
            }
        }
    }
    Some(Fed { feed, nonblank })
}

struct Bound {
    bytes: usize,
    limit: usize,
}

impl Bound {
    fn add(&mut self, bytes: usize) -> Option<()> {
        self.bytes = self.bytes.saturating_add(bytes);
        (self.bytes <= self.limit).then_some(())
    }
}

/// A text, attribute or scalar result, which the other path pastes into its markup as it is.
fn text_piece(feed: &TokenFeed, value: &str) -> Option<()> {
    // Markup characters would be read as tags or references, a carriage return as a line
    // feed, a NUL or a leading byte-order mark not at all.
    if value.contains(['<', '&', '\r', '\0', '\u{feff}']) {
        return None;
    }
    feed.text(value);
    Some(())
}

/// What libxml2's HTML serialiser knows of an element (its HTML 4 element table).
#[derive(Clone, Copy)]
struct TagInfo {
    /// Not inline: the formatting serialiser puts newlines around it.
    block: bool,
    /// Written without content or end tag.
    empty: bool,
    /// Written without an end tag when it has no content.
    save_end_tag: bool,
}

fn tag_info(name: &str) -> Option<TagInfo> {
    const BLOCK: TagInfo = TagInfo {
        block: true,
        empty: false,
        save_end_tag: false,
    };
    const INLINE: TagInfo = TagInfo {
        block: false,
        ..BLOCK
    };
    let info = match name {
        "area" | "base" | "col" | "frame" | "hr" | "isindex" | "link" | "meta" | "param" => {
            TagInfo {
                empty: true,
                ..BLOCK
            }
        }
        "basefont" | "br" | "img" | "input" => TagInfo {
            empty: true,
            ..INLINE
        },
        "li" => TagInfo {
            save_end_tag: true,
            ..BLOCK
        },
        "address" | "blockquote" | "body" | "caption" | "center" | "colgroup" | "dd" | "dir"
        | "div" | "dl" | "dt" | "fieldset" | "form" | "frameset" | "h1" | "h2" | "h3" | "h4"
        | "h5" | "h6" | "head" | "html" | "legend" | "menu" | "noframes" | "noscript" | "ol"
        | "optgroup" | "option" | "p" | "pre" | "style" | "table" | "tbody" | "td" | "tfoot"
        | "th" | "thead" | "title" | "tr" | "ul" => BLOCK,
        "a" | "abbr" | "acronym" | "applet" | "b" | "bdo" | "big" | "button" | "cite" | "code"
        | "del" | "dfn" | "em" | "embed" | "font" | "i" | "iframe" | "ins" | "kbd" | "label"
        | "map" | "object" | "q" | "s" | "samp" | "script" | "select" | "small" | "span"
        | "strike" | "strong" | "sub" | "sup" | "textarea" | "tt" | "u" | "var" => INLINE,
        _ => return None,
    };
    Some(info)
}

/// Text or an entity reference: the nodes the serialiser puts no newline next to.
fn is_text_like(node: Option<RoNode>) -> bool {
    matches!(
        node.and_then(RoNode::get_type),
        Some(NodeType::TextNode | NodeType::EntityRefNode)
    )
}

/// How the tokenizer reads an element's content, where that is not as markup.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Raw {
    No,
    /// `script`, `style`: written unescaped and read as text up to the end tag.
    Unescaped,
    /// `title`, `textarea`: written escaped and read with references decoded.
    Escaped,
    /// `xmp`, `iframe`, `noembed`, `noframes`, `noscript`: written escaped, read raw.
    Literal,
}

fn raw_kind(name: &str) -> Option<Raw> {
    Some(match name {
        "script" | "style" => Raw::Unescaped,
        "title" | "textarea" => Raw::Escaped,
        "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => Raw::Literal,
        "plaintext" => return None,
        _ => Raw::No,
    })
}

/// Whether a raw-text element's content reads back as the text it holds; `in_foreign` when an
/// `svg` or `math` encloses it, where the tokenizer reads it as markup instead.
fn raw_content_ok(node: RoNode, name: &str, raw: Raw, in_foreign: bool) -> bool {
    let mut child = node.get_first_child();
    while let Some(c) = child {
        if c.get_type() != Some(NodeType::TextNode) {
            return false;
        }
        let text = c.get_content();
        let ok = match raw {
            Raw::No | Raw::Escaped => true,
            Raw::Unescaped => {
                let read_as_markup = in_foreign && text.contains(['<', '&']);
                let escapes = name == "script" && text.contains("<!--");
                !read_as_markup && !escapes
            }
            // Only what the serialiser writes unchanged reads back unchanged.
            Raw::Literal => !text.contains(|c: char| {
                matches!(c, '<' | '&' | '>' | '\r')
                    || !c.is_ascii()
                    || (c < ' ' && c != '\t' && c != '\n')
            }),
        };
        if !ok {
            return false;
        }
        child = c.get_next_sibling();
    }
    true
}

struct Open {
    node: RoNode,
    name: String,
    info: Option<TagInfo>,
    raw: Raw,
}

/// Feeds one element and its subtree as the serialiser writes them (without the newline
/// that follows a match); `None` to decline.
fn feed_element(feed: &TokenFeed, root: RoNode, bound: &mut Bound) -> Option<()> {
    let root_id = root.to_hashable();
    let mut stack: Vec<Open> = Vec::new();
    let mut foreign = 0usize;
    let mut cur = root;
    loop {
        let is_root = cur.to_hashable() == root_id;
        match cur.get_type() {
            Some(NodeType::ElementNode) => {
                let name = cur.get_name();
                let info = tag_info(&name);
                let raw = raw_kind(&name)?;
                if raw != Raw::No && !raw_content_ok(cur, &name, raw, foreign > 0) {
                    return None;
                }
                let attrs = attributes(cur, &name, bound)?;
                bound.add(2 * name.len() + 8)?;
                feed.start(&name, attrs.iter().map(|(k, v)| (k.as_str(), v.clone())));
                let first = cur.get_first_child();
                match (info, first) {
                    (Some(TagInfo { empty: true, .. }), _) => {}
                    (
                        Some(TagInfo {
                            save_end_tag: true, ..
                        }),
                        None,
                    ) => {}
                    (_, None) => feed.end(&name),
                    (_, Some(first)) => {
                        let last = cur.get_last_child();
                        if info.is_some_and(|i| i.block)
                            && !is_text_like(Some(first))
                            && last.map(RoNode::to_hashable) != Some(first.to_hashable())
                            && !name.starts_with('p')
                        {
                            feed.text("\n");
                        }
                        if matches!(name.as_str(), "svg" | "math") {
                            foreign += 1;
                        }
                        stack.push(Open {
                            node: cur,
                            name,
                            info,
                            raw,
                        });
                        cur = first;
                        continue;
                    }
                }
                if !is_root {
                    newline_after(feed, cur, info, &stack);
                }
            }
            Some(NodeType::TextNode) => {
                let text = cur.get_content();
                bound.add(5 * text.len())?;
                match stack.last().map(|o| o.raw) {
                    Some(Raw::Unescaped) => feed.text(&crlf_to_lf(&text)),
                    _ if has_c1(&text) => return None,
                    _ => feed.text(&encoded_text(&text)),
                }
            }
            Some(NodeType::CommentNode) => {
                let text = cur.get_content();
                if text.starts_with('>') || text.starts_with("->") || text.contains("--!>") {
                    return None;
                }
                bound.add(text.len() + 7)?;
                feed.comment(&crlf_to_lf(&text));
            }
            _ => return None,
        }
        // Up and along to the next node to write, closing what is finished.
        loop {
            if cur.to_hashable() == root_id {
                return Some(());
            }
            if let Some(next) = cur.get_next_sibling() {
                cur = next;
                break;
            }
            let open = stack.pop()?;
            if matches!(open.name.as_str(), "svg" | "math") {
                foreign = foreign.saturating_sub(1);
            }
            let first = open.node.get_first_child().map(RoNode::to_hashable);
            let last = open.node.get_last_child();
            if open.info.is_some_and(|i| i.block)
                && !is_text_like(last)
                && first != last.map(RoNode::to_hashable)
                && !open.name.starts_with('p')
            {
                feed.text("\n");
            }
            feed.end(&open.name);
            cur = open.node;
            if cur.to_hashable() != root_id {
                newline_after(feed, cur, open.info, &stack);
            }
        }
    }
}

/// The newline the formatting serialiser writes after a block element followed by a
/// sibling that is not text, unless the parent's name starts with `p` (`p`, `pre`).
fn newline_after(feed: &TokenFeed, node: RoNode, info: Option<TagInfo>, stack: &[Open]) {
    let Some(next) = node.get_next_sibling() else {
        return;
    };
    if info.is_some_and(|i| i.block)
        && !is_text_like(Some(next))
        && stack
            .last()
            .is_some_and(|parent| !parent.name.starts_with('p'))
    {
        feed.text("\n");
    }
}

/// HTML 4's boolean attributes, which the serialiser writes without a value.
fn is_boolean_attr(name: &str) -> bool {
    matches!(
        name,
        "checked"
            | "compact"
            | "declare"
            | "defer"
            | "disabled"
            | "ismap"
            | "multiple"
            | "nohref"
            | "noresize"
            | "noshade"
            | "nowrap"
            | "readonly"
            | "selected"
    )
}

/// An element's attributes as the tokenizer reads them back from the serialiser's markup,
/// in name order.
fn attributes(node: RoNode, element: &str, bound: &mut Bound) -> Option<Vec<(String, String)>> {
    let mut attrs: Vec<(String, String)> = node.get_attributes().into_iter().collect();
    attrs.sort_unstable();
    for (key, value) in &mut attrs {
        bound.add(key.len() + 4 + 5 * value.len())?;
        *value = if is_boolean_attr(key) || value.is_empty() {
            String::new()
        } else if matches!(key.as_str(), "href" | "action" | "src")
            || (key == "name" && element == "a")
        {
            uri_escaped(value)
        } else {
            crlf_to_lf(&drop_controls(value)).into_owned()
        };
    }
    Some(attrs)
}

/// Text as the serialiser encodes it and the tokenizer decodes it: the control characters
/// it cannot write are dropped; the rest comes back as it was (carriage returns and
/// non-ASCII characters travel as character references).
fn encoded_text(text: &str) -> Cow<'_, str> {
    drop_controls(text)
}

fn drop_controls(text: &str) -> Cow<'_, str> {
    let dropped = |c: char| c < ' ' && !matches!(c, '\t' | '\n' | '\r');
    if !text.contains(dropped) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.chars().filter(|c| !dropped(*c)).collect())
}

/// Whether text holds C1 controls, which the serialiser writes as character references
/// that the tokenizer reads as Windows-1252 characters.
fn has_c1(text: &str) -> bool {
    text.contains(|c: char| ('\u{80}'..='\u{9f}').contains(&c))
}

/// The tokenizer's newline normalisation of raw markup: CR LF and a lone CR read as LF.
fn crlf_to_lf(text: &str) -> Cow<'_, str> {
    if !text.contains('\r') {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
}

/// A URI attribute as the serialiser writes it (leading blanks dropped, then every byte
/// but letters, digits and `-_.!~*'()@/:=?;#%&,+<>` percent-escaped; attribute values are
/// encoded in its HTML mode, which writes non-ASCII and CR raw) and the tokenizer reads it
/// back (the `&`, `<`, `>` the serialiser encoded are decoded again).
fn uri_escaped(value: &str) -> String {
    let value = drop_controls(value);
    let value = value.trim_start_matches([' ', '\t', '\n', '\r']);
    let mut out = String::with_capacity(value.len());
    for &byte in value.as_bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()@/:=?;#%&,+<>".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(byte >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(byte & 0xF)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    //! The tokens fed here must build the document that parsing the other path's markup
    //! builds: compared node for node, and as text, on generated pages.

    use std::cell::Cell;

    use proptest::prelude::*;

    use super::*;
    use crate::html_text::parse_document;

    /// The other path: matches written out, then parsed for their text.
    fn written_and_parsed(
        page: &str,
        rules: &[&str],
        opts: &TextOptions,
    ) -> Result<XPathText, FilterError> {
        let markup = apply_include_filters(page, rules, &FilterOptions::default())?;
        Ok(text_of_markup(markup, opts))
    }

    /// A document as lines of depth and node, attributes in name order.
    fn dump(html: &Html) -> String {
        let mut out = String::new();
        for node in html.tree.root().descendants() {
            let depth = node.ancestors().count();
            let line = match node.value() {
                scraper::Node::Element(el) => {
                    let mut attrs: Vec<_> = el.attrs().collect();
                    attrs.sort_unstable();
                    format!("<{} {}> {attrs:?}", el.name(), &*el.name.ns)
                }
                scraper::Node::Text(t) => format!("{:?}", &*t.text),
                scraper::Node::Comment(c) => format!("<!--{:?}-->", &**c),
                other => format!("{other:?}"),
            };
            out.push_str(&format!("{depth} {line}\n"));
        }
        out
    }

    thread_local! {
        static FED: Cell<(u32, u32)> = const { Cell::new((0, 0)) };
    }

    /// The page parsed once, with the subtractive rules' matches removed.
    fn pruned(page: &str, subtract: &[&str]) -> Option<Document> {
        let doc = parse_markup(page, false).ok().flatten()?;
        let (xpaths, _) = compile_subtractive(subtract).ok()?;
        remove_xpath_in(&doc, &xpaths).ok()?;
        remove_css_in(&doc, &css_subtractive(subtract)).ok()?;
        Some(doc)
    }

    /// Checks one page against the other path; whether the tokens were fed (not declined).
    fn check(page: &str, rules: &[&str], anchors: bool) -> Result<bool, TestCaseError> {
        check_pruned(page, &[], rules, anchors)
    }

    fn check_pruned(
        page: &str,
        subtract: &[&str],
        rules: &[&str],
        anchors: bool,
    ) -> Result<bool, TestCaseError> {
        let opts = TextOptions {
            render_anchor_tag_content: anchors,
            is_rss: false,
        };
        let ours = xpath_include_text(page, subtract, rules, &opts);
        let theirs = match subtract.is_empty() {
            true => written_and_parsed(page, rules, &opts),
            false => match (pruned(page, subtract), split_rules(rules)) {
                (Some(doc), Ok(parsed)) => {
                    matches_markup(&doc, &parsed, filter_output_limit(page.len()))
                        .map(|markup| text_of_markup(markup, &opts))
                }
                _ => return Ok(false),
            },
        };
        prop_assert_eq!(
            &ours,
            &theirs,
            "page {:?} subtract {:?} rules {:?}",
            page,
            subtract,
            rules
        );
        let Ok(parsed) = split_rules(rules) else {
            return Ok(false);
        };
        let Some(doc) = pruned(page, subtract) else {
            return Ok(false);
        };
        let limit = filter_output_limit(page.len());
        let Some(fed) = feed_matches(&doc, &parsed, limit) else {
            return Ok(false);
        };
        let markup = matches_markup(&doc, &parsed, limit).unwrap_or_default();
        prop_assert_eq!(fed.nonblank, !markup.trim().is_empty());
        prop_assert_eq!(
            dump(&fed.feed.finish()),
            dump(&parse_document(&markup)),
            "page {:?} rules {:?} markup {:?}",
            page,
            rules,
            markup
        );
        Ok(true)
    }

    const WORDS: &[&str] = &[
        "alpha",
        " beta  gamma ",
        "\n",
        "£12.40",
        "x&amp;y",
        "a&lt;b&gt;",
        "  ",
        "tab\tcr\r\nlf",
        "ctl\u{1}x",
        "&nbsp;",
        "\u{85}",
        "é",
    ];
    const TAGS: &[&str] = &[
        "div",
        "p",
        "span",
        "b",
        "i",
        "a",
        "ul",
        "ol",
        "li",
        "h1",
        "h2",
        "pre",
        "section",
        "main",
        "table",
        "tr",
        "td",
        "th",
        "tbody",
        "caption",
        "dl",
        "dt",
        "dd",
        "form",
        "select",
        "option",
        "textarea",
        "title",
        "script",
        "style",
        "noscript",
        "xmp",
        "iframe",
        "svg",
        "math",
        "q",
        "button",
        "label",
        "center",
        "font",
        "nobr",
        "listing",
        "blockquote",
        "object",
        "em",
        "figure",
        "header",
        "image",
        "isindex",
        "param",
        "menu",
        "dir",
    ];
    const CLASSES: &[&str] = &["a", "b"];
    const SUBTRACT: &[&str] = &[
        ".a",
        "li",
        "//b",
        "td, th",
        "//comment()",
        "div > p",
        "xpath://span/text()",
    ];
    /// Markup that libxml2 and html5ever build differently, or that reads differently once
    /// written out.
    const HOSTILE: &[&str] = &[
        "<svg><style>a&lt;b</style><p>out</p></svg>",
        "<svg><title>t&amp;</title><desc><b>d</b></desc></svg>",
        "<script>if (a<b) x='</div>'</script>",
        "<script><!--<script>x</script>y",
        "<style>p{}</style>",
        "<plaintext>rest",
        "<pre>\n\nkeep</pre>",
        "<pre><div>a</div><div>b</div></pre>",
        "<textarea>\nt<b>x</b></textarea>",
        "<a href=x>one<a href=y>two</a></a>",
        "<table>stray<tr><td>c</td></tr><div>d</div></table>",
        "<p><div>in p</div></p>",
        "<select><div>opt</div><option>o</select>",
        "<ul><li>a<li>b<div>c</div></ul>",
        "<h1><h2>x</h2></h1>",
        "<b><p>bold</b>para</p>",
        "<form><form>f</form></form>",
        "<xmp><b>x</b></xmp>",
        "<noscript><p>n</p></noscript>",
        "<iframe>i&amp;</iframe>",
        "<math><mi>x</mi><div>y</div></math>",
        "<dl><dt>t<dd>d<dt>u</dl>",
        "<image src=x>",
        "<listing>\nl</listing>",
        "<table><caption>c<td>x</table>",
        "<button><button>b</button></button>",
        "<nobr>a<nobr>b</nobr></nobr>",
        "<frameset><frame></frameset>",
        "<body hidden>b</body>",
        "<?php x ?>",
        "<p>&#128;&#150;</p>",
    ];
    const RULES: &[&str] = &[
        "//div",
        "//p",
        "//li",
        "//ul",
        "//table",
        "//tr",
        "//td",
        "//*[@class='a']",
        "//a/@href",
        "//text()",
        "//p/text()",
        "xpath:string(//h1)",
        "xpath:count(//li)",
        "//span | //b",
        "//section",
        "//pre",
        "//body",
        "//html",
        "/",
        "//comment()",
        "//td[1]",
        "//main//p",
        "//select",
        "//textarea",
        "//script",
        "//svg",
        "//ol/li[2]",
        "//*[@id='x']",
        "//@class",
        "//h1",
        "//option",
        "//a",
        "xpath1://div[@class='b']",
        "//caption",
        "//dl",
        "//form",
        "//center",
        "//script/text()",
        "//style",
        "//title",
        "//textarea/text()",
        "//*",
        "//p | //div",
    ];

    fn markup() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            prop::sample::select(WORDS).prop_map(str::to_string),
            Just("<br>".to_string()),
            Just("<img src=\"a b\">".to_string()),
            Just("<hr>".to_string()),
            Just("<!-- note -->".to_string()),
            Just("<li>".to_string()),
            Just("<p>".to_string()),
            Just("<input value=x>".to_string()),
            Just("<!--a--!>b-->".to_string()),
            Just("x <!-- <script> --> y".to_string()),
            prop::sample::select(HOSTILE).prop_map(str::to_string),
        ];
        leaf.prop_recursive(5, 60, 4, |inner| {
            (
                prop::sample::select(TAGS),
                prop::option::of(prop::sample::select(CLASSES)),
                any::<bool>(),
                prop::option::of(prop_oneof![
                    Just(" style=\"display:none\""),
                    Just(" hidden"),
                    Just(" href=\" /p?q=1&amp;r=é ü\""),
                    Just(" href=\"/x\""),
                    Just(" style=\"white-space: pre\""),
                    Just(" start=\"3\""),
                    Just(" selected"),
                    Just(" open"),
                ]),
                any::<bool>(),
                prop::collection::vec(inner, 0..4),
            )
                .prop_map(|(tag, class, id, attr, close, children)| {
                    let class = class.map(|c| format!(" class=\"{c}\"")).unwrap_or_default();
                    let id = if id { " id=\"x\"" } else { "" };
                    let end = if close {
                        format!("</{tag}>")
                    } else {
                        String::new()
                    };
                    format!(
                        "<{tag}{class}{id}{}>{}{end}",
                        attr.unwrap_or(""),
                        children.concat()
                    )
                })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]

        #[test]
        fn fed_tokens_build_the_document_the_written_markup_parses_to(
            body in prop::collection::vec(markup(), 1..5),
            rules in prop::collection::vec(prop::sample::select(RULES), 1..3),
            subtract in prop::collection::vec(prop::sample::select(SUBTRACT), 0..3),
            anchors in any::<bool>(),
            doctype in any::<bool>(),
        ) {
            let page = format!(
                "{}<html><head><title>t</title></head><body>{}</body></html>",
                if doctype { "<!DOCTYPE html>" } else { "" },
                body.concat()
            );
            let fed = check_pruned(&page, &subtract, &rules, anchors)?;
            FED.with(|c| {
                let (yes, all) = c.get();
                c.set((yes + u32::from(fed), all + 1));
            });
        }
    }

    #[test]
    fn deep_pages_and_repeated_matches_agree_with_the_other_path() {
        let deep = format!(
            "<body>{}text{}<p>after</p></body>",
            "<div><span>".repeat(1500),
            "</span></div>".repeat(1500)
        );
        for rules in [&["//body"][..], &["(//div)[3]"], &["//p", "//body"]] {
            assert_eq!(check(&deep, rules, false).ok(), Some(true), "{rules:?}");
        }
        // Nested matches repeat their content; the output budget is the other path's to
        // enforce, so these decline when the bound passes it.
        let nested = format!(
            "<body>{}x{}</body>",
            "<div>".repeat(200),
            "</div>".repeat(200)
        );
        assert!(check(&nested, &["//div"], false).is_ok());
        // A subtractive rule that takes the whole page leaves nothing to match; a blank page
        // matches nothing, and a broken rule is still an error on it.
        let opts = TextOptions::default();
        assert_eq!(
            xpath_include_text("<p>x</p>", &["html"], &["//p", "xpath:string(/)"], &opts),
            Ok(XPathText::NotFound)
        );
        for page in ["", "  "] {
            for rules in [&["//p"][..], &["//p["]] {
                assert_eq!(
                    xpath_include_text(page, &[""; 0], rules, &opts),
                    written_and_parsed(page, rules, &opts),
                    "{page:?} {rules:?}"
                );
            }
            assert!(matches!(
                xpath_include_text(page, &[""; 0], &["//p["], &opts),
                Err(FilterError::InvalidXPath { .. })
            ));
        }
    }

    #[test]
    fn most_generated_pages_take_the_token_path() {
        fed_tokens_build_the_document_the_written_markup_parses_to();
        let (yes, all) = FED.with(Cell::get);
        assert!(all >= 1000, "{all} cases");
        assert!(yes * 2 >= all, "tokens fed for {yes} of {all} cases");
    }
}
