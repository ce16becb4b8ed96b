//! Importing upstream's datastore (a directory or its backup zip) into a store through the
//! [`WatchStore`] port, so SQLite and DynamoDB take it alike.
//!
//! Every watch and tag goes through the API's own write rules
//! ([`validate::create_watch_from_json`], [`validate::create_tag_from_json`], the apprise
//! check, the sandboxed template check), so an imported watch is what POST /watch would have
//! stored. A field those rules refuse is left out and reported with the item's uuid and the
//! rule's message; the rest of the item is imported. Global settings go through the settings
//! page's rules (`PUT /ui/settings`) where the page has the field, and are copied from
//! upstream's document (read by the same model) where it has not. History keeps its original
//! timestamps: each snapshot is committed as a check would commit it, oldest first.
//!
//! Idempotent: an item whose uuid the store has is left as it is (a second run, or an item
//! edited here since, is never overwritten), and a watch already present only gains the
//! snapshots newer than its newest. An interrupted run is finished by running it again.

mod migrate;
mod read;
pub mod zip;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use changewatch_core::model::{Settings, Tag, Watch};
use changewatch_engine::docs;
use changewatch_engine::timing::next_due;
use changewatch_sandbox::Sandbox;
use changewatch_store::{
    CheckCommit, Expect, HistoryMeta, Key, NewSnapshot, Schedule, StoreError, WatchStore,
};
use serde::Serialize;
use serde_json::{Map, Value};
use tracing::Instrument;

use crate::apprise::is_valid_apprise_url;
use crate::validate::{self, ApiContext, ApiValidationError};

pub use read::{LEGACY_FILE, SETTINGS_FILE};

/// Why an import could not run at all (a single item's trouble goes into the [`Report`]).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("not an upstream datastore: {0}")]
    NotADatastore(String),
    #[error("not a usable backup zip: {0}")]
    BadZip(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How to import.
#[derive(Clone, Debug)]
pub struct Options {
    pub tenant: String,
    /// Read, validate and count, write nothing.
    pub dry_run: bool,
    /// The deployment's `MINIMUM_SECONDS_RECHECK_TIME`, for the watches' next check.
    pub minimum_recheck_secs: u64,
    /// Epoch seconds the import runs at (the next check is scheduled from it).
    pub now: i64,
    /// A progress call every this many watches (and after the last).
    pub progress_every: usize,
    /// Keep this store's API key instead of upstream's: the key is fixed by the deployment
    /// (`API_ACCESS_TOKEN`), or the import came through the API, whose caller must not be
    /// locked out by its own upload.
    pub keep_api_key: bool,
}

/// Something the import could not bring over, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `settings`, `watch <uuid>`, `tag <uuid>` or a file.
    pub item: String,
    /// The field (or file) left out; `None` when the whole item was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub reason: String,
}

/// Items added, already there (left as they were), and refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub added: usize,
    pub present: usize,
    pub refused: usize,
}

/// What an import did (or, dry, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// `changedetection.json` (0.60's layout) or `url-watches.json` (the older one).
    pub layout: String,
    pub dry_run: bool,
    /// `imported`, `unchanged` (the store's already match) or `absent`.
    pub settings: String,
    pub tags: Counts,
    pub watches: Counts,
    /// `refused`: snapshots that could not be read.
    pub snapshots: Counts,
    pub problems: Vec<Problem>,
}

impl Report {
    /// True when a run changed (or, dry, would change) something.
    pub fn changed(&self) -> bool {
        self.settings == "imported"
            || self.tags.added > 0
            || self.watches.added > 0
            || self.snapshots.added > 0
    }

    /// The report for a person: counts, then every problem on a line of its own (what the
    /// import commands print).
    pub fn text(&self) -> String {
        let r = self;
        let mut s = String::new();
        let verb = if r.dry_run {
            "would import"
        } else {
            "imported"
        };
        s.push_str(&format!(
            "{} ({} layout){}\n",
            if r.dry_run { "dry run" } else { "import" },
            r.layout,
            if r.changed() {
                ""
            } else {
                ": nothing to change"
            }
        ));
        let settings = match (r.dry_run, r.settings.as_str()) {
            (true, "imported") => "would be imported",
            (_, other) => other,
        };
        s.push_str(&format!("settings: {settings}\n"));
        for (name, c) in [
            ("tags", r.tags),
            ("watches", r.watches),
            ("snapshots", r.snapshots),
        ] {
            s.push_str(&format!(
                "{name}: {verb} {}, already present {}, not imported {}\n",
                c.added, c.present, c.refused
            ));
        }
        if !r.problems.is_empty() {
            s.push_str(&format!("not imported ({}):\n", r.problems.len()));
            for p in &r.problems {
                match &p.field {
                    Some(f) => s.push_str(&format!("  {} {f}: {}\n", p.item, p.reason)),
                    None => s.push_str(&format!("  {}: {}\n", p.item, p.reason)),
                }
            }
        }
        s
    }

    fn problem(&mut self, item: impl Into<String>, field: Option<&str>, reason: impl Into<String>) {
        self.problems.push(Problem {
            item: item.into(),
            field: field.map(str::to_string),
            reason: reason.into(),
        });
    }
}

/// Called with (watches done, watches in all) every [`Options::progress_every`] watches.
pub type Progress<'a> = &'a mut (dyn FnMut(usize, usize) + Send);

/// Imports the datastore directory `dir` (either layout).
pub async fn import_dir(
    store: &dyn WatchStore,
    sandbox: Option<&Sandbox>,
    dir: &Path,
    opts: &Options,
    progress: Progress<'_>,
) -> Result<Report, ImportError> {
    let owned = dir.to_path_buf();
    let mut ds = tokio::task::spawn_blocking(move || read::read_datastore(&owned))
        .await
        .map_err(|e| ImportError::NotADatastore(format!("reading stopped: {e}")))??;
    migrate::apply(&mut ds);
    Importer {
        store,
        sandbox,
        opts,
        report: Report {
            layout: ds.layout.to_string(),
            dry_run: opts.dry_run,
            ..Report::default()
        },
    }
    .run(ds, progress)
    .await
}

/// Imports upstream's backup zip (its bytes): unpacked into a temporary directory, then
/// read as a datastore directory.
pub async fn import_zip(
    store: &dyn WatchStore,
    sandbox: Option<&Sandbox>,
    zip_bytes: Vec<u8>,
    opts: &Options,
    progress: Progress<'_>,
) -> Result<Report, ImportError> {
    if zip_bytes.len() > zip::MAX_ZIP_BYTES {
        return Err(ImportError::BadZip(format!(
            "{} bytes, over the {} upstream's restore takes",
            zip_bytes.len(),
            zip::MAX_ZIP_BYTES
        )));
    }
    let dir = tempfile::tempdir().map_err(|e| ImportError::Io {
        path: "temporary directory".into(),
        source: e,
    })?;
    let into = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        zip::unpack(
            std::io::Cursor::new(zip_bytes),
            &into,
            zip::MAX_UNPACKED_BYTES,
        )
    })
    .await
    .map_err(|e| ImportError::BadZip(format!("unpacking stopped: {e}")))??;
    import_dir(store, sandbox, dir.path(), opts, progress).await
}

/// Imports a backup zip from a file of this machine (the CLI): read as it is unpacked, not
/// held in memory, and without the upload's size limits (the operator chose the file; a
/// datastore of years can be larger than an upload may be). Names are vetted as for an upload.
pub async fn import_zip_file(
    store: &dyn WatchStore,
    sandbox: Option<&Sandbox>,
    path: &Path,
    opts: &Options,
    progress: Progress<'_>,
) -> Result<Report, ImportError> {
    let file = std::fs::File::open(path).map_err(|e| ImportError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let dir = tempfile::tempdir().map_err(|e| ImportError::Io {
        path: "temporary directory".into(),
        source: e,
    })?;
    let into = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        zip::unpack(std::io::BufReader::new(file), &into, u64::MAX)
    })
    .await
    .map_err(|e| ImportError::BadZip(format!("unpacking stopped: {e}")))??;
    import_dir(store, sandbox, dir.path(), opts, progress).await
}

/// Top-level keys of upstream's watch.json that are a watch's state rather than its
/// settings: carried over as they are (the API refuses them in a body).
const STATE_FIELDS: &[&str] = &[
    "date_created",
    "last_checked",
    "last_viewed",
    "previous_md5",
    "check_count",
    "page_title",
    "content-type",
    "fetch_time",
    "last_error",
    "consecutive_filter_failures",
    "notification_alert_count",
    "remote_server_reply",
    "has_ldjson_price_data",
    "browser_steps_last_error_step",
    "restock",
];

/// Kept out of the validated body: set from the import itself.
const OWN_FIELDS: &[&str] = &["uuid", "tags", "tag"];

struct Importer<'a> {
    store: &'a dyn WatchStore,
    sandbox: Option<&'a Sandbox>,
    opts: &'a Options,
    report: Report,
}

/// A value that holds nothing: an unknown field set to it loses nothing when left out.
fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(true) => false,
    }
}

/// Fields left out of an item: name, value, why.
type Dropped = Vec<(String, Option<Value>, String)>;

/// Runs `attempt` on `body`; fields it refuses are taken out (each tried alone on `base` to
/// find which, since the rules stop at the first error) and returned with the rule's message,
/// until the rest passes. `Err` when what fails is no single field (the item as a whole).
fn validate_by_field<T>(
    base: &Map<String, Value>,
    mut body: Map<String, Value>,
    attempt: &dyn Fn(Value) -> Result<T, ApiValidationError>,
) -> (Result<T, ApiValidationError>, Dropped) {
    let mut dropped = Vec::new();
    loop {
        match attempt(Value::Object(body.clone())) {
            Ok(t) => return (Ok(t), dropped),
            Err(ApiValidationError::UnknownFields(names)) => {
                for n in names {
                    let v = body.remove(&n);
                    dropped.push((n, v, "not a field changewatch has".to_string()));
                }
            }
            Err(e) => {
                let culprits: Vec<(String, String)> = body
                    .iter()
                    .filter(|(k, _)| !base.contains_key(*k))
                    .filter_map(|(k, v)| {
                        let mut one = base.clone();
                        one.insert(k.clone(), v.clone());
                        attempt(Value::Object(one))
                            .err()
                            .map(|e| (k.clone(), e.to_string()))
                    })
                    .collect();
                if culprits.is_empty() {
                    return (Err(e), dropped);
                }
                for (k, why) in culprits {
                    let v = body.remove(&k);
                    dropped.push((k, v, why));
                }
            }
        }
    }
}

impl Importer<'_> {
    async fn run(
        mut self,
        ds: read::Datastore,
        progress: Progress<'_>,
    ) -> Result<Report, ImportError> {
        for (item, why) in &ds.unreadable {
            self.report.problem(item.clone(), None, why.clone());
        }
        let settings = self.import_settings(ds.settings.as_ref()).await?;
        let tags = self.import_tags(&ds.tags).await?;
        let uuids: BTreeSet<&String> = ds.watches.keys().chain(ds.watch_files.keys()).collect();
        let total = uuids.len();
        let every = self.opts.progress_every.max(1);
        for (done, uuid) in uuids.into_iter().enumerate() {
            let raw = match ds.watch_files.get(uuid) {
                Some(path) => {
                    let path = path.clone();
                    let read = tokio::task::spawn_blocking(move || read::read_watch_file(&path))
                        .await
                        .map_err(|e| ImportError::NotADatastore(format!("reading stopped: {e}")))?;
                    match read {
                        Ok(mut doc) => {
                            migrate::item(&mut doc, false);
                            Some(doc)
                        }
                        Err(e) => {
                            self.report.problem(format!("watch {uuid}"), None, e);
                            self.report.watches.refused += 1;
                            None
                        }
                    }
                }
                None => ds.watches.get(uuid).cloned(),
            };
            if let Some(raw) = raw {
                let dir = ds.root.join(uuid);
                let span = tracing::info_span!("import_watch", watch = %uuid);
                self.import_watch(uuid, &raw, &dir, &settings, &tags)
                    .instrument(span)
                    .await?;
            }
            if (done + 1) % every == 0 || done + 1 == total {
                progress(done + 1, total);
            }
        }
        Ok(self.report)
    }

    // ---- settings ---------------------------------------------------------------------

    async fn import_settings(&mut self, upstream: Option<&Value>) -> Result<Settings, ImportError> {
        let key = Key::settings(&self.opts.tenant);
        let current = match self.store.get(&key).await? {
            Some(item) => Some(docs::decode::<Settings>(&item)?),
            None => None,
        };
        let Some(upstream) = upstream else {
            self.report.settings = "absent".into();
            return Ok(current.unwrap_or_default());
        };
        let up: Settings = match serde_json::from_value(upstream.clone()) {
            Ok(s) => s,
            Err(e) => {
                self.report
                    .problem("settings", None, format!("does not read: {e}"));
                self.report.settings = "absent".into();
                return Ok(current.unwrap_or_default());
            }
        };
        let mut target = current.clone().unwrap_or_else(Settings::new_with_tokens);
        let key_before = target.application.api_access_token.clone();
        copy_settings(&mut target, &up);
        if up.application.rss_reader_mode {
            self.report.problem(
                "settings",
                Some("rss_reader_mode"),
                "not supported: RSS replies are read as with the reader mode off",
            );
        }
        if self.opts.keep_api_key && target.application.api_access_token != key_before {
            target.application.api_access_token = key_before;
            self.report.problem(
                "settings",
                Some("api_access_token"),
                "upstream's API key is not taken: this server's key stays in force",
            );
        }
        // The settings page's fields, through its rules, in an order where the proxy list
        // is in place before the default proxy that must name one of it.
        let page: [(&str, &str); 15] = [
            ("requests", "extra_proxies"),
            ("requests", "extra_browsers"),
            ("requests", "jitter_seconds"),
            ("requests", "time_between_check"),
            ("requests", "proxy"),
            ("application", "global_ignore_text"),
            ("application", "global_subtractive_selectors"),
            ("application", "notification_urls"),
            ("application", "notification_title"),
            ("application", "notification_body"),
            ("application", "notification_format"),
            ("application", "rss_content_format"),
            ("application", "rss_diff_length"),
            ("application", "rss_hide_muted_watches"),
            ("application", "api_access_token_enabled"),
        ];
        for (section, field) in page {
            let Some(v) = upstream.get(section).and_then(|s| s.get(field)) else {
                continue;
            };
            if v.is_null() && field != "proxy" {
                continue;
            }
            let mut v = v.clone();
            if field == "notification_urls"
                && let Value::Array(urls) = &mut v
            {
                urls.retain(|u| {
                    let ok = u.as_str().is_none_or(is_valid_apprise_url);
                    if !ok {
                        self.report.problems.push(Problem {
                            item: "settings".into(),
                            field: Some(field.into()),
                            reason: format!(
                                "'{}' is not a valid AppRise URL.",
                                u.as_str().unwrap_or_default()
                            ),
                        });
                    }
                    ok
                });
            }
            let body = Map::from_iter([(field.to_string(), v)]);
            if let Err(e) = crate::routes::ui::apply_settings(&mut target, &body) {
                self.report.problem("settings", Some(field), e.to_string());
                continue;
            }
            if let Err(e) = self.check_templates(&Value::Object(body)).await {
                self.report.problem("settings", Some(field), e);
                // Back to what the store had (or the default).
                let before = current.clone().unwrap_or_default();
                match field {
                    "notification_title" => {
                        target.application.notification_title =
                            before.application.notification_title
                    }
                    _ => {
                        target.application.notification_body = before.application.notification_body
                    }
                }
            }
        }
        if current.as_ref() == Some(&target) {
            self.report.settings = "unchanged".into();
            return Ok(target);
        }
        self.report.settings = "imported".into();
        if !self.opts.dry_run {
            let doc = docs::encode(&target)?;
            let expect = match self.store.get(&key).await? {
                Some(item) => Expect::Version(item.version),
                None => Expect::Absent,
            };
            self.store.put(&key, doc, None, expect).await?;
        }
        Ok(target)
    }

    /// Notification templates through the notification engine's validator (in the
    /// sandbox), when there is one to run it in.
    async fn check_templates(&self, body: &Value) -> Result<(), String> {
        let Some(sandbox) = self.sandbox else {
            return Ok(());
        };
        validate::check_notification_templates(sandbox, body)
            .await
            .map_err(|e| e.to_string())
    }

    // ---- tags -------------------------------------------------------------------------

    /// Imports the tags; returns every tag uuid a watch may name (imported or already here).
    async fn import_tags(
        &mut self,
        tags: &BTreeMap<String, Map<String, Value>>,
    ) -> Result<BTreeSet<String>, ImportError> {
        let mut known: BTreeSet<String> = self
            .store
            .list(&self.opts.tenant, changewatch_store::Kind::Tag)
            .await?
            .into_iter()
            .map(|i| i.key.id)
            .collect();
        for (uuid, raw) in tags {
            let item = format!("tag {uuid}");
            if known.contains(uuid) {
                self.report.tags.present += 1;
                continue;
            }
            if !crate::extract::is_canonical_uuid(uuid) {
                self.report.problem(
                    item,
                    None,
                    "its uuid is not a canonical UUID, which the API's paths need",
                );
                self.report.tags.refused += 1;
                continue;
            }
            let mut body = raw.clone();
            for f in STATE_FIELDS.iter().chain(OWN_FIELDS) {
                body.remove(*f);
            }
            // Upstream gives every tag the restock processor on load; it is not a setting.
            body.remove("processor");
            body.retain(|k, v| !(k == "notification_urls" && is_empty_value(v)));
            let urls = body.remove("notification_urls");
            let base = Map::from_iter([(
                "title".to_string(),
                raw.get("title").cloned().unwrap_or(Value::Null),
            )]);
            let (created, dropped) =
                validate_by_field(&base, body, &|b| validate::create_tag_from_json(b));
            self.report_dropped(&item, dropped);
            let mut tag: Tag = match created {
                Ok(c) => c.into_tag(),
                Err(e) => {
                    self.report.problem(item, None, e.to_string());
                    self.report.tags.refused += 1;
                    continue;
                }
            };
            if let Some(Value::Array(urls)) = urls {
                for u in urls {
                    match u.as_str() {
                        Some(s) if is_valid_apprise_url(s) => {
                            tag.base.notification_urls.push(s.trim().to_string())
                        }
                        _ => self.report.problem(
                            item.clone(),
                            Some("notification_urls"),
                            format!("{u} is not a valid AppRise URL."),
                        ),
                    }
                }
            }
            for field in ["notification_title", "notification_body"] {
                if let Some(src) = raw.get(field).filter(|v| !is_empty_value(v))
                    && let Err(e) = self
                        .check_templates(&Value::Object(Map::from_iter([(
                            field.to_string(),
                            src.clone(),
                        )])))
                        .await
                {
                    self.report.problem(item.clone(), Some(field), e);
                    match field {
                        "notification_title" => tag.base.notification_title = None,
                        _ => tag.base.notification_body = None,
                    }
                }
            }
            tag.base.uuid = uuid.clone();
            tag.base.date_created = raw
                .get("date_created")
                .and_then(Value::as_i64)
                .or(Some(self.opts.now));
            if !self.opts.dry_run {
                let doc = docs::encode(&tag)?;
                self.store
                    .put(
                        &Key::tag(&self.opts.tenant, uuid),
                        doc,
                        None,
                        Expect::Absent,
                    )
                    .await?;
            }
            known.insert(uuid.clone());
            self.report.tags.added += 1;
        }
        Ok(known)
    }

    fn report_dropped(&mut self, item: &str, dropped: Dropped) {
        for (field, value, why) in dropped {
            // An unknown field left at a value that means nothing loses nothing.
            if why == "not a field changewatch has" && value.as_ref().is_none_or(is_empty_value) {
                continue;
            }
            self.report.problem(item, Some(&field), why);
        }
    }

    // ---- watches ----------------------------------------------------------------------

    async fn import_watch(
        &mut self,
        uuid: &str,
        raw: &Map<String, Value>,
        dir: &Path,
        settings: &Settings,
        tags: &BTreeSet<String>,
    ) -> Result<(), ImportError> {
        let item_name = format!("watch {uuid}");
        let key = Key::watch(&self.opts.tenant, uuid);
        let processor = raw
            .get("processor")
            .and_then(Value::as_str)
            .map(str::to_string);
        let index = read::history_index_for(dir, processor.as_deref());
        let (entries, bad_lines) = read::read_history(dir, &index);
        for line in bad_lines {
            self.report.problem(item_name.clone(), Some(&index), line);
        }

        if let Some(existing) = self.store.get(&key).await? {
            self.report.watches.present += 1;
            return self
                .import_history(&key, uuid, dir, &entries, existing.history, None)
                .await;
        }
        if !crate::extract::is_canonical_uuid(uuid) {
            self.report.problem(
                item_name,
                None,
                "its uuid is not a canonical UUID, which the API's paths need",
            );
            self.report.watches.refused += 1;
            return Ok(());
        }

        let Some(mut watch) = self
            .validated_watch(uuid, raw, dir, processor.as_deref(), settings)
            .await
        else {
            self.report.watches.refused += 1;
            return Ok(());
        };
        for t in raw
            .get("tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match t.as_str() {
                Some(t) if tags.contains(t) => {
                    if !watch.tags.iter().any(|x| x == t) {
                        watch.tags.push(t.to_string());
                    }
                }
                _ => self.report.problem(
                    item_name.clone(),
                    Some("tags"),
                    format!("{t} names no tag of the datastore"),
                ),
            }
        }
        if let Some(names) = raw
            .get("tag")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
        {
            self.report.problem(
                item_name.clone(),
                Some("tag"),
                format!("legacy tag names {names:?} (upstream moved them into tags long ago) are not resolved"),
            );
        }
        for f in read::unmapped_files(dir) {
            self.report.problem(item_name.clone(), None, f);
        }

        let next = next_due(
            &watch,
            settings,
            watch.last_checked,
            self.opts.now,
            self.opts.minimum_recheck_secs,
        );
        if !self.opts.dry_run {
            let doc = docs::encode(&watch)?;
            // Out of the due index until its history is in: a running scheduler must not
            // check it between two of its snapshots.
            let schedule = match entries.is_empty() {
                true => Schedule {
                    next_check_at: next,
                    ..Schedule::default()
                },
                false => Schedule::default(),
            };
            self.store
                .put(&key, doc, Some(schedule), Expect::Absent)
                .await?;
        }
        self.report.watches.added += 1;
        self.import_history(
            &key,
            uuid,
            dir,
            &entries,
            HistoryMeta::default(),
            Some(next),
        )
        .await
    }

    /// The watch as the API would store it from upstream's watch.json, plus its state;
    /// `None` (reported) when the API refuses it as a whole.
    async fn validated_watch(
        &mut self,
        uuid: &str,
        raw: &Map<String, Value>,
        dir: &Path,
        processor: Option<&str>,
        settings: &Settings,
    ) -> Option<Watch> {
        let item = format!("watch {uuid}");
        let mut body = raw.clone();
        for f in STATE_FIELDS.iter().chain(OWN_FIELDS) {
            body.remove(*f);
        }
        // Upstream keeps a processor's config beside the watch, not in watch.json: in
        // `<processor>.json`, under the processor's name (what its API reads back).
        if let Some(p) = processor.filter(|p| *p != "text_json_diff")
            && let Ok(text) = std::fs::read_to_string(dir.join(format!("{p}.json")))
        {
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(mut v)) => match v.remove(p) {
                    Some(config) => {
                        body.insert(format!("processor_config_{p}"), config);
                    }
                    None if v.is_empty() => {}
                    None => self.report.problem(
                        item.clone(),
                        Some(&format!("{p}.json")),
                        format!("has no \"{p}\" key, so upstream itself read no config from it"),
                    ),
                },
                Ok(_) => self.report.problem(
                    item.clone(),
                    Some(&format!("{p}.json")),
                    "not a JSON object",
                ),
                Err(e) => self.report.problem(
                    item.clone(),
                    Some(&format!("{p}.json")),
                    format!("not JSON: {e}"),
                ),
            }
        }
        // A release before upstream's `update_30` kept the restock settings in the watch.
        if let Some(legacy) = body.remove("__restock_settings")
            && processor == Some("restock_diff")
        {
            body.entry("processor_config_restock_diff")
                .or_insert(legacy);
        }
        // A URL the API refuses would take the whole list with it: only that one is left out.
        if let Some(Value::Array(urls)) = body.get_mut("notification_urls") {
            urls.retain(|u| {
                let ok = u.as_str().is_none_or(is_valid_apprise_url);
                if !ok {
                    self.report.problems.push(Problem {
                        item: item.clone(),
                        field: Some("notification_urls".into()),
                        reason: format!("{u} is not a valid AppRise URL."),
                    });
                }
                ok
            });
        }
        // Templates through the notification engine's validator first (the API does so
        // after its own rules; a refused one is left out either way).
        for (field, _) in validate::notification_templates(&Value::Object(body.clone())) {
            let one = Value::Object(Map::from_iter([(field.clone(), body[&field].clone())]));
            if let Err(e) = self.check_templates(&one).await {
                body.remove(&field);
                self.report.problem(item.clone(), Some(&field), e);
            }
        }
        let proxies = validate::proxy_names(settings);
        let browsers = settings.requests.extra_browser_backends();
        let base = Map::from_iter([(
            "url".to_string(),
            raw.get("url").cloned().unwrap_or(Value::Null),
        )]);
        let (created, dropped) = {
            let ctx = ApiContext {
                proxy_names: &proxies,
                extra_browsers: &browsers,
                notification_url_validator: Some(&is_valid_apprise_url),
            };
            validate_by_field(&base, body, &|b| validate::create_watch_from_json(b, &ctx))
        };
        self.report_dropped(&item, dropped);
        let mut watch = match created {
            Ok(c) => c.watch,
            Err(e) => {
                self.report.problem(item, None, e.to_string());
                return None;
            }
        };
        watch.uuid = uuid.to_string();
        self.copy_state(&item, raw, &mut watch);
        if watch.date_created.is_none() {
            watch.date_created = Some(self.opts.now);
        }
        Some(watch)
    }

    /// Upstream's state fields, read by the same model; one that does not read is reported.
    fn copy_state(&mut self, item: &str, raw: &Map<String, Value>, watch: &mut Watch) {
        let mut state: Map<String, Value> = raw
            .iter()
            .filter(|(k, _)| STATE_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let read =
            |m: &Map<String, Value>| serde_json::from_value::<Watch>(Value::Object(m.clone()));
        let s = loop {
            match read(&state) {
                Ok(s) => break s,
                Err(_) => {
                    let bad: Vec<String> = state
                        .iter()
                        .filter(|(k, v)| {
                            read(&Map::from_iter([((*k).clone(), (*v).clone())])).is_err()
                        })
                        .map(|(k, _)| k.clone())
                        .collect();
                    if bad.is_empty() {
                        self.report.problem(
                            item,
                            None,
                            "its state fields do not read together; left at their defaults",
                        );
                        return;
                    }
                    for k in bad {
                        state.remove(&k);
                        self.report.problem(
                            item,
                            Some(&k),
                            "a value changewatch's model does not read",
                        );
                    }
                }
            }
        };
        watch.date_created = s.date_created;
        watch.last_checked = s.last_checked;
        watch.last_viewed = s.last_viewed;
        watch.previous_md5 = s.previous_md5;
        watch.check_count = s.check_count;
        watch.page_title = s.page_title;
        watch.content_type = s.content_type;
        watch.fetch_time = s.fetch_time;
        watch.last_error = s.last_error;
        watch.consecutive_filter_failures = s.consecutive_filter_failures;
        watch.notification_alert_count = s.notification_alert_count;
        watch.remote_server_reply = s.remote_server_reply;
        watch.has_ldjson_price_data = s.has_ldjson_price_data;
        watch.browser_steps_last_error_step = s.browser_steps_last_error_step;
        watch.restock = s.restock;
    }

    /// Commits the entries newer than `have.newest`, oldest first, each as a check commits
    /// its snapshot (the HTML upstream kept with it; the text before filters with the last).
    /// `schedule_after`: the new watch's next check, set by the last commit.
    async fn import_history(
        &mut self,
        key: &Key,
        uuid: &str,
        dir: &Path,
        entries: &[read::HistoryEntry],
        have: HistoryMeta,
        schedule_after: Option<Option<i64>>,
    ) -> Result<(), ImportError> {
        let item = format!("watch {uuid}");
        let newest = have.newest.unwrap_or(i64::MIN);
        let (old, new): (Vec<_>, Vec<_>) = entries.iter().partition(|e| e.ts <= newest);
        self.report.snapshots.present += old.len();
        if new.is_empty() {
            return Ok(());
        }
        let owner = format!("import-{}", std::process::id());
        let n = new.len();
        let mut finished = false;
        for (i, entry) in new.into_iter().enumerate() {
            let last = i + 1 == n;
            let d = dir.to_path_buf();
            let file = entry.file.clone();
            let ts = entry.ts;
            let read = tokio::task::spawn_blocking(move || {
                let text = read::read_snapshot(&d, &file)?;
                let html = read::read_html(&d, ts);
                let before = if last {
                    read::read_text_before_filters(&d)
                } else {
                    None
                };
                Ok::<_, String>((text, html, before))
            })
            .await
            .map_err(|e| ImportError::NotADatastore(format!("reading stopped: {e}")))?;
            let (text, html, before) = match read {
                Ok(r) => r,
                Err(e) => {
                    self.report.problem(item.clone(), Some(&entry.file), e);
                    self.report.snapshots.refused += 1;
                    continue;
                }
            };
            self.report.snapshots.added += 1;
            if self.opts.dry_run {
                continue;
            }
            let now = self.opts.now;
            let Some(base) = self.store.claim(key, &owner, now + 3600, now).await? else {
                self.report.problem(
                    item.clone(),
                    None,
                    "a check holds the watch: its remaining history was not imported (run the import again)",
                );
                self.report.snapshots.added -= 1;
                return Ok(());
            };
            let next_check_at = match (last, schedule_after) {
                (true, Some(next)) => next,
                _ => base.schedule.as_ref().and_then(|s| s.next_check_at),
            };
            let outcome = self
                .store
                .commit_check(
                    key,
                    &owner,
                    CheckCommit {
                        patch: Map::new(),
                        next_check_at,
                        due_at: 0,
                        job_id: format!("import-{uuid}-{ts}"),
                        snapshot: Some(NewSnapshot {
                            ts,
                            text,
                            html,
                            screenshot: None,
                        }),
                        base: Some(base),
                        history_max: None,
                        text_before_filters: before,
                    },
                )
                .await?;
            if outcome.snapshot_ts != Some(ts) {
                self.report.problem(
                    item.clone(),
                    Some(&entry.file),
                    format!(
                        "stored at {:?}, not {ts}: a newer snapshot was there first",
                        outcome.snapshot_ts
                    ),
                );
            }
            finished = last;
        }
        // The last entries did not read: the schedule (and the text before filters) still
        // go on, in a commit without a snapshot.
        if let (false, false, Some(next)) = (finished, self.opts.dry_run, schedule_after) {
            let now = self.opts.now;
            let Some(base) = self.store.claim(key, &owner, now + 3600, now).await? else {
                self.report.problem(
                    item,
                    None,
                    "a check holds the watch: its schedule was not set (run the import again)",
                );
                return Ok(());
            };
            let d = dir.to_path_buf();
            let before = tokio::task::spawn_blocking(move || read::read_text_before_filters(&d))
                .await
                .map_err(|e| ImportError::NotADatastore(format!("reading stopped: {e}")))?;
            self.store
                .commit_check(
                    key,
                    &owner,
                    CheckCommit {
                        patch: Map::new(),
                        next_check_at: next,
                        due_at: 0,
                        job_id: format!("import-{uuid}-schedule"),
                        snapshot: None,
                        base: Some(base),
                        history_max: None,
                        text_before_filters: before,
                    },
                )
                .await?;
        }
        Ok(())
    }
}

/// The settings upstream's document has that the settings page does not edit: the same
/// model reads them, so they are taken as they are. Tokens and the password hash come
/// along (upstream's formats are this project's), so clients and the dashboard login keep
/// working; this deployment's session keys stay.
fn copy_settings(target: &mut Settings, up: &Settings) {
    target.headers = up.headers.clone();
    let (r, ur) = (&mut target.requests, &up.requests);
    r.timeout = ur.timeout;
    r.workers = ur.workers;
    r.default_ua = ur.default_ua.clone();
    r.time_schedule_limit = ur.time_schedule_limit.clone();
    let (a, ua) = (&mut target.application, &up.application);
    a.all_paused = ua.all_paused;
    a.all_muted = ua.all_muted;
    if ua
        .api_access_token
        .as_deref()
        .is_some_and(|t| !t.is_empty())
    {
        a.api_access_token = ua.api_access_token.clone();
    }
    if ua
        .rss_access_token
        .as_deref()
        .is_some_and(|t| !t.is_empty())
    {
        a.rss_access_token = ua.rss_access_token.clone();
    }
    if ua.password.is_set() {
        a.password = ua.password.clone();
    }
    a.base_url = ua.base_url.clone();
    a.empty_pages_are_a_change = ua.empty_pages_are_a_change;
    a.fetch_backend = ua.fetch_backend.clone();
    a.filter_failure_notification_threshold_attempts =
        ua.filter_failure_notification_threshold_attempts;
    a.history_snapshot_max_length = ua.history_snapshot_max_length;
    a.ignore_whitespace = ua.ignore_whitespace;
    a.ignore_status_codes = ua.ignore_status_codes;
    a.ssim_threshold = ua.ssim_threshold.clone();
    a.pager_size = ua.pager_size;
    a.render_anchor_tag_content = ua.render_anchor_tag_content;
    a.rss_template_type = ua.rss_template_type.clone();
    a.rss_template_override = ua.rss_template_override.clone();
    // Not taken: nothing here formats RSS items (the importer reports it when it was on).
    a.rss_reader_mode = false;
    a.scheduler_timezone_default = ua.scheduler_timezone_default.clone();
    a.schema_version = ua.schema_version;
    a.shared_diff_access = ua.shared_diff_access;
    a.strip_ignored_lines = ua.strip_ignored_lines;
    a.webdriver_delay = ua.webdriver_delay;
    a.ui = ua.ui.clone();
    a.llm = ua.llm.clone();
}
