//! The MySQL/MariaDB store passes the conformance suite of every port it implements.

mod common;

use std::sync::Arc;

use bubble_core::AdapterConfig;
use bubble_core::testkit;
use common::on_fresh_db;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_inbox_conforms() {
    on_fresh_db(|db| async move {
        testkit::inbox(Arc::new(db.store().await)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_inbox_conforms_without_batching() {
    on_fresh_db(|db| async move {
        let store = db.config().with_batch_max(1).connect().await.unwrap();
        testkit::inbox(Arc::new(store)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_groups_conform() {
    on_fresh_db(|db| async move {
        testkit::groups(Arc::new(db.store().await)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_channel_log_conforms() {
    on_fresh_db(|db| async move {
        testkit::channel_log(Arc::new(db.store().await)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_apps_conform() {
    on_fresh_db(|db| async move {
        testkit::apps(Arc::new(db.store().await)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_jobs_conform() {
    on_fresh_db(|db| async move {
        testkit::jobs(Arc::new(db.store().await)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_push_tokens_conform() {
    on_fresh_db(|db| async move {
        testkit::push_tokens(Arc::new(db.store().await)).await;
    })
    .await;
}
