//! The AWS emulator the aws adapters are tested against: moto in server mode (pip
//! `moto[server]`), which speaks the DynamoDB, DynamoDB Streams and SQS wire protocols.
//!
//! One server per test process, started on first use on a free loopback port. It is launched
//! under a small shell watchdog that ends it when the test process goes away, so no emulator
//! outlives a test run. Tests keep apart by giving their tables and queues unique names.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct MotoServer {
    /// `http://127.0.0.1:<port>`: what `AWS_ENDPOINT_URL` is set to.
    pub endpoint: String,
}

static SHARED: OnceLock<Result<MotoServer, String>> = OnceLock::new();

/// The region every test client and resource uses.
pub const REGION: &str = "us-east-1";

impl MotoServer {
    /// What every test's AWS SDK clients are built from: this emulator's endpoint, [`REGION`],
    /// fixed test credentials (moto accepts any).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "test", "test", None, None, "tests",
            ))
            .load()
            .await
    }

    /// The process's emulator, started on first call. Panics with what to install when moto
    /// cannot be started (`make test` installs it).
    pub fn shared() -> &'static MotoServer {
        crate::setup::require_python_modules(&["moto.server", "flask_cors"], "moto[server]==5.*");
        match SHARED.get_or_init(start) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn start() -> Result<MotoServer, String> {
    let port = free_port()?;
    let parent = std::process::id();
    // The watchdog polls for the test process and stops moto when it is gone.
    let script = format!(
        "python3 -m moto.server -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
         while kill -0 {parent} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 1; done; kill $m 2>/dev/null"
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the moto emulator: {e}"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(MotoServer {
                endpoint: format!("http://127.0.0.1:{port}"),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(
        "moto did not start within 60 s: is `moto[server]` installed? (`make test` installs it: \
         python3 -m pip install 'moto[server]')"
            .into(),
    )
}

/// A prefix for table and queue names that no other test uses, in this process (a counter) or
/// in another one running at the same time on the shared emulator (the clock).
pub fn unique_prefix(tag: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() % 1_000_000_000_000);
    format!("{tag}{nanos}x{}", NEXT.fetch_add(1, Ordering::Relaxed))
}
