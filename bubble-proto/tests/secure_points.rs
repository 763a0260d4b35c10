//! The peers' ephemeral P-256 keys: only valid, uncompressed points are
//! accepted, in a hello, a resume hello and an answer; and a server key of
//! 2048 bits (the smallest the spec allows) carries the tokens it promises.
//!
//! Bad points sit inside authenticated bytes, so each test builds its
//! message by hand from the description in `docs/auth.md`, with a control
//! case proving that the same construction with a good point is accepted.

mod secure_support;

use std::convert::Infallible;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use bubble_proto::secure::keys::token_capacity;
use bubble_proto::secure::{
    ClientConfig, ClientHandshake, OsRandom, Pending, ResumeTicket, ScriptedRandom, ServerConfig,
    ServerKey, ServerKeyRing, server_receive,
};
use p256::elliptic_curve::sec1::ToSec1Point;
use rand_core::{TryCryptoRng, TryRng};
use rsa::pkcs8::DecodePublicKey;
use secure_support::*;
use sha2::{Digest, Sha256};

const KEY_2048_PEM: &str = include_str!("fixtures/server_key_2048.pem");

struct OsRng;

impl TryRng for OsRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        getrandom::fill(&mut b).unwrap();
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).unwrap();
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        getrandom::fill(dst).unwrap();
        Ok(())
    }
}

impl TryCryptoRng for OsRng {}

fn seal(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Vec<u8> {
    Aes256Gcm::new(key.into())
        .encrypt(&Nonce::from([0u8; 12]), Payload { msg: plain, aad })
        .unwrap()
}

/// A valid uncompressed point (a random key's public half).
fn good_point() -> Vec<u8> {
    let secret = p256::SecretKey::from_slice(&[0x42; 32]).unwrap();
    secret.public_key().to_sec1_point(false).as_bytes().to_vec()
}

/// `04 || x || y` with a point that is not on the curve.
fn off_curve_point() -> Vec<u8> {
    let mut p = good_point();
    p[64] ^= 1;
    p
}

/// The good point in SEC1's hybrid form (`06`/`07` prefix, 65 bytes too).
fn hybrid_point() -> Vec<u8> {
    let mut p = good_point();
    p[0] = 0x06 | (p[64] & 1);
    p
}

/// The good point's x with a compressed prefix, padded to 65 bytes.
fn compressed_prefix_point() -> Vec<u8> {
    let mut p = good_point();
    p[0] = 0x02 | (p[64] & 1);
    p
}

/// A full hello to the fixture key carrying `point` as the client's key.
fn hello_with_point(point: &[u8]) -> Vec<u8> {
    let key = server_key();
    let public = rsa::PublicKey::from_public_key_pem(&key.public_pem()).unwrap();
    let r = [0x11u8; 32];
    let mut block = r.to_vec();
    block.extend_from_slice(point);
    block.extend_from_slice(TOKEN.as_bytes());
    let rsa_block = public
        .oaep_encrypt_with_rng::<Sha256, _>(&mut OsRng, &block)
        .unwrap();
    let mut body = vec![1];
    body.extend_from_slice(&key.key_id());
    body.extend_from_slice(&(rsa_block.len() as u16).to_be_bytes());
    body.extend_from_slice(&rsa_block);
    let mut meta = key.key_id().to_vec();
    meta.extend_from_slice(&meta_bytes());
    let sealed = seal(&hkdf(&r, &[], "bubble/v1 hello"), &body, &meta);
    body.extend_from_slice(&sealed);
    body
}

/// A resume hello for `ticket` carrying `point` as the client's key.
fn resume_hello_with_point(ticket: &ResumeTicket, point: &[u8]) -> Vec<u8> {
    // `to_bytes` is `u16 len || ticket || secret (32) || lifetime (4)`.
    let stored = ticket.to_bytes();
    let secret = &stored[stored.len() - 36..stored.len() - 4];
    let nonce = [0x88u8; 32];
    let t = ticket.ticket();
    let mut body = vec![1];
    body.extend_from_slice(&(t.len() as u16).to_be_bytes());
    body.extend_from_slice(t);
    body.extend_from_slice(&nonce);
    body.extend_from_slice(point);
    let sealed = seal(
        &hkdf(secret, &nonce, "bubble/v1 resume hello"),
        &body,
        &meta_bytes(),
    );
    body.extend_from_slice(&sealed);
    body
}

fn server_takes_hello(body: Vec<u8>) -> bool {
    server_receive(&server_config(), &hello_frame(body), NOW_MS).is_ok()
}

#[test]
fn hello_with_a_valid_point_built_by_hand_is_accepted() {
    assert!(server_takes_hello(hello_with_point(&good_point())));
}

#[test]
fn hello_with_a_point_off_the_curve_is_refused() {
    assert!(!server_takes_hello(hello_with_point(&off_curve_point())));
}

#[test]
fn hello_with_a_hybrid_point_is_refused() {
    assert!(!server_takes_hello(hello_with_point(&hybrid_point())));
}

#[test]
fn hello_with_a_compressed_point_prefix_is_refused() {
    assert!(!server_takes_hello(hello_with_point(
        &compressed_prefix_point()
    )));
}

#[test]
fn resume_hello_with_a_point_off_the_curve_is_refused() {
    let config = server_config();
    let (session, _) = full_handshake(&config);
    let ticket = session.ticket.unwrap();
    let control = resume_hello_with_point(&ticket, &good_point());
    assert!(server_receive(&config, &resume_frame(control), NOW_MS).is_ok());
    for bad in [off_curve_point(), hybrid_point(), compressed_prefix_point()] {
        let body = resume_hello_with_point(&ticket, &bad);
        assert!(server_receive(&config, &resume_frame(body), NOW_MS).is_err());
    }
}

#[test]
fn client_refuses_an_answer_whose_server_point_is_off_the_curve() {
    // The client's randomness is scripted so that the test knows R and can
    // seal an answer the client opens.
    let r = [0x11u8; 32];
    let answer_for = |point: &[u8]| {
        let mut rng = ScriptedRandom::new([r.to_vec(), vec![0x22; 32], vec![0x33; 32]]);
        let (client, hello) = ClientHandshake::start(&client_config(), TOKEN, &mut rng).unwrap();
        let transcript: [u8; 32] = Sha256::digest(&hello).into();
        let mut inner = point.to_vec();
        inner.extend_from_slice(&[0u8; 48]); // a wrapped key that cannot open
        inner.extend_from_slice(&0u32.to_be_bytes());
        inner.extend_from_slice(&0u16.to_be_bytes());
        let mut answer = vec![1];
        answer.extend_from_slice(&seal(
            &hkdf(&r, &transcript, "bubble/v1 answer"),
            &[1],
            &inner,
        ));
        client.finish(&answer)
    };
    // With a good point the client gets as far as unwrapping the session key.
    assert_eq!(
        answer_for(&good_point()).unwrap_err().reason(),
        "decryption failed"
    );
    for bad in [off_curve_point(), hybrid_point(), compressed_prefix_point()] {
        assert_eq!(
            answer_for(&bad).unwrap_err().reason(),
            "malformed handshake message"
        );
    }
}

#[test]
fn rsa_2048_key_carries_a_93_byte_token() {
    let key = ServerKey::from_pkcs8_pem(KEY_2048_PEM).unwrap();
    assert_eq!(key.modulus_bytes(), 256);
    assert_eq!(token_capacity(key.modulus_bytes()), 93);
    let client = ClientConfig {
        server_key: key.pin(),
        meta: meta(),
    };
    let config = ServerConfig::new(ServerKeyRing::new(key));
    let token = "t".repeat(93);
    let (hs, hello) = ClientHandshake::start(&client, &token, &mut OsRandom).unwrap();
    let Pending::Hello(pending) = server_receive(&config, &hello_frame(hello), NOW_MS).unwrap()
    else {
        panic!("a hello")
    };
    assert_eq!(pending.token(), token);
    let established = pending
        .accept(&config, grant(), NOW_MS, &mut OsRandom)
        .unwrap();
    hs.finish(&established.answer).unwrap();
    assert!(ClientHandshake::start(&client, &"t".repeat(94), &mut OsRandom).is_err());
}
