//! Arbitrary input never panics: the stable-CI counterpart of the
//! `frame_decode` and `handshake_server` fuzz targets in `fuzz/`.

mod secure_support;

use bubble_proto::secure::{ClientHandshake, OsRandom, server_receive};
use bubble_proto::{Command, Frame, FrameCodec};
use bytes::BytesMut;
use proptest::prelude::*;
use secure_support::*;
use tokio_util::codec::Decoder;

/// A real hello, so mutations reach past the first length checks.
fn valid_hello() -> Vec<u8> {
    ClientHandshake::start(&client_config(), TOKEN, &mut OsRandom)
        .unwrap()
        .1
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn frame_codec_never_panics_on_arbitrary_bytes(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let mut codec = FrameCodec::new(4096);
        let mut buf = BytesMut::new();
        for chunk in chunks {
            buf.extend_from_slice(&chunk);
            while let Ok(Some(_)) = codec.decode(&mut buf) {}
        }
        let _ = codec.decode_eof(&mut buf);
    }

    #[test]
    fn parse_exact_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Frame::parse_exact(&bytes, 4096);
    }

    #[test]
    fn server_never_panics_on_an_arbitrary_hello(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let config = server_config();
        let frame = Frame::new(Command::HandshakeHello, 1, bytes);
        prop_assert!(server_receive(&config, &frame, NOW_MS).is_err());
    }

    #[test]
    fn server_never_panics_on_an_arbitrary_resume_hello(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let config = server_config();
        let frame = Frame::new(Command::ResumeHello, 1, bytes);
        prop_assert!(server_receive(&config, &frame, NOW_MS).is_err());
    }

    #[test]
    fn client_never_panics_on_an_arbitrary_answer(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let (client, _) = ClientHandshake::start(&client_config(), TOKEN, &mut OsRandom).unwrap();
        prop_assert!(client.finish(&bytes).is_err());
    }
}

proptest! {
    // Each case costs an RSA decryption: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn mutated_valid_hello_is_refused_without_panicking(at in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let mut hello = valid_hello();
        let i = at.index(hello.len());
        hello[i] ^= xor;
        let frame = Frame::new(Command::HandshakeHello, 1, hello);
        prop_assert!(server_receive(&server_config(), &frame, NOW_MS).is_err());
    }

    #[test]
    fn truncated_valid_hello_is_refused_without_panicking(at in any::<prop::sample::Index>()) {
        let hello = valid_hello();
        let len = at.index(hello.len());
        let frame = Frame::new(Command::HandshakeHello, 1, hello[..len].to_vec());
        prop_assert!(server_receive(&server_config(), &frame, NOW_MS).is_err());
    }

    #[test]
    fn record_opener_never_panics_on_arbitrary_records(flags in any::<u8>(), body in proptest::collection::vec(any::<u8>(), 0..128)) {
        let (_, mut server) = full_handshake(&server_config());
        let frame = Frame { flags, command: Command::Send, seq: 1, body: body.into() };
        prop_assert!(server.channel.open(&frame).is_err());
    }
}
