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
    assert_eq!(hits.hits[0].doc.owners, std::slice::from_ref(&bob.user));
    assert_eq!(
        hits.hits[0].doc.conversation,
        Conversation::direct(&alice.user),
        "bob sees his chat with alice"
    );
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

/// An engine on `inbox` and `index` with the test app created.
async fn engine_on(inbox: Arc<MemoryInbox>, index: Arc<MemorySearch>) -> Engine {
    engine_from(
        Engine::builder()
            .inbox(inbox)
            .search(Some(index as Arc<dyn SearchIndex>)),
        |_| {},
    )
    .await
}

fn words(w: &str) -> HistoryQuery {
    HistoryQuery {
        words: w.into(),
        limit: 10,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_group_message_is_one_document_found_by_every_member() {
    let index = Arc::new(MemorySearch::new());
    let e = engine_on(Arc::new(MemoryInbox::new()), index.clone()).await;
    let members: Vec<String> = (0..10).map(|i| format!("u{i}")).collect();
    let members: Vec<&str> = members.iter().map(String::as_str).collect();
    let (u0, _) = login(&e, "u0", "phone").await;
    group_of(&e, &u0, "team", &members).await;
    e.send(&u0, to_group("team", "m", "offsite agenda"))
        .await
        .unwrap();
    e.index_pending().await.unwrap();
    assert_eq!(index.documents(), 1, "one document for ten owners");
    for m in &members {
        let (s, _) = login(&e, m, "phone").await;
        let r = e.search(&s, words("agenda")).await.unwrap();
        assert_eq!(r.total, 1, "{m} finds it");
        assert_eq!(
            r.hits[0].doc.conversation,
            Conversation::group(&GroupId::new("team"))
        );
    }
    let (outsider, _) = login(&e, "u10", "phone").await;
    assert_eq!(e.search(&outsider, words("agenda")).await.unwrap().total, 0);
}

#[tokio::test]
async fn delete_for_me_unindexes_only_the_deleters_copy() {
    let index = Arc::new(MemorySearch::new());
    let e = engine_on(Arc::new(MemoryInbox::new()), index.clone()).await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let sent = e
        .send(&alice, to_user("bob", "m", "keep or delete"))
        .await
        .unwrap();
    e.index_pending().await.unwrap();
    e.delete_for_me(&bob, &sent.server_msg_id).await.unwrap();
    e.index_pending().await.unwrap();
    assert_eq!(e.search(&bob, words("delete")).await.unwrap().total, 0);
    let mut q = words("delete");
    q.conversation = Some(Conversation::direct(&bob.user));
    assert_eq!(
        e.search(&alice, q).await.unwrap().total,
        1,
        "alice still finds it in her chat with bob"
    );
    assert_eq!(index.documents(), 1);
}

#[tokio::test]
async fn a_rebuild_from_the_store_restores_what_owners_may_find() {
    let inbox = Arc::new(MemoryInbox::new());
    let first = engine_on(inbox.clone(), Arc::new(MemorySearch::new())).await;
    let (alice, _) = login(&first, "alice", "phone").await;
    let (bob, _) = login(&first, "bob", "phone").await;
    group_of(&first, &alice, "team", &["alice", "bob", "carol"]).await;
    first
        .send(&alice, to_user("bob", "1", "rebuild direct"))
        .await
        .unwrap();
    first
        .send(&alice, to_group("team", "2", "rebuild group"))
        .await
        .unwrap();
    let deleted = first
        .send(&alice, to_group("team", "3", "rebuild deleted by bob"))
        .await
        .unwrap();
    let recalled = first
        .send(&alice, to_group("team", "4", "rebuild recalled"))
        .await
        .unwrap();
    first
        .delete_for_me(&bob, &deleted.server_msg_id)
        .await
        .unwrap();
    first
        .recall(
            &alice,
            &Conversation::group(&GroupId::new("team")),
            &recalled.server_msg_id,
        )
        .await
        .unwrap();
    // A new, empty index on the same store (a lost or upgraded index).
    let index = Arc::new(MemorySearch::new());
    let second = Engine::builder()
        .inbox(inbox.clone())
        .apps(Arc::new(MemoryApps::new()))
        .search(Some(index.clone() as Arc<dyn SearchIndex>))
        .build()
        .unwrap();
    let mut app = AppConfig::new(APP, "a-secret-of-at-least-thirty-two-bytes");
    app.settings.search = true;
    second.put_app(app).await.unwrap();
    let mut reports = Vec::new();
    let done = second
        .rebuild_search(RebuildScope::All, |p| reports.push(p.messages))
        .await
        .unwrap();
    assert_eq!(done, 3, "the recalled message is left out");
    assert_eq!(reports.last(), Some(&3), "progress reports the count");
    assert_eq!(index.documents(), 3, "one document per message");
    let found = |who: &'static str| {
        let second = second.clone();
        async move {
            let (s, _) = login(&second, who, "phone").await;
            let mut texts: Vec<String> = second
                .search(&s, words("rebuild"))
                .await
                .unwrap()
                .hits
                .into_iter()
                .map(|h| h.doc.text)
                .collect();
            texts.sort();
            texts
        }
    };
    assert_eq!(
        found("alice").await,
        ["rebuild deleted by bob", "rebuild direct", "rebuild group"]
    );
    assert_eq!(found("bob").await, ["rebuild direct", "rebuild group"]);
    assert_eq!(
        found("carol").await,
        ["rebuild deleted by bob", "rebuild group"]
    );
    let (bob2, _) = login(&second, "bob", "tablet").await;
    let mut q = words("rebuild");
    q.conversation = Some(Conversation::direct(&alice.user));
    let r = second.search(&bob2, q).await.unwrap();
    assert_eq!(r.total, 1, "bob's chat with alice, as bob sees it");
    assert_eq!(r.hits[0].doc.text, "rebuild direct");
}

#[tokio::test]
async fn a_rebuild_of_one_app_names_a_missing_app() {
    let e = engine().await;
    let err = e
        .rebuild_search(RebuildScope::App(AppId::new("nope")), |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("nope"), "{err}");
}

/// A memory index that says it needs a rebuild until `rebuilt`, and
/// counts the searches that reached it.
#[derive(Default)]
struct Upgraded {
    inner: MemorySearch,
    pending: std::sync::atomic::AtomicBool,
    searches: std::sync::atomic::AtomicU64,
}

#[async_trait::async_trait]
impl SearchIndex for Upgraded {
    async fn index(&self, docs: &[SearchDoc]) -> Result<()> {
        self.inner.index(docs).await
    }
    async fn remove(&self, app: &AppId, id: &MsgId) -> Result<()> {
        self.inner.remove(app, id).await
    }
    async fn remove_owners(&self, app: &AppId, id: &MsgId, owners: &[UserId]) -> Result<()> {
        self.inner.remove_owners(app, id, owners).await
    }
    async fn clear_app(&self, app: &AppId) -> Result<()> {
        self.inner.clear_app(app).await
    }
    async fn search(&self, query: &SearchQuery) -> Result<SearchResults> {
        self.searches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.search(query).await
    }
    async fn flush(&self) -> Result<()> {
        self.inner.flush().await
    }
    async fn needs_rebuild(&self) -> Result<bool> {
        Ok(self.pending.load(std::sync::atomic::Ordering::Relaxed))
    }
    async fn rebuilt(&self) -> Result<()> {
        self.pending
            .store(false, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

#[tokio::test]
async fn searches_wait_for_a_pending_rebuild_without_reaching_the_index() {
    let index = Arc::new(Upgraded::default());
    index
        .pending
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let e = engine_from(
        Engine::builder().search(Some(index.clone() as Arc<dyn SearchIndex>)),
        |_| {},
    )
    .await;
    let (alice, _) = login(&e, "alice", "phone").await;
    e.send(&alice, to_user("bob", "m", "before the rebuild"))
        .await
        .unwrap();
    let err = e.search(&alice, words("rebuild")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("rebuilt"), "{err}");
    assert_eq!(
        index.searches.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "never asked: an index's Unavailable would trip its breaker"
    );
    e.rebuild_search(RebuildScope::All, |_| {}).await.unwrap();
    assert_eq!(e.search(&alice, words("rebuild")).await.unwrap().total, 1);
}
