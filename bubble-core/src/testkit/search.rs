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
    recalled_messages_are_not_found_by_anyone,
    indexing_the_same_message_again_replaces_it,
    search_is_isolated_between_apps,
    one_document_is_found_by_each_owner_and_nobody_else,
    hits_show_the_message_as_the_searching_owner_sees_it,
    conversation_filter_works_for_each_party_of_a_direct_message,
    conversation_filter_works_for_every_member_of_a_group,
    delete_for_me_leaves_the_other_owners,
    the_last_owner_leaving_removes_the_document,
    indexing_a_message_again_merges_its_owners,
    reindexing_is_idempotent,
    writes_apply_in_call_order_before_a_flush,
    a_message_removed_then_indexed_again_is_found_once,
    clear_app_removes_only_that_apps_documents,
    an_index_that_never_changed_format_needs_no_rebuild,
];

/// A 1:1 message from `peer` as `owner` sees it, owned by `owner` alone.
fn doc(app: &AppId, owner: &str, peer: &str, time: i64, text: &str) -> SearchDoc {
    SearchDoc {
        app: app.clone(),
        server_msg_id: test_msg_id(),
        owners: vec![UserId::new(owner)],
        viewer: UserId::new(owner),
        conversation: Conversation::direct(&UserId::new(peer)),
        sender: UserId::new(peer),
        server_time: time,
        text: text.to_owned(),
    }
}

/// A message `from` sends to group `group`, owned by every member.
fn group_doc(app: &AppId, group: &str, from: &str, members: &[&str], text: &str) -> SearchDoc {
    SearchDoc {
        app: app.clone(),
        server_msg_id: test_msg_id(),
        owners: members.iter().map(|m| UserId::new(*m)).collect(),
        viewer: UserId::new(from),
        conversation: Conversation::group(&GroupId::new(group)),
        sender: UserId::new(from),
        server_time: 1000,
        text: text.to_owned(),
    }
}

/// A 1:1 message `from` -> `to`, one document owned by both parties.
fn direct_doc(app: &AppId, from: &str, to: &str, text: &str) -> SearchDoc {
    SearchDoc {
        app: app.clone(),
        server_msg_id: test_msg_id(),
        owners: vec![UserId::new(from), UserId::new(to)],
        viewer: UserId::new(from),
        conversation: Conversation::direct(&UserId::new(to)),
        sender: UserId::new(from),
        server_time: 1000,
        text: text.to_owned(),
    }
}

/// The ids `owner` finds for `words`.
async fn found(s: &Arc<dyn SearchIndex>, app: &AppId, owner: &str, words: &str) -> Vec<MsgId> {
    ids(&s.search(&query(app, owner, words)).await.unwrap())
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
    assert!(r.hits.iter().all(|h| h.doc.owners == [UserId::new("ann")]));
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

async fn recalled_messages_are_not_found_by_anyone(s: Arc<dyn SearchIndex>, app: AppId) {
    let gone = group_doc(&app, "g", "ann", &["ann", "bo", "cy"], "oops wrong chat");
    let kept = group_doc(&app, "g", "ann", &["ann", "bo", "cy"], "oops right chat");
    put(&s, &[gone.clone(), kept.clone()]).await;
    s.remove(&app, &gone.server_msg_id).await.unwrap();
    s.flush().await.unwrap();
    for owner in ["ann", "bo", "cy"] {
        assert_eq!(
            found(&s, &app, owner, "oops").await,
            vec![kept.server_msg_id],
            "a recall removes the message for {owner} too, and only that message"
        );
    }
    s.remove(&app, &gone.server_msg_id).await.unwrap();
    s.remove(&app, &test_msg_id()).await.unwrap();
    s.flush().await.unwrap();
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

async fn one_document_is_found_by_each_owner_and_nobody_else(s: Arc<dyn SearchIndex>, app: AppId) {
    let members: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    let members: Vec<&str> = members.iter().map(String::as_str).collect();
    let d = group_doc(&app, "team", "m0", &members, "quarterly roadmap");
    put(&s, std::slice::from_ref(&d)).await;
    for m in &members {
        let r = s.search(&query(&app, m, "roadmap")).await.unwrap();
        assert_eq!(ids(&r), vec![d.server_msg_id], "{m} owns it");
        assert_eq!(r.total, 1, "one document, however many owners");
    }
    for outsider in ["m10", "m", "team"] {
        assert!(
            found(&s, &app, outsider, "roadmap").await.is_empty(),
            "{outsider:?} is not an owner"
        );
    }
}

async fn hits_show_the_message_as_the_searching_owner_sees_it(s: Arc<dyn SearchIndex>, app: AppId) {
    let d = direct_doc(&app, "ann", "bo", "see you at noon");
    let g = group_doc(
        &app,
        "team",
        "ann",
        &["ann", "bo", "cy"],
        "see the team at noon",
    );
    put(&s, &[d.clone(), g.clone()]).await;
    let r = s.search(&query(&app, "bo", "noon")).await.unwrap();
    assert_eq!(r.total, 2);
    for hit in &r.hits {
        assert_eq!(
            hit.doc.owners,
            [UserId::new("bo")],
            "no other owner is named"
        );
        assert_eq!(hit.doc.viewer.as_str(), "bo");
        assert_eq!(hit.doc.sender.as_str(), "ann");
        assert_eq!(hit.doc.server_time, 1000);
        let want = if hit.doc.server_msg_id == d.server_msg_id {
            assert_eq!(hit.doc.text, "see you at noon");
            Conversation::direct(&UserId::new("ann"))
        } else {
            assert_eq!(hit.doc.text, "see the team at noon");
            Conversation::group(&GroupId::new("team"))
        };
        assert_eq!(hit.doc.conversation, want, "bo's view of the conversation");
    }
    let r = s.search(&query(&app, "ann", "you")).await.unwrap();
    assert_eq!(
        r.hits[0].doc.conversation,
        Conversation::direct(&UserId::new("bo"))
    );
}

async fn conversation_filter_works_for_each_party_of_a_direct_message(
    s: Arc<dyn SearchIndex>,
    app: AppId,
) {
    let ann_bo = direct_doc(&app, "ann", "bo", "dinner plans");
    let bo_ann = direct_doc(&app, "bo", "ann", "dinner plans too");
    let ann_cy = direct_doc(&app, "ann", "cy", "dinner plans elsewhere");
    let ann_self = direct_doc(&app, "ann", "ann", "dinner plans note to self");
    let ann_self = SearchDoc {
        owners: vec![UserId::new("ann")],
        ..ann_self
    };
    put(
        &s,
        &[
            ann_bo.clone(),
            bo_ann.clone(),
            ann_cy.clone(),
            ann_self.clone(),
        ],
    )
    .await;
    let within = |owner: &str, peer: &str| {
        let mut q = query(&app, owner, "dinner");
        q.conversation = Some(Conversation::direct(&UserId::new(peer)));
        let s = s.clone();
        async move { ids(&s.search(&q).await.unwrap()) }
    };
    let sorted = |mut v: Vec<MsgId>| {
        v.sort();
        v
    };
    assert_eq!(
        within("ann", "bo").await,
        sorted(vec![ann_bo.server_msg_id, bo_ann.server_msg_id]),
        "ann's chat with bo holds what either wrote"
    );
    assert_eq!(
        within("bo", "ann").await,
        sorted(vec![ann_bo.server_msg_id, bo_ann.server_msg_id]),
        "and bo sees the same chat as his chat with ann"
    );
    assert_eq!(within("ann", "cy").await, vec![ann_cy.server_msg_id]);
    assert_eq!(within("cy", "ann").await, vec![ann_cy.server_msg_id]);
    assert_eq!(
        within("ann", "ann").await,
        vec![ann_self.server_msg_id],
        "a note to self is not in every chat of ann's"
    );
    assert!(within("bo", "bo").await.is_empty());
    assert!(
        within("bo", "cy").await.is_empty(),
        "bo is no party of ann and cy's chat"
    );
}

async fn conversation_filter_works_for_every_member_of_a_group(
    s: Arc<dyn SearchIndex>,
    app: AppId,
) {
    let team = group_doc(&app, "team", "ann", &["ann", "bo", "cy"], "release today");
    let other = group_doc(
        &app,
        "other",
        "cy",
        &["ann", "bo", "cy"],
        "release tomorrow",
    );
    put(&s, &[team.clone(), other]).await;
    for member in ["ann", "bo", "cy"] {
        let mut q = query(&app, member, "release");
        q.conversation = Some(Conversation::group(&GroupId::new("team")));
        assert_eq!(ids(&s.search(&q).await.unwrap()), vec![team.server_msg_id]);
    }
}

async fn delete_for_me_leaves_the_other_owners(s: Arc<dyn SearchIndex>, app: AppId) {
    let d = group_doc(
        &app,
        "team",
        "ann",
        &["ann", "bo", "cy"],
        "embarrassing typo",
    );
    let dm = direct_doc(&app, "ann", "bo", "embarrassing photo");
    put(&s, &[d.clone(), dm.clone()]).await;
    s.remove_owners(&app, &d.server_msg_id, &[UserId::new("bo")])
        .await
        .unwrap();
    s.remove_owners(&app, &dm.server_msg_id, &[UserId::new("ann")])
        .await
        .unwrap();
    s.flush().await.unwrap();
    assert_eq!(
        found(&s, &app, "bo", "embarrassing").await,
        vec![dm.server_msg_id]
    );
    assert_eq!(
        found(&s, &app, "ann", "embarrassing").await,
        vec![d.server_msg_id]
    );
    assert_eq!(
        found(&s, &app, "cy", "embarrassing").await,
        vec![d.server_msg_id]
    );
    let mut q = query(&app, "bo", "photo");
    q.conversation = Some(Conversation::direct(&UserId::new("ann")));
    let r = s.search(&q).await.unwrap();
    assert_eq!(
        ids(&r),
        vec![dm.server_msg_id],
        "the rewritten document keeps bo's view"
    );
    assert_eq!(r.hits[0].doc.text, "embarrassing photo");
    assert_eq!(r.hits[0].doc.sender.as_str(), "ann");
}

async fn the_last_owner_leaving_removes_the_document(s: Arc<dyn SearchIndex>, app: AppId) {
    let d = direct_doc(&app, "ann", "bo", "ephemeral");
    put(&s, std::slice::from_ref(&d)).await;
    s.remove_owners(
        &app,
        &d.server_msg_id,
        &[UserId::new("ann"), UserId::new("bo")],
    )
    .await
    .unwrap();
    s.remove_owners(&app, &d.server_msg_id, &[UserId::new("cy")])
        .await
        .unwrap();
    s.flush().await.unwrap();
    assert!(found(&s, &app, "ann", "ephemeral").await.is_empty());
    assert!(found(&s, &app, "bo", "ephemeral").await.is_empty());
    put(
        &s,
        &[SearchDoc {
            owners: vec![UserId::new("cy")],
            ..d.clone()
        }],
    )
    .await;
    assert_eq!(
        found(&s, &app, "cy", "ephemeral").await,
        vec![d.server_msg_id],
        "indexed anew after it went, it holds only the new owners"
    );
    assert!(found(&s, &app, "ann", "ephemeral").await.is_empty());
}

async fn indexing_a_message_again_merges_its_owners(s: Arc<dyn SearchIndex>, app: AppId) {
    // A store that gives one task per owner, split across outbox batches.
    let whole = group_doc(&app, "team", "ann", &["ann", "bo", "cy", "di"], "merge me");
    let part = |owners: &[&str]| SearchDoc {
        owners: owners.iter().map(|o| UserId::new(*o)).collect(),
        ..whole.clone()
    };
    put(&s, &[part(&["ann", "bo"])]).await;
    put(&s, &[part(&["cy"])]).await;
    s.index(&[part(&["di"]), part(&["bo"])]).await.unwrap();
    s.flush().await.unwrap();
    for owner in ["ann", "bo", "cy", "di"] {
        let r = s.search(&query(&app, owner, "merge")).await.unwrap();
        assert_eq!(ids(&r), vec![whole.server_msg_id], "{owner} was merged in");
        assert_eq!(r.total, 1);
    }
}

async fn reindexing_is_idempotent(s: Arc<dyn SearchIndex>, app: AppId) {
    let d = group_doc(&app, "team", "ann", &["ann", "bo", "cy"], "retried batch");
    let dm = direct_doc(&app, "ann", "bo", "retried direct");
    for _ in 0..3 {
        put(&s, &[d.clone(), dm.clone()]).await;
    }
    s.index(&[d.clone(), d.clone()]).await.unwrap();
    s.flush().await.unwrap();
    for owner in ["ann", "bo"] {
        let r = s.search(&query(&app, owner, "retried")).await.unwrap();
        assert_eq!(
            r.total, 2,
            "{owner}: one hit per message, however often indexed"
        );
    }
    assert_eq!(
        found(&s, &app, "cy", "retried").await,
        vec![d.server_msg_id]
    );
}

async fn writes_apply_in_call_order_before_a_flush(s: Arc<dyn SearchIndex>, app: AppId) {
    let d = group_doc(&app, "team", "ann", &["ann", "bo"], "unflushed");
    let gone = group_doc(&app, "team", "ann", &["ann", "bo"], "unflushed recalled");
    s.index(&[d.clone(), gone.clone()]).await.unwrap();
    s.remove_owners(&app, &d.server_msg_id, &[UserId::new("ann")])
        .await
        .unwrap();
    s.index(&[SearchDoc {
        owners: vec![UserId::new("cy")],
        ..d.clone()
    }])
    .await
    .unwrap();
    s.remove(&app, &gone.server_msg_id).await.unwrap();
    s.flush().await.unwrap();
    assert!(found(&s, &app, "ann", "unflushed").await.is_empty());
    assert_eq!(
        found(&s, &app, "bo", "unflushed").await,
        vec![d.server_msg_id]
    );
    assert_eq!(
        found(&s, &app, "cy", "unflushed").await,
        vec![d.server_msg_id]
    );
}

/// A removal and a later index of the same message (a replayed outbox
/// batch after a recall): the later one is kept, once, whether the removal
/// was flushed before, or both wait for the same flush.
async fn a_message_removed_then_indexed_again_is_found_once(s: Arc<dyn SearchIndex>, app: AppId) {
    let flushed = direct_doc(&app, "ann", "bo", "comeback flushed");
    put(&s, std::slice::from_ref(&flushed)).await;
    s.remove(&app, &flushed.server_msg_id).await.unwrap();
    s.flush().await.unwrap();
    assert!(found(&s, &app, "ann", "comeback").await.is_empty());
    put(&s, std::slice::from_ref(&flushed)).await;

    let pending = direct_doc(&app, "ann", "bo", "comeback pending");
    put(&s, std::slice::from_ref(&pending)).await;
    s.remove(&app, &pending.server_msg_id).await.unwrap();
    s.index(std::slice::from_ref(&pending)).await.unwrap();
    s.flush().await.unwrap();

    let unflushed = direct_doc(&app, "ann", "bo", "comeback unflushed");
    s.index(std::slice::from_ref(&unflushed)).await.unwrap();
    s.remove(&app, &unflushed.server_msg_id).await.unwrap();
    s.index(std::slice::from_ref(&unflushed)).await.unwrap();
    s.flush().await.unwrap();

    let mut want = vec![
        flushed.server_msg_id,
        pending.server_msg_id,
        unflushed.server_msg_id,
    ];
    want.sort();
    let r = s.search(&query(&app, "ann", "comeback")).await.unwrap();
    assert_eq!(r.total, 3, "each once: {:?}", ids(&r));
    assert_eq!(ids(&r), want);
}

async fn clear_app_removes_only_that_apps_documents(s: Arc<dyn SearchIndex>, app: AppId) {
    let other = super::fresh_app();
    let mine = direct_doc(&app, "ann", "bo", "tenant history");
    let theirs = direct_doc(&other, "ann", "bo", "tenant history");
    put(&s, &[mine, theirs.clone()]).await;
    s.clear_app(&app).await.unwrap();
    s.flush().await.unwrap();
    assert!(found(&s, &app, "ann", "tenant").await.is_empty());
    assert_eq!(
        found(&s, &other, "ann", "tenant").await,
        vec![theirs.server_msg_id]
    );
    s.clear_app(&other).await.unwrap();
    s.flush().await.unwrap();
}

async fn an_index_that_never_changed_format_needs_no_rebuild(s: Arc<dyn SearchIndex>, _app: AppId) {
    assert!(
        !s.needs_rebuild().await.unwrap(),
        "a fresh index holds everything indexed into it"
    );
}
