//! The secure channel: the seed's RSA + AES + ECDH handshake, hardened, and
//! the record layer every frame after it travels in.
//!
//! Pure state machines: no sockets, no clocks read behind the caller's back,
//! randomness injected (so fixed test vectors can pin every byte). The
//! protocol, byte by byte, is in `docs/auth.md`.
//!
//! # Layout
//!
//! - [`keys`]: the server's RSA key pair (generated on first start, stored
//!   0600, rotated with a previous key still accepted) and the client's pin.
//! - [`handshake`]: client and server state machines for the full handshake
//!   (`HandshakeHello` -> `HandshakeAnswer`) and resumption (`ResumeHello`).
//! - [`ticket`]: resumption tickets, the server's ticket keys, and the
//!   single-use ledger.
//! - [`record`]: AES-256-GCM records with per-direction keys and counters.
//! - [`random`]: where randomness comes from (the OS, or a script in tests).
//!
//! # How a server drives it
//!
//! ```text
//! frame = read first frame (before config.handshake_timeout)
//! match server_receive(&config, &frame, rng)?:
//!     Pending::Hello(p)  => identity = authenticator.authenticate(p.meta().app_id, p.token(), ..)
//!                           established = p.accept(&config, grant, now_ms, rng)   // or p.reject()
//!     Pending::Resume(p) => claim = used_tickets.claim(p.ticket_id(), p.ticket_expires_at_ms(), now_ms)
//!                           established = p.accept(&config, claim, now_ms, rng)
//! send established.answer_frame(frame.seq); use established.channel for every later frame
//! on any error: send err.to_frame(frame.seq), close.
//! ```

mod aead;
pub mod handshake;
pub mod keys;
pub mod random;
pub mod record;
pub mod ticket;
mod wire;

use std::time::Duration;

pub use handshake::{
    ClientConfig, ClientError, ClientHandshake, ClientMeta, ClientSession, Established,
    HandshakeError, Pending, PendingHello, PendingResume, ServerConfig, SessionGrant, SessionInfo,
    server_receive,
};
pub use keys::{KeyError, PinnedServerKey, ServerKey, ServerKeyRing};
pub use random::{OsRandom, Randomness, ScriptedRandom};
pub use record::{RecordError, RecordOpener, RecordSealer, SecureChannel};
pub use ticket::{
    MIN_CLUSTER_SECRET_LEN, ResumeTicket, TicketClaim, TicketKey, TicketKeys, UsedTickets,
};

/// Entry points for the fuzz targets in `fuzz/` and their regression
/// replays: not part of the API, no stability promised.
#[doc(hidden)]
pub mod fuzzing {
    use super::record::{RecordOpener, RecordSealer};

    /// A sealer and the opener of what it seals, both under `key` and at
    /// counter 0, as the two ends of one direction of a session are. (A
    /// session only ever gets its keys from a handshake, which costs an RSA
    /// decryption: too slow to run per fuzz input.)
    pub fn record_pair(key: &[u8; 32]) -> (RecordSealer, RecordOpener) {
        (RecordSealer::new(key), RecordOpener::new(key))
    }
}

/// How long a server waits for a complete, valid hello after accepting a
/// connection. A peer that has not finished by then gets one
/// `HANDSHAKE_FAILED` error frame and is disconnected, so half-open
/// connections cannot pile up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a resumption ticket stays valid by default. Short on purpose: a
/// ticket only saves the RSA step of a reconnect, and a stolen one is only
/// worth anything until it expires (and only together with the device's
/// resumption secret).
pub const DEFAULT_TICKET_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// Size of the RSA key a server generates on first start. 3072 bits (NIST's
/// level beyond 2030) also leaves room in the RSA block for the token: see
/// [`keys::token_capacity`].
pub const DEFAULT_RSA_BITS: usize = 3072;

/// Smallest RSA key a server accepts to load and a client accepts to pin.
pub const MIN_RSA_BITS: usize = 2048;

/// Largest RSA key (the hello's RSA block length is a `u16` and servers must
/// bound the work a hello can cause).
pub const MAX_RSA_BITS: usize = 4096;
