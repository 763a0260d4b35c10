//! The engine on this index: what it acknowledged is searchable after a
//! crash, through the durable outbox and an idempotent index.

use std::sync::Arc;

use bubble_core::memory::{MemoryApps, MemoryInbox};
use bubble_core::ports::{InboxStore, SearchDoc, SearchIndex};
use bubble_core::*;
use bubble_search_tantivy::{TantivyConfig, TantivySearch};

const APP: &str = "acme";

fn engine(inbox: &Arc<MemoryInbox>, apps: &Arc<MemoryApps>, index: &TantivySearch) -> Engine {
    Engine::builder()
        .inbox(inbox.clone())
        .apps(apps.clone())
        .search(Some(Arc::new(index.clone()) as Arc<dyn SearchIndex>))
        .build()
        .unwrap()
}

async fn login(e: &Engine, user: &str) -> Session {
    let identity = ports::Identity {
        app: AppId::new(APP),
        user: UserId::new(user),
        expires_at: i64::MAX,
    };
    e.connect(&identity, &DeviceId::new("phone"), "ios")
        .await
        .unwrap()
        .0
}

fn text_to(user: &str, client_msg_id: &str, text: &str) -> SendRequest {
    SendRequest {
        to: Conversation::direct(&UserId::new(user)),
        client_msg_id: client_msg_id.to_owned(),
        client_seq: 1,
        create_time: 1_700_000_000_000,
        content: Content::text(text),
    }
}

fn words(w: &str) -> HistoryQuery {
    HistoryQuery {
        words: w.into(),
        limit: 10,
        ..Default::default()
    }
}

#[tokio::test]
async fn messages_acknowledged_before_a_crash_are_indexed_on_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Arc::new(MemoryInbox::new());
    let apps = Arc::new(MemoryApps::new());

    let index = TantivyConfig::new(dir.path()).connect().await.unwrap();
    let first = engine(&inbox, &apps, &index);
    first
        .put_app(AppConfig::new(APP, "a-secret-of-at-least-thirty-two-bytes"))
        .await
        .unwrap();
    let alice = login(&first, "alice").await;
    first
        .send(&alice, text_to("bob", "1", "大家好，明天下午开会"))
        .await
        .unwrap();
    // The process dies before its indexer ran: engine and index are gone,
    // the inbox (a durable store in production) keeps the outbox.
    drop(first);
    drop(index);

    let index = TantivyConfig::new(dir.path()).connect().await.unwrap();
    let second = engine(&inbox, &apps, &index);
    assert_eq!(
        second.index_pending().await.unwrap(),
        1,
        "one outbox row for both owners"
    );
    assert_eq!(index.num_docs(), 1, "one document for both owners");
    let bob = login(&second, "bob").await;
    let r = second.search(&bob, words("开会")).await.unwrap();
    assert_eq!(r.total, 1);
    assert_eq!(r.hits[0].doc.owners, [UserId::new("bob")]);
    assert_eq!(
        r.hits[0].doc.conversation,
        Conversation::direct(&UserId::new("alice")),
        "bob sees his chat with alice"
    );
    let alice = login(&second, "alice").await;
    let r = second.search(&alice, words("开会")).await.unwrap();
    assert_eq!(
        r.hits[0].doc.conversation,
        Conversation::direct(&UserId::new("bob"))
    );
    assert_eq!(r.hits[0].doc.text, "大家好，明天下午开会");
}

#[tokio::test]
async fn an_outbox_batch_indexed_twice_is_found_once() {
    let inbox = Arc::new(MemoryInbox::new());
    let apps = Arc::new(MemoryApps::new());
    let index = TantivyConfig::default()
        .with_in_memory(true)
        .connect()
        .await
        .unwrap();
    let e = engine(&inbox, &apps, &index);
    e.put_app(AppConfig::new(APP, "a-secret-of-at-least-thirty-two-bytes"))
        .await
        .unwrap();
    let alice = login(&e, "alice").await;
    e.send(&alice, text_to("bob", "1", "report due friday"))
        .await
        .unwrap();
    // A crash after the flush but before the outbox rows were deleted:
    // the same tasks are indexed again.
    let replay: Vec<SearchDoc> = inbox
        .pending_index(100)
        .await
        .unwrap()
        .into_iter()
        .map(|t| SearchDoc::of_entry(&t.app, &t.entry, t.owners.clone()).unwrap())
        .collect();
    assert_eq!(replay.len(), 1);
    e.index_pending().await.unwrap();
    index.index(&replay).await.unwrap();
    index.flush().await.unwrap();
    let bob = login(&e, "bob").await;
    assert_eq!(e.search(&bob, words("report")).await.unwrap().total, 1);
}

// A message and its recall drained in one outbox batch: the engine applies
// them in order, and this adapter keeps that order within a flush.
#[tokio::test]
async fn a_message_recalled_before_the_indexer_ran_is_not_found() {
    let inbox = Arc::new(MemoryInbox::new());
    let apps = Arc::new(MemoryApps::new());
    let index = TantivyConfig::default()
        .with_in_memory(true)
        .connect()
        .await
        .unwrap();
    let e = engine(&inbox, &apps, &index);
    e.put_app(AppConfig::new(APP, "a-secret-of-at-least-thirty-two-bytes"))
        .await
        .unwrap();
    let alice = login(&e, "alice").await;
    let bob = login(&e, "bob").await;
    let sent = e
        .send(&alice, text_to("bob", "1", "wrong chat oops"))
        .await
        .unwrap();
    e.recall(
        &alice,
        &Conversation::direct(&bob.user),
        &sent.server_msg_id,
    )
    .await
    .unwrap();
    // Message and recall are drained in one outbox batch.
    e.index_pending().await.unwrap();
    assert_eq!(e.search(&bob, words("oops")).await.unwrap().total, 0);
    assert_eq!(e.search(&alice, words("oops")).await.unwrap().total, 0);
}
