//! Message ids: `server_msg_id = time made (ms) ‖ hash(app, sender, receiver, unique id)`.
//!
//! The first [`TIME_BYTES`] bytes are the milliseconds since the Unix epoch,
//! big-endian, so ids made later sort after ids made earlier. Every store
//! indexes messages by id: ids that grow with time land at the right edge of
//! that index, where hashed ones land on any leaf of a tree that holds every
//! message, one page read and one page written per message once the tree
//! outgrows the cache (what made the embedded store slow down as it filled;
//! see docs/benchmarks.md). The rest is the hash, 80 bits: only ids of the
//! same millisecond can meet, and no two inputs are ever the same.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::types::{AppId, Conversation, MsgId, NodeId, UserId};

/// Bytes of an id that are its time.
pub const TIME_BYTES: usize = 6;

/// Makes message ids. The unique part is this node's random nonce plus a
/// counter, so two nodes (or two restarts of one node) never produce the
/// same input; the hash part keeps ids collision-resistant and reveals
/// nothing about the sender or the receiver.
pub struct MsgIdGenerator {
    node: NodeId,
    nonce: [u8; 16],
    counter: AtomicU64,
}

impl MsgIdGenerator {
    /// A generator for `node` with a fresh random nonce.
    pub fn new(node: NodeId) -> MsgIdGenerator {
        let mut nonce = [0u8; 16];
        // RandomState is seeded from the OS's randomness once per process and
        // perturbed per instance: enough for a nonce that only has to differ.
        for half in nonce.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0),
            );
            half.copy_from_slice(&h.finish().to_le_bytes());
        }
        MsgIdGenerator {
            node,
            nonce,
            counter: AtomicU64::new(0),
        }
    }

    /// The next unique id (per conversation and beyond: it never repeats on this node).
    pub fn next_unique(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// A new id for a message from `sender` to `to` that the server stamps
    /// with `server_time` (ms): the id begins with that same time.
    pub fn next(&self, app: &AppId, sender: &UserId, to: &Conversation, server_time: i64) -> MsgId {
        let unique = self.next_unique();
        let millis = server_time.max(0) as u64;
        message_id(app, sender, to, &self.node, &self.nonce, unique, millis)
    }
}

/// The id itself, separated out so its inputs are documented and testable:
/// `millis` (the low 48 bits, good until the year 10889) then the hash.
pub fn message_id(
    app: &AppId,
    sender: &UserId,
    to: &Conversation,
    node: &NodeId,
    nonce: &[u8; 16],
    unique: u64,
    millis: u64,
) -> MsgId {
    let mut h = Sha256::new();
    // Length-prefixed fields: ("ab","c") and ("a","bc") must not collide.
    for field in [
        app.as_str().as_bytes(),
        sender.as_str().as_bytes(),
        &[to.kind as u8],
        to.id().as_bytes(),
        node.as_str().as_bytes(),
        nonce,
        &unique.to_be_bytes(),
    ] {
        h.update((field.len() as u32).to_be_bytes());
        h.update(field);
    }
    let digest = h.finalize();
    let mut id = [0u8; 16];
    id[..TIME_BYTES].copy_from_slice(&millis.to_be_bytes()[8 - TIME_BYTES..]);
    id[TIME_BYTES..].copy_from_slice(&digest[..16 - TIME_BYTES]);
    MsgId(id)
}
