//! `WatchStore` on DynamoDB.
//!
//! Every document write is one conditional `UpdateItem` (the `version` attribute is the
//! optimistic-concurrency token; schedule-only writes leave it alone, as in SQLite). A check
//! commits with one `TransactWriteItems`: the snapshot's text chunks and the watch update,
//! conditional on the lease and on the version the patch was computed from. Raw HTML chunks are
//! written before it and trimming happens after it; both are idempotent and invisible to readers
//! until the commit references them (HTML) or harmless if they lag (trims).
//!
//! `Snapshots` items: `pk = W#<tenant>#<uuid>`, `sk = S#<ts>#<chunk>` (text), `H#<ts>#<chunk>`
//! (raw HTML), `TEXT` (text before filters). Timestamps and chunk numbers are zero-padded so
//! that the sort key orders them.

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
const ZSTD_LEVEL: i32 = 3;
/// Raw HTML is kept for this many newest snapshots (upstream keeps two).
const HTML_KEPT: usize = 2;
/// Commits retried when a user's edit lands between reading the watch and committing.
const COMMIT_RETRIES: usize = 5;

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    res: AwsResources,
}

fn compress(s: &str) -> Result<Vec<u8>, StoreError> {
    zstd::bulk::compress(s.as_bytes(), ZSTD_LEVEL).map_err(backend)
}

fn decompress(b: &[u8]) -> Result<String, StoreError> {
    let bytes = zstd::stream::decode_all(b).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn snap_pk(key: &Key) -> String {
    format!("W#{}#{}", key.tenant, key.id)
}

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

impl DynamoStore {
    pub fn new(client: Client, res: AwsResources) -> Self {
        DynamoStore { client, res }
    }

    pub fn resources(&self) -> &AwsResources {
        &self.res
    }

    /// Sets the schedule attributes (and the sparse index key with `next_check_at`).
    fn set_schedule(&self, e: &mut Expr, key: &Key, s: &Schedule) {
        e.set_opt_n("next_check_at", s.next_check_at);
        match s.next_check_at {
            Some(_) => e.set(
                "due_shard",
                AttributeValue::S(codec::due_shard(key, self.res.due_shards)),
            ),
            None => e.remove("due_shard"),
        };
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
        decompress(&bytes).map(Some)
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

    /// One commit attempt; `Ok(None)` when the watch changed since it was read (retry).
    async fn try_commit(
        &self,
        key: &Key,
        owner: &str,
        commit: &CheckCommit,
    ) -> Result<Option<CommitOutcome>, StoreError> {
        let Some(old) = self.get(key).await? else {
            return Err(StoreError::LeaseLost(key.clone()));
        };
        let schedule = old.schedule.clone().unwrap_or_default();
        if schedule.lease_owner.as_deref() != Some(owner) {
            return Err(StoreError::LeaseLost(key.clone()));
        }
        let mut history: Vec<i64> = self.snapshots(key).await?;
        let mut writes: Vec<TransactWriteItem> = Vec::new();
        let mut snapshot_ts = None;
        if let Some(snap) = &commit.snapshot {
            let ts = match history.last() {
                Some(&n) if snap.ts <= n => n + 1,
                _ => snap.ts,
            };
            if let Some(html) = &snap.html {
                // Written first and outside the transaction (it may be large); nothing lists
                // HTML without its text snapshot, which only the transaction below creates.
                for put in self.chunk_puts(key, 'H', ts, &compress(html)?) {
                    self.put_plain(put).await?;
                }
            }
            for put in self.chunk_puts(key, 'S', ts, &compress(&snap.text)?) {
                writes.push(TransactWriteItem::builder().put(put).build());
            }
            history.push(ts);
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
        let trimmed: Vec<i64> = match commit.history_max.filter(|m| *m > 0) {
            Some(max) if history.len() > max => history.drain(..history.len() - max).collect(),
            _ => Vec::new(),
        };
        let meta = HistoryMeta {
            count: history.len(),
            newest: history.last().copied(),
        };

        let mut doc = old.doc.clone();
        let Some(obj) = doc.as_object_mut() else {
            return Err(StoreError::Corrupt(format!(
                "{key:?}: document is not an object"
            )));
        };
        for (k, v) in &commit.patch {
            obj.insert(k.clone(), v.clone());
        }
        let doc_json = serde_json::to_string(&doc).map_err(backend)?;
        let mut e = Expr::new();
        e.set("doc", AttributeValue::S(doc_json))
            .set("version", num(old.version as i64 + 1))
            .set("history_n", num(meta.count as i64))
            .set_opt_n("history_newest", meta.newest);
        self.set_schedule(
            &mut e,
            key,
            &Schedule {
                next_check_at: commit.next_check_at,
                queued_at: schedule.queued_at,
                lease_owner: None,
                lease_until: None,
                last_due_at: Some(commit.due_at),
                last_job_id: Some(commit.job_id.clone()),
            },
        );
        e.condition(|e| {
            let o = e.name("lease_owner");
            let ov = e.value(AttributeValue::S(owner.to_string()));
            let v = e.name("version");
            let vv = e.value(num(old.version as i64));
            format!("{o} = {ov} AND {v} = {vv}")
        });
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

        // Cleanup after the commit: trimmed snapshots, and raw HTML older than the newest two.
        let mut stale: Vec<String> = Vec::new();
        let html_keep: Vec<i64> = history.iter().rev().take(HTML_KEPT).copied().collect();
        for sk in self.snapshot_keys(key, "").await? {
            match parse_chunk_sk(&sk) {
                Some(('S', ts, _)) if trimmed.contains(&ts) => stale.push(sk),
                Some(('H', ts, _)) if !html_keep.contains(&ts) => stale.push(sk),
                _ => {}
            }
        }
        if !stale.is_empty()
            && let Err(e) = self.delete_snapshot_items(key, stale).await
        {
            warn!(watch_id = %key.id, error = %e, "trimming old snapshots failed; the next commit retries");
        }
        Ok(Some(CommitOutcome {
            version: old.version + 1,
            snapshot_ts,
            history_len: meta.count,
        }))
    }
}

#[async_trait]
impl WatchStore for DynamoStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.res.watches_table)
            .set_key(Some(key_attrs(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        out.item
            .map(|attrs| codec::item_from_attrs(&attrs))
            .transpose()
    }

    async fn list(&self, tenant: &str, kind: Kind) -> Result<Vec<Item>, StoreError> {
        let mut e = Expr::new();
        let pk_n = e.name("pk");
        let sk_n = e.name("sk");
        let pk_v = e.value(AttributeValue::S(codec::pk(tenant)));
        let cond = match kind {
            Kind::Watch | Kind::Tag => {
                let p = e.value(AttributeValue::S(codec::sk_prefix(kind)));
                format!("{pk_n} = {pk_v} AND begins_with({sk_n}, {p})")
            }
            Kind::Settings | Kind::Stats | Kind::NotificationLog => {
                let p = e.value(AttributeValue::S(codec::sk_prefix(kind)));
                format!("{pk_n} = {pk_v} AND {sk_n} = {p}")
            }
        };
        let items = self
            .query_all(&self.res.watches_table, None, &e, cond, None, None)
            .await?;
        items.iter().map(codec::item_from_attrs).collect()
    }

    async fn put(
        &self,
        key: &Key,
        doc: serde_json::Value,
        schedule: Option<Schedule>,
        expect: Expect,
    ) -> Result<u64, StoreError> {
        let mut e = Expr::new();
        let doc_json = serde_json::to_string(&doc).map_err(backend)?;
        e.set("doc", AttributeValue::S(doc_json))
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

    async fn due(&self, before: i64, now: i64, limit: usize) -> Result<Vec<DueWatch>, StoreError> {
        let mut all = Vec::new();
        for shard in 0..self.res.due_shards.max(1) {
            let mut e = Expr::new();
            let shard_n = e.name("due_shard");
            let next_n = e.name("next_check_at");
            let shard_v = e.value(AttributeValue::S(shard.to_string()));
            let before_v = e.value(num(before));
            let q = e.name("queued_at");
            let stale_v = e.value(num(now - QUEUED_MARK_TTL_SECS));
            let lu = e.name("lease_until");
            let now_v = e.value(num(now));
            let filter = format!(
                "(attribute_not_exists({q}) OR {q} <= {stale_v}) AND (attribute_not_exists({lu}) OR {lu} <= {now_v})"
            );
            let items = self
                .query_all(
                    &self.res.watches_table,
                    Some("due"),
                    &e,
                    format!("{shard_n} = {shard_v} AND {next_n} <= {before_v}"),
                    Some(filter),
                    None,
                )
                .await?;
            for attrs in items {
                let key = codec::key_of(&attrs)?;
                if let Some(next) = codec::n(&attrs, "next_check_at")? {
                    all.push(DueWatch {
                        key,
                        next_check_at: next,
                    });
                }
            }
        }
        all.sort_by_key(|d| d.next_check_at);
        all.truncate(limit);
        Ok(all)
    }

    async fn mark_queued(&self, key: &Key, _due_at: i64, now: i64) -> Result<bool, StoreError> {
        let mut e = Expr::new();
        e.set("queued_at", num(now));
        e.condition(|e| {
            let pk = e.name("pk");
            let q = e.name("queued_at");
            let stale = e.value(num(now - QUEUED_MARK_TTL_SECS));
            format!("attribute_exists({pk}) AND (attribute_not_exists({q}) OR {q} <= {stale})")
        });
        Ok(self.update(key, &e, ReturnValue::None).await?.is_some())
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
                .remove("queued_at");
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
        self.schedule_update(key, |e| {
            e.remove("lease_owner").remove("lease_until");
            e.condition(|e| {
                let o = e.name("lease_owner");
                let ov = e.value(AttributeValue::S(owner.to_string()));
                format!("{o} = {ov}")
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
        for _ in 0..COMMIT_RETRIES {
            if let Some(out) = self.try_commit(key, owner, &commit).await? {
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
}
