//! What a chat app's screens need beyond sending: replies, forwards,
//! mentions, edits, reactions, per-conversation settings, the block list
//! and group read state.

use super::*;

fn refs() -> MessageRefs {
    MessageRefs::default()
}

fn meta_of(e: &InboxEntry) -> pb::EntryMeta {
    e.meta.decode()
}

/// The newest entry of `kind` in `s`'s inbox.
async fn newest(e: &Engine, s: &Session, kind: EntryKind) -> InboxEntry {
    all_entries(e, s)
        .await
        .into_iter()
        .rev()
        .find(|x| x.kind == kind)
        .unwrap_or_else(|| panic!("{} has no {kind:?} entry", s.user))
}

#[tokio::test]
async fn a_reply_carries_the_answered_messages_sender_and_a_preview_the_server_took() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let long = "what time is the meeting tomorrow? ".repeat(5);
    let asked = e.send(&alice, to_user("bob", "q", &long)).await.unwrap();
    let reply = MessageRefs {
        reply_to: Some(asked.server_msg_id),
        ..refs()
    };
    e.send_with(&bob, to_user("alice", "a", "at ten"), &reply)
        .await
        .unwrap();
    let got = newest(&e, &alice, EntryKind::Message).await;
    let r = meta_of(&got)
        .reply_to
        .expect("the reply names what it answers");
    assert_eq!(r.server_msg_id.as_ref(), &asked.server_msg_id.0);
    assert_eq!(r.sender, "alice");
    assert_eq!(
        r.preview.chars().count(),
        bubble_core::engine::REPLY_PREVIEW_CHARS,
        "a preview, not the whole text"
    );
    assert!(long.starts_with(&r.preview));
    // A reply to a message of another conversation is refused.
    let (carol, _) = login(&e, "carol", "phone").await;
    let elsewhere = e.send(&carol, to_user("bob", "c", "hi")).await.unwrap();
    let wrong = MessageRefs {
        reply_to: Some(elsewhere.server_msg_id),
        ..refs()
    };
    let err = e
        .send_with(&bob, to_user("alice", "a2", "at ten"), &wrong)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn a_forward_takes_the_originals_content_and_names_its_first_origin() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let (carol, _) = login(&e, "carol", "phone").await;
    let (dave, _) = login(&e, "dave", "phone").await;
    let news = e
        .send(&alice, to_user("bob", "n", "the release is out"))
        .await
        .unwrap();
    let forward = |id: MsgId| MessageRefs {
        forward_of: Some(id),
        ..refs()
    };
    let empty = SendRequest {
        content: Content::none(),
        ..to_user("carol", "f1", "")
    };
    e.send_with(&bob, empty, &forward(news.server_msg_id))
        .await
        .unwrap();
    let at_carol = newest(&e, &carol, EntryKind::Message).await;
    assert_eq!(at_carol.content.as_text(), Some("the release is out"));
    assert_eq!(at_carol.sender, bob.user, "the forwarder sends it");
    let origin = meta_of(&at_carol).forwarded_from.unwrap();
    assert_eq!(
        (origin.sender.as_str(), origin.server_msg_id.as_ref()),
        ("alice", &news.server_msg_id.0[..])
    );
    // Forwarded again: still alice's.
    let again = SendRequest {
        content: Content::none(),
        ..to_user("dave", "f2", "")
    };
    e.send_with(&carol, again, &forward(at_carol.server_msg_id))
        .await
        .unwrap();
    let at_dave = newest(&e, &dave, EntryKind::Message).await;
    assert_eq!(meta_of(&at_dave).forwarded_from.unwrap().sender, "alice");
    // Only what the sender holds can be forwarded.
    let err = e
        .send_with(
            &dave,
            to_user("alice", "f3", "x"),
            &forward(news.server_msg_id),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn mentions_name_members_and_only_owners_and_admins_mention_everyone() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let (carol, _) = login(&e, "carol", "phone").await;
    group_of(&e, &alice, "team", &["bob", "carol"]).await;
    let mention = |users: &[&str], all: bool| MessageRefs {
        mentions: users.iter().map(|u| UserId::new(*u)).collect(),
        mention_all: all,
        ..refs()
    };
    e.send_with(
        &bob,
        to_group("team", "m1", "@carol look"),
        &mention(&["carol"], false),
    )
    .await
    .unwrap();
    let list = e.conversations(&carol, 0, 10).await.unwrap();
    let ConversationItem::Inbox(row) = &list.items[0] else {
        panic!("a group is an inbox conversation")
    };
    assert!(row.mentioned, "carol was mentioned");
    assert!(e.unread(&carol).await.unwrap()[0].mentioned);
    let ConversationItem::Inbox(alices) = &e.conversations(&alice, 0, 10).await.unwrap().items[0]
    else {
        panic!()
    };
    assert!(!alices.mentioned, "alice was not");
    let stranger = e
        .send_with(
            &bob,
            to_group("team", "m2", "@zed"),
            &mention(&["zed"], false),
        )
        .await
        .unwrap_err();
    assert_eq!(stranger.kind(), ErrorKind::InvalidInput, "{stranger}");
    let all = e
        .send_with(&bob, to_group("team", "m3", "@all"), &mention(&[], true))
        .await
        .unwrap_err();
    assert_eq!(all.kind(), ErrorKind::PermissionDenied, "{all}");
    e.send_with(
        &alice,
        to_group("team", "m4", "@all hi"),
        &mention(&[], true),
    )
    .await
    .unwrap();
    let bobs = newest(&e, &bob, EntryKind::Message).await;
    assert!(meta_of(&bobs).mention_all, "the owner mentions everyone");
    let direct = e
        .send_with(
            &alice,
            to_user("bob", "m5", "@bob"),
            &mention(&["bob"], false),
        )
        .await
        .unwrap_err();
    assert_eq!(direct.kind(), ErrorKind::InvalidInput, "{direct}");
}

#[tokio::test]
async fn an_edit_reaches_every_holder_and_changes_history_the_list_and_search() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, mut bob_q) = login(&e, "bob", "phone").await;
    let sent = e
        .send(&alice, to_user("bob", "m", "see you at the wrongplace"))
        .await
        .unwrap();
    e.index_pending().await.unwrap();
    drain(&mut bob_q);
    let bob_view = Conversation::direct(&alice.user);
    let alice_view = Conversation::direct(&bob.user);
    e.edit(
        &alice,
        &alice_view,
        &sent.server_msg_id,
        Content::text("see you at the station"),
    )
    .await
    .unwrap();
    assert!(
        drain(&mut bob_q).iter().any(
            |ev| matches!(ev, PushEvent::Entry { entry, .. } if entry.kind == EntryKind::Edit)
        ),
        "bob's devices are told"
    );
    let HistoryPage::Inbox { page, .. } = e.history(&bob, &bob_view, 0, 10).await.unwrap() else {
        panic!("1:1 history is the inbox's")
    };
    let message = page
        .entries
        .iter()
        .find(|x| x.kind == EntryKind::Message)
        .unwrap();
    assert_eq!(message.content.as_text(), Some("see you at the station"));
    assert!(
        meta_of(message).edited_at >= sent.server_time,
        "marked edited"
    );
    let ConversationItem::Inbox(row) = &e.conversations(&bob, 0, 10).await.unwrap().items[0] else {
        panic!()
    };
    assert_eq!(row.last.content.as_text(), Some("see you at the station"));
    e.index_pending().await.unwrap();
    let find = |words: &str| HistoryQuery {
        words: words.into(),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(e.search(&bob, find("wrongplace")).await.unwrap().total, 0);
    let found = e.search(&bob, find("station")).await.unwrap();
    assert_eq!(found.total, 1, "the new words are found");
    assert_eq!(
        found.hits[0].doc.server_time, sent.server_time,
        "and the message keeps its date"
    );
    assert_eq!(e.search(&alice, find("station")).await.unwrap().total, 1);
}

#[tokio::test]
async fn only_the_sender_edits_and_only_within_the_apps_window() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let sent = e.send(&alice, to_user("bob", "m", "hi")).await.unwrap();
    let err = e
        .edit(
            &bob,
            &Conversation::direct(&alice.user),
            &sent.server_msg_id,
            Content::text("bye"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let off = engine_with(|s| s.edit_window_ms = 0).await;
    let (alice2, _) = login(&off, "alice", "phone").await;
    let sent2 = off.send(&alice2, to_user("bob", "m", "hi")).await.unwrap();
    let err = off
        .edit(
            &alice2,
            &Conversation::direct(&UserId::new("bob")),
            &sent2.server_msg_id,
            Content::text("bye"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::PermissionDenied,
        "edits are off: {err}"
    );
    let short = engine_with(|s| s.edit_window_ms = 1).await;
    let (alice3, _) = login(&short, "alice", "phone").await;
    let sent3 = short
        .send(&alice3, to_user("bob", "m", "hi"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let err = short
        .edit(
            &alice3,
            &Conversation::direct(&UserId::new("bob")),
            &sent3.server_msg_id,
            Content::text("bye"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Expired, "{err}");
    assert!(err.to_string().contains("edit window"), "{err}");
}

#[tokio::test]
async fn an_edit_in_a_super_group_changes_its_log() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let big = super_group_of(&e, &alice, "big", &["bob"]).await;
    let sent = e
        .send(&alice, text_to(big.clone(), "m", "teh news"))
        .await
        .unwrap();
    e.edit(&alice, &big, &sent.server_msg_id, Content::text("the news"))
        .await
        .unwrap();
    let HistoryPage::Channel { page, .. } = e.history(&bob, &big, 0, 10).await.unwrap() else {
        panic!("a super group's history is its log")
    };
    assert_eq!(page.entries[0].kind, EntryKind::Edit);
    assert_eq!(page.entries[1].content.as_text(), Some("the news"));
    assert!(page.entries[1].meta.decode().edited_at > 0);
}

#[tokio::test]
async fn reactions_reach_every_holder_and_history_counts_them() {
    let e = engine_with(|s| s.reactions_per_user = 2).await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let (carol, mut carol_q) = login(&e, "carol", "phone").await;
    group_of(&e, &alice, "team", &["bob", "carol"]).await;
    let team = Conversation::group(&GroupId::new("team"));
    let sent = e
        .send(&alice, to_group("team", "m", "ship it?"))
        .await
        .unwrap();
    drain(&mut carol_q);
    let id = sent.server_msg_id;
    let first = e.react(&bob, &team, &id, "👍", false).await.unwrap();
    assert!(!first.duplicate && first.version > 0);
    let told = drain(&mut carol_q);
    assert!(
        told.iter()
            .any(|ev| matches!(ev, PushEvent::Entry { entry, .. }
            if entry.kind == EntryKind::Reaction && entry.sender == bob.user)),
        "carol's devices are told"
    );
    let again = e.react(&bob, &team, &id, "👍", false).await.unwrap();
    assert!(again.duplicate, "twice is once, and writes nothing");
    e.react(&carol, &team, &id, "👍", false).await.unwrap();
    e.react(&bob, &team, &id, "🚀", false).await.unwrap();
    let capped = e.react(&bob, &team, &id, "🎉", false).await.unwrap_err();
    assert_eq!(capped.kind(), ErrorKind::TooLarge, "{capped}");
    let counts = |page: HistoryPage| match page {
        HistoryPage::Inbox { reactions, .. } => reactions,
        HistoryPage::Channel { .. } => panic!("a group's history is the inbox's"),
    };
    let seen_by_bob = counts(e.history(&bob, &team, 0, 10).await.unwrap());
    assert_eq!(seen_by_bob.len(), 1);
    assert_eq!(seen_by_bob[0].0, id);
    let mut rows: Vec<_> = seen_by_bob[0]
        .1
        .iter()
        .map(|r| (r.emoji.as_str(), r.count, r.mine))
        .collect();
    rows.sort();
    assert_eq!(rows, [("👍", 2, true), ("🚀", 1, true)]);
    e.react(&bob, &team, &id, "🚀", true).await.unwrap();
    let seen_by_alice = counts(e.history(&alice, &team, 0, 10).await.unwrap());
    assert_eq!(
        seen_by_alice[0]
            .1
            .iter()
            .map(|r| (r.emoji.as_str(), r.count, r.mine))
            .collect::<Vec<_>>(),
        [("👍", 2, false)]
    );
    let bad = e.react(&bob, &team, &id, "two words", false).await;
    assert_eq!(bad.unwrap_err().kind(), ErrorKind::InvalidInput);
    let stranger = e
        .react(&bob, &team, &test_id(), "👍", false)
        .await
        .unwrap_err();
    assert_eq!(stranger.kind(), ErrorKind::NotFound);
}

fn test_id() -> MsgId {
    MsgId([0xAB; 16])
}

#[tokio::test]
async fn settings_reach_the_users_other_devices_and_show_in_the_list() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob_phone, _) = login(&e, "bob", "phone").await;
    let (_bob_web, mut web_q) = login(&e, "bob", "web").await;
    e.send(&alice, to_user("bob", "m", "hi")).await.unwrap();
    drain(&mut web_q);
    let with_alice = Conversation::direct(&alice.user);
    let pin = SettingsChange {
        pinned: Some(true),
        draft: Some("see you".into()),
        ..Default::default()
    };
    let changed = e
        .change_settings(&bob_phone, &with_alice, &pin)
        .await
        .unwrap();
    assert!(changed.settings.pinned && changed.receipt.is_some());
    let told = drain(&mut web_q);
    assert!(
        told.iter()
            .any(|ev| matches!(ev, PushEvent::Entry { entry, .. }
            if entry.kind == EntryKind::Settings
                && entry.meta.settings().is_some_and(|s| s.pinned && s.draft == "see you"))),
        "the web device learns it"
    );
    let ConversationItem::Inbox(row) = &e.conversations(&bob_phone, 0, 10).await.unwrap().items[0]
    else {
        panic!()
    };
    assert!(row.settings.pinned);
    assert_eq!(row.settings.draft, "see you");
    // Changing only the mute keeps the pin and the draft.
    let mute = SettingsChange {
        muted: Some(true),
        ..Default::default()
    };
    let muted = e
        .change_settings(&bob_phone, &with_alice, &mute)
        .await
        .unwrap();
    assert!(muted.settings.pinned && muted.settings.muted);
    let same = e
        .change_settings(&bob_phone, &with_alice, &mute)
        .await
        .unwrap();
    assert!(same.receipt.is_none(), "no change, no entry");
    assert_eq!(
        e.conversation_settings(&alice, &Conversation::direct(&bob_phone.user))
            .await
            .unwrap(),
        ConversationSettings::default(),
        "settings are bob's own"
    );
}

#[tokio::test]
async fn a_blocked_user_cannot_send_and_is_not_told_why() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let block = |on: bool| SettingsChange {
        blocked: Some(on),
        ..Default::default()
    };
    e.change_settings(&bob, &Conversation::direct(&alice.user), &block(true))
        .await
        .unwrap();
    assert_eq!(
        e.blocked(&bob).await.unwrap(),
        std::slice::from_ref(&alice.user)
    );
    let before = all_entries(&e, &bob).await.len();
    let err = e
        .send(&alice, to_user("bob", "m1", "hello?"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert!(!err.to_string().contains("block"), "not told why: {err}");
    assert_eq!(all_entries(&e, &bob).await.len(), before, "nothing stored");
    e.send(&bob, to_user("alice", "m2", "I can still write"))
        .await
        .unwrap();
    e.change_settings(&bob, &Conversation::direct(&alice.user), &block(false))
        .await
        .unwrap();
    assert!(e.blocked(&bob).await.unwrap().is_empty());
    e.send(&alice, to_user("bob", "m3", "hello again"))
        .await
        .unwrap();
    let group = e
        .change_settings(&bob, &Conversation::group(&GroupId::new("g")), &block(true))
        .await
        .unwrap_err();
    assert_eq!(group.kind(), ErrorKind::InvalidInput, "{group}");
}

#[tokio::test]
async fn group_read_state_counts_the_members_whose_read_mark_covers_the_message() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let (carol, _) = login(&e, "carol", "phone").await;
    let (_dave, _) = login(&e, "dave", "phone").await;
    group_of(&e, &alice, "team", &["bob", "carol", "dave"]).await;
    let team = GroupId::new("team");
    let sent = e
        .send(&alice, to_group("team", "m", "read me"))
        .await
        .unwrap();
    let state = e
        .read_state(&alice, &team, &sent.server_msg_id)
        .await
        .unwrap();
    assert_eq!((state.members, state.readers.len()), (3, 0));
    let newest_of = |s: &Session| {
        let e = &e;
        let s = s.clone();
        async move { e.sync(&s, 0, 100).await.unwrap().max_version }
    };
    let bob_up_to = newest_of(&bob).await;
    e.mark_read(&bob, &Conversation::group(&team), bob_up_to)
        .await
        .unwrap();
    let state = e
        .read_state(&carol, &team, &sent.server_msg_id)
        .await
        .unwrap();
    assert_eq!(state.members, 3, "bob, carol and dave got it");
    assert_eq!(
        state.readers,
        std::slice::from_ref(&bob.user),
        "any member may ask"
    );
    let (zed, _) = login(&e, "zed", "phone").await;
    let outsider = e
        .read_state(&zed, &team, &sent.server_msg_id)
        .await
        .unwrap_err();
    assert_eq!(outsider.kind(), ErrorKind::PermissionDenied, "{outsider}");
    super_group_of(&e, &alice, "big", &["bob"]).await;
    let big = e
        .read_state(&alice, &GroupId::new("big"), &sent.server_msg_id)
        .await
        .unwrap_err();
    assert_eq!(big.kind(), ErrorKind::InvalidInput, "{big}");
}
