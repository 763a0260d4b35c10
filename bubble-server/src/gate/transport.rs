//! TCP and WebSocket as [`FrameConnection`]s, and their listeners.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use bytes::{Buf, BytesMut};
use futures_util::SinkExt;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Decoder, Encoder};

use bubble_proto::{Frame, FrameCodec, FrameError, HEADER_LEN};

use super::Gate;
use super::connection::{CloseReason, ConnError, FrameConnection};

fn broken(e: impl std::fmt::Display) -> ConnError {
    ConnError::Broken(e.to_string())
}

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
}

/// What one read asks room for: a typical request and then some.
const READ_CHUNK: usize = 4096;

/// Queued output above this is written out before more is queued.
const WRITE_HIGH_WATER: usize = 64 * 1024;

impl TcpConnection {
    /// Wraps an accepted stream.
    pub fn new(stream: TcpStream, max_body: usize) -> TcpConnection {
        // Small frames must not wait for Nagle: latency is the product.
        let _ = stream.set_nodelay(true);
        TcpConnection {
            stream,
            codec: FrameCodec::new(max_body),
            read_buf: BytesMut::new(),
            write_buf: BytesMut::new(),
        }
    }

    async fn write_out(&mut self) -> Result<(), ConnError> {
        while !self.write_buf.is_empty() {
            let n = self.stream.write(&self.write_buf).await.map_err(broken)?;
            if n == 0 {
                return Err(broken("connection closed while writing"));
            }
            self.write_buf.advance(n);
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
        self.write_out().await?;
        // FIN after the last frame; the socket itself closes on drop.
        self.stream.shutdown().await.map_err(broken)
    }
}

/// One WebSocket: one binary message per frame.
pub struct WsConnection {
    socket: WebSocket,
    max_body: usize,
    /// The peer sent its close frame (the library answers it by itself).
    closed_by_peer: bool,
}

/// How long a closing server waits for the client's close frame, which
/// completes the closing handshake, before dropping the connection.
const WS_CLOSE_WAIT: Duration = Duration::from_secs(1);

#[async_trait]
impl FrameConnection for WsConnection {
    async fn read_frame(&mut self) -> Result<Option<Frame>, ConnError> {
        loop {
            match self.socket.recv().await {
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
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(_))) | None => {
                    self.closed_by_peer = true;
                    return Ok(None);
                }
                Some(Err(e)) => return Err(broken(format!("websocket failed: {e}"))),
            }
        }
    }

    async fn write_frame(&mut self, frame: Frame) -> Result<(), ConnError> {
        self.socket
            .feed(Message::Binary(frame.to_bytes()))
            .await
            .map_err(|e| broken(format!("websocket write failed: {e}")))
    }

    async fn flush(&mut self) -> Result<(), ConnError> {
        self.socket
            .flush()
            .await
            .map_err(|e| broken(format!("websocket flush failed: {e}")))
    }

    async fn close(&mut self, reason: CloseReason) -> Result<(), ConnError> {
        if self.closed_by_peer {
            // Our answer to the peer's close is queued already.
            return self.flush().await;
        }
        let close = CloseFrame {
            code: reason.ws_code(),
            reason: "".into(),
        };
        self.socket
            .send(Message::Close(Some(close)))
            .await
            .map_err(|e| broken(format!("websocket close failed: {e}")))?;
        // Let the client answer (the closing handshake), briefly: whatever
        // else it still sends is dropped.
        let _ = tokio::time::timeout(WS_CLOSE_WAIT, async {
            while let Some(Ok(message)) = self.socket.recv().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
        Ok(())
    }
}

/// Accepts TCP clients until shutdown, backing off when accept fails (out
/// of file descriptors) instead of spinning.
pub async fn run_tcp(gate: Arc<Gate>, listener: TcpListener) {
    let mut backoff = Duration::from_millis(5);
    loop {
        tokio::select! {
            _ = gate.shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    backoff = Duration::from_millis(5);
                    let conn = TcpConnection::new(stream, gate.limits.max_frame_bytes);
                    gate.spawn(Box::new(conn), peer);
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

/// The WebSocket gate's HTTP handler: upgrades and serves the connection.
pub async fn ws_upgrade(
    State(gate): State<Arc<Gate>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let max_body = gate.limits.max_frame_bytes;
    upgrade
        .max_message_size(max_body + HEADER_LEN)
        .max_frame_size(max_body + HEADER_LEN)
        .on_upgrade(move |socket| async move {
            let conn = WsConnection {
                socket,
                max_body,
                closed_by_peer: false,
            };
            gate.spawn(Box::new(conn), peer);
        })
}

/// Serves the WebSocket gate until shutdown.
pub async fn run_ws(gate: Arc<Gate>, listener: TcpListener) {
    let shutdown = gate.shutdown.clone();
    let app = axum::Router::new()
        .route("/", axum::routing::get(ws_upgrade))
        .with_state(gate);
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "websocket gate stopped");
    }
}
