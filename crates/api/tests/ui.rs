//! The dashboard's endpoints: session and password, the CSRF header, watch rows with live state,
//! bulk operations over REST, and the settings page.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use changewatch_api::ApiConfig;
use common::{spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{FixtureServer, Page};

const UI: &str = "x-changewatch-ui";

async fn ui(
    app: &common::TestApp,
    method: Method,
    path: &str,
    cookie: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, Option<String>) {
    let mut r = app
        .client
        .request(method, format!("{}{}", app.base, path))
        .header(UI, "1");
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string());
    let v = resp.json().await.unwrap_or(Value::Null);
    (status, v, set_cookie)
}

#[tokio::test]
async fn without_a_password_the_dashboard_needs_only_its_header() {
    let app = spawn_app().await;
    let (s, v, _) = ui(&app, Method::GET, "/ui/session", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(
        v,
        json!({"password_required": false, "password_set": false, "authenticated": true})
    );
    // The UI header stands in for the API key on API v1 as well...
    let (s, _, _) = ui(&app, Method::GET, "/api/v1/watch", None, None).await;
    assert_eq!(s, 200);
    // ...but without it (a cross-site form or plain client) the key is still required.
    let r = app
        .client
        .get(format!("{}/api/v1/watch", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = app
        .client
        .get(format!("{}/ui/watches", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn password_login_session_and_logout() {
    let app = spawn_app().await;
    let (s, _, cookie) = ui(
        &app,
        Method::POST,
        "/ui/settings/password",
        None,
        Some(json!({"password": "hunter2"})),
    )
    .await;
    assert_eq!(s, 204);
    let setter_cookie = cookie.expect("the browser that sets the password stays logged in");

    // No session: refused everywhere the dashboard goes, and on the ops endpoints.
    let (s, v, _) = ui(&app, Method::GET, "/ui/session", None, None).await;
    assert_eq!(
        v,
        json!({"password_required": true, "password_set": true, "authenticated": false})
    );
    assert_eq!(s, 200);
    let (s, v, _) = ui(&app, Method::GET, "/ui/watches", None, None).await;
    assert_eq!((s, v["message"].as_str()), (401, Some("Login required")));
    let (s, _, _) = ui(&app, Method::GET, "/api/v1/watch", None, None).await;
    assert_eq!(s, 403);
    let r = app
        .client
        .get(format!("{}/queue-status", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // A wrong password is refused; the right one gives a session that works.
    let (s, v, c) = ui(
        &app,
        Method::POST,
        "/ui/login",
        None,
        Some(json!({"password": "hunter3"})),
    )
    .await;
    assert_eq!(
        (s, v["message"].as_str(), c),
        (401, Some("Incorrect password"), None)
    );
    let (s, _, c) = ui(
        &app,
        Method::POST,
        "/ui/login",
        None,
        Some(json!({"password": "hunter2"})),
    )
    .await;
    assert_eq!(s, 200);
    let cookie = c.unwrap();
    assert!(cookie.starts_with("changewatch_session="));
    for c in [&cookie, &setter_cookie] {
        let (s, _, _) = ui(&app, Method::GET, "/ui/watches", Some(c), None).await;
        assert_eq!(s, 200);
        let (s, _, _) = ui(&app, Method::GET, "/api/v1/watch", Some(c), None).await;
        assert_eq!(s, 200);
    }
    // The session without the UI header is not enough (CSRF guard).
    let r = app
        .client
        .get(format!("{}/ui/watches", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // A forged cookie is refused; the API key still works for API clients.
    let (s, _, _) = ui(
        &app,
        Method::GET,
        "/ui/watches",
        Some("changewatch_session=99999999999.00"),
        None,
    )
    .await;
    assert_eq!(s, 401);
    let (s, _) = app.get_json("/api/v1/watch").await;
    assert_eq!(s, 200);

    // Logout clears the cookie; removing the password ends every session.
    let r = app
        .client
        .post(format!("{}/ui/logout", app.base))
        .header(UI, "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let (s, _, _) = ui(
        &app,
        Method::POST,
        "/ui/settings/password",
        Some(&cookie),
        Some(json!({"password": ""})),
    )
    .await;
    assert_eq!(s, 204);
    let (_, v, _) = ui(&app, Method::GET, "/ui/session", None, None).await;
    assert_eq!(v["password_required"], false);
}

#[tokio::test]
async fn watch_rows_carry_live_state_and_counters() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    srv.set("/a", Page::html("<p>one</p>"));
    srv.set("/b", Page::html("oops").status(500));
    let a = app
        .create_watch(json!({"url": srv.url("/a"), "title": "<b>A</b>"}))
        .await;
    let b = app.create_watch(json!({"url": srv.url("/b")})).await;
    app.run_checks().await;
    srv.set("/a", Page::html("<p>two</p>"));
    app.req(Method::GET, &format!("/api/v1/watch/{a}?recheck=1"))
        .send()
        .await
        .unwrap();
    app.run_checks().await;

    let (s, v, _) = ui(&app, Method::GET, "/ui/watches", None, None).await;
    assert_eq!(s, 200);
    let rows = v["watches"].as_array().unwrap();
    let row = |u: &str| rows.iter().find(|r| r["uuid"] == u).unwrap().clone();
    let ra = row(&a);
    assert_eq!(ra["title"], "<b>A</b>", "raw in JSON; the page escapes it");
    assert_eq!(ra["history_n"], 2);
    assert_eq!(ra["unviewed"], true);
    assert_eq!(ra["has_error"], false);
    assert_eq!(ra["checking_now"], false);
    assert_eq!(ra["queued"], false);
    assert_eq!(ra["last_checked_text"], "just now");
    assert_eq!(ra["last_changed_text"], "just now");
    let rb = row(&b);
    assert_eq!(rb["has_error"], true);
    assert!(rb["error_text"].as_str().unwrap().contains("500"));
    assert_eq!(rb["last_changed_text"], "Not yet");
    assert_eq!(v["count_errors"], 1);
    assert_eq!(v["unread_changes_count"], 1);
    assert_eq!(v["queue_size"], 0);

    // Viewing marks the watch viewed.
    let (s, _, _) = ui(
        &app,
        Method::POST,
        &format!("/ui/watch/{a}/viewed"),
        None,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (_, v, _) = ui(&app, Method::GET, "/ui/watches", None, None).await;
    assert_eq!(v["unread_changes_count"], 0);
    // Mark unviewed: only a watch with a change to un-read counts.
    let (_, v, _) = ui(
        &app,
        Method::POST,
        "/ui/checkbox-operations",
        None,
        Some(json!({"op": "mark-unviewed", "uuids": [a, b]})),
    )
    .await;
    assert_eq!(v["message"], "1 watches updated");
    let (_, v, _) = ui(&app, Method::GET, "/ui/watches", None, None).await;
    assert_eq!(v["unread_changes_count"], 1);
    let (s, _, _) = ui(
        &app,
        Method::POST,
        "/ui/watch/00000000-0000-4000-8000-000000000000/viewed",
        None,
        None,
    )
    .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn bulk_operations_over_rest() {
    let app = spawn_app().await;
    let a = app
        .create_watch(json!({"url": "https://example.com/a"}))
        .await;
    let b = app
        .create_watch(json!({"url": "https://example.com/b"}))
        .await;
    let op = |op: &str, extra: Option<&str>| json!({"op": op, "uuids": [a.clone(), b.clone()], "extra_data": extra});
    let (s, v, _) = ui(
        &app,
        Method::POST,
        "/ui/checkbox-operations",
        None,
        Some(op("pause", None)),
    )
    .await;
    assert_eq!((s, v["message"].as_str()), (200, Some("2 watches paused")));
    let (_, w) = app.get_json(&format!("/api/v1/watch/{a}")).await;
    assert_eq!(w["paused"], true);

    let (_, v, _) = ui(
        &app,
        Method::POST,
        "/ui/checkbox-operations",
        None,
        Some(op("mute", None)),
    )
    .await;
    assert_eq!(v["message"], "2 watches muted");
    let (_, w) = app.get_json(&format!("/api/v1/watch/{b}")).await;
    assert_eq!(w["notification_muted"], true);

    let (_, v, _) = ui(
        &app,
        Method::POST,
        "/ui/checkbox-operations",
        None,
        Some(op("assign-tag", Some("Shops"))),
    )
    .await;
    assert_eq!(v["message"], "2 watches were tagged");
    let (_, tags) = app.get_json("/api/v1/tags").await;
    let (tag_uuid, tag) = tags.as_object().unwrap().iter().next().unwrap();
    assert_eq!(tag["title"], "Shops");
    let (_, w) = app.get_json(&format!("/api/v1/watch/{a}")).await;
    assert_eq!(w["tags"], json!([tag_uuid]));

    let (_, v, _) = ui(
        &app,
        Method::POST,
        "/ui/checkbox-operations",
        None,
        Some(op("set-fetch-backend", Some("html_webdriver"))),
    )
    .await;
    assert_eq!(v["message"], "Browser / fetch method updated on 2 watches");
    let (_, w) = app.get_json(&format!("/api/v1/watch/{b}")).await;
    assert_eq!(w["fetch_backend"], "html_webdriver");
    let (s, v, _) = ui(
        &app,
        Method::POST,
        "/ui/checkbox-operations",
        None,
        Some(op("set-fetch-backend", Some("html_selenium"))),
    )
    .await;
    assert_eq!(
        (s, v["message"].as_str()),
        (400, Some("Invalid browser / fetch method selected"))
    );

    let (s, v, _) = ui(
        &app,
        Method::POST,
        "/ui/checkbox-operations",
        None,
        Some(op("set-proxy", Some("nope"))),
    )
    .await;
    assert_eq!(
        (s, v["message"].as_str(), v["type"].as_str()),
        (400, Some("Invalid proxy selected"), Some("error"))
    );
    let (s, v, _) = ui(
        &app,
        Method::POST,
        "/ui/checkbox-operations",
        None,
        Some(op("frobnicate", None)),
    )
    .await;
    assert_eq!(
        (s, v["message"].as_str()),
        (400, Some("Unknown operation: frobnicate"))
    );

    let (_, v, _) = ui(
        &app,
        Method::POST,
        "/ui/checkbox-operations",
        None,
        Some(op("delete", None)),
    )
    .await;
    assert_eq!(v["message"], "2 watches deleted");
    let (_, list) = app.get_json("/api/v1/watch").await;
    assert_eq!(list, json!({}));
}

#[tokio::test]
async fn settings_page_reads_validates_and_writes() {
    let app = spawn_app().await;
    let (s, v, _) = ui(&app, Method::GET, "/ui/settings", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(v["api_access_token"], app.api_key.as_str());
    assert_eq!(v["time_between_check"]["hours"], 3);
    assert_eq!(v["password_set"], false);

    let (s, v, _) = ui(
        &app,
        Method::PUT,
        "/ui/settings",
        None,
        Some(json!({"notification_urls": ["json://example.com/hook", "nonsense"]})),
    )
    .await;
    assert_eq!(
        (s, v["message"].as_str()),
        (400, Some("'nonsense' is not a valid AppRise URL."))
    );
    let (s, v, _) = ui(
        &app,
        Method::PUT,
        "/ui/settings",
        None,
        Some(json!({"notification_body": "{{ broken", "jitter_seconds": 5})),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("notification_body: Invalid template syntax")
    );
    let (_, v, _) = ui(&app, Method::GET, "/ui/settings", None, None).await;
    assert_eq!(v["jitter_seconds"], 0, "a refused body changes nothing");

    let (s, v, _) = ui(
        &app,
        Method::PUT,
        "/ui/settings",
        None,
        Some(json!({
            "time_between_check": {"weeks": 0, "days": 0, "hours": 0, "minutes": 30, "seconds": 0},
            "jitter_seconds": 5,
            "global_ignore_text": ["Visitors: ", ""],
            "notification_urls": ["json://example.com/hook"],
        })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["time_between_check"]["minutes"], 30);
    assert_eq!(v["global_ignore_text"], json!(["Visitors:"]));
    let (_, n) = app.get_json("/api/v1/notifications").await;
    assert_eq!(n["notification_urls"], json!(["json://example.com/hook"]));

    let (s, v, _) = ui(
        &app,
        Method::PUT,
        "/ui/settings",
        None,
        Some(json!({"api_access_token": "mine"})),
    )
    .await;
    assert_eq!(s, 400, "{v}");

    // Regenerating the key takes effect at once: the old key is refused.
    let (s, v, _) = ui(&app, Method::POST, "/ui/settings/api-key", None, None).await;
    assert_eq!(s, 200);
    let new_key = v["api_access_token"].as_str().unwrap().to_string();
    assert_ne!(new_key, app.api_key);
    let (s, _) = app.get_json("/api/v1/watch").await;
    assert_eq!(s, 403);
    let r = app
        .client
        .get(format!("{}/api/v1/watch", app.base))
        .header("x-api-key", new_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn salted_pass_from_the_environment_wins_and_cannot_be_changed_here() {
    let app = spawn_app_with(ApiConfig {
        page_watch_limit: None,
        minimum_recheck_secs: 3,
        base_url: None,
        salted_pass: Some(changewatch_api::session::hash_password("from-env")),
        open_without_password: true,
        api_key_fixed: false,
        trusted_proxy_hops: 0,
        work_after_reply: true,
    })
    .await;
    let (_, v, _) = ui(&app, Method::GET, "/ui/session", None, None).await;
    assert_eq!(v["password_required"], true);
    let (s, _, _) = ui(&app, Method::GET, "/ui/watches", None, None).await;
    assert_eq!(s, 401);
    let (s, _, cookie) = ui(
        &app,
        Method::POST,
        "/ui/login",
        None,
        Some(json!({"password": "from-env"})),
    )
    .await;
    assert_eq!(s, 200);
    let cookie = cookie.unwrap();
    let (s, v, _) = ui(&app, Method::GET, "/ui/settings", Some(&cookie), None).await;
    assert_eq!((s, v["password_set"].as_bool()), (200, Some(true)));
    let (s, v, _) = ui(
        &app,
        Method::POST,
        "/ui/settings/password",
        Some(&cookie),
        Some(json!({"password": ""})),
    )
    .await;
    assert_eq!(s, 400);
    assert!(v["message"].as_str().unwrap().contains("SALTED_PASS"));
}

/// Sets a password over the open dashboard; returns the setter's cookie (`name=value`).
async fn set_password(app: &common::TestApp, password: &str) -> String {
    let (s, _, cookie) = ui(
        app,
        Method::POST,
        "/ui/settings/password",
        None,
        Some(json!({"password": password})),
    )
    .await;
    assert_eq!(s, 204);
    cookie.unwrap()
}

#[tokio::test]
async fn with_a_password_the_key_switch_opens_api_v1_but_not_the_dashboard_endpoints() {
    let app = spawn_app().await;
    let cookie = set_password(&app, "hunter2").await;
    let (s, _, _) = ui(
        &app,
        Method::PUT,
        "/ui/settings",
        Some(&cookie),
        Some(json!({"api_access_token_enabled": false})),
    )
    .await;
    assert_eq!(s, 200);

    // Attack: no session, with and without the UI header. Nothing that shows the key or changes
    // the password may answer.
    for header in [true, false] {
        for (method, path, body) in [
            (Method::GET, "/ui/settings", None),
            (
                Method::POST,
                "/ui/settings/password",
                Some(json!({"password": ""})),
            ),
            (Method::POST, "/ui/settings/api-key", None),
            (
                Method::PUT,
                "/ui/settings",
                Some(json!({"api_access_token_enabled": true})),
            ),
            (Method::GET, "/ui/watches", None),
        ] {
            let mut r = app
                .client
                .request(method.clone(), format!("{}{path}", app.base));
            if header {
                r = r.header(UI, "1");
            }
            if let Some(b) = body {
                r = r.json(&b);
            }
            let r = r.send().await.unwrap();
            assert_eq!(
                r.status().as_u16(),
                401,
                "{method} {path} (UI header: {header})"
            );
        }
    }
    let (_, v, _) = ui(&app, Method::GET, "/ui/session", None, None).await;
    assert_eq!(v["password_required"], true, "the password is still set");

    // What the switch is for still works: API v1 without a key (upstream's meaning)...
    let r = app
        .client
        .get(format!("{}/api/v1/watch", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // ...and the key itself, or the session, still open the dashboard endpoints.
    let (s, v) = app.get_json("/ui/settings").await;
    assert_eq!(
        (s, v["api_access_token_enabled"].as_bool()),
        (200, Some(false))
    );
    let (s, _, _) = ui(&app, Method::GET, "/ui/settings", Some(&cookie), None).await;
    assert_eq!(s, 200);
}

fn full_set_cookie(r: &reqwest::Response) -> String {
    r.headers()["set-cookie"].to_str().unwrap().to_string()
}

async fn login(app: &common::TestApp, body: Value) -> reqwest::Response {
    app.client
        .post(format!("{}/ui/login", app.base))
        .header(UI, "1")
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn sessions_expire_are_revoked_by_logout_and_end_with_a_new_password() {
    let app = spawn_app().await;
    let setter = set_password(&app, "hunter2").await;

    // Without "remember me" the cookie ends with the browser; with it, it lasts 30 days.
    let r = login(&app, json!({"password": "hunter2"})).await;
    assert_eq!(r.status().as_u16(), 200);
    let short = full_set_cookie(&r);
    assert!(!short.contains("Max-Age"), "{short}");
    let r = login(&app, json!({"password": "hunter2", "remember": true})).await;
    let long = full_set_cookie(&r);
    assert!(
        long.contains(&format!("Max-Age={}", 30 * 24 * 3600)),
        "{long}"
    );
    let a = short.split(';').next().unwrap().to_string();
    let b = long.split(';').next().unwrap().to_string();

    // Logging out with A revokes A (a copy of the cookie is refused), B lives on.
    let r = app
        .client
        .post(format!("{}/ui/logout", app.base))
        .header(UI, "1")
        .header("cookie", &a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (s, _, _) = ui(&app, Method::GET, "/ui/watches", Some(&a), None).await;
    assert_eq!(s, 401, "a logged-out cookie replayed");
    let (s, _, _) = ui(&app, Method::GET, "/ui/watches", Some(&b), None).await;
    assert_eq!(s, 200);

    // The signing secret lives in the stored settings and in no response.
    let stored = changewatch_store::WatchStore::get(
        app.store.as_ref(),
        &changewatch_store::Key::settings(changewatch_store::DEFAULT_TENANT),
    )
    .await
    .unwrap()
    .unwrap();
    let secret = stored.doc.value().unwrap()["application"]["session_keys"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(secret.len() >= 64);
    for path in ["/ui/settings", "/api/v1/systeminfo", "/ui/session"] {
        let (_, v, _) = ui(&app, Method::GET, path, Some(&b), None).await;
        let text = v.to_string();
        assert!(
            !text.contains(&secret) && !text.contains("session_keys"),
            "{path}: {text}"
        );
    }

    // A new password ends every session but the setter's fresh one.
    let (s, _, fresh) = ui(
        &app,
        Method::POST,
        "/ui/settings/password",
        Some(&b),
        Some(json!({"password": "correct horse"})),
    )
    .await;
    assert_eq!(s, 204);
    for old in [&b, &setter] {
        let (s, _, _) = ui(&app, Method::GET, "/ui/watches", Some(old), None).await;
        assert_eq!(s, 401);
    }
    let (s, _, _) = ui(
        &app,
        Method::GET,
        "/ui/watches",
        Some(&fresh.unwrap()),
        None,
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn holding_the_password_hash_mints_no_session() {
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    let hash = changewatch_api::session::hash_password("from-env");
    let app = spawn_app_with(ApiConfig {
        page_watch_limit: None,
        minimum_recheck_secs: 3,
        base_url: None,
        salted_pass: Some(hash.clone()),
        open_without_password: true,
        api_key_fixed: false,
        trusted_proxy_hops: 0,
        work_after_reply: true,
    })
    .await;
    // A real login first, so the instance has its signing secret.
    assert_eq!(
        login(&app, json!({"password": "from-env"})).await.status(),
        200
    );

    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let sign = |msg: String| {
        let mut m = Hmac::<Sha256>::new_from_slice(hash.as_bytes()).unwrap();
        m.update(msg.as_bytes());
        hex(&m.finalize().into_bytes())
    };
    // The old scheme (HMAC keyed by the hash, valid until 9999) and the new layout keyed by
    // the hash: both refused.
    let exp = 253_402_300_799_i64;
    let id = "0123456789abcdef0123456789abcdef";
    let bind = hex(&<Sha256 as sha2::Digest>::digest(
        format!("changewatch-password|{hash}").as_bytes(),
    ));
    for forged in [
        format!("{exp}.{}", sign(format!("changewatch-session|{exp}"))),
        format!(
            "{id}.{exp}.{}",
            sign(format!("changewatch-session|v2|{id}|{exp}|{bind}"))
        ),
    ] {
        let cookie = format!("changewatch_session={forged}");
        let (s, _, _) = ui(&app, Method::GET, "/ui/settings", Some(&cookie), None).await;
        assert_eq!(s, 401, "{forged}");
        let (_, v, _) = ui(&app, Method::GET, "/ui/session", Some(&cookie), None).await;
        assert_eq!(v["authenticated"], false);
    }
}

fn network_facing() -> ApiConfig {
    ApiConfig {
        page_watch_limit: None,
        minimum_recheck_secs: 3,
        base_url: None,
        salted_pass: None,
        open_without_password: false,
        api_key_fixed: false,
        trusted_proxy_hops: 0,
        work_after_reply: true,
    }
}

/// A network-facing server without a password (an AWS stack without `SALTED_PASS`, `serve`
/// on 0.0.0.0 with `CW_ALLOW_NO_PASSWORD`'s opposite): the UI header alone opens nothing; the
/// API key does, and is how the first password gets set. It cannot be removed again.
#[tokio::test]
async fn without_a_password_a_network_facing_server_opens_only_to_the_key() {
    let app = spawn_app_with(network_facing()).await;
    let (_, v, _) = ui(&app, Method::GET, "/ui/session", None, None).await;
    assert_eq!(
        (
            v["password_required"].as_bool(),
            v["authenticated"].as_bool()
        ),
        (Some(true), Some(false))
    );
    for path in ["/ui/settings", "/ui/watches"] {
        let (s, _, _) = ui(&app, Method::GET, path, None, None).await;
        assert_eq!(s, 401, "{path}: the UI header alone");
    }
    let r = app
        .client
        .get(format!("{}/api/v1/watch", app.base))
        .header(UI, "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "the API with the UI header alone");
    let (s, v, _) = ui(
        &app,
        Method::POST,
        "/ui/login",
        None,
        Some(json!({"password": "x"})),
    )
    .await;
    assert_eq!(s, 401);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("POST /ui/settings/password"),
        "{v}"
    );

    // The key sets the first password; the UI then needs a session like any protected one.
    let r = app
        .req(Method::POST, "/ui/settings/password")
        .json(&json!({"password": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        400,
        "no password is not an option here"
    );
    let body: Value = r.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("CW_ALLOW_NO_PASSWORD"),
        "{body}"
    );
    let r = app
        .req(Method::POST, "/ui/settings/password")
        .json(&json!({"password": "first"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (s, _, cookie) = ui(
        &app,
        Method::POST,
        "/ui/login",
        None,
        Some(json!({"password": "first"})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, v, _) = ui(&app, Method::GET, "/ui/settings", cookie.as_deref(), None).await;
    assert_eq!(s, 200);
    assert_eq!(v["password_required"], true);
    assert_eq!(v["api_key_fixed"], false);
}

/// `API_ACCESS_TOKEN` fixes the key: regenerating it from the dashboard would last only until
/// the next start (or Lambda cold start) wrote the configured key back, so it is refused.
#[tokio::test]
async fn a_key_fixed_by_the_environment_is_not_regenerated() {
    let app = spawn_app_with(ApiConfig {
        api_key_fixed: true,
        trusted_proxy_hops: 0,
        work_after_reply: true,
        open_without_password: true,
        ..network_facing()
    })
    .await;
    let (s, v, _) = ui(&app, Method::POST, "/ui/settings/api-key", None, None).await;
    assert_eq!(s, 400);
    assert!(
        v["message"].as_str().unwrap().contains("API_ACCESS_TOKEN"),
        "{v}"
    );
    let (_, v, _) = ui(&app, Method::GET, "/ui/settings", None, None).await;
    assert_eq!(v["api_key_fixed"], true);
    let (s, _) = app.get_json("/api/v1/watch").await;
    assert_eq!(s, 200, "the key in force still works");
}

#[tokio::test]
async fn a_templated_url_shows_rendered_in_the_list() {
    let app = spawn_app().await;
    let srv = FixtureServer::start();
    srv.set("/p/ABC", Page::html("<p>one</p>"));
    let templated = srv.url("/p/{{ 'abc'|upper }}");
    let plain = srv.url("/p/ABC");
    let t = app.create_watch(json!({"url": templated})).await;
    let p = app.create_watch(json!({"url": plain})).await;
    let (s, v, _) = ui(&app, Method::GET, "/ui/watches", None, None).await;
    assert_eq!(s, 200);
    let rows = v["watches"].as_array().unwrap();
    let row = |u: &str| rows.iter().find(|r| r["uuid"] == u).unwrap().clone();
    assert_eq!(row(&t)["link"], plain, "the list renders a templated URL");
    assert_eq!(row(&t)["url"], templated);
    assert_eq!(row(&p)["link"], plain);
    // The row the socket sends (no sandbox to render with) leaves a templated URL's link
    // out, so the dashboard keeps the list's: see `live::tests`.
}
