//! [`RedisStore`]: the adapter, shared by the `Cache` and `Presence` impls.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bubble_core::Result;
use redis::RedisResult;

use crate::config::RedisConfig;
use crate::conn::Conn;
use crate::error::map_err;
use crate::keys::Keys;

/// Recent windows, the dedup window and online routes on Redis.
///
/// Implements [`bubble_core::ports::Cache`] and
/// [`bubble_core::ports::Presence`]. Cheap to clone: clones share one
/// multiplexed connection (a single server) or one cluster connection.
#[derive(Clone)]
pub struct RedisStore {
    pub(crate) conn: Conn,
    pub(crate) keys: Arc<Keys>,
    /// How long an idle recent window lives (ms).
    pub(crate) recent_ttl_ms: u64,
    config: Arc<RedisConfig>,
}

/// Whether an operation may be sent again after the connection dropped
/// under it, when nobody knows whether Redis ran it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// Running it twice leaves the same state (reads, refreshes).
    Safe,
    /// A second run could answer differently (set-if-absent, conditional
    /// delete): report the failure instead.
    Never,
}

impl RedisStore {
    /// Validates `config`, connects, and checks that Redis answers.
    pub async fn connect(config: RedisConfig) -> Result<RedisStore> {
        config.validate()?;
        let conn = Conn::open(&config).await?;
        let store = RedisStore {
            conn,
            keys: Arc::new(Keys::new(&config.key_prefix)),
            recent_ttl_ms: duration_ms(config.recent_ttl()),
            config: Arc::new(config),
        };
        store.ping().await?;
        Ok(store)
    }

    /// Checks that Redis answers (for readiness probes).
    pub async fn ping(&self) -> Result<()> {
        self.run(Repeat::Safe, |mut conn| async move {
            redis::cmd("PING").query_async::<String>(&mut conn).await
        })
        .await
        .map(drop)
    }

    /// The config it was built from.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// Runs `op` on the connection, converting errors at the edge. When the
    /// connection dropped under a [`Repeat::Safe`] operation, runs it once
    /// more: the connection manager reconnects in the meantime.
    pub(crate) async fn run<T, F, Fut>(&self, repeat: Repeat, op: F) -> Result<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        match op(self.conn.clone()).await {
            Ok(v) => Ok(v),
            Err(e)
                if repeat == Repeat::Safe
                    && (e.is_connection_dropped() || e.is_unrecoverable_error()) =>
            {
                tracing::debug!(error = %e, "redis connection dropped; trying once more");
                op(self.conn.clone()).await.map_err(map_err)
            }
            Err(e) => Err(map_err(e)),
        }
    }
}

/// Longest TTL handed to Redis: ten years. Larger ones overflow Redis'
/// expiry arithmetic (and Lua's doubles); nothing here needs them.
const MAX_TTL_MS: u64 = 10 * 365 * 24 * 3600 * 1000;

/// A duration in whole milliseconds for `PX`/`PEXPIRE`: at least 1 (Redis
/// refuses 0), at most [`MAX_TTL_MS`].
pub(crate) fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_TTL_MS)
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_are_clamped_to_what_redis_accepts() {
        assert_eq!(duration_ms(Duration::ZERO), 1);
        assert_eq!(duration_ms(Duration::from_micros(1500)), 1);
        assert_eq!(duration_ms(Duration::from_secs(2)), 2_000);
        assert_eq!(duration_ms(Duration::MAX), MAX_TTL_MS);
    }
}
