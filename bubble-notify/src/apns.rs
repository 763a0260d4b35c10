//! [`ApnsNotifier`]: Apple Push Notification service over HTTP/2 with
//! token-based authentication; and [`ApnsConfig`], its settings.
//!
//! # The provider token
//!
//! A JWT signed with the team's APNs auth key (ES256; header `alg`, `kid` =
//! `key_id`; claims `iss` = `team_id`, `iat`; the signature in JOSE form,
//! `r || s`). Apple refuses a token older than an hour and answers
//! `TooManyProviderTokenUpdates` to a team that makes new ones more often
//! than every 20 minutes, so one token serves every send for 40 minutes.
//! A token Apple calls `ExpiredProviderToken` is replaced at once and the
//! send made once more.
//!
//! # The request
//!
//! HTTP/2 (Apple serves nothing else): `POST {endpoint}/3/device/<token>`
//! with `authorization: bearer <provider token>`, `apns-topic` (the bundle
//! id), `apns-push-type: alert`, `apns-priority: 10`, `apns-expiration: 0`,
//! `apns-collapse-id` (see [`collapse_id`]) and the payload of
//! [`payload`]. `https://` endpoints negotiate HTTP/2 by ALPN; an
//! `http://` endpoint (a local relay or a test server) is spoken to in
//! cleartext HTTP/2 with prior knowledge (h2c).
//!
//! # The answer
//!
//! | answer | outcome |
//! |---|---|
//! | 200 | [`NotifyOutcome::Sent`] |
//! | 410 (`Unregistered`, `ExpiredToken`) | [`NotifyOutcome::InvalidToken`] |
//! | 400 `BadDeviceToken` | [`NotifyOutcome::InvalidToken`] |
//! | 400 `DeviceTokenNotForTopic` | [`ErrorKind::InvalidInput`], the token kept: a wrong `topic` setting must not wipe every iOS token |
//! | 403 `ExpiredProviderToken` | a new provider token, and the send once more |
//! | 403 `InvalidProviderToken`, a second `ExpiredProviderToken` | [`ErrorKind::Unauthenticated`] |
//! | other 403 | [`ErrorKind::PermissionDenied`] |
//! | 413 `PayloadTooLarge` | [`ErrorKind::TooLarge`] |
//! | 429 (`TooManyRequests`, `TooManyProviderTokenUpdates`) | [`ErrorKind::RateLimited`] |
//! | 500, 503, other 5xx | [`ErrorKind::Unavailable`] |
//! | other 4xx | [`ErrorKind::InvalidInput`] |
//!
//! A device token that is not hexadecimal is [`NotifyOutcome::InvalidToken`]
//! without asking Apple (Apple's answer would be `BadDeviceToken`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bubble_core::notify::{Notification, Notifier, NotifyOutcome, PushPlatform};
use bubble_core::{AdapterConfig, Error, ErrorKind, InvalidConfig, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{request_failed, snippet};
use crate::http::{Answer, build_client, check_http_url, client_builder, read_answer, unix_secs};
use crate::keys::JwtKey;

/// APNs for apps from the App Store, TestFlight and ad hoc builds.
pub const PRODUCTION_ENDPOINT: &str = "https://api.push.apple.com";
/// APNs for development builds (signed with a development profile).
pub const SANDBOX_ENDPOINT: &str = "https://api.sandbox.push.apple.com";
/// How long one provider token is used: within Apple's hour, and past the
/// 20 minutes Apple requires between two new tokens.
pub const PROVIDER_TOKEN_REUSE: Duration = Duration::from_secs(40 * 60);
/// Apple's largest payload of an alert notification, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 4096;
/// Apple's longest `apns-collapse-id`, in bytes.
pub const MAX_COLLAPSE_ID_BYTES: usize = 64;
/// The longest device token accepted, in hex digits (today's are 64;
/// Apple says they may grow, and sets no bound: 100 bytes is generous).
const MAX_DEVICE_TOKEN_HEX: usize = 200;
/// Where to get the key, for errors about the key file.
const KEY_HELP: &str = "create an APNs auth key (.p8) in Apple's developer account \
                        (Certificates, Identifiers & Profiles > Keys) and give its path";

/// Settings of [`ApnsNotifier`] (`platform = "apns"` in a `[[push]]` section).
///
/// Nothing here is secret (the key stays in its file); the notifier's
/// `Debug` shows neither the key nor the provider token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ApnsConfig {
    /// The Apple developer team's id (10 characters, from the Membership
    /// page of the developer account): the provider token's issuer. Required.
    pub team_id: String,
    /// The auth key's id (10 characters, shown beside the key and in its
    /// file name `AuthKey_<key_id>.p8`). Required.
    pub key_id: String,
    /// The auth key: the `.p8` file Apple lets you download once (PEM,
    /// PKCS#8, P-256). Required.
    pub key_file: PathBuf,
    /// The app's bundle id (`com.example.chat`): `apns-topic`. Required.
    pub topic: String,
    /// Where APNs answers: [`PRODUCTION_ENDPOINT`] (the default) or
    /// [`SANDBOX_ENDPOINT`] for development builds.
    pub endpoint: String,
    /// A PEM file of extra root certificates to trust (a TLS-intercepting
    /// proxy, a test server); Apple's own roots are always trusted.
    pub ca_file: Option<PathBuf>,
    /// One request's deadline (ms); past it the send fails with `Timeout`
    /// and is tried again later.
    pub timeout_ms: u64,
}

impl Default for ApnsConfig {
    fn default() -> Self {
        ApnsConfig {
            team_id: String::new(),
            key_id: String::new(),
            key_file: PathBuf::new(),
            topic: String::new(),
            endpoint: PRODUCTION_ENDPOINT.to_owned(),
            ca_file: None,
            timeout_ms: 5_000,
        }
    }
}

impl ApnsConfig {
    /// The defaults with these credentials and topic (the bundle id).
    pub fn new(
        team_id: impl Into<String>,
        key_id: impl Into<String>,
        key_file: impl Into<PathBuf>,
        topic: impl Into<String>,
    ) -> ApnsConfig {
        ApnsConfig {
            team_id: team_id.into(),
            key_id: key_id.into(),
            key_file: key_file.into(),
            topic: topic.into(),
            ..ApnsConfig::default()
        }
    }

    /// Sets [`endpoint`](ApnsConfig::endpoint).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    /// Sets [`ca_file`](ApnsConfig::ca_file).
    pub fn with_ca_file(mut self, ca_file: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(ca_file.into());
        self
    }

    /// Sets [`timeout_ms`](ApnsConfig::timeout_ms).
    pub fn with_timeout_ms(mut self, timeout_ms: u64) -> Self {
        self.timeout_ms = timeout_ms;
        self
    }

    /// Every field's rule, naming the first bad field.
    fn check(&self) -> std::result::Result<(), InvalidConfig> {
        let apple_id = |field: &str, value: &str, what: &str| {
            if value.len() == 10 && value.bytes().all(|b| b.is_ascii_alphanumeric()) {
                Ok(())
            } else {
                Err(InvalidConfig::new(
                    field,
                    format!("is {value:?}; it must be the 10-character {what}"),
                ))
            }
        };
        apple_id(
            "team_id",
            &self.team_id,
            "Team ID from the Membership page of Apple's developer account",
        )?;
        apple_id(
            "key_id",
            &self.key_id,
            "Key ID of the APNs auth key (as in its file name, AuthKey_<key_id>.p8)",
        )?;
        if self.key_file.as_os_str().is_empty() {
            return Err(InvalidConfig::new(
                "key_file",
                format!("is required: {KEY_HELP}"),
            ));
        }
        if self.topic.is_empty()
            || self
                .topic
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(InvalidConfig::new(
                "topic",
                format!(
                    "is {:?}; it must be the app's bundle id, such as com.example.chat",
                    self.topic
                ),
            ));
        }
        check_http_url(&self.endpoint, PRODUCTION_ENDPOINT)
            .map_err(|why| InvalidConfig::new("endpoint", why))?;
        if self
            .ca_file
            .as_ref()
            .is_some_and(|f| f.as_os_str().is_empty())
        {
            return Err(InvalidConfig::new(
                "ca_file",
                "is empty; leave it out, or give a PEM file of root certificates",
            ));
        }
        if self.timeout_ms == 0 {
            return Err(InvalidConfig::new(
                "timeout_ms",
                "must be above 0 (5000 is the default)",
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl AdapterConfig for ApnsConfig {
    type Adapter = ApnsNotifier;

    fn validate(&self) -> std::result::Result<(), InvalidConfig> {
        self.check()
    }

    /// Validates, then reads and checks the key (and `ca_file`); no
    /// request is made until the first notification.
    async fn connect(&self) -> Result<ApnsNotifier> {
        ApnsNotifier::open(self).await
    }
}

/// A provider token and when it was made.
struct ProviderToken {
    /// The signed JWT (secret: never logged).
    value: String,
    /// When it was signed, for [`PROVIDER_TOKEN_REUSE`].
    made: Instant,
}

/// Delivers notifications through APNs (HTTP/2, token-based auth).
///
/// Build it with [`ApnsNotifier::open`] (or [`AdapterConfig::connect`]).
/// Share it: one HTTP/2 connection carries concurrent sends, and one
/// provider token serves them all.
pub struct ApnsNotifier {
    /// HTTP/2 only (prior knowledge on cleartext; ALPN `h2` on TLS).
    client: reqwest::Client,
    /// `endpoint` without a trailing `/`.
    endpoint: String,
    /// `apns-topic`: the bundle id.
    topic: String,
    /// The provider token's issuer.
    team_id: String,
    /// The provider token's `kid`.
    key_id: String,
    /// The auth key (secret).
    key: JwtKey,
    /// The provider token in use. A plain mutex: signing takes
    /// microseconds, and holding it while signing makes one new token at a
    /// time, never two racing ones (Apple counts every new token).
    token: parking_lot::Mutex<Option<ProviderToken>>,
}

impl fmt::Debug for ApnsNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApnsNotifier")
            .field("endpoint", &self.endpoint)
            .field("topic", &self.topic)
            .field("team_id", &self.team_id)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// A problem with a file the config names: the setting, the file, what.
fn bad_file(field: &str, path: &Path, problem: impl fmt::Display) -> Error {
    InvalidConfig::new(field, format!("{}: {problem}", path.display())).into()
}

impl ApnsNotifier {
    /// Validates `config`, then reads and checks `key_file` (and
    /// `ca_file`); a missing file or a key that is not P-256 fails here,
    /// naming the setting and the file.
    pub async fn open(config: &ApnsConfig) -> Result<ApnsNotifier> {
        config.check()?;
        let path = &config.key_file;
        let pem = Zeroizing::new(tokio::fs::read_to_string(path).await.map_err(|e| {
            bad_file(
                "key_file",
                path,
                format!("cannot be read ({e}); {KEY_HELP}"),
            )
        })?);
        let key = JwtKey::p256_from_pem(&pem).map_err(|why| bad_file("key_file", path, why))?;
        let mut builder = client_builder(Duration::from_millis(config.timeout_ms))
            .http2_prior_knowledge()
            // Apple keeps connections open for many notifications and
            // suggests PINGs to check a quiet one is still alive.
            .http2_keep_alive_interval(Duration::from_secs(60))
            .http2_keep_alive_while_idle(true);
        if let Some(ca) = &config.ca_file {
            let pem = tokio::fs::read(ca).await.map_err(|e| {
                bad_file("ca_file", ca, format!("cannot be read ({e}); give a PEM file of root certificates or leave ca_file out"))
            })?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| bad_file("ca_file", ca, format!("is not PEM certificates ({e})")))?;
            if roots.is_empty() {
                return Err(bad_file("ca_file", ca, "holds no certificate"));
            }
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
        }
        Ok(ApnsNotifier {
            client: build_client("apns", builder)?,
            endpoint: config.endpoint.trim_end_matches('/').to_owned(),
            topic: config.topic.clone(),
            team_id: config.team_id.clone(),
            key_id: config.key_id.clone(),
            key,
            token: parking_lot::Mutex::new(None),
        })
    }

    /// The provider token to send with: the current one while younger than
    /// [`PROVIDER_TOKEN_REUSE`] and not `expired` (Apple's word for it);
    /// otherwise a new one.
    fn provider_token(&self, expired: Option<&str>) -> Result<String> {
        let mut slot = self.token.lock();
        if let Some(current) = slot.as_ref()
            && expired != Some(current.value.as_str())
            && current.made.elapsed() < PROVIDER_TOKEN_REUSE
        {
            return Ok(current.value.clone());
        }
        // Apple's documented header is exactly {alg, kid}.
        #[derive(Serialize)]
        struct JwtHeader<'a> {
            alg: &'static str,
            kid: &'a str,
        }
        #[derive(Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            iat: u64,
        }
        let header = JwtHeader {
            alg: self.key.alg(),
            kid: &self.key_id,
        };
        let claims = Claims {
            iss: &self.team_id,
            iat: unix_secs(),
        };
        let value = self.key.sign(&header, &claims).map_err(|e| {
            Error::internal(format!(
                "apns: cannot sign the provider token with key {}: {e}",
                self.key_id
            ))
        })?;
        tracing::debug!(key_id = %self.key_id, "apns: made a provider token");
        *slot = Some(ProviderToken {
            value: value.clone(),
            made: Instant::now(),
        });
        Ok(value)
    }

    /// POSTs `payload` for `n` with `provider_token`.
    async fn post(&self, n: &Notification, payload: &[u8], provider_token: &str) -> Result<Answer> {
        let url = format!("{}/3/device/{}", self.endpoint, n.token);
        let failed = |e| request_failed("apns", &self.endpoint, e);
        let mut request = self
            .client
            .post(url)
            .header(
                reqwest::header::AUTHORIZATION,
                format!("bearer {provider_token}"),
            )
            .header("apns-topic", &self.topic)
            .header("apns-push-type", "alert")
            .header("apns-priority", "10")
            .header("apns-expiration", "0");
        if !n.collapse_key.is_empty() {
            request = request.header("apns-collapse-id", collapse_id(&n.collapse_key));
        }
        let response = request
            .body(payload.to_vec())
            .send()
            .await
            .map_err(failed)?;
        read_answer(response).await.map_err(failed)
    }
}

#[async_trait]
impl Notifier for ApnsNotifier {
    fn platform(&self) -> PushPlatform {
        PushPlatform::Apns
    }

    async fn send(&self, notification: &Notification, _app_secret: &str) -> Result<NotifyOutcome> {
        if !is_device_token(&notification.token) {
            tracing::debug!("apns: a device token that is not hex is invalid");
            return Ok(NotifyOutcome::InvalidToken);
        }
        let payload = serde_json::to_vec(&payload(notification)).map_err(|e| {
            Error::internal(format!("apns: cannot encode the payload: {e}")).with_source(e)
        })?;
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "apns: the payload is {} bytes, more than Apple's {MAX_PAYLOAD_BYTES}; \
                     shorten the notification's text",
                    payload.len()
                ),
            ));
        }
        let token = self.provider_token(None)?;
        let mut answer = self.post(notification, &payload, &token).await?;
        if answer.status == reqwest::StatusCode::FORBIDDEN
            && reason(&answer.body).as_deref() == Some("ExpiredProviderToken")
        {
            tracing::debug!(key_id = %self.key_id, "apns: provider token expired; making a new one");
            let token = self.provider_token(Some(&token))?;
            answer = self.post(notification, &payload, &token).await?;
        }
        outcome(&answer)
    }
}

/// Whether `token` can be a device token: hex digits (what the device's
/// `didRegisterForRemoteNotificationsWithDeviceToken` bytes become).
fn is_device_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_DEVICE_TOKEN_HEX
        && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The `apns-collapse-id` for a collapse key: the key itself when it fits
/// Apple's [`MAX_COLLAPSE_ID_BYTES`], else the hex SHA-256 of it (exactly
/// 64 bytes), so two long keys never collide the way truncated ones would.
pub fn collapse_id(collapse_key: &str) -> String {
    if collapse_key.len() <= MAX_COLLAPSE_ID_BYTES {
        collapse_key.to_owned()
    } else {
        hex::encode(Sha256::digest(collapse_key.as_bytes()))
    }
}

/// The APNs payload of `n`:
///
/// ```json
/// {"aps": {"alert": {"title": "<title, when there is one>", "body": "<body>"},
///          "badge": <badge>, "sound": "default", "thread-id": "<conversation>"},
///  "conversation": "...", "message_id": "...", "sender": "..."}
/// ```
///
/// `thread-id` groups a conversation's notifications on the device; the
/// custom keys let a tap open the message.
pub fn payload(n: &Notification) -> Value {
    let mut alert = json!({ "body": n.body });
    if let Some(title) = &n.title {
        alert["title"] = json!(title);
    }
    json!({
        "aps": {
            "alert": alert,
            "badge": n.badge,
            "sound": "default",
            "thread-id": n.conversation,
        },
        "conversation": n.conversation,
        "message_id": n.message_id,
        "sender": n.sender,
    })
}

/// The `reason` of an APNs error body (`{"reason":"BadDeviceToken"}`).
fn reason(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Refusal {
        reason: String,
    }
    serde_json::from_slice::<Refusal>(body)
        .ok()
        .map(|r| r.reason)
}

/// What Apple's answer means (see the module's table).
fn outcome(answer: &Answer) -> Result<NotifyOutcome> {
    let code = answer.status.as_u16();
    if code == 200 {
        return Ok(NotifyOutcome::Sent);
    }
    let reason = reason(&answer.body);
    let why = reason.clone().unwrap_or_else(|| snippet(&answer.body));
    let (kind, what) = match (code, reason.as_deref().unwrap_or("")) {
        (410, _) => return Ok(NotifyOutcome::InvalidToken),
        (400, "BadDeviceToken") => return Ok(NotifyOutcome::InvalidToken),
        // Either the token belongs to another app (a development build) or
        // `topic` is wrong for every token: keep it, say which.
        (400, "DeviceTokenNotForTopic") => (
            ErrorKind::InvalidInput,
            "says the device token is not for topic; check topic (the bundle id) if \
             this happens for every device",
        ),
        (403, "ExpiredProviderToken") => (
            ErrorKind::Unauthenticated,
            "called a new provider token expired too; check this host's clock",
        ),
        (403, "InvalidProviderToken") => (
            ErrorKind::Unauthenticated,
            "refused the provider token; check team_id, key_id and that key_file \
             is that key, not revoked",
        ),
        (403, _) => (
            ErrorKind::PermissionDenied,
            "refused the request; check that the key may send to topic",
        ),
        (413, _) => (
            ErrorKind::TooLarge,
            "refused a payload too large; shorten the notification's text",
        ),
        (429, _) => (
            ErrorKind::RateLimited,
            "is rate limiting; tried again later",
        ),
        (500..=599, _) => (ErrorKind::Unavailable, "failed; tried again later"),
        _ => (
            ErrorKind::InvalidInput,
            "refused the notification; it is dropped, not retried",
        ),
    };
    Err(Error::new(
        kind,
        format!("apns: APNs {what} (HTTP {code}: {why})"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    fn answer(code: u16, reason: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(code).unwrap(),
            body: json!({ "reason": reason }).to_string().into_bytes(),
        }
    }

    #[test]
    fn a_short_collapse_key_is_the_collapse_id() {
        assert_eq!(collapse_id("direct:alice"), "direct:alice");
        let exactly = "g".repeat(MAX_COLLAPSE_ID_BYTES);
        assert_eq!(collapse_id(&exactly), exactly);
    }

    #[test]
    fn a_long_collapse_key_becomes_its_64_byte_hash() {
        let long = format!("group:{}", "x".repeat(100));
        let id = collapse_id(&long);
        assert_eq!(id.len(), MAX_COLLAPSE_ID_BYTES);
        assert_eq!(id, hex::encode(Sha256::digest(long.as_bytes())));
        assert_ne!(id, collapse_id(&format!("group:{}", "y".repeat(100))));
    }

    #[test]
    fn a_device_token_is_hex() {
        assert!(is_device_token(&"ab12".repeat(16)));
        assert!(!is_device_token(""));
        assert!(!is_device_token("not-hex"));
        assert!(!is_device_token("ab/../cd"));
        assert!(!is_device_token(&"a".repeat(MAX_DEVICE_TOKEN_HEX + 1)));
    }

    #[test]
    fn apples_reasons_map_to_outcomes_and_kinds() {
        assert_eq!(outcome(&answer(200, "")).unwrap(), NotifyOutcome::Sent);
        for (code, reason) in [
            (410, "Unregistered"),
            (410, "ExpiredToken"),
            (400, "BadDeviceToken"),
        ] {
            assert_eq!(
                outcome(&answer(code, reason)).unwrap(),
                NotifyOutcome::InvalidToken,
                "{code} {reason}"
            );
        }
        for (code, reason, kind) in [
            (400, "BadCollapseId", ErrorKind::InvalidInput),
            (400, "DeviceTokenNotForTopic", ErrorKind::InvalidInput),
            (400, "TopicDisallowed", ErrorKind::InvalidInput),
            (403, "InvalidProviderToken", ErrorKind::Unauthenticated),
            (403, "ExpiredProviderToken", ErrorKind::Unauthenticated),
            (
                403,
                "BadCertificateEnvironment",
                ErrorKind::PermissionDenied,
            ),
            (404, "BadPath", ErrorKind::InvalidInput),
            (413, "PayloadTooLarge", ErrorKind::TooLarge),
            (429, "TooManyRequests", ErrorKind::RateLimited),
            (429, "TooManyProviderTokenUpdates", ErrorKind::RateLimited),
            (500, "InternalServerError", ErrorKind::Unavailable),
            (503, "ServiceUnavailable", ErrorKind::Unavailable),
        ] {
            let e = outcome(&answer(code, reason)).unwrap_err();
            assert_eq!(e.kind(), kind, "{code} {reason}: {e}");
            assert!(e.message().contains(reason), "{e}");
        }
    }
}
