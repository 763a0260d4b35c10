//! What the SQLite store promises beyond the ports: durability across
//! restarts, group commit, idempotent migrations, and clear errors for bad
//! settings and unusable paths.

use std::sync::Arc;

use bubble_core::ports::{AppendOutcome, Delivery, InboxStore};
use bubble_core::testkit::{about_direct, direct_delivery, group_delivery};
use bubble_core::{
    AdapterConfig, AppId, Content, Conversation, Direction, EntryKind, EntryMeta, ErrorKind, UserId,
};
use bubble_store_sqlite::{SqliteConfig, SqliteStore, Synchronous};

fn app() -> AppId {
    AppId::new("acme")
}

fn user(name: &str) -> UserId {
    UserId::new(name)
}

async fn open(path: &std::path::Path) -> SqliteStore {
    SqliteConfig::new(path)
        .connect()
        .await
        .expect("the store opens")
}

fn fresh_versions(outcome: AppendOutcome) -> Vec<u64> {
    match outcome {
        AppendOutcome::Appended(a) => a.iter().map(|a| a.version).collect(),
        AppendOutcome::Duplicate(r) => panic!("expected a fresh append, got a duplicate of {r:?}"),
    }
}

// ------------------------------------------------------------ durability

#[tokio::test]
async fn everything_acknowledged_is_there_after_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bubble.db");
    let store = open(&path).await;
    let mut last = Vec::new();
    for i in 0..5 {
        let d = direct_delivery("alice", "bob", &format!("m{i}"), &format!("c{i}"));
        last = fresh_versions(store.append(&app(), &d).await.unwrap());
    }
    store.close().await;
    drop(store);

    let store = open(&path).await;
    let bob = store.pull(&app(), &user("bob"), 0, 100).await.unwrap();
    let texts: Vec<&str> = bob
        .entries
        .iter()
        .map(|e| e.content.as_text().unwrap())
        .collect();
    assert_eq!(texts, ["m0", "m1", "m2", "m3", "m4"]);
    assert_eq!(
        store.last_version(&app(), &user("bob")).await.unwrap(),
        last[1]
    );
    let unread = store.unread(&app(), &user("bob")).await.unwrap();
    assert_eq!(unread[0].count, 5, "read status survives too");
}

#[tokio::test]
async fn versions_keep_increasing_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bubble.db");
    let store = open(&path).await;
    let before = fresh_versions(
        store
            .append(&app(), &direct_delivery("alice", "bob", "before", ""))
            .await
            .unwrap(),
    );
    store.close().await;
    let store = open(&path).await;
    let after = match store
        .append(&app(), &direct_delivery("alice", "bob", "after", ""))
        .await
        .unwrap()
    {
        AppendOutcome::Appended(a) => a,
        other => panic!("{other:?}"),
    };
    assert!(
        after[0].version > before[0],
        "alice's version space continues"
    );
    assert!(
        after[1].version > before[1],
        "bob's version space continues"
    );
    assert_eq!(
        after[1].prev_version, before[1],
        "prev_version links across the restart, so devices see no false gap"
    );
}

#[tokio::test]
async fn dedup_still_holds_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bubble.db");
    let store = open(&path).await;
    let first = direct_delivery("alice", "bob", "once", "client-42");
    let versions = fresh_versions(store.append(&app(), &first).await.unwrap());
    store.close().await;

    let store = open(&path).await;
    let retry = direct_delivery("alice", "bob", "once", "client-42");
    match store.append(&app(), &retry).await.unwrap() {
        AppendOutcome::Duplicate(r) => {
            assert_eq!(r.server_msg_id, first.entries[0].server_msg_id);
            assert_eq!(r.version, versions[0]);
            assert!(r.duplicate);
        }
        other => panic!("a retry after a restart must not be written again: {other:?}"),
    }
    let found = store
        .find_sent(&app(), &user("alice"), "client-42")
        .await
        .unwrap();
    assert_eq!(
        found.map(|r| r.server_msg_id),
        Some(first.entries[0].server_msg_id)
    );
    assert_eq!(
        store
            .pull(&app(), &user("bob"), 0, 10)
            .await
            .unwrap()
            .entries
            .len(),
        1
    );
}

#[tokio::test]
async fn dropping_the_store_without_closing_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bubble.db");
    let store = open(&path).await;
    store
        .append(&app(), &direct_delivery("alice", "bob", "kept", ""))
        .await
        .unwrap();
    drop(store);
    let store = open(&path).await;
    let bob = store.pull(&app(), &user("bob"), 0, 10).await.unwrap();
    assert_eq!(bob.entries[0].content.as_text(), Some("kept"));
}

#[tokio::test]
async fn jobs_their_leases_and_push_tokens_are_there_after_reopening_the_file() {
    use bubble_core::jobs::{ClaimOrder, JobQueue, NewJob};
    use bubble_core::notify::{PushPlatform, PushToken, PushTokens};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bubble.db");
    let store = open(&path).await;
    let job = |payload: &str| NewJob {
        queue: "notify/acme".into(),
        payload: payload.as_bytes().to_vec(),
        due_at: 1_000,
    };
    store
        .enqueue(&[job("leased"), job("retried"), job("waiting")], 1_000)
        .await
        .unwrap();
    let leased = store
        .claim("notify/acme", "n1", 1_000, 60_000, 2, ClaimOrder::Any)
        .await
        .unwrap();
    assert!(store.retry(leased[1].id, 5_000).await.unwrap());
    let token = PushToken {
        device: bubble_core::DeviceId::new("phone"),
        platform: PushPlatform::Apns,
        token: "a1b2".into(),
        locale: "de-CH".into(),
        quiet_until: 7,
        updated_at: 1_000,
    };
    store.put_token(&app(), &user("bob"), &token).await.unwrap();
    // Not closed: what was acknowledged is on disk all the same.
    drop(store);

    let store = open(&path).await;
    assert_eq!(store.depth("notify/acme").await.unwrap(), 3);
    let free = store
        .claim("notify/acme", "n2", 1_000, 60_000, 10, ClaimOrder::Any)
        .await
        .unwrap();
    let texts: Vec<&[u8]> = free.iter().map(|j| &j.payload[..]).collect();
    assert_eq!(
        texts,
        [&b"waiting"[..]],
        "the lease and the retry's due time were kept"
    );
    let retried = store
        .claim("notify/acme", "n2", 5_000, 60_000, 10, ClaimOrder::Any)
        .await
        .unwrap();
    assert_eq!((retried[0].id, retried[0].attempts), (leased[1].id, 1));
    assert_eq!(store.tokens(&app(), &user("bob")).await.unwrap(), [token]);
    store.close().await;
}

#[tokio::test]
async fn an_ack_means_committed_another_connection_sees_it_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bubble.db");
    let writer = open(&path).await;
    let other = open(&path).await;
    for i in 0..3 {
        writer
            .append(
                &app(),
                &direct_delivery("alice", "bob", &format!("{i}"), ""),
            )
            .await
            .unwrap();
        let seen = other.pull(&app(), &user("bob"), 0, 10).await.unwrap();
        assert_eq!(
            seen.entries.len(),
            i + 1,
            "an acknowledged append is committed, not waiting in an open transaction"
        );
    }
}

// ---------------------------------------------------------- group commit

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_share_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir.path().join("bubble.db")).await);
    let before = store.stats();
    let appends = 200;
    let mut tasks = Vec::new();
    for i in 0..appends {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let d = direct_delivery(&format!("s{i}"), "hub", "hi", &format!("c{i}"));
            store.append(&app(), &d).await.unwrap()
        }));
    }
    for t in tasks {
        fresh_versions(t.await.unwrap());
    }
    let after = store.stats();
    let commits = after.commits - before.commits;
    assert_eq!(after.writes - before.writes, appends);
    assert!(
        commits * 4 <= appends,
        "{appends} concurrent appends took {commits} commits; group commit should need far fewer"
    );
    let hub = store.pull(&app(), &user("hub"), 0, 1000).await.unwrap();
    assert_eq!(
        hub.entries.len() as u64,
        appends,
        "every append landed once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_reads_share_one_read_connection_while_writes_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteConfig::new(dir.path().join("bubble.db"))
            .with_read_connections(1)
            .connect()
            .await
            .unwrap(),
    );
    for i in 0..50 {
        let d = direct_delivery("alice", "bob", "hi", &format!("seed{i}"));
        store.append(&app(), &d).await.unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..100 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            if i % 4 == 0 {
                let d = direct_delivery("carol", "bob", "hi", &format!("more{i}"));
                store.append(&app(), &d).await.map(|_| 0)
            } else {
                // Every read sees at least what was acknowledged before it began.
                let page = store.pull(&app(), &user("bob"), 0, 1000).await?;
                Ok(page.entries.len())
            }
        }));
    }
    for t in tasks {
        let seen = t.await.unwrap().expect("each read and write is answered");
        assert!(
            seen == 0 || seen >= 50,
            "a read saw {seen} of bob's 50+ entries"
        );
    }
    let bob = store.pull(&app(), &user("bob"), 0, 1000).await.unwrap();
    assert_eq!(bob.entries.len(), 75, "50 before, 25 during");
    store.close().await;
}

#[tokio::test]
async fn one_client_msg_id_twice_in_one_batch_is_written_once() {
    // On a current-thread runtime the writer cannot run between the two
    // sends below, so both land in one batch.
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("bubble.db")).await;
    let before = store.stats().commits;
    let first = direct_delivery("alice", "bob", "twice", "same");
    let second = direct_delivery("alice", "bob", "twice", "same");
    let acme = app();
    let (a, b) = tokio::join!(store.append(&acme, &first), store.append(&acme, &second));
    assert_eq!(
        store.stats().commits - before,
        1,
        "both were in one transaction"
    );
    let versions = fresh_versions(a.unwrap());
    match b.unwrap() {
        AppendOutcome::Duplicate(r) => {
            assert_eq!(
                r.server_msg_id, first.entries[0].server_msg_id,
                "the first's id"
            );
            assert_eq!(r.version, versions[0], "the first's version");
            assert!(r.duplicate);
        }
        other => panic!("the second of a batch must answer the first's receipt: {other:?}"),
    }
    let bob = store.pull(&app(), &user("bob"), 0, 10).await.unwrap();
    assert_eq!(bob.entries.len(), 1);
}

#[tokio::test]
async fn a_lone_append_is_committed_without_waiting_for_company() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("bubble.db")).await;
    let started = std::time::Instant::now();
    store
        .append(&app(), &direct_delivery("alice", "bob", "solo", ""))
        .await
        .unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "the writer never sleeps to fill a batch"
    );
    assert_eq!(store.stats().commits, 1);
}

// ------------------------------------------------------------ migrations

#[tokio::test]
async fn migrations_run_once_however_often_the_file_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bubble.db");
    for _ in 0..3 {
        let store = open(&path).await;
        store
            .append(&app(), &direct_delivery("alice", "bob", "x", ""))
            .await
            .unwrap();
        store.close().await;
    }
    let store = open(&path).await;
    assert_eq!(
        store
            .pull(&app(), &user("bob"), 0, 10)
            .await
            .unwrap()
            .entries
            .len(),
        3,
        "reopening kept the data (no table was re-created)"
    );
    store.close().await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let applied: Vec<i64> = conn
        .prepare("SELECT version FROM _sqlx_migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // Every migration the crate ships (`migrations/*.sql`, numbered from 1).
    let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("sql".as_ref()))
        .count() as i64;
    assert_eq!(
        applied,
        (1..=shipped).collect::<Vec<_>>(),
        "each migration is recorded once"
    );
}

// ----------------------------------------------------- each message once

/// Rows of a table, counted on a connection of its own.
fn count(path: &std::path::Path, sql: &str) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_group_message_is_written_once_with_a_small_row_per_member() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bubble.db");
    let store = open(&path).await;
    let members: Vec<String> = (0..100).map(|i| format!("m{i:03}")).collect();
    let names: Vec<&str> = members.iter().map(String::as_str).collect();
    let d = group_delivery("g1", "m000", &names, "the body, once");
    assert_eq!(
        fresh_versions(store.append(&app(), &d).await.unwrap()).len(),
        100
    );
    store.close().await;

    assert_eq!(count(&path, "SELECT COUNT(*) FROM messages"), 1, "one body");
    assert_eq!(
        count(&path, "SELECT COUNT(*) FROM inbox"),
        100,
        "a row per member"
    );
    let store = open(&path).await;
    for m in ["m000", "m042", "m099"] {
        let page = store.pull(&app(), &user(m), 0, 10).await.unwrap();
        let mut want = d
            .entries
            .iter()
            .find(|e| e.owner == user(m))
            .unwrap()
            .clone();
        want.version = 1;
        assert_eq!(page.entries, [want], "{m} reads back its own entry");
    }
    store.close().await;
}

#[tokio::test]
async fn entries_of_one_delivery_that_differ_get_message_rows_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bubble.db");
    let store = open(&path).await;
    let (read, _) = bubble_core::testkit::direct_message("alice", "bob", "read it");
    // What a read mark writes: the reader's cursor and the sender's
    // receipt differ in kind (and the cursor carries its mark).
    let cursor = bubble_core::InboxEntry {
        owner: user("bob"),
        kind: EntryKind::ReadCursor,
        conversation: Conversation::direct(&user("alice")),
        direction: Direction::Out,
        sender: user("bob"),
        content: Content::none(),
        read_up_to: 7,
        ..read.clone()
    };
    let receipt = bubble_core::InboxEntry {
        owner: user("alice"),
        kind: EntryKind::ReadReceipt,
        conversation: Conversation::direct(&user("bob")),
        direction: Direction::In,
        read_up_to: 0,
        ..cursor.clone()
    };
    // A third entry equal in every shared field to the first, after one
    // that differs: it shares the first's row.
    let again = bubble_core::InboxEntry {
        owner: user("carol"),
        read_up_to: 3,
        ..cursor.clone()
    };
    let d = Delivery {
        sender: user("bob"),
        client_msg_id: String::new(),
        entries: vec![cursor.clone(), receipt.clone(), again.clone()],
        index: false,
        receipt_entry: None,
    };
    fresh_versions(store.append(&app(), &d).await.unwrap());
    for want in [cursor, receipt, again] {
        let got = store.pull(&app(), &want.owner, 0, 10).await.unwrap();
        assert_eq!(
            got.entries,
            [bubble_core::InboxEntry { version: 1, ..want }],
            "each entry reads back as given"
        );
    }
    store.close().await;
    assert_eq!(count(&path, "SELECT COUNT(*) FROM messages"), 2);
}

#[tokio::test]
async fn an_indexed_delivery_is_one_outbox_task_naming_every_owner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bubble.db");
    let store = open(&path).await;
    let mut d = group_delivery("g1", "alice", &["alice", "bob", "carol"], "find me");
    d.index = true;
    store.append(&app(), &d).await.unwrap();
    let tasks = store.pending_index(10).await.unwrap();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0].owners, [user("alice"), user("bob"), user("carol")]);
    assert_eq!(tasks[0].entry.content.as_text(), Some("find me"));
    store.complete_index(&[tasks[0].id]).await.unwrap();
    assert!(store.pending_index(10).await.unwrap().is_empty());
    store.close().await;
}

// ---------------------------------------------------------------- config

#[tokio::test]
async fn a_bad_setting_is_refused_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bubble.db");
    let base = || SqliteConfig::new(&path);
    let cases = [
        (base().with_max_batch(0), "max_batch"),
        (base().with_max_batch(100_000), "max_batch"),
        (base().with_read_connections(0), "read_connections"),
        (base().with_queue_depth(10), "queue_depth"),
        (base().with_busy_timeout_ms(0), "busy_timeout_ms"),
        (base().with_max_size_mb(u64::MAX), "max_size_mb"),
        (base().with_path(":memory:"), "path"),
        (base().with_path(""), "path"),
    ];
    for (config, key) in cases {
        assert_eq!(config.validate().expect_err(key).field, key);
        let err = config.connect().await.expect_err(key);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{key}: {err}");
        assert!(
            err.to_string().contains(key),
            "the error names `{key}`: {err}"
        );
    }
    assert!(!path.exists(), "nothing is created for a refused config");
}

#[test]
fn config_reads_from_serde_with_defaults_and_refuses_unknown_keys() {
    let c: SqliteConfig =
        serde_json::from_str(r#"{"path": "/data/im.db", "synchronous": "normal"}"#).unwrap();
    assert_eq!(c.path, std::path::PathBuf::from("/data/im.db"));
    assert_eq!(c.synchronous, Synchronous::Normal);
    assert_eq!(c.max_batch, 1024, "unset keys keep their defaults");
    let err = serde_json::from_str::<SqliteConfig>(r#"{"path": "x.db", "max_bach": 5}"#)
        .expect_err("a misspelled key");
    assert!(err.to_string().contains("max_bach"), "{err}");
    let err = serde_json::from_str::<SqliteConfig>(r#"{"synchronous": "sometimes"}"#)
        .expect_err("an unknown durability");
    assert!(err.to_string().contains("sometimes"), "{err}");
}

// ------------------------------------------------------------ bad paths

#[tokio::test]
async fn a_path_under_a_regular_file_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = SqliteConfig::new(file.join("bubble.db"))
        .connect()
        .await
        .expect_err("a file cannot hold a directory");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let msg = err.to_string();
    assert!(msg.contains("not-a-dir"), "names the directory: {msg}");
    assert!(msg.contains("permissions"), "says what to check: {msg}");
}

#[tokio::test]
async fn a_directory_in_place_of_the_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = SqliteConfig::new(dir.path())
        .connect()
        .await
        .expect_err("a directory is not a database file");
    let msg = err.to_string();
    assert!(msg.contains("cannot open the SQLite database"), "{msg}");
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
}

#[tokio::test]
async fn a_read_only_directory_is_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let writable = std::fs::write(locked.join("probe"), b"").is_ok();
    let result = SqliteConfig::new(locked.join("bubble.db")).connect().await;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    if writable {
        // Root ignores directory permissions; the store must then simply work.
        result.expect("a directory root can write to");
    } else {
        let err = result.expect_err("a read-only directory");
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.to_string().contains("writable"), "{err}");
    }
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bubble.db");
    std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
    let err = SqliteConfig::new(&path)
        .connect()
        .await
        .expect_err("garbage is not a database");
    assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
    assert!(err.to_string().contains("not a database"), "{err}");
}

#[tokio::test]
async fn a_closed_store_answers_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("bubble.db")).await;
    store.close().await;
    let err = store
        .append(&app(), &direct_delivery("alice", "bob", "late", ""))
        .await
        .expect_err("closed");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let err = store
        .pull(&app(), &user("bob"), 0, 10)
        .await
        .expect_err("closed");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}

#[tokio::test]
async fn the_wal_is_folded_into_the_file_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bubble.db");
    let store = open(&path).await;
    let size = || std::fs::metadata(&path).unwrap().len();
    let before = size();
    for i in 0..200 {
        store
            .append(
                &app(),
                &direct_delivery("alice", "bob", &format!("{i}"), ""),
            )
            .await
            .unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while size() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing reached the main file while the store was open"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_full_database_refuses_writes_with_a_retryable_error_and_keeps_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteConfig::new(dir.path().join("bubble.db"))
        .with_max_size_mb(1)
        .connect()
        .await
        .unwrap();
    let big = "x".repeat(60 * 1024);
    let mut accepted = 0;
    let err = loop {
        match store
            .append(&app(), &direct_delivery("alice", "bob", &big, ""))
            .await
        {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(
            accepted < 100,
            "a 1 MiB database cannot take 100 messages of 60 KiB"
        );
    };
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("full"), "says why: {err}");
    let bob = store.pull(&app(), &user("bob"), 0, 1000).await.unwrap();
    assert_eq!(
        bob.entries.len(),
        accepted,
        "every acknowledged message is there and the refused one left nothing"
    );
    assert!(store.stats().failed_batches >= 1);
}

// ------------------------------------------- the list rows of a busy batch

/// A busy moment in a chat: 1:1 messages both ways with bob's read cursor
/// and a recall of the message shown last between messages of the same
/// rows, group messages (the second mentioning bob), and a message recalled
/// at the end.
fn busy_moment() -> Vec<Delivery> {
    let one = direct_delivery("alice", "bob", "one", "");
    let two = direct_delivery("alice", "bob", "two", "");
    let two_id = two.entries[0].server_msg_id;
    let mut moment = vec![
        one,
        two,
        about_direct(EntryKind::ReadCursor, two_id, &[("bob", "alice")], 1),
        about_direct(
            EntryKind::Recall,
            two_id,
            &[("alice", "bob"), ("bob", "alice")],
            0,
        ),
        direct_delivery("bob", "alice", "three", ""),
    ];
    for i in 0..3 {
        let mut d = group_delivery("g", "alice", &["alice", "bob", "carol"], &format!("g{i}"));
        if i == 1 {
            let mut fields = EntryMeta::none().decode();
            fields.mentions.push("bob".to_owned());
            for e in &mut d.entries {
                e.meta = EntryMeta::of(&fields);
            }
        }
        moment.push(d);
    }
    // Last in the batch: carol's message to bob, recalled.
    let four = direct_delivery("carol", "bob", "four", "");
    let four_id = four.entries[0].server_msg_id;
    moment.push(four);
    moment.push(about_direct(
        EntryKind::Recall,
        four_id,
        &[("carol", "bob"), ("bob", "carol")],
        0,
    ));
    moment
}

/// What each of the three sees: the list, the unread counts, then what
/// marking everything read does.
async fn seen(store: &SqliteStore) -> Vec<String> {
    let mut seen = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let owner = user(name);
        seen.push(format!(
            "{:?}",
            store.conversations(&app(), &owner, 0, 100).await.unwrap()
        ));
        let unread = store.unread(&app(), &owner).await.unwrap();
        seen.push(format!("{unread:?}"));
        for u in unread {
            let marked = store
                .mark_read(&app(), &owner, &u.conversation, u64::MAX)
                .await
                .unwrap();
            seen.push(format!("{marked:?}"));
        }
        seen.push(format!("{:?}", store.unread(&app(), &owner).await.unwrap()));
    }
    seen
}

#[tokio::test]
async fn a_batch_keeps_the_list_rows_as_its_appends_one_at_a_time_would() {
    let dir = tempfile::tempdir().unwrap();
    let moment = busy_moment();

    // One at a time, each in its own transaction.
    let alone = open(&dir.path().join("alone.db")).await;
    for d in &moment {
        alone.append(&app(), d).await.unwrap();
    }

    // All in one batch: on a current-thread runtime the writer cannot run
    // between the sends of one join.
    let batched = open(&dir.path().join("batched.db")).await;
    let before = batched.stats().commits;
    let acme = app();
    let a = |i: usize| batched.append(&acme, &moment[i]);
    let r = tokio::join!(a(0), a(1), a(2), a(3), a(4), a(5), a(6), a(7), a(8), a(9));
    assert_eq!(batched.stats().commits - before, 1, "one transaction");
    for r in [r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9] {
        r.unwrap();
    }
    assert_eq!(
        moment.len(),
        10,
        "every delivery of the moment is in the batch"
    );

    let want = seen(&alone).await;
    assert!(
        want.iter().any(|s| s.contains("mentioned: true")),
        "the moment has a mention: {want:#?}"
    );
    assert!(
        want.iter().any(|s| s.contains("kind: Recall")),
        "a recalled message shown last: {want:#?}"
    );
    assert!(
        want.iter()
            .any(|s| s.contains("read_up_to: 1, peer_read_up_to")),
        "bob's read cursor on his row: {want:#?}"
    );
    assert_eq!(seen(&batched).await, want);
    alone.close().await;
    batched.close().await;
}

/// 30 old messages to a group of 100: 3,000 entries, past the 2,000 one
/// retention call deletes, so the writer is held for a short batch.
#[tokio::test]
async fn a_retention_call_on_big_group_messages_stops_near_its_entry_budget() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("bubble.db")).await;
    let names: Vec<String> = (0..100).map(|i| format!("m{i:03}")).collect();
    let members: Vec<&str> = names.iter().map(String::as_str).collect();
    for i in 0..30 {
        let mut d = group_delivery("g", members[i % 100], &members, "old");
        for e in &mut d.entries {
            e.server_time = 1_000 + i as i64;
        }
        store.append(&app(), &d).await.unwrap();
    }
    let first = InboxStore::expire(&store, &app(), 1_000_000, 200)
        .await
        .unwrap();
    assert!(first.more, "more remain");
    assert_eq!(
        first.messages.len(),
        20,
        "2,000 entries: 20 messages of 100"
    );
    let rest = InboxStore::expire(&store, &app(), 1_000_000, 200)
        .await
        .unwrap();
    assert_eq!((rest.messages.len(), rest.more), (10, false));
    let page = store.pull(&app(), &user("m000"), 0, 100).await.unwrap();
    assert!(page.entries.is_empty());
    store.close().await;
}
