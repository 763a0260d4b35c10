//! The engine's send path on the in-memory ports: dedup check, id, fan-out
//! append, dedup put, recent cache, push to the hub. No sockets, no
//! encryption: what the engine itself costs per message. Figures go in
//! `docs/benchmarks.md`.
//!
//! Run with `cargo bench -p bubble-core --bench engine`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

use bubble_core::ports::Identity;
use bubble_core::push::SessionQueue;
use bubble_core::*;

const APP: &str = "bench";

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn engine() -> Engine {
    let engine = Engine::builder().build().expect("engine");
    engine
        .put_app(AppConfig::new(APP, "a-secret-of-at-least-thirty-two-bytes"))
        .await
        .expect("app");
    engine
}

async fn login(engine: &Engine, user: &str) -> (Session, SessionQueue) {
    let identity = Identity {
        app: AppId::new(APP),
        user: UserId::new(user),
        expires_at: i64::MAX,
    };
    engine
        .connect(&identity, &DeviceId::new("d1"), "bench")
        .await
        .expect("connect")
}

fn drain(queues: &mut [SessionQueue]) {
    for q in queues {
        while q.rx.try_recv().is_ok() {}
    }
}

fn request(to: Conversation, n: u64) -> SendRequest {
    SendRequest {
        to,
        client_msg_id: format!("m{n}"),
        client_seq: n,
        create_time: 1_767_225_600_000,
        content: Content::text("hello, this is a benchmark message of about sixty bytes"),
    }
}

/// 1:1 send with the receiver online (its push is drained every message).
fn direct(c: &mut Criterion) {
    let rt = runtime();
    let (engine, alice, mut queues) = rt.block_on(async {
        let e = engine().await;
        let (alice, qa) = login(&e, "alice").await;
        let (_bob, qb) = login(&e, "bob").await;
        (e, alice, vec![qa, qb])
    });
    let to = Conversation::direct(&UserId::new("bob"));
    let mut n = 0u64;
    let mut group = c.benchmark_group("engine send");
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1));
    group.bench_function("1:1, receiver online", |b| {
        b.iter(|| {
            n += 1;
            let receipt = rt
                .block_on(engine.send(&alice, request(to.clone(), n)))
                .expect("send");
            drain(&mut queues);
            black_box(receipt)
        })
    });
    group.finish();
}

/// Send to a normal group of `size` members, every member online.
fn groups(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("engine send");
    group.measurement_time(Duration::from_secs(3));
    for size in [10usize, 100] {
        let (engine, sender, mut queues) = rt.block_on(async {
            let e = engine().await;
            let mut queues = Vec::new();
            let mut sessions = Vec::new();
            for i in 0..size {
                let (s, q) = login(&e, &format!("u{i}")).await;
                sessions.push(s);
                queues.push(q);
            }
            e.create_group(
                &AppId::new(APP),
                &UserId::new("u0"),
                CreateGroup {
                    id: Some(GroupId::new("g")),
                    name: "bench".into(),
                    members: (1..size).map(|i| UserId::new(format!("u{i}"))).collect(),
                    super_group: false,
                },
            )
            .await
            .expect("group");
            (e, sessions.swap_remove(0), queues)
        });
        let to = Conversation::group(&GroupId::new("g"));
        let mut n = 0u64;
        // Throughput in deliveries (one per other member).
        group.throughput(Throughput::Elements(size as u64 - 1));
        group.bench_function(format!("group of {size}, all online"), |b| {
            b.iter(|| {
                n += 1;
                let receipt = rt
                    .block_on(engine.send(&sender, request(to.clone(), n)))
                    .expect("send");
                drain(&mut queues);
                black_box(receipt)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, direct, groups);
criterion_main!(benches);
