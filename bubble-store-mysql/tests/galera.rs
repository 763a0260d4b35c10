//! The MySQL store on a three-node MariaDB Galera cluster, through the
//! multi-address config (`urls`): it passes the conformance suite, and when
//! the node it works on is killed mid-traffic, nothing acknowledged is lost
//! or stored twice; appends, adds of reactions and transfers of a group's
//! ownership made on two nodes at once stay consistent.
//!
//! Needs the cluster of `scripts/galera.sh up` (nodes on 127.0.0.1:3311-3313),
//! or `BUBBLE_GALERA_URLS` (a comma list, one URL per node; the kill test
//! needs the script's ports, 331N for node N, since it kills and restarts
//! nodes with the script). When neither answers, each test prints that it
//! was skipped and passes. Run:
//!
//! ```sh
//! scripts/galera.sh up
//! cargo test -p bubble-store-mysql --test galera -- --nocapture
//! ```

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bubble_core::AdapterConfig;
use bubble_core::ports::{AppendOutcome, Delivery, GroupStore, InboxStore, ReactionLimits};
use bubble_core::testkit::{self, direct_delivery, group_delivery};
use bubble_core::{
    AppId, Direction, ErrorKind, Group, GroupId, GroupKind, InboxEntry, Member, Role, UserId,
};
use bubble_store_mysql::testing::{TestDb, with_database};
use bubble_store_mysql::{MysqlConfig, MysqlStore};
use sqlx::Connection;

/// The cluster of `scripts/galera.sh`.
const DEFAULT_URLS: &str = "mysql://root@127.0.0.1:3311/test,mysql://root@127.0.0.1:3312/test,\
                            mysql://root@127.0.0.1:3313/test";

/// The tests of this file take turns: the kill test takes a node away from
/// under any other test running beside it.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Prints `line` where it is seen: straight to the stderr handle, since the
/// test harness captures `eprintln!` of passing tests.
fn say(line: String) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The cluster's node URLs, or `None` (printed) when no cluster answers.
/// With `BUBBLE_GALERA_URLS` set, a cluster that does not answer fails the
/// test: it was asked for.
async fn cluster(test: &str) -> Option<Vec<String>> {
    let (text, asked) = match std::env::var("BUBBLE_GALERA_URLS") {
        Ok(urls) if !urls.trim().is_empty() => (urls, true),
        _ => (DEFAULT_URLS.to_owned(), false),
    };
    let urls: Vec<String> = text.split(',').map(|u| u.trim().to_owned()).collect();
    // One connection attempt (a pool would retry a refused port for 30 s).
    let first = sqlx::MySqlConnection::connect(&urls[0]).await;
    match first {
        Ok(mut conn) => {
            let size: (String, String) = sqlx::query_as("SHOW STATUS LIKE 'wsrep_cluster_size'")
                .fetch_one(&mut conn)
                .await
                .expect("the first node is a Galera node");
            let _ = conn.close().await;
            assert_eq!(
                size.1,
                urls.len().to_string(),
                "the cluster should have every node of {urls:?} (scripts/galera.sh status)"
            );
            Some(urls)
        }
        Err(e) if asked => {
            panic!("BUBBLE_GALERA_URLS is set but its first node does not answer: {e}")
        }
        Err(_) => {
            say(format!(
                "SKIPPED {test}: no Galera cluster answers on 127.0.0.1:3311 and \
                 BUBBLE_GALERA_URLS is not set (start one: scripts/galera.sh up)"
            ));
            None
        }
    }
}

/// A store config on database `db` of every node.
fn config(urls: &[String], db: &TestDb) -> MysqlConfig {
    MysqlConfig::default().with_urls(urls.iter().map(|u| with_database(u, db.name())))
}

/// Runs `test` on a fresh database of the cluster and drops it afterwards,
/// also when the test panics.
async fn on_fresh_cluster_db<F, Fut>(urls: &[String], test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let db = TestDb::create_at(&urls[0]).await;
    let outcome = tokio::spawn(test(db.clone())).await;
    db.drop_db().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Two stores on database `db`, one working on the cluster's first node and
/// one on its second, so their writes meet in Galera's certification.
async fn two_stores(nodes: &[String], db: &TestDb) -> (MysqlStore, MysqlStore) {
    let mut other = nodes.to_vec();
    other.swap(0, 1);
    let first = config(nodes, db).connect().await.unwrap();
    let second = config(&other, db).connect().await.unwrap();
    // Each on the first node of its own list: node 1 and node 2.
    assert_eq!((first.current_node(), second.current_node()), (0, 0));
    (first, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_store_on_galera_passes_the_conformance_suite() {
    let Some(urls) = cluster("the_store_on_galera_passes_the_conformance_suite").await else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let started = Instant::now();
    let nodes = urls.clone();
    on_fresh_cluster_db(&urls, |db| async move {
        let store = config(&nodes, &db).connect().await.unwrap();
        testkit::inbox(Arc::new(store.clone())).await;
        testkit::groups(Arc::new(store.clone())).await;
        testkit::channel_log(Arc::new(store.clone())).await;
        testkit::apps(Arc::new(store.clone())).await;
        testkit::jobs(Arc::new(store.clone())).await;
        testkit::push_tokens(Arc::new(store.clone())).await;
        let unbatched = config(&nodes, &db)
            .with_batch_max(1)
            .connect()
            .await
            .unwrap();
        testkit::inbox(Arc::new(unbatched)).await;
    })
    .await;
    say(format!(
        "galera conformance: {:.1} s",
        started.elapsed().as_secs_f64()
    ));
}

/// The node of the script's cluster a URL names (port 331N is node N).
fn node_of(url: &str) -> Option<u32> {
    let port: u32 = url.rsplit_once(':')?.1.split('/').next()?.parse().ok()?;
    (3311..=3319).contains(&port).then(|| port - 3310)
}

fn galera_script(args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/galera.sh");
    let status = Command::new("bash")
        .arg(&script)
        .args(args)
        .status()
        .expect("run scripts/galera.sh");
    assert!(status.success(), "scripts/galera.sh {args:?} failed");
}

/// One writer's message `i`: a 1:1 message to a receiver shared with other
/// writers, or a group message, each with its own client message id.
fn message(writer: usize, i: usize) -> Delivery {
    let from = format!("w{writer}");
    let id = format!("{writer}-{i}");
    if i.is_multiple_of(2) {
        direct_delivery(&from, &format!("r{}", writer % 3), &id, &id)
    } else {
        let members = [from.as_str(), "g1", "g2", "g3"];
        let mut d = group_delivery("galera", &from, &members, &id);
        d.client_msg_id = id.clone();
        for e in &mut d.entries {
            e.client_msg_id = id.clone();
        }
        d
    }
}

/// What one writer did.
#[derive(Default)]
struct Written {
    /// Client message ids the store acknowledged (`Appended`, or
    /// `Duplicate` for a retry of a write whose first answer was lost).
    acked: Vec<String>,
    /// Acks that came as `Duplicate`: the first attempt was stored but its
    /// answer never arrived.
    duplicates_answered: usize,
    /// Failed attempts, each retried with the same delivery.
    failed_attempts: usize,
    /// The longest time one message took from first attempt to ack.
    longest: Duration,
    /// The message the writer gave up on, after `GIVE_UP` of failures
    /// (the cluster did not recover: see scripts/galera.sh status).
    gave_up: Option<String>,
}

/// How long a writer retries one message before it stops.
const GIVE_UP: Duration = Duration::from_secs(60);

/// Appends messages until `until`, each retried (the same delivery, so the
/// same client message id) until the store acknowledges it, as a client
/// resends a message it got no receipt for.
async fn writer(store: MysqlStore, app: AppId, w: usize, until: Instant) -> Written {
    let mut done = Written::default();
    let mut i = 0;
    while Instant::now() < until {
        let d = message(w, i);
        let first_try = Instant::now();
        loop {
            match store.append(&app, &d).await {
                Ok(outcome) => {
                    if matches!(outcome, AppendOutcome::Duplicate(_)) {
                        done.duplicates_answered += 1;
                    }
                    done.acked.push(d.client_msg_id.clone());
                    break;
                }
                Err(e) => {
                    assert!(e.is_retryable(), "writer {w}: {e}");
                    done.failed_attempts += 1;
                    if first_try.elapsed() > GIVE_UP {
                        say(format!("writer {w} gives up on {}: {e}", d.client_msg_id));
                        done.gave_up = Some(d.client_msg_id.clone());
                        return done;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        done.longest = done.longest.max(first_try.elapsed());
        i += 1;
    }
    done
}

/// Every entry `owner` holds, in version order.
async fn held(store: &MysqlStore, app: &AppId, owner: &str) -> Vec<InboxEntry> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .pull(app, &UserId::new(owner), after, 500)
            .await
            .unwrap();
        all.extend(page.entries);
        match all.last() {
            Some(e) if page.has_more => after = e.version,
            _ => return all,
        }
    }
}

/// How often each client message id is in `owner`'s inbox, in `direction`.
async fn stored_ids(
    store: &MysqlStore,
    app: &AppId,
    owner: &str,
    direction: Direction,
) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for e in held(store, app, owner).await {
        if e.direction == direction {
            *counts.entry(e.client_msg_id).or_insert(0) += 1;
        }
    }
    counts
}

/// Sorts each acknowledged id of `acked` by how often its sender's inbox
/// holds it (`sent`, from [`stored_ids`]): never is lost, twice or more
/// is duplicated.
fn audit(
    acked: &[String],
    sent: &BTreeMap<String, usize>,
    lost: &mut Vec<String>,
    duplicated: &mut Vec<String>,
) {
    for id in acked {
        match sent.get(id) {
            None => lost.push(id.clone()),
            Some(1) => {}
            Some(_) => duplicated.push(id.clone()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_mid_traffic_loses_nothing_acknowledged() {
    let test = "a_node_killed_mid_traffic_loses_nothing_acknowledged";
    let Some(urls) = cluster(test).await else {
        return;
    };
    if urls.iter().any(|u| node_of(u).is_none()) {
        say(format!(
            "SKIPPED {test}: it kills nodes with scripts/galera.sh, whose nodes are on ports 3311-3313"
        ));
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let nodes = urls.clone();
    on_fresh_cluster_db(&urls, |db| async move {
        const WRITERS: usize = 8;
        let store = config(&nodes, &db).connect().await.unwrap();
        let app = AppId::new("galera-kill");
        let victim = store.current_node();
        let victim_node = node_of(&nodes[victim]).unwrap();

        let started = Instant::now();
        let until = started + Duration::from_secs(12);
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| tokio::spawn(writer(store.clone(), app.clone(), w, until)))
            .collect();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let killed_at = started.elapsed();
        tokio::task::spawn_blocking(move || galera_script(&["kill", &victim_node.to_string()]))
            .await
            .unwrap();
        let mut written = Vec::new();
        for t in tasks {
            written.push(t.await.unwrap());
        }
        let moved_to = store.current_node();

        // Read back through a store on the survivors only.
        let survivors: Vec<String> = nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != victim)
            .map(|(_, u)| with_database(u, db.name()))
            .collect();
        let reader = MysqlConfig::default()
            .with_urls(survivors)
            .with_run_migrations(false)
            .connect()
            .await
            .unwrap();
        let mut acked = 0;
        let mut lost = Vec::new();
        let mut duplicated = Vec::new();
        let mut sent_counts = BTreeMap::new();
        for (w, done) in written.iter().enumerate() {
            let sent = stored_ids(&reader, &app, &format!("w{w}"), Direction::Out).await;
            acked += done.acked.len();
            audit(&done.acked, &sent, &mut lost, &mut duplicated);
            // Stored but never acknowledged would be a write whose retry
            // never came; a writer retries until acked, so there is none.
            for (id, n) in &sent {
                if *n > 1 && !duplicated.contains(id) {
                    duplicated.push(id.clone());
                }
            }
            sent_counts.insert(w, sent.len());
        }
        // Every receiver holds each acknowledged message once too.
        let mut received: BTreeMap<String, usize> = BTreeMap::new();
        for owner in ["r0", "r1", "r2", "g1"] {
            for (id, n) in stored_ids(&reader, &app, owner, Direction::In).await {
                *received.entry(format!("{owner}/{id}")).or_insert(0) += n;
            }
        }
        let receiver_dups = received.values().filter(|n| **n > 1).count();
        let duplicates_answered: usize = written.iter().map(|d| d.duplicates_answered).sum();
        let failed_attempts: usize = written.iter().map(|d| d.failed_attempts).sum();
        let stall = written.iter().map(|d| d.longest).max().unwrap_or_default();
        let gave_up: Vec<&String> = written.iter().filter_map(|d| d.gave_up.as_ref()).collect();
        reader.close().await;
        store.close().await;

        let rejoin = Instant::now();
        tokio::task::spawn_blocking(move || galera_script(&["start", &victim_node.to_string()]))
            .await
            .unwrap();
        say(format!(
            "galera kill: node{victim_node} killed at {:.1} s of 12 s; store moved from url {victim} to {moved_to}; \
             acked {acked}, lost {}, duplicated {} (receivers' duplicates {receiver_dups}); \
             acks answered as duplicates {duplicates_answered}, failed attempts {failed_attempts}; \
             longest write (first try to ack) {:.2} s; node{victim_node} rejoined in {:.1} s",
            killed_at.as_secs_f64(),
            lost.len(),
            duplicated.len(),
            stall.as_secs_f64(),
            rejoin.elapsed().as_secs_f64(),
        ));
        assert!(
            gave_up.is_empty(),
            "writers got no ack for {} s for {gave_up:?}: the survivors did not keep a \
             primary component (scripts/galera.sh status; 'up' recovers it)",
            GIVE_UP.as_secs()
        );
        assert!(acked > 0, "nothing was written");
        assert_ne!(moved_to, victim, "the store moved off the killed node");
        assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
        assert!(duplicated.is_empty(), "stored twice: {duplicated:?}");
        assert_eq!(receiver_dups, 0, "a receiver holds a message twice");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_through_two_nodes_at_once_lose_nothing_and_keep_versions_dense() {
    // Writers on two nodes append to the same inboxes, so the nodes' writes
    // conflict all the time: each conflict aborts one side's transaction
    // (on the node that learns of it second, at any statement), which the
    // store must see and retry as a whole, never half-applied.
    let test = "appends_through_two_nodes_at_once_lose_nothing_and_keep_versions_dense";
    let Some(urls) = cluster(test).await else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let nodes = urls.clone();
    on_fresh_cluster_db(&urls, |db| async move {
        const WRITERS: usize = 8;
        let (first, second) = two_stores(&nodes, &db).await;
        let app = AppId::new("galera-two-writers");
        let until = Instant::now() + Duration::from_secs(8);
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let store = if w % 2 == 0 { &first } else { &second };
                tokio::spawn(writer(store.clone(), app.clone(), w, until))
            })
            .collect();
        let mut written = Vec::new();
        for t in tasks {
            written.push(t.await.unwrap());
        }
        let mut acked = 0;
        let mut lost = Vec::new();
        let mut duplicated = Vec::new();
        for (w, done) in written.iter().enumerate() {
            assert_eq!(done.gave_up, None, "writer {w} gave up");
            let sent = stored_ids(&first, &app, &format!("w{w}"), Direction::Out).await;
            acked += done.acked.len();
            audit(&done.acked, &sent, &mut lost, &mut duplicated);
        }
        let mut owners: Vec<String> = (0..WRITERS).map(|w| format!("w{w}")).collect();
        owners.extend(["r0", "r1", "r2", "g1", "g2", "g3"].map(String::from));
        for owner in &owners {
            let versions: Vec<u64> = held(&first, &app, owner)
                .await
                .iter()
                .map(|e| e.version)
                .collect();
            let dense: Vec<u64> = (1..=versions.len() as u64).collect();
            assert_eq!(versions, dense, "{owner}'s versions have a gap or a repeat");
        }
        let retried: usize = written.iter().map(|d| d.failed_attempts).sum();
        say(format!(
            "galera two writers: acked {acked}, lost {}, duplicated {}, failed attempts {retried}",
            lost.len(),
            duplicated.len()
        ));
        assert!(acked > 0, "nothing was written");
        assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
        assert!(duplicated.is_empty(), "stored twice: {duplicated:?}");
        first.close().await;
        second.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_super_group_log_written_through_two_nodes_at_once_keeps_dense_seqs() {
    // Every message of a super group raises the group's one seq row, so
    // senders on two nodes conflict on every message.
    let test = "a_super_group_log_written_through_two_nodes_at_once_keeps_dense_seqs";
    let Some(urls) = cluster(test).await else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let nodes = urls.clone();
    on_fresh_cluster_db(&urls, |db| async move {
        const WRITERS: usize = 6;
        let (first, second) = two_stores(&nodes, &db).await;
        let app = AppId::new("galera-channel");
        let until = Instant::now() + Duration::from_secs(6);
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let store = if w % 2 == 0 {
                    first.clone()
                } else {
                    second.clone()
                };
                let app = app.clone();
                tokio::spawn(async move {
                    let mut acked = Vec::new();
                    let mut i = 0;
                    while Instant::now() < until {
                        let id = format!("{w}-{i}");
                        let entry = testkit::channel_message("big", &format!("w{w}"), &id, &id);
                        let deadline = Instant::now() + GIVE_UP;
                        loop {
                            match bubble_core::ports::ChannelLog::append(&store, &app, &entry).await
                            {
                                Ok(_) => break,
                                Err(e) if e.is_retryable() && Instant::now() < deadline => {
                                    tokio::time::sleep(Duration::from_millis(20)).await;
                                }
                                Err(e) => panic!("writer {w}: {e}"),
                            }
                        }
                        acked.push(id);
                        i += 1;
                    }
                    acked
                })
            })
            .collect();
        let mut acked = Vec::new();
        for t in tasks {
            acked.extend(t.await.unwrap());
        }
        let group = GroupId::new("big");
        let mut stored: BTreeMap<String, usize> = BTreeMap::new();
        let mut seqs = Vec::new();
        let mut after = 0;
        loop {
            let page = bubble_core::ports::ChannelLog::range(&first, &app, &group, after, 500)
                .await
                .unwrap();
            for e in &page.entries {
                seqs.push(e.seq);
                *stored.entry(e.client_msg_id.clone()).or_insert(0) += 1;
            }
            match page.entries.last() {
                Some(e) if page.has_more => after = e.seq,
                _ => break,
            }
        }
        let lost: Vec<&String> = acked
            .iter()
            .filter(|id| !stored.contains_key(*id))
            .collect();
        let twice: Vec<&String> = stored
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(id, _)| id)
            .collect();
        say(format!(
            "galera super group, two writers: acked {}, stored {}, lost {}, stored twice {}",
            acked.len(),
            seqs.len(),
            lost.len(),
            twice.len()
        ));
        assert!(!acked.is_empty(), "nothing was written");
        assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
        assert!(twice.is_empty(), "stored twice: {twice:?}");
        let dense: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, dense, "the log's seqs have a gap or a repeat");
        first.close().await;
        second.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reactions_added_on_two_nodes_at_once_stay_within_the_caps() {
    let test = "reactions_added_on_two_nodes_at_once_stay_within_the_caps";
    let Some(urls) = cluster(test).await else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let nodes = urls.clone();
    on_fresh_cluster_db(&urls, |db| async move {
        // One store on node 1, one on node 2: adds meet only at commit,
        // where Galera's certification turns the second raise of the
        // message's head row into a deadlock error, which the store retries.
        let (first, second) = two_stores(&nodes, &db).await;
        let app = AppId::new("caps");
        let limits = ReactionLimits {
            per_message: 3,
            per_user: 2,
        };
        const EMOJI: [&str; 5] = ["a", "b", "c", "d", "e"];
        // Both nodes take writes before the race starts: a node that
        // joined the cluster moments ago may still refuse them for a while
        // (once seen as an error that is not a conflict), which is not what
        // this test is about.
        for store in [&first, &second] {
            let warm = testkit::test_msg_id();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            let user = UserId::new("warm-up");
            while let Err(e) = store.react(&app, &warm, &user, "w", true, limits).await {
                assert!(
                    std::time::Instant::now() < deadline,
                    "node not ready for writes after 20 s: {e}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
        for round in 0..3 {
            let id = testkit::test_msg_id();
            let mut tasks = Vec::new();
            for u in 0..6 {
                for (k, emoji) in EMOJI.iter().enumerate() {
                    let store = if (u + k) % 2 == 0 {
                        first.clone()
                    } else {
                        second.clone()
                    };
                    let app = app.clone();
                    tasks.push(tokio::spawn(async move {
                        let user = UserId::new(format!("u{u}"));
                        // A client retries a conflict the store gave up on.
                        for _ in 0..50 {
                            match store.react(&app, &id, &user, emoji, true, limits).await {
                                Ok(changed) => return changed,
                                Err(e) if e.kind() == ErrorKind::TooLarge => return false,
                                Err(e) if e.is_retryable() => continue,
                                Err(e) => panic!("{:?}: {e}", e.kind()),
                            }
                        }
                        panic!("50 conflicts in a row");
                    }));
                }
            }
            let mut added = 0;
            for t in tasks {
                added += u64::from(t.await.unwrap());
            }
            let counts = first.reactions(&app, &[id], &UserId::new("u0")).await;
            let counts = counts.unwrap();
            let on_message = &counts[0].1;
            assert!(on_message.len() <= 3, "round {round}: {on_message:?}");
            let total: u64 = on_message.iter().map(|c| c.count).sum();
            assert_eq!(total, added, "round {round}: {on_message:?}");
            assert_eq!(added, 12, "round {round}: 2 each of 3 emoji for 6 users");
        }
        first.close().await;
        second.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfers_of_one_group_on_two_nodes_at_once_leave_one_owner() {
    let test = "transfers_of_one_group_on_two_nodes_at_once_leave_one_owner";
    let Some(urls) = cluster(test).await else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let nodes = urls.clone();
    on_fresh_cluster_db(&urls, |db| async move {
        // The group's row lock is local to a node: the two transfers meet
        // at certification (both write the group's row), and the one
        // retried finds ann no longer the owner.
        let (first, second) = two_stores(&nodes, &db).await;
        let app = AppId::new("owners");
        let (ann, bo, cy) = (UserId::new("ann"), UserId::new("bo"), UserId::new("cy"));
        let joined = |user: &UserId, role| Member {
            user: user.clone(),
            role,
            joined_at: 1,
            muted_until: 0,
        };
        for round in 0..10 {
            let id = GroupId::new(format!("g{round}"));
            let group = Group::new(id.clone(), "g", GroupKind::Normal, ann.clone());
            let members = [
                joined(&ann, Role::Owner),
                joined(&bo, Role::Member),
                joined(&cy, Role::Member),
            ];
            first.create_group(&app, &group, &members).await.unwrap();
            let transfer = |store: MysqlStore, to: UserId| {
                let (app, id, ann) = (app.clone(), id.clone(), ann.clone());
                tokio::spawn(async move {
                    // A client retries a conflict the store gave up on.
                    for _ in 0..50 {
                        match store.transfer_owner(&app, &id, &ann, &to).await {
                            Err(e) if e.is_retryable() => continue,
                            done => return done.map_err(|e| e.kind()),
                        }
                    }
                    panic!("50 conflicts in a row");
                })
            };
            let to_bo = transfer(first.clone(), bo.clone());
            let to_cy = transfer(second.clone(), cy.clone());
            let (to_bo, to_cy) = (to_bo.await.unwrap(), to_cy.await.unwrap());
            let (winner, loser) = match (to_bo, to_cy) {
                (Ok(()), Err(ErrorKind::InvalidInput)) => (&bo, &cy),
                (Err(ErrorKind::InvalidInput), Ok(())) => (&cy, &bo),
                other => panic!("round {round}: one wins, the other is refused: {other:?}"),
            };
            // Read on the other node too: both see the same group.
            for store in [&first, &second] {
                let (g, members) = store.roster(&app, &id).await.unwrap().unwrap();
                assert_eq!(&g.owner, winner, "round {round}");
                let roles: BTreeMap<UserId, Role> =
                    members.into_iter().map(|m| (m.user, m.role)).collect();
                assert_eq!(
                    roles,
                    BTreeMap::from([
                        (ann.clone(), Role::Admin),
                        (winner.clone(), Role::Owner),
                        (loser.clone(), Role::Member),
                    ]),
                    "round {round}"
                );
            }
        }
        first.close().await;
        second.close().await;
    })
    .await;
}
