//! The edge where the client's errors and Elasticsearch's error statuses become core error kinds.

use bubble_core::{Error, ErrorKind};
use serde_json::Value;

use crate::response::describe;

/// Converts a client error (the request never got an HTTP answer) from
/// operation `op` into a core error.
pub(crate) fn map_err(op: &str, e: elasticsearch::Error) -> Error {
    let (kind, why) = if e.is_timeout() {
        (
            ErrorKind::Timeout,
            "no answer within timeout_ms; the cluster may be overloaded",
        )
    } else if e.is_json() {
        (ErrorKind::Internal, "a body could not be (de)serialized")
    } else {
        (
            ErrorKind::Unavailable,
            "Elasticsearch is unreachable; check `urls` and that the cluster runs",
        )
    };
    Error::new(kind, format!("elasticsearch: {op} failed: {why}")).with_source(e)
}

/// The error for an HTTP error status, with the `type: reason` of the body.
pub(crate) fn status_error(op: &str, status: u16, body: &[u8]) -> Error {
    let kind = match status {
        401 => ErrorKind::Unauthenticated,
        403 => ErrorKind::PermissionDenied,
        404 => ErrorKind::NotFound,
        408 => ErrorKind::Timeout,
        409 => ErrorKind::Conflict,
        413 => ErrorKind::TooLarge,
        429 => ErrorKind::RateLimited,
        400..=499 => ErrorKind::InvalidInput,
        _ => ErrorKind::Unavailable,
    };
    let detail = match serde_json::from_slice::<Value>(body) {
        Ok(v) => describe(Some(&v)),
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
    };
    Error::new(
        kind,
        format!("elasticsearch: {op} failed with HTTP {status}: {detail}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(status: u16) -> ErrorKind {
        status_error("search", status, br#"{"error":{"type":"x","reason":"y"}}"#).kind()
    }

    #[test]
    fn client_errors_map_to_what_the_caller_can_fix() {
        assert_eq!(kind_of(400), ErrorKind::InvalidInput);
        assert_eq!(kind_of(404), ErrorKind::NotFound);
        assert_eq!(kind_of(401), ErrorKind::Unauthenticated);
        assert_eq!(kind_of(403), ErrorKind::PermissionDenied);
        assert_eq!(kind_of(413), ErrorKind::TooLarge);
    }

    #[test]
    fn too_many_requests_is_rate_limited() {
        assert_eq!(kind_of(429), ErrorKind::RateLimited);
    }

    #[test]
    fn server_errors_are_unavailable_and_retryable() {
        for status in [500, 502, 503, 504] {
            assert_eq!(kind_of(status), ErrorKind::Unavailable, "{status}");
        }
    }

    #[test]
    fn the_message_carries_the_status_and_the_reason() {
        let e = status_error(
            "search",
            404,
            br#"{"error":{"type":"index_not_found_exception","reason":"no such index [chat]"},"status":404}"#,
        );
        assert!(e.message().contains("HTTP 404"), "{e}");
        assert!(
            e.message()
                .contains("index_not_found_exception: no such index [chat]"),
            "{e}"
        );
    }

    #[test]
    fn a_body_that_is_not_json_is_quoted() {
        let e = status_error("search", 502, b"Bad Gateway");
        assert!(e.message().contains("Bad Gateway"), "{e}");
    }
}
