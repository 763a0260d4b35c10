//! The job queue and push tokens as a cluster uses them: several nodes (each
//! its own store and pool on one database) claiming one queue at once, the
//! claims' plans, and what the columns refuse.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use bubble_core::jobs::{ClaimOrder, JobQueue, NewJob};
use bubble_core::notify::{PushPlatform, PushToken, PushTokens};
use bubble_core::{AppId, DeviceId, ErrorKind, UserId};
use bubble_store_mysql::queries;
use bubble_store_mysql::testing::TestDb;
use common::on_fresh_db;
use sqlx::Row;

const T: i64 = 1_700_000_000_000;

/// `n` jobs due at `T` on `queue`.
fn jobs(queue: &str, n: usize) -> Vec<NewJob> {
    (0..n)
        .map(|i| NewJob {
            queue: queue.to_owned(),
            payload: i.to_string().into_bytes(),
            due_at: T,
        })
        .collect()
}

/// Three stores on the database: three nodes of a cluster.
async fn nodes(db: &TestDb) -> Vec<Arc<dyn JobQueue>> {
    let mut nodes: Vec<Arc<dyn JobQueue>> = Vec::new();
    for _ in 0..3 {
        nodes.push(Arc::new(db.store().await));
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claimers_on_several_nodes_never_get_the_same_job_while_its_lease_runs() {
    on_fresh_db(|db| async move {
        let nodes = nodes(&db).await;
        let queue = "notify/cluster";
        const JOBS: usize = 300;
        nodes[0].enqueue(&jobs(queue, JOBS), T).await.unwrap();
        // Two claimers per node, all at the same time (no lease runs out).
        let mut claimers = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            for k in 0..2 {
                let node = node.clone();
                claimers.push(tokio::spawn(async move {
                    let holder = format!("node-{i}-{k}");
                    let mut mine = Vec::new();
                    loop {
                        let got = node
                            .claim(queue, &holder, T, 60_000, 5, ClaimOrder::Any)
                            .await
                            .unwrap();
                        if got.is_empty() {
                            return mine;
                        }
                        mine.extend(got.into_iter().map(|j| j.id));
                    }
                }));
            }
        }
        let mut seen = BTreeSet::new();
        let mut taken = 0;
        for c in claimers {
            let mine = c.await.unwrap();
            taken += mine.len();
            seen.extend(mine);
        }
        assert_eq!(taken, seen.len(), "no job was taken twice");
        assert_eq!(seen.len(), JOBS, "every job was taken");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_order_claimers_on_several_nodes_take_turns_and_keep_the_order() {
    on_fresh_db(|db| async move {
        let nodes = nodes(&db).await;
        let queue = "after_send/cluster";
        const JOBS: usize = 60;
        nodes[0].enqueue(&jobs(queue, JOBS), T).await.unwrap();
        // Each claimer notes what it took, then completes it: with one
        // holder at a time the notes come out in id order.
        let done = Arc::new(Mutex::new(Vec::new()));
        let mut claimers = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let (node, done) = (node.clone(), done.clone());
            claimers.push(tokio::spawn(async move {
                let holder = format!("node-{i}");
                loop {
                    let got = node
                        .claim(queue, &holder, T, 60_000, 4, ClaimOrder::InOrder)
                        .await
                        .unwrap();
                    if got.is_empty() {
                        if node.depth(queue).await.unwrap() == 0 {
                            return;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                        continue;
                    }
                    let ids: Vec<u64> = got.iter().map(|j| j.id).collect();
                    done.lock().unwrap().extend_from_slice(&ids);
                    node.complete(&ids).await.unwrap();
                }
            }));
        }
        for c in claimers {
            c.await.unwrap();
        }
        let done = done.lock().unwrap().clone();
        assert_eq!(done.len(), JOBS, "every job once: {done:?}");
        assert!(
            done.windows(2).all(|w| w[0] < w[1]),
            "in id order, one holder at a time: {done:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_walk_their_queue_along_its_index_without_a_sort() {
    on_fresh_db(|db| async move {
        let store = db.store().await;
        for q in ["notify/a", "notify/b", "after_send/a"] {
            store.enqueue(&jobs(q, 200), T).await.unwrap();
        }
        let mut conn = db.connection().await;
        sqlx::query("ANALYZE TABLE jobs")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        for (sql, binds) in [
            (queries::CLAIM_ANY, vec![T, T, 10]),
            (queries::CLAIM_HEAD, vec![10]),
        ] {
            let mut q =
                sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}"))).bind(&b"notify/a"[..]);
            for v in binds {
                q = q.bind(v);
            }
            let plan = q.fetch_all(&mut conn).await.unwrap();
            assert_eq!(plan.len(), 1, "one table read");
            let key: Option<String> = plan[0].try_get("key").unwrap();
            let extra: Option<String> = plan[0].try_get("Extra").unwrap();
            let extra = extra.unwrap_or_default();
            assert_eq!(key.as_deref(), Some("ix_jobs_queue"), "{sql}: {extra}");
            assert!(!extra.contains("filesort"), "already in id order: {extra}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_or_locale_longer_than_its_column_is_refused_saying_the_limit() {
    on_fresh_db(|db| async move {
        let store = db.store().await;
        let (app, ann) = (AppId::new("a"), UserId::new("ann"));
        let token = PushToken {
            device: DeviceId::new("phone"),
            platform: PushPlatform::Webhook,
            token: "t".repeat(2048),
            locale: "en".into(),
            quiet_until: 0,
            updated_at: T,
        };
        store.put_token(&app, &ann, &token).await.unwrap();
        let long = PushToken {
            token: "t".repeat(2049),
            ..token.clone()
        };
        let err = store.put_token(&app, &ann, &long).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.message().contains("2048"), "{err}");
        let wordy = PushToken {
            locale: "x".repeat(256),
            ..token.clone()
        };
        let err = store.put_token(&app, &ann, &wordy).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert_eq!(
            store.tokens(&app, &ann).await.unwrap(),
            [token],
            "the refused ones changed nothing"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_token_registered_on_several_nodes_at_once_ends_on_one_device() {
    on_fresh_db(|db| async move {
        let app = AppId::new("a");
        let mut puts = Vec::new();
        for i in 0..6 {
            let store = db.store().await;
            let app = app.clone();
            puts.push(tokio::spawn(async move {
                let token = PushToken {
                    device: DeviceId::new(format!("device-{i}")),
                    platform: PushPlatform::Apns,
                    token: "contested".into(),
                    locale: "en".into(),
                    quiet_until: 0,
                    updated_at: T,
                };
                store
                    .put_token(&app, &UserId::new(format!("user-{}", i % 2)), &token)
                    .await
                    .unwrap();
            }));
        }
        for p in puts {
            p.await.unwrap();
        }
        let store = db.store().await;
        let mut holders = Vec::new();
        for u in ["user-0", "user-1"] {
            holders.extend(store.tokens(&app, &UserId::new(u)).await.unwrap());
        }
        assert_eq!(holders.len(), 1, "one holder: {holders:?}");
    })
    .await;
}
