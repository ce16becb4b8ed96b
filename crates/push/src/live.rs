//! What the push layer remembers between feed records: per watch, the three flags the global
//! counters are made of. Built from one store scan per tenant, then kept current from the feed.

use std::collections::HashMap;

use changewatch_api::live::{Stats, unread_at};
use changewatch_api::stored::history_info;
use changewatch_core::model::WatchMarks;
use changewatch_store::{Item, uuid_bytes};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub has_error: bool,
    pub unread: bool,
    pub checking: bool,
    /// Marked queued: waiting for a checker. Counting these gives each tenant its own exact
    /// queue size from the feed alone, where SQS only offers an approximate global depth.
    pub queued: bool,
}

impl Flags {
    /// Flags of a stored watch at `now`; `None` when the document does not decode. Only the
    /// fields the flags read are decoded ([`WatchMarks`]).
    pub fn of(item: &Item, now: i64) -> Option<Flags> {
        let marks: WatchMarks = item
            .doc
            .decode()
            .inspect_err(
                |e| tracing::warn!(watch_id = %item.key.id, error = %e, "undecodable watch"),
            )
            .ok()?;
        Some(Flags::of_fields(
            item,
            marks.last_error.is_set(),
            marks.last_viewed,
            now,
        ))
    }

    /// [`Flags::of`] for a caller that has decoded the document already.
    pub fn of_watch(item: &Item, watch: &changewatch_core::model::Watch, now: i64) -> Flags {
        Flags::of_fields(item, watch.last_error.is_set(), watch.last_viewed, now)
    }

    fn of_fields(item: &Item, has_error: bool, last_viewed: i64, now: i64) -> Flags {
        Flags {
            has_error,
            unread: unread_at(last_viewed, &history_info(item)),
            checking: false,
            queued: false,
        }
        .with_schedule(item, now)
    }

    /// These flags with the two that come from the item's schedule taken from `item`: all a
    /// schedule-only write (a queue mark, a lease) can change, known without decoding the
    /// document.
    pub fn with_schedule(self, item: &Item, now: i64) -> Flags {
        Flags {
            checking: item.schedule.as_ref().is_some_and(|s| s.leased(now)),
            queued: item
                .schedule
                .as_ref()
                .is_some_and(|s| s.queued_at.is_some()),
            ..self
        }
    }
}

/// One tenant's watches. Ids in the API's form (lowercase, hyphenated uuids) are kept as their
/// 16 bytes: a `String` per watch was 1.8 MB of the server's peak heap at 50,000 watches beside
/// a table twice the size (heaptrack, bench/README.md twelfth session). Any other id (the
/// store takes any string) keeps a string key.
#[derive(Debug, Default)]
pub struct Tenant {
    watches: HashMap<[u8; 16], Flags>,
    other: HashMap<String, Flags>,
}

impl Tenant {
    /// Records a watch's flags; returns the previous ones.
    pub fn set(&mut self, uuid: &str, flags: Flags) -> Option<Flags> {
        match uuid_bytes(uuid) {
            Some(key) => self.watches.insert(key, flags),
            None => match self.other.get_mut(uuid) {
                Some(f) => Some(std::mem::replace(f, flags)),
                None => self.other.insert(uuid.to_string(), flags),
            },
        }
    }

    pub fn get(&self, uuid: &str) -> Option<Flags> {
        match uuid_bytes(uuid) {
            Some(key) => self.watches.get(&key).copied(),
            None => self.other.get(uuid).copied(),
        }
    }

    pub fn remove(&mut self, uuid: &str) -> Option<Flags> {
        match uuid_bytes(uuid) {
            Some(key) => self.watches.remove(&key),
            None => self.other.remove(uuid),
        }
    }

    fn all(&self) -> impl Iterator<Item = &Flags> {
        self.watches.values().chain(self.other.values())
    }

    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        for f in self.all() {
            s.count_errors += usize::from(f.has_error);
            s.unread_changes_count += usize::from(f.unread);
        }
        s
    }

    pub fn checking(&self) -> usize {
        self.all().filter(|f| f.checking).count()
    }

    pub fn queued(&self) -> usize {
        self.all().filter(|f| f.queued).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_follow_updates_and_removals() {
        let mut t = Tenant::default();
        t.set(
            "a",
            Flags {
                has_error: true,
                unread: true,
                checking: false,
                queued: true,
            },
        );
        t.set(
            "b",
            Flags {
                has_error: false,
                unread: true,
                checking: true,
                queued: false,
            },
        );
        assert_eq!(t.stats().count_errors, 1);
        assert_eq!(t.stats().unread_changes_count, 2);
        assert_eq!(t.checking(), 1);
        assert_eq!(t.queued(), 1);
        t.set("b", Flags::default());
        t.remove("a");
        assert_eq!(t.stats(), Stats::default());
        assert_eq!(t.checking(), 0);
        assert_eq!(t.queued(), 0);
    }

    #[test]
    fn uuid_ids_and_other_ids_are_kept_apart_and_exactly() {
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let bytes = uuid_bytes(id).unwrap();
        assert_eq!(bytes[0], 0x0f);
        assert_eq!(bytes[15], 0x0e);
        // Other spellings of the same uuid are other ids: string keys, not the same entry.
        for other in [
            "0F8FAD5B-D9CB-469F-A165-70867728950E",
            "0f8fad5bd9cb469fa16570867728950e",
            "{0f8fad5b-d9cb-469f-a165-70867728950e}",
            "0f8fad5b-d9cb-469f-a165-70867728950g",
            "0f8fad5b-d9cb-469f-a165_70867728950e",
            "0f8fad5b-d9cb-469f-a165-70867728950",
        ] {
            assert_eq!(uuid_bytes(other), None, "{other}");
        }
        let mut t = Tenant::default();
        let queued = Flags {
            queued: true,
            ..Flags::default()
        };
        assert_eq!(t.set(id, queued), None);
        assert_eq!(
            t.set("0F8FAD5B-D9CB-469F-A165-70867728950E", Flags::default()),
            None
        );
        assert_eq!(t.get(id), Some(queued));
        assert_eq!(t.queued(), 1);
        assert_eq!(t.set(id, Flags::default()), Some(queued));
        assert_eq!(
            t.remove("0F8FAD5B-D9CB-469F-A165-70867728950E"),
            Some(Flags::default())
        );
        assert_eq!(t.get("0F8FAD5B-D9CB-469F-A165-70867728950E"), None);
        assert_eq!(t.remove(id), Some(Flags::default()));
        assert_eq!(t.get(id), None);
    }
}
