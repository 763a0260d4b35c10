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
