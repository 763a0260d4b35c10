//! "SQLite append batch": durable 1:1 appends per second with many
//! concurrent writers, the workload group commit exists for; and
//! "SQLite group append": messages to a group of 100 per second (each one
//! a delivery of 100 entries), what writing each message once is for; and
//! "SQLite retention batch": how long one `expire` call (the engine asks
//! for 200 messages) holds the writer, which every append waits behind.
//!
//! Each writer is a task that sends one message after another, waiting for
//! each ack (= COMMIT returned) like a gate connection does; every message
//! carries a client message id, so the dedup lookup is on the path too.
//!
//! Run briefly with
//! `cargo bench -p bubble-store-sqlite --bench append -- --warm-up-time 1 --measurement-time 5`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bubble_core::ports::InboxStore;
use bubble_core::testkit::{direct_delivery, group_delivery};
use bubble_core::{AdapterConfig, AppId};
use bubble_store_sqlite::{SqliteConfig, SqliteStore, Synchronous};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// `total` appends spread over `writers` tasks; the time they all took.
async fn appends(store: Arc<SqliteStore>, writers: u64, total: u64) -> Duration {
    let app = AppId::new("bench");
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let n = total / writers + u64::from(w < total % writers);
        let store = store.clone();
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let from = format!("sender{w}");
            let to = format!("receiver{w}");
            for _ in 0..n {
                let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
                let d = direct_delivery(&from, &to, "hello, this is a benchmark", &id.to_string());
                store.append(&app, &d).await.expect("append");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer task");
    }
    start.elapsed()
}

/// `total` messages to one group of `members.len()`, spread over `writers`
/// tasks (senders taking turns); the time they all took.
async fn group_appends(
    store: Arc<SqliteStore>,
    members: Arc<Vec<String>>,
    writers: u64,
    total: u64,
) -> Duration {
    let app = AppId::new("bench");
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let n = total / writers + u64::from(w < total % writers);
        let (store, app, members) = (store.clone(), app.clone(), members.clone());
        tasks.push(tokio::spawn(async move {
            let from = members[w as usize % members.len()].clone();
            let all: Vec<&str> = members.iter().map(String::as_str).collect();
            for _ in 0..n {
                let id = NEXT_ID.fetch_add(1, Ordering::Relaxed).to_string();
                let mut d = group_delivery("g1", &from, &all, "hello, this is a benchmark");
                d.client_msg_id = id.clone();
                for e in &mut d.entries {
                    e.client_msg_id = id.clone();
                }
                store.append(&app, &d).await.expect("append");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer task");
    }
    start.elapsed()
}

fn append_batch(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("SQLite append batch");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    let cases = [
        ("64 writers, synchronous=FULL", 64, Synchronous::Full),
        ("1024 writers, synchronous=FULL", 1024, Synchronous::Full),
        ("64 writers, synchronous=NORMAL", 64, Synchronous::Normal),
    ];
    for (name, writers, sync) in cases {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = rt.block_on(async {
            SqliteConfig::new(dir.path().join("bench.db"))
                .with_synchronous(sync)
                .connect()
                .await
                .expect("open the store")
        });
        let store = Arc::new(store);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| rt.block_on(appends(store.clone(), writers, iters)))
        });
        let stats = store.stats();
        eprintln!(
            "{name}: {} writes in {} commits ({:.1} writes per commit)",
            stats.writes,
            stats.commits,
            stats.writes as f64 / stats.commits.max(1) as f64
        );
        rt.block_on(store.close());
    }
    group.finish();
}

fn group_append(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("SQLite group append");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    let members: Arc<Vec<String>> = Arc::new((0..100).map(|i| format!("member{i:03}")).collect());
    let name = "100 members, 64 writers, synchronous=FULL";
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = rt.block_on(async {
        SqliteConfig::new(dir.path().join("bench.db"))
            .connect()
            .await
            .expect("open the store")
    });
    let store = Arc::new(store);
    group.bench_function(name, |b| {
        b.iter_custom(|iters| rt.block_on(group_appends(store.clone(), members.clone(), 64, iters)))
    });
    let stats = store.stats();
    eprintln!(
        "{name}: {} writes in {} commits ({:.1} writes per commit)",
        stats.writes,
        stats.commits,
        stats.writes as f64 / stats.commits.max(1) as f64
    );
    rt.block_on(store.close());
    group.finish();
}

/// Writes `n` messages the server took long ago: 1:1, or to a group of 100.
async fn old_messages(store: &SqliteStore, n: u64, members: Option<&[&str]>) {
    let app = AppId::new("bench");
    for i in 0..n {
        let mut d = match members {
            Some(all) => group_delivery("g1", all[i as usize % all.len()], all, "an old message"),
            None => direct_delivery(
                &format!("s{}", i % 100),
                &format!("r{}", i % 97),
                "an old message",
                "",
            ),
        };
        for e in &mut d.entries {
            e.server_time = 1_000 + i as i64;
        }
        store.append(&app, &d).await.expect("append");
    }
}

fn retention_batch(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("SQLite retention batch");
    group.sample_size(10);
    let names: Vec<String> = (0..100).map(|i| format!("member{i:03}")).collect();
    let members: Vec<&str> = names.iter().map(String::as_str).collect();
    for (name, of) in [
        ("one call on 200 old 1:1 messages", None),
        (
            "one call on 200 old messages to a group of 100",
            Some(&members[..]),
        ),
    ] {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = rt.block_on(async {
            SqliteConfig::new(dir.path().join("bench.db"))
                .connect()
                .await
                .expect("open the store")
        });
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut took = Duration::ZERO;
                    for _ in 0..iters {
                        old_messages(&store, 200, of).await;
                        let start = Instant::now();
                        let gone = store
                            .expire(&AppId::new("bench"), 1_000_000, 200)
                            .await
                            .expect("expire");
                        took += start.elapsed();
                        // Until the batch ends, so each iteration starts empty.
                        let mut more = gone.more;
                        while more {
                            more = store
                                .expire(&AppId::new("bench"), 1_000_000, 200)
                                .await
                                .expect("expire")
                                .more;
                        }
                    }
                    took
                })
            })
        });
        rt.block_on(store.close());
    }
    group.finish();
}

criterion_group!(benches, append_batch, group_append, retention_batch);
criterion_main!(benches);
