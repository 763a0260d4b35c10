//! The server's RSA keys on disk and the client's pin.

mod secure_support;

use std::path::PathBuf;

use bubble_proto::secure::keys::{CURRENT_KEY_FILE, PREVIOUS_KEY_FILE, token_capacity};
use bubble_proto::secure::{KeyError, PinnedServerKey, ServerKey, ServerKeyRing};
use secure_support::*;

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bubble-keys-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn write_fixture(dir: &std::path::Path, file: &str, pem: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(file);
    std::fs::write(&path, pem).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn key_id_is_the_first_eight_bytes_of_the_fingerprint() {
    let key = server_key();
    assert_eq!(key.key_id(), key.fingerprint()[..8]);
}

#[test]
fn fingerprint_is_sha256_of_the_public_key_der() {
    // `openssl pkey -pubout -outform DER | sha256sum` on the fixture.
    assert_eq!(
        server_key().fingerprint_hex(),
        "493e134ee53fb28911adaca5c4c0bb568e8e137f9db6db082b99242cbf9599f9"
    );
}

#[test]
fn missing_key_is_generated_and_stored_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch_dir("generate");
    let ring = ServerKeyRing::load_or_generate(&dir, 2048).unwrap();
    let mode = std::fs::metadata(dir.join(CURRENT_KEY_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(ring.current().modulus_bytes(), 256);
    let again = ServerKeyRing::load_or_generate(&dir, 2048).unwrap();
    assert_eq!(again.current().key_id(), ring.current().key_id());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn existing_key_is_loaded_not_replaced() {
    let dir = scratch_dir("load");
    write_fixture(&dir, CURRENT_KEY_FILE, SERVER_KEY_PEM, 0o600);
    let ring = ServerKeyRing::load_or_generate(&dir, 2048).unwrap();
    assert_eq!(ring.current().key_id(), server_key().key_id());
    assert!(ring.previous().is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn key_readable_by_others_is_refused() {
    let dir = scratch_dir("mode");
    write_fixture(&dir, CURRENT_KEY_FILE, SERVER_KEY_PEM, 0o644);
    let err = ServerKeyRing::load_or_generate(&dir, 2048).unwrap_err();
    assert!(
        matches!(err, KeyError::Permissions { mode: 0o644, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("chmod 600"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rotation_keeps_the_old_key_as_previous() {
    let dir = scratch_dir("rotate");
    write_fixture(&dir, CURRENT_KEY_FILE, SERVER_KEY_PEM, 0o600);
    let rotated = ServerKeyRing::rotate(&dir, 2048).unwrap();
    let old_id = server_key().key_id();
    assert_eq!(rotated.previous().unwrap().key_id(), old_id);
    assert_ne!(rotated.current().key_id(), old_id);
    assert!(rotated.find(&old_id).is_some());
    let reloaded = ServerKeyRing::load_or_generate(&dir, 2048).unwrap();
    assert_eq!(reloaded.previous().unwrap().key_id(), old_id);
    assert!(dir.join(PREVIOUS_KEY_FILE).exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pin_with_the_right_fingerprint_is_accepted() {
    let key = server_key();
    let pin = PinnedServerKey::from_pem(&key.public_pem(), &key.fingerprint_hex().to_uppercase())
        .unwrap();
    assert_eq!(pin.key_id(), key.key_id());
}

#[test]
fn pin_with_another_fingerprint_is_refused() {
    let err = PinnedServerKey::from_pem(&server_key().public_pem(), &other_key().fingerprint_hex())
        .unwrap_err();
    assert!(matches!(err, KeyError::PinMismatch { .. }), "{err}");
}

#[test]
fn key_below_2048_bits_is_refused() {
    let err = ServerKey::generate(1024).unwrap_err();
    assert!(matches!(err, KeyError::Size { bits: 1024 }));
}

#[test]
fn token_capacity_follows_the_key_size() {
    assert_eq!(token_capacity(256), 93);
    assert_eq!(token_capacity(384), 221);
    assert_eq!(token_capacity(512), 349);
}
