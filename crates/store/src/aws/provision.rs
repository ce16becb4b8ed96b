//! Creates the tables and queues the SAM template declares (`infra/template.yaml`), for tests
//! and local runs against an emulator. Production resources come from the template, never
//! from here.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use super::{AwsResources, backend, sdk_error};
use crate::StoreError;

/// Everything one deployment's names point at, plus the notifications queue and the DLQs.
#[derive(Clone, Debug)]
pub struct Provisioned {
    pub resources: AwsResources,
    pub notifications_queue_url: String,
    pub checks_dlq_url: String,
    pub rechecks_dlq_url: String,
    pub notifications_dlq_url: String,
}

fn key(name: &str, t: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(t)
        .build()
        .map_err(backend)
}

fn attr(name: &str, t: ScalarAttributeType) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(t)
        .build()
        .map_err(backend)
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: HashMap<QueueAttributeName, String>,
) -> Result<String, StoreError> {
    let out = sqs
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes))
        .send()
        .await
        .map_err(sdk_error)?;
    out.queue_url
        .ok_or_else(|| StoreError::backend(format!("queue {name}: no URL")))
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, StoreError> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(sdk_error)?;
    out.attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| StoreError::backend(format!("queue {url}: no ARN")))
}

/// A queue with its dead-letter queue; a message received `max_receives` times moves there.
async fn queue_with_dlq(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    visibility_secs: u32,
    max_receives: u32,
) -> Result<(String, String), StoreError> {
    let dlq = create_queue(sqs, &format!("{name}-dlq"), HashMap::new()).await?;
    let dlq_arn = queue_arn(sqs, &dlq).await?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": max_receives,
    })
    .to_string();
    let url = create_queue(
        sqs,
        name,
        HashMap::from([
            (QueueAttributeName::RedrivePolicy, redrive),
            (
                QueueAttributeName::VisibilityTimeout,
                visibility_secs.to_string(),
            ),
        ]),
    )
    .await?;
    Ok((url, dlq))
}

/// Creates `<prefix>-watches`, `<prefix>-snapshots` and the three queues with their DLQs.
pub async fn provision(
    ddb: &aws_sdk_dynamodb::Client,
    sqs: &aws_sdk_sqs::Client,
    prefix: &str,
    due_shards: u32,
    visibility_secs: u32,
    max_receives: u32,
) -> Result<Provisioned, StoreError> {
    let watches = format!("{prefix}-watches");
    let snapshots = format!("{prefix}-snapshots");
    let due = GlobalSecondaryIndex::builder()
        .index_name("due")
        .key_schema(key("due_shard", KeyType::Hash)?)
        .key_schema(key("next_check_at", KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        )
        .build()
        .map_err(backend)?;
    ddb.create_table()
        .table_name(&watches)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .attribute_definitions(attr("pk", ScalarAttributeType::S)?)
        .attribute_definitions(attr("sk", ScalarAttributeType::S)?)
        .attribute_definitions(attr("due_shard", ScalarAttributeType::S)?)
        .attribute_definitions(attr("next_check_at", ScalarAttributeType::N)?)
        .global_secondary_indexes(due)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(backend)?,
        )
        .send()
        .await
        .map_err(sdk_error)?;
    ddb.create_table()
        .table_name(&snapshots)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .attribute_definitions(attr("pk", ScalarAttributeType::S)?)
        .attribute_definitions(attr("sk", ScalarAttributeType::S)?)
        .send()
        .await
        .map_err(sdk_error)?;
    // Notification log entries expire (the template's TimeToLiveSpecification).
    ddb.update_time_to_live()
        .table_name(&snapshots)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(crate::aws::dynamo::LOG_TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .map_err(backend)?,
        )
        .send()
        .await
        .map_err(sdk_error)?;
    let (checks, checks_dlq) = queue_with_dlq(
        sqs,
        &format!("{prefix}-checks"),
        visibility_secs,
        max_receives,
    )
    .await?;
    let (rechecks, rechecks_dlq) = queue_with_dlq(
        sqs,
        &format!("{prefix}-rechecks"),
        visibility_secs,
        max_receives,
    )
    .await?;
    let (notifications, notifications_dlq) = queue_with_dlq(
        sqs,
        &format!("{prefix}-notifications"),
        visibility_secs,
        max_receives,
    )
    .await?;
    Ok(Provisioned {
        resources: AwsResources {
            watches_table: watches,
            snapshots_table: snapshots,
            checks_queue_url: checks,
            rechecks_queue_url: rechecks,
            due_shards,
        },
        notifications_queue_url: notifications,
        checks_dlq_url: checks_dlq,
        rechecks_dlq_url: rechecks_dlq,
        notifications_dlq_url: notifications_dlq,
    })
}
