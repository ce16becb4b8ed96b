//! How many bytes of fetched pages one process may hold at once.
//!
//! A checker runs several checks at a time (a Lambda batch of ten, a pool of workers), and each
//! page costs several times its size while it is decoded, framed for the sandbox and processed.
//! Ten pages at `FETCH_MAX_BYTES` would overrun a 512 MB function: the whole invocation is
//! killed and all ten messages count towards the dead-letter queue. A [`PageBudget`] makes the
//! worst case a sum fixed at start-up instead:
//!
//! - every check in flight owns a **share** of `share_bytes` (as many shares as checks run at
//!   once), enough for the ordinary page, which therefore never waits;
//! - a page that outgrows its share takes the one **large lane** of `large_bytes` more, which
//!   only one check holds at a time (first come, first served); the others wait for it within
//!   their own deadline;
//! - a page bigger than a share plus the lane fails alone, before it is downloaded when its
//!   `Content-Length` says so.
//!
//! Waiting only ever happens for the lane while holding nothing but a share, and the lane's
//! holder needs nothing else to finish, so checks cannot deadlock each other.
//!
//! Sizes are counted in page bytes as they arrive; the budget's owner divides its memory by a
//! per-byte cost ([`PageBudget::for_memory`]).

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

/// What holding one page byte can cost in the process that fetched it, at worst: the body
/// (1), its decoded text (up to 3: an invalid byte becomes a 3-byte U+FFFD), the sandbox
/// request framing both in base64 (4/3 of 1 + 3), or afterwards the child's reply (its text
/// JSON-escaped: up to 6 per control character) and the result read from it. An ordinary
/// page costs about 5. Filters that expand a page are bounded by their own output budget.
pub const BYTES_PER_PAGE_BYTE: u64 = 10;

/// The shares and the large lane, shared by every check of a process (`Arc`).
#[derive(Debug)]
pub struct PageBudget {
    shares: Arc<Semaphore>,
    share_bytes: usize,
    lane: Arc<Mutex<()>>,
    large_bytes: usize,
}

impl PageBudget {
    /// `shares` checks at once, `share_bytes` each, plus one lane of `large_bytes`.
    pub fn new(shares: usize, share_bytes: usize, large_bytes: usize) -> Self {
        PageBudget {
            shares: Arc::new(Semaphore::new(shares.max(1))),
            share_bytes,
            lane: Arc::new(Mutex::new(())),
            large_bytes,
        }
    }

    /// A budget for `memory_bytes` of process memory and `checks` checks at once: the lane is
    /// what one page of `max_page` bytes needs, the rest is split into shares (at least 64 KiB
    /// each). When the memory cannot hold a `max_page` page, the lane takes what is left and
    /// such pages fail with [`BudgetError`] instead of taking the process down.
    pub fn for_memory(memory_bytes: u64, checks: usize, max_page: usize) -> Self {
        let pages = (memory_bytes / BYTES_PER_PAGE_BYTE) as usize;
        let checks = checks.max(1);
        let min_share = 64 * 1024;
        let large = max_page.min(pages.saturating_sub(checks * min_share));
        let share = ((pages - large.min(pages)) / checks).max(min_share);
        PageBudget::new(checks, share, large)
    }

    /// The largest page one check can hold: its share plus the lane.
    pub fn max_page(&self) -> usize {
        self.share_bytes + self.large_bytes
    }

    pub fn share_bytes(&self) -> usize {
        self.share_bytes
    }

    pub fn large_bytes(&self) -> usize {
        self.large_bytes
    }

    /// A share for one check; waits while every share is taken.
    pub async fn enter(&self) -> PageHold {
        // The semaphore is never closed, so acquiring only fails if it were; then the check
        // runs without a share, as if unbudgeted, rather than not at all.
        let share = self.shares.clone().acquire_owned().await.ok();
        PageHold {
            share,
            share_bytes: self.share_bytes,
            lane: Some(self.lane.clone()),
            large_bytes: self.large_bytes,
            lane_guard: None,
        }
    }
}

/// One check's claim on the budget, released when dropped (after the check's commit).
#[derive(Debug)]
pub struct PageHold {
    share: Option<OwnedSemaphorePermit>,
    share_bytes: usize,
    lane: Option<Arc<Mutex<()>>>,
    large_bytes: usize,
    lane_guard: Option<OwnedMutexGuard<()>>,
}

/// A page bigger than the budget lets one check hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a page of {needed} bytes is over the {limit} bytes this checker's memory can hold")]
pub struct BudgetError {
    pub needed: usize,
    pub limit: usize,
}

impl PageHold {
    /// No budget: any size, never waits (the CLI, tests, and `Fetcher::fetch`).
    pub fn unbounded() -> Self {
        PageHold {
            share: None,
            share_bytes: usize::MAX,
            lane: None,
            large_bytes: 0,
            lane_guard: None,
        }
    }

    /// Makes room for a page of `bytes` in all: free within the share, otherwise the lane
    /// (waiting for it). Errs at once when even the lane is too small.
    pub async fn grow(&mut self, bytes: usize) -> Result<(), BudgetError> {
        if bytes <= self.share_bytes {
            return Ok(());
        }
        let limit = self.share_bytes.saturating_add(self.large_bytes);
        if bytes > limit {
            return Err(BudgetError {
                needed: bytes,
                limit,
            });
        }
        if self.lane_guard.is_none()
            && let Some(lane) = &self.lane
        {
            self.lane_guard = Some(lane.clone().lock_owned().await);
        }
        Ok(())
    }

    /// Whether this check holds the large lane.
    pub fn holds_lane(&self) -> bool {
        self.lane_guard.is_some()
    }

    /// Whether this hold has a share of a budget (false for [`PageHold::unbounded`]).
    pub fn is_budgeted(&self) -> bool {
        self.share.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_page_within_its_share_never_takes_the_lane() {
        let budget = PageBudget::new(2, 100, 1_000);
        let mut a = budget.enter().await;
        let mut b = budget.enter().await;
        a.grow(100).await.unwrap();
        b.grow(50).await.unwrap();
        assert!(!a.holds_lane() && !b.holds_lane());
    }

    #[tokio::test]
    async fn only_one_check_holds_the_lane_and_the_next_gets_it_when_it_ends() {
        let budget = Arc::new(PageBudget::new(3, 100, 1_000));
        let mut first = budget.enter().await;
        first.grow(900).await.unwrap();
        assert!(first.holds_lane());
        let waiting = {
            let budget = budget.clone();
            tokio::spawn(async move {
                let mut second = budget.enter().await;
                second.grow(500).await.map(|_| second.holds_lane())
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "the lane is taken: the second large page waits"
        );
        // A small page meanwhile goes through.
        let mut small = budget.enter().await;
        small.grow(80).await.unwrap();
        drop(first);
        let got = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the lane passes on when its holder ends")
            .unwrap();
        assert_eq!(got, Ok(true));
    }

    #[tokio::test]
    async fn a_page_over_share_and_lane_fails_at_once_without_waiting() {
        let budget = PageBudget::new(2, 100, 1_000);
        let mut holder = budget.enter().await;
        holder.grow(1_000).await.unwrap();
        let mut other = budget.enter().await;
        let err = tokio::time::timeout(Duration::from_secs(1), other.grow(1_101))
            .await
            .expect("no wait for a page that can never fit");
        assert_eq!(
            err,
            Err(BudgetError {
                needed: 1_101,
                limit: 1_100
            })
        );
    }

    #[tokio::test]
    async fn many_large_pages_at_once_all_finish() {
        // Every check outgrows its share at the same time: they take the lane in turn.
        let budget = Arc::new(PageBudget::new(10, 10, 100));
        let mut tasks = Vec::new();
        for i in 0..10 {
            let budget = budget.clone();
            tasks.push(tokio::spawn(async move {
                let mut hold = budget.enter().await;
                for size in (5..=100).step_by(5) {
                    hold.grow(size + i).await.unwrap();
                    tokio::task::yield_now().await;
                }
            }));
        }
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(5), t)
                .await
                .expect("no deadlock")
                .unwrap();
        }
    }

    #[tokio::test]
    async fn shares_bound_the_checks_in_flight() {
        let budget = Arc::new(PageBudget::new(1, 10, 10));
        let first = budget.enter().await;
        let second = tokio::spawn({
            let budget = budget.clone();
            async move { budget.enter().await.is_budgeted() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!second.is_finished());
        drop(first);
        assert!(second.await.unwrap());
    }

    #[test]
    fn a_budget_for_memory_fits_a_full_page_in_the_lane_and_splits_the_rest() {
        let mib = 1024 * 1024;
        let b = PageBudget::for_memory(128 * mib as u64, 10, 10 * mib);
        assert_eq!(b.large_bytes(), 10 * mib);
        // 128 MiB / 10 = 12.8 MiB of page bytes: 10 for the lane, the rest over ten shares.
        assert_eq!(b.share_bytes(), (128 * mib / 10 - 10 * mib) / 10);
        assert!(b.max_page() >= 10 * mib);
        // Too little memory for a full page: the lane takes what is left, shares keep 64 KiB.
        let small = PageBudget::for_memory(16 * mib as u64, 10, 10 * mib);
        assert_eq!(small.share_bytes(), 64 * 1024);
        assert_eq!(small.large_bytes(), 16 * mib / 10 - 10 * 64 * 1024);
        // No memory at all still gives each check its minimum share.
        let none = PageBudget::for_memory(0, 4, 10 * mib);
        assert_eq!((none.share_bytes(), none.large_bytes()), (64 * 1024, 0));
    }
}
