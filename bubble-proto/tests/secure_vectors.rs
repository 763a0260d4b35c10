//! Fixed test vectors: every step of a full handshake, a record each way,
//! and a resumption, from fixed inputs (the fixture RSA key, scripted
//! randomness, a fixed clock). Each intermediate value is recomputed here
//! straight from the description in `docs/auth.md`, with the primitives
//! alone, and compared with what the state machines produced; the values
//! are pinned in `tests/fixtures/secure_vectors.txt` for implementations in
//! other languages. Regenerate (only when the protocol changes on purpose)
//! with `BUBBLE_WRITE_VECTORS=1 cargo test -p bubble-proto --test secure_vectors`.

mod secure_support;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use bubble_proto::secure::{
    ClientHandshake, ClientSession, Established, Pending, ScriptedRandom, TicketClaim,
    server_receive,
};
use bubble_proto::{Command, Frame};
use p256::SecretKey;
use p256::elliptic_curve::sec1::ToSec1Point;
use rsa::pkcs8::DecodePrivateKey;
use secure_support::*;
use sha2::{Digest, Sha256};

const VECTORS: &str = "tests/fixtures/secure_vectors.txt";

struct Vectors(Vec<(&'static str, Vec<u8>)>);

impl Vectors {
    fn put(&mut self, name: &'static str, value: impl AsRef<[u8]>) {
        self.0.push((name, value.as_ref().to_vec()));
    }

    fn render(&self) -> String {
        let mut out =
            String::from("# bubble secure channel v1 test vectors (see docs/auth.md). name: hex\n");
        for (name, value) in &self.0 {
            out.push_str(&format!("{name}: {}\n", hex::encode(value)));
        }
        out
    }
}

fn gcm_open(key: &[u8; 32], nonce: [u8; 12], aad: &[u8], sealed: &[u8]) -> Vec<u8> {
    Aes256Gcm::new(key.into())
        .decrypt(&Nonce::from(nonce), Payload { msg: sealed, aad })
        .expect("opens with the key the spec derives")
}

fn gcm_seal(key: &[u8; 32], nonce: [u8; 12], aad: &[u8], plain: &[u8]) -> Vec<u8> {
    Aes256Gcm::new(key.into())
        .encrypt(&Nonce::from(nonce), Payload { msg: plain, aad })
        .unwrap()
}

fn point(scalar: [u8; 32]) -> Vec<u8> {
    let sk = SecretKey::from_slice(&scalar).unwrap();
    sk.public_key().to_sec1_point(false).as_bytes().to_vec()
}

fn ecdh(scalar: [u8; 32], peer: &[u8]) -> Vec<u8> {
    let sk = SecretKey::from_slice(&scalar).unwrap();
    let pk = p256::PublicKey::from_sec1_bytes(peer).unwrap();
    sk.diffie_hellman(&pk).raw_secret_bytes().to_vec()
}

fn record_nonce(counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    n
}

// The scripted randomness, in the order the protocol draws it.
const R: [u8; 32] = [0x11; 32];
const CLIENT_SCALAR: [u8; 32] = [0x22; 32];
const OAEP_SEED: [u8; 32] = [0x33; 32];
const SERVER_SCALAR: [u8; 32] = [0x44; 32];
const SESSION_KEY: [u8; 32] = [0x55; 32];
const TICKET_ID: [u8; 16] = [0x66; 16];
const TICKET_NONCE: [u8; 12] = [0x77; 12];
const RESUME_NONCE: [u8; 32] = [0x88; 32];
const RESUME_CLIENT_SCALAR: [u8; 32] = [0x99; 32];
const RESUME_SERVER_SCALAR: [u8; 32] = [0xaa; 32];
const RESUME_SESSION_KEY: [u8; 32] = [0xbb; 32];
const RESUME_TICKET_ID: [u8; 16] = [0xcc; 16];
const RESUME_TICKET_NONCE: [u8; 12] = [0xdd; 12];

fn run_full(v: &mut Vectors) -> (ClientSession, Established) {
    let config = server_config();
    let mut client_rng =
        ScriptedRandom::new([R.to_vec(), CLIENT_SCALAR.to_vec(), OAEP_SEED.to_vec()]);
    let (client, hello) = ClientHandshake::start(&client_config(), TOKEN, &mut client_rng).unwrap();
    assert_eq!(client_rng.remaining(), 0);

    // Hello: 01 || key id || u16 len || RSA-OAEP(R || C || token) || GCM(HKDF(R, "hello"), meta).
    let key = server_key();
    let client_public = point(CLIENT_SCALAR);
    assert_eq!(hello[0], 1);
    assert_eq!(hello[1..9], key.key_id());
    assert_eq!(u16::from_be_bytes([hello[9], hello[10]]), 384);
    let rsa_block = &hello[11..11 + 384];
    let private = rsa::PrivateKey::from_pkcs8_pem(SERVER_KEY_PEM).unwrap();
    let rsa_plain = private.oaep_decrypt::<Sha256>(rsa_block).unwrap();
    let mut expected_plain = R.to_vec();
    expected_plain.extend_from_slice(&client_public);
    expected_plain.extend_from_slice(TOKEN.as_bytes());
    assert_eq!(rsa_plain, expected_plain);
    let hello_key = hkdf(&R, &[], "bubble/v1 hello");
    let mut meta = key.key_id().to_vec();
    meta.extend_from_slice(&meta_bytes());
    assert_eq!(
        gcm_open(&hello_key, [0; 12], &hello[..11 + 384], &hello[11 + 384..]),
        meta
    );
    let transcript: [u8; 32] = Sha256::digest(&hello).into();

    v.put("server_key_id", key.key_id());
    v.put("client_random_key", R);
    v.put("client_ecdh_scalar", CLIENT_SCALAR);
    v.put("client_ecdh_public", &client_public);
    v.put("oaep_seed", OAEP_SEED);
    v.put("token", TOKEN);
    v.put("rsa_plaintext", &rsa_plain);
    v.put("hello_key", hello_key);
    v.put("hello_meta_plaintext", &meta);
    v.put("hello", &hello);
    v.put("transcript", transcript);

    // Server: verify the token (accepted), then answer.
    let pending = match server_receive(&config, &hello_frame(hello.clone()), NOW_MS).unwrap() {
        Pending::Hello(p) => p,
        Pending::Resume(_) => unreachable!(),
    };
    let mut server_rng = ScriptedRandom::new([
        SERVER_SCALAR.to_vec(),
        SESSION_KEY.to_vec(),
        TICKET_ID.to_vec(),
        TICKET_NONCE.to_vec(),
    ]);
    let established = pending
        .accept(&config, grant(), NOW_MS, &mut server_rng)
        .unwrap();
    assert_eq!(server_rng.remaining(), 0);
    let answer = &established.answer;

    // Answer: 01 || GCM(HKDF(R, th, "answer"), aad 01, S || wrap || lifetime || u16 len || ticket).
    let answer_key = hkdf(&R, &transcript, "bubble/v1 answer");
    let inner = gcm_open(&answer_key, [0; 12], &[1], &answer[1..]);
    let server_public = point(SERVER_SCALAR);
    assert_eq!(inner[..65], server_public[..]);
    let shared = ecdh(CLIENT_SCALAR, &server_public);
    assert_eq!(shared, ecdh(SERVER_SCALAR, &client_public));
    let wrap_key = hkdf(&shared, &transcript, "bubble/v1 wrap");
    let wrapped = &inner[65..65 + 48];
    assert_eq!(
        gcm_open(&wrap_key, [0; 12], &server_public, wrapped),
        SESSION_KEY
    );
    let lifetime = u32::from_be_bytes(inner[113..117].try_into().unwrap());
    assert_eq!(lifetime, 3600);
    let ticket_len = u16::from_be_bytes([inner[117], inner[118]]) as usize;
    let ticket = &inner[119..];
    assert_eq!(ticket.len(), ticket_len);

    v.put("server_ecdh_scalar", SERVER_SCALAR);
    v.put("server_ecdh_public", &server_public);
    v.put("ecdh_shared_x", &shared);
    v.put("wrap_key", wrap_key);
    v.put("session_key", SESSION_KEY);
    v.put("wrapped_session_key", wrapped);
    v.put("answer_key", answer_key);
    v.put("answer_plaintext", &inner);
    v.put("answer", answer);

    // Keys from the session key.
    let c2s = hkdf(&SESSION_KEY, &transcript, "bubble/v1 c2s");
    let s2c = hkdf(&SESSION_KEY, &transcript, "bubble/v1 s2c");
    let resumption = hkdf(&SESSION_KEY, &transcript, "bubble/v1 resumption");
    v.put("record_key_c2s", c2s);
    v.put("record_key_s2c", s2c);
    v.put("resumption_secret", resumption);

    // The ticket (server-private, pinned so servers agree across languages).
    let ticket_key = [7u8; 32];
    let mut id_input = b"bubble/v1 ticket key id".to_vec();
    id_input.extend_from_slice(&ticket_key);
    let ticket_key_id = &Sha256::digest(&id_input)[..8];
    assert_eq!(ticket[0], 1);
    assert_eq!(&ticket[1..9], ticket_key_id);
    assert_eq!(ticket[9..21], TICKET_NONCE);
    let ticket_plain = gcm_open(&ticket_key, TICKET_NONCE, &ticket[..21], &ticket[21..]);
    let mut expected_ticket = TICKET_ID.to_vec();
    expected_ticket.extend_from_slice(&NOW_MS.to_be_bytes());
    expected_ticket.extend_from_slice(&(NOW_MS + 3_600_000).to_be_bytes());
    expected_ticket.extend_from_slice(&TOKEN_EXPIRES_MS.to_be_bytes());
    expected_ticket.extend_from_slice(&resumption);
    for s in ["demo", "alice", "phone-1"] {
        str8(&mut expected_ticket, s);
    }
    assert_eq!(ticket_plain, expected_ticket);
    v.put("ticket_key", ticket_key);
    v.put("ticket_plaintext", &ticket_plain);
    v.put("ticket", ticket);

    let session = client.finish(answer).unwrap();
    (session, established)
}

fn run_records(v: &mut Vectors, client: &mut ClientSession, server: &mut Established) {
    let ping = Frame::new(Command::Ping, 1, &b"ping"[..]);
    let sealed = client.channel.seal(&ping).unwrap();
    let header = sealed.header().to_bytes();
    let transcript: [u8; 32] =
        Sha256::digest(v.0.iter().find(|(n, _)| *n == "hello").unwrap().1.clone()).into();
    let c2s = hkdf(&SESSION_KEY, &transcript, "bubble/v1 c2s");
    assert_eq!(
        gcm_seal(&c2s, record_nonce(0), &header, b"ping"),
        sealed.body.to_vec()
    );
    assert_eq!(server.channel.open(&sealed).unwrap(), ping);
    v.put("record_c2s_0_header", header);
    v.put("record_c2s_0_plaintext", b"ping");
    v.put("record_c2s_0_body", &sealed.body);

    let pong = Frame::new(Command::Pong, 1, &b"pong"[..]).into_response();
    let _first = server.channel.seal(&pong).unwrap();
    let second = server.channel.seal(&pong).unwrap(); // counter 1
    let s2c = hkdf(&SESSION_KEY, &transcript, "bubble/v1 s2c");
    let header = second.header().to_bytes();
    assert_eq!(
        gcm_seal(&s2c, record_nonce(1), &header, b"pong"),
        second.body.to_vec()
    );
    v.put("record_s2c_1_header", header);
    v.put("record_s2c_1_plaintext", b"pong");
    v.put("record_s2c_1_body", &second.body);
}

fn run_resume(v: &mut Vectors, client: &ClientSession) {
    let config = server_config();
    let ticket = client.ticket.as_ref().unwrap();
    let resumption =
        v.0.iter()
            .find(|(n, _)| *n == "resumption_secret")
            .unwrap()
            .1
            .clone();
    let mut client_rng =
        ScriptedRandom::new([RESUME_NONCE.to_vec(), RESUME_CLIENT_SCALAR.to_vec()]);
    let (resuming, hello) = ClientHandshake::resume(&meta(), ticket, &mut client_rng).unwrap();

    // 01 || u16 len || ticket || nonce || C' || GCM(HKDF(rs, nonce, "resume hello"), aad = all before, meta).
    let t = ticket.ticket();
    let mut expected = vec![1];
    expected.extend_from_slice(&(t.len() as u16).to_be_bytes());
    expected.extend_from_slice(t);
    expected.extend_from_slice(&RESUME_NONCE);
    expected.extend_from_slice(&point(RESUME_CLIENT_SCALAR));
    assert_eq!(hello[..expected.len()], expected[..]);
    let resume_hello_key = hkdf(&resumption, &RESUME_NONCE, "bubble/v1 resume hello");
    assert_eq!(
        gcm_open(
            &resume_hello_key,
            [0; 12],
            &expected,
            &hello[expected.len()..]
        ),
        meta_bytes()
    );
    let transcript: [u8; 32] = Sha256::digest(&hello).into();
    v.put("resume_nonce", RESUME_NONCE);
    v.put("resume_client_ecdh_scalar", RESUME_CLIENT_SCALAR);
    v.put("resume_hello_key", resume_hello_key);
    v.put("resume_hello", &hello);
    v.put("resume_transcript", transcript);

    let pending = match server_receive(&config, &resume_frame(hello), NOW_MS + 60_000).unwrap() {
        Pending::Resume(p) => p,
        Pending::Hello(_) => unreachable!(),
    };
    assert_eq!(pending.ticket_id(), TICKET_ID);
    let mut server_rng = ScriptedRandom::new([
        RESUME_SERVER_SCALAR.to_vec(),
        RESUME_SESSION_KEY.to_vec(),
        RESUME_TICKET_ID.to_vec(),
        RESUME_TICKET_NONCE.to_vec(),
    ]);
    let established = pending
        .accept(
            &config,
            TicketClaim::claimed_elsewhere(TICKET_ID),
            NOW_MS + 60_000,
            &mut server_rng,
        )
        .unwrap();
    let answer_key = hkdf(&resumption, &transcript, "bubble/v1 resume answer");
    let inner = gcm_open(&answer_key, [0; 12], &[1], &established.answer[1..]);
    let server_public = point(RESUME_SERVER_SCALAR);
    assert_eq!(inner[..65], server_public[..]);
    let shared = ecdh(RESUME_CLIENT_SCALAR, &server_public);
    let wrap_key = hkdf(&shared, &transcript, "bubble/v1 wrap");
    assert_eq!(
        gcm_open(&wrap_key, [0; 12], &server_public, &inner[65..113]),
        RESUME_SESSION_KEY
    );
    v.put("resume_server_ecdh_scalar", RESUME_SERVER_SCALAR);
    v.put("resume_session_key", RESUME_SESSION_KEY);
    v.put("resume_answer_key", answer_key);
    v.put("resume_answer", &established.answer);
    v.put(
        "resume_record_key_c2s",
        hkdf(&RESUME_SESSION_KEY, &transcript, "bubble/v1 c2s"),
    );

    let mut session = resuming.finish(&established.answer).unwrap();
    let mut server = established;
    let ping = Frame::new(Command::Ping, 2, &b"resumed"[..]);
    let sealed = session.channel.seal(&ping).unwrap();
    assert_eq!(server.channel.open(&sealed).unwrap(), ping);
}

fn all_vectors() -> Vectors {
    let mut v = Vectors(Vec::new());
    let (mut client, mut server) = run_full(&mut v);
    run_records(&mut v, &mut client, &mut server);
    run_resume(&mut v, &client);
    v
}

#[test]
fn handshake_records_and_resumption_match_the_pinned_vectors() {
    let rendered = all_vectors().render();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(VECTORS);
    if std::env::var_os("BUBBLE_WRITE_VECTORS").is_some() {
        std::fs::write(&path, &rendered).unwrap();
    }
    let pinned = std::fs::read_to_string(&path).expect("vectors file exists");
    for (want, got) in pinned.lines().zip(rendered.lines()) {
        assert_eq!(want, got);
    }
    assert_eq!(pinned.lines().count(), rendered.lines().count());
}

#[test]
fn same_inputs_give_the_same_bytes() {
    assert_eq!(all_vectors().render(), all_vectors().render());
}
