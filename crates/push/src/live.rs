//! What the push layer remembers between feed records: per watch, the three flags the global
//! counters are made of. Built from one store scan per tenant, then kept current from the feed.

use std::collections::HashMap;

use changewatch_api::live::{Stats, decode_watch_doc, unread};
use changewatch_api::stored::history_info;
use changewatch_store::Item;

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
    /// Flags of a stored watch at `now`; `None` when the document does not decode.
    pub fn of(item: &Item, now: i64) -> Option<Flags> {
        Some(Flags::of_watch(item, &decode_watch_doc(item)?, now))
    }

    /// [`Flags::of`] for a caller that has decoded the document already.
    pub fn of_watch(item: &Item, watch: &changewatch_core::model::Watch, now: i64) -> Flags {
        Flags {
            has_error: watch.last_error.is_set(),
            unread: unread(watch, &history_info(item)),
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

/// One tenant's watches.
#[derive(Debug, Default)]
pub struct Tenant {
    watches: HashMap<String, Flags>,
}

impl Tenant {
    /// Records a watch's flags; returns the previous ones.
    pub fn set(&mut self, uuid: &str, flags: Flags) -> Option<Flags> {
        match self.watches.get_mut(uuid) {
            Some(f) => Some(std::mem::replace(f, flags)),
            None => self.watches.insert(uuid.to_string(), flags),
        }
    }

    pub fn get(&self, uuid: &str) -> Option<Flags> {
        self.watches.get(uuid).copied()
    }

    pub fn remove(&mut self, uuid: &str) -> Option<Flags> {
        self.watches.remove(uuid)
    }

    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        for f in self.watches.values() {
            s.count_errors += usize::from(f.has_error);
            s.unread_changes_count += usize::from(f.unread);
        }
        s
    }

    pub fn checking(&self) -> usize {
        self.watches.values().filter(|f| f.checking).count()
    }

    pub fn queued(&self) -> usize {
        self.watches.values().filter(|f| f.queued).count()
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
}
