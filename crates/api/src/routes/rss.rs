//! Upstream's RSS feeds: `/rss` (every watch with an unviewed change, `?tag=` a tag's title or
//! uuid), `/rss/tag/{uuid}` (the same for one tag) and `/rss/watch/{uuid}` (a watch's last
//! `rss_diff_length` changes). Each needs `?token=` equal to the settings' `rss_access_token`
//! (403 otherwise, as upstream).
//!
//! An item's description is the change rendered as a notification body is (the notification
//! renderer, in the sandbox) in the settings' `rss_content_format`, from upstream's RSS
//! templates: `<pre>` around the text diff, or a small HTML page with the html / htmlcolor diff.
//! Page text is escaped in every format (upstream escapes it only for the HTML formats, so a
//! page's markup was live inside the `<pre>` of the text format). The document is written here
//! (a fixed, small shape); every text goes through [`xml_text`], which escapes markup and drops
//! the characters XML 1.0 cannot carry, so no watch title or page text can break the feed.

use std::collections::{BTreeMap, HashMap};

use axum::Router;
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use changewatch_core::diff::{DiffFormat, escape_html};
use changewatch_core::model::{
    Settings, Tag, Watch, has_template_markup, no_render, resolve_notification_settings,
    tags_for_watch,
};
use changewatch_engine::docs;
use changewatch_engine::notifications::WatchContext;
use changewatch_sandbox::{RenderJob, Rendered};
use changewatch_store::{Key, Kind};
use tracing::warn;

use crate::error::ApiError;
use crate::extract::WatchUuid;
use crate::session::constant_time_eq;
use crate::state::AppState;
use crate::stored::{history_info, load, rendered_links};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/rss", get(main_feed))
        .route("/rss/", get(extra_slash))
        .route("/rss/tag/{uuid}", get(tag_feed))
        .route("/rss/watch/{uuid}", get(watch_feed))
}

/// Upstream's body for the text format.
const TEMPLATE_TEXT: &str = "<pre>{{watch_label}} had a change.\n\n{{diff}}\n</pre>";
/// Upstream's body for the html and htmlcolor formats.
const TEMPLATE_HTML: &str = "<html><body>\n<h4><a href=\"{{watch_open_url}}\">{{watch_label}}</a></h4>\n<p>{{diff}}</p>\n</body></html>\n";

const CONTENT_TYPE: &str = "application/rss+xml;charset=utf-8";

fn plain(code: StatusCode, msg: impl Into<String>) -> ApiError {
    ApiError::Plain(code, msg.into())
}

fn check_token(settings: &Settings, q: &HashMap<String, String>) -> Result<(), ApiError> {
    let stored = settings
        .application
        .rss_access_token
        .as_deref()
        .filter(|t| !t.is_empty());
    match (stored, q.get("token")) {
        (Some(t), Some(given)) if constant_time_eq(t.as_bytes(), given.as_bytes()) => Ok(()),
        _ => Err(plain(StatusCode::FORBIDDEN, "Access denied, bad token")),
    }
}

/// Upstream redirects `/rss/` to the feed (some readers kept that path); the query goes along.
async fn extra_slash(RawQuery(q): RawQuery) -> Redirect {
    match q {
        Some(q) => Redirect::to(&format!("/rss?{q}")),
        None => Redirect::to("/rss"),
    }
}

/// `BASE_URL`, else the settings' `base_url`, else this request's own origin (upstream's
/// `url_for(..., _external=True)`), without a trailing slash.
fn base_url(state: &AppState, settings: &Settings, headers: &HeaderMap) -> String {
    let configured = state
        .config
        .base_url
        .clone()
        .or_else(|| settings.application.base_url.clone())
        .filter(|b| !b.trim().is_empty());
    let base = configured.unwrap_or_else(|| {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let scheme = headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .filter(|p| *p == "https")
            .unwrap_or("http");
        format!("{scheme}://{host}")
    });
    base.trim().trim_end_matches('/').to_string()
}

/// The dashboard's history (diff) page of a watch.
fn diff_page(base: &str, uuid: &str) -> String {
    format!("{base}/#/history/{uuid}")
}

/// Upstream's `get_watch_label`: the display label when titles are shown in the list, else
/// the URL as entered.
fn watch_label(settings: &Settings, watch: &Watch) -> String {
    if settings.application.ui.use_page_title_in_list || watch.use_page_title_in_list == Some(true)
    {
        watch.label(&no_render)
    } else {
        watch.url.clone()
    }
}

fn content_format(settings: &Settings) -> DiffFormat {
    match settings.application.rss_content_format.as_str() {
        "html" => DiffFormat::Html,
        "htmlcolor" => DiffFormat::HtmlColor,
        _ => DiffFormat::Text,
    }
}

/// Upstream's `get_rss_template`.
fn body_template(settings: &Settings, watch: &Watch, tags: &[&Tag], format: DiffFormat) -> String {
    let app = &settings.application;
    if app.rss_template_type == "notification_body" {
        return resolve_notification_settings(watch, tags, settings).body;
    }
    if let Some(t) = app
        .rss_template_override
        .as_deref()
        .filter(|t| !t.trim().is_empty())
    {
        return t.to_string();
    }
    match format {
        DiffFormat::Text => TEMPLATE_TEXT.into(),
        _ => TEMPLATE_HTML.into(),
    }
}

/// One `<item>`.
#[derive(Debug)]
struct Entry {
    title: String,
    link: String,
    description: String,
    guid: String,
    categories: Vec<String>,
    pub_date: i64,
}

struct Channel {
    title: String,
    link: String,
    description: String,
}

/// Text for an XML element or attribute: markup escaped, and the characters XML 1.0 does not
/// allow (C0 controls other than tab, newline and carriage return; U+FFFE, U+FFFF) dropped, as
/// upstream's `clean_entry_content` drops them.
fn xml_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            '\u{FFFE}' | '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

fn element(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    xml_text(out, text);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// RFC 822 date of an epoch second, as RSS 2.0 wants it.
fn rfc822(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .unwrap_or_default()
        .to_rfc2822()
}

fn write_feed(channel: &Channel, entries: &[Entry], now: i64) -> String {
    let mut out = String::with_capacity(
        1024 + entries
            .iter()
            .map(|e| e.description.len() + 512)
            .sum::<usize>(),
    );
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>");
    element(&mut out, "title", &channel.title);
    element(&mut out, "link", &channel.link);
    element(&mut out, "description", &channel.description);
    element(&mut out, "generator", "changewatch");
    element(&mut out, "lastBuildDate", &rfc822(now));
    for e in entries {
        out.push_str("<item>");
        element(&mut out, "title", &e.title);
        element(&mut out, "link", &e.link);
        element(&mut out, "description", &e.description);
        out.push_str("<guid isPermaLink=\"false\">");
        xml_text(&mut out, &e.guid);
        out.push_str("</guid>");
        for c in &e.categories {
            element(&mut out, "category", c);
        }
        element(&mut out, "pubDate", &rfc822(e.pub_date));
        out.push_str("</item>");
    }
    out.push_str("</channel></rss>\n");
    out
}

fn feed_response(channel: &Channel, entries: &[Entry], now: i64) -> Response {
    let mut resp = (StatusCode::OK, write_feed(channel, entries, now)).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    resp
}

/// What one change of a watch renders from.
struct Change<'a> {
    uuid: &'a str,
    watch: &'a Watch,
    tags: &'a [&'a Tag],
    label: &'a str,
    from: (i64, String),
    to: (i64, String),
}

/// The item's description and its `change_datetime`, rendered as upstream renders a
/// notification for the feed. A template that fails is reported in the item, not the feed.
async fn render_change(state: &AppState, settings: &Settings, c: Change<'_>) -> (String, String) {
    let format = content_format(settings);
    let key = Key::watch(&state.tenant, c.uuid);
    let wc = WatchContext {
        key: &key,
        watch: c.watch,
        tags: c.tags,
        settings,
        base_url: state.config.base_url.as_deref(),
        now: state.now(),
    };
    let mut ctx = wc.change_context();
    // The body is HTML whatever the format (readers render it): links are attribute values,
    // and in the text format the page text is escaped here (the renderer escapes it for the
    // HTML formats itself).
    ctx.watch_url = escape_html(&ctx.watch_url);
    ctx.watch_open_url = ctx.watch_open_url.as_deref().map(escape_html);
    let text = |s: &str| match format {
        DiffFormat::Text => escape_html(s),
        _ => s.to_string(),
    };
    ctx.watch_title = text(&ctx.watch_title);
    ctx.watch_label = text(c.label);
    ctx.prev_snapshot = text(&c.from.1);
    ctx.current_snapshot = text(&c.to.1);
    ctx.timestamp_from = Some(c.from.0);
    ctx.timestamp_to = Some(c.to.0);
    let job = RenderJob::Change {
        title: "{{change_datetime}}".into(),
        body: body_template(settings, c.watch, c.tags, format),
        urls: Vec::new(),
        ctx: Box::new(ctx),
        format,
    };
    let fallback_time = || {
        chrono::DateTime::from_timestamp(c.to.0, 0)
            .unwrap_or_default()
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string()
    };
    match state.sandbox.render(job).await {
        Ok(Rendered {
            message: Some(m), ..
        }) => (m.body, m.title),
        Ok(_) => (String::new(), fallback_time()),
        Err(e) => {
            warn!(watch_id = %c.uuid, error = %e, "RSS item could not be rendered");
            (
                escape_html(&format!("This change could not be rendered: {e}")),
                fallback_time(),
            )
        }
    }
}

/// A listed watch: its uuid, document and snapshot count.
struct Listed {
    uuid: String,
    watch: Watch,
    last_changed: i64,
}

/// The watches with an unviewed change (at least two snapshots) that `keep` accepts, muted
/// ones left out when `rss_hide_muted_watches` says so; most recently changed first.
async fn unviewed_watches(
    state: &AppState,
    settings: &Settings,
    keep: &(dyn Fn(&Watch) -> bool + Sync),
) -> Result<Vec<Listed>, ApiError> {
    let hide_muted = settings.application.rss_hide_muted_watches;
    let mut out = Vec::new();
    state
        .store
        .list_each(&state.tenant, Kind::Watch, &mut |item| {
            let watch: Watch = docs::decode(&item)?;
            let history = history_info(&item);
            if (hide_muted && watch.notification_muted)
                || history.count < 2
                || watch.viewed(&history)
                || !keep(&watch)
            {
                return Ok(());
            }
            out.push(Listed {
                last_changed: watch.last_changed(&history),
                uuid: item.key.id,
                watch,
            });
            Ok(())
        })
        .await?;
    out.sort_by(|a, b| {
        b.last_changed
            .cmp(&a.last_changed)
            .then_with(|| a.uuid.cmp(&b.uuid))
    });
    Ok(out)
}

/// The (timestamp, text) of the snapshots at `ts`.
async fn snapshot(state: &AppState, uuid: &str, ts: i64) -> Result<(i64, String), ApiError> {
    let text = state
        .store
        .snapshot_text(&Key::watch(&state.tenant, uuid), ts)
        .await?
        .unwrap_or_default();
    Ok((ts, text))
}

/// The two newest snapshots of a watch, when it has two.
async fn newest_pair(
    state: &AppState,
    uuid: &str,
) -> Result<Option<((i64, String), (i64, String))>, ApiError> {
    let mut dates = state
        .store
        .snapshots(&Key::watch(&state.tenant, uuid))
        .await?;
    dates.sort_unstable();
    let [.., from, to] = dates[..] else {
        return Ok(None);
    };
    Ok(Some((
        snapshot(state, uuid, from).await?,
        snapshot(state, uuid, to).await?,
    )))
}

fn categories(watch_tags: &[&Tag]) -> Vec<String> {
    watch_tags
        .iter()
        .filter_map(|t| t.base.title.clone())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The item of a listed watch's newest change (main and tag feeds); `None` if its history went
/// meanwhile.
async fn newest_change_entry(
    state: &AppState,
    settings: &Settings,
    all_tags: &BTreeMap<String, Tag>,
    base: &str,
    listed: &Listed,
    title_suffix: bool,
) -> Result<Option<Entry>, ApiError> {
    let Some((from, to)) = newest_pair(state, &listed.uuid).await? else {
        return Ok(None);
    };
    let watch_tags: Vec<&Tag> = tags_for_watch(&listed.watch, all_tags)
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    let label = watch_label(settings, &listed.watch);
    let to_ts = to.0;
    let (description, when) = render_change(
        state,
        settings,
        Change {
            uuid: &listed.uuid,
            watch: &listed.watch,
            tags: &watch_tags,
            label: &label,
            from,
            to,
        },
    )
    .await;
    Ok(Some(Entry {
        title: if title_suffix {
            format!("{label} - Change @ {when}")
        } else {
            label
        },
        link: diff_page(base, &listed.uuid),
        description,
        guid: format!("{}/{to_ts}", listed.uuid),
        categories: categories(&watch_tags),
        pub_date: to_ts,
    }))
}

/// The newest change of each unviewed watch `keep` lets through: the items of the main and
/// tag feeds (`title_suffix`: "<label> - Change @ <when>" as the tag feed titles them).
async fn unviewed_entries(
    state: &AppState,
    settings: &Settings,
    tags: &BTreeMap<String, Tag>,
    base: &str,
    keep: &(dyn Fn(&Watch) -> bool + Sync),
    title_suffix: bool,
) -> Result<Vec<Entry>, ApiError> {
    let listed = unviewed_watches(state, settings, keep).await?;
    let mut entries = Vec::with_capacity(listed.len());
    for l in &listed {
        if let Some(e) = newest_change_entry(state, settings, tags, base, l, title_suffix).await? {
            entries.push(e);
        }
    }
    Ok(entries)
}

async fn main_feed(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let settings = state.settings().await?;
    check_token(&settings, &q)?;
    let tags = state.tags().await?;
    // A tag's title (any case) or its uuid; one that names nothing lists nothing.
    let wanted = q.get("tag").map(|t| t.trim().to_lowercase());
    let limit: Option<String> = wanted.filter(|t| !t.is_empty()).map(|t| {
        tags.iter()
            .find(|(_, tag)| tag.title().trim().to_lowercase() == t)
            .map_or(t, |(uuid, _)| uuid.clone())
    });
    let keep = |w: &Watch| {
        limit
            .as_deref()
            .is_none_or(|l| tags_for_watch(w, &tags).iter().any(|(u, _)| *u == l))
    };
    let base = base_url(&state, &settings, &headers);
    let entries = unviewed_entries(&state, &settings, &tags, &base, &keep, false).await?;
    let channel = Channel {
        title: "changedetection.io".into(),
        link: format!("{base}/"),
        description: "Feed description".into(),
    };
    Ok(feed_response(&channel, &entries, state.now()))
}

async fn tag_feed(
    State(state): State<AppState>,
    WatchUuid(tag_uuid): WatchUuid,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let settings = state.settings().await?;
    check_token(&settings, &q)?;
    let tags = state.tags().await?;
    let Some(tag) = tags.get(&tag_uuid) else {
        return Err(plain(
            StatusCode::NOT_FOUND,
            format!("Tag with UUID {tag_uuid} not found"),
        ));
    };
    let tag_title = tag
        .base
        .title
        .clone()
        .unwrap_or_else(|| "Unknown Tag".into());
    let keep = |w: &Watch| tags_for_watch(w, &tags).iter().any(|(u, _)| *u == tag_uuid);
    let base = base_url(&state, &settings, &headers);
    let entries = unviewed_entries(&state, &settings, &tags, &base, &keep, true).await?;
    let channel = Channel {
        title: format!("changedetection.io - {tag_title}"),
        link: format!("{base}/"),
        description: format!("Changes for watches tagged with {tag_title}"),
    };
    Ok(feed_response(&channel, &entries, state.now()))
}

async fn watch_feed(
    State(state): State<AppState>,
    WatchUuid(uuid): WatchUuid,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let settings = state.settings().await?;
    check_token(&settings, &q)?;
    let Some(loaded) = load(&state, &uuid).await? else {
        return Err(plain(
            StatusCode::NOT_FOUND,
            format!("Watch with UUID {uuid} not found"),
        ));
    };
    let watch = loaded.watch;
    let mut dates = state.store.snapshots(&loaded.item.key).await?;
    dates.sort_unstable();
    if dates.len() < 2 {
        return Err(plain(
            StatusCode::BAD_REQUEST,
            format!(
                "Watch {uuid} does not have enough history snapshots to show changes (need at least 2)"
            ),
        ));
    }
    let possible = dates.len() - 1;
    let wanted = settings.application.rss_diff_length;
    let count = if wanted > 0 {
        possible.min(usize::try_from(wanted).unwrap_or(usize::MAX))
    } else {
        possible
    };
    let tags = state.tags().await?;
    let watch_tags: Vec<&Tag> = tags_for_watch(&watch, &tags)
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    let label = watch_label(&settings, &watch);
    let link = if has_template_markup(&watch.url) || has_template_markup(&watch.link_to_open) {
        let links = rendered_links(&state, &watch).await;
        watch.open_link(&|t| links.render(t))
    } else {
        watch.open_link(&no_render)
    };
    let mut entries = Vec::with_capacity(count);
    // Newest change first; each snapshot is read once.
    let mut newer = snapshot(&state, &uuid, dates[dates.len() - 1]).await?;
    for i in 0..count {
        let older = snapshot(&state, &uuid, dates[dates.len() - 2 - i]).await?;
        let to_ts = newer.0;
        let (description, when) = render_change(
            &state,
            &settings,
            Change {
                uuid: &uuid,
                watch: &watch,
                tags: &watch_tags,
                label: &label,
                from: older.clone(),
                to: newer,
            },
        )
        .await;
        entries.push(Entry {
            title: format!("{label} - Change @ {when}"),
            link: link.clone(),
            description,
            guid: format!("{uuid}/{to_ts}"),
            categories: categories(&watch_tags),
            pub_date: to_ts,
        });
        newer = older;
    }
    let title = if label != watch.url {
        format!("changedetection.io - {label} ({})", watch.url)
    } else {
        format!("changedetection.io - {}", watch.url)
    };
    let channel = Channel {
        title,
        link: format!("{}/", base_url(&state, &settings, &headers)),
        description: "Changes".into(),
    };
    Ok(feed_response(&channel, &entries, state.now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_stays_text() {
        let mut out = String::new();
        xml_text(&mut out, "a]]>b<c>&\"'\u{0}\u{8}\u{b}\u{1f}\t\n\u{FFFF}é");
        assert_eq!(out, "a]]&gt;b&lt;c&gt;&amp;&quot;&apos;\t\né");
    }

    #[test]
    fn a_feed_is_one_document() {
        let channel = Channel {
            title: "<t>".into(),
            link: "http://x/".into(),
            description: "d".into(),
        };
        let entry = Entry {
            title: "</title><script>".into(),
            link: "http://x/#/history/u?a=1&b=2".into(),
            description: "<pre>]]></pre>".into(),
            guid: "u/1".into(),
            categories: vec!["a&b".into()],
            pub_date: 0,
        };
        let xml = write_feed(&channel, &[entry], 0);
        assert!(xml.contains("<title>&lt;/title&gt;&lt;script&gt;</title>"));
        assert!(xml.contains("<link>http://x/#/history/u?a=1&amp;b=2</link>"));
        assert!(xml.contains("<pubDate>Thu, 1 Jan 1970 00:00:00 +0000</pubDate>"));
        assert_eq!(xml.matches("<item>").count(), 1);
    }
}
