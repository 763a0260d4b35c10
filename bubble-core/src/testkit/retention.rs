//! Conformance checks for [`InboxStore::expire`] (an app's `retention_days`).

use std::collections::HashSet;
use std::sync::Arc;

use super::checks;
use super::fixtures::*;
use crate::ports::*;
use crate::types::*;

pub(super) const CHECKS: &[super::Check<dyn InboxStore>] = checks![dyn InboxStore;
    expire_deletes_old_messages_for_every_owner_and_keeps_newer_ones,
    expire_never_gives_a_version_again,
    a_newer_version_with_an_older_time_is_not_given_again_either,
    expired_unread_stops_counting_and_a_conversation_whose_last_message_went_leaves_the_list,
    expire_takes_the_oldest_first_in_bounded_batches,
    expire_leaves_other_apps_alone,
    an_expired_mention_stops_marking_its_conversation,
];

/// What the checks pass as `sent_before`: long after `OLD` (the fixtures'
/// time of old messages), long before now.
const CUTOFF: i64 = 2_000_000;

/// `d` as if the server had taken it at `at` (ms).
fn sent_at(mut d: Delivery, at: i64) -> Delivery {
    for e in &mut d.entries {
        e.server_time = at;
        e.create_time = at;
    }
    d
}

fn id(d: &Delivery) -> MsgId {
    d.entries[0].server_msg_id
}

async fn append(s: &Arc<dyn InboxStore>, app: &AppId, d: &Delivery) {
    s.append(app, d).await.unwrap();
}

/// Calls `expire` until nothing older is left; every id it named.
async fn expire_all(s: &Arc<dyn InboxStore>, app: &AppId) -> HashSet<MsgId> {
    let mut ids = HashSet::new();
    for _ in 0..100 {
        let batch = s.expire(app, CUTOFF, 100).await.unwrap();
        ids.extend(batch.messages);
        if !batch.more {
            return ids;
        }
    }
    panic!("expire still said `more` after 100 calls");
}

async fn pulled(s: &Arc<dyn InboxStore>, app: &AppId, owner: &str) -> Vec<MsgId> {
    let page = s.pull(app, &UserId::new(owner), 0, 100).await.unwrap();
    assert!(!page.has_more, "one page holds what is left");
    page.entries.iter().map(|e| e.server_msg_id).collect()
}

async fn expire_deletes_old_messages_for_every_owner_and_keeps_newer_ones(
    s: Arc<dyn InboxStore>,
    app: AppId,
) {
    let old_direct = sent_at(direct_delivery("alice", "bob", "old hi", ""), OLD);
    let mut old_group = sent_at(
        group_delivery("g", "alice", &["alice", "bob", "carol"], "old all"),
        OLD + 1,
    );
    old_group.index = true;
    let new_direct = direct_delivery("alice", "bob", "new hi", "");
    let new_group = group_delivery("g", "carol", &["alice", "bob", "carol"], "new all");
    if super::unsupported("InboxStore", "expire", &s.expire(&app, CUTOFF, 100).await) {
        return;
    }
    for d in [&old_direct, &old_group, &new_direct, &new_group] {
        append(&s, &app, d).await;
    }
    let reactions = ReactionLimits {
        per_message: 20,
        per_user: 3,
    };
    if s.react(
        &app,
        &id(&old_group),
        &UserId::new("bob"),
        "👍",
        true,
        reactions,
    )
    .await
    .is_err()
    {
        eprintln!("testkit InboxStore: reactions not supported; not checked under expire");
    }

    let expired = expire_all(&s, &app).await;
    assert_eq!(
        expired,
        HashSet::from([id(&old_direct), id(&old_group)]),
        "expire names each old message once and no newer one"
    );
    for owner in ["alice", "bob"] {
        assert_eq!(
            pulled(&s, &app, owner).await,
            [id(&new_direct), id(&new_group)],
            "{owner} keeps only the newer messages"
        );
    }
    assert_eq!(pulled(&s, &app, "carol").await, [id(&new_group)]);
    for owner in ["alice", "bob", "carol"] {
        let u = UserId::new(owner);
        assert_eq!(s.get(&app, &u, &id(&old_group)).await.unwrap(), None);
        assert!(
            s.get(&app, &u, &id(&new_group)).await.unwrap().is_some(),
            "{owner} still gets the newer message"
        );
        let history = s
            .history(&app, &u, &Conversation::group(&GroupId::new("g")), 0, 10)
            .await;
        if let Ok(history) = history {
            let ids: Vec<MsgId> = history.entries.iter().map(|e| e.server_msg_id).collect();
            assert_eq!(ids, [id(&new_group)], "{owner}'s group history");
        }
    }
    if let Ok(r) = s
        .reactions(&app, &[id(&old_group)], &UserId::new("bob"))
        .await
    {
        assert!(r.is_empty(), "an expired message's reactions go: {r:?}");
    }
    let pending = s.pending_index(1_000).await.unwrap();
    assert!(
        pending.iter().all(|t| t.app != app),
        "an expired message leaves the search outbox: {pending:?}"
    );
    let again = s.expire(&app, CUTOFF, 100).await.unwrap();
    assert_eq!(again, Expired::default(), "a second sweep finds nothing");
}

async fn expire_never_gives_a_version_again(s: Arc<dyn InboxStore>, app: AppId) {
    if super::unsupported("InboxStore", "expire", &s.expire(&app, CUTOFF, 100).await) {
        return;
    }
    for (i, text) in ["one", "two", "three"].into_iter().enumerate() {
        let d = sent_at(direct_delivery("dave", "erin", text, ""), OLD + i as i64);
        append(&s, &app, &d).await;
    }
    let dave = UserId::new("dave");
    assert_eq!(s.last_version(&app, &dave).await.unwrap(), 3);
    assert_eq!(expire_all(&s, &app).await.len(), 3);
    assert_eq!(pulled(&s, &app, "dave").await, Vec::<MsgId>::new());
    assert_eq!(
        s.last_version(&app, &dave).await.unwrap(),
        3,
        "the newest version stays what it was: a device at 3 is up to date"
    );
    let next = direct_delivery("dave", "erin", "four", "");
    let AppendOutcome::Appended(appended) = s.append(&app, &next).await.unwrap() else {
        panic!("a new message is appended");
    };
    assert_eq!(
        (appended[0].version, appended[0].prev_version),
        (4, 3),
        "dave's next entry follows the expired ones, never reusing their versions"
    );
    let page = s.pull(&app, &dave, 0, 10).await.unwrap();
    let versions: Vec<u64> = page.entries.iter().map(|e| e.version).collect();
    assert_eq!(versions, [4]);
    let page = s.pull(&app, &dave, 1, 10).await.unwrap();
    assert_eq!(
        page.entries.len(),
        1,
        "a pull from inside the expired range"
    );
}

async fn expired_unread_stops_counting_and_a_conversation_whose_last_message_went_leaves_the_list(
    s: Arc<dyn InboxStore>,
    app: AppId,
) {
    if super::unsupported("InboxStore", "expire", &s.expire(&app, CUTOFF, 100).await) {
        return;
    }
    // bob: two old unread from alice; one old and one new from carol.
    for (i, (from, text)) in [("alice", "a1"), ("alice", "a2"), ("carol", "c1")]
        .into_iter()
        .enumerate()
    {
        let d = sent_at(direct_delivery(from, "bob", text, ""), OLD + i as i64);
        append(&s, &app, &d).await;
    }
    let new_from_carol = direct_delivery("carol", "bob", "c2", "");
    append(&s, &app, &new_from_carol).await;
    let bob = UserId::new("bob");
    let alice_chat = Conversation::direct(&UserId::new("alice"));
    let carol_chat = Conversation::direct(&UserId::new("carol"));

    expire_all(&s, &app).await;
    let unread = s.unread(&app, &bob).await.unwrap();
    let counts: Vec<(Conversation, u64)> = unread
        .iter()
        .map(|u| (u.conversation.clone(), u.count))
        .collect();
    assert_eq!(
        counts,
        [(carol_chat.clone(), 1)],
        "only what is still held counts as unread"
    );
    if let Ok(list) = s.conversations(&app, &bob, 0, 10).await {
        let rows: Vec<(Conversation, u64, MsgId)> = list
            .conversations
            .iter()
            .map(|c| (c.conversation.clone(), c.unread, c.last.server_msg_id))
            .collect();
        assert_eq!(
            rows,
            [(carol_chat.clone(), 1, id(&new_from_carol))],
            "alice's conversation, all of it expired, leaves the list"
        );
    }
    let marked = s
        .mark_read(&app, &bob, &carol_chat, u64::MAX)
        .await
        .unwrap();
    assert_eq!(marked.marked, 1, "the mark counts only what is held");

    let back = direct_delivery("alice", "bob", "a3", "");
    append(&s, &app, &back).await;
    let unread = s.unread(&app, &bob).await.unwrap();
    let counts: Vec<(Conversation, u64)> = unread
        .iter()
        .map(|u| (u.conversation.clone(), u.count))
        .collect();
    assert_eq!(counts, [(alice_chat.clone(), 1)]);
    if let Ok(list) = s.conversations(&app, &bob, 0, 10).await {
        let first = &list.conversations[0];
        assert_eq!(
            (&first.conversation, first.unread, first.last.server_msg_id),
            (&alice_chat, 1, id(&back)),
            "a new message brings the conversation back, counting only itself"
        );
        assert_eq!(list.conversations.len(), 2);
    }
}

async fn expire_takes_the_oldest_first_in_bounded_batches(s: Arc<dyn InboxStore>, app: AppId) {
    if super::unsupported("InboxStore", "expire", &s.expire(&app, CUTOFF, 100).await) {
        return;
    }
    let mut sent = Vec::new();
    for i in 0..5 {
        let d = sent_at(direct_delivery("fay", "gus", &format!("m{i}"), ""), OLD + i);
        append(&s, &app, &d).await;
        sent.push(id(&d));
    }
    append(&s, &app, &direct_delivery("fay", "gus", "new", "")).await;
    let mut taken = Vec::new();
    let mut calls = 0;
    loop {
        calls += 1;
        assert!(calls <= 10, "expire ends");
        let batch = s.expire(&app, CUTOFF, 2).await.unwrap();
        assert!(
            batch.messages.len() <= 2,
            "at most `limit` messages per call: {batch:?}"
        );
        let mut ids = batch.messages.clone();
        ids.sort();
        let mut expected: Vec<MsgId> = sent[taken.len()..taken.len() + ids.len()].to_vec();
        expected.sort();
        assert_eq!(ids, expected, "oldest first");
        taken.extend(batch.messages);
        if !batch.more {
            break;
        }
    }
    assert_eq!(taken.len(), 5, "every old message, once");
    assert_eq!(pulled(&s, &app, "gus").await.len(), 1, "the new one stays");
}

async fn expire_leaves_other_apps_alone(s: Arc<dyn InboxStore>, app: AppId) {
    if super::unsupported("InboxStore", "expire", &s.expire(&app, CUTOFF, 100).await) {
        return;
    }
    let other = super::fresh_app();
    let d = sent_at(direct_delivery("hal", "ivy", "old", ""), OLD);
    append(&s, &app, &d).await;
    append(&s, &other, &d).await;
    assert_eq!(expire_all(&s, &app).await, HashSet::from([id(&d)]));
    assert_eq!(pulled(&s, &app, "ivy").await, Vec::<MsgId>::new());
    assert_eq!(
        pulled(&s, &other, "ivy").await,
        [id(&d)],
        "another app's old message stays"
    );
}

/// Times are stamped before versions are given, so an owner's newer entry
/// can carry an older time (two sends racing to the writer). Retention may
/// then delete the newest version and keep an older one: the next version
/// still follows every one given.
async fn a_newer_version_with_an_older_time_is_not_given_again_either(
    s: Arc<dyn InboxStore>,
    app: AppId,
) {
    if super::unsupported("InboxStore", "expire", &s.expire(&app, CUTOFF, 100).await) {
        return;
    }
    append(&s, &app, &direct_delivery("kim", "lou", "stamped late", "")).await;
    let raced = sent_at(direct_delivery("kim", "lou", "stamped early", ""), OLD);
    append(&s, &app, &raced).await;
    let kim = UserId::new("kim");
    assert_eq!(s.last_version(&app, &kim).await.unwrap(), 2);
    expire_all(&s, &app).await;
    assert_eq!(s.last_version(&app, &kim).await.unwrap(), 2);
    let next = direct_delivery("kim", "lou", "after", "");
    let AppendOutcome::Appended(appended) = s.append(&app, &next).await.unwrap() else {
        panic!("a new message is appended");
    };
    assert_eq!(
        (appended[0].version, appended[0].prev_version),
        (3, 2),
        "version 2 was given once, whether or not it was deleted"
    );
    let page = s.pull(&app, &kim, 0, 10).await.unwrap();
    let versions: Vec<u64> = page.entries.iter().map(|e| e.version).collect();
    assert!(
        versions == [1, 2, 3] || versions == [1, 3],
        "each version once, in order: {versions:?}"
    );
}

async fn an_expired_mention_stops_marking_its_conversation(s: Arc<dyn InboxStore>, app: AppId) {
    if super::unsupported("InboxStore", "expire", &s.expire(&app, CUTOFF, 100).await) {
        return;
    }
    let members = ["alice", "bob"];
    let mut mention = sent_at(group_delivery("gm", "alice", &members, "@bob"), OLD);
    let meta = EntryMeta::of(&bubble_proto::pb::EntryMeta {
        mentions: vec!["bob".into()],
        ..Default::default()
    });
    for e in &mut mention.entries {
        e.meta = meta.clone();
    }
    append(&s, &app, &mention).await;
    append(&s, &app, &group_delivery("gm", "alice", &members, "later")).await;
    let bob = UserId::new("bob");
    let mentioned = |u: Vec<UnreadCount>| u.iter().any(|c| c.mentioned);
    assert!(
        mentioned(s.unread(&app, &bob).await.unwrap()),
        "bob was mentioned"
    );
    expire_all(&s, &app).await;
    let unread = s.unread(&app, &bob).await.unwrap();
    assert_eq!(unread.iter().map(|u| u.count).sum::<u64>(), 1);
    assert!(!mentioned(unread), "the mention went with its message");
    if let Ok(list) = s.conversations(&app, &bob, 0, 10).await {
        assert!(
            list.conversations.iter().all(|c| !c.mentioned),
            "the row no longer says so: {:?}",
            list.conversations
        );
    }
}
