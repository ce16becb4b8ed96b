//! CSS subtractive selectors and include filters applied to one parsed page, so that the
//! page is parsed once: the other path serialises what is left (or what matched) and the
//! HTML-to-text step parses that markup again, three parses of a filtered page in all.
//!
//! The text must stay what the other path gives, so this path declines (`None`, and the
//! caller takes the other path) wherever rendering an element in place could differ from
//! parsing its markup on its own: a rule that is not CSS, a match the HTML parser would put
//! somewhere else when it starts a document (table parts, head elements, the document's own
//! `html`/`head`/`body`, raw-text switches), a match outside the HTML namespace, and matches
//! nested in one another (their text repeats; the other path's output budget bounds that).

use std::collections::HashSet;

use crate::html_text::{Pick, in_html_ns};

use super::*;

/// Elements that, at the start of a document, the HTML parser files elsewhere or reads
/// differently than where they were matched (with `TABLE_PARTS`, which it drops outside a
/// table).
const NOT_IN_PLACE: &[&str] = &[
    "html",
    "head",
    "body",
    "title",
    "base",
    "basefont",
    "bgsound",
    "link",
    "meta",
    "noframes",
    "script",
    "style",
    "template",
    "frameset",
    "frame",
    "plaintext",
];

/// Whether every non-blank rule is a CSS selector (the rules this module applies).
pub fn all_css<S: AsRef<str>>(rules: &[S]) -> bool {
    rules
        .iter()
        .map(|r| r.as_ref().trim())
        .filter(|r| !r.is_empty())
        .all(|r| FilterKind::split(r).0 == FilterKind::Css)
}

/// Detaches every element the CSS subtractive `selectors` match; whether any was removed.
/// Rules are checked and compiled as [`remove_elements`] does (same errors).
pub fn remove_in_place<S: AsRef<str>>(
    html: &mut Html,
    selectors: &[S],
) -> Result<bool, FilterError> {
    // The caller sends only CSS rules here (`all_css`): there are no XPath ones to apply.
    let (_, compiled) = compile_subtractive(selectors)?;
    let ids: Vec<_> = compiled
        .iter()
        .flat_map(|selector| select_attached(html, selector).map(|element| element.id()))
        .collect();
    for id in &ids {
        if let Some(mut node) = html.tree.get_mut(*id) {
            node.detach();
        }
    }
    Ok(!ids.is_empty())
}

/// The CSS include `filters`' matches in `html`, in [`apply_include_filters`]' order, with
/// the line break it puts between two matches of one filter; `None` where rendering them in
/// place might not give that path's text (see the module docs). Rules are checked as that
/// path checks them, so an invalid rule is the same error.
pub fn select_in_place<'a, S: AsRef<str>>(
    html: &'a Html,
    filters: &[S],
) -> Result<Option<Vec<Pick<'a>>>, FilterError> {
    let parsed = split_rules(filters)?;
    if parsed.iter().any(|f| f.kind != FilterKind::Css) {
        return Ok(None);
    }
    let mut picks = Vec::new();
    for filter in &parsed {
        let selector = css_selector(&filter.expr)?;
        for (i, element) in select_attached(html, &selector).enumerate() {
            let el = element.value();
            let name = el.name();
            if !in_html_ns(el) || NOT_IN_PLACE.contains(&name) || TABLE_PARTS.contains(&name) {
                return Ok(None);
            }
            picks.push(Pick {
                element,
                break_before: i > 0 && !SELF_SEPARATING_TAGS.contains(&name),
            });
        }
    }
    let ids: HashSet<_> = picks.iter().map(|p| p.element.id()).collect();
    let nested = picks
        .iter()
        .any(|p| p.element.ancestors().any(|a| ids.contains(&a.id())));
    Ok((!nested).then_some(picks))
}

/// The markup [`apply_include_filters`] would have produced for `picks`, for the rare
/// callers that need it (diagnosing a filter whose matches have no text).
pub fn picks_markup(picks: &[Pick<'_>]) -> String {
    let mut out = String::new();
    for pick in picks {
        if pick.break_before {
            out.push_str(MATCH_SEPARATOR);
        }
        out.push_str(&pick.element.html());
    }
    out
}
