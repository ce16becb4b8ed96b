//! The embedded job queue: an in-process priority queue.
//!
//! Order is upstream's: manual rechecks (priority 1) before scheduled checks (priority = due
//! epoch), lower first, FIFO among equals. One entry per watch: enqueueing a watch that is
//! already waiting keeps the better priority. Nothing here is durable, by design: the truth is
//! in the store (`next_check_at`, `queued_at`), and a restart clears the queued marks so the
//! scheduler re-queues whatever is due.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::types::{CheckJob, Lane, QueueDepth, StoreError, uuid_bytes};
use crate::{JobQueue, QueueAdmin};

/// A job's place in the run order: (lane rank, priority, sequence).
type Place = (u8, i64, u64);

/// An id as the queue keeps it: the 16 bytes of a uuid in the API's form (every job id and
/// every watch id the API makes), else the string itself.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Id {
    Uuid([u8; 16]),
    Text(Box<str>),
}

impl Id {
    fn new(s: &str) -> Id {
        match uuid_bytes(s) {
            Some(bytes) => Id::Uuid(bytes),
            None => Id::Text(s.into()),
        }
    }

    /// Whether this is `s`: a `Text` never holds a uuid's API form, so the two kinds never
    /// name the same string.
    fn is(&self, s: &str) -> bool {
        match self {
            Id::Uuid(bytes) => uuid_bytes(s).as_ref() == Some(bytes),
            Id::Text(text) => &**text == s,
        }
    }

    fn text(&self) -> String {
        match self {
            Id::Uuid(bytes) => uuid::Uuid::from_bytes(*bytes).hyphenated().to_string(),
            Id::Text(text) => text.to_string(),
        }
    }
}

/// A waiting job without what its place says (lane, priority): ~80 bytes and no allocation
/// for a uuid-keyed watch, where a `CheckJob` is ~110 bytes and three strings on the heap
/// (`recheck_all` of 50,000 watches, heaptrack: the queue was the largest part of the peak).
#[derive(Debug)]
struct Waiting {
    id: Id,
    tenant: Arc<str>,
    watch: Id,
    due_at: i64,
    enqueued_at: i64,
}

impl Waiting {
    fn job(&self, place: &Place) -> CheckJob {
        CheckJob {
            id: self.id.text(),
            tenant: self.tenant.to_string(),
            watch_id: self.watch.text(),
            due_at: self.due_at,
            lane: lane_of(place.0),
            priority: place.1,
            enqueued_at: self.enqueued_at,
        }
    }
}

#[derive(Default)]
struct Inner {
    /// Place → job: iteration order is run order.
    order: BTreeMap<Place, Waiting>,
    /// Each waiting watch's place, by a hash of its (tenant, watch id), checked against the
    /// job in `order`: the job holds its key once (a `recheck_all` of 50,000 watches held
    /// each key three times, ~10 MB of the heap).
    places: HashMap<u64, Place>,
    /// Places of watches whose hash another waiting watch already has (64-bit hashes: in
    /// practice never), searched when `places` has no match.
    spill: Vec<Place>,
    /// One copy of each tenant name that waiting jobs share; dropped with its last job.
    tenants: HashSet<Arc<str>>,
    hasher: RandomState,
    seq: u64,
}

impl Inner {
    fn hash(&self, tenant: &str, watch: &str) -> u64 {
        self.hasher.hash_one((tenant, watch))
    }

    fn holds(&self, place: &Place, tenant: &str, watch: &str) -> bool {
        self.order
            .get(place)
            .is_some_and(|job| &*job.tenant == tenant && job.watch.is(watch))
    }

    fn find(&self, tenant: &str, watch: &str) -> Option<Place> {
        let hash = self.hash(tenant, watch);
        if let Some(place) = self.places.get(&hash)
            && self.holds(place, tenant, watch)
        {
            return Some(*place);
        }
        self.spill
            .iter()
            .find(|place| self.holds(place, tenant, watch))
            .copied()
    }

    fn insert(&mut self, place: Place, job: &CheckJob) {
        let hash = self.hash(&job.tenant, &job.watch_id);
        let tenant = match self.tenants.get(job.tenant.as_str()) {
            Some(t) => t.clone(),
            None => {
                let t: Arc<str> = job.tenant.as_str().into();
                self.tenants.insert(t.clone());
                t
            }
        };
        let waiting = Waiting {
            id: Id::new(&job.id),
            tenant,
            watch: Id::new(&job.watch_id),
            due_at: job.due_at,
            enqueued_at: job.enqueued_at,
        };
        self.order.insert(place, waiting);
        match self.places.entry(hash) {
            Entry::Occupied(_) => self.spill.push(place),
            Entry::Vacant(slot) => {
                slot.insert(place);
            }
        }
    }

    fn take(&mut self, place: Place) -> Option<CheckJob> {
        let waiting = self.order.remove(&place)?;
        let job = waiting.job(&place);
        let hash = self.hash(&job.tenant, &job.watch_id);
        if self.places.get(&hash) == Some(&place) {
            self.places.remove(&hash);
        } else {
            self.spill.retain(|p| *p != place);
        }
        let tenant = waiting.tenant;
        // Two references left, this one and the set's: no other job has this tenant.
        if Arc::strong_count(&tenant) == 2 {
            self.tenants.remove(&*tenant);
        }
        Some(job)
    }
}

/// See the module docs.
#[derive(Default)]
pub struct MemoryQueue {
    inner: Mutex<Inner>,
    ready: Notify,
}

impl std::fmt::Debug for MemoryQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryQueue").finish_non_exhaustive()
    }
}

fn lane_rank(lane: Lane) -> u8 {
    match lane {
        Lane::Recheck => 0,
        Lane::Scheduled => 1,
    }
}

/// The lane a rank from [`lane_rank`] stands for: a waiting job keeps only its place.
fn lane_of(rank: u8) -> Lane {
    if rank == lane_rank(Lane::Recheck) {
        Lane::Recheck
    } else {
        Lane::Scheduled
    }
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn try_pop(&self) -> Option<CheckJob> {
        let mut inner = self.lock();
        let first = *inner.order.keys().next()?;
        inner.take(first)
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn enqueue(&self, jobs: Vec<CheckJob>) -> Result<(), StoreError> {
        let mut added = 0;
        {
            let mut inner = self.lock();
            for job in jobs {
                let rank = (lane_rank(job.lane), job.priority);
                if let Some(place) = inner.find(&job.tenant, &job.watch_id) {
                    if (place.0, place.1) <= rank {
                        continue;
                    }
                    inner.take(place);
                }
                inner.seq += 1;
                let place = (rank.0, rank.1, inner.seq);
                inner.insert(place, &job);
                added += 1;
            }
        }
        for _ in 0..added {
            self.ready.notify_one();
        }
        Ok(())
    }

    async fn dequeue(&self, wait: Duration) -> Result<Option<CheckJob>, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register interest before looking, so a push between the look and the wait wakes us.
            let notified = self.ready.notified();
            if let Some(job) = self.try_pop() {
                return Ok(Some(job));
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(self.try_pop());
            }
        }
    }

    async fn depth(&self) -> Result<QueueDepth, StoreError> {
        let inner = self.lock();
        let rechecks = inner.order.range(..(1, i64::MIN, 0)).count();
        Ok(QueueDepth {
            rechecks,
            scheduled: inner.order.len() - rechecks,
        })
    }
}

#[async_trait]
impl QueueAdmin for MemoryQueue {
    async fn snapshot(&self) -> Result<Vec<CheckJob>, StoreError> {
        Ok(self
            .lock()
            .order
            .iter()
            .map(|(place, waiting)| waiting.job(place))
            .collect())
    }

    async fn remove(&self, watch_ids: &[String]) -> Result<usize, StoreError> {
        let ids: Vec<Id> = watch_ids.iter().map(|id| Id::new(id)).collect();
        let mut inner = self.lock();
        let doomed: Vec<Place> = inner
            .order
            .iter()
            .filter(|(_, job)| ids.contains(&job.watch))
            .map(|(place, _)| *place)
            .collect();
        for place in &doomed {
            inner.take(*place);
        }
        Ok(doomed.len())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

    use super::*;

    fn job(watch: &str) -> CheckJob {
        CheckJob {
            id: format!("job-{watch}"),
            tenant: "t".into(),
            watch_id: watch.into(),
            due_at: 0,
            lane: Lane::Scheduled,
            priority: 5,
            enqueued_at: 0,
        }
    }

    #[test]
    fn a_watch_whose_hash_is_taken_is_found_and_removed_through_the_spill() {
        let mut inner = Inner::default();
        inner.insert((1, 5, 1), &job("a"));
        // Make "b" collide: its hash now names a's place.
        let hash_b = inner.hash("t", "b");
        inner.places.insert(hash_b, (1, 5, 1));
        inner.insert((1, 5, 2), &job("b"));
        assert_eq!(inner.spill, [(1, 5, 2)]);
        assert_eq!(inner.find("t", "b"), Some((1, 5, 2)));
        assert_eq!(inner.find("t", "a"), Some((1, 5, 1)));
        assert_eq!(inner.find("t", "c"), None);
        assert_eq!(inner.take((1, 5, 2)).map(|j| j.watch_id), Some("b".into()));
        assert!(inner.spill.is_empty());
        assert_eq!(inner.find("t", "b"), None);
        assert_eq!(inner.take((1, 5, 1)).map(|j| j.watch_id), Some("a".into()));
        assert_eq!(inner.find("t", "a"), None);
        assert!(inner.order.is_empty());
    }

    #[tokio::test]
    async fn jobs_come_out_as_they_went_in_whatever_their_ids() {
        let q = MemoryQueue::new();
        let uuid = "0b9e5cf1-3c4f-4d52-9a43-1f0a6e2b7c88";
        let keyed = CheckJob::new(
            &crate::Key::watch("default", uuid),
            7,
            Lane::Scheduled,
            7,
            3,
        );
        // Not the API's form: upper case, and no uuid at all.
        let upper = CheckJob::new(
            &crate::Key::watch("other", &uuid.to_uppercase()),
            8,
            Lane::Recheck,
            1,
            4,
        );
        let plain = job("w");
        let all = vec![keyed.clone(), upper.clone(), plain.clone()];
        q.enqueue(all.clone()).await.unwrap();
        assert_eq!(q.lock().tenants.len(), 3);
        let mut snap = q.snapshot().await.unwrap();
        snap.sort_by(|a, b| a.watch_id.cmp(&b.watch_id));
        let mut want = all;
        want.sort_by(|a, b| a.watch_id.cmp(&b.watch_id));
        assert_eq!(snap, want);
        // The lowercase uuid and its uppercase spelling are two watches.
        assert_eq!(q.remove(&[uuid.to_uppercase()]).await.unwrap(), 1);
        // Priority 5 before 7.
        assert_eq!(q.dequeue(Duration::ZERO).await.unwrap(), Some(plain));
        assert_eq!(q.dequeue(Duration::ZERO).await.unwrap(), Some(keyed));
        assert!(q.dequeue(Duration::ZERO).await.unwrap().is_none());
        let inner = q.lock();
        assert!(inner.tenants.is_empty() && inner.places.is_empty());
    }

    #[tokio::test]
    async fn one_entry_per_watch_with_the_better_priority() {
        let q = MemoryQueue::new();
        let mut later = job("w");
        later.priority = 9;
        let mut recheck = job("w");
        recheck.lane = Lane::Recheck;
        recheck.priority = 1;
        q.enqueue(vec![later.clone(), job("x")]).await.unwrap();
        q.enqueue(vec![recheck, later]).await.unwrap();
        let depth = q.depth().await.unwrap();
        assert_eq!((depth.rechecks, depth.scheduled), (1, 1));
        let first = q.dequeue(Duration::ZERO).await.unwrap().unwrap();
        assert_eq!((first.watch_id.as_str(), first.lane), ("w", Lane::Recheck));
        assert_eq!(q.remove(&["x".to_string()]).await.unwrap(), 1);
        assert!(q.dequeue(Duration::ZERO).await.unwrap().is_none());
        let inner = q.lock();
        assert!(inner.places.is_empty() && inner.spill.is_empty());
    }
}
