//! The default token authenticator: what it accepts and what it refuses.

use std::time::Duration;

use bubble_core::error::ErrorKind;
use bubble_core::ports::Authenticator;
use bubble_core::token::{MIN_SECRET_LEN, TokenAuthenticator};
use bubble_core::types::{AppId, DeviceId, UserId};

const NOW_MS: i64 = 1_767_225_600_000;
const DAY: Duration = Duration::from_secs(86_400);

fn app() -> AppId {
    AppId::new("demo")
}

fn alice() -> UserId {
    UserId::new("alice")
}

fn phone() -> DeviceId {
    DeviceId::new("phone-1")
}

fn authenticator() -> TokenAuthenticator {
    let auth = TokenAuthenticator::new();
    auth.set_secret(&app(), [1u8; 32]).unwrap();
    auth.set_secret(&AppId::new("other"), [2u8; 32]).unwrap();
    auth
}

fn token(auth: &TokenAuthenticator) -> String {
    auth.issue_at(&app(), &alice(), DAY, &[], NOW_MS).unwrap()
}

#[test]
fn issued_token_verifies_as_its_user() {
    let auth = authenticator();
    let identity = auth
        .verify(&app(), &token(&auth), &phone(), NOW_MS)
        .unwrap();
    assert_eq!(identity.user, alice());
    assert_eq!(identity.app, app());
    assert_eq!(identity.expires_at, NOW_MS + 86_400_000);
}

#[test]
fn token_has_the_documented_shape() {
    let token = token(&authenticator());
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0], "v1");
    assert_eq!(parts[2].len(), 43, "32-byte HMAC in unpadded base64url");
}

#[test]
fn token_for_short_ids_fits_the_rsa_3072_block() {
    assert!(token(&authenticator()).len() <= 221);
}

#[test]
fn token_matches_a_fixed_vector() {
    // Checked with openssl: HMAC-SHA256(key = 32 x 0x01, ASCII "v1." + payload),
    // payload = base64url of {"a":"demo","u":"alice","e":1767312000}.
    assert_eq!(
        token(&authenticator()),
        "v1.eyJhIjoiZGVtbyIsInUiOiJhbGljZSIsImUiOjE3NjczMTIwMDB9.S6di_ObC0azzCttmbKERCMBJabIAFGMeismEDlfRRgo"
    );
}

#[test]
fn expired_token_is_refused() {
    let auth = authenticator();
    let err = auth
        .verify(&app(), &token(&auth), &phone(), NOW_MS + 86_400_000)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert!(err.message().contains("expired"), "{err}");
}

#[test]
fn token_of_another_app_is_refused() {
    let auth = authenticator();
    let theirs = auth
        .issue_at(&AppId::new("other"), &alice(), DAY, &[], NOW_MS)
        .unwrap();
    let err = auth.verify(&app(), &theirs, &phone(), NOW_MS).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert!(err.message().contains("issued for app \"other\""), "{err}");
}

#[test]
fn token_of_another_app_signed_with_this_apps_secret_is_refused() {
    // Two apps sharing a secret by mistake must still not accept each other's tokens.
    let auth = TokenAuthenticator::new();
    auth.set_secret(&app(), [3u8; 32]).unwrap();
    auth.set_secret(&AppId::new("twin"), [3u8; 32]).unwrap();
    let twin = auth
        .issue_at(&AppId::new("twin"), &alice(), DAY, &[], NOW_MS)
        .unwrap();
    assert!(auth.verify(&app(), &twin, &phone(), NOW_MS).is_err());
}

#[test]
fn forged_payload_is_refused() {
    let auth = authenticator();
    let token = token(&auth);
    let parts: Vec<&str> = token.split('.').collect();
    let forged_payload = base64_url(br#"{"a":"demo","u":"admin","e":9999999999}"#);
    let forged = format!("v1.{forged_payload}.{}", parts[2]);
    let err = auth.verify(&app(), &forged, &phone(), NOW_MS).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert!(err.message().contains("signature"), "{err}");
}

#[test]
fn flipped_mac_character_is_refused() {
    let auth = authenticator();
    let mut token = token(&auth).into_bytes();
    let last = token.len() - 2;
    token[last] = if token[last] == b'A' { b'B' } else { b'A' };
    let token = String::from_utf8(token).unwrap();
    assert!(auth.verify(&app(), &token, &phone(), NOW_MS).is_err());
}

#[test]
fn token_signed_with_an_unknown_secret_is_refused() {
    let stranger = TokenAuthenticator::new();
    stranger.set_secret(&app(), [9u8; 32]).unwrap();
    let token = stranger
        .issue_at(&app(), &alice(), DAY, &[], NOW_MS)
        .unwrap();
    assert!(
        authenticator()
            .verify(&app(), &token, &phone(), NOW_MS)
            .is_err()
    );
}

#[test]
fn garbage_is_refused_with_a_hint() {
    let err = authenticator()
        .verify(&app(), "not a token", &phone(), NOW_MS)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert!(err.message().contains("ask the app server"), "{err}");
}

#[test]
fn token_for_an_unconfigured_app_is_refused() {
    let auth = authenticator();
    let err = auth
        .verify(&AppId::new("nope"), &token(&auth), &phone(), NOW_MS)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
}

#[test]
fn device_bound_token_is_refused_on_another_device() {
    let auth = authenticator();
    let token = auth
        .issue_at(&app(), &alice(), DAY, &[phone()], NOW_MS)
        .unwrap();
    assert!(auth.verify(&app(), &token, &phone(), NOW_MS).is_ok());
    let err = auth
        .verify(&app(), &token, &DeviceId::new("laptop"), NOW_MS)
        .unwrap_err();
    assert!(err.message().contains("device laptop"), "{err}");
}

#[test]
fn rotated_secret_still_verifies_old_tokens_and_signs_new_ones() {
    let auth = authenticator();
    let old = token(&auth);
    auth.rotate_secret(&app(), [4u8; 32]).unwrap();
    let new = token(&auth);
    assert_ne!(old, new);
    assert!(auth.verify(&app(), &old, &phone(), NOW_MS).is_ok());
    assert!(auth.verify(&app(), &new, &phone(), NOW_MS).is_ok());
}

#[test]
fn retired_previous_secret_no_longer_verifies() {
    let auth = authenticator();
    let old = token(&auth);
    auth.rotate_secret(&app(), [4u8; 32]).unwrap();
    assert!(auth.retire_previous_secret(&app()));
    assert!(auth.verify(&app(), &old, &phone(), NOW_MS).is_err());
}

#[test]
fn set_secret_revokes_every_earlier_token() {
    let auth = authenticator();
    let old = token(&auth);
    auth.rotate_secret(&app(), [4u8; 32]).unwrap();
    auth.set_secret(&app(), [5u8; 32]).unwrap();
    assert!(auth.verify(&app(), &old, &phone(), NOW_MS).is_err());
}

#[test]
fn removed_app_tokens_are_refused() {
    let auth = authenticator();
    let token = token(&auth);
    assert!(auth.remove_app(&app()));
    assert!(auth.verify(&app(), &token, &phone(), NOW_MS).is_err());
}

#[test]
fn short_secret_is_refused() {
    let err = TokenAuthenticator::new()
        .set_secret(&app(), [1u8; MIN_SECRET_LEN - 1])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn generated_secret_is_64_hex_digits_and_usable() {
    let secret = TokenAuthenticator::generate_secret();
    assert_eq!(secret.len(), 64);
    TokenAuthenticator::new()
        .set_secret(&app(), secret.as_bytes())
        .unwrap();
}

#[test]
fn issuing_for_an_app_without_a_secret_fails() {
    let err = TokenAuthenticator::new()
        .issue_at(&app(), &alice(), DAY, &[], NOW_MS)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn issuing_with_a_zero_ttl_fails() {
    let err = authenticator()
        .issue_at(&app(), &alice(), Duration::ZERO, &[], NOW_MS)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn debug_output_hides_secrets() {
    let shown = format!("{:?}", authenticator());
    assert!(shown.contains("<hidden>"));
    assert!(!shown.contains("1, 1, 1"));
}

#[tokio::test]
async fn authenticator_port_accepts_a_fresh_token() {
    let auth = authenticator();
    let token = auth.issue(&app(), &alice(), DAY, &[]).unwrap();
    let identity = auth.authenticate(&app(), &token, &phone()).await.unwrap();
    assert_eq!(identity.user, alice());
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
