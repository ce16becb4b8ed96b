//! Turning a body into what each service understands.
//!
//! Bodies arrive as text, HTML or markdown; services speak plain text, HTML (all of it, or a
//! small subset such as Telegram's), markdown, or Slack's own mrkdwn. Everything goes through
//! one small HTML walker with a per-flavor tag table, so whitespace, entities and unbalanced
//! markup are handled the same way for every service, and truncation can stop at a character
//! budget without cutting a tag in half.

use pulldown_cmark::{Event, Options, Parser, html};

use crate::BodyFormat;

/// Appended where a body was cut to fit a service's limit.
pub(crate) const ELLIPSIS: char = '…';

/// What a rendered body is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    Text,
    /// Discord/Mattermost/Teams markdown.
    Markdown,
    /// Slack's mrkdwn: `*bold*`, `_italic_`, `~strike~`, `<url|text>`.
    Slack,
    /// Telegram's HTML subset: b, i, u, s, a, code, pre, blockquote.
    Telegram,
    /// Pushover's HTML subset: b, i, u, a.
    Pushover,
}

/// Markdown to HTML for HTML-speaking targets.
///
/// Raw HTML in the markdown is escaped, because the markdown is built from page text a third
/// party controls; the one exception is `<del>`, which the diff's markdown format uses for
/// removed text (see `changewatch_core::diff::apply_format`). Single line breaks are kept as
/// breaks: notification bodies are line-oriented, and joining diff lines into one paragraph
/// would make them unreadable.
pub(crate) fn markdown_to_html(md: &str) -> String {
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    opts.insert(Options::ENABLE_TABLES);
    let events = Parser::new_ext(md, opts).map(|e| match e {
        Event::Html(raw) | Event::InlineHtml(raw) => {
            Event::InlineHtml(escape_keeping_del(&raw).into())
        }
        Event::SoftBreak => Event::HardBreak,
        other => other,
    });
    let mut out = String::with_capacity(md.len() * 2);
    html::push_html(&mut out, events);
    out.trim_end().to_string()
}

fn escape_keeping_del(raw: &str) -> String {
    let mut out = escape_html(raw);
    for tag in ["del", "/del"] {
        for variant in [tag.to_string(), tag.to_ascii_uppercase()] {
            out = out.replace(&format!("&lt;{variant}&gt;"), &format!("<{}>", tag));
        }
    }
    out
}

pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Plain text as HTML: escaped, line breaks kept.
pub(crate) fn text_to_html(s: &str) -> String {
    escape_html(s).replace("\r\n", "\n").replace('\n', "<br>\n")
}

/// Converts `body` written in `from` into `to` (text, HTML or markdown).
pub(crate) fn convert(body: &str, from: BodyFormat, to: BodyFormat) -> String {
    match (from, to) {
        (BodyFormat::Text, BodyFormat::Text)
        | (BodyFormat::Html, BodyFormat::Html)
        | (BodyFormat::Markdown, BodyFormat::Markdown) => body.to_string(),
        (BodyFormat::Text, BodyFormat::Html) => text_to_html(body),
        (BodyFormat::Text, BodyFormat::Markdown) => body.to_string(),
        (BodyFormat::Markdown, BodyFormat::Html) => markdown_to_html(body),
        (BodyFormat::Markdown, _) => render(&markdown_to_html(body), Flavor::Text, None),
        (BodyFormat::Html, BodyFormat::Markdown) => render(body, Flavor::Markdown, None),
        (BodyFormat::Html, _) => render(body, Flavor::Text, None),
    }
}

/// A body in `flavor`, from a message body in `format`, cut to `limit` visible characters.
pub(crate) fn for_flavor(
    body: &str,
    format: BodyFormat,
    flavor: Flavor,
    limit: Option<usize>,
) -> String {
    match (format, flavor) {
        (BodyFormat::Html, f) => render(body, f, limit),
        (BodyFormat::Markdown, Flavor::Markdown) => truncate(&markdown_for_chat(body), limit),
        (BodyFormat::Markdown, f) => render(&markdown_to_html(body), f, limit),
        (BodyFormat::Text, Flavor::Text) => truncate(body, limit),
        (BodyFormat::Text, Flavor::Markdown) => truncate(body, limit),
        (BodyFormat::Text, Flavor::Slack) => truncate(&escape_slack(body), limit),
        (BodyFormat::Text, Flavor::Telegram | Flavor::Pushover) => {
            escape_html(&truncate(body, limit))
        }
    }
}

/// Markdown as chat services read it: they have no `<del>`, but do have `~~strike~~`.
pub(crate) fn markdown_for_chat(md: &str) -> String {
    md.replace("<del>", "~~").replace("</del>", "~~")
}

fn escape_slack(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Cuts `s` to at most `limit` characters, the last being [`ELLIPSIS`], preferring to cut at
/// a line or word boundary near the end.
pub(crate) fn truncate(s: &str, limit: Option<usize>) -> String {
    let Some(limit) = limit else {
        return s.to_string();
    };
    if s.chars().count() <= limit {
        return s.to_string();
    }
    let keep = limit.saturating_sub(1);
    let mut cut: String = s.chars().take(keep).collect();
    let window = keep / 10;
    if let Some(pos) = cut.rfind(['\n', ' '])
        && cut[pos..].chars().count() <= window
    {
        cut.truncate(pos);
    }
    let mut out = cut.trim_end().to_string();
    out.push(ELLIPSIS);
    out
}

/// Cuts `s` to at most `limit` bytes on a character boundary, ending in [`ELLIPSIS`].
pub(crate) fn truncate_bytes(s: &str, limit: usize) -> String {
    if s.len() <= limit {
        return s.to_string();
    }
    let mut end = limit.saturating_sub(ELLIPSIS.len_utf8());
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = s[..end].trim_end().to_string();
    out.push(ELLIPSIS);
    out
}

/// One lexical piece of HTML.
#[derive(Debug, PartialEq, Eq)]
enum Token<'a> {
    Text(&'a str),
    Open {
        name: String,
        attrs: Vec<(String, String)>,
    },
    Close(String),
}

fn tokenize(html: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let bytes = html.as_bytes();
    let mut i = 0;
    let mut text_start = 0;
    let mut skip_until: Option<String> = None;
    while i < bytes.len() {
        if bytes[i] != b'<' {
            i += 1;
            continue;
        }
        let rest = &html[i..];
        let next = bytes.get(i + 1).copied().unwrap_or(b' ');
        let end = if rest.starts_with("<!--") {
            rest.find("-->").map(|e| e + 3)
        } else if next == b'!' || next == b'?' || next == b'/' || next.is_ascii_alphabetic() {
            tag_end(rest)
        } else {
            None
        };
        let Some(len) = end else {
            i += 1;
            continue;
        };
        if text_start < i && skip_until.is_none() {
            out.push(Token::Text(&html[text_start..i]));
        }
        let tag = &rest[..len];
        i += len;
        text_start = i;
        if tag.starts_with("<!") || tag.starts_with("<?") {
            continue;
        }
        let closing = tag.starts_with("</");
        let inner = tag
            .trim_start_matches('<')
            .trim_start_matches('/')
            .trim_end_matches('>')
            .trim_end_matches('/');
        let name_len = inner
            .find(|c: char| c.is_whitespace() || c == '/')
            .unwrap_or(inner.len());
        let name = inner[..name_len].to_ascii_lowercase();
        if let Some(waiting) = &skip_until {
            if closing && *waiting == name {
                skip_until = None;
            }
            continue;
        }
        if closing {
            out.push(Token::Close(name));
        } else {
            if name == "script" || name == "style" || name == "head" || name == "title" {
                skip_until = Some(name);
                continue;
            }
            out.push(Token::Open {
                attrs: parse_attrs(&inner[name_len..]),
                name,
            });
        }
    }
    if text_start < bytes.len() && skip_until.is_none() {
        out.push(Token::Text(&html[text_start..]));
    }
    out
}

/// Length of the tag starting `s` (which starts with `<`), honouring quoted attribute values.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Some(i + 1),
            (None, '<') => return None,
            _ => {}
        }
    }
    None
}

fn parse_attrs(s: &str) -> Vec<(String, String)> {
    let mut attrs = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let name_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_ascii_lowercase();
        rest = rest[name_end..].trim_start();
        let mut value = String::new();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            if let Some(q) = after.chars().next().filter(|c| *c == '"' || *c == '\'') {
                let body = &after[1..];
                let end = body.find(q).unwrap_or(body.len());
                value = decode_entities(&body[..end]);
                rest = body.get(end + 1..).unwrap_or("").trim_start();
            } else {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                value = decode_entities(&after[..end]);
                rest = after[end..].trim_start();
            }
        }
        let stray = name_end == 0 && value.is_empty();
        if !name.is_empty() {
            attrs.push((name, value));
        }
        if stray {
            // Not an attribute at all (a stray `=`): skip a character so the loop ends.
            rest = rest.get(1..).unwrap_or("");
        }
    }
    attrs
}

/// A no-break space stand-in that whitespace collapsing leaves alone.
const NBSP: char = '\u{a0}';

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        let end = rest[1..].find(';').map(|e| e + 1).filter(|e| *e <= 12);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some(NBSP),
                "ndash" => Some('–'),
                "mdash" => Some('—'),
                "hellip" => Some('…'),
                "copy" => Some('©'),
                n if n.starts_with("#x") || n.starts_with("#X") => u32::from_str_radix(&n[2..], 16)
                    .ok()
                    .and_then(char::from_u32),
                n if n.starts_with('#') => n[1..].parse().ok().and_then(char::from_u32),
                _ => None,
            };
            c.map(|c| (c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Plain text as CommonMark that renders literally, as apprise's `text_to_markdown` writes it:
/// every CommonMark punctuation character escaped, and `&` where it would start an entity.
pub(crate) fn text_to_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for (i, c) in text.char_indices() {
        let entity = c == '&' && {
            let rest = &text[i + 1..];
            let name = rest.strip_prefix('#').unwrap_or(rest);
            let len = name.bytes().take_while(u8::is_ascii_alphanumeric).count();
            (1..=32).contains(&len) && name[len..].starts_with(';')
        };
        if entity || "\\_*[]()~`>#+=|{}.!-".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// CommonMark as Telegram's legacy Markdown (parse mode `MARKDOWN`), as apprise translates a
/// markdown body for Telegram: headings and `**bold**` become `*bold*`, `*em*` `_em_`, code
/// and links stay, list items become `- ` / `1. ` lines, and the characters that are markup
/// there (`_ * ` [`) are escaped where they are text.
pub(crate) fn markdown_to_telegram(body: &str) -> String {
    use pulldown_cmark::{CodeBlockKind, Tag, TagEnd};
    let mut out = String::with_capacity(body.len());
    let mut lists: Vec<Option<u64>> = Vec::new();
    let mut links: Vec<String> = Vec::new();
    let mut code_block = false;
    let text = |out: &mut String, t: &str| {
        for c in t.chars() {
            if matches!(c, '_' | '*' | '`' | '[') {
                out.push('\\');
            }
            out.push(c);
        }
    };
    for event in Parser::new_ext(body, Options::empty()) {
        match event {
            Event::Start(Tag::Heading { .. } | Tag::Strong) | Event::End(TagEnd::Strong) => {
                out.push('*');
            }
            // apprise rewrites the source line by line: the blank line after a heading stays.
            Event::End(TagEnd::Heading(_)) => out.push_str("*\n\n"),
            Event::Start(Tag::Emphasis) | Event::End(TagEnd::Emphasis) => out.push('_'),
            Event::Start(Tag::Link { dest_url, .. }) => {
                out.push('[');
                links.push(dest_url.to_string());
            }
            Event::End(TagEnd::Link) => {
                out.push_str("](");
                out.push_str(&links.pop().unwrap_or_default());
                out.push(')');
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                code_block = true;
                out.push_str("```");
                if let CodeBlockKind::Fenced(lang) = kind {
                    out.push_str(&lang);
                }
                out.push('\n');
            }
            Event::End(TagEnd::CodeBlock) => {
                code_block = false;
                out.push_str("```\n");
            }
            Event::Start(Tag::List(first)) => lists.push(first),
            Event::End(TagEnd::List(_)) => {
                lists.pop();
            }
            Event::Start(Tag::Item) => {
                out.push_str(&"  ".repeat(lists.len().saturating_sub(1)));
                match lists.last_mut() {
                    Some(Some(n)) => {
                        out.push_str(&format!("{n}. "));
                        *n += 1;
                    }
                    _ => out.push_str("- "),
                }
            }
            Event::End(TagEnd::Item) if !out.ends_with('\n') => out.push('\n'),
            Event::End(TagEnd::Paragraph) => {
                out.push('\n');
                if lists.is_empty() {
                    out.push('\n');
                }
            }
            Event::Text(t) if code_block => out.push_str(&t),
            Event::Text(t) | Event::Html(t) | Event::InlineHtml(t) => text(&mut out, &t),
            Event::Code(t) => {
                out.push('`');
                out.push_str(&t);
                out.push('`');
            }
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            Event::Rule => out.push_str("———\n"),
            _ => {}
        }
    }
    out.trim().to_string()
}

/// Renders HTML as `flavor`, keeping at most about `limit` visible characters.
pub(crate) fn render(html: &str, flavor: Flavor, limit: Option<usize>) -> String {
    let mut r = Renderer::new(flavor, limit);
    for token in tokenize(html) {
        if r.full {
            // Closing tags still matter for balance; the stack closes them at the end.
            continue;
        }
        match token {
            Token::Text(t) => r.text(&decode_entities(t)),
            Token::Open { name, attrs } => r.open(&name, &attrs),
            Token::Close(name) => r.close(&name),
        }
    }
    r.finish()
}

#[derive(Debug)]
struct Renderer {
    flavor: Flavor,
    out: String,
    /// Open formatting: (tag name, what closes it in the output).
    stack: Vec<(String, String)>,
    /// Ordered-list counters, `None` for bulleted lists.
    lists: Vec<Option<usize>>,
    pending_space: bool,
    line_start: bool,
    pre: usize,
    budget: Option<usize>,
    used: usize,
    full: bool,
}

impl Renderer {
    fn new(flavor: Flavor, limit: Option<usize>) -> Self {
        // Markup and closing markers are not counted as they are written, so keep a margin for
        // the ones added at the end.
        let budget = limit.map(|l| if l > 64 { l - 16 } else { l.saturating_sub(1) });
        Renderer {
            flavor,
            out: String::new(),
            stack: Vec::new(),
            lists: Vec::new(),
            pending_space: false,
            line_start: true,
            pre: 0,
            budget,
            used: 0,
            full: false,
        }
    }

    fn push_char(&mut self, c: char) {
        if self.full {
            return;
        }
        if let Some(b) = self.budget
            && self.used >= b
        {
            self.out.truncate(self.out.trim_end().len());
            self.out.push(ELLIPSIS);
            self.full = true;
            return;
        }
        self.used += 1;
        match self.flavor {
            Flavor::Text => self.out.push(c),
            Flavor::Telegram | Flavor::Pushover => match c {
                '&' => self.out.push_str("&amp;"),
                '<' => self.out.push_str("&lt;"),
                '>' => self.out.push_str("&gt;"),
                c => self.out.push(c),
            },
            Flavor::Slack => match c {
                '&' => self.out.push_str("&amp;"),
                '<' => self.out.push_str("&lt;"),
                '>' => self.out.push_str("&gt;"),
                c => self.out.push(c),
            },
            Flavor::Markdown => {
                if self.pre == 0 && matches!(c, '\\' | '*' | '_' | '~' | '`' | '|') {
                    self.out.push('\\');
                }
                self.out.push(c);
            }
        }
    }

    fn flush_space(&mut self) {
        if self.pending_space && !self.line_start {
            self.push_char(' ');
        }
        self.pending_space = false;
    }

    fn text(&mut self, t: &str) {
        if self.pre > 0 {
            for c in t.chars() {
                if c == '\n' {
                    self.newline();
                } else {
                    self.push_char(if c == NBSP { ' ' } else { c });
                    self.line_start = false;
                }
            }
            return;
        }
        for c in t.chars() {
            if c.is_whitespace() && c != NBSP {
                self.pending_space = true;
            } else {
                self.flush_space();
                self.push_char(if c == NBSP { ' ' } else { c });
                self.line_start = false;
            }
        }
    }

    fn markup(&mut self, s: &str) {
        if !self.full {
            self.out.push_str(s);
        }
    }

    fn newline(&mut self) {
        if self.full {
            return;
        }
        self.out.push('\n');
        self.used += 1;
        self.line_start = true;
        self.pending_space = false;
    }

    /// Starts a new line unless already at the start of one.
    fn block(&mut self) {
        if !self.line_start {
            self.newline();
        }
        self.pending_space = false;
    }

    /// Ends a paragraph-like block with one blank line (Telegram: a line break only, as
    /// apprise's reducer writes blocks there).
    fn paragraph_end(&mut self) {
        self.block();
        if self.flavor == Flavor::Telegram {
            return;
        }
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.newline();
        }
    }

    fn inline(&mut self, name: &str, open: &str, close: &str) {
        self.flush_space();
        self.markup(open);
        self.stack.push((name.to_string(), close.to_string()));
    }

    fn open(&mut self, name: &str, attrs: &[(String, String)]) {
        let f = self.flavor;
        let attr = |k: &str| {
            attrs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        match name {
            "br" => self.newline(),
            "p" | "div" | "table" | "section" | "article" | "header" | "footer" | "form" => {
                self.block()
            }
            "tr" => self.block(),
            "td" | "th" => self.pending_space = true,
            "hr" => {
                self.block();
                if f != Flavor::Telegram && f != Flavor::Pushover {
                    self.text("———");
                    self.newline();
                }
            }
            "ul" => {
                self.block();
                self.lists.push(None);
            }
            "ol" => {
                self.block();
                self.lists.push(Some(0));
            }
            "li" => {
                self.block();
                let depth = self.lists.len().saturating_sub(1);
                self.markup(&"  ".repeat(depth));
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        format!("{n}. ")
                    }
                    _ => "• ".to_string(),
                };
                self.text(marker.trim_end());
                self.push_char(' ');
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                self.paragraph_end_if_needed();
                let (o, c) = self.bold();
                self.inline(name, &o, &c);
            }
            "b" | "strong" => {
                let (o, c) = self.bold();
                self.inline(name, &o, &c);
            }
            "i" | "em" => {
                let (o, c) = match f {
                    Flavor::Text => ("", ""),
                    Flavor::Markdown | Flavor::Slack => ("_", "_"),
                    Flavor::Telegram | Flavor::Pushover => ("<i>", "</i>"),
                };
                self.inline(name, o, c);
            }
            "u" | "ins" => {
                let (o, c) = match f {
                    Flavor::Markdown => ("__", "__"),
                    Flavor::Telegram | Flavor::Pushover => ("<u>", "</u>"),
                    _ => ("", ""),
                };
                self.inline(name, o, c);
            }
            "s" | "strike" | "del" => {
                let (o, c) = match f {
                    Flavor::Markdown => ("~~", "~~"),
                    Flavor::Slack => ("~", "~"),
                    Flavor::Telegram => ("<s>", "</s>"),
                    _ => ("", ""),
                };
                self.inline(name, o, c);
            }
            "code" if self.pre == 0 => {
                let (o, c) = match f {
                    Flavor::Markdown | Flavor::Slack => ("`", "`"),
                    Flavor::Telegram => ("<code>", "</code>"),
                    _ => ("", ""),
                };
                self.inline(name, o, c);
            }
            "pre" => {
                self.block();
                let (o, c) = match f {
                    Flavor::Markdown | Flavor::Slack => ("```\n", "\n```"),
                    Flavor::Telegram => ("<pre>", "</pre>"),
                    _ => ("", ""),
                };
                self.markup(o);
                self.stack.push((name.to_string(), c.to_string()));
                self.pre += 1;
            }
            "blockquote" => {
                self.block();
                if f == Flavor::Telegram {
                    self.markup("<blockquote>");
                    self.stack.push((name.to_string(), "</blockquote>".into()));
                }
            }
            "a" => {
                let href = attr("href");
                let safe = href.starts_with("http://")
                    || href.starts_with("https://")
                    || href.starts_with("mailto:")
                    || href.starts_with("tg://");
                if !safe {
                    return;
                }
                let (o, c) = match f {
                    Flavor::Text => (String::new(), format!(" ({href})")),
                    Flavor::Markdown => ("[".into(), format!("]({href})")),
                    Flavor::Slack => (format!("<{href}|"), ">".into()),
                    Flavor::Telegram | Flavor::Pushover => (
                        format!("<a href=\"{}\">", escape_html(&href)),
                        "</a>".into(),
                    ),
                };
                self.inline(name, &o, &c);
            }
            "img" => {
                let alt = attr("alt");
                if !alt.is_empty() {
                    self.text(&alt);
                }
            }
            _ => {}
        }
    }

    fn paragraph_end_if_needed(&mut self) {
        if !self.out.is_empty() {
            self.paragraph_end();
        }
    }

    fn bold(&self) -> (String, String) {
        let (o, c) = match self.flavor {
            Flavor::Text => ("", ""),
            Flavor::Markdown => ("**", "**"),
            Flavor::Slack => ("*", "*"),
            Flavor::Telegram | Flavor::Pushover => ("<b>", "</b>"),
        };
        (o.to_string(), c.to_string())
    }

    fn close(&mut self, name: &str) {
        if self.stack.iter().any(|(n, _)| n == name) {
            while let Some((n, closing)) = self.stack.pop() {
                self.markup(&closing);
                if n == "pre" {
                    self.pre = self.pre.saturating_sub(1);
                }
                if n == name {
                    break;
                }
            }
        }
        match name {
            "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => self.paragraph_end(),
            "div" | "tr" | "table" | "li" | "pre" | "blockquote" | "section" | "article"
            | "header" | "footer" => self.block(),
            "ul" | "ol" => {
                self.lists.pop();
                self.block();
            }
            _ => {}
        }
    }

    fn finish(mut self) -> String {
        while let Some((_, closing)) = self.stack.pop() {
            self.out.push_str(&closing);
        }
        // No trailing blank lines, and never more than one blank line in a row.
        let mut out = String::with_capacity(self.out.len());
        let mut newlines = 0;
        for c in self.out.trim().chars() {
            if c == '\n' {
                newlines += 1;
                if newlines > 2 {
                    continue;
                }
            } else {
                newlines = 0;
            }
            out.push(c);
        }
        // apprise's reducers write their own line break: Telegram has no `<br>` and takes
        // CRLF, Pushover's apps show `<br>`.
        match self.flavor {
            Flavor::Telegram => out.replace('\n', "\r\n"),
            Flavor::Pushover => out.replace('\n', "<br>"),
            _ => out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_to_text_collapses_and_breaks() {
        let html = "<p>Hello   <b>world</b></p><p>line one<br>\nline&nbsp;&nbsp;two &amp; more</p><ul><li>a</li><li>b</li></ul>";
        assert_eq!(
            render(html, Flavor::Text, None),
            "Hello world\n\nline one\nline  two & more\n\n• a\n• b"
        );
    }

    #[test]
    fn scripts_and_comments_vanish() {
        let html = "<html><head><title>t</title><style>p{}</style></head><body><!-- x -->a<script>alert(1)</script>b</body></html>";
        assert_eq!(render(html, Flavor::Text, None), "ab");
    }

    #[test]
    fn telegram_subset_is_balanced() {
        let html = "<div><h2>Title</h2><strong>bold <em>both</strong> after</em> <span class=x>plain</span> <del>gone</del> 1 &lt; 2 <a href=\"https://e.com/?a=1&amp;b=2\">link</a> <a href=\"javascript:x\">js</a></div>";
        assert_eq!(
            render(html, Flavor::Telegram, None),
            "<b>Title</b>\r\n<b>bold <i>both</i></b> after plain <s>gone</s> 1 &lt; 2 <a href=\"https://e.com/?a=1&amp;b=2\">link</a> js"
        );
        // An unclosed tag is closed at the end.
        assert_eq!(render("<b>open", Flavor::Telegram, None), "<b>open</b>");
    }

    #[test]
    fn markdown_and_slack_flavors() {
        let html = "<b>bold</b> <i>it</i> <del>old</del> <a href=\"https://x.y\">x</a> a*b";
        assert_eq!(
            render(html, Flavor::Markdown, None),
            "**bold** _it_ ~~old~~ [x](https://x.y) a\\*b"
        );
        assert_eq!(
            render(html, Flavor::Slack, None),
            "*bold* _it_ ~old~ <https://x.y|x> a*b"
        );
    }

    #[test]
    fn markdown_to_html_escapes_raw_html_but_keeps_del() {
        let html = markdown_to_html("**added** <del>removed</del> <script>x</script>\nnext line");
        assert_eq!(
            html,
            "<p><strong>added</strong> <del>removed</del> &lt;script&gt;x&lt;/script&gt;<br />\nnext line</p>"
        );
    }

    #[test]
    fn truncation_marks_the_cut() {
        let s = "word ".repeat(100);
        let t = truncate(&s, Some(50));
        assert!(t.chars().count() <= 50);
        assert!(t.ends_with(ELLIPSIS));
        assert_eq!(truncate("short", Some(50)), "short");
        let html = format!("<b>{}</b>", "x".repeat(500));
        let r = render(&html, Flavor::Telegram, Some(100));
        assert!(r.starts_with("<b>x") && r.ends_with("…</b>"), "{r}");
        assert_eq!(truncate_bytes("ééé", 5), "é…");
        assert_eq!(truncate_bytes("abcdef", 5), "ab…");
    }

    #[test]
    fn conversions() {
        assert_eq!(
            convert("a < b\nc", BodyFormat::Text, BodyFormat::Html),
            "a &lt; b<br>\nc"
        );
        assert_eq!(convert("<p>x</p>", BodyFormat::Html, BodyFormat::Text), "x");
        assert_eq!(
            convert("**x**", BodyFormat::Markdown, BodyFormat::Text),
            "x"
        );
        assert_eq!(convert("same", BodyFormat::Html, BodyFormat::Html), "same");
    }
}
