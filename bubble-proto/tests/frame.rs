//! The frame format: round trips, limits, and hostile input.

use bytes::{BufMut, BytesMut};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

use bubble_proto::*;

fn codec() -> FrameCodec {
    FrameCodec::new(64 * 1024)
}

fn encode(frame: &Frame) -> BytesMut {
    let mut buf = BytesMut::new();
    codec().encode(frame, &mut buf).unwrap();
    buf
}

#[test]
fn the_header_is_fourteen_bytes_in_big_endian_order() {
    let frame = Frame::new(Command::Send, 0x01020304, &b"ab"[..]);
    let bytes = frame.to_bytes();
    assert_eq!(
        &bytes[..],
        &[
            0xB0, 0xBB, 1, 0, 0x00, 0x10, 0x01, 0x02, 0x03, 0x04, 0, 0, 0, 2, b'a', b'b'
        ]
    );
}

#[test]
fn a_stream_split_at_every_byte_still_yields_the_frames() {
    let frames = vec![
        Frame::new(Command::Ping, 1, &b""[..]),
        Frame::new(Command::Send, 2, vec![7u8; 300]),
        Frame::new(Command::Business(0x8123), 3, &b"custom"[..]).into_response(),
    ];
    let mut wire = BytesMut::new();
    for f in &frames {
        wire.extend_from_slice(&encode(f));
    }
    let mut c = codec();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in wire.iter() {
        buf.put_u8(*b);
        while let Some(f) = c.decode(&mut buf).unwrap() {
            got.push(f);
        }
    }
    assert_eq!(got, frames);
}

#[test]
fn an_oversized_body_is_refused_from_the_header_alone() {
    let mut c = FrameCodec::new(1024);
    let mut buf = BytesMut::new();
    Header {
        version: 1,
        flags: 0,
        command: Command::Send,
        seq: 1,
        body_len: u32::MAX,
    }
    .put(&mut buf);
    let err = c.decode(&mut buf).unwrap_err();
    assert!(
        matches!(err, FrameError::TooLarge { len, max: 1024, seq: 1 } if len == u32::MAX as usize)
    );
    assert_eq!(err.seq(), Some(1), "the answer can carry the frame's seq");
    assert!(
        buf.capacity() < 4096,
        "nothing was reserved for the declared body"
    );
}

#[test]
fn bad_magic_version_and_flags_are_errors() {
    let good = Frame::new(Command::Ping, 7, &b""[..]).to_bytes();
    type IsExpected = fn(&FrameError) -> bool;
    let cases: [(usize, u8, IsExpected, Option<u32>); 3] = [
        (0, 0x47, |e| matches!(e, FrameError::BadMagic(_)), None),
        (
            2,
            9,
            |e| matches!(e, FrameError::UnsupportedVersion(9)),
            None,
        ),
        (
            3,
            0x80,
            |e| {
                matches!(
                    e,
                    FrameError::UnknownFlags {
                        flags: 0x80,
                        seq: 7
                    }
                )
            },
            Some(7),
        ),
    ];
    for (at, value, is_expected, seq) in cases {
        let mut bytes = BytesMut::from(&good[..]);
        bytes[at] = value;
        let err = codec().decode(&mut bytes).unwrap_err();
        assert!(is_expected(&err), "byte {at} = {value:#x} gave {err:?}");
        assert_eq!(err.seq(), seq, "byte {at} = {value:#x}: {err:?}");
    }
}

#[test]
fn an_unknown_command_below_the_business_range_is_carried_not_refused() {
    let mut bytes = BytesMut::from(&Frame::new(Command::Ping, 9, &b"hi"[..]).to_bytes()[..]);
    // 0x01ff: below the business range, and no command of this version.
    bytes[4] = 0x01;
    bytes[5] = 0xff;
    let frame = codec().decode(&mut bytes).unwrap().expect("a whole frame");
    assert_eq!(frame.command, Command::Unknown(0x1ff));
    assert!(frame.command.is_unknown());
    assert_eq!(frame.seq, 9);
    assert_eq!(&frame.body[..], b"hi");
    // It re-encodes to the same code, so a sealed record's header (its
    // associated data) is the same bytes on both sides.
    assert_eq!(frame.to_bytes()[4..6], [0x01, 0xff]);
    assert_eq!(
        Frame::parse_exact(&frame.to_bytes(), 1024).unwrap().command,
        Command::Unknown(0x1ff)
    );
}

#[test]
fn a_connection_closed_mid_frame_is_an_error_not_a_silent_drop() {
    let mut bytes = BytesMut::from(&Frame::new(Command::Send, 1, vec![1u8; 10]).to_bytes()[..8]);
    assert!(codec().decode_eof(&mut bytes).is_err());
    let mut empty = BytesMut::new();
    assert_eq!(
        codec().decode_eof(&mut empty).unwrap(),
        None,
        "a clean close between frames is fine"
    );
}

#[test]
fn a_websocket_message_must_be_exactly_one_frame() {
    let frame = Frame::new(Command::Sync, 9, &b"xyz"[..]);
    let bytes = frame.to_bytes();
    assert_eq!(Frame::parse_exact(&bytes, 1024).unwrap(), frame);
    let mut extra = bytes.to_vec();
    extra.push(0);
    assert!(matches!(
        Frame::parse_exact(&extra, 1024),
        Err(FrameError::LengthMismatch {
            declared: 3,
            actual: 4,
            seq: 9
        })
    ));
    assert!(matches!(
        Frame::parse_exact(&bytes[..5], 1024),
        Err(FrameError::Incomplete)
    ));
}

#[test]
fn every_builtin_command_round_trips_through_its_code() {
    for c in Command::BUILTIN {
        assert_eq!(Command::from_code(c.code()), Some(*c));
        assert!(!c.is_business());
    }
    assert_eq!(Command::from_code(0x8000), Some(Command::Business(0x8000)));
    assert_eq!(Command::from_code(0xffff), Some(Command::Business(0xffff)));
    assert_eq!(Command::from_code(0), None);
    assert_eq!(Command::from_wire(0), Command::Unknown(0));
    assert_eq!(Command::from_wire(0x7fff), Command::Unknown(0x7fff));
    assert_eq!(Command::from_wire(16), Command::Send);
    assert_eq!(Command::from_wire(0x8001), Command::Business(0x8001));
    for c in Command::BUILTIN {
        assert_eq!(Command::from_wire(c.code()), *c);
    }
}

#[test]
fn a_body_decodes_as_its_message_or_says_why_not() {
    let ack = pb::SendAck {
        version: 7,
        ..Default::default()
    };
    let frame = Frame::from_message(Command::SendAck, 3, &ack);
    assert_eq!(frame.decode_body::<pb::SendAck>().unwrap(), ack);
    let junk = Frame::new(Command::SendAck, 3, vec![0xff; 5]);
    let err = junk.decode_body::<pb::SendAck>().unwrap_err();
    assert!(err.to_string().contains("SendAck"), "{err}");
}

#[test]
fn the_encoder_refuses_what_the_peer_would_refuse() {
    let mut c = FrameCodec::new(4);
    let mut buf = BytesMut::new();
    assert!(
        c.encode(Frame::new(Command::Send, 1, vec![0u8; 5]), &mut buf)
            .is_err()
    );
    assert!(buf.is_empty());
}

fn any_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        proptest::sample::select(Command::BUILTIN.to_vec()),
        (BUSINESS_FIRST..=u16::MAX).prop_map(Command::Business),
    ]
}

proptest! {
    #[test]
    fn any_frame_round_trips(
        command in any_command(),
        seq in any::<u32>(),
        flags in prop_oneof![Just(0u8), Just(flags::ENCRYPTED), Just(flags::RESPONSE), Just(flags::KNOWN)],
        body in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let frame = Frame { flags, command, seq, body: body.into() };
        let mut buf = encode(&frame);
        let decoded = codec().decode(&mut buf).unwrap();
        prop_assert_eq!(decoded, Some(frame.clone()));
        prop_assert!(buf.is_empty());
        prop_assert_eq!(Frame::parse_exact(&frame.to_bytes(), 64 * 1024).unwrap(), frame);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut c = FrameCodec::new(1024);
        let mut buf = BytesMut::from(&data[..]);
        // Decode until it needs more bytes or finds garbage; both are fine.
        while let Ok(Some(_)) = c.decode(&mut buf) {}
        let _ = Frame::parse_exact(&data, 1024);
        let _ = c.decode_eof(&mut buf);
    }

    #[test]
    fn arbitrary_bodies_never_panic_the_protobuf_decoders(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let frame = Frame::new(Command::Send, 1, data);
        let _ = frame.decode_body::<pb::SendRequest>();
        let _ = frame.decode_body::<pb::SyncPage>();
        let _ = frame.decode_body::<pb::Push>();
        let _ = frame.decode_body::<pb::Error>();
    }
}

#[test]
fn the_example_frame_in_the_protocol_document_is_exact() {
    let req = pb::SendRequest {
        to: Some(pb::Conversation {
            kind: pb::ConversationKind::Direct as i32,
            id: "bob".into(),
        }),
        client_msg_id: "c1".into(),
        client_seq: 1,
        create_time: 1_700_000_000_000,
        content: Some(pb::Content {
            r#type: pb::ContentType::Text as i32,
            body: "hi".into(),
        }),
        ..Default::default()
    };
    let frame = Frame::from_message(Command::Send, 7, &req).to_bytes();
    let expected: Vec<u8> = [
        &[
            0xb0, 0xbb, 0x01, 0x00, 0x00, 0x10, 0, 0, 0, 7, 0, 0, 0, 0x1e,
        ][..],
        &[0x0a, 0x07, 0x08, 0x01, 0x12, 0x03, b'b', b'o', b'b'],
        &[0x12, 0x02, b'c', b'1'],
        &[0x18, 0x01],
        &[0x20, 0x80, 0xd0, 0x95, 0xff, 0xbc, 0x31],
        &[0x2a, 0x06, 0x08, 0x01, 0x12, 0x02, b'h', b'i'],
    ]
    .concat();
    assert_eq!(
        &frame[..],
        &expected[..],
        "docs/protocol.md section 2 shows these bytes"
    );
}
