//! The SQLite store passes the whole conformance suite of each port it implements.

use std::sync::Arc;

use bubble_core::AdapterConfig;
use bubble_core::testkit;
use bubble_store_sqlite::{SqliteConfig, SqliteStore};

/// A store on a fresh file in its own temporary directory (kept alive by the
/// returned guard).
async fn fresh_store() -> (Arc<SqliteStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteConfig::new(dir.path().join("bubble.db"))
        .connect()
        .await
        .expect("the store opens");
    (Arc::new(store), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_inbox_conforms() {
    let (store, _dir) = fresh_store().await;
    testkit::inbox(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_groups_conform() {
    let (store, _dir) = fresh_store().await;
    testkit::groups(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_channel_log_conforms() {
    let (store, _dir) = fresh_store().await;
    testkit::channel_log(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_apps_conform() {
    let (store, _dir) = fresh_store().await;
    testkit::apps(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_jobs_conform() {
    let (store, _dir) = fresh_store().await;
    testkit::jobs(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_push_tokens_conform() {
    let (store, _dir) = fresh_store().await;
    testkit::push_tokens(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn all_ports_conform_on_one_shared_file() {
    // The ports share one database and one writer in production.
    let (store, _dir) = fresh_store().await;
    tokio::join!(
        testkit::inbox(store.clone()),
        testkit::groups(store.clone()),
        testkit::channel_log(store.clone()),
        testkit::apps(store.clone()),
        testkit::jobs(store.clone()),
        testkit::push_tokens(store.clone()),
    );
}
