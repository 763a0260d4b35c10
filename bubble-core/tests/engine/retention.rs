//! An app's `retention_days`: its old messages go, with their search
//! documents; other apps' stay.

use super::*;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// An indexed 1:1 message from alice to bob the server took `days_ago`
/// days ago (written to the store directly: the engine stamps now).
fn sent_days_ago(text: &str, days_ago: i64) -> Delivery {
    let mut d = bubble_core::testkit::direct_delivery("alice", "bob", text, "");
    let at = now_millis() - days_ago * DAY_MS;
    for e in &mut d.entries {
        e.server_time = at;
        e.create_time = at;
    }
    d.index = true;
    d
}

fn needles() -> HistoryQuery {
    HistoryQuery {
        words: "needle".into(),
        limit: 10,
        ..Default::default()
    }
}

#[tokio::test]
async fn messages_older_than_the_apps_retention_days_go_with_their_search_documents() {
    let inbox = Arc::new(MemoryInbox::new());
    let channels = Arc::new(MemoryChannelLog::new());
    let index = Arc::new(MemorySearch::new());
    let e = engine_from(
        Engine::builder()
            .inbox(inbox.clone())
            .channels(channels.clone())
            .search(Some(index as Arc<dyn SearchIndex>)),
        |s| s.retention_days = 30,
    )
    .await;
    e.put_app(AppConfig::new(
        "keeps",
        "a-secret-of-at-least-thirty-two-bytes",
    ))
    .await
    .unwrap();
    let (acme, keeps) = (AppId::new(APP), AppId::new("keeps"));
    for d in [
        sent_days_ago("needle from last year", 365),
        sent_days_ago("needle from last week", 7),
    ] {
        inbox.append(&acme, &d).await.unwrap();
    }
    inbox
        .append(&keeps, &sent_days_ago("needle kept forever", 365))
        .await
        .unwrap();
    let mut in_super_group = bubble_core::testkit::channel_message("big", "alice", "old", "");
    in_super_group.server_time = now_millis() - 365 * DAY_MS;
    channels.append(&acme, &in_super_group).await.unwrap();
    e.index_pending().await.unwrap();
    let (bob, _) = login(&e, "bob", "phone").await;
    assert_eq!(e.search(&bob, needles()).await.unwrap().total, 2);

    assert_eq!(
        e.expire_messages().await.unwrap(),
        2,
        "last year's message and super-group entry, past 30 days"
    );
    let big = GroupId::new("big");
    assert!(
        channels
            .range(&acme, &big, 0, 10)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
    assert_eq!(channels.last_seq(&acme, &big).await.unwrap(), 1);
    let hits = e.search(&bob, needles()).await.unwrap();
    let texts: Vec<&str> = hits.hits.iter().map(|h| h.doc.text.as_str()).collect();
    assert_eq!(
        texts,
        ["needle from last week"],
        "its search document went too"
    );
    let page = inbox.pull(&acme, &bob.user, 0, 10).await.unwrap();
    assert_eq!(page.entries.len(), 1);
    let kept = inbox.pull(&keeps, &bob.user, 0, 10).await.unwrap();
    assert_eq!(kept.entries.len(), 1, "an app without retention keeps all");
    assert_eq!(e.expire_messages().await.unwrap(), 0, "nothing more is due");
}
