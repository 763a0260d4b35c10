//! Upload URLs of the `fs` store: an HMAC-SHA256 over everything the server
//! granted (app, key, type, size, expiry), with a secret kept in the data
//! directory. The upload route checks it before reading a byte of the body.

use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use bubble_core::{Error, ErrorKind, Result};

/// The shortest signing secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// What one upload URL allows: one object, of one type and exact size,
/// until a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadGrant {
    /// The app the upload is for.
    pub app: String,
    /// The object key (made by the server).
    pub key: String,
    /// The `Content-Type` the upload must carry.
    pub mime: String,
    /// The `Content-Length` the upload must have.
    pub size: u64,
    /// Until when the upload may start (ms since the epoch).
    pub expires_at: i64,
}

impl UploadGrant {
    /// The signed text: one field a line, each free of line breaks (app ids
    /// have no control characters, keys and types are checked), so no two
    /// grants read the same.
    fn message(&self) -> String {
        format!(
            "bubble-media-upload-v1\n{}\n{}\n{}\n{}\n{}",
            self.app, self.key, self.mime, self.size, self.expires_at
        )
    }
}

/// Signs and checks upload grants.
#[derive(Clone)]
pub struct UploadSigner {
    /// The HMAC key; never logged.
    secret: Vec<u8>,
}

impl std::fmt::Debug for UploadSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadSigner")
            .field("secret", &"<hidden>")
            .finish()
    }
}

impl UploadSigner {
    /// A signer with `secret` (at least [`MIN_SECRET_LEN`] bytes).
    pub fn new(secret: &[u8]) -> Result<UploadSigner> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(Error::invalid(format!(
                "the media signing secret has {} bytes; it needs at least {MIN_SECRET_LEN}",
                secret.len()
            )));
        }
        Ok(UploadSigner {
            secret: secret.to_vec(),
        })
    }

    fn mac(&self, grant: &UploadGrant) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes a key of any length");
        mac.update(grant.message().as_bytes());
        mac
    }

    /// The grant's signature, lowercase hex.
    pub fn sign(&self, grant: &UploadGrant) -> String {
        hex::encode(self.mac(grant).finalize().into_bytes())
    }

    /// Checks `signature` (hex) over `grant` in constant time, then that it
    /// has not expired at `now_ms`. Both refusals are
    /// [`ErrorKind::PermissionDenied`]: the client asks for a new ticket.
    pub fn verify(&self, grant: &UploadGrant, signature: &str, now_ms: i64) -> Result<()> {
        let valid = hex::decode(signature)
            .map(|sig| self.mac(grant).verify_slice(&sig).is_ok())
            .unwrap_or(false);
        if !valid {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                "the upload URL's signature does not match what it grants: use the upload_url of \
                 a MediaUploadTicket exactly as given, with the Content-Type and length it was asked for",
            ));
        }
        if now_ms > grant.expires_at {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "the upload URL expired {} s ago: ask for a new ticket (MediaUpload) and upload at once",
                    (now_ms - grant.expires_at) / 1000
                ),
            ));
        }
        Ok(())
    }
}

/// The signing secret in `path`: read if the file exists, else 32 random
/// bytes written there (hex, readable by the owner only), like the admin
/// secret. Every upload URL signed with an earlier secret stops working
/// when the file is replaced.
pub fn load_or_create_secret(path: &Path) -> Result<Vec<u8>> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let secret = existing.trim().as_bytes().to_vec();
        if secret.len() < MIN_SECRET_LEN {
            return Err(Error::invalid(format!(
                "{} holds {} bytes; a media signing secret needs at least {MIN_SECRET_LEN}: \
                 delete the file and a new one is made at the next start",
                path.display(),
                secret.len()
            )));
        }
        return Ok(secret);
    }
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!("the operating system's random number generator failed: {e}"),
        )
    })?;
    let secret = hex::encode(random);
    write_private(path, &secret)?;
    Ok(secret.into_bytes())
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let failed = |e: std::io::Error| {
        Error::new(
            ErrorKind::Unavailable,
            format!(
                "cannot write the media signing secret {}: {e}; make the data directory writable",
                path.display()
            ),
        )
    };
    let mut f = options.open(path).map_err(failed)?;
    f.write_all(text.as_bytes()).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> UploadGrant {
        UploadGrant {
            app: "shop".into(),
            key: "shop/2024/03/01/0123456789abcdef0123456789abcdef.jpg".into(),
            mime: "image/jpeg".into(),
            size: 300_000,
            expires_at: 1_000_000,
        }
    }

    fn signer() -> UploadSigner {
        UploadSigner::new(&[7u8; 32]).unwrap()
    }

    #[test]
    fn a_grant_signed_by_the_server_verifies_until_it_expires() {
        let s = signer();
        let sig = s.sign(&grant());
        assert_eq!(sig.len(), 64);
        s.verify(&grant(), &sig, 999_999).unwrap();
        s.verify(&grant(), &sig, 1_000_000).unwrap();
        let err = s.verify(&grant(), &sig, 1_000_001).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        assert!(err.message().contains("expired"), "{err}");
    }

    #[test]
    fn changing_any_granted_field_breaks_the_signature() {
        let s = signer();
        let sig = s.sign(&grant());
        let tampered: [fn(&mut UploadGrant); 5] = [
            |g| g.app = "other".into(),
            |g| g.key = "shop/2024/03/01/ffffffffffffffffffffffffffffffff.jpg".into(),
            |g| g.mime = "text/html".into(),
            |g| g.size += 1,
            |g| g.expires_at += 3_600_000,
        ];
        for tamper in tampered {
            let mut g = grant();
            tamper(&mut g);
            let err = s.verify(&g, &sig, 0).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::PermissionDenied);
            assert!(err.message().contains("signature"), "{err}");
        }
    }

    #[test]
    fn a_signature_from_another_secret_or_not_hex_is_refused() {
        let other = UploadSigner::new(&[8u8; 32]).unwrap();
        let sig = other.sign(&grant());
        assert!(signer().verify(&grant(), &sig, 0).is_err());
        assert!(signer().verify(&grant(), "not hex", 0).is_err());
        assert!(signer().verify(&grant(), "", 0).is_err());
    }

    #[test]
    fn a_short_secret_is_refused() {
        assert_eq!(
            UploadSigner::new(b"short").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn the_secret_is_made_once_and_read_back_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("media_secret");
        let first = load_or_create_secret(&path).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(load_or_create_secret(&path).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn the_signer_keeps_its_secret_out_of_debug_output() {
        let shown = format!(
            "{:?}",
            UploadSigner::new(b"0123456789abcdef0123456789abcdef").unwrap()
        );
        assert!(!shown.contains("0123456789"), "{shown}");
    }
}
