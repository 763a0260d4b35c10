//! Records: every frame after the handshake, sealed with AES-256-GCM.
//!
//! Each direction has its own key and its own counter, starting at 0 and
//! increasing by one per record. The nonce is `00 00 00 00 || counter (u64
//! big-endian)`, so the receiver only accepts the next record in order: a
//! replayed, reordered, dropped, truncated or modified record fails to open.
//! The frame header (with [`flags::ENCRYPTED`] set and `body_len` = the
//! sealed length) is the associated data, so neither the command nor the seq
//! can be swapped between records. After one failure the opener refuses
//! everything: the caller closes the connection.

use std::fmt;

use bytes::Bytes;

use super::aead::{Gcm, TAG_LEN};
use crate::frame::{Frame, Header, PROTOCOL_VERSION, flags};

/// Bytes a sealed record adds to the plain body (the GCM tag).
pub const RECORD_OVERHEAD: usize = TAG_LEN;

/// Why a record could not be sealed or opened. Any of these ends the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The record did not authenticate: tampered, replayed, reordered,
    /// truncated, or not sealed with this session's key. Deliberately one
    /// variant: which of these it was is not observable.
    #[error("record failed to authenticate: the connection must close")]
    BadRecord,
    /// A frame without the encrypted flag arrived after the handshake.
    #[error(
        "plaintext frame after the handshake: every frame must be sealed; the connection must close"
    )]
    NotEncrypted,
    /// An earlier record failed; this channel opens nothing any more.
    #[error("the secure channel failed earlier and is closed: reconnect")]
    Closed,
    /// 2^64 records in one direction: reconnect for fresh keys.
    #[error("record counter exhausted: reconnect for a fresh session")]
    CounterExhausted,
    /// The sealed body would not fit a frame's `u32` length.
    #[error("record of {0} bytes is too large for a frame")]
    TooLarge(usize),
}

fn nonce(counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    n
}

/// Seals outgoing frames (one direction of a session).
pub struct RecordSealer {
    gcm: Gcm,
    counter: u64,
    exhausted: bool,
}

impl fmt::Debug for RecordSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordSealer")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl RecordSealer {
    pub(crate) fn new(key: &[u8; 32]) -> RecordSealer {
        RecordSealer {
            gcm: Gcm::new(key),
            counter: 0,
            exhausted: false,
        }
    }

    /// How many records have been sealed.
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// Seals `frame`'s body; the result carries [`flags::ENCRYPTED`] and the
    /// sealed body (plain length + [`RECORD_OVERHEAD`]).
    pub fn seal(&mut self, frame: &Frame) -> Result<Frame, RecordError> {
        if self.exhausted {
            return Err(RecordError::CounterExhausted);
        }
        let sealed_len = frame.body.len() + TAG_LEN;
        let body_len = u32::try_from(sealed_len).map_err(|_| RecordError::TooLarge(sealed_len))?;
        let header = Header {
            version: PROTOCOL_VERSION,
            flags: frame.flags | flags::ENCRYPTED,
            command: frame.command,
            seq: frame.seq,
            body_len,
        };
        let mut out = Vec::with_capacity(sealed_len);
        self.gcm.seal_into(
            &nonce(self.counter),
            &header.to_bytes(),
            &frame.body,
            &mut out,
        );
        match self.counter.checked_add(1) {
            Some(next) => self.counter = next,
            None => self.exhausted = true,
        }
        Ok(Frame {
            flags: header.flags,
            command: frame.command,
            seq: frame.seq,
            body: Bytes::from(out),
        })
    }
}

/// Opens incoming frames (the other direction of a session).
pub struct RecordOpener {
    gcm: Gcm,
    counter: u64,
    failed: bool,
}

impl fmt::Debug for RecordOpener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordOpener")
            .field("counter", &self.counter)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl RecordOpener {
    pub(crate) fn new(key: &[u8; 32]) -> RecordOpener {
        RecordOpener {
            gcm: Gcm::new(key),
            counter: 0,
            failed: false,
        }
    }

    /// How many records have been opened.
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// Opens a sealed frame; the result has the plain body and the
    /// encrypted flag cleared. Any failure closes this opener for good.
    pub fn open(&mut self, frame: &Frame) -> Result<Frame, RecordError> {
        if self.failed {
            return Err(RecordError::Closed);
        }
        let result = self.open_inner(frame);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn open_inner(&mut self, frame: &Frame) -> Result<Frame, RecordError> {
        if frame.flags & flags::ENCRYPTED == 0 {
            return Err(RecordError::NotEncrypted);
        }
        let header = Header {
            version: PROTOCOL_VERSION,
            flags: frame.flags,
            command: frame.command,
            seq: frame.seq,
            body_len: u32::try_from(frame.body.len())
                .map_err(|_| RecordError::TooLarge(frame.body.len()))?,
        };
        let next = self
            .counter
            .checked_add(1)
            .ok_or(RecordError::CounterExhausted)?;
        let mut plain = self
            .gcm
            .open(&nonce(self.counter), &header.to_bytes(), &frame.body)
            .ok_or(RecordError::BadRecord)?;
        self.counter = next;
        Ok(Frame {
            flags: frame.flags & !flags::ENCRYPTED,
            command: frame.command,
            seq: frame.seq,
            body: Bytes::from(std::mem::take(&mut *plain)),
        })
    }
}

/// Both directions of an established session.
///
/// A server and a client each hold one; what one seals, the other opens.
/// [`SecureChannel::split`] gives the halves to a reader and a writer task.
#[derive(Debug)]
pub struct SecureChannel {
    sealer: RecordSealer,
    opener: RecordOpener,
}

impl SecureChannel {
    pub(crate) fn new(seal_key: &[u8; 32], open_key: &[u8; 32]) -> SecureChannel {
        SecureChannel {
            sealer: RecordSealer::new(seal_key),
            opener: RecordOpener::new(open_key),
        }
    }

    /// Seals an outgoing frame (see [`RecordSealer::seal`]).
    pub fn seal(&mut self, frame: &Frame) -> Result<Frame, RecordError> {
        self.sealer.seal(frame)
    }

    /// Opens an incoming frame (see [`RecordOpener::open`]).
    pub fn open(&mut self, frame: &Frame) -> Result<Frame, RecordError> {
        self.opener.open(frame)
    }

    /// The two halves, for separate reader and writer tasks.
    pub fn split(self) -> (RecordSealer, RecordOpener) {
        (self.sealer, self.opener)
    }
}
