//! Arbitrary bytes into the frame decoders: the stream codec (fed in
//! chunks, decoding in a loop as a connection would) and `parse_exact`
//! (the WebSocket path). Neither may panic or allocate past the maximum.
#![no_main]

use bubble_proto::{Frame, FrameCodec};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

const MAX_BODY: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let _ = Frame::parse_exact(data, MAX_BODY);

    // The first byte picks a chunk size so frames split at every boundary.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(split).max(1);
    let mut codec = FrameCodec::new(MAX_BODY);
    let mut buf = BytesMut::new();
    for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    // What decodes re-encodes to the same bytes.
                    let again = Frame::parse_exact(&frame.to_bytes(), MAX_BODY).expect("re-parse");
                    assert_eq!(again, frame);
                }
                Ok(None) => break,
                Err(_) => return, // the connection would close here
            }
        }
    }
    let _ = codec.decode_eof(&mut buf);
});
