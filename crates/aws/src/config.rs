//! The environment of an AWS-mode process: resource names (set by the SAM template) plus the
//! settings embedded mode reads too, with the same names.

use std::sync::Arc;

use changewatch_api::{ApiConfig, AppState};
use changewatch_core::budget::PageBudget;
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

/// How a checker invocation divides its function's memory, so that no batch, page or filter
/// can exceed it: a Lambda environment that runs out of memory is killed with its whole batch,
/// which SQS then redelivers and counts towards the dead-letter queue.
///
/// - the process itself keeps [`CheckerSizing::RUNTIME_MB`];
/// - sandbox children run at most `sandbox_children` at once, each capped at its
///   `CW_SANDBOX_MEMORY_MB` (at least one; more only while half of the rest stays for pages);
/// - pages get the rest as a [`PageBudget`] for the batch's ten checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckerSizing {
    pub sandbox_children: usize,
    /// Memory for fetched pages, in MB (divided by the per-byte cost in the budget).
    pub page_memory_mb: u64,
}

impl CheckerSizing {
    /// The checker's own memory: runtime, SDK clients, TLS, buffers, allocator slack.
    pub const RUNTIME_MB: u64 = 64;
    /// Checks of one invocation that run at once: SQS's largest Lambda batch.
    pub const CHECKS: usize = 10;

    pub fn new(function_mb: u64, sandbox_mb: u64) -> Self {
        let rest = function_mb.saturating_sub(Self::RUNTIME_MB);
        let children = (rest / 2 / sandbox_mb.max(1)).max(1);
        CheckerSizing {
            sandbox_children: usize::try_from(children).unwrap_or(1),
            page_memory_mb: rest.saturating_sub(children * sandbox_mb),
        }
    }

    /// The page budget of one invocation, for pages of up to `max_page` bytes.
    pub fn page_budget(&self, max_page: usize) -> PageBudget {
        PageBudget::for_memory(self.page_memory_mb * 1024 * 1024, Self::CHECKS, max_page)
    }
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
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (MB, set by Lambda): the checker divides it between
    /// sandbox children and pages ([`CheckerSizing`]); unset (outside Lambda), no budget.
    pub function_memory_mb: Option<u64>,
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
    /// The checker's division of its function memory (`None` outside Lambda).
    pub fn checker_sizing(&self) -> Option<CheckerSizing> {
        self.function_memory_mb
            .map(|mb| CheckerSizing::new(mb, self.base.sandbox.memory_mb))
    }

    /// The sandbox limits of the checker function: the configured ones, with no more
    /// children at once than its memory holds.
    pub fn checker_sandbox_limits(&self) -> changewatch_core::config::SandboxLimits {
        let mut limits = self.base.sandbox.clone();
        if let Some(sizing) = self.checker_sizing() {
            limits.max_running = sizing.sandbox_children;
        }
        limits
    }

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
        let function_memory_mb = match text("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") {
            None => None,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n >= 128 => Some(n),
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                        value: v,
                        reason: "expected the function's memory in MB, 128 or more",
                    });
                }
            },
        };
        let queue_poll = seconds("CW_QUEUE_POLL_SECS", 5)?;
        let stream_stall = seconds("CW_STREAM_STALL_SECS", 60)?;
        Ok(AwsConfig {
            checker_fetch_budget,
            function_memory_mb,
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
        let sizing = config.checker_sizing();
        if let Some(sizing) = sizing {
            tracing::info!(
                sandbox_children = sizing.sandbox_children,
                page_memory_mb = sizing.page_memory_mb,
                "checker memory divided"
            );
        }
        let checker = Checker::new(
            Arc::new(self.store(config)),
            fetcher,
            CheckerConfig {
                max_fetch_timeout: config.checker_fetch_budget,
                page_budget: sizing.map(|s| Arc::new(s.page_budget(config.base.fetch_max_bytes))),
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
        // Backups read the tables item by item (docs/BACKUP.md: PITR is the copy of one moment).
        let backup = Arc::new(changewatch_store::backup::LiveExporter::new(
            store.clone(),
            "aws",
        ));
        let state = AppState::new(
            store,
            Arc::new(self.queue(config)),
            ApiConfig {
                // Lambda and the push service's container always face a network, whatever
                // address they bind: no password is open only when the operator says so.
                open_without_password: config.base.allow_no_password,
                // The push service's container could, but it serves the same requests as
                // the api function, which cannot: one behaviour for both.
                work_after_reply: false,
                ..ApiConfig::from_config(&config.base)
            },
            sandbox,
        )
        .with_tenant(config.tenant.clone())
        .with_backup(backup)
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
    fn the_checker_divides_its_function_memory() {
        // The template's defaults: 512 MB, children capped at 320 MB: one child, and the
        // 128 MB left after the runtime hold a full 10 MiB page plus ten ordinary ones.
        let s = CheckerSizing::new(512, 320);
        assert_eq!(s.sandbox_children, 1);
        assert_eq!(s.page_memory_mb, 128);
        let budget = s.page_budget(10 * 1024 * 1024);
        assert!(budget.max_page() >= 10 * 1024 * 1024);
        assert!(budget.share_bytes() >= 256 * 1024);
        // More memory: more children at once while half the rest stays for pages.
        assert_eq!(CheckerSizing::new(2048, 320).sandbox_children, 3);
        assert_eq!(
            CheckerSizing::new(2048, 320).page_memory_mb,
            2048 - 64 - 960
        );
        // A cap above the function's memory still leaves one child (its cap then is not
        // what protects the function) and no page memory beyond the minimum shares.
        let tight = CheckerSizing::new(256, 320);
        assert_eq!((tight.sandbox_children, tight.page_memory_mb), (1, 0));

        let base = [
            ("CW_WATCHES_TABLE", "w"),
            ("CW_SNAPSHOTS_TABLE", "s"),
            ("CW_CHECKS_QUEUE_URL", "c"),
            ("CW_RECHECKS_QUEUE_URL", "r"),
            ("CW_SANDBOX_MEMORY_MB", "320"),
        ];
        let outside = AwsConfig::from_lookup(env(&base)).unwrap();
        assert_eq!(outside.checker_sizing(), None);
        // Outside Lambda: CW_SANDBOX_CHILDREN's default, one per CPU and at least two.
        assert!((2..usize::MAX).contains(&outside.checker_sandbox_limits().max_running));
        let mut pairs = base.to_vec();
        pairs.push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"));
        let lambda = AwsConfig::from_lookup(env(&pairs)).unwrap();
        assert_eq!(lambda.checker_sizing(), Some(s));
        assert_eq!(lambda.checker_sandbox_limits().max_running, 1);
        pairs.pop();
        pairs.push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots"));
        let e = AwsConfig::from_lookup(env(&pairs)).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("AWS_LAMBDA_FUNCTION_MEMORY_SIZE="),
            "{e}"
        );
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
