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
async fn memory_jobs_conform() {
    testkit::jobs(Arc::new(MemoryJobs::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_push_tokens_conform() {
    testkit::push_tokens(Arc::new(MemoryPushTokens::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_discovery_conforms() {
    testkit::discovery(
        Arc::new(MemoryDiscovery::new()),
        testkit::DiscoveryOptions::default(),
    )
    .await;
}

/// The breaker's wrapper passes every method through, the defaulted ones
/// included: a method it forgot would answer "not implemented" from a
/// store that implements it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guarded_adapters_conform() {
    use bubble_core::breaker::{Breaker, BreakerConfig};
    use bubble_core::guarded::Guarded;
    let breaker = || Arc::new(Breaker::new("test", BreakerConfig::default()));
    testkit::inbox(Arc::new(Guarded::new(
        Arc::new(MemoryInbox::new()),
        breaker(),
    )))
    .await;
    testkit::channel_log(Arc::new(Guarded::new(
        Arc::new(MemoryChannelLog::new()),
        breaker(),
    )))
    .await;
    testkit::groups(Arc::new(Guarded::new(
        Arc::new(MemoryGroups::new()),
        breaker(),
    )))
    .await;
    testkit::jobs(Arc::new(Guarded::new(
        Arc::new(MemoryJobs::new()),
        breaker(),
    )))
    .await;
    testkit::push_tokens(Arc::new(Guarded::new(
        Arc::new(MemoryPushTokens::new()),
        breaker(),
    )))
    .await;
}
