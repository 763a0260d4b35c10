//! A connection's first frame: a full handshake or a resumption, within the
//! handshake timeout, under the per-address and global rate limits.

use std::net::SocketAddr;
use std::sync::Arc;

use bubble_core::{AppId, DeviceId, ErrorKind, now_millis};
use bubble_proto::secure::{Established, HandshakeError, OsRandom, Pending, SessionGrant};
use bubble_proto::{Command, Frame, pb};

use super::Gate;
use super::cmd::protocol_error;
use super::connection::{CloseReason, ConnError, FrameConnection};

/// Why no session came of the first frame: what to answer (if the peer can
/// still read it) and how to close.
#[derive(Debug)]
pub struct Refused {
    /// The error frame to send.
    pub answer: Option<Frame>,
    /// How the connection ends.
    pub reason: CloseReason,
}

impl Refused {
    fn with(answer: Frame, reason: CloseReason) -> Refused {
        Refused {
            answer: Some(answer),
            reason,
        }
    }

    fn silently(reason: CloseReason) -> Refused {
        Refused {
            answer: None,
            reason,
        }
    }
}

/// Reads the first frame by `deadline` and runs the handshake up to (not
/// including) the answer. The hello's seq comes back with the result.
pub async fn run(
    gate: &Arc<Gate>,
    conn: &mut dyn FrameConnection,
    peer: SocketAddr,
    deadline: tokio::time::Instant,
) -> Result<(Box<Established>, u32), Refused> {
    let first = tokio::select! {
        read = tokio::time::timeout_at(deadline, conn.read_frame()) => read,
        _ = gate.shutdown.cancelled() => return Err(Refused::silently(CloseReason::GoingAway)),
    };
    let frame = match first {
        Ok(Ok(Some(frame))) => frame,
        Ok(Ok(None)) => return Err(Refused::silently(CloseReason::Normal)),
        Ok(Err(ConnError::Malformed { seq, message })) => {
            return Err(Refused::with(
                protocol_error(seq, pb::ErrorCode::MalformedFrame, message, false),
                CloseReason::ProtocolError,
            ));
        }
        Ok(Err(ConnError::Broken(_) | ConnError::Stalled)) => {
            return Err(Refused::silently(CloseReason::Normal));
        }
        Err(_) => {
            gate.metrics.handshake_timeouts.inc();
            return Err(Refused::with(
                HandshakeError::timeout().to_frame(0),
                CloseReason::PolicyViolation,
            ));
        }
    };
    let seq = frame.seq;
    let established = complete(gate, &frame, peer).await?;
    if established.session.resumed {
        gate.metrics.handshakes_resumed.inc();
    } else {
        gate.metrics.handshakes_full.inc();
    }
    // Boxed so the caller's future, alive as long as the connection, does
    // not reserve room for it (~1.4 KiB).
    Ok((Box::new(established), seq))
}

async fn complete(
    gate: &Arc<Gate>,
    frame: &Frame,
    peer: SocketAddr,
) -> Result<Established, Refused> {
    let seq = frame.seq;
    let now = now_millis() as u64;
    let refused = |answer: Frame| Refused::with(answer, CloseReason::PolicyViolation);
    // Checked before any RSA work: a flood of hellos costs the server nothing.
    if frame.command == Command::HandshakeHello && !gate.handshake_limiter.allow(peer.ip()) {
        gate.metrics.rate_limited.inc();
        return Err(try_later(
            seq,
            pb::ErrorCode::RateLimited,
            "too many handshakes; resume with a ticket or retry later",
        ));
    }
    let received = if frame.command == Command::HandshakeHello {
        // The RSA decryption: a millisecond or more, so not on a worker.
        let (shared, frame) = (gate.clone(), frame.clone());
        gate.key_work
            .run(move || bubble_proto::secure::server_receive(&shared.secure, &frame, now))
            .await
    } else {
        bubble_proto::secure::server_receive(&gate.secure, frame, now)
    };
    let pending = received.map_err(|e| {
        tracing::debug!(%peer, reason = e.reason(), "handshake refused");
        refused(e.to_frame(seq))
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
                        try_later(
                            seq,
                            pb::ErrorCode::Unavailable,
                            "cannot check tokens right now",
                        )
                    } else {
                        refused(hello.reject().to_frame(seq))
                    });
                }
            };
            let grant = SessionGrant {
                user: identity.user.to_string(),
                identity_expires_at_ms: identity.expires_at.max(0) as u64,
            };
            hello
                .accept(&gate.secure, grant, now, &mut rng)
                .map_err(|e| refused(e.to_frame(seq)))
        }
        Pending::Resume(resume) => {
            // Registering the session after the handshake reads the app's
            // settings (cached). Read them now, before the ticket is spent:
            // a store that cannot answer refuses the resumption as "retry
            // later", and the device resumes with the same ticket once it is
            // back instead of paying for a full handshake.
            let app = AppId::new(&resume.meta().app_id);
            if let Err(e) = gate.engine.app(&app).await
                && e.is_retryable()
            {
                tracing::debug!(%peer, %app, error = %e, "resumption deferred: the app cannot be read");
                return Err(try_later(
                    seq,
                    pb::ErrorCode::Unavailable,
                    "cannot read the app's settings right now; resume later with the same ticket",
                ));
            }
            let claim = gate
                .used_tickets
                .claim(resume.ticket_id(), resume.ticket_expires_at_ms(), now)
                .map_err(|e| refused(e.to_frame(seq)))?;
            if resume.identity_expires_at_ms() <= now {
                return Err(refused(resume.reject().to_frame(seq)));
            }
            resume
                .accept(&gate.secure, claim, now, &mut rng)
                .map_err(|e| refused(e.to_frame(seq)))
        }
    }
}

/// A refusal for a passing reason: a retryable error, then "try again
/// later" (WebSocket close status 1013).
fn try_later(seq: u32, code: pb::ErrorCode, message: &str) -> Refused {
    Refused::with(
        protocol_error(seq, code, message, true),
        CloseReason::TryAgainLater,
    )
}
