//! One client connection, from the first byte to the close.
//!
//! 1. [`serve`] gets a connection already admitted (see
//!    [`super::transport`]), with its slots and its handshake deadline.
//! 2. It runs the [`handshake`](super::handshake) by the deadline (full, or
//!    resumption with a ticket) and registers the session.
//! 3. [`Handler::run`] is then one loop: read requests (run them
//!    concurrently, bounded), write answers and pushes (batched per flush),
//!    check heartbeats, and drain on shutdown.
//!
//! Every failure closes this connection only, after an error frame where the
//! peer can still read one, and on WebSocket with a close frame.

use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};

use bubble_core::ports::Identity;
use bubble_core::push::{PushEvent, SessionQueue};
use bubble_core::{AppId, DeviceId, Session, UserId, now_millis};
use bubble_proto::secure::{Established, RecordOpener, RecordSealer, SecureChannel, SessionInfo};
use bubble_proto::{Command, Frame, pb};

use super::Gate;
use super::admission::Ticket;
use super::cmd::{PageBytes, Request, error_frame, ping::Ping, protocol_error};
use super::connection::{CloseReason, ConnError, FrameConnection};
use super::handshake;
use super::limits::{TokenBucket, TypingThrottle};
use super::push::push_frame;

/// One unit of a gauge, held until dropped, however the task holding it
/// ends (open connections, requests in flight).
struct Held(prometheus_client::metrics::gauge::Gauge);

impl Held {
    fn new(gauge: &prometheus_client::metrics::gauge::Gauge) -> Held {
        gauge.inc();
        Held(gauge.clone())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Sends `last` (when there is one) and closes the connection.
async fn close(conn: &mut dyn FrameConnection, last: Option<Frame>, reason: CloseReason) {
    if let Some(frame) = last {
        let _ = conn.write_frame(frame).await;
    }
    let _ = conn.close(reason).await;
}

/// Serves one admitted connection to its end: the handshake must be done
/// by `deadline`, and `ticket` holds the connection's slots until it ends.
pub async fn serve(
    gate: Arc<Gate>,
    mut conn: Box<dyn FrameConnection>,
    peer: SocketAddr,
    ticket: Ticket,
    deadline: tokio::time::Instant,
) {
    let _gauge = Held::new(&gate.metrics.connections);
    // Dropped before the gauge: once the gauge says a connection is gone,
    // its slots are free.
    let mut ticket = ticket;

    // Boxed: the handshake's state (~4 KiB) is freed once it is done instead
    // of staying reserved in this task for the connection's whole life.
    let handshake = handshake::run(&gate, conn.as_mut(), peer, deadline);
    let (established, seq) = match Box::pin(handshake).await {
        Ok(done) => done,
        Err(refused) => {
            gate.metrics.handshakes_failed.inc();
            close(conn.as_mut(), refused.answer, refused.reason).await;
            return;
        }
    };
    ticket.authenticated();
    // Keep only what the session needs, and free the rest now: this task
    // lives as long as the connection, and an idle connection's memory is
    // what caps how many a box holds.
    let answer = established.answer_frame(seq);
    let (channel, info) = unbox(established);
    let (sealer, opener) = channel.split();
    let identity = Identity {
        app: AppId::new(&info.app_id),
        user: UserId::new(&info.user),
        expires_at: info.identity_expires_at_ms as i64,
    };
    // Register before answering: once the client holds the answer, its
    // session is live (routes, login policy), so nothing races it.
    let (session, queue) = match gate
        .engine
        .connect(&identity, &DeviceId::new(&info.device_id), &info.platform)
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "session registration failed");
            let reason = if e.is_retryable() {
                CloseReason::TryAgainLater
            } else {
                CloseReason::PolicyViolation
            };
            close(conn.as_mut(), Some(error_frame(seq, &e)), reason).await;
            return;
        }
    };
    drop(info);
    let sent = conn.write_frame(answer).await.is_ok() && conn.flush().await.is_ok();
    if !sent {
        let _ = gate.engine.disconnect(&session).await;
        return;
    }
    tracing::debug!(%peer, app = %session.app, user = %session.user, device = %session.device, "session open");
    Handler::new(gate.clone(), conn, sealer, opener, session.clone(), queue)
        .run()
        .await;
    if let Err(e) = gate.engine.disconnect(&session).await {
        tracing::warn!(error = %e, "presence cleanup failed; the route expires by itself");
    }
}

/// Takes the record state and the session out of the handshake's result,
/// freeing its box here rather than when the caller's scope ends.
fn unbox(established: Box<Established>) -> (SecureChannel, SessionInfo) {
    let Established {
        channel, session, ..
    } = *established;
    (channel, session)
}

/// How a session ends: a last frame for the client (an error, sealed), and
/// the close.
struct Closing {
    last: Option<Frame>,
    reason: CloseReason,
}

impl Closing {
    /// Closes without a last word (the peer left, or cannot be written to).
    fn quietly(reason: CloseReason) -> Closing {
        Closing { last: None, reason }
    }

    /// `GOING_AWAY`: reconnect (elsewhere) and sync.
    fn going_away(message: &str) -> Closing {
        Closing {
            last: Some(protocol_error(0, pb::ErrorCode::GoingAway, message, true)),
            reason: CloseReason::GoingAway,
        }
    }

    /// `MALFORMED_FRAME` for request `seq`: the peer broke the protocol.
    fn malformed(seq: u32, message: impl Into<String>) -> Closing {
        Closing {
            last: Some(protocol_error(
                seq,
                pb::ErrorCode::MalformedFrame,
                message,
                false,
            )),
            reason: CloseReason::ProtocolError,
        }
    }
}

/// What the session loop does after one event.
type Step = ControlFlow<Closing>;

/// One established session: the connection, its record keys, the session
/// and its push queue, the answers of requests in flight, and the limits
/// the client is held to.
pub struct Handler {
    /// What every connection shares: engine, limits, metrics, shutdown.
    gate: Arc<Gate>,
    /// The frames, TCP or WebSocket.
    conn: Box<dyn FrameConnection>,
    /// Seals what we send. Boxed with the opener (~1.3 KiB together) so the
    /// task, held for the connection's whole life, stays small.
    sealer: Box<RecordSealer>,
    /// Opens what the client sends; a record that fails ends the session.
    opener: Box<RecordOpener>,
    /// Who is connected.
    session: Session,
    /// Pushes for this session; closed by the engine when it overflows.
    queue: SessionQueue,
    /// Where request tasks put their answers. Made on the first request:
    /// an idle connection (pings are answered inline) then holds no answer
    /// queue (~2 KiB each).
    answers_tx: Option<mpsc::Sender<Frame>>,
    /// The other end, read by the loop.
    answers_rx: Option<mpsc::Receiver<Frame>>,
    /// Requests in flight; a full window stops reading (backpressure).
    in_flight: Arc<Semaphore>,
    /// The request rate of this connection.
    bucket: TokenBucket,
    /// Typing notices, one per conversation per interval.
    typing: TypingThrottle,
    /// When the client was last heard from (heartbeat timeout).
    last_seen: Instant,
    /// A write missed its deadline (counted once).
    stalled: bool,
}

impl Handler {
    /// A handler for an established session.
    pub fn new(
        gate: Arc<Gate>,
        conn: Box<dyn FrameConnection>,
        sealer: RecordSealer,
        opener: RecordOpener,
        session: Session,
        queue: SessionQueue,
    ) -> Handler {
        let limits = &gate.limits;
        Handler {
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
            bucket: TokenBucket::new(limits.requests_per_second, limits.request_burst),
            typing: TypingThrottle::default(),
            gate,
            conn,
            sealer: Box::new(sealer),
            opener: Box::new(opener),
            session,
            queue,
            answers_tx: None,
            answers_rx: None,
            last_seen: Instant::now(),
            stalled: false,
        }
    }

    /// Serves the session until the client leaves, breaks the protocol,
    /// falls behind or goes silent, or the server shuts down; then drains
    /// the requests already accepted and closes.
    pub async fn run(mut self) {
        let mut heartbeat = tokio::time::interval(self.gate.limits.heartbeat_timeout / 3);
        heartbeat.tick().await;
        let closing = loop {
            let step = tokio::select! {
                read = self.conn.read_frame() => self.on_read(read).await,
                Some(answer) = next_answer(&mut self.answers_rx) => self.write_answers(answer).await,
                pushed = self.queue.rx.recv() => self.write_pushes(pushed).await,
                _ = heartbeat.tick() => self.check_heartbeat(),
                _ = self.gate.shutdown.cancelled() => {
                    Step::Break(Closing::going_away("server shutting down; reconnect to another gate"))
                }
            };
            if let Step::Break(closing) = step {
                break closing;
            }
        };
        self.drain(closing).await;
    }

    /// One read: a request to run, a ping or an unknown command to answer
    /// inline, or the end of the session.
    async fn on_read(&mut self, read: Result<Option<Frame>, ConnError>) -> Step {
        let frame = match read {
            Ok(Some(frame)) => frame,
            Ok(None) => return Step::Break(Closing::quietly(CloseReason::Normal)),
            Err(ConnError::Malformed { seq, message }) => {
                self.gate.metrics.malformed_frames.inc();
                return Step::Break(Closing::malformed(seq, message));
            }
            Err(ConnError::Broken(_) | ConnError::Stalled) => {
                return Step::Break(Closing::quietly(CloseReason::Normal));
            }
        };
        self.last_seen = Instant::now();
        let Ok(frame) = self.opener.open(&frame) else {
            // A replayed, reordered or forged record: the stream is no longer trustworthy.
            self.gate.metrics.malformed_frames.inc();
            return Step::Break(Closing::malformed(
                frame.seq,
                "record failed authentication",
            ));
        };
        if !self.bucket.take() {
            self.gate.metrics.rate_limited.inc();
            let answer = protocol_error(
                frame.seq,
                pb::ErrorCode::RateLimited,
                "too many requests on this connection; slow down",
                true,
            );
            return self.answer_now(answer).await;
        }
        match frame.command {
            Command::Ping => {
                let pong = Ping::parse(&frame).apply(&self.gate.engine, &self.session);
                self.answer_now(pong.into_frame(frame.seq)).await
            }
            Command::Typing if !self.typing.allow(&frame.body) => {
                // A hint sent again too soon: dropped, as it has no answer.
                Step::Continue(())
            }
            Command::Unknown(code) => {
                // A newer client's command: say so and keep the connection.
                self.gate.metrics.malformed_frames.inc();
                let answer = protocol_error(
                    frame.seq,
                    pb::ErrorCode::UnknownCommand,
                    format!("command {code} is unknown to this server"),
                    false,
                );
                self.answer_now(answer).await
            }
            _ => self.spawn_request(frame).await,
        }
    }

    /// Runs a request in its own task, within the in-flight window; its
    /// answer comes back through the answer queue.
    async fn spawn_request(&mut self, frame: Frame) -> Step {
        let permit = tokio::select! {
            p = self.in_flight.clone().acquire_owned() => p.expect("never closed"),
            _ = self.gate.shutdown.cancelled() => {
                return Step::Break(Closing::going_away("server shutting down; reconnect to another gate"));
            }
        };
        let tx = self.answer_sender();
        let max_body = self.gate.limits.max_frame_bytes;
        let page = PageBytes::for_frames(max_body);
        let engine = self.gate.engine.clone();
        let session = self.session.clone();
        let media = self.gate.media.clone();
        let metrics = self.gate.metrics.clone();
        let in_flight = Held::new(&metrics.requests_in_flight);
        tokio::spawn(async move {
            let seq = frame.seq;
            let started = Instant::now();
            let outcome = match Request::parse(&frame) {
                Ok(request) => {
                    let is_send = request.is_send();
                    // Boxed: the future of `apply_with` is as large as the
                    // largest request's state (3,848 bytes), and a task is
                    // moved and rewritten whole when it is spawned and when
                    // it ends (a profile of 1:1 sends put 4-5% of the
                    // workers in those copies); boxed, the task holds a
                    // pointer.
                    let run =
                        Box::pin(request.apply_with(&engine, &session, page, media.as_deref()));
                    let outcome = within_deadline(&engine, &metrics, run).await;
                    if is_send && outcome.is_ok() {
                        metrics.messages_in.inc();
                        metrics.send_latency.observe(started.elapsed());
                    }
                    outcome
                }
                Err(e) => Err(e),
            };
            let answer = match outcome {
                Ok(reply) => reply.map(|r| within_frame(r.into_frame(seq), max_body)),
                Err(e) => {
                    metrics.error(e.kind());
                    Some(error_frame(seq, &e))
                }
            };
            if let Some(answer) = answer {
                let _ = tx.send(answer).await;
            }
            drop((in_flight, permit));
        });
        Step::Continue(())
    }

    /// The answer queue's sender, made on first use.
    fn answer_sender(&mut self) -> mpsc::Sender<Frame> {
        let capacity = self.gate.limits.max_in_flight * 2;
        let rx = &mut self.answers_rx;
        self.answers_tx
            .get_or_insert_with(|| {
                let (tx, new_rx) = mpsc::channel::<Frame>(capacity);
                *rx = Some(new_rx);
                tx
            })
            .clone()
    }

    /// Seals and queues one frame; false when the connection is broken.
    async fn send(&mut self, frame: &Frame) -> bool {
        match self.sealer.seal(frame) {
            Ok(sealed) => {
                let written = self.conn.write_frame(sealed).await;
                self.written(written)
            }
            Err(e) => {
                tracing::warn!(error = %e, "sealing a record failed");
                false
            }
        }
    }

    /// Sends everything queued; false when the connection is broken.
    async fn flush(&mut self) -> bool {
        let flushed = self.conn.flush().await;
        self.written(flushed)
    }

    /// Whether a write went out. A peer that stopped reading is counted
    /// once; the connection then fails every write at once and resets.
    fn written(&mut self, result: Result<(), ConnError>) -> bool {
        match result {
            Ok(()) => true,
            Err(ConnError::Stalled) => {
                if !self.stalled {
                    self.stalled = true;
                    self.gate.metrics.write_timeouts.inc();
                }
                false
            }
            Err(_) => false,
        }
    }

    /// Sends one answer at once (pings, refusals): the loop goes on unless
    /// the connection broke.
    async fn answer_now(&mut self, answer: Frame) -> Step {
        if self.send(&answer).await && self.flush().await {
            Step::Continue(())
        } else {
            Step::Break(Closing::quietly(CloseReason::Normal))
        }
    }

    /// Writes an answer and every other one ready, then flushes once.
    async fn write_answers(&mut self, first: Frame) -> Step {
        let mut ok = self.send(&first).await;
        while ok {
            match self.answers_rx.as_mut().map(|rx| rx.try_recv()) {
                Some(Ok(more)) => ok = self.send(&more).await,
                _ => break,
            }
        }
        if ok && self.flush().await {
            Step::Continue(())
        } else {
            Step::Break(Closing::quietly(CloseReason::Normal))
        }
    }

    /// Writes a push and every other one queued, then flushes once. A
    /// closed queue is a slow consumer (it overflowed) or a replaced session.
    async fn write_pushes(&mut self, pushed: Option<Box<PushEvent>>) -> Step {
        let Some(event) = pushed else {
            if self
                .queue
                .overflowed
                .load(std::sync::atomic::Ordering::Acquire)
            {
                self.gate.metrics.slow_consumers.inc();
                return Step::Break(Closing::going_away(
                    "you read too slowly; reconnect and sync",
                ));
            }
            return Step::Break(Closing::quietly(CloseReason::Normal));
        };
        let (mut ok, mut kicked) = self.write_push(event).await;
        while ok && !kicked {
            match self.queue.rx.try_recv() {
                Ok(more) => (ok, kicked) = self.write_push(more).await,
                Err(_) => break,
            }
        }
        if !ok || !self.flush().await {
            Step::Break(Closing::quietly(CloseReason::Normal))
        } else if kicked {
            // The kick frame is out: the session is over.
            Step::Break(Closing::quietly(CloseReason::Normal))
        } else {
            Step::Continue(())
        }
    }

    /// Writes one push; whether it went out, and whether it was a kick.
    async fn write_push(&mut self, event: Box<PushEvent>) -> (bool, bool) {
        let event = *event;
        if let PushEvent::Entry { entry, .. } = &event {
            let delay = now_millis() - entry.server_time;
            self.gate
                .metrics
                .push_delay
                .observe(Duration::from_millis(delay.max(0) as u64));
        }
        let (frame, kick) = push_frame(&self.session.app, event);
        self.gate.metrics.pushes_out.inc();
        (self.send(&frame).await, kick)
    }

    /// Ends a session silent for longer than the heartbeat timeout.
    fn check_heartbeat(&self) -> Step {
        if self.last_seen.elapsed() > self.gate.limits.heartbeat_timeout {
            Step::Break(Closing::going_away("no heartbeat; reconnect and sync"))
        } else {
            Step::Continue(())
        }
    }

    /// Lets requests already accepted finish and answers them, sends the
    /// last frame, and closes.
    async fn drain(mut self, closing: Closing) {
        drop(self.answers_tx.take());
        let drain_timeout = self.gate.limits.drain_timeout;
        let drained = tokio::time::timeout(drain_timeout, async {
            while let Some(answer) = next_answer(&mut self.answers_rx).await {
                if !self.send(&answer).await {
                    break;
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(user = %self.session.user, "requests still running at close");
        }
        if let Some(last) = closing.last {
            let _ = self.send(&last).await;
        }
        let _ = self.conn.close(closing.reason).await;
    }
}

/// `answer`, or `TOO_LARGE` if it would not fit in a frame once sealed:
/// pages are cut to fit (see [`PageBytes`]), so this guards answers that
/// have no pages, and the client gets an error instead of a closed
/// connection.
fn within_frame(answer: Frame, max_body: usize) -> Frame {
    let sealed = answer.body.len() + bubble_proto::secure::record::RECORD_OVERHEAD;
    if sealed <= max_body {
        return answer;
    }
    protocol_error(
        answer.seq,
        pb::ErrorCode::TooLarge,
        format!(
            "the answer ({sealed} bytes) is larger than a frame ({max_body} bytes); ask for less"
        ),
        false,
    )
}

/// Runs a request within the engine's request deadline; past it, the
/// request's port calls are dropped and the client is told to retry. A send
/// may have been stored by then: its retry with the same client_msg_id is
/// answered from dedup, never stored twice.
async fn within_deadline<T>(
    engine: &bubble_core::Engine,
    metrics: &crate::metrics::Metrics,
    request: impl std::future::Future<Output = bubble_core::Result<T>>,
) -> bubble_core::Result<T> {
    let deadline = engine.config().request_timeout;
    tokio::time::timeout(deadline, request)
        .await
        .unwrap_or_else(|_| {
            metrics.requests_timed_out.inc();
            Err(bubble_core::Error::unavailable(format!(
                "the request did not finish within {} ms (a backend is slow or down); retry \
                 with the same client_msg_id",
                deadline.as_millis()
            )))
        })
}

/// The next answer, or never when no request was ever made.
async fn next_answer(rx: &mut Option<mpsc::Receiver<Frame>>) -> Option<Frame> {
    match rx {
        Some(rx) => rx.recv().await,
        None => None,
    }
}
