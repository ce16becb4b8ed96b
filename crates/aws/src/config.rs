//! The environment of an AWS-mode process: resource names (set by the SAM template) plus the
//! settings embedded mode reads too, with the same names.

use std::sync::Arc;

use changewatch_api::{ApiConfig, AppState};
use changewatch_core::{Config, Fetcher};
use changewatch_engine::checker::{Checker, CheckerConfig, NotifySetup};
use changewatch_engine::notifications::Dispatcher;
use changewatch_store::aws::{AwsResources, DynamoStore, SqsNotificationQueue, SqsQueue, StartAt};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set (the SAM template sets it)")]
    Missing(&'static str),
    #[error("{name}={value:?}: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error(transparent)]
    Core(#[from] changewatch_core::config::ConfigError),
}

#[derive(Clone, Debug)]
pub struct AwsConfig {
    /// `CW_WATCHES_TABLE`, `CW_SNAPSHOTS_TABLE`, `CW_CHECKS_QUEUE_URL`, `CW_RECHECKS_QUEUE_URL`,
    /// `CW_DUE_SHARDS` (default 8).
    pub resources: AwsResources,
    /// `CW_NOTIFICATIONS_QUEUE_URL`: where checkers queue notifications and the notifier reads
    /// them; unset, checks queue none.
    pub notifications_queue_url: Option<String>,
    /// `CW_TENANT` (default `default`): the tenant the API and the push service serve.
    pub tenant: String,
    /// `CW_STREAM_START` (`latest`, the default, or `trim_horizon`): where a starting push
    /// service begins reading the stream. A restart resumes at the tip; clients reload their
    /// state over REST when they reconnect, so nothing durable is needed.
    pub stream_start: StartAt,
    /// `CW_CHECKER_FETCH_BUDGET_SECS`: the longest one fetch may take in the checker function,
    /// below its timeout with room for processing and the commit (the template sets it from
    /// the function timeout). Per-tenant settings cannot raise a fetch past it.
    pub checker_fetch_budget: Option<std::time::Duration>,
    /// `CW_QUEUE_POLL_SECS` (default 5, 1 to 3600): how often the push service reads the
    /// `checks` and `rechecks` queues' depth for `queue_size`, while at least one client is
    /// connected.
    pub queue_poll: std::time::Duration,
    /// `CW_STREAM_STALL_SECS` (default 60, 1 to 3600): the push service's `/healthz` answers
    /// 503 when its stream reader has not finished a clean pass over the shards for this long
    /// (or has stopped), so the load balancer replaces a task that no longer hears of changes.
    pub stream_stall: std::time::Duration,
    /// Everything embedded mode reads as well (`DEFAULT_SETTINGS_REQUESTS_TIMEOUT`,
    /// `MINIMUM_SECONDS_RECHECK_TIME`, `API_ACCESS_TOKEN`, …; `CHANGEDETECTION_PORT` is the push
    /// service's port).
    pub base: Config,
}

impl AwsConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let text = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let required = |name: &'static str| text(name).ok_or(ConfigError::Missing(name));
        let due_shards = match text("CW_DUE_SHARDS") {
            None => 8,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=1000).contains(&n) => n,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "CW_DUE_SHARDS",
                        value: v,
                        reason: "expected a number of shards from 1 to 1000",
                    });
                }
            },
        };
        let stream_start = match text("CW_STREAM_START").as_deref() {
            None | Some("latest") => StartAt::Latest,
            Some("trim_horizon") => StartAt::TrimHorizon,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "CW_STREAM_START",
                    value: other.to_string(),
                    reason: "expected latest or trim_horizon",
                });
            }
        };
        let checker_fetch_budget = match text("CW_CHECKER_FETCH_BUDGET_SECS") {
            None => None,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n >= 1 => Some(std::time::Duration::from_secs(n)),
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "CW_CHECKER_FETCH_BUDGET_SECS",
                        value: v,
                        reason: "expected a whole number of seconds, 1 or more",
                    });
                }
            },
        };
        let seconds = |name: &'static str, default: u64| match text(name) {
            None => Ok(std::time::Duration::from_secs(default)),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (1..=3600).contains(&n) => Ok(std::time::Duration::from_secs(n)),
                _ => Err(ConfigError::Invalid {
                    name,
                    value: v,
                    reason: "expected a whole number of seconds from 1 to 3600",
                }),
            },
        };
        let queue_poll = seconds("CW_QUEUE_POLL_SECS", 5)?;
        let stream_stall = seconds("CW_STREAM_STALL_SECS", 60)?;
        Ok(AwsConfig {
            checker_fetch_budget,
            queue_poll,
            stream_stall,
            stream_start,
            resources: AwsResources {
                watches_table: required("CW_WATCHES_TABLE")?,
                snapshots_table: required("CW_SNAPSHOTS_TABLE")?,
                checks_queue_url: required("CW_CHECKS_QUEUE_URL")?,
                rechecks_queue_url: required("CW_RECHECKS_QUEUE_URL")?,
                due_shards,
            },
            notifications_queue_url: text("CW_NOTIFICATIONS_QUEUE_URL"),
            tenant: text("CW_TENANT").unwrap_or_else(|| changewatch_store::DEFAULT_TENANT.into()),
            base: Config::from_lookup(&get)?,
        })
    }
}

/// The SDK clients of one process, from the standard AWS configuration chain (region,
/// credentials, and `AWS_ENDPOINT_URL` for an emulator).
#[derive(Clone, Debug)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
}

impl Clients {
    pub async fn from_env() -> Clients {
        let conf = aws_config::load_from_env().await;
        Clients::from_conf(&conf)
    }

    pub fn from_conf(conf: &aws_config::SdkConfig) -> Clients {
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::new(conf),
            sqs: aws_sdk_sqs::Client::new(conf),
            streams: aws_sdk_dynamodbstreams::Client::new(conf),
        }
    }

    pub fn store(&self, config: &AwsConfig) -> DynamoStore {
        DynamoStore::new(self.dynamodb.clone(), config.resources.clone())
    }

    pub fn queue(&self, config: &AwsConfig) -> SqsQueue {
        SqsQueue::new(
            self.sqs.clone(),
            config.resources.checks_queue_url.clone(),
            config.resources.rechecks_queue_url.clone(),
        )
    }

    /// The `notifications` queue, when the deployment has one (`CW_NOTIFICATIONS_QUEUE_URL`).
    pub fn notification_queue(&self, config: &AwsConfig) -> Option<SqsNotificationQueue> {
        config
            .notifications_queue_url
            .clone()
            .map(|url| SqsNotificationQueue::new(self.sqs.clone(), url))
    }

    /// The checker function's checker as it runs in Lambda: the store, a fetcher from the
    /// configuration, the fetch budget of one invocation, the notifications queue when the
    /// deployment has one, and `sandbox` for filters, rules and templates. The function and
    /// the tests build it here, so the tests run the Lambda's own wiring.
    pub fn checker(
        &self,
        config: &AwsConfig,
        owner: impl Into<String>,
        sandbox: changewatch_sandbox::Sandbox,
    ) -> Result<Checker, Box<dyn std::error::Error + Send + Sync>> {
        let fetcher = Fetcher::new(config.base.fetcher_config())?;
        let checker = Checker::new(
            Arc::new(self.store(config)),
            fetcher,
            CheckerConfig {
                max_fetch_timeout: config.checker_fetch_budget,
                ..CheckerConfig::from_config(owner, &config.base)
            },
        );
        let checker = match self.notification_queue(config) {
            Some(queue) => checker.with_notifications(NotifySetup {
                queue: Arc::new(queue),
                base_url: config.base.base_url.clone(),
            }),
            None => checker,
        };
        Ok(checker.with_sandbox(sandbox))
    }

    /// The checker function's control of when a busy job's message comes back.
    pub fn redelivery(&self, config: &AwsConfig) -> crate::checker::Redelivery {
        crate::checker::Redelivery::new(
            self.sqs.clone(),
            &[
                config.resources.checks_queue_url.as_str(),
                config.resources.rechecks_queue_url.as_str(),
            ],
        )
    }

    /// What the API handlers need, over DynamoDB and SQS. There are no workers to report:
    /// checks are Lambda invocations.
    pub fn app_state(&self, config: &AwsConfig, sandbox: changewatch_sandbox::Sandbox) -> AppState {
        let store: Arc<dyn changewatch_store::WatchStore> = Arc::new(self.store(config));
        let notifier = match Dispatcher::from_config(store.clone(), &config.base) {
            Ok(d) => Some(Arc::new(d)),
            Err(e) => {
                tracing::warn!(error = %e, "test notifications unavailable");
                None
            }
        };
        let state = AppState::new(
            store,
            Arc::new(self.queue(config)),
            ApiConfig {
                // Lambda and the push service's container always face a network, whatever
                // address they bind: no password is open only when the operator says so.
                open_without_password: config.base.allow_no_password,
                ..ApiConfig::from_config(&config.base)
            },
            sandbox,
        )
        .with_tenant(config.tenant.clone())
        // The queues' depth, as the push service's socket reports it: one count everywhere.
        .with_queue_depth(Arc::new(crate::push::SqsDepth::new(
            self.sqs.clone(),
            config,
        )));
        match notifier {
            Some(n) => state.with_notifier(n),
            None => state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn reads_resources_and_defaults() {
        let c = AwsConfig::from_lookup(env(&[
            ("CW_WATCHES_TABLE", "w"),
            ("CW_SNAPSHOTS_TABLE", "s"),
            ("CW_CHECKS_QUEUE_URL", "http://q/checks"),
            ("CW_RECHECKS_QUEUE_URL", "http://q/rechecks"),
        ]))
        .unwrap();
        assert_eq!(c.resources.due_shards, 8);
        assert_eq!(c.tenant, "default");
        assert_eq!(c.resources.watches_table, "w");
        assert_eq!(c.queue_poll, std::time::Duration::from_secs(5));
    }

    #[test]
    fn queue_poll_interval() {
        let base = [
            ("CW_WATCHES_TABLE", "w"),
            ("CW_SNAPSHOTS_TABLE", "s"),
            ("CW_CHECKS_QUEUE_URL", "c"),
            ("CW_RECHECKS_QUEUE_URL", "r"),
        ];
        let with = |v: &'static str| {
            let mut pairs = base.to_vec();
            pairs.push(("CW_QUEUE_POLL_SECS", v));
            AwsConfig::from_lookup(env(&pairs))
        };
        assert_eq!(
            with("2").unwrap().queue_poll,
            std::time::Duration::from_secs(2)
        );
        for bad in ["0", "x", "3601"] {
            let e = with(bad).unwrap_err();
            assert!(e.to_string().starts_with("CW_QUEUE_POLL_SECS="), "{e}");
        }
    }

    #[test]
    fn missing_and_invalid_values_are_named() {
        let e = AwsConfig::from_lookup(env(&[])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "CW_WATCHES_TABLE is not set (the SAM template sets it)"
        );
        let e = AwsConfig::from_lookup(env(&[
            ("CW_WATCHES_TABLE", "w"),
            ("CW_SNAPSHOTS_TABLE", "s"),
            ("CW_CHECKS_QUEUE_URL", "c"),
            ("CW_RECHECKS_QUEUE_URL", "r"),
            ("CW_DUE_SHARDS", "0"),
        ]))
        .unwrap_err();
        assert!(e.to_string().starts_with("CW_DUE_SHARDS=\"0\""), "{e}");
    }
}
