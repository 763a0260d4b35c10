//! Why bytes are not a frame.

use crate::command::Command;

/// A frame could not be read. Every variant but [`FrameError::Incomplete`]
/// means the peer is broken or hostile: answer with an error frame and close.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not enough bytes yet: ordinary control flow for a stream decoder.
    #[error("incomplete frame: more bytes needed")]
    Incomplete,
    /// The first two bytes are not bubble's magic: not a bubble client.
    #[error("bad magic {0:#06x}: the peer does not speak bubble (expected 0xb0bb)")]
    BadMagic(u16),
    /// A protocol version this server does not speak.
    #[error("unsupported protocol version {0}: this build speaks version 1")]
    UnsupportedVersion(u8),
    /// Flag bits this version does not define.
    #[error("unknown flag bits {0:#010b}: upgrade the server or fix the client")]
    UnknownFlags(u8),
    /// A reserved command code this version does not know.
    #[error("unknown command code {0}: not a bubble command and below the business range")]
    UnknownCommand(u16),
    /// The declared body exceeds the configured maximum.
    #[error(
        "frame body of {len} bytes exceeds the maximum of {max}: send large content by reference"
    )]
    TooLarge {
        /// Declared body length.
        len: usize,
        /// Configured maximum.
        max: usize,
    },
    /// A delimited message (WebSocket) whose length disagrees with its header.
    #[error("frame declares a {declared}-byte body but carries {actual} bytes")]
    LengthMismatch {
        /// Length in the header.
        declared: usize,
        /// Bytes actually present.
        actual: usize,
    },
    /// The body is not the protobuf message its command calls for.
    #[error("body of {command} is not valid: {reason}")]
    BadBody {
        /// The frame's command.
        command: Command,
        /// What the protobuf decoder said.
        reason: String,
    },
    /// The transport failed underneath the codec.
    #[error("transport error: {0}")]
    Io(String),
}

impl From<std::io::Error> for FrameError {
    fn from(e: std::io::Error) -> Self {
        FrameError::Io(e.to_string())
    }
}
