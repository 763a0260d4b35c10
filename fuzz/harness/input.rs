//! The byte reader the row harnesses (`sqlite_rows`, `mysql_rows`) build
//! their rows with. Included by each through `#[path]`; each adds its own
//! `value()` for the values of its database.

/// Reads the input front to back; an exhausted input reads as zeros.
pub struct Input<'a>(pub &'a [u8]);

impl Input<'_> {
    pub fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        std::array::from_fn(|_| self.u8())
    }

    /// A length byte, then that many bytes (fewer if the input ends).
    pub fn bytes(&mut self) -> Vec<u8> {
        let n = usize::from(self.u8()).min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head.to_vec()
    }
}
