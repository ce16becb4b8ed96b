//! The Socket.IO layer: changedetection.io's realtime contract served by socketioxide, fed by the
//! `ChangeFeed` port, so embedded mode (in-process broadcast) and AWS mode (the DynamoDB stream,
//! read by the push service) emit the same events from the same code.
//!
//! The socket is a hint, never the truth: every event is derived from a committed store write,
//! and a client that reconnects reloads its state over REST.
//!
//! Modules:
//! - [`live`]: per-tenant counters (errors, unread, checking) kept from the feed, so a
//!   `general_stats_update` never rescans the store.
//! - [`server`]: the socket handlers (handshake auth, `watch_operation`, `checkbox-operation`),
//!   the tasks that turn feed records and queue depth into events, and the disconnection of
//!   sockets whose credentials stop holding.
//! - [`origin`]: which pages may open the socket (`Origin` against the server's own origin
//!   and `CW_ALLOWED_ORIGINS`).
//! - [`queue`]: where `queue_size` comes from: the feed's queue marks (embedded mode) or a
//!   queue-depth probe polled while clients are connected (AWS mode: the SQS queues).
//! - [`web`]: the browser-facing app: API + Socket.IO + the built dashboard, for both modes.

pub mod live;
pub mod origin;
pub mod queue;
pub mod server;
pub mod web;

pub use queue::{DepthFuture, DepthProbe, QueueSize};
pub use server::{Push, PushOptions, SocketLayer};
