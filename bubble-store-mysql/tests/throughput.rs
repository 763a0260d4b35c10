//! Appends per second against the local server, 64 concurrent writers
//! (`cargo test -p bubble-store-mysql --release --test throughput -- --ignored --nocapture`).
//! Ignored by default: it takes about 30 seconds and its numbers depend on the machine.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bubble_core::AdapterConfig;
use bubble_core::AppId;
use bubble_core::ports::InboxStore;
use bubble_core::testkit::{direct_delivery, group_delivery};
use bubble_store_mysql::MysqlStore;
use common::on_fresh_db;

const WRITERS: usize = 64;
const RUN: Duration = Duration::from_secs(4);

#[derive(Clone, Copy, Debug)]
enum Load {
    /// Each writer sends 1:1 messages to changing receivers among 1000 users.
    Spread,
    /// Every writer sends to the same receiver.
    HotOwner,
    /// Each writer sends to a group of 20 (21 inbox rows per delivery).
    Group20,
}

async fn measure(store: MysqlStore, load: Load) -> (f64, f64) {
    let app = AppId::new(format!("bench-{load:?}"));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let latency_us = Arc::new(AtomicU64::new(0));
    let members: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    let mut tasks = Vec::new();
    let started = Instant::now();
    for w in 0..WRITERS {
        let (store, app, stop, done, latency_us, members) = (
            store.clone(),
            app.clone(),
            stop.clone(),
            done.clone(),
            latency_us.clone(),
            members.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let me = format!("w{w}");
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let d = match load {
                    Load::Spread => direct_delivery(
                        &me,
                        &format!("u{}", (w * 7919 + i * 104_729) % 1000),
                        "hello",
                        "",
                    ),
                    Load::HotOwner => direct_delivery(&me, "hub", "hello", ""),
                    Load::Group20 => {
                        let mut all: Vec<&str> = members.iter().map(String::as_str).collect();
                        all.push(&me);
                        group_delivery(&format!("g{}", w % 4), &me, &all, "hello")
                    }
                };
                let t = Instant::now();
                store.append(&app, &d).await.unwrap();
                latency_us.fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    tokio::time::sleep(RUN).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let n = done.load(Ordering::Relaxed) as f64;
    let per_sec = n / started.elapsed().as_secs_f64();
    let mean_ms = latency_us.load(Ordering::Relaxed) as f64 / n / 1000.0;
    (per_sec, mean_ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check: run with --ignored --nocapture"]
async fn appends_per_second_with_64_writers() {
    on_fresh_db(|db| async move {
        for load in [Load::Spread, Load::HotOwner, Load::Group20] {
            for (label, batch_max, max_connections, writers) in [
                ("one delivery per transaction, 16 connections", 1, 16, 8),
                ("one delivery per transaction, 64 connections", 1, 64, 8),
                (
                    "batched (batch_max 32, 8 writers), 16 connections",
                    32,
                    16,
                    8,
                ),
            ] {
                let store = db
                    .config()
                    .with_batch_max(batch_max)
                    .with_batch_writers(writers)
                    .with_max_connections(max_connections)
                    .connect()
                    .await
                    .unwrap();
                let (per_sec, mean_ms) = measure(store.clone(), load).await;
                println!("{load:?}: {label}: {per_sec:.0} appends/s, mean latency {mean_ms:.1} ms");
                store.close().await;
            }
        }
    })
    .await;
}
