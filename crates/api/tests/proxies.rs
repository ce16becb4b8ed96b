//! The settings' proxy list, a watch's choice of proxy, and checks that go through it, with
//! real proxies from testkit.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{FixtureServer, Page, ProxyServer};

async fn put_settings(app: &TestApp, body: Value) -> (u16, Value) {
    let r = app
        .client
        .put(format!("{}/ui/settings", app.base))
        .header("x-changewatch-ui", "1")
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn watches_are_checked_through_the_proxy_they_choose() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    srv.set("/a", Page::html("<p>page a</p>"));
    let http = ProxyServer::http(Some(("u", "p")));
    let socks = ProxyServer::socks5(None);

    let (status, v) = put_settings(
        &app,
        json!({"extra_proxies": [
            {"proxy_name": "office", "proxy_url": format!("http://u:p@{}", http.addr())},
            {"proxy_name": "tor", "proxy_url": format!("socks5h://{}", socks.addr())},
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["proxy_choices"],
        json!(["ui-0office", "ui-0tor", "no-proxy"])
    );

    let url = srv.url("/a");
    let default = app.create_watch(json!({"url": url})).await;
    // By name: a SOCKS tunnel is pooled per target, and the default watch's later check
    // through this proxy must open its own (to 127.0.0.1) for the proxy to see it.
    let tor_url = format!("{}?w=tor", url.replace("127.0.0.1", "localhost"));
    let tor = app
        .create_watch(json!({"url": tor_url, "proxy": "ui-0tor"}))
        .await;
    let direct = app
        .create_watch(json!({"url": format!("{url}?w=direct"), "proxy": "no-proxy"}))
        .await;
    // Not in the list: refused with upstream's message, naming the choices.
    let r = app
        .req(Method::POST, "/api/v1/watch")
        .json(&json!({"url": url, "proxy": "ui-0nowhere"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.text().await.unwrap(),
        "\"Invalid proxy choice, currently supported proxies are 'ui-0office, ui-0tor, no-proxy'\"\n"
    );

    app.run_checks().await;
    for uuid in [&default, &tor, &direct] {
        let (_, w) = app.get_json(&format!("/api/v1/watch/{uuid}")).await;
        assert_eq!(w["last_error"], false, "{w}");
    }
    // No choice: the list's first (upstream's fallback), with its credentials.
    let via_http = http.requests();
    assert_eq!(via_http.len(), 1, "{via_http:?}");
    assert_eq!(via_http[0].target, url);
    assert_eq!(via_http[0].auth, Some(("u".into(), "p".into())));
    let via_socks = socks.requests();
    assert_eq!(via_socks.len(), 1, "{via_socks:?}");
    assert_eq!(srv.hits("/a"), 3, "one fetch each, the direct one included");

    // The default proxy: every watch without a choice follows it.
    let (status, v) = put_settings(&app, json!({"proxy": "ui-0tor"})).await;
    assert_eq!(status, 200, "{v}");
    app.req(Method::GET, &format!("/api/v1/watch/{default}?recheck=1"))
        .send()
        .await
        .unwrap();
    app.run_checks().await;
    assert_eq!(http.requests().len(), 1);
    let targets: Vec<String> = socks.requests().into_iter().map(|p| p.target).collect();
    let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
    assert_eq!(
        targets,
        [format!("localhost:{port}"), format!("127.0.0.1:{port}")]
    );
}

#[tokio::test]
async fn the_proxy_list_refuses_what_it_could_not_use() {
    let app = spawn_app().await;
    for (body, wanted) in [
        (
            json!({"extra_proxies": [{"proxy_name": "x", "proxy_url": "ftp://h:21"}]}),
            "extra_proxies: proxy 'x': unsupported proxy scheme 'ftp'",
        ),
        (
            json!({"extra_proxies": [{"proxy_name": "", "proxy_url": "http://h:1"}]}),
            "extra_proxies: every proxy needs a name and a URL",
        ),
        (
            json!({"extra_proxies": [
                {"proxy_name": "x", "proxy_url": "http://h:1"},
                {"proxy_name": "x", "proxy_url": "http://h:2"},
            ]}),
            "extra_proxies: the name 'x' is used twice",
        ),
        (
            json!({"extra_proxies": "http://h:1"}),
            "extra_proxies: must be a list",
        ),
        (
            json!({"proxy": "ui-0ghost"}),
            "proxy: 'ui-0ghost' is not in the proxy list (none configured)",
        ),
    ] {
        let (status, v) = put_settings(&app, body.clone()).await;
        assert_eq!(status, 400, "{body}: {v}");
        let msg = v["message"].as_str().unwrap_or_default();
        assert!(msg.starts_with(wanted), "{body}: {msg}");
    }
    let (_, v) = app.get_json("/api/v1/watch").await;
    assert_eq!(v, json!({}));
    let r = app
        .client
        .get(format!("{}/ui/settings", app.base))
        .header("x-changewatch-ui", "1")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["extra_proxies"], json!([]), "nothing stored");
}
