//! What every adapter's configuration has in common, so a server (or a
//! product embedding the engine) checks and connects any backend the same
//! way: deserialize the section, [`AdapterConfig::validate`] it, then
//! [`AdapterConfig::connect`].
//!
//! Each adapter crate has the same shape (`config`, a shared client, one
//! module per port, `error` at the driver's edge); its config type
//! implements this trait.

use std::fmt;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorKind, Result};

/// A setting an adapter refuses: which field, and what would be right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {problem}")]
pub struct InvalidConfig {
    /// The field's name within the adapter's config (dotted when nested,
    /// prefixed by [`InvalidConfig::within`] with where the config sits).
    pub field: String,
    /// What is wrong with its value and what would be right.
    pub problem: String,
}

impl InvalidConfig {
    /// `field` is wrong: `problem` says why and what would be right.
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> InvalidConfig {
        InvalidConfig {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// The same problem, named from where the config sits in a larger one
    /// (`store.mysql` turns `url` into `store.mysql.url`).
    pub fn within(self, section: &str) -> InvalidConfig {
        let field = if section.is_empty() {
            self.field
        } else if self.field.is_empty() {
            section.to_owned()
        } else {
            format!("{section}.{}", self.field)
        };
        InvalidConfig { field, ..self }
    }
}

impl From<InvalidConfig> for Error {
    fn from(e: InvalidConfig) -> Error {
        Error::new(ErrorKind::InvalidInput, e.to_string())
    }
}

/// An adapter's settings: what an operator writes in a config file
/// (serde, every field defaulted), checked field by field, then connected.
///
/// Implementations keep secrets out of their `Debug` output.
#[async_trait]
pub trait AdapterConfig:
    Clone + Default + fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// What connecting gives: the adapter, which implements one or more ports.
    type Adapter: Send + Sync + 'static;

    /// Checks every setting without touching the network or the disk,
    /// naming the first bad field.
    fn validate(&self) -> std::result::Result<(), InvalidConfig>;

    /// Validates, then connects: opens files, checks that the service
    /// answers, runs migrations. A refused setting is
    /// [`ErrorKind::InvalidInput`]; an unreachable service
    /// [`ErrorKind::Unavailable`].
    async fn connect(&self) -> Result<Self::Adapter>;
}

/// `url` with the credentials it may carry (`user:password@`) hidden, for
/// `Debug`, logs and error messages: `mysql://bubble:<hidden>@db/bubble`.
/// A lone userinfo (`redis://token@host`) may well be the secret: hidden too.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let (userinfo, host) = authority.split_at(at);
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}{user}:<hidden>{host}{tail}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redacted_url_keeps_everything_but_the_credentials() {
        assert_eq!(
            redact_url("mysql://bubble:s3cret@db.internal:3306/bubble"),
            "mysql://bubble:<hidden>@db.internal:3306/bubble"
        );
        assert_eq!(redact_url("mysql://u:p@ss@h/db"), "mysql://u:<hidden>@h/db");
        assert_eq!(
            redact_url("redis://:pw@10.0.0.1:7000"),
            "redis://:<hidden>@10.0.0.1:7000"
        );
        assert_eq!(redact_url("mysql://root@db/test"), "mysql://root@db/test");
        assert_eq!(
            redact_url("http://es:9200/?q=a@b"),
            "http://es:9200/?q=a@b",
            "an @ after the authority is not a credential"
        );
        for plain in ["mysql://db/bubble", "not a url", "redis://h:6379/2"] {
            assert_eq!(redact_url(plain), plain);
        }
    }

    #[test]
    fn a_refused_field_is_named_from_where_its_section_sits() {
        let e = InvalidConfig::new("url", "is required").within("store.mysql");
        assert_eq!(e.field, "store.mysql.url");
        assert_eq!(e.to_string(), "`store.mysql.url`: is required");
        let whole = InvalidConfig::new("", "no endpoints").within("discovery.etcd");
        assert_eq!(whole.field, "discovery.etcd");
        let err: Error = InvalidConfig::new("max_batch", "must be 1 to 4096").into();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("`max_batch`"), "{err}");
    }
}
