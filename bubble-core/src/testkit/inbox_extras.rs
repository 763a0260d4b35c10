//! Conformance checks for what [`InboxStore`] keeps beyond messages and
//! read state: entry meta (replies, forwards, mentions), edits in place,
//! per-user conversation settings and the block list, group read state
//! and reactions.

use std::sync::Arc;

use bubble_proto::pb;

use super::checks;
use super::fixtures::*;
use crate::ports::*;
use crate::types::*;

pub(super) const CHECKS: &[super::Check<dyn InboxStore>] = checks![dyn InboxStore;
    meta_survives_every_read,
    an_edit_changes_the_message_in_every_read,
    a_mention_marks_the_conversation_until_the_read_mark_passes_it,
    settings_entries_set_the_conversation_settings,
    settings_read_at_once_each_answer_their_own,
    blocked_lists_the_direct_peers_whose_settings_say_so,
    readers_are_the_members_whose_read_mark_covers_their_copy,
    reactions_are_counted_per_emoji_with_mine_within_the_caps,
];

fn appended(outcome: AppendOutcome) -> Vec<Appended> {
    match outcome {
        AppendOutcome::Appended(a) => a,
        AppendOutcome::Duplicate(r) => panic!("expected an append, got a duplicate of {r:?}"),
    }
}

/// Meta with a reply, a forward and mentions: every field a reader shows.
fn rich_meta(mentions: &[&str], all: bool) -> EntryMeta {
    EntryMeta::of(&pb::EntryMeta {
        reply_to: Some(pb::ReplyRef {
            server_msg_id: test_msg_id().0.to_vec().into(),
            sender: "carol".into(),
            content_type: ContentType::Text as i32,
            preview: "what time?".into(),
        }),
        forwarded_from: Some(pb::ForwardRef {
            server_msg_id: test_msg_id().0.to_vec().into(),
            sender: "dave".into(),
            server_time: 1_700_000_000_000,
        }),
        mentions: mentions.iter().map(|m| m.to_string()).collect(),
        mention_all: all,
        ..Default::default()
    })
}

/// `d` with `meta` on every entry.
fn with_meta(mut d: Delivery, meta: &EntryMeta) -> Delivery {
    for e in &mut d.entries {
        e.meta = meta.clone();
    }
    d
}

/// The first page of `owner`'s list.
async fn list(s: &Arc<dyn InboxStore>, app: &AppId, owner: &str) -> Vec<ConversationSummary> {
    s.conversations(app, &UserId::new(owner), 0, 100)
        .await
        .unwrap()
        .conversations
}

/// One entry of `kind` for `owner` about message `id` in `conversation`.
fn entry_about(
    kind: EntryKind,
    owner: &str,
    conversation: Conversation,
    id: MsgId,
    meta: EntryMeta,
) -> InboxEntry {
    let (template, _) = direct_message(owner, owner, "");
    InboxEntry {
        kind,
        conversation,
        server_msg_id: id,
        content: Content::none(),
        meta,
        ..template
    }
}

fn delivery_of(sender: &str, entries: Vec<InboxEntry>) -> Delivery {
    Delivery {
        sender: UserId::new(sender),
        client_msg_id: String::new(),
        entries,
        index: false,
        receipt_entry: None,
    }
}

/// A settings entry for `owner` about `conversation`.
fn settings_delivery(
    owner: &str,
    conversation: Conversation,
    settings: &ConversationSettings,
) -> Delivery {
    let meta = EntryMeta::of(&pb::EntryMeta {
        settings: Some(settings.to_pb()),
        ..Default::default()
    });
    delivery_of(
        owner,
        vec![entry_about(
            EntryKind::Settings,
            owner,
            conversation,
            test_msg_id(),
            meta,
        )],
    )
}

async fn meta_survives_every_read(s: Arc<dyn InboxStore>, app: AppId) {
    let meta = rich_meta(&["bob"], false);
    let d = with_meta(group_delivery("g", "alice", &["bob"], "hi @bob"), &meta);
    let id = d.entries[0].server_msg_id;
    s.append(&app, &d).await.unwrap();
    let bob = UserId::new("bob");
    let pulled = s.pull(&app, &bob, 0, 10).await.unwrap();
    assert_eq!(pulled.entries[0].meta, meta, "pull");
    let got = s.get(&app, &bob, &id).await.unwrap().unwrap();
    assert_eq!(got.meta, meta, "get");
    let g = Conversation::group(&GroupId::new("g"));
    let history = s.history(&app, &bob, &g, 0, 10).await.unwrap();
    assert_eq!(history.entries[0].meta, meta, "history");
    assert_eq!(list(&s, &app, "bob").await[0].last.meta, meta, "list");
    assert_eq!(
        s.pull(&app, &UserId::new("alice"), 0, 10)
            .await
            .unwrap()
            .entries[0]
            .meta,
        meta,
        "the sender's copy"
    );
    // An entry without meta reads back without it.
    s.append(&app, &direct_delivery("alice", "bob", "plain", ""))
        .await
        .unwrap();
    let plain = s.pull(&app, &bob, 1, 10).await.unwrap();
    assert!(plain.entries[0].meta.is_empty());
}

async fn an_edit_changes_the_message_in_every_read(s: Arc<dyn InboxStore>, app: AppId) {
    let sent = direct_delivery("alice", "bob", "helo", "");
    let id = sent.entries[0].server_msg_id;
    let versions = appended(s.append(&app, &sent).await.unwrap());
    // An unrelated later message keeps its text.
    s.append(&app, &direct_delivery("alice", "bob", "other", ""))
        .await
        .unwrap();
    let new_meta = EntryMeta::of(&pb::EntryMeta {
        edited_at: 1_800_000_000_000,
        ..Default::default()
    });
    let edit = |owner: &str, peer: &str| InboxEntry {
        content: Content::text("hello"),
        ..entry_about(
            EntryKind::Edit,
            owner,
            Conversation::direct(&UserId::new(peer)),
            id,
            new_meta.clone(),
        )
    };
    s.append(
        &app,
        &delivery_of("alice", vec![edit("alice", "bob"), edit("bob", "alice")]),
    )
    .await
    .unwrap();
    for (owner, version) in [("alice", versions[0].version), ("bob", versions[1].version)] {
        let user = UserId::new(owner);
        let page = s.pull(&app, &user, 0, 10).await.unwrap();
        let message = page.entries.iter().find(|e| e.version == version).unwrap();
        assert_eq!(
            (message.kind, message.content.as_text(), &message.meta),
            (EntryKind::Message, Some("hello"), &new_meta),
            "{owner}'s entry of the message shows the edit when pulled"
        );
        let texts: Vec<_> = page
            .entries
            .iter()
            .map(|e| (e.kind, e.content.as_text().unwrap_or("").to_owned()))
            .collect();
        assert_eq!(
            texts,
            [
                (EntryKind::Message, "hello".to_owned()),
                (EntryKind::Message, "other".to_owned()),
                (EntryKind::Edit, "hello".to_owned()),
            ],
            "{owner}: the edit entry is synced too; the other message is untouched"
        );
        let got = s.get(&app, &user, &id).await.unwrap().unwrap();
        assert_eq!(got.content.as_text(), Some("hello"), "get");
        assert_eq!(got.version, version, "get still names the message entry");
    }
    // The conversation list shows the edited text when it is the last
    // message, and an edit does not move the conversation.
    let solo = direct_delivery("carol", "dave", "frist", "");
    let solo_id = solo.entries[0].server_msg_id;
    s.append(&app, &solo).await.unwrap();
    let before = list(&s, &app, "dave").await[0].activity;
    let fix = InboxEntry {
        content: Content::text("first"),
        ..entry_about(
            EntryKind::Edit,
            "dave",
            Conversation::direct(&UserId::new("carol")),
            solo_id,
            new_meta.clone(),
        )
    };
    s.append(&app, &delivery_of("carol", vec![fix]))
        .await
        .unwrap();
    let dave = list(&s, &app, "dave").await;
    assert_eq!(dave[0].last.content.as_text(), Some("first"));
    assert_eq!(dave[0].last.kind, EntryKind::Message);
    assert_eq!(dave[0].activity, before, "an edit does not move it up");
    let history = s
        .history(
            &app,
            &UserId::new("dave"),
            &Conversation::direct(&UserId::new("carol")),
            0,
            10,
        )
        .await
        .unwrap();
    let message = history
        .entries
        .iter()
        .find(|e| e.kind == EntryKind::Message)
        .unwrap();
    assert_eq!(
        (message.content.as_text(), &message.meta),
        (Some("first"), &new_meta),
        "history keeps the edited flag and time"
    );
}

async fn a_mention_marks_the_conversation_until_the_read_mark_passes_it(
    s: Arc<dyn InboxStore>,
    app: AppId,
) {
    let g = Conversation::group(&GroupId::new("g"));
    let members = ["alice", "bob", "carol"];
    s.append(&app, &group_delivery("g", "alice", &members, "no mention"))
        .await
        .unwrap();
    let d = with_meta(
        group_delivery("g", "alice", &members, "@bob look"),
        &rich_meta(&["bob"], false),
    );
    let versions = appended(s.append(&app, &d).await.unwrap());
    s.append(&app, &group_delivery("g", "alice", &members, "after"))
        .await
        .unwrap();
    let mentioned = |l: Vec<ConversationSummary>| l[0].mentioned;
    assert!(mentioned(list(&s, &app, "bob").await), "bob was mentioned");
    assert!(!mentioned(list(&s, &app, "carol").await), "carol was not");
    assert!(
        !mentioned(list(&s, &app, "alice").await),
        "the sender's own message does not mention her"
    );
    let bob = UserId::new("bob");
    let unread = s.unread(&app, &bob).await.unwrap();
    assert_eq!((unread[0].count, unread[0].mentioned), (3, true));
    // A read mark below the mention leaves it; one at it clears it.
    let cursor = |up_to: u64| {
        let mut e = entry_about(
            EntryKind::ReadCursor,
            "bob",
            g.clone(),
            test_msg_id(),
            EntryMeta::none(),
        );
        e.read_up_to = up_to;
        delivery_of("bob", vec![e])
    };
    let bob_version = versions[1].version;
    s.mark_read(&app, &bob, &g, bob_version - 1).await.unwrap();
    s.append(&app, &cursor(bob_version - 1)).await.unwrap();
    assert!(mentioned(list(&s, &app, "bob").await));
    s.mark_read(&app, &bob, &g, bob_version).await.unwrap();
    s.append(&app, &cursor(bob_version)).await.unwrap();
    assert!(!mentioned(list(&s, &app, "bob").await), "read past it");
    let unread = s.unread(&app, &bob).await.unwrap();
    assert_eq!((unread[0].count, unread[0].mentioned), (1, false));
    // @all mentions every receiver.
    s.append(
        &app,
        &with_meta(
            group_delivery("g", "alice", &members, "@all"),
            &rich_meta(&[], true),
        ),
    )
    .await
    .unwrap();
    assert!(mentioned(list(&s, &app, "carol").await));
    assert!(mentioned(list(&s, &app, "bob").await));
}

async fn settings_entries_set_the_conversation_settings(s: Arc<dyn InboxStore>, app: AppId) {
    let bob = UserId::new("bob");
    let alice = Conversation::direct(&UserId::new("alice"));
    assert_eq!(
        s.settings(&app, &bob, &alice).await.unwrap(),
        ConversationSettings::default(),
        "never set: the defaults"
    );
    let pinned = ConversationSettings {
        pinned: true,
        draft: "see you at".into(),
        ..Default::default()
    };
    s.append(&app, &settings_delivery("bob", alice.clone(), &pinned))
        .await
        .unwrap();
    assert_eq!(s.settings(&app, &bob, &alice).await.unwrap(), pinned);
    assert!(
        list(&s, &app, "bob").await.is_empty(),
        "settings alone do not list a conversation"
    );
    s.append(&app, &direct_delivery("alice", "bob", "hi", ""))
        .await
        .unwrap();
    let rows = list(&s, &app, "bob").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].settings, pinned, "the list carries the settings");
    assert_eq!(rows[0].last.content.as_text(), Some("hi"));
    // The newest settings entry wins, whole.
    let muted = ConversationSettings {
        muted: true,
        archived: true,
        ..Default::default()
    };
    s.append(&app, &settings_delivery("bob", alice.clone(), &muted))
        .await
        .unwrap();
    assert_eq!(s.settings(&app, &bob, &alice).await.unwrap(), muted);
    assert_eq!(list(&s, &app, "bob").await[0].settings, muted);
    assert_eq!(
        s.settings(&app, &UserId::new("alice"), &Conversation::direct(&bob))
            .await
            .unwrap(),
        ConversationSettings::default(),
        "settings are the owner's own"
    );
    // Group and super group conversations take settings too.
    let sg = Conversation::super_group(&GroupId::new("big"));
    s.append(&app, &settings_delivery("bob", sg.clone(), &muted))
        .await
        .unwrap();
    assert_eq!(s.settings(&app, &bob, &sg).await.unwrap(), muted);
}

/// Many settings asked for at once (the block checks of many concurrent
/// sends, some of the same conversation, some never set): each caller gets
/// its own conversation's, as a lone read would give it, and a read made
/// after a change sees it. A store that gathers concurrent reads into one
/// must not mix them up.
async fn settings_read_at_once_each_answer_their_own(s: Arc<dyn InboxStore>, app: AppId) {
    let set = |i: usize| ConversationSettings {
        pinned: i.is_multiple_of(2),
        muted: i.is_multiple_of(3),
        archived: i.is_multiple_of(5),
        blocked: i.is_multiple_of(6),
        draft: if i.is_multiple_of(4) {
            format!("draft {i}")
        } else {
            String::new()
        },
    };
    let conversation = |i: usize| match i % 3 {
        0 => Conversation::direct(&UserId::new(format!("peer{i}"))),
        1 => Conversation::group(&GroupId::new(format!("g{i}"))),
        _ => Conversation::super_group(&GroupId::new(format!("sg{i}"))),
    };
    let owner = |i: usize| format!("owner{}", i % 4);
    // Even numbers are set; odd ones never are (the defaults).
    for i in (0..30).step_by(2) {
        s.append(
            &app,
            &settings_delivery(&owner(i), conversation(i), &set(i)),
        )
        .await
        .unwrap();
    }
    let want = |i: usize| {
        if i.is_multiple_of(2) {
            set(i)
        } else {
            ConversationSettings::default()
        }
    };
    let asks: Vec<usize> = (0..30).chain((0..30).rev().step_by(3)).collect();
    let read = |asks: Vec<usize>| {
        let s = s.clone();
        let app = app.clone();
        async move {
            let reads = asks.iter().map(|&i| {
                let (s, app) = (s.clone(), app.clone());
                async move {
                    s.settings(&app, &UserId::new(owner(i)), &conversation(i))
                        .await
                        .unwrap()
                }
            });
            futures_util::future::join_all(reads).await
        }
    };
    for (&i, got) in asks.iter().zip(read(asks.clone()).await) {
        assert_eq!(
            got,
            want(i),
            "the settings of {}'s conversation {i}",
            owner(i)
        );
    }
    // The same conversation of another owner is not theirs.
    assert_eq!(
        s.settings(&app, &UserId::new("owner1"), &conversation(0))
            .await
            .unwrap(),
        ConversationSettings::default()
    );
    // A change, then every read again.
    let changed = ConversationSettings {
        muted: true,
        draft: "changed".into(),
        ..Default::default()
    };
    s.append(
        &app,
        &settings_delivery(&owner(4), conversation(4), &changed),
    )
    .await
    .unwrap();
    for (&i, got) in asks.iter().zip(read(asks.clone()).await) {
        let want = if i == 4 { changed.clone() } else { want(i) };
        assert_eq!(
            got,
            want,
            "after the change: {}'s conversation {i}",
            owner(i)
        );
    }
}

async fn blocked_lists_the_direct_peers_whose_settings_say_so(s: Arc<dyn InboxStore>, app: AppId) {
    let bob = UserId::new("bob");
    assert!(s.blocked(&app, &bob).await.unwrap().is_empty());
    let block = ConversationSettings {
        blocked: true,
        ..Default::default()
    };
    for peer in ["zoe", "adam", "mia"] {
        s.append(
            &app,
            &settings_delivery("bob", Conversation::direct(&UserId::new(peer)), &block),
        )
        .await
        .unwrap();
    }
    // A pinned group is not a block.
    s.append(
        &app,
        &settings_delivery(
            "bob",
            Conversation::group(&GroupId::new("g")),
            &ConversationSettings {
                pinned: true,
                ..Default::default()
            },
        ),
    )
    .await
    .unwrap();
    let names = |v: Vec<UserId>| v.iter().map(|u| u.to_string()).collect::<Vec<_>>();
    assert_eq!(
        names(s.blocked(&app, &bob).await.unwrap()),
        ["adam", "mia", "zoe"],
        "in user id order"
    );
    s.append(
        &app,
        &settings_delivery(
            "bob",
            Conversation::direct(&UserId::new("mia")),
            &ConversationSettings::default(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        names(s.blocked(&app, &bob).await.unwrap()),
        ["adam", "zoe"],
        "unblocked"
    );
    assert!(
        s.blocked(&app, &UserId::new("zoe"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn readers_are_the_members_whose_read_mark_covers_their_copy(
    s: Arc<dyn InboxStore>,
    app: AppId,
) {
    let g = Conversation::group(&GroupId::new("g"));
    let members = ["alice", "bob", "carol", "dave"];
    // Some history first, so each member's copy has a different version.
    s.append(&app, &direct_delivery("x", "bob", "noise", ""))
        .await
        .unwrap();
    s.append(&app, &group_delivery("g", "alice", &members, "older"))
        .await
        .unwrap();
    let d = group_delivery("g", "alice", &members, "read me");
    let id = d.entries[0].server_msg_id;
    let versions = appended(s.append(&app, &d).await.unwrap());
    let version_of = |owner: &str| {
        let i = d.entries.iter().position(|e| e.owner.as_str() == owner);
        versions[i.unwrap()].version
    };
    let cursor = |owner: &str, up_to: u64| {
        let mut e = entry_about(
            EntryKind::ReadCursor,
            owner,
            g.clone(),
            test_msg_id(),
            EntryMeta::none(),
        );
        e.read_up_to = up_to;
        delivery_of(owner, vec![e])
    };
    s.append(&app, &cursor("bob", version_of("bob")))
        .await
        .unwrap();
    s.append(&app, &cursor("carol", version_of("carol") - 1))
        .await
        .unwrap();
    let everyone: Vec<UserId> = members.iter().map(|m| UserId::new(*m)).collect();
    let found = s.readers(&app, &g, &id, &everyone).await.unwrap();
    assert_eq!(
        found.received, 3,
        "alice sent it; bob, carol and dave got it"
    );
    assert_eq!(found.readers, [UserId::new("bob")]);
    s.append(&app, &cursor("dave", version_of("dave") + 5))
        .await
        .unwrap();
    let found = s.readers(&app, &g, &id, &everyone).await.unwrap();
    assert_eq!(found.readers, [UserId::new("bob"), UserId::new("dave")]);
    let some = s
        .readers(&app, &g, &id, &[UserId::new("carol"), UserId::new("dave")])
        .await
        .unwrap();
    assert_eq!(
        (some.received, some.readers),
        (2, vec![UserId::new("dave")]),
        "only the members asked about"
    );
    let unknown = s
        .readers(&app, &g, &test_msg_id(), &everyone)
        .await
        .unwrap();
    assert_eq!(unknown, MessageReaders::default());
}

async fn reactions_are_counted_per_emoji_with_mine_within_the_caps(
    s: Arc<dyn InboxStore>,
    app: AppId,
) {
    let limits = ReactionLimits {
        per_message: 3,
        per_user: 2,
    };
    let (m1, m2, quiet) = (test_msg_id(), test_msg_id(), test_msg_id());
    let react = |id: MsgId, user: &'static str, emoji: &'static str, add: bool| {
        let s = s.clone();
        let app = app.clone();
        async move {
            s.react(&app, &id, &UserId::new(user), emoji, add, limits)
                .await
        }
    };
    assert!(react(m1, "bob", "👍", true).await.unwrap());
    assert!(
        !react(m1, "bob", "👍", true).await.unwrap(),
        "twice is once"
    );
    assert!(react(m1, "carol", "👍", true).await.unwrap());
    assert!(react(m1, "carol", "🎉", true).await.unwrap());
    assert!(react(m2, "bob", "❤️", true).await.unwrap());
    let counts = s
        .reactions(&app, &[m1, m2, quiet], &UserId::new("bob"))
        .await
        .unwrap();
    let mut by_id: Vec<_> = counts.into_iter().collect();
    by_id.sort_by_key(|(id, _)| if *id == m1 { 0 } else { 1 });
    let rows = |r: &[ReactionCount]| {
        r.iter()
            .map(|c| (c.emoji.clone(), c.count, c.mine))
            .collect::<Vec<_>>()
    };
    assert_eq!(by_id.len(), 2, "a message without reactions is left out");
    let mut m1_rows = rows(&by_id[0].1);
    m1_rows.sort();
    assert_eq!(
        m1_rows,
        [("🎉".to_owned(), 1, false), ("👍".to_owned(), 2, true)],
        "counts per emoji; mine marks bob's"
    );
    assert_eq!(rows(&by_id[1].1), [("❤️".to_owned(), 1, true)]);
    // Caps: carol has 2 on m1, the per-user cap.
    let e = react(m1, "carol", "😮", true).await.unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::TooLarge, "{e}");
    assert!(react(m1, "dave", "😮", true).await.unwrap(), "3 distinct");
    let e = react(m1, "dave", "🔥", true).await.unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::TooLarge, "a 4th emoji: {e}");
    assert!(
        react(m1, "erin", "😮", true).await.unwrap(),
        "an emoji already there is no new one"
    );
    // Removing.
    assert!(react(m1, "carol", "🎉", false).await.unwrap());
    assert!(!react(m1, "carol", "🎉", false).await.unwrap());
    let after = s
        .reactions(&app, &[m1], &UserId::new("carol"))
        .await
        .unwrap();
    let mut m1_rows = rows(&after[0].1);
    m1_rows.sort();
    assert_eq!(
        m1_rows,
        [("👍".to_owned(), 2, true), ("😮".to_owned(), 2, false)],
        "the removed emoji is gone with its last user"
    );
    let other_app = super::fresh_app();
    assert!(
        s.reactions(&other_app, &[m1], &UserId::new("bob"))
            .await
            .unwrap()
            .is_empty(),
        "apps are isolated"
    );
}
