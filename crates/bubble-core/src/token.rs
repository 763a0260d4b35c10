//! Default `Authenticator`: HMAC-SHA256 signed tokens with a per-app secret.
//!
//! A product's app server issues a token to its user (with [`TokenAuthenticator::issue`]
//! through bubble's admin API, or by itself in any language); the client
//! carries it in the handshake; the gate checks it here. Products with their
//! own identity system implement [`Authenticator`] instead.
//!
//! # Format
//!
//! ```text
//! v1.<payload>.<mac>
//!   payload = base64url-no-pad( JSON {"a": app, "u": user, "e": expiry (unix seconds), "d": [devices]?} )
//!   mac     = base64url-no-pad( HMAC-SHA256(app secret, ASCII "v1." + payload) )
//! ```
//!
//! Short JSON keys keep tokens small: the token travels inside the
//! handshake's RSA block, which holds 221 bytes with a 3072-bit server key.
//! `d` is optional; when present and non-empty, only those devices may use
//! the token.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{Error, ErrorKind, Result};
use crate::ports::{Authenticator, Identity};
use crate::types::{AppId, DeviceId, UserId, validate_id};

/// The prefix of every token of this format (a version, covered by the MAC).
pub const TOKEN_PREFIX: &str = "v1.";

/// Shortest secret accepted: 32 bytes (256 bits, HMAC-SHA256's own strength).
pub const MIN_SECRET_LEN: usize = 32;

/// Longest token looked at; anything longer is refused before any work.
pub const MAX_TOKEN_LEN: usize = 1024;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    #[serde(rename = "a")]
    app: String,
    #[serde(rename = "u")]
    user: String,
    #[serde(rename = "e")]
    expires: i64,
    #[serde(rename = "d", default, skip_serializing_if = "Vec::is_empty")]
    devices: Vec<String>,
}

/// One app's secrets: tokens are issued under `current`; tokens issued
/// under `previous` keep verifying until a rotation drops it.
struct AppSecrets {
    current: Vec<u8>,
    previous: Option<Vec<u8>>,
}

/// HMAC-SHA256 tokens, one secret per app (plus the previous one during a rotation).
pub struct TokenAuthenticator {
    apps: RwLock<HashMap<AppId, AppSecrets>>,
}

impl fmt::Debug for TokenAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let apps: Vec<String> = self.apps.read().keys().map(|a| a.to_string()).collect();
        f.debug_struct("TokenAuthenticator")
            .field("apps", &apps)
            .field("secrets", &"<hidden>")
            .finish()
    }
}

impl Default for TokenAuthenticator {
    fn default() -> Self {
        TokenAuthenticator::new()
    }
}

fn check_secret(app: &AppId, secret: &[u8]) -> Result<()> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(Error::invalid(format!(
            "the token secret for app {app} is {} bytes; use at least {MIN_SECRET_LEN} random bytes (TokenAuthenticator::generate_secret makes one)",
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

fn unauthenticated(message: String) -> Error {
    Error::new(ErrorKind::Unauthenticated, message)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl TokenAuthenticator {
    /// An authenticator with no apps: add each app's secret with [`TokenAuthenticator::set_secret`].
    pub fn new() -> TokenAuthenticator {
        TokenAuthenticator {
            apps: RwLock::new(HashMap::new()),
        }
    }

    /// A fresh 32-byte secret as 64 hex digits (what an admin stores in config).
    pub fn generate_secret() -> String {
        use bubble_proto::secure::{OsRandom, Randomness};
        let mut bytes = [0u8; 32];
        OsRandom.fill(&mut bytes);
        hex::encode(bytes)
    }

    /// Sets `app`'s secret, replacing any current *and* previous one (tokens
    /// signed under them stop verifying at once: use after a leak). At least
    /// [`MIN_SECRET_LEN`] bytes.
    pub fn set_secret(&self, app: &AppId, secret: impl AsRef<[u8]>) -> Result<()> {
        let secret = secret.as_ref();
        check_secret(app, secret)?;
        self.apps.write().insert(
            app.clone(),
            AppSecrets {
                current: secret.to_vec(),
                previous: None,
            },
        );
        Ok(())
    }

    /// Rotates `app`'s secret: new tokens are signed with `secret`; tokens
    /// signed with the old one keep verifying until the next rotation or
    /// [`TokenAuthenticator::retire_previous_secret`]. Adds the app if it
    /// had no secret.
    pub fn rotate_secret(&self, app: &AppId, secret: impl AsRef<[u8]>) -> Result<()> {
        let secret = secret.as_ref();
        check_secret(app, secret)?;
        let mut apps = self.apps.write();
        let previous = apps.remove(app).map(|s| s.current);
        apps.insert(
            app.clone(),
            AppSecrets {
                current: secret.to_vec(),
                previous,
            },
        );
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

    /// Whether `app` has a secret.
    pub fn has_app(&self, app: &AppId) -> bool {
        self.apps.read().contains_key(app)
    }

    /// Issues a token for `user` of `app`, valid for `ttl` from now, usable
    /// only from `devices` (any device when empty).
    pub fn issue(
        &self,
        app: &AppId,
        user: &UserId,
        ttl: Duration,
        devices: &[DeviceId],
    ) -> Result<String> {
        self.issue_at(app, user, ttl, devices, now_ms())
    }

    /// [`TokenAuthenticator::issue`] with an explicit clock (ms since the epoch).
    pub fn issue_at(
        &self,
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
        let ttl_secs = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        let payload = Payload {
            app: app.to_string(),
            user: user.to_string(),
            expires: (now_ms / 1000).saturating_add(ttl_secs),
            devices: devices.iter().map(|d| d.to_string()).collect(),
        };
        let json = serde_json::to_vec(&payload)
            .map_err(|e| Error::internal(format!("token payload: {e}")))?;
        let signed = format!("{TOKEN_PREFIX}{}", B64.encode(json));
        let apps = self.apps.read();
        let secrets = apps.get(app).ok_or_else(|| {
            Error::not_found(format!(
                "app {app} has no token secret: add one (set_secret) before issuing tokens"
            ))
        })?;
        let tag = mac(&secrets.current, &signed).finalize().into_bytes();
        Ok(format!("{signed}.{}", B64.encode(tag)))
    }

    /// Verifies `token` for `app` and `device` at `now_ms` (ms since the epoch).
    pub fn verify(
        &self,
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
        let malformed = || {
            unauthenticated(
                "token is not a bubble v1 token (v1.<payload>.<mac>): ask the app server for a new token".to_owned(),
            )
        };
        let rest = token.strip_prefix(TOKEN_PREFIX).ok_or_else(malformed)?;
        let (payload_b64, mac_b64) = rest.split_once('.').ok_or_else(malformed)?;
        let tag = B64.decode(mac_b64).map_err(|_| malformed())?;
        let signed = &token[..TOKEN_PREFIX.len() + payload_b64.len()];
        let payload: Option<Payload> = B64
            .decode(payload_b64)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok());

        let authentic = {
            let apps = self.apps.read();
            let secrets = apps.get(app).ok_or_else(|| {
                unauthenticated(format!(
                    "app {app} is not configured on this server: check the app id in the client config"
                ))
            })?;
            // `verify_slice` compares in constant time.
            std::iter::once(&secrets.current)
                .chain(secrets.previous.iter())
                .any(|secret| mac(secret, signed).verify_slice(&tag).is_ok())
        };
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
        let expires_at_ms = payload.expires.saturating_mul(1000);
        if now_ms >= expires_at_ms {
            return Err(unauthenticated(format!(
                "token expired {} s ago: ask the app server for a new token",
                (now_ms - expires_at_ms) / 1000
            )));
        }
        if !payload.devices.is_empty() && !payload.devices.iter().any(|d| d == device.as_str()) {
            return Err(unauthenticated(format!(
                "token is not valid on device {device}: ask the app server for a token for this device"
            )));
        }
        validate_id("user id in token", &payload.user)
            .map_err(|e| unauthenticated(e.message().to_owned()))?;
        Ok(Identity {
            app: app.clone(),
            user: UserId::new(&payload.user),
            expires_at: expires_at_ms,
        })
    }
}

#[async_trait]
impl Authenticator for TokenAuthenticator {
    async fn authenticate(&self, app: &AppId, token: &str, device: &DeviceId) -> Result<Identity> {
        self.verify(app, token, device, now_ms())
    }
}
