//! The Redis adapter passes the whole conformance suite, on one server and
//! on a Redis Cluster. Needs `scripts/services/redis.sh`.

use std::sync::Arc;

use bubble_core::testkit;

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cache_conforms() {
    testkit::cache(Arc::new(common::single().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_presence_conforms() {
    testkit::presence(Arc::new(common::single().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster_cache_conforms() {
    testkit::cache(Arc::new(common::cluster().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster_presence_conforms() {
    testkit::presence(Arc::new(common::cluster().await)).await;
}
