//! [`RedisStore`]: the one connection handle every port uses (a single
//! server behind a reconnecting `ConnectionManager`, or a cluster behind a
//! `ClusterConnection` with slot routing, MOVED/ASK and its own
//! reconnects), connected by
//! [`RedisConfig::connect`](bubble_core::AdapterConfig::connect).

use std::fmt;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use bubble_core::{AdapterConfig, Error, InvalidConfig, Result};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisFuture, RedisResult, Value};

use crate::config::RedisConfig;
use crate::error::{cannot_connect, map_err};
use crate::keys::Keys;
use bubble_core::redact_url;

#[async_trait]
impl AdapterConfig for RedisConfig {
    type Adapter = RedisStore;

    fn validate(&self) -> std::result::Result<(), InvalidConfig> {
        self.check()
    }

    /// Validates, connects, and checks that Redis answers.
    async fn connect(&self) -> Result<RedisStore> {
        self.validate()?;
        RedisStore::open(self.clone()).await
    }
}

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
    /// Connects as `config` (already validated) says, and checks that Redis
    /// answers.
    async fn open(config: RedisConfig) -> Result<RedisStore> {
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

    /// The config it was connected with.
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

/// Shown in `CLIENT LIST` (`lib-name=`), so operators see who is connected.
const LIB_NAME: &str = "bubble-store-redis";

/// A cheap, cloneable handle; clones share the same multiplexed connection.
#[derive(Clone)]
pub(crate) enum Conn {
    /// One server (or a proxy in front of several).
    Single(Arc<Single>),
    /// Redis Cluster.
    Cluster(ClusterConnection),
}

/// One server's connection manager, replaced by a fresh one when a command
/// times out.
///
/// The manager reconnects by itself only when the connection reports an
/// error. A connection that went silent (Redis hung, or a network that
/// dropped packets and healed, leaving the old TCP connection dead until
/// the kernel's retransmissions give up, minutes later) only ever times
/// out, so every command would keep timing out long after Redis is back.
pub(crate) struct Single {
    client: redis::Client,
    config: ConnectionManagerConfig,
    /// The manager in use, and how many times it was replaced.
    current: RwLock<(u64, ConnectionManager)>,
}

impl Single {
    fn current(&self) -> (u64, ConnectionManager) {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        (current.0, current.1.clone())
    }

    /// Replaces manager `generation` (unless another timeout already did)
    /// with one that connects afresh on its first command.
    fn replace(&self, generation: u64) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if current.0 != generation {
            return;
        }
        match ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone()) {
            Ok(fresh) => {
                tracing::debug!("redis: a command timed out; the next one uses a new connection");
                *current = (generation + 1, fresh);
            }
            Err(e) => tracing::warn!(error = %e, "redis: cannot make a new connection manager"),
        }
    }

    /// Runs one request on the current manager, replacing it if it timed out.
    fn run<'a, T: Send + 'a>(
        self: &Arc<Self>,
        request: impl FnOnce(ConnectionManager) -> RedisFuture<'a, T> + Send + 'a,
    ) -> RedisFuture<'a, T> {
        let (generation, manager) = self.current();
        let single = self.clone();
        Box::pin(async move {
            let result = request(manager).await;
            if let Err(e) = &result
                && e.is_timeout()
            {
                single.replace(generation);
            }
            result
        })
    }
}

impl Conn {
    /// Connects as the (validated) config says.
    pub(crate) async fn open(config: &RedisConfig) -> Result<Conn> {
        let seeds = config.seeds();
        let shown = seeds
            .iter()
            .map(|u| redact_url(u))
            .collect::<Vec<_>>()
            .join(", ");
        let unreachable = |e: redis::RedisError| cannot_connect(&shown, e);
        let infos = seeds
            .iter()
            .map(|url| {
                let info = url.into_connection_info().map_err(map_err)?;
                let redis = info
                    .redis_settings()
                    .clone()
                    .set_lib_name(LIB_NAME, env!("CARGO_PKG_VERSION"));
                Ok(info.set_redis_settings(redis))
            })
            .collect::<Result<Vec<_>>>()?;
        if config.cluster {
            let client = ClusterClientBuilder::new(infos)
                .connection_timeout(config.connect_timeout())
                .response_timeout(config.response_timeout())
                // Several attempts (redirects, reconnects) may share one
                // request; bound the whole of it too.
                .overall_response_timeout(Some(config.response_timeout() * 3))
                .build()
                .map_err(map_err)?;
            let conn = client.get_async_connection().await.map_err(unreachable)?;
            Ok(Conn::Cluster(conn))
        } else {
            let info = infos
                .into_iter()
                .next()
                .ok_or_else(|| Error::invalid("redis config `url`: no server to connect to"))?;
            let client = redis::Client::open(info).map_err(map_err)?;
            let manager_config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(config.connect_timeout()))
                .set_response_timeout(Some(config.response_timeout()))
                // Reconnect quickly and give up soon: callers see
                // `Unavailable` and the next call starts a new attempt.
                .set_number_of_retries(2)
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_millis(500));
            let conn = ConnectionManager::new_with_config(client.clone(), manager_config.clone())
                .await
                .map_err(unreachable)?;
            Ok(Conn::Single(Arc::new(Single {
                client,
                config: manager_config,
                current: RwLock::new((0, conn)),
            })))
        }
    }

    /// Whether keys of different slots may go in one script call.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => {
                c.run(move |mut m| Box::pin(async move { m.req_packed_command(cmd).await }))
            }
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.run(move |mut m| {
                Box::pin(async move { m.req_packed_commands(cmd, offset, count).await })
            }),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.current().1.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
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
