//! The embedded change feed: a broadcast channel fed after each commit.
//!
//! A slow subscriber that falls behind loses the oldest events (it sees `Lagged`) instead of
//! holding memory or slowing writers: the store is the truth, and clients resync over REST.

use tokio::sync::broadcast;

use crate::ChangeFeed;
use crate::types::ChangeEvent;

/// Events buffered per subscriber before the oldest are dropped for it. The buffer is
/// allocated whole (a slot per event, ~0.5 KB each) and a subscriber that lags resyncs from
/// the store, so a larger one only costs memory.
const CAPACITY: usize = 1024;

#[derive(Clone, Debug)]
pub struct BroadcastFeed {
    tx: broadcast::Sender<ChangeEvent>,
}

impl Default for BroadcastFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl BroadcastFeed {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        BroadcastFeed { tx }
    }

    /// Publishes to current subscribers; having none is normal (nobody has the dashboard open).
    pub fn publish(&self, event: ChangeEvent) {
        let _ = self.tx.send(event);
    }
}

impl ChangeFeed for BroadcastFeed {
    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.tx.subscribe()
    }
}
