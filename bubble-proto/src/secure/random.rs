//! Where the handshake's randomness comes from.
//!
//! Production code uses [`OsRandom`]. Test vectors use [`ScriptedRandom`],
//! which hands out fixed byte strings in order, so an implementation in
//! another language can reproduce every byte of a handshake.

use std::collections::VecDeque;
use std::convert::Infallible;

use rand_core::{TryCryptoRng, TryRng};

/// A source of cryptographically secure random bytes.
///
/// Every random value of the protocol is drawn through [`Randomness::fill`],
/// one call per value, in the order `docs/auth.md` lists.
pub trait Randomness {
    /// Fills `dst` entirely with random bytes.
    fn fill(&mut self, dst: &mut [u8]);
}

/// The operating system's generator (`getrandom`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl Randomness for OsRandom {
    fn fill(&mut self, dst: &mut [u8]) {
        // An OS without a working generator cannot run a secure channel at
        // all; carrying on with predictable keys would be far worse than
        // stopping.
        getrandom::fill(dst).expect("the operating system's random generator failed");
    }
}

/// Fixed byte strings handed out in order: for test vectors only.
///
/// Each [`Randomness::fill`] call takes the next string, which must have
/// exactly the requested length.
///
/// # Panics
///
/// `fill` panics when the script is exhausted or the next string has the
/// wrong length: the test is wrong, and a loud failure says where.
#[derive(Debug, Clone, Default)]
pub struct ScriptedRandom {
    script: VecDeque<Vec<u8>>,
}

impl ScriptedRandom {
    /// A script of byte strings, used front to back.
    pub fn new<I, B>(script: I) -> ScriptedRandom
    where
        I: IntoIterator<Item = B>,
        B: Into<Vec<u8>>,
    {
        ScriptedRandom {
            script: script.into_iter().map(Into::into).collect(),
        }
    }

    /// How many strings are left.
    pub fn remaining(&self) -> usize {
        self.script.len()
    }
}

impl Randomness for ScriptedRandom {
    fn fill(&mut self, dst: &mut [u8]) {
        let next = self.script.pop_front().expect(
            "ScriptedRandom: script exhausted (the protocol drew more values than scripted)",
        );
        assert_eq!(
            next.len(),
            dst.len(),
            "ScriptedRandom: scripted value has the wrong length"
        );
        dst.copy_from_slice(&next);
    }
}

/// Lets RustCrypto APIs (RSA-OAEP's seed) draw from a [`Randomness`].
pub(crate) struct RngAdapter<'a>(pub(crate) &'a mut dyn Randomness);

impl TryRng for RngAdapter<'_> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill(dst);
        Ok(())
    }
}

impl TryCryptoRng for RngAdapter<'_> {}
