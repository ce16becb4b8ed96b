//! The checker function: one SQS batch, checks run concurrently, partial failures reported
//! (`ReportBatchItemFailures`), so one bad message never makes SQS redeliver the whole batch.
//!
//! Idempotent under redelivery: the engine skips a job whose check is already committed (its
//! id or due time), and a watch leased by another checker is reported as failed so that SQS
//! offers it again: just after that lease runs out ([`Redelivery`] shortens the message's
//! visibility), not after the whole visibility timeout (six times the function's), so a manual
//! recheck that meets the lease of a killed checker runs within a minute. A message that is not
//! a job fails every time and ends in the dead-letter queue after the redrive policy's receive
//! count.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use changewatch_engine::checker::{BatchDocs, Checker, JobOutcome, epoch_now};
use changewatch_store::CheckJob;
use tokio::task::JoinSet;
use tracing::{Instrument, info, info_span, warn};

/// What became of one message.
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    Done,
    Retry,
    /// Retry, best just after this time (epoch seconds): a lease held by another checker
    /// runs out then.
    RetryAt(i64),
}

/// Sets when SQS offers a message again, on the queue it came from (found by the name in its
/// `eventSourceARN`): the check queues' messages, for jobs that met a held lease.
#[derive(Clone, Debug)]
pub struct Redelivery {
    sqs: aws_sdk_sqs::Client,
    /// Queue name (the ARN's and the URL's last part) and URL of each check queue.
    queues: Vec<(String, String)>,
}

/// SQS's longest visibility timeout (12 hours).
const MAX_VISIBILITY_SECS: i64 = 43_200;

impl Redelivery {
    pub fn new(sqs: aws_sdk_sqs::Client, queue_urls: &[&str]) -> Self {
        let queues = queue_urls
            .iter()
            .map(|url| {
                let name = url.rsplit('/').next().unwrap_or_default().to_string();
                (name, (*url).to_string())
            })
            .collect();
        Redelivery { sqs, queues }
    }

    /// Makes `msg` visible again `delay_secs` from now (at least one second).
    async fn after(&self, msg: &SqsMessage, delay_secs: i64) -> Result<(), String> {
        let name = msg
            .event_source_arn
            .as_deref()
            .and_then(|arn| arn.rsplit(':').next())
            .ok_or("message without an eventSourceARN")?;
        let url = self
            .queues
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, url)| url)
            .ok_or_else(|| format!("{name} is not a check queue"))?;
        let receipt = msg
            .receipt_handle
            .as_deref()
            .ok_or("message without a receipt handle")?;
        self.sqs
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(delay_secs.clamp(1, MAX_VISIBILITY_SECS) as i32)
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        Ok(())
    }
}

async fn process(
    checker: &Checker,
    body: Option<&str>,
    deadline: Option<i64>,
    docs: &BatchDocs,
) -> Fate {
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
        match checker.run_job_in(&job, deadline, docs).await {
            Ok(JobOutcome::Checked(r)) => {
                info!(status = ?r.status, error = ?r.error, "checked");
                Fate::Done
            }
            Ok(JobOutcome::Skipped(why)) => {
                info!(why, "skipped");
                Fate::Done
            }
            Ok(JobOutcome::Busy {
                lease_until: Some(until),
            }) => {
                info!(
                    lease_until = until,
                    "leased by another checker; retried when the lease ends"
                );
                Fate::RetryAt(until)
            }
            Ok(JobOutcome::Busy { lease_until: None }) => {
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

/// What the function knows about its invocation beyond the batch.
#[derive(Clone, Debug, Default)]
pub struct Invocation {
    /// Sets when a busy watch's message comes back (just after the lease ends).
    pub redelivery: Option<Arc<Redelivery>>,
    /// When Lambda stops the invocation (epoch seconds): no lease outlives it.
    pub deadline: Option<i64>,
}

impl Invocation {
    /// From the runtime's context: its deadline is in epoch milliseconds.
    pub fn new(redelivery: Arc<Redelivery>, deadline_ms: u64) -> Self {
        Invocation {
            redelivery: Some(redelivery),
            deadline: i64::try_from(deadline_ms / 1000).ok(),
        }
    }
}

/// One batch, with the messages of busy watches left to the visibility timeout and leases of
/// the usual length. The checker function uses [`handle_batch_with`].
pub async fn handle_batch(checker: Arc<Checker>, event: SqsEvent) -> SqsBatchResponse {
    handle_batch_with(checker, Invocation::default(), event).await
}

/// One batch of one invocation: leases end by its deadline, and a message whose watch is
/// leased by another checker comes back just after that lease ends.
pub async fn handle_batch_with(
    checker: Arc<Checker>,
    invocation: Invocation,
    event: SqsEvent,
) -> SqsBatchResponse {
    let mut set = JoinSet::new();
    let mut ids = HashMap::new();
    // The batch's checks read the tenant's settings and tags once.
    let docs = Arc::new(BatchDocs::default());
    for msg in event.records {
        let checker = checker.clone();
        let docs = docs.clone();
        let redelivery = invocation.redelivery.clone();
        let deadline = invocation.deadline;
        let id = msg.message_id.clone();
        let handle = set.spawn(async move {
            let fate = process(&checker, msg.body.as_deref(), deadline, &docs).await;
            if let (Fate::RetryAt(until), Some(r)) = (&fate, &redelivery) {
                let delay = until - epoch_now() + 1;
                if let Err(e) = r.after(&msg, delay).await {
                    warn!(error = %e, "could not shorten the redelivery; the visibility timeout applies");
                }
            }
            fate
        });
        if let Some(id) = id {
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
        if fate != Fate::Done
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
