//! The `Discovery` conformance suite against a real etcd
//! (`bash scripts/services/etcd.sh` starts one on 127.0.0.1:2379).

mod common;

use std::sync::Arc;
use std::time::Duration;

use bubble_core::testkit::{DiscoveryOptions, discovery};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_discovery_passes_the_conformance_suite() {
    let d = common::connect().await;
    // One second is etcd's smallest lease; a member with the default
    // election timeout rounds it up to two, which the suite's deadlines allow.
    discovery(
        Arc::new(d),
        DiscoveryOptions {
            lease_ttl: Duration::from_secs(1),
        },
    )
    .await;
}
