//! One simulated user of the soak: it connects (a full handshake, later a
//! resumption with its ticket), sends on a fixed schedule, reads pushes,
//! pings, and when told drops its connection (a storm) or stops reading (a
//! slow consumer). After every reconnect it syncs its inbox from the last
//! version it holds, so that at the end every acknowledged message can be
//! checked: delivered exactly once, by push or by sync.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use tokio::sync::{mpsc, watch};
use tokio::time::{MissedTickBehavior, timeout};

use bubble_proto::secure::ResumeTicket;
use bubble_proto::{Command, Frame, pb};

use crate::conn::{self, ConnError, Established, Reader, Target, Writer};
use crate::stats::{Latency, Seen, now_ns};

/// What a user does in the soak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 1:1 with its partner at a steady rate; its pushes are timed.
    Pair,
    /// Member of a normal group, sends to it now and then.
    Group,
    /// Online member of the super group (receives only).
    SuperMember,
    /// The super group's one sender.
    SuperSender,
    /// Stops reading from time to time while its flooder sends to it.
    Slow,
    /// Sends padded messages to one slow consumer.
    Flooder,
}

impl Kind {
    /// Whether its messages live in its inbox (synced after a reconnect);
    /// super group members read the group's log instead and are checked on
    /// pushes alone.
    fn has_inbox(self) -> bool {
        !matches!(self, Kind::SuperMember | Kind::SuperSender)
    }
}

/// Who a user is and what it sends.
pub struct Spec {
    /// Carried in every payload as the sender.
    pub idx: u32,
    /// User id.
    pub user: String,
    /// Its token.
    pub token: String,
    /// Its role.
    pub kind: Kind,
    /// Where it sends (None: never).
    pub to: Option<pb::Conversation>,
    /// Messages a second.
    pub rate: f64,
    /// Payload size in bytes (0: just the stamp).
    pub size: usize,
    /// Who should receive what it sends (the audit's list).
    pub receivers: Vec<u32>,
}

/// What the controller tells a user.
#[derive(Debug, Clone, Copy)]
pub enum Control {
    /// Drop the connection now and reconnect (resume) at once.
    Drop,
    /// Stop reading (and writing) for this long, then find out whether the
    /// server reset the connection, and reconnect either way.
    Stall(Duration),
}

/// The run's phase, moved forward by the soak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Connecting; nobody sends yet.
    Warmup,
    /// Traffic.
    Run,
    /// Sending stopped; answers and pushes still come in.
    Quiesce,
    /// Everyone syncs one last time and hands in its ledger.
    Stop,
}

/// Counters every user adds to (totals since the start).
#[derive(Default)]
pub struct Counters {
    /// Users connected at least once.
    pub ready: AtomicU64,
    /// Sends written.
    pub sent: AtomicU64,
    /// Sends acknowledged.
    pub acked: AtomicU64,
    /// Sends answered with an error.
    pub failed: AtomicU64,
    /// Sends whose connection dropped before an answer (outcome unknown).
    pub unanswered: AtomicU64,
    /// Messages received for the first time by push.
    pub pushed: AtomicU64,
    /// Messages received for the first time by sync.
    pub synced: AtomicU64,
    /// Entries received again (a sync overlapping pushes: not duplicates).
    pub redelivered: AtomicU64,
    /// Reconnections after the first connection.
    pub reconnects: AtomicU64,
    /// Of those, resumed with a ticket.
    pub resumed: AtomicU64,
    /// Resumptions refused (then a full handshake).
    pub resume_refused: AtomicU64,
    /// Connection attempts that failed.
    pub connect_failed: AtomicU64,
    /// Connections the server closed (or that broke) unasked.
    pub closed_by_server: AtomicU64,
    /// Syncs that failed (retried on a new connection).
    pub sync_failed: AtomicU64,
    /// Slow consumers' stalls.
    pub stalls: AtomicU64,
    /// Stalls that ended with the server having reset the connection.
    pub stall_reset: AtomicU64,
    /// Stalls after which the connection was still alive.
    pub stall_survived: AtomicU64,
    /// Storm drops done.
    pub storm_drops: AtomicU64,
}

impl Counters {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// A counter's value.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// What every user shares.
pub struct Ctx {
    /// The TCP gate.
    pub target: Target,
    /// The same with a small receive buffer, for slow consumers.
    pub slow_target: Target,
    /// Source addresses to spread over.
    pub sources: usize,
    /// Totals.
    pub counters: Counters,
    /// 1:1 end-to-end latency of the current interval (the sampler swaps it).
    pub pair_latency: Mutex<Latency>,
    /// The phase.
    pub phase: watch::Receiver<Phase>,
    /// Why the server closed connections (the messages of its last error
    /// frames), and how often.
    pub last_words: Mutex<std::collections::BTreeMap<String, u64>>,
}

/// Which entries (by version, or by seq in the super group's log) a user
/// has, and which messages they carried.
#[derive(Default)]
pub struct Inbox {
    versions: Vec<u64>,
    /// Every version up to this one is known (where the next sync starts).
    pub watermark: u64,
    /// Messages received, by sender and seq.
    pub seen: Seen,
    /// Messages received under two different versions: stored twice.
    pub duplicates: u64,
}

/// What receiving one entry meant.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A message not seen before.
    New,
    /// An entry already held (a sync page overlapping pushes).
    Again,
    /// The same message under another version: the server stored it twice.
    Duplicate,
}

impl Inbox {
    /// Notes version `v` as held; false if it already was.
    pub fn hold(&mut self, v: u64) -> bool {
        let (word, bit) = ((v / 64) as usize, v % 64);
        if self.versions.len() <= word {
            self.versions.resize(word + 1, 0);
        }
        if self.versions[word] & (1 << bit) != 0 {
            return false;
        }
        self.versions[word] |= 1 << bit;
        while self.holds(self.watermark + 1) {
            self.watermark += 1;
        }
        true
    }

    fn holds(&self, v: u64) -> bool {
        self.versions
            .get((v / 64) as usize)
            .is_some_and(|w| w & (1 << (v % 64)) != 0)
    }

    /// Message `seq` of `sender` received as version `v`.
    pub fn receive(&mut self, v: u64, sender: u32, seq: u64) -> Received {
        if !self.hold(v) {
            return Received::Again;
        }
        if self.seen.note(sender, seq) {
            Received::New
        } else {
            self.duplicates += 1;
            Received::Duplicate
        }
    }
}

/// A user's state, handed back at the end for the audit.
pub struct Client {
    /// Who it is.
    pub spec: Spec,
    /// Its own messages that were acknowledged, by seq.
    pub acked: Seen,
    /// What it received.
    pub inbox: Inbox,
    ticket: Option<ResumeTicket>,
    next_seq: u64,
}

/// How one connection ended.
enum End {
    Stop,
    Drop,
    Stall(Duration),
    Closed,
}

/// Sends in flight on one connection: request seq to (message seq, stamp).
type Pending = HashMap<u32, (u64, u64)>;

const SYNC_PAGE: u32 = 500;
/// Longest a slow consumer reads its backlog before judging its connection.
const STALL_DRAIN: Duration = Duration::from_secs(20);
/// A push younger than this is live traffic, not backlog.
const LIVE: Duration = Duration::from_secs(1);
const PING_EVERY: Duration = Duration::from_secs(30);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

impl Client {
    /// A user not yet connected.
    pub fn new(spec: Spec) -> Client {
        Client {
            spec,
            acked: Seen::default(),
            inbox: Inbox::default(),
            ticket: None,
            next_seq: 0,
        }
    }

    /// Messages it sent (its next seq).
    pub fn sent(&self) -> u64 {
        self.next_seq
    }

    /// Lives until the phase reaches [`Phase::Stop`], then syncs one last
    /// time and returns itself.
    pub async fn run(mut self, ctx: Arc<Ctx>, mut control: mpsc::Receiver<Control>) -> Client {
        let mut phase = ctx.phase.clone();
        let period = Duration::from_secs_f64(1.0 / self.spec.rate.max(1e-3));
        // Spread the users over one period so they do not send in step.
        let offset = period.mul_f64((self.spec.idx % 97) as f64 / 97.0);
        let mut send_tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
        send_tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut ping_tick = tokio::time::interval(PING_EVERY);
        ping_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let sends = self.spec.to.is_some() && self.spec.rate > 0.0;
        let mut first = true;
        let mut controlled = true;
        loop {
            let stopping = *phase.borrow() == Phase::Stop;
            let est = match self.connect(&ctx).await {
                Ok(e) => e,
                Err(e) => {
                    Counters::add(&ctx.counters.connect_failed, 1);
                    if Counters::get(&ctx.counters.connect_failed) <= 5 {
                        eprintln!("bubble-bench: soak: {} cannot connect: {e}", self.spec.user);
                    }
                    if stopping {
                        return self;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if first {
                Counters::add(&ctx.counters.ready, 1);
                first = false;
            } else {
                Counters::add(&ctx.counters.reconnects, 1);
            }
            let (mut w, mut r) = est.split();
            let mut pending = Pending::new();
            if self.spec.kind.has_inbox()
                && let Err(e) = self.sync(&ctx, &mut w, &mut r, &mut pending).await
            {
                Counters::add(&ctx.counters.sync_failed, 1);
                eprintln!("bubble-bench: soak: {} sync failed: {e}", self.spec.user);
                self.forget(&ctx, &mut pending);
                if stopping {
                    return self;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            if stopping {
                return self;
            }
            let end = loop {
                tokio::select! {
                    changed = phase.changed() => {
                        if changed.is_err() || *phase.borrow() == Phase::Stop {
                            break End::Stop;
                        }
                    }
                    c = control.recv(), if controlled => match c {
                        Some(Control::Drop) => break End::Drop,
                        Some(Control::Stall(d)) => break End::Stall(d),
                        None => controlled = false,
                    },
                    _ = send_tick.tick(), if sends && *phase.borrow() == Phase::Run => {
                        if self.send(&ctx, &mut w, &mut pending).await.is_err() {
                            break End::Closed;
                        }
                    }
                    _ = ping_tick.tick() => {
                        let ping = pb::Ping { client_time: bubble_core::now_millis() };
                        if w.request(Command::Ping, ping.encode_to_vec()).await.is_err() {
                            break End::Closed;
                        }
                    }
                    frame = r.next() => match frame {
                        Ok(Some(f)) => self.on_frame(&ctx, f, &mut pending, true),
                        Ok(None) | Err(_) => break End::Closed,
                    },
                }
            };
            match end {
                End::Stop => {
                    // The last sync, on this connection when it still works.
                    if self.spec.kind.has_inbox()
                        && self.sync(&ctx, &mut w, &mut r, &mut pending).await.is_err()
                    {
                        Counters::add(&ctx.counters.sync_failed, 1);
                        self.forget(&ctx, &mut pending);
                        continue;
                    }
                    return self;
                }
                End::Drop => {
                    Counters::add(&ctx.counters.storm_drops, 1);
                    self.forget(&ctx, &mut pending);
                }
                End::Closed => {
                    Counters::add(&ctx.counters.closed_by_server, 1);
                    self.forget(&ctx, &mut pending);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                End::Stall(d) => {
                    Counters::add(&ctx.counters.stalls, 1);
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = phase.wait_for(|p| *p == Phase::Stop) => {}
                    }
                    // Read what the socket still holds: its end (a reset)
                    // means the server gave up on us, as it should; a push
                    // sent less than a second ago means we caught up with
                    // live traffic on a connection that survived. Bounded,
                    // and short of the heartbeat timeout: a drain that went
                    // on while the flooder sends would end in the server's
                    // heartbeat close, not its write deadline.
                    let draining = tokio::time::Instant::now();
                    let reset = loop {
                        if draining.elapsed() > STALL_DRAIN {
                            break false;
                        }
                        match timeout(Duration::from_secs(3), r.next()).await {
                            Ok(Ok(Some(f))) => {
                                let live = push_age(&f).is_some_and(|age| age < LIVE);
                                self.on_frame(&ctx, f, &mut pending, false);
                                if live {
                                    break false;
                                }
                            }
                            Ok(Ok(None) | Err(_)) => break true,
                            Err(_) => break false,
                        }
                    };
                    let counter = if reset {
                        &ctx.counters.stall_reset
                    } else {
                        &ctx.counters.stall_survived
                    };
                    Counters::add(counter, 1);
                    self.forget(&ctx, &mut pending);
                }
            }
        }
    }

    /// Sends whose answers will never come on this connection.
    fn forget(&self, ctx: &Ctx, pending: &mut Pending) {
        Counters::add(&ctx.counters.unanswered, pending.len() as u64);
        pending.clear();
    }

    /// Resumes with the ticket when there is one (a refused ticket falls
    /// back to a full handshake), else a full handshake.
    async fn connect(&mut self, ctx: &Ctx) -> Result<Established, ConnError> {
        let target = if self.spec.kind == Kind::Slow {
            &ctx.slow_target
        } else {
            &ctx.target
        };
        let source = crate::traffic::source(self.spec.idx as usize, ctx.sources);
        let mut est = None;
        if let Some(ticket) = self.ticket.take() {
            match conn::connect_resume(target, source, "d1", &ticket).await {
                Ok(e) => {
                    Counters::add(&ctx.counters.resumed, 1);
                    est = Some(e);
                }
                Err(ConnError::Refused(_)) => {
                    Counters::add(&ctx.counters.resume_refused, 1);
                }
                Err(e) => {
                    self.ticket = Some(ticket);
                    return Err(e);
                }
            }
        }
        let mut est = match est {
            Some(e) => e,
            None => conn::connect_full(target, source, "d1", &self.spec.token).await?,
        };
        if let Some(t) = est.ticket.take() {
            self.ticket = Some(t);
        }
        Ok(est)
    }

    async fn send(
        &mut self,
        ctx: &Ctx,
        w: &mut Writer,
        pending: &mut Pending,
    ) -> Result<(), ConnError> {
        let Some(to) = &self.spec.to else {
            return Ok(());
        };
        if pending.len() >= 512 {
            // The server stopped answering this connection: do not pile on.
            return Ok(());
        }
        let (seq, stamp) = (self.next_seq, now_ns());
        let body = conn::send_body(
            to,
            format!("{}-{seq}", self.spec.idx),
            seq,
            conn::padded_payload(self.spec.idx, seq, stamp, self.spec.size),
        );
        pending.insert(w.peek_seq(), (seq, stamp));
        self.next_seq += 1;
        Counters::add(&ctx.counters.sent, 1);
        w.request(Command::Send, body).await.map(|_| ())
    }

    /// One frame from the server: an answer, a push, or anything else.
    fn on_frame(&mut self, ctx: &Ctx, frame: Frame, pending: &mut Pending, reading: bool) {
        let now = now_ns();
        match frame.command {
            Command::SendAck => {
                let Some((seq, _)) = pending.remove(&frame.seq) else {
                    return;
                };
                self.acked.note(self.spec.idx, seq);
                Counters::add(&ctx.counters.acked, 1);
                if let Ok(ack) = pb::SendAck::decode(frame.body)
                    && self.spec.kind.has_inbox()
                    && ack.version > 0
                {
                    self.inbox.hold(ack.version);
                }
            }
            Command::Error if frame.seq == 0 => {
                // The server's last word before it closes: why it did.
                let e = pb::Error::decode(frame.body).unwrap_or_default();
                if let Ok(mut words) = ctx.last_words.lock() {
                    *words.entry(e.message).or_default() += 1;
                }
            }
            Command::Error => {
                let refused_send = pending.remove(&frame.seq).is_some();
                Counters::add(&ctx.counters.failed, u64::from(refused_send));
            }
            Command::Push => {
                let Some(entry) = pb::Push::decode(frame.body).ok().and_then(|p| p.entry) else {
                    return;
                };
                self.on_entry(ctx, &entry, true, reading.then_some(now));
            }
            Command::ChannelNotify => {
                let Ok(n) = pb::ChannelNotify::decode(frame.body) else {
                    return;
                };
                let body = n.entry.and_then(|e| e.content).map(|c| c.body);
                if let Some((sender, seq, _)) = body.as_deref().and_then(conn::parse_payload) {
                    let got = self.inbox.receive(n.seq, sender, seq);
                    count(ctx, got, true);
                }
            }
            _ => {}
        }
    }

    /// An inbox entry, pushed or synced. `timed_at`: when it was read, for
    /// a 1:1 push read as it arrived (the latency sample).
    fn on_entry(&mut self, ctx: &Ctx, entry: &pb::Entry, pushed: bool, timed_at: Option<u64>) {
        let payload = entry
            .content
            .as_ref()
            .and_then(|c| conn::parse_payload(&c.body));
        match payload {
            Some((sender, seq, stamp)) if entry.direction == pb::Direction::In as i32 => {
                let got = self.inbox.receive(entry.version, sender, seq);
                if got == Received::New
                    && self.spec.kind == Kind::Pair
                    && let Some(now) = timed_at
                    && let Ok(mut h) = ctx.pair_latency.lock()
                {
                    h.record_ns(now.saturating_sub(stamp));
                }
                count(ctx, got, pushed);
            }
            _ => {
                self.inbox.hold(entry.version);
            }
        }
    }

    /// Pulls every entry after the watermark; pushes and answers that
    /// arrive meanwhile are handled as usual.
    async fn sync(
        &mut self,
        ctx: &Ctx,
        w: &mut Writer,
        r: &mut Reader,
        pending: &mut Pending,
    ) -> Result<(), ConnError> {
        let mut after = self.inbox.watermark;
        loop {
            let body = pb::SyncRequest {
                after_version: after,
                limit: SYNC_PAGE,
            }
            .encode_to_vec();
            let seq = w.request(Command::Sync, body).await?;
            let page = loop {
                let frame = timeout(ANSWER_TIMEOUT, r.next())
                    .await
                    .map_err(|_| ConnError::Protocol("no sync page in 30 s".into()))??
                    .ok_or_else(|| ConnError::Protocol("closed during sync".into()))?;
                if frame.seq == seq && frame.command == Command::SyncPage {
                    break pb::SyncPage::decode(frame.body)
                        .map_err(|e| ConnError::Protocol(e.to_string()))?;
                }
                if frame.seq == seq && frame.command == Command::Error {
                    return Err(ConnError::Refused(
                        pb::Error::decode(frame.body).unwrap_or_default(),
                    ));
                }
                self.on_frame(ctx, frame, pending, true);
            };
            for e in &page.entries {
                after = after.max(e.version);
                self.on_entry(ctx, e, false, None);
            }
            if !page.has_more || page.entries.is_empty() {
                // Everything up to here is held now; holes below are the
                // store's own gaps, never to be filled.
                self.inbox.watermark = self.inbox.watermark.max(after);
                return Ok(());
            }
        }
    }
}

/// How long ago a pushed message was sent (bench clock), if `frame` is
/// one.
fn push_age(frame: &Frame) -> Option<Duration> {
    if frame.command != Command::Push {
        return None;
    }
    let entry = pb::Push::decode(frame.body.clone()).ok()?.entry?;
    let (_, _, stamp) = conn::parse_payload(&entry.content?.body)?;
    Some(Duration::from_nanos(now_ns().saturating_sub(stamp)))
}

/// Adds one received entry to the totals.
fn count(ctx: &Ctx, got: Received, pushed: bool) {
    let c = &ctx.counters;
    match got {
        Received::New if pushed => Counters::add(&c.pushed, 1),
        Received::New => Counters::add(&c.synced, 1),
        Received::Again => Counters::add(&c.redelivered, 1),
        // Counted per inbox for the audit.
        Received::Duplicate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_received_twice_under_one_version_is_not_a_duplicate() {
        let mut inbox = Inbox::default();
        assert_eq!(inbox.receive(1, 7, 0), Received::New);
        assert_eq!(inbox.receive(1, 7, 0), Received::Again, "push, then sync");
        assert_eq!(inbox.duplicates, 0);
    }

    #[test]
    fn one_message_under_two_versions_is_a_duplicate() {
        let mut inbox = Inbox::default();
        assert_eq!(inbox.receive(1, 7, 0), Received::New);
        assert_eq!(inbox.receive(2, 7, 0), Received::Duplicate);
        assert_eq!(inbox.duplicates, 1);
    }

    #[test]
    fn the_watermark_is_the_end_of_the_unbroken_run_of_versions() {
        let mut inbox = Inbox::default();
        inbox.hold(1);
        inbox.hold(3);
        assert_eq!(inbox.watermark, 1, "2 is missing: sync from 1");
        inbox.hold(2);
        assert_eq!(inbox.watermark, 3);
        assert!(!inbox.hold(2), "held already");
    }
}
