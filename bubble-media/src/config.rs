//! The `[media]` section: which store (`fs`, `s3` or `off`), how long an
//! upload URL is valid, and each store's own settings. Every field has a
//! default; [`MediaConfig::validate`] names the first bad one.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use bubble_core::InvalidConfig;

/// The longest a presigned S3 URL may live (SigV4's limit), and so the
/// longest any upload URL may.
pub const MAX_EXPIRES_SECS: u64 = 7 * 24 * 3600;

/// Which store media uploads go to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// Files under the data directory, uploaded to and served by the
    /// server's own HTTP listener. One node only.
    #[default]
    Fs,
    /// An S3 bucket (or any S3-compatible store), by presigned URLs: the
    /// bytes never pass through the server.
    S3,
    /// No uploads: MediaUpload is refused, clients upload elsewhere.
    Off,
}

/// Media uploads: the store and its settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MediaConfig {
    /// `fs`, `s3` or `off`.
    pub kind: MediaKind,
    /// How long an upload URL may be used (the upload must start by then).
    pub upload_expires_secs: u64,
    /// The `fs` store.
    pub fs: FsConfig,
    /// The `s3` store.
    pub s3: S3Config,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            kind: MediaKind::Fs,
            upload_expires_secs: 900,
            fs: FsConfig::default(),
            s3: S3Config::default(),
        }
    }
}

impl MediaConfig {
    /// Checks the chosen store's section (the other one is not read),
    /// naming the first bad field (`s3.bucket`).
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        if self.kind == MediaKind::Off {
            return Ok(());
        }
        if !(1..=MAX_EXPIRES_SECS).contains(&self.upload_expires_secs) {
            return Err(InvalidConfig::new(
                "upload_expires_secs",
                format!(
                    "must be 1 to {MAX_EXPIRES_SECS} (7 days, the longest a presigned URL lives)"
                ),
            ));
        }
        match self.kind {
            MediaKind::Fs => self.fs.validate().map_err(|e| e.within("fs")),
            MediaKind::S3 => self.s3.validate().map_err(|e| e.within("s3")),
            MediaKind::Off => Ok(()),
        }
    }
}

/// The `fs` store: files on the server's disk, uploads and downloads through
/// its HTTP listener.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct FsConfig {
    /// Where the files live (empty: `<data_dir>/media`).
    pub path: PathBuf,
    /// The URL clients reach the server's HTTP listener at, put in front of
    /// upload and download URLs (empty: `http://<http.addr>`, which only
    /// works where clients reach that address as it is).
    pub public_url: String,
}

impl FsConfig {
    /// Checks the fields, naming the first bad one.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        check_base_url("public_url", &self.public_url)
    }
}

/// The `s3` store: a bucket, reached with an access key; clients upload by
/// presigned PUT URLs and download by presigned GET URLs or a public base URL.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// Its region (S3-compatible stores mostly take `us-east-1`).
    pub region: String,
    /// The S3 endpoint, `https://…` (empty: AWS's endpoint of `region`).
    pub endpoint: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key (never logged).
    pub secret_access_key: String,
    /// The prefix every object key lives under in the bucket.
    pub root: String,
    /// Where the objects are served publicly (a CDN in front of the bucket's
    /// `root`): download URLs are `<public_base_url>/<key>`. Empty: presigned
    /// GET URLs, which expire after `download_expires_secs`.
    pub public_base_url: String,
    /// How long a presigned download URL works (at most 7 days).
    pub download_expires_secs: u64,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            bucket: String::new(),
            region: "us-east-1".into(),
            endpoint: String::new(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            root: "/".into(),
            public_base_url: String::new(),
            download_expires_secs: MAX_EXPIRES_SECS,
        }
    }
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<hidden>")
            .field("root", &self.root)
            .field("public_base_url", &self.public_base_url)
            .field("download_expires_secs", &self.download_expires_secs)
            .finish()
    }
}

impl S3Config {
    /// Checks the fields, naming the first bad one.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let bucket_ok = (3..=63).contains(&self.bucket.len())
            && self
                .bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Err(InvalidConfig::new(
                "bucket",
                format!(
                    "{:?} is not a bucket name: 3 to 63 lowercase letters, digits, `-` or `.`",
                    self.bucket
                ),
            ));
        }
        if self.region.is_empty() {
            return Err(InvalidConfig::new(
                "region",
                "is empty: name the bucket's region (S3-compatible stores mostly take us-east-1)",
            ));
        }
        if !self.endpoint.is_empty() {
            check_base_url("endpoint", &self.endpoint)?;
        }
        if self.access_key_id.is_empty() {
            return Err(InvalidConfig::new(
                "access_key_id",
                "is empty: presigned URLs are signed with an access key; set access_key_id and secret_access_key",
            ));
        }
        if self.secret_access_key.is_empty() {
            return Err(InvalidConfig::new(
                "secret_access_key",
                "is empty: presigned URLs are signed with it; set it beside access_key_id",
            ));
        }
        if self.root.split('/').any(|part| part == "..") {
            return Err(InvalidConfig::new(
                "root",
                format!("{:?} may not contain `..`", self.root),
            ));
        }
        check_base_url("public_base_url", &self.public_base_url)?;
        if !(1..=MAX_EXPIRES_SECS).contains(&self.download_expires_secs) {
            return Err(InvalidConfig::new(
                "download_expires_secs",
                format!(
                    "must be 1 to {MAX_EXPIRES_SECS} (7 days, the longest a presigned URL lives)"
                ),
            ));
        }
        Ok(())
    }
}

/// Empty, or an `http(s)://host…` URL without a query or fragment that URLs
/// can be built on.
fn check_base_url(field: &str, url: &str) -> Result<(), InvalidConfig> {
    if url.is_empty() {
        return Ok(());
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest)
            if !rest.is_empty() && !rest.starts_with('/') && !url.contains(['?', '#', ' ']) =>
        {
            Ok(())
        }
        _ => Err(InvalidConfig::new(
            field,
            format!(
                "{url:?} is not a base URL like https://media.example.com (no query, no fragment)"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3() -> MediaConfig {
        let mut c = MediaConfig {
            kind: MediaKind::S3,
            ..MediaConfig::default()
        };
        c.s3.bucket = "bubble-media".into();
        c.s3.access_key_id = "AKIAEXAMPLE".into();
        c.s3.secret_access_key = "wJalrXUtnFEMI/K7MDENG".into();
        c
    }

    fn field(c: &MediaConfig) -> String {
        c.validate().unwrap_err().field
    }

    #[test]
    fn the_default_is_the_fs_store_and_it_is_valid() {
        let c = MediaConfig::default();
        assert_eq!(c.kind, MediaKind::Fs);
        c.validate().unwrap();
        s3().validate().unwrap();
    }

    #[test]
    fn each_bad_s3_field_is_named() {
        type Break = fn(&mut S3Config);
        let cases: [(&str, Break); 8] = [
            ("s3.bucket", |s| s.bucket = String::new()),
            ("s3.bucket", |s| s.bucket = "Has_Caps".into()),
            ("s3.region", |s| s.region = String::new()),
            ("s3.endpoint", |s| s.endpoint = "minio:9000".into()),
            ("s3.access_key_id", |s| s.access_key_id = String::new()),
            ("s3.secret_access_key", |s| {
                s.secret_access_key = String::new()
            }),
            ("s3.root", |s| s.root = "/media/../etc".into()),
            ("s3.download_expires_secs", |s| {
                s.download_expires_secs = MAX_EXPIRES_SECS + 1
            }),
        ];
        for (want, break_it) in cases {
            let mut c = s3();
            break_it(&mut c.s3);
            assert_eq!(field(&c), want);
        }
        let mut c = s3();
        c.s3.public_base_url = "https://cdn.example.com/m?x=1".into();
        assert_eq!(field(&c), "s3.public_base_url");
    }

    #[test]
    fn the_fs_public_url_and_the_upload_expiry_are_checked() {
        let mut c = MediaConfig::default();
        c.fs.public_url = "chat.example.com".into();
        assert_eq!(field(&c), "fs.public_url");
        let c = MediaConfig {
            upload_expires_secs: 0,
            ..MediaConfig::default()
        };
        assert_eq!(field(&c), "upload_expires_secs");
    }

    #[test]
    fn the_section_of_the_store_not_chosen_is_not_checked() {
        let mut c = MediaConfig::default();
        c.s3.bucket = "NOT A BUCKET".into();
        c.validate().unwrap();
        c.kind = MediaKind::Off;
        c.fs.public_url = "nonsense".into();
        c.validate().unwrap();
    }

    #[test]
    fn the_secret_access_key_stays_out_of_debug_output() {
        let shown = format!("{:?}", s3());
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
        assert!(shown.contains("AKIAEXAMPLE"), "{shown}");
    }
}
