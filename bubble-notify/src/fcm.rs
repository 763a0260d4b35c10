//! [`FcmNotifier`]: Firebase Cloud Messaging's HTTP v1 API, authorised by
//! an OAuth2 access token of a Google service account; and [`FcmConfig`],
//! its settings.
//!
//! # Access tokens
//!
//! The service account's key signs a JWT (RS256; header `alg`, `typ`, and
//! `kid` = the key's `private_key_id`; claims `iss` = `client_email`,
//! `scope` = [`MESSAGING_SCOPE`], `aud` = `token_uri`, `iat`, and
//! `exp` = `iat + 3600`) that is exchanged at `token_uri` (the JWT bearer
//! grant, RFC 7523) for an access token. The token is kept until 60 s before it expires and
//! shared by every send; one refresh runs at a time while concurrent sends
//! wait for it.
//!
//! # Sending
//!
//! `POST {endpoint}/v1/projects/{project_id}/messages:send` with
//! `authorization: Bearer <access token>` and the message (see
//! [`message_body`]). Google's answers mean:
//!
//! | answer | outcome |
//! |---|---|
//! | 200 | [`NotifyOutcome::Sent`] |
//! | 404 `UNREGISTERED` | [`NotifyOutcome::InvalidToken`] |
//! | 400 `INVALID_ARGUMENT` about `message.token` | [`NotifyOutcome::InvalidToken`] |
//! | 401 | a new access token, and the send once more; a second 401 is [`ErrorKind::Unauthenticated`] |
//! | 401 `THIRD_PARTY_AUTH_ERROR` | [`ErrorKind::Unauthenticated`] (the project's APNs or web push credentials) |
//! | 403 (`SENDER_ID_MISMATCH`) | [`ErrorKind::PermissionDenied`] |
//! | 429 (`QUOTA_EXCEEDED`) | [`ErrorKind::RateLimited`] |
//! | 500 (`INTERNAL`), 503 (`UNAVAILABLE`), other 5xx | [`ErrorKind::Unavailable`] |
//! | other 4xx | [`ErrorKind::InvalidInput`] |

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bubble_core::notify::{Notification, Notifier, NotifyOutcome, PushPlatform};
use bubble_core::{AdapterConfig, Error, ErrorKind, InvalidConfig, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::error::{request_failed, snippet};
use crate::http::{Answer, build_client, check_http_url, client_builder, read_answer, unix_secs};
use crate::keys::JwtKey;

/// Where FCM's HTTP v1 API answers.
pub const DEFAULT_ENDPOINT: &str = "https://fcm.googleapis.com";
/// The OAuth2 scope that lets an access token send FCM messages.
pub const MESSAGING_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// Google's token endpoint, for a service-account file that names none.
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The grant type of RFC 7523 (a signed JWT for an access token).
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How long the signed assertion is valid (Google's maximum).
const ASSERTION_LIFETIME_SECS: u64 = 3600;
/// How long before its expiry an access token is replaced, so a send never
/// carries one that expires in flight.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Where to get a service-account key, for errors about the file.
const KEY_HELP: &str = "download one from the Firebase console (Project settings > \
                        Service accounts > Generate new private key)";

/// Settings of [`FcmNotifier`] (`platform = "fcm"` in a `[[push]]` section).
///
/// Nothing here is secret (the key stays in its file); the notifier's
/// `Debug` shows neither the key nor the access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct FcmConfig {
    /// The service account's JSON key file, as Google hands it out (its
    /// `project_id`, `private_key`, `client_email`, `token_uri` are used).
    /// Required.
    pub service_account_file: PathBuf,
    /// Where FCM's API answers; change it only for a proxy or a test server.
    pub endpoint: String,
    /// One request's deadline (ms), for sends and for fetching access
    /// tokens; past it the send fails with `Timeout` and is tried again.
    pub timeout_ms: u64,
}

impl Default for FcmConfig {
    fn default() -> Self {
        FcmConfig {
            service_account_file: PathBuf::new(),
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            timeout_ms: 5_000,
        }
    }
}

impl FcmConfig {
    /// The defaults with this service-account key file.
    pub fn new(service_account_file: impl Into<PathBuf>) -> FcmConfig {
        FcmConfig {
            service_account_file: service_account_file.into(),
            ..FcmConfig::default()
        }
    }

    /// Sets [`endpoint`](FcmConfig::endpoint).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    /// Sets [`timeout_ms`](FcmConfig::timeout_ms).
    pub fn with_timeout_ms(mut self, timeout_ms: u64) -> Self {
        self.timeout_ms = timeout_ms;
        self
    }

    /// Every field's rule, naming the first bad field.
    fn check(&self) -> std::result::Result<(), InvalidConfig> {
        if self.service_account_file.as_os_str().is_empty() {
            return Err(InvalidConfig::new(
                "service_account_file",
                format!("is required: the path of the service account's JSON key; {KEY_HELP}"),
            ));
        }
        check_http_url(&self.endpoint, DEFAULT_ENDPOINT)
            .map_err(|why| InvalidConfig::new("endpoint", why))?;
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
impl AdapterConfig for FcmConfig {
    type Adapter = FcmNotifier;

    fn validate(&self) -> std::result::Result<(), InvalidConfig> {
        self.check()
    }

    /// Validates, reads and checks the service-account file; no request is
    /// made until the first notification.
    async fn connect(&self) -> Result<FcmNotifier> {
        FcmNotifier::open(self).await
    }
}

/// The fields of Google's service-account JSON key that are used. Not
/// `Debug`: it holds the private key.
#[derive(Deserialize)]
struct ServiceAccount {
    /// `"service_account"` in a key file (other credentials are refused).
    #[serde(rename = "type")]
    kind: Option<String>,
    project_id: Option<String>,
    private_key_id: Option<String>,
    private_key: Option<String>,
    client_email: Option<String>,
    token_uri: Option<String>,
}

/// An access token and when to replace it.
struct AccessToken {
    /// The bearer token (secret: never logged).
    value: String,
    /// `REFRESH_MARGIN` before it expires.
    refresh_at: Instant,
}

/// Delivers notifications through Firebase Cloud Messaging (HTTP v1).
///
/// Build it with [`FcmNotifier::open`] (or [`AdapterConfig::connect`]).
/// Share it: its access token and connection pool serve every send.
pub struct FcmNotifier {
    /// The pooled HTTP client (timeout, no redirects).
    client: reqwest::Client,
    /// `{endpoint}/v1/projects/{project_id}/messages:send`.
    send_url: String,
    /// The Firebase project, for `Debug` and errors.
    project_id: String,
    /// The service account: the JWT's issuer.
    client_email: String,
    /// The key's id (`private_key_id`), the JWT's `kid`, so Google finds
    /// the public key without trying each of the account's keys.
    key_id: Option<String>,
    /// The service account's RSA key (secret).
    key: JwtKey,
    /// Where assertions are exchanged for access tokens: the JWT's audience.
    token_uri: String,
    /// The current access token. An async mutex, held across a refresh, so
    /// one refresh runs at a time and concurrent sends wait for its token.
    token: tokio::sync::Mutex<Option<AccessToken>>,
}

impl fmt::Debug for FcmNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FcmNotifier")
            .field("send_url", &self.send_url)
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

/// A problem with the service-account file, naming the setting and the file.
fn bad_file(path: &Path, problem: impl fmt::Display) -> Error {
    InvalidConfig::new(
        "service_account_file",
        format!("{}: {problem}", path.display()),
    )
    .into()
}

impl FcmNotifier {
    /// Validates `config`, then reads the service-account file and checks
    /// its key; a missing file, a missing field or a key that is not RSA
    /// fails here, naming `service_account_file` and the file.
    pub async fn open(config: &FcmConfig) -> Result<FcmNotifier> {
        config.check()?;
        let path = &config.service_account_file;
        let text = Zeroizing::new(tokio::fs::read_to_string(path).await.map_err(|e| {
            bad_file(path, format!("cannot be read ({e}); give the path of the service account's JSON key, or {KEY_HELP}"))
        })?);
        let account: ServiceAccount = serde_json::from_str(&text).map_err(|e| {
            bad_file(
                path,
                format!("is not a service-account JSON key ({e}); {KEY_HELP}"),
            )
        })?;
        if let Some(kind) = account.kind.as_deref()
            && kind != "service_account"
        {
            return Err(bad_file(
                path,
                format!("holds a {kind:?} credential, not a service account's key; {KEY_HELP}"),
            ));
        }
        let field = |value: Option<String>, name: &str| {
            value.filter(|v| !v.is_empty()).ok_or_else(|| {
                bad_file(
                    path,
                    format!("has no {name:?}; it is not a service account's key ({KEY_HELP})"),
                )
            })
        };
        let project_id = field(account.project_id, "project_id")?;
        if project_id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '?' | '#' | '%'))
        {
            return Err(bad_file(
                path,
                format!("has project_id {project_id:?}, which is not a Firebase project id"),
            ));
        }
        let client_email = field(account.client_email, "client_email")?;
        let private_key = Zeroizing::new(field(account.private_key, "private_key")?);
        let key = JwtKey::rsa_from_pem(&private_key)
            .map_err(|why| bad_file(path, format!("its \"private_key\" {why}")))?;
        let token_uri = account
            .token_uri
            .unwrap_or_else(|| GOOGLE_TOKEN_URI.to_owned());
        check_http_url(&token_uri, GOOGLE_TOKEN_URI)
            .map_err(|why| bad_file(path, format!("its \"token_uri\" {why}")))?;
        let client = build_client(
            "fcm",
            client_builder(Duration::from_millis(config.timeout_ms)),
        )?;
        Ok(FcmNotifier {
            client,
            send_url: format!(
                "{}/v1/projects/{project_id}/messages:send",
                config.endpoint.trim_end_matches('/')
            ),
            project_id,
            client_email,
            key_id: account.private_key_id.filter(|k| !k.is_empty()),
            key,
            token_uri,
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// An access token to send with: the cached one unless it is due for
    /// refresh or is `rejected` (FCM answered 401 to it); otherwise a new
    /// one, fetched while holding the lock so concurrent sends share it.
    async fn access_token(&self, rejected: Option<&str>) -> Result<String> {
        let mut slot = self.token.lock().await;
        if let Some(current) = slot.as_ref() {
            if rejected == Some(current.value.as_str()) {
                *slot = None;
            } else if Instant::now() < current.refresh_at {
                return Ok(current.value.clone());
            }
        }
        let fresh = self.fetch_access_token().await?;
        let value = fresh.value.clone();
        *slot = Some(fresh);
        Ok(value)
    }

    /// The signed JWT the token endpoint exchanges for an access token.
    fn assertion(&self) -> Result<String> {
        #[derive(Serialize)]
        struct JwtHeader<'a> {
            alg: &'static str,
            typ: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            kid: Option<&'a str>,
        }
        #[derive(Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            scope: &'a str,
            aud: &'a str,
            iat: u64,
            exp: u64,
        }
        let header = JwtHeader {
            alg: self.key.alg(),
            typ: "JWT",
            kid: self.key_id.as_deref(),
        };
        let iat = unix_secs();
        let claims = Claims {
            iss: &self.client_email,
            scope: MESSAGING_SCOPE,
            aud: &self.token_uri,
            iat,
            exp: iat + ASSERTION_LIFETIME_SECS,
        };
        self.key.sign(&header, &claims).map_err(|e| {
            Error::internal(format!(
                "fcm: cannot sign the access-token request with the service account's key: {e}"
            ))
        })
    }

    /// Exchanges a fresh assertion for an access token at `token_uri`.
    async fn fetch_access_token(&self) -> Result<AccessToken> {
        #[derive(Deserialize)]
        struct Granted {
            access_token: String,
            expires_in: u64,
        }
        let asked_at = Instant::now();
        let assertion = self.assertion()?;
        let failed = |e| request_failed("fcm", &self.token_uri, e);
        let response = self
            .client
            .post(&self.token_uri)
            .form(&[
                ("grant_type", JWT_BEARER_GRANT),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(failed)?;
        let answer = read_answer(response).await.map_err(failed)?;
        if !answer.status.is_success() {
            return Err(self.token_refused(&answer));
        }
        let granted: Granted = serde_json::from_slice(&answer.body).map_err(|e| {
            Error::unavailable(format!(
                "fcm: {} answered {} without a usable access token ({e})",
                self.token_uri, answer.status
            ))
        })?;
        tracing::debug!(
            client_email = %self.client_email,
            expires_in = granted.expires_in,
            "fcm: fetched an access token"
        );
        Ok(AccessToken {
            value: granted.access_token,
            refresh_at: asked_at
                + Duration::from_secs(granted.expires_in).saturating_sub(REFRESH_MARGIN),
        })
    }

    /// The error for a token endpoint's refusal (OAuth2's `error` and
    /// `error_description`).
    fn token_refused(&self, answer: &Answer) -> Error {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct OAuthError {
            error: String,
            error_description: String,
        }
        let code = answer.status.as_u16();
        let why = match serde_json::from_slice::<OAuthError>(&answer.body) {
            Ok(e) if !e.error.is_empty() => format!("{}: {}", e.error, e.error_description),
            _ => snippet(&answer.body),
        };
        let (kind, what) = match code {
            429 => (
                ErrorKind::RateLimited,
                "is rate limiting; tried again later",
            ),
            500..=599 => (ErrorKind::Unavailable, "failed; tried again later"),
            _ => (
                ErrorKind::Unauthenticated,
                "refused the service account; check that its key is not deleted or \
                 disabled and that this host's clock is right",
            ),
        };
        Error::new(
            kind,
            format!(
                "fcm: the token endpoint {} {what} (account {}, HTTP {code}: {why})",
                self.token_uri, self.client_email
            ),
        )
    }

    /// POSTs one message with `access_token`.
    async fn post(&self, body: &[u8], access_token: &str) -> Result<Answer> {
        let failed = |e| request_failed("fcm", &self.send_url, e);
        let response = self
            .client
            .post(&self.send_url)
            .bearer_auth(access_token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec())
            .send()
            .await
            .map_err(failed)?;
        read_answer(response).await.map_err(failed)
    }
}

#[async_trait]
impl Notifier for FcmNotifier {
    fn platform(&self) -> PushPlatform {
        PushPlatform::Fcm
    }

    async fn send(&self, notification: &Notification, _app_secret: &str) -> Result<NotifyOutcome> {
        let body = serde_json::to_vec(&message_body(notification)).map_err(|e| {
            Error::internal(format!("fcm: cannot encode the message: {e}")).with_source(e)
        })?;
        let token = self.access_token(None).await?;
        let mut answer = self.post(&body, &token).await?;
        if answer.status == reqwest::StatusCode::UNAUTHORIZED {
            let refusal = FcmError::read(&answer.body);
            // The project's APNs or web push credentials, not our token:
            // a new token would be refused the same way.
            if refusal.error_code.as_deref() != Some("THIRD_PARTY_AUTH_ERROR") {
                tracing::debug!(project = %self.project_id, "fcm: access token refused; refreshing");
                let token = self.access_token(Some(&token)).await?;
                answer = self.post(&body, &token).await?;
            }
        }
        outcome(&answer, &self.project_id)
    }
}

/// The HTTP v1 message for `n`:
///
/// ```json
/// {"message": {
///   "token": "<registration token>",
///   "notification": {"title": "<title, when there is one>", "body": "<body>"},
///   "android": {"collapse_key": "<collapse key>",
///               "notification": {"notification_count": <badge>, "tag": "<collapse key>"}},
///   "apns": {"payload": {"aps": {"badge": <badge>}}},
///   "data": {"conversation": "...", "message_id": "...", "sender": "..."}}}
/// ```
///
/// The collapse key both replaces an undelivered message (`collapse_key`)
/// and a shown notification (`tag`) of the same conversation.
pub fn message_body(n: &Notification) -> Value {
    let mut notification = json!({ "body": n.body });
    if let Some(title) = &n.title {
        notification["title"] = json!(title);
    }
    // `notification_count` is an int32 in FCM's schema.
    let count = i32::try_from(n.badge).unwrap_or(i32::MAX);
    json!({
        "message": {
            "token": n.token,
            "notification": notification,
            "android": {
                "collapse_key": n.collapse_key,
                "notification": { "notification_count": count, "tag": n.collapse_key },
            },
            "apns": { "payload": { "aps": { "badge": n.badge } } },
            "data": {
                "conversation": n.conversation,
                "message_id": n.message_id,
                "sender": n.sender,
            },
        }
    })
}

/// What an FCM error answer says (Google's `google.rpc.Status`).
#[derive(Debug, Default)]
struct FcmError {
    /// `error.status` (`INVALID_ARGUMENT`, `NOT_FOUND`...).
    status: Option<String>,
    /// `error.message`.
    message: Option<String>,
    /// `errorCode` of the `google.firebase.fcm.v1.FcmError` detail.
    error_code: Option<String>,
    /// Whether a `google.rpc.BadRequest` detail names `message.token`.
    token_field: bool,
}

impl FcmError {
    /// Reads an error body; what does not read stays `None`.
    fn read(body: &[u8]) -> FcmError {
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return FcmError::default();
        };
        let e = &v["error"];
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let details = e["details"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        FcmError {
            status: text(&e["status"]),
            message: text(&e["message"]),
            error_code: details.iter().find_map(|d| text(&d["errorCode"])),
            token_field: details.iter().any(|d| {
                d["fieldViolations"]
                    .as_array()
                    .is_some_and(|fs| fs.iter().any(|f| f["field"] == "message.token"))
            }),
        }
    }

    /// Whether an `INVALID_ARGUMENT` is about the registration token.
    fn about_token(&self) -> bool {
        let invalid = self.error_code.as_deref() == Some("INVALID_ARGUMENT")
            || self.status.as_deref() == Some("INVALID_ARGUMENT");
        let names_token = self.token_field
            || self
                .message
                .as_deref()
                .is_some_and(|m| m.to_ascii_lowercase().contains("registration token"));
        invalid && names_token
    }
}

/// What FCM's answer to a send means (see the module's table).
fn outcome(answer: &Answer, project_id: &str) -> Result<NotifyOutcome> {
    let code = answer.status.as_u16();
    if answer.status.is_success() {
        return Ok(NotifyOutcome::Sent);
    }
    let e = FcmError::read(&answer.body);
    if code == 404 && e.error_code.as_deref() == Some("UNREGISTERED") {
        return Ok(NotifyOutcome::InvalidToken);
    }
    if code == 400 && e.about_token() {
        return Ok(NotifyOutcome::InvalidToken);
    }
    let (kind, what) = match code {
        401 if e.error_code.as_deref() == Some("THIRD_PARTY_AUTH_ERROR") => (
            ErrorKind::Unauthenticated,
            "refused the project's APNs or web push credentials; check them in the \
             Firebase console (Project settings > Cloud Messaging)",
        ),
        401 => (
            ErrorKind::Unauthenticated,
            "refused a freshly fetched access token; check that the service account \
             may send messages (role Firebase Cloud Messaging API Admin)",
        ),
        403 => (
            ErrorKind::PermissionDenied,
            "refused the send; a SENDER_ID_MISMATCH means the token belongs to \
             another Firebase project, otherwise check that the FCM API is enabled",
        ),
        404 => (
            ErrorKind::InvalidInput,
            "does not know the project; check project_id in the service-account \
             file and `endpoint`",
        ),
        429 => (
            ErrorKind::RateLimited,
            "is rate limiting; tried again later",
        ),
        500..=599 => (ErrorKind::Unavailable, "failed; tried again later"),
        _ => (
            ErrorKind::InvalidInput,
            "refused the message; it is dropped, not retried",
        ),
    };
    Err(Error::new(
        kind,
        format!(
            "fcm: project {project_id}: FCM {what} (HTTP {code}: {})",
            snippet(&answer.body)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    fn answer(code: u16, body: Value) -> Answer {
        Answer {
            status: StatusCode::from_u16(code).unwrap(),
            body: body.to_string().into_bytes(),
        }
    }

    fn google_error(code: u16, status: &str, message: &str, details: Value) -> Answer {
        answer(
            code,
            json!({"error": {"code": code, "message": message, "status": status, "details": details}}),
        )
    }

    fn fcm_detail(code: &str) -> Value {
        json!({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code})
    }

    #[test]
    fn an_unregistered_token_is_invalid() {
        let a = google_error(
            404,
            "NOT_FOUND",
            "Requested entity was not found.",
            json!([fcm_detail("UNREGISTERED")]),
        );
        assert_eq!(outcome(&a, "p").unwrap(), NotifyOutcome::InvalidToken);
    }

    #[test]
    fn a_404_without_unregistered_is_a_setting_problem_not_a_bad_token() {
        let a = google_error(404, "NOT_FOUND", "Project not found", json!([]));
        let e = outcome(&a, "p").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("project_id"), "{e}");
    }

    #[test]
    fn an_invalid_argument_about_the_token_makes_it_invalid() {
        let by_field = google_error(
            400,
            "INVALID_ARGUMENT",
            "Invalid value",
            json!([fcm_detail("INVALID_ARGUMENT"), {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "message.token", "description": "Invalid registration token"}]
            }]),
        );
        assert_eq!(
            outcome(&by_field, "p").unwrap(),
            NotifyOutcome::InvalidToken
        );
        let by_message = google_error(
            400,
            "INVALID_ARGUMENT",
            "The registration token is not a valid FCM registration token",
            json!([fcm_detail("INVALID_ARGUMENT")]),
        );
        assert_eq!(
            outcome(&by_message, "p").unwrap(),
            NotifyOutcome::InvalidToken
        );
    }

    #[test]
    fn another_invalid_argument_is_refused_input() {
        let a = google_error(
            400,
            "INVALID_ARGUMENT",
            "Invalid JSON payload received. Unknown name \"badge\"",
            json!([fcm_detail("INVALID_ARGUMENT")]),
        );
        assert_eq!(
            outcome(&a, "p").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn retryable_answers_have_retryable_kinds() {
        let quota = google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "quota",
            json!([fcm_detail("QUOTA_EXCEEDED")]),
        );
        assert_eq!(
            outcome(&quota, "p").unwrap_err().kind(),
            ErrorKind::RateLimited
        );
        for code in [500, 503] {
            let a = google_error(
                code,
                "UNAVAILABLE",
                "down",
                json!([fcm_detail("UNAVAILABLE")]),
            );
            assert_eq!(outcome(&a, "p").unwrap_err().kind(), ErrorKind::Unavailable);
        }
    }

    #[test]
    fn a_sender_mismatch_is_permission_denied() {
        let a = google_error(
            403,
            "PERMISSION_DENIED",
            "SenderId mismatch",
            json!([fcm_detail("SENDER_ID_MISMATCH")]),
        );
        assert_eq!(
            outcome(&a, "p").unwrap_err().kind(),
            ErrorKind::PermissionDenied
        );
    }
}
