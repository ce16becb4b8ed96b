//! The `Watches` table layout, in one place for the table and its stream:
//!
//! | attribute | |
//! |---|---|
//! | `pk` | `T#<tenant>` |
//! | `sk` | `W#<uuid>`, `TAG#<uuid>`, `SETTINGS`, `STATS` |
//! | `version` | N, the optimistic-concurrency token |
//! | `doc` | S, the JSON document |
//! | `next_check_at`, `due_shard` | N and S, both present or both absent: the sparse `due` index |
//! | `queued_at`, `lease_owner`, `lease_until`, `last_due_at`, `last_job_id` | the schedule |
//! | `history_n`, `history_newest` | the history summary |

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::StoreError;
use crate::types::{HistoryMeta, Item, Key, Kind, Schedule};

pub type Attrs = HashMap<String, AttributeValue>;

pub fn pk(tenant: &str) -> String {
    format!("T#{tenant}")
}

pub fn sk(key: &Key) -> String {
    match key.kind {
        Kind::Watch | Kind::Tag => format!("{}#{}", key.kind.as_str(), key.id),
        Kind::Settings | Kind::Stats | Kind::NotificationLog => key.kind.as_str().to_string(),
    }
}

/// The sort-key prefix under which a kind's items are listed.
pub fn sk_prefix(kind: Kind) -> String {
    match kind {
        Kind::Watch | Kind::Tag => format!("{}#", kind.as_str()),
        Kind::Settings | Kind::Stats | Kind::NotificationLog => kind.as_str().to_string(),
    }
}

pub fn key_attrs(key: &Key) -> Attrs {
    HashMap::from([
        ("pk".to_string(), AttributeValue::S(pk(&key.tenant))),
        ("sk".to_string(), AttributeValue::S(sk(key))),
    ])
}

/// Parses `pk`/`sk` back into a key.
pub fn key_of(attrs: &Attrs) -> Result<Key, StoreError> {
    let pk = s(attrs, "pk").ok_or_else(|| corrupt("item without pk"))?;
    let sk = s(attrs, "sk").ok_or_else(|| corrupt("item without sk"))?;
    let tenant = pk
        .strip_prefix("T#")
        .ok_or_else(|| corrupt(format!("unexpected pk {pk}")))?;
    let (kind, id) = match sk.split_once('#') {
        Some((k, id)) => (Kind::parse(k), id),
        None => (Kind::parse(sk), ""),
    };
    let kind = kind.ok_or_else(|| corrupt(format!("unexpected sk {sk}")))?;
    Ok(Key {
        tenant: tenant.to_string(),
        kind,
        id: id.to_string(),
    })
}

fn corrupt(msg: impl Into<String>) -> StoreError {
    StoreError::Corrupt(msg.into())
}

pub fn s<'a>(attrs: &'a Attrs, name: &str) -> Option<&'a str> {
    match attrs.get(name) {
        Some(AttributeValue::S(v)) => Some(v.as_str()),
        _ => None,
    }
}

pub fn n(attrs: &Attrs, name: &str) -> Result<Option<i64>, StoreError> {
    match attrs.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|e| corrupt(format!("{name}: {e}"))),
        Some(AttributeValue::Null(_)) | None => Ok(None),
        Some(other) => Err(corrupt(format!("{name}: not a number: {other:?}"))),
    }
}

pub fn num(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// An item from a table or stream image.
pub fn item_from_attrs(attrs: &Attrs) -> Result<Item, StoreError> {
    let key = key_of(attrs)?;
    let version = n(attrs, "version")?.unwrap_or(0);
    let doc = s(attrs, "doc").ok_or_else(|| corrupt(format!("{key:?}: no doc")))?;
    let doc = serde_json::from_str(doc).map_err(|e| corrupt(format!("{key:?}: {e}")))?;
    let schedule = (key.kind == Kind::Watch)
        .then(|| -> Result<Schedule, StoreError> {
            Ok(Schedule {
                next_check_at: n(attrs, "next_check_at")?,
                queued_at: n(attrs, "queued_at")?,
                lease_owner: s(attrs, "lease_owner").map(str::to_string),
                lease_until: n(attrs, "lease_until")?,
                last_due_at: n(attrs, "last_due_at")?,
                last_job_id: s(attrs, "last_job_id").map(str::to_string),
            })
        })
        .transpose()?;
    let history = HistoryMeta {
        count: usize::try_from(n(attrs, "history_n")?.unwrap_or(0)).unwrap_or(0),
        newest: n(attrs, "history_newest")?,
    };
    Ok(Item {
        key,
        version: u64::try_from(version).unwrap_or(0),
        doc,
        schedule,
        history,
    })
}

/// The shard of the `due` index a watch lives in: a stable hash of tenant and id, so the shard
/// never changes with the process or the build.
pub fn due_shard(key: &Key, shards: u32) -> String {
    // FNV-1a: tiny, stable, spreads uuids evenly.
    let mut h: u32 = 0x811c_9dc5;
    for b in key.tenant.bytes().chain([0]).chain(key.id.bytes()) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h % shards.max(1)).to_string()
}

/// A stream image's attributes in the table's type (the two SDK crates have their own
/// `AttributeValue`). Only the kinds this layout writes are carried over.
pub fn from_stream(
    image: &HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>,
) -> Attrs {
    use aws_sdk_dynamodbstreams::types::AttributeValue as S;
    image
        .iter()
        .filter_map(|(k, v)| {
            let v = match v {
                S::S(x) => AttributeValue::S(x.clone()),
                S::N(x) => AttributeValue::N(x.clone()),
                S::Bool(x) => AttributeValue::Bool(*x),
                S::Null(x) => AttributeValue::Null(*x),
                S::B(x) => {
                    AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(x.as_ref().to_vec()))
                }
                _ => return None,
            };
            Some((k.clone(), v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        for key in [
            Key::watch("t1", "abc"),
            Key::tag("t1", "x"),
            Key::settings("t2"),
            Key::stats("t2"),
        ] {
            assert_eq!(key_of(&key_attrs(&key)).unwrap(), key);
        }
    }

    #[test]
    fn shards_are_stable_and_spread() {
        let k = Key::watch("default", "5f0b1e36-0000-4000-8000-000000000001");
        assert_eq!(due_shard(&k, 8), due_shard(&k, 8));
        let mut seen = std::collections::HashSet::new();
        for i in 0..200 {
            seen.insert(due_shard(&Key::watch("default", &format!("w{i}")), 8));
        }
        assert_eq!(seen.len(), 8);
    }
}
