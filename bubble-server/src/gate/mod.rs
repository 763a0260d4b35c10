//! The gate: client connections over TCP and WebSocket, one frame format.
//!
//! - [`connection`]: the seam, [`FrameConnection`]: frames in and out,
//!   whichever transport carries them.
//! - [`transport`]: TCP and WebSocket as `FrameConnection`s, and the accept
//!   loop they share.
//! - [`admission`]: the connection caps a socket must pass first.
//! - [`handler`]: one connection's life: the handshake, then the
//!   [`handler::Handler`] (requests, pushes, heartbeats, limits, drain,
//!   close).
//! - [`handshake`]: the first frame: a full handshake or a resumption.
//! - [`cmd`]: the requests, decoded, applied and answered per command group.
//! - [`push`]: engine pushes as frames.
//! - [`limits`]: token buckets.

pub mod admission;
pub mod cmd;
pub mod connection;
pub mod handler;
pub mod handshake;
pub mod key_work;
pub mod limits;
pub mod push;
pub mod transport;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use bubble_core::Engine;
use bubble_core::ports::Authenticator;
use bubble_proto::secure::{ServerConfig, UsedTickets};

use crate::metrics::Metrics;
use admission::Admission;
pub use connection::FrameConnection;
use limits::HandshakeLimiter;

/// Limits and timeouts of client connections.
#[derive(Debug, Clone)]
pub struct GateLimits {
    /// Largest frame body.
    pub max_frame_bytes: usize,
    /// Time to complete the handshake.
    pub handshake_timeout: Duration,
    /// Silence after which a connection is closed.
    pub heartbeat_timeout: Duration,
    /// Sustained requests per second per connection.
    pub requests_per_second: u32,
    /// Burst above that.
    pub request_burst: u32,
    /// Requests in flight per connection.
    pub max_in_flight: usize,
    /// How long one write may wait for the peer to read; past it the
    /// connection is reset.
    pub write_timeout: Duration,
    /// How long a draining connection waits for its requests to finish.
    pub drain_timeout: Duration,
}

/// What every connection shares.
pub struct Gate {
    /// The engine.
    pub engine: Engine,
    /// Turns tokens into identities.
    pub auth: Arc<dyn Authenticator>,
    /// Handshake keys and settings.
    pub secure: ServerConfig,
    /// Resumption tickets already used (single use).
    pub used_tickets: UsedTickets,
    /// Limits.
    pub limits: GateLimits,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The connection caps.
    pub admission: Admission,
    /// Full-handshake rate per source address.
    pub handshake_limiter: HandshakeLimiter,
    /// Where hellos are decrypted: off the async workers.
    pub key_work: key_work::KeyWork,
    /// Cancelled when the server shuts down: connections drain and close.
    pub shutdown: CancellationToken,
    /// Tracks connection tasks so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// Where MediaUpload tickets point (`None`: `media.kind = "off"`).
    pub media: Option<Arc<bubble_media::MediaStore>>,
}
