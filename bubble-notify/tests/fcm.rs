//! The FCM notifier against a local Google: a token endpoint that checks
//! the JWT bearer grant (form, RS256 signature with the service account's
//! public key, every header field and claim) and an FCM HTTP v1 send
//! endpoint that checks the bearer token, the path and the JSON message.

mod common;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bubble_core::ErrorKind;
use bubble_core::notify::{Notifier, NotifyOutcome, PushPlatform};
use bubble_notify::{FcmConfig, FcmNotifier};
use rsa::signature::Verifier as _;
use serde_json::{Value, json};

use common::{keys_of, notification, read_jwt};

const PROJECT: &str = "demo-project";
const CLIENT_EMAIL: &str = "bubble-push@demo-project.iam.gserviceaccount.com";
const KEY_ID: &str = "5f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c";
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A send as FCM saw it.
#[derive(Debug, Clone)]
struct Send {
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: Value,
}

/// What the local Google knows and saw.
#[derive(Default)]
struct Seen {
    /// Access tokens issued, in order.
    issued: Vec<String>,
    /// Access tokens the send endpoint calls expired (401).
    expired: HashSet<String>,
    /// Answers to the next sends (after a 200 for the rest).
    script: VecDeque<(StatusCode, Value)>,
    sends: Vec<Send>,
    /// What either endpoint found wrong with a request.
    problems: Vec<String>,
}

#[derive(Clone)]
struct Google {
    /// The service account's public key: what the token endpoint verifies with.
    public_key: rsa::PublicKey,
    /// The token endpoint's URL: the JWT's expected audience.
    token_uri: Arc<Mutex<String>>,
    /// Each access token's lifetime.
    expires_in: u64,
    /// How long the token endpoint takes to answer.
    token_delay: Duration,
    seen: Arc<Mutex<Seen>>,
}

impl Google {
    fn seen<T>(&self, f: impl FnOnce(&mut Seen) -> T) -> T {
        f(&mut self.seen.lock().unwrap())
    }

    fn problems(&self) -> Vec<String> {
        self.seen(|s| s.problems.clone())
    }

    fn issued(&self) -> Vec<String> {
        self.seen(|s| s.issued.clone())
    }

    fn sends(&self) -> Vec<Send> {
        self.seen(|s| s.sends.clone())
    }

    fn script(&self, status: StatusCode, body: Value) {
        self.seen(|s| s.script.push_back((status, body)));
    }

    /// Checks the assertion as Google's token endpoint does; the problems.
    fn check_assertion(&self, form: &HashMap<String, String>) -> Vec<String> {
        let mut problems = Vec::new();
        let mut fields: Vec<&str> = form.keys().map(String::as_str).collect();
        fields.sort();
        if fields != ["assertion", "grant_type"] {
            problems.push(format!("form fields are {fields:?}"));
        }
        if form.get("grant_type").map(String::as_str) != Some(GRANT) {
            problems.push(format!("grant_type is {:?}", form.get("grant_type")));
        }
        let jwt = match read_jwt(form.get("assertion").map_or("", String::as_str)) {
            Ok(jwt) => jwt,
            Err(e) => {
                problems.push(e);
                return problems;
            }
        };
        let expected_header = json!({"alg": "RS256", "typ": "JWT", "kid": KEY_ID});
        if jwt.header != expected_header {
            problems.push(format!("JWT header is {}", jwt.header));
        }
        let c = &jwt.claims;
        if keys_of(c) != ["aud", "exp", "iat", "iss", "scope"] {
            problems.push(format!("JWT claims are {c}"));
        }
        if c["iss"] != CLIENT_EMAIL {
            problems.push(format!("iss is {}", c["iss"]));
        }
        if c["scope"] != SCOPE {
            problems.push(format!("scope is {}", c["scope"]));
        }
        if c["aud"] != *self.token_uri.lock().unwrap() {
            problems.push(format!("aud is {}", c["aud"]));
        }
        let iat = c["iat"].as_i64().unwrap_or_default();
        if (iat - common::unix_secs()).abs() > 60 {
            problems.push(format!("iat {iat} is not now"));
        }
        if c["exp"].as_i64() != Some(iat + 3600) {
            problems.push(format!("exp is {}, not iat + 3600", c["exp"]));
        }
        let verifier = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(self.public_key.clone());
        let verified = rsa::pkcs1v15::Signature::try_from(jwt.signature.as_slice())
            .map_err(|e| e.to_string())
            .and_then(|s| {
                verifier
                    .verify(jwt.signed.as_bytes(), &s)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = verified {
            problems.push(format!("the RS256 signature does not verify: {e}"));
        }
        problems
    }
}

/// Google's token endpoint and FCM's send endpoint, by path.
async fn google_endpoints(State(g): State<Google>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let path = parts.uri.path().to_owned();
    if parts.method != "POST" {
        g.seen(|s| s.problems.push(format!("{} {path}", parts.method)));
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    if path == "/token" {
        if header("content-type").as_deref() != Some("application/x-www-form-urlencoded") {
            g.seen(|s| {
                s.problems.push(format!(
                    "token request of type {:?}",
                    header("content-type")
                ))
            });
        }
        let form: HashMap<String, String> = form_pairs(&body);
        let problems = g.check_assertion(&form);
        tokio::time::sleep(g.token_delay).await;
        if !problems.is_empty() {
            let description = problems.join("; ");
            g.seen(|s| s.problems.extend(problems));
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": "invalid_grant", "error_description": description})),
            )
                .into_response();
        }
        let token = g.seen(|s| {
            let token = format!("ya29.test-token-{}", s.issued.len() + 1);
            s.issued.push(token.clone());
            token
        });
        return axum::Json(json!({
            "access_token": token,
            "expires_in": g.expires_in,
            "token_type": "Bearer",
        }))
        .into_response();
    }
    let send = Send {
        path: path.clone(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    g.seen(|s| {
        s.sends.push(send.clone());
        if path != format!("/v1/projects/{PROJECT}/messages:send") {
            s.problems.push(format!("send to {path}"));
            return (StatusCode::NOT_FOUND, axum::Json(json!({}))).into_response();
        }
        let bearer = send
            .authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !s.issued.iter().any(|t| t == bearer) {
            s.problems.push(format!("send with authorization {:?}", send.authorization));
        }
        if !s.issued.iter().any(|t| t == bearer) || s.expired.contains(bearer) {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": {
                    "code": 401,
                    "message": "Request had invalid authentication credentials. Expected OAuth 2 access token.",
                    "status": "UNAUTHENTICATED",
                }})),
            )
                .into_response();
        }
        if send.content_type.as_deref() != Some("application/json") {
            s.problems.push(format!("send of type {:?}", send.content_type));
        }
        let (status, body) = s.script.pop_front().unwrap_or_else(|| {
            (StatusCode::OK, json!({"name": format!("projects/{PROJECT}/messages/0:1700000000000000%abc")}))
        });
        (status, axum::Json(body)).into_response()
    })
}

/// `a=b&c=d` as a map (the token request's form).
fn form_pairs(body: &[u8]) -> HashMap<String, String> {
    reqwest::Url::parse(&format!("http://x/?{}", String::from_utf8_lossy(body)))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A running local Google, the service-account file pointing at it, and
/// the notifier built from it.
struct World {
    google: Google,
    notifier: Arc<FcmNotifier>,
    _dir: tempfile::TempDir,
}

/// The service-account JSON key, as Google hands it out.
fn service_account(private_key_pem: &str, token_uri: &str) -> String {
    json!({
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": KEY_ID,
        "private_key": private_key_pem,
        "client_email": CLIENT_EMAIL,
        "client_id": "112233445566778899000",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/bubble-push",
        "universe_domain": "googleapis.com",
    })
    .to_string()
}

/// Google verifying with `verifying`'s public key, issuing tokens that
/// live `expires_in` seconds after `token_delay`; the notifier signs with
/// the shared test key.
async fn world_with(verifying: &rsa::PrivateKey, expires_in: u64, token_delay: Duration) -> World {
    let google = Google {
        public_key: verifying.to_public_key(),
        token_uri: Arc::default(),
        expires_in,
        token_delay,
        seen: Arc::default(),
    };
    let app = axum::Router::new()
        .fallback(google_endpoints)
        .with_state(google.clone());
    let addr = common::serve(app).await;
    let token_uri = format!("http://{addr}/token");
    *google.token_uri.lock().unwrap() = token_uri.clone();
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = common::write(
        &dir,
        "demo-project-firebase-adminsdk.json",
        &service_account(&common::rsa_pem(common::rsa_key()), &token_uri),
    );
    let config = FcmConfig::new(file).with_endpoint(format!("http://{addr}"));
    let notifier = Arc::new(FcmNotifier::open(&config).await.unwrap());
    World {
        google,
        notifier,
        _dir: dir,
    }
}

async fn world() -> World {
    world_with(common::rsa_key(), 3599, Duration::ZERO).await
}

fn fcm_error(code: u16, status: &str, message: &str, details: Value) -> Value {
    json!({"error": {"code": code, "message": message, "status": status, "details": details}})
}

fn fcm_error_code(code: &str) -> Value {
    json!({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code})
}

#[tokio::test]
async fn a_notification_is_sent_with_an_access_token_from_the_jwt_bearer_grant() {
    let w = world().await;
    let n = notification(PushPlatform::Fcm, "fcm-registration-token-1");

    assert_eq!(w.notifier.platform(), PushPlatform::Fcm);
    assert_eq!(
        w.notifier.send(&n, "unused").await.unwrap(),
        NotifyOutcome::Sent
    );

    assert_eq!(w.google.problems(), Vec::<String>::new());
    assert_eq!(w.google.issued(), ["ya29.test-token-1"]);
    let sends = w.google.sends();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].path, "/v1/projects/demo-project/messages:send");
    assert_eq!(
        sends[0].authorization.as_deref(),
        Some("Bearer ya29.test-token-1")
    );
    assert_eq!(
        sends[0].body,
        json!({"message": {
            "token": "fcm-registration-token-1",
            "notification": {"title": "Alice", "body": "Lunch at noon?"},
            "android": {
                "collapse_key": "direct:alice",
                "notification": {"notification_count": 3, "tag": "direct:alice"},
            },
            "apns": {"payload": {"aps": {"badge": 3}}},
            "data": {
                "conversation": "direct:alice",
                "message_id": "0123456789abcdef0123456789abcdef",
                "sender": "alice",
            },
        }})
    );
}

#[tokio::test]
async fn a_notification_without_a_title_sends_none() {
    let w = world().await;
    let mut n = notification(PushPlatform::Fcm, "t");
    n.title = None;

    w.notifier.send(&n, "").await.unwrap();

    assert_eq!(
        w.google.sends()[0].body["message"]["notification"],
        json!({"body": "Lunch at noon?"})
    );
}

#[tokio::test]
async fn one_access_token_serves_many_concurrent_sends() {
    // A slow token endpoint, so every send asks while the first fetch runs.
    let w = world_with(common::rsa_key(), 3599, Duration::from_millis(300)).await;
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..20 {
        let notifier = w.notifier.clone();
        sends.spawn(async move {
            notifier
                .send(&notification(PushPlatform::Fcm, &format!("device-{i}")), "")
                .await
        });
    }
    while let Some(sent) = sends.join_next().await {
        assert_eq!(sent.unwrap().unwrap(), NotifyOutcome::Sent);
    }
    w.notifier
        .send(&notification(PushPlatform::Fcm, "later"), "")
        .await
        .unwrap();

    assert_eq!(w.google.problems(), Vec::<String>::new());
    assert_eq!(w.google.issued().len(), 1, "one token fetch");
    let sends = w.google.sends();
    assert_eq!(sends.len(), 21);
    assert!(
        sends
            .iter()
            .all(|s| s.authorization.as_deref() == Some("Bearer ya29.test-token-1"))
    );
}

#[tokio::test]
async fn an_access_token_near_its_expiry_is_replaced_before_a_send() {
    // Tokens that expire in 30 s are inside the 60 s margin at once.
    let w = world_with(common::rsa_key(), 30, Duration::ZERO).await;

    for _ in 0..2 {
        w.notifier
            .send(&notification(PushPlatform::Fcm, "t"), "")
            .await
            .unwrap();
    }

    assert_eq!(
        w.google.issued(),
        ["ya29.test-token-1", "ya29.test-token-2"]
    );
    let bearers: Vec<_> = w
        .google
        .sends()
        .into_iter()
        .map(|s| s.authorization.unwrap())
        .collect();
    assert_eq!(
        bearers,
        ["Bearer ya29.test-token-1", "Bearer ya29.test-token-2"]
    );
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_once_and_the_send_retried() {
    let w = world().await;
    w.notifier
        .send(&notification(PushPlatform::Fcm, "t"), "")
        .await
        .unwrap();
    w.google
        .seen(|s| s.expired.insert("ya29.test-token-1".to_owned()));

    let outcome = w
        .notifier
        .send(&notification(PushPlatform::Fcm, "t"), "")
        .await
        .unwrap();

    assert_eq!(outcome, NotifyOutcome::Sent);
    assert_eq!(w.google.problems(), Vec::<String>::new());
    assert_eq!(
        w.google.issued(),
        ["ya29.test-token-1", "ya29.test-token-2"]
    );
    let bearers: Vec<_> = w
        .google
        .sends()
        .into_iter()
        .map(|s| s.authorization.unwrap())
        .collect();
    assert_eq!(
        bearers,
        [
            "Bearer ya29.test-token-1",
            "Bearer ya29.test-token-1",
            "Bearer ya29.test-token-2"
        ]
    );
}

#[tokio::test]
async fn a_send_refused_again_after_a_refresh_is_unauthenticated() {
    let w = world().await;
    w.google.script(
        StatusCode::UNAUTHORIZED,
        fcm_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
            json!([]),
        ),
    );
    w.google.script(
        StatusCode::UNAUTHORIZED,
        fcm_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
            json!([]),
        ),
    );

    let e = w
        .notifier
        .send(&notification(PushPlatform::Fcm, "t"), "")
        .await
        .unwrap_err();

    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert!(!e.is_retryable());
    assert_eq!(w.google.issued().len(), 2, "one refresh, not a loop");
    assert_eq!(w.google.sends().len(), 2);
}

#[tokio::test]
async fn an_unregistered_token_is_invalid() {
    let w = world().await;
    w.google.script(
        StatusCode::NOT_FOUND,
        fcm_error(
            404,
            "NOT_FOUND",
            "Requested entity was not found.",
            json!([fcm_error_code("UNREGISTERED")]),
        ),
    );

    let outcome = w
        .notifier
        .send(&notification(PushPlatform::Fcm, "uninstalled"), "")
        .await
        .unwrap();

    assert_eq!(outcome, NotifyOutcome::InvalidToken);
}

#[tokio::test]
async fn a_token_fcm_calls_not_a_registration_token_is_invalid() {
    let w = world().await;
    w.google.script(
        StatusCode::BAD_REQUEST,
        fcm_error(
            400,
            "INVALID_ARGUMENT",
            "The registration token is not a valid FCM registration token",
            json!([fcm_error_code("INVALID_ARGUMENT"), {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "message.token", "description": "Invalid registration token"}],
            }]),
        ),
    );

    let outcome = w
        .notifier
        .send(&notification(PushPlatform::Fcm, "garbage"), "")
        .await
        .unwrap();

    assert_eq!(outcome, NotifyOutcome::InvalidToken);
}

#[tokio::test]
async fn another_invalid_argument_drops_the_notification() {
    let w = world().await;
    w.google.script(
        StatusCode::BAD_REQUEST,
        fcm_error(
            400,
            "INVALID_ARGUMENT",
            "Message is too big",
            json!([fcm_error_code("INVALID_ARGUMENT")]),
        ),
    );

    let e = w
        .notifier
        .send(&notification(PushPlatform::Fcm, "t"), "")
        .await
        .unwrap_err();

    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn quota_and_outages_are_tried_again_later() {
    let w = world().await;
    w.google.script(
        StatusCode::TOO_MANY_REQUESTS,
        fcm_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded",
            json!([fcm_error_code("QUOTA_EXCEEDED")]),
        ),
    );
    w.google.script(
        StatusCode::INTERNAL_SERVER_ERROR,
        fcm_error(
            500,
            "INTERNAL",
            "Internal error",
            json!([fcm_error_code("INTERNAL")]),
        ),
    );
    w.google.script(
        StatusCode::SERVICE_UNAVAILABLE,
        fcm_error(
            503,
            "UNAVAILABLE",
            "The service is unavailable",
            json!([fcm_error_code("UNAVAILABLE")]),
        ),
    );

    let mut kinds = Vec::new();
    for _ in 0..3 {
        let e = w
            .notifier
            .send(&notification(PushPlatform::Fcm, "t"), "")
            .await
            .unwrap_err();
        assert!(e.is_retryable(), "{e}");
        kinds.push(e.kind());
    }

    assert_eq!(
        kinds,
        [
            ErrorKind::RateLimited,
            ErrorKind::Unavailable,
            ErrorKind::Unavailable
        ]
    );
}

#[tokio::test]
async fn a_service_account_google_does_not_recognise_is_unauthenticated() {
    // Google holds another public key than the one the file's key pairs with.
    let stranger = {
        use rsa::Generate as _;
        rsa::PrivateKey::generate()
    };
    let w = world_with(&stranger, 3599, Duration::ZERO).await;

    let e = w
        .notifier
        .send(&notification(PushPlatform::Fcm, "t"), "")
        .await
        .unwrap_err();

    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert!(e.message().contains("invalid_grant"), "{e}");
    assert!(e.message().contains(CLIENT_EMAIL), "{e}");
    assert!(w.google.sends().is_empty());
    let problems = w.google.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("the RS256 signature does not verify"));
}
