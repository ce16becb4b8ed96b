//! CSS subtractive selectors matched on libxml2's tree, so that a watch whose include rules
//! are XPath parses its page once: its CSS subtractive rules no longer need an html5ever
//! parse of the page, written out again for libxml2 to parse.
//!
//! The selectors are the same (`scraper`'s parser and `selectors`' matching); the tree is
//! libxml2's, as upstream matches them on a tree that has not been rebuilt the HTML5 way
//! (BeautifulSoup's `html.parser`: no implied `tbody`). It also means the XPath rules always
//! see libxml2's parse of the page, where they used to see html5ever's rebuilt page
//! whenever a subtractive rule had removed something.
//!
//! The tree's shape and element names are copied out of libxml2 once (a [`Mirror`]) because
//! the matcher walks it many times per element, and libxml2's safe bindings allocate a string
//! for every name; attributes are asked of libxml2 when a selector needs one.

use html5ever::{Namespace, ns};
use scraper::selector::{CssLocalName, CssString, NonTSPseudoClass, PseudoElement, Simple};
use selectors::attr::{AttrSelectorOperation, CaseSensitivity, NamespaceConstraint};
use selectors::bloom::BloomFilter;
use selectors::matching::{
    ElementSelectorFlags, MatchingContext, MatchingForInvalidation, MatchingMode,
    NeedsSelectorFlags, QuirksMode, SelectorCaches, matches_selector_list,
};
use selectors::parser::{ParseRelative, SelectorList};
use selectors::{Element, OpaqueElement};

use super::*;

/// Parses a CSS rule into the form the matcher takes (the rule was already checked by
/// [`css_selector`], whose error this repeats should parsing fail here).
pub(super) fn selector_list(expr: &str) -> Result<SelectorList<Simple>, FilterError> {
    let mut parser = cssparser::Parser::new(expr);
    SelectorList::parse(&scraper::selector::Parser, &mut parser, ParseRelative::No).map_err(|_| {
        match css_selector(expr) {
            Err(e) => e,
            Ok(_) => FilterError::InvalidCss {
                expr: expr.to_owned(),
                reason: "not a selector list".to_owned(),
            },
        }
    })
}

/// The elements of a libxml2 document, in document order, with what selectors ask of them.
#[derive(Debug)]
pub(super) struct Mirror {
    nodes: Vec<MNode>,
}

#[derive(Debug)]
struct MNode {
    ro: RoNode,
    parent: Option<usize>,
    prev: Option<usize>,
    next: Option<usize>,
    first_child: Option<usize>,
    name: String,
    /// No element and no text among its children (`:empty`).
    empty: bool,
}

impl Mirror {
    pub(super) fn new(doc: &Document) -> Mirror {
        let mut nodes: Vec<MNode> = Vec::new();
        let Some(root) = doc.get_root_readonly() else {
            return Mirror { nodes };
        };
        // (libxml2 node, mirror index of its parent element) for the nodes still to visit,
        // the next one last.
        let mut todo = vec![(root, None::<usize>)];
        let mut last_child: Vec<Option<usize>> = Vec::new();
        while let Some((node, parent)) = todo.pop() {
            if node.get_type() != Some(NodeType::ElementNode) {
                continue;
            }
            let index = nodes.len();
            // The root element's siblings (comments, a DTD) are not elements kept here.
            let prev = parent.and_then(|p| last_child[p]);
            if let Some(p) = prev {
                nodes[p].next = Some(index);
            }
            if let Some(p) = parent {
                if nodes[p].first_child.is_none() {
                    nodes[p].first_child = Some(index);
                }
                last_child[p] = Some(index);
            }
            let mut children = Vec::new();
            let mut empty = true;
            let mut child = node.get_first_child();
            while let Some(c) = child {
                match c.get_type() {
                    Some(NodeType::ElementNode) => {
                        empty = false;
                        children.push(c);
                    }
                    Some(NodeType::TextNode | NodeType::CDataSectionNode) => empty = false,
                    _ => {}
                }
                child = c.get_next_sibling();
            }
            nodes.push(MNode {
                ro: node,
                parent,
                prev,
                next: None,
                first_child: None,
                name: node.get_name(),
                empty,
            });
            last_child.push(None);
            todo.extend(children.into_iter().rev().map(|c| (c, Some(index))));
        }
        Mirror { nodes }
    }

    /// Whether each element (by mirror index) matches any of `lists`.
    fn matched(&self, lists: &[SelectorList<Simple>]) -> Vec<bool> {
        let mut caches = SelectorCaches::default();
        let mut context = MatchingContext::new(
            MatchingMode::Normal,
            None,
            &mut caches,
            QuirksMode::NoQuirks,
            NeedsSelectorFlags::No,
            MatchingForInvalidation::No,
        );
        (0..self.nodes.len())
            .map(|i| {
                let element = MRef { m: self, i };
                lists
                    .iter()
                    .any(|list| matches_selector_list(list, &element, &mut context))
            })
            .collect()
    }

    /// The elements any of `lists` matches, outermost only (removing one removes what is
    /// inside it), as mirror indices in document order.
    fn outermost_matches(&self, lists: &[SelectorList<Simple>]) -> Vec<usize> {
        let matched = self.matched(lists);
        (0..self.nodes.len())
            .filter(|&i| matched[i])
            .filter(|&i| {
                let mut up = self.nodes[i].parent;
                while let Some(p) = up {
                    if matched[p] {
                        return false;
                    }
                    up = self.nodes[p].parent;
                }
                true
            })
            .collect()
    }
}

/// The CSS subtractive rules as expressions, as [`compile_subtractive`] reads them (which
/// has checked them): stray commas and blanks trimmed, XPath rules left out.
pub(super) fn css_subtractive<S: AsRef<str>>(selectors: &[S]) -> Vec<String> {
    selectors
        .iter()
        .map(|s| s.as_ref().trim())
        .filter(|rule| !rule.is_empty())
        .filter(|rule| {
            !matches!(
                FilterKind::split(rule).0,
                FilterKind::XPath | FilterKind::XPath1
            )
        })
        .map(|rule| rule.trim_matches(|c: char| c == ',' || c.is_whitespace()))
        .filter(|expr| !expr.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Removes the CSS subtractive matches from an HTML document; whether any was removed.
pub(super) fn remove_css_in(doc: &Document, css: &[String]) -> Result<bool, FilterError> {
    let lists = css
        .iter()
        .map(|expr| selector_list(expr))
        .collect::<Result<Vec<_>, _>>()?;
    let mirror = Mirror::new(doc);
    let targets = mirror.outermost_matches(&lists);
    if targets.is_empty() {
        return Ok(false);
    }
    // Only the wrapping node handles can free, and wrapping costs an allocation and a
    // registry entry each: wrap just the children of the targets' ancestors, walking down
    // from the root element along the mirror (whose elements are libxml2's, in order).
    let n = mirror.nodes.len();
    let mut is_target = vec![false; n];
    let mut on_path = vec![false; n];
    for &t in &targets {
        is_target[t] = true;
        let mut up = mirror.nodes[t].parent;
        while let Some(p) = up {
            if on_path[p] {
                break;
            }
            on_path[p] = true;
            up = mirror.nodes[p].parent;
        }
    }
    let Some(root) = doc.get_root_element() else {
        return Ok(false);
    };
    if is_target[0] {
        root.free_subtree();
        return Ok(true);
    }
    let mut stack = vec![(root, 0usize)];
    while let Some((node, index)) = stack.pop() {
        let mut child = node.get_first_element_child();
        let mut child_index = mirror.nodes[index].first_child;
        while let (Some(c), Some(ci)) = (child, child_index) {
            let next = c.get_next_element_sibling();
            if is_target[ci] {
                c.free_subtree();
            } else if on_path[ci] {
                stack.push((c, ci));
            }
            child = next;
            child_index = mirror.nodes[ci].next;
        }
    }
    Ok(true)
}

#[derive(Debug, Clone, Copy)]
struct MRef<'a> {
    m: &'a Mirror,
    i: usize,
}

impl MRef<'_> {
    fn node(&self) -> &MNode {
        &self.m.nodes[self.i]
    }

    fn at(&self, i: Option<usize>) -> Option<Self> {
        i.map(|i| MRef { m: self.m, i })
    }

    fn attr(&self, name: &str) -> Option<String> {
        self.node().ro.get_attribute(name)
    }
}

impl Element for MRef<'_> {
    type Impl = Simple;

    fn opaque(&self) -> OpaqueElement {
        OpaqueElement::new(self.node())
    }

    fn parent_element(&self) -> Option<Self> {
        self.at(self.node().parent)
    }

    fn parent_node_is_shadow_root(&self) -> bool {
        false
    }

    fn containing_shadow_host(&self) -> Option<Self> {
        None
    }

    fn is_pseudo_element(&self) -> bool {
        false
    }

    fn prev_sibling_element(&self) -> Option<Self> {
        self.at(self.node().prev)
    }

    fn next_sibling_element(&self) -> Option<Self> {
        self.at(self.node().next)
    }

    fn first_element_child(&self) -> Option<Self> {
        self.at(self.node().first_child)
    }

    fn is_html_element_in_html_document(&self) -> bool {
        true
    }

    fn has_local_name(&self, local_name: &CssLocalName) -> bool {
        self.node().name == *local_name.0
    }

    fn has_namespace(&self, ns: &Namespace) -> bool {
        *ns == ns!(html)
    }

    fn is_same_type(&self, other: &Self) -> bool {
        self.node().name == other.node().name
    }

    fn attr_matches(
        &self,
        ns: &NamespaceConstraint<&Namespace>,
        local_name: &CssLocalName,
        operation: &AttrSelectorOperation<&CssString>,
    ) -> bool {
        // libxml2's HTML parser puts attributes in no namespace.
        if matches!(ns, NamespaceConstraint::Specific(url) if **url != ns!()) {
            return false;
        }
        self.attr(&local_name.0)
            .is_some_and(|value| operation.eval_str(&value))
    }

    fn match_non_ts_pseudo_class(
        &self,
        _pc: &NonTSPseudoClass,
        _context: &mut MatchingContext<'_, Simple>,
    ) -> bool {
        false
    }

    fn match_pseudo_element(
        &self,
        _pe: &PseudoElement,
        _context: &mut MatchingContext<'_, Simple>,
    ) -> bool {
        false
    }

    fn apply_selector_flags(&self, _flags: ElementSelectorFlags) {}

    fn is_link(&self) -> bool {
        // As scraper has it, so that `:link` means on both trees what it meant before.
        self.node().name == "link"
    }

    fn is_html_slot_element(&self) -> bool {
        true
    }

    fn has_id(&self, id: &CssLocalName, case_sensitivity: CaseSensitivity) -> bool {
        self.attr("id")
            .is_some_and(|v| case_sensitivity.eq(id.0.as_bytes(), v.as_bytes()))
    }

    fn has_class(&self, name: &CssLocalName, case_sensitivity: CaseSensitivity) -> bool {
        self.attr("class").is_some_and(|classes| {
            classes
                .split_ascii_whitespace()
                .any(|c| case_sensitivity.eq(name.0.as_bytes(), c.as_bytes()))
        })
    }

    fn has_custom_state(&self, _name: &CssLocalName) -> bool {
        false
    }

    fn imported_part(&self, _name: &CssLocalName) -> Option<CssLocalName> {
        None
    }

    fn is_part(&self, _name: &CssLocalName) -> bool {
        false
    }

    fn is_empty(&self) -> bool {
        self.node().empty
    }

    fn is_root(&self) -> bool {
        self.node().parent.is_none()
    }

    fn add_element_unique_hashes(&self, _filter: &mut BloomFilter) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    //! On well-formed pages, where html5ever and libxml2 build the same tree, the selectors
    //! match the same elements on either.

    use proptest::prelude::*;

    use super::*;

    const PAGE_START: &str = "<!DOCTYPE html><html><head><title>t</title></head><body>";
    const PAGE_END: &str = "</body></html>";

    /// (name, text) of matched elements, in document order.
    type Matches = Vec<(String, String)>;

    /// What `expr` matches on libxml2's tree, and on html5ever's.
    fn on_both(page: &str, expr: &str) -> (Matches, Matches) {
        let html = parse_document(page);
        let selector = css_selector(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let theirs = select_attached(&html, &selector)
            .map(|el| (el.value().name().to_owned(), el.text().collect::<String>()))
            .collect();
        let doc = parse_markup(page, false)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("{page}"));
        let mirror = Mirror::new(&doc);
        let list = selector_list(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let matched = mirror.matched(std::slice::from_ref(&list));
        let ours = (0..mirror.nodes.len())
            .filter(|&i| matched[i])
            .map(|i| {
                (
                    mirror.nodes[i].name.to_string(),
                    mirror.nodes[i].ro.get_content(),
                )
            })
            .collect();
        (ours, theirs)
    }

    const SELECTORS: &[&str] = &[
        "div",
        ".a",
        "#x",
        "div > .b",
        "section .a",
        "li:nth-child(2)",
        ":not(.a)",
        "span:empty",
        "[href]",
        "a[href^='/x']",
        "li:first-child",
        "li:last-of-type",
        "div:has(> .b)",
        "*",
        "b + span",
        "em ~ b",
        ":root",
        "body > *",
        "[class~=b]",
        "[data-k='v' i]",
        "ul li.a",
        "p:only-child",
        "section:is(.a, .b)",
        "span:nth-last-child(odd)",
        "body :where(b, em)",
    ];

    fn markup() -> impl Strategy<Value = String> {
        let inline_leaf = prop_oneof![
            prop::sample::select(&["word", "£2", "x&amp;y", "ü"][..]).prop_map(str::to_string),
            Just("<span></span>".to_string()),
            Just("<br>".to_string()),
            Just("<a href=\"/x/1\">link</a>".to_string()),
        ];
        let inline = inline_leaf.prop_recursive(3, 12, 3, |inner| {
            (
                // Not `a`: a link in a link is rebuilt by html5ever.
                prop::sample::select(&["span", "b", "em"][..]),
                prop::option::of(prop::sample::select(
                    &[
                        " class=\"a\"",
                        " class=\"a b\"",
                        " id=\"x\"",
                        " href=\"/x/1\"",
                        " data-k=\"V\"",
                    ][..],
                )),
                prop::collection::vec(inner, 0..3),
            )
                .prop_map(|(tag, attr, children)| {
                    format!("<{tag}{}>{}</{tag}>", attr.unwrap_or(""), children.concat())
                })
        });
        let block_leaf = prop_oneof![
            inline.clone(),
            inline.clone().prop_map(|i| format!("<p>{i}</p>")),
            prop::collection::vec(inline, 1..4).prop_map(|items| {
                let items: String = items
                    .iter()
                    .map(|i| format!("<li class=\"a\">{i}</li>"))
                    .collect();
                format!("<ul>{items}</ul>")
            }),
        ];
        block_leaf.prop_recursive(3, 24, 3, |inner| {
            (
                prop::sample::select(&["div", "section", "article"][..]),
                prop::option::of(prop::sample::select(
                    &[" class=\"a\"", " class=\"b\"", " id=\"x\""][..],
                )),
                prop::collection::vec(inner, 0..4),
            )
                .prop_map(|(tag, attr, children)| {
                    format!("<{tag}{}>{}</{tag}>", attr.unwrap_or(""), children.concat())
                })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn selectors_match_the_same_elements_on_either_tree(
            body in prop::collection::vec(markup(), 1..4),
            expr in prop::sample::select(SELECTORS),
        ) {
            let page = format!("{PAGE_START}{}{PAGE_END}", body.concat());
            let (ours, theirs) = on_both(&page, expr);
            prop_assert_eq!(ours, theirs, "page {} selector {}", page, expr);
        }
    }

    #[test]
    fn tables_match_as_libxml2_builds_them_without_an_implied_tbody() {
        let page = format!("{PAGE_START}<table><tr class=a><td>c</td></tr></table>{PAGE_END}");
        let (ours, theirs) = on_both(&page, "table > tr");
        assert_eq!(ours.len(), 1);
        assert!(theirs.is_empty());
        let (ours, theirs) = on_both(&page, "tbody > tr");
        assert!(ours.is_empty());
        assert_eq!(theirs.len(), 1);
    }

    #[test]
    fn removal_takes_the_outermost_matches_and_reports_whether_it_removed() {
        let page = format!(
            "{PAGE_START}<div class=ad><p class=ad>in</p></div><p>kept</p><p class=ad>out</p>{PAGE_END}"
        );
        let doc = parse_markup(&page, false)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("parse"));
        assert_eq!(remove_css_in(&doc, &[".ad".to_owned()]), Ok(true));
        assert_eq!(
            remove_css_in(&doc, &[".ad".to_owned(), "nav".to_owned()]),
            Ok(false)
        );
        let body = doc
            .get_root_readonly()
            .map(RoNode::get_content)
            .unwrap_or_default();
        assert_eq!(body.trim(), "tkept");
        assert!(matches!(
            remove_css_in(&doc, &["p[".to_owned()]),
            Err(FilterError::InvalidCss { .. })
        ));
        let items = "<li>i</li>".repeat(3000);
        let page = format!("{PAGE_START}<ul>{items}<li class=k>kept</li></ul>{PAGE_END}");
        let doc = parse_markup(&page, false)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("parse"));
        assert_eq!(remove_css_in(&doc, &["li:not(.k)".to_owned()]), Ok(true));
        let text = doc
            .get_root_readonly()
            .map(RoNode::get_content)
            .unwrap_or_default();
        assert_eq!(text.trim(), "tkept");
        assert_eq!(remove_css_in(&doc, &["html".to_owned()]), Ok(true));
        assert!(doc.get_root_readonly().is_none());
        assert_eq!(
            css_subtractive(&[" .a, ", "", "//nav", "xpath:x", ",footer"]),
            vec![".a".to_owned(), "footer".to_owned()]
        );
    }
}
