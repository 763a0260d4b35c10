//! The one error type of the core boundary, with a kind that tells the caller what to do.

use std::fmt;

/// What went wrong, in terms of what the caller can do about it.
///
/// Adapters map their driver's errors onto these kinds at their edge (a
/// duplicate key becomes [`ErrorKind::AlreadyExists`], a lost connection
/// [`ErrorKind::Unavailable`]), so no driver type ever reaches the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input is wrong; fix it and send again.
    InvalidInput,
    /// The input is larger than the app's limits allow.
    TooLarge,
    /// The thing asked for does not exist.
    NotFound,
    /// The thing to create exists already (also: a dedup hit in a store).
    AlreadyExists,
    /// The caller is not who it claims, or its credentials expired.
    Unauthenticated,
    /// The caller is known but may not do this.
    PermissionDenied,
    /// Too many requests; slow down and retry later.
    RateLimited,
    /// A backend is unreachable or overloaded; the same request may succeed later.
    Unavailable,
    /// The operation took too long; it may or may not have happened.
    Timeout,
    /// A recall came after the app's recall window.
    Expired,
    /// A precondition on stored state failed (e.g. a concurrent change).
    Conflict,
    /// A bug or corrupt data: retrying will not help.
    Internal,
    /// This backend cannot do this at all (a port method it does not
    /// implement): retrying will not help; another backend or a newer one
    /// will.
    Unsupported,
}

impl ErrorKind {
    /// Whether retrying the same request later may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Unavailable
                | ErrorKind::Timeout
                | ErrorKind::RateLimited
                | ErrorKind::Conflict
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// An error from the engine or one of its ports.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}{}", self.source.as_ref().map(|s| format!(" (caused by: {s})")).unwrap_or_default())]
pub struct Error {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// An error of `kind` saying `message` (what went wrong and what to do).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause (a driver error, an I/O error).
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Error {
        self.source = Some(source.into());
        self
    }

    /// What the caller can do about it.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable explanation, without the source.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether retrying may help.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// Shorthand for [`ErrorKind::InvalidInput`].
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidInput, message)
    }

    /// Shorthand for [`ErrorKind::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotFound, message)
    }

    /// Shorthand for [`ErrorKind::PermissionDenied`].
    pub fn denied(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::PermissionDenied, message)
    }

    /// Shorthand for [`ErrorKind::Unavailable`].
    pub fn unavailable(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Unavailable, message)
    }

    /// Shorthand for [`ErrorKind::Internal`].
    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Internal, message)
    }
}

/// Result with the core [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
