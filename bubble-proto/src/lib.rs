//! bubble's wire format: pure codecs, no sockets.
//!
//! # Layout
//!
//! - [`frame`]: the 14-byte header and [`Frame`], the unit on every transport.
//! - [`command`]: the command table, with a range reserved for products' own commands.
//! - [`codec`]: a `tokio_util` codec that splits a TCP stream into frames.
//! - [`pb`]: the protobuf bodies generated from `proto/bubble.proto`.
//! - [`error`]: why bytes are not a frame.
//!
//! A malformed frame is an error value ([`FrameError`]), never a panic and
//! never an allocation larger than the configured maximum body.

pub mod codec;
pub mod command;
pub mod error;
pub mod frame;
pub mod secure;

/// Protobuf messages of the client protocol (package `bubble.v1`).
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/bubble.v1.rs"));
}

pub use codec::FrameCodec;
pub use command::{BUSINESS_FIRST, Command};
pub use error::FrameError;
pub use frame::{DEFAULT_MAX_BODY, Frame, HEADER_LEN, Header, MAGIC, PROTOCOL_VERSION, flags};
