//! Harness of the `handshake_client` fuzz target: the client's reading of
//! the server's answer (`ClientHandshake::finish`), which a man in the
//! middle, or a broken server, controls.
//!
//! The client is deterministic (its randomness is scripted), so the harness
//! knows the key the answer is sealed under, as `docs/auth.md` derives it:
//! HKDF-SHA256(R, SHA-256(hello), "bubble/v1 answer"). The first byte picks
//! whether the rest is the answer as sent (bit 0 clear: random bytes never
//! authenticate, so this is the outer layer) or the answer's plaintext,
//! which the harness seals as a server would (bit 0 set: the parser behind
//! the AEAD, the server's point, the wrapped key and the ticket).
//!
//! Shared, through `#[path]`, by `fuzz/fuzz_targets/handshake_client.rs` and
//! the replay of `fuzz/regressions/handshake_client/` in bubble-proto's tests.

use std::sync::OnceLock;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use bubble_proto::secure::{
    ClientConfig, ClientHandshake, ClientMeta, OsRandom, Pending, ScriptedRandom, ServerConfig,
    ServerKey, ServerKeyRing, SessionGrant, TicketKey, TicketKeys, server_receive,
};
use bubble_proto::{Command, Frame};
use sha2::{Digest, Sha256};

const KEY_PEM: &str = include_str!("../../bubble-proto/tests/fixtures/server_key.pem");
const NOW_MS: u64 = 1_767_225_600_000;

/// The client's scripted draws: R, its ephemeral P-256 scalar, the OAEP seed.
const RANDOM_KEY: [u8; 32] = [0x5a; 32];
const SCALAR: [u8; 32] = [0x17; 32];
const OAEP_SEED: [u8; 32] = [0x33; 32];

fn server() -> &'static ServerConfig {
    static CONFIG: OnceLock<ServerConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let key = ServerKey::from_pkcs8_pem(KEY_PEM).expect("fixture key");
        ServerConfig::new(ServerKeyRing::new(key))
            .with_tickets(TicketKeys::new(TicketKey::from_bytes([7u8; 32])))
    })
}

fn client_config() -> &'static ClientConfig {
    static CONFIG: OnceLock<ClientConfig> = OnceLock::new();
    CONFIG.get_or_init(|| ClientConfig {
        server_key: server().keys.current().pin(),
        meta: ClientMeta {
            app_id: "demo".into(),
            device_id: "phone-1".into(),
            platform: "ios".into(),
            client_version: "1.0.0".into(),
        },
    })
}

/// The same client every time: the same hello, the same answer key.
fn client() -> (ClientHandshake, Vec<u8>) {
    let mut rng = ScriptedRandom::new([RANDOM_KEY, SCALAR, OAEP_SEED]);
    ClientHandshake::start(client_config(), "token-of-alice", &mut rng).expect("hello builds")
}

/// The key of the answer to `hello`, derived as the spec says.
fn answer_key(hello: &[u8]) -> [u8; 32] {
    let transcript: [u8; 32] = Sha256::digest(hello).into();
    let mut key = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(Some(&transcript), &RANDOM_KEY)
        .expand(b"bubble/v1 answer", &mut key)
        .expect("32 bytes is a valid HKDF length");
    key
}

fn gcm(key: &[u8; 32]) -> Aes256Gcm {
    Aes256Gcm::new(key.into())
}

/// Runs one input; panics if the client panics or takes a forged answer.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (handshake, hello) = client();
    let answer = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let aad = [1u8]; // the handshake version, the answer's first byte
        let sealed = gcm(&answer_key(&hello))
            .encrypt(
                &Nonce::from([0u8; 12]),
                Payload {
                    msg: rest,
                    aad: &aad,
                },
            )
            .expect("AES-GCM seals a small message");
        [&aad[..], &sealed].concat()
    };
    if let Ok(mut session) = handshake.finish(&answer) {
        // Only an answer sealed under this hello's key gets here.
        assert!(
            mode & 1 == 1 || answer_opens(&hello, &answer),
            "the client took an answer not sealed under its answer key"
        );
        let record = session
            .channel
            .seal(&Frame::new(Command::Ping, 1, Vec::new()))
            .expect("an established session seals");
        assert!(record.body.len() == 16, "an empty body seals to its tag");
    }
}

fn answer_opens(hello: &[u8], answer: &[u8]) -> bool {
    answer.split_first().is_some_and(|(_, sealed)| {
        gcm(&answer_key(hello))
            .decrypt(
                &Nonce::from([0u8; 12]),
                Payload {
                    msg: sealed,
                    aad: &[1],
                },
            )
            .is_ok()
    })
}

/// The real server's answer to the harness's client: as sent, and as its
/// plaintext (which the harness seals again), so the fuzzer starts from an
/// answer the client accepts.
pub fn seeds() -> Vec<Vec<u8>> {
    let (_, hello) = client();
    let Ok(Pending::Hello(p)) = server_receive(
        server(),
        &Frame::new(Command::HandshakeHello, 1, hello.clone()),
        NOW_MS,
    ) else {
        panic!("the harness's hello opens");
    };
    let grant = SessionGrant {
        user: "alice".into(),
        identity_expires_at_ms: NOW_MS + 86_400_000,
    };
    let answer = p
        .accept(server(), grant, NOW_MS, &mut OsRandom)
        .expect("the server answers")
        .answer;
    let inner = gcm(&answer_key(&hello))
        .decrypt(
            &Nonce::from([0u8; 12]),
            Payload {
                msg: &answer[1..],
                aad: &[1],
            },
        )
        .expect("the server sealed its answer under the key the spec derives");
    vec![
        [&[0u8][..], &answer].concat(),
        [&[1u8][..], &inner].concat(),
    ]
}
