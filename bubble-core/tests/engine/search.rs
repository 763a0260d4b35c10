//! History search and the indexer.

use super::*;

#[tokio::test]
async fn one_indexer_pass_drains_a_backlog_of_full_batches() {
    let e = engine_from(
        Engine::builder().config(EngineConfig {
            index_batch: 4,
            ..Default::default()
        }),
        |_| {},
    )
    .await;
    let (alice, _) = login(&e, "alice", "phone").await;
    for i in 0..7 {
        e.send(
            &alice,
            to_user("bob", &format!("m{i}"), "needle in a haystack"),
        )
        .await
        .unwrap();
    }
    // Seven messages, one outbox row each (the memory store keeps one per
    // delivery, both owners in it): batches of 4 and 3.
    assert_eq!(e.index_pending().await.unwrap(), 7);
    let q = HistoryQuery {
        words: "needle".into(),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(e.search(&alice, q).await.unwrap().total, 7);
    assert_eq!(e.index_pending().await.unwrap(), 0, "nothing left over");
}

#[tokio::test]
async fn search_finds_only_the_callers_own_messages() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let (carol, _) = login(&e, "carol", "phone").await;
    e.send(&alice, to_user("bob", "1", "大家好，明天开会"))
        .await
        .unwrap();
    e.send(&carol, to_user("carol2", "2", "大家 private"))
        .await
        .unwrap();
    e.index_pending().await.unwrap();
    let q = HistoryQuery {
        words: "大家".into(),
        limit: 10,
        ..Default::default()
    };
    let hits = e.search(&bob, q.clone()).await.unwrap();
    assert_eq!(hits.total, 1);
    assert_eq!(hits.hits[0].doc.owner, bob.user);
    assert_eq!(
        e.search(&alice, q.clone()).await.unwrap().total,
        1,
        "the sender finds her own copy"
    );
    assert_eq!(
        e.search(&carol, q).await.unwrap().total,
        1,
        "carol finds only hers"
    );
}

#[tokio::test]
async fn messages_acknowledged_before_a_crash_are_indexed_on_the_next_start() {
    let inbox = Arc::new(MemoryInbox::new());
    let index = Arc::new(MemorySearch::new());
    let apps = Arc::new(MemoryApps::new());
    let build = || {
        Engine::builder()
            .inbox(inbox.clone())
            .apps(apps.clone())
            .search(Some(index.clone()))
            .build()
            .unwrap()
    };
    let first = build();
    first
        .put_app(AppConfig::new(APP, "a-secret-of-at-least-thirty-two-bytes"))
        .await
        .unwrap();
    let (alice, _) = login(&first, "alice", "phone").await;
    first
        .send(&alice, to_user("bob", "m", "acknowledged but not indexed"))
        .await
        .unwrap();
    drop(first); // the process dies before its indexer ran
    let second = build();
    assert_eq!(
        second.index_pending().await.unwrap(),
        1,
        "the message was waiting (one outbox row for both owners)"
    );
    let (bob, _) = login(&second, "bob", "phone").await;
    let q = HistoryQuery {
        words: "acknowledged".into(),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(second.search(&bob, q).await.unwrap().total, 1);
}
