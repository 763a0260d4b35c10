//! A full disk (issue 11): senders are told, nothing acknowledged is lost,
//! the server stops cleanly, and the next start indexes what the full
//! disk kept from the search index.

use std::time::Duration;

use bubble_core::Content;
use bubble_proto::pb;

use super::support::*;
use super::to;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_full_disk_the_server_stops_cleanly_and_the_next_start_indexes_the_rest() {
    if std::env::var("BUBBLE_E2E_BACKENDS").is_ok() {
        eprintln!("SKIPPED: the full-disk test fills the embedded default's data directory");
        return;
    }
    let Some(disk) = SmallDisk::mount(6 << 20) else {
        eprintln!("SKIPPED: mounting a size-limited tmpfs needs root");
        return;
    };
    let mut server = Server::start_in(disk.path(), Vec::new());
    let (alice, _a) = server.client("alice", "phone", false).await;
    let text = "searchable ".repeat(400);
    let mut acked = Vec::new();
    let mut refused = None;
    for i in 0..5_000 {
        match alice
            .send(to("bob"), Content::text(format!("{i} {text}")))
            .await
        {
            Ok(ack) => acked.push(ack.server_msg_id),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let refused = refused.expect("6 MiB fill up before 22 MB of messages");
    assert!(
        refused.to_string().contains("full"),
        "the sender is told the disk is full: {refused}"
    );
    drop(alice);
    // A clean stop: exit status 0 (`stop` asserts it), full disk or not.
    server.stop();

    disk.grow(256 << 20);
    server.restart();
    let (bob, _b) = server.client("bob", "phone", false).await;
    let (mut after, mut got) = (0, Vec::new());
    loop {
        let (page, has_more, _) = bob.sync(after, 500).await.unwrap();
        after = page.last().map_or(after, |e| e.version);
        got.extend(page.into_iter().map(|e| e.server_msg_id));
        if !has_more {
            break;
        }
    }
    assert_eq!(got, acked, "every acknowledged message, once, in order");

    // The search index reopened, and the outbox fills in what it missed.
    let mut total = 0;
    for _ in 0..300 {
        total = bob
            .search(pb::SearchRequest {
                words: "searchable".into(),
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap()
            .total;
        if total == acked.len() as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        total,
        acked.len() as u64,
        "every acknowledged message is searchable"
    );
}
