//! A cluster under failure (issue 13): three nodes on MariaDB + Redis +
//! etcd, one of them killed with SIGKILL in the middle of the traffic.
//! Runs with `BUBBLE_E2E_BACKENDS=scale-out` (the README's test command
//! does); otherwise it says it was skipped.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bubble_client::{Client, ClientConfig, Event, Events};
use bubble_core::{Content, Conversation, EntryKind, InboxEntry, MsgId, UserId};

use super::support::*;

const NODES: usize = 3;
const PAIRS: usize = 6;
const PER_SENDER: usize = 40;
/// The node that dies.
const KILLED: usize = 1;

fn to(user: &str) -> Conversation {
    Conversation::direct(&UserId::new(user))
}

/// A config per node for one device, retrying a failed send only briefly
/// so the test moves to a live node rather than wait for a dead one.
async fn configs(nodes: &[Server], user: &str) -> Vec<ClientConfig> {
    let mut out = Vec::new();
    for node in nodes {
        let mut c = node.config(user, "phone", false).await;
        c.send_retry_for = Duration::from_secs(2);
        c.request_timeout = Duration::from_secs(5);
        out.push(c);
    }
    out
}

/// Connects to the first live node from `start` on, as a client would
/// through the selector after its node died.
async fn connect_live(
    configs: &[ClientConfig],
    start: usize,
    dead: &AtomicBool,
) -> (Client, Events, usize) {
    for k in 0..NODES {
        let n = (start + k) % NODES;
        if n == KILLED && dead.load(Ordering::SeqCst) {
            continue;
        }
        if let Ok((client, events)) = Client::connect(configs[n].clone()).await {
            return (client, events, n);
        }
    }
    panic!("no live node took the connection");
}

/// Keeps a client's event queue drained (a full one would stall it).
fn drain(mut events: Events) {
    tokio::spawn(async move { while events.recv().await.is_some() {} });
}

/// Every received message of a user, by a full sync from version 0.
async fn inbox(client: &Client) -> Vec<InboxEntry> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let (page, has_more, _) = client.sync(after, 200).await.expect("sync");
        if let Some(last) = page.last() {
            after = last.version;
        }
        all.extend(page);
        if !has_more {
            return all;
        }
    }
}

/// Message entries pushed to a receiver until `stop`, by message id.
async fn collect(mut events: Events, stop: Arc<AtomicBool>) -> Vec<MsgId> {
    let mut got = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
            Ok(Some(Event::Entry(e))) if e.kind == EntryKind::Message => got.push(e.server_msg_id),
            Ok(Some(_)) | Err(_) => {}
            Ok(None) => break,
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_traffic_loses_and_repeats_no_acknowledged_message() {
    let Some((mut nodes, _db)) = start_cluster(NODES).await else {
        return;
    };
    let dead = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));

    // Receiver r{i} on node (i + 1) % 3, sender s{i} on node i % 3: pushes
    // cross nodes, and the killed node holds senders and receivers.
    let mut receivers = Vec::new();
    for i in 0..PAIRS {
        let configs = configs(&nodes, &format!("r{i}")).await;
        let home = (i + 1) % NODES;
        let (client, events) = Client::connect(configs[home].clone()).await.unwrap();
        let collecting = tokio::spawn(collect(events, stop.clone()));
        receivers.push((configs, home, client, collecting));
    }
    let mut senders = Vec::new();
    for i in 0..PAIRS {
        let configs = configs(&nodes, &format!("s{i}")).await;
        let (dead, acked) = (dead.clone(), acked.clone());
        senders.push(tokio::spawn(async move {
            let (mut client, events, _) = connect_live(&configs, i % NODES, &dead).await;
            drain(events);
            let mut acks = Vec::new();
            for k in 0..PER_SENDER {
                // One client message id per message, kept across reconnects:
                // a send whose answer was lost is stored once.
                let id = format!("s{i}-m{k}");
                let receipt = loop {
                    let text = Content::text(format!("s{i} m{k}"));
                    match client
                        .send_with_id(to(&format!("r{i}")), &id, k as u64 + 1, text)
                        .await
                    {
                        Ok(r) => break r,
                        Err(_) => {
                            let (c, events, _) = connect_live(&configs, i % NODES + 1, &dead).await;
                            drain(events);
                            client = c;
                        }
                    }
                };
                acks.push(receipt.server_msg_id);
                acked.fetch_add(1, Ordering::SeqCst);
            }
            acks
        }));
    }

    // A quarter of the way through, node 1 dies without a word.
    while acked.load(Ordering::SeqCst) < PAIRS * PER_SENDER / 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    dead.store(true, Ordering::SeqCst);
    nodes[KILLED].crash();

    // Receivers that were on it come back on a live node from the version
    // they hold, as the SDK would after asking a selector.
    let mut sent = Vec::new();
    for s in senders {
        sent.push(s.await.unwrap());
    }
    let mut moved = Vec::new();
    for (configs, home, client, _) in &mut receivers {
        if *home == KILLED {
            let mut config = configs[(KILLED + 1) % NODES].clone();
            config.last_version = client.last_version();
            let (c, events) = Client::connect(config).await.unwrap();
            moved.push(tokio::spawn(collect(events, stop.clone())));
            *client = c;
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);

    let mut moved = moved.into_iter();
    for (i, (_, home, client, collecting)) in receivers.into_iter().enumerate() {
        let want: HashSet<MsgId> = sent[i].iter().copied().collect();
        assert_eq!(
            want.len(),
            PER_SENDER,
            "every send of s{i} was acknowledged, with distinct ids"
        );

        // The store: exactly the acknowledged messages, once each, in order.
        let stored: Vec<InboxEntry> = inbox(&client)
            .await
            .into_iter()
            .filter(|e| e.kind == EntryKind::Message)
            .collect();
        let ids: Vec<MsgId> = stored.iter().map(|e| e.server_msg_id).collect();
        let distinct: HashSet<MsgId> = ids.iter().copied().collect();
        assert_eq!(ids.len(), distinct.len(), "r{i}: a message stored twice");
        assert_eq!(distinct, want, "r{i}: stored is not what was acknowledged");
        assert!(
            stored.windows(2).all(|w| w[0].version < w[1].version),
            "r{i}: versions in order"
        );

        // The device: every message once, across its reconnect if its
        // node died.
        let mut seen = collecting.await.unwrap();
        if home == KILLED {
            seen.extend(moved.next().unwrap().await.unwrap());
        }
        let seen_distinct: HashSet<MsgId> = seen.iter().copied().collect();
        assert_eq!(
            seen.len(),
            seen_distinct.len(),
            "r{i}: a message delivered twice"
        );
        assert_eq!(
            seen_distinct, want,
            "r{i}: the device is missing acknowledged messages"
        );
    }
}
