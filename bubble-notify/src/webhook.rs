//! [`WebhookNotifier`]: each notification POSTed as JSON to the app's own
//! relay, signed with the app's secret so the relay knows it came from
//! bubble; and [`WebhookConfig`], its settings.
//!
//! # The request
//!
//! `POST <url>` with the [`Notification`] as its JSON body and
//!
//! - `content-type: application/json`
//! - `x-bubble-timestamp: <unix ms>` ([`TIMESTAMP_HEADER`])
//! - `x-bubble-signature: sha256=<hex HMAC-SHA256(app secret, "<timestamp>.<body>")>`
//!   ([`SIGNATURE_HEADER`], computed by [`signature`])
//!
//! A relay recomputes the signature over the exact body bytes, compares it
//! in constant time and refuses timestamps far from its clock (replays).
//!
//! # The answer
//!
//! | status | outcome |
//! |---|---|
//! | 2xx | [`NotifyOutcome::Sent`] |
//! | 404, 410 | [`NotifyOutcome::InvalidToken`]: the relay no longer knows the token |
//! | 429 | [`ErrorKind::RateLimited`] (tried again later) |
//! | 408 | [`ErrorKind::Timeout`] (tried again later) |
//! | 5xx, no connection | [`ErrorKind::Unavailable`] (tried again later) |
//! | no answer within `timeout_ms` | [`ErrorKind::Timeout`] (tried again later) |
//! | 3xx, other 4xx | [`ErrorKind::InvalidInput`] (dropped) |

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bubble_core::notify::{Notification, Notifier, NotifyOutcome, PushPlatform};
use bubble_core::{AdapterConfig, Error, ErrorKind, InvalidConfig, Result, redact_url};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{request_failed, snippet};
use crate::http::{build_client, check_http_url, client_builder, read_answer, unix_ms};

/// The header carrying when the notification was signed (Unix ms).
pub const TIMESTAMP_HEADER: &str = "x-bubble-timestamp";
/// The header carrying `sha256=<hex HMAC>` of `"<timestamp>.<body>"`.
pub const SIGNATURE_HEADER: &str = "x-bubble-signature";

/// Settings of [`WebhookNotifier`] (`platform = "webhook"` in a `[[push]]`
/// section).
///
/// `Debug` hides the credentials and the query of `url`, either of which
/// may be the relay's secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// The relay's URL (`https://push.example.com/bubble`); every
    /// notification of the app is POSTed to it. Required.
    pub url: String,
    /// One request's deadline (ms), connecting included; past it the send
    /// fails with `Timeout` and is tried again later.
    pub timeout_ms: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            url: String::new(),
            timeout_ms: 5_000,
        }
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &shown_url(&self.url))
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

impl WebhookConfig {
    /// The defaults with this relay URL.
    pub fn new(url: impl Into<String>) -> WebhookConfig {
        WebhookConfig {
            url: url.into(),
            ..WebhookConfig::default()
        }
    }

    /// Sets [`timeout_ms`](WebhookConfig::timeout_ms).
    pub fn with_timeout_ms(mut self, timeout_ms: u64) -> Self {
        self.timeout_ms = timeout_ms;
        self
    }

    /// Every field's rule, naming the first bad field.
    fn check(&self) -> std::result::Result<reqwest::Url, InvalidConfig> {
        if self.url.is_empty() {
            return Err(InvalidConfig::new(
                "url",
                "is required: the relay's address, such as https://push.example.com/bubble",
            ));
        }
        let url = check_http_url(&self.url, "https://push.example.com/bubble")
            .map_err(|why| InvalidConfig::new("url", why))?;
        if self.timeout_ms == 0 {
            return Err(InvalidConfig::new(
                "timeout_ms",
                "must be above 0 (5000 is the default)",
            ));
        }
        Ok(url)
    }
}

#[async_trait]
impl AdapterConfig for WebhookConfig {
    type Adapter = WebhookNotifier;

    fn validate(&self) -> std::result::Result<(), InvalidConfig> {
        self.check().map(drop)
    }

    /// Validates and builds the client; nothing is sent until the first
    /// notification (a relay need not answer anything but POSTs).
    async fn connect(&self) -> Result<WebhookNotifier> {
        WebhookNotifier::new(self)
    }
}

/// `url` as logs and `Debug` show it: no credentials, no query.
fn shown_url(url: &str) -> String {
    let url = redact_url(url);
    match url.split_once('?') {
        Some((before, _)) => format!("{before}?<hidden>"),
        None => url,
    }
}

/// The value of [`SIGNATURE_HEADER`] for `body` sent at `timestamp_ms`:
/// `sha256=` and the lowercase hex HMAC-SHA256, keyed with `app_secret`,
/// of the timestamp's decimal digits, a `.`, and the body's bytes.
pub fn signature(app_secret: &str, timestamp_ms: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(timestamp_ms.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Delivers notifications to the app's own HTTP relay, as signed JSON.
///
/// Cheap to share: one connection pool serves every send.
pub struct WebhookNotifier {
    /// The pooled HTTP client (timeout, no redirects).
    client: reqwest::Client,
    /// Where every notification goes.
    url: reqwest::Url,
    /// `url` without its secrets, for errors.
    shown: String,
}

impl fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookNotifier")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

impl WebhookNotifier {
    /// Validates `config` and builds the client (no request is made).
    pub fn new(config: &WebhookConfig) -> Result<WebhookNotifier> {
        let url = config.check()?;
        let client = build_client(
            "webhook",
            client_builder(Duration::from_millis(config.timeout_ms)),
        )?;
        Ok(WebhookNotifier {
            client,
            url,
            shown: shown_url(&config.url),
        })
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn platform(&self) -> PushPlatform {
        PushPlatform::Webhook
    }

    async fn send(&self, notification: &Notification, app_secret: &str) -> Result<NotifyOutcome> {
        if app_secret.is_empty() {
            return Err(Error::invalid(format!(
                "webhook: app {} has no secret to sign notifications with; give the app a secret",
                notification.app
            )));
        }
        let body = serde_json::to_vec(notification).map_err(|e| {
            Error::internal(format!("webhook: cannot encode the notification: {e}")).with_source(e)
        })?;
        let timestamp = unix_ms();
        let signed = signature(app_secret, timestamp, &body);
        let failed = |e| request_failed("webhook", &self.shown, e);
        let response = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signed)
            .body(body)
            .send()
            .await
            .map_err(failed)?;
        let answer = read_answer(response).await.map_err(failed)?;
        outcome(answer.status, &answer.body, &self.shown)
    }
}

/// What the relay's answer means (see the module's table).
fn outcome(status: StatusCode, body: &[u8], shown: &str) -> Result<NotifyOutcome> {
    let code = status.as_u16();
    let (kind, what) = match code {
        200..=299 => return Ok(NotifyOutcome::Sent),
        404 | 410 => return Ok(NotifyOutcome::InvalidToken),
        429 => (
            ErrorKind::RateLimited,
            "is rate limiting; tried again later",
        ),
        408 => (
            ErrorKind::Timeout,
            "timed out reading the request; tried again later",
        ),
        500..=599 => (ErrorKind::Unavailable, "failed; tried again later"),
        300..=399 => (
            ErrorKind::InvalidInput,
            "answered a redirect, which is not followed; set `url` to the final address",
        ),
        _ => (
            ErrorKind::InvalidInput,
            "refused the notification; it is dropped, not retried",
        ),
    };
    Err(Error::new(
        kind,
        format!(
            "webhook: the relay at {shown} {what} (HTTP {code}: {})",
            snippet(body)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_timestamp_dot_body() {
        // HMAC-SHA256("secret", "1700000000000.{}"), computed independently:
        // printf '1700000000000.{}' | openssl dgst -sha256 -hmac secret
        let s = signature("secret", 1_700_000_000_000, b"{}");
        assert_eq!(
            s,
            "sha256=8399216d111287e3bb28e25c0f4f31dffdf831c68c9ee2b96c2f67c9b81d341b"
        );
        assert_ne!(s, signature("secret", 1_700_000_000_001, b"{}"));
        assert_ne!(s, signature("other", 1_700_000_000_000, b"{}"));
    }

    #[test]
    fn the_url_is_shown_without_credentials_or_query() {
        assert_eq!(
            shown_url("https://bubble:s3cret@relay.example/push?key=abc"),
            "https://bubble:<hidden>@relay.example/push?<hidden>"
        );
        assert_eq!(
            shown_url("https://relay.example/push"),
            "https://relay.example/push"
        );
    }

    #[test]
    fn statuses_map_to_outcomes_and_kinds() {
        let at = |code: u16| outcome(StatusCode::from_u16(code).unwrap(), b"", "relay");
        assert_eq!(at(200).unwrap(), NotifyOutcome::Sent);
        assert_eq!(at(204).unwrap(), NotifyOutcome::Sent);
        assert_eq!(at(404).unwrap(), NotifyOutcome::InvalidToken);
        assert_eq!(at(410).unwrap(), NotifyOutcome::InvalidToken);
        assert_eq!(at(429).unwrap_err().kind(), ErrorKind::RateLimited);
        assert_eq!(at(408).unwrap_err().kind(), ErrorKind::Timeout);
        assert_eq!(at(500).unwrap_err().kind(), ErrorKind::Unavailable);
        assert_eq!(at(503).unwrap_err().kind(), ErrorKind::Unavailable);
        assert_eq!(at(302).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(at(400).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(at(401).unwrap_err().kind(), ErrorKind::InvalidInput);
    }
}
