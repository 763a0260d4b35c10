//! How many `dedup_put` + `push_recent` pairs (what the engine does per
//! accepted message and owner) the adapter gets through with 64 concurrent
//! tasks, and how long `routes_of` takes for a 500-member group.
//!
//! ```text
//! bash scripts/services/redis.sh
//! cargo run -p bubble-store-redis --release --example throughput            # one server
//! cargo run -p bubble-store-redis --release --example throughput -- cluster # the local cluster
//! ```
//!
//! Writes under a fresh key prefix; everything it writes expires within a
//! minute.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bubble_core::AdapterConfig;
use bubble_core::ports::{Cache, Presence, Route};
use bubble_core::testkit::{direct_message, test_msg_id};
use bubble_core::{AppId, DeviceId, NodeId, SendReceipt, UserId};
use bubble_store_redis::RedisConfig;

const TASKS: usize = 64;
const RUN_FOR: Duration = Duration::from_secs(5);
const GROUP: usize = 500;
const LOOKUPS: u32 = 100;

#[tokio::main]
async fn main() -> bubble_core::Result<()> {
    let cluster = std::env::args().any(|a| a == "cluster");
    let prefix = format!("bench{:08x}", rand::random::<u32>());
    let config = if cluster {
        RedisConfig::default().with_cluster(true).with_urls([
            "redis://127.0.0.1:7101",
            "redis://127.0.0.1:7102",
            "redis://127.0.0.1:7103",
        ])
    } else {
        RedisConfig::new("redis://127.0.0.1:6379")
    };
    let store = Arc::new(
        config
            .with_key_prefix(prefix)
            .with_recent_ttl_secs(60)
            .connect()
            .await?,
    );
    let app = AppId::new("bench");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (store, app) = (store.clone(), app.clone());
        tasks.push(tokio::spawn(async move {
            let owner = format!("user{t}");
            let sender = UserId::new(&owner);
            let mut latencies = Vec::new();
            let mut version = 0u64;
            while started.elapsed() < RUN_FOR {
                version += 1;
                let (_, mut entry) = direct_message("peer", &owner, "hello, a short text message");
                entry.version = version;
                let receipt = SendReceipt {
                    server_msg_id: test_msg_id(),
                    version,
                    seq: 0,
                    server_time: 0,
                    duplicate: false,
                    prev_version: 0,
                };
                let t0 = Instant::now();
                store
                    .dedup_put(
                        &app,
                        &sender,
                        &format!("c{version}"),
                        &receipt,
                        Duration::from_secs(60),
                    )
                    .await?;
                store.push_recent(&app, version - 1, &entry, 200).await?;
                latencies.push(t0.elapsed());
            }
            Ok::<_, bubble_core::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("task")?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    println!(
        "{} ({} tasks, {:.1} s): {} pairs, {:.0} pairs/s ({:.0} Redis calls/s); pair latency p50 {:?} p99 {:?} max {:?}",
        if cluster { "cluster" } else { "one server" },
        TASKS,
        elapsed,
        latencies.len(),
        latencies.len() as f64 / elapsed,
        2.0 * latencies.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        pct(1.0),
    );

    // Fan-out looks up a whole group's routes at once.
    let users: Vec<UserId> = (0..GROUP)
        .map(|i| UserId::new(format!("member{i}")))
        .collect();
    for (i, user) in users.iter().enumerate() {
        let route = Route {
            user: user.clone(),
            device: DeviceId::new("phone"),
            platform: "ios".into(),
            node: NodeId::new("node-1"),
            session: i as u64,
            since: 0,
            background: false,
        };
        store
            .register(&app, &route, Duration::from_secs(60))
            .await?;
    }
    let t0 = Instant::now();
    for _ in 0..LOOKUPS {
        assert_eq!(store.routes_of(&app, &users).await?.len(), GROUP);
    }
    println!(
        "routes_of({GROUP} online users), one caller: {:?} per lookup",
        t0.elapsed() / LOOKUPS
    );
    Ok(())
}
