//! AWS mode's logic, shared by the Lambda functions and the push service (whose `main.rs`
//! files only wire it to their runtimes).
//!
//! - [`config`]: `AwsConfig`, the environment of every AWS-mode process (resource names on top
//!   of the shared `changewatch_core::Config`), and the SDK clients built from it.
//! - [`api`]: the REST API over DynamoDB and SQS (served by `lambda_http` in the api function).
//! - [`scheduler`]: one EventBridge tick: queue everything due within the next minute.
//! - [`checker`]: one SQS batch: checks run concurrently, failures reported per message.
//! - [`notifier`]: one SQS batch of notification jobs: deliveries, backoff, dead-letter queue.
//! - [`push`]: the push service: the stream → Socket.IO, the dashboard, `/healthz`.
//! - [`admin`]: operator commands against a deployed stack (`changewatch-aws-admin`, in
//!   `src/bin`): an upstream datastore into DynamoDB, past API Gateway's size and time limits.

pub mod admin;
pub mod api;
pub mod checker;
pub mod config;
pub mod notifier;
pub mod push;
pub mod scheduler;

pub use config::{AwsConfig, Clients};
