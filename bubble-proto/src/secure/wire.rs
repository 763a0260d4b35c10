//! Bounds-checked reading and writing of the handshake's byte layouts.
//!
//! Every read returns `None` instead of panicking, so arbitrary input can
//! only ever produce an error value.

/// Reads big-endian fields from a byte slice.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).and_then(|s| s.try_into().ok())
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|b| b[0])
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.array::<2>().map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.array::<4>().map(u32::from_be_bytes)
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.array::<8>().map(u64::from_be_bytes)
    }

    /// A `u8` length followed by that many UTF-8 bytes.
    pub(crate) fn str8(&mut self) -> Option<&'a str> {
        let len = self.u8()? as usize;
        std::str::from_utf8(self.take(len)?).ok()
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// A `u8` length followed by the bytes; `None` when longer than 255 bytes.
pub(crate) fn put_str8(out: &mut Vec<u8>, s: &str) -> Option<()> {
    let len = u8::try_from(s.len()).ok()?;
    out.push(len);
    out.extend_from_slice(s.as_bytes());
    Some(())
}
