//! A strict `multipart/form-data` reader for tests that check what a service would receive:
//! each part's raw header block, its name, file name and type, and its bytes. Anything that
//! is not a well-formed body (missing boundary, a part without its blank line, no closing
//! delimiter, bytes after it) is an error, so a test sees a broken body instead of a partial one.

/// One part of a `multipart/form-data` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormPart {
    /// The header lines as sent, without the blank line (`Content-Disposition: …\r\n…`).
    pub raw_headers: String,
    /// `name` from `Content-Disposition`.
    pub name: String,
    /// `filename` from `Content-Disposition`, when the part is a file.
    pub filename: Option<String>,
    /// The part's `Content-Type`, when it has one.
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

impl FormPart {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A quoted (or bare) parameter of a `Content-Disposition` value (`form-data; name="a"; …`).
fn disposition_param(value: &str, key: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut i = value.find(';')? + 1;
    while i < bytes.len() {
        let eq = i + value[i..].find('=')?;
        let k = value[i..eq].trim();
        let mut j = eq + 1;
        let mut v = String::new();
        if bytes.get(j) == Some(&b'"') {
            j += 1;
            let mut chars = value[j..].char_indices();
            loop {
                let (at, c) = chars.next()?;
                match c {
                    '\\' => {
                        let (_, escaped) = chars.next()?;
                        v.push(escaped);
                    }
                    '"' => {
                        j += at + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
        } else {
            let end = value[j..].find(';').map_or(value.len(), |e| j + e);
            v = value[j..end].trim().to_string();
            j = end;
        }
        if k == key {
            return Some(v);
        }
        i = j + value[j..].find(';').map_or(value.len() - j, |e| e + 1);
    }
    None
}

/// Splits `body` sent with `content_type` into its parts, in order.
pub fn parse(content_type: &str, body: &[u8]) -> Result<Vec<FormPart>, String> {
    let boundary =
        boundary(content_type).ok_or_else(|| format!("not multipart/form-data: {content_type}"))?;
    let opening = format!("--{boundary}\r\n");
    let delimiter = format!("\r\n--{boundary}");
    let mut rest = body
        .strip_prefix(opening.as_bytes())
        .ok_or("the body does not start with the boundary")?;
    let mut parts = Vec::new();
    loop {
        let head_end =
            find(rest, b"\r\n\r\n").ok_or("a part has no blank line after its headers")?;
        let raw_headers = std::str::from_utf8(&rest[..head_end])
            .map_err(|e| format!("part headers are not UTF-8: {e}"))?
            .to_string();
        let after = &rest[head_end + 4..];
        let data_end = find(after, delimiter.as_bytes()).ok_or("a part is not closed")?;
        let mut name = None;
        let mut filename = None;
        let mut content_type = None;
        for line in raw_headers.split("\r\n") {
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| format!("bad part header line {line:?}"))?;
            if k.eq_ignore_ascii_case("content-disposition") {
                if !v.trim_start().starts_with("form-data") {
                    return Err(format!("not a form-data part: {v:?}"));
                }
                name = disposition_param(v, "name");
                filename = disposition_param(v, "filename");
            } else if k.eq_ignore_ascii_case("content-type") {
                content_type = Some(v.trim().to_string());
            }
        }
        parts.push(FormPart {
            name: name.ok_or_else(|| format!("a part has no name: {raw_headers:?}"))?,
            raw_headers,
            filename,
            content_type,
            data: after[..data_end].to_vec(),
        });
        let next = &after[data_end + delimiter.len()..];
        if let Some(more) = next.strip_prefix(b"\r\n") {
            rest = more;
        } else if next == b"--\r\n" || next == b"--" {
            return Ok(parts);
        } else {
            return Err("bytes after a boundary that neither continue nor close".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_files() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n\
            --XyZ\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"s \\\"q\\\".jpg\"\r\n\
            Content-Type: image/jpeg\r\n\r\n\xff\r\n\x00\r\n--XyZ--\r\n";
        let parts = parse("multipart/form-data; boundary=XyZ", body);
        let Ok(parts) = parts else {
            panic!("{parts:?}")
        };
        assert_eq!(parts.len(), 2);
        assert_eq!((parts[0].name.as_str(), parts[0].text()), ("a", "1".into()));
        assert_eq!(parts[0].filename, None);
        assert_eq!(parts[1].name, "files[0]");
        assert_eq!(parts[1].filename.as_deref(), Some("s \"q\".jpg"));
        assert_eq!(parts[1].content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(parts[1].data, b"\xff\r\n\x00");
    }

    #[test]
    fn refuses_broken_bodies() {
        let ct = "multipart/form-data; boundary=b";
        for body in [
            &b""[..],
            b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1",
            b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n1\r\n--b--\r\n",
            b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b--x",
        ] {
            assert!(parse(ct, body).is_err(), "{body:?}");
        }
        assert!(parse("application/json", b"{}").is_err());
    }
}
