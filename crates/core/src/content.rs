//! What kind of document a reply is.
//!
//! The `Content-Type` header is often missing or wrong (feeds served as `text/xml`, HTML as
//! `text/plain`), and the kind decides the whole processing path, so the header is checked
//! against the first bytes of the body the way upstream does.

/// The processing path a reply takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum StreamType {
    Html,
    Json,
    /// RSS, Atom or RDF feeds: item titles become headings, CDATA becomes text.
    Rss,
    /// Other XML: kept as source, filterable with XPath.
    Xml,
    Text,
    /// PDF: its text, through [`crate::pdf`], processed as HTML.
    Pdf,
    /// Other binary replies (images, audio, video, octet streams): represented by their
    /// checksum, not their bytes.
    Binary,
}

impl StreamType {
    pub fn is_markup(self) -> bool {
        matches!(self, StreamType::Html | StreamType::Rss | StreamType::Xml)
    }
}

const RSS_TYPES: &[&str] = &[
    "application/rss+xml",
    "application/rdf+xml",
    "application/atom+xml",
    "text/rss+xml",
    "application/x-rss+xml",
    "application/x-atom+xml",
];
const JSON_TYPES: &[&str] = &[
    "application/activity+json",
    "application/feed+json",
    "application/json",
    "application/ld+json",
    "application/vnd.api+json",
];
const HTML_PATTERNS: &[&str] = &[
    "<!doctype html",
    "<html",
    "<head",
    "<body",
    "<script",
    "<iframe",
    "<div",
];

/// Upstream's assumption when a reply has no `Content-Type` at all.
pub const DEFAULT_CONTENT_TYPE: &str = "text/html";

/// Classifies a reply from its (lowercased) content type and its raw bytes.
pub fn guess_stream_type(content_type: &str, raw: &[u8]) -> StreamType {
    let ct = content_type.to_ascii_lowercase();
    let head = sniff_prefix(raw);
    let mime = ct.split(';').next().unwrap_or("").trim();

    if ct.contains("pdf") || head.starts_with("%pdf-") {
        return StreamType::Pdf;
    }
    if ct.starts_with("image/")
        || ct.starts_with("audio/")
        || ct.starts_with("video/")
        || (mime == "application/octet-stream" && looks_binary(raw))
    {
        return StreamType::Binary;
    }
    if RSS_TYPES.iter().any(|t| ct.contains(t)) {
        return StreamType::Rss;
    }
    if JSON_TYPES.iter().any(|t| ct.contains(t)) {
        // JSONP (`callback({...})`) claims JSON but is not; keep it as text.
        let jsonp = head.split_once('(').is_some_and(|(ident, _)| {
            !ident.is_empty()
                && ident
                    .trim_end()
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
        });
        return if jsonp {
            StreamType::Text
        } else {
            StreamType::Json
        };
    }
    if head.contains("<rss") || head.contains("<feed") || head.contains("<rdf:") {
        return StreamType::Rss;
    }
    if HTML_PATTERNS.iter().any(|p| head.contains(p)) || mime == "text/html" {
        return StreamType::Html;
    }
    if mime == "text/xml" || mime == "application/xml" || head.starts_with("<?xml") {
        return StreamType::Xml;
    }
    if ct.starts_with("text/") {
        return StreamType::Text;
    }
    if (head.starts_with('{') || head.starts_with('['))
        && serde_json::from_slice::<serde_json::Value>(raw).is_ok()
    {
        return StreamType::Json;
    }
    if looks_binary(raw) {
        StreamType::Binary
    } else {
        StreamType::Text
    }
}

/// First 200 bytes, lowercased, trimmed, with `< html` normalised to `<html`.
fn sniff_prefix(raw: &[u8]) -> String {
    let end = raw.len().min(200);
    let lossy = String::from_utf8_lossy(&raw[..end]).to_lowercase();
    let trimmed = lossy.trim_start_matches('\u{feff}').trim();
    let mut out = String::with_capacity(trimmed.len());
    let mut after_lt = false;
    for c in trimmed.chars() {
        if after_lt && c.is_whitespace() {
            continue;
        }
        after_lt = c == '<';
        out.push(c);
    }
    out
}

fn looks_binary(raw: &[u8]) -> bool {
    raw[..raw.len().min(1024)].contains(&0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use StreamType::*;

    #[test]
    fn header_and_content_sniffing() {
        let cases: &[(&str, &[u8], StreamType)] = &[
            ("text/html; charset=utf-8", b"<p>hi", Html),
            ("", b"<!DOCTYPE html><html>", Html),
            ("text/plain", b"< html><body>x", Html),
            ("text/plain", b"just text", Text),
            ("application/json", b"{\"a\":1}", Json),
            ("application/json", b"cb({\"a\":1})", Text),
            (
                "text/xml",
                b"<?xml version=\"1.0\"?><rss version=\"2.0\">",
                Rss,
            ),
            ("application/atom+xml", b"<feed>", Rss),
            ("text/xml", b"<?xml version=\"1.0\"?><catalog/>", Xml),
            ("", b"<?xml version=\"1.0\"?><catalog/>", Xml),
            ("application/pdf", b"%PDF-1.7", Pdf),
            ("", b"%PDF-1.4 ...", Pdf),
            ("application/octet-stream", b"%PDF-1.4 ...", Pdf),
            ("image/png", b"\x89PNG\r\n", Binary),
            ("", b"[1,2,3]", Json),
            ("", b"plain words", Text),
        ];
        for (ct, body, want) in cases {
            assert_eq!(
                guess_stream_type(ct, body),
                *want,
                "{ct:?} {:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
