//! Notification title/body templates: upstream's Jinja2 tokens over sandboxed minijinja, and
//! the output formats.
//!
//! Rendering follows upstream's order, because users' templates depend on it: the template
//! is rendered with *raw* diffs (placemarkers such as `@added_PLACEMARKER_OPEN` still in
//! them), and only the rendered text has its placemarkers turned into the markup of the
//! format. That way a filter such as `{{ diff|upper }}` or `{{ diff|truncate(500) }}` works
//! on text and never cuts or mangles a `<span>`.
//!
//! Page text is data, never template source: snapshots and diffs are context values, so a
//! page containing `{{ 7*7 }}` renders those characters literally. In HTML formats the
//! page-derived values are HTML-escaped before the template sees them (upstream's fix for
//! GHSA-q8xq-qg4x-wphg), while markup written in the template itself stays live.
//!
//! Differences from upstream, all deliberate:
//! - The title is rendered from unescaped values even for HTML bodies: titles are plain
//!   text everywhere (mail subjects, embed titles), where `&lt;` would show as is.
//! - `None` prints as nothing instead of "None" (see `env::format_value`).
//! - `raw_diff` is always the diff; upstream leaves it empty unless `diff` is also used.
//! - `watch_title` and `llm_summary` are escaped in HTML formats too: a page's `<title>`
//!   and a summary of the page are as attacker-controlled as the page.
//! - The "edit link" of alert notifications has one slash after the host, not two.
//! - `regex_replace` (upstream's custom filter) is not provided.

mod env;
mod tokens;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use changewatch_core::diff::{
    ADDED_PLACEMARKER_CLOSED, ADDED_PLACEMARKER_OPEN, CHANGED_INTO_PLACEMARKER_CLOSED,
    CHANGED_INTO_PLACEMARKER_OPEN, CHANGED_PLACEMARKER_CLOSED, CHANGED_PLACEMARKER_OPEN,
    DiffFormat, REMOVED_PLACEMARKER_CLOSED, REMOVED_PLACEMARKER_OPEN, escape_html,
    replace_placemarkers,
};
use minijinja::ErrorKind;
use minijinja::value::Value;
use serde::{Deserialize, Serialize};

use crate::message::{BodyFormat, Message};
use tokens::{Build, DiffSource, build_context};

/// Every token a template may use (upstream's `NotificationContextData` keys plus
/// `watch_open_url` and `edit_url`). Names outside this list fail [`validate_template`].
pub const TOKENS: &[&str] = &[
    "base_url",
    "change_datetime",
    "current_snapshot",
    "diff",
    "diff_added",
    "diff_added_clean",
    "diff_changed_from",
    "diff_changed_to",
    "diff_clean",
    "diff_full",
    "diff_full_clean",
    "diff_patch",
    "diff_removed",
    "diff_removed_clean",
    "diff_url",
    "edit_url",
    "llm_intent",
    "llm_summary",
    "notification_timestamp",
    "preview_url",
    "prev_snapshot",
    "raw_diff",
    "restock",
    "screenshot",
    "timestamp_from",
    "timestamp_to",
    "triggered_text",
    "uuid",
    "watch_mime_type",
    "watch_open_url",
    "watch_label",
    "watch_tag",
    "watch_title",
    "watch_url",
    "watch_uuid",
];

/// Upstream's "send test notification" stand-in for the previous snapshot, used while a
/// watch has fewer than two snapshots.
pub const TEST_PREV_SNAPSHOT: &str = "Example text: example test\nExample text: change detection is cool\nExample text: some more examples\n";
/// The current-snapshot counterpart of [`TEST_PREV_SNAPSHOT`].
pub const TEST_CURRENT_SNAPSHOT: &str = "Example text: example test\nExample text: change detection is fantastic\nExample text: even more examples\nExample text: a lot more examples";

/// Upstream's title of the filter-not-found alert.
pub const FILTER_FAILURE_TITLE: &str =
    "Changedetection.io - Alert - CSS/xPath filter was not present in the page";

/// Everything a content-change notification is rendered from. Plain data (serde), so a
/// notification can be queued and rendered later, elsewhere.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChangeContext {
    /// The instance's external URL (`BASE_URL`); may be empty, then links are relative.
    pub base_url: String,
    pub watch_uuid: String,
    pub watch_url: String,
    /// The link a reader should open, when it differs from the fetched URL; `watch_url`
    /// when unset.
    pub watch_open_url: Option<String>,
    /// The watch's label: its title, else the page title, else its URL.
    pub watch_title: String,
    /// RSS items only: upstream's feed label (`get_watch_label`: the title when titles are
    /// shown in the list, else the URL). Notifications leave it empty, as upstream leaves it
    /// undefined there.
    pub watch_label: String,
    /// Titles of the watch's tags, joined with ", ".
    pub watch_tag: String,
    pub watch_mime_type: Option<String>,
    pub prev_snapshot: String,
    pub current_snapshot: String,
    /// Epoch seconds of the two snapshots compared; also pick the versions of `diff_url`.
    pub timestamp_from: Option<i64>,
    pub timestamp_to: Option<i64>,
    /// Lines of the current snapshot that matched the watch's trigger text.
    pub triggered_text: String,
    /// Epoch seconds when the notification was queued.
    pub notification_timestamp: f64,
    /// IANA name `change_datetime` and `{% now %}` are shown in; UTC when unset or unknown.
    pub timezone: Option<String>,
    /// Compare lines with whitespace runs collapsed, as `diff(ignore_junk=True)` does.
    pub ignore_whitespace: bool,
    /// Path or URL of a screenshot to attach; none for text watches.
    pub screenshot: Option<String>,
    /// Restock watches' `{price, in_stock, ...}`; empty for other watches.
    pub restock: BTreeMap<String, serde_json::Value>,
    pub llm_summary: String,
    pub llm_intent: String,
}

/// Why a notification could not be rendered. `field` is "title", "body" or "url".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("notification {field} is not a valid Jinja2 template: {message}")]
    Syntax {
        field: &'static str,
        message: String,
    },
    #[error(
        "notification {field} template ran out of its execution budget (endless or huge loop?)"
    )]
    Budget { field: &'static str },
    #[error("notification {field} template failed: {message}")]
    Template {
        field: &'static str,
        message: String,
    },
    /// An error that crossed the process sandbox as text, or the sandbox's verdict when a
    /// template blew its time or memory budget.
    #[error("{0}")]
    Isolated(String),
}

fn format_of(format: DiffFormat) -> BodyFormat {
    match format {
        DiffFormat::Text => BodyFormat::Text,
        DiffFormat::Html | DiffFormat::HtmlColor => BodyFormat::Html,
        DiffFormat::Markdown => BodyFormat::Markdown,
    }
}

/// Renders one template. `escape` escapes page-derived values (HTML bodies only).
fn render_one(
    field: &'static str,
    template: &str,
    ctx: &ChangeContext,
    source: &std::sync::Arc<DiffSource>,
    escape: bool,
) -> Result<String, RenderError> {
    if !template.contains('{') {
        // Jinja2 drops one trailing newline even from a template without tags.
        return Ok(template
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(template)
            .to_string());
    }
    let src = env::rewrite_now_tags(template);
    let tmpl = env::ENV
        .template_from_str(&src)
        .map_err(|e| RenderError::Syntax {
            field,
            message: env::describe(&e),
        })?;
    let used = tmpl.undeclared_variables(false);
    let called = env::called_names(&src);
    let values = build_context(&Build {
        ctx,
        source,
        used: &used,
        called: &called,
        escape,
    });
    let mut out = env::CappedWriter::default();
    match tmpl.render_captured_to(Value::from(values), &mut out) {
        Ok(_) => {}
        // Upstream cuts the output at the payload cap; the render stopped there.
        Err(_) if out.overflowed => {}
        Err(e) if e.kind() == ErrorKind::OutOfFuel => return Err(RenderError::Budget { field }),
        Err(e) => {
            return Err(RenderError::Template {
                field,
                message: env::describe(&e),
            });
        }
    }
    Ok(out.into_string())
}

/// Upstream's `newline_re.sub('<br>\n', body)`.
fn html_line_breaks(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("<br>\n");
            }
            '\n' => out.push_str("<br>\n"),
            _ => out.push(c),
        }
    }
    out
}

/// Every placemarker, for [`canonical_markers`].
const MARKERS: [&str; 8] = [
    REMOVED_PLACEMARKER_OPEN,
    REMOVED_PLACEMARKER_CLOSED,
    ADDED_PLACEMARKER_OPEN,
    ADDED_PLACEMARKER_CLOSED,
    CHANGED_PLACEMARKER_OPEN,
    CHANGED_PLACEMARKER_CLOSED,
    CHANGED_INTO_PLACEMARKER_OPEN,
    CHANGED_INTO_PLACEMARKER_CLOSED,
];

/// Restores the spelling of placemarkers that a case filter changed (`{{ diff|upper }}`
/// gives `@ADDED_PLACEMARKER_OPEN`), so they still turn into markup. Upstream leaves
/// them in the message as is.
fn canonical_markers(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut pos = 0;
    while let Some(rel) = text[pos..].find('@') {
        let at = pos + rel;
        pos = at + 1;
        let Some(marker) = MARKERS.iter().find(|m| {
            bytes
                .get(at..at + m.len())
                .is_some_and(|b| b.eq_ignore_ascii_case(m.as_bytes()))
        }) else {
            continue;
        };
        if &text[at..at + marker.len()] == *marker {
            pos = at + marker.len();
            continue;
        }
        let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
        buf.push_str(&text[copied..at]);
        buf.push_str(marker);
        copied = at + marker.len();
        pos = copied;
    }
    match out {
        Some(mut buf) => {
            buf.push_str(&text[copied..]);
            Cow::Owned(buf)
        }
        None => Cow::Borrowed(text),
    }
}

/// The post-template steps of upstream's handler for a body rendered by [`render_raw`]:
/// placemarkers to the format's markup, and for HTML `&nbsp;&nbsp;` for double spaces and
/// `<br>` line breaks. A transport with its own markers (Telegram's `<s>`/`<b>`, Discord's
/// `~~`) replaces the placemarkers itself instead of calling this.
pub fn finish_body(body: &str, format: DiffFormat) -> String {
    let body = canonical_markers(body);
    let body = body.as_ref();
    match format {
        DiffFormat::Text => replace_placemarkers(body, format),
        DiffFormat::Html | DiffFormat::HtmlColor => {
            // Keeps the indentation of page text visible; single spaces stay spaces.
            let body = body.replace("  ", "&nbsp;&nbsp;");
            html_line_breaks(&replace_placemarkers(&body, format))
        }
        // A `---` right under a line of text would make it a setext heading.
        DiffFormat::Markdown => replace_placemarkers(body, format).replace("---", "\n\n---\n\n"),
    }
}

/// Renders a content-change notification from the resolved title and body templates.
///
/// Only the tokens the templates name are computed, and a diff token's diff only when it
/// is printed or called, so an unused `{{diff_full}}` of a large page costs nothing.
pub fn render(
    title_tpl: &str,
    body_tpl: &str,
    ctx: &ChangeContext,
    format: DiffFormat,
) -> Result<Message, RenderError> {
    let mut message = render_raw(title_tpl, body_tpl, ctx, format)?;
    message.body = finish_body(&message.body, format);
    Ok(message)
}

/// [`render`] without [`finish_body`]: the body still holds the diff placemarkers (page
/// text already escaped for HTML formats), for transports that mark changes their own way.
/// The title is final.
pub fn render_raw(
    title_tpl: &str,
    body_tpl: &str,
    ctx: &ChangeContext,
    format: DiffFormat,
) -> Result<Message, RenderError> {
    let source = DiffSource::new(ctx, format);
    let title = render_one("title", title_tpl, ctx, &source, false)?;
    let body = render_one("body", body_tpl, ctx, &source, format.is_html())?;
    Ok(Message {
        // Titles are plain text for every service (mail subjects, embed titles).
        title: replace_placemarkers(&canonical_markers(&title), DiffFormat::Text),
        body,
        format: format_of(format),
        attachments: Vec::new(),
    })
}

/// Renders a notification URL template (`ntfy://topic?click={{watch_url}}`). Values are
/// not HTML-escaped: they end up in a URL, not in markup.
pub fn render_url(
    url_tpl: &str,
    ctx: &ChangeContext,
    format: DiffFormat,
) -> Result<String, RenderError> {
    let source = DiffSource::new(ctx, format);
    let url = render_one("url", url_tpl, ctx, &source, false)?;
    Ok(replace_placemarkers(
        &canonical_markers(&url),
        DiffFormat::Text,
    ))
}

/// Renders a request template at fetch time, as upstream's `jinja_render(template_str=…)`
/// does for a watch's URL, header values and body: no variables (a name renders as nothing),
/// `{% now %}` and the filters, within the notification limits (fuel, recursion, output).
/// A text without template markup only loses one trailing newline, as Jinja2 drops it (no
/// template engine runs for it). The error is a one-line description of what failed.
pub fn render_request_template(template: &str) -> Result<String, String> {
    if !changewatch_core::model::has_template_markup(template) {
        let text = template.strip_suffix('\n').unwrap_or(template);
        return Ok(text.strip_suffix('\r').unwrap_or(text).to_string());
    }
    let src = env::rewrite_now_tags(template);
    let tmpl = env::ENV
        .template_from_str(&src)
        .map_err(|e| format!("not a valid Jinja2 template: {}", env::describe(&e)))?;
    let mut out = env::CappedWriter::default();
    match tmpl.render_captured_to(Value::from(tokens::request_context()), &mut out) {
        Ok(_) => Ok(out.into_string()),
        Err(_) if out.overflowed => Err("the template's output is too large".into()),
        Err(e) if e.kind() == ErrorKind::OutOfFuel => {
            Err("the template ran out of its execution budget (endless or huge loop?)".into())
        }
        Err(e) => Err(env::describe(&e)),
    }
}

/// Renders the templates of a "send test notification" action, as upstream does: the
/// real last two snapshots when the caller has them, otherwise (both snapshots empty)
/// [`TEST_PREV_SNAPSHOT`] and [`TEST_CURRENT_SNAPSHOT`], so the diff tokens show something.
/// Empty templates become "Test title" / "Test body".
pub fn render_test(
    title_tpl: &str,
    body_tpl: &str,
    ctx: &ChangeContext,
    format: DiffFormat,
) -> Result<Message, RenderError> {
    let mut ctx = ctx.clone();
    if ctx.prev_snapshot.is_empty() && ctx.current_snapshot.is_empty() {
        ctx.prev_snapshot = TEST_PREV_SNAPSHOT.to_string();
        ctx.current_snapshot = TEST_CURRENT_SNAPSHOT.to_string();
    }
    let title = if title_tpl.trim().is_empty() {
        "Test title"
    } else {
        title_tpl.trim()
    };
    let body = if body_tpl.trim().is_empty() {
        "Test body"
    } else {
        body_tpl.trim()
    };
    render(title, body, &ctx, format)
}

fn validation_message(err: &RenderError) -> String {
    match err {
        RenderError::Syntax { message, .. } => {
            format!("This is not a valid Jinja2 template: {message}")
        }
        RenderError::Budget { .. } => {
            "This template takes too long to render (endless or huge loop?)".to_string()
        }
        RenderError::Isolated(message) => message.clone(),
        RenderError::Template { message, .. } => {
            if message.starts_with("unknown") {
                format!("A variable or function is not defined: {message}")
            } else {
                format!("This is not a valid Jinja2 template: {message}")
            }
        }
    }
}

/// A context with a value in every token, for trial renders of user templates.
fn placeholder_context() -> ChangeContext {
    ChangeContext {
        base_url: "https://changedetection.example".into(),
        watch_uuid: "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX".into(),
        watch_url: "https://WATCH-PLACE-HOLDER/".into(),
        watch_title: "Watch title".into(),
        watch_tag: "Tag".into(),
        watch_mime_type: Some("text/html".into()),
        prev_snapshot: TEST_PREV_SNAPSHOT.into(),
        current_snapshot: TEST_CURRENT_SNAPSHOT.into(),
        timestamp_from: Some(1_700_000_000),
        timestamp_to: Some(1_700_000_060),
        triggered_text: "Example text".into(),
        notification_timestamp: 1_700_000_061.0,
        llm_summary: "Summary".into(),
        llm_intent: "Intent".into(),
        ..ChangeContext::default()
    }
}

/// Checks a title, body or URL template as upstream's form validator does: it must parse,
/// name only known tokens, and render against placeholder values within the same limits
/// real renders have. The error is a message for the form field.
pub fn validate_template(src: &str) -> Result<(), String> {
    let prepared = env::rewrite_now_tags(src);
    let tmpl = env::ENV
        .template_from_str(&prepared)
        .map_err(|e| format!("This is not a valid Jinja2 template: {}", env::describe(&e)))?;
    let known: HashSet<&str> = TOKENS
        .iter()
        .copied()
        .chain(env::ENV.globals().map(|(name, _)| name))
        .chain(std::iter::once(env::NOW_FN))
        .collect();
    let mut unknown: Vec<String> = tmpl
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| !known.contains(name.as_str()))
        .collect();
    if !unknown.is_empty() {
        unknown.sort();
        return Err(format!(
            "The following tokens used in the notification are not valid: {}",
            unknown.join(", ")
        ));
    }
    let ctx = placeholder_context();
    let source = DiffSource::new(&ctx, DiffFormat::HtmlColor);
    render_one("body", src, &ctx, &source, true)
        .map(drop)
        .map_err(|e| validation_message(&e))
}

/// Body of the alert notifications: upstream's text, links made clickable in HTML formats.
fn alert_body(paragraphs: &[Vec<Piece<'_>>], format: DiffFormat) -> String {
    let mut out = String::new();
    for (i, para) in paragraphs.iter().enumerate() {
        if i > 0 {
            out.push_str("\n\n");
        }
        for piece in para {
            match (piece, format.is_html()) {
                (Piece::Text(t), false) | (Piece::Link(t), false) => out.push_str(t),
                (Piece::Text(t), true) => out.push_str(&escape_html(t)),
                (Piece::Link(url), true) => {
                    let url = escape_html(url);
                    out.push_str(&format!("<a href=\"{url}\">{url}</a>"));
                }
            }
        }
    }
    if format.is_html() {
        html_line_breaks(&out.replace("  ", "&nbsp;&nbsp;"))
    } else {
        out
    }
}

enum Piece<'a> {
    Text(&'a str),
    Link(&'a str),
}

/// The filter-not-found alert, upstream's wording. `filters` are the watch's include
/// filters, `threshold` the consecutive failures that triggered it.
pub fn render_filter_failure(
    filters: &[String],
    threshold: u32,
    ctx: &ChangeContext,
    format: DiffFormat,
) -> Message {
    let filter_list = filters.join(", ");
    let edit = format!("{}edit/{}", tokens::base_url(ctx), ctx.watch_uuid);
    let after = format!(" did not appear on the page after {threshold} attempts.");
    let body = alert_body(
        &[
            vec![Piece::Text("Hello,")],
            vec![
                Piece::Text("Your configured CSS/xPath filters of '"),
                Piece::Text(&filter_list),
                Piece::Text("' for "),
                Piece::Link(&ctx.watch_url),
                Piece::Text(&after),
            ],
            vec![Piece::Text(
                "It's possible the page changed layout and the filter needs updating ( Try the 'Visual Selector' tab )",
            )],
            vec![Piece::Text("Edit link: "), Piece::Link(&edit)],
            vec![Piece::Text(
                "Thanks - Your omniscient changedetection.io installation.",
            )],
        ],
        format,
    );
    Message {
        title: FILTER_FAILURE_TITLE.to_string(),
        body,
        format: format_of(format),
        attachments: Vec::new(),
    }
}

/// The browser-step failure alert, upstream's wording. `step` is the position shown to
/// the user.
pub fn render_step_failure(
    step: usize,
    threshold: u32,
    ctx: &ChangeContext,
    format: DiffFormat,
) -> Message {
    let edit = format!("{}edit/{}", tokens::base_url(ctx), ctx.watch_uuid);
    let lead = format!("Your configured browser step at position {step} for the web page watch ");
    let after = format!(
        " did not appear on the page after {threshold} attempts, did the page change layout?"
    );
    let body = alert_body(
        &[
            vec![Piece::Text("Hello,")],
            vec![
                Piece::Text(&lead),
                Piece::Link(&ctx.watch_url),
                Piece::Text(&after),
            ],
            vec![Piece::Text(
                "The element may have moved and needs editing, or does it need a delay added?",
            )],
            vec![Piece::Text("Edit link: "), Piece::Link(&edit)],
            vec![Piece::Text(
                "Thanks - Your omniscient changedetection.io installation.",
            )],
        ],
        format,
    );
    Message {
        title: format!(
            "Changedetection.io - Alert - Browser step at position {step} could not be run"
        ),
        body,
        format: format_of(format),
        attachments: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn ctx() -> ChangeContext {
        ChangeContext {
            base_url: "https://cw.example/".into(),
            watch_uuid: "u1".into(),
            watch_url: "https://shop.example/p".into(),
            prev_snapshot: "a\nold\nb".into(),
            current_snapshot: "a\nnew\nb".into(),
            ..ChangeContext::default()
        }
    }

    #[test]
    fn only_named_tokens_are_built() {
        let source = DiffSource::new(&ctx(), DiffFormat::Text);
        let used: HashSet<String> = ["watch_url".to_string()].into();
        let values = build_context(&Build {
            ctx: &ctx(),
            source: &source,
            used: &used,
            called: &HashSet::new(),
            escape: false,
        });
        assert_eq!(values.keys().collect::<Vec<_>>(), ["watch_url"]);
    }

    #[test]
    fn template_without_tags_is_not_parsed() {
        let m = render("plain", "body {{ not parsed", &ctx(), DiffFormat::Text);
        assert!(matches!(m, Err(RenderError::Syntax { field: "body", .. })));
        let m = render("plain\n", "text only\n", &ctx(), DiffFormat::Text).unwrap();
        assert_eq!((m.title.as_str(), m.body.as_str()), ("plain", "text only"));
    }

    #[test]
    fn markers_survive_case_filters() {
        assert_eq!(canonical_markers("x"), "x");
        assert_eq!(
            canonical_markers("@ADDED_PLACEMARKER_OPENNEW@Added_Placemarker_Closed @ a@"),
            format!("{ADDED_PLACEMARKER_OPEN}NEW{ADDED_PLACEMARKER_CLOSED} @ a@")
        );
    }

    #[test]
    fn filter_failure_links_in_html() {
        let m = render_filter_failure(&["#price".into()], 6, &ctx(), DiffFormat::Html);
        assert!(
            m.body
                .contains("<a href=\"https://cw.example/edit/u1\">https://cw.example/edit/u1</a>")
        );
        assert_eq!(m.format, BodyFormat::Html);
    }

    #[test]
    fn request_templates_render_without_variables() {
        let year = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
            .format("%Y")
            .to_string();
        assert_eq!(
            render_request_template("https://x.example/?y={% now 'UTC', '%Y' %}").unwrap(),
            format!("https://x.example/?y={year}")
        );
        // No notification tokens here: upstream renders these with no variables at all.
        assert_eq!(
            render_request_template("a{{ watch_url }}b{{ today }}c").unwrap(),
            "abc"
        );
        assert_eq!(
            render_request_template("{{ 'ab' | upper }}{# note #}").unwrap(),
            "AB"
        );
        // Plain text is not run through the engine; Jinja2 would drop one trailing newline.
        assert_eq!(
            render_request_template("{\"a\": 1}\n").unwrap(),
            "{\"a\": 1}"
        );
        assert_eq!(render_request_template("x\r\n\n").unwrap(), "x\r\n");
        assert!(
            render_request_template("{% if %}")
                .unwrap_err()
                .contains("not a valid Jinja2 template")
        );
        assert!(
            render_request_template(
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
            )
            .unwrap_err()
            .contains("budget")
        );
    }
}
