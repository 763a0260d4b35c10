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

/// Connects to the first node from `start` on that is up, as a client
/// would through the selector after its node went away.
async fn connect_live(
    configs: &[ClientConfig],
    start: usize,
    down: &[AtomicBool],
) -> (Client, Events) {
    for attempt in 0..100 {
        for k in 0..NODES {
            let n = (start + k) % NODES;
            if down[n].load(Ordering::SeqCst) {
                continue;
            }
            if let Ok((client, events)) = Client::connect(configs[n].clone()).await {
                return (client, events);
            }
        }
        tokio::time::sleep(Duration::from_millis(50 * attempt.min(10))).await;
    }
    panic!("no live node took the connection");
}

/// Keeps a client's event queue drained (a full one would stall it).
fn drain(mut events: Events) {
    tokio::spawn(async move { while events.recv().await.is_some() {} });
}

/// Every received message of a user, by a full sync from version 0. A
/// client whose node has just restarted may still be reconnecting (the
/// SDK does it by itself, with backoff): a page is asked again until it
/// is back, for up to 30 s.
async fn inbox(client: &Client) -> Vec<InboxEntry> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let mut attempt = 0;
        let (page, has_more, _) = loop {
            match client.sync(after, 200).await {
                Ok(answer) => break answer,
                Err(_) if attempt < 150 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("sync still failing after 30 s: {e}"),
            }
        };
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

/// 1:1 traffic across the cluster while it is disrupted: receiver r{i} on
/// node (i + 1) % 3, sender s{i} on node i % 3 (pushes cross nodes, and
/// every node holds senders and receivers). A sender whose node goes away
/// moves to a live one and resends under the same client message id.
struct Traffic {
    /// Which nodes are down now (senders skip them).
    down: Arc<Vec<AtomicBool>>,
    acked: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    receivers: Vec<Receiver>,
    senders: Vec<tokio::task::JoinHandle<Sent>>,
}

struct Receiver {
    configs: Vec<ClientConfig>,
    home: usize,
    client: Client,
    /// What each of its clients saw pushed, in turn.
    collecting: Vec<tokio::task::JoinHandle<Vec<MsgId>>>,
}

/// One sender's acknowledged ids, and the longest it waited for an ack.
struct Sent {
    ids: Vec<MsgId>,
    longest_wait: Duration,
}

impl Traffic {
    async fn start(nodes: &[Server]) -> Traffic {
        let down = Arc::new(
            (0..NODES)
                .map(|_| AtomicBool::new(false))
                .collect::<Vec<_>>(),
        );
        let acked = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut receivers = Vec::new();
        for i in 0..PAIRS {
            let configs = configs(nodes, &format!("r{i}")).await;
            let home = (i + 1) % NODES;
            let (client, events) = Client::connect(configs[home].clone()).await.unwrap();
            let collecting = vec![tokio::spawn(collect(events, stop.clone()))];
            receivers.push(Receiver {
                configs,
                home,
                client,
                collecting,
            });
        }
        let mut senders = Vec::new();
        for i in 0..PAIRS {
            let configs = configs(nodes, &format!("s{i}")).await;
            let (down, acked) = (down.clone(), acked.clone());
            senders.push(tokio::spawn(async move {
                let (mut client, events) = connect_live(&configs, i % NODES, &down).await;
                drain(events);
                let mut sent = Sent {
                    ids: Vec::new(),
                    longest_wait: Duration::ZERO,
                };
                for k in 0..PER_SENDER {
                    // One client message id per message, kept across
                    // reconnects: a send whose answer was lost is stored once.
                    let id = format!("s{i}-m{k}");
                    let started = std::time::Instant::now();
                    let receipt = loop {
                        let text = Content::text(format!("s{i} m{k}"));
                        let to = to(&format!("r{i}"));
                        match client.send_with_id(to, &id, k as u64 + 1, text).await {
                            Ok(r) => break r,
                            Err(_) => {
                                let (c, events) =
                                    connect_live(&configs, i % NODES + 1, &down).await;
                                drain(events);
                                client = c;
                            }
                        }
                    };
                    sent.longest_wait = sent.longest_wait.max(started.elapsed());
                    sent.ids.push(receipt.server_msg_id);
                    acked.fetch_add(1, Ordering::SeqCst);
                }
                sent
            }));
        }
        Traffic {
            down,
            acked,
            stop,
            receivers,
            senders,
        }
    }

    /// Waits until `n` sends were acknowledged.
    async fn until_acked(&self, n: usize) {
        while self.acked.load(Ordering::SeqCst) < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Moves the receivers of a node that will not come back to a live
    /// node, from the version they hold, as the SDK would after asking a
    /// selector.
    async fn move_receivers_off(&mut self, node: usize) {
        for r in &mut self.receivers {
            if r.home == node {
                let mut config = r.configs[(node + 1) % NODES].clone();
                config.last_version = r.client.last_version();
                let (client, events) = Client::connect(config).await.unwrap();
                r.collecting
                    .push(tokio::spawn(collect(events, self.stop.clone())));
                r.client = client;
            }
        }
    }

    /// Lets the traffic finish, then checks every receiver: its inbox holds
    /// exactly the acknowledged messages, once each, in version order, and
    /// its device saw each pushed once. Returns the longest any send waited.
    async fn check(self) -> Duration {
        let mut sent = Vec::new();
        for s in self.senders {
            sent.push(s.await.unwrap());
        }
        // What each inbox holds, then until each device has caught up with
        // it (one whose node restarted may still be reconnecting).
        let mut stored = Vec::new();
        for (i, r) in self.receivers.iter().enumerate() {
            let all = inbox(&r.client).await;
            let newest = all.last().map_or(0, |e| e.version);
            let mut waited = 0;
            while r.client.last_version() < newest {
                assert!(waited < 300, "r{i}: the device did not catch up in 30 s");
                waited += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            stored.push(all);
        }
        self.stop.store(true, Ordering::SeqCst);
        for (i, (r, all)) in self.receivers.into_iter().zip(stored).enumerate() {
            let want: HashSet<MsgId> = sent[i].ids.iter().copied().collect();
            assert_eq!(
                want.len(),
                PER_SENDER,
                "every send of s{i} acknowledged, distinct ids"
            );

            let stored: Vec<InboxEntry> = all
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

            let mut seen = Vec::new();
            for c in r.collecting {
                seen.extend(c.await.unwrap());
            }
            let seen_distinct: HashSet<MsgId> = seen.iter().copied().collect();
            assert_eq!(
                seen.len(),
                seen_distinct.len(),
                "r{i}: a message delivered twice"
            );
            assert_eq!(
                seen_distinct, want,
                "r{i}: the device misses acknowledged messages"
            );
        }
        sent.iter()
            .map(|s| s.longest_wait)
            .max()
            .unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_traffic_loses_and_repeats_no_acknowledged_message() {
    let Some((mut nodes, _db)) = start_cluster(NODES).await else {
        return;
    };
    let mut traffic = Traffic::start(&nodes).await;
    // A quarter of the way through, one node dies without a word.
    traffic.until_acked(PAIRS * PER_SENDER / 4).await;
    traffic.down[KILLED].store(true, Ordering::SeqCst);
    nodes[KILLED].crash();
    traffic.move_receivers_off(KILLED).await;
    let longest = traffic.check().await;
    eprintln!("kill -9 of one node of {NODES}: the longest a send waited for its ack: {longest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_traffic_loses_and_repeats_nothing() {
    let Some((mut nodes, _db)) = start_cluster_with(NODES, true).await else {
        return;
    };
    let traffic = Traffic::start(&nodes).await;
    // Each node in turn: SIGTERM (it drains with GOING_AWAY), then starts
    // again where it was; its receivers reconnect to it by themselves.
    for (n, node) in nodes.iter_mut().enumerate() {
        traffic
            .until_acked((n + 1) * PAIRS * PER_SENDER / (NODES + 2))
            .await;
        traffic.down[n].store(true, Ordering::SeqCst);
        node.stop();
        node.restart();
        traffic.down[n].store(false, Ordering::SeqCst);
    }
    let longest = traffic.check().await;
    eprintln!(
        "rolling restart of {NODES} nodes: the longest a send waited for its ack: {longest:?}"
    );
}
