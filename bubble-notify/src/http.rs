//! What the providers' HTTP clients share: one deadline per request, no
//! redirects, a cap on how much of an answer is read, and the clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bubble_core::{Error, Result};
use reqwest::{Response, StatusCode};

/// Most bytes of an answer read: providers answer a few hundred; a relay
/// that streams more is not allowed to hold memory or the sending task.
pub(crate) const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// How bubble introduces itself to providers.
const USER_AGENT: &str = concat!("bubble-notify/", env!("CARGO_PKG_VERSION"));

/// A client builder with the settings every provider uses: `timeout` for
/// the whole request (and for connecting), and no redirects, since a
/// redirected POST would become a GET and a provider never redirects.
pub(crate) fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
}

/// Builds the client of `provider`.
pub(crate) fn build_client(
    provider: &str,
    builder: reqwest::ClientBuilder,
) -> Result<reqwest::Client> {
    builder.build().map_err(|e| {
        Error::internal(format!(
            "{provider}: cannot build the HTTP client (TLS roots or settings): {e}"
        ))
        .with_source(e)
    })
}

/// A provider's answer: its status and the first [`MAX_ANSWER_BYTES`] of its body.
pub(crate) struct Answer {
    /// The HTTP status.
    pub(crate) status: StatusCode,
    /// The body, cut at [`MAX_ANSWER_BYTES`].
    pub(crate) body: Vec<u8>,
}

/// Reads `response` up to [`MAX_ANSWER_BYTES`] of body.
pub(crate) async fn read_answer(mut response: Response) -> reqwest::Result<Answer> {
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_ANSWER_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_ANSWER_BYTES {
            break;
        }
    }
    Ok(Answer { status, body })
}

/// Now, in milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// Now, in seconds since the Unix epoch (JWT times).
pub(crate) fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Checks that `url` is an absolute `http://` or `https://` URL with a
/// host; the problem otherwise, for a config error.
pub(crate) fn check_http_url(
    url: &str,
    example: &str,
) -> std::result::Result<reqwest::Url, String> {
    let shown = bubble_core::redact_url(url);
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        format!("has {shown:?}, which is not a URL ({e}); give one such as {example}")
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!(
            "has {shown:?}; it must be an http:// or https:// URL such as {example}"
        ));
    }
    Ok(parsed)
}
