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
async fn the_unread_query_reads_only_the_owners_list_rows() {
    on_fresh_db(|db| async move {
        let store = db.store().await;
        let app = AppId::new("explain-unread");
        populate(&db, &store, &app).await;
        let owner = Bind::Bytes(b"u03");
        let plan = explain_with(
            &db,
            queries::UNREAD,
            &[Bind::Bytes(app.as_str().as_bytes()), owner],
        )
        .await;
        // The counts the list rows keep: the owner's range of their primary
        // key (app, owner: 130 + 130 bytes), no entry read, nothing sorted.
        assert_eq!(plan.len(), 1, "{plan:?}");
        let c = &plan[0];
        assert_eq!(c.key.as_deref(), Some("PRIMARY"), "{plan:?}");
        assert!(c.ty == "ref" || c.ty == "range", "{plan:?}");
        assert_eq!(c.key_len.as_deref(), Some("260"), "{plan:?}");
        assert!(
            !c.extra.contains("filesort") && !c.extra.contains("temporary"),
            "already in conversation order: {plan:?}"
        );
        let counts = store.unread(&app, &UserId::new("u03")).await.unwrap();
        assert!(!counts.is_empty());
        let mut sorted = counts.clone();
        sorted.sort_by(|x, y| {
            let (x, y) = (&x.conversation, &y.conversation);
            (x.kind as u8, x.id()).cmp(&(y.kind as u8, y.id()))
        });
        assert_eq!(counts, sorted, "in conversation order");
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
async fn mark_read_reads_the_conversation_index_from_its_floor_to_the_mark() {
    on_fresh_db(|db| async move {
        let store = db.store().await;
        let app = AppId::new("explain-mark");
        populate(&db, &store, &app).await;
        // u07's inbox is mostly group g; u08 wrote to u07 twice.
        let group = Conversation::group(&GroupId::new("g"));
        let sparse = Conversation::direct(&UserId::new("u08"));
        for c in [&group, &sparse] {
            let binds = [
                Bind::Bytes(app.as_str().as_bytes()),
                Bind::Bytes(b"u07"),
                Bind::Uint(c.kind as u64),
                Bind::Bytes(c.id().as_bytes()),
                Bind::Uint(40),
                Bind::Uint(70),
            ];
            let plan = explain_with(&db, queries::UNREAD_VERSIONS, &binds).await;
            assert_eq!(plan.len(), 1, "{plan:?}");
            let i = &plan[0];
            assert_eq!(i.key.as_deref(), Some("ix_inbox_conversation"), "{plan:?}");
            // (app, owner, conv_kind, conv_id, version): 130 + 130 + 1 +
            // 130 + 8 bytes, a range between the floor and the mark.
            assert_eq!(
                (i.ty.as_str(), i.key_len.as_deref()),
                ("range", Some("399")),
                "{plan:?}"
            );
            let binds = [
                Bind::Bytes(app.as_str().as_bytes()),
                Bind::Bytes(b"u07"),
                Bind::Uint(c.kind as u64),
                Bind::Bytes(c.id().as_bytes()),
            ];
            let plan = explain_with(&db, queries::LOCK_CONVERSATION, &binds).await;
            assert_eq!(plan.len(), 1, "{plan:?}");
            assert_eq!(plan[0].key.as_deref(), Some("PRIMARY"), "{plan:?}");
            assert_eq!(plan[0].key_len.as_deref(), Some("391"), "one row: {plan:?}");
        }
        let plan = explain_conversation(&db, queries::LAST_READ, &app, &sparse).await;
        assert_eq!(plan.1.as_deref(), Some("ix_inbox_conversation"), "{plan:?}");
        assert!(!plan.2.contains("filesort"), "{plan:?}");
    })
    .await;
}

/// The gathered point reads of concurrent sends (see the store's
/// `coalesce`): the settings of many conversations are points of the
/// conversations' primary key, and the rosters of many groups are points of
/// the groups' key each joined to its members by theirs, with no sort
/// (the store orders each group's members).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gathered_settings_and_roster_reads_are_points_of_the_primary_keys() {
    use bubble_core::ports::GroupStore;
    use bubble_core::{Group, GroupKind, Member, Role};
    on_fresh_db(|db| async move {
        let store = db.store().await;
        let app = AppId::new("explain-gathered");
        populate(&db, &store, &app).await;
        let a = app.as_str().as_bytes();
        let asks: [(&[u8], u64, &[u8]); 4] = [
            (b"u07", 2, b"g"),
            (b"u07", 1, b"u08"),
            (b"u08", 1, b"u07"),
            (b"u01", 1, b"u02"),
        ];
        let mut binds = Vec::new();
        for (owner, kind, id) in asks {
            binds.extend([
                Bind::Bytes(a),
                Bind::Bytes(owner),
                Bind::Uint(kind),
                Bind::Bytes(id),
            ]);
        }
        let plan = explain_with(&db, &queries::settings_of(asks.len()), &binds).await;
        println!("settings_of plan: {plan:?}");
        assert_eq!(plan.len(), 1, "{plan:?}");
        // (app, owner, conv_kind, conv_id): 130 + 130 + 1 + 130 bytes.
        assert_eq!(
            (
                plan[0].key.as_deref(),
                plan[0].ty.as_str(),
                plan[0].key_len.as_deref()
            ),
            (Some("PRIMARY"), "range", Some("391")),
            "{plan:?}"
        );

        for g in ["g1", "g2", "g3"] {
            let group = Group {
                id: GroupId::new(g),
                name: g.into(),
                kind: GroupKind::Normal,
                owner: UserId::new("u00"),
                created_at: 1,
                avatar_url: String::new(),
                announcement: String::new(),
                muted: false,
            };
            let members: Vec<Member> = (0..30)
                .map(|i| Member {
                    user: UserId::new(format!("u{i:02}")),
                    role: if i == 0 { Role::Owner } else { Role::Member },
                    joined_at: 1,
                    muted_until: 0,
                })
                .collect();
            store.create_group(&app, &group, &members).await.unwrap();
        }
        let binds = [
            Bind::Bytes(a),
            Bind::Bytes(b"g1"),
            Bind::Bytes(a),
            Bind::Bytes(b"g3"),
        ];
        let plan = explain_with(&db, &queries::rosters(2), &binds).await;
        println!("rosters plan: {plan:?}");
        assert_eq!(plan.len(), 2, "groups, then members: {plan:?}");
        let g = plan.iter().find(|s| s.table == "g").expect("chat_groups");
        assert_eq!(
            (g.key.as_deref(), g.ty.as_str()),
            (Some("PRIMARY"), "range"),
            "{plan:?}"
        );
        let m = plan.iter().find(|s| s.table == "m").expect("group_members");
        assert_eq!(
            (m.key.as_deref(), m.ty.as_str()),
            (Some("PRIMARY"), "ref"),
            "{plan:?}"
        );
        assert!(
            plan.iter()
                .all(|s| !s.extra.contains("filesort") && !s.extra.contains("temporary")),
            "no sort: {plan:?}"
        );
        // Each group's members come back in user id order all the same.
        let (_, members) = store
            .roster(&app, &GroupId::new("g2"))
            .await
            .unwrap()
            .unwrap();
        let users: Vec<String> = members.iter().map(|m| m.user.to_string()).collect();
        let mut sorted = users.clone();
        sorted.sort();
        assert_eq!((users.len(), &users), (30, &sorted));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_by_id_goes_from_its_rows_to_the_owners_entry_by_index() {
    on_fresh_db(|db| async move {
        let store = db.store().await;
        let app = AppId::new("explain-get");
        populate(&db, &store, &app).await;
        let g = Conversation::group(&GroupId::new("g"));
        let u05 = UserId::new("u05");
        let newest = store.history(&app, &u05, &g, 0, 1).await.unwrap();
        let id = newest.entries[0].server_msg_id;
        let binds = [
            Bind::Bytes(app.as_str().as_bytes()),
            Bind::Bytes(&id.0),
            Bind::Bytes(app.as_str().as_bytes()),
            Bind::Bytes(b"u05"),
        ];
        for sql in [queries::GET, queries::UNREAD_OF_MESSAGE] {
            let plan = explain_with(&db, sql, &binds).await;
            println!("plan: {plan:?}");
            assert_eq!(plan.len(), 2, "messages, then inbox: {plan:?}");
            assert_eq!(plan[0].table, "m", "{plan:?}");
            assert_eq!(plan[0].key.as_deref(), Some("ix_messages_server_msg"));
            // (message_id, app, owner): 8 + 130 + 130 bytes, the secondary
            // index and the primary key it carries.
            assert_eq!(plan[1].key.as_deref(), Some("ix_inbox_owners"), "{plan:?}");
            assert_eq!(
                (plan[1].ty.as_str(), plan[1].key_len.as_deref()),
                ("ref", Some("268")),
                "{plan:?}"
            );
        }
        let found = store
            .get(&app, &u05, &id)
            .await
            .unwrap()
            .expect("u05's entry");
        assert_eq!(found.owner, u05);
        assert_eq!(found.server_msg_id, id);
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

/// A value to bind: an id as bytes, or a number.
#[derive(Clone, Copy)]
enum Bind<'a> {
    Bytes(&'a [u8]),
    Uint(u64),
}

/// One row of a plan.
#[derive(Debug, Clone)]
#[allow(dead_code)] // read through Debug in failure messages
struct Step {
    table: String,
    ty: String,
    key: Option<String>,
    key_len: Option<String>,
    extra: String,
}

/// The plan of `sql` bound with `binds`.
async fn explain_with(db: &TestDb, sql: &str, binds: &[Bind<'_>]) -> Vec<Step> {
    let mut conn = db.connection().await;
    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")));
    for v in binds {
        q = match *v {
            Bind::Bytes(v) => q.bind(v),
            Bind::Uint(v) => q.bind(v),
        };
    }
    q.fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let text = |col: &str| -> Option<String> { r.try_get(col).unwrap() };
            Step {
                table: text("table").unwrap_or_default(),
                ty: text("type").unwrap_or_default(),
                key: text("key"),
                key_len: text("key_len"),
                extra: text("Extra").unwrap_or_default(),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_joins_the_message_to_the_members_rows_and_copies_by_index() {
    on_fresh_db(|db| async move {
        let store = db.store().await;
        let app = AppId::new("explain-readers");
        // Besides g, the members talk in five smaller groups, and the app
        // has many other users, so neither an owner's whole inbox nor the
        // app's whole list looks cheap.
        let members: Vec<String> = (0..20).map(|i| format!("u{i:02}")).collect();
        let refs: Vec<&str> = members.iter().map(String::as_str).collect();
        for i in 0..40 {
            let d = group_delivery(&format!("h{}", i % 5), refs[i % 10], &refs[..10], "h");
            appended(store.append(&app, &d).await.unwrap());
        }
        for i in 0..300 {
            let d = direct_delivery(&format!("x{i:03}"), &format!("y{:02}", i % 30), "hi", "");
            appended(store.append(&app, &d).await.unwrap());
        }
        populate(&db, &store, &app).await;
        let g = Conversation::group(&GroupId::new("g"));
        let u05 = UserId::new("u05");
        let newest = store.history(&app, &u05, &g, 0, 1).await.unwrap();
        let id = newest.entries[0].server_msg_id;
        let mut binds = vec![
            Bind::Bytes(app.as_str().as_bytes()),
            Bind::Bytes(&id.0),
            Bind::Uint(g.kind as u64),
            Bind::Bytes(b"g"),
        ];
        binds.extend(members.iter().map(|m| Bind::Bytes(m.as_bytes())));
        let plan = explain_with(&db, &queries::readers(members.len()), &binds).await;
        println!("readers plan: {plan:?}");
        assert_eq!(plan.len(), 3, "messages, conversations, inbox: {plan:?}");
        let of = |table: &str| {
            plan.iter()
                .find(|s| s.table == table)
                .unwrap_or_else(|| panic!("{table} in {plan:?}"))
                .clone()
        };
        // The message rows of the id: (app, server_msg_id), 130 + 16 bytes.
        let m = of("m");
        assert_eq!(m.key.as_deref(), Some("ix_messages_server_msg"), "{plan:?}");
        assert_eq!((m.ty.as_str(), m.key_len.as_deref()), ("ref", Some("146")));
        // The members' list rows: one point of the whole primary key each
        // (app, owner, conv_kind, conv_id: 130 + 130 + 1 + 130 bytes), not
        // the app's or an owner's range.
        let c = of("c");
        assert_eq!(c.key.as_deref(), Some("PRIMARY"), "{plan:?}");
        assert_eq!(
            (c.ty.as_str(), c.key_len.as_deref()),
            ("range", Some("391")),
            "{plan:?}"
        );
        // Each member's entry of the message row: (message_id, app, owner),
        // the index and the primary key its entries carry.
        let i = of("i");
        assert_eq!(i.key.as_deref(), Some("ix_inbox_owners"), "{plan:?}");
        assert_eq!(
            (i.ty.as_str(), i.key_len.as_deref()),
            ("ref", Some("268")),
            "{plan:?}"
        );
        for step in &plan {
            assert!(!step.extra.contains("filesort") && !step.extra.contains("temporary"));
        }
        let everyone: Vec<UserId> = members.iter().map(|m| UserId::new(m.as_str())).collect();
        let found = store.readers(&app, &g, &id, &everyone).await.unwrap();
        assert_eq!(found.received, 19, "all but the sender");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_of_a_page_are_one_range_of_their_primary_key() {
    on_fresh_db(|db| async move {
        let store = db.store().await;
        let app = AppId::new("explain-reactions");
        let limits = bubble_core::ports::ReactionLimits {
            per_message: 20,
            per_user: 5,
        };
        let ids: Vec<bubble_core::MsgId> = (0..30)
            .map(|_| bubble_core::testkit::test_msg_id())
            .collect();
        for (n, id) in ids.iter().enumerate() {
            for u in 0..(n % 7 + 1) {
                let user = UserId::new(format!("u{u:02}"));
                for emoji in ["👍", "🎉", "❤️"].iter().take(u % 3 + 1) {
                    store
                        .react(&app, id, &user, emoji, true, limits)
                        .await
                        .unwrap();
                }
            }
        }
        let mut conn = db.connection().await;
        sqlx::query("ANALYZE TABLE reactions, reaction_heads")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        let page = &ids[..10];
        let mut binds = vec![Bind::Bytes(b"u01"), Bind::Bytes(app.as_str().as_bytes())];
        binds.extend(page.iter().map(|id| Bind::Bytes(&id.0)));
        let plan = explain_with(&db, &queries::reactions(page.len()), &binds).await;
        println!("reactions plan: {plan:?}");
        assert_eq!(plan.len(), 1, "{plan:?}");
        let Step {
            ty,
            key,
            key_len,
            extra,
            ..
        } = &plan[0];
        assert_eq!(key.as_deref(), Some("PRIMARY"), "{plan:?}");
        // (app, server_msg_id): 130 + 16 bytes, one interval per message.
        assert_eq!(
            (ty.as_str(), key_len.as_deref()),
            ("range", Some("146")),
            "{plan:?}"
        );
        assert!(extra.contains("Using index"), "{plan:?}");
        assert!(
            !extra.contains("filesort") && !extra.contains("temporary"),
            "grouped in key order: {plan:?}"
        );
        let got = store
            .reactions(&app, page, &UserId::new("u01"))
            .await
            .unwrap();
        assert_eq!(got.len(), 10);
        assert_eq!(got[1].0, page[1]);
        let counts: Vec<_> = got[1]
            .1
            .iter()
            .map(|c| (c.emoji.as_str(), c.count, c.mine))
            .collect();
        assert_eq!(
            counts,
            [("🎉", 1, true), ("👍", 2, true)],
            "u00 and u01 on the second, u01 with two emoji; in emoji (byte) order"
        );

        // The caps read while an add holds the message's head row, on a
        // message 300 users put 3 emoji on.
        let busy = bubble_core::testkit::test_msg_id();
        sqlx::query(
            "INSERT INTO reactions (app, server_msg_id, emoji, user_id) \
             WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) \
             SELECT ?, ?, e.emoji, CONCAT('v', n.i) FROM n \
             CROSS JOIN (SELECT 'x' AS emoji UNION ALL SELECT 'y' UNION ALL SELECT 'z') e",
        )
        .bind(app.as_str().as_bytes())
        .bind(&busy.0[..])
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query("ANALYZE TABLE reactions")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        let id = &busy;
        let (a, m) = (app.as_str().as_bytes(), &id.0[..]);
        // v1 adding x again: every read finds its rows.
        let binds: Vec<Bind<'_>> = [a, m, a, m, b"x", a, m, b"v1", a, m, b"x", b"v1"]
            .into_iter()
            .map(Bind::Bytes)
            .collect();
        let plan = explain_with(&db, queries::REACTION_CAPS, &binds).await;
        println!("caps plan: {plan:?}");
        let reads: Vec<_> = plan.iter().filter(|s| s.table == "reactions").collect();
        assert_eq!(reads.len(), 4, "{plan:?}");
        for step in reads {
            assert!(step.key.is_some(), "an index, not a scan: {plan:?}");
            assert!(
                step.ty == "ref" || step.ty == "const" || step.ty == "range",
                "bounded by the message at least: {plan:?}"
            );
            assert!(step.extra.contains("Using index"), "{plan:?}");
        }
        assert!(
            plan.iter()
                .any(|s| s.extra.contains("Using index for group-by")),
            "the distinct emoji skip from one to the next, not 900 entries: {plan:?}"
        );
        let counts = store.reactions(&app, &[busy], &UserId::new("v7")).await;
        let counts: Vec<_> = counts.unwrap()[0]
            .1
            .iter()
            .map(|c| (c.emoji.clone(), c.count, c.mine))
            .collect();
        assert_eq!(
            counts,
            [
                ("x".to_owned(), 300, true),
                ("y".to_owned(), 300, true),
                ("z".to_owned(), 300, true)
            ]
        );
        let e = store
            .react(&app, &busy, &UserId::new("w"), "new", true, limits)
            .await;
        assert!(e.is_ok(), "a 4th emoji fits 20: {e:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reactions_from_two_nodes_never_pass_the_caps() {
    on_fresh_db(|db| async move {
        // Two stores with their own pools are two server nodes.
        let node_a = db.store().await;
        let node_b = db.config().with_batch_max(1).connect().await.unwrap();
        let app = AppId::new("caps");
        let limits = bubble_core::ports::ReactionLimits {
            per_message: 3,
            per_user: 2,
        };
        const EMOJI: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", "h"];
        for round in 0..5 {
            let id = bubble_core::testkit::test_msg_id();
            // Every user adds every emoji at once: at most 3 distinct emoji
            // on the message, at most 2 per user.
            let mut tasks = Vec::new();
            for u in 0..6 {
                for (k, e) in EMOJI.iter().enumerate() {
                    let store = if (u + k) % 2 == 0 {
                        node_a.clone()
                    } else {
                        node_b.clone()
                    };
                    let app = app.clone();
                    tasks.push(tokio::spawn(async move {
                        let user = UserId::new(format!("u{u}"));
                        match store.react(&app, &id, &user, e, true, limits).await {
                            Ok(changed) => Ok(changed),
                            Err(err) => {
                                assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");
                                Err(())
                            }
                        }
                    }));
                }
            }
            let mut added = 0;
            for t in tasks {
                if let Ok(true) = t.await.unwrap() {
                    added += 1;
                }
            }
            let counts = node_a
                .reactions(&app, &[id], &UserId::new("u0"))
                .await
                .unwrap();
            let on_message = &counts[0].1;
            assert!(
                on_message.len() <= 3,
                "round {round}: {} distinct emoji: {on_message:?}",
                on_message.len()
            );
            let total: u64 = on_message.iter().map(|c| c.count).sum();
            assert_eq!(
                total, added,
                "round {round}: every add that said so is there"
            );
            let mut per_user: BTreeMap<String, usize> = BTreeMap::new();
            let mut conn = db.connection().await;
            let rows: Vec<(Vec<u8>, i64)> = sqlx::query_as(
                "SELECT user_id, COUNT(*) FROM reactions WHERE server_msg_id = ? GROUP BY user_id",
            )
            .bind(&id.0[..])
            .fetch_all(&mut conn)
            .await
            .unwrap();
            for (user, n) in rows {
                per_user.insert(String::from_utf8(user).unwrap(), n as usize);
            }
            assert!(
                per_user.values().all(|&n| n <= 2),
                "round {round}: per user {per_user:?}"
            );
            // 3 emoji of 2 each for 6 users: 12 fit, and the first comers
            // take them all (an emoji already there is no new one).
            assert_eq!(added, 12, "round {round}: the caps fill up: {per_user:?}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_that_does_not_decode_is_an_internal_error() {
    on_fresh_db(|db| async move {
        let store = db.store().await;
        let app = AppId::new("corrupt");
        appended(
            store
                .append(&app, &direct_delivery("a", "b", "x", ""))
                .await
                .unwrap(),
        );
        let mut conn = db.connection().await;
        sqlx::query("UPDATE messages SET meta = X'FFFFFFFF'")
            .execute(&mut conn)
            .await
            .unwrap();
        let e = store
            .pull(&app, &UserId::new("b"), 0, 10)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Internal, "{e}");
        assert!(e.to_string().contains("meta"), "{e}");
    })
    .await;
}

/// How many index reads (lookups and steps) the connection's session made.
async fn index_reads(conn: &mut sqlx::MySqlConnection) -> u64 {
    let found: Vec<(String, String)> = sqlx::query_as(
        "SHOW SESSION STATUS WHERE Variable_name IN ('Handler_read_key', 'Handler_read_next')",
    )
    .fetch_all(conn)
    .await
    .unwrap();
    found.iter().map(|(_, n)| n.parse::<u64>().unwrap()).sum()
}

/// A server-made entry of `kind` about the message of `d` for `owners`.
fn about(kind: bubble_core::EntryKind, d: &Delivery, owners: &[&str]) -> Delivery {
    let mut a = d.clone();
    a.client_msg_id = String::new();
    a.receipt_entry = None;
    a.entries.retain(|e| owners.contains(&e.owner.as_str()));
    for e in &mut a.entries {
        e.kind = kind;
        e.content = bubble_core::Content::text("");
    }
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_reads_on_past_recalled_ids_and_lists_a_split_delivery_once() {
    use bubble_core::EntryKind;
    on_fresh_db(|db| async move {
        let store = db.store().await;
        let app = AppId::new("scan");
        let members = ["a", "b", "c", "d"];
        let mut sent = Vec::new();
        for i in 0..8 {
            let d = group_delivery("g", "a", &members, &format!("m{i}"));
            appended(store.append(&app, &d).await.unwrap());
            sent.push(d);
        }
        sent.sort_by_key(|d| d.entries[0].server_msg_id);
        // The four lowest ids are recalled (for some owners only: a recall
        // takes the message from everyone), so a page of 2 from the start
        // finds nothing in its first two reads of ids.
        for d in &sent[..4] {
            let r = about(EntryKind::Recall, d, &["a", "b"]);
            appended(store.append(&app, &r).await.unwrap());
        }
        // Every owner deletes the fifth; c and d the sixth.
        let r = about(EntryKind::Delete, &sent[4], &members);
        appended(store.append(&app, &r).await.unwrap());
        let r = about(EntryKind::Delete, &sent[5], &["c", "d"]);
        appended(store.append(&app, &r).await.unwrap());
        // A receipt shares the seventh's id and is no message.
        let r = about(EntryKind::ReadReceipt, &sent[6], &["a"]);
        appended(store.append(&app, &r).await.unwrap());
        let id = |n: usize| sent[n].entries[0].server_msg_id;

        let page = store.scan_messages(&app, None, 2).await.unwrap();
        let got: Vec<_> = page.iter().map(|m| m.entry.server_msg_id).collect();
        assert_eq!(got, [id(5), id(6)], "past the recalled and deleted ids");
        let owners = |m: &bubble_core::ports::StoredMessage| -> Vec<String> {
            m.owners.iter().map(|o| o.to_string()).collect()
        };
        assert_eq!(owners(&page[0]), ["a", "b"]);
        assert_eq!(owners(&page[1]), ["a", "b", "c", "d"]);
        assert_eq!(page[0].entry.owner.as_str(), "a", "the first owner's entry");
        assert_eq!(page[0].entry.content.as_text(), Some("m5"));
        let rest = store.scan_messages(&app, Some(id(6)), 2).await.unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].entry.server_msg_id, id(7));
        assert!(
            store
                .scan_messages(&app, Some(id(7)), 2)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(store.scan_messages(&app, None, 0).await.unwrap().is_empty());

        // A delivery whose entries differ is two message rows of one id:
        // listed once, with every owner, the body of the first owner's.
        let mut split = group_delivery("h", "b", &["b", "c", "e"], "same");
        split.entries[2].content = bubble_core::Content::text("other");
        appended(store.append(&app, &split).await.unwrap());
        let all = store.scan_messages(&app, None, 100).await.unwrap();
        let found: Vec<_> = all
            .iter()
            .filter(|m| m.entry.server_msg_id == split.entries[0].server_msg_id)
            .collect();
        assert_eq!(found.len(), 1, "{all:?}");
        assert_eq!(owners(found[0]), ["b", "c", "e"]);
        assert_eq!(found[0].entry.content.as_text(), Some("same"));
        assert_eq!(all.len(), 4);
        // Pages of one at a time give the same messages in the same order.
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = store.scan_messages(&app, after, 1).await.unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.entry.server_msg_id);
            paged.extend(page);
        }
        assert_eq!(paged, all);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_scan_reads_ranges_of_ids_and_each_rows_owners_by_index() {
    on_fresh_db(|db| async move {
        let store = db.store().await;
        let app = AppId::new("explain-scan");
        // Another app's messages, so the app is a part of each table.
        let other = AppId::new("explain-scan-other");
        for i in 0..300 {
            let d = direct_delivery(&format!("x{i:03}"), &format!("y{:02}", i % 30), "hi", "");
            appended(store.append(&other, &d).await.unwrap());
        }
        populate(&db, &store, &app).await;
        let all = store.scan_messages(&app, None, 1000).await.unwrap();
        assert_eq!(all.len(), 80, "40 group messages and 40 direct ones");
        let (after, last) = (all[9].entry.server_msg_id, all[29].entry.server_msg_id);
        let a = app.as_str().as_bytes();
        let bad = |plan: &[Step]| {
            plan.iter().any(|s| {
                s.ty == "ALL"
                    || s.ty == "index"
                    || s.extra.contains("filesort")
                    || s.extra.contains("temporary")
            })
        };

        // The ids: a range of ix_messages_server_msg, (app, server_msg_id
        // > cursor): 130 + 16 bytes, in key order, stopping at the limit.
        // From the start too (every id is after the empty cursor).
        for cursor in [&[][..], &after.0[..]] {
            let binds = [Bind::Bytes(a), Bind::Bytes(cursor), Bind::Uint(20)];
            let plan = explain_with(&db, queries::SCAN_IDS, &binds).await;
            println!("scan ids plan: {plan:?}");
            assert_eq!(plan.len(), 1, "{plan:?}");
            let s = &plan[0];
            assert_eq!(s.key.as_deref(), Some("ix_messages_server_msg"), "{plan:?}");
            assert_eq!(
                (s.ty.as_str(), s.key_len.as_deref()),
                ("range", Some("146")),
                "from the cursor on, not the app's first id: {plan:?}"
            );
            assert!(!bad(&plan), "no scan, no sort: {plan:?}");
        }

        // And it reads from the cursor on: a page of the last ten ids reads
        // about ten index entries, not the 70 before them.
        let mut conn = db.connection().await;
        let before = index_reads(&mut conn).await;
        let tail: Vec<Vec<u8>> = sqlx::query_scalar(queries::SCAN_IDS)
            .bind(a)
            .bind(&all[69].entry.server_msg_id.0[..])
            .bind(20u64)
            .fetch_all(&mut conn)
            .await
            .unwrap();
        let read = index_reads(&mut conn).await - before;
        assert_eq!(tail.len(), 10);
        println!("index reads for the last 10 ids: {read}");
        assert!(read <= 20, "{read} index reads for 10 ids");

        // The owners of the page's message rows: the same range, then each
        // row's owners from ix_inbox_owners alone.
        let binds = [Bind::Bytes(a), Bind::Bytes(&after.0), Bind::Bytes(&last.0)];
        let plan = explain_with(&db, queries::SCAN_OWNERS, &binds).await;
        println!("scan owners plan: {plan:?}");
        assert_eq!(plan.len(), 2, "messages, then inbox: {plan:?}");
        let m = plan.iter().find(|s| s.table == "m").expect("messages");
        assert_eq!(m.key.as_deref(), Some("ix_messages_server_msg"), "{plan:?}");
        assert_eq!(
            (m.ty.as_str(), m.key_len.as_deref()),
            ("range", Some("146")),
            "{plan:?}"
        );
        let i = plan.iter().find(|s| s.table == "i").expect("inbox");
        assert_eq!(i.key.as_deref(), Some("ix_inbox_owners"), "{plan:?}");
        assert_eq!(
            (i.ty.as_str(), i.key_len.as_deref()),
            ("ref", Some("8")),
            "{plan:?}"
        );
        assert!(
            i.extra.contains("Using index"),
            "from the index alone: {plan:?}"
        );
        assert!(!bad(&plan), "no scan, no sort: {plan:?}");

        // One entry per message: points of the inbox's primary key (app,
        // owner, version: 130 + 130 + 8 bytes), each joined to its message.
        let pairs: Vec<(String, u64)> = all[10..30]
            .iter()
            .map(|m| (m.entry.owner.to_string(), m.entry.version))
            .collect();
        let mut binds = vec![Bind::Bytes(a)];
        for (owner, version) in &pairs {
            binds.push(Bind::Bytes(owner.as_bytes()));
            binds.push(Bind::Uint(*version));
        }
        let plan = explain_with(&db, &queries::scan_entries(pairs.len()), &binds).await;
        println!("scan entries plan: {plan:?}");
        assert_eq!(plan.len(), 2, "inbox, then messages: {plan:?}");
        let i = plan.iter().find(|s| s.table == "i").expect("inbox");
        assert_eq!(i.key.as_deref(), Some("PRIMARY"), "{plan:?}");
        assert_eq!(
            (i.ty.as_str(), i.key_len.as_deref()),
            ("range", Some("268")),
            "{plan:?}"
        );
        let m = plan.iter().find(|s| s.table == "m").expect("messages");
        assert_eq!(
            (m.ty.as_str(), m.key.as_deref()),
            ("eq_ref", Some("PRIMARY")),
            "{plan:?}"
        );
        assert!(!bad(&plan), "no scan, no sort: {plan:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_reads_the_apps_oldest_messages_from_the_time_index_in_order() {
    on_fresh_db(|db| async move {
        let store = db.store().await;
        let app = AppId::new("explain-expire");
        populate(&db, &store, &app).await;
        populate(&db, &store, &AppId::new("explain-expire-other")).await;
        let now = bubble_core::now_millis() as u64;
        // Nothing due (the usual sweep), and everything due.
        for cutoff in [1, now + 1] {
            let binds = [
                Bind::Bytes(app.as_str().as_bytes()),
                Bind::Uint(cutoff),
                Bind::Uint(201),
            ];
            for (sql, index) in [
                (queries::EXPIRE_OLDEST, "ix_messages_time"),
                (queries::EXPIRE_CHANNEL_OLDEST, "ix_channel_log_app_time"),
            ] {
                let plan = explain_with(&db, sql, &binds).await;
                assert_eq!(plan.len(), 1, "{plan:?}");
                assert_eq!(
                    plan[0].key.as_deref(),
                    Some(index),
                    "a range of the time index: {plan:?}"
                );
                assert!(
                    !plan[0].extra.contains("filesort"),
                    "already in time order: {plan:?}"
                );
            }
        }
    })
    .await;
}

/// 30 old messages to a group of 100: 3,000 entries, past the 2,000 one
/// retention transaction deletes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retention_call_on_big_group_messages_stops_near_its_entry_budget() {
    on_fresh_db(|db| async move {
        let store = db.store().await;
        let app = AppId::new("budget");
        let names: Vec<String> = (0..100).map(|i| format!("m{i:03}")).collect();
        let members: Vec<&str> = names.iter().map(String::as_str).collect();
        for i in 0..30 {
            let mut d = group_delivery("g", members[i % 100], &members, "old");
            for e in &mut d.entries {
                e.server_time = 1_000 + i as i64;
            }
            appended(store.append(&app, &d).await.unwrap());
        }
        let first = store.expire(&app, 1_000_000, 200).await.unwrap();
        assert!(first.more, "more remain");
        assert_eq!(
            first.messages.len(),
            20,
            "2,000 entries: 20 messages of 100"
        );
        let rest = store.expire(&app, 1_000_000, 200).await.unwrap();
        assert_eq!((rest.messages.len(), rest.more), (10, false));
        let page = store
            .pull(&app, &UserId::new("m000"), 0, 100)
            .await
            .unwrap();
        assert!(page.entries.is_empty());
    })
    .await;
}
