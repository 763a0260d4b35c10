//! [`RedisConfig`]: what a deployment writes down to reach Redis (one
//! server, a Redis Cluster, or a master found through Redis Sentinel), its
//! defaults, and the rule of every field.

use bubble_core::redact_url;
use std::fmt;
use std::time::Duration;

use bubble_core::InvalidConfig;
use serde::{Deserialize, Serialize};

/// How to reach Redis and how to lay out keys there.
///
/// Read it from the server's config file (serde, every field optional) or
/// build it with [`RedisConfig::new`] and the `with_*` setters.
/// [`AdapterConfig::validate`] names the first bad field;
/// [`AdapterConfig::connect`] validates, connects and checks that Redis
/// answers. `Debug` never shows a password.
///
/// [`AdapterConfig::validate`]: bubble_core::AdapterConfig::validate
/// [`AdapterConfig::connect`]: bubble_core::AdapterConfig::connect
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisConfig {
    /// The server, `redis://[user[:password]@]host[:port][/db]`. In cluster
    /// mode it is the seed node when `urls` is empty. With `sentinels` only
    /// its user, password and db are used (for the master the sentinels
    /// name); its host and port are ignored.
    pub url: String,
    /// Cluster seed nodes (any few of the cluster's primaries); only read
    /// when `cluster` is set.
    pub urls: Vec<String>,
    /// Talk Redis Cluster (slot routing, MOVED/ASK) instead of one server.
    pub cluster: bool,
    /// Redis Sentinel nodes, `redis://[user[:password]@]host[:port]` (the
    /// credentials are the sentinels' own). When set, the master named
    /// `master_name` is asked of them at connect time and again after any
    /// sign of a failover (a dropped or refused connection, a timeout,
    /// `READONLY`), so the adapter follows the master by itself.
    pub sentinels: Vec<String>,
    /// The name the sentinels watch the master under (`sentinel monitor
    /// <name> ...`); needed with `sentinels`, only read with them.
    pub master_name: String,
    /// After each write, wait until this many replicas have it (`WAIT`, at
    /// most half of `response_timeout_ms`) and report `Unavailable` when
    /// fewer did. 0 (the default) does not wait. With 1, a write Redis
    /// acknowledged survives a failover to that replica (Sentinel's
    /// replication is asynchronous: without it, writes the old master took
    /// after the promotion are lost), at the price of a replica round trip
    /// per write and of failing writes while no replica answers. One server
    /// or Sentinel only, not a cluster.
    pub wait_replicas: u32,
    /// First part of every key, so several deployments (or test runs) can
    /// share one Redis. No `{`, `}`, spaces or control characters.
    pub key_prefix: String,
    /// How long to wait for a TCP connection (ms). Commands issued while
    /// the connection is being made wait for it, so keep it well below the
    /// server's request deadline (`engine.request_timeout_ms`, 1 s).
    pub connect_timeout_ms: u64,
    /// How long to wait for an answer to one command (ms); a slow Redis
    /// then shows up as `Timeout` instead of stalling the engine. Below the
    /// request deadline too.
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
            sentinels: Vec::new(),
            master_name: String::new(),
            wait_replicas: 0,
            key_prefix: "bubble".into(),
            connect_timeout_ms: 500,
            response_timeout_ms: 500,
            recent_ttl_secs: DEFAULT_RECENT_TTL_SECS,
        }
    }
}

impl RedisConfig {
    /// The defaults with one server at `url`,
    /// `redis://[user[:password]@]host[:port][/db]`.
    pub fn new(url: impl Into<String>) -> RedisConfig {
        RedisConfig {
            url: url.into(),
            ..RedisConfig::default()
        }
    }

    /// Sets [`url`](RedisConfig::url).
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// Sets [`urls`](RedisConfig::urls), the cluster's seed nodes.
    pub fn with_urls<S: Into<String>>(mut self, urls: impl IntoIterator<Item = S>) -> Self {
        self.urls = urls.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`cluster`](RedisConfig::cluster).
    pub fn with_cluster(mut self, cluster: bool) -> Self {
        self.cluster = cluster;
        self
    }

    /// Sets [`sentinels`](RedisConfig::sentinels), the Sentinel nodes.
    pub fn with_sentinels<S: Into<String>>(
        mut self,
        sentinels: impl IntoIterator<Item = S>,
    ) -> Self {
        self.sentinels = sentinels.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`master_name`](RedisConfig::master_name).
    pub fn with_master_name(mut self, master_name: impl Into<String>) -> Self {
        self.master_name = master_name.into();
        self
    }

    /// Sets [`wait_replicas`](RedisConfig::wait_replicas).
    pub fn with_wait_replicas(mut self, wait_replicas: u32) -> Self {
        self.wait_replicas = wait_replicas;
        self
    }

    /// Sets [`key_prefix`](RedisConfig::key_prefix).
    pub fn with_key_prefix(mut self, key_prefix: impl Into<String>) -> Self {
        self.key_prefix = key_prefix.into();
        self
    }

    /// Sets [`connect_timeout_ms`](RedisConfig::connect_timeout_ms).
    pub fn with_connect_timeout_ms(mut self, connect_timeout_ms: u64) -> Self {
        self.connect_timeout_ms = connect_timeout_ms;
        self
    }

    /// Sets [`response_timeout_ms`](RedisConfig::response_timeout_ms).
    pub fn with_response_timeout_ms(mut self, response_timeout_ms: u64) -> Self {
        self.response_timeout_ms = response_timeout_ms;
        self
    }

    /// Sets [`recent_ttl_secs`](RedisConfig::recent_ttl_secs).
    pub fn with_recent_ttl_secs(mut self, recent_ttl_secs: u64) -> Self {
        self.recent_ttl_secs = recent_ttl_secs;
        self
    }

    /// The seed URLs to connect to: `urls` in cluster mode (or `url` when
    /// it is empty), else `url`.
    pub(crate) fn seeds(&self) -> Vec<&str> {
        if self.cluster && !self.urls.is_empty() {
            self.urls.iter().map(String::as_str).collect()
        } else {
            vec![self.url.as_str()]
        }
    }

    /// Whether the master is found through Redis Sentinel.
    pub(crate) fn is_sentinel(&self) -> bool {
        !self.sentinels.is_empty()
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub(crate) fn response_timeout(&self) -> Duration {
        Duration::from_millis(self.response_timeout_ms)
    }

    pub(crate) fn recent_ttl(&self) -> Duration {
        Duration::from_secs(self.recent_ttl_secs)
    }

    /// Every field's rule, naming the first bad field and saying what is
    /// accepted: what
    /// [`AdapterConfig::validate`](bubble_core::AdapterConfig::validate)
    /// runs (its impl sits in `client`, beside `connect`).
    pub(crate) fn check(&self) -> Result<(), InvalidConfig> {
        validate_prefix(&self.key_prefix).map_err(|why| InvalidConfig::new("key_prefix", why))?;
        if self.cluster && !self.urls.is_empty() {
            for (i, url) in self.urls.iter().enumerate() {
                validate_url(url)
                    .map_err(|why| InvalidConfig::new("urls", format!("item {i}: {why}")))?;
            }
        } else {
            validate_url(&self.url).map_err(|why| InvalidConfig::new("url", why))?;
        }
        if !self.cluster && !self.urls.is_empty() {
            return Err(InvalidConfig::new(
                "urls",
                "seed nodes are only used in cluster mode: set `cluster = true` or use `url`",
            ));
        }
        self.check_sentinel()?;
        if self.connect_timeout_ms == 0 {
            return Err(InvalidConfig::new(
                "connect_timeout_ms",
                "must be at least 1",
            ));
        }
        if self.response_timeout_ms == 0 {
            return Err(InvalidConfig::new(
                "response_timeout_ms",
                "must be at least 1",
            ));
        }
        if self.recent_ttl_secs == 0 {
            return Err(InvalidConfig::new(
                "recent_ttl_secs",
                "must be at least 1 (a window that expires at once is no cache)",
            ));
        }
        Ok(())
    }
}

impl RedisConfig {
    /// The rules of `sentinels`, `master_name` and `wait_replicas`.
    fn check_sentinel(&self) -> Result<(), InvalidConfig> {
        for (i, url) in self.sentinels.iter().enumerate() {
            validate_url(url)
                .map_err(|why| InvalidConfig::new("sentinels", format!("item {i}: {why}")))?;
        }
        if self.is_sentinel() {
            if self.cluster {
                return Err(InvalidConfig::new(
                    "sentinels",
                    "Sentinel and Redis Cluster exclude each other: set `cluster = false` or drop `sentinels`",
                ));
            }
            if self.master_name.is_empty() {
                return Err(InvalidConfig::new(
                    "master_name",
                    "is empty; name the master the sentinels watch (`sentinel monitor <name> ...`)",
                ));
            }
            if let Some(c) = self
                .master_name
                .chars()
                .find(|c| c.is_control() || c.is_whitespace())
            {
                return Err(InvalidConfig::new(
                    "master_name",
                    format!("{:?} contains {c:?}", self.master_name),
                ));
            }
        } else if !self.master_name.is_empty() {
            return Err(InvalidConfig::new(
                "master_name",
                "is only used with Sentinel: list the sentinels in `sentinels`",
            ));
        }
        if self.cluster && self.wait_replicas > 0 {
            return Err(InvalidConfig::new(
                "wait_replicas",
                "is for one server or Sentinel, not a Redis Cluster: set it to 0",
            ));
        }
        Ok(())
    }

    /// How long `WAIT` may wait for replicas: half the response timeout,
    /// so its answer (even a short one) comes before the command times out.
    pub(crate) fn wait_timeout_ms(&self) -> u64 {
        (self.response_timeout_ms / 2).max(1)
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

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field(
                "urls",
                &self.urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>(),
            )
            .field("cluster", &self.cluster)
            .field(
                "sentinels",
                &self
                    .sentinels
                    .iter()
                    .map(|u| redact_url(u))
                    .collect::<Vec<_>>(),
            )
            .field("master_name", &self.master_name)
            .field("wait_replicas", &self.wait_replicas)
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
            sentinels: vec!["redis://:sentinel-secret@10.0.0.9:26379".into()],
            ..RedisConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("other-secret"), "{shown}");
        assert!(!shown.contains("sentinel-secret"), "{shown}");
        assert!(
            shown.contains("redis://app:<hidden>@redis.internal:6379/2"),
            "{shown}"
        );
        assert!(shown.contains("redis://:<hidden>@10.0.0.1:7000"), "{shown}");
    }

    #[test]
    fn redact_leaves_urls_without_credentials_alone() {
        assert_eq!(
            redact_url("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(redact_url("redis://app@host"), "redis://app@host");
    }

    #[test]
    fn the_default_config_is_valid() {
        RedisConfig::default().check().unwrap();
        RedisConfig::default()
            .with_cluster(true)
            .with_urls(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"])
            .check()
            .unwrap();
        RedisConfig::default()
            .with_sentinels(["redis://10.0.0.1:26379", "redis://10.0.0.2:26379"])
            .with_master_name("mymaster")
            .with_wait_replicas(1)
            .check()
            .unwrap();
    }

    #[test]
    fn validation_names_the_bad_field() {
        let d = RedisConfig::default;
        let cases: Vec<(RedisConfig, &str)> = vec![
            (d().with_key_prefix("a{b"), "key_prefix"),
            (d().with_key_prefix("has space"), "key_prefix"),
            (d().with_key_prefix(""), "key_prefix"),
            (
                d().with_key_prefix("x".repeat(MAX_PREFIX_LEN + 1)),
                "key_prefix",
            ),
            (d().with_url("http://nope"), "url"),
            (d().with_url(""), "url"),
            (d().with_urls(["redis://127.0.0.1:7000"]), "urls"),
            (
                d().with_cluster(true)
                    .with_urls(["redis://127.0.0.1:7000", ""]),
                "urls",
            ),
            (d().with_response_timeout_ms(0), "response_timeout_ms"),
            (d().with_connect_timeout_ms(0), "connect_timeout_ms"),
            (d().with_recent_ttl_secs(0), "recent_ttl_secs"),
            (
                d().with_sentinels(["redis://127.0.0.1:26379"]),
                "master_name",
            ),
            (
                d().with_sentinels(["redis://127.0.0.1:26379"])
                    .with_master_name("my master"),
                "master_name",
            ),
            (d().with_master_name("mymaster"), "master_name"),
            (
                d().with_sentinels(["redis://127.0.0.1:26379", "tcp://nope"])
                    .with_master_name("mymaster"),
                "sentinels",
            ),
            (
                d().with_cluster(true)
                    .with_sentinels(["redis://127.0.0.1:26379"])
                    .with_master_name("mymaster"),
                "sentinels",
            ),
            (
                d().with_cluster(true).with_wait_replicas(1),
                "wait_replicas",
            ),
        ];
        for (config, field) in cases {
            let err = config.check().expect_err(field);
            assert_eq!(err.field, field, "{err}");
            let err = bubble_core::Error::from(err);
            assert_eq!(err.kind(), bubble_core::ErrorKind::InvalidInput);
            assert!(err.message().contains(&format!("`{field}`")), "{err}");
        }
    }

    #[test]
    fn a_bad_seed_node_is_named_by_its_place_in_the_list() {
        let err = RedisConfig::default()
            .with_cluster(true)
            .with_urls(["redis://127.0.0.1:7000", ""])
            .check()
            .unwrap_err();
        assert_eq!(err.field, "urls");
        assert!(err.problem.starts_with("item 1:"), "{err}");
    }

    #[test]
    fn an_invalid_url_error_does_not_leak_its_password() {
        let err = RedisConfig::new("redis://u:hunter2@host:notaport")
            .check()
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

    #[test]
    fn sentinel_config_reads_from_serde() {
        let config: RedisConfig = serde_json::from_str(
            r#"{"sentinels": ["redis://10.0.0.1:26379", "redis://10.0.0.2:26379"],
                "master_name": "mymaster", "wait_replicas": 1}"#,
        )
        .unwrap();
        assert!(config.is_sentinel());
        assert_eq!(config.sentinels.len(), 2);
        assert_eq!(config.master_name, "mymaster");
        assert_eq!(config.wait_replicas, 1);
        config.check().unwrap();
    }
}
