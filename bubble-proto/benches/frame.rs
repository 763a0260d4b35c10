//! Frame encode/decode: the header plus a protobuf `SendRequest` body, as a
//! gate handles every message. Figures go in `docs/benchmarks.md`.
//!
//! Run with `cargo bench -p bubble-proto --bench frame`.

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio_util::codec::{Decoder, Encoder};

use bubble_proto::{Command, Frame, FrameCodec, pb};

fn send_request(text_len: usize) -> pb::SendRequest {
    pb::SendRequest {
        to: Some(pb::Conversation {
            kind: pb::ConversationKind::Direct as i32,
            id: "user-123456".into(),
        }),
        client_msg_id: "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
        client_seq: 42,
        create_time: 1_767_225_600_000,
        content: Some(pb::Content {
            r#type: pb::ContentType::Text as i32,
            body: vec![b'x'; text_len].into(),
        }),
        ..Default::default()
    }
}

fn frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame");
    group.measurement_time(Duration::from_secs(3));
    for (name, text_len) in [("100 B text", 100usize), ("16 KiB text", 16 * 1024)] {
        let message = send_request(text_len);
        let frame = Frame::from_message(Command::Send, 7, &message);
        // Throughput in frames: criterion then prints frames per second.
        group.throughput(Throughput::Elements(1));

        group.bench_function(format!("encode (protobuf + header) {name}"), |b| {
            let mut codec = FrameCodec::default();
            let mut out = BytesMut::with_capacity(64 * 1024);
            b.iter(|| {
                out.clear();
                let frame = Frame::from_message(Command::Send, 7, black_box(&message));
                codec.encode(frame, &mut out).unwrap();
                black_box(out.len())
            })
        });

        // A buffer of 64 frames back to back, as a busy TCP read returns them.
        let mut wire = BytesMut::new();
        let mut codec = FrameCodec::default();
        for _ in 0..64 {
            codec.encode(&frame, &mut wire).unwrap();
        }
        group.throughput(Throughput::Elements(64));
        group.bench_function(format!("decode (header + protobuf) {name}"), |b| {
            b.iter_batched_ref(
                || wire.clone(),
                |buf| {
                    let mut codec = FrameCodec::default();
                    let mut n = 0;
                    while let Some(f) = codec.decode(buf).unwrap() {
                        let m: pb::SendRequest = f.decode_body().unwrap();
                        n += m.client_seq;
                    }
                    black_box(n)
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
