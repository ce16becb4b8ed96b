//! JSON sources (documents, JSONP, JSON in HTML script tags) and JSONPath.

use super::*;

/// One parsed JSON value plus the text it came from: jq reads the text again
/// so objects keep document key order (`keys_unsorted`, `to_entries`).
pub(super) struct JsonDoc<'a> {
    pub(super) text: Cow<'a, str>,
    pub(super) value: Value,
}

/// Where the JSON in a document was found; this decides the fallback rules.
pub(super) enum JsonSource<'a> {
    /// The whole document is JSON.
    Whole(JsonDoc<'a>),
    /// `callback({...});` wrapper around JSON.
    Jsonp(JsonDoc<'a>),
    /// JSON blobs in `<script>` elements, then in `<body>` text (JSON shown
    /// in a `<pre>`), in that order. Never empty.
    Embedded(Vec<JsonDoc<'a>>),
}

impl<'a> JsonSource<'a> {
    /// JSON that is the whole document or JSONP; `None` means "look inside
    /// the HTML", an error means it looked like JSON but is malformed.
    pub(super) fn detect_direct(content: &'a str) -> Result<Option<Self>, FilterError> {
        let body = content.trim_start_matches('\u{feff}');
        let trimmed = body.trim();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            return parse_json_text(Cow::Borrowed(body))
                .map(|doc| Some(JsonSource::Whole(doc)))
                .map_err(|reason| FilterError::InvalidJson { reason });
        }
        Ok(jsonp_payload(trimmed)
            .and_then(|inner| parse_json_text(Cow::Borrowed(inner)).ok())
            .map(JsonSource::Jsonp))
    }

    pub(super) fn from_html(html: &Html) -> Result<Self, FilterError> {
        let blobs = json_blobs_in_html(html);
        if blobs.is_empty() {
            return Err(FilterError::JsonNotFound);
        }
        Ok(JsonSource::Embedded(blobs))
    }

    pub(super) fn evaluate(&self, evaluator: &JsonEvaluator) -> Result<String, FilterError> {
        match self {
            JsonSource::Whole(doc) | JsonSource::Jsonp(doc) => evaluator.run(doc),
            JsonSource::Embedded(docs) => {
                // First blob that yields anything wins; pages often carry
                // several ld+json blocks and only one has the wanted key.
                for doc in docs {
                    let text = evaluator.run(doc)?;
                    if !text.is_empty() {
                        return Ok(text);
                    }
                }
                Ok(String::new())
            }
        }
    }
}

/// Parses JSON text; a document with unpaired UTF-16 surrogate escapes
/// (`"\uD800"`) is retried with those replaced by U+FFFD, as upstream does,
/// instead of failing every filter on the page.
pub(super) fn parse_json_text(text: Cow<'_, str>) -> Result<JsonDoc<'_>, String> {
    match serde_json::from_str::<Value>(&text) {
        Ok(value) => Ok(JsonDoc { text, value }),
        Err(first_error) => match replace_lone_surrogate_escapes(&text) {
            Some(fixed) => match serde_json::from_str::<Value>(&fixed) {
                Ok(value) => Ok(JsonDoc {
                    text: Cow::Owned(fixed),
                    value,
                }),
                Err(_) => Err(first_error.to_string()),
            },
            None => Err(first_error.to_string()),
        },
    }
}

/// Returns the text with every unpaired `\uD800`–`\uDFFF` escape replaced by
/// `\uFFFD`, or `None` when there is none.
pub(super) fn replace_lone_surrogate_escapes(text: &str) -> Option<String> {
    pub(super) fn escape_at(bytes: &[u8], at: usize) -> Option<u16> {
        if bytes.get(at) != Some(&b'\\') || bytes.get(at + 1) != Some(&b'u') {
            return None;
        }
        let hex = bytes.get(at + 2..at + 6)?;
        let hex = std::str::from_utf8(hex).ok()?;
        u16::from_str_radix(hex, 16).ok()
    }

    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    let mut changed = false;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        let Some(unit) = escape_at(bytes, i) else {
            // Any other escape: skip the escaped character so `\\u` is not
            // mistaken for a unicode escape.
            i += 2;
            continue;
        };
        let is_high = (0xD800..=0xDBFF).contains(&unit);
        let is_low = (0xDC00..=0xDFFF).contains(&unit);
        if is_high && escape_at(bytes, i + 6).is_some_and(|next| (0xDC00..=0xDFFF).contains(&next))
        {
            i += 12;
        } else if is_high || is_low {
            out.push_str(&text[copied..i]);
            out.push_str("\\uFFFD");
            i += 6;
            copied = i;
            changed = true;
        } else {
            i += 6;
        }
    }
    if !changed {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// The JSON inside a JSONP response such as `jQuery123({...});` or
/// `some.ns.cb([...])`: servers often label these `application/json`.
pub(super) fn jsonp_payload(text: &str) -> Option<&str> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut chars = text.char_indices();
    let (_, first) = chars.next()?;
    if !is_word(first) {
        return None;
    }
    let open = text.find(|c: char| !(is_word(c) || c == '.'))?;
    let after_name = text[open..].trim_start();
    let after_paren = after_name.strip_prefix('(')?;
    let tail = after_paren.trim_end();
    let tail = tail.strip_suffix(';').unwrap_or(tail).trim_end();
    let inner = tail.strip_suffix(')')?.trim();
    (!inner.is_empty()).then_some(inner)
}

/// Collects JSON values from `<script>` texts and then `<body>` texts.
///
/// Body text leaves out script, style and template contents, matching what
/// BeautifulSoup's `.text` gives upstream, so a JSON document rendered in a
/// `<pre>` by a browser is found.
pub(super) fn json_blobs_in_html(html: &Html) -> Vec<JsonDoc<'static>> {
    let mut scripts = Vec::new();
    let mut bodies = Vec::new();
    for node in html.tree.root().descendants() {
        if let Some(element) = scraper::ElementRef::wrap(node) {
            match element.value().name() {
                "script" => scripts.push(element.text().collect::<String>()),
                "body" => bodies.push(visible_text(element)),
                _ => {}
            }
        }
    }
    scripts
        .into_iter()
        .chain(bodies)
        .filter_map(|text| {
            let candidate = text.trim_start_matches('\u{feff}').trim();
            if !(candidate.starts_with('{') || candidate.starts_with('[')) {
                return None;
            }
            let owned = candidate.to_owned();
            parse_json_text(Cow::Owned(owned)).ok().map(|doc| JsonDoc {
                text: Cow::Owned(doc.text.into_owned()),
                value: doc.value,
            })
        })
        .collect()
}

pub(super) fn visible_text(element: scraper::ElementRef<'_>) -> String {
    let mut text = String::new();
    // Explicit stack: deeply nested pages must not overflow the call stack.
    let mut stack: Vec<_> = element.children().collect();
    stack.reverse();
    while let Some(node) = stack.pop() {
        match node.value() {
            scraper::Node::Text(t) => text.push_str(t),
            scraper::Node::Element(e) if !matches!(e.name(), "script" | "style" | "template") => {
                let start = stack.len();
                stack.extend(node.children());
                stack[start..].reverse();
            }
            _ => {}
        }
    }
    text
}

/// A compiled JSON filter, built once per filter and run per JSON blob.
pub(super) enum JsonEvaluator<'f> {
    Path(JsonPath),
    Jq {
        filter: JqFilter,
        raw: bool,
        expr: &'f str,
    },
}

impl<'f> JsonEvaluator<'f> {
    pub(super) fn new(filter: &'f Filter, allow_risky_jq: bool) -> Result<Self, FilterError> {
        match filter.kind {
            FilterKind::Jq | FilterKind::JqRaw => Ok(JsonEvaluator::Jq {
                filter: compile_jq(&filter.expr, allow_risky_jq)?,
                raw: filter.kind == FilterKind::JqRaw,
                expr: &filter.expr,
            }),
            _ => Ok(JsonEvaluator::Path(json_path(&filter.expr)?)),
        }
    }

    pub(super) fn run(&self, doc: &JsonDoc<'_>) -> Result<String, FilterError> {
        match self {
            JsonEvaluator::Path(path) => {
                let matches = path.query(&doc.value).all();
                Ok(match matches.as_slice() {
                    [] => String::new(),
                    [single] => dumps(single, b"    "),
                    many => dumps(
                        &Value::Array(many.iter().map(|v| (*v).clone()).collect()),
                        b"    ",
                    ),
                })
            }
            JsonEvaluator::Jq { filter, raw, expr } => {
                let outputs = run_jq(filter, &doc.text, expr)?;
                if *raw {
                    return Ok(outputs
                        .iter()
                        .map(raw_jq_output)
                        .collect::<Vec<_>>()
                        .join("\n"));
                }
                Ok(match outputs.as_slice() {
                    [] => String::new(),
                    [single] => dumps(&val_to_json(single), b"    "),
                    many => dumps(
                        &Value::Array(many.iter().map(val_to_json).collect()),
                        b"    ",
                    ),
                })
            }
        }
    }
}

/// Upstream's jsonpath-ng accepts paths without the `$` root (`json:boss.name`);
/// RFC 9535 does not, so the root is supplied.
pub(super) fn normalise_json_path(expr: &str) -> Cow<'_, str> {
    if expr.starts_with('$') {
        Cow::Borrowed(expr)
    } else if expr.starts_with('.') || expr.starts_with('[') {
        Cow::Owned(format!("${expr}"))
    } else {
        Cow::Owned(format!("$.{expr}"))
    }
}

pub(super) fn json_path(expr: &str) -> Result<JsonPath, FilterError> {
    JsonPath::parse(&normalise_json_path(expr)).map_err(|e| FilterError::InvalidJsonPath {
        expr: expr.to_owned(),
        reason: e.to_string(),
    })
}

/// Pretty-prints like Python's `json.dumps(indent=…, ensure_ascii=False)`;
/// keys come out sorted because serde_json's map is ordered.
pub(super) fn dumps(value: &Value, indent: &[u8]) -> String {
    let mut buffer = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(indent);
    let mut serializer = serde_json::Serializer::with_formatter(&mut buffer, formatter);
    if value.serialize(&mut serializer).is_err() {
        return String::new();
    }
    String::from_utf8(buffer).unwrap_or_default()
}
