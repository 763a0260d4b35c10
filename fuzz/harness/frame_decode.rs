//! Harness of the `frame_decode` fuzz target: arbitrary bytes into the
//! frame decoders, the stream codec (fed in chunks, decoding in a loop as a
//! TCP connection does) and `Frame::parse_exact` (one WebSocket message).
//! Neither may panic or produce a body over the maximum, and what decodes
//! must encode back to the bytes it came from.
//!
//! Shared, through `#[path]`, by `fuzz/fuzz_targets/frame_decode.rs` and the
//! replay of `fuzz/regressions/frame_decode/` in bubble-proto's tests.

use bubble_proto::{Command, Frame, FrameCodec, pb};
use bytes::BytesMut;
use tokio_util::codec::Decoder;

const MAX_BODY: usize = 64 * 1024;

/// Runs one input; panics on a violation of the decoders' contract.
pub fn run(data: &[u8]) {
    if let Ok(frame) = Frame::parse_exact(data, MAX_BODY) {
        assert!(frame.body.len() <= MAX_BODY);
        assert_eq!(
            &frame.to_bytes()[..],
            data,
            "a parsed message re-encodes to itself"
        );
    }

    // The first byte picks a chunk size so frames split at every boundary.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(split).max(1);
    let mut codec = FrameCodec::new(MAX_BODY);
    let mut buf = BytesMut::new();
    // The frames decoded so far, re-encoded: always a prefix of the input.
    let mut decoded = Vec::new();
    for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.body.len() <= MAX_BODY);
                    decoded.extend_from_slice(&frame.to_bytes());
                    assert!(
                        rest.starts_with(&decoded),
                        "the codec's frames are the stream's bytes, in order"
                    );
                }
                Ok(None) => break,
                Err(_) => return, // the connection would close here
            }
        }
    }
    let _ = codec.decode_eof(&mut buf);
}

/// Frames as clients send them, back to back, behind a chunk size of 7.
pub fn seeds() -> Vec<Vec<u8>> {
    let send = pb::SendRequest {
        client_msg_id: "m-1".into(),
        client_seq: 1,
        create_time: 1_767_225_600_000,
        ..Default::default()
    };
    let frames = [
        Frame::from_message(Command::Ping, 1, &pb::Ping { client_time: 42 }),
        Frame::from_message(Command::Send, 2, &send),
        Frame::new(Command::from_wire(0x8001), 3, b"business".to_vec()),
        Frame::new(Command::Sync, 4, Vec::new()),
    ];
    let mut seeds: Vec<Vec<u8>> = frames.iter().map(|f| f.to_bytes().to_vec()).collect();
    let mut stream = vec![7u8];
    for f in &frames {
        stream.extend_from_slice(&f.to_bytes());
    }
    seeds.push(stream);
    seeds
}
