//! Store-level appends per second against the local server, 64 concurrent
//! callers on one store (no engine, no network, no client): what one MariaDB
//! path can hold, the bound on what the whole server can do on it.
//!
//! `cargo test -p bubble-store-mysql --release --test throughput -- --ignored --nocapture`
//!
//! Ignored by default: it takes about a minute and its numbers depend on the
//! machine. `BENCH_LOADS` picks loads (comma-separated, lower case:
//! `spread,hot_owner,group10,group100`; default all), `BENCH_CONFIGS` picks
//! store settings (`batched,unbatched`; default both), `BENCH_SECS` sets each
//! run's length (default 4), so an A/B can alternate short runs of one load;
//! `BENCH_BATCH=batch_max,max_connections,writers` tries other batch settings.
//!
//! Every delivery is the way the engine sends it: a client message id (a dedup
//! key) and a search-outbox row, 64-byte bodies.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bubble_core::AdapterConfig;
use bubble_core::AppId;
use bubble_core::ports::{Delivery, InboxStore};
use bubble_core::testkit::{direct_delivery, group_delivery};
use bubble_store_mysql::MysqlStore;
use common::on_fresh_db;

const WRITERS: usize = 64;
/// A 64-byte message body, as in the server-level benchmarks.
const BODY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Load {
    /// Each writer sends 1:1 messages to changing receivers among 1000 users
    /// (2 inbox entries per delivery).
    Spread,
    /// Every writer sends to the same receiver.
    HotOwner,
    /// Each writer sends to one of 16 groups of 10 (10 entries per delivery).
    Group10,
    /// Each writer sends to one of 4 groups of 100 (100 entries per delivery).
    Group100,
}

impl Load {
    const ALL: [Load; 4] = [Load::Spread, Load::HotOwner, Load::Group10, Load::Group100];

    fn name(self) -> &'static str {
        match self {
            Load::Spread => "spread",
            Load::HotOwner => "hot_owner",
            Load::Group10 => "group10",
            Load::Group100 => "group100",
        }
    }

    fn delivery(self, w: usize, i: usize) -> Delivery {
        let me = format!("w{w}");
        let mut d = match self {
            Load::Spread => direct_delivery(
                &me,
                &format!("u{}", (w * 7919 + i * 104_729) % 1000),
                BODY,
                "",
            ),
            Load::HotOwner => direct_delivery(&me, "hub", BODY, ""),
            Load::Group10 | Load::Group100 => {
                let (size, groups) = if self == Load::Group10 {
                    (10, 16)
                } else {
                    (100, 4)
                };
                let g = w % groups;
                // The writer is one of the group's members.
                let members: Vec<String> = std::iter::once(me.clone())
                    .chain((1..size).map(|m| format!("g{g}m{m}")))
                    .collect();
                let refs: Vec<&str> = members.iter().map(String::as_str).collect();
                group_delivery(&format!("g{g}"), &me, &refs, BODY)
            }
        };
        d.client_msg_id = format!("{w}-{i}");
        for e in &mut d.entries {
            e.client_msg_id = d.client_msg_id.clone();
        }
        d.index = true;
        d
    }
}

/// Deliveries per second, entries per second, mean latency in ms.
async fn measure(store: MysqlStore, load: Load, run: Duration, tag: usize) -> (f64, f64, f64) {
    let app = AppId::new(format!("bench-{}-{tag}", load.name()));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let entries = Arc::new(AtomicU64::new(0));
    let latency_us = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let started = Instant::now();
    for w in 0..WRITERS {
        let (store, app, stop, done, entries, latency_us) = (
            store.clone(),
            app.clone(),
            stop.clone(),
            done.clone(),
            entries.clone(),
            latency_us.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let d = load.delivery(w, i);
                let t = Instant::now();
                store.append(&app, &d).await.unwrap();
                latency_us.fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                done.fetch_add(1, Ordering::Relaxed);
                entries.fetch_add(d.entries.len() as u64, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    tokio::time::sleep(run).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed) as f64;
    let mean_ms = latency_us.load(Ordering::Relaxed) as f64 / n / 1000.0;
    (
        n / secs,
        entries.load(Ordering::Relaxed) as f64 / secs,
        mean_ms,
    )
}

fn chosen<T: Copy>(var: &str, all: &[T], name: impl Fn(T) -> &'static str) -> Vec<T> {
    match std::env::var(var) {
        Ok(list) => list
            .split(',')
            .map(|want| {
                *all.iter()
                    .find(|x| name(**x) == want.trim())
                    .unwrap_or_else(|| panic!("{var}: unknown entry {want:?}"))
            })
            .collect(),
        Err(_) => all.to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check: run with --ignored --nocapture"]
async fn appends_per_second_with_64_writers() {
    let loads = chosen("BENCH_LOADS", &Load::ALL, Load::name);
    // (name, batch_max, max_connections, batch writers): the defaults, and
    // one delivery per transaction.
    let all_configs = [("batched", 32, 16, 8), ("unbatched", 1, 16, 8)];
    let mut configs = chosen("BENCH_CONFIGS", &all_configs, |c| c.0);
    // `BENCH_BATCH=batch_max,max_connections,writers` replaces them with one
    // other setting, for trying sizes.
    if let Ok(spec) = std::env::var("BENCH_BATCH") {
        let n: Vec<usize> = spec
            .split(',')
            .map(|x| x.trim().parse().expect("BENCH_BATCH: three numbers"))
            .collect();
        assert_eq!(n.len(), 3, "BENCH_BATCH=batch_max,max_connections,writers");
        configs = vec![("custom", n[0], n[1] as u32, n[2])];
    }
    let run = Duration::from_secs(
        std::env::var("BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(4),
    );
    on_fresh_db(move |db| async move {
        for (tag, load) in loads.into_iter().enumerate() {
            for (name, batch_max, max_connections, writers) in &configs {
                let store = db
                    .config()
                    .with_batch_max(*batch_max)
                    .with_batch_writers(*writers)
                    .with_max_connections(*max_connections)
                    .connect()
                    .await
                    .unwrap();
                let (per_sec, entries_per_sec, mean_ms) =
                    measure(store.clone(), load, run, tag).await;
                println!(
                    "store-level {}: {name} (batch_max {batch_max}, {max_connections} \
                     connections): {per_sec:.0} deliveries/s, {entries_per_sec:.0} entries/s, \
                     mean latency {mean_ms:.1} ms",
                    load.name()
                );
                store.close().await;
            }
        }
    })
    .await;
}
