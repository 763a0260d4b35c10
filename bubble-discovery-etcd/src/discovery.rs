//! The adapter: [`EtcdDiscovery`] (the `Discovery` port) and its builder.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bubble_core::ports::{Discovery, Lease, NodeEvent, NodeInfo};
use bubble_core::{Error, Result, validate_id};
use etcd_client::{Client, ConnectOptions, GetOptions, PutOptions};
use tokio::sync::mpsc;

use crate::config::EtcdConfig;
use crate::error::timed;
use crate::keys;
use crate::lease::EtcdLease;
use crate::watch;

/// Builds an [`EtcdDiscovery`]: set what differs from [`EtcdConfig::default`],
/// then [`connect`](EtcdDiscoveryBuilder::connect).
#[derive(Debug, Clone, Default)]
pub struct EtcdDiscoveryBuilder {
    config: EtcdConfig,
}

impl EtcdDiscoveryBuilder {
    /// Starts from a whole config (as read from a config file).
    pub fn from_config(config: EtcdConfig) -> EtcdDiscoveryBuilder {
        EtcdDiscoveryBuilder { config }
    }

    /// The etcd client URLs (`http://host:2379`).
    pub fn endpoints<S: Into<String>>(mut self, endpoints: impl IntoIterator<Item = S>) -> Self {
        self.config.endpoints = endpoints.into_iter().map(Into::into).collect();
        self
    }

    /// The key prefix of this bubble cluster (default `/bubble`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.prefix = prefix.into();
        self
    }

    /// Credentials, when etcd runs with auth.
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.config.username = Some(username.into());
        self.config.password = Some(password.into());
        self
    }

    /// How long one request may take.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout_ms = timeout.as_millis().try_into().unwrap_or(u64::MAX);
        self
    }

    /// How long to wait for a connection to a member.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout_ms = timeout.as_millis().try_into().unwrap_or(u64::MAX);
        self
    }

    /// Validates the config, connects, and checks that etcd answers, so a
    /// wrong address fails here rather than at the first registration.
    pub async fn connect(self) -> Result<EtcdDiscovery> {
        let config = self.config;
        config.validate()?;
        let mut options = ConnectOptions::new()
            .with_connect_timeout(config.connect_timeout())
            // HTTP/2 pings find a dead member under a long-lived watch or
            // keep-alive stream that would otherwise hang half-open.
            .with_keep_alive(Duration::from_secs(10), config.request_timeout())
            .with_keep_alive_while_idle(true);
        if let (Some(u), Some(p)) = (&config.username, &config.password) {
            options = options.with_user(u.clone(), p.clone());
        }
        let endpoints = config.endpoints.join(", ");
        let client = timed(
            &format!("connect to {endpoints}"),
            config.connect_timeout() + config.request_timeout(),
            Client::connect(&config.endpoints, Some(options)),
        )
        .await?;
        let d = EtcdDiscovery {
            inner: Arc::new(Inner { client, config }),
        };
        // A cheap read proves the endpoints answer (and the credentials work).
        let mut kv = d.inner.client.kv_client();
        timed(
            &format!("first read from {endpoints}"),
            d.inner.config.request_timeout(),
            kv.get(
                keys::nodes_prefix(&d.inner.config.prefix),
                Some(GetOptions::new().with_prefix().with_count_only()),
            ),
        )
        .await?;
        Ok(d)
    }
}

/// Node discovery on etcd v3.
///
/// Each registered node is one key, `<prefix>/nodes/<role>/<node id>`,
/// holding the node's info as JSON and attached to a lease that a
/// background task keeps alive; when the node dies the lease runs out and
/// etcd deletes the key, which every watcher sees as [`NodeEvent::Down`].
/// Cheap to clone: clones share one connection.
#[derive(Clone)]
pub struct EtcdDiscovery {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) client: Client,
    pub(crate) config: EtcdConfig,
}

impl std::fmt::Debug for EtcdDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdDiscovery")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl EtcdDiscovery {
    /// A builder starting from [`EtcdConfig::default`].
    pub fn builder() -> EtcdDiscoveryBuilder {
        EtcdDiscoveryBuilder::default()
    }

    /// Connects with a whole config.
    pub async fn connect(config: EtcdConfig) -> Result<EtcdDiscovery> {
        EtcdDiscoveryBuilder::from_config(config).connect().await
    }

    /// The config in use.
    pub fn config(&self) -> &EtcdConfig {
        &self.inner.config
    }
}

/// Lease TTLs are whole seconds in etcd: round up, never below one.
pub(crate) fn lease_seconds(ttl: Duration) -> i64 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i64::try_from(secs.max(1)).unwrap_or(i64::MAX)
}

#[async_trait]
impl Discovery for EtcdDiscovery {
    async fn register(&self, info: &NodeInfo, ttl: Duration) -> Result<Box<dyn Lease>> {
        validate_id("node id", info.id.as_str())?;
        validate_id("role", &info.role)?;
        if ttl.is_zero() {
            return Err(Error::invalid("a node's lease ttl must be above zero"));
        }
        let lease = EtcdLease::start(self.inner.clone(), info.clone(), ttl).await?;
        Ok(Box::new(lease))
    }

    async fn list(&self, role: &str) -> Result<Vec<NodeInfo>> {
        validate_id("role", role)?;
        let prefix = keys::role_prefix(&self.inner.config.prefix, role);
        let mut kv = self.inner.client.kv_client();
        let resp = timed(
            "list nodes",
            self.inner.config.request_timeout(),
            kv.get(prefix.as_str(), Some(GetOptions::new().with_prefix())),
        )
        .await?;
        let mut nodes: Vec<NodeInfo> = resp
            .kvs()
            .iter()
            .filter(|kv| keys::node_id_of(&prefix, kv.key()).is_some())
            .filter_map(|kv| match keys::decode(kv.value()) {
                Ok(info) => Some(info),
                Err(e) => {
                    tracing::warn!(key = ?String::from_utf8_lossy(kv.key()), error = %e, "skipping a node key");
                    None
                }
            })
            .collect();
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(nodes)
    }

    async fn watch(&self, role: &str) -> Result<mpsc::Receiver<NodeEvent>> {
        validate_id("role", role)?;
        watch::start(self.inner.clone(), role).await
    }
}

/// Puts a node's key under a lease (shared by registration, update and
/// re-registration after a lost lease).
pub(crate) async fn put_node(inner: &Inner, info: &NodeInfo, lease_id: i64) -> Result<()> {
    let key = keys::node_key(&inner.config.prefix, &info.role, &info.id);
    let mut kv = inner.client.kv_client();
    timed(
        "put node key",
        inner.config.request_timeout(),
        kv.put(
            key,
            keys::encode(info),
            Some(PutOptions::new().with_lease(lease_id)),
        ),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_ttls_round_up_to_whole_seconds() {
        assert_eq!(lease_seconds(Duration::from_millis(1)), 1);
        assert_eq!(lease_seconds(Duration::from_secs(1)), 1);
        assert_eq!(lease_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(lease_seconds(Duration::from_secs(30)), 30);
    }

    #[tokio::test]
    async fn connect_rejects_a_bad_config_before_dialing() {
        let e = EtcdDiscovery::builder()
            .endpoints(Vec::<String>::new())
            .connect()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), bubble_core::ErrorKind::InvalidInput);
        assert!(e.message().contains("`endpoints`"), "{e}");
    }
}
