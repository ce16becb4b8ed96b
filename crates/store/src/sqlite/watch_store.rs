//! The `WatchStore` and `ChangeFeed` ports on SQLite: documents, leases, check commits,
//! snapshots (zstd-compressed), and change events published after each commit.

use super::*;

#[async_trait]
impl WatchStore for SqliteStore {
    fn docs_generation(&self) -> Option<u64> {
        Some(self.generation.load(Ordering::SeqCst))
    }

    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let key = key.clone();
        self.run(move |tx| Ok((load(tx, &key)?, Vec::new()))).await
    }

    async fn list(&self, tenant: &str, kind: Kind) -> Result<Vec<Item>, StoreError> {
        let tenant = tenant.to_string();
        self.run(move |tx| {
            let items = raw_items(tx, &tenant, kind)?
                .into_iter()
                .map(decode_item)
                .collect::<Result<Vec<_>, _>>()?;
            Ok((items, Vec::new()))
        })
        .await
    }

    async fn list_each(
        &self,
        tenant: &str,
        kind: Kind,
        f: &mut (dyn FnMut(Item) -> Result<(), StoreError> + Send),
    ) -> Result<(), StoreError> {
        // A page of rows at a time, in id order from where the last page ended: the rows'
        // JSON leaves the connection's thread unparsed, each document is parsed only while `f`
        // looks at it, and no more than a page of documents is held at once (the whole
        // table's text was the peak of the heap at 3,000 watches: ~3 KB per watch).
        let mut after: Option<String> = None;
        loop {
            let (tenant, from) = (tenant.to_string(), after.clone());
            let rows = self
                .run(move |tx| {
                    let rows = items_page(tx, &tenant, kind, from.as_deref(), LIST_PAGE)?;
                    Ok((rows, Vec::new()))
                })
                .await?;
            let full = rows.len() == LIST_PAGE;
            after = rows.last().map(|raw| raw.0.id.clone());
            for raw in rows {
                f(decode_item(raw)?)?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    async fn list_page(
        &self,
        tenant: &str,
        kind: Kind,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Option<Vec<Item>>, StoreError> {
        let (tenant, after) = (tenant.to_string(), after.map(str::to_string));
        let rows = self
            .run(move |tx| {
                let rows = items_page(tx, &tenant, kind, after.as_deref(), limit)?;
                Ok((rows, Vec::new()))
            })
            .await?;
        rows.into_iter()
            .map(decode_item)
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    async fn put(
        &self,
        key: &Key,
        doc: serde_json::Value,
        schedule: Option<Schedule>,
        expect: Expect,
    ) -> Result<u64, StoreError> {
        let key = key.clone();
        self.run(move |tx| {
            let old = load(tx, &key)?;
            check_expect(&key, old.as_ref(), expect)?;
            let version = old.as_ref().map_or(1, |o| o.version + 1);
            let schedule = match key.kind {
                Kind::Watch => Some(
                    schedule
                        .or_else(|| old.as_ref().and_then(|o| o.schedule.clone()))
                        .unwrap_or_default(),
                ),
                _ => None,
            };
            let new = Item {
                key: key.clone(),
                version,
                doc: doc.into(),
                schedule,
                history: old.as_ref().map(|o| o.history).unwrap_or_default(),
            };
            store_item(tx, &new)?;
            Ok((version, event(old, Some(new))))
        })
        .await
    }

    async fn delete(&self, key: &Key, expect: Expect) -> Result<bool, StoreError> {
        let key = key.clone();
        self.run(move |tx| {
            let old = load(tx, &key)?;
            if old.is_none() && matches!(expect, Expect::Any) {
                return Ok((false, Vec::new()));
            }
            check_expect(&key, old.as_ref(), expect)?;
            if old.is_none() {
                return Ok((false, Vec::new()));
            }
            exec(
                tx,
                "DELETE FROM items WHERE tenant = ?1 AND kind = ?2 AND id = ?3",
                params![key.tenant, key.kind.as_str(), key.id],
            )
            .map_err(backend)?;
            tx.forget(&key);
            if key.kind == Kind::Watch {
                delete_watch_data(tx, &key)?;
            }
            Ok((true, event(old, None)))
        })
        .await
    }

    async fn due_page(
        &self,
        _part: u32,
        before: i64,
        now: i64,
        after: Option<&DueWatch>,
        limit: usize,
    ) -> Result<Vec<DueWatch>, StoreError> {
        // Pages follow the order (next_check_at, tenant, id), so a page starts strictly after
        // the previous page's last watch.
        let after = after.map(|d| (d.next_check_at, d.key.tenant.clone(), d.key.id.clone()));
        self.run(move |tx| {
            let mut stmt = tx
                .prepare(
                    "SELECT tenant, id, next_check_at FROM items
                     WHERE next_check_at IS NOT NULL AND next_check_at <= ?1 AND kind = 'W'
                       AND (queued_at IS NULL OR queued_at <= ?4)
                       AND (lease_until IS NULL OR lease_until <= ?2)
                       AND (?5 IS NULL OR (next_check_at, tenant, id) > (?5, ?6, ?7))
                     ORDER BY next_check_at, tenant, id LIMIT ?3",
                )
                .map_err(backend)?;
            let stale = now - QUEUED_MARK_TTL_SECS;
            let (a_next, a_tenant, a_id) = match &after {
                Some((n, t, i)) => (Some(*n), Some(t.as_str()), Some(i.as_str())),
                None => (None, None, None),
            };
            let rows = stmt
                .query_map(
                    params![before, now, limit as i64, stale, a_next, a_tenant, a_id],
                    |r| {
                        Ok(DueWatch {
                            key: Key::watch(&r.get::<_, String>(0)?, &r.get::<_, String>(1)?),
                            next_check_at: r.get(2)?,
                        })
                    },
                )
                .map_err(backend)?;
            let out = rows.collect::<Result<Vec<_>, _>>().map_err(backend)?;
            Ok((out, Vec::new()))
        })
        .await
    }

    async fn mark_queued(&self, job: &CheckJob, now: i64) -> Result<bool, StoreError> {
        let job = job.clone();
        self.run(move |tx| {
            Ok(match mark(tx, &job, now)? {
                Some((old, new)) => (true, event(Some(old), Some(new))),
                None => (false, Vec::new()),
            })
        })
        .await
    }

    async fn mark_queued_many(
        &self,
        jobs: &[CheckJob],
        now: i64,
        _concurrency: usize,
    ) -> Result<Vec<bool>, StoreError> {
        let jobs = jobs.to_vec();
        self.run(move |tx| {
            let mut marked = Vec::with_capacity(jobs.len());
            let mut events = Vec::new();
            for job in &jobs {
                let change = mark(tx, job, now)?;
                marked.push(change.is_some());
                if let Some((old, new)) = change {
                    events.extend(event(Some(old), Some(new)));
                }
            }
            Ok((marked, events))
        })
        .await
    }

    async fn claim(
        &self,
        key: &Key,
        owner: &str,
        lease_until: i64,
        now: i64,
    ) -> Result<Option<Item>, StoreError> {
        let key = key.clone();
        let owner = owner.to_string();
        self.run(move |tx| {
            let changed = update_schedule(tx, &key, |s| {
                if s.leased(now) && s.lease_owner.as_deref() != Some(owner.as_str()) {
                    return false;
                }
                s.lease_owner = Some(owner.clone());
                s.lease_until = Some(lease_until);
                s.queued_at = None;
                true
            })?;
            Ok(match changed {
                Some((old, new)) => (Some(new.clone()), event(Some(old), Some(new))),
                None => (None, Vec::new()),
            })
        })
        .await
    }

    async fn release(&self, key: &Key, owner: &str) -> Result<(), StoreError> {
        let key = key.clone();
        let owner = owner.to_string();
        self.run(move |tx| {
            let changed = update_schedule(tx, &key, |s| {
                if s.lease_owner.as_deref() != Some(owner.as_str()) {
                    return false;
                }
                s.lease_owner = None;
                s.lease_until = None;
                true
            })?;
            Ok((
                (),
                changed.map_or_else(Vec::new, |(o, n)| event(Some(o), Some(n))),
            ))
        })
        .await
    }

    async fn commit_check(
        &self,
        key: &Key,
        owner: &str,
        commit: CheckCommit,
    ) -> Result<CommitOutcome, StoreError> {
        let key = key.clone();
        let owner = owner.to_string();
        // Compressed here, on the caller's thread: the connection's thread runs every
        // transaction, and the changed checks' zstd work kept it from running the others.
        let snapshot_blobs = match &commit.snapshot {
            Some(snap) => Some((
                compress(&snap.text)?,
                snap.html.as_deref().map(compress).transpose()?,
            )),
            None => None,
        };
        let text_blob = commit
            .text_before_filters
            .as_deref()
            .map(compress)
            .transpose()?;
        self.run(move |tx| {
            let Some(old) = load(tx, &key)? else {
                return Err(StoreError::LeaseLost(key));
            };
            let schedule = old.schedule.clone().unwrap_or_default();
            if schedule.lease_owner.as_deref() != Some(owner.as_str()) {
                return Err(StoreError::LeaseLost(key));
            }
            let mut snapshot_ts = None;
            if let (Some(snap), Some((text, html))) = (&commit.snapshot, &snapshot_blobs) {
                let newest: Option<i64> = query_row(tx,
                        "SELECT MAX(ts) FROM snapshots WHERE tenant = ?1 AND watch_id = ?2",
                        params![key.tenant, key.id],
                        |r| r.get(0),
                    )
                    .map_err(backend)?;
                let ts = match newest {
                    Some(n) if snap.ts <= n => n + 1,
                    _ => snap.ts,
                };
                exec(tx,
                    "INSERT INTO snapshots (tenant, watch_id, ts, text, html) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![key.tenant, key.id, ts, text, html],
                )
                .map_err(backend)?;
                exec(tx,
                    "UPDATE snapshots SET html = NULL WHERE tenant = ?1 AND watch_id = ?2 AND html IS NOT NULL
                     AND ts NOT IN (SELECT ts FROM snapshots WHERE tenant = ?1 AND watch_id = ?2 ORDER BY ts DESC LIMIT ?3)",
                    params![key.tenant, key.id, HTML_KEPT],
                )
                .map_err(backend)?;
                if let Some(image) = &snap.screenshot {
                    exec(tx,
                        "INSERT OR REPLACE INTO screenshots (tenant, watch_id, ts, image) VALUES (?1, ?2, ?3, ?4)",
                        params![key.tenant, key.id, ts, image],
                    )
                    .map_err(backend)?;
                }
                exec(tx,
                    "DELETE FROM screenshots WHERE tenant = ?1 AND watch_id = ?2
                     AND ts NOT IN (SELECT ts FROM snapshots WHERE tenant = ?1 AND watch_id = ?2 ORDER BY ts DESC LIMIT ?3)",
                    params![key.tenant, key.id, HTML_KEPT],
                )
                .map_err(backend)?;
                snapshot_ts = Some(ts);
            }
            if let Some(text) = &text_blob {
                exec(tx,
                    "INSERT INTO watch_text (tenant, watch_id, text) VALUES (?1, ?2, ?3)
                     ON CONFLICT (tenant, watch_id) DO UPDATE SET text = excluded.text",
                    params![key.tenant, key.id, text],
                )
                .map_err(backend)?;
            }
            let mut trimmed = 0;
            // A history that cannot be over the cap needs no delete.
            if let Some(max) = commit
                .history_max
                .filter(|&m| m > 0 && (snapshot_ts.is_some() || old.history.count > m))
            {
                trimmed = exec(tx,
                    "DELETE FROM snapshots WHERE tenant = ?1 AND watch_id = ?2
                     AND ts NOT IN (SELECT ts FROM snapshots WHERE tenant = ?1 AND watch_id = ?2 ORDER BY ts DESC LIMIT ?3)",
                    params![key.tenant, key.id, max as i64],
                )
                .map_err(backend)?;
            }
            let doc = old.doc.patched(&commit.patch)?;
            // Unchanged without a new snapshot or a trim: most checks skip the count.
            let history = if snapshot_ts.is_some() || trimmed > 0 {
                history_meta(tx, &key)?
            } else {
                old.history
            };
            let new = Item {
                key: key.clone(),
                version: old.version + 1,
                doc,
                history,
                schedule: Some(Schedule {
                    next_check_at: commit.next_check_at,
                    queued_at: schedule.queued_at,
                    lease_owner: None,
                    lease_until: None,
                    last_due_at: Some(commit.due_at),
                    last_job_id: Some(commit.job_id.clone()),
                }),
            };
            store_item(tx, &new)?;
            exec(tx,
                "DELETE FROM interrupted_checks WHERE tenant = ?1 AND watch_id = ?2",
                params![key.tenant, key.id],
            )
            .map_err(backend)?;
            let outcome = CommitOutcome {
                version: new.version,
                snapshot_ts,
                history_len: history.count,
            };
            Ok((outcome, event(Some(old), Some(new))))
        })
        .await
    }

    async fn snapshots(&self, key: &Key) -> Result<Vec<i64>, StoreError> {
        let key = key.clone();
        self.run(move |tx| {
            let mut stmt = tx
                .prepare("SELECT ts FROM snapshots WHERE tenant = ?1 AND watch_id = ?2 ORDER BY ts")
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![key.tenant, key.id], |r| r.get(0))
                .map_err(backend)?;
            let out = rows.collect::<Result<Vec<i64>, _>>().map_err(backend)?;
            Ok((out, Vec::new()))
        })
        .await
    }

    async fn snapshot_text(&self, key: &Key, ts: i64) -> Result<Option<String>, StoreError> {
        self.snapshot_column(key, ts, "text").await
    }

    async fn snapshot_html(&self, key: &Key, ts: i64) -> Result<Option<String>, StoreError> {
        self.snapshot_column(key, ts, "html").await
    }

    async fn snapshot_screenshot(&self, key: &Key, ts: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.clone();
        self.run(move |tx| {
            let image: Option<Vec<u8>> = query_row(
                tx,
                "SELECT image FROM screenshots WHERE tenant = ?1 AND watch_id = ?2 AND ts = ?3",
                params![key.tenant, key.id, ts],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
            Ok((image, Vec::new()))
        })
        .await
    }

    async fn delete_history(&self, key: &Key) -> Result<(), StoreError> {
        let key = key.clone();
        self.run(move |tx| {
            delete_watch_data(tx, &key)?;
            let Some(old) = load(tx, &key)? else {
                return Ok(((), Vec::new()));
            };
            if old.history == HistoryMeta::default() {
                return Ok(((), Vec::new()));
            }
            // A version bump and an event: watchers of the feed see `history_n` drop to 0.
            let new = Item {
                version: old.version + 1,
                history: HistoryMeta::default(),
                ..old.clone()
            };
            store_item(tx, &new)?;
            Ok(((), event(Some(old), Some(new))))
        })
        .await
    }

    async fn text_before_filters(&self, key: &Key) -> Result<Option<String>, StoreError> {
        let key = key.clone();
        self.run(move |tx| {
            let blob: Option<Vec<u8>> = query_row(
                tx,
                "SELECT text FROM watch_text WHERE tenant = ?1 AND watch_id = ?2",
                params![key.tenant, key.id],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
            Ok((blob, Vec::new()))
        })
        .await?
        // Off the connection's thread (see `commit_check`).
        .map(|b| decompress(&b))
        .transpose()
    }

    async fn log_append(
        &self,
        tenant: &str,
        ts: i64,
        entry: serde_json::Value,
        keep: usize,
    ) -> Result<(), StoreError> {
        let tenant = tenant.to_string();
        let entry = entry.to_string();
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.run(move |tx| {
            exec(
                tx,
                "INSERT INTO notification_log (tenant, ts, entry) VALUES (?1, ?2, ?3)",
                params![tenant, ts, entry],
            )
            .map_err(backend)?;
            // The `keep` newest stay; the index makes this a short range delete.
            exec(
                tx,
                "DELETE FROM notification_log WHERE tenant = ?1 AND seq <= (
                    SELECT seq FROM notification_log WHERE tenant = ?1
                    ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
                params![tenant, keep],
            )
            .map_err(backend)?;
            Ok(((), Vec::new()))
        })
        .await
    }

    async fn log_recent(
        &self,
        tenant: &str,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let tenant = tenant.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |tx| {
            let mut stmt = tx
                .prepare(
                    "SELECT entry FROM notification_log WHERE tenant = ?1
                     ORDER BY seq DESC LIMIT ?2",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![tenant, limit], |r| r.get::<_, String>(0))
                .map_err(backend)?;
            let mut out = Vec::new();
            for row in rows {
                let text = row.map_err(backend)?;
                out.push(
                    serde_json::from_str(&text)
                        .map_err(|e| StoreError::Corrupt(format!("notification log: {e}")))?,
                );
            }
            Ok((out, Vec::new()))
        })
        .await
    }
}

impl SqliteStore {
    async fn snapshot_column(
        &self,
        key: &Key,
        ts: i64,
        column: &'static str,
    ) -> Result<Option<String>, StoreError> {
        let key = key.clone();
        self.run(move |tx| {
            let blob: Option<Option<Vec<u8>>> = query_row(
                tx,
                &format!(
                    "SELECT {column} FROM snapshots WHERE tenant = ?1 AND watch_id = ?2 AND ts = ?3"
                ),
                params![key.tenant, key.id, ts],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
            Ok((blob.flatten(), Vec::new()))
        })
        .await?
        // Off the connection's thread (see `commit_check`).
        .map(|b| decompress(&b))
        .transpose()
    }
}

impl ChangeFeed for SqliteStore {
    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.feed.subscribe()
    }
}

/// Every row of one kind for a tenant, in id order, documents still as JSON text.
fn raw_items(tx: &Tx<'_>, tenant: &str, kind: Kind) -> Result<Vec<RawItem>, StoreError> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {ITEM_COLUMNS} FROM items WHERE tenant = ?1 AND kind = ?2 ORDER BY id"
        ))
        .map_err(backend)?;
    stmt.query_map(params![tenant, kind.as_str()], row_to_item)
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)
}

/// Rows `list_each` reads per transaction.
const LIST_PAGE: usize = 256;

/// Up to `limit` of a tenant's items of `kind` in id order, after the id `after`.
fn items_page(
    tx: &Tx<'_>,
    tenant: &str,
    kind: Kind,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<RawItem>, StoreError> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {ITEM_COLUMNS} FROM items WHERE tenant = ?1 AND kind = ?2
             AND (?3 IS NULL OR id > ?3) ORDER BY id LIMIT ?4"
        ))
        .map_err(backend)?;
    stmt.query_map(
        params![
            tenant,
            kind.as_str(),
            after,
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        row_to_item,
    )
    .map_err(backend)?
    .collect::<Result<Vec<_>, _>>()
    .map_err(backend)
}

/// [`WatchStore::mark_queued`] of one job inside `tx`: the item before and after when marked.
fn mark(tx: &Tx<'_>, job: &CheckJob, now: i64) -> Result<Option<(Item, Item)>, StoreError> {
    let scheduled = job.lane == Lane::Scheduled;
    let due_at = job.due_at;
    update_schedule(tx, &job.key(), |s| {
        if s.queued_at.is_some_and(|q| q > now - QUEUED_MARK_TTL_SECS) {
            return false;
        }
        // A scheduled job is for one due time of an unleased watch: once that time moved (a
        // commit), the job is stale and must not be sent.
        if scheduled && (s.leased(now) || s.next_check_at != Some(due_at)) {
            return false;
        }
        s.queued_at = Some(now);
        true
    })
}
