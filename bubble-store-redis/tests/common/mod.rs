//! Shared by the integration tests: where Redis is, a fresh key prefix per
//! store, and a second, plain client to look at what the adapter wrote.
#![allow(dead_code)] // each test binary uses its own part of this

use std::time::Duration;

use bubble_core::AdapterConfig;
use bubble_store_redis::{RedisConfig, RedisStore};
use redis::aio::MultiplexedConnection;

/// The single server (override with `BUBBLE_REDIS_URL`).
pub fn url() -> String {
    std::env::var("BUBBLE_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The cluster's seed nodes (override with `BUBBLE_REDIS_CLUSTER_URLS`,
/// comma-separated).
pub fn cluster_urls() -> Vec<String> {
    std::env::var("BUBBLE_REDIS_CLUSTER_URLS")
        .unwrap_or_else(|_| {
            "redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103".into()
        })
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// A key prefix no other run uses, so runs share one Redis safely.
pub fn fresh_prefix() -> String {
    format!("bt{:016x}", rand::random::<u64>())
}

/// Short-lived windows: whatever a test leaves behind expires soon.
pub const TEST_RECENT_TTL: Duration = Duration::from_secs(300);

/// Connects with `config`, or fails saying how to start Redis.
pub async fn connect(config: RedisConfig) -> RedisStore {
    let shown = format!("{config:?}");
    config.connect().await.unwrap_or_else(|e| {
        panic!(
            "cannot connect to Redis ({e}) with {shown}.\n\
             Start the local server and cluster with: bash scripts/services/redis.sh"
        )
    })
}

/// The adapter on the single server, under a fresh prefix.
pub async fn single() -> RedisStore {
    connect(
        RedisConfig::new(url())
            .with_key_prefix(fresh_prefix())
            .with_recent_ttl_secs(TEST_RECENT_TTL.as_secs()),
    )
    .await
}

/// The adapter on the cluster, under a fresh prefix.
pub async fn cluster() -> RedisStore {
    connect(
        RedisConfig::default()
            .with_cluster(true)
            .with_urls(cluster_urls())
            .with_key_prefix(fresh_prefix())
            .with_recent_ttl_secs(TEST_RECENT_TTL.as_secs()),
    )
    .await
}

/// A plain connection to the single server, to inspect keys from outside.
pub async fn raw() -> MultiplexedConnection {
    let client = redis::Client::open(url()).expect("a valid URL");
    client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot connect to Redis at {} ({e}).\n\
                 Start it with: bash scripts/services/redis.sh",
                url()
            )
        })
}

/// A plain connection to one cluster node.
pub async fn raw_cluster_node() -> MultiplexedConnection {
    let url = cluster_urls().remove(0);
    let client = redis::Client::open(url.as_str()).expect("a valid URL");
    client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| {
            panic!("cannot reach the Redis Cluster at {url} ({e}); start it with: bash scripts/services/redis.sh")
        })
}

/// The Sentinel set-up's sentinels (override with
/// `BUBBLE_REDIS_SENTINEL_URLS`, comma-separated).
pub fn sentinel_urls() -> Vec<String> {
    std::env::var("BUBBLE_REDIS_SENTINEL_URLS")
        .unwrap_or_else(|_| {
            "redis://127.0.0.1:26401,redis://127.0.0.1:26402,redis://127.0.0.1:26403".into()
        })
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// The name the sentinels watch the master under (override with
/// `BUBBLE_REDIS_SENTINEL_MASTER`).
pub fn sentinel_master() -> String {
    std::env::var("BUBBLE_REDIS_SENTINEL_MASTER").unwrap_or_else(|_| "bubble".into())
}

/// The adapter's config for the Sentinel set-up, under a fresh prefix.
pub fn sentinel_config() -> RedisConfig {
    RedisConfig::default()
        .with_sentinels(sentinel_urls())
        .with_master_name(sentinel_master())
        .with_key_prefix(fresh_prefix())
        .with_recent_ttl_secs(TEST_RECENT_TTL.as_secs())
}

/// A plain connection to one sentinel (or data node) at `url`, if it
/// answers within a second.
pub async fn raw_at(url: &str) -> Option<MultiplexedConnection> {
    let client = redis::Client::open(url).ok()?;
    let connect = client.get_multiplexed_async_connection();
    tokio::time::timeout(Duration::from_secs(1), connect)
        .await
        .ok()?
        .ok()
}

/// What one sentinel says about the master: `SENTINEL MASTER <name>` as
/// field -> value.
pub async fn sentinel_view(
    sentinel: &mut MultiplexedConnection,
) -> Option<std::collections::HashMap<String, String>> {
    redis::cmd("SENTINEL")
        .arg("MASTER")
        .arg(sentinel_master())
        .query_async(sentinel)
        .await
        .ok()
}

/// Whether a sentinel is in TILT mode: its timer ran over 2 s late (a
/// machine too loaded to schedule it), so for the next 30 s it watches but
/// neither fails over nor follows one. Unreachable sentinels count as not.
pub async fn sentinel_in_tilt(sentinel: &mut MultiplexedConnection) -> bool {
    let info: Option<String> = redis::cmd("INFO")
        .arg("SENTINEL")
        .query_async(sentinel)
        .await
        .ok();
    info.is_some_and(|i| i.lines().any(|l| l.trim() == "sentinel_tilt:1"))
}

/// Whether any sentinel is in TILT mode now ([`sentinel_in_tilt`]).
pub async fn any_sentinel_in_tilt() -> bool {
    for url in sentinel_urls() {
        if let Some(mut sentinel) = raw_at(&url).await
            && sentinel_in_tilt(&mut sentinel).await
        {
            return true;
        }
    }
    false
}

/// The master's address (`host:port`) every sentinel names, if they agree,
/// none is in TILT mode, no failover is under way, the master says it is one, and every replica
/// the sentinels see up (at least one, so a failover has somewhere to go)
/// is linked to it: after a failover, once the demoted master follows the
/// new one.
pub async fn settled_master() -> Option<String> {
    let mut agreed: Option<String> = None;
    let mut replicas = 0;
    for url in sentinel_urls() {
        let mut sentinel = raw_at(&url).await?;
        if sentinel_in_tilt(&mut sentinel).await {
            return None;
        }
        let view = sentinel_view(&mut sentinel).await?;
        if view.get("flags").map(String::as_str) != Some("master") {
            return None;
        }
        let addr = format!("{}:{}", view.get("ip")?, view.get("port")?);
        if agreed.as_ref().is_some_and(|a| *a != addr) {
            return None;
        }
        agreed = Some(addr);
        let known: Vec<std::collections::HashMap<String, String>> = redis::cmd("SENTINEL")
            .arg("REPLICAS")
            .arg(sentinel_master())
            .query_async(&mut sentinel)
            .await
            .ok()?;
        replicas = known
            .iter()
            .filter(|r| r.get("flags").is_some_and(|f| !f.contains("s_down")))
            .count();
    }
    let addr = agreed?;
    let mut master = raw_at(&format!("redis://{addr}")).await?;
    let info: String = redis::cmd("INFO")
        .arg("REPLICATION")
        .query_async(&mut master)
        .await
        .ok()?;
    let online = info
        .lines()
        .filter(|l| l.starts_with("slave") && l.contains("state=online"))
        .count();
    let linked = info.contains("role:master") && replicas > 0 && online >= replicas;
    linked.then_some(addr)
}

/// Whether the Sentinel set-up is there. When no sentinel answers, prints
/// that `test` is skipped and answers false, except in CI (`CI=true`),
/// where `scripts/test.sh` started it and its absence is a failure. When
/// it answers, waits (at most 40 s) until it has settled after an earlier
/// failover, or fails.
pub async fn sentinel_ready(test: &str) -> bool {
    let mut reachable = false;
    for url in sentinel_urls() {
        reachable |= raw_at(&url).await.is_some();
    }
    if !reachable {
        let why = format!(
            "no sentinel answers at {}; start them with: bash scripts/services/redis-sentinel.sh",
            sentinel_urls().join(", ")
        );
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{why}");
        }
        // Straight to the stderr handle: the test harness captures
        // `eprintln!` of passing tests, and this line must be seen.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {why}");
        return false;
    }
    let started = std::time::Instant::now();
    // A TILT lasts 30 s: room for one to pass, and the settling after it.
    while started.elapsed() < Duration::from_secs(60) {
        if settled_master().await.is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "the sentinels at {} answer but never agreed on a master with a linked replica, out of TILT mode, in 60 s; \
         run bash scripts/services/redis-sentinel.sh and look at /tmp/bubble-redis-sentinel/*/*.log",
        sentinel_urls().join(", ")
    );
}
