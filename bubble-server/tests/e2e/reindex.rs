//! `bubble-server reindex` and the rebuild at start: an index marked for a
//! rebuild (an old format moved aside) is rebuilt from the store, and a
//! store that cannot be read is named rather than served from.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use bubble_core::Content;
use bubble_proto::pb;

use super::support::*;
use super::to;

/// Runs `bubble-server reindex` with `env` on the data directory `dir`.
fn reindex(dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bubble-server"));
    cmd.arg("reindex")
        .env("BUBBLE_DATA_DIR", dir)
        .env("BUBBLE_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run bubble-server reindex")
}

/// The mark the embedded index leaves next to itself after moving an old
/// format aside.
fn mark(dir: &Path) -> std::path::PathBuf {
    dir.join("search.rebuild-pending")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_rebuilds_a_lost_index_from_the_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("BUBBLE_STORE_KIND", "sqlite"),
        ("BUBBLE_SEARCH_KIND", "tantivy"),
    ];
    let mut server = Server::start_in(
        dir.path(),
        env.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let (alice, _a) = server.client("alice", "phone", false).await;
    let (bob, _b) = server.client("bob", "phone", false).await;
    alice
        .send(to("bob"), Content::text("kept through a lost index"))
        .await
        .unwrap();
    let taken_back = alice
        .send(to("bob"), Content::text("kept? no, recalled"))
        .await
        .unwrap();
    alice
        .recall(&to("bob"), &taken_back.server_msg_id)
        .await
        .unwrap();
    drop((alice, bob));
    server.stop();

    // The index is gone (a lost disk, or an old format moved aside).
    std::fs::remove_dir_all(dir.path().join("search")).unwrap();
    let out = reindex(dir.path(), &env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "succeeds: {stderr}");
    assert!(
        stderr.contains("reindex: done, 1 messages"),
        "the one message not recalled: {stderr}"
    );

    server.restart();
    let (bob, _b) = server.client("bob", "phone", false).await;
    let (alice, _a) = server.client("alice", "phone", false).await;
    let kept = pb::SearchRequest {
        words: "kept".into(),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        bob.search(kept.clone()).await.unwrap().total,
        1,
        "the receiver finds it"
    );
    assert_eq!(
        alice.search(kept).await.unwrap().total,
        1,
        "and so does the sender"
    );
}

#[test]
fn reindex_clears_the_mark_and_reports_what_it_did() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(mark(dir.path()), "test").unwrap();
    let out = reindex(
        dir.path(),
        &[
            ("BUBBLE_STORE_KIND", "memory"),
            ("BUBBLE_SEARCH_KIND", "tantivy"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "succeeds: {stderr}");
    assert!(
        stderr.contains("reindex: done, 0 messages"),
        "reports the count: {stderr}"
    );
    assert!(
        !mark(dir.path()).exists(),
        "a rebuild of every app ends the upgrade"
    );
}

#[test]
fn reindex_with_search_off_says_there_is_nothing_to_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let out = reindex(
        dir.path(),
        &[
            ("BUBBLE_STORE_KIND", "memory"),
            ("BUBBLE_SEARCH_KIND", "off"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("search.kind"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_on_a_marked_index_rebuilds_it_and_then_searches() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(mark(dir.path()), "test").unwrap();
    let server = Server::start_in(
        dir.path(),
        vec![
            ("BUBBLE_STORE_KIND".into(), "memory".into()),
            ("BUBBLE_SEARCH_KIND".into(), "tantivy".into()),
        ],
    );
    for _ in 0..100 {
        if !mark(dir.path()).exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !mark(dir.path()).exists(),
        "rebuilt within 10 s of the start"
    );
    let (alice, _a) = server.client("alice", "phone", false).await;
    let (bob, _b) = server.client("bob", "phone", false).await;
    alice
        .send(to("bob"), Content::text("after the upgrade"))
        .await
        .unwrap();
    let request = pb::SearchRequest {
        words: "upgrade".into(),
        limit: 10,
        ..Default::default()
    };
    let mut total = 0;
    for _ in 0..50 {
        total = bob.search(request.clone()).await.unwrap().total;
        if total > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(total, 1, "the rebuilt index serves searches");
    assert_eq!(alice.search(request).await.unwrap().total, 1);
}
