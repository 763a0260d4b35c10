//! The tantivy index passes the search part of the conformance suite, in
//! memory and on disk.

use std::sync::Arc;

use bubble_core::AdapterConfig;
use bubble_core::testkit;
use bubble_search_tantivy::TantivyConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_memory_index_conforms() {
    testkit::search(Arc::new(
        TantivyConfig::default()
            .with_in_memory(true)
            .connect()
            .await
            .unwrap(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_disk_index_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let search = TantivyConfig::new(dir.path()).connect().await.unwrap();
    testkit::search(Arc::new(search)).await;
}
