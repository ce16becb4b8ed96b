//! Typed access to the store's documents, and the one read-modify-write loop every writer
//! uses. Documents are shared by writers that never coordinate (the API, checks committing,
//! other processes in AWS mode), so every write is conditional on the version read, and a
//! writer that lost the race reads again and re-applies its change instead of overwriting.

use std::collections::BTreeMap;

use changewatch_core::model::{Settings, Tag};
use changewatch_store::{Expect, Item, Key, Kind, Schedule, StoreError, WatchStore};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Reads before a writer gives up on a document others keep changing: contention on one
/// document is short-lived (a check's commit, another request), so a handful of rounds settle it.
pub const CONFLICT_ATTEMPTS: usize = 16;

/// What a change decides after seeing the current document.
#[derive(Debug)]
pub enum Step<T> {
    /// Nothing to write; the loop ends with this result.
    Done(T),
    /// Write `doc` (and `schedule`, for a watch) conditionally on the version read, then end
    /// with `out`.
    Write {
        doc: Value,
        schedule: Option<Schedule>,
        out: T,
    },
}

/// Reads `key`, lets `change` decide on the current item (`None`: absent), and writes what it
/// returns conditionally on what was read (`Expect::Version` or `Expect::Absent`). On a
/// version conflict the loop reads again and calls `change` again, at most
/// [`CONFLICT_ATTEMPTS`] times; then the conflict is returned.
pub async fn read_modify_write<T, E: From<StoreError>>(
    store: &dyn WatchStore,
    key: &Key,
    mut change: impl FnMut(Option<&Item>) -> Result<Step<T>, E>,
) -> Result<T, E> {
    for _ in 0..CONFLICT_ATTEMPTS {
        let current = store.get(key).await?;
        let expect = current
            .as_ref()
            .map_or(Expect::Absent, |item| Expect::Version(item.version));
        let (doc, schedule, out) = match change(current.as_ref())? {
            Step::Done(out) => return Ok(out),
            Step::Write { doc, schedule, out } => (doc, schedule, out),
        };
        match store.put(key, doc, schedule, expect).await {
            Ok(_) => return Ok(out),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict(key.clone()).into())
}

/// A stored document as its type; a document that does not decode is the store's corruption,
/// named with its key.
pub fn decode<T: DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    // From the stored text, or the shared tree by reference: no copy of a tree per decode.
    item.doc
        .decode()
        .map_err(|e| StoreError::Corrupt(format!("{:?} {}: {e}", item.key.kind, item.key.id)))
}

/// A value as the document the store keeps.
pub fn encode<T: serde::Serialize>(value: &T) -> Result<Value, StoreError> {
    serde_json::to_value(value).map_err(StoreError::backend_source)
}

/// The tenant's settings; defaults when none are stored yet.
pub async fn load_settings(store: &dyn WatchStore, tenant: &str) -> Result<Settings, StoreError> {
    match store.get(&Key::settings(tenant)).await? {
        Some(item) => decode(&item),
        None => Ok(Settings::default()),
    }
}

/// Read-modify-write of a tenant's settings. `change` gets the settings (fresh ones with
/// generated tokens when none are stored, flagged by its second argument) and returns its
/// result and whether to write.
pub async fn update_settings<T, E: From<StoreError>>(
    store: &dyn WatchStore,
    tenant: &str,
    mut change: impl FnMut(&mut Settings, bool) -> Result<(T, bool), E>,
) -> Result<T, E> {
    read_modify_write(store, &Key::settings(tenant), |current| {
        let mut settings = match current {
            Some(item) => decode::<Settings>(item)?,
            None => Settings::new_with_tokens(),
        };
        let (out, write) = change(&mut settings, current.is_some())?;
        Ok(if write {
            Step::Write {
                doc: encode(&settings)?,
                schedule: None,
                out,
            }
        } else {
            Step::Done(out)
        })
    })
    .await
}

/// The tenant's tags by uuid.
pub async fn load_tags(
    store: &dyn WatchStore,
    tenant: &str,
) -> Result<BTreeMap<String, Tag>, StoreError> {
    let mut out = BTreeMap::new();
    for item in store.list(tenant, Kind::Tag).await? {
        let tag: Tag = decode(&item)?;
        out.insert(item.key.id, tag);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use changewatch_store::sqlite::SqliteStore;
    use serde_json::json;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open_dir(dir.path()).expect("store");
        (dir, store)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_race_is_reapplied_on_the_fresh_copy() {
        let (_dir, store) = store();
        let key = Key::settings("t");
        store
            .put(&key, json!({"n": 1}), None, Expect::Absent)
            .await
            .expect("seed");
        let mut calls = 0;
        let seen = read_modify_write::<i64, StoreError>(&store, &key, |item| {
            calls += 1;
            let n = item
                .and_then(|i| i.doc.value().unwrap()["n"].as_i64())
                .unwrap_or(0);
            if calls == 1 {
                // Another writer gets in between this read and this write.
                tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current().block_on(store.put(
                        &key,
                        json!({"n": 10}),
                        None,
                        Expect::Any,
                    ))
                })?;
            }
            Ok(Step::Write {
                doc: json!({"n": n + 1}),
                schedule: None,
                out: n,
            })
        })
        .await
        .expect("written");
        assert_eq!(calls, 2, "the change ran again after the conflict");
        assert_eq!(seen, 10, "on the other writer's copy");
        let item = store.get(&key).await.expect("get").expect("present");
        assert_eq!(item.doc.value().unwrap()["n"], 11, "neither write was lost");
    }

    #[tokio::test]
    async fn done_writes_nothing_and_absent_means_create() {
        let (_dir, store) = store();
        let key = Key::settings("t");
        let out = read_modify_write::<&str, StoreError>(&store, &key, |item| {
            assert!(item.is_none());
            Ok(Step::Done("nothing"))
        })
        .await
        .expect("done");
        assert_eq!(out, "nothing");
        assert!(store.get(&key).await.expect("get").is_none());
        update_settings::<(), StoreError>(&store, "t", |s, existed| {
            assert!(!existed);
            s.application.pager_size = 7;
            Ok(((), true))
        })
        .await
        .expect("created");
        assert_eq!(
            load_settings(&store, "t")
                .await
                .expect("load")
                .application
                .pager_size,
            7
        );
    }
}
