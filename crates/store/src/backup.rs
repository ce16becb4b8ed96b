//! Backups: one format for both modes, written and read through the [`WatchStore`] port.
//!
//! A backup is a zstd stream (with its content checksum) of JSON lines: a manifest, the
//! settings, the tags, each watch followed by its snapshots (oldest first) and its text before
//! filters, the notification log, and an `end` record with the counts. `docs/BACKUP.md`
//! describes every record. It is built from the port, not copied from a backend, so a SQLite
//! datastore and a DynamoDB tenant back up to the same file and restore from each other's; a
//! raw SQLite file would restore into SQLite alone, and only as long as its schema migrations
//! agree. JSON lines stream both ways: neither side holds more than one watch's item and one
//! snapshot at a time.
//!
//! Consistency is the caller's: [`export`] reads what the store it is given holds. Embedded
//! mode gives it a copy of the database taken in one read transaction
//! ([`crate::sqlite::backup::SqliteExporter`]); DynamoDB has no such read, so AWS mode exports
//! the live tables item by item ([`LiveExporter`], `consistent: false` in the manifest) and
//! relies on point-in-time recovery for a copy of one moment.
//!
//! [`restore`] reads the file twice: the first pass checks all of it (version, order,
//! references, counts, checksum, and every document through the caller's check), so a damaged
//! or truncated file changes nothing; the second writes it.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};

use async_trait::async_trait;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::WatchStore;
use crate::types::{CheckCommit, Expect, Key, Kind, NewSnapshot, Schedule, StoreError};

/// The `format` of every manifest.
pub const FORMAT: &str = "changewatch-backup";

/// The format this build writes, and the newest it reads. Any change to a record's meaning or
/// fields bumps it: a reader refuses a newer file instead of dropping what it does not know.
pub const FORMAT_VERSION: u32 = 1;

/// How many notification log entries a restore keeps (the engine shows the newest 100).
const LOG_KEEP: usize = 100;

/// The lease a restore holds on a watch while it writes one snapshot.
const RESTORE_LEASE_SECS: i64 = 3600;

/// The owner name of a restore's leases.
const RESTORE_OWNER: &str = "restore";

/// The first line of a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    /// The version of the changewatch that wrote it.
    pub changewatch_version: String,
    /// When it was taken (epoch seconds).
    pub created: i64,
    /// `embedded` (SQLite) or `aws` (DynamoDB); `live` for a store exported as it runs.
    pub source_mode: String,
    /// Whether everything in it is from one moment (SQLite's copy) or was read item by item
    /// while the store was in use (DynamoDB).
    pub consistent: bool,
    /// The tenant it was taken from (`default` in embedded mode); a restore writes into the
    /// restoring side's own tenant.
    pub tenant: String,
}

impl Manifest {
    /// A manifest for a backup taken now by this build.
    pub fn new(tenant: &str, source_mode: &str, consistent: bool, created: i64) -> Manifest {
        Manifest {
            format: FORMAT.to_string(),
            format_version: FORMAT_VERSION,
            changewatch_version: env!("CARGO_PKG_VERSION").to_string(),
            created,
            source_mode: source_mode.to_string(),
            consistent,
            tenant: tenant.to_string(),
        }
    }
}

/// What a backup holds, as its `end` record states it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    pub tags: usize,
    pub watches: usize,
    pub snapshots: usize,
    pub log_entries: usize,
}

/// One line of a backup.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Record {
    Manifest(Manifest),
    Settings {
        doc: Value,
    },
    Tag {
        id: String,
        doc: Value,
    },
    /// A watch; its `snapshots` snapshot records follow it.
    Watch {
        id: String,
        doc: Value,
        next_check_at: Option<i64>,
        last_due_at: Option<i64>,
        snapshots: usize,
    },
    Snapshot {
        watch: String,
        ts: i64,
        text: String,
        html: Option<String>,
        /// JPEG, base64.
        screenshot: Option<String>,
    },
    TextBeforeFilters {
        watch: String,
        text: String,
    },
    LogEntry {
        ts: i64,
        entry: Value,
    },
    End {
        counts: Counts,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("not a changewatch backup: {0}")]
    NotABackup(String),
    #[error(
        "this backup is format version {found} (written by changewatch {writer}); this changewatch ({ours}) reads format versions up to {FORMAT_VERSION}: restore it with a newer changewatch"
    )]
    NewerVersion {
        found: u32,
        writer: String,
        ours: &'static str,
    },
    #[error("the backup is damaged at line {line}: {reason}")]
    Damaged { line: usize, reason: String },
    #[error(
        "the datastore is not empty ({watches} watches, {tags} tags): restore into an empty one, or force it to replace them (`--force`, `?force=true` through the API)"
    )]
    NotEmpty { watches: usize, tags: usize },
    #[error("cannot write the backup: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Something that can write a backup of a tenant: what the API's download calls, so it need
/// not know which backend it serves.
#[async_trait]
pub trait Exporter: Send + Sync + 'static {
    async fn export(
        &self,
        tenant: &str,
        created: i64,
        out: &mut (dyn Write + Send),
    ) -> Result<Counts, BackupError>;
}

/// Exports the store as it is while in use, item by item (DynamoDB: nothing reads a table at
/// one moment; point-in-time recovery is its consistent copy).
pub struct LiveExporter {
    store: std::sync::Arc<dyn WatchStore>,
    source_mode: &'static str,
}

impl LiveExporter {
    pub fn new(store: std::sync::Arc<dyn WatchStore>, source_mode: &'static str) -> Self {
        LiveExporter { store, source_mode }
    }
}

impl std::fmt::Debug for LiveExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveExporter")
            .field("source_mode", &self.source_mode)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Exporter for LiveExporter {
    async fn export(
        &self,
        tenant: &str,
        created: i64,
        out: &mut (dyn Write + Send),
    ) -> Result<Counts, BackupError> {
        let manifest = Manifest::new(tenant, self.source_mode, false, created);
        export(self.store.as_ref(), tenant, manifest, out).await
    }
}

fn write_record(out: &mut impl Write, record: &Record) -> Result<(), BackupError> {
    serde_json::to_writer(&mut *out, record).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Writes a backup of `tenant` from `store` to `out` (compressed here) and returns what it
/// holds. A snapshot that goes between listing and reading (trimmed by a check in a live
/// store) is left out, and its watch's count says so.
pub async fn export<W: Write + Send>(
    store: &dyn WatchStore,
    tenant: &str,
    manifest: Manifest,
    out: W,
) -> Result<Counts, BackupError> {
    let mut z = zstd::stream::write::Encoder::new(out, 3)?;
    z.include_checksum(true)?;
    write_record(&mut z, &Record::Manifest(manifest))?;
    let mut counts = Counts::default();
    if let Some(item) = store.get(&Key::settings(tenant)).await? {
        write_record(
            &mut z,
            &Record::Settings {
                doc: item.doc.to_value()?,
            },
        )?;
    }
    for item in store.list(tenant, Kind::Tag).await? {
        write_record(
            &mut z,
            &Record::Tag {
                id: item.key.id.clone(),
                doc: item.doc.to_value()?,
            },
        )?;
        counts.tags += 1;
    }
    // Ids first, then one watch at a time: memory stays one watch's worth.
    let mut ids = Vec::new();
    store
        .list_each(tenant, Kind::Watch, &mut |item| {
            ids.push(item.key.id);
            Ok(())
        })
        .await?;
    ids.sort();
    for id in ids {
        let key = Key::watch(tenant, &id);
        let Some(item) = store.get(&key).await? else {
            continue; // deleted since the listing
        };
        let mut snapshots = Vec::new();
        for ts in store.snapshots(&key).await? {
            if let Some(text) = store.snapshot_text(&key, ts).await? {
                snapshots.push((ts, text));
            }
        }
        let schedule = item.schedule.clone().unwrap_or_default();
        write_record(
            &mut z,
            &Record::Watch {
                id: id.clone(),
                doc: item.doc.to_value()?,
                next_check_at: schedule.next_check_at,
                last_due_at: schedule.last_due_at,
                snapshots: snapshots.len(),
            },
        )?;
        counts.watches += 1;
        for (ts, text) in snapshots {
            let html = store.snapshot_html(&key, ts).await?;
            let screenshot = store
                .snapshot_screenshot(&key, ts)
                .await?
                .map(|b| base64::engine::general_purpose::STANDARD.encode(b));
            write_record(
                &mut z,
                &Record::Snapshot {
                    watch: id.clone(),
                    ts,
                    text,
                    html,
                    screenshot,
                },
            )?;
            counts.snapshots += 1;
        }
        if let Some(text) = store.text_before_filters(&key).await? {
            write_record(
                &mut z,
                &Record::TextBeforeFilters {
                    watch: id.clone(),
                    text,
                },
            )?;
        }
    }
    let mut log = store.log_recent(tenant, LOG_KEEP).await?;
    log.reverse();
    for entry in log {
        let ts = entry.get("ts").and_then(Value::as_i64).unwrap_or(0);
        write_record(&mut z, &Record::LogEntry { ts, entry })?;
        counts.log_entries += 1;
    }
    write_record(&mut z, &Record::End { counts })?;
    z.finish()?.flush()?;
    Ok(counts)
}

/// How a restore treats the datastore it writes into.
pub struct RestoreOptions<'a> {
    /// Replace the watches and tags already there (else a datastore with any is refused).
    pub force: bool,
    /// Now (epoch seconds): the restore's leases are taken from it.
    pub now: i64,
    /// Judges each document (settings, tag, watch) before anything is written: the store does
    /// not know the model, its caller does. `Err` names what is wrong.
    pub check: &'a (dyn Fn(Kind, &Value) -> Result<(), String> + Sync),
}

impl std::fmt::Debug for RestoreOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoreOptions")
            .field("force", &self.force)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// What a restore wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restored {
    pub manifest: Manifest,
    pub counts: Counts,
    /// Watches and tags removed first (`force`).
    pub replaced: usize,
}

/// The first bytes of every zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

type Decoded<R> =
    zstd::stream::read::Decoder<'static, BufReader<std::io::Chain<std::io::Cursor<[u8; 4]>, R>>>;

/// Line reader over a backup's decompressed stream.
struct Lines<R: Read> {
    inner: BufReader<Decoded<R>>,
    line: usize,
    buf: String,
}

impl<R: Read> Lines<R> {
    fn new(mut input: R) -> Result<Self, BackupError> {
        // A file that is not zstd at all is not a backup; one that stops decompressing later
        // is a damaged backup.
        let mut magic = [0u8; 4];
        input
            .read_exact(&mut magic)
            .map_err(|_| BackupError::NotABackup("it is shorter than a zstd header".into()))?;
        if magic != ZSTD_MAGIC {
            return Err(BackupError::NotABackup("it is not a zstd stream".into()));
        }
        let decoder = zstd::stream::read::Decoder::new(std::io::Cursor::new(magic).chain(input))
            .map_err(|e| BackupError::NotABackup(format!("not a zstd stream ({e})")))?;
        Ok(Lines {
            inner: BufReader::new(decoder),
            line: 0,
            buf: String::new(),
        })
    }

    fn damaged(&self, reason: impl Into<String>) -> BackupError {
        BackupError::Damaged {
            line: self.line,
            reason: reason.into(),
        }
    }

    /// The next record, `None` at the end of the stream.
    fn next(&mut self) -> Result<Option<Record>, BackupError> {
        self.buf.clear();
        self.line += 1;
        let n = self
            .inner
            .read_line(&mut self.buf)
            .map_err(|e| self.damaged(format!("cannot decompress it: {e}")))?;
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_str(self.buf.trim_end_matches('\n'))
            .map(Some)
            .map_err(|e| {
                if self.line == 1 {
                    BackupError::NotABackup(format!("the first line is not a manifest: {e}"))
                } else {
                    self.damaged(e.to_string())
                }
            })
    }
}

/// An id a key may be made of: what the API creates (uuids) and nothing a key encoding could
/// misread.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Reads the whole backup and checks it, writing nothing: the manifest (format and version
/// first, so a newer file is refused before anything else is judged), the order of records,
/// ids, ascending snapshot times, every document through `check`, and the `end` record's
/// counts against what came before it. A file cut short or altered fails here.
pub fn verify<R: Read>(
    input: R,
    check: &(dyn Fn(Kind, &Value) -> Result<(), String> + Sync),
) -> Result<(Manifest, Counts), BackupError> {
    let mut lines = Lines::new(input)?;
    let manifest = match lines.next()? {
        Some(Record::Manifest(m)) => m,
        Some(_) | None => {
            return Err(BackupError::NotABackup(
                "the first line is not a manifest".into(),
            ));
        }
    };
    if manifest.format != FORMAT {
        return Err(BackupError::NotABackup(format!(
            "its format is {:?}",
            manifest.format
        )));
    }
    if manifest.format_version > FORMAT_VERSION {
        return Err(BackupError::NewerVersion {
            found: manifest.format_version,
            writer: manifest.changewatch_version.clone(),
            ours: env!("CARGO_PKG_VERSION"),
        });
    }
    if manifest.format_version == 0 {
        return Err(lines.damaged("format_version 0 does not exist"));
    }
    let mut counts = Counts::default();
    let mut seen_settings = false;
    let mut tags = HashSet::new();
    let mut watches = HashSet::new();
    // The watch whose snapshots may follow: id, snapshots still expected, last time.
    let mut open: Option<(String, usize, Option<i64>)> = None;
    let mut tbf_done = false;
    let mut past_watches = false;
    loop {
        let Some(record) = lines.next()? else {
            return Err(lines.damaged("the file ends before its end record: it is truncated"));
        };
        let expecting = open.as_ref().is_some_and(|(_, left, _)| *left > 0);
        if expecting && !matches!(record, Record::Snapshot { .. }) {
            return Err(lines.damaged("a watch has fewer snapshots than it announced"));
        }
        match record {
            Record::Manifest(_) => return Err(lines.damaged("a second manifest")),
            Record::Settings { doc } => {
                if seen_settings || counts.tags + counts.watches > 0 {
                    return Err(lines.damaged("settings must come once, before tags and watches"));
                }
                check(Kind::Settings, &doc).map_err(|e| lines.damaged(format!("settings: {e}")))?;
                seen_settings = true;
            }
            Record::Tag { id, doc } => {
                if counts.watches > 0 || past_watches {
                    return Err(lines.damaged("tags must come before watches"));
                }
                if !valid_id(&id) || !tags.insert(id.clone()) {
                    return Err(lines.damaged(format!("tag id {id:?} is invalid or repeated")));
                }
                check(Kind::Tag, &doc).map_err(|e| lines.damaged(format!("tag {id}: {e}")))?;
                counts.tags += 1;
            }
            Record::Watch {
                id, doc, snapshots, ..
            } => {
                if past_watches {
                    return Err(lines.damaged("watches must come before the log"));
                }
                if !valid_id(&id) || !watches.insert(id.clone()) {
                    return Err(lines.damaged(format!("watch id {id:?} is invalid or repeated")));
                }
                check(Kind::Watch, &doc).map_err(|e| lines.damaged(format!("watch {id}: {e}")))?;
                counts.watches += 1;
                open = Some((id, snapshots, None));
                tbf_done = false;
            }
            Record::Snapshot {
                watch,
                ts,
                screenshot,
                ..
            } => {
                let Some((id, left, last)) = open
                    .as_mut()
                    .filter(|(id, left, _)| *id == watch && *left > 0)
                else {
                    return Err(lines.damaged(format!(
                        "a snapshot of {watch:?} that does not follow its watch, or one more than it announced"
                    )));
                };
                if last.is_some_and(|l| ts <= l) {
                    return Err(
                        lines.damaged(format!("snapshots of {id} are not in ascending time order"))
                    );
                }
                if let Some(s) = screenshot
                    && base64::engine::general_purpose::STANDARD.decode(s).is_err()
                {
                    return Err(
                        lines.damaged(format!("the screenshot of {id} at {ts} is not base64"))
                    );
                }
                *last = Some(ts);
                *left -= 1;
                counts.snapshots += 1;
            }
            Record::TextBeforeFilters { watch, .. } => {
                if tbf_done || open.as_ref().is_none_or(|(id, _, _)| *id != watch) {
                    return Err(lines.damaged(format!(
                        "the text before filters of {watch:?} does not follow its watch"
                    )));
                }
                tbf_done = true;
            }
            Record::LogEntry { entry, .. } => {
                if !entry.is_object() {
                    return Err(lines.damaged("a log entry is not an object"));
                }
                past_watches = true;
                open = None;
                counts.log_entries += 1;
            }
            Record::End { counts: stated } => {
                if stated != counts {
                    return Err(lines.damaged(format!(
                        "the end record states {stated:?} but the file holds {counts:?}"
                    )));
                }
                if lines.next()?.is_some() {
                    return Err(lines.damaged("records after the end record"));
                }
                return Ok((manifest, counts));
            }
        }
    }
}

/// Restores a backup into `tenant`: checked whole first ([`verify`]), refused when the tenant
/// has watches or tags unless `force` (they are deleted first), then written through the port:
/// settings (replacing the ones there: the backup's API key and password come with it), tags,
/// each watch with its schedule, its snapshots one commit each (oldest first, their times
/// kept, the newest two's HTML and screenshots with them) and its text before filters, and
/// the notification log.
pub async fn restore<R: Read + Seek + Send>(
    store: &dyn WatchStore,
    tenant: &str,
    mut input: R,
    opts: &RestoreOptions<'_>,
) -> Result<Restored, BackupError> {
    let (manifest, counts) = verify(&mut input, opts.check)?;
    let mut existing = Vec::new();
    for kind in [Kind::Watch, Kind::Tag] {
        store
            .list_each(tenant, kind, &mut |item| {
                existing.push(item.key);
                Ok(())
            })
            .await?;
    }
    if !existing.is_empty() && !opts.force {
        let watches = existing.iter().filter(|k| k.kind == Kind::Watch).count();
        return Err(BackupError::NotEmpty {
            watches,
            tags: existing.len() - watches,
        });
    }
    for key in &existing {
        store.delete(key, Expect::Any).await?;
    }
    input.seek(SeekFrom::Start(0))?;
    let mut lines = Lines::new(input)?;
    // A watch is written not due (its schedule comes last, see `finish`), so a running
    // server's scheduler cannot take a lease on it while its history is being written.
    let mut current: Option<Pending> = None;
    while let Some(record) = lines.next()? {
        match record {
            Record::Manifest(_) => {}
            Record::Settings { doc } => {
                store
                    .put(&Key::settings(tenant), doc, None, Expect::Any)
                    .await?;
            }
            Record::Tag { id, doc } => {
                store
                    .put(&Key::tag(tenant, &id), doc, None, Expect::Any)
                    .await?;
            }
            Record::Watch {
                id,
                doc,
                next_check_at,
                last_due_at,
                ..
            } => {
                finish(store, current.take()).await?;
                let key = Key::watch(tenant, &id);
                let parked = Schedule {
                    last_due_at,
                    ..Schedule::default()
                };
                store
                    .put(&key, doc.clone(), Some(parked), Expect::Any)
                    .await?;
                current = Some(Pending {
                    key,
                    doc,
                    schedule: Schedule {
                        next_check_at,
                        last_due_at,
                        ..Schedule::default()
                    },
                });
            }
            Record::Snapshot {
                ts,
                text,
                html,
                screenshot,
                ..
            } => {
                let Some(w) = &current else {
                    return Err(lines.damaged("a snapshot without its watch"));
                };
                let screenshot = screenshot
                    .map(|s| base64::engine::general_purpose::STANDARD.decode(s))
                    .transpose()
                    .map_err(|e| lines.damaged(e.to_string()))?;
                let snapshot = NewSnapshot {
                    ts,
                    text,
                    html,
                    screenshot,
                };
                commit(store, w, opts.now, Some(snapshot), None).await?;
            }
            Record::TextBeforeFilters { text, .. } => {
                let Some(w) = &current else {
                    return Err(lines.damaged("a text before filters without its watch"));
                };
                commit(store, w, opts.now, None, Some(text)).await?;
            }
            Record::LogEntry { ts, entry } => {
                finish(store, current.take()).await?;
                store.log_append(tenant, ts, entry, LOG_KEEP).await?;
            }
            Record::End { .. } => break,
        }
    }
    finish(store, current.take()).await?;
    Ok(Restored {
        manifest,
        counts,
        replaced: existing.len(),
    })
}

/// A restored watch whose history is being written.
struct Pending {
    key: Key,
    doc: Value,
    /// What it gets once its history is in.
    schedule: Schedule,
}

/// Gives a restored watch its schedule: it may be due from now on.
async fn finish(store: &dyn WatchStore, w: Option<Pending>) -> Result<(), BackupError> {
    if let Some(w) = w {
        store
            .put(&w.key, w.doc, Some(w.schedule), Expect::Exists)
            .await?;
    }
    Ok(())
}

/// One restore write of a watch's history: the port writes snapshots only as a check's
/// commit, under the check's lease, so a restore takes one and commits as a check would,
/// changing nothing in the document and leaving the watch not due.
async fn commit(
    store: &dyn WatchStore,
    w: &Pending,
    now: i64,
    snapshot: Option<NewSnapshot>,
    text_before_filters: Option<String>,
) -> Result<(), BackupError> {
    let Some(base) = store
        .claim(&w.key, RESTORE_OWNER, now + RESTORE_LEASE_SECS, now)
        .await?
    else {
        return Err(StoreError::LeaseLost(w.key.clone()).into());
    };
    store
        .commit_check(
            &w.key,
            RESTORE_OWNER,
            CheckCommit {
                patch: serde_json::Map::new(),
                next_check_at: None,
                due_at: w.schedule.last_due_at.unwrap_or(0),
                job_id: format!("restore-{}", uuid::Uuid::new_v4()),
                snapshot,
                base: Some(base),
                history_max: None,
                text_before_filters,
            },
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ok(_: Kind, _: &Value) -> Result<(), String> {
        Ok(())
    }

    fn file(lines: &[Value]) -> Vec<u8> {
        let mut text = String::new();
        for l in lines {
            text.push_str(&l.to_string());
            text.push('\n');
        }
        zstd::encode_all(text.as_bytes(), 3).unwrap()
    }

    fn manifest(version: u32) -> Value {
        serde_json::json!({"type": "manifest", "format": FORMAT, "format_version": version,
            "changewatch_version": "9.9.9", "created": 1, "source_mode": "embedded",
            "consistent": true, "tenant": "default"})
    }

    fn end(watches: usize, snapshots: usize) -> Value {
        serde_json::json!({"type": "end", "counts": {"tags": 0, "watches": watches, "snapshots": snapshots, "log_entries": 0}})
    }

    #[test]
    fn a_newer_format_is_refused_by_name() {
        let f = file(&[manifest(FORMAT_VERSION + 1), end(0, 0)]);
        let e = verify(&f[..], &ok).unwrap_err();
        assert!(
            matches!(e, BackupError::NewerVersion { found, .. } if found == FORMAT_VERSION + 1)
        );
        assert!(
            e.to_string().contains("written by changewatch 9.9.9"),
            "{e}"
        );
    }

    #[test]
    fn a_file_without_its_end_or_with_wrong_counts_is_damaged() {
        let watch = serde_json::json!({"type": "watch", "id": "w1", "doc": {}, "next_check_at": null, "last_due_at": null, "snapshots": 1});
        let snap = serde_json::json!({"type": "snapshot", "watch": "w1", "ts": 5, "text": "x", "html": null, "screenshot": null});
        assert!(
            verify(
                &file(&[manifest(1), watch.clone(), snap.clone(), end(1, 1)])[..],
                &ok
            )
            .is_ok()
        );
        let truncated = file(&[manifest(1), watch.clone(), snap.clone()]);
        assert!(
            verify(&truncated[..], &ok)
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
        let short = file(&[manifest(1), watch.clone(), end(1, 0)]);
        assert!(matches!(
            verify(&short[..], &ok),
            Err(BackupError::Damaged { line: 3, .. })
        ));
        let miscounted = file(&[manifest(1), watch, snap, end(2, 1)]);
        assert!(matches!(
            verify(&miscounted[..], &ok),
            Err(BackupError::Damaged { line: 4, .. })
        ));
        // A cut in the compressed bytes, not only at a line.
        let whole = file(&[manifest(1), end(0, 0)]);
        assert!(verify(&whole[..whole.len() - 3], &ok).is_err());
        assert!(matches!(
            verify(&b"plain text"[..], &ok),
            Err(BackupError::NotABackup(_))
        ));
    }

    #[test]
    fn unknown_fields_are_refused_not_dropped() {
        let mut m = manifest(1);
        m["extra"] = serde_json::json!(1);
        assert!(verify(&file(&[m, end(0, 0)])[..], &ok).is_err());
        let odd = serde_json::json!({"type": "settings", "doc": {}, "more": true});
        assert!(matches!(
            verify(&file(&[manifest(1), odd, end(0, 0)])[..], &ok),
            Err(BackupError::Damaged { line: 2, .. })
        ));
    }

    #[test]
    fn the_callers_check_judges_each_document() {
        let tag = serde_json::json!({"type": "tag", "id": "t1", "doc": {"title": 5}});
        let e = verify(
            &file(&[manifest(1), tag, serde_json::json!({"type": "end", "counts": {"tags": 1, "watches": 0, "snapshots": 0, "log_entries": 0}})])[..],
            &|kind, doc| match kind {
                Kind::Tag if !doc["title"].is_string() => Err("title: not a string".into()),
                _ => Ok(()),
            },
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the backup is damaged at line 2: tag t1: title: not a string"
        );
    }
}
