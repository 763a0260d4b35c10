//! Why bytes are not a frame.

use crate::command::Command;

/// A frame could not be read. Every variant but [`FrameError::Incomplete`]
/// means the peer is broken or hostile: answer with an error frame and close.
/// [`FrameError::seq`] is the seq to answer with, when the header was read.
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
    #[error("unknown flag bits {flags:#010b}: upgrade the server or fix the client")]
    UnknownFlags {
        /// The flags byte.
        flags: u8,
        /// The frame's seq (the rest of the header is version 1's).
        seq: u32,
    },
    /// The declared body exceeds the configured maximum.
    #[error(
        "frame body of {len} bytes exceeds the maximum of {max}: send large content by reference"
    )]
    TooLarge {
        /// Declared body length.
        len: usize,
        /// Configured maximum.
        max: usize,
        /// The frame's seq.
        seq: u32,
    },
    /// A delimited message (WebSocket) whose length disagrees with its header.
    #[error("frame declares a {declared}-byte body but carries {actual} bytes")]
    LengthMismatch {
        /// Length in the header.
        declared: usize,
        /// Bytes actually present.
        actual: usize,
        /// The frame's seq.
        seq: u32,
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

impl FrameError {
    /// The seq of the frame this error is about, when its header could be
    /// read (version 1's layout, whatever else is wrong with it): the seq an
    /// error answer carries. `None` when the bytes are not a bubble header
    /// (bad magic, another version) or no header was involved.
    pub fn seq(&self) -> Option<u32> {
        match self {
            FrameError::UnknownFlags { seq, .. }
            | FrameError::TooLarge { seq, .. }
            | FrameError::LengthMismatch { seq, .. } => Some(*seq),
            FrameError::Incomplete
            | FrameError::BadMagic(_)
            | FrameError::UnsupportedVersion(_)
            | FrameError::BadBody { .. }
            | FrameError::Io(_) => None,
        }
    }
}

impl From<std::io::Error> for FrameError {
    fn from(e: std::io::Error) -> Self {
        FrameError::Io(e.to_string())
    }
}
