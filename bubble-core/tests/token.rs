//! The default token authenticator: what it accepts and what it refuses.

use std::sync::Arc;
use std::time::Duration;

use bubble_core::error::ErrorKind;
use bubble_core::ports::Authenticator;
use bubble_core::token::{
    Keyring, MAX_TOKEN_LEN, MIN_SECRET_LEN, Secrets, TokenAuthenticator, generate_secret, issue,
    verify,
};
use bubble_core::types::{AppId, DeviceId, UserId};
use hmac::{Hmac, KeyInit, Mac};
use proptest::prelude::*;
use sha2::Sha256;

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

fn authenticator() -> Keyring {
    let auth = Keyring::new();
    auth.set_secret(&app(), [1u8; 32]).unwrap();
    auth.set_secret(&AppId::new("other"), [2u8; 32]).unwrap();
    auth
}

fn token(auth: &Keyring) -> String {
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
    assert_eq!(parts[0], "v2");
    assert_eq!(
        parts[2].len(),
        22,
        "HMAC truncated to 16 bytes, unpadded base64url"
    );
}

#[test]
fn token_for_short_ids_fits_the_rsa_3072_block() {
    assert!(token(&authenticator()).len() <= 221);
}

#[test]
fn token_for_a_typical_app_and_uuid_user_fits_the_rsa_2048_block() {
    // The token limit is k - 163 bytes: 93 for a 2048-bit server key.
    let app = AppId::new("shop-production-");
    assert_eq!(app.as_str().len(), 16);
    let auth = Keyring::new();
    auth.set_secret(&app, [7u8; 32]).unwrap();
    let user = UserId::new("123e4567-e89b-12d3-a456-426614174000");
    let token = auth.issue_at(&app, &user, DAY, &[], NOW_MS).unwrap();
    assert_eq!(token.len(), 82, "{token}");
    assert!(token.len() <= 93);
}

#[test]
fn token_length_follows_the_documented_formula() {
    // 26 + ceil(4 * (6 + len(user) + sum(1 + len(device))) / 3), whatever the app.
    let auth = authenticator();
    for user_len in [1, 5, 36, 44, 45, 128] {
        for devices in [
            vec![],
            vec![phone()],
            vec![phone(), DeviceId::new("laptop")],
        ] {
            let user = UserId::new("u".repeat(user_len));
            let token = auth.issue_at(&app(), &user, DAY, &devices, NOW_MS).unwrap();
            let device_bytes: usize = devices.iter().map(|d| 1 + d.as_str().len()).sum();
            let raw = 6 + user_len + device_bytes;
            assert_eq!(token.len(), 26 + (4 * raw).div_ceil(3), "{token}");
        }
    }
    // So user ids up to 44 bytes fit RSA-2048 when the token names no device.
    let longest = auth
        .issue_at(&app(), &UserId::new("u".repeat(44)), DAY, &[], NOW_MS)
        .unwrap();
    assert_eq!(longest.len(), 93);
}

#[test]
fn token_matches_a_fixed_vector() {
    // Checked with Python's hmac: payload = 05 "alice" 69570a80 00,
    // mac = first 16 bytes of HMAC-SHA256(key = 32 x 0x01, 04 "demo" "v2." payload).
    assert_eq!(
        token(&authenticator()),
        "v2.BWFsaWNlaVcKgAA.1pSpk29448ap8t1IDOGIIw"
    );
}

#[test]
fn token_is_the_documented_layout_signed_as_documented() {
    let auth = authenticator();
    let issued = auth
        .issue_at(
            &app(),
            &alice(),
            DAY,
            &[phone(), DeviceId::new("laptop")],
            NOW_MS,
        )
        .unwrap();
    let mut payload = vec![5];
    payload.extend_from_slice(b"alice");
    payload.extend_from_slice(&1_767_312_000u32.to_be_bytes());
    payload.push(2);
    payload.push(7);
    payload.extend_from_slice(b"phone-1");
    payload.push(6);
    payload.extend_from_slice(b"laptop");
    assert_eq!(issued, sign_v2(&[1u8; 32], "demo", &payload));
}

#[test]
fn v1_token_still_verifies() {
    // A token handed out before v2, from the v1 vector.
    let v1 = "v1.eyJhIjoiZGVtbyIsInUiOiJhbGljZSIsImUiOjE3NjczMTIwMDB9.S6di_ObC0azzCttmbKERCMBJabIAFGMeismEDlfRRgo";
    let identity = authenticator()
        .verify(&app(), v1, &phone(), NOW_MS)
        .unwrap();
    assert_eq!(identity.user, alice());
    assert_eq!(identity.expires_at, 1_767_312_000_000);
}

#[test]
fn v1_token_keeps_its_checks() {
    let auth = authenticator();
    let json = br#"{"a":"demo","u":"alice","e":1767312000,"d":["phone-1"]}"#;
    let v1 = sign_v1(&[1u8; 32], json);
    assert!(auth.verify(&app(), &v1, &phone(), NOW_MS).is_ok());
    let err = auth
        .verify(&app(), &v1, &DeviceId::new("laptop"), NOW_MS)
        .unwrap_err();
    assert!(err.message().contains("device laptop"), "{err}");
    let err = auth
        .verify(&app(), &v1, &phone(), 1_767_312_000_000)
        .unwrap_err();
    assert!(err.message().contains("expired"), "{err}");
    let theirs = sign_v1(&[2u8; 32], br#"{"a":"other","u":"alice","e":1767312000}"#);
    let err = auth.verify(&app(), &theirs, &phone(), NOW_MS).unwrap_err();
    assert!(err.message().contains("issued for app \"other\""), "{err}");
}

#[test]
fn v1_token_with_a_forged_payload_is_refused() {
    let auth = authenticator();
    let v1 = sign_v1(&[1u8; 32], br#"{"a":"demo","u":"alice","e":1767312000}"#);
    let mac = v1.rsplit('.').next().unwrap();
    let forged_payload = base64_url(br#"{"a":"demo","u":"admin","e":9999999999}"#);
    let forged = format!("v1.{forged_payload}.{mac}");
    let err = auth.verify(&app(), &forged, &phone(), NOW_MS).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert!(err.message().contains("signature"), "{err}");
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
    assert!(err.message().contains("issued for another app"), "{err}");
}

#[test]
fn token_of_another_app_signed_with_this_apps_secret_is_refused() {
    // Two apps sharing a secret by mistake must still not accept each other's tokens.
    let auth = Keyring::new();
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
    let mac = token.rsplit('.').next().unwrap();
    let mut payload = vec![5];
    payload.extend_from_slice(b"admin");
    payload.extend_from_slice(&u32::MAX.to_be_bytes());
    payload.push(0);
    let forged = format!("v2.{}.{mac}", base64_url(&payload));
    let err = auth.verify(&app(), &forged, &phone(), NOW_MS).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert!(err.message().contains("signature"), "{err}");
}

#[test]
fn flipped_payload_byte_is_refused() {
    let auth = authenticator();
    let token = token(&auth);
    // Every bit of the payload is covered: flip each byte in turn.
    let mut payload = vec![5];
    payload.extend_from_slice(b"alice");
    payload.extend_from_slice(&1_767_312_000u32.to_be_bytes());
    payload.push(0);
    let mac = token.rsplit('.').next().unwrap();
    for i in 0..payload.len() {
        let mut flipped = payload.clone();
        flipped[i] ^= 0x01;
        let forged = format!("v2.{}.{mac}", base64_url(&flipped));
        let err = auth.verify(&app(), &forged, &phone(), NOW_MS).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthenticated, "byte {i}");
    }
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
    let stranger = Keyring::new();
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
    let err = Keyring::new()
        .set_secret(&app(), [1u8; MIN_SECRET_LEN - 1])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn generated_secret_is_64_hex_digits_and_usable() {
    let secret = generate_secret();
    assert_eq!(secret.len(), 64);
    Keyring::new()
        .set_secret(&app(), secret.as_bytes())
        .unwrap();
}

#[test]
fn issuing_for_an_app_without_a_secret_fails() {
    let err = Keyring::new()
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
    let auth = TokenAuthenticator::new(Arc::new(authenticator()));
    let token = auth.issue(&app(), &alice(), DAY, &[]).await.unwrap();
    let identity = auth.authenticate(&app(), &token, &phone()).await.unwrap();
    assert_eq!(identity.user, alice());
}

#[tokio::test]
async fn the_authenticator_reads_each_apps_secret_from_its_source_every_time() {
    let keyring = Arc::new(authenticator());
    let auth = TokenAuthenticator::new(keyring.clone());
    let old = auth
        .issue_at(&app(), &alice(), DAY, &[], NOW_MS)
        .await
        .unwrap();
    assert_eq!(old, token(&keyring), "the same bytes as the keyring's own");
    // The source changes: nothing to sync, the next call sees it.
    keyring.set_secret(&app(), [6u8; 32]).unwrap();
    assert!(auth.verify(&app(), &old, &phone(), NOW_MS).await.is_err());
    let new = auth
        .issue_at(&app(), &alice(), DAY, &[], NOW_MS)
        .await
        .unwrap();
    assert!(auth.verify(&app(), &new, &phone(), NOW_MS).await.is_ok());
}

#[tokio::test]
async fn an_app_the_source_does_not_know_is_unauthenticated_to_clients_and_not_found_to_issuers() {
    let auth = TokenAuthenticator::new(Arc::new(authenticator()));
    let nope = AppId::new("nope");
    let err = auth
        .verify(&nope, &token(&authenticator()), &phone(), NOW_MS)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert!(err.message().contains("not configured"), "{err}");
    let err = auth.issue(&nope, &alice(), DAY, &[]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn the_pure_functions_are_the_format_without_any_store() {
    let secret = [1u8; 32];
    let issued = issue(&secret, &app(), &alice(), DAY, &[], NOW_MS).unwrap();
    assert_eq!(issued, "v2.BWFsaWNlaVcKgAA.1pSpk29448ap8t1IDOGIIw");
    let secrets = Secrets::new(&app(), secret).unwrap();
    let identity = verify(&secrets, &app(), &issued, &phone(), NOW_MS).unwrap();
    assert_eq!(identity.user, alice());
    // A rotation: the previous secret still verifies.
    let rotated = Secrets::new(&app(), [4u8; 32])
        .unwrap()
        .with_previous(&app(), secret)
        .unwrap();
    assert!(verify(&rotated, &app(), &issued, &phone(), NOW_MS).is_ok());
    let err = issue(&[1u8; 31], &app(), &alice(), DAY, &[], NOW_MS).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn a_secret_string_is_the_key_as_its_utf8_bytes_not_decoded_from_hex() {
    // The vector of docs/auth.md: a 64-hex-digit secret string, all 64 bytes the key.
    let hex_string = "0123456789abcdef".repeat(4);
    assert_eq!(
        issue(hex_string.as_bytes(), &app(), &alice(), DAY, &[], NOW_MS).unwrap(),
        "v2.BWFsaWNlaVcKgAA.XnoOkmfyzJkhB-wWnwdFFw"
    );
    let secret = generate_secret();
    let from_string = issue(secret.as_bytes(), &app(), &alice(), DAY, &[], NOW_MS).unwrap();
    let mac = hmac_sha256(secret.as_bytes(), &[&[4], b"demo", b"v2.BWFsaWNlaVcKgAA"]);
    assert_eq!(
        from_string,
        format!("v2.BWFsaWNlaVcKgAA.{}", base64_url(&mac[..16]))
    );
}

#[test]
fn truncated_token_is_refused() {
    let auth = authenticator();
    let token = token(&auth);
    for cut in 1..token.len() {
        let err = auth
            .verify(&app(), &token[..token.len() - cut], &phone(), NOW_MS)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthenticated, "cut {cut}");
    }
}

#[test]
fn signed_but_truncated_payload_is_refused_as_truncated() {
    // What an app server's buggy encoder could produce: a valid MAC over a
    // payload that stops inside the expiry.
    let truncated = sign_v2(&[1u8; 32], "demo", b"\x05alice\x69\x57");
    let err = authenticator()
        .verify(&app(), &truncated, &phone(), NOW_MS)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert!(err.message().contains("truncated in the expiry"), "{err}");
}

#[test]
fn payload_with_trailing_bytes_is_refused() {
    let trailing = sign_v2(&[1u8; 32], "demo", b"\x05alice\x69\x57\x0a\x80\x00\x00");
    let err = authenticator()
        .verify(&app(), &trailing, &phone(), NOW_MS)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert!(
        err.message().contains("1 bytes after the device list"),
        "{err}"
    );
}

#[test]
fn token_with_data_after_the_mac_is_refused() {
    let auth = authenticator();
    for suffix in ["A", ".x", "AAAA"] {
        let token = format!("{}{suffix}", token(&auth));
        let err = auth.verify(&app(), &token, &phone(), NOW_MS).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{suffix}");
    }
}

#[test]
fn payload_lengths_that_overrun_are_refused() {
    // The user id claims 6 bytes but 5 follow before the expiry ends the payload.
    let overrun = sign_v2(&[1u8; 32], "demo", b"\x40alice");
    let err = authenticator()
        .verify(&app(), &overrun, &phone(), NOW_MS)
        .unwrap_err();
    assert!(err.message().contains("truncated in the user id"), "{err}");
    // Two devices announced, one present.
    let missing = sign_v2(
        &[1u8; 32],
        "demo",
        b"\x05alice\x69\x57\x0a\x80\x02\x07phone-1",
    );
    let err = authenticator()
        .verify(&app(), &missing, &phone(), NOW_MS)
        .unwrap_err();
    assert!(
        err.message().contains("truncated in the device id"),
        "{err}"
    );
}

#[test]
fn empty_ids_in_a_payload_are_refused() {
    let empty_user = sign_v2(&[1u8; 32], "demo", b"\x00\x69\x57\x0a\x80\x00");
    let err = authenticator()
        .verify(&app(), &empty_user, &phone(), NOW_MS)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert!(err.message().contains("user id is empty"), "{err}");
}

#[test]
fn non_utf8_ids_are_refused() {
    let bad_user = sign_v2(&[1u8; 32], "demo", b"\x02\xff\xfe\x69\x57\x0a\x80\x00");
    let err = authenticator()
        .verify(&app(), &bad_user, &phone(), NOW_MS)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert!(err.message().contains("user id is not UTF-8"), "{err}");
    let bad_device = sign_v2(&[1u8; 32], "demo", b"\x05alice\x69\x57\x0a\x80\x01\x01\xc3");
    let err = authenticator()
        .verify(&app(), &bad_device, &phone(), NOW_MS)
        .unwrap_err();
    assert!(err.message().contains("device id is not UTF-8"), "{err}");
}

#[test]
fn untruncated_mac_is_refused() {
    // A v2 token carries exactly 16 MAC bytes; the full 32 is not accepted.
    let payload = b"\x05alice\x69\x57\x0a\x80\x00";
    let signed = format!("v2.{}", base64_url(payload));
    let full = hmac_sha256(&[1u8; 32], &[&[4], b"demo", signed.as_bytes()]);
    let token = format!("{signed}.{}", base64_url(&full));
    let err = authenticator()
        .verify(&app(), &token, &phone(), NOW_MS)
        .unwrap_err();
    assert!(err.message().contains("MAC is 32 bytes"), "{err}");
}

#[test]
fn id_longer_than_a_token_holds_is_refused_at_issue() {
    let auth = authenticator();
    let err = auth
        .issue_at(&app(), &UserId::new("u".repeat(256)), DAY, &[], NOW_MS)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("user id"), "{err}");
    let err = auth
        .issue_at(
            &app(),
            &alice(),
            DAY,
            &[DeviceId::new("d".repeat(300))],
            NOW_MS,
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("device id"), "{err}");
}

#[test]
fn more_than_255_devices_are_refused_at_issue() {
    let devices: Vec<DeviceId> = (0..256).map(|i| DeviceId::new(format!("d{i}"))).collect();
    let err = authenticator()
        .issue_at(&app(), &alice(), DAY, &devices, NOW_MS)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("255 devices"), "{err}");
}

#[test]
fn token_longer_than_a_server_accepts_is_refused_at_issue() {
    let devices: Vec<DeviceId> = (0..200)
        .map(|i| DeviceId::new(format!("device-{i:04}")))
        .collect();
    let err = authenticator()
        .issue_at(&app(), &alice(), DAY, &devices, NOW_MS)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains(&MAX_TOKEN_LEN.to_string()), "{err}");
}

#[test]
fn expiry_past_2106_is_refused_at_issue() {
    let err = authenticator()
        .issue_at(
            &app(),
            &alice(),
            Duration::from_secs(u64::from(u32::MAX)),
            &[],
            NOW_MS,
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("shorter ttl"), "{err}");
}

proptest! {
    #[test]
    fn verification_never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
        let _ = authenticator().verify(&app(), &text, &phone(), NOW_MS);
    }

    #[test]
    fn verification_never_panics_on_arbitrary_v2_payloads(
        payload in proptest::collection::vec(any::<u8>(), 0..120),
        signed in any::<bool>(),
    ) {
        let token = if signed {
            sign_v2(&[1u8; 32], "demo", &payload)
        } else {
            format!("v2.{}.AAAAAAAAAAAAAAAAAAAAAA", base64_url(&payload))
        };
        let result = authenticator().verify(&app(), &token, &phone(), NOW_MS);
        if let Err(err) = result {
            prop_assert_eq!(err.kind(), ErrorKind::Unauthenticated);
        }
    }
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// A v2 token built from the documented format, independently of the crate.
fn sign_v2(secret: &[u8], app: &str, payload: &[u8]) -> String {
    let signed = format!("v2.{}", base64_url(payload));
    let mac = hmac_sha256(
        secret,
        &[&[app.len() as u8], app.as_bytes(), signed.as_bytes()],
    );
    format!("{signed}.{}", base64_url(&mac[..16]))
}

/// A v1 token (the earlier JSON format) built by hand.
fn sign_v1(secret: &[u8], json: &[u8]) -> String {
    let signed = format!("v1.{}", base64_url(json));
    let mac = hmac_sha256(secret, &[signed.as_bytes()]);
    format!("{signed}.{}", base64_url(&mac))
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
