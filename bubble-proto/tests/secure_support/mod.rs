//! Shared fixtures of the secure-channel tests: the fixed server keys and
//! helpers that run a handshake in memory.
#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::Duration;

use bubble_proto::secure::{
    ClientConfig, ClientHandshake, ClientMeta, ClientSession, Established, OsRandom, Pending,
    ResumeTicket, ServerConfig, ServerKey, ServerKeyRing, SessionGrant, TicketKey, TicketKeys,
    UsedTickets, server_receive,
};
use bubble_proto::{Command, Frame};

/// The fixed test key (RSA-3072, PKCS#8 PEM).
pub const SERVER_KEY_PEM: &str = include_str!("../fixtures/server_key.pem");
/// A second, unrelated key: "the wrong server".
pub const OTHER_KEY_PEM: &str = include_str!("../fixtures/other_server_key.pem");

/// 2026-01-01T00:00:00Z in ms: the tests' "now".
pub const NOW_MS: u64 = 1_767_225_600_000;
/// When test tokens expire: a day later.
pub const TOKEN_EXPIRES_MS: u64 = NOW_MS + 86_400_000;

pub fn server_key() -> ServerKey {
    ServerKey::from_pkcs8_pem(SERVER_KEY_PEM).expect("fixture key parses")
}

pub fn other_key() -> ServerKey {
    ServerKey::from_pkcs8_pem(OTHER_KEY_PEM).expect("fixture key parses")
}

/// Parsing a PEM costs a few ms in debug builds; share one ring per test binary.
pub fn ring() -> ServerKeyRing {
    static RING: OnceLock<ServerKeyRing> = OnceLock::new();
    RING.get_or_init(|| ServerKeyRing::new(server_key()))
        .clone()
}

pub fn ticket_keys() -> TicketKeys {
    TicketKeys::new(TicketKey::from_bytes([7u8; 32]))
}

pub fn server_config() -> ServerConfig {
    ServerConfig::new(ring()).with_tickets(ticket_keys())
}

pub fn meta() -> ClientMeta {
    ClientMeta {
        app_id: "demo".into(),
        device_id: "phone-1".into(),
        platform: "ios".into(),
        client_version: "1.0.0".into(),
    }
}

pub fn client_config() -> ClientConfig {
    ClientConfig {
        server_key: ring().current().pin(),
        meta: meta(),
    }
}

pub const TOKEN: &str = "token-of-alice";

pub fn grant() -> SessionGrant {
    SessionGrant {
        user: "alice".into(),
        identity_expires_at_ms: TOKEN_EXPIRES_MS,
    }
}

/// HKDF-SHA256 to 32 bytes, an empty salt meaning none (as the handshake
/// derives its keys), computed independently of the crate.
pub fn hkdf(ikm: &[u8], salt: &[u8], info: &str) -> [u8; 32] {
    let salt = (!salt.is_empty()).then_some(salt);
    let mut okm = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(salt, ikm)
        .expand(info.as_bytes(), &mut okm)
        .unwrap();
    okm
}

/// A length-prefixed string as the handshake's plaintexts carry it.
pub fn str8(out: &mut Vec<u8>, s: &str) {
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// The encoded `meta()` (app, device, platform, client version).
pub fn meta_bytes() -> Vec<u8> {
    let mut m = Vec::new();
    for s in ["demo", "phone-1", "ios", "1.0.0"] {
        str8(&mut m, s);
    }
    m
}

pub fn hello_frame(body: Vec<u8>) -> Frame {
    Frame::new(Command::HandshakeHello, 1, body)
}

pub fn resume_frame(body: Vec<u8>) -> Frame {
    Frame::new(Command::ResumeHello, 1, body)
}

/// Runs a full handshake, accepting any token as alice's.
pub fn full_handshake(config: &ServerConfig) -> (ClientSession, Established) {
    let (client, hello) =
        ClientHandshake::start(&client_config(), TOKEN, &mut OsRandom).expect("hello builds");
    let pending = match server_receive(config, &hello_frame(hello), NOW_MS).expect("hello opens") {
        Pending::Hello(p) => p,
        Pending::Resume(_) => panic!("a hello is not a resume"),
    };
    let established = pending
        .accept(config, grant(), NOW_MS, &mut OsRandom)
        .expect("server accepts");
    let session = client
        .finish(&established.answer)
        .expect("client accepts the answer");
    (session, established)
}

/// Runs a resumption with `ticket` at `now_ms`, claiming in `used`.
pub fn resume(
    config: &ServerConfig,
    used: &UsedTickets,
    ticket: &ResumeTicket,
    now_ms: u64,
) -> Result<(ClientSession, Established), bubble_proto::secure::HandshakeError> {
    let (client, hello) =
        ClientHandshake::resume(&meta(), ticket, &mut OsRandom).expect("resume hello builds");
    let pending = match server_receive(config, &resume_frame(hello), now_ms)? {
        Pending::Resume(p) => p,
        Pending::Hello(_) => panic!("a resume is not a hello"),
    };
    let claim = used.claim(pending.ticket_id(), pending.ticket_expires_at_ms(), now_ms)?;
    let established = pending.accept(config, claim, now_ms, &mut OsRandom)?;
    let session = client.finish(&established.answer)?;
    Ok((session, established))
}

pub fn hour() -> Duration {
    Duration::from_secs(3600)
}
