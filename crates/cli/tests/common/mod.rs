//! The real `changewatch serve` binary on a free port, for the tests that drive it as a user
//! (or a browser, or a socket client) would.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test support

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Server {
    pub child: Child,
    pub base: String,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(data: &Path, api_key: Option<&str>) -> Server {
        Self::start_with(data, api_key, &[])
    }

    /// With extra environment variables.
    pub fn start_with(data: &Path, api_key: Option<&str>, env: &[(&str, &str)]) -> Server {
        Self::launch(data, "127.0.0.1", api_key, env)
    }

    /// Listening on `host` (tests connect over loopback only).
    pub fn start_on(data: &Path, host: &str, env: &[(&str, &str)]) -> Server {
        Self::launch(data, host, None, env)
    }

    fn launch(data: &Path, host: &str, api_key: Option<&str>, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_changewatch"));
        cmd.envs(env.iter().copied());
        cmd.args(["serve", "--host", host, "--port", "0"])
            .env("DATASTORE_PATH", data)
            .env("ALLOW_PRIVATE_ADDRESSES", "true")
            // Refused connections are retried with upstream's waits (1, 2, 4, 8, 16 s), which
            // crates/core/tests/fetch.rs covers; here a dead site's error must show at once.
            .env("REQUESTS_RETRY_BACKOFF_FACTOR", "0.01")
            .env("WEBDRIVER_DELAY_BEFORE_CONTENT_READY", "0")
            .env("FETCH_WORKERS", "2")
            .env("LOG_LEVEL", "info")
            .env_remove("API_ACCESS_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(k) = api_key {
            cmd.env("API_ACCESS_TOKEN", k);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("changewatch listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line {line:?}; stderr: {:?}",
                    stderr.lock().unwrap()
                )
            })
            .to_string();
        std::thread::spawn(move || for _ in out.lines() {});
        Server {
            child,
            base,
            stderr,
        }
    }

    pub fn logged_api_key(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(k) = self.stderr.lock().unwrap().iter().find_map(|l| {
                l.split("API key (x-api-key header): ")
                    .nth(1)
                    .map(|k| k.trim().to_string())
            }) {
                return k;
            }
            assert!(Instant::now() < deadline, "the API key is logged at start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn terminate(mut self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "graceful shutdown exits 0, got {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    /// A test that failed still stops its server gracefully first: a SIGKILLed server leaves
    /// the Chromium it launched running (holding the test's inherited file descriptors).
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The repository root (the dashboard, its node_modules and the client scripts live there).
pub fn repo_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs a client program (a Node or Python test script) to completion and fails the test with
/// its whole output unless it exits 0. Bounded: a hung client is killed after `limit`.
pub fn run_client(program: &str, args: &[&str], env: &[(&str, &str)], limit: Duration) {
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(repo_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} (installed by `make test`): {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = out_t.join().unwrap();
    let stderr = err_t.join().unwrap();
    println!("{stdout}");
    eprintln!("{stderr}");
    match status {
        Some(s) if s.success() => {}
        Some(s) => {
            panic!("{program} {args:?} failed ({s})\n--- stdout\n{stdout}\n--- stderr\n{stderr}")
        }
        None => panic!(
            "{program} {args:?} did not finish within {limit:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        ),
    }
}

/// The REST API of a running server, with its key.
pub struct Api {
    pub base: String,
    pub key: String,
    pub http: reqwest::blocking::Client,
}

impl Api {
    pub fn new(base: &str, key: &str) -> Api {
        Api {
            base: base.to_string(),
            key: key.to_string(),
            http: reqwest::blocking::Client::new(),
        }
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("x-api-key", &self.key)
            .send()
            .unwrap();
        (r.status().as_u16(), r.json().unwrap_or(Value::Null))
    }

    pub fn create(&self, body: Value) -> String {
        let r = self
            .http
            .post(format!("{}/api/v1/watch", self.base))
            .header("x-api-key", &self.key)
            .json(&body)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().unwrap_or(Value::Null);
        assert_eq!(status, 201, "{body}");
        body["uuid"].as_str().unwrap().to_string()
    }

    /// Polls a watch until `pred` holds (bounded: 30 s).
    pub fn wait_for(&self, uuid: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, w) = self.get(&format!("/api/v1/watch/{uuid}"));
            if pred(&w) {
                return w;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; watch is {w}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
