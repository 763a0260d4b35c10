//! The in-memory adapters pass the whole conformance suite.

use std::sync::Arc;

use bubble_core::memory::*;
use bubble_core::testkit;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_inbox_conforms() {
    testkit::inbox(Arc::new(MemoryInbox::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_groups_conform() {
    testkit::groups(Arc::new(MemoryGroups::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_channel_log_conforms() {
    testkit::channel_log(Arc::new(MemoryChannelLog::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_apps_conform() {
    testkit::apps(Arc::new(MemoryApps::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_cache_conforms() {
    testkit::cache(Arc::new(MemoryCache::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_presence_conforms() {
    testkit::presence(Arc::new(MemoryPresence::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_search_conforms() {
    testkit::search(Arc::new(MemorySearch::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_discovery_conforms() {
    testkit::discovery(
        Arc::new(MemoryDiscovery::new()),
        testkit::DiscoveryOptions::default(),
    )
    .await;
}
