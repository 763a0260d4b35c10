//! The one place where driver errors become core errors.

use bubble_core::{Error, ErrorKind};
use redis::{ErrorKind as K, RedisError, ServerErrorKind as S};

/// Converts a `redis` error into a core [`Error`] whose kind says what the
/// caller can do: a dropped or refused connection, a failover or a cluster
/// reshard is `Unavailable` (retry later), a slow answer `Timeout`, a
/// refused command on Redis' side `PermissionDenied`, and a surprise in the
/// data or a script `Internal`.
pub(crate) fn map_err(e: RedisError) -> Error {
    let (kind, what) = if e.is_timeout() {
        (
            ErrorKind::Timeout,
            "Redis did not answer in time; is it overloaded or unreachable? (check `url` and the timeouts)",
        )
    } else if e.is_connection_refusal() {
        (
            ErrorKind::Unavailable,
            "Redis refused the connection; is it running? (scripts/services/redis.sh starts a local one)",
        )
    } else if e.is_io_error() || e.is_connection_dropped() {
        (
            ErrorKind::Unavailable,
            "the connection to Redis failed; it reconnects by itself, retry",
        )
    } else {
        match e.kind() {
            K::Server(S::BusyLoading) => (
                ErrorKind::Unavailable,
                "Redis is loading its data set; retry shortly",
            ),
            K::Server(S::TryAgain | S::ClusterDown | S::MasterDown | S::Moved | S::Ask) => (
                ErrorKind::Unavailable,
                "the Redis cluster is changing (failover or resharding); retry",
            ),
            K::Server(S::ReadOnly) => (
                ErrorKind::Unavailable,
                "Redis is a read-only replica right now (failover in progress); retry",
            ),
            K::MasterNameNotFoundBySentinel => (
                ErrorKind::Unavailable,
                "the sentinels name no reachable master called `master_name` (a failover under way, or a wrong name); retry",
            ),
            K::Extension if is_not_replicated(&e) => (
                ErrorKind::Unavailable,
                "the write reached fewer replicas than `wait_replicas` in time (no replica up, or a failover under way); retry",
            ),
            K::ClusterConnectionNotFound => (
                ErrorKind::Unavailable,
                "no connection to the cluster node that holds the key; retry",
            ),
            K::Server(S::NoPerm) => (
                ErrorKind::PermissionDenied,
                "the Redis user may not run this command; grant it in the ACL",
            ),
            K::AuthenticationFailed => (
                ErrorKind::Internal,
                "Redis refused the credentials; fix the user/password in `url`",
            ),
            K::InvalidClientConfig => (ErrorKind::InvalidInput, "the Redis config is not usable"),
            K::Server(S::CrossSlot) => (
                ErrorKind::Internal,
                "a command spanned cluster slots (a key layout bug)",
            ),
            _ if e.code() == Some("OOM") => (
                ErrorKind::Unavailable,
                "Redis is out of memory (maxmemory with a noeviction policy); use allkeys-lru or volatile-lru",
            ),
            _ if e.code() == Some("NOREPLICAS") => (
                ErrorKind::Unavailable,
                "Redis refuses writes while too few replicas are linked (min-replicas-to-write); retry",
            ),
            _ if e.code() == Some("BUSY") => (
                ErrorKind::Unavailable,
                "Redis is busy running a slow script; retry",
            ),
            _ => (ErrorKind::Internal, "Redis answered with an error"),
        }
    };
    Error::new(kind, what).with_source(e)
}

/// What [`not_replicated`] says: no other error carries it.
const NOT_REPLICATED: &str = "fewer replicas than wait_replicas acknowledged the write";

/// A write that Redis ran, but that fewer replicas than `wait_replicas`
/// have in time (`detail` says what `WAIT` answered): a failover now could
/// lose it.
pub(crate) fn not_replicated(detail: String) -> RedisError {
    RedisError::from((K::Extension, NOT_REPLICATED, detail))
}

/// Whether `e` is a [`not_replicated`] error.
pub(crate) fn is_not_replicated(e: &RedisError) -> bool {
    e.kind() == K::Extension && e.to_string().contains(NOT_REPLICATED)
}

/// Connecting to the servers `shown` (their URLs, passwords hidden) failed.
pub(crate) fn cannot_connect(shown: &str, e: RedisError) -> Error {
    let mapped = map_err(e);
    Error::new(
        mapped.kind(),
        format!("cannot connect to Redis at {shown}: {}", mapped.message()),
    )
    .with_source(mapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: std::io::ErrorKind) -> RedisError {
        RedisError::from(std::io::Error::new(kind, "test"))
    }

    #[test]
    fn refused_and_dropped_connections_are_unavailable() {
        for kind in [
            std::io::ErrorKind::ConnectionRefused,
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::BrokenPipe,
            std::io::ErrorKind::UnexpectedEof,
        ] {
            let e = map_err(io(kind));
            assert_eq!(e.kind(), ErrorKind::Unavailable, "{kind:?}");
            assert!(e.is_retryable());
        }
    }

    #[test]
    fn a_timeout_is_a_timeout() {
        assert_eq!(
            map_err(io(std::io::ErrorKind::TimedOut)).kind(),
            ErrorKind::Timeout
        );
    }

    #[test]
    fn cluster_changes_are_retryable() {
        for kind in [S::TryAgain, S::ClusterDown, S::MasterDown, S::ReadOnly] {
            let e = map_err(RedisError::from((K::Server(kind), "test")));
            assert_eq!(e.kind(), ErrorKind::Unavailable, "{kind:?}");
        }
    }

    #[test]
    fn a_write_short_of_replicas_is_unavailable() {
        let e = not_replicated("WAIT answered 0, wanted 1".into());
        assert!(is_not_replicated(&e));
        assert!(!is_not_replicated(&RedisError::from((
            K::Extension,
            "other"
        ))));
        let e = map_err(e);
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.message().contains("wait_replicas"), "{e}");
    }

    #[test]
    fn no_master_from_the_sentinels_is_unavailable() {
        let e = map_err(RedisError::from((K::MasterNameNotFoundBySentinel, "test")));
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.message().contains("master_name"), "{e}");
    }

    #[test]
    fn wrong_credentials_are_not_retryable() {
        let e = map_err(RedisError::from((K::AuthenticationFailed, "test")));
        assert!(!e.is_retryable());
    }

    #[test]
    fn the_driver_error_is_kept_as_the_source() {
        let e = map_err(io(std::io::ErrorKind::ConnectionRefused));
        assert!(std::error::Error::source(&e).is_some());
        assert!(e.message().contains("redis.sh"));
    }
}
