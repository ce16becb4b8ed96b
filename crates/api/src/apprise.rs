//! Which notification URLs are accepted: those the notifier can deliver to
//! ([`changewatch_notify::url`]), so a saved URL never fails later for being unusable. A URL
//! may be a template (`ntfy://host/{{watch_uuid}}`). Upstream renders it for an example watch
//! before asking apprise; here it is never rendered in the API process (a template can ask
//! for gigabytes, and rendering runs in the sandbox at notification time): it must compile,
//! and the URL must be deliverable with each `{{ }}` / `{% %}` block standing in as a word.
//! A scheme changewatch does not deliver itself passes when apprise 2.0.1 knows it (it is
//! relayed to `APPRISE_API_URL` at delivery, and fails there clearly without one): upstream
//! accepts such URLs, so saving and importing them must too.

/// True when the URL is one the notifier accepts (`#` comments and `null://` included).
pub fn is_valid_apprise_url(url: &str) -> bool {
    let url = url.trim();
    if !(url.contains("{{") || url.contains("{%")) {
        return changewatch_notify::url::is_valid(url);
    }
    changewatch_core::model::check_template_syntax(url).is_ok()
        && changewatch_notify::url::is_valid(&blocks_as_words(url))
}

/// `json://host/{{watch_uuid}}` as `json://host/x`: the shape of the URL around its blocks.
fn blocks_as_words(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    loop {
        let open = [("{{", "}}"), ("{%", "%}")]
            .into_iter()
            .filter_map(|(o, c)| rest.find(o).map(|at| (at, c)))
            .min_by_key(|(at, _)| *at);
        let Some((at, close)) = open else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..at]);
        match rest[at + 2..].find(close) {
            Some(end) => {
                out.push('x');
                rest = &rest[at + 2 + end + 2..];
            }
            None => {
                out.push_str(&rest[at..]);
                return out;
            }
        }
    }
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
            "ntfy://topic?click={{ watch_url }}",
            "json://example.com/{% if watch_uuid %}a{% endif %}",
            // Services delivered through an Apprise API server: apprise knows the scheme.
            "zulip://bot@org.example/token",
            "hassio://ha.example.com/{{watch_uuid}}",
        ] {
            assert!(is_valid_apprise_url(u), "{u}");
        }
    }

    #[test]
    fn url_templates_are_not_rendered_in_the_api_process() {
        // Rendered, this would ask for ten gigabytes and abort the process.
        let bomb = r#"json://example.com/{{ "x" * 10000000000 }}"#;
        assert!(is_valid_apprise_url(bomb));
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
            "{{ watch_url }}",
        ] {
            assert!(!is_valid_apprise_url(u), "{u}");
        }
    }
}
