//! Shared by the integration tests: reaching the test etcd.
#![allow(dead_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use bubble_core::AdapterConfig;
use bubble_discovery_etcd::{EtcdConfig, EtcdDiscovery};

/// etcd client URLs: `BUBBLE_ETCD_ENDPOINTS` (comma-separated) or the
/// member `scripts/services/etcd.sh` starts.
pub fn endpoints() -> Vec<String> {
    std::env::var("BUBBLE_ETCD_ENDPOINTS")
        .unwrap_or_else(|_| "http://127.0.0.1:2379".to_owned())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A key prefix nobody else uses, so test runs can share one etcd.
pub fn fresh_prefix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("/bubble-test-{}-{nanos:x}", std::process::id())
}

/// Connects under `prefix`, or fails saying how to start etcd.
pub async fn connect_with_prefix(prefix: &str) -> EtcdDiscovery {
    let endpoints = endpoints();
    match EtcdConfig::new(endpoints.clone())
        .with_prefix(prefix)
        .connect()
        .await
    {
        Ok(d) => d,
        Err(e) => panic!(
            "etcd is not reachable at {endpoints:?}: {e}\n\
             Start it with `bash scripts/services/etcd.sh` (installs Debian's etcd-server \
             if needed), or point BUBBLE_ETCD_ENDPOINTS at a running etcd."
        ),
    }
}

/// Connects under a fresh prefix.
pub async fn connect() -> EtcdDiscovery {
    connect_with_prefix(&fresh_prefix()).await
}

/// A raw etcd client, to look at keys and leases behind the adapter's back.
pub async fn raw() -> etcd_client::Client {
    etcd_client::Client::connect(endpoints(), None)
        .await
        .expect("raw etcd client connects")
}
