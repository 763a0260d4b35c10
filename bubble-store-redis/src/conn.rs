//! One connection handle for both deployments: a single server behind a
//! reconnecting `ConnectionManager`, or a cluster behind a
//! `ClusterConnection` (slot routing, MOVED/ASK, its own reconnects).

use std::time::Duration;

use bubble_core::{Error, Result};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisFuture, Value};

use crate::config::{RedisConfig, redact_url};
use crate::error::map_err;

/// Shown in `CLIENT LIST` (`lib-name=`), so operators see who is connected.
const LIB_NAME: &str = "bubble-store-redis";

/// A cheap, cloneable handle; clones share the same multiplexed connection.
#[derive(Clone)]
pub(crate) enum Conn {
    /// One server (or a proxy in front of several).
    Single(ConnectionManager),
    /// Redis Cluster.
    Cluster(ClusterConnection),
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
        let unreachable = |e: redis::RedisError| {
            let mapped = map_err(e);
            Error::new(
                mapped.kind(),
                format!("cannot connect to Redis at {shown}: {}", mapped.message()),
            )
            .with_source(mapped)
        };
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
            let conn = ConnectionManager::new_with_config(client, manager_config)
                .await
                .map_err(unreachable)?;
            Ok(Conn::Single(conn))
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
            Conn::Single(c) => c.req_packed_command(cmd),
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
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}
