//! bubble's media uploads: a client asks the server for an upload ticket,
//! puts the file straight into an object store with it, and sends the
//! message as a `MediaRef` to the ticket's `media_url`. Large files never
//! travel in frames.
//!
//! # Layout
//!
//! - [`config`]: the `[media]` section (`fs`, `s3` or `off`), validated
//!   field by field.
//! - [`keys`]: object keys made by the server (`app/yyyy/mm/dd/<random>.<ext>`),
//!   MIME types, and the per-app limits ([`check_upload`]).
//! - [`signing`]: the `fs` store's upload URLs, signed with an HMAC.
//! - [`MediaStore`]: one shape over both stores, on OpenDAL: tickets,
//!   `exists`/`stat` to check an upload landed, and (for `fs`, whose bytes
//!   pass through the server's HTTP listener) streaming writes and reads.
//!
//! # Downloads of the `fs` store are public, by unguessable key
//!
//! A `media_url` ends up in messages, which are kept, synced to new devices,
//! forwarded and searched for months: a download URL that expired would
//! break every old message. So `fs` download URLs carry no signature: each
//! key holds 128 random bits from the operating system, nothing lists keys,
//! and the route serves only keys of the server's own shape. Whoever holds
//! a message holds its file, as with an attachment link. Uploads are the
//! other way round: short-lived, signed, for one key, type and length.

pub mod config;
pub mod keys;
pub mod signing;
mod transport;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use opendal::options::WriteOptions;
use opendal::{HttpTransporter, OperationContext, Operator};

use bubble_core::{Error, ErrorKind, Result, now_millis};

pub use config::{FsConfig, MediaConfig, MediaKind, S3Config};
pub use keys::{check_upload, is_media_key, new_key, parse_mime};
pub use signing::{UploadGrant, UploadSigner};

/// The route under which the `fs` store's files are uploaded and served.
pub const FS_ROUTE: &str = "/v1/media";

/// Where and how a client uploads one file, and what the message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadTicket {
    /// The HTTP method: `PUT`.
    pub method: String,
    /// Where to send the file's bytes.
    pub url: String,
    /// Headers the upload must carry as given (its `Content-Type`).
    pub headers: Vec<(String, String)>,
    /// Where receivers download the file: the `MediaRef`'s `url`.
    pub media_url: String,
    /// Until when the upload may start (ms since the epoch).
    pub expires_at: i64,
}

/// What the store holds under a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectStat {
    /// Its length in bytes.
    pub size: u64,
}

/// The store's own part of each backend.
#[derive(Debug, Clone)]
enum Backend {
    /// Uploads and downloads through the server's HTTP listener.
    Fs {
        /// Signs upload URLs.
        signer: UploadSigner,
        /// Where clients reach the server's HTTP listener.
        public_url: String,
    },
    /// Presigned URLs.
    S3 {
        /// Downloads at `<public_base_url>/<key>` when set.
        public_base_url: String,
        /// Else presigned GETs that live this long.
        download_expires: Duration,
    },
}

/// One media store: `fs` or `s3`, the same calls for both.
#[derive(Debug, Clone)]
pub struct MediaStore {
    /// The object store.
    op: Operator,
    /// How URLs are made.
    backend: Backend,
    /// How long upload URLs live.
    upload_expires: Duration,
}

impl MediaStore {
    /// The store `config` chooses, or `None` for `off`. For `fs`: files under
    /// `fs.path` (empty: `<data_dir>/media`), URLs on `fs.public_url` (empty:
    /// `server_url`, where the server's HTTP listener is), signed with the
    /// secret in `<data_dir>/media_secret` (made on first start).
    pub fn open(
        config: &MediaConfig,
        data_dir: &Path,
        server_url: Option<&str>,
    ) -> Result<Option<MediaStore>> {
        config
            .validate()
            .map_err(|e| Error::from(e.within("media")))?;
        let expires = Duration::from_secs(config.upload_expires_secs);
        let store = match config.kind {
            MediaKind::Off => return Ok(None),
            MediaKind::Fs => {
                let mut fs = config.fs.clone();
                if fs.path.as_os_str().is_empty() {
                    fs.path = data_dir.join("media");
                }
                if fs.public_url.is_empty() {
                    fs.public_url = server_url
                        .ok_or_else(|| {
                            Error::invalid(
                                "media.kind \"fs\" serves uploads on the HTTP listener, which is \
                                 off: set http.addr (or media.fs.public_url), or use media.kind \
                                 \"s3\" or \"off\"",
                            )
                        })?
                        .to_owned();
                }
                let secret = signing::load_or_create_secret(&data_dir.join("media_secret"))?;
                MediaStore::fs(&fs, &secret)?
            }
            MediaKind::S3 => MediaStore::s3(&config.s3)?,
        };
        Ok(Some(store.with_upload_expires(expires)))
    }

    /// An `fs` store: files under `config.path` (created if missing), upload
    /// URLs on `config.public_url` signed with `secret`.
    pub fn fs(config: &FsConfig, secret: &[u8]) -> Result<MediaStore> {
        config
            .validate()
            .map_err(|e| Error::from(e.within("media.fs")))?;
        if config.path.as_os_str().is_empty() || config.public_url.is_empty() {
            return Err(Error::invalid(
                "an fs media store needs a path and a public_url",
            ));
        }
        std::fs::create_dir_all(&config.path).map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!(
                    "cannot create the media directory {}: {e}; set media.fs.path to a writable directory",
                    config.path.display()
                ),
            )
        })?;
        let root = config.path.to_string_lossy();
        // Uploads land in a hidden directory and are renamed into place when
        // complete: a half-sent file is never served.
        let builder = opendal::services::Fs::default()
            .root(&root)
            .atomic_write_dir(&format!("{root}/.uploads"));
        let op = Operator::new(builder)
            .map_err(|e| store_error("cannot open the media directory", e))?;
        Ok(MediaStore {
            op,
            backend: Backend::Fs {
                signer: UploadSigner::new(secret)?,
                public_url: config.public_url.trim_end_matches('/').to_owned(),
            },
            upload_expires: Duration::from_secs(900),
        })
    }

    /// An `s3` store on `config`'s bucket.
    pub fn s3(config: &S3Config) -> Result<MediaStore> {
        config
            .validate()
            .map_err(|e| Error::from(e.within("media.s3")))?;
        let mut builder = opendal::services::S3::default()
            .bucket(&config.bucket)
            .region(&config.region)
            .root(&config.root)
            .access_key_id(&config.access_key_id)
            .secret_access_key(&config.secret_access_key)
            // Only the configured key: no ~/.aws files, no instance metadata.
            .disable_config_load()
            .disable_ec2_metadata();
        if !config.endpoint.is_empty() {
            builder = builder.endpoint(&config.endpoint);
        }
        let op = Operator::new(builder)
            .map_err(|e| store_error("cannot set up the S3 media store", e))?
            .with_context(
                OperationContext::new().with_http_transport(HttpTransporter::new(
                    transport::ReqwestTransport::default(),
                )),
            );
        Ok(MediaStore {
            op,
            backend: Backend::S3 {
                public_base_url: config.public_base_url.trim_end_matches('/').to_owned(),
                download_expires: Duration::from_secs(config.download_expires_secs),
            },
            upload_expires: Duration::from_secs(900),
        })
    }

    /// The same store with upload URLs living `expires`.
    pub fn with_upload_expires(mut self, expires: Duration) -> MediaStore {
        self.upload_expires = expires;
        self
    }

    /// How long upload URLs live.
    pub fn upload_expires(&self) -> Duration {
        self.upload_expires
    }

    /// Which store this is.
    pub fn kind(&self) -> MediaKind {
        match self.backend {
            Backend::Fs { .. } => MediaKind::Fs,
            Backend::S3 { .. } => MediaKind::S3,
        }
    }

    /// A ticket to upload one file of `mime` and exactly `size` bytes to
    /// `key` (from [`new_key`]) for `app`, usable for `expires`.
    pub async fn upload_ticket(
        &self,
        app: &str,
        key: &str,
        mime: &str,
        size: u64,
        expires: Duration,
    ) -> Result<UploadTicket> {
        if !is_media_key(key) {
            return Err(Error::internal(format!(
                "{key:?} is not a media key; make keys with bubble_media::new_key"
            )));
        }
        let expires_at = now_millis().saturating_add(expires.as_millis() as i64);
        match &self.backend {
            Backend::Fs { signer, public_url } => {
                let grant = UploadGrant {
                    app: app.to_owned(),
                    key: key.to_owned(),
                    mime: mime.to_owned(),
                    size,
                    expires_at,
                };
                let sig = signer.sign(&grant);
                let media_url = format!("{public_url}{FS_ROUTE}/{key}");
                Ok(UploadTicket {
                    method: "PUT".into(),
                    url: format!(
                        "{media_url}?app={}&mime={}&size={size}&expires={expires_at}&sig={sig}",
                        query_escape(app),
                        query_escape(mime),
                    ),
                    headers: vec![("content-type".into(), mime.to_owned())],
                    media_url,
                    expires_at,
                })
            }
            Backend::S3 {
                public_base_url,
                download_expires,
            } => {
                let options = WriteOptions {
                    content_type: Some(mime.to_owned()),
                    ..WriteOptions::default()
                };
                let presigned = self
                    .op
                    .presign_write_options(key, expires, options)
                    .await
                    .map_err(|e| store_error("cannot presign the upload", e))?;
                let mut headers: Vec<(String, String)> = presigned
                    .header()
                    .iter()
                    .filter(|(name, _)| *name != http::header::HOST)
                    .filter_map(|(name, value)| {
                        Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
                    })
                    .collect();
                if !headers.iter().any(|(name, _)| name == "content-type") {
                    headers.push(("content-type".into(), mime.to_owned()));
                }
                let media_url = if public_base_url.is_empty() {
                    self.op
                        .presign_read(key, *download_expires)
                        .await
                        .map_err(|e| store_error("cannot presign the download", e))?
                        .uri()
                        .to_string()
                } else {
                    format!("{public_base_url}/{key}")
                };
                Ok(UploadTicket {
                    method: presigned.method().as_str().to_owned(),
                    url: presigned.uri().to_string(),
                    headers,
                    media_url,
                    expires_at,
                })
            }
        }
    }

    /// Whether an object exists at `key`.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        self.op
            .exists(key)
            .await
            .map_err(|e| store_error("cannot look the upload up", e))
    }

    /// What the store holds at `key`, or `None`: how a caller checks that an
    /// upload landed with the size it declared.
    pub async fn stat(&self, key: &str) -> Result<Option<ObjectStat>> {
        match self.op.stat(key).await {
            Ok(meta) => Ok(Some(ObjectStat {
                size: meta.content_length(),
            })),
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(store_error("cannot look the upload up", e)),
        }
    }

    /// Checks an upload to the `fs` store against its URL: the signature
    /// over `grant`, then its expiry. Any other store: refused (its uploads
    /// never reach the server).
    pub fn verify_upload(&self, grant: &UploadGrant, signature: &str) -> Result<()> {
        match &self.backend {
            Backend::Fs { signer, .. } => signer.verify(grant, signature, now_millis()),
            Backend::S3 { .. } => Err(Error::not_found(
                "this server's media store is S3: upload to the ticket's presigned URL",
            )),
        }
    }

    /// Writes `body` to `key`, chunk by chunk (nothing buffered beyond a
    /// chunk), and keeps it only if it is exactly `size` bytes: a longer or
    /// shorter body, or one that breaks off, leaves nothing behind. A key
    /// that holds a file already is [`ErrorKind::AlreadyExists`].
    pub async fn write_stream<S, E>(&self, key: &str, size: u64, body: S) -> Result<()>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        if self.exists(key).await? {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!(
                    "{key} was uploaded already: an upload URL is good for one upload; ask for a new ticket"
                ),
            ));
        }
        // The store checks again as the writer opens.
        let options = WriteOptions {
            if_not_exists: true,
            ..WriteOptions::default()
        };
        let mut writer = self
            .op
            .writer_options(key, options)
            .await
            .map_err(|e| store_error("cannot start the upload", e))?;
        let mut body = std::pin::pin!(body);
        let mut written = 0u64;
        let failure = loop {
            match body.next().await {
                Some(Ok(chunk)) => {
                    written += chunk.len() as u64;
                    if written > size {
                        break Error::invalid(format!(
                            "the body is longer than the {size} bytes the ticket was asked for"
                        ));
                    }
                    if let Err(e) = writer.write(chunk).await {
                        break store_error("cannot write the upload", e);
                    }
                }
                Some(Err(e)) => {
                    break Error::invalid(format!(
                        "the upload broke off after {written} bytes: {e}"
                    ));
                }
                None if written != size => {
                    break Error::invalid(format!(
                        "the body has {written} bytes; the ticket was asked for {size}"
                    ));
                }
                None => {
                    return match writer.close().await {
                        Ok(_) => Ok(()),
                        Err(e) => Err(store_error("cannot finish the upload", e)),
                    };
                }
            }
        };
        if let Err(e) = writer.abort().await
            && failure.kind() != ErrorKind::AlreadyExists
        {
            tracing::warn!(error = %e, key, "cannot remove a failed upload's temporary file");
        }
        Err(failure)
    }

    /// The file at `key`: its length and its bytes as a stream of chunks.
    pub async fn read_stream(
        &self,
        key: &str,
    ) -> Result<(u64, impl Stream<Item = Result<Bytes>> + Send + use<>)> {
        let size = match self.stat(key).await? {
            Some(stat) => stat.size,
            None => return Err(Error::not_found(format!("no media file {key}"))),
        };
        let reader = self
            .op
            .reader(key)
            .await
            .map_err(|e| store_error("cannot open the media file", e))?;
        let stream = reader
            .into_bytes_stream(..)
            .await
            .map_err(|e| store_error("cannot read the media file", e))?
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("reading the media file failed: {e}"),
                )
            });
        Ok((size, stream))
    }
}

/// A query value with everything but unreserved characters escaped.
fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An object store's error as one of core's kinds: the caller can tell a
/// missing object, a taken key, a store that may come back, and a setup to
/// fix.
fn store_error(what: &str, e: opendal::Error) -> Error {
    use opendal::ErrorKind as K;
    let kind = match e.kind() {
        K::NotFound => ErrorKind::NotFound,
        K::ConditionNotMatch | K::AlreadyExists => ErrorKind::AlreadyExists,
        K::PermissionDenied | K::ConfigInvalid | K::Unsupported => ErrorKind::Internal,
        _ => ErrorKind::Unavailable,
    };
    let hint = match kind {
        ErrorKind::AlreadyExists => "; this upload URL was used already: ask for a new ticket",
        ErrorKind::Internal => "; check the [media] settings and the store's permissions",
        ErrorKind::Unavailable => "; the media store may be down: retry later",
        _ => "",
    };
    Error::new(kind, format!("{what}: {e}{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_escape_everything_but_unreserved_characters() {
        assert_eq!(query_escape("image/svg+xml"), "image%2Fsvg%2Bxml");
        assert_eq!(query_escape("a b&c=d"), "a%20b%26c%3Dd");
        assert_eq!(query_escape("shop-1.eu_~"), "shop-1.eu_~");
    }
}
