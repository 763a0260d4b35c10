//! A lean client speaking bubble's real protocol: TCP from a chosen source
//! address, the full or resumed handshake, then sealed frames.
//!
//! The SDK (`bubble-client`) runs several tasks and buffers per client; to
//! hold 100,000 connections from one process the bench keeps only the
//! socket, the two record states and a small read buffer per connection.

use std::io;
use std::net::{IpAddr, SocketAddr};

use bytes::BytesMut;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::codec::Decoder;

use bubble_proto::secure::{
    ClientConfig, ClientHandshake, ClientMeta, OsRandom, PinnedServerKey, RecordOpener,
    RecordSealer, ResumeTicket, SecureChannel,
};
use bubble_proto::{Command, Frame, pb};

/// Largest body the bench accepts from the server (sync pages can be big).
pub const MAX_BODY: usize = 4 << 20;

/// Why a connection failed.
#[derive(Debug)]
pub enum ConnError {
    /// The socket failed (connect, read, write, or closed early).
    Io(io::Error),
    /// The server answered with an error frame.
    Refused(pb::Error),
    /// Anything else that breaks the protocol.
    Protocol(String),
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Io(e) => write!(f, "i/o: {e}"),
            ConnError::Refused(e) => write!(f, "refused: code {} {}", e.code, e.message),
            ConnError::Protocol(m) => write!(f, "protocol: {m}"),
        }
    }
}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        ConnError::Io(e)
    }
}

/// Where to connect and whom to trust.
#[derive(Clone)]
pub struct Target {
    /// The TCP gate.
    pub addr: SocketAddr,
    /// The pinned server key.
    pub pin: PinnedServerKey,
    /// The app every bench user belongs to.
    pub app: String,
    /// `SO_RCVBUF` for new sockets (None: the kernel's, autotuned). The
    /// soak's slow consumers use a small one so that a client that stops
    /// reading fills the server's socket after kilobytes, not megabytes.
    pub recv_buffer: Option<u32>,
    /// A cluster's selectors (`--nodes`): each connection asks one, in
    /// turn, for its gate. Empty: every connection goes to `addr`.
    pub selectors: Vec<String>,
}

impl Target {
    /// The handshake metadata of one device.
    pub fn meta(&self, device: &str) -> ClientMeta {
        ClientMeta {
            app_id: self.app.clone(),
            device_id: device.to_owned(),
            platform: "bench".into(),
            client_version: "bubble-bench".into(),
        }
    }
}

/// Source ports the bench hands out itself (per source address).
const PORTS: std::ops::Range<u32> = 10_000..65_000;

/// Next source port to try; starts at a random place so a run does not
/// trip over the previous run's TIME_WAIT sockets.
fn next_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let span = PORTS.end - PORTS.start;
    if NEXT.load(Ordering::Relaxed) == u32::MAX {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let _ = NEXT.compare_exchange(u32::MAX, seed % span, Ordering::Relaxed, Ordering::Relaxed);
    }
    (PORTS.start + NEXT.fetch_add(1, Ordering::Relaxed) % span) as u16
}

/// Opens a TCP connection from `source` (any 127.x address on loopback).
///
/// The source port is chosen here rather than by `bind(ip, 0)`: the
/// kernel's search for a free port on bind walks every port in use, which
/// at tens of thousands of sockets cost more CPU than the handshakes being
/// measured (`inet_bhash2_conflict` on top of the bench's profile).
pub async fn open(
    addr: SocketAddr,
    source: IpAddr,
    recv_buffer: Option<u32>,
) -> io::Result<TcpStream> {
    let mut last = None;
    for _ in 0..32 {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // Lets a port still in TIME_WAIT from an earlier connection be reused.
        socket.set_reuseaddr(true)?;
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size)?;
        }
        if let Err(e) = socket.bind(SocketAddr::new(source, next_port())) {
            last = Some(e);
            continue;
        }
        match socket.connect(addr).await {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            // That 4-tuple is taken (another socket got the same port): next.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::AddrInUse | io::ErrorKind::AddrNotAvailable
                ) =>
            {
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free source port")))
}

/// A connection that completed its handshake.
pub struct Established {
    /// The socket.
    pub stream: TcpStream,
    /// Record state.
    pub channel: SecureChannel,
    /// For the next reconnect.
    pub ticket: Option<ResumeTicket>,
    /// Bytes read past the handshake answer.
    pub leftover: BytesMut,
}

async fn read_frame(
    stream: &mut (impl AsyncReadExt + Unpin),
    buf: &mut BytesMut,
    codec: &mut bubble_proto::FrameCodec,
) -> Result<Option<Frame>, ConnError> {
    loop {
        // Decoding by hand instead of `Framed` (two 8 KiB buffers per connection).
        if let Some(frame) = codec
            .decode(buf)
            .map_err(|e| ConnError::Protocol(e.to_string()))?
        {
            return Ok(Some(frame));
        }
        if buf.capacity() - buf.len() < 512 {
            buf.reserve(4096);
        }
        if stream.read_buf(buf).await? == 0 {
            return Ok(None);
        }
    }
}

async fn exchange(
    mut stream: TcpStream,
    command: Command,
    body: Vec<u8>,
    hs: ClientHandshake,
) -> Result<Established, ConnError> {
    let mut out = BytesMut::new();
    Frame::new(command, 1, body).encode_into(&mut out);
    stream.write_all(&out).await?;
    let mut buf = BytesMut::with_capacity(1024);
    let mut codec = bubble_proto::FrameCodec::new(MAX_BODY);
    let answer = read_frame(&mut stream, &mut buf, &mut codec)
        .await?
        .ok_or_else(|| ConnError::Protocol("closed during the handshake".into()))?;
    match answer.command {
        Command::HandshakeAnswer => {
            let session = hs
                .finish(&answer.body)
                .map_err(|e| ConnError::Protocol(e.to_string()))?;
            Ok(Established {
                stream,
                channel: session.channel,
                ticket: session.ticket,
                leftover: buf,
            })
        }
        Command::Error => Err(ConnError::Refused(
            pb::Error::decode(answer.body).unwrap_or_default(),
        )),
        other => Err(ConnError::Protocol(format!(
            "expected a handshake answer, got {other}"
        ))),
    }
}

/// Full handshake (RSA + ECDH) with a token.
pub async fn connect_full(
    target: &Target,
    source: IpAddr,
    device: &str,
    token: &str,
) -> Result<Established, ConnError> {
    let config = ClientConfig {
        server_key: target.pin.clone(),
        meta: target.meta(device),
    };
    let (hs, hello) = ClientHandshake::start(&config, token, &mut OsRandom)
        .map_err(|e| ConnError::Protocol(e.to_string()))?;
    let stream = open(target.addr, source, target.recv_buffer).await?;
    exchange(stream, Command::HandshakeHello, hello, hs).await
}

/// Resumption with the last session's ticket (no RSA).
pub async fn connect_resume(
    target: &Target,
    source: IpAddr,
    device: &str,
    ticket: &ResumeTicket,
) -> Result<Established, ConnError> {
    let (hs, hello) = ClientHandshake::resume(&target.meta(device), ticket, &mut OsRandom)
        .map_err(|e| ConnError::Protocol(e.to_string()))?;
    let stream = open(target.addr, source, target.recv_buffer).await?;
    exchange(stream, Command::ResumeHello, hello, hs).await
}

/// The sending half of an established connection.
pub struct Writer {
    half: OwnedWriteHalf,
    sealer: RecordSealer,
    buf: BytesMut,
    next_seq: u32,
}

impl Writer {
    /// Seals and writes one request; returns its seq.
    pub async fn request(&mut self, command: Command, body: Vec<u8>) -> Result<u32, ConnError> {
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        let seq = self.next_seq;
        let sealed = self
            .sealer
            .seal(&Frame::new(command, seq, body))
            .map_err(|e| ConnError::Protocol(e.to_string()))?;
        self.buf.clear();
        sealed.encode_into(&mut self.buf);
        self.half.write_all(&self.buf).await?;
        Ok(seq)
    }

    /// The seq the next request will carry.
    pub fn peek_seq(&self) -> u32 {
        self.next_seq.wrapping_add(1).max(1)
    }
}

/// The receiving half of an established connection.
pub struct Reader {
    half: OwnedReadHalf,
    opener: RecordOpener,
    buf: BytesMut,
    codec: bubble_proto::FrameCodec,
}

impl Reader {
    /// The next opened frame, or `None` when the server closed.
    pub async fn next(&mut self) -> Result<Option<Frame>, ConnError> {
        let Some(frame) = read_frame(&mut self.half, &mut self.buf, &mut self.codec).await? else {
            return Ok(None);
        };
        self.opener
            .open(&frame)
            .map(Some)
            .map_err(|e| ConnError::Protocol(format!("record: {e}")))
    }
}

impl Established {
    /// Splits into halves that two tasks can own.
    pub fn split(self) -> (Writer, Reader) {
        let (read, write) = self.stream.into_split();
        let (sealer, opener) = self.channel.split();
        (
            Writer {
                half: write,
                sealer,
                buf: BytesMut::with_capacity(256),
                next_seq: 1,
            },
            Reader {
                half: read,
                opener,
                buf: self.leftover,
                codec: bubble_proto::FrameCodec::new(MAX_BODY),
            },
        )
    }
}

/// The body of a text message from `sender` with sequence `seq`, stamped
/// with `sent_ns` (nanoseconds on the bench's clock).
pub fn payload(sender: u32, seq: u64, sent_ns: u64) -> Vec<u8> {
    format!("{sender}:{seq}:{sent_ns}").into_bytes()
}

/// [`payload`] followed by `|` and filler up to `size` bytes: a message
/// of a realistic size that still carries its sender, seq and send time.
pub fn padded_payload(sender: u32, seq: u64, sent_ns: u64, size: usize) -> Vec<u8> {
    let mut body = payload(sender, seq, sent_ns);
    if body.len() < size {
        body.push(b'|');
        body.resize(size, b'.');
    }
    body
}

/// Reads a payload back (padded or not): `(sender, seq, sent_ns)`.
pub fn parse_payload(body: &[u8]) -> Option<(u32, u64, u64)> {
    let text = std::str::from_utf8(body).ok()?;
    let text = text.split_once('|').map_or(text, |(head, _)| head);
    let mut parts = text.splitn(3, ':');
    Some((
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    ))
}

/// A `SendRequest` body.
pub fn send_body(to: &pb::Conversation, client_msg_id: String, seq: u64, text: Vec<u8>) -> Vec<u8> {
    pb::SendRequest {
        to: Some(to.clone()),
        client_msg_id,
        client_seq: seq,
        create_time: bubble_core::now_millis(),
        content: Some(pb::Content {
            r#type: pb::ContentType::Text as i32,
            body: text.into(),
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// A direct conversation with `user`.
pub fn direct(user: &str) -> pb::Conversation {
    pb::Conversation {
        kind: pb::ConversationKind::Direct as i32,
        id: user.to_owned(),
    }
}

/// A group conversation (normal or super: the server knows which).
pub fn group(id: &str) -> pb::Conversation {
    pb::Conversation {
        kind: pb::ConversationKind::Group as i32,
        id: id.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_carries_sender_seq_and_send_time() {
        let body = payload(42, 7, 123_456_789);
        assert_eq!(parse_payload(&body), Some((42, 7, 123_456_789)));
        assert_eq!(parse_payload(b"not a bench message"), None);
    }

    #[test]
    fn a_padded_payload_has_the_size_asked_for_and_reads_back_the_same() {
        let body = padded_payload(42, 7, 123_456_789, 1024);
        assert_eq!(body.len(), 1024);
        assert_eq!(parse_payload(&body), Some((42, 7, 123_456_789)));
        assert_eq!(
            padded_payload(1, 2, 3, 0),
            payload(1, 2, 3),
            "never cut short"
        );
    }

    #[test]
    fn connections_spread_over_source_addresses() {
        use crate::traffic::{source, sources_for};
        assert_eq!(source(0, 3).to_string(), "127.0.0.2");
        assert_eq!(source(4, 3).to_string(), "127.0.0.3");
        assert_eq!(sources_for(100_000), 7);
        assert_eq!(sources_for(10), 1);
    }
}
