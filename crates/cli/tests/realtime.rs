//! The realtime contract and the dashboard, driven by real clients against the real binary:
//! socket.io-client (npm) and python-socketio speak the Socket.IO protocol, and headless
//! Chromium (playwright-core) uses the dashboard as a person would. The client scripts live
//! beside the code they exercise; `make test` installs what they need (npm packages, the Python
//! client, Chromium) and builds the dashboard first.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::{Server, repo_root, run_client};

const KEY: &str = "realtime-test-key";

/// A server with the built dashboard, or a clear message about what `make test` would install.
fn server(data: &Path) -> Server {
    let dist = repo_root().join("dashboard/dist");
    assert!(
        dist.join("index.html").is_file(),
        "the dashboard is not built: run `make test` (npm ci && npm run build in dashboard/)"
    );
    assert!(
        repo_root()
            .join("dashboard/node_modules/socket.io-client")
            .is_dir(),
        "dashboard/node_modules is missing: run `make test` (npm ci in dashboard/)"
    );
    Server::start_with(
        data,
        Some(KEY),
        &[("DASHBOARD_DIR", dist.to_str().unwrap())],
    )
}

#[test]
fn socket_contract_with_socket_io_client() {
    let data = tempfile::tempdir().unwrap();
    let srv = server(data.path());
    run_client(
        "node",
        &["dashboard/tests/socket_contract.mjs"],
        &[("CW_BASE_URL", &srv.base), ("CW_API_KEY", KEY)],
        Duration::from_secs(120),
    );
    srv.terminate();
}

#[test]
fn socket_contract_with_python_socketio() {
    testkit::setup::require_python_modules(
        &["socketio", "websocket"],
        "python-socketio[client]==5.* websocket-client",
    );
    let data = tempfile::tempdir().unwrap();
    let srv = server(data.path());
    run_client(
        "python3",
        &["crates/cli/tests/clients/socket_contract.py"],
        &[("CW_BASE_URL", &srv.base), ("CW_API_KEY", KEY)],
        Duration::from_secs(120),
    );
    srv.terminate();
}

#[test]
fn dashboard_end_to_end_in_chromium() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Debian's Chromium is missing: run `make test` (apt-get install chromium)"
    );
    let data = tempfile::tempdir().unwrap();
    let srv = server(data.path());
    let artifacts = repo_root().join("target/e2e-artifacts");
    run_client(
        "node",
        &["dashboard/tests/e2e.mjs"],
        &[
            ("CW_BASE_URL", &srv.base),
            ("CW_API_KEY", KEY),
            ("CW_ARTIFACTS", artifacts.to_str().unwrap()),
        ],
        Duration::from_secs(180),
    );
    srv.terminate();
}
