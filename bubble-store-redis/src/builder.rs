//! [`RedisBuilder`]: fills a [`RedisConfig`], validates it and connects.

use std::time::Duration;

use bubble_core::Result;

use crate::config::RedisConfig;
use crate::store::RedisStore;

/// Builds a [`RedisStore`].
///
/// ```no_run
/// # async fn demo() -> bubble_core::Result<()> {
/// let store = bubble_store_redis::RedisBuilder::new()
///     .cluster(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"])
///     .key_prefix("prod")
///     .connect()
///     .await?;
/// # let _ = store;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct RedisBuilder {
    config: RedisConfig,
}

impl RedisBuilder {
    /// Starts from the defaults: one server on `redis://127.0.0.1:6379`,
    /// prefix `bubble`.
    pub fn new() -> RedisBuilder {
        RedisBuilder::default()
    }

    /// Starts from a config read from a file.
    pub fn from_config(config: RedisConfig) -> RedisBuilder {
        RedisBuilder { config }
    }

    /// One server: `redis://[user[:password]@]host[:port][/db]`.
    pub fn url(mut self, url: impl Into<String>) -> RedisBuilder {
        self.config.url = url.into();
        self.config.cluster = false;
        self.config.urls.clear();
        self
    }

    /// Redis Cluster, reached through these seed nodes.
    pub fn cluster<I, S>(mut self, seeds: I) -> RedisBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.urls = seeds.into_iter().map(Into::into).collect();
        self.config.cluster = true;
        self
    }

    /// The first part of every key.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> RedisBuilder {
        self.config.key_prefix = prefix.into();
        self
    }

    /// How long to wait for a TCP connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> RedisBuilder {
        self.config.connect_timeout_ms = millis(timeout);
        self
    }

    /// How long to wait for the answer to one command.
    pub fn response_timeout(mut self, timeout: Duration) -> RedisBuilder {
        self.config.response_timeout_ms = millis(timeout);
        self
    }

    /// How long an idle user's recent window is kept (whole seconds).
    pub fn recent_ttl(mut self, ttl: Duration) -> RedisBuilder {
        self.config.recent_ttl_secs = ttl.as_secs();
        self
    }

    /// The config as filled so far.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// Validates the config (the error names the bad field) and returns it.
    pub fn build(self) -> Result<RedisConfig> {
        self.config.validate()?;
        Ok(self.config)
    }

    /// Validates, connects and checks that Redis answers.
    pub async fn connect(self) -> Result<RedisStore> {
        RedisStore::connect(self.build()?).await
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_names_the_bad_field() {
        let err = RedisBuilder::new()
            .key_prefix("has space")
            .build()
            .unwrap_err();
        assert!(err.message().contains("`key_prefix`"), "{err}");
        let err = RedisBuilder::new()
            .response_timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(err.message().contains("`response_timeout_ms`"), "{err}");
    }

    #[test]
    fn cluster_then_url_goes_back_to_one_server() {
        let config = RedisBuilder::new()
            .cluster(["redis://a:7000"])
            .url("redis://b:6379")
            .build()
            .unwrap();
        assert!(!config.cluster);
        assert!(config.urls.is_empty());
        assert_eq!(config.url, "redis://b:6379");
    }
}
