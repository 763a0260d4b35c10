//! Harness of the `ws_message` fuzz target: the server's path from
//! WebSocket bytes to frames. tungstenite reads the bytes as a client's
//! frames (server role: masked frames only) under the limits the gate sets
//! (`gate::transport::ws_upgrade`: message and frame at most the maximum
//! body plus a header); each binary message then goes through
//! `Frame::parse_exact`, as `WsConnection::read_frame` does.
//!
//! Neither may panic; a message over the limit must be refused by
//! tungstenite, and what parses as a frame re-encodes to the message.
//!
//! Shared, through `#[path]`, by `fuzz/fuzz_targets/ws_message.rs` and the
//! replay of `fuzz/regressions/ws_message/` in bubble-server's tests.

use std::io::{self, Read, Write};

use bubble_proto::{Command, Frame, FrameError, HEADER_LEN, pb};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Small, so the fuzzer reaches the limits; the gate's default is 1 MiB.
const MAX_BODY: usize = 4096;

/// The client's bytes to read; what the server writes goes nowhere.
struct Wire<'a>(&'a [u8]);

impl Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs one input; panics on a violation of the path's contract.
pub fn run(data: &[u8]) {
    let limit = MAX_BODY + HEADER_LEN;
    let config = WebSocketConfig::default()
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit));
    let mut socket = WebSocket::from_raw_socket(Wire(data), Role::Server, Some(config));
    // Each read consumes input or fails; the bound only guards the harness.
    for _ in 0..=data.len() {
        match socket.read() {
            Ok(Message::Binary(bytes)) => {
                assert!(
                    bytes.len() <= limit,
                    "tungstenite let a {} byte message through",
                    bytes.len()
                );
                match Frame::parse_exact(&bytes, MAX_BODY) {
                    Ok(frame) => assert_eq!(frame.to_bytes(), bytes),
                    Err(FrameError::Incomplete) => assert!(bytes.len() < HEADER_LEN),
                    Err(_) => {} // the connection closes with a malformed-frame error
                }
            }
            // Text is refused by the gate; pings, pongs and raw frames skipped.
            Ok(_) => {}
            Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => return,
            Err(_) => return, // the connection closes
        }
    }
}

/// A client's WebSocket frame, masked with the zero key (so the payload
/// reads as itself, and the fuzzer can mutate it in place).
fn ws_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(payload);
    out
}

/// A session's first messages as a client sends them: frames in binary
/// messages, one fragmented, a ping between, a close at the end.
pub fn seeds() -> Vec<Vec<u8>> {
    const BINARY: u8 = 2;
    const CONTINUATION: u8 = 0;
    const PING: u8 = 9;
    const CLOSE: u8 = 8;
    let ping = Frame::from_message(Command::Ping, 1, &pb::Ping { client_time: 42 }).to_bytes();
    let hello = Frame::new(Command::HandshakeHello, 1, vec![1u8; 500]).to_bytes();
    let (first, second) = hello.split_at(200);
    let session = [
        ws_frame(true, BINARY, &ping),
        ws_frame(false, BINARY, first),
        ws_frame(true, PING, b"are you there"),
        ws_frame(true, CONTINUATION, second),
        ws_frame(true, CLOSE, &1000u16.to_be_bytes()),
    ]
    .concat();
    let over_limit = Frame::new(Command::Send, 2, vec![0u8; MAX_BODY + 1]).to_bytes();
    vec![
        session,
        ws_frame(true, BINARY, &ping[..HEADER_LEN - 1]),
        ws_frame(true, BINARY, &over_limit),
    ]
}
