//! Resumption tickets: how a reconnecting device skips the RSA step.
//!
//! A ticket is the server's own note to itself, sealed under a **ticket
//! key** only servers hold: who the session was for, until when, and the
//! session's **resumption secret**. The client keeps the ticket (opaque to
//! it) together with the resumption secret, which it derives itself and
//! which never travels. To resume, it must prove it knows the secret; the
//! server then runs a fresh ECDH, so the resumed session's keys depend on
//! new ephemeral keys, not on the ticket alone.
//!
//! Tickets are single use: [`UsedTickets`] (or a shared store in a cluster)
//! remembers the ids of tickets spent until they expire.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use zeroize::Zeroizing;

use super::aead::{Gcm, hkdf32, sha256};
use super::handshake::HandshakeError;
use super::random::Randomness;
use super::wire::{Reader, put_str8};

/// Length of a ticket id.
pub const TICKET_ID_LEN: usize = 16;

/// Longest ticket a resume hello may carry.
pub const MAX_TICKET_LEN: usize = 1024;

const TICKET_VERSION: u8 = 1;
const TICKET_HEADER_LEN: usize = 1 + 8 + 12;

/// One 256-bit ticket key, named by an 8-byte id
/// (`SHA-256("bubble/v1 ticket key id" || key)[..8]`).
#[derive(Clone)]
pub struct TicketKey {
    key: Zeroizing<[u8; 32]>,
    id: [u8; 8],
}

impl fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TicketKey")
            .field("id", &self.id)
            .field("key", &"<hidden>")
            .finish()
    }
}

impl TicketKey {
    /// A key from its 32 bytes (every node of a cluster must share them).
    pub fn from_bytes(key: [u8; 32]) -> TicketKey {
        let mut input = b"bubble/v1 ticket key id".to_vec();
        input.extend_from_slice(&key);
        let id = sha256(&input)[..8].try_into().expect("8 of 32");
        TicketKey {
            key: Zeroizing::new(key),
            id,
        }
    }

    /// A fresh random key.
    pub fn generate(rng: &mut dyn Randomness) -> TicketKey {
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill(key.as_mut());
        TicketKey::from_bytes(*key)
    }

    /// The key's id (written in clear at the start of every ticket).
    pub fn id(&self) -> [u8; 8] {
        self.id
    }
}

/// The ticket keys of a server: the key that seals new tickets and those
/// that still open older ones.
///
/// Either held by this process ([`TicketKeys::new`], rotated by hand: the
/// current key seals, the previous one still opens), or derived by every
/// node of a cluster from one shared secret ([`TicketKeys::cluster`]): one
/// key per period of the clock, so a ticket sealed by any node opens on
/// every other, and keys rotate by themselves with nothing to distribute.
#[derive(Debug, Clone)]
pub struct TicketKeys {
    keys: Keys,
}

#[derive(Clone)]
enum Keys {
    Held {
        current: TicketKey,
        previous: Option<TicketKey>,
    },
    Derived {
        /// HKDF-extracted from the cluster secret.
        secret: Zeroizing<[u8; 32]>,
        period_ms: u64,
    },
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Keys::Held { current, previous } => f
                .debug_struct("Held")
                .field("current", current)
                .field("previous", previous)
                .finish(),
            Keys::Derived { period_ms, .. } => f
                .debug_struct("Derived")
                .field("period_ms", period_ms)
                .field("secret", &"<hidden>")
                .finish(),
        }
    }
}

/// The shortest cluster secret [`TicketKeys::cluster`] takes.
pub const MIN_CLUSTER_SECRET_LEN: usize = 32;

/// What a ticket says (sealed inside it).
pub(crate) struct TicketContents {
    pub(crate) id: [u8; TICKET_ID_LEN],
    pub(crate) issued_at_ms: u64,
    pub(crate) expires_at_ms: u64,
    pub(crate) identity_expires_at_ms: u64,
    pub(crate) secret: Zeroizing<[u8; 32]>,
    pub(crate) app: String,
    pub(crate) user: String,
    pub(crate) device: String,
}

impl TicketKeys {
    /// Keys with only a current key.
    pub fn new(current: TicketKey) -> TicketKeys {
        TicketKeys {
            keys: Keys::Held {
                current,
                previous: None,
            },
        }
    }

    /// Keys every node holding `secret` derives alike: the key of period
    /// `n` (the clock's milliseconds divided by `period`) is
    /// HKDF-SHA256(secret, salt = n as 8 big-endian bytes, info =
    /// "bubble/v1 cluster ticket key"). A ticket is sealed with the key of
    /// its issue time and opens with the keys of the period before, of and
    /// after the opener's clock: with `period` at least the ticket lifetime
    /// every unexpired ticket opens, on any node whose clock is within one
    /// period of the issuer's.
    ///
    /// Refuses a secret shorter than [`MIN_CLUSTER_SECRET_LEN`] bytes or a
    /// period under a second.
    pub fn cluster(secret: &[u8], period: Duration) -> Result<TicketKeys, String> {
        if secret.len() < MIN_CLUSTER_SECRET_LEN {
            return Err(format!(
                "the cluster ticket secret has {} bytes; it needs at least {MIN_CLUSTER_SECRET_LEN} \
                 (e.g. 64 hex digits from a random source)",
                secret.len()
            ));
        }
        let period_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
        if period_ms < 1000 {
            return Err(format!(
                "the ticket key period is {period_ms} ms; it must be at least a second"
            ));
        }
        Ok(TicketKeys {
            keys: Keys::Derived {
                secret: hkdf32(secret, b"bubble/v1 cluster ticket secret", b""),
                period_ms,
            },
        })
    }

    /// Makes `next` current; the old current key becomes the previous one
    /// (rotate at least once per ticket lifetime so no key lives long).
    /// Keys derived from a cluster secret rotate with the clock: for them
    /// this does nothing (change the secret instead).
    pub fn rotate(&mut self, next: TicketKey) {
        if let Keys::Held { current, previous } = &mut self.keys {
            let old = std::mem::replace(current, next);
            *previous = Some(old);
        }
    }

    /// The key sealing a ticket issued at `now_ms`.
    pub fn current(&self, now_ms: u64) -> TicketKey {
        match &self.keys {
            Keys::Held { current, .. } => current.clone(),
            Keys::Derived { secret, period_ms } => derive(secret, now_ms / period_ms),
        }
    }

    /// The keys that open a ticket at `now_ms`.
    fn openers(&self, now_ms: u64) -> Vec<TicketKey> {
        match &self.keys {
            Keys::Held { current, previous } => {
                std::iter::once(current).chain(previous).cloned().collect()
            }
            Keys::Derived { secret, period_ms } => {
                let n = now_ms / period_ms;
                [n.checked_sub(1), Some(n), n.checked_add(1)]
                    .into_iter()
                    .flatten()
                    .map(|n| derive(secret, n))
                    .collect()
            }
        }
    }

    /// Seals a ticket: `version (1) || key id (8) || nonce (12) || AES-256-GCM(ticket key, nonce, aad = first 21 bytes, contents)`.
    /// `None` when an id is longer than 255 bytes (no ticket is issued then).
    pub(crate) fn seal(&self, c: &TicketContents, rng: &mut dyn Randomness) -> Option<Vec<u8>> {
        let mut plain = Zeroizing::new(Vec::with_capacity(128));
        plain.extend_from_slice(&c.id);
        plain.extend_from_slice(&c.issued_at_ms.to_be_bytes());
        plain.extend_from_slice(&c.expires_at_ms.to_be_bytes());
        plain.extend_from_slice(&c.identity_expires_at_ms.to_be_bytes());
        plain.extend_from_slice(c.secret.as_ref());
        put_str8(&mut plain, &c.app)?;
        put_str8(&mut plain, &c.user)?;
        put_str8(&mut plain, &c.device)?;
        let mut nonce = [0u8; 12];
        rng.fill(&mut nonce);
        let mut out = Vec::with_capacity(TICKET_HEADER_LEN + plain.len() + 16);
        let key = self.current(c.issued_at_ms);
        out.push(TICKET_VERSION);
        out.extend_from_slice(&key.id);
        out.extend_from_slice(&nonce);
        let aad = out.clone();
        Gcm::new(&key.key).seal_into(&nonce, &aad, &plain, &mut out);
        Some(out)
    }

    /// Opens a ticket sealed by one of the keys in force at `now_ms`.
    pub(crate) fn open(&self, ticket: &[u8], now_ms: u64) -> Option<TicketContents> {
        let mut r = Reader::new(ticket);
        if r.u8()? != TICKET_VERSION {
            return None;
        }
        let key_id = r.array::<8>()?;
        let nonce = r.array::<12>()?;
        let sealed = r.rest();
        let key = self.openers(now_ms).into_iter().find(|k| k.id == key_id)?;
        let plain = Gcm::new(&key.key).open(&nonce, &ticket[..TICKET_HEADER_LEN], sealed)?;
        let mut r = Reader::new(&plain);
        let contents = TicketContents {
            id: r.array()?,
            issued_at_ms: r.u64()?,
            expires_at_ms: r.u64()?,
            identity_expires_at_ms: r.u64()?,
            secret: Zeroizing::new(r.array()?),
            app: r.str8()?.to_owned(),
            user: r.str8()?.to_owned(),
            device: r.str8()?.to_owned(),
        };
        r.is_empty().then_some(contents)
    }
}

/// The cluster ticket key of period `n`.
fn derive(secret: &[u8; 32], n: u64) -> TicketKey {
    let key = hkdf32(secret, &n.to_be_bytes(), b"bubble/v1 cluster ticket key");
    TicketKey::from_bytes(*key)
}

/// What a client keeps to resume: the opaque ticket and the resumption
/// secret. Secret: store it like a password (the `Debug` output hides it).
#[derive(Clone)]
pub struct ResumeTicket {
    ticket: Vec<u8>,
    secret: Zeroizing<[u8; 32]>,
    lifetime: Duration,
}

impl fmt::Debug for ResumeTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumeTicket")
            .field("ticket_len", &self.ticket.len())
            .field("lifetime", &self.lifetime)
            .field("secret", &"<hidden>")
            .finish()
    }
}

impl ResumeTicket {
    pub(crate) fn new(
        ticket: Vec<u8>,
        secret: Zeroizing<[u8; 32]>,
        lifetime: Duration,
    ) -> ResumeTicket {
        ResumeTicket {
            ticket,
            secret,
            lifetime,
        }
    }

    /// The opaque ticket bytes.
    pub fn ticket(&self) -> &[u8] {
        &self.ticket
    }

    pub(crate) fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// How long after the answer arrived the server accepts the ticket
    /// (a client should not try it later: it would cost a round trip).
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Serializes the ticket with its secret, for a client that keeps it
    /// across restarts: `u16 len || ticket || secret (32) || lifetime secs (u32)`.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(2 + self.ticket.len() + 36));
        out.extend_from_slice(&(self.ticket.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.ticket);
        out.extend_from_slice(self.secret.as_ref());
        out.extend_from_slice(&(self.lifetime.as_secs() as u32).to_be_bytes());
        out
    }

    /// Parses [`ResumeTicket::to_bytes`]; `None` if malformed.
    pub fn from_bytes(bytes: &[u8]) -> Option<ResumeTicket> {
        let mut r = Reader::new(bytes);
        let len = r.u16()? as usize;
        let ticket = r.take(len)?.to_vec();
        let secret = Zeroizing::new(r.array::<32>()?);
        let lifetime = Duration::from_secs(u64::from(r.u32()?));
        r.is_empty()
            .then(|| ResumeTicket::new(ticket, secret, lifetime))
    }
}

/// Proof that a ticket id was claimed in a single-use ledger; a resumption
/// cannot be accepted without one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketClaim {
    pub(crate) id: [u8; TICKET_ID_LEN],
}

impl TicketClaim {
    /// For ledgers other than [`UsedTickets`] (a cluster's shared store):
    /// call only after a set-if-absent of `id` (with expiry at the ticket's
    /// expiry) succeeded.
    pub fn claimed_elsewhere(id: [u8; TICKET_ID_LEN]) -> TicketClaim {
        TicketClaim { id }
    }
}

/// An in-process single-use ledger of ticket ids, bounded.
///
/// Each claimed id is kept until its ticket expires (after that the ticket
/// is refused for its age anyway). When the ledger is full of unexpired ids
/// it refuses new claims rather than forgetting old ones, which would let a
/// replay through: the client then falls back to a full handshake.
#[derive(Debug)]
pub struct UsedTickets {
    inner: Mutex<Ledger>,
}

#[derive(Debug)]
struct Ledger {
    used: HashMap<[u8; TICKET_ID_LEN], u64>,
    capacity: usize,
    last_purge_ms: u64,
}

impl UsedTickets {
    /// A ledger holding at most `capacity` unexpired ids.
    pub fn new(capacity: usize) -> UsedTickets {
        UsedTickets {
            inner: Mutex::new(Ledger {
                used: HashMap::new(),
                capacity,
                last_purge_ms: 0,
            }),
        }
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.lock().used.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        // A panic while holding the lock cannot leave the map inconsistent
        // (every update is one insert or one retain), so keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims ticket `id` (valid until `expires_at_ms`) at `now_ms`. Fails if
    /// it was claimed before or the ledger is full.
    pub fn claim(
        &self,
        id: [u8; TICKET_ID_LEN],
        expires_at_ms: u64,
        now_ms: u64,
    ) -> Result<TicketClaim, HandshakeError> {
        let mut ledger = self.lock();
        if ledger.used.contains_key(&id) {
            return Err(HandshakeError::new("resumption ticket already used"));
        }
        if ledger.used.len() >= ledger.capacity
            && now_ms.saturating_sub(ledger.last_purge_ms) >= 1000
        {
            // Purging is O(n): at most once a second, so a flood of
            // resumptions against a full ledger cannot make every claim slow.
            ledger.used.retain(|_, exp| *exp > now_ms);
            ledger.last_purge_ms = now_ms;
        }
        if ledger.used.len() >= ledger.capacity {
            return Err(HandshakeError::new("resumption ledger full"));
        }
        ledger.used.insert(id, expires_at_ms);
        Ok(TicketClaim { id })
    }
}

impl Default for UsedTickets {
    /// Room for 100 000 tickets (about 3 MB).
    fn default() -> Self {
        UsedTickets::new(100_000)
    }
}
