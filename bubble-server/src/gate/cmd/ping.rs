//! Ping (2) -> Pong (3): answered inline by the handler, and refreshes the
//! device's presence.

use bubble_core::{Engine, Session, now_millis};
use bubble_proto::{Command, Frame, pb};

use super::Reply;

/// A heartbeat.
#[derive(Debug)]
pub struct Ping {
    client_time: i64,
}

impl Ping {
    /// Decodes a `Ping`; a body that does not decode still counts as one.
    pub fn parse(frame: &Frame) -> Ping {
        let ping: pb::Ping = frame.decode_body().unwrap_or_default();
        Ping {
            client_time: ping.client_time,
        }
    }

    /// Refreshes presence in the background (it may be a network round
    /// trip, and the handler answers pings without waiting) and returns the
    /// pong.
    pub fn apply(self, engine: &Engine, session: &Session) -> Reply {
        let engine = engine.clone();
        let session = session.clone();
        tokio::spawn(async move {
            if let Err(e) = engine.heartbeat(&session).await {
                tracing::debug!(error = %e, "presence refresh failed");
            }
        });
        let pong = pb::Pong {
            client_time: self.client_time,
            server_time: now_millis(),
        };
        Reply::message(Command::Pong, &pong)
    }
}
