//! Arbitrary bytes as a client's first frame body: the server's hello and
//! resume-hello parsers must refuse them without panicking. The first byte
//! picks which parser; the key is the test fixture.
#![no_main]

use std::sync::OnceLock;

use bubble_proto::secure::{
    ServerConfig, ServerKey, ServerKeyRing, TicketKey, TicketKeys, server_receive,
};
use bubble_proto::{Command, Frame};
use libfuzzer_sys::fuzz_target;

const KEY_PEM: &str = include_str!("../../bubble-proto/tests/fixtures/server_key.pem");

fn config() -> &'static ServerConfig {
    static CONFIG: OnceLock<ServerConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let key = ServerKey::from_pkcs8_pem(KEY_PEM).expect("fixture key");
        ServerConfig::new(ServerKeyRing::new(key))
            .with_tickets(TicketKeys::new(TicketKey::from_bytes([7u8; 32])))
    })
}

fuzz_target!(|data: &[u8]| {
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
        // Steer half the hellos past the key lookup: the fixture's key id and
        // RSA length, so the RSA and AEAD paths get fuzzed too.
        let key_id = config().keys.current().key_id();
        body[0] = 1;
        body[1..9].copy_from_slice(&key_id);
        body[9..11].copy_from_slice(&384u16.to_be_bytes());
    }
    let frame = Frame::new(command, 1, body);
    // Random bytes never form a valid hello (that needs the fixture key's
    // public half and a valid AEAD tag).
    let _ = server_receive(config(), &frame, 1_767_225_600_000);
});
