//! The edge where the HTTP client's errors and the providers' answers that
//! do not read become core error kinds. Each provider maps its own error
//! statuses and reasons (that is its protocol); what they share is here.

use bubble_core::{Error, ErrorKind};

/// Longest part of an error answer quoted in an error message.
const SNIPPET_BYTES: usize = 300;

/// Converts a client error (no complete HTTP answer) of a request to
/// `provider` at `target` (a URL with nothing secret in it) into a core
/// error: a timeout is [`ErrorKind::Timeout`], everything else (refused
/// connection, TLS failure, reset stream) [`ErrorKind::Unavailable`], so
/// the notification is tried again later.
pub(crate) fn request_failed(provider: &str, target: &str, e: reqwest::Error) -> Error {
    // The client's own message would quote the full URL, which may carry a
    // webhook's credentials or a device token: the caller names the target.
    let e = e.without_url();
    if e.is_timeout() {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "{provider}: no answer from {target} within timeout_ms; \
                 the notification may or may not have been delivered"
            ),
        )
        .with_source(e)
    } else if e.is_connect() {
        Error::unavailable(format!(
            "{provider}: cannot connect to {target}; check the endpoint and the network \
             (the notification is tried again later)"
        ))
        .with_source(e)
    } else if e.is_builder() {
        Error::invalid(format!(
            "{provider}: cannot make a request to {target}; check the endpoint setting"
        ))
        .with_source(e)
    } else {
        Error::unavailable(format!(
            "{provider}: the request to {target} failed before an answer was read \
             (the notification is tried again later)"
        ))
        .with_source(e)
    }
}

/// The first bytes of an error answer, as text, for an error message.
pub(crate) fn snippet(body: &[u8]) -> String {
    let cut = &body[..body.len().min(SNIPPET_BYTES)];
    let text = String::from_utf8_lossy(cut);
    let text = text.trim();
    if text.is_empty() {
        "(empty answer)".to_owned()
    } else if body.len() > SNIPPET_BYTES {
        format!("{text}...")
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snippet_quotes_the_start_of_an_answer() {
        assert_eq!(
            snippet(b"  {\"reason\":\"BadTopic\"}\n"),
            "{\"reason\":\"BadTopic\"}"
        );
        assert_eq!(snippet(b""), "(empty answer)");
        let long = vec![b'x'; 1000];
        let s = snippet(&long);
        assert_eq!(s.len(), SNIPPET_BYTES + 3);
        assert!(s.ends_with("..."));
    }
}
