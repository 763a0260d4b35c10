//! Indexing throughput and index size for group messages, one document per
//! message: ignored (a measurement, not a check). Run in release, with the
//! same file's counterpart on the old format for an A/B:
//!
//! `cargo test --release -p bubble-search-tantivy --test throughput -- --ignored --nocapture`
//!
//! Prints one line per group size: messages per second through the async
//! port (index + flush per batch of 500 messages, as the engine's indexer
//! does), documents, and bytes on disk per message after the last flush.

use std::time::Instant;

use bubble_core::AdapterConfig;
use bubble_core::ports::{SearchDoc, SearchIndex};
use bubble_core::{AppId, Conversation, GroupId, MsgId, UserId};
use bubble_search_tantivy::TantivyConfig;

const WORDS: &[&str] = &[
    "大家好",
    "今天",
    "明天下午",
    "开会",
    "会议室",
    "项目进度",
    "报告",
    "周末",
    "火锅",
    "meeting",
    "report",
    "deadline",
    "lunch",
    "coffee",
    "review",
    "deploy",
    "release",
];

/// Messages per indexer batch (one flush each).
const BATCH: usize = 500;

fn text(i: usize) -> String {
    (0..6)
        .map(|k| WORDS[(i * 7 + k * 13) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// The documents of `messages` messages to a group of `size`, the way the
/// indexer makes them now: one per message with every member as owner.
fn docs(size: usize, messages: usize) -> Vec<Vec<SearchDoc>> {
    let members: Vec<UserId> = (0..size).map(|m| UserId::new(format!("u{m}"))).collect();
    let all: Vec<SearchDoc> = (0..messages)
        .map(|i| {
            let mut id = [0u8; 16];
            id[8..].copy_from_slice(&(i as u64).to_be_bytes());
            SearchDoc {
                app: AppId::new("bench"),
                server_msg_id: MsgId(id),
                owners: members.clone(),
                viewer: members[i % size].clone(),
                conversation: Conversation::group(&GroupId::new("g")),
                sender: members[i % size].clone(),
                server_time: 1_700_000_000_000 + i as i64,
                text: text(i),
            }
        })
        .collect();
    all.chunks(BATCH).map(<[SearchDoc]>::to_vec).collect()
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture, in release"]
async fn indexing_throughput_of_group_messages() {
    for (size, messages) in [(10, 5_000), (100, 2_000)] {
        let dir = tempfile::tempdir().unwrap();
        let index = TantivyConfig::new(dir.path())
            .with_writer_threads(1)
            .connect()
            .await
            .unwrap();
        let batches = docs(size, messages);
        let started = Instant::now();
        for batch in &batches {
            index.index(batch).await.unwrap();
            index.flush().await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        let bytes = dir_bytes(dir.path());
        println!(
            "format=one-per-message group={size} messages={messages} secs={secs:.3} \
             msgs_per_s={:.0} docs={} bytes={bytes} bytes_per_msg={:.0}",
            messages as f64 / secs,
            index.num_docs(),
            bytes as f64 / messages as f64
        );
    }
}
