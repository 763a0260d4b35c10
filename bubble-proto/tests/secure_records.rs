//! Records after the handshake: what opens and what closes the connection.

mod secure_support;

use bubble_proto::secure::{ClientSession, Established, RecordError};
use bubble_proto::{Command, Frame, HEADER_LEN, flags};
use bytes::Bytes;
use secure_support::*;

fn session() -> (ClientSession, Established) {
    full_handshake(&server_config())
}

fn ping(n: u32) -> Frame {
    Frame::new(Command::Ping, n, format!("ping {n}").into_bytes())
}

fn with_body(frame: &Frame, f: impl FnOnce(&mut Vec<u8>)) -> Frame {
    let mut body = frame.body.to_vec();
    f(&mut body);
    Frame {
        body: Bytes::from(body),
        ..frame.clone()
    }
}

#[test]
fn sealed_record_carries_the_encrypted_flag_and_a_16_byte_tag() {
    let (mut client, _) = session();
    let plain = ping(1);
    let sealed = client.channel.seal(&plain).unwrap();
    assert_eq!(sealed.flags & flags::ENCRYPTED, flags::ENCRYPTED);
    assert_eq!(sealed.body.len(), plain.body.len() + 16);
    assert_eq!((sealed.command, sealed.seq), (plain.command, plain.seq));
}

#[test]
fn records_open_in_order() {
    let (mut client, mut server) = session();
    for n in 0..10 {
        let sealed = client.channel.seal(&ping(n)).unwrap();
        assert_eq!(server.channel.open(&sealed).unwrap(), ping(n));
    }
}

#[test]
fn sealed_frame_survives_the_wire_encoding() {
    let (mut client, mut server) = session();
    let sealed = client.channel.seal(&ping(1)).unwrap();
    let wire = sealed.to_bytes();
    let parsed = Frame::parse_exact(&wire, 1 << 20).unwrap();
    assert_eq!(server.channel.open(&parsed).unwrap(), ping(1));
}

#[test]
fn flipped_tag_bit_is_rejected() {
    let (mut client, mut server) = session();
    let sealed = client.channel.seal(&ping(1)).unwrap();
    let bad = with_body(&sealed, |b| {
        let last = b.len() - 1;
        b[last] ^= 0x01;
    });
    assert_eq!(server.channel.open(&bad), Err(RecordError::BadRecord));
}

#[test]
fn flipped_ciphertext_bit_is_rejected() {
    let (mut client, mut server) = session();
    let sealed = client.channel.seal(&ping(1)).unwrap();
    let bad = with_body(&sealed, |b| b[0] ^= 0x01);
    assert_eq!(server.channel.open(&bad), Err(RecordError::BadRecord));
}

#[test]
fn changed_header_seq_is_rejected() {
    let (mut client, mut server) = session();
    let mut sealed = client.channel.seal(&ping(1)).unwrap();
    sealed.seq = 2;
    assert_eq!(server.channel.open(&sealed), Err(RecordError::BadRecord));
}

#[test]
fn changed_header_command_is_rejected() {
    let (mut client, mut server) = session();
    let mut sealed = client.channel.seal(&ping(1)).unwrap();
    sealed.command = Command::Send;
    assert_eq!(server.channel.open(&sealed), Err(RecordError::BadRecord));
}

#[test]
fn changed_response_flag_is_rejected() {
    let (mut client, mut server) = session();
    let mut sealed = client.channel.seal(&ping(1)).unwrap();
    sealed.flags |= flags::RESPONSE;
    assert_eq!(server.channel.open(&sealed), Err(RecordError::BadRecord));
}

#[test]
fn replayed_record_is_rejected() {
    let (mut client, mut server) = session();
    let sealed = client.channel.seal(&ping(1)).unwrap();
    server.channel.open(&sealed).unwrap();
    assert_eq!(server.channel.open(&sealed), Err(RecordError::BadRecord));
}

#[test]
fn reordered_records_are_rejected() {
    let (mut client, mut server) = session();
    let first = client.channel.seal(&ping(1)).unwrap();
    let second = client.channel.seal(&ping(2)).unwrap();
    assert_eq!(server.channel.open(&second), Err(RecordError::BadRecord));
    let _ = first;
}

#[test]
fn dropped_record_makes_the_next_one_fail() {
    let (mut client, mut server) = session();
    let _lost = client.channel.seal(&ping(1)).unwrap();
    let next = client.channel.seal(&ping(2)).unwrap();
    assert_eq!(server.channel.open(&next), Err(RecordError::BadRecord));
}

#[test]
fn truncated_record_is_rejected() {
    let (mut client, mut server) = session();
    let sealed = client.channel.seal(&ping(1)).unwrap();
    let cut = Frame {
        body: sealed.body.slice(..sealed.body.len() - 1),
        ..sealed.clone()
    };
    assert_eq!(server.channel.open(&cut), Err(RecordError::BadRecord));
}

#[test]
fn record_shorter_than_a_tag_is_rejected() {
    let (_, mut server) = session();
    let tiny = Frame {
        flags: flags::ENCRYPTED,
        ..Frame::new(Command::Ping, 1, &b"short"[..])
    };
    assert_eq!(server.channel.open(&tiny), Err(RecordError::BadRecord));
}

#[test]
fn plaintext_frame_after_the_handshake_is_rejected() {
    let (_, mut server) = session();
    assert_eq!(
        server.channel.open(&ping(1)),
        Err(RecordError::NotEncrypted)
    );
}

#[test]
fn channel_refuses_everything_after_a_failure() {
    let (mut client, mut server) = session();
    let good = client.channel.seal(&ping(1)).unwrap();
    let bad = with_body(&good, |b| b[0] ^= 1);
    assert!(server.channel.open(&bad).is_err());
    assert_eq!(server.channel.open(&good), Err(RecordError::Closed));
}

#[test]
fn record_reflected_back_to_its_sender_is_rejected() {
    let (mut client, _) = session();
    let sealed = client.channel.seal(&ping(1)).unwrap();
    assert_eq!(client.channel.open(&sealed), Err(RecordError::BadRecord));
}

#[test]
fn record_from_another_session_is_rejected() {
    let (mut client_a, _) = session();
    let (_, mut server_b) = session();
    let sealed = client_a.channel.seal(&ping(1)).unwrap();
    assert_eq!(server_b.channel.open(&sealed), Err(RecordError::BadRecord));
}

#[test]
fn split_halves_work_independently() {
    let (client, server) = session();
    let (mut client_tx, mut client_rx) = client.channel.split();
    let (mut server_tx, mut server_rx) = server.channel.split();
    let up = client_tx.seal(&ping(1)).unwrap();
    let down = server_tx.seal(&ping(2)).unwrap();
    assert_eq!(client_rx.open(&down).unwrap(), ping(2));
    assert_eq!(server_rx.open(&up).unwrap(), ping(1));
    assert_eq!((client_tx.counter(), server_rx.counter()), (1, 1));
}

#[test]
fn associated_data_is_the_wire_header_with_the_sealed_length() {
    // A record sealed under the header an implementation in another
    // language would compute opens; the header is exactly these 14 bytes.
    let (mut client, _) = session();
    let sealed = client.channel.seal(&ping(1)).unwrap();
    let header = sealed.header().to_bytes();
    assert_eq!(header.len(), HEADER_LEN);
    assert_eq!(header[3] & flags::ENCRYPTED, flags::ENCRYPTED);
    assert_eq!(
        u32::from_be_bytes(header[10..14].try_into().unwrap()) as usize,
        sealed.body.len()
    );
}
