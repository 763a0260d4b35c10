//! What a deployment writes down to reach Redis: [`RedisConfig`].

use std::fmt;
use std::time::Duration;

use bubble_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// How to reach Redis and how to lay out keys there.
///
/// Read it from the server's config file (serde, every field optional) or
/// fill it through [`crate::RedisBuilder`]. `Debug` never shows a password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisConfig {
    /// The server, `redis://[user[:password]@]host[:port][/db]`. In cluster
    /// mode it is the seed node when `urls` is empty.
    pub url: String,
    /// Cluster seed nodes (any few of the cluster's primaries); only read
    /// when `cluster` is set.
    pub urls: Vec<String>,
    /// Talk Redis Cluster (slot routing, MOVED/ASK) instead of one server.
    pub cluster: bool,
    /// First part of every key, so several deployments (or test runs) can
    /// share one Redis. No `{`, `}`, spaces or control characters.
    pub key_prefix: String,
    /// How long to wait for a TCP connection (ms).
    pub connect_timeout_ms: u64,
    /// How long to wait for an answer to one command (ms); a slow Redis
    /// then shows up as `Timeout` instead of stalling the engine.
    pub response_timeout_ms: u64,
    /// How long an idle user's recent window stays (s); every push renews
    /// it, so only users who received nothing for this long lose theirs.
    pub recent_ttl_secs: u64,
}

/// Seven days: a user who received nothing for a week syncs from the store.
const DEFAULT_RECENT_TTL_SECS: u64 = 7 * 24 * 3600;

/// Longest key prefix accepted; every key carries it, so keep it short.
pub(crate) const MAX_PREFIX_LEN: usize = 64;

impl Default for RedisConfig {
    fn default() -> RedisConfig {
        RedisConfig {
            url: "redis://127.0.0.1:6379".into(),
            urls: Vec::new(),
            cluster: false,
            key_prefix: "bubble".into(),
            connect_timeout_ms: 2_000,
            response_timeout_ms: 2_000,
            recent_ttl_secs: DEFAULT_RECENT_TTL_SECS,
        }
    }
}

impl RedisConfig {
    /// The seed URLs to connect to: `urls` in cluster mode (or `url` when
    /// it is empty), else `url`.
    pub(crate) fn seeds(&self) -> Vec<&str> {
        if self.cluster && !self.urls.is_empty() {
            self.urls.iter().map(String::as_str).collect()
        } else {
            vec![self.url.as_str()]
        }
    }

    /// [`RedisConfig::connect_timeout_ms`] as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// [`RedisConfig::response_timeout_ms`] as a duration.
    pub fn response_timeout(&self) -> Duration {
        Duration::from_millis(self.response_timeout_ms)
    }

    /// [`RedisConfig::recent_ttl_secs`] as a duration.
    pub fn recent_ttl(&self) -> Duration {
        Duration::from_secs(self.recent_ttl_secs)
    }

    /// Checks every field; the error names the first bad one and says
    /// what is accepted.
    pub fn validate(&self) -> Result<()> {
        let bad =
            |field: &str, why: String| Error::invalid(format!("redis config `{field}`: {why}"));
        validate_prefix(&self.key_prefix).map_err(|why| bad("key_prefix", why))?;
        if self.cluster && !self.urls.is_empty() {
            for (i, url) in self.urls.iter().enumerate() {
                validate_url(url).map_err(|why| bad(&format!("urls[{i}]"), why))?;
            }
        } else {
            validate_url(&self.url).map_err(|why| bad("url", why))?;
        }
        if !self.cluster && !self.urls.is_empty() {
            return Err(bad(
                "urls",
                "seed nodes are only used in cluster mode: set `cluster = true` or use `url`"
                    .into(),
            ));
        }
        if self.connect_timeout_ms == 0 {
            return Err(bad("connect_timeout_ms", "must be at least 1".into()));
        }
        if self.response_timeout_ms == 0 {
            return Err(bad("response_timeout_ms", "must be at least 1".into()));
        }
        if self.recent_ttl_secs == 0 {
            return Err(bad(
                "recent_ttl_secs",
                "must be at least 1 (a window that expires at once is no cache)".into(),
            ));
        }
        Ok(())
    }
}

fn validate_prefix(prefix: &str) -> std::result::Result<(), String> {
    if prefix.is_empty() || prefix.len() > MAX_PREFIX_LEN {
        return Err(format!(
            "must be 1 to {MAX_PREFIX_LEN} bytes, got {}",
            prefix.len()
        ));
    }
    // `{` and `}` would move the cluster hash tag, which keeps one user's
    // keys on one slot.
    if let Some(c) = prefix
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || matches!(c, '{' | '}'))
    {
        return Err(format!(
            "{prefix:?} contains {c:?}; no braces, spaces or control characters"
        ));
    }
    Ok(())
}

fn validate_url(url: &str) -> std::result::Result<(), String> {
    use redis::IntoConnectionInfo;
    if url.is_empty() {
        return Err("is empty; write e.g. redis://127.0.0.1:6379".into());
    }
    url.into_connection_info().map(|_| ()).map_err(|e| {
        format!(
            "{} is not a usable Redis URL ({e}); write redis://[user[:password]@]host[:port][/db]",
            redact_url(url)
        )
    })
}

/// The URL with any password replaced by `***`, for logs and errors.
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
    let shown = match userinfo.split_once(':') {
        Some((user, _password)) => format!("{user}:***"),
        // `redis://secret@host`: a lone userinfo may well be the password.
        None => "***".to_owned(),
    };
    format!("{scheme}{shown}{host}{tail}")
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field(
                "urls",
                &self.urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>(),
            )
            .field("cluster", &self.cluster)
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("response_timeout_ms", &self.response_timeout_ms)
            .field("recent_ttl_secs", &self.recent_ttl_secs)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password_of_every_url() {
        let config = RedisConfig {
            url: "redis://app:s3cret@redis.internal:6379/2".into(),
            urls: vec!["redis://:other-secret@10.0.0.1:7000".into()],
            cluster: true,
            ..RedisConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("other-secret"), "{shown}");
        assert!(
            shown.contains("redis://app:***@redis.internal:6379/2"),
            "{shown}"
        );
        assert!(shown.contains("redis://:***@10.0.0.1:7000"), "{shown}");
    }

    #[test]
    fn redact_leaves_urls_without_credentials_alone() {
        assert_eq!(
            redact_url("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(redact_url("redis://lonely@host"), "redis://***@host");
    }

    #[test]
    fn the_default_config_is_valid() {
        RedisConfig::default().validate().unwrap();
    }

    #[test]
    fn validation_names_the_bad_field() {
        let cases: Vec<(RedisConfig, &str)> = vec![
            (
                RedisConfig {
                    key_prefix: "a{b".into(),
                    ..RedisConfig::default()
                },
                "`key_prefix`",
            ),
            (
                RedisConfig {
                    key_prefix: String::new(),
                    ..RedisConfig::default()
                },
                "`key_prefix`",
            ),
            (
                RedisConfig {
                    url: "http://nope".into(),
                    ..RedisConfig::default()
                },
                "`url`",
            ),
            (
                RedisConfig {
                    urls: vec!["redis://127.0.0.1:7000".into()],
                    ..RedisConfig::default()
                },
                "`urls`",
            ),
            (
                RedisConfig {
                    cluster: true,
                    urls: vec!["redis://127.0.0.1:7000".into(), "".into()],
                    ..RedisConfig::default()
                },
                "`urls[1]`",
            ),
            (
                RedisConfig {
                    response_timeout_ms: 0,
                    ..RedisConfig::default()
                },
                "`response_timeout_ms`",
            ),
            (
                RedisConfig {
                    connect_timeout_ms: 0,
                    ..RedisConfig::default()
                },
                "`connect_timeout_ms`",
            ),
            (
                RedisConfig {
                    recent_ttl_secs: 0,
                    ..RedisConfig::default()
                },
                "`recent_ttl_secs`",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().expect_err(field);
            assert_eq!(err.kind(), bubble_core::ErrorKind::InvalidInput);
            assert!(err.message().contains(field), "{field}: {err}");
        }
    }

    #[test]
    fn an_invalid_url_error_does_not_leak_its_password() {
        let err = RedisConfig {
            url: "redis://u:hunter2@host:notaport".into(),
            ..RedisConfig::default()
        }
        .validate()
        .expect_err("bad port");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn config_reads_from_serde_with_defaults() {
        let config: RedisConfig =
            serde_json::from_str(r#"{"key_prefix": "prod", "cluster": true}"#).unwrap();
        assert_eq!(config.key_prefix, "prod");
        assert!(config.cluster);
        assert_eq!(config.url, RedisConfig::default().url);
        assert!(serde_json::from_str::<RedisConfig>(r#"{"prefix": "x"}"#).is_err());
    }
}
