//! The tantivy index passes the search part of the conformance suite, in
//! memory and on disk.

use std::sync::Arc;

use bubble_core::testkit;
use bubble_search_tantivy::TantivySearch;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_memory_index_conforms() {
    testkit::search(Arc::new(TantivySearch::in_memory())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_disk_index_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let search = TantivySearch::builder().path(dir.path()).build().unwrap();
    testkit::search(Arc::new(search)).await;
}
