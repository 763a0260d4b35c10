//! The two reads a chat app opens with (issue 14), on a large inbox: one
//! user with `--users` conversations and `--total` messages spread over
//! them, written straight into the store the environment names (opened as
//! bubble-server opens it: `BUBBLE_STORE_KIND`, `BUBBLE_STORE_MYSQL_URL`,
//! ...), then timed: every page of the conversation list (50 a page, from
//! the newest to the end) and history pages (30 a page) of random
//! conversations, the newest page and pages from deep in the past.
//!
//! Store-level on purpose: a page through the server adds the same record
//! and frame work to every request, and the question here is whether a
//! page costs the same however large the inbox is (one indexed range read)
//! or grows with it.

use std::path::Path;
use std::time::Instant;

use bubble_core::ports::Delivery;
use bubble_core::{
    AppId, Content, Conversation, DeviceId, Direction, EntryKind, EntryMeta, InboxEntry, MsgId,
    UserId, now_millis,
};
use bubble_server::Config;
use bubble_server::backends::Backends;
use bubble_server::metrics::Metrics;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::scenarios::Opts;
use crate::stats::Latency;

/// Appends in flight while filling: enough for the store to batch.
const IN_FLIGHT: usize = 256;
/// A conversation-list page, as the server's default.
const LIST_PAGE: usize = 50;
/// A history page, as the server's default.
const HISTORY_PAGE: usize = 30;
/// History pages timed of each kind.
const HISTORY_SAMPLES: usize = 2000;

/// Fills the store, then times list and history pages.
pub async fn pages(opts: &Opts, data_dir: &Path) -> Result<Value, String> {
    let conversations = opts.users.max(1);
    let messages = opts.total.max(conversations as u64);
    let config = Config::load(None, &[format!("data_dir={}", data_dir.display())])
        .map_err(|e| e.to_string())?;
    let backends = Backends::connect(&config, &Metrics::new())
        .await
        .map_err(|e| e.to_string())?;
    let inbox = backends.inbox.clone();
    let app = AppId::new("bench");
    let owner = UserId::new("owner");

    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for n in 0..messages {
        if tasks.len() >= IN_FLIGHT {
            let done = tasks.join_next().await.expect("a task in flight");
            done.map_err(|e| e.to_string())??;
        }
        let inbox = inbox.clone();
        let (app, owner) = (app.clone(), owner.clone());
        let peer = UserId::new(format!("peer{:05}", n % conversations as u64));
        tasks.spawn(async move {
            inbox
                .append(&app, &delivery(&peer, &owner, n))
                .await
                .map(|_| ())
                .map_err(|e| format!("append {n}: {e}"))
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    let fill_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "bubble-bench: pages: {messages} messages in {conversations} conversations written in {fill_secs:.1} s"
    );

    // Every page of the list, newest first, three times over.
    let mut list = Latency::new();
    let mut listed = 0;
    for _ in 0..3 {
        let (mut before, mut seen) = (0, 0);
        loop {
            let t = Instant::now();
            let page = inbox
                .conversations(&app, &owner, before, LIST_PAGE)
                .await
                .map_err(|e| e.to_string())?;
            list.record_ns(t.elapsed().as_nanos() as u64);
            seen += page.conversations.len();
            match page.conversations.last() {
                Some(last) if page.has_more => before = last.activity,
                _ => break,
            }
        }
        listed = seen;
    }
    if listed != conversations {
        return Err(format!(
            "the list held {listed} conversations, not {conversations}"
        ));
    }

    // The newest page of random conversations, and a page from the oldest
    // quarter of each one's history.
    let (mut newest, mut deep) = (Latency::new(), Latency::new());
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..HISTORY_SAMPLES {
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let peer = UserId::new(format!("peer{:05}", (rng >> 33) % conversations as u64));
        let conversation = Conversation::direct(&peer);
        let t = Instant::now();
        let first = inbox
            .history(&app, &owner, &conversation, 0, HISTORY_PAGE)
            .await
            .map_err(|e| e.to_string())?;
        newest.record_ns(t.elapsed().as_nanos() as u64);
        let Some(top) = first.entries.first() else {
            return Err(format!("no history with {peer}"));
        };
        let t = Instant::now();
        inbox
            .history(&app, &owner, &conversation, top.version / 4, HISTORY_PAGE)
            .await
            .map_err(|e| e.to_string())?;
        deep.record_ns(t.elapsed().as_nanos() as u64);
    }
    let result = json!({
        "backends": backends_label(&config),
        "conversations": conversations,
        "messages": messages,
        "fill_secs": fill_secs,
        "fill_msgs_per_sec": messages as f64 / fill_secs,
        "list_page": LIST_PAGE,
        "list": list.percentiles().json(),
        "history_page": HISTORY_PAGE,
        "history_newest": newest.percentiles().json(),
        "history_deep": deep.percentiles().json(),
    });
    backends.close().await.map_err(|e| e.to_string())?;
    Ok(result)
}

fn backends_label(config: &Config) -> String {
    format!("{:?}", config.store.kind).to_lowercase()
}

/// Message `n` from `peer` to `owner`: the sender's copy and the owner's.
fn delivery(peer: &UserId, owner: &UserId, n: u64) -> Delivery {
    let now = now_millis();
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&(now as u64).to_be_bytes());
    id[8..].copy_from_slice(&n.to_be_bytes());
    let out = InboxEntry {
        owner: peer.clone(),
        version: 0,
        kind: EntryKind::Message,
        conversation: Conversation::direct(owner),
        direction: Direction::Out,
        server_msg_id: MsgId(id),
        sender: peer.clone(),
        sender_device: DeviceId::new("bench"),
        client_msg_id: String::new(),
        client_seq: n,
        create_time: now,
        server_time: now,
        content: Content::text(format!("message {n} of a long history")),
        read_up_to: 0,
        meta: EntryMeta::none(),
    };
    let inb = InboxEntry {
        owner: owner.clone(),
        conversation: Conversation::direct(peer),
        direction: Direction::In,
        ..out.clone()
    };
    Delivery {
        sender: peer.clone(),
        client_msg_id: String::new(),
        entries: vec![out, inb],
        index: false,
        receipt_entry: Some(0),
    }
}
