//! One client connection, from the first byte to the close.
//!
//! 1. Take a connection slot or refuse with an error frame.
//! 2. Handshake within the timeout (full, or resumption with a ticket).
//! 3. Register the session; then one loop: read requests (run them
//!    concurrently, bounded), write answers and pushes (batched per flush),
//!    check heartbeats, and drain on shutdown.
//!
//! Every failure closes this connection only, after an error frame where the
//! peer can still read one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::{Semaphore, mpsc};

use bubble_core::ports::{FrameConnection, Identity};
use bubble_core::push::PushEvent;
use bubble_core::{AppId, DeviceId, ErrorKind, Session, UserId, now_millis};
use bubble_proto::secure::{
    Established, OsRandom, Pending, RecordOpener, RecordSealer, SecureChannel, SessionGrant,
    SessionInfo,
};
use bubble_proto::{Command, Frame, pb};

use super::Gate;
use super::dispatch::{dispatch, protocol_error, push_frame};
use super::limits::TokenBucket;

/// Decrements the open-connections gauge however the task ends.
struct ConnectionGauge(Arc<crate::metrics::Metrics>);

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves one connection to its end.
pub async fn serve(gate: Arc<Gate>, mut conn: Box<dyn FrameConnection>, peer: SocketAddr) {
    gate.metrics
        .connections_total
        .fetch_add(1, Ordering::Relaxed);
    let Ok(_slot) = gate.connections.clone().try_acquire_owned() else {
        let full = protocol_error(
            0,
            pb::ErrorCode::Unavailable,
            "this gate is at its connection limit; ask the selector for another",
            true,
        );
        let _ = conn.write_frame(full).await;
        let _ = conn.flush().await;
        return;
    };
    gate.metrics.connections.fetch_add(1, Ordering::Relaxed);
    let _gauge = ConnectionGauge(gate.metrics.clone());

    // Boxed: the handshake's state (~4 KiB) is freed once it is done instead
    // of staying reserved in this task for the connection's whole life.
    let Some((established, seq)) = Box::pin(handshake(&gate, conn.as_mut(), peer)).await else {
        gate.metrics
            .handshakes_failed
            .fetch_add(1, Ordering::Relaxed);
        return;
    };
    // Keep only what the session needs, and free the rest now: this task
    // lives as long as the connection, and an idle connection's memory is
    // what caps how many a box holds.
    let answer = established.answer_frame(seq);
    let (channel, info) = unbox(established);
    let (sealer, opener) = channel.split();
    let (sealer, opener) = (Box::new(sealer), Box::new(opener));
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
            let _ = conn
                .write_frame(super::dispatch::error_frame(seq, &e))
                .await;
            let _ = conn.flush().await;
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
    run_session(&gate, conn, sealer, opener, &session, queue).await;
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

/// Runs the handshake up to (not including) the answer; on failure sends
/// one error frame and returns `None`. The hello's seq comes back with it.
async fn handshake(
    gate: &Gate,
    conn: &mut dyn FrameConnection,
    peer: SocketAddr,
) -> Option<(Box<Established>, u32)> {
    let deadline = tokio::time::Instant::now() + gate.limits.handshake_timeout;
    let first = tokio::select! {
        read = tokio::time::timeout_at(deadline, conn.read_frame()) => read,
        _ = gate.shutdown.cancelled() => return None,
    };
    let frame = match first {
        Ok(Ok(Some(frame))) => frame,
        Ok(Ok(None)) => return None,
        Ok(Err(e)) => {
            let _ = conn
                .write_frame(protocol_error(
                    0,
                    pb::ErrorCode::MalformedFrame,
                    e.message(),
                    false,
                ))
                .await;
            let _ = conn.flush().await;
            return None;
        }
        Err(_) => {
            let _ = conn
                .write_frame(bubble_proto::secure::HandshakeError::timeout().to_frame(0))
                .await;
            let _ = conn.flush().await;
            return None;
        }
    };
    let seq = frame.seq;
    let result = complete_handshake(gate, &frame, peer).await;
    match result {
        Ok(established) => {
            if established.session.resumed {
                gate.metrics
                    .handshakes_resumed
                    .fetch_add(1, Ordering::Relaxed);
            } else {
                gate.metrics.handshakes_full.fetch_add(1, Ordering::Relaxed);
            }
            // Boxed so the caller's future, alive as long as the
            // connection, does not reserve room for it (~1.4 KiB).
            Some((Box::new(established), seq))
        }
        Err(answer) => {
            let _ = conn.write_frame(answer).await;
            let _ = conn.flush().await;
            None
        }
    }
}

async fn complete_handshake(
    gate: &Gate,
    frame: &Frame,
    peer: SocketAddr,
) -> Result<Established, Frame> {
    let seq = frame.seq;
    let now = now_millis() as u64;
    // Checked before any RSA work: a flood of hellos costs the server nothing.
    if frame.command == bubble_proto::Command::HandshakeHello
        && !gate.handshake_limiter.allow(peer.ip())
    {
        gate.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
        return Err(protocol_error(
            seq,
            pb::ErrorCode::RateLimited,
            "too many handshakes; resume with a ticket or retry later",
            true,
        ));
    }
    let pending = bubble_proto::secure::server_receive(&gate.secure, frame, now).map_err(|e| {
        tracing::debug!(%peer, reason = e.reason(), "handshake refused");
        e.to_frame(seq)
    })?;
    let mut rng = OsRandom;
    match pending {
        Pending::Hello(hello) => {
            let app = AppId::new(&hello.meta().app_id);
            let device = DeviceId::new(&hello.meta().device_id);
            let identity = match gate.auth.authenticate(&app, hello.token(), &device).await {
                Ok(identity) => identity,
                Err(e) => {
                    tracing::debug!(%peer, %app, error = %e, "token refused");
                    return Err(if e.kind() == ErrorKind::Unavailable {
                        protocol_error(
                            seq,
                            pb::ErrorCode::Unavailable,
                            "cannot check tokens right now",
                            true,
                        )
                    } else {
                        hello.reject().to_frame(seq)
                    });
                }
            };
            let grant = SessionGrant {
                user: identity.user.to_string(),
                identity_expires_at_ms: identity.expires_at.max(0) as u64,
            };
            hello
                .accept(&gate.secure, grant, now, &mut rng)
                .map_err(|e| e.to_frame(seq))
        }
        Pending::Resume(resume) => {
            let claim = gate
                .used_tickets
                .claim(resume.ticket_id(), resume.ticket_expires_at_ms(), now)
                .map_err(|e| e.to_frame(seq))?;
            if resume.identity_expires_at_ms() <= now {
                return Err(resume.reject().to_frame(seq));
            }
            resume
                .accept(&gate.secure, claim, now, &mut rng)
                .map_err(|e| e.to_frame(seq))
        }
    }
}

/// Seals and queues one frame; false when the connection is broken.
async fn send(conn: &mut dyn FrameConnection, sealer: &mut RecordSealer, frame: &Frame) -> bool {
    match sealer.seal(frame) {
        Ok(sealed) => conn.write_frame(sealed).await.is_ok(),
        Err(e) => {
            tracing::warn!(error = %e, "sealing a record failed");
            false
        }
    }
}

async fn run_session(
    gate: &Arc<Gate>,
    mut conn: Box<dyn FrameConnection>,
    // Boxed (~1.3 KiB) so this future, held for the connection's whole
    // life, stays small.
    mut sealer: Box<RecordSealer>,
    mut opener: Box<RecordOpener>,
    session: &Session,
    mut queue: bubble_core::push::SessionQueue,
) {
    let limits = &gate.limits;
    // Made on the first request: an idle connection (pings are answered
    // inline) then holds no answer queue (~2 KiB each).
    let mut answers_tx: Option<mpsc::Sender<Frame>> = None;
    let mut answers_rx: Option<mpsc::Receiver<Frame>> = None;
    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight));
    let mut bucket = TokenBucket::new(limits.requests_per_second, limits.request_burst);
    let mut last_seen = Instant::now();
    let mut heartbeat = tokio::time::interval(limits.heartbeat_timeout / 3);
    heartbeat.tick().await;
    let closing: Option<Frame> = loop {
        tokio::select! {
            read = conn.read_frame() => {
                let frame = match read {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break None,
                    Err(e) => {
                        gate.metrics.malformed_frames.fetch_add(1, Ordering::Relaxed);
                        break Some(protocol_error(0, pb::ErrorCode::MalformedFrame, e.message(), false));
                    }
                };
                last_seen = Instant::now();
                let frame = match opener.open(&frame) {
                    Ok(frame) => frame,
                    Err(_) => {
                        // A replayed, reordered or forged record: the stream is no longer trustworthy.
                        gate.metrics.malformed_frames.fetch_add(1, Ordering::Relaxed);
                        break Some(protocol_error(frame.seq, pb::ErrorCode::MalformedFrame, "record failed authentication", false));
                    }
                };
                if !bucket.take() {
                    gate.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
                    let answer = protocol_error(frame.seq, pb::ErrorCode::RateLimited, "too many requests on this connection; slow down", true);
                    if !send(conn.as_mut(), &mut sealer, &answer).await || conn.flush().await.is_err() {
                        break None;
                    }
                    continue;
                }
                if frame.command == Command::Ping {
                    let ping: pb::Ping = frame.decode_body().unwrap_or_default();
                    let engine = gate.engine.clone();
                    let s = session.clone();
                    // Presence refresh may be a network round trip: off the loop.
                    tokio::spawn(async move {
                        if let Err(e) = engine.heartbeat(&s).await {
                            tracing::debug!(error = %e, "presence refresh failed");
                        }
                    });
                    let pong = pb::Pong { client_time: ping.client_time, server_time: now_millis() };
                    let answer = Frame::from_message(Command::Pong, frame.seq, &pong).into_response();
                    if !send(conn.as_mut(), &mut sealer, &answer).await || conn.flush().await.is_err() {
                        break None;
                    }
                    continue;
                }
                // Run requests concurrently; a full window stops reading (backpressure).
                let permit = tokio::select! {
                    p = in_flight.clone().acquire_owned() => p.expect("never closed"),
                    _ = gate.shutdown.cancelled() => break None,
                };
                let engine = gate.engine.clone();
                let s = session.clone();
                let tx = answers_tx
                    .get_or_insert_with(|| {
                        let (tx, rx) = mpsc::channel::<Frame>(limits.max_in_flight * 2);
                        answers_rx = Some(rx);
                        tx
                    })
                    .clone();
                let metrics = gate.metrics.clone();
                tokio::spawn(async move {
                    let is_send = frame.command == Command::Send;
                    let silent_on_success = frame.command == Command::Typing;
                    let started = Instant::now();
                    let answer = dispatch(&engine, &s, frame).await;
                    let failed = answer.command == Command::Error;
                    if failed {
                        if let Ok(err) = answer.decode_body::<pb::Error>() {
                            metrics.error(code_kind(err.code));
                        }
                    } else if is_send {
                        metrics.messages_in.fetch_add(1, Ordering::Relaxed);
                        metrics.send_latency.observe(started.elapsed());
                    }
                    if !silent_on_success || failed {
                        let _ = tx.send(answer).await;
                    }
                    drop(permit);
                });
            }
            Some(answer) = next_answer(&mut answers_rx) => {
                let mut ok = send(conn.as_mut(), &mut sealer, &answer).await;
                while ok {
                    match answers_rx.as_mut().map(|rx| rx.try_recv()) {
                        Some(Ok(more)) => ok = send(conn.as_mut(), &mut sealer, &more).await,
                        _ => break,
                    }
                }
                if !ok || conn.flush().await.is_err() {
                    break None;
                }
            }
            pushed = queue.rx.recv() => {
                let Some(event) = pushed else {
                    if queue.overflowed.load(Ordering::Acquire) {
                        gate.metrics.slow_consumers.fetch_add(1, Ordering::Relaxed);
                        break Some(protocol_error(0, pb::ErrorCode::GoingAway, "you read too slowly; reconnect and sync", true));
                    }
                    break None;
                };
                let (mut ok, mut close) = write_push(gate, conn.as_mut(), &mut sealer, &session.app, event).await;
                while ok && !close {
                    match queue.rx.try_recv() {
                        Ok(more) => (ok, close) = write_push(gate, conn.as_mut(), &mut sealer, &session.app, more).await,
                        Err(_) => break,
                    }
                }
                if !ok || conn.flush().await.is_err() || close {
                    break None;
                }
            }
            _ = heartbeat.tick() => {
                if last_seen.elapsed() > limits.heartbeat_timeout {
                    break Some(protocol_error(0, pb::ErrorCode::GoingAway, "no heartbeat; reconnect and sync", true));
                }
            }
            _ = gate.shutdown.cancelled() => {
                break Some(protocol_error(0, pb::ErrorCode::GoingAway, "server shutting down; reconnect to another gate", true));
            }
        }
    };
    // Drain: let requests already accepted finish and answer them.
    drop(answers_tx);
    let drained = tokio::time::timeout(limits.drain_timeout, async {
        while let Some(answer) = next_answer(&mut answers_rx).await {
            if !send(conn.as_mut(), &mut sealer, &answer).await {
                break;
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(user = %session.user, "requests still running at close");
    }
    if let Some(last) = closing {
        let _ = send(conn.as_mut(), &mut sealer, &last).await;
    }
    let _ = conn.flush().await;
}

/// The next answer, or never when no request was ever made.
async fn next_answer(rx: &mut Option<mpsc::Receiver<Frame>>) -> Option<Frame> {
    match rx {
        Some(rx) => rx.recv().await,
        None => None,
    }
}

async fn write_push(
    gate: &Gate,
    conn: &mut dyn FrameConnection,
    sealer: &mut RecordSealer,
    app: &AppId,
    event: Box<PushEvent>,
) -> (bool, bool) {
    let event = *event;
    if let PushEvent::Entry { entry, .. } = &event {
        let delay = now_millis() - entry.server_time;
        gate.metrics
            .push_delay
            .observe(std::time::Duration::from_millis(delay.max(0) as u64));
    }
    let (frame, close) = push_frame(app, event);
    gate.metrics.pushes_out.fetch_add(1, Ordering::Relaxed);
    (send(conn, sealer, &frame).await, close)
}

fn code_kind(code: i32) -> ErrorKind {
    match pb::ErrorCode::try_from(code) {
        Ok(pb::ErrorCode::InvalidArgument) => ErrorKind::InvalidInput,
        Ok(pb::ErrorCode::TooLarge) => ErrorKind::TooLarge,
        Ok(pb::ErrorCode::NotFound) => ErrorKind::NotFound,
        Ok(pb::ErrorCode::AlreadyExists) => ErrorKind::AlreadyExists,
        Ok(pb::ErrorCode::Unauthenticated) => ErrorKind::Unauthenticated,
        Ok(pb::ErrorCode::PermissionDenied) => ErrorKind::PermissionDenied,
        Ok(pb::ErrorCode::RateLimited) => ErrorKind::RateLimited,
        Ok(pb::ErrorCode::Unavailable) => ErrorKind::Unavailable,
        Ok(pb::ErrorCode::Timeout) => ErrorKind::Timeout,
        Ok(pb::ErrorCode::RecallExpired) => ErrorKind::Expired,
        _ => ErrorKind::Internal,
    }
}
