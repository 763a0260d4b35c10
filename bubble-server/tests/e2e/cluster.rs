//! A cluster under failure (issue 13): three nodes on MariaDB + Redis +
//! etcd. Clients spread by the selectors exchange 1:1, group and
//! super-group messages while one node is killed with SIGKILL, while the
//! nodes restart in turn, or while Redis restarts empty. At the end every
//! device holds exactly the acknowledged messages addressed to it, in
//! order, each delivered once. Runs with `BUBBLE_E2E_BACKENDS=scale-out`
//! (the README's test command does); otherwise it says it was skipped.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bubble_client::{Client, ClientConfig, Endpoint, Event, Events};
use bubble_core::{Content, Conversation, EntryKind, GroupId, InboxEntry, MsgId, UserId};
use parking_lot::Mutex;

use super::support::*;

const NODES: usize = 3;
/// Messages each user sends during the traffic (a closing round follows).
const PER_USER: usize = 6;
/// Users per (ordinary) group: user `i` is in group `i / GROUP_SIZE`.
const GROUP_SIZE: usize = 20;
/// The super group every user is in.
const TOWN: &str = "town";

fn user(i: usize) -> String {
    format!("u{i:03}")
}

/// Where a message goes.
#[derive(Debug, Clone, Copy)]
enum To {
    User(usize),
    Group(usize),
    Town,
}

impl To {
    /// The `k`th message of user `i` of `users`: a quarter of the users
    /// post to the super group, everyone to their group and to two peers.
    fn of(users: usize, i: usize, k: usize) -> To {
        match k % 3 {
            0 if i.is_multiple_of(4) => To::Town,
            0 => To::User((i + users / 2) % users),
            1 => To::Group(i / GROUP_SIZE),
            _ => To::User((i + 1) % users),
        }
    }

    fn conversation(self) -> Conversation {
        match self {
            To::User(j) => Conversation::direct(&UserId::new(user(j))),
            To::Group(g) => Conversation::group(&GroupId::new(format!("g{g}"))),
            To::Town => Conversation::super_group(&GroupId::new(TOWN)),
        }
    }
}

/// What one device was handed, in the order it was handed.
#[derive(Default)]
struct Seen {
    /// Inbox messages (both directions): version and id.
    entries: Vec<(u64, MsgId)>,
    /// The super group's entries: seq and id.
    town: Vec<(u64, MsgId)>,
    /// Each session that came up: when, and whether a resumption ticket
    /// skipped the RSA step.
    connected: Vec<(Instant, bool)>,
    disconnected: Vec<Instant>,
}

/// Records a device's events until `stop`.
fn watch(mut events: Events, seen: Arc<Mutex<Seen>>, stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            let event = match tokio::time::timeout(Duration::from_millis(200), events.recv()).await
            {
                Ok(Some(event)) => event,
                Ok(None) => break,
                Err(_) => continue,
            };
            let mut seen = seen.lock();
            match event {
                Event::Entry(e) if e.kind == EntryKind::Message => {
                    seen.entries.push((e.version, e.server_msg_id));
                }
                Event::Channel(e) if e.kind == EntryKind::Message => {
                    seen.town.push((e.seq, e.server_msg_id));
                }
                Event::Connected { resumed } => seen.connected.push((Instant::now(), resumed)),
                Event::Disconnected { .. } => seen.disconnected.push(Instant::now()),
                _ => {}
            }
        }
    });
}

/// Every received message of a user, by a full sync from version 0. A
/// client whose node went away may still be reconnecting (the SDK does it
/// by itself, through the selectors): a page is asked again until it is
/// back, for up to 30 s.
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

/// Sends until acknowledged, under one client message id (a send whose
/// answer was lost is stored once), through whatever node the client is
/// on by then. Returns the message id and how long it took.
async fn send_until_acked(client: &Client, to: To, id: &str, seq: u64) -> (MsgId, Duration) {
    let started = Instant::now();
    loop {
        let text = Content::text(id.to_owned());
        match client.send_with_id(to.conversation(), id, seq, text).await {
            Ok(receipt) => return (receipt.server_msg_id, started.elapsed()),
            Err(e) => {
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "{id}: not acknowledged in 120 s: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Users connected through the selectors of every node, sending while the
/// cluster is disrupted.
struct Crowd {
    users: usize,
    clients: Vec<Client>,
    seen: Vec<Arc<Mutex<Seen>>>,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    senders: Vec<tokio::task::JoinHandle<Vec<(To, MsgId, Duration)>>>,
    /// The super group's first messages, sent before the traffic: by
    /// whom, and their ids.
    opening: Vec<(usize, MsgId)>,
}

/// The test's figures: the longest any send waited for its ack, how long
/// the devices that lost their connection took to be served again, and how
/// many of them resumed (a ticket of the cluster, no RSA step).
struct Figures {
    longest_ack_wait: Duration,
    reconnects: Vec<Duration>,
    resumed: usize,
}

impl Figures {
    fn report(&self, what: &str) {
        let mut r = self.reconnects.clone();
        r.sort();
        let at = |q: f64| r.get(((r.len() as f64 * q) as usize).min(r.len().max(1) - 1));
        eprintln!(
            "{what}: longest wait for an ack {:?}; {} devices reconnected ({} resumed), p50 {:?}, p99 {:?}, max {:?}",
            self.longest_ack_wait,
            r.len(),
            self.resumed,
            at(0.5).copied().unwrap_or_default(),
            at(0.99).copied().unwrap_or_default(),
            r.last().copied().unwrap_or_default(),
        );
    }
}

impl Crowd {
    /// Connects `users` devices (half over WebSocket) through the
    /// selectors of all `nodes`, checks that the selectors spread them,
    /// makes the groups, and starts the traffic.
    async fn start(nodes: &[Server], users: usize, heartbeat: Duration) -> Crowd {
        assert_eq!(users % GROUP_SIZE, 0);
        let selectors: Vec<String> = nodes.iter().map(|n| n.http.clone()).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let mut configs = Vec::new();
        for i in 0..users {
            let ws = i % 2 == 1;
            let mut config = nodes[0].config(&user(i), "phone", ws).await;
            config.endpoint = Endpoint::Selector {
                urls: selectors.clone(),
                prefer_ws: ws,
            };
            config.request_timeout = Duration::from_secs(5);
            config.heartbeat_interval = heartbeat;
            config.reconnect_max = Duration::from_secs(1);
            config.send_retry_for = Duration::from_secs(10);
            configs.push(config);
        }
        let connected =
            futures_util::future::join_all(configs.into_iter().map(|c: ClientConfig| async move {
                Client::connect(c)
                    .await
                    .expect("a device connects through a selector")
            }))
            .await;
        let mut clients = Vec::new();
        let mut seen = Vec::new();
        for (client, events) in connected {
            let s = Arc::new(Mutex::new(Seen::default()));
            watch(events, s.clone(), stop.clone());
            clients.push(client);
            seen.push(s);
        }
        assert_spread(nodes, users).await;

        for g in 0..users / GROUP_SIZE {
            let members: Vec<String> = (g * GROUP_SIZE..(g + 1) * GROUP_SIZE).map(user).collect();
            let members: Vec<&str> = members.iter().map(String::as_str).collect();
            clients[g * GROUP_SIZE]
                .create_group(&format!("g{g}"), "a group", &members, false)
                .await
                .expect("group created");
        }
        let everyone: Vec<String> = (0..users).map(user).collect();
        let everyone: Vec<&str> = everyone.iter().map(String::as_str).collect();
        clients[0]
            .create_group(TOWN, "everyone", &everyone, true)
            .await
            .expect("super group created");
        // A device's super-group stream starts at the first entry it is
        // pushed (earlier ones are history, pulled on demand). Pushes from
        // different nodes may arrive out of order, so the test opens the
        // stream with one message every device sees before the traffic:
        // from there on, a gap is repaired by the SDK. (Two of them: a
        // device is not pushed its own message.)
        let mut opening = Vec::new();
        for from in [0, 1] {
            let id = format!("opening-{from}");
            let (msg, _) = send_until_acked(&clients[from], To::Town, &id, 1).await;
            for (i, seen) in seen.iter().enumerate().filter(|(i, _)| *i != from) {
                let deadline = Instant::now() + Duration::from_secs(30);
                while !seen.lock().town.iter().any(|e| e.1 == msg) {
                    assert!(
                        Instant::now() < deadline,
                        "{}: no opening push in 30 s",
                        user(i)
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            opening.push((from, msg));
        }

        let acked = Arc::new(AtomicUsize::new(0));
        let mut senders = Vec::new();
        for (i, client) in clients.iter().enumerate() {
            let (client, acked) = (client.clone(), acked.clone());
            senders.push(tokio::spawn(async move {
                let mut sent = Vec::new();
                for k in 0..PER_USER {
                    // Spread over a few seconds, so that the disruption
                    // falls in the middle of it.
                    tokio::time::sleep(Duration::from_millis(200 + (i % 7) as u64 * 30)).await;
                    let to = To::of(users, i, k);
                    let id = format!("{}-m{k}", user(i));
                    let (msg, waited) = send_until_acked(&client, to, &id, k as u64 + 1).await;
                    sent.push((to, msg, waited));
                    acked.fetch_add(1, Ordering::SeqCst);
                }
                sent
            }));
        }
        Crowd {
            users,
            clients,
            seen,
            stop,
            acked,
            senders,
            opening,
        }
    }

    /// The number of sends in the traffic.
    fn total(&self) -> usize {
        self.users * PER_USER
    }

    /// Waits until `n` sends were acknowledged.
    async fn until_acked(&self, n: usize) {
        while self.acked.load(Ordering::SeqCst) < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Lets the traffic finish, sends a closing round (one message to each
    /// user and two to the super group, which makes every device repair
    /// any gap by itself), then checks every device against what was
    /// acknowledged. `since` is when the disruption started.
    async fn check(self, since: Instant) -> Figures {
        let users = self.users;
        let mut sent = Vec::new();
        for s in self.senders {
            sent.push(s.await.unwrap());
        }
        let mut longest_ack_wait = Duration::ZERO;
        let mut inboxes: Vec<HashSet<MsgId>> = vec![HashSet::new(); users];
        let mut town: HashSet<MsgId> = HashSet::new();
        // What each user sent: its device is not pushed its own messages
        // (it has the ack), so it may see them only by a later sync.
        let mut own: Vec<HashSet<MsgId>> = vec![HashSet::new(); users];
        let mut record = |from: usize, to: To, msg: MsgId| {
            own[from].insert(msg);
            match to {
                To::User(j) => {
                    inboxes[from].insert(msg);
                    inboxes[j].insert(msg);
                }
                To::Group(g) => {
                    for inbox in &mut inboxes[g * GROUP_SIZE..(g + 1) * GROUP_SIZE] {
                        inbox.insert(msg);
                    }
                }
                To::Town => {
                    town.insert(msg);
                }
            }
        };
        for &(from, msg) in &self.opening {
            record(from, To::Town, msg);
        }
        for (i, messages) in sent.iter().enumerate() {
            let ids: HashSet<MsgId> = messages.iter().map(|m| m.1).collect();
            assert_eq!(
                ids.len(),
                PER_USER,
                "{}: every send acknowledged once",
                user(i)
            );
            for &(to, msg, waited) in messages {
                longest_ack_wait = longest_ack_wait.max(waited);
                record(i, to, msg);
            }
        }
        for i in 0..users {
            let from = (i + 1) % users;
            let id = format!("{}-closing-to-{}", user(from), user(i));
            let (msg, _) = send_until_acked(&self.clients[from], To::User(i), &id, 100).await;
            record(from, To::User(i), msg);
        }
        // Two, as the openings: a device is not pushed its own message.
        for from in [0, 1] {
            let id = format!("closing-{from}");
            let (msg, _) = send_until_acked(&self.clients[from], To::Town, &id, 101).await;
            record(from, To::Town, msg);
        }

        // The store: each inbox holds exactly what was acknowledged to or
        // from its user, once, in version order; the super group's log
        // likewise.
        for (i, client) in self.clients.iter().enumerate() {
            let stored: Vec<InboxEntry> = inbox(client)
                .await
                .into_iter()
                .filter(|e| e.kind == EntryKind::Message)
                .collect();
            let ids: Vec<MsgId> = stored.iter().map(|e| e.server_msg_id).collect();
            let distinct: HashSet<MsgId> = ids.iter().copied().collect();
            assert_eq!(
                ids.len(),
                distinct.len(),
                "{}: a message stored twice",
                user(i)
            );
            assert_eq!(
                distinct,
                inboxes[i],
                "{}: stored is not what was acknowledged",
                user(i)
            );
            assert!(
                stored.windows(2).all(|w| w[0].version < w[1].version),
                "{}: versions in order",
                user(i)
            );
        }
        let mut log = Vec::new();
        let mut after = 0;
        loop {
            let (page, _) = self.clients[0]
                .pull_channel(TOWN, after, 200)
                .await
                .unwrap();
            after = page.entries.last().map_or(after, |e| e.seq);
            log.extend(
                page.entries
                    .into_iter()
                    .filter(|e| e.kind == EntryKind::Message),
            );
            if !page.has_more {
                break;
            }
        }
        let log_ids: Vec<MsgId> = log.iter().map(|e| e.server_msg_id).collect();
        assert_eq!(
            log_ids.iter().copied().collect::<HashSet<_>>(),
            town,
            "the super group's log"
        );
        assert_eq!(
            log_ids.len(),
            town.len(),
            "a super-group message stored twice"
        );

        // The devices: each was handed every entry of its inbox and of the
        // super group that it did not send itself, once, in order (by push,
        // or by the sync the SDK runs on a gap or a reconnect).
        let log_set: HashSet<MsgId> = log_ids.iter().copied().collect();
        let missing = |i: usize, seen: &Seen| {
            let got: HashSet<MsgId> = seen.entries.iter().chain(&seen.town).map(|e| e.1).collect();
            inboxes[i]
                .iter()
                .chain(&log_set)
                .filter(|m| !own[i].contains(m) && !got.contains(m))
                .count()
        };
        for i in 0..users {
            let deadline = Instant::now() + Duration::from_secs(30);
            while missing(i, &self.seen[i].lock()) > 0 {
                if Instant::now() >= deadline {
                    let seen = self.seen[i].lock();
                    let got: HashSet<MsgId> =
                        seen.entries.iter().chain(&seen.town).map(|e| e.1).collect();
                    let inbox_missing = inboxes[i]
                        .iter()
                        .filter(|m| !own[i].contains(m) && !got.contains(m))
                        .count();
                    let town_missing = log_set
                        .iter()
                        .filter(|m| !own[i].contains(m) && !got.contains(m))
                        .count();
                    panic!(
                        "{}: the device still misses {inbox_missing} inbox and {town_missing} super-group messages after 30 s (handed {} entries, last version {:?}, {} town, last seq {:?}, log {}, connected {}, disconnected {})",
                        user(i),
                        seen.entries.len(),
                        seen.entries.last(),
                        seen.town.len(),
                        seen.town.last().map(|e| e.0),
                        log_ids.len(),
                        seen.connected.len(),
                        seen.disconnected.len()
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        self.stop.store(true, Ordering::SeqCst);
        let mut reconnects = Vec::new();
        let mut resumed = 0;
        for (i, seen) in self.seen.iter().enumerate() {
            let seen = seen.lock();
            for (what, handed, stored) in [
                ("inbox", &seen.entries, &inboxes[i]),
                ("super-group", &seen.town, &log_set),
            ] {
                let ids: Vec<MsgId> = handed.iter().map(|e| e.1).collect();
                let distinct: HashSet<MsgId> = ids.iter().copied().collect();
                assert_eq!(
                    ids.len(),
                    distinct.len(),
                    "{}: a {what} message handed to the device twice",
                    user(i)
                );
                assert!(
                    distinct.is_subset(stored),
                    "{}: the device was handed {what} messages never acknowledged",
                    user(i)
                );
                assert!(
                    handed.windows(2).all(|w| w[0].0 < w[1].0),
                    "{}: the device got {what} entries out of order",
                    user(i)
                );
            }
            // How long a device that lost its node waited for another.
            if let Some(lost) = seen.disconnected.iter().find(|t| **t >= since)
                && let Some((back, by_ticket)) = seen.connected.iter().find(|c| c.0 > *lost)
            {
                reconnects.push(*back - since);
                resumed += usize::from(*by_ticket);
            }
        }
        Figures {
            longest_ack_wait,
            reconnects,
            resumed,
        }
    }
}

/// The selectors spread the devices: every node holds at least half its
/// fair share.
async fn assert_spread(nodes: &[Server], users: usize) {
    let mut held = Vec::new();
    for node in nodes {
        let body = bubble_client::transport::http_get(&node.http, "/metrics")
            .await
            .unwrap();
        let text = String::from_utf8(body).unwrap();
        let open: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("bubble_connections "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .expect("bubble_connections in /metrics") as usize;
        held.push(open);
    }
    let fair = users / nodes.len();
    assert!(
        held.iter().all(|&n| n >= fair / 2),
        "the selectors spread {users} devices as {held:?}"
    );
    eprintln!("the selectors spread {users} devices over the nodes as {held:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_under_200_devices_loses_and_repeats_no_acknowledged_message() {
    let Some((mut nodes, _db)) = start_cluster(NODES).await else {
        return;
    };
    let crowd = Crowd::start(&nodes, 200, Duration::from_secs(20)).await;
    crowd.until_acked(crowd.total() / 3).await;
    // A third of the way through, one node dies without a word. Its
    // devices reconnect through the selectors of the others.
    let killed = Instant::now();
    nodes[1].crash();
    let dead = nodes[1].node_id().unwrap().to_owned();
    let figures = crowd.check(killed).await;
    figures.report("kill -9 of one node of 3 under 200 devices");
    assert!(!figures.reconnects.is_empty(), "the dead node held devices");
    // The nodes share a ticket secret: a device resumes on any of them.
    assert_eq!(
        figures.resumed,
        figures.reconnects.len(),
        "every device of the dead node resumed on another without an RSA step"
    );

    // Its presence routes are gone: each device that came back elsewhere
    // replaced its route.
    let all: Vec<String> = (0..200).map(user).collect();
    let presence = nodes[0]
        .admin(
            "GET",
            &format!("/v1/admin/apps/demo/presence?users={}", all.join(",")),
            None,
        )
        .await;
    let on_dead = presence["users"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|u| u["devices"].as_array().unwrap().clone())
        .filter(|d| d["node"] == dead.as_str())
        .count();
    assert_eq!(on_dead, 0, "routes still name the dead node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_traffic_loses_and_repeats_nothing() {
    let Some((mut nodes, _db)) = start_cluster_with(NODES, true).await else {
        return;
    };
    let crowd = Crowd::start(&nodes, 60, Duration::from_secs(20)).await;
    let started = Instant::now();
    // Each node in turn: SIGTERM (it drains with GOING_AWAY and leaves the
    // selectors), then it starts again where it was.
    for (n, node) in nodes.iter_mut().enumerate() {
        crowd
            .until_acked((n + 1) * crowd.total() / (NODES + 2))
            .await;
        node.stop();
        node.restart();
    }
    let figures = crowd.check(started).await;
    figures.report("rolling restart of 3 nodes under 60 devices");
    // The documented window (operations.md, "a rolling restart"): no send
    // waits longer than the drain's grace period for its ack.
    assert!(
        figures.longest_ack_wait < Duration::from_secs(10),
        "a send waited {:?} during the rolling restart",
        figures.longest_ack_wait
    );
}

/// A Redis of the test's own, so that stopping it disturbs no other test.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = OwnRedis { port, child: None };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (empty: nothing is saved) and waits until it accepts.
    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/services/redis.sh installs it)");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    /// SIGKILL: whatever it held is gone.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_under_traffic_loses_nothing_and_routes_heal() {
    if std::env::var("BUBBLE_E2E_BACKENDS").as_deref() != Ok("scale-out") {
        eprintln!("SKIPPED: the Redis restart test runs with BUBBLE_E2E_BACKENDS=scale-out");
        return;
    }
    let mut redis = OwnRedis::start();
    let url = redis.url();
    let settings = [
        ("BUBBLE_CACHE_REDIS_URL", url.as_str()),
        ("BUBBLE_PRESENCE_REDIS_URL", url.as_str()),
    ];
    let Some((nodes, _db)) = start_cluster_on(NODES, false, &settings).await else {
        return;
    };
    let heartbeat = Duration::from_secs(2);
    let crowd = Crowd::start(&nodes, 60, heartbeat).await;
    crowd.until_acked(crowd.total() / 3).await;
    let restarted = Instant::now();
    redis.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.restart();

    // Every device's route is written again (its next ping, or the
    // node's retry of what it could not write) within about a heartbeat.
    let healed = until_every_route_is_back(&nodes[0], 60, restarted, Duration::from_secs(11)).await;
    eprintln!(
        "Redis killed and restarted empty after 1 s: every route back {healed:?} after the kill (heartbeat {heartbeat:?})"
    );
    crowd
        .check(restarted)
        .await
        .report("Redis restart under 60 devices");
}

/// Waits until presence (through `node`'s admin API) shows all `users`
/// online; returns how long after `since` that was. Fails after `limit`.
async fn until_every_route_is_back(
    node: &Server,
    users: usize,
    since: Instant,
    limit: Duration,
) -> Duration {
    let all: Vec<String> = (0..users).map(user).collect();
    let path = format!("/v1/admin/apps/demo/presence?users={}", all.join(","));
    loop {
        // Refused (503) while the node still sees Redis as down.
        let (status, body) = bubble_client::transport::http_request(
            &node.http,
            "GET",
            &path,
            Some(&node.admin_secret),
            None,
        )
        .await
        .expect("the admin API answers");
        let presence: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let online = presence["users"]
            .as_array()
            .map_or(0, |u| u.iter().filter(|u| u["online"] == true).count());
        assert!(
            status == 200 || status == 503,
            "presence query: {status} {presence}"
        );
        if online == all.len() {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < limit,
            "routes not back after {limit:?}: {online} of {} online",
            all.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Sentinel set-up of `scripts/services/redis-sentinel.sh` (the README's
/// test command starts it).
const SENTINELS: &str = "redis://127.0.0.1:26401,redis://127.0.0.1:26402,redis://127.0.0.1:26403";
const SENTINEL_MASTER: &str = "bubble";

/// The port of the master the first sentinel names now.
fn sentinel_master_port() -> Option<String> {
    let out = Command::new("redis-cli")
        .args([
            "-p",
            "26401",
            "SENTINEL",
            "get-master-addr-by-name",
            SENTINEL_MASTER,
        ])
        .output()
        .ok()?;
    String::from_utf8(out.stdout)
        .ok()?
        .lines()
        .nth(1)
        .map(str::to_owned)
}

/// Asks the sentinels, in turn, to fail their master over.
fn sentinel_failover() -> bool {
    ["26401", "26402", "26403"].iter().any(|port| {
        Command::new("redis-cli")
            .args(["-p", port, "SENTINEL", "FAILOVER", SENTINEL_MASTER])
            .output()
            .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("OK"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_under_traffic_loses_nothing_and_every_device_catches_up() {
    if std::env::var("BUBBLE_E2E_BACKENDS").as_deref() != Ok("scale-out") {
        eprintln!("SKIPPED: the Sentinel failover test runs with BUBBLE_E2E_BACKENDS=scale-out");
        return;
    }
    let answers = sentinel_master_port().is_some();
    if !answers {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "no Redis Sentinel on 127.0.0.1:26401 (scripts/services/redis-sentinel.sh starts it)"
        );
        eprintln!(
            "SKIPPED: no Redis Sentinel on 127.0.0.1:26401 (scripts/services/redis-sentinel.sh starts it)"
        );
        return;
    }
    // Cache and presence through the sentinels; each write waits for the
    // replica, so what Redis acknowledged survives the failover.
    let mut settings = Vec::new();
    for port in ["CACHE", "PRESENCE"] {
        settings.extend([
            // With sentinels, only the URL's credentials and db count.
            (
                format!("BUBBLE_{port}_REDIS_URL"),
                "redis://127.0.0.1".to_owned(),
            ),
            (
                format!("BUBBLE_{port}_REDIS_SENTINELS"),
                SENTINELS.to_owned(),
            ),
            (
                format!("BUBBLE_{port}_REDIS_MASTER_NAME"),
                SENTINEL_MASTER.to_owned(),
            ),
            (format!("BUBBLE_{port}_REDIS_WAIT_REPLICAS"), "1".to_owned()),
        ]);
    }
    let settings: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let Some((nodes, _db)) = start_cluster_on(NODES, false, &settings).await else {
        return;
    };
    let heartbeat = Duration::from_secs(2);
    let crowd = Crowd::start(&nodes, 60, heartbeat).await;
    crowd.until_acked(crowd.total() / 3).await;
    let master = sentinel_master_port();
    let failed_over = Instant::now();
    assert!(sentinel_failover(), "no sentinel took SENTINEL FAILOVER");
    // The sentinels name the replica; the old master goes on taking writes
    // for ~10 s until they demote it, and writes that wait for a replica
    // fail until then: the nodes go on without the cache and presence
    // meanwhile, and push each device its newest entry when presence is
    // back, so one that missed a push finds the gap.
    while sentinel_master_port() == master {
        assert!(
            failed_over.elapsed() < Duration::from_secs(30),
            "the sentinels named no new master in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "Sentinel failover: a new master named {:?} after it",
        failed_over.elapsed()
    );
    crowd
        .check(failed_over)
        .await
        .report("Sentinel failover under 60 devices");
}
