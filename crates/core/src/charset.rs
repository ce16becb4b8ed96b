//! Turning a reply's bytes into text.
//!
//! Servers often omit or misstate the charset, and a wrong guess turns every accented letter into
//! a "change". The order follows what browsers (and upstream) do: the `Content-Type` charset, then
//! a byte-order mark, then the XML declaration for feeds, then `<meta charset>` in the first 2 KB,
//! and only then statistical detection.

use encoding_rs::Encoding;
use regex::bytes::Regex;
use std::sync::LazyLock;

static META_CHARSET: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r#"(?i-u)<meta[^>]+charset\s*=\s*["']?\s*([^"'\s;>/]+)"#).ok());
static XML_ENCODING: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r#"(?i-u)^\s*<\?xml[^>]+encoding\s*=\s*["']([^"']+)["']"#).ok());

/// Where the encoding decision came from; logged so that mojibake reports can be diagnosed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CharsetSource {
    Header,
    Bom,
    XmlDeclaration,
    Meta,
    Detected,
}

/// Decodes `body`; returns the text, the encoding's name and where it came from.
pub fn decode(body: &[u8], content_type: Option<&str>) -> (String, &'static str, CharsetSource) {
    let (encoding, source) = choose(body, content_type);
    // decode() strips a BOM of any UTF flavour itself, so the text never starts with U+FEFF.
    let (text, actual, _had_errors) = encoding.decode(body);
    (text.into_owned(), actual.name(), source)
}

fn choose(body: &[u8], content_type: Option<&str>) -> (&'static Encoding, CharsetSource) {
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    if let Some(enc) = header_charset(&ct) {
        return (enc, CharsetSource::Header);
    }
    if let Some((enc, _)) = Encoding::for_bom(body) {
        return (enc, CharsetSource::Bom);
    }
    let head = &body[..body.len().min(2000)];
    if ct.contains("xml") || ct.contains("rss") {
        let enc = XML_ENCODING
            .as_ref()
            .and_then(|re| re.captures(head))
            .and_then(|c| c.get(1))
            .and_then(|m| Encoding::for_label(m.as_bytes()))
            .unwrap_or(encoding_rs::UTF_8);
        return (enc, CharsetSource::XmlDeclaration);
    }
    if let Some(enc) = META_CHARSET
        .as_ref()
        .and_then(|re| re.captures(head))
        .and_then(|c| c.get(1))
        .and_then(|m| Encoding::for_label(m.as_bytes()))
    {
        // A page that declares UTF-16 in ASCII-compatible markup cannot really be UTF-16.
        let enc = if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE {
            encoding_rs::UTF_8
        } else {
            enc
        };
        return (enc, CharsetSource::Meta);
    }
    if std::str::from_utf8(body).is_ok() {
        return (encoding_rs::UTF_8, CharsetSource::Detected);
    }
    let mut detector = chardetng::EncodingDetector::new();
    detector.feed(body, true);
    (detector.guess(None, true), CharsetSource::Detected)
}

fn header_charset(ct: &str) -> Option<&'static Encoding> {
    ct.split(';')
        .skip(1)
        .filter_map(|p| p.trim().strip_prefix("charset="))
        .map(|v| v.trim_matches(|c| c == '"' || c == '\''))
        .find_map(|label| Encoding::for_label(label.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_wins() {
        let (text, enc, src) = decode(b"caf\xe9", Some("text/html; charset=ISO-8859-1"));
        assert_eq!(text, "café");
        assert_eq!(enc, "windows-1252");
        assert_eq!(src, CharsetSource::Header);
    }

    #[test]
    fn bom_before_meta() {
        let body = b"\xef\xbb\xbf<meta charset=\"latin1\">caf\xc3\xa9";
        let (text, enc, src) = decode(body, Some("text/html"));
        assert_eq!(src, CharsetSource::Bom);
        assert_eq!(enc, "UTF-8");
        assert!(text.starts_with("<meta") && text.ends_with("café"));
    }

    #[test]
    fn meta_charset() {
        let body = b"<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\"></head>caf\xe9";
        let (text, _, src) = decode(body, None);
        assert_eq!(src, CharsetSource::Meta);
        assert!(text.ends_with("café"));
    }

    #[test]
    fn detection_of_latin1_without_any_declaration() {
        let body = "<p>Le café est très bon. Déjà vu à Paris, où l'été est chaud.</p>"
            .chars()
            .map(|c| c as u32 as u8)
            .collect::<Vec<u8>>();
        let (text, _, src) = decode(&body, None);
        assert_eq!(src, CharsetSource::Detected);
        assert!(text.contains("café") && text.contains("été"), "{text}");
    }

    #[test]
    fn xml_declaration_for_feeds() {
        let body = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><rss>caf\xe9</rss>";
        let (text, _, src) = decode(body, Some("application/rss+xml"));
        assert_eq!(src, CharsetSource::XmlDeclaration);
        assert!(text.contains("café"));
    }
}
