//! Attacks on the network edge of the real `changewatch serve`: DNS rebinding (a browser that
//! sends an attacker's host name to this server) and the API key in the log.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Server;

/// One raw HTTP/1.1 request with a chosen `Host`, as a rebinding browser would send it (no
/// client library gets to "fix" the header). Returns the status and the body.
fn raw_get(server: &Server, path: &str, host: &str, extra: &[(&str, &str)]) -> (u16, String) {
    let addr = server.base.trim_start_matches("http://");
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes()).unwrap();
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply).unwrap();
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let status = reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {reply:?}"));
    let body = reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn port(server: &Server) -> &str {
    server.base.rsplit(':').next().unwrap()
}

/// What a browser on a rebinding page reaches: the dashboard files, the UI endpoints (which hold
/// the API key when there is no password), the REST API and the Socket.IO handshake.
const PATHS: &[&str] = &[
    "/",
    "/ui/settings",
    "/ui/watches",
    "/api/v1/watch",
    "/api/v1/systeminfo",
    "/socket.io/?EIO=4&transport=polling",
    "/no-such-page",
];

const UI: (&str, &str) = ("X-Changewatch-UI", "1");

#[test]
fn rebinding_name_is_refused_without_a_password() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), None);
    let p = port(&server).to_string();

    // The control: by address and by localhost names the dashboard's settings (with the key)
    // are open, as they are meant to be on a password-less instance.
    for host in [
        format!("127.0.0.1:{p}"),
        format!("localhost:{p}"),
        format!("[::1]:{p}"),
        format!("dash.localhost:{p}"),
    ] {
        let (status, _) = raw_get(&server, "/ui/settings", &host, &[UI]);
        assert_eq!(status, 200, "{host}");
    }

    for host in [
        format!("attacker.example:{p}"),
        "attacker.example".to_string(),
        format!("127.0.0.1.nip.io:{p}"),
        format!("ATTACKER.example.:{p}"),
    ] {
        for path in PATHS {
            let (status, body) = raw_get(&server, path, &host, &[UI]);
            assert_eq!(status, 421, "{host}{path}: {body}");
            assert!(body.contains("ALLOWED_HOSTS"), "{host}{path}: {body}");
            assert!(body.contains("DNS rebinding"), "{body}");
            assert!(!body.contains("api_access_token"), "{body}");
        }
    }
    let (status, body) = raw_get(&server, "/ui/settings", "bad host", &[UI]);
    assert_eq!(status, 400, "{body}");
    server.terminate();
}

#[test]
fn names_pass_once_a_password_and_the_key_protect_the_instance() {
    let data = tempfile::tempdir().unwrap();
    let hash = changewatch_api::session::hash_password("correct horse");
    let server = Server::start_with(
        data.path(),
        Some("k3y-for-tests"),
        &[("SALTED_PASS", &hash)],
    );
    let host = format!("changes.example.com:{}", port(&server));
    // The rebinding page gets what anyone on the Internet gets: nothing without credentials.
    let (status, body) = raw_get(&server, "/api/v1/watch", &host, &[]);
    assert_eq!(status, 403, "{body}");
    let (status, body) = raw_get(&server, "/ui/settings", &host, &[UI]);
    assert!(status == 401 || status == 403, "{status}: {body}");
    // The owner behind a reverse proxy, with the key, is served under the name.
    let (status, body) = raw_get(
        &server,
        "/api/v1/watch",
        &host,
        &[("x-api-key", "k3y-for-tests")],
    );
    assert_eq!(status, 200, "{body}");
    server.terminate();
}

#[test]
fn allowed_hosts_lists_the_names_served() {
    let data = tempfile::tempdir().unwrap();
    let hash = changewatch_api::session::hash_password("correct horse");
    let server = Server::start_with(
        data.path(),
        Some("k3y-for-tests"),
        &[
            ("ALLOWED_HOSTS", "changes.example.com, .lan"),
            // A set list is strict: a password does not open other names.
            ("SALTED_PASS", &hash),
        ],
    );
    let p = port(&server).to_string();
    let key = ("x-api-key", "k3y-for-tests");
    for host in [
        format!("changes.example.com:{p}"),
        format!("nas.lan:{p}"),
        format!("127.0.0.1:{p}"),
        format!("localhost:{p}"),
    ] {
        let (status, body) = raw_get(&server, "/api/v1/watch", &host, &[key]);
        assert_eq!(status, 200, "{host}: {body}");
    }
    for host in [
        format!("attacker.example:{p}"),
        format!("changes.example.com.attacker.example:{p}"),
        format!("nas.lan.attacker.example:{p}"),
    ] {
        let (status, body) = raw_get(&server, "/api/v1/watch", &host, &[key]);
        assert_eq!(status, 421, "{host}: {body}");
        assert!(body.contains("not in ALLOWED_HOSTS"), "{body}");
    }
    server.terminate();
}

#[test]
fn allowed_hosts_that_can_never_match_stop_the_start() {
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_changewatch"))
        .args(["serve", "--host", "127.0.0.1", "--port", "0"])
        .env("DATASTORE_PATH", data.path())
        .env("ALLOWED_HOSTS", "https://changes.example.com")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ALLOWED_HOSTS"), "{stderr}");
}

/// Every line the server wrote to stderr, once it has logged its last one ("stopped").
fn log_after_stop(server: Server) -> Vec<String> {
    let lines = server.stderr.clone();
    server.terminate();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let snapshot = lines.lock().unwrap().clone();
        if snapshot.iter().any(|l| l.contains("stopped")) {
            return snapshot;
        }
        assert!(
            Instant::now() < deadline,
            "no 'stopped' line in the log: {snapshot:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn api_key_is_logged_once_when_generated_and_never_again() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), None);
    let key = server.logged_api_key();
    assert!(key.len() >= 32, "{key}");
    let first = log_after_stop(server);
    assert_eq!(
        first.iter().filter(|l| l.contains(&key)).count(),
        1,
        "{first:?}"
    );

    for _ in 0..2 {
        let server = Server::start(data.path(), None);
        // The key still works: it was kept, only not shown.
        let api = common::Api::new(&server.base, &key);
        assert_eq!(api.get("/api/v1/watch").0, 200);
        let log = log_after_stop(server);
        assert!(
            !log.iter().any(|l| l.contains(&key)),
            "the key is logged again after the first start: {log:?}"
        );
        assert!(!log.iter().any(|l| l.contains("API key (x-api-key header)")));
    }
}

#[test]
fn api_key_from_the_environment_is_never_logged() {
    let data = tempfile::tempdir().unwrap();
    let key = "operator-chosen-key-0123456789";
    let server = Server::start(data.path(), Some(key));
    let log = log_after_stop(server);
    assert!(log.iter().any(|l| l.contains("first start")), "{log:?}");
    assert!(!log.iter().any(|l| l.contains(key)), "{log:?}");
}
