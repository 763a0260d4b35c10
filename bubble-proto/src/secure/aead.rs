//! The primitives every layer shares: HKDF-SHA256, AES-256-GCM, SHA-256, and
//! the HKDF info strings (part of the wire contract: see `docs/auth.md`).

use aes_gcm::aead::Tag;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// HKDF info strings. Changing one is a protocol version change.
pub(crate) mod info {
    /// Key that seals the hello's metadata, from the client's random key.
    pub(crate) const HELLO: &[u8] = b"bubble/v1 hello";
    /// Key that seals the answer, from the client's random key.
    pub(crate) const ANSWER: &[u8] = b"bubble/v1 answer";
    /// Key that wraps the session key, from the ECDH shared secret.
    pub(crate) const WRAP: &[u8] = b"bubble/v1 wrap";
    /// Record key client -> server, from the session key.
    pub(crate) const C2S: &[u8] = b"bubble/v1 c2s";
    /// Record key server -> client, from the session key.
    pub(crate) const S2C: &[u8] = b"bubble/v1 s2c";
    /// Resumption secret, from the session key.
    pub(crate) const RESUMPTION: &[u8] = b"bubble/v1 resumption";
    /// Key that seals a resume hello's metadata, from the resumption secret.
    pub(crate) const RESUME_HELLO: &[u8] = b"bubble/v1 resume hello";
    /// Key that seals a resume answer, from the resumption secret.
    pub(crate) const RESUME_ANSWER: &[u8] = b"bubble/v1 resume answer";
}

/// AES-GCM tag length.
pub(crate) const TAG_LEN: usize = 16;

/// The all-zero nonce, for keys that seal exactly one message.
pub(crate) const ZERO_NONCE: [u8; 12] = [0u8; 12];

/// HKDF-SHA256 to 32 bytes. `salt` empty means HKDF's default salt.
pub(crate) fn hkdf32(ikm: &[u8], salt: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let salt = if salt.is_empty() { None } else { Some(salt) };
    let hk = Hkdf::<Sha256>::new(salt, ikm);
    let mut okm = Zeroizing::new([0u8; 32]);
    hk.expand(info, okm.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    okm
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// A ready AES-256-GCM key (the key schedule runs once, not per record).
pub(crate) struct Gcm(Aes256Gcm);

impl Gcm {
    pub(crate) fn new(key: &[u8; 32]) -> Gcm {
        Gcm(Aes256Gcm::new(key.into()))
    }

    /// Appends `plaintext` sealed (ciphertext || tag) to `out`.
    pub(crate) fn seal_into(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) {
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = self
            .0
            .encrypt_inout_detached(&Nonce::from(*nonce), aad, (&mut out[start..]).into())
            .expect("AES-GCM seals anything below 64 GiB");
        out.extend_from_slice(&tag);
    }

    pub(crate) fn seal(&self, nonce: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plaintext.len() + TAG_LEN);
        self.seal_into(nonce, aad, plaintext, &mut out);
        out
    }

    /// Opens `sealed` (ciphertext || tag). `None` for anything inauthentic.
    pub(crate) fn open(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        sealed: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < TAG_LEN {
            return None;
        }
        let (ct, tag) = sealed.split_at(sealed.len() - TAG_LEN);
        let tag = Tag::<Aes256Gcm>::try_from(tag).ok()?;
        let mut buf = Zeroizing::new(ct.to_vec());
        self.0
            .decrypt_inout_detached(&Nonce::from(*nonce), aad, buf.as_mut_slice().into(), &tag)
            .ok()?;
        Some(buf)
    }
}

/// One-shot seal under a single-use key with the zero nonce.
pub(crate) fn seal_once(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    Gcm::new(key).seal(&ZERO_NONCE, aad, plaintext)
}

/// One-shot open under a single-use key with the zero nonce.
pub(crate) fn open_once(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    Gcm::new(key).open(&ZERO_NONCE, aad, sealed)
}
