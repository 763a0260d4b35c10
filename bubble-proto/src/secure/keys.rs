//! The server's RSA key pair and the client's pin of its public half.
//!
//! A key is named by its **key id**: the first 8 bytes of SHA-256 over the
//! public key's SubjectPublicKeyInfo DER. The hello names the key it was
//! sealed to, so a server can hold the current and the previous key during a
//! rotation and spend exactly one RSA decryption per hello. Clients pin the
//! full SHA-256 (the **fingerprint**) in their config.
//!
//! Two libraries share the work. The `rsa` crate reads and writes the key
//! files (PKCS#8 PEM), generates keys, computes the SPKI DER behind ids and
//! pins, and encrypts on the client (where the OAEP seed must come from the
//! injected [`Randomness`], which test vectors pin). AWS-LC (`aws-lc-rs`)
//! runs the one private-key operation, OAEP decryption of every full hello:
//! 3 to 4 times faster than `rsa`, blinded, with constant-time arithmetic
//! and padding check (see "RSA timing" in `docs/auth.md`).

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, PrivateDecryptingKey};
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::traits::PublicKeyParts;
use rsa::{PrivateKey as RsaPrivateKey, PublicKey as RsaPublicKey};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::aead::sha256;
use super::random::{OsRandom, Randomness, RngAdapter};
use super::{MAX_RSA_BITS, MIN_RSA_BITS};

/// File name of the current key inside the key directory.
pub const CURRENT_KEY_FILE: &str = "server_key.pem";
/// File name of the previous key (still accepted) inside the key directory.
pub const PREVIOUS_KEY_FILE: &str = "server_key.previous.pem";

/// Length of a key id in bytes.
pub const KEY_ID_LEN: usize = 8;

/// Bytes of the RSA block that are not the token: the client's random key
/// (32) and its uncompressed P-256 public key (65).
pub const RSA_BLOCK_FIXED: usize = 32 + 65;

/// Why a key could not be loaded, stored or pinned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Reading or writing a key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is readable by other users: refuse it like ssh does.
    #[error(
        "key file {path} has mode {mode:o}: a private key must not be readable by others; run `chmod 600 {path}`"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The PEM/DER is not an RSA key of the expected kind.
    #[error("not a valid RSA key ({what}): {reason}")]
    Malformed {
        /// What was expected ("PKCS#8 private key PEM", ...).
        what: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// The key is too small or too large.
    #[error(
        "RSA key of {bits} bits is outside {MIN_RSA_BITS}..={MAX_RSA_BITS}: generate a new one (3072 bits recommended)"
    )]
    Size {
        /// The key's modulus size.
        bits: usize,
    },
    /// The public key does not have the pinned fingerprint.
    #[error(
        "server key fingerprint {actual} does not match the pinned {expected}: the config pins another key (or the key was swapped); update the pin only from a trusted source"
    )]
    PinMismatch {
        /// The pinned fingerprint (hex).
        expected: String,
        /// The key's fingerprint (hex).
        actual: String,
    },
    /// Key generation failed.
    #[error("RSA key generation failed: {0}")]
    Generate(String),
}

fn check_bits(bits: usize) -> Result<(), KeyError> {
    if (MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        Ok(())
    } else {
        Err(KeyError::Size { bits })
    }
}

fn spki_der(public: &RsaPublicKey) -> Vec<u8> {
    public
        .to_public_key_der()
        .expect("an RSA public key always encodes as SPKI DER")
        .as_bytes()
        .to_vec()
}

/// SHA-256 of a public key's SPKI DER: what a client pins.
pub fn fingerprint(public: &RsaPublicKey) -> [u8; 32] {
    sha256(&spki_der(public))
}

/// The key id of a public key: the first 8 bytes of its fingerprint.
pub fn key_id(public: &RsaPublicKey) -> [u8; KEY_ID_LEN] {
    let fp = fingerprint(public);
    fp[..KEY_ID_LEN].try_into().expect("8 of 32 bytes")
}

/// The longest token the hello's RSA block carries for a key of
/// `modulus_bytes` (OAEP-SHA256 holds `k - 66` bytes; 97 go to the random
/// key and the ECDH key): 93 bytes for RSA-2048, 221 for RSA-3072, 349 for
/// RSA-4096.
pub fn token_capacity(modulus_bytes: usize) -> usize {
    modulus_bytes.saturating_sub(66 + RSA_BLOCK_FIXED)
}

/// One server RSA key pair with its id.
pub struct ServerKey {
    /// The key as the `rsa` crate holds it: for PEM output, the public half
    /// and pins.
    private: RsaPrivateKey,
    /// The same key loaded into AWS-LC, which decrypts hellos.
    decrypting: OaepPrivateDecryptingKey,
    key_id: [u8; KEY_ID_LEN],
    fingerprint: [u8; 32],
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerKey")
            .field("bits", &(self.modulus_bytes() * 8))
            .field("key_id", &hex8(&self.key_id))
            .field("private", &"<hidden>")
            .finish()
    }
}

fn hex8(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl ServerKey {
    /// Wraps an RSA private key, checking its size.
    ///
    /// The key is handed to AWS-LC through its PKCS#8 DER, which AWS-LC
    /// checks again (`RSA_check_key`): a key it refuses (for example one with
    /// more than two primes) is [`KeyError::Malformed`].
    pub fn new(private: RsaPrivateKey) -> Result<ServerKey, KeyError> {
        check_bits(private.size() * 8)?;
        let refused = |reason: String| KeyError::Malformed {
            what: "two-prime RSA private key",
            reason,
        };
        let der = private.to_pkcs8_der().map_err(|e| refused(e.to_string()))?;
        let decrypting = PrivateDecryptingKey::from_pkcs8(der.as_bytes())
            .map_err(|e| refused(format!("AWS-LC refused the key: {e}")))?;
        let decrypting = OaepPrivateDecryptingKey::new(decrypting)
            .map_err(|e| refused(format!("AWS-LC refused the key for OAEP: {e}")))?;
        let fingerprint = fingerprint(private.as_public_key());
        Ok(ServerKey {
            key_id: fingerprint[..KEY_ID_LEN].try_into().expect("8 of 32"),
            fingerprint,
            private,
            decrypting,
        })
    }

    /// Generates a fresh key of `bits` bits from the OS generator.
    pub fn generate(bits: usize) -> Result<ServerKey, KeyError> {
        Self::generate_with(bits, &mut OsRandom)
    }

    /// Generates a fresh key of `bits` bits from `rng`.
    pub fn generate_with(bits: usize, rng: &mut dyn Randomness) -> Result<ServerKey, KeyError> {
        check_bits(bits)?;
        let private = RsaPrivateKey::new(&mut RngAdapter(rng), bits)
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        ServerKey::new(private)
    }

    /// Parses a PKCS#8 PEM private key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<ServerKey, KeyError> {
        let private = RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| KeyError::Malformed {
            what: "PKCS#8 private key PEM",
            reason: e.to_string(),
        })?;
        ServerKey::new(private)
    }

    /// The key as PKCS#8 PEM (secret: store it 0600).
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        self.private
            .to_pkcs8_pem(LineEnding::LF)
            .expect("an RSA private key always encodes as PKCS#8")
    }

    /// The public half as SPKI PEM, to ship to clients.
    pub fn public_pem(&self) -> String {
        self.private
            .as_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("an RSA public key always encodes as SPKI PEM")
    }

    /// The key id hellos name this key by.
    pub fn key_id(&self) -> [u8; KEY_ID_LEN] {
        self.key_id
    }

    /// The fingerprint clients pin (SHA-256 of the SPKI DER).
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// The fingerprint as lowercase hex, the form configs carry.
    pub fn fingerprint_hex(&self) -> String {
        hex8(&self.fingerprint)
    }

    /// Modulus length in bytes (the RSA block's length in a hello).
    pub fn modulus_bytes(&self) -> usize {
        self.private.size()
    }

    /// RSA-OAEP-SHA256 (MGF1-SHA256, empty label) decryption of a hello's
    /// RSA block, blinded. `None` for every kind of failure alike: AWS-LC
    /// checks the padding in constant time and reports one undifferentiated
    /// error, and callers must not branch on why either.
    pub(crate) fn oaep_decrypt(&self, block: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; self.decrypting.min_output_size()]);
        let len = self
            .decrypting
            .decrypt(&OAEP_SHA256_MGF1SHA256, block, &mut out, None)
            .ok()?
            .len();
        out.truncate(len);
        Some(out)
    }

    /// A client pin of this key (for tests and for a server handing out its key).
    pub fn pin(&self) -> PinnedServerKey {
        PinnedServerKey {
            public: self.private.to_public_key(),
            key_id: self.key_id,
            fingerprint: self.fingerprint,
        }
    }
}

/// The keys a server accepts: the current one and, during a rotation, the
/// previous one (clients with an old pin keep working until they update).
#[derive(Debug, Clone)]
pub struct ServerKeyRing {
    current: Arc<ServerKey>,
    previous: Option<Arc<ServerKey>>,
}

impl ServerKeyRing {
    /// A ring with just `current`.
    pub fn new(current: ServerKey) -> ServerKeyRing {
        ServerKeyRing {
            current: Arc::new(current),
            previous: None,
        }
    }

    /// A ring with a current and a previous key.
    pub fn with_previous(current: ServerKey, previous: ServerKey) -> ServerKeyRing {
        ServerKeyRing {
            current: Arc::new(current),
            previous: Some(Arc::new(previous)),
        }
    }

    /// The key new clients should pin.
    pub fn current(&self) -> &ServerKey {
        &self.current
    }

    /// The key still accepted from clients with an old pin.
    pub fn previous(&self) -> Option<&ServerKey> {
        self.previous.as_deref()
    }

    /// The key with `key_id`, compared in constant time.
    pub fn find(&self, key_id: &[u8; KEY_ID_LEN]) -> Option<&ServerKey> {
        std::iter::once(&self.current)
            .chain(self.previous.iter())
            .find(|k| bool::from(k.key_id.ct_eq(key_id)))
            .map(|k| &**k)
    }

    /// Loads the keys from `dir`, generating (and storing, mode 0600) a
    /// current key of `bits` bits if there is none. The directory is created
    /// (mode 0700) when missing.
    pub fn load_or_generate(dir: &Path, bits: usize) -> Result<ServerKeyRing, KeyError> {
        create_dir(dir)?;
        let current_path = dir.join(CURRENT_KEY_FILE);
        let current = if current_path.exists() {
            read_key(&current_path)?
        } else {
            let key = ServerKey::generate(bits)?;
            write_key(&current_path, &key)?;
            key
        };
        let previous_path = dir.join(PREVIOUS_KEY_FILE);
        let previous = if previous_path.exists() {
            Some(Arc::new(read_key(&previous_path)?))
        } else {
            None
        };
        Ok(ServerKeyRing {
            current: Arc::new(current),
            previous,
        })
    }

    /// Rotates the keys in `dir`: the current key becomes the previous one
    /// (replacing any older previous key) and a new current key of `bits`
    /// bits is generated. Restart or reload servers afterwards; clients
    /// pinning the old key keep working until the next rotation.
    pub fn rotate(dir: &Path, bits: usize) -> Result<ServerKeyRing, KeyError> {
        let current_path = dir.join(CURRENT_KEY_FILE);
        let old = read_key(&current_path)?;
        let new = ServerKey::generate(bits)?;
        write_key(&dir.join(PREVIOUS_KEY_FILE), &old)?;
        write_key(&current_path, &new)?;
        Ok(ServerKeyRing::with_previous(new, old))
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn create_dir(dir: &Path) -> Result<(), KeyError> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io_err(dir))
}

fn read_key(path: &Path) -> Result<ServerKey, KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .map_err(io_err(path))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let pem = Zeroizing::new(fs::read_to_string(path).map_err(io_err(path))?);
    ServerKey::from_pkcs8_pem(&pem)
}

/// Writes the key to a temporary file created 0600, then renames it into
/// place, so a crash never leaves a half-written key.
fn write_key(path: &Path, key: &ServerKey) -> Result<(), KeyError> {
    let tmp = path.with_extension("pem.tmp");
    let _ = fs::remove_file(&tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io_err(&tmp))?;
    file.write_all(key.to_pkcs8_pem().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

/// The server public key a client trusts: its config carries the key and
/// the fingerprint, and they must agree.
#[derive(Clone)]
pub struct PinnedServerKey {
    public: RsaPublicKey,
    key_id: [u8; KEY_ID_LEN],
    fingerprint: [u8; 32],
}

impl fmt::Debug for PinnedServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinnedServerKey")
            .field("key_id", &hex8(&self.key_id))
            .field("fingerprint", &hex8(&self.fingerprint))
            .finish()
    }
}

impl PinnedServerKey {
    /// Parses an SPKI PEM public key and checks it against the pinned
    /// fingerprint (64 hex digits, any case; `:` separators allowed).
    pub fn from_pem(pem: &str, fingerprint_hex: &str) -> Result<PinnedServerKey, KeyError> {
        let public = RsaPublicKey::from_public_key_pem(pem).map_err(|e| KeyError::Malformed {
            what: "SPKI public key PEM",
            reason: e.to_string(),
        })?;
        Self::from_public(public, fingerprint_hex)
    }

    /// Parses an SPKI DER public key and checks it against the pinned fingerprint.
    pub fn from_der(der: &[u8], fingerprint_hex: &str) -> Result<PinnedServerKey, KeyError> {
        let public = RsaPublicKey::from_public_key_der(der).map_err(|e| KeyError::Malformed {
            what: "SPKI public key DER",
            reason: e.to_string(),
        })?;
        Self::from_public(public, fingerprint_hex)
    }

    fn from_public(
        public: RsaPublicKey,
        fingerprint_hex: &str,
    ) -> Result<PinnedServerKey, KeyError> {
        check_bits(public.size() * 8)?;
        let fp = fingerprint(&public);
        let expected: String = fingerprint_hex
            .chars()
            .filter(|c| *c != ':')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let actual = hex8(&fp);
        if expected != actual {
            return Err(KeyError::PinMismatch { expected, actual });
        }
        Ok(PinnedServerKey {
            public,
            key_id: fp[..KEY_ID_LEN].try_into().expect("8 of 32"),
            fingerprint: fp,
        })
    }

    /// The key id hellos carry.
    pub fn key_id(&self) -> [u8; KEY_ID_LEN] {
        self.key_id
    }

    /// The pinned fingerprint.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// Modulus length in bytes.
    pub fn modulus_bytes(&self) -> usize {
        self.public.size()
    }

    /// The longest token a hello to this key can carry.
    pub fn token_capacity(&self) -> usize {
        token_capacity(self.modulus_bytes())
    }

    pub(crate) fn public(&self) -> &RsaPublicKey {
        &self.public
    }
}
