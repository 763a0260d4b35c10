//! The `SearchIndex` conformance suite against a live Elasticsearch.
//!
//! No cluster runs on the machines that build bubble: without
//! `BUBBLE_ES_URL` the test prints that it was skipped and passes. With it
//! (`BUBBLE_ES_URL=http://127.0.0.1:9200 cargo test -p bubble-search-es`),
//! it creates a fresh index, runs every check, and deletes the index.

mod common;

use std::sync::Arc;

use bubble_core::AdapterConfig;
use bubble_core::ports::{SearchDoc, SearchIndex, SearchQuery};
use bubble_core::{AppId, Conversation, ErrorKind, MsgId, UserId};
use bubble_search_es::{EsConfig, EsSearch};

/// `BUBBLE_ES_USERNAME` and `BUBBLE_ES_PASSWORD` log in to a cluster with security on.
async fn connect(url: &str, index: &str) -> EsSearch {
    let mut config = EsConfig::new([url])
        .with_index(index)
        .with_shards(1)
        .with_replicas(0);
    if let (Ok(user), Ok(password)) = (
        std::env::var("BUBBLE_ES_USERNAME"),
        std::env::var("BUBBLE_ES_PASSWORD"),
    ) {
        config = config.with_username(user).with_password(password);
    }
    config
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot reach Elasticsearch at {url}: {e}"))
}

/// Runs `body` against a fresh index and deletes the index afterwards,
/// also when `body` panics.
async fn with_fresh_index<F, Fut>(url: &str, body: F)
where
    F: FnOnce(EsSearch) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let es = connect(url, &common::fresh_index()).await;
    let outcome = tokio::spawn(body(es.clone())).await;
    es.delete_index().await.expect("the test index is deleted");
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn elasticsearch_search_passes_the_conformance_suite() {
    let Some(url) = common::live_url("elasticsearch_search_passes_the_conformance_suite") else {
        return;
    };
    with_fresh_index(&url, |es| async move {
        bubble_core::testkit::search(Arc::new(es)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_chinese_character_finds_the_messages_that_contain_it() {
    let Some(url) =
        common::live_url("a_single_chinese_character_finds_the_messages_that_contain_it")
    else {
        return;
    };
    with_fresh_index(&url, |es| async move {
        let app = AppId::new("app1");
        let doc = SearchDoc {
            app: app.clone(),
            owners: vec![UserId::new("ann")],
            viewer: UserId::new("ann"),
            server_msg_id: MsgId([7; 16]),
            conversation: Conversation::direct(&UserId::new("bo")),
            sender: UserId::new("bo"),
            server_time: 1000,
            text: "今天天气很好".into(),
        };
        es.index(std::slice::from_ref(&doc)).await.unwrap();
        es.flush().await.unwrap();
        let query = |words: &str| SearchQuery {
            app: app.clone(),
            owner: UserId::new("ann"),
            words: words.into(),
            conversation: None,
            from_time: None,
            to_time: None,
            offset: 0,
            limit: 10,
        };
        for words in ["好", "天气", "天气很好"] {
            assert_eq!(es.search(&query(words)).await.unwrap().total, 1, "{words}");
        }
        for words in ["气天", "很天"] {
            assert_eq!(
                es.search(&query(words)).await.unwrap().total,
                0,
                "{words}: characters present but not adjacent in that order"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_twice_to_the_same_index_is_fine() {
    let Some(url) = common::live_url("connecting_twice_to_the_same_index_is_fine") else {
        return;
    };
    with_fresh_index(&url, |es| async move {
        let url = es.config().urls[0].clone();
        let again = connect(&url, &es.config().index).await;
        again.flush().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmanaged_missing_index_is_not_found_at_connect() {
    let Some(url) = common::live_url("an_unmanaged_missing_index_is_not_found_at_connect") else {
        return;
    };
    let mut config = EsConfig::new([url.as_str()])
        .with_index(common::fresh_index())
        .with_manage_index(false);
    if let (Ok(user), Ok(password)) = (
        std::env::var("BUBBLE_ES_USERNAME"),
        std::env::var("BUBBLE_ES_PASSWORD"),
    ) {
        config = config.with_username(user).with_password(password);
    }
    let e = config.connect().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}
