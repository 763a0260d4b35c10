//! Harness of the `handshake_server` fuzz target: arbitrary bytes as a
//! client's first frame body, into the server's hello and resume-hello
//! parsers. They must refuse without panicking, and whatever they do let
//! through must be a hello the server can answer.
//!
//! The first byte picks the parser (bit 0) and, for hellos, whether to
//! steer the input past the key lookup (bit 1: the fixture key's id and RSA
//! length are written over the first 11 bytes, so the RSA and AEAD paths
//! get fuzzed too).
//!
//! Shared, through `#[path]`, by `fuzz/fuzz_targets/handshake_server.rs` and
//! the replay of `fuzz/regressions/handshake_server/` in bubble-proto's tests.

use std::sync::OnceLock;

use bubble_proto::secure::{
    ClientConfig, ClientHandshake, ClientMeta, OsRandom, Pending, ServerConfig, ServerKey,
    ServerKeyRing, SessionGrant, TicketClaim, TicketKey, TicketKeys, server_receive,
};
use bubble_proto::{Command, Frame};

const KEY_PEM: &str = include_str!("../../bubble-proto/tests/fixtures/server_key.pem");

/// The fuzz runs' "now": 2026-01-01T00:00:00Z, in ms.
const NOW_MS: u64 = 1_767_225_600_000;

fn config() -> &'static ServerConfig {
    static CONFIG: OnceLock<ServerConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let key = ServerKey::from_pkcs8_pem(KEY_PEM).expect("fixture key");
        ServerConfig::new(ServerKeyRing::new(key))
            .with_tickets(TicketKeys::new(TicketKey::from_bytes([7u8; 32])))
    })
}

fn grant() -> SessionGrant {
    SessionGrant {
        user: "alice".into(),
        identity_expires_at_ms: NOW_MS + 86_400_000,
    }
}

/// Runs one input; panics on a violation of the handshake's contract.
pub fn run(data: &[u8]) {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let command = if which & 1 == 0 {
        Command::HandshakeHello
    } else {
        Command::ResumeHello
    };
    let mut body = body.to_vec();
    if which & 2 != 0 && command == Command::HandshakeHello && body.len() >= 11 {
        let key_id = config().keys.current().key_id();
        body[0] = 1;
        body[1..9].copy_from_slice(&key_id);
        body[9..11].copy_from_slice(&384u16.to_be_bytes());
    }
    let frame = Frame::new(command, 1, body);
    // Only a hello sealed to the fixture key (or a ticket sealed under the
    // fixture ticket key) opens: the fuzzer gets there from the seeds.
    match server_receive(config(), &frame, NOW_MS) {
        Err(e) => {
            // The peer sees the same frame whatever failed.
            assert_eq!(
                e.to_frame(1),
                bubble_proto::secure::HandshakeError::timeout().to_frame(1)
            );
        }
        Ok(Pending::Hello(p)) => {
            assert!(!p.token().is_empty(), "a hello opened with an empty token");
            p.accept(config(), grant(), NOW_MS, &mut OsRandom)
                .expect("a hello that opened is answerable");
        }
        Ok(Pending::Resume(p)) => {
            let claim = TicketClaim::claimed_elsewhere(p.ticket_id());
            p.accept(config(), claim, NOW_MS, &mut OsRandom)
                .expect("a resume hello that opened is answerable");
        }
    }
}

/// A real hello and a real resume hello (its ticket from a real handshake).
pub fn seeds() -> Vec<Vec<u8>> {
    let client = ClientConfig {
        server_key: config().keys.current().pin(),
        meta: ClientMeta {
            app_id: "demo".into(),
            device_id: "phone-1".into(),
            platform: "ios".into(),
            client_version: "1.0.0".into(),
        },
    };
    let (handshake, hello) =
        ClientHandshake::start(&client, "token-of-alice", &mut OsRandom).expect("hello builds");
    let Ok(Pending::Hello(p)) = server_receive(
        config(),
        &Frame::new(Command::HandshakeHello, 1, hello.clone()),
        NOW_MS,
    ) else {
        panic!("the seed hello opens");
    };
    let established = p
        .accept(config(), grant(), NOW_MS, &mut OsRandom)
        .expect("the seed hello is answered");
    let session = handshake
        .finish(&established.answer)
        .expect("the client takes the answer");
    let ticket = session.ticket.expect("the fixture server issues tickets");
    let (_, resume) =
        ClientHandshake::resume(&client.meta, &ticket, &mut OsRandom).expect("resume builds");
    vec![
        [&[0u8][..], &hello].concat(),
        [&[1u8][..], &resume].concat(),
    ]
}
