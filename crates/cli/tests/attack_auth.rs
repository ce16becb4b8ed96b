//! Attacks on the dashboard's session and socket, against the real `changewatch serve` binary
//! (issue 12, items 4, 5, 6, 8 and 9). The socket is driven with a small Engine.IO v4 polling
//! client written here (and a raw WebSocket upgrade), so headers a browser would send
//! (`Origin`, `Cookie`) are set exactly as an attacking page's browser would set them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Server;
use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};

const KEY: &str = "attack-auth-test-key";
const UI: &str = "x-changewatch-ui";

fn http() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(40))
        .build()
        .unwrap()
}

/// `name=value` of the session cookie a response sets.
fn session_cookie(r: &Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("changewatch_session=") && !v.contains("Max-Age=0"))
        .map(|v| v.split(';').next().unwrap().to_string())
}

/// A `/ui` request as the dashboard sends it (UI header, optional cookie and JSON body).
fn ui(
    srv: &Server,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    body: Option<Value>,
) -> Response {
    let mut r = http()
        .request(method.parse().unwrap(), format!("{}{path}", srv.base))
        .header(UI, "1");
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().unwrap()
}

/// Sets the dashboard password over the open dashboard; returns the setter's cookie.
fn set_password(srv: &Server, cookie: Option<&str>, password: &str) -> String {
    let r = ui(
        srv,
        "POST",
        "/ui/settings/password",
        cookie,
        Some(json!({"password": password})),
    );
    assert_eq!(r.status().as_u16(), 204);
    session_cookie(&r).expect("the setter stays logged in")
}

fn login(srv: &Server, password: &str) -> Response {
    ui(
        srv,
        "POST",
        "/ui/login",
        None,
        Some(json!({"password": password})),
    )
}

/// One Socket.IO client over Engine.IO v4 long-polling, sending the same headers on every
/// request (as a browser does: its `Origin`, its cookies).
struct Sock {
    url: String,
    headers: Vec<(String, String)>,
    http: Client,
    pending: VecDeque<String>,
}

/// Why a socket did not connect.
#[derive(Debug, PartialEq)]
enum Refused {
    /// The HTTP handshake was answered with this status.
    Http(u16),
    /// The Socket.IO CONNECT was refused (`44`) with this message.
    Connect(String),
}

impl Sock {
    fn open(base: &str, headers: &[(&str, &str)], auth: Option<Value>) -> Result<Sock, Refused> {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let http = http();
        let mut req = http.get(format!("{base}/socket.io/?EIO=4&transport=polling"));
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        let r = req.send().unwrap();
        if r.status().as_u16() != 200 {
            return Err(Refused::Http(r.status().as_u16()));
        }
        let body = r.text().unwrap();
        let open: Value = serde_json::from_str(body.strip_prefix('0').expect(&body)).unwrap();
        let sid = open["sid"].as_str().unwrap();
        let mut sock = Sock {
            url: format!("{base}/socket.io/?EIO=4&transport=polling&sid={sid}"),
            headers,
            http,
            pending: VecDeque::new(),
        };
        let connect = match auth {
            Some(a) => format!("40{a}"),
            None => "40".to_string(),
        };
        assert_eq!(sock.post(&connect), 200);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "no answer to CONNECT");
            match sock.next_packet().as_deref() {
                Some(p) if p.starts_with("40") => return Ok(sock),
                Some(p) if p.starts_with("44") => {
                    let v: Value = serde_json::from_str(&p[2..]).unwrap_or(Value::Null);
                    return Err(Refused::Connect(
                        v["message"].as_str().unwrap_or(p).to_string(),
                    ));
                }
                Some(_) => {}
                None => panic!("session closed before CONNECT was answered"),
            }
        }
    }

    fn post(&self, body: &str) -> u16 {
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "text/plain;charset=UTF-8")
            .body(body.to_string());
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        req.send().map_or(0, |r| r.status().as_u16())
    }

    /// The next packet; a ping is answered and returned too, so callers' deadlines hold even
    /// when nothing else comes. `None`: the session is gone.
    fn next_packet(&mut self) -> Option<String> {
        loop {
            if let Some(p) = self.pending.pop_front() {
                if p == "2" {
                    self.post("3");
                }
                return Some(p);
            }
            let mut req = self.http.get(&self.url);
            for (k, v) in &self.headers {
                req = req.header(k, v);
            }
            let r = req.send().ok()?;
            if r.status().as_u16() != 200 {
                return None;
            }
            let body = r.text().ok()?;
            self.pending.extend(
                body.split('\u{1e}')
                    .filter(|p| !p.is_empty())
                    .map(String::from),
            );
        }
    }

    /// Reads until the server disconnects the socket (`41`, an Engine.IO close, or the
    /// session gone); false when it is still talking at the deadline.
    fn disconnected_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            match self.next_packet().as_deref() {
                None | Some("41") | Some("1") => return true,
                Some(_) => {}
            }
        }
        false
    }

    /// Sends an event the server answers and waits for the answer: proof the socket is
    /// connected now. False when it is disconnected instead.
    fn alive(&mut self) -> bool {
        if self.post(r#"42["watch_operation",{"op":"pause","uuid":"nope"}]"#) != 200 {
            return false;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match self.next_packet().as_deref() {
                None | Some("41") | Some("1") => return false,
                Some(p) if p.starts_with(r#"42["operation_result""#) => return true,
                Some(_) => {}
            }
        }
        panic!("no operation_result within 30 s");
    }
}

/// The status line of a raw WebSocket upgrade of `/socket.io/` with these extra headers.
fn websocket_upgrade(base: &str, extra: &[(&str, &str)]) -> String {
    let addr = base.strip_prefix("http://").unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!(
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n") {
        if s.read(&mut byte).unwrap() == 0 {
            break;
        }
        buf.push(byte[0]);
    }
    String::from_utf8_lossy(&buf).trim().to_string()
}

/// Item 4: with no password (the default), any page the owner visits could read every watch and
/// delete them through the socket. Pages of other origins, same-site ones on another port
/// included, are refused before a session exists; the dashboard's own origin and non-browser
/// clients (no `Origin`) still connect.
#[test]
fn socket_handshakes_from_foreign_origins_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let srv = Server::start(data.path(), Some(KEY));
    let base = srv.base.as_str();
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    let other_port = format!("http://127.0.0.1:{}", port.wrapping_add(1));
    let localhost_other = format!("http://localhost:{}", port.wrapping_add(1));
    for origin in [
        "http://evil.example",
        other_port.as_str(),
        localhost_other.as_str(),
        "null",
        &format!("https://127.0.0.1:{port}"),
    ] {
        assert_eq!(
            Sock::open(base, &[("origin", origin)], None).err(),
            Some(Refused::Http(403)),
            "polling handshake from {origin}"
        );
        let status = websocket_upgrade(base, &[("Origin", origin)]);
        assert!(status.contains(" 403"), "WebSocket from {origin}: {status}");
    }

    // The dashboard's own origin and non-browser clients connect.
    let own = base.to_string();
    let mut mine = Sock::open(base, &[("origin", &own)], None).unwrap();
    assert!(mine.alive());
    let mut plain = Sock::open(base, &[], None).unwrap();
    assert!(plain.alive());
    let status = websocket_upgrade(base, &[("Origin", &own)]);
    assert!(
        status.contains(" 101"),
        "WebSocket from the own origin: {status}"
    );
    assert!(websocket_upgrade(base, &[]).contains(" 101"));

    // A foreign page cannot ride an open session either: every request is checked.
    let url = mine.url.clone();
    let r = http()
        .post(&url)
        .header("origin", "http://evil.example")
        .header("content-type", "text/plain;charset=UTF-8")
        .body(r#"42["checkbox-operation",{"op":"delete","uuids":[]}]"#)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    srv.terminate();

    // CW_ALLOWED_ORIGINS adds origins; everything else stays refused.
    let data = tempfile::tempdir().unwrap();
    let srv = Server::start_with(
        data.path(),
        Some(KEY),
        &[("CW_ALLOWED_ORIGINS", "http://dash.example.test:8080")],
    );
    let mut allowed = Sock::open(
        &srv.base,
        &[("origin", "http://dash.example.test:8080")],
        None,
    )
    .unwrap();
    assert!(allowed.alive());
    assert_eq!(
        Sock::open(&srv.base, &[("origin", "http://dash.example.test")], None).err(),
        Some(Refused::Http(403))
    );
    srv.terminate();
}

/// Item 5: with a password set and the API key check turned off, nobody without a session
/// may read `/ui/settings` (it holds the API key) or remove the password.
#[test]
fn dashboard_endpoints_need_a_session_when_the_key_check_is_off() {
    let data = tempfile::tempdir().unwrap();
    let srv = Server::start(data.path(), Some(KEY));
    let cookie = set_password(&srv, None, "hunter2");
    let r = ui(
        &srv,
        "PUT",
        "/ui/settings",
        Some(&cookie),
        Some(json!({"api_access_token_enabled": false})),
    );
    assert_eq!(r.status().as_u16(), 200);

    let r = ui(&srv, "GET", "/ui/settings", None, None);
    assert_eq!(r.status().as_u16(), 401);
    assert!(!r.text().unwrap().contains(KEY));
    for (path, body) in [
        ("/ui/settings/password", Some(json!({"password": ""}))),
        ("/ui/settings/api-key", None),
    ] {
        let r = ui(&srv, "POST", path, None, body);
        assert_eq!(r.status().as_u16(), 401, "{path}");
    }
    let r = http()
        .get(format!("{}/ui/session", srv.base))
        .send()
        .unwrap();
    let v: Value = r.json().unwrap();
    assert_eq!(v["password_required"], true, "the password is still there");
    // The session still works, and API v1 is open as the switch says (upstream's meaning).
    assert_eq!(
        ui(&srv, "GET", "/ui/settings", Some(&cookie), None).status(),
        200
    );
    let r = http()
        .get(format!("{}/api/v1/watch", srv.base))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    srv.terminate();
}

/// Item 6: open sockets end with the credentials they were opened with: setting a password
/// drops the sockets of the open dashboard, logging out drops that session's sockets,
/// regenerating the key drops the sockets opened with the old key, and a new password drops
/// the sockets of the old sessions. Sockets whose credentials still hold stay connected.
#[test]
fn sockets_are_disconnected_when_their_credentials_end() {
    let data = tempfile::tempdir().unwrap();
    // A generated key: one fixed by API_ACCESS_TOKEN cannot be regenerated.
    let srv = Server::start(data.path(), None);
    let key = srv.logged_api_key();
    let base = srv.base.as_str();

    // No password yet: an anonymous socket is let in, and dropped once a password is set.
    let mut anonymous = Sock::open(base, &[], None).unwrap();
    assert!(anonymous.alive());
    let setter = set_password(&srv, None, "hunter2");
    assert!(
        anonymous.disconnected_within(Duration::from_secs(30)),
        "an anonymous socket outlived the new password"
    );
    assert_eq!(
        Sock::open(base, &[], None)
            .err()
            .map(|e| matches!(e, Refused::Connect(_))),
        Some(true),
        "no credentials, no socket"
    );

    let a = session_cookie(&login(&srv, "hunter2")).unwrap();
    let b = session_cookie(&login(&srv, "hunter2")).unwrap();
    let mut sa = Sock::open(base, &[("cookie", &a)], None).unwrap();
    let mut sb = Sock::open(base, &[("cookie", &b)], None).unwrap();
    let mut sk = Sock::open(base, &[], Some(json!({"api_key": key}))).unwrap();
    assert!(sa.alive() && sb.alive() && sk.alive());

    // Logout of A: A's socket goes, the others stay; A's cookie opens nothing any more.
    let r = ui(&srv, "POST", "/ui/logout", Some(&a), None);
    assert_eq!(r.status().as_u16(), 204);
    assert!(sa.disconnected_within(Duration::from_secs(30)), "logout");
    assert!(sb.alive() && sk.alive());
    assert!(Sock::open(base, &[("cookie", &a)], None).is_err());

    // A new API key: the socket opened with the old key goes.
    let r = ui(&srv, "POST", "/ui/settings/api-key", Some(&b), None);
    assert_eq!(r.status().as_u16(), 200);
    let new_key = r.json::<Value>().unwrap()["api_access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        sk.disconnected_within(Duration::from_secs(30)),
        "key regenerated"
    );
    assert!(sb.alive());
    assert!(Sock::open(base, &[], Some(json!({"api_key": key}))).is_err());
    let mut sk2 = Sock::open(base, &[], Some(json!({"api_key": new_key}))).unwrap();

    // A new password: every old session's socket goes; the key's socket and the setter's
    // fresh session stay.
    let fresh = set_password(&srv, Some(&b), "correct horse");
    assert!(
        sb.disconnected_within(Duration::from_secs(30)),
        "password changed"
    );
    assert!(sk2.alive());
    for old in [&b, &setter] {
        assert!(Sock::open(base, &[("cookie", old)], None).is_err());
    }
    let mut sf = Sock::open(base, &[("cookie", &fresh)], None).unwrap();
    assert!(sf.alive());
    srv.terminate();
}

/// Item 8: password guessing is throttled (per client and in total) with a clear 429, and the
/// server keeps answering other requests meanwhile (PBKDF2 runs on blocking threads).
#[test]
fn login_attempts_are_throttled() {
    let data = tempfile::tempdir().unwrap();
    let srv = Server::start(data.path(), Some(KEY));
    set_password(&srv, None, "hunter2");
    let mut throttled = None;
    for attempt in 1..=40 {
        let r = login(&srv, &format!("guess-{attempt}"));
        match r.status().as_u16() {
            401 => {}
            429 => {
                let retry = r.headers()["retry-after"].to_str().unwrap().to_string();
                let v: Value = r.json().unwrap();
                throttled = Some((attempt, retry, v));
                break;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    let (attempt, retry, v) = throttled.expect("40 wrong passwords in a row were all tried");
    assert!(attempt <= 20, "throttled only after {attempt} attempts");
    assert!(retry.parse::<u64>().unwrap() >= 1);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("Too many login attempts"),
        "{v}"
    );
    // Throttled means throttled: the right password waits too (no oracle while limited).
    assert_eq!(login(&srv, "hunter2").status().as_u16(), 429);
    // Everything else is served as usual.
    let r = http()
        .get(format!("{}/api/v1/watch", srv.base))
        .header("x-api-key", KEY)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    srv.terminate();
}

/// Runs a Python snippet (stdlib only) and returns its stdout, trimmed.
fn python(code: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("python3 (the socket contract tests use it too)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Item 9: whoever holds the password hash (`SALTED_PASS`, a backup) could sign a session
/// valid until 9999 with it. Sessions are signed with a secret of the instance instead.
#[test]
fn a_session_minted_from_the_password_hash_is_refused() {
    // Upstream's format: base64(salt + PBKDF2-HMAC-SHA256(password, salt, 100000)).
    let hash = python(
        "import base64,hashlib,os,sys; s=os.urandom(32); \
         print(base64.b64encode(s+hashlib.pbkdf2_hmac('sha256', sys.argv[1].encode(), s, 100000)).decode())",
        &["from-env"],
    );
    let data = tempfile::tempdir().unwrap();
    let srv = Server::start_with(data.path(), Some(KEY), &[("SALTED_PASS", &hash)]);
    // The instance has been used: a real session exists.
    let real = session_cookie(&login(&srv, "from-env")).unwrap();
    assert_eq!(
        ui(&srv, "GET", "/ui/settings", Some(&real), None).status(),
        200
    );

    let forged = python(
        "import hashlib,hmac,sys; h=sys.argv[1].encode(); exp='253402300799'; \
         sid='0123456789abcdef0123456789abcdef'; \
         bind=hashlib.sha256(b'changewatch-password|'+h).hexdigest(); \
         sign=lambda m: hmac.new(h, m.encode(), hashlib.sha256).hexdigest(); \
         print(exp+'.'+sign('changewatch-session|'+exp)); \
         print(sid+'.'+exp+'.'+sign('changewatch-session|v2|'+sid+'|'+exp+'|'+bind))",
        &[&hash],
    );
    for value in forged.lines() {
        let cookie = format!("changewatch_session={value}");
        let r = ui(&srv, "GET", "/ui/settings", Some(&cookie), None);
        assert_eq!(r.status().as_u16(), 401, "{value}");
        assert!(
            Sock::open(&srv.base, &[("cookie", &cookie)], None).is_err(),
            "socket with {value}"
        );
    }
    srv.terminate();
}

/// Behind a load balancer (`CW_TRUSTED_PROXY_HOPS=1`, as the AWS stack's task runs) every
/// client arrives from the balancer's address: the throttle counts the address the balancer
/// appended to `X-Forwarded-For`, so one guesser cannot lock everyone out, and a forged entry
/// on the left changes nothing.
#[test]
fn behind_a_proxy_the_throttle_counts_each_client() {
    let data = tempfile::tempdir().unwrap();
    let srv = Server::start_with(data.path(), Some(KEY), &[("CW_TRUSTED_PROXY_HOPS", "1")]);
    set_password(&srv, None, "hunter2");
    let attempt = |forwarded: &str, password: &str| {
        http()
            .post(format!("{}/ui/login", srv.base))
            .header("x-changewatch-ui", "1")
            .header("x-forwarded-for", forwarded)
            .json(&json!({"password": password}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let mut throttled = false;
    for i in 0..25 {
        // The guesser varies a forged left-hand entry: the balancer's entry is what counts.
        match attempt(&format!("10.9.9.{i}, 203.0.113.7"), "guess") {
            401 => {}
            429 => {
                throttled = true;
                break;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(throttled, "the guessing client was throttled");
    assert_eq!(
        attempt("203.0.113.8", "hunter2"),
        200,
        "another client logs in meanwhile"
    );
    srv.terminate();
}
