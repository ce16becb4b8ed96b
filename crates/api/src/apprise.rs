//! Which notification URLs are accepted: those the notifier can deliver to
//! ([`changewatch_notify::url`]), so a saved URL never fails later for being unusable. A URL
//! may be a template (`ntfy://host/{{watch_uuid}}`); it is checked as it would render for an
//! example watch, as upstream renders before asking apprise.

use changewatch_core::diff::DiffFormat;
use changewatch_notify::render::{ChangeContext, render_url};

/// True when the URL is one the notifier accepts (`#` comments and `null://` included).
pub fn is_valid_apprise_url(url: &str) -> bool {
    let url = url.trim();
    if !(url.contains("{{") || url.contains("{%")) {
        return changewatch_notify::url::is_valid(url);
    }
    let example = ChangeContext {
        watch_uuid: "00000000-0000-4000-8000-000000000000".into(),
        watch_url: "https://example.com/".into(),
        watch_title: "Example".into(),
        ..ChangeContext::default()
    };
    render_url(url, &example, DiffFormat::Text)
        .is_ok_and(|rendered| changewatch_notify::url::is_valid(&rendered))
}

#[cfg(test)]
mod tests {
    use super::is_valid_apprise_url;

    #[test]
    fn deliverable_urls_pass() {
        for u in [
            "json://example.com/hook",
            "posts://example.com/x",
            "mailto://user:pass@example.com",
            "tgram://123456789:abcdefg_hijklmnop/12345",
            "NTFY://topic",
            "null://",
            "#json://commented.out/hook",
            "json://example.com/{{watch_uuid}}",
        ] {
            assert!(is_valid_apprise_url(u), "{u}");
        }
    }

    #[test]
    fn unknown_schemes_bare_schemes_and_broken_templates_fail() {
        for u in [
            "",
            "foo://bar",
            "http://example.com",
            "json://",
            "example.com",
            "json:x",
            "json://example.com/{{ unclosed",
        ] {
            assert!(!is_valid_apprise_url(u), "{u}");
        }
    }
}
