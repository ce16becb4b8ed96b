//! The checker Lambda function: SQS batches from the checks and rechecks queues.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use changewatch_aws::{AwsConfig, Clients, checker};
use changewatch_sandbox::{Sandbox, SandboxConfig};
use lambda_runtime::{LambdaEvent, service_fn};

fn main() -> Result<(), lambda_runtime::Error> {
    // Filters, rules and templates run in children of this executable (see below).
    changewatch_sandbox::run_child_if_requested();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<(), lambda_runtime::Error> {
    changewatch_engine::process::init_tracing(changewatch_engine::process::LogStyle::LambdaJson);
    let config = AwsConfig::from_env()?;
    let clients = Clients::from_env().await;
    // No more children at once than the function's memory holds (see `CheckerSizing`).
    let sandbox = Sandbox::child_process(SandboxConfig::current_exe(
        &config.checker_sandbox_limits(),
    )?);
    // One execution environment runs one batch at a time: its id is a unique owner.
    let owner = format!("lambda-{}", std::process::id())
        + &std::env::var("AWS_LAMBDA_LOG_STREAM_NAME").unwrap_or_default();
    let checker = Arc::new(clients.checker(&config, owner, sandbox)?);
    let redelivery = Arc::new(clients.redelivery(&config));
    lambda_runtime::run(service_fn(|ev: LambdaEvent<SqsEvent>| {
        let (checker, redelivery) = (checker.clone(), redelivery.clone());
        async move {
            let invocation = checker::Invocation::new(redelivery, ev.context.deadline);
            Ok::<_, lambda_runtime::Error>(
                checker::handle_batch_with(checker, invocation, ev.payload).await,
            )
        }
    }))
    .await
}
