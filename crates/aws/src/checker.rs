//! The checker function: one SQS batch, checks run concurrently, partial failures reported
//! (`ReportBatchItemFailures`), so one bad message never makes SQS redeliver the whole batch.
//!
//! Idempotent under redelivery: the engine skips a job whose check is already committed (its
//! id or due time), and a watch leased by another checker is reported as failed so that SQS
//! offers it again after the visibility timeout. A message that is not a job fails every time
//! and ends in the dead-letter queue after the redrive policy's receive count.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use changewatch_engine::checker::{Checker, JobOutcome};
use changewatch_store::CheckJob;
use tokio::task::JoinSet;
use tracing::{Instrument, info, info_span, warn};

/// What became of one message.
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    Done,
    Retry,
}

async fn process(checker: &Checker, body: Option<&str>) -> Fate {
    let Some(body) = body else {
        warn!("SQS message without a body");
        return Fate::Retry;
    };
    let job: CheckJob = match serde_json::from_str(body) {
        Ok(j) => j,
        Err(e) => {
            warn!(error = %e, "not a check job; it will end in the dead-letter queue");
            return Fate::Retry;
        }
    };
    let span = info_span!("check", watch_id = %job.watch_id, job_id = %job.id);
    async {
        match checker.run_job(&job).await {
            Ok(JobOutcome::Checked(r)) => {
                info!(status = ?r.status, error = ?r.error, "checked");
                Fate::Done
            }
            Ok(JobOutcome::Skipped(why)) => {
                info!(why, "skipped");
                Fate::Done
            }
            Ok(JobOutcome::Busy) => {
                info!("leased by another checker; retried after the visibility timeout");
                Fate::Retry
            }
            Err(e) => {
                warn!(error = %e, "check failed; SQS will redeliver it");
                Fate::Retry
            }
        }
    }
    .instrument(span)
    .await
}

pub async fn handle_batch(checker: Arc<Checker>, event: SqsEvent) -> SqsBatchResponse {
    let mut set = JoinSet::new();
    let mut ids = HashMap::new();
    for msg in event.records {
        let checker = checker.clone();
        let handle = set.spawn(async move { process(&checker, msg.body.as_deref()).await });
        if let Some(id) = msg.message_id {
            ids.insert(handle.id(), id);
        }
    }
    let mut failures = Vec::new();
    while let Some(res) = set.join_next_with_id().await {
        let (task, fate) = match res {
            Ok((task, fate)) => (task, fate),
            // A check that panicked is retried like one that failed.
            Err(e) => {
                warn!(error = %e, "a check task failed");
                (e.id(), Fate::Retry)
            }
        };
        if fate == Fate::Retry
            && let Some(id) = ids.remove(&task)
        {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            failures.push(f);
        }
    }
    let mut resp = SqsBatchResponse::default();
    resp.batch_item_failures = failures;
    resp
}
