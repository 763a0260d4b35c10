//! The APNs notifier against a local Apple: HTTP/2 only, over TLS with ALPN
//! "h2" and a test certificate trusted through `ca_file`. It checks the
//! protocol version, the path, every header, the provider token (ES256
//! signature with the auth key's public key, header and claims) and the
//! JSON payload, and answers as Apple documents.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{StatusCode, Version};
use axum::response::{IntoResponse, Response};
use bubble_core::ErrorKind;
use bubble_core::notify::{Notifier, NotifyOutcome, PushPlatform};
use bubble_notify::{ApnsConfig, ApnsNotifier};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use p256::ecdsa::signature::Verifier as _;
use serde_json::{Value, json};
use sha2::Digest as _;

use common::{keys_of, notification, read_jwt};

const TEAM_ID: &str = "ABCDE12345";
const KEY_ID: &str = "KEY1234567";
const TOPIC: &str = "com.example.chat";
/// A device token as iOS hands it out: 32 bytes, in hex.
const DEVICE: &str = "5a4f5e1c0b3a29187f6e5d4c3b2a19080f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// A request as Apple saw it.
#[derive(Debug, Clone)]
struct Seen {
    version: Version,
    path: String,
    /// The `apns-*` headers and `authorization`, in order of name.
    headers: Vec<(String, String)>,
    /// The provider token the request carried.
    jwt: String,
    payload: Value,
    /// What Apple found wrong (empty: a request it accepts).
    problems: Vec<String>,
}

#[derive(Default)]
struct Log {
    /// The ALPN protocol each TLS connection agreed on.
    connections: Vec<Option<Vec<u8>>>,
    requests: Vec<Seen>,
    /// `(status, reason)` of the next answers (after a 200 for the rest).
    script: VecDeque<(StatusCode, &'static str)>,
}

#[derive(Clone)]
struct Apple {
    /// The auth key's public half: what Apple verifies provider tokens with.
    public_key: p256::ecdsa::VerifyingKey,
    log: Arc<Mutex<Log>>,
}

impl Apple {
    fn log<T>(&self, f: impl FnOnce(&mut Log) -> T) -> T {
        f(&mut self.log.lock().unwrap())
    }

    fn requests(&self) -> Vec<Seen> {
        self.log(|l| l.requests.clone())
    }

    fn script(&self, status: StatusCode, reason: &'static str) {
        self.log(|l| l.script.push_back((status, reason)));
    }

    /// Checks a provider token as Apple does; the problems.
    fn check_token(&self, jwt: &str) -> Vec<String> {
        let jwt = match read_jwt(jwt) {
            Ok(jwt) => jwt,
            Err(e) => return vec![e],
        };
        let mut problems = Vec::new();
        if jwt.header != json!({"alg": "ES256", "kid": KEY_ID}) {
            problems.push(format!("JWT header is {}", jwt.header));
        }
        if keys_of(&jwt.claims) != ["iat", "iss"] || jwt.claims["iss"] != TEAM_ID {
            problems.push(format!("JWT claims are {}", jwt.claims));
        }
        let iat = jwt.claims["iat"].as_i64().unwrap_or_default();
        if (iat - common::unix_secs()).abs() > 60 {
            problems.push(format!("iat {iat} is not now"));
        }
        // JOSE form: r || s, 32 bytes each; DER would not be 64 bytes.
        let verified = p256::ecdsa::Signature::from_slice(&jwt.signature)
            .map_err(|e| e.to_string())
            .and_then(|s| {
                self.public_key
                    .verify(jwt.signed.as_bytes(), &s)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = verified {
            problems.push(format!(
                "the ES256 signature ({} bytes) does not verify: {e}",
                jwt.signature.len()
            ));
        }
        problems
    }
}

/// What APNs does with a request.
async fn apple_endpoint(State(apple): State<Apple>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let mut problems = Vec::new();
    if parts.version != Version::HTTP_2 {
        problems.push(format!("spoken in {:?}, not HTTP/2", parts.version));
    }
    if parts.method != "POST" {
        problems.push(format!("method {}", parts.method));
    }
    let mut headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("apns-") || *name == "authorization")
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect();
    headers.sort();
    let jwt = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bearer "))
        .unwrap_or_default()
        .to_owned();
    let token_problems = apple.check_token(&jwt);
    problems.extend(token_problems.iter().cloned());
    let payload = serde_json::from_slice(&body).unwrap_or_else(|e| {
        problems.push(format!("the payload is not JSON: {e}"));
        Value::Null
    });
    apple.log(|log| {
        log.requests.push(Seen {
            version: parts.version,
            path: parts.uri.path().to_owned(),
            headers,
            jwt,
            payload,
            problems: problems.clone(),
        });
        let (status, reason) = if !token_problems.is_empty() {
            (StatusCode::FORBIDDEN, "InvalidProviderToken")
        } else if !problems.is_empty() {
            (StatusCode::BAD_REQUEST, "BadRequest")
        } else {
            log.script.pop_front().unwrap_or((StatusCode::OK, ""))
        };
        let mut response = if status == StatusCode::OK {
            StatusCode::OK.into_response()
        } else {
            let mut body = json!({ "reason": reason });
            if status == StatusCode::GONE {
                body["timestamp"] = json!(common::unix_ms());
            }
            (status, axum::Json(body)).into_response()
        };
        response.headers_mut().insert(
            "apns-id",
            "EC1BF194-B3B2-424A-89A9-5A918A6E6B5F".parse().unwrap(),
        );
        response
    })
}

/// Starts Apple on a free port: TLS with a fresh certificate for
/// 127.0.0.1 offering only ALPN "h2", then an HTTP/2-only server. Gives
/// its address and the certificate (PEM) to trust.
async fn start_apple(apple: Apple) -> (SocketAddr, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key.into())
    .unwrap();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let app = axum::Router::new()
        .fallback(apple_endpoint)
        .with_state(apple.clone());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, app, apple) = (acceptor.clone(), app.clone(), apple.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                apple.log(|l| l.connections.push(alpn));
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
                    .await;
            });
        }
    });
    (addr, certified.cert.pem())
}

/// A running Apple, the auth key's .p8 and the test root on disk, and the
/// notifier built from them.
struct World {
    apple: Apple,
    notifier: Arc<ApnsNotifier>,
    config: ApnsConfig,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let key = common::p256_key();
    let apple = Apple {
        public_key: *key.verifying_key(),
        log: Arc::default(),
    };
    let (addr, root) = start_apple(apple.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = common::write(
        &dir,
        &format!("AuthKey_{KEY_ID}.p8"),
        &common::p256_pem(&key),
    );
    let ca_file = common::write(&dir, "test-root.pem", &root);
    let config = ApnsConfig::new(TEAM_ID, KEY_ID, key_file, TOPIC)
        .with_endpoint(format!("https://127.0.0.1:{}", addr.port()))
        .with_ca_file(ca_file);
    let notifier = Arc::new(ApnsNotifier::open(&config).await.unwrap());
    World {
        apple,
        notifier,
        config,
        _dir: dir,
    }
}

fn header<'a>(seen: &'a Seen, name: &str) -> Option<&'a str> {
    seen.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn a_notification_is_posted_over_http2_with_a_signed_provider_token() {
    let w = world().await;
    let n = notification(PushPlatform::Apns, DEVICE);

    assert_eq!(w.notifier.platform(), PushPlatform::Apns);
    assert_eq!(
        w.notifier.send(&n, "unused").await.unwrap(),
        NotifyOutcome::Sent
    );

    assert_eq!(
        w.apple.log(|l| l.connections.clone()),
        [Some(b"h2".to_vec())]
    );
    let requests = w.apple.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.problems, Vec::<String>::new());
    assert_eq!(r.version, Version::HTTP_2);
    assert_eq!(r.path, format!("/3/device/{DEVICE}"));
    let bearer = format!("bearer {}", r.jwt);
    let expected: Vec<(String, String)> = [
        ("apns-collapse-id", "direct:alice"),
        ("apns-expiration", "0"),
        ("apns-priority", "10"),
        ("apns-push-type", "alert"),
        ("apns-topic", TOPIC),
        ("authorization", bearer.as_str()),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(r.headers, expected);
    assert_eq!(
        r.payload,
        json!({
            "aps": {
                "alert": {"title": "Alice", "body": "Lunch at noon?"},
                "badge": 3,
                "sound": "default",
                "thread-id": "direct:alice",
            },
            "conversation": "direct:alice",
            "message_id": "0123456789abcdef0123456789abcdef",
            "sender": "alice",
        })
    );
}

#[tokio::test]
async fn a_provider_token_signed_with_another_key_is_refused_by_apple() {
    let w = world().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = w.config.clone();
    config.key_file = common::write(
        &dir,
        "AuthKey_other.p8",
        &common::p256_pem(&common::p256_key()),
    );
    let impostor = ApnsNotifier::open(&config).await.unwrap();

    let e = impostor
        .send(&notification(PushPlatform::Apns, DEVICE), "")
        .await
        .unwrap_err();

    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert!(e.message().contains("InvalidProviderToken"), "{e}");
    let problems = &w.apple.requests()[0].problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("the ES256 signature (64 bytes) does not verify"));
}

#[tokio::test]
async fn a_notification_without_a_title_has_an_alert_without_one() {
    let w = world().await;
    let mut n = notification(PushPlatform::Apns, DEVICE);
    n.title = None;

    w.notifier.send(&n, "").await.unwrap();

    assert_eq!(
        w.apple.requests()[0].payload["aps"]["alert"],
        json!({"body": "Lunch at noon?"})
    );
}

#[tokio::test]
async fn one_provider_token_and_one_connection_serve_many_sends() {
    let w = world().await;
    w.notifier
        .send(&notification(PushPlatform::Apns, DEVICE), "")
        .await
        .unwrap();
    let mut sends = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let notifier = w.notifier.clone();
        sends.spawn(async move {
            notifier
                .send(&notification(PushPlatform::Apns, DEVICE), "")
                .await
        });
    }
    while let Some(sent) = sends.join_next().await {
        assert_eq!(sent.unwrap().unwrap(), NotifyOutcome::Sent);
    }

    let requests = w.apple.requests();
    assert_eq!(requests.len(), 11);
    assert!(requests.iter().all(|r| r.problems.is_empty()));
    assert!(
        requests.iter().all(|r| r.jwt == requests[0].jwt),
        "every send carries the first provider token"
    );
    assert_eq!(
        w.apple.log(|l| l.connections.len()),
        1,
        "HTTP/2 multiplexes the sends on one connection"
    );
}

#[tokio::test]
async fn an_expired_provider_token_is_replaced_and_the_send_made_once_more() {
    let w = world().await;
    w.apple
        .script(StatusCode::FORBIDDEN, "ExpiredProviderToken");

    let outcome = w
        .notifier
        .send(&notification(PushPlatform::Apns, DEVICE), "")
        .await
        .unwrap();
    w.notifier
        .send(&notification(PushPlatform::Apns, DEVICE), "")
        .await
        .unwrap();

    assert_eq!(outcome, NotifyOutcome::Sent);
    let requests = w.apple.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.problems.is_empty()));
    assert_ne!(
        requests[1].jwt, requests[0].jwt,
        "the retry carries a new token"
    );
    assert_eq!(requests[2].jwt, requests[1].jwt, "the new token is kept");
}

#[tokio::test]
async fn a_token_apple_calls_expired_twice_is_unauthenticated() {
    let w = world().await;
    w.apple
        .script(StatusCode::FORBIDDEN, "ExpiredProviderToken");
    w.apple
        .script(StatusCode::FORBIDDEN, "ExpiredProviderToken");

    let e = w
        .notifier
        .send(&notification(PushPlatform::Apns, DEVICE), "")
        .await
        .unwrap_err();

    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert!(e.message().contains("clock"), "{e}");
    assert_eq!(w.apple.requests().len(), 2, "one retry, not a loop");
}

#[tokio::test]
async fn unregistered_and_bad_device_tokens_are_invalid() {
    let w = world().await;
    w.apple.script(StatusCode::GONE, "Unregistered");
    w.apple.script(StatusCode::BAD_REQUEST, "BadDeviceToken");

    for reason in ["Unregistered", "BadDeviceToken"] {
        let outcome = w
            .notifier
            .send(&notification(PushPlatform::Apns, DEVICE), "")
            .await
            .unwrap();
        assert_eq!(outcome, NotifyOutcome::InvalidToken, "{reason}");
    }
}

#[tokio::test]
async fn a_token_not_for_the_topic_is_kept_because_the_topic_setting_may_be_what_is_wrong() {
    let w = world().await;
    w.apple
        .script(StatusCode::BAD_REQUEST, "DeviceTokenNotForTopic");
    let e = w
        .notifier
        .send(&notification(PushPlatform::Apns, DEVICE), "")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("topic"), "{e}");
}

#[tokio::test]
async fn apples_other_refusals_say_whether_to_retry() {
    let w = world().await;
    let cases = [
        (
            StatusCode::BAD_REQUEST,
            "BadCollapseId",
            ErrorKind::InvalidInput,
        ),
        (
            StatusCode::FORBIDDEN,
            "InvalidProviderToken",
            ErrorKind::Unauthenticated,
        ),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLarge",
            ErrorKind::TooLarge,
        ),
        (
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            ErrorKind::RateLimited,
        ),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            ErrorKind::Unavailable,
        ),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            ErrorKind::Unavailable,
        ),
    ];
    for (status, reason, _) in cases {
        w.apple.script(status, reason);
    }

    for (_, reason, kind) in cases {
        let e = w
            .notifier
            .send(&notification(PushPlatform::Apns, DEVICE), "")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), kind, "{reason}: {e}");
        assert!(e.message().contains(reason), "{e}");
    }
}

#[tokio::test]
async fn a_collapse_key_longer_than_64_bytes_is_sent_as_its_hash() {
    let w = world().await;
    let mut n = notification(PushPlatform::Apns, DEVICE);
    n.collapse_key = format!("group:{}", "g".repeat(100));

    w.notifier.send(&n, "").await.unwrap();

    let expected = hex::encode(sha2::Sha256::digest(n.collapse_key.as_bytes()));
    let requests = w.apple.requests();
    assert_eq!(
        header(&requests[0], "apns-collapse-id"),
        Some(expected.as_str())
    );
}

#[tokio::test]
async fn a_device_token_that_is_not_hex_is_invalid_without_asking_apple() {
    let w = world().await;

    let outcome = w
        .notifier
        .send(&notification(PushPlatform::Apns, "../../3/device/x"), "")
        .await
        .unwrap();

    assert_eq!(outcome, NotifyOutcome::InvalidToken);
    assert!(w.apple.requests().is_empty());
}

#[tokio::test]
async fn a_payload_over_4096_bytes_is_too_large_without_asking_apple() {
    let w = world().await;
    let mut n = notification(PushPlatform::Apns, DEVICE);
    n.body = "x".repeat(4096);

    let e = w.notifier.send(&n, "").await.unwrap_err();

    assert_eq!(e.kind(), ErrorKind::TooLarge);
    assert!(w.apple.requests().is_empty());
}

#[tokio::test]
async fn a_server_whose_certificate_is_not_trusted_is_unavailable() {
    let w = world().await;
    let mut config = w.config.clone();
    config.ca_file = None;
    let untrusting = ApnsNotifier::open(&config).await.unwrap();

    let e = untrusting
        .send(&notification(PushPlatform::Apns, DEVICE), "")
        .await
        .unwrap_err();

    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(w.apple.requests().is_empty());
}
