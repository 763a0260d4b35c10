//! What survives a restart: flushed documents, and nothing twice when a
//! batch is replayed after a crash.

use bubble_core::AdapterConfig;
use bubble_core::ports::{SearchDoc, SearchIndex, SearchQuery};
use bubble_core::{AppId, Conversation, ErrorKind, MsgId, UserId};
use bubble_search_tantivy::{TantivyConfig, TantivySearch, TokenizerKind};

fn doc(id: u8, text: &str) -> SearchDoc {
    SearchDoc {
        app: AppId::new("app"),
        owners: vec![UserId::new("ann")],
        viewer: UserId::new("ann"),
        server_msg_id: MsgId([id; 16]),
        conversation: Conversation::direct(&UserId::new("bo")),
        sender: UserId::new("bo"),
        server_time: 1_000 + id as i64,
        text: text.to_owned(),
    }
}

fn query(words: &str) -> SearchQuery {
    SearchQuery {
        app: AppId::new("app"),
        owner: UserId::new("ann"),
        words: words.to_owned(),
        conversation: None,
        from_time: None,
        to_time: None,
        offset: 0,
        limit: 20,
    }
}

async fn open(dir: &std::path::Path) -> TantivySearch {
    TantivyConfig::new(dir).connect().await.unwrap()
}

#[tokio::test]
async fn flushed_documents_are_found_after_reopening_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path()).await;
    index.index(&[doc(1, "大家好，周末去爬山")]).await.unwrap();
    index.flush().await.unwrap();
    drop(index);

    let index = open(dir.path()).await;
    let r = index.search(&query("爬山")).await.unwrap();
    assert_eq!(r.total, 1);
    assert_eq!(
        r.hits[0].doc,
        doc(1, "大家好，周末去爬山"),
        "the whole document comes back"
    );
}

#[tokio::test]
async fn documents_not_flushed_are_not_visible_and_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path()).await;
    index.index(&[doc(1, "unflushed words")]).await.unwrap();
    assert_eq!(
        index.search(&query("unflushed")).await.unwrap().total,
        0,
        "searches see only flushed documents"
    );
    // A crash before the flush: the engine's outbox still holds the entry
    // and replays it on start.
    drop(index);
    let index = open(dir.path()).await;
    assert_eq!(index.search(&query("unflushed")).await.unwrap().total, 0);
}

#[tokio::test]
async fn a_batch_replayed_after_a_restart_is_not_duplicated() {
    let dir = tempfile::tempdir().unwrap();
    let batch = [
        doc(1, "replayed message"),
        doc(2, "another replayed message"),
    ];
    let index = open(dir.path()).await;
    index.index(&batch).await.unwrap();
    index.flush().await.unwrap();
    // The process died before the outbox rows were deleted: the engine
    // indexes the same batch again on start.
    drop(index);
    let index = open(dir.path()).await;
    index.index(&batch).await.unwrap();
    index.flush().await.unwrap();
    assert_eq!(index.search(&query("replayed")).await.unwrap().total, 2);
    assert_eq!(index.num_docs(), 2);
}

#[tokio::test]
async fn an_edit_of_the_oldest_or_the_newest_committed_message_replaces_its_document() {
    // A message dated after every committed document is added without a
    // look in the segments; these are dated within them, so they must be
    // found and replaced, whichever segment holds them.
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path()).await;
    for id in 1..=4 {
        index.index(&[doc(id, "before the edit")]).await.unwrap();
        index.flush().await.unwrap();
    }
    let mut oldest = doc(1, "after the edit");
    oldest.owners.push(UserId::new("cy"));
    index
        .index(&[oldest, doc(4, "after the edit")])
        .await
        .unwrap();
    index.flush().await.unwrap();
    assert_eq!(index.num_docs(), 4, "replaced, not added");
    assert_eq!(index.search(&query("before")).await.unwrap().total, 2);
    assert_eq!(index.search(&query("after")).await.unwrap().total, 2);
    let cy = SearchQuery {
        owner: UserId::new("cy"),
        ..query("after")
    };
    assert_eq!(index.search(&cy).await.unwrap().total, 1, "owners merged");
}

#[tokio::test]
async fn the_same_message_twice_in_one_batch_keeps_the_last() {
    let index = TantivyConfig::default()
        .with_in_memory(true)
        .connect()
        .await
        .unwrap();
    index
        .index(&[doc(1, "first words"), doc(1, "second words")])
        .await
        .unwrap();
    index.flush().await.unwrap();
    let r = index.search(&query("words")).await.unwrap();
    assert_eq!(r.total, 1);
    assert_eq!(r.hits[0].doc.text, "second words");
}

#[tokio::test]
async fn a_remove_after_an_index_in_one_flush_wins() {
    let index = TantivyConfig::default()
        .with_in_memory(true)
        .connect()
        .await
        .unwrap();
    index.index(&[doc(1, "recalled soon")]).await.unwrap();
    index
        .remove(&AppId::new("app"), &MsgId([1; 16]))
        .await
        .unwrap();
    index.flush().await.unwrap();
    assert_eq!(index.search(&query("recalled")).await.unwrap().total, 0);
}

#[tokio::test]
async fn a_second_writer_on_the_same_directory_is_refused_as_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path()).await;
    let err = TantivyConfig::new(dir.path()).connect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

#[cfg(feature = "jieba")]
#[tokio::test]
async fn an_index_refuses_to_open_with_another_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()).await);
    let err = TantivyConfig::new(dir.path())
        .with_tokenizer(TokenizerKind::Jieba)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("tokenizer"), "{err}");
}

#[tokio::test]
async fn reopening_keeps_the_tokenizer_the_index_was_built_with() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()).await);
    assert_eq!(open(dir.path()).await.tokenizer(), TokenizerKind::CjkBigram);
}
