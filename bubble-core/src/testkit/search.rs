//! Conformance checks for [`SearchIndex`].

use std::sync::Arc;

use super::checks;
use super::fixtures::test_msg_id;
use crate::ports::*;
use crate::types::*;

/// Runs every search check against `index`.
pub async fn search(index: Arc<dyn SearchIndex>) {
    super::run_checks("SearchIndex", index, CHECKS).await;
}

const CHECKS: &[super::Check<dyn SearchIndex>] = checks![dyn SearchIndex;
    finds_english_words_case_insensitively,
    finds_chinese_words_inside_longer_text,
    returns_only_the_owners_messages,
    filters_by_conversation,
    filters_by_time_range,
    pages_with_offset_limit_and_total,
    removed_documents_are_not_found,
    indexing_the_same_message_again_replaces_it,
    search_is_isolated_between_apps,
];

fn doc(app: &AppId, owner: &str, peer: &str, time: i64, text: &str) -> SearchDoc {
    SearchDoc {
        app: app.clone(),
        owner: UserId::new(owner),
        server_msg_id: test_msg_id(),
        conversation: Conversation::direct(&UserId::new(peer)),
        sender: UserId::new(peer),
        server_time: time,
        text: text.to_owned(),
    }
}

fn query(app: &AppId, owner: &str, words: &str) -> SearchQuery {
    SearchQuery {
        app: app.clone(),
        owner: UserId::new(owner),
        words: words.to_owned(),
        conversation: None,
        from_time: None,
        to_time: None,
        offset: 0,
        limit: 20,
    }
}

async fn put(s: &Arc<dyn SearchIndex>, docs: &[SearchDoc]) {
    s.index(docs).await.unwrap();
    s.flush().await.unwrap();
}

fn ids(r: &SearchResults) -> Vec<MsgId> {
    let mut v: Vec<MsgId> = r.hits.iter().map(|h| h.doc.server_msg_id).collect();
    v.sort();
    v
}

async fn finds_english_words_case_insensitively(s: Arc<dyn SearchIndex>, app: AppId) {
    let hit = doc(&app, "ann", "bo", 1000, "Meet me at the Station tomorrow");
    let miss = doc(&app, "ann", "bo", 1001, "see you later");
    put(&s, &[hit.clone(), miss]).await;
    let r = s.search(&query(&app, "ann", "station")).await.unwrap();
    assert_eq!(ids(&r), vec![hit.server_msg_id]);
    assert_eq!(r.total, 1);
    assert_eq!(r.hits[0].doc.text, hit.text, "hits carry the document");
    assert_eq!(r.hits[0].doc.conversation, hit.conversation);
}

async fn finds_chinese_words_inside_longer_text(s: Arc<dyn SearchIndex>, app: AppId) {
    let greeting = doc(&app, "ann", "bo", 1000, "大家好");
    let other = doc(&app, "ann", "bo", 1001, "今天天气很好，我们去公园吧");
    let unrelated = doc(&app, "ann", "bo", 1002, "明天见");
    put(&s, &[greeting.clone(), other.clone(), unrelated]).await;
    let r = s.search(&query(&app, "ann", "大家")).await.unwrap();
    assert_eq!(
        ids(&r),
        vec![greeting.server_msg_id],
        "\"大家\" finds \"大家好\""
    );
    let r = s.search(&query(&app, "ann", "公园")).await.unwrap();
    assert_eq!(
        ids(&r),
        vec![other.server_msg_id],
        "a word inside a sentence"
    );
}

async fn returns_only_the_owners_messages(s: Arc<dyn SearchIndex>, app: AppId) {
    let mine = doc(&app, "ann", "bo", 1000, "secret plan");
    let theirs = doc(&app, "bo", "ann", 1000, "secret plan");
    put(&s, &[mine.clone(), theirs]).await;
    let r = s.search(&query(&app, "ann", "secret")).await.unwrap();
    assert_eq!(ids(&r), vec![mine.server_msg_id]);
    assert!(r.hits.iter().all(|h| h.doc.owner.as_str() == "ann"));
    assert!(
        s.search(&query(&app, "cy", "secret"))
            .await
            .unwrap()
            .hits
            .is_empty()
    );
}

async fn filters_by_conversation(s: Arc<dyn SearchIndex>, app: AppId) {
    let with_bo = doc(&app, "ann", "bo", 1000, "lunch today");
    let with_cy = doc(&app, "ann", "cy", 1000, "lunch today");
    let mut in_group = doc(&app, "ann", "cy", 1000, "lunch today");
    in_group.conversation = Conversation::group(&GroupId::new("bo"));
    put(&s, &[with_bo.clone(), with_cy, in_group]).await;
    let mut q = query(&app, "ann", "lunch");
    q.conversation = Some(Conversation::direct(&UserId::new("bo")));
    let r = s.search(&q).await.unwrap();
    assert_eq!(
        ids(&r),
        vec![with_bo.server_msg_id],
        "the kind is part of the filter"
    );
}

async fn filters_by_time_range(s: Arc<dyn SearchIndex>, app: AppId) {
    let docs: Vec<SearchDoc> = (0..5)
        .map(|i| doc(&app, "ann", "bo", 1000 + i * 100, "report"))
        .collect();
    put(&s, &docs).await;
    let mut q = query(&app, "ann", "report");
    q.from_time = Some(1100);
    q.to_time = Some(1300);
    let r = s.search(&q).await.unwrap();
    let mut want: Vec<MsgId> = docs[1..=3].iter().map(|d| d.server_msg_id).collect();
    want.sort();
    assert_eq!(ids(&r), want, "bounds are inclusive");
}

async fn pages_with_offset_limit_and_total(s: Arc<dyn SearchIndex>, app: AppId) {
    let docs: Vec<SearchDoc> = (0..12)
        .map(|i| doc(&app, "ann", "bo", 1000 + i, "standup notes"))
        .collect();
    put(&s, &docs).await;
    let mut seen = Vec::new();
    for page in 0..3 {
        let mut q = query(&app, "ann", "standup");
        q.offset = page * 5;
        q.limit = 5;
        let r = s.search(&q).await.unwrap();
        assert_eq!(r.total, 12, "total counts every match");
        seen.extend(r.hits.iter().map(|h| h.doc.server_msg_id));
    }
    assert_eq!(seen.len(), 12, "5 + 5 + 2");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 12, "no hit appears on two pages");
}

async fn removed_documents_are_not_found(s: Arc<dyn SearchIndex>, app: AppId) {
    let gone = doc(&app, "ann", "bo", 1000, "oops wrong chat");
    let bos = SearchDoc {
        owner: UserId::new("bo"),
        ..gone.clone()
    };
    put(&s, &[gone.clone(), bos.clone()]).await;
    s.remove(&app, &gone.owner, &gone.server_msg_id)
        .await
        .unwrap();
    s.flush().await.unwrap();
    assert!(
        s.search(&query(&app, "ann", "oops"))
            .await
            .unwrap()
            .hits
            .is_empty()
    );
    assert_eq!(
        ids(&s.search(&query(&app, "bo", "oops")).await.unwrap()),
        vec![bos.server_msg_id],
        "removing one owner's copy leaves the other's"
    );
}

async fn indexing_the_same_message_again_replaces_it(s: Arc<dyn SearchIndex>, app: AppId) {
    let d = doc(&app, "ann", "bo", 1000, "version one");
    put(&s, std::slice::from_ref(&d)).await;
    put(
        &s,
        &[SearchDoc {
            text: "version two".into(),
            ..d.clone()
        }],
    )
    .await;
    let r = s.search(&query(&app, "ann", "version")).await.unwrap();
    assert_eq!(
        r.total, 1,
        "re-indexing (a retried outbox batch) never duplicates"
    );
    assert_eq!(r.hits[0].doc.text, "version two");
}

async fn search_is_isolated_between_apps(s: Arc<dyn SearchIndex>, app: AppId) {
    let other = super::fresh_app();
    put(&s, &[doc(&app, "ann", "bo", 1000, "tenant data")]).await;
    assert!(
        s.search(&query(&other, "ann", "tenant"))
            .await
            .unwrap()
            .hits
            .is_empty()
    );
}
