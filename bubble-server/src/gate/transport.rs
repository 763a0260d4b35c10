//! TCP and WebSocket as [`FrameConnection`]s, and the accept loop both
//! listeners share.
//!
//! Everything a peer can make a connection hold is bounded here: a ticket
//! (see [`super::admission`]) before the first byte is read, one deadline
//! for the whole handshake (the WebSocket upgrade included), a write
//! deadline on every write, and on WebSocket a bounded write buffer so the
//! pongs of a peer that pings without reading cannot pile up.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Buf, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::codec::{Decoder, Encoder};

use bubble_proto::{Frame, FrameCodec, FrameError, HEADER_LEN, pb};

use super::Gate;
use super::admission::Refusal;
use super::cmd::protocol_error;
use super::connection::{CloseReason, ConnError, FrameConnection};

fn broken(e: impl std::fmt::Display) -> ConnError {
    ConnError::Broken(e.to_string())
}

/// A socket a connection can reset rather than close gracefully, so a peer
/// that stopped reading cannot keep the server's send buffer (or, with a
/// graceful close, an orphaned socket) busy.
pub trait Socket: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Makes the coming close a reset (RST), dropping unsent bytes.
    fn reset_on_close(&self) {}
}

impl Socket for TcpStream {
    fn reset_on_close(&self) {
        let _ = self.set_zero_linger();
    }
}

impl Socket for tokio::io::DuplexStream {}

/// A TCP stream of frames.
///
/// Buffers are taken only while there are bytes in them and given back
/// when they empty (instead of `Framed`'s two 8 KiB buffers per
/// connection for its whole life), so an idle connection holds none: at
/// 100,000 connections that is 1.6 GB less resident memory.
pub struct TcpConnection {
    stream: TcpStream,
    codec: FrameCodec,
    read_buf: BytesMut,
    write_buf: BytesMut,
    write_timeout: Duration,
    /// A write missed its deadline: nothing more is written, the close resets.
    stalled: bool,
}

/// What one read asks room for: a typical request and then some.
const READ_CHUNK: usize = 4096;

/// Queued output above this is written out before more is queued.
const WRITE_HIGH_WATER: usize = 64 * 1024;

impl TcpConnection {
    /// Wraps an accepted stream.
    pub fn new(stream: TcpStream, max_body: usize, write_timeout: Duration) -> TcpConnection {
        // Small frames must not wait for Nagle: latency is the product.
        let _ = stream.set_nodelay(true);
        TcpConnection {
            stream,
            codec: FrameCodec::new(max_body),
            read_buf: BytesMut::new(),
            write_buf: BytesMut::new(),
            write_timeout,
            stalled: false,
        }
    }

    async fn write_out(&mut self) -> Result<(), ConnError> {
        if self.stalled {
            return Err(ConnError::Stalled);
        }
        let (stream, buf) = (&mut self.stream, &mut self.write_buf);
        let written = tokio::time::timeout(self.write_timeout, async {
            while !buf.is_empty() {
                let n = stream.write(&buf[..]).await.map_err(broken)?;
                if n == 0 {
                    return Err(broken("connection closed while writing"));
                }
                buf.advance(n);
            }
            Ok(())
        })
        .await;
        match written {
            Ok(result) => result?,
            Err(_) => {
                self.stalled = true;
                return Err(ConnError::Stalled);
            }
        }
        // Give the buffer back: most connections are idle most of the time.
        self.write_buf = BytesMut::new();
        Ok(())
    }
}

#[async_trait]
impl FrameConnection for TcpConnection {
    async fn read_frame(&mut self) -> Result<Option<Frame>, ConnError> {
        // Cancel safe: bytes read stay in `read_buf`, decoding is synchronous.
        loop {
            if let Some(frame) = self.codec.decode(&mut self.read_buf)? {
                if self.read_buf.is_empty() {
                    self.read_buf = BytesMut::new();
                }
                return Ok(Some(frame));
            }
            // Wait for bytes without holding a buffer: an idle connection
            // then owns no read memory at all.
            self.stream.readable().await.map_err(broken)?;
            if self.read_buf.capacity() - self.read_buf.len() < HEADER_LEN {
                self.read_buf.reserve(READ_CHUNK);
            }
            match self.stream.try_read_buf(&mut self.read_buf) {
                Ok(0) => return Ok(self.codec.decode_eof(&mut self.read_buf)?),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if self.read_buf.is_empty() {
                        self.read_buf = BytesMut::new();
                    }
                }
                Err(e) => return Err(broken(e)),
            }
        }
    }

    async fn write_frame(&mut self, frame: Frame) -> Result<(), ConnError> {
        if self.stalled {
            return Err(ConnError::Stalled);
        }
        // Refused only for a body over the limit: our own bug, not the peer's.
        self.codec
            .encode(frame, &mut self.write_buf)
            .map_err(broken)?;
        if self.write_buf.len() >= WRITE_HIGH_WATER {
            self.write_out().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), ConnError> {
        self.write_out().await?;
        self.stream.flush().await.map_err(broken)
    }

    async fn close(&mut self, _reason: CloseReason) -> Result<(), ConnError> {
        if self.write_out().await.is_err() {
            // The peer does not read: release the socket now, not when it
            // chooses to read the rest.
            self.stream.reset_on_close();
            return Ok(());
        }
        // FIN after the last frame; the socket itself closes on drop.
        match tokio::time::timeout(self.write_timeout, self.stream.shutdown()).await {
            Ok(result) => result.map_err(broken),
            Err(_) => {
                self.stream.reset_on_close();
                Ok(())
            }
        }
    }
}

/// One WebSocket: one binary message per frame.
pub struct WsConnection<S: Socket = TcpStream> {
    socket: WebSocketStream<S>,
    max_body: usize,
    write_timeout: Duration,
    /// The peer sent its close frame (the library answers it by itself).
    closed_by_peer: bool,
    /// A write missed its deadline: nothing more is written, the close resets.
    stalled: bool,
}

/// How long a closing server waits for the client's close frame, which
/// completes the closing handshake, before dropping the connection.
const WS_CLOSE_WAIT: Duration = Duration::from_secs(1);

/// The WebSocket settings for frames of at most `max_body` bytes.
///
/// Frames queued by a burst of pushes are written together once 64 KiB are
/// waiting or at the flush, as on TCP; what the socket cannot take yet is
/// held up to two frames beyond that: past it, a write fails (the peer is
/// not reading) and the automatic pongs to the peer's pings are dropped but
/// the newest, which is all RFC 6455 asks. Reads start from a 4 KiB buffer
/// instead of 128 KiB: most connections are idle most of the time.
pub fn ws_config(max_body: usize) -> WebSocketConfig {
    // The largest WebSocket frame header: 2 + 8 bytes of length + 4 of mask.
    let message = max_body + HEADER_LEN + 14;
    WebSocketConfig::default()
        .read_buffer_size(READ_CHUNK)
        .write_buffer_size(WRITE_HIGH_WATER)
        .max_write_buffer_size(WRITE_HIGH_WATER + 2 * message)
        .max_message_size(Some(max_body + HEADER_LEN))
        .max_frame_size(Some(max_body + HEADER_LEN))
}

/// The WebSocket gate is served at `/` only: anything else is 404.
#[allow(clippy::result_large_err)] // tungstenite's `Callback` signature
fn only_root(request: &Request, response: Response) -> Result<Response, ErrorResponse> {
    if request.uri().path() == "/" {
        return Ok(response);
    }
    let mut refused = ErrorResponse::new(Some("the WebSocket gate is at /".into()));
    *refused.status_mut() = StatusCode::NOT_FOUND;
    Err(refused)
}

impl<S: Socket> WsConnection<S> {
    /// Runs the WebSocket upgrade on `stream` (the gate serves only `/`).
    pub async fn accept(
        stream: S,
        max_body: usize,
        write_timeout: Duration,
    ) -> Result<WsConnection<S>, ConnError> {
        let socket = tokio_tungstenite::accept_hdr_async_with_config(
            stream,
            only_root,
            Some(ws_config(max_body)),
        )
        .await
        .map_err(|e| broken(format!("websocket upgrade failed: {e}")))?;
        Ok(WsConnection {
            socket,
            max_body,
            write_timeout,
            closed_by_peer: false,
            stalled: false,
        })
    }

    /// Refuses at once after a missed write deadline.
    fn writable(&self) -> Result<(), ConnError> {
        if self.stalled {
            return Err(ConnError::Stalled);
        }
        Ok(())
    }

    /// What one write under the write deadline came to: a full buffer or
    /// a missed deadline is a stalled peer.
    fn settled(
        &mut self,
        written: Result<Result<(), WsError>, tokio::time::error::Elapsed>,
    ) -> Result<(), ConnError> {
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(WsError::WriteBufferFull(_))) | Err(_) => {
                self.stalled = true;
                Err(ConnError::Stalled)
            }
            Ok(Err(e)) => Err(broken(format!("websocket write failed: {e}"))),
        }
    }
}

#[async_trait]
impl<S: Socket> FrameConnection for WsConnection<S> {
    async fn read_frame(&mut self) -> Result<Option<Frame>, ConnError> {
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Binary(bytes))) => {
                    return match Frame::parse_exact(&bytes, self.max_body) {
                        Ok(frame) => Ok(Some(frame)),
                        Err(FrameError::Incomplete) => Err(ConnError::Malformed {
                            seq: 0,
                            message: "a WebSocket message shorter than a frame header".into(),
                        }),
                        Err(other) => Err(other.into()),
                    };
                }
                Some(Ok(Message::Text(_))) => {
                    return Err(ConnError::Malformed {
                        seq: 0,
                        message: "text WebSocket messages are not frames: send binary messages"
                            .into(),
                    });
                }
                // Pings are answered by the library, the newest one only
                // when the peer reads slowly (see `ws_config`).
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Close(_))) | None => {
                    self.closed_by_peer = true;
                    return Ok(None);
                }
                Some(Err(WsError::Capacity(e))) => {
                    return Err(ConnError::Malformed {
                        seq: 0,
                        message: format!("WebSocket message too large: {e}"),
                    });
                }
                Some(Err(e)) => return Err(broken(format!("websocket failed: {e}"))),
            }
        }
    }

    async fn write_frame(&mut self, frame: Frame) -> Result<(), ConnError> {
        let message = Message::Binary(frame.to_bytes());
        self.writable()?;
        let written = tokio::time::timeout(self.write_timeout, self.socket.feed(message)).await;
        self.settled(written)
    }

    async fn flush(&mut self) -> Result<(), ConnError> {
        self.writable()?;
        let written = tokio::time::timeout(self.write_timeout, self.socket.flush()).await;
        self.settled(written)
    }

    async fn close(&mut self, reason: CloseReason) -> Result<(), ConnError> {
        let sent = if self.closed_by_peer {
            // Our answer to the peer's close is queued already.
            self.flush().await
        } else {
            let close = CloseFrame {
                code: CloseCode::from(reason.ws_code()),
                reason: "".into(),
            };
            match self.writable() {
                Ok(()) => {
                    let close = self.socket.send(Message::Close(Some(close)));
                    let written = tokio::time::timeout(self.write_timeout, close).await;
                    self.settled(written)
                }
                Err(e) => Err(e),
            }
        };
        if sent.is_err() {
            self.socket.get_ref().reset_on_close();
            return Ok(());
        }
        if self.closed_by_peer {
            return Ok(());
        }
        // Let the client answer (the closing handshake), briefly: whatever
        // else it still sends is dropped.
        let _ = tokio::time::timeout(WS_CLOSE_WAIT, async {
            while let Some(Ok(message)) = self.socket.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
        Ok(())
    }
}

/// Which protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Frames straight on TCP.
    Tcp,
    /// One frame per binary WebSocket message.
    WebSocket,
}

/// Accepts clients until shutdown. Each accepted socket gets a ticket or is
/// refused on the spot, without waiting on the peer; failing accepts (out
/// of descriptors) back off instead of spinning.
pub async fn run_listener(gate: Arc<Gate>, listener: TcpListener, transport: Transport) {
    let mut backoff = Duration::from_millis(5);
    loop {
        tokio::select! {
            _ = gate.shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    backoff = Duration::from_millis(5);
                    admit(&gate, stream, peer, transport);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; backing off");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

/// Starts serving an accepted socket, or refuses it.
fn admit(gate: &Arc<Gate>, stream: TcpStream, peer: SocketAddr, transport: Transport) {
    gate.metrics.connections_total.inc();
    let ticket = match gate.admission.admit(peer.ip()) {
        Ok(ticket) => ticket,
        Err(refusal) => {
            gate.metrics.refused(refusal);
            refuse(gate, stream, transport, refusal);
            return;
        }
    };
    // One deadline from accept to session, the WebSocket upgrade included.
    let deadline = Instant::now() + gate.limits.handshake_timeout;
    let limits = &gate.limits;
    let (max_body, write_timeout) = (limits.max_frame_bytes, limits.write_timeout);
    let served = gate.clone();
    gate.tasks.spawn(async move {
        let conn: Box<dyn FrameConnection> = match transport {
            Transport::Tcp => Box::new(TcpConnection::new(stream, max_body, write_timeout)),
            Transport::WebSocket => {
                let upgrade = WsConnection::accept(stream, max_body, write_timeout);
                match tokio::time::timeout_at(deadline, upgrade).await {
                    Ok(Ok(ws)) => Box::new(ws),
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "websocket upgrade failed");
                        return;
                    }
                    Err(_) => {
                        served.metrics.handshake_timeouts.inc();
                        return;
                    }
                }
            }
        };
        super::handler::serve(served, conn, peer, ticket, deadline).await;
    });
}

/// Refuses a socket without waiting on the peer: the error is written only
/// if the socket takes it at once (a fresh socket always has room).
///
/// TCP gets the `UNAVAILABLE` error frame; WebSocket, whose upgrade
/// request has not been read, gets `503 Service Unavailable` with the same
/// message and `Retry-After`. Closing a socket with unread input resets it,
/// and a reset can overtake the error on its way, so a few refused sockets
/// at a time are half-closed and read out for a moment first; under a flood
/// of refusals the rest are simply closed, so refusing holds almost nothing.
fn refuse(gate: &Gate, stream: TcpStream, transport: Transport, refusal: Refusal) {
    let bytes = match transport {
        Transport::Tcp => {
            protocol_error(0, pb::ErrorCode::Unavailable, refusal.message(), true).to_bytes()
        }
        Transport::WebSocket => {
            let body = refusal.message();
            format!(
                "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
                 Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
            .into()
        }
    };
    let _ = stream.try_write(&bytes);
    let Some(slot) = gate.admission.lingering_slot() else {
        return;
    };
    tokio::spawn(async move {
        let mut stream = stream;
        let _ = stream.shutdown().await;
        let _ = tokio::time::timeout(REFUSAL_LINGER, async {
            let mut sink = [0u8; 1024];
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
        drop(slot);
    });
}

/// How long a refused socket is read out before it is closed.
const REFUSAL_LINGER: Duration = Duration::from_millis(500);

#[cfg(test)]
mod tests;
