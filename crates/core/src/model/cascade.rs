//! The watch > tag > global cascades: processing, notification, restock and proxy settings.

use super::*;

/// Order-preserving union; the first occurrence wins (Python's `dict.fromkeys`).
pub(super) fn union_lists<'a>(lists: impl IntoIterator<Item = &'a [String]>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for list in lists {
        for item in list {
            if seen.insert(item.as_str()) {
                out.push(item.clone());
            }
        }
    }
    out
}

/// The processor's view of a watch. `tags` are all tags that apply to it (see
/// [`tags_for_watch`]). List rules are the union of watch and tags, plus the global list for
/// ignore text and subtractive selectors; flags come from the watch, else the global setting.
/// `jq_allow_risky` is process configuration: the caller sets it.
pub fn processor_settings(watch: &Watch, tags: &[&Tag], settings: &Settings) -> ProcessorSettings {
    let app = &settings.application;
    let merged = |get: fn(&Watch) -> &Vec<String>| -> Vec<String> {
        let mut lists: Vec<&[String]> = vec![get(watch).as_slice()];
        lists.extend(tags.iter().map(|t| get(&t.base).as_slice()));
        union_lists(lists)
    };
    let mut include_filters = merged(|w| &w.include_filters);
    if matches!(&watch.track_ldjson_price_data, Some(BoolOrText::Text(t)) if t == PRICE_DATA_TRACK_ACCEPT)
    {
        include_filters.extend(
            LD_JSON_PRODUCT_OFFER_SELECTORS
                .iter()
                .map(|s| s.to_string()),
        );
    }
    let ignore_text = union_lists([
        merged(|w| &w.ignore_text).as_slice(),
        app.global_ignore_text.as_slice(),
    ]);
    // Upstream concatenates these without de-duplication, tags first.
    let subtractive_selectors: Vec<String> = tags
        .iter()
        .flat_map(|t| t.base.subtractive_selectors.iter())
        .chain(watch.subtractive_selectors.iter())
        .chain(app.global_subtractive_selectors.iter())
        .cloned()
        .collect();
    ProcessorSettings {
        include_filters,
        subtractive_selectors,
        ignore_text,
        trigger_text: merged(|w| &w.trigger_text),
        text_should_not_be_present: merged(|w| &w.text_should_not_be_present),
        extract_lines_containing: merged(|w| &w.extract_lines_containing),
        extract_text: merged(|w| &w.extract_text),
        trim_text_whitespace: watch.trim_text_whitespace,
        sort_text_alphabetically: watch.sort_text_alphabetically,
        remove_duplicate_lines: watch.remove_duplicate_lines,
        check_unique_lines: watch.check_unique_lines,
        strip_ignored_lines: watch.strip_ignored_lines.unwrap_or(app.strip_ignored_lines),
        filter_text_added: watch.filter_text_added,
        filter_text_removed: watch.filter_text_removed,
        filter_text_replaced: watch.filter_text_replaced,
        ignore_whitespace: app.ignore_whitespace,
        empty_pages_are_a_change: app.empty_pages_are_a_change,
        render_anchor_tag_content: app.render_anchor_tag_content,
        source_mode: watch.is_source_type_url(),
        jq_allow_risky: false,
        conditions: watch.conditions.clone(),
        // Only with rules, so that a watch without any keeps its reuse fingerprint.
        conditions_match_logic: if watch.conditions.is_empty() {
            String::new()
        } else {
            watch.conditions_match_logic.clone()
        },
        restock: (watch.processor == "restock_diff").then(|| restock_config(watch, tags)),
    }
}

/// The restock config a check uses, as upstream reads it: the first assigned tag with
/// `overrides_watch` (its config, or `{}`: every rule off), else the watch's own, else
/// upstream's default (`in_stock_only`, following price changes).
pub fn restock_config(watch: &Watch, tags: &[&Tag]) -> RestockConfig {
    if let Some(tag) = tags.iter().find(|t| t.overrides_watch == Some(true)) {
        return tag
            .base
            .processor_config_restock_diff
            .clone()
            .unwrap_or_else(crate::restock::empty_config);
    }
    watch
        .processor_config_restock_diff
        .clone()
        .unwrap_or_default()
}

/// Where a content-changed notification goes and how it looks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationSettings {
    /// Empty: nothing is sent.
    pub urls: Vec<String>,
    pub title: String,
    pub body: String,
    /// A concrete format, never `System default`.
    pub format: String,
}

/// Watch value (unless the watch is muted) > first tag with a value (unless muted) > global >
/// built-in default; `System default` resolves to the global format.
pub fn resolve_notification_settings(
    watch: &Watch,
    tags: &[&Tag],
    settings: &Settings,
) -> NotificationSettings {
    let app = &settings.application;
    fn pick<T: Clone>(
        watch: &Watch,
        tags: &[&Tag],
        get: impl Fn(&Watch) -> Option<T>,
    ) -> Option<T> {
        if !watch.notification_muted
            && let Some(v) = get(watch)
        {
            return Some(v);
        }
        tags.iter()
            .filter(|t| !t.base.notification_muted)
            .find_map(|t| get(&t.base))
    }
    let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    let global_format = if app.notification_format.is_empty()
        || app.notification_format == NOTIFICATION_FORMAT_SYSTEM_DEFAULT
    {
        DEFAULT_NOTIFICATION_FORMAT.to_string()
    } else {
        app.notification_format.clone()
    };
    let urls = pick(watch, tags, |w| {
        (!w.notification_urls.is_empty()).then(|| w.notification_urls.clone())
    })
    .unwrap_or_else(|| app.notification_urls.clone());
    let title = pick(watch, tags, |w| non_empty(&w.notification_title))
        .or_else(|| (!app.notification_title.is_empty()).then(|| app.notification_title.clone()))
        .unwrap_or_else(|| DEFAULT_NOTIFICATION_TITLE.to_string());
    let body = pick(watch, tags, |w| non_empty(&w.notification_body))
        .or_else(|| (!app.notification_body.is_empty()).then(|| app.notification_body.clone()))
        .unwrap_or_else(|| DEFAULT_NOTIFICATION_BODY.to_string());
    let format = pick(watch, tags, |w| {
        (!w.notification_format.is_empty()).then(|| w.notification_format.clone())
    })
    .filter(|f| f != NOTIFICATION_FORMAT_SYSTEM_DEFAULT)
    .unwrap_or(global_format);
    NotificationSettings {
        urls,
        title,
        body,
        format,
    }
}

/// The restock config in force and where it comes from (`watch` or `tag:<uuid>`): the first
/// assigned tag with `overrides_watch` wins, even when it has no config of its own.
pub fn resolved_restock_config(watch: &Watch, assigned_tags: &[(&str, &Tag)]) -> (Value, String) {
    for (uuid, tag) in assigned_tags {
        if tag.overrides_watch == Some(true) {
            let cfg = tag
                .base
                .processor_config_restock_diff
                .as_ref()
                .map_or_else(|| Value::Object(Map::new()), to_value);
            return (cfg, format!("tag:{uuid}"));
        }
    }
    let cfg = watch
        .processor_config_restock_diff
        .as_ref()
        .map_or_else(|| Value::Object(Map::new()), to_value);
    (cfg, "watch".into())
}

/// The proxy URL a watch's requests go through, as upstream picks it
/// (`get_preferred_proxy_for_watch`): none without a proxy list; the watch's choice, else its
/// first tag's, when it names a proxy of the list; else the settings' `requests.proxy`; else
/// the list's first proxy. `no-proxy` (chosen anywhere on the way) means a direct request.
pub fn proxy_for(watch: &Watch, tags: &[&Tag], settings: &Settings) -> Option<String> {
    let list = settings.requests.proxy_list();
    let url_of = |key: &str| list.iter().find(|(k, _)| k == key).map(|(_, u)| u.clone());
    let chosen = std::iter::once(&watch.proxy)
        .chain(tags.iter().map(|t| &t.base.proxy))
        .chain(std::iter::once(&settings.requests.proxy))
        .filter_map(|p| p.as_deref())
        .find_map(url_of);
    match chosen {
        Some(url) => Some(url).filter(|u| !u.is_empty()),
        None => list
            .first()
            .map(|(_, u)| u.clone())
            .filter(|u| !u.is_empty()),
    }
}
