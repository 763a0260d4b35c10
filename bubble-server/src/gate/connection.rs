//! The gate's seam: a framed duplex connection. TCP and WebSocket look the
//! same from here (see [`super::transport`]), so the handler never asks
//! which one a client chose.

use async_trait::async_trait;
use bubble_proto::{Frame, FrameError};

/// Why a connection could not go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnError {
    /// The peer sent bytes that are not a frame: answer `MALFORMED_FRAME`
    /// with `seq`, then close.
    #[error("{message}")]
    Malformed {
        /// The frame's seq when its header could be read, else 0.
        seq: u32,
        /// What is wrong, for the peer.
        message: String,
    },
    /// The peer did not take what was written within the write deadline:
    /// nothing more is written to it, and its socket is reset on close.
    #[error("the peer did not read within the write deadline")]
    Stalled,
    /// The transport failed or was closed under us: nothing more to say.
    #[error("connection failed: {0}")]
    Broken(String),
}

impl From<FrameError> for ConnError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Io(message) => ConnError::Broken(message),
            other => ConnError::Malformed {
                seq: other.seq().unwrap_or(0),
                message: other.to_string(),
            },
        }
    }
}

/// Why the server ends a connection: a WebSocket close frame carries it
/// as its status code (RFC 6455 section 7.4.1); TCP simply closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The session is over (a kick, or the peer closed first).
    Normal,
    /// Reconnect and sync: the server shuts down, the client read too
    /// slowly, or it went silent.
    GoingAway,
    /// The peer broke the protocol (a malformed frame, a failed record).
    ProtocolError,
    /// The handshake was refused.
    PolicyViolation,
    /// This gate is full or cannot serve now: try again (another gate).
    TryAgainLater,
}

impl CloseReason {
    /// The WebSocket status code.
    pub fn ws_code(self) -> u16 {
        match self {
            CloseReason::Normal => 1000,
            CloseReason::GoingAway => 1001,
            CloseReason::ProtocolError => 1002,
            CloseReason::PolicyViolation => 1008,
            CloseReason::TryAgainLater => 1013,
        }
    }
}

/// A framed duplex connection.
#[async_trait]
pub trait FrameConnection: Send {
    /// The next frame, `None` at a clean end of stream (or the peer's close).
    async fn read_frame(&mut self) -> Result<Option<Frame>, ConnError>;
    /// Queues one frame for sending; [`FrameConnection::flush`] sends what
    /// is queued (so a burst of pushes costs one write).
    async fn write_frame(&mut self, frame: Frame) -> Result<(), ConnError>;
    /// Sends every queued frame.
    async fn flush(&mut self) -> Result<(), ConnError>;
    /// Sends what is queued and ends the connection from this side: on
    /// WebSocket with a close frame carrying `reason`.
    async fn close(&mut self, reason: CloseReason) -> Result<(), ConnError>;
}
