//! Knowing, before any processing, that a check would give what the last one gave.
//!
//! Processing a page is most of what a check costs, and most pages are unchanged between two
//! checks. The processor is a pure function of the reply (status, content type, bytes) and the
//! merged processing settings, so when both are what the last *successfully processed* check
//! saw, its result is already known: unchanged. Upstream has the same shortcut (its raw-content
//! checksum plus `last_filter_config_hash`); here one stored value covers both halves:
//! [`Stamp`] = fingerprint of the settings and the request + checksum of the reply.
//!
//! The fingerprint includes the request (URL, method, headers, body) as well as the settings,
//! because it also decides whether the server's validators (`ETag`, `Last-Modified`) may be
//! sent: a `304 Not Modified` only speaks for the request the validators came from. It also
//! includes this crate's version, so an upgrade that changes the pipeline reprocesses once.

use serde::{Deserialize, Serialize};

use crate::fetch::{FetchRequest, FetchedPage};
use crate::pipeline::ProcessorSettings;

/// The fingerprint half of a [`Stamp`]: what a reply is processed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of processing `request`'s reply with `rules`.
    pub fn of(rules: &ProcessorSettings, request: &FetchRequest) -> Self {
        let mut ctx = md5::Context::new();
        ctx.consume(env!("CARGO_PKG_VERSION").as_bytes());
        ctx.consume([0]);
        // Serialising a struct of plain fields cannot fail; an empty string would only make
        // every fingerprint of such settings equal, never a wrong reuse across requests.
        ctx.consume(serde_json::to_vec(rules).unwrap_or_default());
        for part in [request.url.as_str(), request.method.as_str()] {
            ctx.consume([0]);
            ctx.consume(part.as_bytes());
        }
        for (name, value) in &request.headers {
            ctx.consume([0]);
            ctx.consume(name.to_ascii_lowercase().as_bytes());
            ctx.consume(b":");
            ctx.consume(value.as_bytes());
        }
        ctx.consume([0, u8::from(request.body.is_some())]);
        ctx.consume(request.body.as_deref().unwrap_or_default().as_bytes());
        ctx.consume([
            0,
            u8::from(request.ignore_status_codes),
            u8::from(request.empty_pages_are_a_change),
        ]);
        // Another proxy may be served another page (another country, another cache). Only
        // a request through a proxy adds this, so direct requests keep their fingerprints.
        if let Some(proxy) = &request.proxy {
            ctx.consume([0, 1]);
            ctx.consume(proxy.as_bytes());
        }
        Fingerprint(half(ctx.compute()))
    }
}

/// What a successfully processed check leaves on its watch (`last_raw_checksum`): the
/// settings' fingerprint and the reply's checksum, `"<fingerprint>:<checksum>"`, 33 bytes (a
/// watch document is billed per KB in AWS mode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    fingerprint: Fingerprint,
    content: String,
}

impl Stamp {
    pub fn new(fingerprint: Fingerprint, page: &FetchedPage) -> Self {
        use sha2::Digest;
        // SHA-256 for the page's bytes, where MD5 served the small settings: the sha2 crate
        // uses the CPU's SHA extensions where it has them, several times MD5's speed on a
        // 50 KB page, and this runs on every check.
        let mut ctx = sha2::Sha256::new();
        ctx.update(page.status.to_be_bytes());
        ctx.update(page.content_type.as_deref().unwrap_or_default().as_bytes());
        ctx.update([0]);
        ctx.update(&page.raw);
        let digest = ctx.finalize();
        Stamp {
            fingerprint,
            content: digest[..8].iter().map(|b| format!("{b:02x}")).collect(),
        }
    }

    /// A stored stamp; `None` for anything this version did not write (an upstream import's
    /// value, a hand edit): that only costs one reprocessing.
    pub fn parse(stored: &str) -> Option<Self> {
        let (fingerprint, content) = stored.split_once(':')?;
        let hex = |s: &str| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
        (hex(fingerprint) && hex(content)).then(|| Stamp {
            fingerprint: Fingerprint(fingerprint.to_string()),
            content: content.to_string(),
        })
    }

    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }
}

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.fingerprint.0, self.content)
    }
}

/// The server's cache validators of the last processed reply (`last_validators`), sent back
/// as `If-None-Match` / `If-Modified-Since` while the fingerprint holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

/// Longer values are not stored: a validator is a short token or an HTTP date, and the
/// watch document is billed per KB in AWS mode.
const MAX_VALIDATOR_LEN: usize = 200;

impl Validators {
    /// The reply's validators; `None` when it has neither. A weak `ETag` is kept: a weak
    /// match is what `If-None-Match` compares (RFC 9110 §13.1.2).
    pub fn of(page: &FetchedPage) -> Option<Self> {
        let header = |name: &str| {
            page.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty() && v.len() <= MAX_VALIDATOR_LEN)
        };
        let v = Validators {
            etag: header("etag"),
            last_modified: header("last-modified"),
        };
        (v.etag.is_some() || v.last_modified.is_some()).then_some(v)
    }
}

/// The first 64 bits of a digest in hex: two checks of one watch are compared, not a
/// population, so a collision (2^-64) is not a concern.
fn half(digest: md5::Digest) -> String {
    format!("{digest:x}")[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(raw: &[u8]) -> FetchedPage {
        FetchedPage {
            final_url: "http://x/".into(),
            status: 200,
            content_type: Some("text/html".into()),
            server: None,
            headers: vec![
                ("ETag".into(), "W/\"abc\"".into()),
                ("x-other".into(), "1".into()),
            ],
            raw: raw.to_vec(),
            text: String::from_utf8_lossy(raw).into_owned(),
            encoding: "utf-8",
            fetch_time: 0.1,
            screenshot: None,
            stock_scan: None,
        }
    }

    #[test]
    fn a_stamp_changes_with_the_reply_and_the_settings_and_round_trips() {
        let rules = ProcessorSettings::default();
        let req = FetchRequest::get("http://x/");
        let fp = Fingerprint::of(&rules, &req);
        let a = Stamp::new(fp.clone(), &page(b"<p>a</p>"));
        assert_eq!(a, Stamp::new(fp.clone(), &page(b"<p>a</p>")));
        assert_ne!(a, Stamp::new(fp.clone(), &page(b"<p>b</p>")));
        let mut json = page(b"<p>a</p>");
        json.content_type = Some("application/json".into());
        assert_ne!(a, Stamp::new(fp.clone(), &json));

        let filtered = ProcessorSettings {
            include_filters: vec!["main".into()],
            ..ProcessorSettings::default()
        };
        assert_ne!(fp, Fingerprint::of(&filtered, &req));
        let mut other = req.clone();
        other.headers.push(("Cookie".into(), "a=1".into()));
        assert_ne!(fp, Fingerprint::of(&rules, &other));

        assert_eq!(Stamp::parse(&a.to_string()), Some(a.clone()));
        assert_eq!(a.to_string().len(), 33);
        for bad in [
            "",
            "abc",
            "0123456789abcdef",
            "0123456789abcdeg:0123456789abcdef",
        ] {
            assert_eq!(Stamp::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn validators_are_read_from_the_reply() {
        let v = Validators::of(&page(b"x")).expect("an etag");
        assert_eq!(v.etag.as_deref(), Some("W/\"abc\""));
        assert_eq!(v.last_modified, None);
        let mut none = page(b"x");
        none.headers.clear();
        assert_eq!(Validators::of(&none), None);
        none.headers
            .push(("etag".into(), format!("\"{}\"", "a".repeat(300))));
        assert_eq!(Validators::of(&none), None);
    }
}
