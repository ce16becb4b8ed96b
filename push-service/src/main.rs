//! The push service: `changewatch-push-service` (see `changewatch_aws::push`).

use changewatch_aws::{AwsConfig, Clients, push};
use changewatch_engine::process::{LogStyle, init_tracing, shutdown_signal};
use changewatch_push::web::find_dashboard;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing(LogStyle::Text {
        default_level: "info",
    });
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
    match push::serve(
        &clients,
        &config,
        listener,
        dashboard.as_deref(),
        shutdown_signal(),
    )
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("changewatch-push-service: {e}");
            ExitCode::from(1)
        }
    }
}
