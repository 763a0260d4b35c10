//! The handshake, client <-> server in memory: what it accepts and what it refuses.

mod secure_support;

use std::time::{Duration, Instant};

use bubble_proto::secure::{
    ClientError, ClientHandshake, HANDSHAKE_TIMEOUT, HandshakeError, OsRandom, Pending,
    ServerConfig, ServerKeyRing, UsedTickets, server_receive,
};
use bubble_proto::{Command, Frame, flags, pb};
use secure_support::*;

fn hello() -> (ClientHandshake, Vec<u8>) {
    ClientHandshake::start(&client_config(), TOKEN, &mut OsRandom).unwrap()
}

fn receive_hello(config: &ServerConfig, body: Vec<u8>) -> Result<Pending, HandshakeError> {
    server_receive(config, &hello_frame(body), NOW_MS)
}

fn expect_hello(p: Pending) -> bubble_proto::secure::PendingHello {
    match p {
        Pending::Hello(h) => h,
        Pending::Resume(_) => panic!("expected a hello"),
    }
}

#[test]
fn full_handshake_lets_both_sides_exchange_records() {
    let config = server_config();
    let (mut client, mut server) = full_handshake(&config);

    let request = Frame::new(Command::Ping, 7, &b"ping"[..]);
    let sealed = client.channel.seal(&request).unwrap();
    assert_ne!(sealed.body, request.body);
    assert_eq!(server.channel.open(&sealed).unwrap(), request);

    let answer = Frame::new(Command::Pong, 7, &b"pong"[..]).into_response();
    let sealed = server.channel.seal(&answer).unwrap();
    assert_eq!(client.channel.open(&sealed).unwrap(), answer);
}

#[test]
fn server_sees_the_token_and_metadata_the_client_sent() {
    let config = server_config();
    let (_, body) = hello();
    let pending = expect_hello(receive_hello(&config, body).unwrap());
    assert_eq!(pending.token(), TOKEN);
    assert_eq!(pending.meta(), &meta());
}

#[test]
fn established_session_names_the_granted_user_and_the_clients_device() {
    let (_, server) = full_handshake(&server_config());
    assert_eq!(server.session.user, "alice");
    assert_eq!(server.session.app_id, "demo");
    assert_eq!(server.session.device_id, "phone-1");
    assert_eq!(server.session.platform, "ios");
    assert_eq!(server.session.identity_expires_at_ms, TOKEN_EXPIRES_MS);
    assert!(!server.session.resumed);
}

#[test]
fn answer_frame_replies_to_the_hellos_seq() {
    let (_, server) = full_handshake(&server_config());
    let frame = server.answer_frame(9);
    assert_eq!(frame.command, Command::HandshakeAnswer);
    assert_eq!(frame.seq, 9);
    assert!(frame.is_response());
}

#[test]
fn hello_sealed_to_another_servers_key_is_refused() {
    let config = server_config();
    let wrong = bubble_proto::secure::ClientConfig {
        server_key: other_key().pin(),
        meta: meta(),
    };
    let (_, body) = ClientHandshake::start(&wrong, TOKEN, &mut OsRandom).unwrap();
    assert!(receive_hello(&config, body).is_err());
}

#[test]
fn hello_sealed_to_the_previous_key_is_accepted_during_rotation() {
    let config = ServerConfig::new(ServerKeyRing::with_previous(other_key(), server_key()));
    let (_, body) = hello(); // pinned to the fixture key, now the previous one
    assert!(receive_hello(&config, body).is_ok());
}

#[test]
fn tampered_rsa_block_is_refused() {
    let (_, mut body) = hello();
    body[40] ^= 0x01;
    let err = receive_hello(&server_config(), body).unwrap_err();
    assert_eq!(err.reason(), "decryption failed");
}

#[test]
fn tampered_metadata_ciphertext_is_refused() {
    let (_, mut body) = hello();
    let last = body.len() - 20;
    body[last] ^= 0x01;
    let err = receive_hello(&server_config(), body).unwrap_err();
    assert_eq!(err.reason(), "decryption failed");
}

#[test]
fn rsa_and_metadata_failures_are_indistinguishable_to_the_peer() {
    let (_, mut rsa_bad) = hello();
    rsa_bad[40] ^= 0x01;
    let (_, mut meta_bad) = hello();
    let last = meta_bad.len() - 1;
    meta_bad[last] ^= 0x01;
    let a = receive_hello(&server_config(), rsa_bad).unwrap_err();
    let b = receive_hello(&server_config(), meta_bad).unwrap_err();
    assert_eq!(a, b);
    assert_eq!(a.to_frame(1), b.to_frame(1));
}

#[test]
fn truncated_hello_is_refused_at_every_length() {
    let (_, body) = hello();
    let config = server_config();
    // Every prefix: the header, inside the RSA block, inside the metadata.
    for len in [
        0,
        1,
        5,
        9,
        11,
        12,
        200,
        11 + 384,
        11 + 384 + 10,
        body.len() - 1,
    ] {
        assert!(
            receive_hello(&config, body[..len].to_vec()).is_err(),
            "a hello cut to {len} bytes was accepted"
        );
    }
}

#[test]
fn hello_with_trailing_bytes_is_refused() {
    let (_, mut body) = hello();
    body.push(0);
    assert!(receive_hello(&server_config(), body).is_err());
}

#[test]
fn rejected_token_yields_one_handshake_failed_frame() {
    let (_, body) = hello();
    let pending = expect_hello(receive_hello(&server_config(), body).unwrap());
    let err = pending.reject();
    let frame = err.to_frame(3);
    assert_eq!(frame.command, Command::Error);
    assert_eq!(frame.seq, 3);
    let error: pb::Error = frame.decode_body().unwrap();
    assert_eq!(error.code, pb::ErrorCode::HandshakeFailed as i32);
    assert_eq!(error.message, "handshake failed");
    assert!(!error.retryable);
}

#[test]
fn every_failure_sends_the_same_error_frame() {
    let reasons = [
        HandshakeError::timeout(),
        receive_hello(&server_config(), vec![1, 2, 3]).unwrap_err(),
        expect_hello(receive_hello(&server_config(), hello().1).unwrap()).reject(),
    ];
    for err in &reasons {
        assert_eq!(err.to_frame(5), reasons[0].to_frame(5), "{err:?}");
    }
}

#[test]
fn encrypted_first_frame_is_refused() {
    let (_, body) = hello();
    let mut frame = hello_frame(body);
    frame.flags |= flags::ENCRYPTED;
    assert!(server_receive(&server_config(), &frame, NOW_MS).is_err());
}

#[test]
fn first_frame_that_is_not_a_hello_is_refused() {
    let frame = Frame::new(Command::Ping, 1, &b""[..]);
    assert!(server_receive(&server_config(), &frame, NOW_MS).is_err());
}

#[test]
fn client_refuses_an_answer_not_sealed_under_its_random_key() {
    // A man in the middle without the server's private key cannot read R,
    // so whatever it answers fails to open.
    let config = server_config();
    let (client, _) = hello();
    let (_, other_body) = hello();
    let pending = expect_hello(receive_hello(&config, other_body).unwrap());
    let forged = pending
        .accept(&config, grant(), NOW_MS, &mut OsRandom)
        .unwrap();
    assert!(client.finish(&forged.answer).is_err());
}

#[test]
fn client_refuses_a_tampered_answer() {
    let config = server_config();
    let (client, body) = hello();
    let pending = expect_hello(receive_hello(&config, body).unwrap());
    let mut answer = pending
        .accept(&config, grant(), NOW_MS, &mut OsRandom)
        .unwrap()
        .answer;
    answer[10] ^= 0x80;
    assert!(client.finish(&answer).is_err());
}

#[test]
fn client_refuses_a_truncated_answer() {
    let config = server_config();
    let (client, body) = hello();
    let pending = expect_hello(receive_hello(&config, body).unwrap());
    let answer = pending
        .accept(&config, grant(), NOW_MS, &mut OsRandom)
        .unwrap()
        .answer;
    assert!(client.finish(&answer[..answer.len() - 1]).is_err());
}

#[test]
fn token_longer_than_the_rsa_block_is_refused_by_the_client() {
    let long = "x".repeat(222);
    let err = ClientHandshake::start(&client_config(), &long, &mut OsRandom).unwrap_err();
    assert_eq!(
        err,
        ClientError::TokenTooLong {
            len: 222,
            capacity: 221
        }
    );
}

#[test]
fn token_filling_the_rsa_block_exactly_is_delivered() {
    let token = "y".repeat(221);
    let (_, body) = ClientHandshake::start(&client_config(), &token, &mut OsRandom).unwrap();
    let pending = expect_hello(receive_hello(&server_config(), body).unwrap());
    assert_eq!(pending.token(), token);
}

#[test]
fn empty_token_is_refused_by_the_client() {
    let err = ClientHandshake::start(&client_config(), "", &mut OsRandom).unwrap_err();
    assert_eq!(err, ClientError::EmptyToken);
}

#[test]
fn handshake_deadline_is_the_configured_timeout_after_accept() {
    let config = server_config();
    let t0 = Instant::now();
    assert_eq!(config.deadline(t0), t0 + HANDSHAKE_TIMEOUT);
    let short = config.with_handshake_timeout(Duration::from_secs(2));
    assert_eq!(short.deadline(t0), t0 + Duration::from_secs(2));
}

#[test]
fn server_without_ticket_keys_issues_no_ticket() {
    let config = ServerConfig::new(ring());
    let (client, _) = full_handshake(&config);
    assert!(client.ticket.is_none());
}

// ------------------------------------------------------------- resumption

#[test]
fn resumption_with_a_fresh_ticket_establishes_a_session() {
    let config = server_config();
    let used = UsedTickets::default();
    let (first, _) = full_handshake(&config);
    let ticket = first.ticket.expect("the server issues a ticket");
    let (mut client, mut server) = resume(&config, &used, &ticket, NOW_MS + 1000).unwrap();
    assert!(server.session.resumed);
    assert_eq!(server.session.user, "alice");
    assert_eq!(server.session.device_id, "phone-1");

    let frame = Frame::new(Command::Ping, 1, &b"again"[..]);
    let sealed = client.channel.seal(&frame).unwrap();
    assert_eq!(server.channel.open(&sealed).unwrap(), frame);
}

#[test]
fn resumed_session_gets_a_new_ticket_that_resumes_again() {
    let config = server_config();
    let used = UsedTickets::default();
    let (first, _) = full_handshake(&config);
    let (second, _) = resume(&config, &used, &first.ticket.unwrap(), NOW_MS + 1000).unwrap();
    let next = second.ticket.expect("a resumed session gets a ticket too");
    assert!(resume(&config, &used, &next, NOW_MS + 2000).is_ok());
}

#[test]
fn reused_resumption_ticket_is_refused() {
    let config = server_config();
    let used = UsedTickets::default();
    let (first, _) = full_handshake(&config);
    let ticket = first.ticket.unwrap();
    assert!(resume(&config, &used, &ticket, NOW_MS + 1000).is_ok());
    let err = resume(&config, &used, &ticket, NOW_MS + 2000).unwrap_err();
    assert_eq!(err.reason(), "resumption ticket already used");
}

#[test]
fn replayed_resume_hello_is_refused() {
    let config = server_config();
    let used = UsedTickets::default();
    let (first, _) = full_handshake(&config);
    let (_, body) =
        ClientHandshake::resume(&meta(), first.ticket.as_ref().unwrap(), &mut OsRandom).unwrap();
    for attempt in 0..2 {
        let pending = match server_receive(&config, &resume_frame(body.clone()), NOW_MS).unwrap() {
            Pending::Resume(p) => p,
            Pending::Hello(_) => unreachable!(),
        };
        let claimed = used.claim(pending.ticket_id(), pending.ticket_expires_at_ms(), NOW_MS);
        assert_eq!(claimed.is_ok(), attempt == 0, "attempt {attempt}");
    }
}

#[test]
fn expired_resumption_ticket_is_refused() {
    let config = server_config().with_ticket_lifetime(hour());
    let used = UsedTickets::default();
    let (first, _) = full_handshake(&config);
    let ticket = first.ticket.unwrap();
    assert_eq!(ticket.lifetime(), hour());
    let err = resume(&config, &used, &ticket, NOW_MS + 3_600_000).unwrap_err();
    assert_eq!(err.reason(), "resumption ticket expired");
}

#[test]
fn ticket_never_outlives_the_token() {
    let config = server_config().with_ticket_lifetime(Duration::from_secs(7 * 86_400));
    let (first, _) = full_handshake(&config);
    assert_eq!(
        first.ticket.unwrap().lifetime(),
        Duration::from_secs(86_400)
    );
}

#[test]
fn stolen_ticket_without_the_resumption_secret_is_refused() {
    let config = server_config();
    let used = UsedTickets::default();
    let (victim, _) = full_handshake(&config);
    let stolen = victim.ticket.unwrap();
    // The thief has the ticket bytes but not the secret: it guesses one.
    let mut forged_bytes = stolen.to_bytes().to_vec();
    let secret_at = 2 + stolen.ticket().len();
    forged_bytes[secret_at..secret_at + 32].fill(0x42);
    let forged = bubble_proto::secure::ResumeTicket::from_bytes(&forged_bytes).unwrap();
    let err = resume(&config, &used, &forged, NOW_MS + 1000).unwrap_err();
    assert_eq!(err.reason(), "decryption failed");
    assert!(
        used.is_empty(),
        "a failed proof must not burn the victim's ticket"
    );
}

#[test]
fn ticket_used_from_another_device_is_refused() {
    let config = server_config();
    let (first, _) = full_handshake(&config);
    let mut other = meta();
    other.device_id = "laptop-2".into();
    let (_, body) =
        ClientHandshake::resume(&other, first.ticket.as_ref().unwrap(), &mut OsRandom).unwrap();
    let err = server_receive(&config, &resume_frame(body), NOW_MS).unwrap_err();
    assert_eq!(err.reason(), "ticket was issued to another app or device");
}

#[test]
fn ticket_sealed_under_an_unknown_ticket_key_is_refused() {
    let config = server_config();
    let (first, _) = full_handshake(&config);
    let other = ServerConfig::new(ring()).with_tickets(bubble_proto::secure::TicketKeys::new(
        bubble_proto::secure::TicketKey::from_bytes([9u8; 32]),
    ));
    let used = UsedTickets::default();
    assert!(resume(&other, &used, &first.ticket.unwrap(), NOW_MS).is_err());
}

#[test]
fn ticket_sealed_before_a_ticket_key_rotation_still_resumes() {
    let config = server_config();
    let (first, _) = full_handshake(&config);
    let mut keys = ticket_keys();
    keys.rotate(bubble_proto::secure::TicketKey::from_bytes([8u8; 32]));
    let rotated = ServerConfig::new(ring()).with_tickets(keys);
    let used = UsedTickets::default();
    assert!(resume(&rotated, &used, &first.ticket.unwrap(), NOW_MS).is_ok());
}

/// A node of a cluster whose ticket keys come from `secret`, one per hour.
fn cluster_node(secret: &[u8]) -> ServerConfig {
    let keys = bubble_proto::secure::TicketKeys::cluster(secret, HOUR).unwrap();
    ServerConfig::new(ring())
        .with_tickets(keys)
        .with_ticket_lifetime(HOUR)
}

const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);
const CLUSTER_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-shared-by-every-node";

#[test]
fn a_ticket_from_one_node_of_a_cluster_resumes_on_another() {
    let (node_a, node_b) = (cluster_node(CLUSTER_SECRET), cluster_node(CLUSTER_SECRET));
    let (first, _) = full_handshake(&node_a);
    let used = UsedTickets::default();
    let (second, _) = resume(&node_b, &used, &first.ticket.unwrap(), NOW_MS + 1000)
        .expect("the other node derives the same key");
    // Issued by node B near the end of the ticket's life, at the next period
    // on node A's clock: the key of the period before still opens it.
    let later = NOW_MS + 3_500_000;
    assert!(resume(&node_a, &used, &second.ticket.unwrap(), later).is_ok());
}

#[test]
fn a_cluster_ticket_opens_only_with_the_same_secret() {
    let (first, _) = full_handshake(&cluster_node(CLUSTER_SECRET));
    let ticket = first.ticket.unwrap();
    let stranger = cluster_node(b"another-cluster-another-secret-of-32-bytes");
    let used = UsedTickets::default();
    assert!(resume(&stranger, &used, &ticket, NOW_MS + 1000).is_err());
}

#[test]
fn a_cluster_key_opens_tickets_for_one_period_after_its_own() {
    // Tickets that outlive the key period, so only the key can refuse them.
    let node = || {
        let keys = bubble_proto::secure::TicketKeys::cluster(CLUSTER_SECRET, HOUR).unwrap();
        ServerConfig::new(ring())
            .with_tickets(keys)
            .with_ticket_lifetime(10 * HOUR)
    };
    let (first, _) = full_handshake(&node());
    let ticket = first.ticket.unwrap();
    let used = UsedTickets::default();
    let period = 3_600_000;
    let into_next_period = NOW_MS - NOW_MS % period + period + 1000;
    assert!(resume(&node(), &UsedTickets::default(), &ticket, into_next_period).is_ok());
    let two_periods_on = NOW_MS - NOW_MS % period + 2 * period + 1000;
    let err = resume(&node(), &used, &ticket, two_periods_on).unwrap_err();
    assert_eq!(
        err.reason(),
        "decryption failed",
        "the key is gone: {err:?}"
    );
}

#[test]
fn a_short_cluster_secret_or_period_is_refused_with_the_reason() {
    let short = bubble_proto::secure::TicketKeys::cluster(b"too short", HOUR).unwrap_err();
    assert!(short.contains("at least 32"), "{short}");
    let fast = bubble_proto::secure::TicketKeys::cluster(
        CLUSTER_SECRET,
        std::time::Duration::from_millis(10),
    )
    .unwrap_err();
    assert!(fast.contains("at least a second"), "{fast}");
}

#[test]
fn resumption_is_refused_when_the_server_has_no_ticket_keys() {
    let config = server_config();
    let (first, _) = full_handshake(&config);
    let used = UsedTickets::default();
    assert!(
        resume(
            &ServerConfig::new(ring()),
            &used,
            &first.ticket.unwrap(),
            NOW_MS
        )
        .is_err()
    );
}

#[test]
fn claim_for_another_ticket_does_not_accept_a_resumption() {
    let config = server_config();
    let (first, _) = full_handshake(&config);
    let (_, body) =
        ClientHandshake::resume(&meta(), first.ticket.as_ref().unwrap(), &mut OsRandom).unwrap();
    let pending = match server_receive(&config, &resume_frame(body), NOW_MS).unwrap() {
        Pending::Resume(p) => p,
        Pending::Hello(_) => unreachable!(),
    };
    let wrong = bubble_proto::secure::TicketClaim::claimed_elsewhere([0u8; 16]);
    assert!(
        pending
            .accept(&config, wrong, NOW_MS, &mut OsRandom)
            .is_err()
    );
}

#[test]
fn full_ledger_refuses_new_claims_instead_of_forgetting_old_ones() {
    let used = UsedTickets::new(2);
    let expiry = NOW_MS + 60_000;
    assert!(used.claim([1; 16], expiry, NOW_MS).is_ok());
    assert!(used.claim([2; 16], expiry, NOW_MS).is_ok());
    assert!(used.claim([3; 16], expiry, NOW_MS + 5_000).is_err());
    assert!(used.claim([1; 16], expiry, NOW_MS + 5_000).is_err());
}

#[test]
fn ledger_forgets_ids_once_their_tickets_expire() {
    let used = UsedTickets::new(1);
    assert!(used.claim([1; 16], NOW_MS + 1_000, NOW_MS).is_ok());
    assert!(used.claim([2; 16], NOW_MS + 60_000, NOW_MS + 2_000).is_ok());
    assert_eq!(used.len(), 1);
}

#[test]
fn resume_ticket_survives_serialization() {
    let (first, _) = full_handshake(&server_config());
    let ticket = first.ticket.unwrap();
    let back = bubble_proto::secure::ResumeTicket::from_bytes(&ticket.to_bytes()).unwrap();
    assert_eq!(back.ticket(), ticket.ticket());
    assert_eq!(back.lifetime(), ticket.lifetime());
    let used = UsedTickets::default();
    assert!(resume(&server_config(), &used, &back, NOW_MS).is_ok());
}

#[test]
fn debug_output_hides_secrets() {
    let (first, _) = full_handshake(&server_config());
    let ticket = format!("{:?}", first.ticket.unwrap());
    assert!(ticket.contains("<hidden>"));
    let key = format!("{:?}", server_key());
    assert!(key.contains("<hidden>"));
}
