//! Fetching through proxies: HTTP (with Basic credentials) and SOCKS5 (remote and local name
//! resolution, with credentials), real proxies from testkit, and the address guard on the
//! target while a proxy connects to it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use changewatch_core::fetch::{FetchError, FetchRequest, Fetcher, FetcherConfig};
use changewatch_core::ssrf::AddressPolicy;
use testkit::{FixtureServer, Page, ProxyServer};

fn fetcher(policy: AddressPolicy) -> Fetcher {
    Fetcher::new(FetcherConfig {
        policy,
        retries: 0,
        ..FetcherConfig::default()
    })
    .unwrap()
}

/// The fixture's URL by name (`localhost`), so a proxy sees a host name to resolve.
fn by_name(srv: &FixtureServer, path: &str) -> String {
    srv.url(path).replace("127.0.0.1", "localhost")
}

fn through(url: String, proxy: String) -> FetchRequest {
    let mut req = FetchRequest::get(url);
    req.proxy = Some(proxy);
    req
}

#[tokio::test]
async fn an_http_proxy_with_credentials_carries_the_request() {
    let srv = FixtureServer::start();
    srv.set("/p", Page::html("<p>via the proxy</p>"));
    let proxy = ProxyServer::http(Some(("alice", "s3cret")));
    let f = fetcher(AddressPolicy::allow_all());

    let url = by_name(&srv, "/p");
    let page = f
        .fetch(&through(
            url.clone(),
            format!("http://alice:s3cret@{}", proxy.addr()),
        ))
        .await
        .unwrap();
    assert!(page.text.contains("via the proxy"));
    let seen = proxy.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        (seen[0].via, seen[0].target.as_str()),
        ("http", url.as_str())
    );
    assert_eq!(
        seen[0].auth,
        Some(("alice".to_string(), "s3cret".to_string()))
    );
    assert_eq!(srv.hits("/p"), 1);
    assert!(
        srv.seen("/p")[0].header("proxy-authorization").is_none(),
        "the proxy's credentials stay with the proxy"
    );

    // Wrong credentials: the proxy's 407 is the check's error, in upstream's words.
    let err = f
        .fetch(&through(
            url,
            format!("http://alice:wrong@{}", proxy.addr()),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Status { status: 407 }), "{err:?}");
    assert!(err.last_error().contains("Proxy authentication required"));
    assert_eq!(srv.hits("/p"), 1, "nothing reached the site");
}

#[tokio::test]
async fn socks5_proxies_resolve_names_where_the_scheme_says() {
    let srv = FixtureServer::start();
    srv.set("/s", Page::html("<p>via socks</p>"));
    let proxy = ProxyServer::socks5(Some(("bob", "pw")));
    let f = fetcher(AddressPolicy::allow_all());
    let url = by_name(&srv, "/s");
    let port = srv
        .url("/")
        .split(':')
        .nth(2)
        .unwrap()
        .trim_end_matches('/')
        .to_string();

    // socks5h: the proxy gets the name.
    let page = f
        .fetch(&through(
            url.clone(),
            format!("socks5h://bob:pw@{}", proxy.addr()),
        ))
        .await
        .unwrap();
    assert!(page.text.contains("via socks"));
    // socks5: the name is resolved here and the proxy gets an address.
    f.fetch(&through(
        url.clone(),
        format!("socks5://bob:pw@{}", proxy.addr()),
    ))
    .await
    .unwrap();
    let seen = proxy.requests();
    let targets: Vec<&str> = seen.iter().map(|p| p.target.as_str()).collect();
    assert_eq!(targets[0], format!("localhost:{port}"));
    assert!(
        targets[1] == format!("127.0.0.1:{port}") || targets[1] == format!("[::1]:{port}"),
        "{targets:?}"
    );
    assert!(
        seen.iter()
            .all(|p| p.auth == Some(("bob".into(), "pw".into())))
    );

    // Refused credentials: a failed fetch, not a page.
    let err = f
        .fetch(&through(
            url,
            format!("socks5h://bob:nope@{}", proxy.addr()),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Connect { .. }), "{err:?}");
    assert_eq!(srv.hits("/s"), 2);
}

#[tokio::test]
async fn the_guard_still_vets_the_target_behind_a_proxy() {
    let srv = FixtureServer::start();
    srv.set("/private", Page::html("<p>internal</p>"));
    let http = ProxyServer::http(None);
    let socks = ProxyServer::socks5(None);
    // Private targets refused; the proxy itself is on loopback, and that is the operator's
    // choice, not the page's.
    let f = fetcher(AddressPolicy::default());
    for proxy in [
        format!("http://{}", http.addr()),
        format!("socks5h://{}", socks.addr()),
    ] {
        for url in [srv.url("/private"), by_name(&srv, "/private")] {
            let err = f
                .fetch(&through(url.clone(), proxy.clone()))
                .await
                .unwrap_err();
            assert!(
                matches!(err, FetchError::Blocked { .. }),
                "{url} via {proxy}: {err:?}"
            );
        }
    }
    assert!(http.requests().is_empty() && socks.requests().is_empty());
    assert_eq!(srv.hits("/private"), 0);
}

#[tokio::test]
async fn an_unusable_proxy_url_is_the_error_without_its_password() {
    let f = fetcher(AddressPolicy::allow_all());
    let err = f
        .fetch(&through(
            "http://example.invalid/".into(),
            "ftp://user:topsecret@proxy.example:21".into(),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::BadProxy { .. }), "{err:?}");
    let message = err.last_error();
    assert!(
        message.contains("unsupported proxy scheme 'ftp'"),
        "{message}"
    );
    assert!(!message.contains("topsecret"), "{message}");
}
