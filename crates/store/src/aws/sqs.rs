//! `JobQueue` on SQS: a `checks` queue and a `rechecks` queue (manual rechecks, drained first).
//!
//! In AWS mode Lambda's event source mappings consume the queues; `dequeue` exists for tests
//! and tools and deletes what it returns (at-most-once for that path). SQS cannot merge
//! duplicates, list or remove waiting messages: the scheduler's queue marks prevent duplicates
//! and the checker skips jobs that are stale, redelivered or for paused/deleted watches.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};

use super::{backend, sdk_error};
use crate::types::*;
use crate::{JobQueue, NotificationQueue};

/// SQS's batch size limit.
const BATCH: usize = 10;
/// `SendMessageBatch` requests in flight at once per `enqueue`.
const SENDS_AT_ONCE: usize = 8;
/// SQS's largest per-message delay.
const MAX_DELAY_SECS: i64 = 900;

/// Messages waiting in a queue (`ApproximateNumberOfMessages`).
pub const WAITING: QueueAttributeName = QueueAttributeName::ApproximateNumberOfMessages;
/// Received and not yet deleted or released (`ApproximateNumberOfMessagesNotVisible`).
pub const IN_FLIGHT: QueueAttributeName = QueueAttributeName::ApproximateNumberOfMessagesNotVisible;
/// Sent with a delay that has not run out (`ApproximateNumberOfMessagesDelayed`).
pub const DELAYED: QueueAttributeName = QueueAttributeName::ApproximateNumberOfMessagesDelayed;

/// The sum of the approximate counts `attrs` of the queue at `url`: the one reading of queue
/// depth for the ports here and the push service's `queue_size`.
pub async fn approximate_count(
    client: &Client,
    url: &str,
    attrs: &[QueueAttributeName],
) -> Result<usize, StoreError> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .set_attribute_names(Some(attrs.to_vec()))
        .send()
        .await
        .map_err(sdk_error)?;
    let got = out.attributes.unwrap_or_default();
    Ok(attrs
        .iter()
        .filter_map(|name| got.get(name)?.parse::<usize>().ok())
        .sum())
}

#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    checks_url: String,
    rechecks_url: String,
    clock: fn() -> i64,
}

fn epoch_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl SqsQueue {
    pub fn new(client: Client, checks_url: String, rechecks_url: String) -> Self {
        SqsQueue {
            client,
            checks_url,
            rechecks_url,
            clock: epoch_now,
        }
    }

    fn url(&self, lane: Lane) -> &str {
        match lane {
            Lane::Recheck => &self.rechecks_url,
            Lane::Scheduled => &self.checks_url,
        }
    }

    /// Sends jobs with the delay that makes each run at its due time (a scheduler tick queues
    /// what falls due within the next minute), [`SENDS_AT_ONCE`] batches at a time: a tick's
    /// page of hundreds of jobs takes a few round trips, not one per ten jobs.
    async fn send(&self, lane: Lane, jobs: &[CheckJob]) -> Result<(), StoreError> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        let now = (self.clock)();
        let batches = jobs
            .chunks(BATCH)
            .map(|batch| {
                batch
                    .iter()
                    .enumerate()
                    .map(|(i, job)| {
                        let body = serde_json::to_string(job).map_err(backend)?;
                        let delay = (job.due_at - now).clamp(0, MAX_DELAY_SECS);
                        SendMessageBatchRequestEntry::builder()
                            .id(format!("m{i}"))
                            .message_body(body)
                            .delay_seconds(if lane == Lane::Recheck {
                                0
                            } else {
                                delay as i32
                            })
                            .build()
                            .map_err(backend)
                    })
                    .collect::<Result<Vec<_>, StoreError>>()
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let sends: Vec<_> = batches
            .into_iter()
            .map(|entries| {
                let count = entries.len();
                let request = self
                    .client
                    .send_message_batch()
                    .queue_url(self.url(lane))
                    .set_entries(Some(entries));
                async move {
                    let out = request.send().await.map_err(sdk_error)?;
                    match out.failed.first() {
                        Some(f) => Err(backend(format!(
                            "SQS refused {} of {count} messages: {} {}",
                            out.failed.len(),
                            f.code,
                            f.message.as_deref().unwrap_or("")
                        ))),
                        None => Ok(()),
                    }
                }
            })
            .collect();
        stream::iter(sends)
            .buffer_unordered(SENDS_AT_ONCE)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    async fn receive_one(
        &self,
        lane: Lane,
        wait: Duration,
    ) -> Result<Option<CheckJob>, StoreError> {
        let out = self
            .client
            .receive_message()
            .queue_url(self.url(lane))
            .max_number_of_messages(1)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .send()
            .await
            .map_err(sdk_error)?;
        let Some(msg) = out.messages.unwrap_or_default().into_iter().next() else {
            return Ok(None);
        };
        if let Some(handle) = &msg.receipt_handle {
            self.client
                .delete_message()
                .queue_url(self.url(lane))
                .receipt_handle(handle)
                .send()
                .await
                .map_err(sdk_error)?;
        }
        let body = msg.body.unwrap_or_default();
        serde_json::from_str(&body)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("check job message: {e}")))
    }

    async fn count(&self, lane: Lane) -> Result<usize, StoreError> {
        approximate_count(&self.client, self.url(lane), &[WAITING, DELAYED]).await
    }
}

#[async_trait]
impl JobQueue for SqsQueue {
    async fn enqueue(&self, jobs: Vec<CheckJob>) -> Result<(), StoreError> {
        let (rechecks, scheduled): (Vec<CheckJob>, Vec<CheckJob>) =
            jobs.into_iter().partition(|j| j.lane == Lane::Recheck);
        self.send(Lane::Recheck, &rechecks).await?;
        self.send(Lane::Scheduled, &scheduled).await
    }

    async fn dequeue(&self, wait: Duration) -> Result<Option<CheckJob>, StoreError> {
        if let Some(job) = self.receive_one(Lane::Recheck, Duration::ZERO).await? {
            return Ok(Some(job));
        }
        if let Some(job) = self.receive_one(Lane::Scheduled, Duration::ZERO).await? {
            return Ok(Some(job));
        }
        if wait.is_zero() {
            return Ok(None);
        }
        // Long-poll the scheduled lane for the rest of the wait, then look at rechecks again.
        if let Some(job) = self.receive_one(Lane::Scheduled, wait).await? {
            return Ok(Some(job));
        }
        self.receive_one(Lane::Recheck, Duration::ZERO).await
    }

    async fn depth(&self) -> Result<QueueDepth, StoreError> {
        Ok(QueueDepth {
            rechecks: self.count(Lane::Recheck).await?,
            scheduled: self.count(Lane::Scheduled).await?,
        })
    }
}

/// `NotificationQueue` on the `notifications` SQS queue. Retries use the message's own
/// visibility (`ChangeMessageVisibility`), so a backoff needs no second queue. A final failure
/// is sent to the queue's dead-letter queue (found through its redrive policy, once per
/// process) with its reason as a message attribute, then deleted; the redrive policy itself
/// still catches a message whose handler died on every attempt.
#[derive(Clone, Debug)]
pub struct SqsNotificationQueue {
    client: Client,
    url: String,
    dead_letter_url: std::sync::Arc<tokio::sync::OnceCell<String>>,
}

impl SqsNotificationQueue {
    pub fn new(client: Client, url: String) -> Self {
        SqsNotificationQueue {
            client,
            url,
            dead_letter_url: Default::default(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The dead-letter queue named by the queue's redrive policy.
    async fn dead_letter_url(&self) -> Result<&str, StoreError> {
        self.dead_letter_url
            .get_or_try_init(|| async {
                let out = self
                    .client
                    .get_queue_attributes()
                    .queue_url(&self.url)
                    .attribute_names(QueueAttributeName::RedrivePolicy)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                let policy = out
                    .attributes
                    .unwrap_or_default()
                    .remove(&QueueAttributeName::RedrivePolicy)
                    .ok_or_else(|| {
                        backend(format!(
                            "{} has no redrive policy (no dead-letter queue)",
                            self.url
                        ))
                    })?;
                let arn = serde_json::from_str::<serde_json::Value>(&policy)
                    .ok()
                    .and_then(|p| p["deadLetterTargetArn"].as_str().map(str::to_string))
                    .ok_or_else(|| backend(format!("unreadable redrive policy: {policy}")))?;
                // arn:aws:sqs:<region>:<account>:<name>
                let mut parts = arn.rsplitn(3, ':');
                let (Some(name), Some(account)) = (parts.next(), parts.next()) else {
                    return Err(backend(format!("not a queue ARN: {arn}")));
                };
                let out = self
                    .client
                    .get_queue_url()
                    .queue_name(name)
                    .queue_owner_aws_account_id(account)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                out.queue_url
                    .ok_or_else(|| backend(format!("no URL for the dead-letter queue {arn}")))
            })
            .await
            .map(String::as_str)
    }
}

/// SQS's longest visibility timeout (12 hours).
const MAX_VISIBILITY_SECS: u64 = 43_200;

#[async_trait]
impl NotificationQueue for SqsNotificationQueue {
    async fn send(&self, jobs: Vec<NotificationJob>) -> Result<(), StoreError> {
        for batch in jobs.chunks(BATCH) {
            let entries = batch
                .iter()
                .enumerate()
                .map(|(i, job)| {
                    let body = serde_json::to_string(job).map_err(backend)?;
                    SendMessageBatchRequestEntry::builder()
                        .id(format!("n{i}"))
                        .message_body(body)
                        .build()
                        .map_err(backend)
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(sdk_error)?;
            if let Some(f) = out.failed.first() {
                return Err(backend(format!(
                    "SQS refused {} of {} notifications: {} {}",
                    out.failed.len(),
                    batch.len(),
                    f.code,
                    f.message.as_deref().unwrap_or("")
                )));
            }
        }
        Ok(())
    }

    async fn receive(
        &self,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<ReceivedNotification>, StoreError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, BATCH) as i32)
            .visibility_timeout(lease.as_secs().clamp(1, MAX_VISIBILITY_SECS) as i32)
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
            )
            .send()
            .await
            .map_err(sdk_error)?;
        out.messages
            .unwrap_or_default()
            .into_iter()
            .map(|msg| {
                let attempt = msg
                    .attributes
                    .as_ref()
                    .and_then(|a| {
                        a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                    })
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                let job = serde_json::from_str(msg.body.as_deref().unwrap_or_default())
                    .map_err(|e| StoreError::Corrupt(format!("notification message: {e}")))?;
                Ok(ReceivedNotification {
                    job,
                    receipt: msg.receipt_handle.unwrap_or_default(),
                    attempt,
                })
            })
            .collect()
    }

    async fn ack(&self, receipt: &str) -> Result<(), StoreError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn dead_letter(
        &self,
        rec: &ReceivedNotification,
        reason: &str,
    ) -> Result<(), StoreError> {
        let url = self.dead_letter_url().await?;
        let body = serde_json::to_string(&rec.job).map_err(backend)?;
        let text = |v: String| {
            aws_sdk_sqs::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(backend)
        };
        // SQS attribute values must not be empty and are capped with the message at 256 KiB.
        let reason: String = match reason.trim() {
            "" => "failed".to_string(),
            r => r.chars().take(4096).collect(),
        };
        self.client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .message_attributes("reason", text(reason)?)
            .message_attributes("attempts", text(rec.attempt.to_string())?)
            .send()
            .await
            .map_err(sdk_error)?;
        self.ack(&rec.receipt).await
    }

    async fn dead_letter_depth(&self) -> Result<usize, StoreError> {
        let url = self.dead_letter_url().await?;
        approximate_count(&self.client, url, &[WAITING, IN_FLIGHT]).await
    }

    async fn retry_after(&self, receipt: &str, delay: Duration) -> Result<(), StoreError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(delay.as_secs().min(MAX_VISIBILITY_SECS) as i32)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn depth(&self) -> Result<usize, StoreError> {
        approximate_count(&self.client, &self.url, &[WAITING, IN_FLIGHT, DELAYED]).await
    }
}
