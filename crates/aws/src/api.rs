//! The api function: the same axum router as embedded mode, over DynamoDB and SQS.

use changewatch_api::{AppState, bootstrap};
use changewatch_sandbox::Sandbox;
use changewatch_store::StoreError;

use crate::{AwsConfig, Clients};

/// The router with its state, after making sure the tenant's settings exist (a new deployment
/// generates its API key on the first cold start and logs it once, as embedded mode does).
/// `sandbox` renders users' templates (test notifications): the function's own executable in
/// a child process, so a template cannot exhaust the invocation's memory.
pub async fn app(
    clients: &Clients,
    config: &AwsConfig,
    sandbox: Sandbox,
) -> Result<axum::Router, StoreError> {
    let state: AppState = clients.app_state(config, sandbox);
    bootstrap::ensure_settings(
        state.store.as_ref(),
        &config.tenant,
        config.base.api_access_token.as_deref(),
        Some(config.base.request_timeout.as_secs()),
    )
    .await?;
    Ok(changewatch_api::router(state))
}
