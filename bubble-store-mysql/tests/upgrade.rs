//! A database written by the release before migration 3 (one full inbox row
//! per owner, one outbox row per owner) opens, migrates, and reads back
//! through the port exactly as it was written.

mod common;

use std::collections::BTreeSet;

use bubble_core::ports::{AppendOutcome, InboxStore};
use bubble_core::testkit::direct_delivery;
use bubble_core::{AppId, Conversation, Direction, EntryKind, GroupId, MsgId, UserId};
use common::on_fresh_db;
use sqlx::Executor;

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
    })
    .await;
}
