//! `ChangeFeed` on the `Watches` table's DynamoDB stream (NEW_AND_OLD_IMAGES).
//!
//! One background task follows every shard: it re-describes the stream to find new shards,
//! reads a child shard only after its parent is exhausted (so one item's records stay in
//! order), re-acquires an expired iterator after the last sequence number it saw, and falls
//! back to the oldest record when the position was trimmed away. A process that restarts starts
//! from `Latest` (or wherever it is told): clients resynchronise over REST, so nothing needs a
//! durable checkpoint.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::error::ProvideErrorMetadata;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::{codec, sdk_error};
use crate::ChangeFeed;
use crate::types::{ChangeEvent, StoreError};

/// Where a freshly started feed begins reading the shards that exist at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    /// Only what happens from now on (a restarted push service).
    Latest,
    /// Everything still in the stream (tests, and a consumer that must not miss anything).
    TrimHorizon,
}

/// How often the stream is re-described for new shards.
const REDESCRIBE: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct StreamFeed {
    tx: broadcast::Sender<ChangeEvent>,
    task: JoinHandle<()>,
    health: FeedHealth,
}

/// Whether the reader keeps up, for a health check: a process whose reader died or cannot
/// reach the stream still answers HTTP, but its browsers would never hear of a change, so the
/// load balancer must replace it.
#[derive(Clone, Debug)]
pub struct FeedHealth {
    started: Instant,
    /// Milliseconds after `started` of the end of the last pass over every shard without an
    /// error; `u64::MAX` before the first.
    last_pass: Arc<AtomicU64>,
    running: Arc<AtomicBool>,
}

impl FeedHealth {
    fn new() -> Self {
        FeedHealth {
            started: Instant::now(),
            last_pass: Arc::new(AtomicU64::new(u64::MAX)),
            running: Arc::new(AtomicBool::new(true)),
        }
    }

    fn record_pass(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.last_pass.store(ms, Ordering::Relaxed);
    }

    /// How long ago the last clean pass ended (`None`: none yet).
    pub fn since_last_pass(&self) -> Option<Duration> {
        match self.last_pass.load(Ordering::Relaxed) {
            u64::MAX => None,
            ms => Some(
                self.started
                    .elapsed()
                    .saturating_sub(Duration::from_millis(ms)),
            ),
        }
    }

    /// The reader task runs and finished a clean pass within `stall` (before the first pass,
    /// the process's start counts, so a slow first describe is not a failure).
    pub fn healthy(&self, stall: Duration) -> bool {
        self.running.load(Ordering::Relaxed)
            && self
                .since_last_pass()
                .unwrap_or_else(|| self.started.elapsed())
                <= stall
    }

    pub fn running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }
}

/// Marks the reader stopped however its task ends (a panic included).
struct Stopped(FeedHealth);

impl Drop for Stopped {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
struct Shard {
    parent: Option<String>,
    iterator: Option<String>,
    last_seq: Option<String>,
    /// Read to its end (the shard is closed).
    done: bool,
    /// Where to start when there is no sequence number yet.
    initial: Option<ShardIteratorType>,
}

impl StreamFeed {
    /// The stream of `table` (its latest one), followed from `start`, polled every `poll`.
    pub async fn for_table(
        client: Client,
        table: &str,
        start: StartAt,
        poll: Duration,
    ) -> Result<StreamFeed, StoreError> {
        let out = client
            .list_streams()
            .table_name(table)
            .send()
            .await
            .map_err(sdk_error)?;
        let arn = out
            .streams
            .unwrap_or_default()
            .into_iter()
            .filter_map(|s| s.stream_arn)
            .next_back()
            .ok_or_else(|| StoreError::backend(format!("table {table} has no stream")))?;
        Ok(Self::start(client, arn, start, poll))
    }

    pub fn start(client: Client, stream_arn: String, start: StartAt, poll: Duration) -> StreamFeed {
        let (tx, _) = broadcast::channel(1024);
        let health = FeedHealth::new();
        let task = tokio::spawn(follow(
            client,
            stream_arn,
            start,
            poll,
            tx.clone(),
            health.clone(),
        ));
        StreamFeed { tx, task, health }
    }

    pub fn health(&self) -> FeedHealth {
        self.health.clone()
    }
}

impl Drop for StreamFeed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ChangeFeed for StreamFeed {
    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.tx.subscribe()
    }
}

async fn describe(
    client: &Client,
    arn: &str,
    shards: &mut HashMap<String, Shard>,
    initial: ShardIteratorType,
) -> Result<(), StoreError> {
    let mut start: Option<String> = None;
    loop {
        let out = client
            .describe_stream()
            .stream_arn(arn)
            .set_exclusive_start_shard_id(start.take())
            .send()
            .await
            .map_err(sdk_error)?;
        let Some(desc) = out.stream_description else {
            return Ok(());
        };
        for s in desc.shards.unwrap_or_default() {
            let Some(id) = s.shard_id else { continue };
            shards.entry(id).or_insert_with(|| Shard {
                parent: s.parent_shard_id,
                initial: Some(initial.clone()),
                ..Shard::default()
            });
        }
        match desc.last_evaluated_shard_id {
            Some(last) => start = Some(last),
            None => return Ok(()),
        }
    }
}

fn to_event(record: &Record) -> Result<Option<ChangeEvent>, StoreError> {
    let Some(r) = &record.dynamodb else {
        return Ok(None);
    };
    let Some(keys) = &r.keys else {
        return Ok(None);
    };
    let key = codec::key_of(&codec::from_stream(keys))?;
    let old = r
        .old_image
        .as_ref()
        .map(|i| codec::item_from_attrs(&codec::from_stream(i)))
        .transpose()?;
    let new = r
        .new_image
        .as_ref()
        .map(|i| codec::item_from_attrs(&codec::from_stream(i)))
        .transpose()?;
    Ok(Some(ChangeEvent { key, old, new }))
}

async fn follow(
    client: Client,
    arn: String,
    start: StartAt,
    poll: Duration,
    tx: broadcast::Sender<ChangeEvent>,
    health: FeedHealth,
) {
    let _stopped = Stopped(health.clone());
    let first = match start {
        StartAt::Latest => ShardIteratorType::Latest,
        StartAt::TrimHorizon => ShardIteratorType::TrimHorizon,
    };
    let mut shards: HashMap<String, Shard> = HashMap::new();
    if let Err(e) = describe(&client, &arn, &mut shards, first).await {
        warn!(error = %e, "describing the stream failed; retrying");
    }
    let mut described = Instant::now();
    loop {
        let mut clean = true;
        if described.elapsed() >= REDESCRIBE || shards.is_empty() {
            // Shards that appear later are children: read them from their start.
            if let Err(e) =
                describe(&client, &arn, &mut shards, ShardIteratorType::TrimHorizon).await
            {
                warn!(error = %e, "describing the stream failed; retrying");
                clean = false;
            }
            described = Instant::now();
        }
        let ids: Vec<String> = shards.keys().cloned().collect();
        for id in ids {
            let ready = {
                let shard = &shards[&id];
                !shard.done
                    && shard
                        .parent
                        .as_ref()
                        .is_none_or(|p| shards.get(p).is_none_or(|ps| ps.done))
            };
            if !ready {
                continue;
            }
            if let Err(e) = read_shard(&client, &arn, &id, &mut shards, &tx).await {
                warn!(shard = %id, error = %e, "reading a stream shard failed; retrying");
                clean = false;
            }
        }
        if clean && !shards.is_empty() {
            health.record_pass();
        }
        tokio::time::sleep(poll).await;
    }
}

async fn read_shard(
    client: &Client,
    arn: &str,
    id: &str,
    shards: &mut HashMap<String, Shard>,
    tx: &broadcast::Sender<ChangeEvent>,
) -> Result<(), StoreError> {
    let Some(shard) = shards.get_mut(id) else {
        return Ok(());
    };
    if shard.iterator.is_none() {
        let req = client.get_shard_iterator().stream_arn(arn).shard_id(id);
        let req = match &shard.last_seq {
            Some(seq) => req
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(seq),
            None => req.shard_iterator_type(
                shard
                    .initial
                    .clone()
                    .unwrap_or(ShardIteratorType::TrimHorizon),
            ),
        };
        match req.send().await {
            Ok(out) => shard.iterator = out.shard_iterator,
            Err(err) => {
                if err.as_service_error().and_then(|e| e.code())
                    == Some("TrimmedDataAccessException")
                {
                    shard.last_seq = None;
                    shard.initial = Some(ShardIteratorType::TrimHorizon);
                }
                return Err(sdk_error(err));
            }
        }
        if shard.iterator.is_none() {
            shard.done = true;
            return Ok(());
        }
    }
    // Drain what is there now (bounded, so one busy shard cannot starve the others).
    for _ in 0..10 {
        let Some(iterator) = shard.iterator.clone() else {
            shard.done = true;
            return Ok(());
        };
        let out = match client
            .get_records()
            .shard_iterator(iterator)
            .limit(1000)
            .send()
            .await
        {
            Ok(out) => out,
            Err(err) => {
                let code = err.as_service_error().and_then(|e| e.code());
                if matches!(
                    code,
                    Some("ExpiredIteratorException") | Some("TrimmedDataAccessException")
                ) {
                    debug!(shard = %id, ?code, "re-acquiring the shard iterator");
                    shard.iterator = None;
                    if code == Some("TrimmedDataAccessException") {
                        shard.last_seq = None;
                        shard.initial = Some(ShardIteratorType::TrimHorizon);
                    }
                    return Ok(());
                }
                return Err(sdk_error(err));
            }
        };
        let records = out.records.unwrap_or_default();
        let got = records.len();
        for record in &records {
            if let Some(seq) = record
                .dynamodb
                .as_ref()
                .and_then(|d| d.sequence_number.clone())
            {
                shard.last_seq = Some(seq);
            }
            match to_event(record) {
                Ok(Some(ev)) => {
                    // No receiver is fine: nobody is listening right now.
                    let _ = tx.send(ev);
                }
                Ok(None) => {}
                Err(e) => warn!(shard = %id, error = %e, "undecodable stream record skipped"),
            }
        }
        shard.iterator = out.next_shard_iterator;
        if shard.iterator.is_none() {
            shard.done = true;
            return Ok(());
        }
        if got == 0 {
            return Ok(());
        }
    }
    Ok(())
}
