//! Notifications: queueing them after a check, and delivering queued ones with retries.
//!
//! A check never waits for a notification service: it renders the message, puts one job per URL
//! on the [`NotificationQueue`] and is done. Senders (an embedded task, or the notifier Lambda)
//! take jobs off the queue and try each one; a failure that may pass is retried with
//! exponential backoff, and the last failure is written where users look: the watch's
//! `last_notification_error` and the tenant's notification log. Nothing is dropped silently.

use std::sync::Arc;
use std::time::Duration;

use changewatch_core::diff::DiffFormat;
use changewatch_core::model::{
    NotificationSettings, Settings, Tag, Watch, no_render, resolve_notification_settings,
};
use changewatch_notify::render::{self, ChangeContext};
use changewatch_notify::transport::{Deliverer, DeliveryOptions};
use changewatch_notify::{Attachment, BodyFormat, Message};
use changewatch_sandbox::{RenderJob, Rendered, Sandbox};
use changewatch_store::{
    Key, NotificationJob, NotificationQueue, ReceivedNotification, StoreError, WatchStore,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{Instrument, info, info_span, warn};

use crate::docs::{Step, read_modify_write};
use changewatch_core::clock::epoch_now;

/// What a watch shows after a notification finally failed (upstream's wording).
pub const NOTIFICATION_ERROR: &str = "Notification error detected, goto notification log.";

/// Entries kept in a tenant's notification log.
pub const LOG_LEN: usize = 100;

/// SQS takes messages up to 256 KiB; a body beyond this is cut (with a note) before queueing.
const MAX_BODY_BYTES: usize = 200_000;

/// How often a failing delivery is tried, and how long to wait between tries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included. AWS mode sets the queue's `maxReceiveCount` to this.
    pub max_attempts: u32,
    /// Wait after the first failure; doubled after each further one.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(900),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// One line of the notification log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Epoch seconds.
    pub ts: i64,
    pub watch_uuid: Option<String>,
    /// `change`, `filter_failure` or `test`.
    pub kind: String,
    /// The URL with its secrets masked.
    pub url: String,
    /// `sent`, `retrying` or `failed`.
    pub outcome: String,
    pub attempt: u32,
    pub message: String,
}

/// The tenant's notification log, newest first: the entries of the append-only log, then
/// those of the single log item that earlier versions rewrote on every delivery (read, never
/// written any more), up to [`LOG_LEN`].
pub async fn read_log(store: &dyn WatchStore, tenant: &str) -> Result<Vec<LogEntry>, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("notification log: {e}"));
    let mut entries = store
        .log_recent(tenant, LOG_LEN)
        .await?
        .into_iter()
        .map(serde_json::from_value::<LogEntry>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(corrupt)?;
    if entries.len() < LOG_LEN
        && let Some(item) = store.get(&Key::notification_log(tenant)).await?
        && let Some(old) = item.doc.value()?.get("entries").filter(|v| !v.is_null())
    {
        let old: Vec<LogEntry> = serde_json::from_value(old.clone()).map_err(corrupt)?;
        entries.extend(old);
        entries.truncate(LOG_LEN);
    }
    Ok(entries)
}

/// Adds an entry to the log: one write of the entry alone, so a delivery costs the same
/// whatever the log holds and concurrent senders never conflict.
pub async fn append_log(
    store: &dyn WatchStore,
    tenant: &str,
    entry: LogEntry,
) -> Result<(), StoreError> {
    let ts = entry.ts;
    let value = serde_json::to_value(&entry)
        .map_err(|e| StoreError::Corrupt(format!("notification log entry: {e}")))?;
    store.log_append(tenant, ts, value, LOG_LEN).await
}

/// Sets (or clears, with `None`) the watch's `last_notification_error`, leaving every other
/// field as it is now. Does nothing when the watch is gone or already says the same.
pub async fn set_notification_error(
    store: &dyn WatchStore,
    key: &Key,
    error: Option<&str>,
) -> Result<(), StoreError> {
    let wanted = error.map_or(Value::Bool(false), |e| Value::String(e.to_string()));
    read_modify_write(store, key, |current| {
        let Some(item) = current else {
            return Ok(Step::Done(()));
        };
        let now = item
            .doc
            .value()?
            .get("last_notification_error")
            .cloned()
            .unwrap_or(Value::Null);
        let is_clear = |v: &Value| v.is_null() || v == &Value::Bool(false);
        if now == wanted || (error.is_none() && is_clear(&now)) {
            return Ok(Step::Done(()));
        }
        let mut doc = item.doc.to_value()?;
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("last_notification_error".into(), wanted.clone());
        }
        Ok(Step::Write {
            doc,
            schedule: None,
            out: (),
        })
    })
    .await
}

/// A URL as the log shows it: scheme, host and port, never the tokens or passwords that
/// apprise URLs carry in their user info and path.
pub fn redact_url(raw: &str) -> String {
    let raw = raw.trim();
    let Some((scheme, rest)) = raw.split_once("://") else {
        return "(invalid URL)".into();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let hidden = rest.len() > authority.len() || authority.contains('@');
    format!("{scheme}://{host}{}", if hidden { "/…" } else { "" })
}

/// Body format name ↔ [`BodyFormat`], as jobs carry it.
pub fn format_name(f: BodyFormat) -> &'static str {
    match f {
        BodyFormat::Text => "text",
        BodyFormat::Html => "html",
        BodyFormat::Markdown => "markdown",
    }
}

fn parse_format(name: &str) -> BodyFormat {
    match name {
        "html" => BodyFormat::Html,
        "markdown" => BodyFormat::Markdown,
        _ => BodyFormat::Text,
    }
}

/// Cuts a body to what a queue message can carry, on a character boundary.
fn fit_body(body: &str) -> String {
    if body.len() <= MAX_BODY_BYTES {
        return body.to_string();
    }
    let mut end = MAX_BODY_BYTES;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n… (truncated)", &body[..end])
}

/// The URLs to deliver to: blank ones dropped, `#` ones are commented out (upstream skips them).
pub fn active_urls(urls: &[String]) -> Vec<String> {
    urls.iter()
        .map(|u| u.trim())
        .filter(|u| !u.is_empty() && !u.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// One job per URL for one message.
pub fn jobs_for(
    tenant: &str,
    watch_id: Option<&str>,
    kind: &str,
    urls: &[String],
    msg: &Message,
    now: i64,
) -> Vec<NotificationJob> {
    active_urls(urls)
        .into_iter()
        .map(|url| NotificationJob {
            id: uuid::Uuid::new_v4().to_string(),
            tenant: tenant.to_string(),
            watch_id: watch_id.map(str::to_string),
            kind: kind.to_string(),
            url,
            title: msg.title.clone(),
            body: fit_body(&msg.body),
            format: format_name(msg.format).to_string(),
            created_at: now,
            screenshot: None,
        })
        .collect()
}

/// What became of one delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Failed, worth another try after this long.
    Retry(Duration),
    /// Failed for good, and why; already recorded on the watch and in the log. The queue's
    /// `dead_letter` settles it.
    Failed(String),
}

/// Tries queued jobs and records what happened. Shared by the embedded sender and the notifier
/// Lambda: only the queue mechanics around it differ.
pub struct Dispatcher {
    store: Arc<dyn WatchStore>,
    deliverer: Deliverer,
    policy: RetryPolicy,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("policy", &self.policy)
            .finish()
    }
}

impl Dispatcher {
    pub fn new(store: Arc<dyn WatchStore>, deliverer: Deliverer, policy: RetryPolicy) -> Self {
        Dispatcher {
            store,
            deliverer,
            policy,
        }
    }

    /// The dispatcher a process's configuration describes: its SSRF policy (webhooks are
    /// user-supplied URLs, guarded like watches), delivery timeout, retry policy and Apprise
    /// API server (`APPRISE_API_URL`, for services not delivered natively). Embedded serve and
    /// the AWS notifier function both build theirs here.
    pub fn from_config(
        store: Arc<dyn WatchStore>,
        config: &changewatch_core::Config,
    ) -> Result<Self, String> {
        let deliverer = Deliverer::new(DeliveryOptions {
            timeout: config.notification_timeout,
            policy: config.address_policy(),
            service_base: None,
            apprise_api: config.apprise_api_url.clone(),
        })
        .map_err(|e| format!("cannot build the notification HTTP client: {e}"))?;
        Ok(Dispatcher::new(
            store,
            deliverer,
            RetryPolicy {
                max_attempts: config.notification_max_attempts,
                base_delay: config.notification_retry_delay,
                ..RetryPolicy::default()
            },
        ))
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The files a job asks for: the screenshot of its snapshot, when the store still has
    /// it (a notification is not held back for a screenshot trimmed or never taken).
    async fn attachments(&self, job: &NotificationJob) -> Vec<Attachment> {
        let (Some(ts), Some(watch_id)) = (job.screenshot, job.watch_id.as_deref()) else {
            return Vec::new();
        };
        match self
            .store
            .snapshot_screenshot(&Key::watch(&job.tenant, watch_id), ts)
            .await
        {
            Ok(Some(data)) => vec![Attachment {
                filename: format!("screenshot-{ts}.jpg"),
                mimetype: "image/jpeg".into(),
                data,
            }],
            Ok(None) => Vec::new(),
            Err(e) => {
                warn!(error = %e, "the screenshot to attach could not be read; sent without it");
                Vec::new()
            }
        }
    }

    /// Delivers one job once and records the outcome. Store errors while recording are logged,
    /// not returned: the delivery's verdict stands either way.
    pub async fn attempt(&self, rec: &ReceivedNotification) -> Verdict {
        let job = &rec.job;
        let msg = Message {
            title: job.title.clone(),
            body: job.body.clone(),
            format: parse_format(&job.format),
            attachments: self.attachments(job).await,
        };
        let result = self.deliverer.deliver(&job.url, &msg).await;
        let (verdict, outcome, message) = match &result {
            Ok(()) => (Verdict::Delivered, "sent", String::from("delivered")),
            Err(e) if e.is_permanent() || rec.attempt >= self.policy.max_attempts => {
                (Verdict::Failed(e.to_string()), "failed", e.to_string())
            }
            Err(e) => {
                let wait = self.policy.delay(rec.attempt);
                (
                    Verdict::Retry(wait),
                    "retrying",
                    format!(
                        "{e} (try {} of {}, next in {}s)",
                        rec.attempt,
                        self.policy.max_attempts,
                        wait.as_secs()
                    ),
                )
            }
        };
        match &verdict {
            Verdict::Delivered => info!(attempt = rec.attempt, "notification delivered"),
            Verdict::Retry(_) => {
                warn!(attempt = rec.attempt, error = %message, "notification failed; will retry")
            }
            Verdict::Failed(_) => {
                warn!(attempt = rec.attempt, error = %message, "notification failed for good")
            }
        }
        let entry = LogEntry {
            ts: epoch_now(),
            watch_uuid: job.watch_id.clone(),
            kind: job.kind.clone(),
            url: redact_url(&job.url),
            outcome: outcome.to_string(),
            attempt: rec.attempt,
            message,
        };
        if let Err(e) = append_log(self.store.as_ref(), &job.tenant, entry).await {
            warn!(error = %e, "could not write the notification log");
        }
        if let Some(watch_id) = &job.watch_id {
            let key = Key::watch(&job.tenant, watch_id);
            let error = match verdict {
                Verdict::Delivered => Some(None),
                Verdict::Failed(_) => Some(Some(NOTIFICATION_ERROR)),
                Verdict::Retry(_) => None,
            };
            if let Some(error) = error
                && let Err(e) = set_notification_error(self.store.as_ref(), &key, error).await
            {
                warn!(error = %e, "could not record the notification outcome on the watch");
            }
        }
        verdict
    }

    /// Sends a message straight away, without the queue or retries: the "send test
    /// notification" action, whose user waits for the answer. One result per active URL, each
    /// also written to the log.
    pub async fn send_now(
        &self,
        tenant: &str,
        watch_id: Option<&str>,
        urls: &[String],
        msg: &Message,
    ) -> Vec<(String, Result<(), String>)> {
        let mut out = Vec::new();
        for url in active_urls(urls) {
            let result = self
                .deliverer
                .deliver(&url, msg)
                .await
                .map_err(|e| e.to_string());
            let entry = LogEntry {
                ts: epoch_now(),
                watch_uuid: watch_id.map(str::to_string),
                kind: "test".into(),
                url: redact_url(&url),
                outcome: if result.is_ok() { "sent" } else { "failed" }.into(),
                attempt: 1,
                message: match &result {
                    Ok(()) => "delivered".into(),
                    Err(e) => e.clone(),
                },
            };
            if let Err(e) = append_log(self.store.as_ref(), tenant, entry).await {
                warn!(error = %e, "could not write the notification log");
            }
            out.push((redact_url(&url), result));
        }
        out
    }
}

/// The embedded sender: a task that drains the queue, a few deliveries at a time.
#[derive(Debug)]
pub struct NotificationSender {
    task: tokio::task::JoinHandle<()>,
    stop: watch::Sender<bool>,
}

/// Deliveries in flight at once.
const PARALLEL: usize = 8;

impl NotificationSender {
    /// Starts the sender. `lease` must exceed the longest delivery (the deliverer's timeout):
    /// a job not settled by then is handed out again.
    pub fn spawn(
        queue: Arc<dyn NotificationQueue>,
        dispatcher: Arc<Dispatcher>,
        poll: Duration,
        lease: Duration,
    ) -> NotificationSender {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let batch = match queue.receive(PARALLEL, lease).await {
                    Ok(b) => b,
                    Err(e) => {
                        warn!(error = %e, "notification queue unreadable");
                        Vec::new()
                    }
                };
                if batch.is_empty() {
                    tokio::select! {
                        _ = tokio::time::sleep(poll) => continue,
                        _ = stopped.changed() => return,
                    }
                }
                let mut set = JoinSet::new();
                for rec in batch {
                    let queue = queue.clone();
                    let dispatcher = dispatcher.clone();
                    let span = info_span!("notification", watch_id = rec.job.watch_id.as_deref().unwrap_or(""), job = %rec.job.id);
                    set.spawn(
                        async move {
                            let settled = match dispatcher.attempt(&rec).await {
                                Verdict::Delivered => queue.ack(&rec.receipt).await,
                                Verdict::Failed(reason) => queue.dead_letter(&rec, &reason).await,
                                Verdict::Retry(wait) => queue.retry_after(&rec.receipt, wait).await,
                            };
                            if let Err(e) = settled {
                                // The lease runs out and the job comes back: at least once.
                                warn!(error = %e, "could not settle a notification job");
                            }
                        }
                        .instrument(span),
                    );
                }
                while set.join_next().await.is_some() {}
                if *stopped.borrow() {
                    return;
                }
            }
        });
        NotificationSender { task, stop }
    }

    /// Stops taking jobs and waits for the deliveries in flight (bounded by `grace`). Jobs not
    /// settled stay in the queue for the next start.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// What the checker knows about the watch whose check caused a notification.
#[derive(Debug)]
pub struct WatchContext<'a> {
    pub key: &'a Key,
    pub watch: &'a Watch,
    pub tags: &'a [&'a Tag],
    pub settings: &'a Settings,
    /// `BASE_URL` from the environment; wins over the tenant's setting.
    pub base_url: Option<&'a str>,
    pub now: i64,
}

impl WatchContext<'_> {
    /// The render context without snapshots.
    pub fn change_context(&self) -> ChangeContext {
        let base_url = self
            .base_url
            .map(str::to_string)
            .or_else(|| self.settings.application.base_url.clone())
            .unwrap_or_default();
        let url = self.watch.link(&no_render);
        let open = self.watch.open_link(&no_render);
        ChangeContext {
            base_url,
            watch_uuid: self.key.id.clone(),
            watch_open_url: (open != url).then_some(open),
            watch_url: url,
            watch_title: self.watch.label(&no_render),
            watch_tag: watch_tag_titles(self.tags),
            watch_mime_type: self.watch.content_type.clone(),
            notification_timestamp: self.now as f64,
            timezone: self.settings.application.scheduler_timezone_default.clone(),
            ignore_whitespace: self.settings.application.ignore_whitespace,
            restock: restock_tokens(self.watch),
            ..ChangeContext::default()
        }
    }

    fn resolved(&self) -> (NotificationSettings, DiffFormat) {
        let resolved = resolve_notification_settings(self.watch, self.tags, self.settings);
        let format = resolved.format.parse().unwrap_or(DiffFormat::HtmlColor);
        (resolved, format)
    }
}

/// A restock watch's `{{restock.*}}` tokens (`in_stock`, `price`, `currency`,
/// `last_price`); empty for other watches.
fn restock_tokens(watch: &Watch) -> std::collections::BTreeMap<String, serde_json::Value> {
    if watch.processor != "restock_diff" {
        return Default::default();
    }
    let state = watch.restock.clone().unwrap_or_default();
    match serde_json::to_value(state) {
        Ok(serde_json::Value::Object(map)) => map.into_iter().collect(),
        _ => Default::default(),
    }
}

/// Records a notification that could not even be queued (a template that does not render, a
/// queue that refused it): on the watch and in the log, like a failed delivery.
async fn record_unsent(store: &dyn WatchStore, ctx: &WatchContext<'_>, kind: &str, why: String) {
    warn!(error = %why, "notification not queued");
    let entry = LogEntry {
        ts: ctx.now,
        watch_uuid: Some(ctx.key.id.clone()),
        kind: kind.to_string(),
        url: String::new(),
        outcome: "failed".into(),
        attempt: 0,
        message: why,
    };
    if let Err(e) = append_log(store, &ctx.key.tenant, entry).await {
        warn!(error = %e, "could not write the notification log");
    }
    if let Err(e) = set_notification_error(store, ctx.key, Some(NOTIFICATION_ERROR)).await {
        warn!(error = %e, "could not record the notification error on the watch");
    }
}

async fn enqueue(
    queue: &dyn NotificationQueue,
    store: &dyn WatchStore,
    ctx: &WatchContext<'_>,
    kind: &str,
    urls: &[String],
    msg: &Message,
    screenshot: Option<i64>,
) -> Result<(), StoreError> {
    let mut jobs = jobs_for(&ctx.key.tenant, Some(&ctx.key.id), kind, urls, msg, ctx.now);
    for job in &mut jobs {
        job.screenshot = screenshot;
    }
    let n = jobs.len();
    if let Err(e) = queue.send(jobs).await {
        record_unsent(
            store,
            ctx,
            kind,
            format!("could not queue the notification: {e}"),
        )
        .await;
        return Err(e);
    }
    info!(kind, urls = n, "notification queued");
    Ok(())
}

/// Renders and queues the content-change notification of a check that stored a new snapshot.
/// `prev` and `current` are (timestamp, text) of the two newest snapshots.
pub async fn queue_change(
    sandbox: &Sandbox,
    queue: &dyn NotificationQueue,
    store: &dyn WatchStore,
    ctx: &WatchContext<'_>,
    prev: (i64, &str),
    current: (i64, &str),
    triggered_text: &str,
) -> Result<(), StoreError> {
    let (resolved, format) = ctx.resolved();
    let mut cc = ctx.change_context();
    cc.prev_snapshot = prev.1.to_string();
    cc.current_snapshot = current.1.to_string();
    cc.timestamp_from = Some(prev.0);
    cc.timestamp_to = Some(current.0);
    cc.triggered_text = triggered_text.to_string();
    if !cc.restock.is_empty() {
        // Upstream's `restock.previous_price`: the price in the snapshot before this one.
        let previous = changewatch_core::restock::price_in_snapshot(prev.1);
        cc.restock.insert(
            "previous_price".into(),
            previous.map_or(serde_json::Value::Null, serde_json::Value::from),
        );
    }
    let job = RenderJob::Change {
        title: resolved.title,
        body: resolved.body,
        urls: resolved.urls,
        ctx: Box::new(cc),
        format,
    };
    let (msg, urls) = match sandbox.render(job).await {
        Ok(Rendered {
            message: Some(m),
            urls,
            ..
        }) => (m, urls),
        Ok(Rendered { message: None, .. }) => {
            record_unsent(store, ctx, "change", "no message was rendered".into()).await;
            return Ok(());
        }
        Err(e) => {
            record_unsent(store, ctx, "change", e.to_string()).await;
            return Ok(());
        }
    };
    // The new snapshot's screenshot, when the watch asks for it (browser checks take one).
    let screenshot = ctx.watch.notification_screenshot.then_some(current.0);
    enqueue(queue, store, ctx, "change", &urls, &msg, screenshot).await
}

/// Queues upstream's "filter not found" alert, or its "browser step could not be run" one
/// when `step` names the failing step.
pub async fn queue_filter_failure(
    sandbox: &Sandbox,
    queue: &dyn NotificationQueue,
    store: &dyn WatchStore,
    ctx: &WatchContext<'_>,
    threshold: u32,
    step: Option<usize>,
) -> Result<(), StoreError> {
    let (resolved, format) = ctx.resolved();
    let cc = ctx.change_context();
    let (kind, msg) = match step {
        Some(step) => (
            "step_failure",
            render::render_step_failure(step, threshold, &cc, format),
        ),
        None => (
            "filter_failure",
            render::render_filter_failure(&ctx.watch.include_filters, threshold, &cc, format),
        ),
    };
    let job = RenderJob::Urls {
        urls: resolved.urls,
        ctx: Box::new(cc),
        format,
    };
    let urls = match sandbox.render(job).await {
        Ok(rendered) => rendered.urls,
        Err(e) => {
            record_unsent(store, ctx, kind, e.to_string()).await;
            return Ok(());
        }
    };
    enqueue(queue, store, ctx, kind, &urls, &msg, None).await
}

/// The "send test notification" message for a watch (its templates and last two snapshots
/// when it has them) or for the global settings. Both templates are validated first (the
/// error names the field); rendering runs in the sandbox like every user template.
pub async fn test_message(
    sandbox: &Sandbox,
    title: &str,
    body: &str,
    format: DiffFormat,
    cc: &ChangeContext,
) -> Result<Message, String> {
    let job = RenderJob::Test {
        title: title.to_string(),
        body: body.to_string(),
        ctx: Box::new(cc.clone()),
        format,
    };
    match sandbox.render(job).await {
        Ok(Rendered {
            message: Some(m), ..
        }) => Ok(m),
        Ok(Rendered { message: None, .. }) => Err("no message was rendered".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// `watch_tag` of the templates: the watch's tag titles.
pub fn watch_tag_titles(tags: &[&Tag]) -> String {
    tags.iter()
        .filter_map(|t| t.base.title.clone())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(60),
        };
        assert_eq!(p.delay(1), Duration::from_secs(10));
        assert_eq!(p.delay(2), Duration::from_secs(20));
        assert_eq!(p.delay(3), Duration::from_secs(40));
        assert_eq!(p.delay(4), Duration::from_secs(60));
        assert_eq!(p.delay(40), Duration::from_secs(60));
    }

    #[test]
    fn redaction_keeps_host_and_hides_secrets() {
        assert_eq!(redact_url("discord://1234/secrettoken"), "discord://1234/…");
        assert_eq!(
            redact_url("mailtos://me:pw@smtp.example.com:465?to=a@b.c"),
            "mailtos://smtp.example.com:465/…"
        );
        assert_eq!(redact_url("json://127.0.0.1:8080"), "json://127.0.0.1:8080");
        assert_eq!(redact_url("nonsense"), "(invalid URL)");
    }

    #[test]
    fn commented_and_blank_urls_are_skipped() {
        let msg = Message {
            title: "t".into(),
            body: "b".into(),
            format: BodyFormat::Text,
            attachments: Vec::new(),
        };
        let jobs = jobs_for(
            "t",
            Some("w"),
            "change",
            &["#json://x".into(), " ".into(), "json://a".into()],
            &msg,
            1,
        );
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].url, "json://a");
        assert_eq!(jobs[0].format, "text");
    }

    #[test]
    fn huge_bodies_fit_a_queue_message() {
        let body = "é".repeat(MAX_BODY_BYTES);
        let fitted = fit_body(&body);
        assert!(fitted.len() < MAX_BODY_BYTES + 32);
        assert!(fitted.ends_with("(truncated)"));
    }
}
