//! Where `queue_size` comes from.
//!
//! Embedded mode counts the watches marked queued in the change feed ([`QueueSize::Marks`]):
//! exact, per tenant, and free. AWS mode reads the depth of the SQS queues themselves
//! ([`QueueSize::Polled`]): a [`DepthProbe`] is polled every few seconds, but only while at
//! least one socket is connected, and `queue_size` goes to the tenant's room when the depth
//! changes. With nobody connected the poller sleeps until the next connection, so an idle
//! dashboard costs no queue API calls.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Defined beside the API state, which answers `GET /ui/watches`' `queue_size` from the same
/// probe, so the REST count and the socket's never disagree.
pub use changewatch_api::state::{DepthFuture, DepthProbe};
use tokio::sync::Notify;
use tracing::{debug, warn};

/// The source of the `queue_size` events.
#[derive(Clone, Default)]
pub enum QueueSize {
    /// The tenant's count of watches marked queued, kept from the change feed.
    #[default]
    Marks,
    /// `probe` read every `every` while at least one client is connected.
    Polled {
        probe: Arc<dyn DepthProbe>,
        every: Duration,
    },
}

impl std::fmt::Debug for QueueSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueSize::Marks => f.write_str("Marks"),
            QueueSize::Polled { every, .. } => {
                f.debug_struct("Polled").field("every", every).finish()
            }
        }
    }
}

/// The polling side of [`QueueSize::Polled`], shared by the poll task and the connect handler.
pub(crate) struct Poller {
    probe: Arc<dyn DepthProbe>,
    every: Duration,
    /// The depth last read and sent; `None` while idle (nobody connected) or not read yet.
    last: Mutex<Option<usize>>,
    wake: Notify,
}

impl Poller {
    pub(crate) fn new(probe: Arc<dyn DepthProbe>, every: Duration) -> Arc<Poller> {
        Arc::new(Poller {
            probe,
            every: every.max(Duration::from_millis(10)),
            last: Mutex::new(None),
            wake: Notify::new(),
        })
    }

    fn last(&self) -> std::sync::MutexGuard<'_, Option<usize>> {
        self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A socket connected (and has joined the room). Returns the current depth to send to it,
    /// if one is known; otherwise wakes the poller, which reads the depth at once and sends it
    /// to the room.
    pub(crate) fn connected(&self) -> Option<usize> {
        let last = *self.last();
        if last.is_none() {
            self.wake.notify_one();
        }
        last
    }

    /// The poll loop: `listeners` says how many sockets are connected, `emit` sends a depth to
    /// all of them. Runs until the task is aborted.
    pub(crate) async fn run<L, E, F>(self: Arc<Self>, listeners: L, emit: E)
    where
        L: Fn() -> usize + Send,
        E: Fn(usize) -> F + Send,
        F: Future<Output = ()> + Send,
    {
        let mut failing = false;
        loop {
            if listeners() == 0 {
                // Idle: forget the depth (the next client must get a fresh one) and sleep
                // until a socket connects. Looking again after the reset closes the gap where
                // a client connected in between and was handed the old depth without waking
                // this loop; one connecting later finds `None` and wakes it.
                *self.last() = None;
                if listeners() == 0 {
                    self.wake.notified().await;
                }
                continue;
            }
            match self.probe.depth().await {
                Ok(depth) => {
                    if failing {
                        debug!("queue depth readable again");
                        failing = false;
                    }
                    let changed = self.last().replace(depth) != Some(depth);
                    if changed {
                        emit(depth).await;
                    }
                }
                Err(e) => {
                    // Once per streak of failures: a missing permission would otherwise log
                    // every few seconds for as long as a dashboard is open.
                    if failing {
                        debug!(error = %e, "cannot read the queue depth");
                    } else {
                        warn!(error = %e, "cannot read the queue depth for queue_size");
                        failing = true;
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.every) => {}
                () = self.wake.notified() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Fake {
        depth: AtomicUsize,
        calls: AtomicUsize,
    }

    impl DepthProbe for Fake {
        fn depth(&self) -> DepthFuture<'_> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                Ok(self.depth.load(Ordering::SeqCst))
            })
        }
    }

    async fn until(what: &str, cond: impl Fn() -> bool) {
        for _ in 0..200 {
            if cond() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}");
    }

    #[tokio::test]
    async fn polls_only_while_someone_listens_and_sends_changes_only() {
        let fake = Arc::new(Fake {
            depth: AtomicUsize::new(3),
            calls: AtomicUsize::new(0),
        });
        let poller = Poller::new(fake.clone(), Duration::from_millis(20));
        let listeners = Arc::new(AtomicUsize::new(0));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let task = {
            let (listeners, sent) = (listeners.clone(), sent.clone());
            tokio::spawn(poller.clone().run(
                move || listeners.load(Ordering::SeqCst),
                move |d| {
                    sent.lock().unwrap().push(d);
                    async {}
                },
            ))
        };

        // Nobody connected: no calls.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(fake.calls.load(Ordering::SeqCst), 0);

        // A client connects: nothing known yet, so the poller reads at once and sends 3.
        listeners.store(1, Ordering::SeqCst);
        assert_eq!(poller.connected(), None);
        until("the first depth", || *sent.lock().unwrap() == vec![3]).await;
        // A second client gets the known depth directly.
        assert_eq!(poller.connected(), Some(3));

        // Unchanged depth: polled again, nothing sent. A change: sent once.
        let calls = fake.calls.load(Ordering::SeqCst);
        until("more polls", || {
            fake.calls.load(Ordering::SeqCst) >= calls + 3
        })
        .await;
        assert_eq!(*sent.lock().unwrap(), vec![3]);
        fake.depth.store(5, Ordering::SeqCst);
        until("the new depth", || *sent.lock().unwrap() == vec![3, 5]).await;

        // Everybody leaves: polling stops and the depth is forgotten.
        listeners.store(0, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(60)).await;
        let calls = fake.calls.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            fake.calls.load(Ordering::SeqCst),
            calls,
            "no polls while idle"
        );
        assert_eq!(*poller.last(), None);

        // Someone comes back: a fresh read is sent even though the depth did not change.
        listeners.store(1, Ordering::SeqCst);
        assert_eq!(poller.connected(), None);
        until("the depth after reconnecting", || {
            *sent.lock().unwrap() == vec![3, 5, 5]
        })
        .await;
        task.abort();
    }
}
