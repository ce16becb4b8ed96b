//! The fetcher against a real local HTTP server: status handling, charset, size cap, redirects
//! and the SSRF guard on every hop.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::time::Duration;

use changewatch_core::budget::PageBudget;
use changewatch_core::fetch::{FetchError, FetchRequest, Fetcher, FetcherConfig};
use changewatch_core::ssrf::AddressPolicy;
use testkit::{FixtureServer, Page, fixture};

fn open_fetcher() -> Fetcher {
    Fetcher::new(FetcherConfig {
        policy: AddressPolicy::allow_all(),
        ..FetcherConfig::default()
    })
    .unwrap()
}

/// Retries as configured by default, but without upstream's waits between them (a failed
/// lookup is retried too, and would otherwise take half a minute).
fn guarded_fetcher(allowed_hosts: &[&str]) -> Fetcher {
    Fetcher::new(FetcherConfig {
        policy: AddressPolicy {
            allow_private: false,
            allowed_hosts: allowed_hosts.iter().map(|h| h.to_string()).collect(),
        },
        retry_backoff: Duration::from_millis(1),
        ..FetcherConfig::default()
    })
    .unwrap()
}

fn retrying_fetcher(retries: u32) -> Fetcher {
    Fetcher::new(FetcherConfig {
        policy: AddressPolicy::allow_all(),
        retries,
        retry_backoff: Duration::from_millis(200),
        ..FetcherConfig::default()
    })
    .unwrap()
}

/// A raw HTTP server on `listener` that closes the first `drop_first` connections as soon
/// as it has read their request (before any reply), then answers each with `body`. Returns
/// the number of connections it took.
fn flaky_server(
    listener: std::net::TcpListener,
    drop_first: usize,
    body: &'static str,
) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = taken.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let n = count.fetch_add(1, Ordering::SeqCst);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            if n < drop_first {
                continue; // dropped: closed without a reply
            }
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    taken
}

#[tokio::test]
async fn a_reply_broken_off_before_its_headers_is_retried() {
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let taken = flaky_server(listener, 2, "<p>third time lucky</p>");
    let page = retrying_fetcher(6)
        .fetch(&FetchRequest::get(&url))
        .await
        .unwrap();
    assert!(page.text.contains("third time lucky"));
    assert_eq!(taken.load(Ordering::SeqCst), 3, "two dropped, one answered");

    // PUT is not among the methods upstream retries once a request has gone out.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let taken = flaky_server(listener, 1, "never read");
    let mut put = FetchRequest::get(&url);
    put.method = "PUT".into();
    let err = retrying_fetcher(6).fetch(&put).await.unwrap_err();
    assert!(matches!(err, FetchError::Connect { .. }), "{err:?}");
    assert_eq!(taken.load(Ordering::SeqCst), 1);

    // No retries configured: the first failure is the answer.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let taken = flaky_server(listener, 1, "never read");
    assert!(
        retrying_fetcher(0)
            .fetch(&FetchRequest::get(&url))
            .await
            .is_err()
    );
    assert_eq!(taken.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_refused_connection_is_retried_with_backoff_until_the_site_is_up() {
    // A port nothing listens on yet; the site comes up after ~0.5 s. Waits of 0, 0.4, 0.8 s
    // (factor 0.2 s) reach it on the third or fourth try.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    let started = std::time::Instant::now();
    let up = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        flaky_server(listener, 0, "<p>up now</p>")
    });
    let page = retrying_fetcher(6)
        .fetch(&FetchRequest::get(&url))
        .await
        .unwrap();
    assert!(page.text.contains("up now"));
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "the retries waited for the site rather than spinning"
    );
    assert_eq!(
        up.join().unwrap().load(std::sync::atomic::Ordering::SeqCst),
        1
    );

    // Retries stay within the request's timeout: a site that never comes up fails at it.
    let mut req = FetchRequest::get(format!("http://127.0.0.1:{port}/gone"));
    req.timeout = Duration::from_millis(700);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    req.url = format!("http://127.0.0.1:{dead_port}/");
    let started = std::time::Instant::now();
    let err = retrying_fetcher(6).fetch(&req).await.unwrap_err();
    assert!(matches!(err, FetchError::Connect { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn fetches_html_with_headers_status_and_timing() {
    let srv = FixtureServer::start();
    srv.set(
        "/news",
        Page::html(fixture("news.html")).header("Server", "NGINX/1.2"),
    );
    let page = open_fetcher()
        .fetch(&FetchRequest::get(srv.url("/news")))
        .await
        .unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(
        page.content_type.as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.server.as_deref(), Some("nginx/1.2"));
    assert!(page.text.contains("Ferry timetable changes"));
    assert!(page.fetch_time > 0.0 && page.fetch_time < 10.0);
    let seen = srv.seen("/news");
    assert!(seen[0].header("user-agent").unwrap().contains("Chrome/"));
}

#[tokio::test]
async fn sends_method_headers_and_body() {
    let srv = FixtureServer::start();
    srv.set("/api", Page::json("{}"));
    let mut req = FetchRequest::get(srv.url("/api"));
    req.method = "POST".into();
    req.headers = vec![
        ("X-Token".into(), "abc".into()),
        ("User-Agent".into(), "mine/1.0".into()),
    ];
    req.body = Some("{\"q\":1}".into());
    open_fetcher().fetch(&req).await.unwrap();
    let seen = &srv.seen("/api")[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.header("x-token"), Some("abc"));
    assert_eq!(seen.header("user-agent"), Some("mine/1.0"));
    assert_eq!(seen.body, b"{\"q\":1}");
}

#[tokio::test]
async fn latin1_page_without_charset_header_is_detected() {
    let srv = FixtureServer::start();
    srv.set("/cafe", Page::bare(fixture("latin1.html")));
    let page = open_fetcher()
        .fetch(&FetchRequest::get(srv.url("/cafe")))
        .await
        .unwrap();
    assert!(
        page.text.contains("Crème brûlée à la façon du chef"),
        "{}",
        page.text
    );
    assert!(page.text.contains("Déjà célèbre"));
}

#[tokio::test]
async fn status_errors_use_upstream_wording() {
    let srv = FixtureServer::start();
    srv.set("/gone", Page::html("<p>nope</p>").status(404));
    srv.set("/boom", Page::html("<p>oops</p>").status(500));
    srv.set("/forbidden", Page::html("<p>no</p>").status(403));
    srv.set("/teapot", Page::html("<p>tea</p>").status(418));
    srv.set("/busy", Page::html("<p>later</p>").status(503));
    let f = open_fetcher();
    let err = |path: &str| {
        let f = f.clone();
        let url = srv.url(path);
        async move {
            f.fetch(&FetchRequest::get(url))
                .await
                .unwrap_err()
                .last_error()
        }
    };
    assert_eq!(err("/gone").await, "Error - 404 (Page not found) received");
    assert_eq!(
        err("/boom").await,
        "Error - 500 (Internal server error) received from the web site"
    );
    assert_eq!(
        err("/forbidden").await,
        "Error - 403 (Access denied) received"
    );
    assert_eq!(
        err("/teapot").await,
        "Error - Request returned a HTTP error code 418 (Access denied or blocked)"
    );
    assert_eq!(
        err("/busy").await,
        "Error - Request returned a HTTP error code 503"
    );
    assert_eq!(
        err("/missing-path").await,
        "Error - 404 (Page not found) received"
    );
}

#[tokio::test]
async fn ignore_status_codes_accepts_error_pages() {
    let srv = FixtureServer::start();
    srv.set("/gone", Page::html("<p>custom 404 page</p>").status(404));
    let mut req = FetchRequest::get(srv.url("/gone"));
    req.ignore_status_codes = true;
    let page = open_fetcher().fetch(&req).await.unwrap();
    assert_eq!(page.status, 404);
    assert!(page.text.contains("custom 404 page"));
}

#[tokio::test]
async fn empty_reply_is_an_error_unless_allowed() {
    let srv = FixtureServer::start();
    srv.set("/empty", Page::html(""));
    let f = open_fetcher();
    let err = f
        .fetch(&FetchRequest::get(srv.url("/empty")))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::EmptyReply { status: 200 }));
    assert_eq!(
        err.last_error(),
        "EmptyReply - try increasing 'Wait seconds before extracting text', Status Code 200"
    );
    let mut req = FetchRequest::get(srv.url("/empty"));
    req.empty_pages_are_a_change = true;
    assert_eq!(f.fetch(&req).await.unwrap().text, "");
}

#[tokio::test]
async fn page_over_the_size_cap_is_refused() {
    let srv = FixtureServer::start();
    srv.set("/big", Page::html(vec![b'a'; 11 * 1024 * 1024]));
    // A chunked reply has no Content-Length: the cap must hold while streaming too.
    srv.set("/news", Page::html(fixture("news.html")));
    let err = open_fetcher()
        .fetch(&FetchRequest::get(srv.url("/big")))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { limit } if limit == 10 * 1024 * 1024));
    assert!(
        err.last_error().contains("over the 10485760 byte limit"),
        "{}",
        err.last_error()
    );

    let small = Fetcher::new(FetcherConfig {
        policy: AddressPolicy::allow_all(),
        max_bytes: 500,
        ..FetcherConfig::default()
    })
    .unwrap();
    let err = small
        .fetch(&FetchRequest::get(srv.url("/news")))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { limit: 500 }));
}

/// A page that outgrows its check's share takes the budget's large lane, while it is free; a
/// page over share + lane fails alone, from its `Content-Length` or while streaming.
#[tokio::test]
async fn pages_are_held_within_the_page_budget() {
    let srv = FixtureServer::start();
    srv.set("/small", Page::html(vec![b'a'; 1_000]));
    srv.set("/large", Page::html(vec![b'b'; 200_000]));
    srv.set("/large-chunked", Page::html(vec![b'c'; 200_000]).chunked());
    srv.set("/huge", Page::html(vec![b'd'; 400_000]));
    srv.set("/huge-chunked", Page::html(vec![b'e'; 400_000]).chunked());
    let f = open_fetcher();
    let budget = std::sync::Arc::new(PageBudget::new(4, 100_000, 200_000));

    let mut hold = budget.enter().await;
    f.fetch_within(&FetchRequest::get(srv.url("/small")), &mut hold)
        .await
        .unwrap();
    assert!(!hold.holds_lane(), "a small page stays in its share");
    let page = f
        .fetch_within(&FetchRequest::get(srv.url("/large")), &mut hold)
        .await
        .unwrap();
    assert_eq!(page.raw.len(), 200_000);
    assert!(hold.holds_lane());

    // While this check holds the lane, another large page waits for it (here past its
    // request timeout, which covers the wait), and a small one does not.
    let mut other = budget.enter().await;
    let mut req = FetchRequest::get(srv.url("/large-chunked"));
    req.timeout = Duration::from_millis(300);
    let err = f.fetch_within(&req, &mut other).await.unwrap_err();
    assert!(matches!(err, FetchError::Timeout { .. }), "{err:?}");
    f.fetch_within(
        &FetchRequest::get(srv.url("/small")),
        &mut budget.enter().await,
    )
    .await
    .unwrap();
    drop(hold);
    let mut other = budget.enter().await;
    let page = f
        .fetch_within(&FetchRequest::get(srv.url("/large-chunked")), &mut other)
        .await
        .unwrap();
    assert_eq!(page.raw.len(), 200_000);
    drop(other);

    for path in ["/huge", "/huge-chunked"] {
        let err = f
            .fetch_within(&FetchRequest::get(srv.url(path)), &mut budget.enter().await)
            .await
            .unwrap_err();
        assert!(
            matches!(err, FetchError::OverBudget { limit: 300_000 }),
            "{path}: {err:?}"
        );
        assert!(
            err.last_error()
                .contains("over the 300000 bytes one check may hold"),
            "{}",
            err.last_error()
        );
    }
}

#[tokio::test]
async fn timeout_is_reported() {
    let srv = FixtureServer::start();
    srv.set(
        "/slow",
        Page::html("<p>late</p>").delay(Duration::from_secs(5)),
    );
    let mut req = FetchRequest::get(srv.url("/slow"));
    req.timeout = Duration::from_millis(300);
    let err = open_fetcher().fetch(&req).await.unwrap_err();
    assert!(matches!(err, FetchError::Timeout { .. }), "{err:?}");
    assert!(err.last_error().starts_with("Exception: Timed out"));
}

#[tokio::test]
async fn follows_redirects_up_to_the_limit() {
    let srv = FixtureServer::start();
    srv.set("/start", Page::redirect("/middle"));
    srv.set("/middle", Page::redirect(&srv.url("/end")));
    srv.set("/end", Page::html("<p>arrived</p>"));
    let page = open_fetcher()
        .fetch(&FetchRequest::get(srv.url("/start")))
        .await
        .unwrap();
    assert_eq!(page.final_url, srv.url("/end"));
    assert!(page.text.contains("arrived"));

    srv.set("/loop", Page::redirect("/loop"));
    let err = open_fetcher()
        .fetch(&FetchRequest::get(srv.url("/loop")))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::TooManyRedirects));
    assert_eq!(srv.hits("/loop"), 11);
}

#[tokio::test]
async fn guard_refuses_loopback_literal_and_resolved_names() {
    let srv = FixtureServer::start();
    srv.set("/news", Page::html(fixture("news.html")));
    let f = guarded_fetcher(&[]);
    let err = f
        .fetch(&FetchRequest::get(srv.url("/news")))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Blocked { .. }), "{err:?}");
    assert!(err.last_error().contains("private/reserved IP address"));
    assert!(err.last_error().contains("127.0.0.1 is a loopback address"));
    // Through a host name the check runs on the resolved address.
    let err = f
        .fetch(&FetchRequest::get(srv.localhost_url("/news")))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Blocked { .. }), "{err:?}");
    assert_eq!(srv.hits("/news"), 0, "nothing may reach a refused address");
}

#[tokio::test]
async fn guard_checks_every_redirect_hop() {
    let srv = FixtureServer::start();
    srv.set("/news", Page::html(fixture("news.html")));
    srv.set("/hop", Page::redirect(&srv.url("/news")));
    // `localhost` is exempt, 127.0.0.1 is not: the first request is allowed, the redirect to
    // the loopback literal must be refused.
    let f = guarded_fetcher(&["localhost"]);
    let err = f
        .fetch(&FetchRequest::get(srv.localhost_url("/hop")))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::RedirectBlocked { .. }), "{err:?}");
    assert!(
        err.last_error()
            .starts_with("Exception: Redirect blocked: 'http://127.0.0.1:")
    );
    assert_eq!(srv.hits("/hop"), 1);
    assert_eq!(srv.hits("/news"), 0);
}

#[tokio::test]
async fn unsupported_schemes_and_dns_failures() {
    let f = guarded_fetcher(&[]);
    for url in [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "gopher://x/",
        "not a url",
    ] {
        let err = f.fetch(&FetchRequest::get(url)).await.unwrap_err();
        assert!(
            matches!(err, FetchError::UnsupportedUrl { .. }),
            "{url}: {err:?}"
        );
    }
    let err = f
        .fetch(&FetchRequest::get("http://does-not-exist.invalid/"))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Dns { .. }), "{err:?}");
    assert!(err.last_error().contains("does-not-exist.invalid"));
}

/// A watch's credentials, as a user would set them, plus one custom header that is not one.
fn with_credentials(url: String) -> FetchRequest {
    let mut req = FetchRequest::get(url);
    req.headers = vec![
        ("Authorization".into(), "Bearer s3cret".into()),
        ("Cookie".into(), "session=s3cret".into()),
        ("Proxy-Authorization".into(), "Basic czNjcmV0".into()),
        ("X-Custom".into(), "kept".into()),
    ];
    req
}

fn assert_no_credentials(seen: &testkit::SeenRequest, what: &str) {
    for name in ["authorization", "cookie", "proxy-authorization"] {
        assert_eq!(seen.header(name), None, "{what}: {name} must not be sent");
    }
    assert!(
        !seen
            .headers
            .iter()
            .any(|(_, v)| v.contains("s3cret") || v.contains("czNjcmV0")),
        "{what}: no header carries the secret: {:?}",
        seen.headers
    );
}

#[tokio::test]
async fn credentials_are_not_forwarded_to_another_port() {
    let origin = FixtureServer::start();
    let foreign = FixtureServer::start();
    assert_ne!(origin.addr().port(), foreign.addr().port());
    foreign.set("/collect", Page::html("<p>thanks</p>"));
    origin.set("/start", Page::redirect(&foreign.url("/collect")));
    let page = open_fetcher()
        .fetch(&with_credentials(origin.url("/start")))
        .await
        .unwrap();
    assert_eq!(page.final_url, foreign.url("/collect"));
    let first = &origin.seen("/start")[0];
    assert_eq!(first.header("authorization"), Some("Bearer s3cret"));
    assert_eq!(first.header("cookie"), Some("session=s3cret"));
    assert_eq!(first.header("proxy-authorization"), Some("Basic czNjcmV0"));
    let landed = &foreign.seen("/collect")[0];
    assert_no_credentials(landed, "another port");
    assert_eq!(landed.header("x-custom"), Some("kept"));
}

#[tokio::test]
async fn credentials_are_not_forwarded_to_another_host_name() {
    // Same port, another host: 127.0.0.1 and localhost are different origins.
    let srv = FixtureServer::start();
    srv.set("/start", Page::redirect(&srv.localhost_url("/collect")));
    srv.set("/collect", Page::html("<p>thanks</p>"));
    open_fetcher()
        .fetch(&with_credentials(srv.url("/start")))
        .await
        .unwrap();
    assert_eq!(
        srv.seen("/start")[0].header("authorization"),
        Some("Bearer s3cret")
    );
    assert_no_credentials(&srv.seen("/collect")[0], "another host name");
}

#[tokio::test]
async fn credentials_stay_on_same_origin_redirects() {
    let srv = FixtureServer::start();
    srv.set("/start", Page::redirect("/next"));
    srv.set("/next", Page::redirect(&srv.url("/end")).status(307));
    srv.set("/end", Page::html("<p>private</p>"));
    open_fetcher()
        .fetch(&with_credentials(srv.url("/start")))
        .await
        .unwrap();
    for path in ["/start", "/next", "/end"] {
        let seen = &srv.seen(path)[0];
        assert_eq!(
            seen.header("authorization"),
            Some("Bearer s3cret"),
            "{path}"
        );
        assert_eq!(seen.header("cookie"), Some("session=s3cret"), "{path}");
    }
}

#[tokio::test]
async fn credentials_once_dropped_are_not_restored_by_a_bounce_back() {
    // origin -> foreign -> origin: the foreign host chose the last URL, so even on the first
    // origin it gets no credentials.
    let origin = FixtureServer::start();
    let foreign = FixtureServer::start();
    origin.set("/start", Page::redirect(&foreign.url("/bounce")));
    foreign.set("/bounce", Page::redirect(&origin.url("/admin/delete")));
    origin.set("/admin/delete", Page::html("<p>done</p>"));
    open_fetcher()
        .fetch(&with_credentials(origin.url("/start")))
        .await
        .unwrap();
    assert_no_credentials(&foreign.seen("/bounce")[0], "the foreign hop");
    assert_no_credentials(&origin.seen("/admin/delete")[0], "back on the origin");
}

#[tokio::test]
async fn url_userinfo_is_not_forwarded_to_another_origin() {
    // Credentials in the URL become a Basic Authorization header; an absolute redirect to
    // another port must not carry them, a relative one on the same origin keeps them.
    let origin = FixtureServer::start();
    let foreign = FixtureServer::start();
    origin.set("/start", Page::redirect("/again"));
    origin.set("/again", Page::redirect(&foreign.url("/collect")));
    foreign.set("/collect", Page::html("<p>thanks</p>"));
    let url = format!("http://user:s3cret@{}/start", origin.addr());
    open_fetcher().fetch(&FetchRequest::get(url)).await.unwrap();
    // base64("user:s3cret")
    let basic = "Basic dXNlcjpzM2NyZXQ=";
    assert_eq!(
        origin.seen("/start")[0].header("authorization"),
        Some(basic)
    );
    assert_eq!(
        origin.seen("/again")[0].header("authorization"),
        Some(basic)
    );
    assert_eq!(foreign.seen("/collect")[0].header("authorization"), None);
}

#[tokio::test]
async fn allow_list_matches_ip_literals_including_bracketed_ipv6() {
    let srv = FixtureServer::start();
    srv.set("/news", Page::html(fixture("news.html")));
    // The listed literal is fetched; the guard still refuses what is not listed.
    let f = guarded_fetcher(&["127.0.0.1"]);
    f.fetch(&FetchRequest::get(srv.url("/news"))).await.unwrap();
    assert_eq!(srv.hits("/news"), 1);
    let f = guarded_fetcher(&["127.0.0.2"]);
    let err = f
        .fetch(&FetchRequest::get(srv.url("/news")))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Blocked { .. }), "{err:?}");
    // IPv6: bracketed as in a URL, and without brackets, both match [::1].
    let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here; skipping the [::1] half");
        return;
    };
    drop(listener);
    let v6 = V6Server::start();
    for entry in ["[::1]", "::1", "[0:0::1]"] {
        let f = guarded_fetcher(&[entry]);
        let page = f.fetch(&FetchRequest::get(v6.url())).await;
        assert!(page.is_ok(), "{entry}: {page:?}");
    }
    let err = guarded_fetcher(&["127.0.0.1"])
        .fetch(&FetchRequest::get(v6.url()))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Blocked { .. }), "{err:?}");
}

/// A one-page HTTP server on `[::1]` (the fixture server binds IPv4 only).
struct V6Server {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl V6Server {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("[::1]:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let task = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let body = "<p>v6</p>";
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(reply.as_bytes()).await;
                });
            }
        });
        V6Server { addr, task }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for V6Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
