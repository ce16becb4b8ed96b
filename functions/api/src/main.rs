//! The api Lambda function: the REST API v1 over DynamoDB and SQS, behind an HTTP API.

use changewatch_aws::{AwsConfig, Clients, api};
use changewatch_sandbox::{Sandbox, SandboxConfig};

fn main() -> Result<(), lambda_http::Error> {
    // Test notifications' templates render in children of this executable (see below).
    changewatch_sandbox::run_child_if_requested();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<(), lambda_http::Error> {
    changewatch_engine::process::init_tracing(changewatch_engine::process::LogStyle::LambdaJson);
    let config = AwsConfig::from_env()?;
    let clients = Clients::from_env().await;
    let sandbox = Sandbox::child_process(SandboxConfig::current_exe(&config.base.sandbox)?);
    let app = api::app(&clients, &config, sandbox).await?;
    lambda_http::run(app).await
}
