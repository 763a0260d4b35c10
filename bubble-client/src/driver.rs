//! The connection's life: the handshake (full, or resumed with a ticket),
//! the loop that writes requests, reads answers and pushes and sends
//! heartbeats, and reconnecting with backoff when the connection is lost.

use super::*;
use crate::delivery::Inbound;

pub(crate) struct Driver {
    shared: Arc<Shared>,
    secure: SecureConfig,
    ticket: Option<ResumeTicket>,
    requests: mpsc::Receiver<Outgoing>,
    pushes: mpsc::UnboundedSender<Inbound>,
    events: mpsc::Sender<Event>,
}

/// An established session: the connection and its record channel.
pub(crate) struct Live {
    conn: transport::Connection,
    channel: SecureChannel,
    resumed: bool,
}

enum End {
    Shutdown,
    Kicked(String),
    Lost(String),
}

impl Driver {
    /// The driver of `shared`'s connection, before its first handshake:
    /// it writes `requests`, and hands pushes to the delivery task.
    pub(crate) fn new(
        shared: Arc<Shared>,
        secure: SecureConfig,
        requests: mpsc::Receiver<Outgoing>,
        pushes: mpsc::UnboundedSender<Inbound>,
        events: mpsc::Sender<Event>,
    ) -> Driver {
        Driver {
            shared,
            secure,
            ticket: None,
            requests,
            pushes,
            events,
        }
    }

    /// Opens a connection and handshakes (resuming when a ticket is held).
    pub(crate) async fn establish(&mut self) -> Result<Live, ClientError> {
        let config = &self.shared.config;
        let mut conn = transport::Connection::open(&config.endpoint, config.max_frame).await?;
        let mut rng = OsRandom;
        let ticket = self.ticket.take();
        let resumed = ticket.is_some();
        let (handshake, hello, command) = match &ticket {
            Some(t) => {
                let (h, b) = ClientHandshake::resume(&self.secure.meta, t, &mut rng)
                    .map_err(|e| ClientError::Handshake(e.to_string()))?;
                (h, b, Command::ResumeHello)
            }
            None => {
                let (h, b) = ClientHandshake::start(&self.secure, &config.token, &mut rng)
                    .map_err(|e| ClientError::Handshake(e.to_string()))?;
                (h, b, Command::HandshakeHello)
            }
        };
        let exchanged = async {
            conn.write(Frame::new(command, 0, hello)).await?;
            conn.flush().await?;
            tokio::time::timeout(config.request_timeout, conn.read(config.max_frame))
                .await
                .map_err(|_| ClientError::Timeout)??
                // A node that is shutting down (or dies) closes mid-handshake:
                // another attempt, through the selector, finds a live one.
                .ok_or(ClientError::Disconnected)
        };
        let answer = match exchanged.await {
            Ok(answer) => answer,
            Err(e) => {
                // No answer: the ticket is kept for the next attempt (if the
                // server did claim it, that attempt falls back below).
                self.ticket = ticket;
                return Err(e);
            }
        };
        if answer.command == Command::Error {
            let err: pb::Error = answer.decode_body().unwrap_or_default();
            if resumed {
                if handshake_may_succeed_later(&err) {
                    // Refused for a passing reason (a backend down, a node
                    // draining) before the ticket was spent: keep it, and
                    // the reconnect loop tries again.
                    self.ticket = ticket;
                    return Err(ClientError::from(err));
                }
                // A spent or expired ticket: fall back to a full handshake.
                return Box::pin(self.establish()).await;
            }
            if handshake_may_succeed_later(&err) {
                // Busy, draining or a backend down: not a refusal of this
                // device, so the reconnect loop tries again.
                return Err(ClientError::from(err));
            }
            return Err(ClientError::Handshake(format!(
                "{:?}: {}",
                pb::ErrorCode::try_from(err.code).unwrap_or(pb::ErrorCode::HandshakeFailed),
                err.message
            )));
        }
        let session = handshake
            .finish(&answer.body)
            .map_err(|e| ClientError::Handshake(e.to_string()))?;
        self.ticket = session.ticket;
        Ok(Live {
            conn,
            channel: session.channel,
            resumed,
        })
    }

    pub(crate) async fn run(mut self, first: Live) {
        let mut live = Some(first);
        let mut delay = self.shared.config.reconnect_min;
        loop {
            let session = match live.take() {
                Some(s) => s,
                None => match self.establish().await {
                    Ok(s) => s,
                    Err(ClientError::Handshake(reason)) if self.ticket.is_none() => {
                        let _ = self.events.send(Event::AuthFailed { reason }).await;
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "reconnect failed");
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = self.shared.shutdown.cancelled() => return,
                        }
                        delay = (delay * 2).min(self.shared.config.reconnect_max);
                        continue;
                    }
                },
            };
            delay = self.shared.config.reconnect_min;
            let _ = self.pushes.send(Inbound::Connected {
                resumed: session.resumed,
            });
            match self.serve(session).await {
                End::Shutdown => return,
                End::Kicked(reason) => {
                    let _ = self.events.send(Event::Kicked { reason }).await;
                    return;
                }
                End::Lost(reason) => {
                    let _ = self.events.send(Event::Disconnected { reason }).await;
                }
            }
        }
    }

    async fn serve(&mut self, live: Live) -> End {
        let Live {
            mut conn, channel, ..
        } = live;
        let (mut sealer, mut opener) = channel.split();
        let max_frame = self.shared.config.max_frame;
        let mut pending: HashMap<u32, oneshot::Sender<Result<Frame, ClientError>>> = HashMap::new();
        let mut heartbeat = tokio::time::interval(self.shared.config.heartbeat_interval);
        heartbeat.tick().await;
        let mut last_heard = Instant::now();
        let end = loop {
            tokio::select! {
                out = self.requests.recv() => {
                    let Some(out) = out else { break End::Shutdown };
                    let mut batch = vec![out];
                    while let Ok(more) = self.requests.try_recv() {
                        batch.push(more);
                    }
                    let mut failed = None;
                    for out in batch {
                        let sealed = match sealer.seal(&out.frame) {
                            Ok(f) => f,
                            Err(e) => { failed = Some(e.to_string()); break; }
                        };
                        if let Some(reply) = out.reply {
                            pending.insert(out.frame.seq, reply);
                        }
                        if let Err(e) = conn.write(sealed).await {
                            failed = Some(e.to_string());
                            break;
                        }
                    }
                    if let Some(reason) = failed {
                        break End::Lost(reason);
                    }
                    if let Err(e) = conn.flush().await {
                        break End::Lost(e.to_string());
                    }
                }
                read = conn.read(max_frame) => {
                    let frame = match read {
                        Ok(Some(f)) => f,
                        Ok(None) => break End::Lost("the server closed the connection".into()),
                        Err(e) => break End::Lost(e.to_string()),
                    };
                    last_heard = Instant::now();
                    let frame = if frame.flags & flags::ENCRYPTED != 0 {
                        match opener.open(&frame) {
                            Ok(f) => f,
                            Err(e) => break End::Lost(format!("record failed: {e}")),
                        }
                    } else {
                        // Only a plaintext error may come outside the channel (a refusal).
                        frame
                    };
                    if frame.is_response() {
                        if let Some(reply) = pending.remove(&frame.seq) {
                            let result = if frame.command == Command::Error {
                                Err(frame.decode_body::<pb::Error>().map(ClientError::from).unwrap_or_else(|e| ClientError::Protocol(e.to_string())))
                            } else {
                                Ok(frame)
                            };
                            let _ = reply.send(result);
                        }
                        continue;
                    }
                    match frame.command {
                        Command::Kick => {
                            let kick: pb::Kick = frame.decode_body().unwrap_or_default();
                            break End::Kicked(kick.reason);
                        }
                        Command::Error => {
                            let err: pb::Error = frame.decode_body().unwrap_or_default();
                            break End::Lost(format!("server closed: {}", err.message));
                        }
                        _ => {
                            let _ = self.pushes.send(Inbound::Push(frame));
                        }
                    }
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > self.shared.config.heartbeat_interval * 3 {
                        break End::Lost("the server stopped answering".into());
                    }
                    let seq = self.shared.next_seq.fetch_add(1, Ordering::Relaxed).max(1);
                    let ping = Frame::from_message(Command::Ping, seq, &pb::Ping { client_time: bubble_core::now_millis() });
                    let ok = match sealer.seal(&ping) {
                        Ok(f) => conn.write(f).await.is_ok() && conn.flush().await.is_ok(),
                        Err(_) => false,
                    };
                    if !ok {
                        break End::Lost("cannot send a heartbeat".into());
                    }
                }
                _ = self.shared.shutdown.cancelled() => break End::Shutdown,
            }
        };
        for (_, reply) in pending {
            let _ = reply.send(Err(ClientError::Disconnected));
        }
        end
    }
}

/// Whether a handshake the server refused with `err` may succeed if tried
/// again: only a refusal of the token or of the handshake itself ends the
/// client (`Event::AuthFailed`).
fn handshake_may_succeed_later(err: &pb::Error) -> bool {
    use pb::ErrorCode::*;
    err.retryable
        || matches!(
            pb::ErrorCode::try_from(err.code),
            Ok(Unavailable | Timeout | RateLimited | GoingAway | Internal)
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(code: pb::ErrorCode, retryable: bool) -> pb::Error {
        pb::Error {
            code: code as i32,
            message: String::new(),
            retryable,
        }
    }

    #[test]
    fn only_a_refused_token_or_handshake_ends_the_client() {
        use pb::ErrorCode::*;
        for code in [Unavailable, Timeout, RateLimited, GoingAway, Internal] {
            assert!(
                handshake_may_succeed_later(&refusal(code, false)),
                "{code:?} is worth another attempt"
            );
        }
        for code in [
            Unauthenticated,
            HandshakeFailed,
            PermissionDenied,
            InvalidArgument,
        ] {
            assert!(
                !handshake_may_succeed_later(&refusal(code, false)),
                "{code:?} ends the client"
            );
        }
        assert!(handshake_may_succeed_later(&refusal(HandshakeFailed, true)));
    }
}
