//! The values that cross the store ports.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What an item is. The names are the sort-key prefixes of the DynamoDB layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    Watch,
    Tag,
    Settings,
    Stats,
    /// The tenant's notification log (a singleton, like settings).
    NotificationLog,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Watch => "W",
            Kind::Tag => "TAG",
            Kind::Settings => "SETTINGS",
            Kind::Stats => "STATS",
            Kind::NotificationLog => "NOTIFYLOG",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "W" => Kind::Watch,
            "TAG" => Kind::Tag,
            "SETTINGS" => Kind::Settings,
            "STATS" => Kind::Stats,
            "NOTIFYLOG" => Kind::NotificationLog,
            _ => return None,
        })
    }
}

/// A queue mark older than this no longer blocks queueing: its job was lost (a message that
/// ended in a dead-letter queue, a process that died with its queue unrun), and without a
/// bound the watch would never be checked again.
pub const QUEUED_MARK_TTL_SECS: i64 = 3600;

/// The single tenant of embedded mode.
pub const DEFAULT_TENANT: &str = "default";

/// Identifies one item. Settings and stats are singletons with the id `""`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Key {
    pub tenant: String,
    pub kind: Kind,
    pub id: String,
}

impl Key {
    pub fn watch(tenant: &str, id: &str) -> Key {
        Key {
            tenant: tenant.to_string(),
            kind: Kind::Watch,
            id: id.to_string(),
        }
    }

    pub fn tag(tenant: &str, id: &str) -> Key {
        Key {
            tenant: tenant.to_string(),
            kind: Kind::Tag,
            id: id.to_string(),
        }
    }

    pub fn settings(tenant: &str) -> Key {
        Key {
            tenant: tenant.to_string(),
            kind: Kind::Settings,
            id: String::new(),
        }
    }

    pub fn stats(tenant: &str) -> Key {
        Key {
            tenant: tenant.to_string(),
            kind: Kind::Stats,
            id: String::new(),
        }
    }

    pub fn notification_log(tenant: &str) -> Key {
        Key {
            tenant: tenant.to_string(),
            kind: Kind::NotificationLog,
            id: String::new(),
        }
    }
}

/// Scheduling state of a watch: what the due index and the lease need.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// When the next check is due (epoch s); `None` keeps the watch out of the due index
    /// (paused, or a schedule window with no open day).
    pub next_check_at: Option<i64>,
    /// Set while a job for the watch waits in a queue: the scheduler never queues it twice.
    pub queued_at: Option<i64>,
    /// Holder and expiry of the check lease.
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    /// `due_at` of the last committed check: a scheduled job for a due time at or before it is
    /// stale.
    pub last_due_at: Option<i64>,
    /// Id of the job whose check was committed last: a redelivery of that job is a no-op.
    pub last_job_id: Option<String>,
}

impl Schedule {
    pub fn due_at(next_check_at: i64) -> Schedule {
        Schedule {
            next_check_at: Some(next_check_at),
            ..Schedule::default()
        }
    }

    /// A lease that has not expired at `now`.
    pub fn leased(&self, now: i64) -> bool {
        self.lease_owner.is_some() && self.lease_until.is_some_and(|u| u > now)
    }
}

/// One stored item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub key: Key,
    /// Starts at 1 and grows by one with every write: the optimistic-concurrency token.
    pub version: u64,
    /// Shared: a change event carries the item before and after a write to every feed
    /// subscriber, and a schedule-only write (queue mark, lease) leaves the document as it was,
    /// so copies of an item share one document instead of each cloning the tree.
    pub doc: Doc,
    /// Present for watches.
    pub schedule: Option<Schedule>,
    /// Watches only; changed in the same atomic write as the snapshots.
    #[serde(default)]
    pub history: HistoryMeta,
}

/// What the API and the push layer need to know about a watch's history without reading its
/// snapshots. It lives on the item so that a reader never pairs a watch document with a history
/// from another moment, and so that a change event (a stream record) carries it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryMeta {
    pub count: usize,
    /// Timestamp of the newest snapshot.
    pub newest: Option<i64>,
}

/// Condition of a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The item must not exist (create).
    Absent,
    /// The item must exist at exactly this version.
    Version(u64),
    /// The item must exist, at any version.
    Exists,
    /// No condition (upsert).
    Any,
}

/// A watch that the scheduler should queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueWatch {
    pub key: Key,
    pub next_check_at: i64,
}

/// A snapshot to store with a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSnapshot {
    /// Requested timestamp (the check's start); moved one second past the newest snapshot when
    /// it collides, as upstream does.
    pub ts: i64,
    pub text: String,
    /// Raw HTML of the fetch, kept for the newest two snapshots.
    pub html: Option<String>,
    /// The browser's screenshot of the page (JPEG), kept like the HTML for the newest two
    /// snapshots. Stored as it is: it is compressed already.
    pub screenshot: Option<Vec<u8>>,
}

/// Everything a finished check writes, in one atomic commit.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckCommit {
    /// Top-level fields the check sets on the watch document (status fields: `last_checked`,
    /// `previous_md5`, `last_error`, …). A patch rather than a whole document, so that a user's
    /// edit saved while the check ran is kept, not overwritten.
    pub patch: serde_json::Map<String, serde_json::Value>,
    pub next_check_at: Option<i64>,
    /// The job's `due_at` and id, recorded so that stale and redelivered jobs are recognised.
    pub due_at: i64,
    pub job_id: String,
    pub snapshot: Option<NewSnapshot>,
    /// The watch as the check began with it (what `begin_check` returned). An adapter may
    /// build the new document from it instead of reading the watch again: the commit is
    /// conditional on its version, so a base that a user's edit overtook costs a retry, never
    /// a lost edit. `None`: the adapter reads the watch.
    pub base: Option<Item>,
    /// Keep at most this many snapshots (oldest removed first).
    pub history_max: Option<usize>,
    /// The check's text before ignore/extract rules, kept (replacing the previous one) for the
    /// next check's added/removed/replaced-only comparison; `None` leaves the kept one alone.
    pub text_before_filters: Option<String>,
}

/// What a commit stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitOutcome {
    pub version: u64,
    /// The snapshot's final timestamp, when one was stored.
    pub snapshot_ts: Option<i64>,
    pub history_len: usize,
}

/// Queue a job goes to. Manual rechecks have their own queue so that they run first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Lane {
    Recheck,
    Scheduled,
}

/// One requested check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckJob {
    /// Unique per job (not per watch): the idempotency key of at-least-once delivery.
    pub id: String,
    pub tenant: String,
    pub watch_id: String,
    /// When the check was due (the idempotency token of the job).
    pub due_at: i64,
    pub lane: Lane,
    /// Upstream's priority: 1 for manual rechecks, the due epoch for scheduled checks; lower
    /// runs first.
    pub priority: i64,
    pub enqueued_at: i64,
}

impl CheckJob {
    /// A new job with a fresh id.
    pub fn new(key: &Key, due_at: i64, lane: Lane, priority: i64, now: i64) -> CheckJob {
        CheckJob {
            id: uuid::Uuid::new_v4().to_string(),
            tenant: key.tenant.clone(),
            watch_id: key.id.clone(),
            due_at,
            lane,
            priority,
            enqueued_at: now,
        }
    }

    pub fn key(&self) -> Key {
        Key::watch(&self.tenant, &self.watch_id)
    }
}

/// The 16 bytes of a lowercase hyphenated uuid, `None` for any other string. The form is one
/// to one with the bytes, so a table keyed by them tells two ids apart exactly when their
/// strings differ: what lets the queue and the push layer keep every id the API makes in 16
/// bytes instead of a 36-byte string on the heap.
pub fn uuid_bytes(id: &str) -> Option<[u8; 16]> {
    let parsed = uuid::Uuid::try_parse(id).ok()?;
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    (parsed.hyphenated().encode_lower(&mut buf) == id).then(|| parsed.into_bytes())
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueDepth {
    pub rechecks: usize,
    pub scheduled: usize,
}

impl QueueDepth {
    pub fn total(&self) -> usize {
        self.rechecks + self.scheduled
    }
}

/// One delivery of one rendered notification to one URL. A change notifying three URLs is three
/// jobs, so that a retry never sends a second copy to the URLs that already accepted it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationJob {
    pub id: String,
    pub tenant: String,
    /// `None` for notifications that belong to no watch (a test from the settings page).
    pub watch_id: Option<String>,
    /// `change`, `filter_failure` or `test`: shown in the notification log.
    pub kind: String,
    pub url: String,
    pub title: String,
    pub body: String,
    /// The body's format (`text`, `html`, `markdown`).
    pub format: String,
    pub created_at: i64,
    /// Attach the watch's screenshot stored with this snapshot (`notification_screenshot`):
    /// a reference, loaded at delivery, so a queued job stays small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screenshot: Option<i64>,
}

/// A notification job handed out by a queue, hidden from other receivers until acknowledged,
/// retried, or its lease runs out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedNotification {
    pub job: NotificationJob,
    /// Names this delivery for `ack`/`retry_after` (SQS: the receipt handle).
    pub receipt: String,
    /// 1 on the first delivery, growing with every redelivery and retry.
    pub attempt: u32,
}

/// A committed change: the stream record the push layer turns into Socket.IO events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub key: Key,
    pub old: Option<Item>,
    pub new: Option<Item>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The write's condition did not hold (someone else wrote first, or existence differed).
    #[error("conditional write failed for {0:?}")]
    Conflict(Key),
    /// The check lease is held by someone else or expired and was taken over.
    #[error("lease on {0:?} is not held by this checker")]
    LeaseLost(Key),
    /// The backend failed (I/O, SQLite, AWS service error). `source` keeps the original error
    /// (for logs that print the chain, and for callers that need to look at it).
    #[error("store backend error: {message}")]
    Backend {
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Stored data could not be decoded: never silently dropped.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// A backend failure described in words (no underlying error to keep).
    pub fn backend(message: impl Into<String>) -> Self {
        StoreError::Backend {
            message: message.into(),
            source: None,
        }
    }

    /// A backend failure caused by `source`, kept as the error's source.
    pub fn backend_source<E: std::error::Error + Send + Sync + 'static>(source: E) -> Self {
        StoreError::Backend {
            message: source.to_string(),
            source: Some(Box::new(source)),
        }
    }
}

#[cfg(test)]
mod error_tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_backend_error_keeps_its_cause() {
        let cause = std::io::Error::other("disk on fire");
        let e = StoreError::backend_source(cause);
        assert_eq!(e.to_string(), "store backend error: disk on fire");
        let source = e.source().map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("disk on fire"));
        assert!(StoreError::backend("no URL").source().is_none());
    }
}

/// An item's JSON document. Read from a store it stays text until something looks inside: a
/// queue mark or a lease reads the item and writes only its schedule, and parsing the ~3 KB
/// watch document into a tree for them was a fifth of an unchanged check's CPU. A reader
/// that wants a typed view ([`Doc::decode`]) decodes the text straight into it. Cheap to
/// clone: clones share the text and the tree, which is built once, by the first to ask.
#[derive(Clone)]
pub struct Doc(Arc<DocInner>);

struct DocInner {
    /// The stored text, when the document came from a store.
    json: Option<String>,
    value: std::sync::OnceLock<serde_json::Value>,
}

impl Doc {
    /// A document already parsed (built by the caller).
    pub fn new(value: serde_json::Value) -> Self {
        let cell = std::sync::OnceLock::new();
        let _ = cell.set(value);
        Doc(Arc::new(DocInner {
            json: None,
            value: cell,
        }))
    }

    /// A document as stored: parsed when first looked into.
    pub fn from_json(json: String) -> Self {
        Doc(Arc::new(DocInner {
            json: Some(json),
            value: std::sync::OnceLock::new(),
        }))
    }

    /// The document as a tree; `Corrupt` when the stored text is not JSON.
    pub fn value(&self) -> Result<&serde_json::Value, StoreError> {
        if let Some(v) = self.0.value.get() {
            return Ok(v);
        }
        let json = self.0.json.as_deref().unwrap_or("null");
        let parsed = serde_json::from_str(json).map_err(corrupt_doc)?;
        Ok(self.0.value.get_or_init(|| parsed))
    }

    /// The document as a `T`: from the tree when it is built, else straight from the text.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        match (self.0.value.get(), &self.0.json) {
            (Some(v), _) => T::deserialize(v),
            (None, Some(json)) => serde_json::from_str(json),
            (None, None) => T::deserialize(&serde_json::Value::Null),
        }
    }

    /// The document as JSON text (the stored text when there is one).
    pub fn to_json(&self) -> Result<std::borrow::Cow<'_, str>, StoreError> {
        match (&self.0.json, self.0.value.get()) {
            (Some(json), _) => Ok(std::borrow::Cow::Borrowed(json)),
            (None, Some(v)) => serde_json::to_string(v)
                .map(std::borrow::Cow::Owned)
                .map_err(|e| StoreError::Corrupt(format!("document: {e}"))),
            (None, None) => Ok(std::borrow::Cow::Borrowed("null")),
        }
    }

    /// A copy of the tree to change and write back.
    pub fn to_value(&self) -> Result<serde_json::Value, StoreError> {
        match (self.0.value.get(), &self.0.json) {
            (Some(v), _) => Ok(v.clone()),
            // Parsed into a tree of its own: no shared tree built only to be copied.
            (None, Some(json)) => serde_json::from_str(json).map_err(corrupt_doc),
            (None, None) => Ok(serde_json::Value::Null),
        }
    }

    /// The document with `patch`'s top-level fields set (a check's status fields). From stored
    /// text, the fields are replaced in the text, each other field's value copied as it is,
    /// never parsed: a check's commit did that to the whole ~3 KB watch document, and wrote
    /// it back out, for a dozen fields. The new document is text again.
    pub fn patched(
        &self,
        patch: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Doc, StoreError> {
        let not_object = || StoreError::Corrupt("stored document is not an object".into());
        let Some(json) = self
            .0
            .json
            .as_deref()
            .filter(|_| self.0.value.get().is_none())
        else {
            let mut value = self.to_value()?;
            let obj = value.as_object_mut().ok_or_else(not_object)?;
            for (k, v) in patch {
                obj.insert(k.clone(), v.clone());
            }
            return Ok(Doc::new(value));
        };
        // Sorted by key, as a tree's map is: the same text either way, but for each untouched
        // value's own spelling (kept as stored). Text that is not an object does not read.
        let mut fields: std::collections::BTreeMap<String, &serde_json::value::RawValue> =
            serde_json::from_str(json).map_err(corrupt_doc)?;
        let patched = patch
            .iter()
            .map(|(k, v)| Ok((k, serde_json::value::to_raw_value(v).map_err(corrupt_doc)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        for (k, v) in &patched {
            fields.insert((*k).clone(), v.as_ref());
        }
        serde_json::to_string(&fields)
            .map(Doc::from_json)
            .map_err(corrupt_doc)
    }
}

/// A document's text that does not read (or write) as JSON of the expected shape.
fn corrupt_doc(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("stored document: {e}"))
}

impl From<serde_json::Value> for Doc {
    fn from(value: serde_json::Value) -> Self {
        Doc::new(value)
    }
}

impl PartialEq for Doc {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || matches!((self.value(), other.value()), (Ok(a), Ok(b)) if a == b)
    }
}

impl std::fmt::Debug for Doc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.0.value.get(), &self.0.json) {
            (Some(v), _) => v.fmt(f),
            (None, Some(json)) => f.write_str(json),
            (None, None) => f.write_str("null"),
        }
    }
}

impl Serialize for Doc {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value()
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Doc {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(deserializer).map(Doc::new)
    }
}

#[cfg(test)]
mod doc_tests {
    use super::*;

    #[test]
    fn stored_text_is_parsed_once_on_first_look() {
        let doc = Doc::from_json(r#"{"a": 1, "b": [true]}"#.into());
        let copy = doc.clone();
        assert_eq!(doc.decode::<serde_json::Value>().unwrap()["a"], 1);
        assert_eq!(doc.value().unwrap()["b"][0], true);
        // The clone shares the tree the first look built.
        assert!(std::ptr::eq(doc.value().unwrap(), copy.value().unwrap()));
        assert_eq!(doc.to_json().unwrap(), r#"{"a": 1, "b": [true]}"#);
        assert_eq!(doc, Doc::new(serde_json::json!({"b": [true], "a": 1})));
    }

    #[test]
    fn a_patch_of_stored_text_is_the_patch_of_its_tree() {
        let stored = r#"{"b": {"x": [1, 2.5, "\u00e9"]}, "a": 1, "c": "keep", "d": null}"#;
        let patch = serde_json::json!({"a": 2, "d": {"n": true}, "z": "new"});
        let patch = patch.as_object().unwrap();
        let from_text = Doc::from_json(stored.into()).patched(patch).unwrap();
        let from_tree = Doc::new(serde_json::from_str(stored).unwrap())
            .patched(patch)
            .unwrap();
        assert!(from_text.0.value.get().is_none(), "still text");
        assert_eq!(from_text, from_tree);
        assert_eq!(
            from_text.value().unwrap(),
            &serde_json::json!({"a": 2, "b": {"x": [1, 2.5, "é"]}, "c": "keep", "d": {"n": true}, "z": "new"})
        );
        assert!(matches!(
            Doc::from_json("[1]".into()).patched(patch),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            Doc::from_json("{\"a\": ".into()).patched(patch),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn text_that_is_not_json_is_corrupt_not_null() {
        let doc = Doc::from_json("{not json".into());
        assert!(matches!(doc.value(), Err(StoreError::Corrupt(_))));
        assert!(doc.decode::<serde_json::Value>().is_err());
        assert_ne!(doc, Doc::new(serde_json::Value::Null));
    }
}
