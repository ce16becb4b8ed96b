//! One emulated deployment of `infra/template.yaml` per test: fresh moto tables and queues
//! (unique names, so tests run side by side), the template resolved against them with the
//! test's parameter values, and the functions, HTTP API, event source mappings, schedule and
//! push service built from that resolution.
//!
//! One deliberate difference from a deployment: the check queues' visibility timeout is
//! [`VISIBILITY_SECS`] instead of the template's six times the checker timeout (minutes), so
//! that redeliveries happen within a test. Everything the processes read comes from the
//! template.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_sqs::types::QueueAttributeName;
use changewatch_store::aws::DynamoStore;
use changewatch_store::aws::provision::{Provisioned, provision};
use serde_json::Value;
use testkit::moto::MotoServer;

use crate::binaries;
use crate::events::{EventSource, scheduler_event};
use crate::gateway::Gateway;
use crate::push::PushService;
use crate::runtime::Function;
use crate::template::{ACCOUNT_ID, Deployment, EventSpec, REGION, Resources, STACK_NAME, Template};

/// The check queues' visibility timeout in the tests (see the module's doc).
pub const VISIBILITY_SECS: u32 = 2;

/// What `!GetAtt LoadBalancer.DNSName` resolves to: the dashboard's public name.
pub const LOAD_BALANCER_DNS: &str = "localhost";

/// The queues `provision` creates, by the template's logical id.
const QUEUES: [&str; 6] = [
    "ChecksQueue",
    "RechecksQueue",
    "NotificationsQueue",
    "ChecksDeadLetterQueue",
    "RechecksDeadLetterQueue",
    "NotificationsDeadLetterQueue",
];

/// A deployed stack on the emulator.
#[derive(Debug)]
pub struct Stack {
    /// moto's endpoint (`AWS_ENDPOINT_URL`).
    pub endpoint: String,
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub provisioned: Provisioned,
    pub deployment: Deployment,
    /// Queue URL by logical id.
    queues: BTreeMap<String, String>,
}

fn must<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e}"),
    }
}

impl Stack {
    /// Provisions fresh resources and resolves the template with `parameters` (overrides;
    /// the network parameters, which no process reads, get placeholders when not given).
    ///
    /// # Panics
    /// When moto cannot be reached or the template cannot be resolved (the message names the
    /// variable, parameter or resource).
    pub async fn deploy(parameters: &[(&str, &str)]) -> Stack {
        let moto = MotoServer::shared();
        let conf = moto.sdk_config().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&conf);
        let sqs = aws_sdk_sqs::Client::new(&conf);
        let mut overrides: Vec<(&str, &str)> = parameters.to_vec();
        for (name, value) in [
            ("VpcId", "vpc-0e2e0e2e"),
            ("SubnetIds", "subnet-0e2e0001,subnet-0e2e0002"),
        ] {
            if !overrides.iter().any(|(n, _)| *n == name) {
                overrides.push((name, value));
            }
        }
        let template = must(Template::load(), "template");
        // The parameters the resources need, before there are resources.
        let params = must(
            Deployment::new(template.clone(), &overrides, Resources::default()),
            "parameters",
        );
        let number = |name: &str| -> u32 {
            let v = must(params.parameter(name), "parameter");
            must(v.parse::<u32>(), name)
        };
        let provisioned = must(
            provision(
                &dynamodb,
                &sqs,
                &testkit::moto::unique_prefix("e2e"),
                number("DueShards"),
                VISIBILITY_SECS,
                number("MaxReceiveCount"),
            )
            .await,
            "provisioning on moto",
        );
        let p = &provisioned;
        let urls = [
            &p.resources.checks_queue_url,
            &p.resources.rechecks_queue_url,
            &p.notifications_queue_url,
            &p.checks_dlq_url,
            &p.rechecks_dlq_url,
            &p.notifications_dlq_url,
        ];
        let table_arn = |name: &str| format!("arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}");
        let mut resources = Resources::default()
            .with_ref("WatchesTable", &p.resources.watches_table)
            .with_attribute("WatchesTable.Arn", table_arn(&p.resources.watches_table))
            .with_ref("SnapshotsTable", &p.resources.snapshots_table)
            .with_attribute(
                "SnapshotsTable.Arn",
                table_arn(&p.resources.snapshots_table),
            )
            .with_attribute("LoadBalancer.DNSName", LOAD_BALANCER_DNS);
        let mut queues = BTreeMap::new();
        for (id, url) in QUEUES.iter().zip(urls) {
            let arn = must(
                sqs.get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(QueueAttributeName::QueueArn)
                    .send()
                    .await
                    .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
                    .and_then(|out| {
                        out.attributes
                            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
                            .ok_or_else(|| format!("{url} has no ARN"))
                    }),
                "queue ARN",
            );
            let name = arn.rsplit(':').next().unwrap_or_default().to_string();
            resources = resources
                .with_ref(id, url.as_str())
                .with_attribute(&format!("{id}.Arn"), arn)
                .with_attribute(&format!("{id}.QueueName"), name);
            queues.insert(id.to_string(), url.clone());
        }
        let deployment = must(Deployment::new(template, &overrides, resources), "template");
        Stack {
            endpoint: moto.endpoint.clone(),
            sqs,
            dynamodb,
            provisioned,
            deployment,
            queues,
        }
    }

    /// What the platform gives every process beyond the template: the execution role's
    /// credentials (any, for moto) and the emulator's endpoint.
    pub fn platform_environment(&self) -> BTreeMap<String, String> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_SESSION_TOKEN", "e2e"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// The Lambda function `id` (logical id), with no environment started yet.
    ///
    /// # Panics
    /// When the template cannot be resolved for it or its binary is not built.
    pub fn function(&self, id: &str) -> Arc<Function> {
        let spec = must(self.deployment.function(id), "template");
        let binary = binaries::built(&spec.binary);
        Arc::new(Function::new(spec, binary, self.platform_environment()))
    }

    /// The URL of the queue with logical id `id`.
    ///
    /// # Panics
    /// When the suite does not provision it.
    pub fn queue_url(&self, id: &str) -> &str {
        match self.queues.get(id) {
            Some(u) => u,
            None => panic!("the suite provisions no queue {id}"),
        }
    }

    /// The template's SQS event source of `function` on the queue `queue` (logical ids).
    ///
    /// # Panics
    /// When the template declares none.
    pub fn event_source(&self, function: &Function, queue: &str) -> EventSource {
        let url = self.queue_url(queue).to_string();
        for event in &function.spec().events {
            if let EventSpec::Sqs {
                name,
                queue_arn,
                batch_size,
                report_batch_item_failures,
            } = event
                && queue_arn.rsplit(':').next() == url.rsplit('/').next()
            {
                return EventSource {
                    name: name.clone(),
                    queue_url: url,
                    queue_arn: queue_arn.clone(),
                    batch_size: *batch_size,
                    report_batch_item_failures: *report_batch_item_failures,
                };
            }
        }
        panic!(
            "{} has no SQS event source on {queue}",
            function.spec().logical_id
        );
    }

    /// The event the template's schedule (`ScheduleV2`) sends `function`.
    ///
    /// # Panics
    /// When the template gives it no schedule.
    pub fn schedule_event(&self, function: &Function) -> Value {
        for event in &function.spec().events {
            if let EventSpec::Schedule { name, input } = event {
                let arn = format!(
                    "arn:aws:scheduler:{REGION}:{ACCOUNT_ID}:schedule/default/{STACK_NAME}-{}{name}",
                    function.spec().logical_id
                );
                return must(scheduler_event(&arn, input.as_deref()), "schedule Input");
            }
        }
        panic!("{} has no ScheduleV2 event", function.spec().logical_id);
    }

    /// The HTTP API in front of `function`.
    ///
    /// # Panics
    /// When the template gives it no `HttpApi` event.
    pub async fn gateway(&self, function: Arc<Function>) -> Gateway {
        let format = function.spec().events.iter().find_map(|e| match e {
            EventSpec::HttpApi {
                payload_format_version,
                ..
            } => Some(payload_format_version.clone()),
            _ => None,
        });
        let Some(format) = format else {
            panic!("{} has no HttpApi event", function.spec().logical_id);
        };
        Gateway::start(function, &format).await
    }

    /// The push service task's environment: the template's container environment, listening
    /// on loopback port 0 instead of `0.0.0.0:5000`, plus the platform's variables.
    ///
    /// # Panics
    /// When the template cannot be resolved for it, or no longer sets the listen variables.
    pub fn push_environment(&self) -> BTreeMap<String, String> {
        let mut env = must(
            self.deployment
                .task_environment("PushServiceTaskDefinition"),
            "template",
        );
        for (name, value) in [
            ("CHANGEDETECTION_HOST", "127.0.0.1"),
            ("CHANGEDETECTION_PORT", "0"),
        ] {
            assert!(
                env.insert(name.to_string(), value.to_string()).is_some(),
                "the push service task no longer sets {name}"
            );
        }
        env.extend(self.platform_environment());
        env
    }

    /// The push-service binary with [`Stack::push_environment`] plus `extra`.
    pub async fn push_service(&self, extra: &[(&str, &str)]) -> PushService {
        let mut env = self.push_environment();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        PushService::start(env).await
    }

    /// The watches table, read directly, for what the API does not show (versions, leases).
    pub fn store(&self) -> DynamoStore {
        DynamoStore::new(self.dynamodb.clone(), self.provisioned.resources.clone())
    }

    /// Messages in the queue with logical id `queue`: visible, in flight and delayed.
    pub async fn depth(&self, queue: &str) -> usize {
        let out = must(
            self.sqs
                .get_queue_attributes()
                .queue_url(self.queue_url(queue))
                .attribute_names(QueueAttributeName::All)
                .send()
                .await
                .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string()),
            "GetQueueAttributes",
        );
        out.attributes
            .unwrap_or_default()
            .iter()
            .filter(|(name, _)| {
                [
                    QueueAttributeName::ApproximateNumberOfMessages,
                    QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                    QueueAttributeName::ApproximateNumberOfMessagesDelayed,
                ]
                .contains(name)
            })
            .map(|(_, v)| v.parse::<usize>().unwrap_or_default())
            .sum()
    }

    /// Bodies of the messages visible in the queue `queue` now (received, then made visible
    /// again at once).
    pub async fn peek(&self, queue: &str) -> Vec<String> {
        let url = self.queue_url(queue);
        let out = must(
            self.sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string()),
            "ReceiveMessage",
        );
        let mut bodies = Vec::new();
        for m in out.messages.unwrap_or_default() {
            if let Some(r) = m.receipt_handle() {
                let _ = self
                    .sqs
                    .change_message_visibility()
                    .queue_url(url)
                    .receipt_handle(r)
                    .visibility_timeout(0)
                    .send()
                    .await;
            }
            bodies.push(m.body().unwrap_or_default().to_string());
        }
        bodies
    }
}
