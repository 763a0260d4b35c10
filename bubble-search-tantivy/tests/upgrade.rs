//! An index directory in the format before one document per message (one
//! per owner) is never served: it is moved aside, and the new index
//! answers `Unavailable` until a rebuild from the store has run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bubble_core::memory::{MemoryApps, MemoryInbox};
use bubble_core::ports::{Identity, SearchIndex, SearchQuery};
use bubble_core::*;
use bubble_search_tantivy::TantivyConfig;
use tantivy::schema::{
    FAST, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::{Index, TantivyDocument};

const APP: &str = "acme";

/// Writes an index in the previous format at `path`: one document per
/// owner, its owner a single raw field.
fn write_old_format(path: &Path) {
    std::fs::create_dir_all(path).unwrap();
    let mut b = Schema::builder();
    let key = b.add_text_field("key", STRING);
    let app = b.add_text_field("app", STRING | STORED);
    let owner = b.add_text_field("owner", STRING | STORED);
    let msg_id = b.add_text_field("msg_id", STORED);
    let conversation = b.add_text_field("conversation", STRING | STORED);
    let sender = b.add_text_field("sender", STRING | STORED);
    let time = b.add_i64_field("server_time", INDEXED | FAST | STORED);
    let text = b.add_text_field(
        "text",
        TextOptions::default()
            .set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("bubble_cjk_bigram")
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            )
            .set_stored(),
    );
    let index = Index::create_in_dir(path, b.build()).unwrap();
    // Any tokenizer will do for the one old document.
    index.tokenizers().register(
        "bubble_cjk_bigram",
        tantivy::tokenizer::SimpleTokenizer::default(),
    );
    let mut w = index.writer_with_num_threads(1, 15_000_000).unwrap();
    let mut d = TantivyDocument::new();
    d.add_text(key, "5|acme|ann|01");
    d.add_text(app, APP);
    d.add_text(owner, "ann");
    d.add_text(msg_id, MsgId([1; 16]).to_hex());
    d.add_text(conversation, "1|bo");
    d.add_text(sender, "bo");
    d.add_i64(time, 1_000);
    d.add_text(text, "an old message");
    w.add_document(d).unwrap();
    w.commit().unwrap();
}

fn moved_aside(parent: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("search.old-")
        })
        .collect()
}

fn query(owner: &str, words: &str) -> SearchQuery {
    SearchQuery {
        app: AppId::new(APP),
        owner: UserId::new(owner),
        words: words.into(),
        conversation: None,
        from_time: None,
        to_time: None,
        offset: 0,
        limit: 10,
    }
}

#[tokio::test]
async fn an_old_format_index_is_moved_aside_and_refuses_searches_until_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("search");
    write_old_format(&path);

    let index = TantivyConfig::new(&path).connect().await.unwrap();
    assert!(index.needs_rebuild());
    assert!(SearchIndex::needs_rebuild(&index).await.unwrap());
    let aside = moved_aside(dir.path());
    assert_eq!(aside.len(), 1, "the old directory is kept: {aside:?}");
    assert!(Index::open_in_dir(&aside[0]).is_ok(), "and still opens");
    assert_eq!(index.num_docs(), 0, "the new index starts empty");
    let err = index.search(&query("ann", "old")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        err.to_string().contains("reindex"),
        "says what to do: {err}"
    );

    // A restart before the rebuild still knows.
    drop(index);
    let index = TantivyConfig::new(&path).connect().await.unwrap();
    assert!(index.needs_rebuild(), "the mark survives a restart");
    assert_eq!(moved_aside(dir.path()).len(), 1, "nothing moved twice");

    index.rebuilt().await.unwrap();
    assert!(!index.needs_rebuild());
    assert_eq!(index.search(&query("ann", "old")).await.unwrap().total, 0);
    drop(index);
    let index = TantivyConfig::new(&path).connect().await.unwrap();
    assert!(!index.needs_rebuild(), "the mark is gone for good");
}

#[tokio::test]
async fn an_old_format_index_is_rebuilt_from_the_store_through_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("search");
    let inbox = Arc::new(MemoryInbox::new());
    let apps = Arc::new(MemoryApps::new());
    let build = |index: Option<Arc<dyn SearchIndex>>| {
        Engine::builder()
            .inbox(inbox.clone())
            .apps(apps.clone())
            .search(index)
            .build()
            .unwrap()
    };
    // History written while the index was in the old format.
    let before = build(None);
    before
        .put_app(AppConfig::new(APP, "a-secret-of-at-least-thirty-two-bytes"))
        .await
        .unwrap();
    let identity = |user: &str| Identity {
        app: AppId::new(APP),
        user: UserId::new(user),
        expires_at: i64::MAX,
    };
    let (ann, _) = before
        .connect(&identity("ann"), &DeviceId::new("phone"), "ios")
        .await
        .unwrap();
    for i in 0..30 {
        before
            .send(
                &ann,
                SendRequest {
                    to: Conversation::direct(&UserId::new("bo")),
                    client_msg_id: format!("m{i}"),
                    client_seq: i,
                    create_time: 1,
                    content: Content::text(format!("history number {i}")),
                },
            )
            .await
            .unwrap();
    }
    write_old_format(&path);

    let index = TantivyConfig::new(&path).connect().await.unwrap();
    let after = build(Some(Arc::new(index.clone())));
    assert!(after.search_needs_rebuild().await.unwrap());
    let indexed = after
        .rebuild_search(RebuildScope::All, |_| {})
        .await
        .unwrap();
    assert_eq!(indexed, 30);
    assert!(!after.search_needs_rebuild().await.unwrap());
    assert_eq!(index.num_docs(), 30, "one document per message");
    let (bo, _) = after
        .connect(&identity("bo"), &DeviceId::new("phone"), "ios")
        .await
        .unwrap();
    let q = HistoryQuery {
        words: "history".into(),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(after.search(&bo, q.clone()).await.unwrap().total, 30);
    assert_eq!(after.search(&ann, q).await.unwrap().total, 30);
}

#[tokio::test]
async fn an_index_in_the_current_format_is_opened_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("search");
    let index = TantivyConfig::new(&path).connect().await.unwrap();
    assert!(!index.needs_rebuild());
    drop(index);
    let index = TantivyConfig::new(&path).connect().await.unwrap();
    assert!(!index.needs_rebuild());
    assert!(moved_aside(dir.path()).is_empty());
}
