//! What a chat app's screens ask for (issue 14): a conversation's history
//! backwards, a new device that starts syncing from now, and the sending
//! device's own cursor.

use bubble_client::Event;
use bubble_core::{Content, Conversation, EntryKind, GroupId, UserId};
use bubble_proto::pb;
use serde_json::json;

use super::support::*;

fn to(user: &str) -> Conversation {
    Conversation::direct(&UserId::new(user))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_one_conversation_backwards_and_a_new_device_syncs_from_now() {
    let (server, _db) = start_server().await;
    let (alice, _a) = server.client("alice", "phone", false).await;
    let (carol, _c) = server.client("carol", "phone", false).await;
    for i in 0..45 {
        alice
            .send(to("bob"), Content::text(format!("a{i:02}")))
            .await
            .unwrap();
        if i % 10 == 0 {
            carol
                .send(to("bob"), Content::text(format!("c{i:02}")))
                .await
                .unwrap();
        }
    }

    // Bob's new tablet: a full first page of alice's conversation at once,
    // not the whole inbox from version 0.
    let mut config = server.config("bob", "tablet", true).await;
    let (probe, _p) = bubble_client::Client::connect(config.clone())
        .await
        .unwrap();
    let (first, has_more, max_version) = probe.history(&to("alice"), 0, 20).await.unwrap();
    assert_eq!(
        texts(&first),
        (25..45)
            .rev()
            .map(|i| format!("a{i:02}"))
            .collect::<Vec<_>>(),
        "the 20 newest of alice's, newest first; carol's are not in it"
    );
    assert!(has_more);
    assert!(first.iter().all(|e| e.conversation == to("alice")));
    let (second, more, _) = probe
        .history(&to("alice"), first.last().unwrap().version, 20)
        .await
        .unwrap();
    let (third, last_more, _) = probe
        .history(&to("alice"), second.last().unwrap().version, 20)
        .await
        .unwrap();
    assert!(more && !last_more, "45 in pages of 20: 20, 20, 5");
    assert_eq!(texts(&third), ["a04", "a03", "a02", "a01", "a00"]);
    assert_eq!(
        max_version, first[0].version,
        "bob's newest version is alice's last message (carol's last came before it)"
    );
    probe.close();

    // Starting from that version, the device is handed only what is new.
    config.last_version = max_version;
    config.device = "tablet2".into();
    let (tablet, mut events) = bubble_client::Client::connect(config).await.unwrap();
    alice
        .send(to("bob"), Content::text("new since the page"))
        .await
        .unwrap();
    let got = entries(&mut events, 1).await;
    assert_eq!(
        texts(&got),
        ["new since the page"],
        "nothing of the past is synced again"
    );
    assert!(got[0].version > max_version);
    assert_eq!(tablet.last_version(), got[0].version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_super_groups_history_is_its_log_backwards_for_members_only() {
    let (server, _db) = start_server().await;
    server
        .admin(
            "POST",
            "/v1/admin/apps/demo/groups",
            Some(json!({"id": "town", "name": "Town", "owner": "mayor", "members": ["ann"], "super_group": true})),
        )
        .await;
    let (mayor, _m) = server.client("mayor", "phone", false).await;
    let town = Conversation::super_group(&GroupId::new("town"));
    for i in 0..12 {
        mayor
            .send(town.clone(), Content::text(format!("notice {i}")))
            .await
            .unwrap();
    }
    let (ann, _a) = server.client("ann", "phone", false).await;
    let (page, last_seq) = ann.channel_history("town", 0, 5).await.unwrap();
    assert_eq!(last_seq, 12);
    assert!(page.has_more);
    let seqs: Vec<u64> = page.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [12, 11, 10, 9, 8], "newest first");
    let (rest, _) = ann.channel_history("town", 3, 5).await.unwrap();
    let seqs: Vec<u64> = rest.entries.iter().map(|e| e.seq).collect();
    assert_eq!((seqs, rest.has_more), (vec![2, 1], false));

    let (stranger, _s) = server.client("stranger", "phone", false).await;
    let refused = stranger.channel_history("town", 0, 5).await.unwrap_err();
    assert_eq!(refused.code(), Some(pb::ErrorCode::PermissionDenied));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sending_device_moves_its_cursor_over_its_own_messages_without_a_sync() {
    let (server, _db) = start_server().await;
    let (alice, mut events) = server.client("alice", "phone", false).await;
    let (bob, _b) = server.client("bob", "phone", false).await;
    let mut last = 0;
    for i in 0..3 {
        let ack = alice
            .send(to("bob"), Content::text(format!("m{i}")))
            .await
            .unwrap();
        assert_eq!(ack.prev_version, last, "the ack names the version before");
        last = ack.version;
    }
    assert_eq!(alice.last_version(), last, "the cursor followed the acks");

    // A reply is pushed with prev_version = the cursor: no gap, no sync, and
    // the next event is the reply itself, not alice's own messages again.
    bob.send(to("alice"), Content::text("got them"))
        .await
        .unwrap();
    let got = entries(&mut events, 1).await;
    assert_eq!(texts(&got), ["got them"]);
    assert_eq!(got[0].kind, EntryKind::Message);
    assert_eq!(alice.last_version(), last + 1);

    // A retry's ack cannot know the version before: 0, and the cursor stays.
    let again = alice
        .send_with_id(to("bob"), "fixed-id", 9, Content::text("once"))
        .await
        .unwrap();
    let retry = alice
        .send_with_id(to("bob"), "fixed-id", 9, Content::text("once"))
        .await
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!((retry.prev_version, retry.version), (0, again.version));
    assert_eq!(alice.last_version(), again.version);
    // A delete's ack names the version before too: the cursor follows it.
    let deleted = alice.delete(&again.server_msg_id).await.unwrap();
    assert_eq!(alice.last_version(), deleted);
    // No event of alice's own sends reached her phone.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    while let Ok(event) = events.try_recv() {
        assert!(
            !matches!(&event, Event::Entry(e) if e.sender.as_str() == "alice"),
            "{event:?}"
        );
    }
}

/// A list item's conversation id, last text (or kind) and unread count.
fn row(item: &bubble_core::ConversationItem) -> (String, String, u64) {
    use bubble_core::ConversationItem;
    match item {
        ConversationItem::Inbox(c) => (
            c.conversation.id().to_owned(),
            match c.last.kind {
                EntryKind::Message | EntryKind::SystemNotice => {
                    c.last.content.as_text().unwrap_or_default().to_owned()
                }
                other => format!("{other:?}"),
            },
            c.unread,
        ),
        ConversationItem::SuperGroup {
            group,
            last,
            unread,
            ..
        } => (
            group.to_string(),
            last.content.as_text().unwrap_or_default().to_owned(),
            *unread,
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conversation_list_shows_every_kind_newest_first_with_unread_and_read_state() {
    let (server, _db) = start_server().await;
    server
        .admin(
            "POST",
            "/v1/admin/apps/demo/groups",
            Some(json!({"id": "town", "name": "Town", "owner": "mayor", "members": ["bob"], "super_group": true})),
        )
        .await;
    let (alice, _a) = server.client("alice", "phone", false).await;
    let (carol, _c) = server.client("carol", "phone", false).await;
    let (mayor, _m) = server.client("mayor", "phone", false).await;
    let mut alice_last = None;
    for i in 0..3 {
        alice_last = Some(
            alice
                .send(to("bob"), Content::text(format!("from alice {i}")))
                .await
                .unwrap(),
        );
    }
    carol
        .create_group("team", "Team", &["bob"], false)
        .await
        .unwrap();
    carol
        .send(to("bob"), Content::text("from carol"))
        .await
        .unwrap();
    // Distinct milliseconds, so the order below is the order of sending.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    carol
        .send(
            Conversation::group(&GroupId::new("team")),
            Content::text("team standup"),
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    mayor
        .send(
            Conversation::super_group(&GroupId::new("town")),
            Content::text("town hall"),
        )
        .await
        .unwrap();

    let (bob, _b) = server.client("bob", "tablet", false).await;
    let list = bob.conversations(0, 0).await.unwrap();
    let rows: Vec<_> = list.items.iter().map(row).collect();
    assert_eq!(
        &rows[..3],
        [
            ("town".to_owned(), "town hall".to_owned(), 1),
            ("team".to_owned(), "team standup".to_owned(), 1),
            ("carol".to_owned(), "from carol".to_owned(), 1),
        ],
        "super groups, groups and 1:1 together, newest first"
    );
    assert_eq!(
        rows.last().unwrap(),
        &("alice".to_owned(), "from alice 2".to_owned(), 3)
    );
    assert!(!list.has_more);
    assert_eq!(list.max_version, bob.sync(0, 1).await.unwrap().2);

    // Pages of two: the same rows, each once.
    let first = bob.conversations(0, 2).await.unwrap();
    assert!(first.has_more);
    let rest = bob
        .conversations(first.items.last().unwrap().activity(), 2)
        .await
        .unwrap();
    let paged: Vec<_> = first.items.iter().chain(&rest.items).map(row).collect();
    assert_eq!(paged, rows);

    // bob reads alice's messages: his row has no badge and his mark; hers
    // says bob read up to her last message.
    let bob_alice = bubble_core::ConversationItem::clone(list.items.last().unwrap());
    let bubble_core::ConversationItem::Inbox(summary) = bob_alice else {
        panic!("a 1:1 is an inbox row");
    };
    bob.mark_read(&to("alice"), summary.last.version)
        .await
        .unwrap();
    let after = bob.conversations(0, 0).await.unwrap();
    let bubble_core::ConversationItem::Inbox(mine) = after.items.last().unwrap() else {
        panic!("a 1:1 is an inbox row");
    };
    assert_eq!((mine.unread, mine.read_up_to), (0, summary.last.version));
    let hers = alice.conversations(0, 0).await.unwrap();
    let bubble_core::ConversationItem::Inbox(hers) = &hers.items[0] else {
        panic!("a 1:1 is an inbox row");
    };
    assert_eq!(hers.conversation, to("bob"));
    assert_eq!(
        hers.peer_read_up_to,
        alice_last.unwrap().version,
        "bob's receipt names alice's version of her last message"
    );

    // alice recalls her last message: bob's row shows the recall in its place.
    alice
        .recall(&to("bob"), &summary.last.server_msg_id)
        .await
        .unwrap();
    let recalled = bob.conversations(0, 0).await.unwrap();
    assert_eq!(
        row(recalled.items.last().unwrap()),
        ("alice".to_owned(), "Recall".to_owned(), 0)
    );
}
