//! The push service: `changewatch-push-service` (see `changewatch_aws::push`).

use changewatch_aws::{AwsConfig, Clients, push};
use changewatch_push::web::find_dashboard;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    // Logs on stderr: stdout carries only the "listening on" line scripts wait for.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOG_LEVEL")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = match AwsConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("changewatch-push-service: {e}");
            return ExitCode::from(2);
        }
    };
    let clients = Clients::from_env().await;
    let addr = format!("{}:{}", config.base.host, config.base.port);
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("changewatch-push-service: cannot listen on {addr}: {e}");
            return ExitCode::from(1);
        }
    };
    if let Ok(a) = listener.local_addr() {
        // On stdout so that scripts and tests can find a port chosen with 0.
        println!("changewatch-push-service listening on http://{a}");
    }
    let dashboard = find_dashboard(config.base.dashboard_dir.as_deref());
    let shutdown = async {
        let ctrl_c = tokio::signal::ctrl_c();
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = ctrl_c => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    };
    match push::serve(&clients, &config, listener, dashboard.as_deref(), shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("changewatch-push-service: {e}");
            ExitCode::from(1)
        }
    }
}
