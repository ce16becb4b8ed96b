//! The notifier Lambda function: SQS batches from the notifications queue.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use changewatch_aws::{AwsConfig, Clients, notifier};
use changewatch_engine::notifications::Dispatcher;
use changewatch_store::NotificationQueue;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    changewatch_engine::process::init_tracing(changewatch_engine::process::LogStyle::LambdaJson);
    let config = AwsConfig::from_env()?;
    let clients = Clients::from_env().await;
    let queue: Arc<dyn NotificationQueue> = Arc::new(
        clients
            .notification_queue(&config)
            .ok_or("CW_NOTIFICATIONS_QUEUE_URL is not set (the SAM template sets it)")?,
    );
    let dispatcher = Arc::new(Dispatcher::from_config(
        Arc::new(clients.store(&config)),
        &config.base,
    )?);
    lambda_runtime::run(service_fn(|ev: LambdaEvent<SqsEvent>| {
        let dispatcher = dispatcher.clone();
        let queue = queue.clone();
        async move {
            Ok::<_, lambda_runtime::Error>(
                notifier::handle_batch(dispatcher, queue, ev.payload).await,
            )
        }
    }))
    .await
}
