//! [`Discovery`] on etcd: registration under a kept-alive lease (`lease`),
//! listing a role's nodes, watching a role (`watch`).

use std::time::Duration;

use async_trait::async_trait;
use bubble_core::ports::{Discovery, Lease, NodeEvent, NodeInfo};
use bubble_core::{Error, Result, validate_id};
use etcd_client::GetOptions;
use tokio::sync::mpsc;

use crate::client::EtcdDiscovery;
use crate::error::timed;
use crate::keys;
use crate::lease::EtcdLease;
use crate::watch;

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
