//! The scheduler Lambda function: invoked every minute by EventBridge Scheduler; queues the
//! watches due before the next invocation.

use changewatch_aws::{AwsConfig, Clients, scheduler};
use changewatch_engine::checker::epoch_now;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    changewatch_engine::process::init_tracing(changewatch_engine::process::LogStyle::LambdaJson);
    let config = AwsConfig::from_env()?;
    let clients = Clients::from_env().await;
    let store = clients.store(&config);
    let queue = clients.queue(&config);
    // The schedule's payload carries nothing the tick needs.
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (store, queue) = (&store, &queue);
        async move {
            let deadline = scheduler::deadline_of(event.context.deadline);
            let r = scheduler::run_tick(store, queue, epoch_now(), Some(deadline)).await?;
            Ok::<_, lambda_runtime::Error>(json!({
                "due": r.due,
                "queued": r.queued,
                "recovered": r.recovered,
                "cut_short": r.cut_short,
            }))
        }
    }))
    .await
}
