//! The `Watches` table layout, in one place for the table and its stream:
//!
//! | attribute | |
//! |---|---|
//! | `pk` | `T#<tenant>`; a watch `T#<tenant>#W<bucket>` (see [`WATCH_BUCKETS`]) |
//! | `sk` | `W#<uuid>`, `TAG#<uuid>`, `SETTINGS`, `STATS` |
//! | `version` | N, the optimistic-concurrency token |
//! | `docz` | B, the JSON document, zstd against a dictionary (see [`encode_doc`]) |
//! | `doc` | S, the JSON document as items written before `docz` hold it (read, never written) |
//! | `next_check_at`, `due_shard` | N and S, both present or both absent: the sparse `due` index |
//! | `queued_at`, `lease_owner`, `lease_until`, `last_due_at`, `last_job_id` | the schedule |
//! | `history_n`, `history_newest` | the history summary |

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::StoreError;
use crate::types::{HistoryMeta, Item, Key, Kind, Schedule};

pub type Attrs = HashMap<String, AttributeValue>;

/// A tenant's watches are spread over this many partition keys: every check writes its watch
/// twice (mark, commit), so a million watches checked hourly under one key would write ~570
/// units a second to it, half of DynamoDB's 1,000 per partition key; spread, each key takes a
/// sixteenth. Tags, settings and stats stay under the tenant's own key.
pub const WATCH_BUCKETS: u32 = 16;

/// The tenant's own partition key (tags, settings, stats).
pub fn pk(tenant: &str) -> String {
    format!("T#{tenant}")
}

/// The partition key of watch bucket `bucket`.
pub fn watch_pk(tenant: &str, bucket: u32) -> String {
    format!("T#{tenant}#W{bucket:02}")
}

/// The partition key an item lives under.
pub fn pk_of(key: &Key) -> String {
    match key.kind {
        Kind::Watch => watch_pk(&key.tenant, fnv1a(key.id.bytes()) % WATCH_BUCKETS),
        _ => pk(&key.tenant),
    }
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
        ("pk".to_string(), AttributeValue::S(pk_of(key))),
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
    // A watch's key carries its bucket after the tenant.
    let tenant = match (kind, tenant.rsplit_once("#W")) {
        (Kind::Watch, Some((t, bucket))) if bucket.parse::<u32>().is_ok() => t,
        _ => tenant,
    };
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

/// The dictionary `docz` version 1 is compressed against: a watch document with every field
/// at a typical value. Most of a watch document is field names and defaults, which the
/// dictionary turns into back-references, so a watch item stays under the 1 KB that one write
/// unit pays for (a plain 2.6 KB document makes every write of a check cost 3 units). Stored
/// items name the dictionary they were written with: this file must never change; a better
/// one is added as version 2.
const DOC_DICT_V1: &[u8] = include_bytes!("doc_dict_v1.json");
const DOC_ZSTD_LEVEL: i32 = 9;
/// No document is larger than an item (400 KB); this bounds a corrupt or hostile frame.
const DOC_MAX_BYTES: usize = 4 * 1024 * 1024;

fn doc_encoder() -> &'static zstd::dict::EncoderDictionary<'static> {
    static DICT: std::sync::OnceLock<zstd::dict::EncoderDictionary<'static>> =
        std::sync::OnceLock::new();
    DICT.get_or_init(|| zstd::dict::EncoderDictionary::copy(DOC_DICT_V1, DOC_ZSTD_LEVEL))
}

fn doc_decoder() -> &'static zstd::dict::DecoderDictionary<'static> {
    static DICT: std::sync::OnceLock<zstd::dict::DecoderDictionary<'static>> =
        std::sync::OnceLock::new();
    DICT.get_or_init(|| zstd::dict::DecoderDictionary::copy(DOC_DICT_V1))
}

/// `docz`: a version byte (the dictionary's), then the zstd frame of the JSON document.
pub fn encode_doc(doc: &serde_json::Value) -> Result<AttributeValue, StoreError> {
    let json = serde_json::to_vec(doc).map_err(|e| StoreError::backend(e.to_string()))?;
    let mut c = zstd::bulk::Compressor::with_prepared_dictionary(doc_encoder())
        .map_err(|e| StoreError::backend(e.to_string()))?;
    let frame = c
        .compress(&json)
        .map_err(|e| StoreError::backend(e.to_string()))?;
    let mut out = Vec::with_capacity(frame.len() + 1);
    out.push(1u8);
    out.extend_from_slice(&frame);
    Ok(AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(
        out,
    )))
}

fn decode_doc(key: &Key, bytes: &[u8]) -> Result<serde_json::Value, StoreError> {
    let json = match bytes.split_first() {
        Some((1, frame)) => zstd::bulk::Decompressor::with_prepared_dictionary(doc_decoder())
            .and_then(|mut d| d.decompress(frame, DOC_MAX_BYTES))
            .map_err(|e| corrupt(format!("{key:?}: docz: {e}")))?,
        Some((v, _)) => return Err(corrupt(format!("{key:?}: docz version {v} unknown"))),
        None => return Err(corrupt(format!("{key:?}: empty docz"))),
    };
    serde_json::from_slice(&json).map_err(|e| corrupt(format!("{key:?}: {e}")))
}

/// An item from a table or stream image.
pub fn item_from_attrs(attrs: &Attrs) -> Result<Item, StoreError> {
    let key = key_of(attrs)?;
    let version = n(attrs, "version")?.unwrap_or(0);
    let doc = match (attrs.get("docz"), s(attrs, "doc")) {
        (Some(AttributeValue::B(b)), _) => decode_doc(&key, b.as_ref())?,
        (_, Some(doc)) => {
            serde_json::from_str(doc).map_err(|e| corrupt(format!("{key:?}: {e}")))?
        }
        _ => return Err(corrupt(format!("{key:?}: no doc"))),
    };
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
        doc: doc.into(),
        schedule,
        history,
    })
}

/// The shard of the `due` index a watch lives in: a stable hash of tenant and id, so the shard
/// never changes with the process or the build.
pub fn due_shard(key: &Key, shards: u32) -> String {
    (fnv1a(key.tenant.bytes().chain([0]).chain(key.id.bytes())) % shards.max(1)).to_string()
}

/// FNV-1a: tiny, stable across processes and builds, spreads uuids evenly.
fn fnv1a(bytes: impl Iterator<Item = u8>) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
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
    fn documents_round_trip_small() {
        let dict: serde_json::Value = serde_json::from_slice(DOC_DICT_V1).unwrap();
        let mut doc = dict.clone();
        doc["uuid"] = serde_json::json!("5f0b1e36-0000-4000-8000-000000000001");
        doc["url"] = serde_json::json!("https://shop.example/item/1234?colour=red");
        doc["previous_md5"] = serde_json::json!("c3b766f4dbb41d0f16f26174a2b8917f");
        doc["last_checked"] = serde_json::json!(1_796_498_983);
        let key = Key::watch("t", "w");
        let AttributeValue::B(b) = encode_doc(&doc).unwrap() else {
            panic!("docz is binary")
        };
        assert!(
            b.as_ref().len() < 300,
            "a typical watch compresses to {} bytes",
            b.as_ref().len()
        );
        assert_eq!(decode_doc(&key, b.as_ref()).unwrap(), doc);
        let other = serde_json::json!({"application": {"x": [1, 2, 3]}, "uni": "ü ✓"});
        let AttributeValue::B(b) = encode_doc(&other).unwrap() else {
            panic!("docz is binary")
        };
        assert_eq!(decode_doc(&key, b.as_ref()).unwrap(), other);
        assert!(decode_doc(&key, &[9, 1, 2]).is_err());
        assert!(decode_doc(&key, &[1, 1, 2]).is_err());
        assert!(decode_doc(&key, &[]).is_err());
    }

    #[test]
    fn a_tenants_watches_spread_over_buckets() {
        let mut pks = std::collections::HashSet::new();
        for i in 0..400 {
            let key = Key::watch("acme#W1", &format!("5f0b1e36-0000-4000-8000-{i:012}"));
            let attrs = key_attrs(&key);
            assert_eq!(key_of(&attrs).unwrap(), key, "a tenant with #W in its name");
            pks.insert(s(&attrs, "pk").unwrap().to_string());
        }
        assert_eq!(pks.len(), WATCH_BUCKETS as usize);
        assert_eq!(s(&key_attrs(&Key::tag("acme", "x")), "pk"), Some("T#acme"));
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
