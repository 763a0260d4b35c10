//! Secure channel throughput: full handshakes (RSA-3072, the default, and
//! RSA-2048, the smallest key the spec allows), resumptions, and record
//! seal/open for small and large bodies. Figures go in `docs/benchmarks.md`.
//!
//! Run with `cargo bench -p bubble-proto --bench secure`.

use std::hint::black_box;
use std::time::Duration;

use bubble_proto::secure::{
    ClientConfig, ClientHandshake, ClientMeta, Established, OsRandom, Pending, ResumeTicket,
    SecureChannel, ServerConfig, ServerKey, ServerKeyRing, SessionGrant, TicketKey, TicketKeys,
    UsedTickets, server_receive,
};
use bubble_proto::{Command, Frame};
use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main,
};

const KEY_PEM: &str = include_str!("../tests/fixtures/server_key.pem");
const KEY_2048_PEM: &str = include_str!("../tests/fixtures/server_key_2048.pem");
const NOW_MS: u64 = 1_767_225_600_000;

fn setup() -> (ServerConfig, ClientConfig) {
    setup_with(KEY_PEM)
}

fn setup_with(key_pem: &str) -> (ServerConfig, ClientConfig) {
    let key = ServerKey::from_pkcs8_pem(key_pem).unwrap();
    let pin = key.pin();
    let server = ServerConfig::new(ServerKeyRing::new(key))
        .with_tickets(TicketKeys::new(TicketKey::from_bytes([7u8; 32])));
    let client = ClientConfig {
        server_key: pin,
        meta: ClientMeta {
            app_id: "demo".into(),
            device_id: "phone-1".into(),
            platform: "ios".into(),
            client_version: "1.0.0".into(),
        },
    };
    (server, client)
}

fn grant() -> SessionGrant {
    SessionGrant {
        user: "alice".into(),
        identity_expires_at_ms: NOW_MS + 86_400_000,
    }
}

/// One full handshake, both sides; returns the client's ticket.
fn full(server: &ServerConfig, client: &ClientConfig) -> Option<ResumeTicket> {
    let (hs, hello) =
        ClientHandshake::start(client, "v1.token-of-alice.0123456789", &mut OsRandom).unwrap();
    let Pending::Hello(p) = server_receive(
        server,
        &Frame::new(Command::HandshakeHello, 1, hello),
        NOW_MS,
    )
    .unwrap() else {
        unreachable!()
    };
    let est = p.accept(server, grant(), NOW_MS, &mut OsRandom).unwrap();
    hs.finish(&est.answer).unwrap().ticket
}

/// The server's whole answer to a resume hello: open the ticket and the
/// proof, claim the ticket, fresh ECDH, new ticket, answer.
fn resume(server: &ServerConfig, used: &UsedTickets, hello: Vec<u8>) -> Established {
    let Pending::Resume(p) =
        server_receive(server, &Frame::new(Command::ResumeHello, 1, hello), NOW_MS).unwrap()
    else {
        unreachable!()
    };
    let claim = used
        .claim(p.ticket_id(), p.ticket_expires_at_ms(), NOW_MS)
        .unwrap();
    p.accept(server, claim, NOW_MS, &mut OsRandom).unwrap()
}

fn bench_full(group: &mut BenchmarkGroup<'_, WallTime>, suffix: &str, key_pem: &str) {
    let (server, client) = setup_with(key_pem);
    group.bench_function(format!("full (client + server){suffix}"), |b| {
        b.iter(|| black_box(full(&server, &client)))
    });

    group.bench_function(format!("full (server side only){suffix}"), |b| {
        b.iter_batched(
            || {
                ClientHandshake::start(&client, "v1.token-of-alice.0123456789", &mut OsRandom)
                    .unwrap()
                    .1
            },
            |hello| {
                let Pending::Hello(p) = server_receive(
                    &server,
                    &Frame::new(Command::HandshakeHello, 1, hello),
                    NOW_MS,
                )
                .unwrap() else {
                    unreachable!()
                };
                black_box(p.accept(&server, grant(), NOW_MS, &mut OsRandom).unwrap())
            },
            BatchSize::SmallInput,
        )
    });
}

fn handshakes(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));

    // The default key keeps the historical benchmark names.
    bench_full(&mut group, "", KEY_PEM);
    bench_full(&mut group, " rsa-2048", KEY_2048_PEM);

    let (server, client) = setup();
    let used = UsedTickets::new(10_000_000);
    group.bench_function("resumption (client + server)", |b| {
        b.iter_batched(
            || full(&server, &client).unwrap(),
            |ticket| {
                let (hs, hello) =
                    ClientHandshake::resume(&client.meta, &ticket, &mut OsRandom).unwrap();
                let est = resume(&server, &used, hello);
                black_box(hs.finish(&est.answer).unwrap())
            },
            BatchSize::SmallInput,
        )
    });

    // What a server spends on one resume hello: open the ticket and the
    // proof, claim, fresh ECDH, new ticket, answer.
    group.bench_function("resumption (server side only)", |b| {
        b.iter_batched(
            || {
                let ticket = full(&server, &client).unwrap();
                ClientHandshake::resume(&client.meta, &ticket, &mut OsRandom)
                    .unwrap()
                    .1
            },
            |hello| black_box(resume(&server, &used, hello)),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// A fresh established session: (client channel, server channel).
fn pair(server: &ServerConfig, client: &ClientConfig) -> (SecureChannel, SecureChannel) {
    let (hs, hello) =
        ClientHandshake::start(client, "v1.token-of-alice.0123456789", &mut OsRandom).unwrap();
    let Pending::Hello(p) = server_receive(
        server,
        &Frame::new(Command::HandshakeHello, 1, hello),
        NOW_MS,
    )
    .unwrap() else {
        unreachable!()
    };
    let est = p.accept(server, grant(), NOW_MS, &mut OsRandom).unwrap();
    (hs.finish(&est.answer).unwrap().channel, est.channel)
}

fn records(c: &mut Criterion) {
    let (server, client) = setup();
    let mut group = c.benchmark_group("record");
    group.measurement_time(Duration::from_secs(3));
    for (name, size) in [("100 B", 100usize), ("16 KiB", 16 * 1024)] {
        let frame = Frame::new(Command::Send, 1, vec![0x5a; size]);
        group.throughput(Throughput::Bytes(size as u64));

        let (mut sealer, _) = pair(&server, &client);
        group.bench_function(format!("seal {name}"), |b| {
            b.iter(|| black_box(sealer.seal(&frame).unwrap()))
        });

        // Sender and receiver stay in step: every sealed record is opened.
        let (mut tx, mut rx) = pair(&server, &client);
        group.bench_function(format!("seal+open {name}"), |b| {
            b.iter(|| {
                let sealed = tx.seal(&frame).unwrap();
                black_box(rx.open(&sealed).unwrap())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, handshakes, records);
criterion_main!(benches);
