//! Connecting many users and driving message traffic through them: open
//! loop (a fixed send rate per user) or closed loop (a window of unacked
//! sends per user), with every delivery checked and timed.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prost::Message;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use bubble_proto::{Command, pb};

use crate::conn::{self, ConnError, Established, Reader, Target, Writer};
use crate::stats::{Latency, ReceiverReport, now_ns};

/// Send times are kept in a ring indexed by request seq; at most this many
/// sends of one connection may be unanswered at once.
const RING: usize = 1024;

/// How users send.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    /// Each user keeps up to `window` sends unacknowledged.
    Closed {
        /// Unacked sends per user.
        window: usize,
    },
    /// Each user sends `per_user` messages a second on a fixed schedule.
    /// Latency counts from the moment the message is written; how late
    /// that was against the schedule (tokio's timer has 1 ms ticks, and a
    /// stalled server stalls the writer) is reported as the send lag, so a
    /// server that stops reading cannot hide behind coordinated omission.
    Open {
        /// Messages per second per user.
        per_user: f64,
    },
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Load::Closed { window } => write!(f, "closed loop, window {window}"),
            Load::Open { per_user } => write!(f, "open loop, {per_user}/s per user"),
        }
    }
}

/// The source address of connection `i`: connections are spread over
/// 127.0.0.2 .. 127.0.0.(1 + sources), each with its own 28k ephemeral ports.
pub fn source(i: usize, sources: usize) -> IpAddr {
    let n = (i % sources.max(1)) as u32 + 2;
    IpAddr::V4(Ipv4Addr::from(0x7f00_0000 + n))
}

/// Source addresses needed for `connections` (about 16,000 each).
pub fn sources_for(connections: usize) -> usize {
    connections.div_ceil(16_000).max(1)
}

/// Opens `users.len()` connections with full handshakes, at most
/// `concurrency` at a time. Returns them in order and the seconds it took.
pub async fn connect_all(
    target: &Target,
    users: &[(String, String)],
    sources: usize,
    concurrency: usize,
) -> Result<(Vec<Established>, f64), String> {
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let target = Arc::new(target.clone());
    let mut handles = Vec::with_capacity(users.len());
    for (i, (user, token)) in users.iter().enumerate() {
        let gate = gate.clone();
        let target = target.clone();
        let (user, token) = (user.clone(), token.clone());
        handles.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.expect("never closed");
            let target = match target.selectors.len() {
                0 => target,
                n => Arc::new(selected(&target, &target.selectors[i % n]).await?),
            };
            connect_retrying(&target, source(i, sources), &user, &token).await
        }));
    }
    let mut out = Vec::with_capacity(handles.len());
    for (i, h) in handles.into_iter().enumerate() {
        match h.await {
            Ok(Ok(e)) => out.push(e),
            Ok(Err(e)) => return Err(format!("connection {i} ({}): {e}", users[i].0)),
            Err(e) => return Err(format!("connection {i}: task failed: {e}")),
        }
    }
    Ok((out, started.elapsed().as_secs_f64()))
}

/// `target` with the gate the selector at `url` hands out.
async fn selected(target: &Target, url: &str) -> Result<Target, ConnError> {
    let gate = bubble_client::transport::select_gate(url)
        .await
        .map_err(|e| ConnError::Protocol(format!("selector {url}: {e}")))?;
    let addr = gate
        .tcp
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| ConnError::Protocol(format!("selector {url} handed out no TCP gate")))?;
    Ok(Target {
        addr,
        ..target.clone()
    })
}

/// A full handshake, retried a few times when the socket fails (a SYN
/// dropped under a storm) but not when the server refuses.
pub async fn connect_retrying(
    target: &Target,
    source: IpAddr,
    user: &str,
    token: &str,
) -> Result<Established, ConnError> {
    let mut attempt = 0;
    loop {
        match conn::connect_full(target, source, "d1", token).await {
            Err(ConnError::Io(e)) if attempt < 5 => {
                attempt += 1;
                tracing_free_warn(&format!("{user}: {e}; retrying"));
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            other => return other,
        }
    }
}

fn tracing_free_warn(message: &str) {
    eprintln!("bubble-bench: {message}");
}

/// One connected user in a traffic run.
pub struct Participant {
    /// Index, carried in payloads as the sender id.
    pub idx: u32,
    /// Where this user sends (`None`: receives only).
    pub to: Option<pb::Conversation>,
    /// How many deliveries one of its messages makes (online recipients).
    pub recipients: u64,
    /// The connection.
    pub conn: Established,
}

/// Counters every task of a run shares.
#[derive(Default)]
pub struct Shared {
    /// Sends written.
    pub sent: AtomicU64,
    /// Sends acknowledged (durable).
    pub acked: AtomicU64,
    /// Sends answered with an error.
    pub failed: AtomicU64,
    /// Deliveries the acknowledged sends should make.
    pub expected: AtomicU64,
    /// Distinct deliveries seen.
    pub delivered: AtomicU64,
    /// Clock of the last ack.
    pub last_ack_ns: AtomicU64,
    /// Clock of the last delivery.
    pub last_delivery_ns: AtomicU64,
    /// Senders that reached their message limit.
    pub finished: AtomicU64,
}

/// What a run measured.
pub struct Outcome {
    /// When sending started (bench clock).
    pub start_ns: u64,
    /// How long users were sending.
    pub send_secs: f64,
    /// Sends written.
    pub sent: u64,
    /// Acknowledged.
    pub acked: u64,
    /// Refused.
    pub failed: u64,
    /// Deliveries expected from the acked sends.
    pub expected: u64,
    /// Everything the receivers counted.
    pub report: ReceiverReport,
    /// Clock of the last ack.
    pub last_ack_ns: u64,
    /// Clock of the last delivery.
    pub last_delivery_ns: u64,
    /// Whether the run ended before every delivery arrived.
    pub drain_timed_out: bool,
    /// Open loop: how late sends were against their schedule.
    pub send_lag: Latency,
}

impl Outcome {
    /// Deliveries expected but never seen.
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.report.seen.unique)
    }

    /// Acked sends per second over the sending phase.
    pub fn acked_per_sec(&self) -> f64 {
        let end = self.last_ack_ns.max(self.start_ns + 1);
        self.acked as f64 / ((end - self.start_ns) as f64 / 1e9)
    }

    /// Deliveries per second over the whole run.
    pub fn delivered_per_sec(&self) -> f64 {
        let end = self.last_delivery_ns.max(self.start_ns + 1);
        self.report.seen.unique as f64 / ((end - self.start_ns) as f64 / 1e9)
    }
}

struct Ring(Vec<AtomicU64>);

impl Ring {
    fn new() -> Ring {
        Ring((0..RING).map(|_| AtomicU64::new(0)).collect())
    }
    fn put(&self, seq: u32, ns: u64) {
        self.0[seq as usize % RING].store(ns, Ordering::Relaxed);
    }
    fn get(&self, seq: u32) -> u64 {
        self.0[seq as usize % RING].load(Ordering::Relaxed)
    }
}

/// Ends a run: a grace period in which late duplicates would still show
/// up, then stops the receivers and merges what they saw. The connections
/// close after that, so nothing counts a close as a loss.
async fn collect<W>(
    readers: Vec<JoinHandle<ReceiverReport>>,
    writers: Vec<W>,
    done_tx: &watch::Sender<bool>,
) -> ReceiverReport {
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = done_tx.send(true);
    let mut report = ReceiverReport::new();
    for r in readers {
        if let Ok(r) = r.await {
            report.merge(r);
        }
    }
    drop(writers);
    report
}

/// Runs traffic for `duration`, then stops sending and waits for every
/// answer and delivery (until `drain` passes with none arriving).
///
/// With `limit`, each user stops after that many messages and the run ends
/// when every user has (or at `duration`, whichever is first).
pub async fn run(
    participants: Vec<Participant>,
    load: Load,
    duration: Duration,
    limit: Option<u64>,
    drain: Duration,
) -> Outcome {
    let shared = Arc::new(Shared::default());
    let (done_tx, done_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let start_ns = now_ns();
    let start = tokio::time::Instant::now();
    let users = participants.len().max(1) as u64;
    let mut senders: Vec<JoinHandle<(Writer, Latency)>> = Vec::new();
    let mut readers: Vec<JoinHandle<ReceiverReport>> = Vec::new();
    let mut windows = Vec::new();
    let mut sending = 0u64;
    for p in participants {
        let (writer, reader) = p.conn.split();
        let ring = Arc::new(Ring::new());
        let window = match load {
            Load::Closed { window } => window.min(RING),
            Load::Open { .. } => RING,
        };
        let sem = Arc::new(Semaphore::new(window));
        windows.push(sem.clone());
        readers.push(tokio::spawn(receive(
            reader,
            shared.clone(),
            ring.clone(),
            sem.clone(),
            p.recipients,
            done_rx.clone(),
        )));
        let Some(to) = p.to else {
            // Receive-only: keep the write half open.
            senders.push(tokio::spawn(async move { (writer, Latency::new()) }));
            continue;
        };
        // Spread users over the first period so they do not send in step.
        let offset = match load {
            Load::Open { per_user } => {
                Duration::from_secs_f64((u64::from(p.idx) % users) as f64 / users as f64 / per_user)
            }
            Load::Closed { .. } => Duration::ZERO,
        };
        sending += 1;
        senders.push(tokio::spawn(send(
            writer,
            limit.unwrap_or(u64::MAX),
            p.idx,
            to,
            load,
            start + offset,
            start_ns + offset.as_nanos() as u64,
            ring,
            sem,
            shared.clone(),
            stop_rx.clone(),
        )));
    }
    while start.elapsed() < duration && shared.finished.load(Ordering::Acquire) < sending {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let send_secs = start.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    for w in &windows {
        w.close();
    }
    let mut writers = Vec::new();
    let mut send_lag = Latency::new();
    for s in senders {
        if let Ok((w, lag)) = s.await {
            writers.push(w);
            send_lag.add(&lag);
        }
    }
    // An overloaded server (open loop past its capacity) answers and
    // delivers seconds late but keeps going: wait as long as answers or
    // deliveries keep arriving, and give up only after `drain` without any
    // (or 8 × `drain` in all), so "lost" means lost, not late.
    let hard_deadline = Instant::now() + drain * 8;
    let mut last_progress = Instant::now();
    let mut seen = (u64::MAX, u64::MAX);
    let mut drain_timed_out = false;
    loop {
        let sent = shared.sent.load(Ordering::Acquire);
        let answered = shared.acked.load(Ordering::Acquire) + shared.failed.load(Ordering::Acquire);
        let expected = shared.expected.load(Ordering::Acquire);
        let delivered = shared.delivered.load(Ordering::Acquire);
        if answered >= sent && delivered >= expected {
            break;
        }
        if (answered, delivered) != seen {
            seen = (answered, delivered);
            last_progress = Instant::now();
        }
        if last_progress.elapsed() > drain || Instant::now() > hard_deadline {
            drain_timed_out = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = collect(readers, writers, &done_tx).await;
    Outcome {
        start_ns,
        send_secs,
        sent: shared.sent.load(Ordering::Acquire),
        acked: shared.acked.load(Ordering::Acquire),
        failed: shared.failed.load(Ordering::Acquire),
        expected: shared.expected.load(Ordering::Acquire),
        report,
        last_ack_ns: shared.last_ack_ns.load(Ordering::Acquire),
        last_delivery_ns: shared.last_delivery_ns.load(Ordering::Acquire),
        drain_timed_out,
        send_lag,
    }
}

#[allow(clippy::too_many_arguments)]
async fn send(
    mut writer: Writer,
    limit: u64,
    idx: u32,
    to: pb::Conversation,
    load: Load,
    first: tokio::time::Instant,
    first_ns: u64,
    ring: Arc<Ring>,
    window: Arc<Semaphore>,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) -> (Writer, Latency) {
    let mut lag = Latency::new();
    let mut seq: u64 = 0;
    loop {
        if *stop.borrow() {
            break;
        }
        if seq >= limit {
            shared.finished.fetch_add(1, Ordering::AcqRel);
            break;
        }
        let stamp = match load {
            Load::Closed { .. } => {
                match window.acquire().await {
                    Ok(p) => p.forget(),
                    Err(_) => break,
                }
                now_ns()
            }
            Load::Open { per_user } => {
                let period = 1.0 / per_user;
                let at = first + Duration::from_secs_f64(period * seq as f64);
                tokio::time::sleep_until(at).await;
                if *stop.borrow() {
                    break;
                }
                match window.acquire().await {
                    Ok(p) => p.forget(),
                    Err(_) => break,
                }
                let now = now_ns();
                let scheduled = first_ns + (period * seq as f64 * 1e9) as u64;
                lag.record_ns(now.saturating_sub(scheduled));
                now
            }
        };
        let body = conn::send_body(
            &to,
            format!("{idx}-{seq}"),
            seq,
            conn::payload(idx, seq, stamp),
        );
        ring.put(writer.peek_seq(), stamp);
        if writer.request(Command::Send, body).await.is_err() {
            break;
        }
        shared.sent.fetch_add(1, Ordering::AcqRel);
        seq += 1;
    }
    (writer, lag)
}

async fn receive(
    mut reader: Reader,
    shared: Arc<Shared>,
    ring: Arc<Ring>,
    window: Arc<Semaphore>,
    recipients: u64,
    mut done: watch::Receiver<bool>,
) -> ReceiverReport {
    let mut report = ReceiverReport::new();
    // Inbox versions (or group seqs) this device learnt of, from its own
    // acks and from pushes: holes between them are pushes that never came.
    let mut versions: Vec<u64> = Vec::new();
    loop {
        let frame = tokio::select! {
            f = reader.next() => f,
            _ = done.changed() => break,
        };
        let frame = match frame {
            Ok(Some(f)) => f,
            Ok(None) | Err(_) => {
                if let Err(e) = &frame {
                    eprintln!("bubble-bench: connection failed: {e}");
                }
                report.closed += 1;
                // Wait for the end so the join does not race the drain.
                let _ = done.changed().await;
                break;
            }
        };
        let now = now_ns();
        match frame.command {
            Command::SendAck => {
                if let Ok(ack) = pb::SendAck::decode(frame.body.clone()) {
                    versions.push(ack.version.max(ack.seq));
                }
                let sent = ring.get(frame.seq);
                report.ack.record_ns(now.saturating_sub(sent));
                shared.expected.fetch_add(recipients, Ordering::AcqRel);
                shared.acked.fetch_add(1, Ordering::AcqRel);
                shared.last_ack_ns.fetch_max(now, Ordering::AcqRel);
                window.add_permits(1);
            }
            Command::Error => {
                let e = pb::Error::decode(frame.body.clone()).unwrap_or_default();
                *report.errors.entry(e.code).or_default() += 1;
                if frame.seq != 0 {
                    shared.failed.fetch_add(1, Ordering::AcqRel);
                    window.add_permits(1);
                }
            }
            Command::Push => {
                let Ok(push) = pb::Push::decode(frame.body.clone()) else {
                    continue;
                };
                let Some(entry) = push.entry else { continue };
                versions.push(entry.version);
                if let Some(c) = entry.content {
                    delivered(&mut report, &shared, &c.body, now);
                }
            }
            Command::ChannelNotify => {
                let Ok(n) = pb::ChannelNotify::decode(frame.body.clone()) else {
                    continue;
                };
                versions.push(n.seq);
                if let Some(c) = n.entry.and_then(|e| e.content) {
                    delivered(&mut report, &shared, &c.body, now);
                }
            }
            _ => {}
        }
    }
    versions.sort_unstable();
    versions.dedup();
    report.gaps = versions.windows(2).map(|w| w[1] - w[0] - 1).sum();
    report
}

fn delivered(report: &mut ReceiverReport, shared: &Shared, body: &[u8], now: u64) {
    let Some((sender, seq, sent)) = conn::parse_payload(body) else {
        return;
    };
    report.e2e.record_ns(now.saturating_sub(sent));
    if report.seen.note(sender, seq) {
        shared.delivered.fetch_add(1, Ordering::AcqRel);
        shared.last_delivery_ns.fetch_max(now, Ordering::AcqRel);
    }
}

/// Super group: one member sends `messages` messages, one at a time; each
/// must reach every other member before the next. Returns, per message,
/// the milliseconds from its send to its arrival at the last member.
pub async fn one_to_all(
    sender: Established,
    receivers: Vec<Established>,
    group: &str,
    messages: u64,
    timeout: Duration,
) -> (Vec<f64>, Outcome) {
    let shared = Arc::new(Shared::default());
    let (done_tx, done_rx) = watch::channel(false);
    let fan_out = receivers.len() as u64;
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for conn in receivers {
        let (w, r) = conn.split();
        writers.push(w);
        readers.push(tokio::spawn(receive(
            r,
            shared.clone(),
            Arc::new(Ring::new()),
            Arc::new(Semaphore::new(0)),
            0,
            done_rx.clone(),
        )));
    }
    let (mut writer, reader) = sender.split();
    let ring = Arc::new(Ring::new());
    readers.push(tokio::spawn(receive(
        reader,
        shared.clone(),
        ring.clone(),
        Arc::new(Semaphore::new(0)),
        fan_out,
        done_rx.clone(),
    )));
    let to = conn::group(group);
    let start_ns = now_ns();
    let mut to_last = Vec::new();
    let mut timed_out = false;
    for k in 0..messages {
        let stamp = now_ns();
        ring.put(writer.peek_seq(), stamp);
        let body = conn::send_body(&to, format!("s-{k}"), k, conn::payload(0, k, stamp));
        if writer.request(Command::Send, body).await.is_err() {
            break;
        }
        shared.sent.fetch_add(1, Ordering::AcqRel);
        let target = (k + 1) * fan_out;
        let deadline = Instant::now() + timeout;
        while shared.delivered.load(Ordering::Acquire) < target {
            if Instant::now() > deadline {
                timed_out = true;
                break;
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        if timed_out {
            break;
        }
        let last = shared.last_delivery_ns.load(Ordering::Acquire);
        to_last.push(last.saturating_sub(stamp) as f64 / 1e6);
        // Let the acks and the server settle between messages.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let send_secs = (now_ns() - start_ns) as f64 / 1e9;
    let report = collect(readers, writers, &done_tx).await;
    let outcome = Outcome {
        start_ns,
        send_secs,
        sent: shared.sent.load(Ordering::Acquire),
        acked: shared.acked.load(Ordering::Acquire),
        failed: shared.failed.load(Ordering::Acquire),
        expected: shared.expected.load(Ordering::Acquire),
        report,
        last_ack_ns: shared.last_ack_ns.load(Ordering::Acquire),
        last_delivery_ns: shared.last_delivery_ns.load(Ordering::Acquire),
        drain_timed_out: timed_out,
        send_lag: Latency::new(),
    };
    (to_last, outcome)
}

/// What one device's sync from version 0 found.
pub struct Synced {
    /// Entries received.
    pub entries: u64,
    /// Message entries received (direction IN), checked for duplicates.
    pub seen: crate::stats::Seen,
    /// Pages asked for.
    pub pages: u64,
    /// Latency of each page.
    pub page_latency: Latency,
}

/// Pulls a device's whole inbox in pages of `limit`.
pub async fn sync_all(conn: Established, limit: u32) -> Result<Synced, ConnError> {
    let (mut writer, mut reader) = conn.split();
    let mut out = Synced {
        entries: 0,
        seen: crate::stats::Seen::default(),
        pages: 0,
        page_latency: Latency::new(),
    };
    let mut after = 0u64;
    loop {
        let started = now_ns();
        let body = pb::SyncRequest {
            after_version: after,
            limit,
        }
        .encode_to_vec();
        let seq = writer.request(Command::Sync, body).await?;
        let page = loop {
            let frame = reader
                .next()
                .await?
                .ok_or_else(|| ConnError::Protocol("closed during sync".into()))?;
            if frame.seq != seq {
                continue;
            }
            match frame.command {
                Command::SyncPage => {
                    break pb::SyncPage::decode(frame.body)
                        .map_err(|e| ConnError::Protocol(e.to_string()))?;
                }
                Command::Error => {
                    return Err(ConnError::Refused(
                        pb::Error::decode(frame.body).unwrap_or_default(),
                    ));
                }
                _ => continue,
            }
        };
        out.page_latency.record_ns(now_ns() - started);
        out.pages += 1;
        for e in &page.entries {
            out.entries += 1;
            after = after.max(e.version);
            if e.direction == pb::Direction::In as i32
                && let Some((s, q, _)) = e
                    .content
                    .as_ref()
                    .and_then(|c| conn::parse_payload(&c.body))
            {
                out.seen.note(s, q);
            }
        }
        if !page.has_more || page.entries.is_empty() {
            return Ok(out);
        }
    }
}
