//! A `tokio_util` codec for a stream of frames (TCP).

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::error::FrameError;
use crate::frame::{DEFAULT_MAX_BODY, Frame, HEADER_LEN, Header};

/// Splits a byte stream into frames and writes frames onto it.
///
/// The header is checked before any body byte is buffered, so a peer that
/// declares a huge body is refused at once instead of making us allocate.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max_body: usize,
    /// The header of the frame whose body is still arriving.
    pending: Option<Header>,
}

impl FrameCodec {
    /// A codec refusing bodies longer than `max_body` bytes.
    pub fn new(max_body: usize) -> FrameCodec {
        FrameCodec {
            max_body,
            pending: None,
        }
    }

    /// The configured maximum body length.
    pub fn max_body(&self) -> usize {
        self.max_body
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(DEFAULT_MAX_BODY)
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let header = match self.pending {
            Some(header) => header,
            None => {
                if src.len() < HEADER_LEN {
                    return Ok(None);
                }
                let header = Header::parse(&src[..HEADER_LEN], self.max_body)?;
                let _ = src.split_to(HEADER_LEN);
                self.pending = Some(header);
                header
            }
        };
        let body_len = header.body_len as usize;
        if src.len() < body_len {
            // Reserve only what this (already size-checked) frame needs.
            src.reserve(body_len - src.len());
            return Ok(None);
        }
        self.pending = None;
        let body = src.split_to(body_len).freeze();
        Ok(Some(Frame {
            flags: header.flags,
            command: header.command,
            seq: header.seq,
            body,
        }))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() && self.pending.is_none() => Ok(None),
            None => Err(FrameError::Io(
                "connection closed in the middle of a frame".into(),
            )),
        }
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.encode(&frame, dst)
    }
}

impl Encoder<&Frame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        // Refuse to send what the peer would refuse to read.
        if frame.body.len() > self.max_body {
            return Err(FrameError::TooLarge {
                len: frame.body.len(),
                max: self.max_body,
                seq: frame.seq,
            });
        }
        frame.encode_into(dst);
        Ok(())
    }
}
