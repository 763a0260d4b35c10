//! Abusive clients for the soak, each kind in its own loop: sockets that
//! never handshake (TCP, WebSocket before and after the upgrade),
//! WebSocket pings without reading, garbage, oversized frames, forged
//! records. Each counts whether the server closed it (as it should) or it
//! outlived its deadline (then it gives up by itself, so the bench never
//! holds more than a few of them).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use bubble_proto::secure::{ClientConfig, ClientHandshake, OsRandom};
use bubble_proto::{Command, Frame, HEADER_LEN, MAGIC, PROTOCOL_VERSION};

use super::client::Phase;
use crate::conn::{self, Target};

/// The kinds of abuse, each with its counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abuse {
    /// TCP: connects and never sends a byte.
    TcpSilent,
    /// TCP: a header with a bad magic and then noise.
    TcpGarbage,
    /// TCP: a header announcing a body over the limit, then bytes of it.
    TcpOversized,
    /// TCP: a full handshake, then a record that fails authentication.
    TcpForgedRecord,
    /// WebSocket port: connects and never sends the HTTP upgrade.
    WsSilent,
    /// WebSocket: upgrades and never sends the handshake frame.
    WsNoHello,
    /// WebSocket: a full handshake, then pings without ever reading.
    WsPingNoRead,
    /// WebSocket: a text message (frames are binary).
    WsText,
    /// WebSocket: a binary message over the limit.
    WsOversized,
}

impl Abuse {
    /// Every kind, in the order of the report.
    pub const ALL: [Abuse; 9] = [
        Abuse::TcpSilent,
        Abuse::TcpGarbage,
        Abuse::TcpOversized,
        Abuse::TcpForgedRecord,
        Abuse::WsSilent,
        Abuse::WsNoHello,
        Abuse::WsPingNoRead,
        Abuse::WsText,
        Abuse::WsOversized,
    ];

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Abuse::TcpSilent => "tcp_silent",
            Abuse::TcpGarbage => "tcp_garbage",
            Abuse::TcpOversized => "tcp_oversized",
            Abuse::TcpForgedRecord => "tcp_forged_record",
            Abuse::WsSilent => "ws_silent_no_upgrade",
            Abuse::WsNoHello => "ws_upgraded_no_hello",
            Abuse::WsPingNoRead => "ws_ping_without_reading",
            Abuse::WsText => "ws_text_message",
            Abuse::WsOversized => "ws_oversized",
        }
    }

    /// How many of this kind are open at once, and how long one waits for
    /// the server to close it before giving up.
    fn shape(self) -> (usize, Duration) {
        match self {
            Abuse::TcpSilent | Abuse::WsSilent | Abuse::WsNoHello => (8, Duration::from_secs(40)),
            Abuse::WsPingNoRead => (2, Duration::from_secs(150)),
            _ => (1, Duration::from_secs(10)),
        }
    }

    /// The pause between two attempts of one slot.
    fn pause(self) -> Duration {
        match self {
            Abuse::TcpSilent | Abuse::WsSilent | Abuse::WsNoHello | Abuse::WsPingNoRead => {
                Duration::from_millis(500)
            }
            Abuse::TcpForgedRecord => Duration::from_secs(5),
            _ => Duration::from_secs(2),
        }
    }
}

/// One kind's counts.
#[derive(Default)]
pub struct Tally {
    /// Attempts (connections opened).
    pub opened: AtomicU64,
    /// Closed by the server within the deadline.
    pub closed_by_server: AtomicU64,
    /// Still open at the deadline: closed by the bench.
    pub outlived: AtomicU64,
    /// Could not even connect (or the upgrade / handshake failed).
    pub failed: AtomicU64,
    /// The longest time the server took to close one, milliseconds.
    pub slowest_close_ms: AtomicU64,
}

/// The counts of every kind, in [`Abuse::ALL`] order.
pub type Tallies = Vec<Tally>;

/// How one attempt ended.
enum Ended {
    ByServer(Duration),
    Outlived,
}

/// Runs one kind's slots until the phase reaches `Quiesce`.
pub async fn run(
    kind: Abuse,
    target: Arc<Target>,
    ws: SocketAddr,
    token: String,
    tallies: Arc<Tallies>,
    phase: watch::Receiver<Phase>,
) {
    let (slots, deadline) = kind.shape();
    let tally_at = Abuse::ALL.iter().position(|k| *k == kind).expect("listed");
    let mut tasks = Vec::new();
    for slot in 0..slots {
        let (target, token, tallies, mut phase) = (
            target.clone(),
            token.clone(),
            tallies.clone(),
            phase.clone(),
        );
        tasks.push(tokio::spawn(async move {
            // Stagger the slots so they do not open and close in step.
            tokio::time::sleep(kind.pause().mul_f64(slot as f64 / slots as f64 + 0.1)).await;
            while *phase.borrow() < Phase::Quiesce {
                let tally = &tallies[tally_at];
                tally.opened.fetch_add(1, Ordering::Relaxed);
                let attempt = one(kind, &target, ws, &token, deadline, slot);
                let ended = tokio::select! {
                    e = attempt => e,
                    _ = phase.wait_for(|p| *p >= Phase::Quiesce) => return,
                };
                match ended {
                    Ok(Ended::ByServer(took)) => {
                        tally.closed_by_server.fetch_add(1, Ordering::Relaxed);
                        tally
                            .slowest_close_ms
                            .fetch_max(took.as_millis() as u64, Ordering::Relaxed);
                    }
                    Ok(Ended::Outlived) => {
                        tally.outlived.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        if tally.failed.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("bubble-bench: soak: {}: {e}", kind.name());
                        }
                    }
                }
                tokio::time::sleep(kind.pause()).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn one(
    kind: Abuse,
    target: &Target,
    ws: SocketAddr,
    token: &str,
    deadline: Duration,
    slot: usize,
) -> std::io::Result<Ended> {
    // One device per slot: two sessions of one device replace each other.
    let device = format!("abuse-{slot}");
    let source = crate::traffic::source(0, 1);
    match kind {
        Abuse::TcpSilent => {
            let s = conn::open(target.addr, source, None).await?;
            Ok(wait_closed(s, Instant::now(), deadline).await)
        }
        Abuse::TcpGarbage => {
            let mut s = conn::open(target.addr, source, None).await?;
            s.write_all(b"GET / HTTP/1.1\r\nHost: bubble\r\n\r\nnot a frame at all")
                .await?;
            Ok(wait_closed(s, Instant::now(), deadline).await)
        }
        Abuse::TcpOversized => {
            let mut s = conn::open(target.addr, source, None).await?;
            let mut header = BytesMut::new();
            header.extend_from_slice(&MAGIC.to_be_bytes());
            header.extend_from_slice(&[PROTOCOL_VERSION, 0]);
            header.extend_from_slice(&Command::HandshakeHello.code().to_be_bytes());
            header.extend_from_slice(&1u32.to_be_bytes());
            header.extend_from_slice(&(64u32 << 20).to_be_bytes());
            debug_assert_eq!(header.len(), HEADER_LEN);
            s.write_all(&header).await?;
            let started = Instant::now();
            // Some of the announced body: a server that buffered it first
            // would take it all; one that checks the header closes now.
            let chunk = vec![0u8; 64 * 1024];
            for _ in 0..4 {
                if s.write_all(&chunk).await.is_err() {
                    return Ok(Ended::ByServer(started.elapsed()));
                }
            }
            Ok(wait_closed(s, started, deadline).await)
        }
        Abuse::TcpForgedRecord => {
            let est = conn::connect_full(target, source, &device, token)
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let mut s = est.stream;
            // A record whose tag cannot verify: sealed by nobody.
            let mut frame = Frame::new(Command::Ping, 2, vec![7u8; 64]);
            frame.flags = bubble_proto::flags::ENCRYPTED;
            let mut forged = BytesMut::new();
            frame.encode_into(&mut forged);
            s.write_all(&forged).await?;
            Ok(wait_closed(s, Instant::now(), deadline).await)
        }
        Abuse::WsSilent => {
            let s = conn::open(ws, source, None).await?;
            Ok(wait_closed(s, Instant::now(), deadline).await)
        }
        Abuse::WsNoHello => {
            let (s, _) = ws_upgrade(ws).await?;
            Ok(wait_closed(s, Instant::now(), deadline).await)
        }
        Abuse::WsText => {
            let (mut s, _) = ws_upgrade(ws).await?;
            s.write_all(&ws_frame(0x1, b"hello, is this JSON?")).await?;
            Ok(wait_closed(s, Instant::now(), deadline).await)
        }
        Abuse::WsOversized => {
            let (mut s, _) = ws_upgrade(ws).await?;
            let body = vec![0u8; (1 << 20) + 4096];
            let started = Instant::now();
            if s.write_all(&ws_frame(0x2, &body)).await.is_err() {
                return Ok(Ended::ByServer(started.elapsed()));
            }
            Ok(wait_closed(s, started, deadline).await)
        }
        Abuse::WsPingNoRead => {
            let (mut s, leftover) = ws_upgrade(ws).await?;
            ws_handshake(&mut s, leftover, target, token, &device).await?;
            // From here on, never read: pings at 50 a second, each asking
            // for a pong the server cannot deliver once the socket fills.
            let started = Instant::now();
            let ping = ws_frame(0x9, &[b'p'; 64]);
            while started.elapsed() < deadline {
                let write = tokio::time::timeout(Duration::from_secs(2), s.write_all(&ping));
                match write.await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Ok(Ended::ByServer(started.elapsed())),
                    // The server stopped reading too (its pongs are stuck):
                    // keep trying until the deadline.
                    Err(_) => {}
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(Ended::Outlived)
        }
    }
}

/// Reads (and drops) whatever comes until the server closes or `deadline`
/// passes since `started`.
async fn wait_closed(mut s: TcpStream, started: Instant, deadline: Duration) -> Ended {
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Ended::ByServer(started.elapsed()),
            Ok(Ok(_)) => {}
            Err(_) => return Ended::Outlived,
        }
    }
}

/// A client WebSocket frame (masked, as a client must), FIN set.
pub fn ws_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x5a, 0x17, 0xc3, 0x81];
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Reads one server WebSocket frame (unmasked) from `s` into `buf`:
/// `(opcode, payload)`.
async fn ws_read(s: &mut TcpStream, buf: &mut BytesMut) -> std::io::Result<(u8, Vec<u8>)> {
    loop {
        if let Some((opcode, start, len)) = ws_parse_header(buf)
            && buf.len() >= start + len
        {
            let frame = buf.split_to(start + len);
            return Ok((opcode, frame[start..].to_vec()));
        }
        if s.read_buf(buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// A server frame's opcode, where its payload starts and its length.
pub fn ws_parse_header(buf: &[u8]) -> Option<(u8, usize, usize)> {
    let (b0, b1) = (*buf.first()?, *buf.get(1)?);
    let (start, len) = match b1 & 0x7f {
        126 => (
            4,
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
        ),
        127 => (
            10,
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
        ),
        n => (2, n as usize),
    };
    Some((b0 & 0x0f, start, len))
}

/// Opens the WebSocket gate and upgrades; returns the stream and any bytes
/// read past the 101 answer.
async fn ws_upgrade(ws: SocketAddr) -> std::io::Result<(TcpStream, BytesMut)> {
    let mut s = conn::open(ws, crate::traffic::source(0, 1), None).await?;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {ws}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(request.as_bytes()).await?;
    let mut buf = BytesMut::with_capacity(1024);
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let read = tokio::time::timeout(Duration::from_secs(10), s.read_buf(&mut buf)).await;
        match read {
            Ok(Ok(0)) | Err(_) => return Err(std::io::Error::other("no upgrade answer")),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
    };
    if !buf.starts_with(b"HTTP/1.1 101") {
        let line = String::from_utf8_lossy(&buf[..end.min(40)]).into_owned();
        return Err(std::io::Error::other(format!("upgrade refused: {line}")));
    }
    let leftover = buf.split_off(end);
    Ok((s, leftover))
}

/// The full handshake over an upgraded WebSocket (one binary message each
/// way); the session itself is not needed afterwards.
async fn ws_handshake(
    s: &mut TcpStream,
    mut buf: BytesMut,
    target: &Target,
    token: &str,
    device: &str,
) -> std::io::Result<()> {
    let config = ClientConfig {
        server_key: target.pin.clone(),
        meta: target.meta(&format!("ws-{device}")),
    };
    let (hs, hello) = ClientHandshake::start(&config, token, &mut OsRandom)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let frame = Frame::new(Command::HandshakeHello, 1, hello).to_bytes();
    s.write_all(&ws_frame(0x2, &frame)).await?;
    let answer = loop {
        let (opcode, payload) = tokio::time::timeout(Duration::from_secs(10), ws_read(s, &mut buf))
            .await
            .map_err(|_| std::io::Error::other("no handshake answer"))??;
        if opcode == 0x2 {
            break Frame::parse_exact(&payload, conn::MAX_BODY)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
    };
    if answer.command != Command::HandshakeAnswer {
        return Err(std::io::Error::other(format!(
            "handshake refused: {}",
            answer.command
        )));
    }
    hs.finish(&answer.body)
        .map(|_| ())
        .map_err(|e| std::io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_frame_is_masked_and_its_length_encoded_by_size() {
        let small = ws_frame(0x9, b"ab");
        assert_eq!(&small[..2], &[0x89, 0x82]);
        assert_eq!(small.len(), 2 + 4 + 2);
        assert_eq!(small[6] ^ small[2], b'a', "unmasks with the key");
        let medium = ws_frame(0x2, &[0; 300]);
        assert_eq!(&medium[1..4], &[0x80 | 126, 1, 44]);
        let large = ws_frame(0x2, &[0; 70_000]);
        assert_eq!(large[1], 0x80 | 127);
        assert_eq!(large.len(), 2 + 8 + 4 + 70_000);
    }

    #[test]
    fn a_server_frame_header_gives_opcode_offset_and_length() {
        assert_eq!(ws_parse_header(&[0x82, 5]), Some((2, 2, 5)));
        assert_eq!(ws_parse_header(&[0x82, 126, 1, 0]), Some((2, 4, 256)));
        assert_eq!(ws_parse_header(&[0x82, 126, 1]), None, "incomplete");
        assert_eq!(ws_parse_header(&[0x8a]), None);
    }
}
