//! Tests against the MariaDB of the tests (`scripts/services/mariadb.sh`)
//! that need the crate's insides: the session settings `client` gives every
//! connection, and the vendor errors a real server produces, as `error`
//! maps them.

mod session {
    use crate::testing::TestDb;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_connection_reads_committed_and_is_strict() {
        let db = TestDb::create().await;
        let store = db.store().await;
        // MariaDB 10.11 names it tx_isolation, MySQL 8 transaction_isolation.
        let mut isolation: Option<String> = None;
        for var in ["@@SESSION.transaction_isolation", "@@SESSION.tx_isolation"] {
            if let Ok(v) =
                sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!("SELECT {var}")))
                    .fetch_one(store.pool())
                    .await
            {
                isolation = Some(v);
                break;
            }
        }
        let mode: String = sqlx::query_scalar("SELECT @@SESSION.sql_mode")
            .fetch_one(store.pool())
            .await
            .unwrap();
        store.close().await;
        db.drop_db().await;
        assert_eq!(isolation.as_deref(), Some("READ-COMMITTED"));
        assert!(mode.contains("STRICT_ALL_TABLES"), "{mode}");
    }
}

/// Vendor errors produced by a real server.
mod vendor {
    use std::time::Duration;

    use sqlx::{Connection, Executor, MySqlConnection};

    use bubble_core::ErrorKind;

    use crate::error::{code, is_duplicate, map_err, vendor_code};
    use crate::testing::TestDb;

    async fn with_db<F, Fut>(test: F)
    where
        F: FnOnce(TestDb) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let db = TestDb::create().await;
        db.store().await.close().await;
        let outcome = tokio::spawn(test(db.clone())).await;
        db.drop_db().await;
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    }

    async fn exec(conn: &mut MySqlConnection, sql: &'static str) -> Result<(), sqlx::Error> {
        conn.execute(sql).await.map(|_| ())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_duplicate_key_is_already_exists() {
        with_db(|db| async move {
            let mut c = db.connection().await;
            let insert = "INSERT INTO inbox_versions (app, owner, version) VALUES ('a', 'o', 1)";
            exec(&mut c, insert).await.unwrap();
            let e = exec(&mut c, insert).await.unwrap_err();
            assert!(is_duplicate(&e));
            assert_eq!(map_err(e).kind(), ErrorKind::AlreadyExists);
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_value_too_long_for_its_column_is_invalid_input() {
        with_db(|db| async move {
            let mut c = db.connection().await;
            let e =
                sqlx::query("INSERT INTO inbox_versions (app, owner, version) VALUES ('a', ?, 1)")
                    .bind("x".repeat(129).into_bytes())
                    .execute(&mut c)
                    .await
                    .unwrap_err();
            assert_eq!(vendor_code(&e), Some(1406));
            assert_eq!(map_err(e).kind(), ErrorKind::InvalidInput);
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deadlock_is_a_retryable_conflict() {
        with_db(|db| async move {
            let mut setup = db.connection().await;
            exec(
                &mut setup,
                "INSERT INTO inbox_versions (app, owner, version) VALUES ('a', 'x', 1), ('a', 'y', 1)",
            )
            .await
            .unwrap();
            let mut a = db.connection().await;
            let mut b = db.connection().await;
            exec(&mut a, "BEGIN").await.unwrap();
            exec(&mut a, "UPDATE inbox_versions SET version = 2 WHERE app = 'a' AND owner = 'x'")
                .await
                .unwrap();
            exec(&mut b, "BEGIN").await.unwrap();
            exec(&mut b, "UPDATE inbox_versions SET version = 2 WHERE app = 'a' AND owner = 'y'")
                .await
                .unwrap();
            // a waits for b's row, then b asks for a's: a cycle.
            let waiting = tokio::spawn(async move {
                let r = exec(&mut a, "UPDATE inbox_versions SET version = 3 WHERE app = 'a' AND owner = 'y'").await;
                let _ = exec(&mut a, "ROLLBACK").await;
                r
            });
            tokio::time::sleep(Duration::from_millis(300)).await;
            let closing = exec(&mut b, "UPDATE inbox_versions SET version = 3 WHERE app = 'a' AND owner = 'x'").await;
            let _ = exec(&mut b, "ROLLBACK").await;
            let waited = waiting.await.unwrap();
            let victim = match (waited, closing) {
                (Err(e), Ok(())) | (Ok(()), Err(e)) => e,
                other => panic!("exactly one side must lose the deadlock: {other:?}"),
            };
            assert_eq!(vendor_code(&victim), Some(code::LOCK_DEADLOCK));
            let e = map_err(victim);
            assert_eq!(e.kind(), ErrorKind::Conflict);
            assert!(e.is_retryable());
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lock_wait_timeout_is_a_timeout() {
        with_db(|db| async move {
            let mut a = db.connection().await;
            let mut b = db.connection().await;
            exec(
                &mut a,
                "INSERT INTO inbox_versions (app, owner, version) VALUES ('a', 'x', 1)",
            )
            .await
            .unwrap();
            exec(&mut a, "BEGIN").await.unwrap();
            exec(
                &mut a,
                "UPDATE inbox_versions SET version = 2 WHERE app = 'a' AND owner = 'x'",
            )
            .await
            .unwrap();
            exec(&mut b, "SET SESSION innodb_lock_wait_timeout = 1")
                .await
                .unwrap();
            let e = exec(
                &mut b,
                "UPDATE inbox_versions SET version = 3 WHERE app = 'a' AND owner = 'x'",
            )
            .await
            .unwrap_err();
            exec(&mut a, "ROLLBACK").await.unwrap();
            assert_eq!(vendor_code(&e), Some(code::LOCK_WAIT_TIMEOUT));
            let e = map_err(e);
            assert_eq!(e.kind(), ErrorKind::Timeout);
            assert!(e.is_retryable());
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_killed_connection_is_unavailable() {
        with_db(|db| async move {
            let mut victim = db.connection().await;
            let mut killer = db.connection().await;
            let id: i64 = sqlx::query_scalar("SELECT CAST(CONNECTION_ID() AS SIGNED)")
                .fetch_one(&mut victim)
                .await
                .unwrap();
            killer
                .execute(sqlx::AssertSqlSafe(format!("KILL CONNECTION {id}")))
                .await
                .unwrap();
            let e = exec(&mut victim, "SELECT 1").await.unwrap_err();
            let e = map_err(e);
            assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
            assert!(e.is_retryable());
            let _ = killer.close().await;
        })
        .await;
    }
}

/// Message rows under either way the server numbers auto-increment ids.
mod message_ids {
    use std::sync::Arc;

    use bubble_core::AdapterConfig;
    use bubble_core::testkit;

    use crate::append::MessageIds;
    use crate::testing::TestDb;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mariadb_numbers_one_insert_consecutively() {
        let db = TestDb::create().await;
        let store = db.store().await;
        let ids = store.inner.message_ids;
        store.close().await;
        db.drop_db().await;
        // The test server runs MariaDB's default innodb_autoinc_lock_mode 1.
        assert_eq!(ids, MessageIds::Consecutive { step: 1 });
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_inbox_conforms_with_one_message_row_per_statement() {
        let db = TestDb::create().await;
        for batch_max in [1, 32] {
            let store = db
                .config()
                .with_batch_max(batch_max)
                .connect()
                .await
                .unwrap()
                .with_message_ids(MessageIds::OnePerStatement);
            testkit::inbox(Arc::new(store.clone())).await;
            store.close().await;
        }
        db.drop_db().await;
    }
}

/// The conversation list as one batch writes it: entries of several
/// deliveries for the same rows in one transaction leave each row as the
/// rules leave it applied entry by entry (the in-memory store's list), and
/// each inbox as the in-memory store's (edits, settings and mentions
/// included).
mod conversations {
    use bubble_core::memory::MemoryInbox;
    use bubble_core::ports::{Delivery, InboxStore};
    use bubble_core::testkit::{about_direct, direct_delivery, group_delivery};
    use bubble_core::{
        AppId, Content, Conversation, ConversationPage, ConversationSettings, EntryKind, EntryMeta,
        GroupId, InboxEntry, MsgId, UserId,
    };

    use crate::append::{Job, write_batch};
    use crate::testing::TestDb;

    /// Every owner's list, one page each.
    async fn lists(s: &dyn InboxStore, app: &AppId) -> Vec<ConversationPage> {
        let mut all = Vec::new();
        for owner in ["alice", "bob", "carol"] {
            let page = s.conversations(app, &UserId::new(owner), 0, 10).await;
            all.push(page.unwrap());
        }
        all
    }

    fn id(d: &Delivery) -> MsgId {
        d.entries[0].server_msg_id
    }

    /// Every owner's whole inbox.
    async fn inboxes(s: &dyn InboxStore, app: &AppId) -> Vec<Vec<InboxEntry>> {
        let mut all = Vec::new();
        for owner in ["alice", "bob", "carol"] {
            let page = s.pull(app, &UserId::new(owner), 0, 100).await.unwrap();
            all.push(page.entries);
        }
        all
    }

    /// `pairs` (owner, peer) get a settings entry with `settings`. (The
    /// proto type of meta is reached through `EntryMeta::decode`: the
    /// crate does not depend on the proto crate.)
    fn settings(pairs: &[(&str, &str)], settings: &ConversationSettings) -> Delivery {
        let mut fields = EntryMeta::none().decode();
        fields.settings = Some(settings.to_pb());
        let mut d = about_direct(EntryKind::Settings, MsgId([3; 16]), pairs, 0);
        for e in &mut d.entries {
            e.content = Content::none();
            e.meta = EntryMeta::of(&fields);
        }
        d
    }

    /// An edit of `id` to `text` for `pairs` (owner, peer).
    fn edit(id: MsgId, pairs: &[(&str, &str)], text: &str) -> Delivery {
        let mut fields = EntryMeta::none().decode();
        fields.edited_at = 1_800_000_000_000;
        let mut d = about_direct(EntryKind::Edit, id, pairs, 0);
        for e in &mut d.entries {
            e.content = Content::text(text);
            e.meta = EntryMeta::of(&fields);
        }
        d
    }

    /// `d` with every entry mentioning `user`.
    fn mentioning(mut d: Delivery, user: &str) -> Delivery {
        let mut fields = EntryMeta::none().decode();
        fields.mentions.push(user.to_owned());
        for e in &mut d.entries {
            e.meta = EntryMeta::of(&fields);
        }
        d
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_batch_leaves_each_row_as_its_entries_one_by_one_would() {
        let db = TestDb::create().await;
        // Spawned, so the database is dropped also when a check fails.
        let outcome = tokio::spawn(one_batch_against_memory(db.clone())).await;
        db.drop_db().await;
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    }

    async fn one_batch_against_memory(db: TestDb) {
        let store = db.store().await;
        let app = AppId::new("one-batch");
        let m1 = direct_delivery("bob", "alice", "m1", "");
        let m2 = direct_delivery("bob", "alice", "m2", "");
        let m3 = direct_delivery("alice", "bob", "m3", "");
        let m4 = direct_delivery("bob", "alice", "m4", "");
        let mut notice = group_delivery("g", "carol", &["alice", "bob", "carol"], "joined");
        for e in &mut notice.entries {
            e.kind = EntryKind::SystemNotice;
        }
        let pinned = ConversationSettings {
            pinned: true,
            draft: "so".into(),
            ..Default::default()
        };
        let muted = ConversationSettings {
            muted: true,
            ..Default::default()
        };
        let both = [("alice", "bob"), ("bob", "alice")];
        let deliveries = vec![
            // A receipt before alice has a row with bob: it makes none, and
            // the row made later in the batch does not take it.
            about_direct(EntryKind::ReadReceipt, id(&m1), &[("alice", "bob")], 9),
            // Settings before any message: a row that is not listed yet.
            settings(&[("alice", "bob")], &pinned),
            m1.clone(),
            // alice's cursor right after her row was made in this batch.
            about_direct(EntryKind::ReadCursor, id(&m1), &[("alice", "bob")], 1),
            // Two edits of m1 in one batch: the later one shows.
            edit(id(&m1), &both, "m1, edited"),
            m2.clone(),
            edit(id(&m1), &both, "m1, edited twice"),
            // bob's receipt names his version of m1 (his first entry).
            about_direct(EntryKind::ReadReceipt, id(&m1), &[("bob", "alice")], 1),
            m3.clone(),
            // A recall of the message shown last, in the same batch.
            about_direct(
                EntryKind::Recall,
                id(&m3),
                &[("alice", "bob"), ("bob", "alice")],
                0,
            ),
            notice,
            m4.clone(),
            // A recall of an older message changes nothing ...
            about_direct(
                EntryKind::Recall,
                id(&m2),
                &[("alice", "bob"), ("bob", "alice")],
                0,
            ),
            // ... and alice's delete of the newest is shown in its place.
            about_direct(EntryKind::Delete, id(&m4), &[("alice", "bob")], 0),
            mentioning(
                group_delivery("g", "bob", &["alice", "bob", "carol"], "g1 @alice"),
                "alice",
            ),
            group_delivery("g", "carol", &["alice", "bob", "carol"], "g2"),
            // Settings of a listed row, after its messages in the batch, and
            // of a conversation without messages.
            settings(&[("bob", "alice")], &muted),
            settings(&[("carol", "dave")], &muted),
        ];
        let jobs: Vec<Job<'_>> = deliveries
            .iter()
            .map(|delivery| Job {
                app: &app,
                delivery,
            })
            .collect();
        write_batch(
            store.pool(),
            store.inner.message_ids,
            store.inner.galera,
            &jobs,
        )
        .await
        .unwrap();
        let memory = MemoryInbox::new();
        for d in &deliveries {
            memory.append(&app, d).await.unwrap();
        }
        let got = lists(&store, &app).await;
        assert_eq!(got, lists(&memory, &app).await);
        assert_eq!(inboxes(&store, &app).await, inboxes(&memory, &app).await);
        let alices = &got[0].conversations;
        assert_eq!(alices[1].settings, pinned);
        assert!(alices[0].mentioned, "g1 mentions alice");
        assert!(!got[1].conversations[0].mentioned);
        assert_eq!(got[1].conversations[1].settings, muted);
        assert_eq!(got[2].conversations.len(), 1, "carol's dave has no message");
        let m1_now = store.get(&app, &UserId::new("alice"), &id(&m1)).await;
        assert_eq!(
            m1_now.unwrap().unwrap().content.as_text(),
            Some("m1, edited twice")
        );
        assert_eq!(
            (alices[0].unread, alices[1].unread),
            (3, 3),
            "g: the notice, g1 and g2; bob: m1, m2 and m4 (summed in one upsert)"
        );
        assert_eq!(alices[1].last.kind, EntryKind::Delete);
        assert_eq!((alices[1].read_up_to, alices[1].peer_read_up_to), (1, 0));
        assert_eq!(got[1].conversations[1].peer_read_up_to, 1);

        // Read marks take off what they flip, as the rules say.
        let (alice, bob) = (UserId::new("alice"), UserId::new("bob"));
        let with_bob = Conversation::direct(&bob);
        let g = Conversation::group(&GroupId::new("g"));
        for s in [&store as &dyn InboxStore, &memory] {
            // Up to her cursor: m1 (her third entry, after the receipt and
            // the settings).
            s.mark_read(&app, &alice, &with_bob, 4).await.unwrap();
            s.mark_message_read(&app, &alice, &id(&m4)).await.unwrap();
            s.mark_read(&app, &alice, &g, u64::MAX).await.unwrap();
        }
        let got = lists(&store, &app).await;
        assert_eq!(got, lists(&memory, &app).await);
        assert_eq!(got[0].conversations[1].unread, 1, "m2 is left");
        assert_eq!(got[0].conversations[0].unread, 0);
        store.close().await;
    }
}
