//! Default `Authenticator`: HMAC-SHA256 signed tokens with a per-app secret.
//!
//! A product's app server issues a token to its user (with [`issue`], through
//! bubble's admin API, or by itself in any language); the client carries it
//! in the handshake; the gate checks it here. Products with their own
//! identity system implement [`Authenticator`] instead.
//!
//! - [`issue`] and [`verify`]: the format, as pure functions of the secrets.
//! - [`TokenAuthenticator`]: the [`Authenticator`], taking each app's
//!   secrets from a [`SecretSource`] on every call. The server's source is
//!   the engine's app store, so an app's secret lives in one place.
//! - [`Keyring`]: a [`SecretSource`] in memory, with rotation, for embedders
//!   that keep secrets themselves.
//!
//! An app's secret is a string; tokens are signed with its UTF-8 bytes as
//! they are (a generated secret is 64 hex digits, and all 64 bytes are the
//! key: it is not decoded from hex).
//!
//! # Format (v2, what [`issue`] produces)
//!
//! ```text
//! v2.<payload>.<mac>
//!   payload = base64url-no-pad( u8 len(user) | user
//!                             | u32 big-endian expiry (unix seconds)
//!                             | u8 device count | count x (u8 len(device) | device) )
//!   mac     = base64url-no-pad( first 16 bytes of
//!                 HMAC-SHA256(app secret, u8 len(app) | app | ASCII "v2." + payload) )
//! ```
//!
//! Ids are UTF-8. A device count of 0 means any device. Nothing may follow
//! the last device. The app id is not carried (the client names its app in
//! the hello) but is covered by the MAC, so a token only verifies for the app
//! it was issued for, even when two apps share a secret by mistake.
//!
//! The token travels inside the handshake's RSA block, which holds 93 bytes
//! with a 2048-bit server key and 221 with a 3072-bit one. A v2 token is
//! `26 + ceil(4 * (6 + len(user) + devices) / 3)` bytes, where `devices` is
//! the sum of `1 + len(device)` over the device list: 82 bytes for a
//! 36-character UUID user without devices. Truncating the MAC to 128 bits
//! is standard (RFC 2104 section 5 asks for at least half the hash and 80
//! bits; NIST SP 800-107): a forger still has to guess 128 bits.
//!
//! # Format v1 (still verified, no longer issued)
//!
//! ```text
//! v1.<payload>.<mac>
//!   payload = base64url-no-pad( JSON {"a": app, "u": user, "e": expiry (unix seconds), "d": [devices]?} )
//!   mac     = base64url-no-pad( HMAC-SHA256(app secret, ASCII "v1." + payload) )
//! ```
//!
//! About 100 bytes for short ids: too long for a 2048-bit server key.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use parking_lot::RwLock;
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::{Error, ErrorKind, Result};
use crate::ports::{Authenticator, Identity};
use crate::types::{AppId, DeviceId, UserId, validate_id};

/// The prefix of the tokens [`issue`] produces (a
/// version, covered by the MAC).
pub const TOKEN_PREFIX: &str = "v2.";

/// The prefix of the earlier JSON format, still accepted.
pub const TOKEN_PREFIX_V1: &str = "v1.";

/// Bytes of HMAC-SHA256 kept in a v2 token (the left-most 128 bits).
pub const MAC_LEN: usize = 16;

/// Shortest secret accepted: 32 bytes (256 bits, HMAC-SHA256's own strength).
pub const MIN_SECRET_LEN: usize = 32;

/// Longest token looked at; anything longer is refused before any work.
pub const MAX_TOKEN_LEN: usize = 1024;

type HmacSha256 = Hmac<Sha256>;

/// A v1 payload (JSON).
#[derive(Debug, Deserialize)]
struct PayloadV1 {
    #[serde(rename = "a")]
    app: String,
    #[serde(rename = "u")]
    user: String,
    #[serde(rename = "e")]
    expires: i64,
    #[serde(rename = "d", default)]
    devices: Vec<String>,
}

/// What a token says, whatever its version.
struct Claims {
    user: String,
    /// Unix seconds.
    expires: i64,
    /// Empty: any device.
    devices: Vec<String>,
}

/// Appends `u8 len | bytes`; ids longer than 255 bytes cannot be encoded.
fn put_short(out: &mut Vec<u8>, what: &str, bytes: &[u8]) -> Result<()> {
    let len = u8::try_from(bytes.len()).map_err(|_| {
        Error::invalid(format!(
            "{what} is {} bytes; a token holds ids of at most 255 bytes",
            bytes.len()
        ))
    })?;
    out.push(len);
    out.extend_from_slice(bytes);
    Ok(())
}

/// The binary v2 payload.
fn encode_v2(user: &UserId, expires: u32, devices: &[DeviceId]) -> Result<Vec<u8>> {
    let count = u8::try_from(devices.len()).map_err(|_| {
        Error::invalid(format!(
            "a token may name at most 255 devices, got {}",
            devices.len()
        ))
    })?;
    let mut out = Vec::with_capacity(6 + user.as_str().len());
    put_short(&mut out, "user id", user.as_str().as_bytes())?;
    out.extend_from_slice(&expires.to_be_bytes());
    out.push(count);
    for device in devices {
        put_short(&mut out, "device id", device.as_str().as_bytes())?;
    }
    Ok(out)
}

/// Reads a v2 payload; the error says what is wrong with the layout.
fn decode_v2(payload: &[u8]) -> std::result::Result<Claims, String> {
    struct Reader<'a>(&'a [u8]);
    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize, what: &str) -> std::result::Result<&'a [u8], String> {
            if self.0.len() < n {
                return Err(format!(
                    "payload is truncated in the {what} (needs {n} bytes, {} left)",
                    self.0.len()
                ));
            }
            let (head, rest) = self.0.split_at(n);
            self.0 = rest;
            Ok(head)
        }
        fn byte(&mut self, what: &str) -> std::result::Result<u8, String> {
            Ok(self.take(1, what)?[0])
        }
        fn id(&mut self, what: &str) -> std::result::Result<String, String> {
            let len = usize::from(self.byte(&format!("{what} length"))?);
            if len == 0 {
                return Err(format!("{what} is empty"));
            }
            let bytes = self.take(len, what)?;
            String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
        }
    }
    let mut r = Reader(payload);
    let user = r.id("user id")?;
    let expiry = r.take(4, "expiry")?;
    let expires = i64::from(u32::from_be_bytes([
        expiry[0], expiry[1], expiry[2], expiry[3],
    ]));
    let count = r.byte("device count")?;
    let devices = (0..count)
        .map(|_| r.id("device id"))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if !r.0.is_empty() {
        return Err(format!(
            "payload has {} bytes after the device list",
            r.0.len()
        ));
    }
    Ok(Claims {
        user,
        expires,
        devices,
    })
}

/// One app's token secrets: tokens are issued under `current`; tokens
/// issued under `previous` keep verifying until a rotation drops it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secrets {
    current: Vec<u8>,
    previous: Option<Vec<u8>>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("current", &"<hidden>")
            .field("previous", &self.previous.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

impl Secrets {
    /// One secret, at least [`MIN_SECRET_LEN`] bytes. An app's `secret`
    /// string is used as its UTF-8 bytes (not decoded from hex).
    pub fn new(app: &AppId, current: impl AsRef<[u8]>) -> Result<Secrets> {
        let current = current.as_ref();
        check_secret(app, current)?;
        Ok(Secrets {
            current: current.to_vec(),
            previous: None,
        })
    }

    /// These secrets with `previous` still verifying (a rotation).
    pub fn with_previous(mut self, app: &AppId, previous: impl AsRef<[u8]>) -> Result<Secrets> {
        let previous = previous.as_ref();
        check_secret(app, previous)?;
        self.previous = Some(previous.to_vec());
        Ok(self)
    }

    /// The secret new tokens are signed with.
    pub fn current(&self) -> &[u8] {
        &self.current
    }

    /// Every secret a token may be signed with: the current one first.
    fn all(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.current.as_slice()).chain(self.previous.as_deref())
    }
}

/// Where a [`TokenAuthenticator`] finds an app's secrets: the engine's app
/// store in the server (one source of truth), a [`Keyring`] for an embedder
/// that keeps them itself.
#[async_trait]
pub trait SecretSource: Send + Sync + 'static {
    /// `app`'s secrets; [`ErrorKind::NotFound`] when the app does not exist.
    async fn secrets(&self, app: &AppId) -> Result<Secrets>;
}

/// Secrets kept in memory, one set per app, with rotation.
#[derive(Default)]
pub struct Keyring {
    apps: RwLock<HashMap<AppId, Secrets>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let apps: Vec<String> = self.apps.read().keys().map(|a| a.to_string()).collect();
        f.debug_struct("Keyring")
            .field("apps", &apps)
            .field("secrets", &"<hidden>")
            .finish()
    }
}

impl Keyring {
    /// A keyring with no apps: add each app's secret with [`Keyring::set_secret`].
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// Sets `app`'s secret, replacing any current *and* previous one (tokens
    /// signed under them stop verifying at once: use after a leak). At least
    /// [`MIN_SECRET_LEN`] bytes.
    pub fn set_secret(&self, app: &AppId, secret: impl AsRef<[u8]>) -> Result<()> {
        let secrets = Secrets::new(app, secret)?;
        self.apps.write().insert(app.clone(), secrets);
        Ok(())
    }

    /// Rotates `app`'s secret: new tokens are signed with `secret`; tokens
    /// signed with the old one keep verifying until the next rotation or
    /// [`Keyring::retire_previous_secret`]. Adds the app if it had no secret.
    pub fn rotate_secret(&self, app: &AppId, secret: impl AsRef<[u8]>) -> Result<()> {
        let mut secrets = Secrets::new(app, secret)?;
        let mut apps = self.apps.write();
        secrets.previous = apps.remove(app).map(|s| s.current);
        apps.insert(app.clone(), secrets);
        Ok(())
    }

    /// Stops accepting tokens signed with `app`'s previous secret (once they
    /// have all expired). Returns whether there was one.
    pub fn retire_previous_secret(&self, app: &AppId) -> bool {
        self.apps
            .write()
            .get_mut(app)
            .is_some_and(|s| s.previous.take().is_some())
    }

    /// Removes an app: its tokens stop verifying. Returns whether it existed.
    pub fn remove_app(&self, app: &AppId) -> bool {
        self.apps.write().remove(app).is_some()
    }

    /// `app`'s secrets as they are now.
    pub fn get(&self, app: &AppId) -> Result<Secrets> {
        self.apps.read().get(app).cloned().ok_or_else(|| {
            Error::not_found(format!(
                "app {app} has no token secret: add one (set_secret) first"
            ))
        })
    }

    /// [`issue`] under `app`'s current secret.
    pub fn issue_at(
        &self,
        app: &AppId,
        user: &UserId,
        ttl: Duration,
        devices: &[DeviceId],
        now_ms: i64,
    ) -> Result<String> {
        issue(self.get(app)?.current(), app, user, ttl, devices, now_ms)
    }

    /// [`verify`] under `app`'s secrets.
    pub fn verify(
        &self,
        app: &AppId,
        token: &str,
        device: &DeviceId,
        now_ms: i64,
    ) -> Result<Identity> {
        verify(
            &secrets_for_verify(app, self.get(app))?,
            app,
            token,
            device,
            now_ms,
        )
    }
}

#[async_trait]
impl SecretSource for Keyring {
    async fn secrets(&self, app: &AppId) -> Result<Secrets> {
        self.get(app)
    }
}

/// A lookup's result as verification needs it: an unknown app is the
/// client's mistake (a wrong app id), so it is `Unauthenticated` too.
fn secrets_for_verify(app: &AppId, found: Result<Secrets>) -> Result<Secrets> {
    found.map_err(|e| {
        if e.kind() == ErrorKind::NotFound {
            unauthenticated(format!(
                "app {app} is not configured on this server: check the app id in the client config"
            ))
        } else {
            e
        }
    })
}

/// HMAC-SHA256 tokens checked against the secrets a [`SecretSource`] holds:
/// the default [`Authenticator`].
pub struct TokenAuthenticator {
    secrets: Arc<dyn SecretSource>,
}

impl fmt::Debug for TokenAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAuthenticator")
            .field("secrets", &"<source>")
            .finish()
    }
}

fn check_secret(app: &AppId, secret: &[u8]) -> Result<()> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(Error::invalid(format!(
            "the token secret for app {app} is {} bytes; use at least {MIN_SECRET_LEN} random bytes (token::generate_secret makes one)",
            secret.len()
        )));
    }
    Ok(())
}

fn mac(secret: &[u8], signed: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(signed.as_bytes());
    mac
}

/// The truncated v2 MAC: `u8 len(app) | app | signed` under `secret`.
fn mac_v2(secret: &[u8], app: &AppId, signed: &str) -> [u8; MAC_LEN] {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    // Ids are at most MAX_ID_LEN (128) bytes; an app id that is not could
    // never have been issued a token, and the clamp keeps this total.
    let app = app.as_str().as_bytes();
    mac.update(&[u8::try_from(app.len()).unwrap_or(u8::MAX)]);
    mac.update(app);
    mac.update(signed.as_bytes());
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&full[..MAC_LEN]);
    out
}

fn unauthenticated(message: String) -> Error {
    Error::new(ErrorKind::Unauthenticated, message)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A fresh 32-byte secret as 64 hex digits (what an admin stores in
/// config). Tokens are signed with the string's UTF-8 bytes, all 64 of them.
pub fn generate_secret() -> String {
    use bubble_proto::secure::{OsRandom, Randomness};
    let mut bytes = [0u8; 32];
    OsRandom.fill(&mut bytes);
    hex::encode(bytes)
}

/// Issues a v2 token for `user` of `app`, signed with `secret`, valid for
/// `ttl` from `now_ms` (ms since the epoch), usable only from `devices` (any
/// device when empty). What an app server does; it needs nothing else.
pub fn issue(
    secret: &[u8],
    app: &AppId,
    user: &UserId,
    ttl: Duration,
    devices: &[DeviceId],
    now_ms: i64,
) -> Result<String> {
    validate_id("app id", app.as_str())?;
    validate_id("user id", user.as_str())?;
    for device in devices {
        validate_id("device id", device.as_str())?;
    }
    if ttl.is_zero() {
        return Err(Error::invalid(
            "token ttl is zero: give the token a lifetime (e.g. 24 h)",
        ));
    }
    check_secret(app, secret)?;
    let ttl_secs = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
    let expires = (now_ms / 1000).saturating_add(ttl_secs);
    let expires = u32::try_from(expires).map_err(|_| {
        Error::invalid(format!(
            "token would expire at unix second {expires}, outside what a token holds (0 to {}, early 2106): use a shorter ttl",
            u32::MAX
        ))
    })?;
    let payload = encode_v2(user, expires, devices)?;
    let signed = format!("{TOKEN_PREFIX}{}", B64.encode(payload));
    let token = format!("{signed}.{}", B64.encode(mac_v2(secret, app, &signed)));
    if token.len() > MAX_TOKEN_LEN {
        return Err(Error::invalid(format!(
            "the token would be {} bytes, more than the {MAX_TOKEN_LEN} a server accepts: bind it to fewer devices",
            token.len()
        )));
    }
    Ok(token)
}

/// Verifies `token` (v2 or v1) for `app` and `device` at `now_ms` (ms since
/// the epoch) against `secrets` (the current one, then the previous one).
pub fn verify(
    secrets: &Secrets,
    app: &AppId,
    token: &str,
    device: &DeviceId,
    now_ms: i64,
) -> Result<Identity> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(unauthenticated(format!(
            "token is {} bytes, longer than any bubble token ({MAX_TOKEN_LEN}): ask the app server for a new token",
            token.len()
        )));
    }
    let claims = if token.starts_with(TOKEN_PREFIX) {
        verify_v2(secrets, app, token)?
    } else {
        verify_v1(secrets, app, token)?
    };
    let expires_at_ms = claims.expires.saturating_mul(1000);
    if now_ms >= expires_at_ms {
        return Err(unauthenticated(format!(
            "token expired {} s ago: ask the app server for a new token",
            (now_ms - expires_at_ms) / 1000
        )));
    }
    if !claims.devices.is_empty() && !claims.devices.iter().any(|d| d == device.as_str()) {
        return Err(unauthenticated(format!(
            "token is not valid on device {device}: ask the app server for a token for this device"
        )));
    }
    validate_id("user id in token", &claims.user)
        .map_err(|e| unauthenticated(e.message().to_owned()))?;
    Ok(Identity {
        app: app.clone(),
        user: UserId::new(&claims.user),
        expires_at: expires_at_ms,
    })
}

/// A v2 token's claims once its layout and MAC check out.
fn verify_v2(secrets: &Secrets, app: &AppId, token: &str) -> Result<Claims> {
    let malformed = |why: &str| {
        unauthenticated(format!(
            "token is not a well-formed bubble v2 token (v2.<payload>.<mac>): {why}: ask the app server for a new token"
        ))
    };
    let rest = &token[TOKEN_PREFIX.len()..];
    let (payload_b64, mac_b64) = rest
        .split_once('.')
        .ok_or_else(|| malformed("no '.' before the MAC"))?;
    let tag = B64
        .decode(mac_b64)
        .map_err(|_| malformed("the MAC is not base64url without padding"))?;
    if tag.len() != MAC_LEN {
        return Err(malformed(&format!(
            "the MAC is {} bytes, not {MAC_LEN}",
            tag.len()
        )));
    }
    let payload = B64
        .decode(payload_b64)
        .map_err(|_| malformed("the payload is not base64url without padding"))?;
    let claims = decode_v2(&payload).map_err(|why| malformed(&why))?;
    let signed = &token[..TOKEN_PREFIX.len() + payload_b64.len()];
    let authentic = secrets
        .all()
        .any(|secret| bool::from(mac_v2(secret, app, signed).as_slice().ct_eq(&tag)));
    if !authentic {
        // v2 tokens do not carry the app (it is covered by the MAC), so a
        // token of another app looks like a forgery.
        return Err(unauthenticated(format!(
            "token signature does not verify under app {app}'s secret (issued for another app, forged, corrupted, or signed with a retired secret): ask the app server for a new token"
        )));
    }
    Ok(claims)
}

/// A v1 (JSON) token's claims once its MAC and app check out.
fn verify_v1(secrets: &Secrets, app: &AppId, token: &str) -> Result<Claims> {
    let malformed = || {
        unauthenticated(
            "token is not a bubble token (v2.<payload>.<mac>, or the older v1.<payload>.<mac>): ask the app server for a new token".to_owned(),
        )
    };
    let rest = token.strip_prefix(TOKEN_PREFIX_V1).ok_or_else(malformed)?;
    let (payload_b64, mac_b64) = rest.split_once('.').ok_or_else(malformed)?;
    let tag = B64.decode(mac_b64).map_err(|_| malformed())?;
    let signed = &token[..TOKEN_PREFIX_V1.len() + payload_b64.len()];
    let payload: Option<PayloadV1> = B64
        .decode(payload_b64)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok());
    // `verify_slice` compares in constant time.
    let authentic = secrets
        .all()
        .any(|secret| mac(secret, signed).verify_slice(&tag).is_ok());
    if !authentic {
        // Say which mistake it is when the payload tells (it is the
        // client's own token, so this reveals nothing to it).
        return Err(match payload {
            Some(p) if p.app != app.as_str() => unauthenticated(format!(
                "token was issued for app {:?}, not {app}: connect with the app the token belongs to",
                p.app
            )),
            _ => unauthenticated(format!(
                "token signature does not verify under app {app}'s secret (forged, corrupted, or signed with a retired secret): ask the app server for a new token"
            )),
        });
    }
    let payload = payload.ok_or_else(malformed)?;
    if payload.app != app.as_str() {
        return Err(unauthenticated(format!(
            "token was issued for app {:?}, not {app}: connect with the app the token belongs to",
            payload.app
        )));
    }
    Ok(Claims {
        user: payload.user,
        expires: payload.expires,
        devices: payload.devices,
    })
}

impl TokenAuthenticator {
    /// An authenticator that takes each app's secrets from `secrets` at
    /// every issue and verification (the source may cache).
    pub fn new(secrets: Arc<dyn SecretSource>) -> TokenAuthenticator {
        TokenAuthenticator { secrets }
    }

    /// Issues a token for `user` of `app` under its current secret, valid
    /// for `ttl` from now, usable only from `devices` (any device when empty).
    pub async fn issue(
        &self,
        app: &AppId,
        user: &UserId,
        ttl: Duration,
        devices: &[DeviceId],
    ) -> Result<String> {
        self.issue_at(app, user, ttl, devices, now_ms()).await
    }

    /// [`TokenAuthenticator::issue`] with an explicit clock (ms since the epoch).
    pub async fn issue_at(
        &self,
        app: &AppId,
        user: &UserId,
        ttl: Duration,
        devices: &[DeviceId],
        now_ms: i64,
    ) -> Result<String> {
        let secrets = self.secrets.secrets(app).await?;
        issue(secrets.current(), app, user, ttl, devices, now_ms)
    }

    /// Verifies `token` (v2 or v1) for `app` and `device` at `now_ms` (ms
    /// since the epoch). An app the source does not know is
    /// [`ErrorKind::Unauthenticated`].
    pub async fn verify(
        &self,
        app: &AppId,
        token: &str,
        device: &DeviceId,
        now_ms: i64,
    ) -> Result<Identity> {
        let secrets = secrets_for_verify(app, self.secrets.secrets(app).await)?;
        verify(&secrets, app, token, device, now_ms)
    }
}

#[async_trait]
impl Authenticator for TokenAuthenticator {
    async fn authenticate(&self, app: &AppId, token: &str, device: &DeviceId) -> Result<Identity> {
        self.verify(app, token, device, now_ms()).await
    }
}
