//! The handshake state machines: client and server, full and resumed.
//!
//! Full handshake (the seed's design, hardened; `docs/auth.md` has every byte):
//!
//! ```text
//! client                                           server
//! random key R, ephemeral P-256 (c, C)
//! HandshakeHello: key id, RSA-OAEP(R || C || token),
//!                 AES-GCM(HKDF(R, "hello"), meta) ------>
//!                                                  RSA-decrypt, open meta,
//!                                                  caller verifies the token
//!                                                  ephemeral (s, S), Z = ECDH(s, C)
//!                                                  session key K, wrapped under HKDF(Z)
//!         <------ HandshakeAnswer: AES-GCM(HKDF(R, "answer"), S || wrap(K) || ticket)
//! Z = ECDH(c, S), unwrap K
//! records: AES-256-GCM under HKDF(K, "c2s") / HKDF(K, "s2c")
//! ```
//!
//! The server side stops half way ([`PendingHello`], [`PendingResume`]) so
//! that the caller can check the token (asynchronously, with its
//! `Authenticator`) or claim the ticket before it answers: this crate stays
//! free of the engine.

use std::fmt;
use std::time::{Duration, Instant};

use aws_lc_rs::agreement::{self, ECDH_P256, ParsedPublicKey, PrivateKey, UnparsedPublicKey};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::aead::{TAG_LEN, hkdf32, info, open_once, seal_once, sha256};
use super::keys::{KEY_ID_LEN, PinnedServerKey, RSA_BLOCK_FIXED, ServerKeyRing};
use super::random::{OsRandom, Randomness, RngAdapter};
use super::record::SecureChannel;
use super::ticket::{
    MAX_TICKET_LEN, ResumeTicket, TICKET_ID_LEN, TicketClaim, TicketContents, TicketKeys,
};
use super::wire::{Reader, put_str8};
use super::{DEFAULT_TICKET_LIFETIME, HANDSHAKE_TIMEOUT};
use crate::command::Command;
use crate::frame::{Frame, flags};
use crate::pb;

/// Version byte at the start of hellos, answers and resume hellos.
pub const HANDSHAKE_VERSION: u8 = 1;

/// Length of an uncompressed SEC1 P-256 public key (`04 || x || y`).
pub const P256_PUBLIC_LEN: usize = 65;

/// Length of the wrapped session key (32 bytes + GCM tag).
const WRAPPED_LEN: usize = 32 + TAG_LEN;

/// Largest sealed metadata a hello may carry (four `str8` fields + key id + tag).
const MAX_META_SEALED: usize = KEY_ID_LEN + 4 * 256 + TAG_LEN;

/// The one error a failed handshake produces, whatever failed.
///
/// The peer only ever sees [`HandshakeError::to_frame`]: the same
/// `HANDSHAKE_FAILED` code and message for a wrong key, a tampered byte, a
/// bad token or a spent ticket, so it learns nothing about which check
/// failed. [`HandshakeError::reason`] is for the server's own logs.
#[derive(Clone, PartialEq, Eq)]
pub struct HandshakeError {
    reason: &'static str,
}

impl HandshakeError {
    pub(crate) fn new(reason: &'static str) -> HandshakeError {
        HandshakeError { reason }
    }

    /// The handshake did not complete before its deadline.
    pub fn timeout() -> HandshakeError {
        HandshakeError::new("handshake timed out")
    }

    /// What failed, for server logs only; never send it to the peer.
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// The error frame to send before closing: always the same bytes for a
    /// given `seq`.
    pub fn to_frame(&self, seq: u32) -> Frame {
        let body = pb::Error {
            code: pb::ErrorCode::HandshakeFailed as i32,
            message: "handshake failed".to_owned(),
            retryable: false,
        };
        Frame::from_message(Command::Error, seq, &body).into_response()
    }
}

impl fmt::Debug for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HandshakeError({})", self.reason)
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "handshake failed ({})", self.reason)
    }
}

impl std::error::Error for HandshakeError {}

const MALFORMED: &str = "malformed handshake message";
const DECRYPT: &str = "decryption failed";
const ECDH: &str = "ECDH failed";

/// Why a client could not build a hello.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The token is empty.
    #[error("the token is empty: get one from your app server before connecting")]
    EmptyToken,
    /// The token does not fit the RSA block.
    #[error(
        "the token is {len} bytes but the server's RSA key carries at most {capacity}: use shorter ids or a larger server key (3072 bits carry 221 bytes)"
    )]
    TokenTooLong {
        /// The token's length.
        len: usize,
        /// What fits.
        capacity: usize,
    },
    /// A metadata field is longer than 255 bytes.
    #[error("{0} is longer than 255 bytes")]
    FieldTooLong(&'static str),
}

/// What a client says about itself besides its token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientMeta {
    /// The app (tenant) the client belongs to.
    pub app_id: String,
    /// This device's id, chosen by the client.
    pub device_id: String,
    /// "ios", "android", "web", "desktop"...
    pub platform: String,
    /// The client's version, for logs and compatibility decisions.
    pub client_version: String,
}

impl ClientMeta {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), ClientError> {
        put_str8(out, &self.app_id).ok_or(ClientError::FieldTooLong("app id"))?;
        put_str8(out, &self.device_id).ok_or(ClientError::FieldTooLong("device id"))?;
        put_str8(out, &self.platform).ok_or(ClientError::FieldTooLong("platform"))?;
        put_str8(out, &self.client_version).ok_or(ClientError::FieldTooLong("client version"))?;
        Ok(())
    }

    fn decode(r: &mut Reader<'_>) -> Option<ClientMeta> {
        Some(ClientMeta {
            app_id: r.str8()?.to_owned(),
            device_id: r.str8()?.to_owned(),
            platform: r.str8()?.to_owned(),
            client_version: r.str8()?.to_owned(),
        })
    }
}

// ------------------------------------------------------------------ server

/// What a server needs to run handshakes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The RSA keys hellos may be sealed to.
    pub keys: ServerKeyRing,
    /// Ticket keys; `None` disables resumption (no tickets issued, resume
    /// hellos refused).
    pub tickets: Option<TicketKeys>,
    /// How long an issued ticket is valid (capped by the token's expiry).
    pub ticket_lifetime: Duration,
    /// How long a connection may take to complete the handshake.
    pub handshake_timeout: Duration,
}

impl ServerConfig {
    /// A config with `keys`, no resumption, and the default timeouts.
    pub fn new(keys: ServerKeyRing) -> ServerConfig {
        ServerConfig {
            keys,
            tickets: None,
            ticket_lifetime: DEFAULT_TICKET_LIFETIME,
            handshake_timeout: HANDSHAKE_TIMEOUT,
        }
    }

    /// Enables resumption with these ticket keys.
    pub fn with_tickets(mut self, tickets: TicketKeys) -> ServerConfig {
        self.tickets = Some(tickets);
        self
    }

    /// Sets the ticket lifetime.
    pub fn with_ticket_lifetime(mut self, lifetime: Duration) -> ServerConfig {
        self.ticket_lifetime = lifetime;
        self
    }

    /// Sets the handshake timeout.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> ServerConfig {
        self.handshake_timeout = timeout;
        self
    }

    /// When a connection accepted at `accepted` must have completed its
    /// handshake; after it, send [`HandshakeError::timeout`]'s frame and close.
    pub fn deadline(&self, accepted: Instant) -> Instant {
        accepted + self.handshake_timeout
    }
}

/// A hello (or resume hello) that decrypted; the caller decides.
#[derive(Debug)]
pub enum Pending {
    /// A full handshake: verify [`PendingHello::token`], then accept or reject.
    Hello(PendingHello),
    /// A resumption: claim [`PendingResume::ticket_id`], then accept.
    Resume(PendingResume),
}

/// Reads a client's first frame: a `HandshakeHello` or a `ResumeHello`,
/// unencrypted. Anything else fails the handshake.
pub fn server_receive(
    config: &ServerConfig,
    frame: &Frame,
    now_ms: u64,
) -> Result<Pending, HandshakeError> {
    if frame.flags & flags::ENCRYPTED != 0 {
        return Err(HandshakeError::new("encrypted frame before the handshake"));
    }
    match frame.command {
        Command::HandshakeHello => PendingHello::open(config, &frame.body).map(Pending::Hello),
        Command::ResumeHello => {
            PendingResume::open(config, &frame.body, now_ms).map(Pending::Resume)
        }
        _ => Err(HandshakeError::new("first frame is not a hello")),
    }
}

/// Who the server decided the client is, after checking its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionGrant {
    /// The user the token names.
    pub user: String,
    /// When the token expires (ms since the epoch): tickets never outlive it.
    pub identity_expires_at_ms: u64,
}

/// Who is on the other end of an established session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The app.
    pub app_id: String,
    /// The user.
    pub user: String,
    /// The device.
    pub device_id: String,
    /// The platform the client reported.
    pub platform: String,
    /// The version the client reported.
    pub client_version: String,
    /// When the identity expires (ms since the epoch).
    pub identity_expires_at_ms: u64,
    /// Whether the session was resumed from a ticket.
    pub resumed: bool,
}

/// The server's half of a completed handshake.
#[derive(Debug)]
pub struct Established {
    /// The answer body to send (command `HandshakeAnswer`).
    pub answer: Vec<u8>,
    /// Seals what the server sends, opens what the client sends.
    pub channel: SecureChannel,
    /// Who the client is.
    pub session: SessionInfo,
}

impl Established {
    /// The answer as a frame replying to the hello's `seq`.
    pub fn answer_frame(&self, seq: u32) -> Frame {
        Frame::new(Command::HandshakeAnswer, seq, self.answer.clone()).into_response()
    }
}

/// A full hello that decrypted and authenticated: its token awaits the
/// caller's verdict.
pub struct PendingHello {
    token: Zeroizing<String>,
    meta: ClientMeta,
    client_public: ParsedPublicKey,
    random_key: Zeroizing<[u8; 32]>,
    transcript: [u8; 32],
}

impl fmt::Debug for PendingHello {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingHello")
            .field("meta", &self.meta)
            .field("token", &"<hidden>")
            .finish_non_exhaustive()
    }
}

// P-256 runs on AWS-LC (its assembly scalar multiplication is several times
// faster than the `p256` crate's). The ephemeral scalars are still drawn
// through `Randomness` and loaded with `from_private_key`, so the draws are
// those `docs/auth.md` lists and the test vectors still pin every byte.

fn parse_point(bytes: &[u8]) -> Option<ParsedPublicKey> {
    // Only the uncompressed form: every platform's ECDH API reads it.
    // (AWS-LC would also take compressed and SPKI forms: refuse them first.)
    if bytes.len() != P256_PUBLIC_LEN || bytes[0] != 0x04 {
        return None;
    }
    // Checks that the point is on the curve.
    ParsedPublicKey::try_from(UnparsedPublicKey::new(&ECDH_P256, bytes)).ok()
}

fn encode_point(secret: &PrivateKey) -> [u8; P256_PUBLIC_LEN] {
    secret
        .compute_public_key()
        .expect("AWS-LC encodes the public key of a P-256 key it built")
        .as_ref()
        .try_into()
        .expect("an uncompressed P-256 point is 65 bytes")
}

/// Draws an ephemeral P-256 scalar: 32 bytes, drawn again if 0 or >= the
/// group order (probability ~2^-32 per draw).
fn random_secret(rng: &mut dyn Randomness) -> PrivateKey {
    // AWS-LC also refuses a valid scalar when it cannot allocate; bound the
    // loop so that such a failure panics instead of spinning (64 draws out of
    // range in a row happen with probability 2^-2048).
    for _ in 0..64 {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill(bytes.as_mut());
        if let Ok(secret) = PrivateKey::from_private_key(&ECDH_P256, bytes.as_ref()) {
            return secret;
        }
    }
    panic!("AWS-LC refused 64 P-256 scalars in a row");
}

/// `Z`, the x-coordinate of `secret * public`. `None` only if AWS-LC fails
/// internally: both keys were validated when they were built.
fn ecdh(secret: &PrivateKey, public: ParsedPublicKey) -> Option<Zeroizing<[u8; 32]>> {
    agreement::agree(secret, public, (), |z| {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(z);
        Ok(out)
    })
    .ok()
}

impl PendingHello {
    fn open(config: &ServerConfig, body: &[u8]) -> Result<PendingHello, HandshakeError> {
        let malformed = || HandshakeError::new(MALFORMED);
        let mut r = Reader::new(body);
        if r.u8().ok_or_else(malformed)? != HANDSHAKE_VERSION {
            return Err(HandshakeError::new("unsupported handshake version"));
        }
        let key_id = r.array::<KEY_ID_LEN>().ok_or_else(malformed)?;
        let rsa_len = usize::from(r.u16().ok_or_else(malformed)?);
        let key = config
            .keys
            .find(&key_id)
            .ok_or(HandshakeError::new("hello names an unknown server key"))?;
        if rsa_len != key.modulus_bytes() {
            return Err(malformed());
        }
        let rsa_block = r.take(rsa_len).ok_or_else(malformed)?;
        let aad = &body[..1 + KEY_ID_LEN + 2 + rsa_len];
        let meta_sealed = r.rest();
        if meta_sealed.len() < KEY_ID_LEN + 4 + TAG_LEN || meta_sealed.len() > MAX_META_SEALED {
            return Err(malformed());
        }

        // From here on every failure takes the same path: a bad RSA block
        // is replaced by a random key and the metadata is opened anyway, so
        // neither the answer nor the timing tells an OAEP failure from a GCM
        // failure (no Manger/Bleichenbacher-style oracle).
        let decrypted = key
            .oaep_decrypt(rsa_block)
            .filter(|pt| pt.len() > RSA_BLOCK_FIXED);
        let rsa_ok = decrypted.is_some();
        let mut random_key = Zeroizing::new([0u8; 32]);
        match &decrypted {
            Some(pt) => random_key.copy_from_slice(&pt[..32]),
            None => OsRandom.fill(random_key.as_mut()),
        }
        let hello_key = hkdf32(random_key.as_ref(), &[], info::HELLO);
        let meta_plain = open_once(&hello_key, aad, meta_sealed);
        let (pt, meta_plain) = match (rsa_ok, decrypted, meta_plain) {
            (true, Some(pt), Some(meta)) => (pt, meta),
            _ => return Err(HandshakeError::new(DECRYPT)),
        };

        // Authentic from here: the sender knew R, which only the server's
        // key opens. Malformed content is the sender's own doing.
        let mut m = Reader::new(&meta_plain);
        let inner_key_id = m.array::<KEY_ID_LEN>().ok_or_else(malformed)?;
        let meta = ClientMeta::decode(&mut m).ok_or_else(malformed)?;
        if !m.is_empty() || inner_key_id != key_id {
            return Err(malformed());
        }
        let client_public = parse_point(&pt[32..RSA_BLOCK_FIXED]).ok_or_else(malformed)?;
        let token = std::str::from_utf8(&pt[RSA_BLOCK_FIXED..]).map_err(|_| malformed())?;
        Ok(PendingHello {
            token: Zeroizing::new(token.to_owned()),
            meta,
            client_public,
            random_key,
            transcript: sha256(body),
        })
    }

    /// The token to verify (for [`ClientMeta::app_id`] and device).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// What the client said about itself (authenticated with the hello).
    pub fn meta(&self) -> &ClientMeta {
        &self.meta
    }

    /// Refuses the client (its token did not verify): send the error's frame and close.
    pub fn reject(self) -> HandshakeError {
        HandshakeError::new("token rejected")
    }

    /// Accepts the client as `grant.user`: makes the server's ephemeral key
    /// and the session key, and returns the answer and the channel.
    ///
    /// Draws from `rng`, in order: the ephemeral scalar (32 bytes), the
    /// session key (32), and if a ticket is issued its id (16) and nonce (12).
    pub fn accept(
        self,
        config: &ServerConfig,
        grant: SessionGrant,
        now_ms: u64,
        rng: &mut dyn Randomness,
    ) -> Result<Established, HandshakeError> {
        let answer_key = hkdf32(self.random_key.as_ref(), &self.transcript, info::ANSWER);
        let session = SessionInfo {
            app_id: self.meta.app_id,
            user: grant.user,
            device_id: self.meta.device_id,
            platform: self.meta.platform,
            client_version: self.meta.client_version,
            identity_expires_at_ms: grant.identity_expires_at_ms,
            resumed: false,
        };
        answer(
            config,
            &self.transcript,
            &answer_key,
            self.client_public,
            session,
            now_ms,
            rng,
        )
    }
}

/// Builds the answer and the server's channel (shared by full and resumed handshakes).
fn answer(
    config: &ServerConfig,
    transcript: &[u8; 32],
    answer_key: &[u8; 32],
    client_public: ParsedPublicKey,
    session: SessionInfo,
    now_ms: u64,
    rng: &mut dyn Randomness,
) -> Result<Established, HandshakeError> {
    let secret = random_secret(rng);
    let server_public = encode_point(&secret);
    let shared = ecdh(&secret, client_public).ok_or(HandshakeError::new(ECDH))?;
    let wrap_key = hkdf32(shared.as_ref(), transcript, info::WRAP);
    let mut session_key = Zeroizing::new([0u8; 32]);
    rng.fill(session_key.as_mut());
    let wrapped = seal_once(&wrap_key, &server_public, session_key.as_ref());
    let keys = SessionKeys::derive(&session_key, transcript);

    let mut ticket = Vec::new();
    let mut lifetime_secs = 0u32;
    if let Some(tickets) = &config.tickets {
        let lifetime_ms = u64::try_from(config.ticket_lifetime.as_millis()).unwrap_or(u64::MAX);
        let expires_at_ms = now_ms
            .saturating_add(lifetime_ms)
            .min(session.identity_expires_at_ms);
        if expires_at_ms > now_ms {
            let mut id = [0u8; TICKET_ID_LEN];
            rng.fill(&mut id);
            let contents = TicketContents {
                id,
                issued_at_ms: now_ms,
                expires_at_ms,
                identity_expires_at_ms: session.identity_expires_at_ms,
                secret: keys.resumption.clone(),
                app: session.app_id.clone(),
                user: session.user.clone(),
                device: session.device_id.clone(),
            };
            if let Some(sealed) = tickets.seal(&contents, rng) {
                ticket = sealed;
                lifetime_secs = u32::try_from((expires_at_ms - now_ms) / 1000).unwrap_or(u32::MAX);
            }
        }
    }
    if lifetime_secs == 0 {
        ticket.clear();
    }

    let mut inner = Zeroizing::new(Vec::with_capacity(
        P256_PUBLIC_LEN + WRAPPED_LEN + 6 + ticket.len(),
    ));
    inner.extend_from_slice(&server_public);
    inner.extend_from_slice(&wrapped);
    inner.extend_from_slice(&lifetime_secs.to_be_bytes());
    inner.extend_from_slice(&(ticket.len() as u16).to_be_bytes());
    inner.extend_from_slice(&ticket);
    let mut answer = vec![HANDSHAKE_VERSION];
    answer.extend_from_slice(&seal_once(answer_key, &[HANDSHAKE_VERSION], &inner));
    Ok(Established {
        answer,
        channel: SecureChannel::new(&keys.s2c, &keys.c2s),
        session,
    })
}

struct SessionKeys {
    c2s: Zeroizing<[u8; 32]>,
    s2c: Zeroizing<[u8; 32]>,
    resumption: Zeroizing<[u8; 32]>,
}

impl SessionKeys {
    fn derive(session_key: &[u8; 32], transcript: &[u8; 32]) -> SessionKeys {
        SessionKeys {
            c2s: hkdf32(session_key, transcript, info::C2S),
            s2c: hkdf32(session_key, transcript, info::S2C),
            resumption: hkdf32(session_key, transcript, info::RESUMPTION),
        }
    }
}

/// A resume hello whose ticket and proof of the resumption secret checked
/// out: its ticket must be claimed (single use) before it is accepted.
pub struct PendingResume {
    ticket: TicketContents,
    meta: ClientMeta,
    client_public: ParsedPublicKey,
    transcript: [u8; 32],
}

impl fmt::Debug for PendingResume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingResume")
            .field("meta", &self.meta)
            .field("user", &self.ticket.user)
            .finish_non_exhaustive()
    }
}

impl PendingResume {
    fn open(
        config: &ServerConfig,
        body: &[u8],
        now_ms: u64,
    ) -> Result<PendingResume, HandshakeError> {
        let malformed = || HandshakeError::new(MALFORMED);
        let tickets = config
            .tickets
            .as_ref()
            .ok_or(HandshakeError::new("resumption is disabled"))?;
        let mut r = Reader::new(body);
        if r.u8().ok_or_else(malformed)? != HANDSHAKE_VERSION {
            return Err(HandshakeError::new("unsupported handshake version"));
        }
        let ticket_len = usize::from(r.u16().ok_or_else(malformed)?);
        if ticket_len > MAX_TICKET_LEN {
            return Err(malformed());
        }
        let ticket_bytes = r.take(ticket_len).ok_or_else(malformed)?;
        let client_nonce = r.array::<32>().ok_or_else(malformed)?;
        let point = r.take(P256_PUBLIC_LEN).ok_or_else(malformed)?;
        let meta_sealed = r.rest();
        let aad = &body[..body.len() - meta_sealed.len()];
        if meta_sealed.len() < 4 + TAG_LEN || meta_sealed.len() > MAX_META_SEALED {
            return Err(malformed());
        }

        // Same path whether the ticket or the proof fails.
        let ticket = tickets.open(ticket_bytes, now_ms);
        let mut secret = Zeroizing::new([0u8; 32]);
        match &ticket {
            Some(t) => secret.copy_from_slice(t.secret.as_ref()),
            None => OsRandom.fill(secret.as_mut()),
        }
        let meta_key = hkdf32(secret.as_ref(), &client_nonce, info::RESUME_HELLO);
        let meta_plain = open_once(&meta_key, aad, meta_sealed);
        let (ticket, meta_plain) = match (ticket, meta_plain) {
            (Some(t), Some(m)) => (t, m),
            _ => return Err(HandshakeError::new(DECRYPT)),
        };
        if now_ms >= ticket.expires_at_ms {
            return Err(HandshakeError::new("resumption ticket expired"));
        }
        let mut m = Reader::new(&meta_plain);
        let meta = ClientMeta::decode(&mut m).ok_or_else(malformed)?;
        if !m.is_empty() {
            return Err(malformed());
        }
        if meta.app_id != ticket.app || meta.device_id != ticket.device {
            return Err(HandshakeError::new(
                "ticket was issued to another app or device",
            ));
        }
        let client_public = parse_point(point).ok_or_else(malformed)?;
        Ok(PendingResume {
            ticket,
            meta,
            client_public,
            transcript: sha256(body),
        })
    }

    /// The ticket's id: claim it in the single-use ledger.
    pub fn ticket_id(&self) -> [u8; TICKET_ID_LEN] {
        self.ticket.id
    }

    /// When the ticket expires (ms): keep its id in the ledger until then.
    pub fn ticket_expires_at_ms(&self) -> u64 {
        self.ticket.expires_at_ms
    }

    /// When the ticket was issued (ms).
    pub fn ticket_issued_at_ms(&self) -> u64 {
        self.ticket.issued_at_ms
    }

    /// The user the ticket was issued to.
    pub fn user(&self) -> &str {
        &self.ticket.user
    }

    /// When the original token expires (ms).
    pub fn identity_expires_at_ms(&self) -> u64 {
        self.ticket.identity_expires_at_ms
    }

    /// What the client said about itself (app and device match the ticket).
    pub fn meta(&self) -> &ClientMeta {
        &self.meta
    }

    /// Refuses the resumption (for example: the user was banned since).
    pub fn reject(self) -> HandshakeError {
        HandshakeError::new("resumption rejected")
    }

    /// Accepts the resumption once its ticket is claimed: fresh ECDH, fresh
    /// session key, a new ticket. Draws from `rng` like [`PendingHello::accept`].
    pub fn accept(
        self,
        config: &ServerConfig,
        claim: TicketClaim,
        now_ms: u64,
        rng: &mut dyn Randomness,
    ) -> Result<Established, HandshakeError> {
        if claim.id != self.ticket.id {
            return Err(HandshakeError::new("claim is for another ticket"));
        }
        let answer_key = hkdf32(
            self.ticket.secret.as_ref(),
            &self.transcript,
            info::RESUME_ANSWER,
        );
        let session = SessionInfo {
            app_id: self.meta.app_id,
            user: self.ticket.user.clone(),
            device_id: self.meta.device_id,
            platform: self.meta.platform,
            client_version: self.meta.client_version,
            identity_expires_at_ms: self.ticket.identity_expires_at_ms,
            resumed: true,
        };
        answer(
            config,
            &self.transcript,
            &answer_key,
            self.client_public,
            session,
            now_ms,
            rng,
        )
    }
}

// ------------------------------------------------------------------ client

/// What a client needs to connect.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server key the client trusts.
    pub server_key: PinnedServerKey,
    /// App, device, platform, version.
    pub meta: ClientMeta,
}

/// The client's half of a session.
#[derive(Debug)]
pub struct ClientSession {
    /// Seals what the client sends, opens what the server sends.
    pub channel: SecureChannel,
    /// A ticket for the next reconnect, if the server issued one.
    pub ticket: Option<ResumeTicket>,
}

enum AnswerKey {
    Full(Zeroizing<[u8; 32]>),
    Resume(Zeroizing<[u8; 32]>),
}

/// A client waiting for the server's answer.
pub struct ClientHandshake {
    answer_key: AnswerKey,
    secret: PrivateKey,
    transcript: [u8; 32],
}

impl fmt::Debug for ClientHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.answer_key {
            AnswerKey::Full(_) => "full",
            AnswerKey::Resume(_) => "resume",
        };
        f.debug_struct("ClientHandshake")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

impl ClientHandshake {
    /// Builds a full hello (the body of a `HandshakeHello` frame).
    ///
    /// Draws from `rng`, in order: the random key R (32 bytes), the
    /// ephemeral scalar (32), the OAEP seed (32).
    pub fn start(
        config: &ClientConfig,
        token: &str,
        rng: &mut dyn Randomness,
    ) -> Result<(ClientHandshake, Vec<u8>), ClientError> {
        if token.is_empty() {
            return Err(ClientError::EmptyToken);
        }
        let capacity = config.server_key.token_capacity();
        if token.len() > capacity {
            return Err(ClientError::TokenTooLong {
                len: token.len(),
                capacity,
            });
        }
        let key_id = config.server_key.key_id();
        let mut meta = Zeroizing::new(key_id.to_vec());
        config.meta.encode(&mut meta)?;

        let mut random_key = Zeroizing::new([0u8; 32]);
        rng.fill(random_key.as_mut());
        let secret = random_secret(rng);
        let public = encode_point(&secret);
        let mut block = Zeroizing::new(Vec::with_capacity(RSA_BLOCK_FIXED + token.len()));
        block.extend_from_slice(random_key.as_ref());
        block.extend_from_slice(&public);
        block.extend_from_slice(token.as_bytes());
        let rsa_block = config
            .server_key
            .public()
            .oaep_encrypt_with_rng::<Sha256, _>(&mut RngAdapter(rng), &block)
            .expect("the block fits: its length was checked against the key");

        let mut body = Vec::with_capacity(11 + rsa_block.len() + meta.len() + TAG_LEN);
        body.push(HANDSHAKE_VERSION);
        body.extend_from_slice(&key_id);
        body.extend_from_slice(&(rsa_block.len() as u16).to_be_bytes());
        body.extend_from_slice(&rsa_block);
        let hello_key = hkdf32(random_key.as_ref(), &[], info::HELLO);
        let sealed = seal_once(&hello_key, &body, &meta);
        body.extend_from_slice(&sealed);
        let transcript = sha256(&body);
        Ok((
            ClientHandshake {
                answer_key: AnswerKey::Full(hkdf32(random_key.as_ref(), &transcript, info::ANSWER)),
                secret,
                transcript,
            },
            body,
        ))
    }

    /// Builds a resume hello (the body of a `ResumeHello` frame) from the
    /// last session's ticket. If the server refuses it, reconnect with
    /// [`ClientHandshake::start`].
    ///
    /// Draws from `rng`, in order: the client nonce (32 bytes), the
    /// ephemeral scalar (32).
    pub fn resume(
        meta: &ClientMeta,
        ticket: &ResumeTicket,
        rng: &mut dyn Randomness,
    ) -> Result<(ClientHandshake, Vec<u8>), ClientError> {
        let mut meta_plain = Zeroizing::new(Vec::new());
        meta.encode(&mut meta_plain)?;
        let mut nonce = [0u8; 32];
        rng.fill(&mut nonce);
        let secret = random_secret(rng);
        let public = encode_point(&secret);
        let mut body =
            Vec::with_capacity(3 + ticket.ticket().len() + 32 + 65 + meta_plain.len() + TAG_LEN);
        body.push(HANDSHAKE_VERSION);
        body.extend_from_slice(&(ticket.ticket().len() as u16).to_be_bytes());
        body.extend_from_slice(ticket.ticket());
        body.extend_from_slice(&nonce);
        body.extend_from_slice(&public);
        let meta_key = hkdf32(ticket.secret(), &nonce, info::RESUME_HELLO);
        let sealed = seal_once(&meta_key, &body, &meta_plain);
        body.extend_from_slice(&sealed);
        let transcript = sha256(&body);
        Ok((
            ClientHandshake {
                answer_key: AnswerKey::Resume(hkdf32(
                    ticket.secret(),
                    &transcript,
                    info::RESUME_ANSWER,
                )),
                secret,
                transcript,
            },
            body,
        ))
    }

    /// Reads the server's answer (the body of the `HandshakeAnswer` frame).
    pub fn finish(self, answer: &[u8]) -> Result<ClientSession, HandshakeError> {
        let malformed = || HandshakeError::new(MALFORMED);
        let (version, sealed) = answer.split_first().ok_or_else(malformed)?;
        if *version != HANDSHAKE_VERSION {
            return Err(HandshakeError::new("unsupported handshake version"));
        }
        let answer_key = match &self.answer_key {
            AnswerKey::Full(k) | AnswerKey::Resume(k) => k,
        };
        let inner = open_once(answer_key, &[HANDSHAKE_VERSION], sealed)
            .ok_or(HandshakeError::new(DECRYPT))?;
        let mut r = Reader::new(&inner);
        let point = r.take(P256_PUBLIC_LEN).ok_or_else(malformed)?;
        let wrapped = r.take(WRAPPED_LEN).ok_or_else(malformed)?;
        let lifetime_secs = r.u32().ok_or_else(malformed)?;
        let ticket_len = usize::from(r.u16().ok_or_else(malformed)?);
        let ticket = r.take(ticket_len).ok_or_else(malformed)?;
        if !r.is_empty() {
            return Err(malformed());
        }
        let server_public = parse_point(point).ok_or_else(malformed)?;
        let shared = ecdh(&self.secret, server_public).ok_or(HandshakeError::new(ECDH))?;
        let wrap_key = hkdf32(shared.as_ref(), &self.transcript, info::WRAP);
        let unwrapped = open_once(&wrap_key, point, wrapped).ok_or(HandshakeError::new(DECRYPT))?;
        let mut session_key = Zeroizing::new([0u8; 32]);
        session_key.copy_from_slice(&unwrapped);
        let keys = SessionKeys::derive(&session_key, &self.transcript);
        let ticket = (lifetime_secs > 0 && !ticket.is_empty()).then(|| {
            ResumeTicket::new(
                ticket.to_vec(),
                keys.resumption.clone(),
                Duration::from_secs(u64::from(lifetime_secs)),
            )
        });
        Ok(ClientSession {
            channel: SecureChannel::new(&keys.c2s, &keys.s2c),
            ticket,
        })
    }
}
