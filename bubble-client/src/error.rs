//! What can go wrong on the client side.

use bubble_proto::pb;

/// A client error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// Could not reach the server (it may be down, or the network is).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The handshake failed (wrong key pin, refused token...).
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// The server broke the protocol, or this client did.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The server answered with an error.
    #[error("server error {code:?}: {message}")]
    Server {
        /// The code.
        code: pb::ErrorCode,
        /// Its explanation.
        message: String,
        /// Whether the same request may succeed later.
        retryable: bool,
    },
    /// No answer in time (the request may still have happened: retry with the same ids).
    #[error("no answer within the request timeout")]
    Timeout,
    /// The connection dropped before the answer came.
    #[error("disconnected before the answer")]
    Disconnected,
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
    /// A media upload to the object store failed.
    #[error("upload failed: {message}")]
    Upload {
        /// The store's HTTP status (0: no answer).
        status: u16,
        /// What happened.
        message: String,
    },
}

impl ClientError {
    /// Whether repeating the request (with the same client message id) may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Connect(_) | ClientError::Timeout | ClientError::Disconnected => true,
            ClientError::Server { retryable, .. } => *retryable,
            // No answer, or the store's own trouble: a new ticket may work.
            ClientError::Upload { status, .. } => *status == 0 || *status >= 500,
            _ => false,
        }
    }

    /// The server's error code, if the server answered with one.
    pub fn code(&self) -> Option<pb::ErrorCode> {
        match self {
            ClientError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<pb::Error> for ClientError {
    fn from(e: pb::Error) -> Self {
        ClientError::Server {
            code: pb::ErrorCode::try_from(e.code).unwrap_or(pb::ErrorCode::Internal),
            message: e.message,
            retryable: e.retryable,
        }
    }
}
