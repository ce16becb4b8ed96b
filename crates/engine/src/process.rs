//! What every changewatch process sets up the same way: its logs and its stop signal (and,
//! for the long-running server, its allocator's arenas). The binaries (`changewatch`, the
//! Lambda functions, the push service) call these instead of each writing its own, so a
//! change of log format or signal handling happens once.

use tracing::warn;
use tracing_subscriber::EnvFilter;

/// glibc's malloc gives every thread that allocates an arena of its own (up to eight per
/// core) and keeps what was freed there for that arena: a server whose checks run on the
/// runtime's threads and its blocking pool holds several times the memory it uses (bench
/// figures in bench/README.md). `MALLOC_ARENA_MAX` is read only when a process starts, so a
/// process started without it re-executes itself once with it set to `arenas` (same pid,
/// arguments and environment otherwise; a value the user set is kept). Returns only when it
/// did not re-execute: already set, or the exec failed (then it runs on, untuned). Call it
/// first thing in `main`, before any thread exists.
#[cfg(unix)]
pub fn limit_malloc_arenas(arenas: u32) {
    use std::os::unix::process::CommandExt;
    const VAR: &str = "MALLOC_ARENA_MAX";
    if std::env::var_os(VAR).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    let err = command.args(args).env(VAR, arenas.to_string()).exec();
    eprintln!("could not restart with {VAR}={arenas} ({err}); running with glibc's default");
}

/// Hands the pages glibc's malloc holds free back to the kernel; true when some were.
/// glibc keeps what a burst of checks freed inside its arenas (a 5,000-watch round left
/// ~3.5 MB, bench/README.md, ninth session) and only gives back the top of a heap by itself:
/// the embedded pool calls this once it has gone idle. Elsewhere (another libc) it does nothing.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn trim_heap() -> bool {
    // SAFETY: malloc_trim takes a plain integer (the bytes to leave at each heap's top) and
    // has no preconditions; it takes each arena's lock itself, so any thread may call it.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Hands free heap pages back to the kernel; true when some were (not on this libc: false).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim_heap() -> bool {
    false
}

/// How a process writes its logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogStyle {
    /// Human-readable lines on stderr (stdout is kept for the "listening on" line scripts
    /// and tests wait for); `default_level` applies unless `LOG_LEVEL` says otherwise.
    Text { default_level: &'static str },
    /// One JSON object per line without a timestamp: Lambda's log service adds its own, and
    /// CloudWatch Logs Insights reads the fields.
    LambdaJson,
}

/// Installs the global subscriber. `LOG_LEVEL` takes `tracing`'s filter syntax
/// (`info`, `changewatch_engine=debug,warn`).
pub fn init_tracing(style: LogStyle) {
    match style {
        LogStyle::Text { default_level } => tracing_subscriber::fmt()
            .with_env_filter(
                EnvFilter::try_from_env("LOG_LEVEL")
                    .unwrap_or_else(|_| EnvFilter::new(default_level)),
            )
            .with_writer(std::io::stderr)
            .init(),
        LogStyle::LambdaJson => tracing_subscriber::fmt()
            .json()
            .with_env_filter(
                EnvFilter::try_from_env("LOG_LEVEL").unwrap_or_else(|_| EnvFilter::new("info")),
            )
            .without_time()
            .init(),
    }
}

/// Resolves on SIGINT (ctrl-c) or SIGTERM (what systemd, Docker, ECS and Kubernetes send).
/// A signal that cannot be listened for is logged and never resolves, rather than stopping
/// the process at once.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            warn!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
