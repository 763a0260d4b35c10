//! What the provider tests share: a notification, a local HTTP server, the
//! test keys, and reading a JWT the way a provider does.

#![allow(dead_code)] // each test binary uses part of it

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bubble_core::notify::{Notification, PushPlatform};
use bubble_core::{AppId, DeviceId, UserId};
use serde_json::Value;

/// A notification as the engine makes one: Alice wrote to Bob.
pub fn notification(platform: PushPlatform, token: &str) -> Notification {
    Notification {
        app: AppId::from("demo"),
        user: UserId::from("bob"),
        device: DeviceId::from("phone-1"),
        platform,
        token: token.to_owned(),
        locale: "en".to_owned(),
        title: Some("Alice".to_owned()),
        body: "Lunch at noon?".to_owned(),
        badge: 3,
        collapse_key: "direct:alice".to_owned(),
        conversation: "direct:alice".to_owned(),
        message_id: "0123456789abcdef0123456789abcdef".to_owned(),
        sender: UserId::from("alice"),
        sent_at: 1_700_000_000_000,
    }
}

/// Serves `router` over HTTP/1.1 on a free local port.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// A local address nothing listens on.
pub async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// Now, in seconds since the Unix epoch.
pub fn unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Now, in milliseconds since the Unix epoch.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A compact JWT taken apart: its header and claims (JSON), the signed
/// input (`header.claims`) and the signature's bytes.
pub struct Jwt {
    pub header: Value,
    pub claims: Value,
    pub signed: String,
    pub signature: Vec<u8>,
}

/// Takes `jwt` apart; the problem when it is not a compact JWS.
pub fn read_jwt(jwt: &str) -> Result<Jwt, String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err(format!("a JWT has 3 parts, this has {}", parts.len()));
    };
    let json = |part: &str, what: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|e| format!("the {what} is not base64url without padding: {e}"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("the {what} is not JSON: {e}"))
    };
    Ok(Jwt {
        header: json(header, "header")?,
        claims: json(claims, "claims")?,
        signed: format!("{header}.{claims}"),
        signature: URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|e| format!("the signature is not base64url without padding: {e}"))?,
    })
}

/// The keys of a JSON object, sorted.
pub fn keys_of(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

/// One RSA key for every test of a binary (generating one takes a moment).
pub fn rsa_key() -> &'static rsa::PrivateKey {
    static KEY: OnceLock<rsa::PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        use rsa::Generate as _;
        rsa::PrivateKey::generate()
    })
}

/// `key` as PKCS#8 PEM, the form of Google's `private_key` and Apple's .p8.
pub fn rsa_pem(key: &rsa::PrivateKey) -> String {
    use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};
    key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
}

/// A fresh P-256 key (Apple's APNs auth keys are P-256).
pub fn p256_key() -> p256::ecdsa::SigningKey {
    use p256::elliptic_curve::Generate as _;
    p256::ecdsa::SigningKey::generate()
}

/// `key` as PKCS#8 PEM, the form of Apple's .p8 files.
pub fn p256_pem(key: &p256::ecdsa::SigningKey) -> String {
    use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
    key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
}

/// Writes `text` to `name` in `dir`, and gives its path.
pub fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}
