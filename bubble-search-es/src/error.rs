//! The edge where the client's errors, Elasticsearch's error statuses and
//! error bodies, and answers that do not read become core error kinds.

use bubble_core::{Error, ErrorKind};
use serde_json::Value;

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

/// The error of a bulk request whose failed items answered `statuses`;
/// `detail` names the first failure. The kind follows the most retryable
/// failure: any 429 makes it `RateLimited`, any 5xx `Unavailable`
/// (retrying the whole batch is safe: ids make it idempotent), otherwise
/// the documents themselves were refused (`InvalidInput`).
pub(crate) fn bulk_failed(statuses: &[u16], detail: String) -> Error {
    let kind = if statuses.contains(&429) {
        ErrorKind::RateLimited
    } else if statuses.iter().any(|&s| s >= 500) {
        ErrorKind::Unavailable
    } else {
        ErrorKind::InvalidInput
    };
    Error::new(kind, detail)
}

/// An answer (`what`: "search answer", "bulk answer") that does not read.
pub(crate) fn unreadable(what: &str, e: serde_json::Error) -> Error {
    Error::internal(format!("elasticsearch: unreadable {what}: {e}")).with_source(e)
}

/// The HTTP client could not be built from the settings.
pub(crate) fn cannot_build_client(e: elasticsearch::http::transport::BuildError) -> Error {
    Error::invalid(format!("elasticsearch: cannot build the HTTP client: {e}")).with_source(e)
}

/// `type: reason` of an Elasticsearch error object (or of a whole error body).
pub(crate) fn describe(error: Option<&Value>) -> String {
    let Some(e) = error else {
        return "(no error detail)".to_owned();
    };
    let e = e.get("error").unwrap_or(e);
    match (
        e.get("type").and_then(Value::as_str),
        e.get("reason").and_then(Value::as_str),
    ) {
        (Some(t), Some(r)) => format!("{t}: {r}"),
        (Some(t), None) => t.to_owned(),
        _ => e.to_string(),
    }
}

/// The `error.type` of an error body, if it has one.
pub(crate) fn error_type(body: &Value) -> Option<&str> {
    body.get("error")?.get("type")?.as_str()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

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

    #[test]
    fn an_error_body_is_described_by_type_and_reason() {
        let body = json!({ "error": { "type": "index_not_found_exception", "reason": "no such index [chat]" }, "status": 404 });
        assert_eq!(
            describe(Some(&body)),
            "index_not_found_exception: no such index [chat]"
        );
        assert_eq!(error_type(&body), Some("index_not_found_exception"));
    }
}
