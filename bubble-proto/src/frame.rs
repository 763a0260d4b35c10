//! The frame: a fixed 14-byte header followed by a protobuf body.
//!
//! ```text
//!  0      2   3   4       6               10              14
//!  +------+---+---+-------+---------------+---------------+------------
//!  | magic|ver|flg|command|  request seq  |  body length  | body ...
//!  +------+---+---+-------+---------------+---------------+------------
//!   0xB0BB  1       u16 BE     u32 BE          u32 BE
//! ```
//!
//! The same bytes travel over TCP (a stream of frames) and WebSocket (one
//! binary message per frame).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::command::Command;
use crate::error::FrameError;

/// First two bytes of every frame: lets a server reject a non-bubble peer
/// (an HTTP request, a TLS hello) on its first bytes.
pub const MAGIC: u16 = 0xB0BB;

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u8 = 1;

/// Size of the fixed header in bytes.
pub const HEADER_LEN: usize = 14;

/// Default hard cap on a body: large content goes to a CDN, not into frames.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

/// Header flag bits.
pub mod flags {
    /// The body is a sealed record of the secure channel, not plain protobuf.
    pub const ENCRYPTED: u8 = 0b0000_0001;
    /// The frame answers the request with the same seq (set by servers, so a
    /// client can tell answers from pushes without knowing every command).
    pub const RESPONSE: u8 = 0b0000_0010;
    /// Every flag this version defines; others must be zero.
    pub const KNOWN: u8 = ENCRYPTED | RESPONSE;
}

/// The fixed header of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Protocol version of the sender.
    pub version: u8,
    /// Bit set, see [`flags`].
    pub flags: u8,
    /// What the body is.
    pub command: Command,
    /// Chosen by the requester; the answer carries the same seq. Pushes use 0.
    pub seq: u32,
    /// Length of the body that follows, in bytes.
    pub body_len: u32,
}

impl Header {
    /// Writes the header's 14 bytes.
    pub fn put(&self, dst: &mut impl BufMut) {
        dst.put_u16(MAGIC);
        dst.put_u8(self.version);
        dst.put_u8(self.flags);
        dst.put_u16(self.command.code());
        dst.put_u32(self.seq);
        dst.put_u32(self.body_len);
    }

    /// The header's bytes, used as associated data when sealing a record so
    /// that a header cannot be swapped between records.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let mut cursor = &mut out[..];
        self.put(&mut cursor);
        out
    }

    /// Parses a header from exactly [`HEADER_LEN`] bytes and checks it
    /// against `max_body`. Never allocates.
    ///
    /// A code this version does not know is not an error: it comes back as
    /// [`Command::Unknown`], for the receiver to answer. Errors about a
    /// header whose layout is version 1's carry its seq ([`FrameError::seq`]).
    pub fn parse(mut src: &[u8], max_body: usize) -> Result<Header, FrameError> {
        if src.len() < HEADER_LEN {
            return Err(FrameError::Incomplete);
        }
        let magic = src.get_u16();
        if magic != MAGIC {
            return Err(FrameError::BadMagic(magic));
        }
        let version = src.get_u8();
        if version != PROTOCOL_VERSION {
            return Err(FrameError::UnsupportedVersion(version));
        }
        let flags = src.get_u8();
        let command = Command::from_wire(src.get_u16());
        let seq = src.get_u32();
        let body_len = src.get_u32();
        if flags & !flags::KNOWN != 0 {
            return Err(FrameError::UnknownFlags { flags, seq });
        }
        if body_len as usize > max_body {
            return Err(FrameError::TooLarge {
                len: body_len as usize,
                max: max_body,
                seq,
            });
        }
        Ok(Header {
            version,
            flags,
            command,
            seq,
            body_len,
        })
    }
}

/// A whole frame: header fields and the body bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Header flags (see [`flags`]).
    pub flags: u8,
    /// What the body is.
    pub command: Command,
    /// Request seq; answers echo it, pushes use 0.
    pub seq: u32,
    /// The protobuf body (or a sealed record when [`flags::ENCRYPTED`] is set).
    pub body: Bytes,
}

impl Frame {
    /// A frame with a plain body.
    pub fn new(command: Command, seq: u32, body: impl Into<Bytes>) -> Frame {
        Frame {
            flags: 0,
            command,
            seq,
            body: body.into(),
        }
    }

    /// A frame whose body is `message` encoded as protobuf.
    pub fn from_message(command: Command, seq: u32, message: &impl prost::Message) -> Frame {
        Frame::new(command, seq, message.encode_to_vec())
    }

    /// The same frame marked as the answer to request `seq`.
    pub fn into_response(mut self) -> Frame {
        self.flags |= flags::RESPONSE;
        self
    }

    /// Whether this frame answers a request.
    pub fn is_response(&self) -> bool {
        self.flags & flags::RESPONSE != 0
    }

    /// The header this frame is sent with.
    pub fn header(&self) -> Header {
        Header {
            version: PROTOCOL_VERSION,
            flags: self.flags,
            command: self.command,
            seq: self.seq,
            body_len: self.body.len() as u32,
        }
    }

    /// Decodes the body as protobuf message `M`.
    pub fn decode_body<M: prost::Message + Default>(&self) -> Result<M, FrameError> {
        M::decode(self.body.clone()).map_err(|e| FrameError::BadBody {
            command: self.command,
            reason: e.to_string(),
        })
    }

    /// Appends the encoded frame to `dst`.
    pub fn encode_into(&self, dst: &mut BytesMut) {
        dst.reserve(HEADER_LEN + self.body.len());
        self.header().put(dst);
        dst.extend_from_slice(&self.body);
    }

    /// The encoded frame as one buffer (a WebSocket binary message).
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(HEADER_LEN + self.body.len());
        self.encode_into(&mut buf);
        buf.freeze()
    }

    /// Parses one complete frame from `src` with nothing left over: the
    /// WebSocket case, where the transport already delimits messages.
    pub fn parse_exact(src: &[u8], max_body: usize) -> Result<Frame, FrameError> {
        let header = Header::parse(src, max_body)?;
        let body = &src[HEADER_LEN..];
        if body.len() != header.body_len as usize {
            return Err(FrameError::LengthMismatch {
                declared: header.body_len as usize,
                actual: body.len(),
                seq: header.seq,
            });
        }
        Ok(Frame {
            flags: header.flags,
            command: header.command,
            seq: header.seq,
            body: Bytes::copy_from_slice(body),
        })
    }
}
