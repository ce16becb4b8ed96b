//! The browser fetcher against Debian's Chromium (installed by `make test-deps`) and real
//! fixture pages: text that exists only after JavaScript, the main response's status, the
//! watch's script and delay, the address guard on everything the page loads, and browser
//! steps (typing, choosing, clicking, waiting) on pages that need them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::PathBuf;
use std::time::Duration;

use changewatch_browser::{BrowserConfig, BrowserFetcher, BrowserRequest, Browsers, Endpoint};
use changewatch_core::fetch::{FetchError, FetchRequest};
use changewatch_core::model::{BrowserAction, RunnableStep};
use changewatch_core::ssrf::AddressPolicy;
use testkit::{FixtureServer, Page};

fn chromium() -> PathBuf {
    let path = PathBuf::from("/usr/bin/chromium");
    assert!(
        path.exists(),
        "the browser tests need Debian's chromium: run `make test-deps`"
    );
    path
}

fn fetcher(policy: AddressPolicy) -> BrowserFetcher {
    BrowserFetcher::new(BrowserConfig {
        endpoint: Endpoint::Launch {
            executable: chromium(),
        },
        policy,
        max_pages: 2,
        max_bytes: 10 * 1024 * 1024,
        user_agent: "changewatch-test".into(),
        step_settle: Duration::from_millis(100),
        screenshot_max_height: 4000,
    })
}

fn get(url: String) -> BrowserRequest {
    let mut request = FetchRequest::get(url);
    request.timeout = Duration::from_secs(30);
    BrowserRequest {
        request,
        delay: Duration::ZERO,
        js: None,
        steps: Vec::new(),
        stock_scan: false,
    }
}

fn step(operation: &str, selector: &str, value: &str) -> RunnableStep {
    RunnableStep {
        action: BrowserAction::parse(operation).unwrap(),
        selector: selector.into(),
        value: value.into(),
    }
}

const JS_PAGE: &str = r#"<!doctype html><html><head><title>t</title></head><body>
<div id="out">Loading…</div>
<script>
  document.getElementById('out').textContent = 'Price: ' + (6 * 7) + ' EUR';
  setTimeout(function () { document.body.insertAdjacentHTML('beforeend', '<p id="late">late text</p>'); }, 300);
</script></body></html>"#;

#[tokio::test]
async fn javascript_runs_before_the_page_is_read() {
    let srv = FixtureServer::start();
    srv.set("/js", Page::html(JS_PAGE).header("Server", "Fixture/1"));
    let f = fetcher(AddressPolicy::allow_all());

    let page = f.fetch(&get(srv.url("/js"))).await.unwrap();
    assert!(page.text.contains("Price: 42 EUR"), "{}", page.text);
    assert!(!page.text.contains("Loading…"));
    assert_eq!(page.status, 200);
    assert_eq!(
        page.content_type.as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.server.as_deref(), Some("fixture/1"));
    let seen = srv.seen("/js");
    assert_eq!(seen[0].header("user-agent"), Some("changewatch-test"));
    let shot = page.screenshot.as_deref().expect("a screenshot");
    let (width, height) = jpeg_size(shot);
    assert_eq!(width, 1280, "the browser's desktop width");
    assert!(height >= 1, "{height}");

    // The watch's own script runs once the page has loaded; the delay lets the late one run.
    let mut req = get(srv.url("/js"));
    req.delay = Duration::from_millis(800);
    req.js = Some("document.getElementById('out').textContent = 'changed by the watch';".into());
    let page = f.fetch(&req).await.unwrap();
    assert!(page.text.contains("late text"), "{}", page.text);
    assert!(page.text.contains("changed by the watch"), "{}", page.text);
    f.shutdown().await;
}

#[tokio::test]
async fn the_main_response_status_is_the_check_error() {
    let srv = FixtureServer::start();
    srv.set("/gone", Page::html("<p>not here</p>").status(404));
    let f = fetcher(AddressPolicy::allow_all());
    let err = f.fetch(&get(srv.url("/gone"))).await.unwrap_err();
    assert!(matches!(err, FetchError::Status { status: 404 }), "{err:?}");
    let mut req = get(srv.url("/gone"));
    req.request.ignore_status_codes = true;
    let page = f.fetch(&req).await.unwrap();
    assert_eq!(page.status, 404);
    assert!(page.text.contains("not here"));
    f.shutdown().await;
}

#[tokio::test]
async fn a_page_cannot_make_the_browser_load_private_addresses() {
    let srv = FixtureServer::start();
    let port = srv
        .url("/")
        .split(':')
        .nth(2)
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    // The page is on an allowed name; everything it pulls from loopback or the metadata
    // address must be refused before it leaves the browser.
    let page_html = format!(
        r#"<!doctype html><html><body><p id="p">public page</p>
<img src="http://127.0.0.1:{port}/secret.png">
<iframe src="http://127.0.0.1:{port}/frame"></iframe>
<script src="http://127.0.0.1:{port}/secret.js"></script>
<script>
  fetch('http://127.0.0.1:{port}/xhr').catch(function () {{}});
  fetch('http://169.254.169.254/latest/meta-data/').catch(function () {{}});
</script></body></html>"#
    );
    srv.set("/public", Page::html(page_html));
    for secret in ["/secret.png", "/frame", "/secret.js", "/xhr", "/private"] {
        srv.set(secret, Page::html("<p>internal</p>"));
    }
    srv.set(
        "/hop",
        Page::redirect(&format!("http://127.0.0.1:{port}/private")),
    );
    let f = fetcher(AddressPolicy {
        allow_private: false,
        allowed_hosts: vec!["localhost".into()],
    });

    let public = srv.url("/public").replace("127.0.0.1", "localhost");
    let mut req = get(public);
    req.delay = Duration::from_millis(500);
    let page = f.fetch(&req).await.unwrap();
    assert!(page.text.contains("public page"));
    for secret in ["/secret.png", "/frame", "/secret.js", "/xhr"] {
        assert_eq!(
            srv.hits(secret),
            0,
            "{secret} was loaded through the browser"
        );
    }

    // Navigating to a private address, directly or by a redirect, is the check's error.
    let err = f.fetch(&get(srv.url("/private"))).await.unwrap_err();
    assert!(matches!(err, FetchError::Blocked { .. }), "{err:?}");
    let hop = srv.url("/hop").replace("127.0.0.1", "localhost");
    let err = f.fetch(&get(hop)).await.unwrap_err();
    assert!(matches!(err, FetchError::RedirectBlocked { .. }), "{err:?}");
    assert_eq!(srv.hits("/private"), 0);
    f.shutdown().await;
}

/// A JPEG's (width, height) from its start-of-frame marker.
fn jpeg_size(jpeg: &[u8]) -> (u16, u16) {
    assert_eq!(&jpeg[..3], &[0xFF, 0xD8, 0xFF], "not a JPEG");
    let mut i = 2;
    while i + 9 < jpeg.len() {
        assert_eq!(jpeg[i], 0xFF, "JPEG marker expected at {i}");
        let marker = jpeg[i + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if (0xC0..=0xC3).contains(&marker) {
            let h = u16::from_be_bytes([jpeg[i + 5], jpeg[i + 6]]);
            let w = u16::from_be_bytes([jpeg[i + 7], jpeg[i + 8]]);
            return (w, h);
        }
        i += 2 + len;
    }
    panic!("no frame header in the JPEG");
}

#[tokio::test]
async fn a_tall_page_is_captured_from_the_top_up_to_the_height_cap() {
    let srv = FixtureServer::start();
    srv.set(
        "/tall",
        Page::html(r#"<!doctype html><html><body style="margin:0"><div style="height:9000px;background:#8ad">tall</div></body></html>"#),
    );
    srv.set(
        "/short",
        Page::html(r#"<!doctype html><html><body style="margin:0"><div style="height:1500px">short</div></body></html>"#),
    );
    let f = fetcher(AddressPolicy::allow_all());
    let page = f.fetch(&get(srv.url("/tall"))).await.unwrap();
    assert_eq!(jpeg_size(page.screenshot.as_deref().unwrap()), (1280, 4000));
    let page = f.fetch(&get(srv.url("/short"))).await.unwrap();
    assert_eq!(
        jpeg_size(page.screenshot.as_deref().unwrap()),
        (1280, 1500),
        "the whole page, beyond the window"
    );
    f.shutdown().await;
}

const FORM_PAGE: &str = r#"<!doctype html><html><body>
<form id="f">
  <input id="q" value="old text">
  <select id="size"><option value="s">Small</option><option value="l">Large</option></select>
  <input type="checkbox" id="gift"> <input type="checkbox" id="news" checked>
  <button id="go" type="submit">Apply</button>
</form>
<div id="out">nothing chosen</div>
<button id="more">Show more offers</button>
<div class="ad">Buy our advert</div>
<p id="js">script not run</p>
<script>
  document.getElementById('f').addEventListener('submit', function (e) {
    e.preventDefault();
    var q = document.getElementById('q'), size = document.getElementById('size');
    document.getElementById('out').textContent = 'q=' + q.value + ' size=' + size.value +
      ' gift=' + document.getElementById('gift').checked +
      ' news=' + document.getElementById('news').checked;
  });
  document.getElementById('more').addEventListener('click', function () {
    setTimeout(function () {
      document.body.insertAdjacentHTML('beforeend', '<p>Offer revealed by the click</p>');
    }, 400);
  });
</script></body></html>"#;

#[tokio::test]
async fn steps_type_choose_click_and_wait_before_the_page_is_read() {
    let srv = FixtureServer::start();
    srv.set("/form", Page::html(FORM_PAGE));
    let f = fetcher(AddressPolicy::allow_all());

    // Without steps the page is as served.
    let page = f.fetch(&get(srv.url("/form"))).await.unwrap();
    assert!(page.text.contains("nothing chosen"));

    let mut req = get(srv.url("/form"));
    req.steps = vec![
        step("Enter text in field", "#q", "blue shoes"),
        step("Select by label", "#size", "Large"),
        step("Check checkbox", "#gift", ""),
        step("Uncheck checkbox", "#news", ""),
        step("Click element", "#go", ""),
        step("Click element containing text", "", "show MORE offers"),
        step("Wait for text", "", "Offer revealed by the click"),
        step("Remove elements", ".ad", ""),
        step(
            "Execute JS",
            "",
            "document.getElementById('js').textContent = 'script ran'",
        ),
        step("Scroll down", "", ""),
        step("Wait for seconds", "", "0.1"),
    ];
    let page = f.fetch(&req).await.unwrap();
    assert!(
        page.text
            .contains("q=blue shoes size=l gift=true news=false"),
        "{}",
        page.text
    );
    assert!(page.text.contains("Offer revealed by the click"));
    assert!(!page.text.contains("Buy our advert"));
    assert!(page.text.contains("script ran"));
    f.shutdown().await;
}

#[tokio::test]
async fn a_key_press_submits_a_form_and_the_next_page_is_read() {
    let srv = FixtureServer::start();
    srv.set(
        "/search",
        Page::html(
            r#"<!doctype html><html><body><form method="post" action="/results">
<input name="q"></form></body></html>"#,
        ),
    );
    srv.set("/results", Page::html("<p>Results page</p>"));
    let f = fetcher(AddressPolicy::allow_all());
    let mut req = get(srv.url("/search"));
    req.steps = vec![
        // XPath as upstream writes it (a leading slash), then a real Enter key.
        step("Enter text in field", "//input[@name='q']", "rust"),
        step("Press Enter", "", ""),
    ];
    let page = f.fetch(&req).await.unwrap();
    assert!(page.text.contains("Results page"), "{}", page.text);
    let seen = srv.seen("/results");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(String::from_utf8_lossy(&seen[0].body), "q=rust");

    // "Goto URL" and "Goto site" navigate within the check.
    let mut req = get(srv.url("/results"));
    req.steps = vec![step("Goto URL", "", &srv.url("/search"))];
    let page = f.fetch(&req).await.unwrap();
    assert!(!page.text.contains("Results page"), "{}", page.text);
    let mut req = get(srv.url("/results"));
    req.steps = vec![
        step("Goto URL", "", &srv.url("/search")),
        step("Goto site", "", ""),
    ];
    let page = f.fetch(&req).await.unwrap();
    assert!(page.text.contains("Results page"), "{}", page.text);
    f.shutdown().await;
}

#[tokio::test]
async fn a_failing_step_is_reported_by_its_position() {
    let srv = FixtureServer::start();
    srv.set("/form", Page::html(FORM_PAGE));
    let f = fetcher(AddressPolicy::allow_all());

    // An element that never turns up: the wait ends before the check's deadline, and the
    // step says so.
    let mut req = get(srv.url("/form"));
    req.request.timeout = Duration::from_secs(3);
    req.steps = vec![
        step("Click element", "#go", ""),
        step("Click element", "#no-such-button", ""),
        step("Click element", "#more", ""),
    ];
    let err = f.fetch(&req).await.unwrap_err();
    match &err {
        FetchError::BrowserStep {
            step, not_found, ..
        } => {
            assert_eq!(*step, 2);
            assert!(*not_found);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.last_error()
            .starts_with("Browser step at position 2 could not run"),
        "{}",
        err.last_error()
    );
    assert!(err.last_error().ends_with("Could not find the target."));

    // A script that throws, and a selector that cannot parse, fail at once with the reason.
    let mut req = get(srv.url("/form"));
    req.steps = vec![step(
        "Execute JS",
        "",
        "throw new Error('boom from the step')",
    )];
    let started = std::time::Instant::now();
    let err = f.fetch(&req).await.unwrap_err();
    assert!(
        err.last_error().contains("boom from the step"),
        "{}",
        err.last_error()
    );
    let mut req = get(srv.url("/form"));
    req.steps = vec![step("Click element", "#go[[", "")];
    let err = f.fetch(&req).await.unwrap_err();
    assert!(
        matches!(
            err,
            FetchError::BrowserStep {
                step: 1,
                not_found: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    // "if exists" goes on without its element; empty text clears a field.
    let mut req = get(srv.url("/form"));
    req.request.timeout = Duration::from_secs(4);
    req.steps = vec![
        step("Click element if exists", "#no-such-button", ""),
        step("Enter text in field", "#q", ""),
        step("Click element", "#go", ""),
    ];
    let page = f.fetch(&req).await.unwrap();
    assert!(page.text.contains("q= size=s"), "emptied: {}", page.text);
    f.shutdown().await;
}

#[tokio::test]
async fn a_step_cannot_take_the_browser_to_a_private_address() {
    let srv = FixtureServer::start();
    srv.set("/private", Page::html("<p>internal</p>"));
    let private = srv.url("/private");
    srv.set(
        "/start",
        Page::html(format!(
            r#"<!doctype html><html><body><a id="in" href="{private}">in</a></body></html>"#
        )),
    );
    let f = fetcher(AddressPolicy {
        allow_private: false,
        allowed_hosts: vec!["localhost".into()],
    });
    let start = srv.url("/start").replace("127.0.0.1", "localhost");
    let mut req = get(start.clone());
    req.steps = vec![step("Goto URL", "", &private)];
    let err = f.fetch(&req).await.unwrap_err();
    assert!(
        matches!(err, FetchError::BrowserStep { step: 1, .. }),
        "{err:?}"
    );
    let mut req = get(start);
    req.steps = vec![step("Click element", "#in", "")];
    let err = f.fetch(&req).await.unwrap_err();
    assert!(matches!(err, FetchError::RedirectBlocked { .. }), "{err:?}");
    assert_eq!(srv.hits("/private"), 0);
    f.shutdown().await;
}

#[tokio::test]
async fn a_remote_browser_is_reached_at_its_devtools_url() {
    let srv = FixtureServer::start();
    srv.set("/js", Page::html(JS_PAGE));
    let remote = testkit::RemoteChrome::start();
    // No default browser: only the remote one named by its URL.
    let template = BrowserConfig {
        endpoint: Endpoint::Connect {
            ws_url: String::new(),
        },
        policy: AddressPolicy::allow_all(),
        max_pages: 2,
        max_bytes: 10 * 1024 * 1024,
        user_agent: "changewatch-test".into(),
        step_settle: Duration::from_millis(100),
        screenshot_max_height: 4000,
    };
    let browsers = Browsers::new(template, false);
    assert!(browsers.default_browser().is_none());
    let page = browsers
        .remote(remote.ws_url())
        .fetch(&get(srv.url("/js")))
        .await
        .unwrap();
    assert!(page.text.contains("Price: 42 EUR"), "{}", page.text);
    // The same URL is the same connection; the page was loaded by that browser.
    let again = browsers
        .remote(remote.ws_url())
        .fetch(&get(srv.url("/js")))
        .await;
    assert!(again.is_ok(), "{again:?}");
    // A dead endpoint is the check's error, not a hang.
    let err = browsers
        .remote("ws://127.0.0.1:1/devtools/browser/none")
        .fetch(&get(srv.url("/js")))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("cannot reach the browser"),
        "{err}"
    );
    browsers.shutdown().await;
}

#[tokio::test]
async fn pages_go_through_the_watch_proxy_with_its_credentials() {
    let srv = FixtureServer::start();
    srv.set("/js", Page::html(JS_PAGE));
    let f = fetcher(AddressPolicy::allow_all());
    let through = |proxy: String| {
        let mut req = get(srv.url("/js"));
        req.request.proxy = Some(proxy);
        req
    };

    // HTTP proxy with credentials: Chrome answers its 407 with them.
    let http = testkit::ProxyServer::http(Some(("alice", "s3cret")));
    let page = f
        .fetch(&through(format!("http://alice:s3cret@{}", http.addr())))
        .await
        .unwrap();
    assert!(page.text.contains("Price: 42 EUR"), "{}", page.text);
    let asked = http.requests();
    assert!(
        asked.iter().any(|r| r.allowed
            && r.target.ends_with("/js")
            && r.auth == Some(("alice".into(), "s3cret".into()))),
        "{asked:?}"
    );
    // Wrong credentials: the proxy's 407 is the check's error.
    let err = f
        .fetch(&through(format!("http://alice:wrong@{}", http.addr())))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Status { status: 407 }), "{err:?}");

    // SOCKS5 without credentials, and with them: the relay speaks to the proxy, which
    // Chrome alone cannot do with credentials.
    let socks = testkit::ProxyServer::socks5(None);
    let page = f
        .fetch(&through(format!("socks5h://{}", socks.addr())))
        .await
        .unwrap();
    assert!(page.text.contains("Price: 42 EUR"), "{}", page.text);
    assert!(
        socks.requests().iter().any(|r| r.allowed),
        "{:?}",
        socks.requests()
    );
    let socks = testkit::ProxyServer::socks5(Some(("bob", "pw")));
    let page = f
        .fetch(&through(format!("socks5://bob:pw@{}", socks.addr())))
        .await
        .unwrap();
    assert!(page.text.contains("Price: 42 EUR"), "{}", page.text);
    let asked = socks.requests();
    assert!(
        asked
            .iter()
            .any(|r| r.allowed && r.auth == Some(("bob".into(), "pw".into()))),
        "{asked:?}"
    );
    // socks5 (not socks5h): the name is resolved and vetted here, the proxy gets the address.
    assert!(
        asked.iter().all(|r| r.target.starts_with("127.0.0.1:")),
        "{asked:?}"
    );
    let err = f
        .fetch(&through(format!("socks5://bob:nope@{}", socks.addr())))
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("nope"), "{err}");
    f.shutdown().await;
}

/// A raw TCP port that counts the connections made to it (a WebSocket's target).
fn counting_listener() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(conn);
        }
    });
    (port, count)
}

#[tokio::test]
async fn a_page_cannot_open_a_websocket_to_a_private_address() {
    let srv = FixtureServer::start();
    let (ws_port, connections) = counting_listener();
    srv.set(
        "/ws",
        Page::html(format!(
            r#"<!doctype html><html><body><p>socket page</p><script>
  for (const h of ['127.0.0.1', '[::1]', '127.0.0.2']) {{
    try {{ new WebSocket('ws://' + h + ':{ws_port}/'); }} catch (e) {{}}
  }}
</script></body></html>"#
        )),
    );
    let page_url = srv.url("/ws").replace("127.0.0.1", "localhost");
    let mut req = get(page_url);
    req.delay = Duration::from_millis(800);

    // The control: with private addresses allowed the page does reach the port, so the
    // count below can only stay at zero because the relay refused.
    let open = fetcher(AddressPolicy::allow_all());
    open.fetch(&req).await.unwrap();
    open.shutdown().await;
    assert!(
        connections.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "the control page never opened its WebSocket"
    );

    connections.store(0, std::sync::atomic::Ordering::SeqCst);
    let guarded = fetcher(AddressPolicy {
        allow_private: false,
        allowed_hosts: vec!["localhost".into()],
    });
    let page = guarded.fetch(&req).await.unwrap();
    assert!(page.text.contains("socket page"));
    guarded.shutdown().await;
    // WebSockets never pause in the `Fetch` domain: only the relay stands between the page
    // and these ports.
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a WebSocket reached a loopback address through the browser"
    );
}

/// A product page laid out as shops do: a header, the product block at 400-600 px, and a
/// "you may also like" strip far below. `product` and `related` go in those two places.
fn shop(product: &str, related: &str) -> Page {
    Page::html(format!(
        r#"<!doctype html><html><head><title>Kettle</title><style>
        body {{ margin: 0; font: 16px sans-serif; }}
        header {{ height: 380px; }}
        #product {{ height: 300px; }}
        #spacer {{ height: 1500px; }}
        </style></head><body>
        <header><nav>Coming soon: our new range</nav></header>
        <section id="product"><h1>Kettle</h1><p>20 EUR</p>{product}</section>
        <div id="spacer"></div><aside>{related}</aside>
        </body></html>"#
    ))
}

#[tokio::test]
async fn the_out_of_stock_scan_reads_the_product_block_only() {
    let srv = FixtureServer::start();
    let f = fetcher(AddressPolicy::allow_all());
    let scan = |path: &str| {
        let mut req = get(srv.url(path));
        req.stock_scan = true;
        req
    };
    // The product block says so: that phrase (the header's "coming soon" is above 300 px).
    srv.set("/sold", shop("<p>Sold out</p>", ""));
    let page = f.fetch(&scan("/sold")).await.unwrap();
    assert_eq!(page.stock_scan.as_deref(), Some("sold out"));
    // Far below (related products) and hidden text do not count.
    srv.set(
        "/related",
        shop(r#"<p style="display:none">Sold out</p>"#, "<p>Sold out</p>"),
    );
    let page = f.fetch(&scan("/related")).await.unwrap();
    assert_eq!(page.stock_scan.as_deref(), Some("Possibly in stock"));
    // An add-to-cart button's value outweighs a phrase elsewhere in the block.
    srv.set(
        "/cart",
        shop(
            r#"<p>Only a few left, currently unavailable in blue</p><input type="submit" value="Add to cart">"#,
            "",
        ),
    );
    let page = f.fetch(&scan("/cart")).await.unwrap();
    assert_eq!(page.stock_scan.as_deref(), Some("Possibly in stock"));
    // Not asked for: not scanned.
    let page = f.fetch(&get(srv.url("/sold"))).await.unwrap();
    assert_eq!(page.stock_scan, None);
}
