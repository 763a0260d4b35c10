//! The rest of what a chat app's screens ask for (issue 14), through the
//! server: replies, forwards, mentions, edits, reactions, per-conversation
//! settings, the block list, group read state, and running a group.

use std::time::Duration;

use bubble_client::{Event, Events};
use bubble_core::{
    Content, Conversation, ConversationItem, EntryKind, GroupId, MessageRefs, SettingsChange,
    UserId,
};
use bubble_proto::pb;

use super::support::*;

fn to(user: &str) -> Conversation {
    Conversation::direct(&UserId::new(user))
}

/// The next entry of `kind` (skipping others).
async fn next_of(events: &mut Events, kind: EntryKind) -> bubble_core::InboxEntry {
    loop {
        if let Event::Entry(e) = next_event(events).await
            && e.kind == kind
        {
            return e;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_forwards_mentions_and_edits_reach_the_other_side() {
    let (server, _db) = start_server().await;
    let (alice, _a) = server.client("alice", "phone", false).await;
    let (bob, mut bob_events) = server.client("bob", "phone", true).await;
    let (carol, mut carol_events) = server.client("carol", "phone", false).await;

    // A reply: bob sees what it answers, as the server took it.
    let question = alice
        .send(to("bob"), Content::text("lunch at noon?"))
        .await
        .unwrap();
    next_of(&mut bob_events, EntryKind::Message).await;
    let reply = MessageRefs {
        reply_to: Some(question.server_msg_id),
        ..Default::default()
    };
    bob.send_with(to("alice"), Content::text("yes"), &reply)
        .await
        .unwrap();
    let (page, _, _) = alice.history(&to("bob"), 0, 1).await.unwrap();
    let answered = page[0].meta.decode().reply_to.unwrap();
    assert_eq!(
        (answered.sender.as_str(), answered.preview.as_str()),
        ("alice", "lunch at noon?")
    );

    // A forward with no content of its own takes the original's.
    let forward = MessageRefs {
        forward_of: Some(question.server_msg_id),
        ..Default::default()
    };
    bob.send_with(to("carol"), Content::none(), &forward)
        .await
        .unwrap();
    let forwarded = next_of(&mut carol_events, EntryKind::Message).await;
    assert_eq!(forwarded.content.as_text(), Some("lunch at noon?"));
    assert_eq!(
        forwarded.meta.decode().forwarded_from.unwrap().sender,
        "alice"
    );

    // Mentions in a group: carol's list says so, and @all is refused to a
    // plain member.
    carol
        .create_group("lunch", "Lunch", &["alice", "bob"], false)
        .await
        .unwrap();
    let mention = MessageRefs {
        mentions: vec![UserId::new("alice")],
        ..Default::default()
    };
    let team = Conversation::group(&GroupId::new("lunch"));
    bob.send_with(team.clone(), Content::text("@alice booked?"), &mention)
        .await
        .unwrap();
    let list = alice.conversations(0, 10).await.unwrap();
    let ConversationItem::Inbox(row) = &list.items[0] else {
        panic!("a group is an inbox conversation")
    };
    assert_eq!(row.conversation, team);
    assert!(row.mentioned, "alice was mentioned");
    assert!(
        alice
            .unread()
            .await
            .unwrap()
            .iter()
            .any(|c| c.conversation == team && c.mentioned)
    );
    let everyone = MessageRefs {
        mention_all: true,
        ..Default::default()
    };
    let refused = bob
        .send_with(team.clone(), Content::text("@all"), &everyone)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(pb::ErrorCode::PermissionDenied));

    // An edit: carol's device is told, the history and the list show it.
    let typo = alice
        .send(to("carol"), Content::text("see you tomorow"))
        .await
        .unwrap();
    next_of(&mut carol_events, EntryKind::Message).await;
    alice
        .edit(
            &to("carol"),
            &typo.server_msg_id,
            Content::text("see you tomorrow"),
        )
        .await
        .unwrap();
    let edit = next_of(&mut carol_events, EntryKind::Edit).await;
    assert_eq!(edit.server_msg_id, typo.server_msg_id);
    assert_eq!(edit.content.as_text(), Some("see you tomorrow"));
    let (page, _, _) = carol.history(&to("alice"), 0, 5).await.unwrap();
    let message = page
        .iter()
        .find(|e| e.server_msg_id == typo.server_msg_id && e.kind == EntryKind::Message)
        .unwrap();
    assert_eq!(message.content.as_text(), Some("see you tomorrow"));
    assert!(message.meta.decode().edited_at > 0, "marked edited");
    let denied = carol
        .edit(&to("alice"), &typo.server_msg_id, Content::text("mine now"))
        .await
        .unwrap_err();
    assert_eq!(
        denied.code(),
        Some(pb::ErrorCode::PermissionDenied),
        "only the sender edits: {denied}"
    );
    // Search finds the new words once the indexer ran.
    let mut found = 0;
    for _ in 0..100 {
        let r = carol
            .search(pb::SearchRequest {
                words: "tomorrow".into(),
                limit: 5,
                ..Default::default()
            })
            .await
            .unwrap();
        found = r.total;
        if found > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(found, 1, "the edited text is searchable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_are_counted_in_history_and_group_read_state_follows_read_marks() {
    let (server, _db) = start_server().await;
    let (alice, _a) = server.client("alice", "phone", false).await;
    let (bob, mut bob_events) = server.client("bob", "phone", false).await;
    let (carol, _c) = server.client("carol", "phone", true).await;
    alice
        .create_group("crew", "Crew", &["bob", "carol"], false)
        .await
        .unwrap();
    let crew = Conversation::group(&GroupId::new("crew"));
    let sent = alice
        .send(crew.clone(), Content::text("deploy friday?"))
        .await
        .unwrap();
    next_of(&mut bob_events, EntryKind::Message).await;
    carol
        .react(&crew, &sent.server_msg_id, "👎", false)
        .await
        .unwrap();
    alice
        .react(&crew, &sent.server_msg_id, "👎", false)
        .await
        .unwrap();
    let told = next_of(&mut bob_events, EntryKind::Reaction).await;
    assert_eq!(told.server_msg_id, sent.server_msg_id);
    assert_eq!(told.meta.decode().reaction.unwrap().emoji, "👎");
    let twice = carol
        .react(&crew, &sent.server_msg_id, "👎", false)
        .await
        .unwrap();
    assert!(twice.duplicate, "nothing changed");
    let page = carol.history_page(&crew, 0, 10).await.unwrap();
    let message = page
        .entries
        .iter()
        .find(|e| e.kind == pb::EntryKind::Message as i32)
        .unwrap();
    assert_eq!(
        message
            .reactions
            .iter()
            .map(|r| (r.emoji.as_str(), r.count, r.mine))
            .collect::<Vec<_>>(),
        [("👎", 2, true)]
    );

    // Read by 0 of 2, then bob marks the group read: 1 of 2.
    let state = alice
        .read_state(&GroupId::new("crew"), &sent.server_msg_id)
        .await
        .unwrap();
    assert_eq!((state.members, state.readers.len()), (2, 0));
    bob.mark_read(&crew, bob.last_version()).await.unwrap();
    let state = alice
        .read_state(&GroupId::new("crew"), &sent.server_msg_id)
        .await
        .unwrap();
    assert_eq!(state.members, 2);
    assert_eq!(state.readers, [UserId::new("bob")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_reach_the_users_other_devices_and_a_block_refuses_the_peer() {
    let (server, _db) = start_server().await;
    let (alice, _a) = server.client("alice", "phone", false).await;
    let (bob, _b) = server.client("bob", "phone", false).await;
    let (_web, mut web_events) = server.client("bob", "web", true).await;
    alice.send(to("bob"), Content::text("hi")).await.unwrap();
    next_of(&mut web_events, EntryKind::Message).await;

    let pin = SettingsChange {
        pinned: Some(true),
        muted: Some(true),
        draft: Some("about tonight".into()),
        ..Default::default()
    };
    let settings = bob.change_settings(&to("alice"), &pin).await.unwrap();
    assert!(settings.pinned && settings.muted);
    let synced = next_of(&mut web_events, EntryKind::Settings).await;
    assert_eq!(synced.conversation, to("alice"));
    assert_eq!(synced.meta.settings(), Some(settings.clone()));
    let list = bob.conversations(0, 10).await.unwrap();
    let ConversationItem::Inbox(row) = &list.items[0] else {
        panic!()
    };
    assert_eq!(row.settings, settings, "the list carries them");

    let block = SettingsChange {
        blocked: Some(true),
        ..Default::default()
    };
    bob.change_settings(&to("alice"), &block).await.unwrap();
    assert_eq!(bob.blocked().await.unwrap(), [UserId::new("alice")]);
    let refused = alice
        .send(to("bob"), Content::text("hello?"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(pb::ErrorCode::PermissionDenied));
    assert!(!refused.to_string().contains("block"), "{refused}");
    let unblock = SettingsChange {
        blocked: Some(false),
        ..Default::default()
    };
    bob.change_settings(&to("alice"), &unblock).await.unwrap();
    assert!(bob.blocked().await.unwrap().is_empty());
    alice
        .send(to("bob"), Content::text("hello again"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_is_run_by_its_owner_and_admins_and_members_are_told() {
    let (server, _db) = start_server().await;
    let (alice, _a) = server.client("alice", "phone", false).await;
    let (bob, _b) = server.client("bob", "phone", true).await;
    let (carol, mut carol_events) = server.client("carol", "phone", false).await;
    alice
        .create_group("club", "Club", &["bob", "carol"], false)
        .await
        .unwrap();
    let change = bubble_core::GroupChange {
        announcement: Some("meet on fridays".into()),
        avatar_url: Some("https://cdn.example/club.png".into()),
        ..Default::default()
    };
    let denied = bob.update_group("club", &change).await.unwrap_err();
    assert_eq!(denied.code(), Some(pb::ErrorCode::PermissionDenied));
    alice.set_group_role("club", "bob", true).await.unwrap();
    let info = bob.update_group("club", &change).await.unwrap();
    assert_eq!(info.announcement, "meet on fridays");
    assert_eq!(info.member_count, 3);
    // carol's device is told by a group notice, through the sync.
    let notice = loop {
        let e = next_of(&mut carol_events, EntryKind::SystemNotice).await;
        let custom = <pb::Custom as prost::Message>::decode(e.content.body.clone()).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&custom.body).unwrap();
        if body["event"] == "info" {
            break body;
        }
    };
    assert_eq!(notice["by"], "bob");
    let mine = carol.my_groups().await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].avatar_url, "https://cdn.example/club.png");

    // A muted member's sends are refused until the mute is lifted.
    let later = bubble_core::now_millis() + 60_000;
    bob.mute_group_member("club", "carol", later).await.unwrap();
    let club = Conversation::group(&GroupId::new("club"));
    let muted = carol
        .send(club.clone(), Content::text("hello?"))
        .await
        .unwrap_err();
    assert_eq!(muted.code(), Some(pb::ErrorCode::PermissionDenied));
    bob.mute_group_member("club", "carol", 0).await.unwrap();
    carol.send(club.clone(), Content::text("hi")).await.unwrap();

    // An admin adds a member; a plain member may not.
    bob.add_group_members("club", &["dave"]).await.unwrap();
    let refused = carol
        .add_group_members("club", &["erin"])
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(pb::ErrorCode::PermissionDenied));
    assert_eq!(carol.my_groups().await.unwrap()[0].member_count, 4);

    // Ownership moves to bob; alice, now an admin, cannot dismiss; bob can.
    alice.transfer_group("club", "bob").await.unwrap();
    let refused = alice.dismiss_group("club").await.unwrap_err();
    assert_eq!(refused.code(), Some(pb::ErrorCode::PermissionDenied));
    bob.remove_group_members("club", &["carol"]).await.unwrap();
    bob.dismiss_group("club").await.unwrap();
    assert!(alice.my_groups().await.unwrap().is_empty());
}
