//! The edge where etcd-client's errors become core error kinds.

use std::future::Future;
use std::time::Duration;

use bubble_core::{Error, ErrorKind, Result};

/// gRPC status codes (fixed by the gRPC spec), named so the mapping reads.
mod code {
    pub const CANCELLED: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const NOT_FOUND: i32 = 5;
    pub const ALREADY_EXISTS: i32 = 6;
    pub const PERMISSION_DENIED: i32 = 7;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const FAILED_PRECONDITION: i32 = 9;
    pub const ABORTED: i32 = 10;
    pub const OUT_OF_RANGE: i32 = 11;
    pub const UNAVAILABLE: i32 = 14;
    pub const UNAUTHENTICATED: i32 = 16;
}

/// Converts an etcd-client error from operation `op` ("put node key",
/// "grant lease"...) into a core error that says what the caller can do.
pub(crate) fn map_err(op: &str, e: etcd_client::Error) -> Error {
    use etcd_client::Error as E;
    let (kind, why) = match &e {
        E::InvalidArgs(_) | E::InvalidUri(_) | E::InvalidMetadataValue(_) => (
            ErrorKind::InvalidInput,
            "the request or the configuration is invalid".to_owned(),
        ),
        E::IoError(_) | E::TransportError(_) | E::EndpointError(_) => (
            ErrorKind::Unavailable,
            "etcd is unreachable; check `endpoints` and that etcd runs".to_owned(),
        ),
        // Both are the client's internal channels closing: the connection went away.
        E::WatchError(_) | E::LeaseKeepAliveError(_) => (
            ErrorKind::Unavailable,
            "the stream to etcd closed; retry".to_owned(),
        ),
        E::GRpcStatus(status) => {
            let kind = match i32::from(status.code()) {
                code::INVALID_ARGUMENT | code::OUT_OF_RANGE => ErrorKind::InvalidInput,
                // etcd: "requested lease not found" (expired or revoked).
                code::NOT_FOUND => ErrorKind::NotFound,
                code::ALREADY_EXISTS => ErrorKind::AlreadyExists,
                code::PERMISSION_DENIED => ErrorKind::PermissionDenied,
                code::UNAUTHENTICATED => ErrorKind::Unauthenticated,
                code::RESOURCE_EXHAUSTED => ErrorKind::RateLimited,
                code::DEADLINE_EXCEEDED => ErrorKind::Timeout,
                code::FAILED_PRECONDITION | code::ABORTED => ErrorKind::Conflict,
                // tonic reports broken HTTP/2 connections as Unknown.
                code::UNAVAILABLE | code::CANCELLED | code::UNKNOWN => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            };
            let hint = if kind == ErrorKind::Unavailable {
                "; check `endpoints` and that etcd runs"
            } else {
                ""
            };
            (kind, format!("{}{hint}", status.message()))
        }
        E::Utf8Error(_) => (
            ErrorKind::Internal,
            "etcd returned a key that is not UTF-8".to_owned(),
        ),
        _ => (
            ErrorKind::Internal,
            "unexpected etcd client error".to_owned(),
        ),
    };
    Error::new(kind, format!("etcd: {op} failed: {why}")).with_source(e)
}

/// Runs one etcd request with a deadline, mapping both its error and the
/// deadline into core errors.
pub(crate) async fn timed<T>(
    op: &str,
    limit: Duration,
    fut: impl Future<Output = std::result::Result<T, etcd_client::Error>>,
) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(|e| map_err(op, e)),
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "etcd: {op} took longer than {} ms (request_timeout_ms); is etcd overloaded or partitioned?",
                limit.as_millis()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transport_failure_is_unavailable_and_retryable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = map_err("put node key", etcd_client::Error::IoError(io));
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_retryable());
        assert!(e.message().contains("put node key"), "{e}");
    }

    #[test]
    fn invalid_arguments_are_invalid_input() {
        let e = map_err("x", etcd_client::Error::InvalidArgs("bad".into()));
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn a_request_past_its_deadline_is_a_timeout() {
        let r: Result<()> = timed("get nodes", Duration::from_millis(10), async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        })
        .await;
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Timeout);
    }
}
