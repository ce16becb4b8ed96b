//! The AWS adapters: DynamoDB for [`WatchStore`](crate::WatchStore), SQS for
//! [`JobQueue`](crate::JobQueue), DynamoDB Streams for [`ChangeFeed`](crate::ChangeFeed).
//!
//! They talk to whatever endpoint the SDK's standard configuration names (`AWS_ENDPOINT_URL`,
//! region, credentials): AWS itself, LocalStack, or the emulator the tests start. Nothing here
//! knows which.
//!
//! - [`codec`]: items ↔ DynamoDB attribute maps (one layout for the table and its stream).
//! - [`expr`]: a small builder for update/condition expressions and their placeholders.
//! - [`dynamo`]: `DynamoStore` (the `Watches` and `Snapshots` tables).
//! - [`sqs`]: `SqsQueue` (the `checks` and `rechecks` queues).
//! - [`streams`]: `StreamFeed` (the `Watches` table's stream, all shards, lineage, re-iteration).
//! - [`provision`]: creates the tables and queues as the SAM template does, for tests and local
//!   runs against an emulator.

pub mod codec;
pub mod dynamo;
pub mod expr;
pub mod provision;
pub mod sqs;
pub mod streams;

pub use dynamo::DynamoStore;
pub use sqs::{SqsNotificationQueue, SqsQueue};
pub use streams::{FeedHealth, StartAt, StreamFeed};

/// Names of the resources one deployment uses (the functions read them from the environment).
#[derive(Clone, Debug)]
pub struct AwsResources {
    pub watches_table: String,
    pub snapshots_table: String,
    pub checks_queue_url: String,
    pub rechecks_queue_url: String,
    /// Partitions of the sparse `due` index: more shards spread the scheduler's per-minute
    /// queries over more partitions (no hot key), at one Query per shard per tick.
    pub due_shards: u32,
}

pub(crate) fn backend(e: impl std::fmt::Display) -> crate::StoreError {
    crate::StoreError::backend(e.to_string())
}

/// An SDK error with its whole chain in the message (its `Display` alone is often just
/// "service error"), and the error itself kept as the source.
pub(crate) fn sdk_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> crate::StoreError {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    crate::StoreError::Backend {
        message,
        source: Some(Box::new(e)),
    }
}
