//! The one clock everything is stamped with (checks, snapshots, due times, API answers), passed
//! in rather than read from the system where it matters, so tests move time instead of
//! sleeping through it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds since the Unix epoch on the system clock.
pub fn epoch_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The system clock plus an offset. Clones share the offset, so a test that advances its copy
/// moves time for every part it handed a clone to (API state, checker); production code never
/// advances it, and then this is the system clock.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// Seconds since the Unix epoch, as this clock reads them.
    pub fn now(&self) -> i64 {
        epoch_now().saturating_add(self.offset.load(Ordering::Relaxed))
    }

    /// Moves this clock and all its clones forward by `secs` (tests only need forward).
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_moved_time() {
        let clock = Clock::system();
        let copy = clock.clone();
        let before = copy.now();
        clock.advance(3600);
        let after = copy.now();
        assert!(
            (3600..3602).contains(&(after - before)),
            "{before} -> {after}"
        );
        assert!((Clock::system().now() - epoch_now()).abs() <= 1);
    }
}
