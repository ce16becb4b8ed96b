//! The notifier function: one SQS batch from the `notifications` queue, deliveries run
//! concurrently, each message's fate reported on its own (`ReportBatchItemFailures`).
//!
//! A failed delivery that may pass is hidden for its backoff (`ChangeMessageVisibility`) and
//! reported as failed, so SQS offers it again when the backoff ends; its receive count is the
//! attempt number. A final failure (the last attempt, or a permanent error such as an unusable
//! URL or a 4xx answer) is recorded (log, watch) and settled with the queue's `dead_letter`:
//! sent to the dead-letter queue with its reason, and deleted. If that fails the message is
//! reported as failed, and the redrive policy (its `maxReceiveCount` equals the attempts) still
//! moves it there in the end.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use changewatch_engine::notifications::{Dispatcher, Verdict};
use changewatch_store::{NotificationJob, NotificationQueue, ReceivedNotification};
use tokio::task::JoinSet;
use tracing::{Instrument, info_span, warn};

/// Whether SQS should offer the message again (as a retry, or on its way to the DLQ).
async fn process(dispatcher: &Dispatcher, queue: &dyn NotificationQueue, msg: &SqsMessage) -> bool {
    let Some(receipt) = msg.receipt_handle.clone() else {
        warn!("SQS message without a receipt handle");
        return true;
    };
    let job: NotificationJob = match msg.body.as_deref().map(serde_json::from_str) {
        Some(Ok(job)) => job,
        Some(Err(e)) => {
            warn!(error = %e, "not a notification job; it will end in the dead-letter queue");
            return true;
        }
        None => {
            warn!("SQS message without a body");
            return true;
        }
    };
    let attempt = msg
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let span = info_span!(
        "notification",
        watch_id = job.watch_id.as_deref().unwrap_or(""),
        job = %job.id,
        attempt
    );
    let rec = ReceivedNotification {
        job,
        receipt,
        attempt,
    };
    async {
        match dispatcher.attempt(&rec).await {
            Verdict::Delivered => false,
            Verdict::Retry(wait) => {
                if let Err(e) = queue.retry_after(&rec.receipt, wait).await {
                    warn!(error = %e, "could not set the retry delay; the visibility timeout applies");
                }
                true
            }
            Verdict::Failed(reason) => match queue.dead_letter(&rec, &reason).await {
                Ok(()) => false,
                Err(e) => {
                    warn!(error = %e, "could not dead-letter the failed notification");
                    true
                }
            },
        }
    }
    .instrument(span)
    .await
}

pub async fn handle_batch(
    dispatcher: Arc<Dispatcher>,
    queue: Arc<dyn NotificationQueue>,
    event: SqsEvent,
) -> SqsBatchResponse {
    let mut set = JoinSet::new();
    let mut ids = HashMap::new();
    for msg in event.records {
        let dispatcher = dispatcher.clone();
        let queue = queue.clone();
        let id = msg.message_id.clone();
        let handle = set.spawn(async move { process(&dispatcher, queue.as_ref(), &msg).await });
        if let Some(id) = id {
            ids.insert(handle.id(), id);
        }
    }
    let mut failures = Vec::new();
    while let Some(res) = set.join_next_with_id().await {
        let (task, again) = match res {
            Ok(v) => v,
            Err(e) => {
                warn!(error = %e, "a notification task failed");
                (e.id(), true)
            }
        };
        if again && let Some(id) = ids.remove(&task) {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            failures.push(f);
        }
    }
    let mut resp = SqsBatchResponse::default();
    resp.batch_item_failures = failures;
    resp
}
