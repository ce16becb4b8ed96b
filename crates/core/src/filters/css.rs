//! CSS selectors over html5ever's DOM (scraper), with the output budget.

use super::*;

pub(super) fn css_selector(expr: &str) -> Result<Selector, FilterError> {
    Selector::parse(expr).map_err(|e| FilterError::InvalidCss {
        expr: expr.to_owned(),
        reason: css_reason(&e.to_string()),
    })
}

/// scraper wraps most selector errors in "Unexpected error occurred. Please
/// report this to the developer" followed by a variant name such as
/// `DanglingCombinator`; end users get just "dangling combinator".
pub(super) fn css_reason(message: &str) -> String {
    let Some((_, variant)) = message.split_once('\n') else {
        return message.to_owned();
    };
    let mut words = String::new();
    for c in variant.trim().chars() {
        if c.is_uppercase() && !words.is_empty() {
            words.push(' ');
        }
        words.extend(c.to_lowercase());
    }
    words
}

/// What one filter may still add to the include filters' output.
pub(super) struct Budget<'f> {
    pub(super) bytes: usize,
    pub(super) filter: &'f Filter,
    pub(super) limit: usize,
}

impl Budget<'_> {
    pub(super) fn check(&self, len: usize) -> Result<(), FilterError> {
        if len <= self.bytes {
            return Ok(());
        }
        Err(FilterError::OutputTooLarge {
            rule: self.filter.to_string(),
            limit: self.limit,
        })
    }
}

/// The elements `selector` matches, in document order, among those attached to the page.
/// (`Html::select` walks scraper's node arena instead: creation order, which the parser's
/// foster parenting makes differ from document order, and nodes detached by a subtractive
/// selector are still in it.)
pub(super) fn select_attached<'a, 'b>(
    html: &'a Html,
    selector: &'b Selector,
) -> impl Iterator<Item = ElementRef<'a>> + use<'a, 'b> {
    let root = html.root_element();
    std::iter::once(root)
        .filter(|el| selector.matches(el))
        .chain(root.select(selector))
}

pub(super) fn css_matches(
    html: &Html,
    selector: &Selector,
    separate: bool,
    budget: &Budget<'_>,
) -> Result<String, FilterError> {
    let mut block = String::new();
    for element in select_attached(html, selector) {
        push_match(
            &mut block,
            &element.html(),
            Some(element.value().name()),
            separate,
        );
        budget.check(block.len())?;
    }
    Ok(block)
}

pub(super) fn remove_css_matches(content: &str, selectors: &[Selector]) -> Option<String> {
    let mut html = parse_document(content);
    let ids: Vec<_> = selectors
        .iter()
        .flat_map(|selector| select_attached(&html, selector).map(|element| element.id()))
        .collect();
    if ids.is_empty() {
        return None;
    }
    for id in ids {
        if let Some(mut node) = html.tree.get_mut(id) {
            node.detach();
        }
    }
    Some(html.html())
}

/// Appends one match, preceded by the separator when it would otherwise run
/// into the previous match's last line.
///
/// Table parts (`tr`, `td`, `tbody`, …) are wrapped in a `<table>`: outside one, the HTML parser
/// that turns matches into text drops their tags and the cells of a row run together
/// (`Cod£12.40+0.20`). Raw `source:` output is left exactly as matched.
pub(super) fn push_match(
    block: &mut String,
    piece: &str,
    element_name: Option<&str>,
    separate: bool,
) {
    let table_part = element_name.is_some_and(|name| TABLE_PARTS.contains(&name));
    let breaks_line =
        table_part || element_name.is_some_and(|name| SELF_SEPARATING_TAGS.contains(&name));
    if separate && !block.is_empty() && !breaks_line {
        block.push_str(MATCH_SEPARATOR);
    }
    if separate && table_part {
        block.push_str("<table>");
        block.push_str(piece);
        block.push_str("</table>");
    } else {
        block.push_str(piece);
    }
}

pub(super) const TABLE_PARTS: &[&str] = &[
    "caption", "colgroup", "col", "thead", "tbody", "tfoot", "tr", "td", "th",
];
