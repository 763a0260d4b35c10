//! Database bytes per stored message, through the port: writes `N` 1:1
//! messages into one fresh file and `M` messages to a group of 100 into
//! another (64-byte texts, each with a client message id, indexed), drains
//! the search outbox as the indexer would, `VACUUM`s, and divides what the
//! file grew over an empty store's by the message count.
//!
//! ```text
//! cargo run -p bubble-store-sqlite --example size_per_message -- 20000 2000
//! ```
//!
//! The numbers of `docs/storage.md` ("Write each message once") come from
//! it; the same file, copied into a checkout of an earlier release, measures
//! that one.

use std::path::Path;
use std::sync::Arc;

use bubble_core::ports::InboxStore;
use bubble_core::testkit::{direct_delivery, group_delivery};
use bubble_core::{AdapterConfig, AppId};
use bubble_store_sqlite::{SqliteConfig, SqliteStore, Synchronous};

/// 64 bytes, the message size of the issue's load generator.
const TEXT: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Users in the 1:1 case, and the members of the one group.
const USERS: u64 = 100;

/// Concurrent writers, so the appends share transactions as under load.
const WRITERS: u64 = 64;

/// The message count of a case and whether it goes to the group.
#[derive(Clone, Copy)]
enum Case {
    Direct(u64),
    Group(u64),
}

/// Writes the case into a fresh file at `path` and returns its size after
/// the outbox is drained and the file vacuumed.
async fn size_after(path: &Path, case: Case) -> u64 {
    let store = SqliteConfig::new(path)
        // Durability does not change the size; NORMAL spares the fsyncs.
        .with_synchronous(Synchronous::Normal)
        .connect()
        .await
        .expect("open a fresh store");
    let store = Arc::new(store);
    let members: Arc<Vec<String>> = Arc::new((0..USERS).map(|i| format!("user{i:03}")).collect());
    let (n, group) = match case {
        Case::Direct(n) => (n, false),
        Case::Group(n) => (n, true),
    };
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (store, members) = (store.clone(), members.clone());
        writers.push(tokio::spawn(async move {
            let app = AppId::new("bench");
            for i in (w..n).step_by(WRITERS as usize) {
                let from = &members[(i % USERS) as usize];
                let client_msg_id = format!("c{i}");
                let mut d = if group {
                    let all: Vec<&str> = members.iter().map(String::as_str).collect();
                    let mut d = group_delivery("g1", from, &all, TEXT);
                    d.client_msg_id = client_msg_id.clone();
                    for e in &mut d.entries {
                        e.client_msg_id = client_msg_id.clone();
                    }
                    d
                } else {
                    // Every pair of users in turn, never a user to itself.
                    let offset = 1 + (i / USERS) % (USERS - 1);
                    let to = &members[((i + offset) % USERS) as usize];
                    direct_delivery(from, to, TEXT, &client_msg_id)
                };
                d.index = true;
                store.append(&app, &d).await.expect("append");
            }
        }));
    }
    for w in writers {
        w.await.expect("writer task");
    }
    let store = Arc::into_inner(store).expect("every writer is done");
    // The indexer's work done, as in a running server: the outbox is empty.
    loop {
        let tasks = store.pending_index(10_000).await.expect("pending_index");
        if tasks.is_empty() {
            break;
        }
        let ids: Vec<u64> = tasks.iter().map(|t| t.id).collect();
        store.complete_index(&ids).await.expect("complete_index");
    }
    close_and_vacuum(store, path).await
}

async fn close_and_vacuum(store: SqliteStore, path: &Path) -> u64 {
    store.close().await;
    rusqlite::Connection::open(path)
        .and_then(|c| c.execute_batch("VACUUM"))
        .expect("VACUUM");
    std::fs::metadata(path).expect("the database file").len()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>());
    let direct = args.next().unwrap_or(Ok(20_000)).expect("N: 1:1 messages");
    let group = args.next().unwrap_or(Ok(2_000)).expect("M: group messages");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let empty = size_after(&dir.path().join("empty.db"), Case::Direct(0)).await;
    let d = size_after(&dir.path().join("direct.db"), Case::Direct(direct)).await;
    let g = size_after(&dir.path().join("group.db"), Case::Group(group)).await;
    let per = |size: u64, n: u64| (size - empty) as f64 / n.max(1) as f64;
    println!("empty store: {empty} bytes");
    println!(
        "1:1: {direct} messages, {d} bytes, {:.1} bytes per message",
        per(d, direct)
    );
    println!(
        "group of {USERS}: {group} messages, {g} bytes, {:.1} bytes per message",
        per(g, group)
    );
}
