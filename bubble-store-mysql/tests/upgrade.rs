//! A database written by the release before migration 3 (one full inbox row
//! per owner, one outbox row per owner) opens, migrates, and reads back
//! through the port exactly as it was written; migration 4 fills the
//! conversation list of an existing inbox as the append would have kept it;
//! after migration 5 a database of the release before reads back with
//! no meta and default settings, its groups with no avatar, announcement or
//! mute, its rows taking the new columns; and migration 6 gives a database
//! of the release before an empty job queue and no push tokens, both
//! working, its inboxes as they were.

mod common;

use std::collections::BTreeSet;

use bubble_core::ports::{AppendOutcome, Delivery, GroupStore, InboxStore};
use bubble_core::testkit::{
    about_direct, channel_message, direct_delivery, direct_message, group_delivery,
};
use bubble_core::{
    AppId, Conversation, ConversationPage, ConversationSettings, Direction, EntryKind, EntryMeta,
    Group, GroupId, GroupKind, InboxEntry, Member, MsgId, Role, UnreadCount, UserId, activity_key,
};
use bubble_store_mysql::MysqlStore;
use bubble_store_mysql::testing::TestDb;
use common::on_fresh_db;
use sqlx::Executor;

/// The newest migration the crate ships (`migrations/*.sql`, numbered from
/// 1 without gaps).
fn newest_migration() -> i64 {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("sql".as_ref()))
        .count() as i64
}

const DIRECT: [u8; 16] = [7; 16];
const GROUP: [u8; 16] = [9; 16];

/// The rows the previous release wrote for: alice -> bob "hi" (client id c-1,
/// indexed), and carol -> group g (alice, bob, carol) "yo".
const OLD_ROWS: &str = "
INSERT INTO inbox (app, owner, version, conv_kind, conv_id, direct, status, entry_kind,
    server_msg_id, sender, sender_device, client_msg_id, client_seq, create_time, server_time,
    read_up_to, content_type, content) VALUES
 ('old', 'alice', 1, 1, 'bob',   1, 1, 1, REPEAT(CHAR(7), 16), 'alice', 'phone', 'c-1', 4, 1000, 1001, 0, 1, 'hi'),
 ('old', 'bob',   1, 1, 'alice', -1, 0, 1, REPEAT(CHAR(7), 16), 'alice', 'phone', 'c-1', 4, 1000, 1001, 0, 1, 'hi'),
 ('old', 'carol', 1, 2, 'g',     1, 1, 1, REPEAT(CHAR(9), 16), 'carol', 'desk', '', 1, 2000, 2001, 0, 1, 'yo'),
 ('old', 'alice', 2, 2, 'g',    -1, 0, 1, REPEAT(CHAR(9), 16), 'carol', 'desk', '', 1, 2000, 2001, 0, 1, 'yo'),
 ('old', 'bob',   2, 2, 'g',    -1, 0, 1, REPEAT(CHAR(9), 16), 'carol', 'desk', '', 1, 2000, 2001, 0, 1, 'yo');
INSERT INTO inbox_versions (app, owner, version) VALUES
 ('old', 'alice', 2), ('old', 'bob', 2), ('old', 'carol', 1);
INSERT INTO inbox_sent (app, sender, client_msg_id, server_msg_id, version, server_time) VALUES
 ('old', 'alice', 'c-1', REPEAT(CHAR(7), 16), 1, 1001);
INSERT INTO inbox_index_outbox (app, owner, version) VALUES
 ('old', 'alice', 1), ('old', 'bob', 1);
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_the_previous_release_migrates_and_reads_back() {
    on_fresh_db(|db| async move {
        db.migrate_to(2).await;
        let mut conn = db.connection().await;
        conn.execute(OLD_ROWS).await.unwrap();
        drop(conn);

        let store = db.store().await;
        let app = AppId::new("old");
        let (alice, bob) = (UserId::new("alice"), UserId::new("bob"));

        let page = store.pull(&app, &bob, 0, 10).await.unwrap();
        assert!(!page.has_more);
        let got: Vec<_> = page
            .entries
            .iter()
            .map(|e| {
                (
                    e.version,
                    e.conversation.clone(),
                    e.direction,
                    e.kind,
                    e.server_msg_id,
                    e.sender.to_string(),
                    e.sender_device.to_string(),
                    e.client_msg_id.clone(),
                    e.client_seq,
                    e.create_time,
                    e.server_time,
                    e.content.as_text().map(str::to_owned),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    1,
                    Conversation::direct(&alice),
                    Direction::In,
                    EntryKind::Message,
                    MsgId(DIRECT),
                    "alice".to_owned(),
                    "phone".to_owned(),
                    "c-1".to_owned(),
                    4,
                    1000,
                    1001,
                    Some("hi".to_owned()),
                ),
                (
                    2,
                    Conversation::group(&GroupId::new("g")),
                    Direction::In,
                    EntryKind::Message,
                    MsgId(GROUP),
                    "carol".to_owned(),
                    "desk".to_owned(),
                    String::new(),
                    1,
                    2000,
                    2001,
                    Some("yo".to_owned()),
                ),
            ]
        );
        let alices = store.pull(&app, &alice, 0, 10).await.unwrap().entries;
        assert_eq!(alices.len(), 2);
        assert_eq!(alices[0].direction, Direction::Out);
        assert_eq!(alices[0].conversation, Conversation::direct(&bob));
        assert_eq!(alices[1].content.as_text(), Some("yo"));

        let mut unread: Vec<_> = store
            .unread(&app, &bob)
            .await
            .unwrap()
            .into_iter()
            .map(|u| (u.conversation, u.count))
            .collect();
        unread.sort_by(|a, b| a.0.id().cmp(b.0.id()));
        assert_eq!(
            unread,
            [
                (Conversation::direct(&alice), 1),
                (Conversation::group(&GroupId::new("g")), 1)
            ]
        );

        // Migration 4 listed every conversation of the converted inboxes.
        let g = Conversation::group(&GroupId::new("g"));
        let list = |owner: &UserId| {
            let (store, app) = (store.clone(), app.clone());
            let owner = owner.clone();
            async move {
                let page = store.conversations(&app, &owner, 0, 10).await.unwrap();
                assert!(!page.has_more);
                page.conversations
                    .iter()
                    .map(|c| {
                        assert_eq!(c.activity, activity_key(c.last.server_time, c.last.version));
                        assert_eq!((c.read_up_to, c.peer_read_up_to), (0, 0));
                        (
                            c.conversation.clone(),
                            c.last.version,
                            c.last.content.as_text().map(str::to_owned),
                            c.unread,
                        )
                    })
                    .collect::<Vec<_>>()
            }
        };
        let yo = Some("yo".to_owned());
        let hi = Some("hi".to_owned());
        assert_eq!(
            list(&bob).await,
            [
                (g.clone(), 2, yo.clone(), 1),
                (Conversation::direct(&alice), 1, hi.clone(), 1)
            ],
            "newest first, each with what the owner has not read"
        );
        assert_eq!(
            list(&alice).await,
            [
                (g.clone(), 2, yo.clone(), 1),
                (Conversation::direct(&bob), 1, hi.clone(), 0)
            ]
        );
        assert_eq!(
            list(&UserId::new("carol")).await,
            [(g.clone(), 1, yo.clone(), 0)]
        );

        let receipt = store
            .find_sent(&app, &alice, "c-1")
            .await
            .unwrap()
            .expect("the dedup key survives");
        assert_eq!((receipt.server_msg_id, receipt.version), (MsgId(DIRECT), 1));
        let retry = store
            .append(&app, &direct_delivery("alice", "bob", "hi", "c-1"))
            .await
            .unwrap();
        assert!(
            matches!(retry, AppendOutcome::Duplicate(r) if r.version == 1),
            "{retry:?}"
        );

        let tasks = store.pending_index(100).await.unwrap();
        let owners: BTreeSet<String> = tasks
            .iter()
            .flat_map(|t| t.owners.iter().map(|o| o.to_string()))
            .collect();
        assert_eq!(owners, BTreeSet::from(["alice".into(), "bob".into()]));
        assert!(tasks.iter().all(|t| t.app == app
            && t.entry.server_msg_id == MsgId(DIRECT)
            && t.entry.content.as_text() == Some("hi")
            && t.owners == [t.entry.owner.clone()]));

        let got = store
            .get(&app, &bob, &MsgId(GROUP))
            .await
            .unwrap()
            .expect("get finds a converted entry");
        assert_eq!((got.version, got.sender.as_str()), (2, "carol"));
        assert!(
            store
                .mark_message_read(&app, &bob, &MsgId(GROUP))
                .await
                .unwrap()
        );

        // New appends continue every owner's versions, and their message rows
        // take ids above the converted ones.
        let next = store
            .append(&app, &direct_delivery("bob", "alice", "new", "c-2"))
            .await
            .unwrap();
        let AppendOutcome::Appended(a) = next else {
            panic!("{next:?}")
        };
        assert_eq!(a[0].version, 3, "bob's next version");
        assert_eq!(a[1].version, 3, "alice's next version");
        let alices = store.pull(&app, &alice, 0, 10).await.unwrap().entries;
        let texts: Vec<_> = alices.iter().map(|e| e.content.as_text()).collect();
        assert_eq!(texts, [Some("hi"), Some("yo"), Some("new")]);
        // The migrated rows go on as the append keeps them.
        assert_eq!(
            list(&bob).await,
            [
                (Conversation::direct(&alice), 3, Some("new".to_owned()), 1),
                (g.clone(), 2, yo.clone(), 0)
            ],
            "bob's own message moved alice up; his read of yo took it off"
        );
        assert_eq!(
            list(&alice).await[0],
            (Conversation::direct(&bob), 3, Some("new".to_owned()), 1),
            "received, new counts as unread"
        );
    })
    .await;
}

fn id(d: &Delivery) -> MsgId {
    d.entries[0].server_msg_id
}

const OWNERS: [&str; 4] = ["ann", "ben", "cat", "dan"];

/// Every owner's whole list.
async fn lists(store: &MysqlStore, app: &AppId) -> Vec<ConversationPage> {
    let mut all = Vec::new();
    for owner in OWNERS {
        let owner = UserId::new(owner);
        all.push(store.conversations(app, &owner, 0, 100).await.unwrap());
    }
    all
}

/// Writes, through the port, what the engine writes: 1:1 and group
/// messages both ways, a notice, recalls of the newest and of an older
/// message, a delete, read cursors, receipts naming a version, and read
/// marks of both kinds.
async fn chat(store: &MysqlStore, app: &AppId) {
    let append = |d: Delivery| async move {
        store.append(app, &d).await.unwrap();
    };
    let (ann, ben) = (UserId::new("ann"), UserId::new("ben"));
    let mut ids = Vec::new();
    for i in 0..5 {
        let d = direct_delivery("ben", "ann", &format!("b{i}"), "");
        ids.push(id(&d));
        append(d).await;
        append(direct_delivery("ann", "ben", &format!("a{i}"), "")).await;
    }
    for (i, from) in OWNERS.iter().take(3).enumerate() {
        append(group_delivery("g", from, &OWNERS, &format!("g{i}"))).await;
        append(direct_delivery("cat", "dan", &format!("c{i}"), "")).await;
    }
    let mut notice = group_delivery("h", "dan", &["ann", "cat", "dan"], "welcome");
    for e in &mut notice.entries {
        e.kind = EntryKind::SystemNotice;
    }
    append(notice).await;
    // ann reads ben's messages up to her third version: a cursor for her
    // devices, a receipt for ben naming his version of b1.
    let marked = store
        .mark_read(app, &ann, &Conversation::direct(&ben), 3)
        .await
        .unwrap();
    let last = marked.last_read.unwrap();
    let bens = store.get(app, &ben, &last.server_msg_id).await.unwrap();
    append(about_direct(
        EntryKind::ReadCursor,
        ids[1],
        &[("ann", "ben")],
        3,
    ))
    .await;
    append(about_direct(
        EntryKind::ReadReceipt,
        ids[1],
        &[("ben", "ann")],
        bens.unwrap().version,
    ))
    .await;
    // ann recalls her newest to ben (shown recalled in both lists), ben
    // recalls an older one (nothing changes), dan deletes cat's newest.
    let newest = direct_delivery("ann", "ben", "oops", "");
    let oops = id(&newest);
    append(newest).await;
    append(about_direct(
        EntryKind::Recall,
        oops,
        &[("ann", "ben"), ("ben", "ann")],
        0,
    ))
    .await;
    store.mark_message_read(app, &ben, &oops).await.unwrap();
    append(about_direct(
        EntryKind::Recall,
        ids[2],
        &[("ben", "ann"), ("ann", "ben")],
        0,
    ))
    .await;
    store.mark_message_read(app, &ann, &ids[2]).await.unwrap();
    let last_c = direct_delivery("cat", "dan", "c-last", "");
    let c_last = id(&last_c);
    append(last_c).await;
    append(about_direct(
        EntryKind::Delete,
        c_last,
        &[("dan", "cat")],
        0,
    ))
    .await;
    store
        .mark_read(
            app,
            &UserId::new("cat"),
            &Conversation::group(&GroupId::new("g")),
            u64::MAX,
        )
        .await
        .unwrap();
}

/// Copies `table` of database `from` into `to` (both on the test server),
/// the columns `to` has: `from` may be at a later migration, which added
/// columns.
async fn copy(to: &TestDb, from: &TestDb, table: &str) {
    let mut conn = to.connection().await;
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
    )
    .bind(table)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(!columns.is_empty(), "{table} is in the older schema");
    let columns = columns.join(", ");
    conn.execute(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {table} ({columns}) SELECT {columns} FROM `{}`.{table}",
        from.name()
    )))
    .await
    .unwrap();
}

/// Copies the inboxes, the dedup receipts and the conversation lists.
async fn copy_inboxes(to: &TestDb, from: &TestDb) {
    for table in [
        "messages",
        "inbox",
        "inbox_versions",
        "inbox_sent",
        "conversations",
    ] {
        copy(to, from, table).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_4_lists_an_existing_inbox_as_the_append_would_have() {
    on_fresh_db(|kept| async move {
        // The lists the append keeps, entry by entry.
        let store = kept.store().await;
        let app = AppId::new("chat");
        chat(&store, &app).await;
        let want = lists(&store, &app).await;
        store.close().await;
        assert!(want.iter().all(|l| !l.conversations.is_empty()));
        let rows = || want.iter().flat_map(|l| &l.conversations);
        assert!(
            rows().any(|c| c.last.kind == EntryKind::Recall)
                && rows().any(|c| c.last.kind == EntryKind::Delete)
                && rows().any(|c| c.last.kind == EntryKind::SystemNotice)
                && rows().any(|c| c.read_up_to > 0)
                && rows().any(|c| c.peer_read_up_to > 0)
                && rows().any(|c| c.unread > 1),
            "the lists show every rule at work: {want:#?}"
        );

        // The same inboxes in a database of the release before: the
        // migration builds the lists from them.
        on_fresh_db(|old| async move {
            old.migrate_to(3).await;
            for table in ["messages", "inbox", "inbox_versions"] {
                copy(&old, &kept, table).await;
            }
            let migrated = old.store().await;
            assert_eq!(lists(&migrated, &app).await, want);
            migrated.close().await;
        })
        .await;
    })
    .await;
}

/// Every owner's entries, one page each (the chat is short).
async fn pulls(store: &MysqlStore, app: &AppId) -> Vec<Vec<InboxEntry>> {
    let mut all = Vec::new();
    for owner in OWNERS {
        let page = store.pull(app, &UserId::new(owner), 0, 1000).await.unwrap();
        assert!(!page.has_more);
        all.push(page.entries);
    }
    all
}

/// A settings entry's meta (the proto type is named only through
/// `EntryMeta::decode`, so this crate needs no dependency on it).
fn settings_meta(settings: &ConversationSettings) -> EntryMeta {
    let mut fields = EntryMeta::none().decode();
    fields.settings = Some(settings.to_pb());
    EntryMeta::of(&fields)
}

/// A message's meta that mentions `user`.
fn mention_meta(user: &str) -> EntryMeta {
    let mut fields = EntryMeta::none().decode();
    fields.mentions.push(user.to_owned());
    EntryMeta::of(&fields)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_5_keeps_a_database_at_migration_4_as_it_was_with_no_meta_and_default_settings() {
    use bubble_core::ports::ChannelLog;

    on_fresh_db(|kept| async move {
        // A chat, a super group's log and a group written through the port;
        // none of it has meta, settings, reactions, an avatar, an
        // announcement or a mute, so it reads back the same from a database
        // written before migration 5.
        let store = kept.store().await;
        let app = AppId::new("chat");
        chat(&store, &app).await;
        let group = Group {
            id: GroupId::new("g"),
            name: "four".into(),
            kind: GroupKind::Normal,
            owner: UserId::new("ann"),
            created_at: 1_700_000_000_000,
            avatar_url: String::new(),
            announcement: String::new(),
            muted: false,
        };
        let roster: Vec<Member> = OWNERS
            .iter()
            .enumerate()
            .map(|(i, user)| Member {
                user: UserId::new(*user),
                role: [Role::Owner, Role::Admin, Role::Member, Role::Member][i],
                joined_at: 1_700_000_000_001 + i as i64,
                muted_until: 0,
            })
            .collect();
        store.create_group(&app, &group, &roster).await.unwrap();
        let sg = GroupId::new("sg");
        for text in ["s1", "s2", "s3"] {
            let entry = channel_message("sg", "ann", text, &format!("c-{text}"));
            ChannelLog::append(&store, &app, &entry).await.unwrap();
        }
        let want_lists = lists(&store, &app).await;
        let want_pulls = pulls(&store, &app).await;
        let want_log = ChannelLog::range(&store, &app, &sg, 0, 100).await.unwrap();
        let want_scan = store.scan_messages(&app, None, 1000).await.unwrap();
        let mut want_unread = Vec::new();
        for owner in OWNERS {
            want_unread.push(store.unread(&app, &UserId::new(owner)).await.unwrap());
        }
        store.close().await;
        assert_eq!(want_log.entries.len(), 3);

        on_fresh_db(|old| async move {
            old.migrate_to(4).await;
            copy_inboxes(&old, &kept).await;
            for table in [
                "channel_seqs",
                "channel_log",
                "chat_groups",
                "group_members",
            ] {
                copy(&old, &kept, table).await;
            }
            let mut conn = old.connection().await;
            let meta_columns: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE() \
                 AND COLUMN_NAME IN ('meta', 'flags', 'avatar_url', 'muted_until')",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap();
            assert_eq!(meta_columns, 0, "the database is at migration 4");

            let migrated = old.store().await;
            let version: i64 = sqlx::query_scalar(
                "SELECT CAST(MAX(version) AS SIGNED) FROM _sqlx_migrations WHERE success",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap();
            assert_eq!(version, newest_migration(), "migrated to the newest");

            // The inbox's new index lists each message with its owners as
            // on a database made at migration 5 (a search rebuild).
            let got = migrated.scan_messages(&app, None, 1000).await.unwrap();
            assert_eq!(got, want_scan);
            assert!(got.len() > 10, "{got:?}");

            // Every entry reads back as written, with no meta.
            let got = pulls(&migrated, &app).await;
            assert_eq!(got, want_pulls);
            assert!(got.iter().flatten().all(|e| e.meta.is_empty()));
            assert!(got.iter().flatten().count() > 20);
            let log = ChannelLog::range(&migrated, &app, &sg, 0, 100)
                .await
                .unwrap();
            assert_eq!(log, want_log);
            assert!(log.entries.iter().all(|e| e.meta.is_empty()));
            let first = ChannelLog::get(&migrated, &app, &sg, &log.entries[0].server_msg_id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                (first.content.as_text(), first.meta.is_empty()),
                (Some("s1"), true)
            );

            // Every list as it was, with default settings and no mention.
            let got = lists(&migrated, &app).await;
            assert_eq!(got, want_lists);
            for (owner, list) in OWNERS.iter().zip(&got) {
                let user = UserId::new(*owner);
                assert!(!list.conversations.is_empty());
                for c in &list.conversations {
                    assert_eq!(c.settings, ConversationSettings::default());
                    assert!(!c.mentioned);
                    assert!(c.last.meta.is_empty());
                    let settings = migrated.settings(&app, &user, &c.conversation).await;
                    assert_eq!(settings.unwrap(), ConversationSettings::default());
                }
                assert!(migrated.blocked(&app, &user).await.unwrap().is_empty());
            }
            for (owner, want) in OWNERS.iter().zip(&want_unread) {
                let got = migrated.unread(&app, &UserId::new(*owner)).await.unwrap();
                assert_eq!(&got, want);
                assert!(got.iter().all(|u| !u.mentioned));
            }
            let ids: Vec<MsgId> = want_pulls[0].iter().map(|e| e.server_msg_id).collect();
            let ann = UserId::new("ann");
            assert!(
                migrated
                    .reactions(&app, &ids, &ann)
                    .await
                    .unwrap()
                    .is_empty()
            );

            // The migrated rows take the new columns: settings of an
            // existing row keep its place and last entry, a mention marks it.
            let ben = Conversation::direct(&UserId::new("ben"));
            let pinned = ConversationSettings {
                pinned: true,
                blocked: true,
                draft: "later".into(),
                ..Default::default()
            };
            let (mut entry, _) = direct_message("ann", "ann", "");
            entry.kind = EntryKind::Settings;
            entry.conversation = ben.clone();
            entry.content = bubble_core::Content::none();
            entry.meta = settings_meta(&pinned);
            InboxStore::append(
                &migrated,
                &app,
                &Delivery {
                    sender: ann.clone(),
                    client_msg_id: String::new(),
                    entries: vec![entry],
                    index: false,
                    receipt_entry: None,
                },
            )
            .await
            .unwrap();
            assert_eq!(migrated.settings(&app, &ann, &ben).await.unwrap(), pinned);
            assert_eq!(
                migrated.blocked(&app, &ann).await.unwrap(),
                [UserId::new("ben")]
            );
            let anns = migrated.conversations(&app, &ann, 0, 100).await.unwrap();
            let row = anns.conversations.iter().find(|c| c.conversation == ben);
            let before = want_lists[0]
                .conversations
                .iter()
                .find(|c| c.conversation == ben);
            let (row, before) = (row.unwrap(), before.unwrap());
            assert_eq!(row.settings, pinned);
            assert_eq!((row.activity, &row.last), (before.activity, &before.last));

            let mut hey = group_delivery("g", "ben", &OWNERS, "hey @cat");
            for e in &mut hey.entries {
                e.meta = mention_meta("cat");
            }
            InboxStore::append(&migrated, &app, &hey).await.unwrap();
            let cats = migrated
                .conversations(&app, &UserId::new("cat"), 0, 1)
                .await
                .unwrap();
            assert!(cats.conversations[0].mentioned);
            assert_eq!(cats.conversations[0].last.meta, mention_meta("cat"));

            // The group reads back as written: no avatar, no announcement,
            // not muted, no member muted; through every read.
            let (got, members) = migrated.roster(&app, &group.id).await.unwrap().unwrap();
            assert_eq!((&got, &members), (&group, &roster));
            assert_eq!(
                migrated.group(&app, &group.id).await.unwrap().as_ref(),
                Some(&group)
            );
            assert_eq!(migrated.members(&app, &group.id).await.unwrap(), roster);
            let ben_id = UserId::new("ben");
            assert_eq!(
                migrated.member(&app, &group.id, &ben_id).await.unwrap(),
                Some(roster[1].clone())
            );
            // ...and takes the new columns.
            let changed = Group {
                avatar_url: "https://cdn.example/g.png".into(),
                announcement: "upgraded".into(),
                muted: true,
                ..group.clone()
            };
            migrated.update_group(&app, &changed).await.unwrap();
            assert!(
                migrated
                    .mute_member(&app, &group.id, &ben_id, 1_900_000_000_000)
                    .await
                    .unwrap()
            );
            let (got, members) = migrated.roster(&app, &group.id).await.unwrap().unwrap();
            assert_eq!(got, changed);
            let muted: Vec<(String, i64)> = members
                .iter()
                .map(|m| (m.user.to_string(), m.muted_until))
                .collect();
            assert_eq!(
                muted,
                [
                    ("ann".to_owned(), 0),
                    ("ben".to_owned(), 1_900_000_000_000),
                    ("cat".to_owned(), 0),
                    ("dan".to_owned(), 0)
                ]
            );
            migrated.close().await;
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_6_gives_a_database_at_migration_5_an_empty_job_queue_and_push_tokens() {
    use bubble_core::jobs::{ClaimOrder, JobQueue, NewJob};
    use bubble_core::notify::{PushPlatform, PushToken, PushTokens};

    on_fresh_db(|kept| async move {
        let store = kept.store().await;
        let app = AppId::new("chat");
        chat(&store, &app).await;
        let want_pulls = pulls(&store, &app).await;
        store.close().await;

        on_fresh_db(|old| async move {
            old.migrate_to(5).await;
            copy_inboxes(&old, &kept).await;
            let mut conn = old.connection().await;
            let tables = "SELECT COUNT(*) FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('jobs', 'push_tokens')";
            let before: i64 = sqlx::query_scalar(tables)
                .fetch_one(&mut conn)
                .await
                .unwrap();
            assert_eq!(before, 0, "the database is at migration 5");

            let migrated = old.store().await;
            let after: i64 = sqlx::query_scalar(tables)
                .fetch_one(&mut conn)
                .await
                .unwrap();
            assert_eq!(after, 2, "migration 6 added both tables");
            let newest: i64 = sqlx::query_scalar(
                "SELECT CAST(MAX(version) AS SIGNED) FROM _sqlx_migrations WHERE success",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap();
            assert_eq!(newest, newest_migration(), "migrated to the newest");
            assert_eq!(
                pulls(&migrated, &app).await,
                want_pulls,
                "what was there reads back as it was"
            );

            let queue = "notify/chat";
            assert_eq!(migrated.depth(queue).await.unwrap(), 0);
            let job = NewJob {
                queue: queue.into(),
                payload: vec![0xfe, 0],
                due_at: 10,
            };
            migrated.enqueue(&[job], 10).await.unwrap();
            let claimed = migrated
                .claim(queue, "n1", 10, 1_000, 10, ClaimOrder::Any)
                .await
                .unwrap();
            assert_eq!(claimed.len(), 1);
            assert_eq!(claimed[0].payload, [0xfe, 0]);
            let ann = UserId::new("ann");
            assert!(migrated.tokens(&app, &ann).await.unwrap().is_empty());
            let token = PushToken {
                device: bubble_core::DeviceId::new("phone"),
                platform: PushPlatform::Fcm,
                token: "fcm-token".into(),
                locale: "en".into(),
                quiet_until: 0,
                updated_at: 10,
            };
            migrated.put_token(&app, &ann, &token).await.unwrap();
            assert_eq!(migrated.tokens(&app, &ann).await.unwrap(), [token]);
            migrated.close().await;
        })
        .await;
    })
    .await;
}

/// Every owner's unread counts, and what marking each counted conversation
/// read to the end gives (marked, the version the receipt names), owner by
/// owner, conversation by conversation.
async fn unread_then_marked(
    store: &MysqlStore,
    app: &AppId,
) -> Vec<(String, Vec<UnreadCount>, Vec<(u64, Option<u64>)>)> {
    let mut all = Vec::new();
    for owner in OWNERS {
        let owner = UserId::new(owner);
        let counts = store.unread(app, &owner).await.unwrap();
        let mut marks = Vec::new();
        for c in &counts {
            let m = store
                .mark_read(app, &owner, &c.conversation, u64::MAX)
                .await
                .unwrap();
            marks.push((m.marked, m.last_read.map(|e| e.version)));
        }
        assert!(store.unread(app, &owner).await.unwrap().is_empty());
        all.push((owner.to_string(), counts, marks));
    }
    all
}

/// Each list row's newest received version and unread count, and whether
/// an unread entry of its conversation lies below its unread floor (it must
/// not: a mark would never reach it).
async fn list_rows(db: &TestDb) -> Vec<(String, String, u64, u64, bool)> {
    let mut conn = db.connection().await;
    sqlx::query_as(
        "SELECT CAST(c.owner AS CHAR), CAST(c.conv_id AS CHAR), c.unread, c.last_received, \
         EXISTS (SELECT 1 FROM inbox i WHERE i.app = c.app AND i.owner = c.owner \
                 AND i.conv_kind = c.conv_kind AND i.conv_id = c.conv_id \
                 AND i.status = 0 AND i.version < c.unread_floor) \
         FROM conversations c ORDER BY c.owner, c.conv_kind, c.conv_id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_7_moves_the_unread_state_of_a_database_at_migration_6_onto_its_list_rows() {
    on_fresh_db(|kept| async move {
        let store = kept.store().await;
        let app = AppId::new("chat");
        chat(&store, &app).await;
        // What the append kept, before anything is marked.
        let want_rows = list_rows(&kept).await;
        assert!(want_rows.iter().any(|r| r.2 > 1), "{want_rows:?}");
        assert!(
            want_rows.iter().all(|r| !r.4),
            "no unread below a floor: {want_rows:?}"
        );
        let want_lists = lists(&store, &app).await;

        on_fresh_db(|old| async move {
            old.migrate_to(6).await;
            copy_inboxes(&old, &kept).await;
            let mut conn = old.connection().await;
            let indexes = "SELECT COUNT(DISTINCT INDEX_NAME) FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'inbox' \
                 AND INDEX_NAME IN ('ix_inbox_unread', 'ix_inbox_message')";
            let before: i64 = sqlx::query_scalar(indexes)
                .fetch_one(&mut conn)
                .await
                .unwrap();
            assert_eq!(before, 2, "the database is at migration 6");

            let migrated = old.store().await;
            let after: i64 = sqlx::query_scalar(indexes)
                .fetch_one(&mut conn)
                .await
                .unwrap();
            assert_eq!(after, 0, "migration 7 dropped both indexes");
            assert_eq!(
                list_rows(&old).await,
                want_rows,
                "counted again, as the append kept them"
            );
            assert_eq!(lists(&migrated, &app).await, want_lists);
            // Marks read the same entries and name the same messages in both.
            let want = unread_then_marked(&store, &app).await;
            assert!(want.iter().any(|(_, counts, _)| !counts.is_empty()));
            assert_eq!(unread_then_marked(&migrated, &app).await, want);
            migrated.close().await;
            store.close().await;
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_8_gives_a_database_at_migration_7_retention_that_keeps_every_version() {
    on_fresh_db(|kept| async move {
        let store = kept.store().await;
        let app = AppId::new("chat");
        chat(&store, &app).await;
        let mut versions = Vec::new();
        for owner in OWNERS {
            versions.push(store.last_version(&app, &UserId::new(owner)).await.unwrap());
        }

        on_fresh_db(|old| async move {
            old.migrate_to(7).await;
            copy_inboxes(&old, &kept).await;
            let migrated = old.store().await;
            let mut conn = old.connection().await;
            let index: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'messages' \
                 AND INDEX_NAME = 'ix_messages_time'",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap();
            assert!(index > 0, "migration 8 added the time index");

            let everything = bubble_core::now_millis() + 1;
            let mut expired = 0;
            loop {
                let batch = migrated.expire(&app, everything, 3).await.unwrap();
                assert!(batch.messages.len() <= 3);
                expired += batch.messages.len();
                if !batch.more {
                    break;
                }
            }
            assert!(expired > 5, "the chat's messages went: {expired}");
            for (owner, version) in OWNERS.iter().zip(&versions) {
                let owner = UserId::new(*owner);
                let page = migrated.pull(&app, &owner, 0, 100).await.unwrap();
                assert!(page.entries.is_empty(), "{owner} holds nothing");
                assert_eq!(
                    migrated.last_version(&app, &owner).await.unwrap(),
                    *version,
                    "{owner}'s versions stay where they were"
                );
                let list = migrated.conversations(&app, &owner, 0, 100).await.unwrap();
                assert!(list.conversations.is_empty(), "{owner}: {list:?}");
                assert!(migrated.unread(&app, &owner).await.unwrap().is_empty());
            }
        })
        .await;
    })
    .await;
}
