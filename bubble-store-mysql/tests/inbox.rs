//! What the MySQL inbox promises beyond the conformance suite: order across
//! nodes, all-or-nothing deliveries, batching, and indexes that serve the
//! seed's queries.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bubble_core::AdapterConfig;
use bubble_core::ports::{AppendOutcome, Appended, Delivery, InboxStore};
use bubble_core::testkit::{direct_delivery, group_delivery};
use bubble_core::{AppId, Conversation, ErrorKind, GroupId, UserId};
use bubble_store_mysql::MysqlStore;
use bubble_store_mysql::queries;
use bubble_store_mysql::testing::TestDb;
use common::on_fresh_db;
use sqlx::Row;

fn appended(o: AppendOutcome) -> Vec<Appended> {
    match o {
        AppendOutcome::Appended(a) => a,
        AppendOutcome::Duplicate(r) => panic!("unexpected duplicate of {r:?}"),
    }
}

/// Every owner's entries, pulled page by page.
async fn pull_all(s: &MysqlStore, app: &AppId, owner: &str) -> Vec<bubble_core::InboxEntry> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = s.pull(app, &UserId::new(owner), after, 50).await.unwrap();
        all.extend(page.entries.iter().cloned());
        match page.entries.last() {
            Some(e) if page.has_more => after = e.version,
            _ => return all,
        }
    }
}

/// A delivery whose last entry's owner is too long for its column, so the
/// database refuses it after the other entries were already sent.
fn poisoned(group: &str, members: &[&str], client_msg_id: &str) -> Delivery {
    let mut d = group_delivery(group, members[0], members, "half-written?");
    d.client_msg_id = client_msg_id.to_owned();
    let mut bad = d.entries.last().unwrap().clone();
    bad.owner = UserId::new("x".repeat(200));
    d.entries.push(bad);
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_appending_to_the_same_owners_keep_every_chain_intact() {
    on_fresh_db(|db| async move {
        // Two stores with their own pools are two server nodes; one batches,
        // the other writes every delivery on its own.
        let node_a = db.store().await;
        let node_b = db.config().with_batch_max(1).connect().await.unwrap();
        let app = AppId::new("multi-node");
        let members = ["m0", "m1", "m2", "m3", "m4", "m5"];
        let mut tasks = Vec::new();
        for t in 0..16 {
            let store = if t % 2 == 0 {
                node_a.clone()
            } else {
                node_b.clone()
            };
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                let mut got: Vec<(String, Appended)> = Vec::new();
                for i in 0..15 {
                    // Alternate 1:1 messages to a shared owner with group
                    // messages whose members come in a different order per
                    // task, so lock orders would clash if they were not sorted.
                    let d = if i % 3 == 0 {
                        direct_delivery(&format!("s{t}"), "m0", &format!("{t}-{i}"), "")
                    } else {
                        let mut order: Vec<&str> = members.to_vec();
                        order.rotate_left((t + i) % members.len());
                        group_delivery("g", order[0], &order, &format!("{t}-{i}"))
                    };
                    let owners: Vec<String> =
                        d.entries.iter().map(|e| e.owner.to_string()).collect();
                    let a = appended(store.append(&app, &d).await.unwrap());
                    got.extend(owners.into_iter().zip(a));
                }
                got
            }));
        }
        let mut per_owner: BTreeMap<String, Vec<Appended>> = BTreeMap::new();
        for t in tasks {
            for (owner, a) in t.await.unwrap() {
                per_owner.entry(owner).or_default().push(a);
            }
        }
        for (owner, mut list) in per_owner {
            list.sort_by_key(|a| a.version);
            assert_eq!(
                list[0].prev_version, 0,
                "{owner}: the first entry has no predecessor"
            );
            for w in list.windows(2) {
                assert!(
                    w[0].version < w[1].version,
                    "{owner}: a version was given twice"
                );
                assert_eq!(
                    w[1].prev_version, w[0].version,
                    "{owner}: the prev chain has a hole"
                );
            }
            let pulled = pull_all(&node_a, &app, &owner).await;
            assert_eq!(
                pulled.len(),
                list.len(),
                "{owner}: every append is stored once"
            );
            let ids: HashSet<_> = pulled.iter().map(|e| e.server_msg_id).collect();
            assert_eq!(ids.len(), pulled.len(), "{owner}: no message twice");
            assert_eq!(
                node_b
                    .last_version(&app, &UserId::new(&owner))
                    .await
                    .unwrap(),
                list.last().unwrap().version
            );
        }
    })
    .await;
}

async fn assert_nothing_of(store: &MysqlStore, app: &AppId, members: &[&str]) {
    for m in members {
        assert!(
            pull_all(store, app, m).await.is_empty(),
            "{m} holds part of a failed delivery"
        );
        assert_eq!(
            store.last_version(app, &UserId::new(*m)).await.unwrap(),
            0,
            "{m}'s version counter moved for a failed delivery"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_is_in_every_inbox_or_in_none() {
    on_fresh_db(|db| async move {
        for batch_max in [1, 32] {
            let store = db
                .config()
                .with_batch_max(batch_max)
                .connect()
                .await
                .unwrap();
            let app = AppId::new(format!("atomic-{batch_max}"));
            let members = ["ann", "bo", "cy"];
            let err = store
                .append(&app, &poisoned("g", &members, "c-1"))
                .await
                .expect_err("an owner id of 200 bytes does not fit");
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            assert_nothing_of(&store, &app, &members).await;
            assert!(
                store
                    .find_sent(&app, &UserId::new("ann"), "c-1")
                    .await
                    .unwrap()
                    .is_none(),
                "a failed delivery does not take its dedup key"
            );
            let mut fixed = group_delivery("g", "ann", &members, "whole");
            fixed.client_msg_id = "c-1".into();
            appended(store.append(&app, &fixed).await.unwrap());
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bad_delivery_fails_alone_in_a_batch() {
    on_fresh_db(|db| async move {
        let store = db
            .config()
            .with_batch_max(64)
            .with_batch_writers(1)
            .connect()
            .await
            .unwrap();
        let app = AppId::new("batch");
        let mut tasks = Vec::new();
        for i in 0..40 {
            let store = store.clone();
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                let d = if i == 17 {
                    poisoned("g", &["p", "q"], "")
                } else {
                    direct_delivery(&format!("s{i}"), "hub", "hi", "")
                };
                (i, store.append(&app, &d).await)
            }));
        }
        for t in tasks {
            let (i, outcome) = t.await.unwrap();
            if i == 17 {
                assert_eq!(outcome.unwrap_err().kind(), ErrorKind::InvalidInput);
            } else {
                appended(outcome.unwrap());
            }
        }
        assert_eq!(pull_all(&store, &app, "hub").await.len(), 39);
        assert_nothing_of(&store, &app, &["p", "q"]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_racing_in_one_batch_write_once() {
    on_fresh_db(|db| async move {
        let store = db
            .config()
            .with_batch_max(64)
            .with_batch_writers(1)
            .connect()
            .await
            .unwrap();
        let app = AppId::new("race");
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let store = store.clone();
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .append(&app, &direct_delivery("ann", "bo", "once", "same"))
                    .await
                    .unwrap()
            }));
        }
        let mut fresh = 0;
        for t in tasks {
            if let AppendOutcome::Appended(_) = t.await.unwrap() {
                fresh += 1;
            }
        }
        assert_eq!(fresh, 1);
        assert_eq!(pull_all(&store, &app, "bo").await.len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_are_compared_byte_for_byte() {
    on_fresh_db(|db| async move {
        let store = db.store().await;
        let app = AppId::new("bytes");
        for owner in ["bob", "Bob", "bob ", "bøb"] {
            store
                .append(&app, &direct_delivery("ann", owner, owner, ""))
                .await
                .unwrap();
        }
        for owner in ["bob", "Bob", "bob ", "bøb"] {
            let got = pull_all(&store, &app, owner).await;
            assert_eq!(got.len(), 1, "{owner:?} has its own inbox");
            assert_eq!(got[0].content.as_text(), Some(owner));
        }
        let unread = store.unread(&app, &UserId::new("ann")).await.unwrap();
        assert!(unread.is_empty());
        let mut peers: Vec<String> = pull_all(&store, &app, "ann")
            .await
            .iter()
            .map(|e| e.conversation.id().to_owned())
            .collect();
        peers.sort();
        assert_eq!(peers, ["Bob", "bob", "bob ", "bøb"]);
    })
    .await;
}

/// Fills an inbox enough that the optimizer has real choices, then refreshes
/// the statistics.
async fn populate(db: &TestDb, store: &MysqlStore, app: &AppId) {
    let members: Vec<String> = (0..20).map(|i| format!("u{i:02}")).collect();
    let refs: Vec<&str> = members.iter().map(String::as_str).collect();
    for i in 0..40 {
        store
            .append(
                app,
                &group_delivery("g", refs[i % 20], &refs, &format!("m{i}")),
            )
            .await
            .unwrap();
        store
            .append(
                app,
                &direct_delivery(refs[(i + 1) % 20], refs[i % 20], "dm", ""),
            )
            .await
            .unwrap();
    }
    store
        .mark_read(
            app,
            &UserId::new("u03"),
            &Conversation::group(&GroupId::new("g")),
            20,
        )
        .await
        .unwrap();
    let mut conn = db.connection().await;
    sqlx::query("ANALYZE TABLE inbox, messages, conversations")
        .fetch_all(&mut conn)
        .await
        .unwrap();
}

/// The plan MySQL chooses for `sql` with `binds` (ids as bytes, numbers as u64).
async fn explain(
    db: &TestDb,
    sql: &str,
    app: &AppId,
    owner: &str,
    extra: &[u64],
) -> Vec<(String, Option<String>, String)> {
    let mut conn = db.connection().await;
    let text = format!("EXPLAIN {sql}");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(text))
        .bind(app.as_str().as_bytes())
        .bind(owner.as_bytes());
    for v in extra {
        q = q.bind(*v);
    }
    q.fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let ty: Option<String> = r.try_get("type").unwrap();
            let key: Option<String> = r.try_get("key").unwrap();
            let extra: Option<String> = r.try_get("Extra").unwrap();
            (ty.unwrap_or_default(), key, extra.unwrap_or_default())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unread_query_reads_only_the_unread_index() {
    on_fresh_db(|db| async move {
        let store = db.store().await;
        let app = AppId::new("explain-unread");
        populate(&db, &store, &app).await;
        let plan = explain(&db, queries::UNREAD, &app, "u03", &[]).await;
        assert_eq!(plan.len(), 1, "{plan:?}");
        let (ty, key, extra) = &plan[0];
        assert_eq!(key.as_deref(), Some("ix_inbox_unread"), "{plan:?}");
        // With the narrow inbox rows of migration 3, MariaDB reads the one
        // interval (app, owner, -1, 0) as a `range` rather than a `ref`: the
        // same index entries. What matters is that all four columns bound it.
        assert!(
            ty == "ref" || ty == "range",
            "a lookup of (app, owner, direct, status), not a scan: {plan:?}"
        );
        let mut conn = db.connection().await;
        let key_len: Option<String> =
            sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN {}", queries::UNREAD)))
                .bind(app.as_str().as_bytes())
                .bind(&b"u03"[..])
                .fetch_one(&mut conn)
                .await
                .unwrap()
                .try_get("key_len")
                .unwrap();
        // app and owner (VARBINARY(128): 130 bytes each), direct and status.
        assert_eq!(
            key_len.as_deref(),
            Some("262"),
            "bounded by (app, owner, direct, status): {plan:?}"
        );
        assert!(
            extra.contains("Using index"),
            "answered from the index alone: {plan:?}"
        );
        assert!(
            !extra.contains("filesort"),
            "already in conversation order: {plan:?}"
        );
        let counts = store.unread(&app, &UserId::new("u03")).await.unwrap();
        assert!(!counts.is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pull_query_is_a_range_of_the_primary_key_joined_to_each_message() {
    on_fresh_db(|db| async move {
        let store = db.store().await;
        let app = AppId::new("explain-pull");
        populate(&db, &store, &app).await;
        let plan = explain(&db, queries::PULL, &app, "u05", &[10, 51]).await;
        assert_eq!(plan.len(), 2, "the inbox, then messages: {plan:?}");
        let (ty, key, extra) = &plan[0];
        assert_eq!(key.as_deref(), Some("PRIMARY"), "{plan:?}");
        assert_eq!(ty, "range", "{plan:?}");
        assert!(
            !extra.contains("filesort"),
            "rows come in version order: {plan:?}"
        );
        let (ty, key, _) = &plan[1];
        assert_eq!(key.as_deref(), Some("PRIMARY"), "{plan:?}");
        assert_eq!(ty, "eq_ref", "one message row per entry, by id: {plan:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conversation_list_is_a_range_of_its_activity_index_joined_to_each_entry() {
    on_fresh_db(|db| async move {
        let store = db.store().await;
        let app = AppId::new("explain-list");
        // u05 talks with many people, besides the group and two 1:1s.
        for i in 0..40 {
            let d = direct_delivery(&format!("peer{i:02}"), "u05", "hi", "");
            appended(store.append(&app, &d).await.unwrap());
        }
        populate(&db, &store, &app).await;
        // u05's list is long, u07's three rows: the index either way.
        for (owner, before) in [("u05", u64::MAX), ("u05", 1), ("u07", u64::MAX)] {
            let plan = explain(&db, queries::CONVERSATIONS, &app, owner, &[before, 11]).await;
            assert_eq!(plan.len(), 3, "the list, the inbox, messages: {plan:?}");
            let (ty, key, extra) = &plan[0];
            assert_eq!(
                key.as_deref(),
                Some("ix_conversations_activity"),
                "{plan:?}"
            );
            assert_eq!(ty, "range", "(app, owner, activity < before): {plan:?}");
            assert!(
                !extra.contains("filesort"),
                "rows come newest first from the index: {plan:?}"
            );
            for (ty, key, _) in &plan[1..] {
                assert_eq!(key.as_deref(), Some("PRIMARY"), "{plan:?}");
                assert_eq!(ty, "eq_ref", "one entry and one message per row: {plan:?}");
            }
        }
        let page = store
            .conversations(&app, &UserId::new("u05"), 0, 10)
            .await
            .unwrap();
        assert_eq!(page.conversations.len(), 10);
        assert!(page.has_more);
    })
    .await;
}

/// The plan of a query bound with `app`, owner u07, a conversation and a version.
async fn explain_conversation(
    db: &TestDb,
    sql: &str,
    app: &AppId,
    conversation: &Conversation,
) -> (String, Option<String>, String) {
    let mut conn = db.connection().await;
    let plan = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
        .bind(app.as_str().as_bytes())
        .bind(&b"u07"[..])
        .bind(conversation.kind as u8)
        .bind(conversation.id().as_bytes())
        .bind(70u64)
        .fetch_all(&mut conn)
        .await
        .unwrap();
    // A join reads the inbox first, then each entry's message by id.
    assert!(!plan.is_empty() && plan.len() <= 2, "{} rows", plan.len());
    if plan.len() == 2 {
        let key: Option<String> = plan[1].try_get("key").unwrap();
        let ty: Option<String> = plan[1].try_get("type").unwrap();
        assert_eq!(key.as_deref(), Some("PRIMARY"));
        assert_eq!(ty.as_deref(), Some("eq_ref"));
    }
    let ty: Option<String> = plan[0].try_get("type").unwrap();
    let key: Option<String> = plan[0].try_get("key").unwrap();
    let extra: Option<String> = plan[0].try_get("Extra").unwrap();
    (ty.unwrap_or_default(), key, extra.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mark_read_finds_its_rows_through_the_unread_index() {
    on_fresh_db(|db| async move {
        let store = db.store().await;
        let app = AppId::new("explain-mark");
        populate(&db, &store, &app).await;
        // u07's inbox is mostly group g; u08 wrote to u07 twice.
        let group = Conversation::group(&GroupId::new("g"));
        let sparse = Conversation::direct(&UserId::new("u08"));
        let plan = explain_conversation(&db, queries::UNREAD_VERSIONS, &app, &group).await;
        assert_eq!(plan.1.as_deref(), Some("ix_inbox_unread"), "{plan:?}");
        assert_eq!(plan.0, "range", "{plan:?}");
        assert!(plan.2.contains("Using index"), "{plan:?}");
        let plan = explain_conversation(&db, queries::UNREAD_VERSIONS, &app, &sparse).await;
        assert_eq!(plan.1.as_deref(), Some("ix_inbox_unread"), "{plan:?}");
        let plan = explain_conversation(&db, queries::LAST_READ, &app, &sparse).await;
        assert_eq!(plan.1.as_deref(), Some("ix_inbox_conversation"), "{plan:?}");
        assert!(!plan.2.contains("filesort"), "{plan:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_shared_as_a_port_object_works() {
    on_fresh_db(|db| async move {
        let store: Arc<dyn InboxStore> = Arc::new(db.store().await);
        let app = AppId::new("dyn");
        appended(
            store
                .append(&app, &direct_delivery("a", "b", "x", ""))
                .await
                .unwrap(),
        );
        assert_eq!(
            store.last_version(&app, &UserId::new("b")).await.unwrap(),
            1
        );
    })
    .await;
}

/// Rows of `table` in the test database.
async fn count(db: &TestDb, table: &str) -> i64 {
    let mut conn = db.connection().await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_message_is_stored_once_with_one_outbox_row() {
    on_fresh_db(|db| async move {
        let store = db.store().await;
        let app = AppId::new("once");
        let members = ["a", "b", "c", "d", "e"];
        let mut d = group_delivery("g", "a", &members, "one body");
        d.index = true;
        appended(store.append(&app, &d).await.unwrap());
        assert_eq!(count(&db, "messages").await, 1, "one message row");
        assert_eq!(count(&db, "inbox").await, 5, "one inbox row per member");
        assert_eq!(count(&db, "inbox_index_outbox").await, 1, "one outbox row");
        let tasks = store.pending_index(10).await.unwrap();
        assert_eq!(tasks.len(), 1);
        let mut owners: Vec<String> = tasks[0].owners.iter().map(|o| o.to_string()).collect();
        owners.sort();
        assert_eq!(owners, members);
        assert_eq!(tasks[0].entry.content.as_text(), Some("one body"));
        for m in members {
            let got = pull_all(&store, &app, m).await;
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].content.as_text(), Some("one body"));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_of_one_delivery_share_a_message_row_only_when_equal() {
    on_fresh_db(|db| async move {
        let store = db.store().await;
        let app = AppId::new("share");
        let mut d = group_delivery("g", "a", &["a", "b", "c", "d"], "same");
        // c sees another text, d another time: each its own row.
        d.entries[2].content = bubble_core::Content::text("other");
        d.entries[3].server_time += 1;
        appended(store.append(&app, &d).await.unwrap());
        assert_eq!(count(&db, "messages").await, 3);
        let text = |e: &bubble_core::InboxEntry| e.content.as_text().map(str::to_owned);
        assert_eq!(
            text(&pull_all(&store, &app, "b").await[0]).as_deref(),
            Some("same")
        );
        assert_eq!(
            text(&pull_all(&store, &app, "c").await[0]).as_deref(),
            Some("other")
        );
        let ds = pull_all(&store, &app, "d").await;
        assert_eq!(ds[0].server_time, d.entries[3].server_time);
        assert_eq!(ds[0].content.as_text(), Some("same"));
        // Two deliveries of equal text never share a row.
        appended(
            store
                .append(&app, &group_delivery("g", "a", &["a", "b"], "same"))
                .await
                .unwrap(),
        );
        assert_eq!(count(&db, "messages").await, 4);
    })
    .await;
}
