//! XPath 1.0 over libxml2: HTML and XML parsing, default-namespace handling, matches and removal.

use super::*;

pub(super) fn compile_xpath(expr: &str) -> Result<Expression, FilterError> {
    Expression::compile(expr).map_err(|e| FilterError::InvalidXPath {
        expr: expr.to_owned(),
        reason: libxml_reason(e.message),
    })
}

/// Compiles and then evaluates against an empty page, as upstream's form
/// validation does, so top-level calls to functions libxml2 lacks (XPath 2.0+
/// `lower-case()`, EXSLT `re:test()`) are rejected when the rule is saved
/// rather than at every check. Calls inside predicates that never run on an
/// empty page still only fail at check time.
pub(super) fn validate_xpath(expr: &str) -> Result<(), FilterError> {
    let expression = compile_xpath(expr)?;
    if let Some(doc) = parse_markup("<html><body></body></html>", false)? {
        let context = xpath_context(&doc, expr)?;
        context
            .evaluate_compiled(&expression)
            .map_err(|e| FilterError::InvalidXPath {
                expr: expr.to_owned(),
                reason: libxml_reason(e.message),
            })?;
    }
    Ok(())
}

pub(super) fn libxml_reason(message: Option<String>) -> String {
    match message {
        Some(m) if !m.trim().is_empty() => m.trim().to_owned(),
        _ => "libxml2 gave no detail".to_owned(),
    }
}

/// Parses HTML or XML so that hostile or sloppy input cannot reach the
/// network, expand external entities, or spam stderr; the declared charset is
/// ignored because the content is already decoded UTF-8.
///
/// Returns `None` for blank content, which libxml2 refuses to parse but which
/// simply matches nothing.
pub(super) fn parse_markup(content: &str, xml: bool) -> Result<Option<Document>, FilterError> {
    if content.trim().is_empty() {
        return Ok(None);
    }
    let options = ParserOptions {
        recover: true,
        no_def_dtd: true,
        no_error: true,
        no_warning: true,
        pedantic: false,
        no_blanks: false,
        no_net: true,
        no_implied: false,
        huge: false,
        compact: false,
        ignore_enc: true,
        encoding: Some("UTF-8"),
    };
    let (parser, format) = if xml {
        (Parser::default(), "XML")
    } else {
        (Parser::default_html(), "HTML")
    };
    let doc = parser
        .parse_string_with_options(content, options)
        .map_err(|_| FilterError::Unparsable { format })?;
    // Recovery turns even plain text into a document, but one without a root
    // element; for a feed that means the server sent something else.
    if doc.get_root_readonly().is_none() {
        return Err(FilterError::Unparsable { format });
    }
    Ok(Some(doc))
}

pub(super) fn root_has_default_namespace(doc: &Document) -> bool {
    doc.get_root_readonly()
        .and_then(RoNode::get_namespace)
        .is_some_and(|ns| ns.get_prefix().is_empty())
}

/// Drops `xmlns="…"` declarations so that XPath 1.0 name tests without a
/// prefix match what used to be default-namespace elements, the way upstream's
/// XPath 3.1 engine does. Prefixed declarations (`xmlns:dc=…`) are kept.
pub(super) fn strip_default_namespaces(xml: &str) -> Cow<'_, str> {
    let bytes = xml.as_bytes();
    let mut out = String::with_capacity(xml.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = xml[search..].find("xmlns") {
        let start = search + found;
        search = start + "xmlns".len();
        let preceded_by_space = start > 0 && bytes[start - 1].is_ascii_whitespace();
        if !preceded_by_space {
            continue;
        }
        let mut i = search;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let Some(&quote) = bytes.get(i).filter(|q| **q == b'"' || **q == b'\'') else {
            continue;
        };
        let Some(len) = xml[i + 1..].find(char::from(quote)) else {
            continue;
        };
        let end = i + 1 + len + 1;
        out.push_str(&xml[copied..start - 1]);
        copied = end;
        search = end;
    }
    if copied == 0 {
        return Cow::Borrowed(xml);
    }
    out.push_str(&xml[copied..]);
    Cow::Owned(out)
}

pub(super) fn xpath_context(doc: &Document, expr: &str) -> Result<Context, FilterError> {
    let context = Context::new(doc).map_err(|()| FilterError::XPathFailed {
        expr: expr.to_owned(),
        reason: "could not create an XPath context".to_owned(),
    })?;
    // Registration only fails on allocation failure; evaluation then reports
    // the unknown prefix itself.
    let _ = context.register_namespace("re", EXSLT_REGEX_NS);
    Ok(context)
}

pub(super) fn xpath_matches(
    doc: &Document,
    html: bool,
    expression: &Expression,
    expr: &str,
    separate: bool,
    budget: &Budget<'_>,
) -> Result<String, FilterError> {
    let context = xpath_context(doc, expr)?;
    let result = context
        .evaluate_compiled(expression)
        .map_err(|e| FilterError::XPathFailed {
            expr: expr.to_owned(),
            reason: libxml_reason(e.message),
        })?;
    let nodes = result.get_readonly_nodes_as_vec();
    if nodes.is_empty() {
        // A scalar (string, number, boolean) or an empty node-set, whose
        // string value is "".
        return Ok(result.to_string());
    }

    // Only HTML elements need the wrapping `Node` API (for the HTML
    // serialiser). Namespace nodes are never wrapped: libxml2 frees them with
    // the result, which the wrapper's bookkeeping would not notice.
    let wrapped = if html
        && nodes
            .iter()
            .any(|n| n.get_type() == Some(NodeType::ElementNode))
        && !nodes
            .iter()
            .any(|n| n.get_type() == Some(NodeType::NamespaceDecl))
    {
        result.get_nodes_as_vec()
    } else {
        Vec::new()
    };

    let mut block = String::new();
    for (index, node) in nodes.iter().enumerate() {
        match node.get_type() {
            Some(NodeType::ElementNode) => {
                let piece = match wrapped.get(index) {
                    Some(element) => html_outer(element),
                    None => format!("{}\n", doc.ronode_to_string(node)),
                };
                push_match(&mut block, &piece, Some(&node.get_name()), separate);
            }
            Some(NodeType::DocumentNode | NodeType::HtmlDocumentNode) => {
                let piece = match doc.get_root_element() {
                    Some(root) if html => html_outer(&root),
                    Some(root) => format!("{}\n", doc.node_to_string(&root)),
                    None => String::new(),
                };
                push_match(&mut block, &piece, None, separate);
            }
            Some(NodeType::CommentNode | NodeType::PiNode) => {
                push_match(&mut block, &doc.ronode_to_string(node), None, separate);
            }
            _ => push_match(&mut block, &node.get_content(), None, separate),
        }
        budget.check(block.len())?;
    }
    Ok(block)
}

/// Serialises an HTML element the way lxml's `tostring(method="html",
/// pretty_print=True)` does, so void and raw-text elements (`<br>`,
/// `<script></script>`) survive a later HTML re-parse. libxml2's node dump
/// would write XML (`<script/>`), which an HTML parser reads as an unclosed
/// script swallowing the rest of the page.
pub(super) fn html_outer(element: &Node) -> String {
    match Document::dup_node_into_new_doc(element) {
        Ok(copy) => copy.to_string_with_options(SaveOptions {
            format: true,
            as_html: true,
            no_declaration: true,
            ..SaveOptions::default()
        }),
        Err(()) => String::new(),
    }
}

pub(super) fn is_removable(node_type: Option<NodeType>) -> bool {
    matches!(
        node_type,
        Some(
            NodeType::ElementNode
                | NodeType::TextNode
                | NodeType::CDataSectionNode
                | NodeType::CommentNode
                | NodeType::PiNode
        )
    )
}

pub(super) fn remove_xpath_matches(
    content: &str,
    expressions: &[(String, Expression)],
    kind: ContentKind,
) -> Result<Option<String>, FilterError> {
    let xml = kind == ContentKind::Xml;
    let Some(mut doc) = parse_markup(content, xml)? else {
        return Ok(None);
    };
    // Upstream parses even feeds with an HTML parser, where `xmlns` is just an
    // attribute, so `//entry` removes Atom entries; keep that working.
    if xml && root_has_default_namespace(&doc) {
        match parse_markup(&strip_default_namespaces(content), true)? {
            Some(stripped) => doc = stripped,
            None => return Ok(None),
        }
    }

    if !remove_xpath_in(&doc, expressions)? {
        return Ok(None);
    }

    let serialised = doc.to_string_with_options(SaveOptions {
        as_html: !xml,
        no_declaration: true,
        ..SaveOptions::default()
    });
    Ok(Some(serialised))
}

/// Removes what the XPath `expressions` match from `doc`; whether anything was removed.
pub(super) fn remove_xpath_in(
    doc: &Document,
    expressions: &[(String, Expression)],
) -> Result<bool, FilterError> {
    let context = xpath_context(doc, "")?;
    let mut targets: Vec<Node> = Vec::new();
    let mut seen = HashSet::new();
    for (expr, expression) in expressions {
        let result =
            context
                .evaluate_compiled(expression)
                .map_err(|e| FilterError::XPathFailed {
                    expr: expr.clone(),
                    reason: libxml_reason(e.message),
                })?;
        let nodes = result.get_readonly_nodes_as_vec();
        if nodes.is_empty()
            || nodes
                .iter()
                .any(|n| n.get_type() == Some(NodeType::NamespaceDecl))
        {
            continue;
        }
        for node in result.get_nodes_as_vec() {
            if is_removable(node.get_type()) && seen.insert(node.to_hashable()) {
                targets.push(node);
            }
        }
    }
    if targets.is_empty() {
        return Ok(false);
    }

    // Freeing an ancestor frees its descendants; freeing those again would be
    // a double free, so only the outermost matches are released.
    let outermost: Vec<Node> = targets
        .into_iter()
        .filter(|node| {
            !node
                .ancestors()
                .iter()
                .any(|ancestor| seen.contains(&ancestor.to_hashable()))
        })
        .collect();
    for node in outermost {
        node.free_subtree();
    }

    Ok(true)
}
