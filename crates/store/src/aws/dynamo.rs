//! `WatchStore` on DynamoDB, laid out for what a check costs: DynamoDB bills every write by
//! the KB of the item (and again for each index entry it touches) and every Query by the size
//! of all items it reads, whatever the projection.
//!
//! - Document writes are one conditional `UpdateItem` (the `version` attribute is the
//!   optimistic-concurrency token; schedule-only writes leave it alone, as in SQLite).
//! - The `due` index is sparse and KEYS_ONLY: a watch is in it (carries `due_shard`) only while
//!   it can be queued — a due time, no queue mark, no lease. Marking a watch queued takes it
//!   out (one small index delete), its commit puts it back (one index put): nothing else
//!   touches the index, and the scheduler never reads a queued watch again.
//! - A scheduled job runs on its queue mark (`queued_job` names it): `begin_check` reads the
//!   watch instead of writing a lease, and the commit is conditional on the mark. Manual
//!   rechecks take a lease, as in SQLite.
//! - A check commits with one conditional `UpdateItem` when it adds no snapshot, and with one
//!   `TransactWriteItems` (the snapshot's text chunks and the watch) when it does. Its new
//!   document is built from the watch `begin_check` returned; only a conflict reads it again.
//!   The history summary on the item (`history_n`, `history_newest`) replaces listing
//!   snapshots: an unchanged check reads no snapshot at all. Raw HTML chunks are written
//!   before the commit; trimming happens after it and reads only what it trims.
//! - Marks and leases that run out without a commit (a lost job) are found by
//!   `recover_stranded`, a Scan spread over the scheduler's ticks, which puts the watch back
//!   in the index.
//!
//! `Snapshots` items: `pk = W#<tenant>#<uuid>`, `sk = S#<ts>#<chunk>` (text), `H#<ts>#<chunk>`
//! (raw HTML), `P#<ts>#<chunk>` (screenshot), `TEXT` (text before filters). Timestamps and chunk numbers are zero-padded so
//! that the sort key orders them.

use crate::text_zstd::{compress, decompress};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, Put, ReturnValue, TransactWriteItem, Update, WriteRequest,
};
use tracing::warn;

use super::codec::{self, Attrs, key_attrs, num};
use super::expr::Expr;
use super::{AwsResources, backend, sdk_error};
use crate::WatchStore;
use crate::types::*;

/// Compressed bytes per snapshot item: under the 400 KB item limit with room for the keys.
const CHUNK: usize = 350 * 1024;
/// Sort-key prefix of screenshot chunks (text is `S`, raw HTML `H`).
const SCREENSHOT: char = 'P';
/// Commits retried when a user's edit lands between reading the watch and committing.
const COMMIT_RETRIES: usize = 5;
/// The scheduled job a queue mark is for (see the module's doc).
const QUEUED_JOB: &str = "queued_job";
/// At most this many snapshot items are read per page while looking for the oldest ones to
/// trim (a page of `n + 1` is enough unless snapshots span chunks).
const TRIM_PAGE: usize = 16;

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    res: AwsResources,
}

fn snap_pk(key: &Key) -> String {
    format!("W#{}#{}", key.tenant, key.id)
}

/// The partition of a tenant's notification log entries in the snapshots table.
fn log_pk(tenant: &str) -> String {
    format!("L#{tenant}")
}

/// The snapshots table's TTL attribute (epoch seconds); only log entries carry it.
pub const LOG_TTL_ATTRIBUTE: &str = "expires_at";

fn chunk_sk(prefix: char, ts: i64, chunk: usize) -> String {
    format!("{prefix}#{ts:015}#{chunk:04}")
}

/// `(prefix, ts, chunk)` of a snapshot item's sort key.
fn parse_chunk_sk(sk: &str) -> Option<(char, i64, usize)> {
    let mut parts = sk.splitn(3, '#');
    let prefix = parts.next()?.chars().next()?;
    let ts = parts.next()?.parse().ok()?;
    let chunk = parts.next()?.parse().ok()?;
    Some((prefix, ts, chunk))
}

fn is_conditional_failure<E: ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

/// A watch whose queue mark ran out, or that has neither a mark nor a live lease, yet is out
/// of the `due` index: its job was lost, nothing else will queue it again.
fn stranded_condition(e: &mut Expr, now: i64) -> String {
    let next = e.name("next_check_at");
    let shard = e.name("due_shard");
    let q = e.name("queued_at");
    let stale = e.value(num(now - QUEUED_MARK_TTL_SECS));
    let lu = e.name("lease_until");
    let now_v = e.value(num(now));
    format!(
        "attribute_exists({next}) AND attribute_not_exists({shard}) AND \
         ({q} <= {stale} OR (attribute_not_exists({q}) AND (attribute_not_exists({lu}) OR {lu} <= {now_v})))"
    )
}

impl DynamoStore {
    pub fn new(client: Client, res: AwsResources) -> Self {
        DynamoStore { client, res }
    }

    pub fn resources(&self) -> &AwsResources {
        &self.res
    }

    /// The raw item: `consistent` for a strongly consistent read (twice the price).
    async fn get_attrs(&self, key: &Key, consistent: bool) -> Result<Option<Attrs>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.res.watches_table)
            .set_key(Some(key_attrs(key)))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.item.filter(|a| !a.is_empty()))
    }

    fn shard_of(&self, key: &Key) -> AttributeValue {
        AttributeValue::S(codec::due_shard(key, self.res.due_shards))
    }

    /// Sets the schedule attributes, and the `due` index key while the watch can be queued.
    fn set_schedule(&self, e: &mut Expr, key: &Key, s: &Schedule) {
        e.set_opt_n("next_check_at", s.next_check_at);
        if s.next_check_at.is_some() && s.queued_at.is_none() && s.lease_owner.is_none() {
            e.set("due_shard", self.shard_of(key));
        } else {
            e.remove("due_shard");
        }
        if s.queued_at.is_none() {
            e.remove(QUEUED_JOB);
        }
        e.set_opt_n("queued_at", s.queued_at)
            .set_opt_s("lease_owner", s.lease_owner.as_deref())
            .set_opt_n("lease_until", s.lease_until)
            .set_opt_n("last_due_at", s.last_due_at)
            .set_opt_s("last_job_id", s.last_job_id.as_deref());
    }

    /// Runs an `UpdateItem`; `Ok(None)` when its condition failed.
    async fn update(
        &self,
        key: &Key,
        e: &Expr,
        returns: ReturnValue,
    ) -> Result<Option<Attrs>, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.res.watches_table)
            .set_key(Some(key_attrs(key)))
            .set_update_expression(e.update_expression())
            .set_condition_expression(e.condition_expression())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values(returns)
            .send()
            .await;
        match out {
            Ok(o) => Ok(Some(o.attributes.unwrap_or_default())),
            Err(err) => match err.as_service_error() {
                Some(se) if is_conditional_failure(se) => Ok(None),
                _ => Err(sdk_error(err)),
            },
        }
    }

    /// A schedule-only change (no version bump), conditional on `cond`.
    async fn schedule_update(
        &self,
        key: &Key,
        build: impl FnOnce(&mut Expr),
    ) -> Result<Option<Item>, StoreError> {
        let mut e = Expr::new();
        build(&mut e);
        e.condition(|e| {
            let pk = e.name("pk");
            format!("attribute_exists({pk})")
        });
        match self.update(key, &e, ReturnValue::AllNew).await? {
            Some(attrs) => Ok(Some(codec::item_from_attrs(&attrs)?)),
            None => Ok(None),
        }
    }

    async fn query_all(
        &self,
        table: &str,
        index: Option<&str>,
        e: &Expr,
        key_condition: String,
        filter: Option<String>,
        projection: Option<String>,
    ) -> Result<Vec<Attrs>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Attrs> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(table)
                .set_index_name(index.map(str::to_string))
                .key_condition_expression(&key_condition)
                .set_filter_expression(filter.clone())
                .set_projection_expression(projection.clone())
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .set_exclusive_start_key(start.take())
                .consistent_read(index.is_none())
                .send()
                .await
                .map_err(sdk_error)?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// Sort keys of a watch's snapshot items with the given prefix (`S#`, `H#`, or everything).
    async fn snapshot_keys(&self, key: &Key, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut e = Expr::new();
        let pk_n = e.name("pk");
        let sk_n = e.name("sk");
        let pk_v = e.value(AttributeValue::S(snap_pk(key)));
        let cond = if prefix.is_empty() {
            format!("{pk_n} = {pk_v}")
        } else {
            let p = e.value(AttributeValue::S(prefix.to_string()));
            format!("{pk_n} = {pk_v} AND begins_with({sk_n}, {p})")
        };
        let items = self
            .query_all(&self.res.snapshots_table, None, &e, cond, None, Some(sk_n))
            .await?;
        Ok(items
            .iter()
            .filter_map(|a| codec::s(a, "sk").map(str::to_string))
            .collect())
    }

    async fn snapshot_body(
        &self,
        key: &Key,
        prefix: char,
        ts: i64,
    ) -> Result<Option<String>, StoreError> {
        match self.snapshot_bytes(key, prefix, ts).await? {
            Some(bytes) => decompress(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The chunks of one snapshot body joined, as stored.
    async fn snapshot_bytes(
        &self,
        key: &Key,
        prefix: char,
        ts: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let mut e = Expr::new();
        let pk_n = e.name("pk");
        let sk_n = e.name("sk");
        let pk_v = e.value(AttributeValue::S(snap_pk(key)));
        let p = e.value(AttributeValue::S(format!("{prefix}#{ts:015}#")));
        let items = self
            .query_all(
                &self.res.snapshots_table,
                None,
                &e,
                format!("{pk_n} = {pk_v} AND begins_with({sk_n}, {p})"),
                None,
                None,
            )
            .await?;
        if items.is_empty() {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        for item in &items {
            match item.get("data") {
                Some(AttributeValue::B(b)) => bytes.extend_from_slice(b.as_ref()),
                _ => return Err(StoreError::Corrupt(format!("{key:?}: chunk without data"))),
            }
        }
        Ok(Some(bytes))
    }

    /// Deletes snapshot items by sort key, 25 per request, retrying what DynamoDB hands back.
    async fn delete_snapshot_items(&self, key: &Key, sks: Vec<String>) -> Result<(), StoreError> {
        let pk = snap_pk(key);
        for batch in sks.chunks(25) {
            let mut requests: Vec<WriteRequest> = batch
                .iter()
                .map(|sk| -> Result<WriteRequest, StoreError> {
                    let del = DeleteRequest::builder()
                        .key("pk", AttributeValue::S(pk.clone()))
                        .key("sk", AttributeValue::S(sk.clone()))
                        .build()
                        .map_err(backend)?;
                    Ok(WriteRequest::builder().delete_request(del).build())
                })
                .collect::<Result<_, _>>()?;
            for _ in 0..5 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.res.snapshots_table, requests.clone())
                    .send()
                    .await
                    .map_err(sdk_error)?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.res.snapshots_table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
            }
            if !requests.is_empty() {
                return Err(backend("snapshot deletes left unprocessed after retries"));
            }
        }
        Ok(())
    }

    fn chunk_puts(&self, key: &Key, prefix: char, ts: i64, data: &[u8]) -> Vec<Put> {
        let pk = snap_pk(key);
        let chunks: Vec<&[u8]> = if data.is_empty() {
            vec![data]
        } else {
            data.chunks(CHUNK).collect()
        };
        chunks
            .into_iter()
            .enumerate()
            .filter_map(|(i, c)| {
                Put::builder()
                    .table_name(&self.res.snapshots_table)
                    .item("pk", AttributeValue::S(pk.clone()))
                    .item("sk", AttributeValue::S(chunk_sk(prefix, ts, i)))
                    .item("data", AttributeValue::B(Blob::new(c.to_vec())))
                    .build()
                    .ok()
            })
            .collect()
    }

    async fn put_plain(&self, put: Put) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(put.table_name)
            .set_item(Some(put.item))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    /// One commit attempt on `base` (the watch as this check last saw it); `Ok(None)` when
    /// the watch changed since (a user's edit, or the mark or lease gone: the caller reads it
    /// again and decides).
    async fn try_commit(
        &self,
        key: &Key,
        owner: &str,
        commit: &CheckCommit,
        base: &Item,
    ) -> Result<Option<CommitOutcome>, StoreError> {
        let leased = base
            .schedule
            .as_ref()
            .and_then(|s| s.lease_owner.as_deref())
            == Some(owner);
        let mut writes: Vec<TransactWriteItem> = Vec::new();
        let mut snapshot_ts = None;
        let mut count = base.history.count;
        let mut newest = base.history.newest;
        if let Some(snap) = &commit.snapshot {
            let ts = match newest {
                Some(n) if snap.ts <= n => n + 1,
                _ => snap.ts,
            };
            if let Some(html) = &snap.html {
                // Written first and outside the transaction (it may be large); nothing lists
                // HTML without its text snapshot, which only the transaction below creates.
                for put in self.chunk_puts(key, 'H', ts, &compress(html)?) {
                    self.put_plain(put).await?;
                }
            }
            if let Some(image) = &snap.screenshot {
                // The same for a screenshot (already compressed: stored as it is).
                for put in self.chunk_puts(key, SCREENSHOT, ts, image) {
                    self.put_plain(put).await?;
                }
            }
            for put in self.chunk_puts(key, 'S', ts, &compress(&snap.text)?) {
                writes.push(TransactWriteItem::builder().put(put).build());
            }
            count += 1;
            newest = Some(ts);
            snapshot_ts = Some(ts);
        }
        if let Some(text) = &commit.text_before_filters {
            let put = Put::builder()
                .table_name(&self.res.snapshots_table)
                .item("pk", AttributeValue::S(snap_pk(key)))
                .item("sk", AttributeValue::S("TEXT".into()))
                .item("data", AttributeValue::B(Blob::new(compress(text)?)))
                .build()
                .map_err(backend)?;
            writes.push(TransactWriteItem::builder().put(put).build());
        }
        let trim = match commit.history_max.filter(|m| *m > 0) {
            Some(max) if commit.snapshot.is_some() && count > max => count - max,
            _ => 0,
        };
        let kept = count - trim;

        let mut doc = base.doc.to_value()?;
        let Some(obj) = doc.as_object_mut() else {
            return Err(StoreError::Corrupt(format!(
                "{key:?}: document is not an object"
            )));
        };
        for (k, v) in &commit.patch {
            obj.insert(k.clone(), v.clone());
        }
        let mut e = Expr::new();
        e.set("docz", codec::encode_doc(&doc)?)
            .remove("doc")
            .set("version", num(base.version as i64 + 1))
            .set("history_n", num(kept as i64))
            .set_opt_n("history_newest", newest)
            .set_opt_n("next_check_at", commit.next_check_at)
            .set("last_due_at", num(commit.due_at))
            .set("last_job_id", AttributeValue::S(commit.job_id.clone()))
            .remove("lease_owner")
            .remove("lease_until")
            .remove(QUEUED_JOB);
        match commit.next_check_at {
            Some(_) => e.set("due_shard", self.shard_of(key)),
            None => e.remove("due_shard"),
        };
        if !leased {
            // The mark this job ran on is used up. (Under a lease the claim removed it; a mark
            // set since is a manual recheck's, which stays.)
            e.remove("queued_at");
        }
        e.condition(|e| {
            let v = e.name("version");
            let vv = e.value(num(base.version as i64));
            let o = e.name("lease_owner");
            let ov = e.value(AttributeValue::S(owner.to_string()));
            let j = e.name(QUEUED_JOB);
            let jv = e.value(AttributeValue::S(commit.job_id.clone()));
            format!("{v} = {vv} AND ({o} = {ov} OR ({j} = {jv} AND attribute_not_exists({o})))")
        });

        if writes.is_empty() {
            // Nothing but the watch: a plain conditional update costs half a transaction.
            if self.update(key, &e, ReturnValue::None).await?.is_none() {
                return Ok(None);
            }
        } else {
            let update = Update::builder()
                .table_name(&self.res.watches_table)
                .set_key(Some(key_attrs(key)))
                .set_update_expression(e.update_expression())
                .set_condition_expression(e.condition_expression())
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .build()
                .map_err(backend)?;
            writes.push(TransactWriteItem::builder().update(update).build());
            let watch_index = writes.len() - 1;
            let res = self
                .client
                .transact_write_items()
                .set_transact_items(Some(writes))
                .send()
                .await;
            if let Err(err) = res {
                let watch_failed = err
                    .as_service_error()
                    .and_then(|se| match se {
                        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(ex) => Some(
                            ex.cancellation_reasons()
                                .get(watch_index)
                                .and_then(|r| r.code())
                                == Some("ConditionalCheckFailed"),
                        ),
                        _ => None,
                    })
                    .unwrap_or(false);
                if watch_failed {
                    return Ok(None);
                }
                return Err(sdk_error(err));
            }
        }

        // Clean-up after the commit, reading only what it removes: raw HTML and screenshots
        // of all but the newest two snapshots (upstream keeps two), and the `trim` oldest
        // snapshots.
        if let Some(ts) = snapshot_ts {
            let keep = [ts, base.history.newest.unwrap_or(ts)];
            if commit.snapshot.as_ref().is_some_and(|s| s.html.is_some())
                && let Err(e) = self.trim_chunks(key, 'H', &keep).await
            {
                warn!(watch_id = %key.id, error = %e, "removing old raw HTML failed; the next change retries");
            }
            if commit
                .snapshot
                .as_ref()
                .is_some_and(|s| s.screenshot.is_some())
                && let Err(e) = self.trim_chunks(key, SCREENSHOT, &keep).await
            {
                warn!(watch_id = %key.id, error = %e, "removing old screenshots failed; the next change retries");
            }
            if trim > 0
                && let Err(e) = self.trim_oldest(key, trim).await
            {
                warn!(watch_id = %key.id, error = %e, "trimming old snapshots failed; the next change retries");
            }
        }
        Ok(Some(CommitOutcome {
            version: base.version + 1,
            snapshot_ts,
            history_len: kept,
        }))
    }

    /// Deletes the `prefix` chunks (raw HTML, screenshots) of every snapshot but `keep`.
    async fn trim_chunks(&self, key: &Key, prefix: char, keep: &[i64]) -> Result<(), StoreError> {
        let stale: Vec<String> = self
            .snapshot_keys(key, &format!("{prefix}#"))
            .await?
            .into_iter()
            .filter(|sk| matches!(parse_chunk_sk(sk), Some((_, ts, _)) if !keep.contains(&ts)))
            .collect();
        if stale.is_empty() {
            return Ok(());
        }
        self.delete_snapshot_items(key, stale).await
    }

    /// Deletes the `n` oldest text snapshots, reading them in small pages from the oldest, so
    /// the read costs what is trimmed, not the whole history.
    async fn trim_oldest(&self, key: &Key, n: usize) -> Result<(), StoreError> {
        let mut e = Expr::new();
        let pk_n = e.name("pk");
        let sk_n = e.name("sk");
        let pk_v = e.value(AttributeValue::S(snap_pk(key)));
        let p = e.value(AttributeValue::S("S#".into()));
        let cond = format!("{pk_n} = {pk_v} AND begins_with({sk_n}, {p})");
        let mut doomed: Vec<String> = Vec::new();
        let mut seen: Vec<i64> = Vec::new();
        let mut start: Option<Attrs> = None;
        'pages: loop {
            let page = self
                .client
                .query()
                .table_name(&self.res.snapshots_table)
                .key_condition_expression(&cond)
                .projection_expression(&sk_n)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .set_exclusive_start_key(start.take())
                .limit(i32::try_from((n + 1).min(TRIM_PAGE)).unwrap_or(1))
                .send()
                .await
                .map_err(sdk_error)?;
            for item in page.items.unwrap_or_default() {
                let Some(sk) = codec::s(&item, "sk") else {
                    continue;
                };
                let Some((_, ts, _)) = parse_chunk_sk(sk) else {
                    continue;
                };
                if !seen.contains(&ts) {
                    if seen.len() == n {
                        break 'pages;
                    }
                    seen.push(ts);
                }
                doomed.push(sk.to_string());
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        self.delete_snapshot_items(key, doomed).await
    }
}

#[async_trait]
impl WatchStore for DynamoStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.get_attrs(key, true)
            .await?
            .map(|attrs| codec::item_from_attrs(&attrs))
            .transpose()
    }

    async fn list(&self, tenant: &str, kind: Kind) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        self.list_each(tenant, kind, &mut |item| {
            out.push(item);
            Ok(())
        })
        .await?;
        // In id order, as the port promises (buckets interleave ids).
        out.sort_by(|a, b| a.key.id.cmp(&b.key.id));
        Ok(out)
    }

    async fn list_each(
        &self,
        tenant: &str,
        kind: Kind,
        f: &mut (dyn FnMut(Item) -> Result<(), StoreError> + Send),
    ) -> Result<(), StoreError> {
        let pks: Vec<String> = match kind {
            Kind::Watch => (0..codec::WATCH_BUCKETS)
                .map(|b| codec::watch_pk(tenant, b))
                .collect(),
            _ => vec![codec::pk(tenant)],
        };
        // One partition key's items at a time, each decoded only as it is handed over.
        for pk in pks {
            let mut e = Expr::new();
            let pk_n = e.name("pk");
            let sk_n = e.name("sk");
            let pk_v = e.value(AttributeValue::S(pk));
            let p = e.value(AttributeValue::S(codec::sk_prefix(kind)));
            let cond = match kind {
                Kind::Watch | Kind::Tag => format!("{pk_n} = {pk_v} AND begins_with({sk_n}, {p})"),
                Kind::Settings | Kind::Stats | Kind::NotificationLog => {
                    format!("{pk_n} = {pk_v} AND {sk_n} = {p}")
                }
            };
            for attrs in self
                .query_all(&self.res.watches_table, None, &e, cond, None, None)
                .await?
            {
                f(codec::item_from_attrs(&attrs)?)?;
            }
        }
        Ok(())
    }

    async fn put(
        &self,
        key: &Key,
        doc: serde_json::Value,
        schedule: Option<Schedule>,
        expect: Expect,
    ) -> Result<u64, StoreError> {
        let mut e = Expr::new();
        e.set("docz", codec::encode_doc(&doc)?)
            .remove("doc")
            .increment("version");
        if key.kind == Kind::Watch
            && let Some(s) = &schedule
        {
            self.set_schedule(&mut e, key, s);
        }
        match expect {
            Expect::Any => {}
            Expect::Absent => {
                e.condition(|e| {
                    let pk = e.name("pk");
                    format!("attribute_not_exists({pk})")
                });
            }
            Expect::Exists => {
                e.condition(|e| {
                    let pk = e.name("pk");
                    format!("attribute_exists({pk})")
                });
            }
            Expect::Version(v) => {
                e.condition(|e| {
                    let n = e.name("version");
                    let x = e.value(num(v as i64));
                    format!("{n} = {x}")
                });
            }
        }
        let Some(attrs) = self.update(key, &e, ReturnValue::AllNew).await? else {
            return Err(StoreError::Conflict(key.clone()));
        };
        Ok(u64::try_from(codec::n(&attrs, "version")?.unwrap_or(0)).unwrap_or(0))
    }

    async fn delete(&self, key: &Key, expect: Expect) -> Result<bool, StoreError> {
        let mut e = Expr::new();
        match expect {
            Expect::Any => {}
            Expect::Absent => {
                e.condition(|e| {
                    let pk = e.name("pk");
                    format!("attribute_not_exists({pk})")
                });
            }
            Expect::Exists => {
                e.condition(|e| {
                    let pk = e.name("pk");
                    format!("attribute_exists({pk})")
                });
            }
            Expect::Version(v) => {
                e.condition(|e| {
                    let n = e.name("version");
                    let x = e.value(num(v as i64));
                    format!("{n} = {x}")
                });
            }
        }
        let out = self
            .client
            .delete_item()
            .table_name(&self.res.watches_table)
            .set_key(Some(key_attrs(key)))
            .set_condition_expression(e.condition_expression())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let existed = match out {
            Ok(o) => o.attributes.is_some_and(|a| !a.is_empty()),
            Err(err) => {
                return match err.as_service_error() {
                    Some(se) if is_conditional_failure(se) => {
                        Err(StoreError::Conflict(key.clone()))
                    }
                    _ => Err(sdk_error(err)),
                };
            }
        };
        if existed && key.kind == Kind::Watch {
            let sks = self.snapshot_keys(key, "").await?;
            self.delete_snapshot_items(key, sks).await?;
        }
        Ok(existed)
    }

    fn due_parts(&self) -> u32 {
        self.res.due_shards.max(1)
    }

    async fn due_page(
        &self,
        part: u32,
        before: i64,
        _now: i64,
        after: Option<&DueWatch>,
        limit: usize,
    ) -> Result<Vec<DueWatch>, StoreError> {
        let mut e = Expr::new();
        let shard_n = e.name("due_shard");
        let next_n = e.name("next_check_at");
        let shard_v = e.value(AttributeValue::S(part.to_string()));
        let before_v = e.value(num(before));
        let mut start: Option<Attrs> = after.map(|d| {
            let mut k = key_attrs(&d.key);
            k.insert("due_shard".into(), AttributeValue::S(part.to_string()));
            k.insert("next_check_at".into(), num(d.next_check_at));
            k
        });
        let mut out = Vec::new();
        // No filter: the index holds only watches that can be queued (see the module's doc),
        // and its entries are keys only, so a page is as cheap as a read can be.
        while out.len() < limit {
            let page = self
                .client
                .query()
                .table_name(&self.res.watches_table)
                .index_name("due")
                .key_condition_expression(format!(
                    "{shard_n} = {shard_v} AND {next_n} <= {before_v}"
                ))
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .set_exclusive_start_key(start.take())
                .limit(i32::try_from(limit - out.len()).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(sdk_error)?;
            for attrs in page.items.unwrap_or_default() {
                let key = codec::key_of(&attrs)?;
                if let Some(next) = codec::n(&attrs, "next_check_at")? {
                    out.push(DueWatch {
                        key,
                        next_check_at: next,
                    });
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn mark_queued(&self, job: &CheckJob, now: i64) -> Result<bool, StoreError> {
        let mut e = Expr::new();
        e.set("queued_at", num(now))
            .set(QUEUED_JOB, AttributeValue::S(job.id.clone()))
            .remove("due_shard");
        let scheduled = job.lane == Lane::Scheduled;
        if scheduled {
            // The lease this mark replaces has run out (the condition says so): left in place,
            // it would fail the commit of the job that runs on the mark.
            e.remove("lease_owner").remove("lease_until");
        }
        e.condition(|e| {
            let pk = e.name("pk");
            let q = e.name("queued_at");
            let stale = e.value(num(now - QUEUED_MARK_TTL_SECS));
            let mut c =
                format!("attribute_exists({pk}) AND (attribute_not_exists({q}) OR {q} <= {stale})");
            if scheduled {
                // Not leased, and still due when the index said it was: an index entry that
                // lags behind a commit must not queue the watch again.
                let lu = e.name("lease_until");
                let now_v = e.value(num(now));
                let next = e.name("next_check_at");
                let due = e.value(num(job.due_at));
                c.push_str(&format!(
                    " AND (attribute_not_exists({lu}) OR {lu} <= {now_v}) AND {next} = {due}"
                ));
            }
            c
        });
        Ok(self
            .update(&job.key(), &e, ReturnValue::None)
            .await?
            .is_some())
    }

    async fn recover_stranded(&self, now: i64, part: u32, parts: u32) -> Result<usize, StoreError> {
        let parts = parts.max(1);
        let mut e = Expr::new();
        let sk_n = e.name("sk");
        let w = e.value(AttributeValue::S(codec::sk_prefix(Kind::Watch)));
        let stranded = stranded_condition(&mut e, now);
        let filter = format!("begins_with({sk_n}, {w}) AND {stranded}");
        let projection = format!("{}, {sk_n}", e.name("pk"));
        let mut start: Option<Attrs> = None;
        let mut keys = Vec::new();
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.res.watches_table)
                .segment(i32::try_from(part % parts).unwrap_or(0))
                .total_segments(i32::try_from(parts).unwrap_or(1))
                .filter_expression(&filter)
                .projection_expression(&projection)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            for attrs in page.items.unwrap_or_default() {
                keys.push(codec::key_of(&attrs)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        let mut recovered = 0;
        for key in keys {
            let mut e = Expr::new();
            e.set("due_shard", self.shard_of(&key))
                .remove("queued_at")
                .remove(QUEUED_JOB)
                .remove("lease_owner")
                .remove("lease_until");
            e.condition(|e| stranded_condition(e, now));
            if self.update(&key, &e, ReturnValue::None).await?.is_some() {
                warn!(watch_id = %key.id, "queue mark or lease ran out without a check; due again");
                recovered += 1;
            }
        }
        Ok(recovered)
    }

    async fn claim(
        &self,
        key: &Key,
        owner: &str,
        lease_until: i64,
        now: i64,
    ) -> Result<Option<Item>, StoreError> {
        self.schedule_update(key, |e| {
            e.set("lease_owner", AttributeValue::S(owner.to_string()))
                .set("lease_until", num(lease_until))
                .remove("queued_at")
                .remove(QUEUED_JOB)
                .remove("due_shard");
            e.condition(|e| {
                let o = e.name("lease_owner");
                let u = e.name("lease_until");
                let ov = e.value(AttributeValue::S(owner.to_string()));
                let nv = e.value(num(now));
                format!(
                    "attribute_not_exists({o}) OR attribute_not_exists({u}) OR {u} <= {nv} OR {o} = {ov}"
                )
            });
        })
        .await
    }

    async fn release(&self, key: &Key, owner: &str) -> Result<(), StoreError> {
        let shard = self.shard_of(key);
        self.schedule_update(key, |e| {
            e.remove("lease_owner")
                .remove("lease_until")
                .set("due_shard", shard);
            e.condition(|e| {
                let o = e.name("lease_owner");
                let ov = e.value(AttributeValue::S(owner.to_string()));
                format!("{o} = {ov}")
            });
        })
        .await?;
        Ok(())
    }

    async fn begin_check(
        &self,
        job: &CheckJob,
        owner: &str,
        lease_until: i64,
        now: i64,
    ) -> Result<Option<Item>, StoreError> {
        let key = job.key();
        if job.lane == Lane::Scheduled
            && let Some(attrs) = self.get_attrs(&key, false).await?
            && codec::s(&attrs, QUEUED_JOB) == Some(job.id.as_str())
            && codec::s(&attrs, "lease_owner").is_none()
        {
            // The mark names this job: it runs on the mark, without a lease write. (A read
            // that lags behind the mark falls through to the lease, which is always right.)
            return codec::item_from_attrs(&attrs).map(Some);
        }
        self.claim(&key, owner, lease_until, now).await
    }

    async fn end_check(&self, job: &CheckJob, owner: &str) -> Result<(), StoreError> {
        let key = job.key();
        let shard = self.shard_of(&key);
        self.schedule_update(&key, |e| {
            e.remove("lease_owner")
                .remove("lease_until")
                .remove("queued_at")
                .remove(QUEUED_JOB)
                .set("due_shard", shard);
            e.condition(|e| {
                let o = e.name("lease_owner");
                let ov = e.value(AttributeValue::S(owner.to_string()));
                let j = e.name(QUEUED_JOB);
                let jv = e.value(AttributeValue::S(job.id.clone()));
                format!("{o} = {ov} OR {j} = {jv}")
            });
        })
        .await?;
        Ok(())
    }

    async fn commit_check(
        &self,
        key: &Key,
        owner: &str,
        commit: CheckCommit,
    ) -> Result<CommitOutcome, StoreError> {
        let mut base = commit.base.clone();
        for _ in 0..COMMIT_RETRIES {
            let item = match base.take() {
                Some(item) => item,
                None => {
                    // First commit without a base, or a retry: the watch as it is now, and
                    // whether this check still holds it.
                    let Some(attrs) = self.get_attrs(key, true).await? else {
                        return Err(StoreError::LeaseLost(key.clone()));
                    };
                    let holds = codec::s(&attrs, "lease_owner") == Some(owner)
                        || (codec::s(&attrs, QUEUED_JOB) == Some(commit.job_id.as_str())
                            && codec::s(&attrs, "lease_owner").is_none());
                    if !holds {
                        return Err(StoreError::LeaseLost(key.clone()));
                    }
                    codec::item_from_attrs(&attrs)?
                }
            };
            if let Some(out) = self.try_commit(key, owner, &commit, &item).await? {
                return Ok(out);
            }
        }
        Err(StoreError::Conflict(key.clone()))
    }

    async fn snapshots(&self, key: &Key) -> Result<Vec<i64>, StoreError> {
        let mut ts: Vec<i64> = self
            .snapshot_keys(key, "S#")
            .await?
            .iter()
            .filter_map(|sk| parse_chunk_sk(sk))
            .filter(|(_, _, chunk)| *chunk == 0)
            .map(|(_, ts, _)| ts)
            .collect();
        ts.sort_unstable();
        ts.dedup();
        Ok(ts)
    }

    async fn snapshot_text(&self, key: &Key, ts: i64) -> Result<Option<String>, StoreError> {
        self.snapshot_body(key, 'S', ts).await
    }

    async fn snapshot_html(&self, key: &Key, ts: i64) -> Result<Option<String>, StoreError> {
        self.snapshot_body(key, 'H', ts).await
    }

    async fn snapshot_screenshot(&self, key: &Key, ts: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.snapshot_bytes(key, SCREENSHOT, ts).await
    }

    async fn delete_history(&self, key: &Key) -> Result<(), StoreError> {
        let sks = self.snapshot_keys(key, "").await?;
        self.delete_snapshot_items(key, sks).await?;
        let mut e = Expr::new();
        e.set("history_n", num(0))
            .remove("history_newest")
            .increment("version");
        e.condition(|e| {
            let pk = e.name("pk");
            let h = e.name("history_n");
            let zero = e.value(num(0));
            format!("attribute_exists({pk}) AND attribute_exists({h}) AND {h} <> {zero}")
        });
        self.update(key, &e, ReturnValue::None).await?;
        Ok(())
    }

    async fn text_before_filters(&self, key: &Key) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.res.snapshots_table)
            .key("pk", AttributeValue::S(snap_pk(key)))
            .key("sk", AttributeValue::S("TEXT".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        match out.item.as_ref().and_then(|i| i.get("data")) {
            Some(AttributeValue::B(b)) => decompress(b.as_ref()).map(Some),
            _ => Ok(None),
        }
    }

    /// One item per entry in the snapshots table (no stream there, so the push service never
    /// sees the log): under `L#<tenant>`, sorted by time, gone after its TTL.
    async fn log_append(
        &self,
        tenant: &str,
        ts: i64,
        entry: serde_json::Value,
        _keep: usize,
    ) -> Result<(), StoreError> {
        // Entries of one second sort in the order they were written (the clock's nanoseconds),
        // and never collide (the random part).
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let sk = format!("{ts:015}#{nanos:020}#{}", uuid::Uuid::new_v4().simple());
        self.client
            .put_item()
            .table_name(&self.res.snapshots_table)
            .item("pk", AttributeValue::S(log_pk(tenant)))
            .item("sk", AttributeValue::S(sk))
            .item("entry", AttributeValue::S(entry.to_string()))
            .item(
                LOG_TTL_ATTRIBUTE,
                AttributeValue::N((ts + crate::LOG_RETENTION_SECS).to_string()),
            )
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn log_recent(
        &self,
        tenant: &str,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let mut e = Expr::new();
        let pk_n = e.name("pk");
        let pk_v = e.value(AttributeValue::S(log_pk(tenant)));
        let mut out = Vec::new();
        let mut start: Option<Attrs> = None;
        // Newest first, one page of `limit` at most (a page ends at 1 MB before that).
        while out.len() < limit {
            let page = self
                .client
                .query()
                .table_name(&self.res.snapshots_table)
                .key_condition_expression(format!("{pk_n} = {pk_v}"))
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .scan_index_forward(false)
                .limit(i32::try_from(limit - out.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            for item in page.items.unwrap_or_default() {
                let Some(text) = codec::s(&item, "entry") else {
                    continue;
                };
                out.push(
                    serde_json::from_str(text)
                        .map_err(|e| StoreError::Corrupt(format!("notification log: {e}")))?,
                );
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}
