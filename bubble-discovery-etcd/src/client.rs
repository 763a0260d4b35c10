//! [`EtcdDiscovery`]: the etcd client and settings that registration,
//! listing and watching share, connected by
//! [`EtcdConfig::connect`](bubble_core::AdapterConfig::connect).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bubble_core::ports::NodeInfo;
use bubble_core::{AdapterConfig, InvalidConfig, Result};
use etcd_client::{Client, ConnectOptions, GetOptions, PutOptions};

use crate::config::EtcdConfig;
use crate::error::timed;
use crate::keys;
use bubble_core::redact_url;

#[async_trait]
impl AdapterConfig for EtcdConfig {
    type Adapter = EtcdDiscovery;

    fn validate(&self) -> std::result::Result<(), InvalidConfig> {
        self.check()
    }

    /// Validates, connects, and checks that etcd answers, so a wrong
    /// address fails here rather than at the first registration.
    async fn connect(&self) -> Result<EtcdDiscovery> {
        self.validate()?;
        EtcdDiscovery::open(self.clone()).await
    }
}

/// Node discovery on etcd v3.
///
/// Each registered node is one key, `<prefix>/nodes/<role>/<node id>`,
/// holding the node's info as JSON and attached to a lease that a
/// background task keeps alive; when the node dies the lease runs out and
/// etcd deletes the key, which every watcher sees as
/// [`NodeEvent::Down`](bubble_core::ports::NodeEvent::Down).
/// Cheap to clone: clones share one connection.
#[derive(Clone)]
pub struct EtcdDiscovery {
    pub(crate) inner: Arc<Inner>,
}

/// What registrations, lists and watches share (leases and watch tasks
/// hold it too, so they outlive a dropped [`EtcdDiscovery`]).
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
    /// Connects with `config` (already validated) and checks that etcd answers.
    async fn open(config: EtcdConfig) -> Result<EtcdDiscovery> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(config.connect_timeout())
            // HTTP/2 pings find a dead member under a long-lived watch or
            // keep-alive stream that would otherwise hang half-open.
            .with_keep_alive(Duration::from_secs(10), config.request_timeout())
            .with_keep_alive_while_idle(true);
        if let (Some(u), Some(p)) = (&config.username, &config.password) {
            options = options.with_user(u.clone(), p.clone());
        }
        let endpoints = config
            .endpoints
            .iter()
            .map(|e| redact_url(e))
            .collect::<Vec<_>>()
            .join(", ");
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
        let e = EtcdConfig::new(Vec::<String>::new())
            .connect()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), bubble_core::ErrorKind::InvalidInput);
        assert!(e.message().contains("`endpoints`"), "{e}");
    }
}
