//! The api Lambda function: the REST API v1 over DynamoDB and SQS, behind an HTTP API.

use changewatch_aws::{AwsConfig, Clients, api};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOG_LEVEL")
                .unwrap_or_else(|_| "info".into()),
        )
        .without_time()
        .init();
    let config = AwsConfig::from_env()?;
    let clients = Clients::from_env().await;
    let app = api::app(&clients, &config).await?;
    lambda_http::run(app).await
}
