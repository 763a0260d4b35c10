//! What the etcd adapter does beyond the conformance suite: its key layout,
//! several nodes on separate connections, and coming back after etcd lost
//! a lease. Needs a real etcd (`bash scripts/services/etcd.sh`).

mod common;

use std::time::Duration;

use bubble_core::AdapterConfig;
use bubble_core::ErrorKind;
use bubble_core::ports::{Discovery, NodeEvent, NodeInfo};
use bubble_discovery_etcd::{EtcdConfig, EtcdDiscovery};
use etcd_client::GetOptions;
use tokio::sync::mpsc;

fn node(id: &str, role: &str, load: u64) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        role: role.to_owned(),
        tcp_addr: Some(format!("127.0.0.1:{}", 7000 + load)),
        ws_addr: None,
        rpc_addr: Some("127.0.0.1:7100".into()),
        load,
    }
}

const LONG: Duration = Duration::from_secs(30);

async fn next(rx: &mut mpsc::Receiver<NodeEvent>) -> NodeEvent {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an event arrives in time")
        .expect("the watch stays open")
}

async fn until_listed(d: &EtcdDiscovery, role: &str, id: &str) -> NodeInfo {
    for _ in 0..100 {
        if let Some(n) = d
            .list(role)
            .await
            .unwrap()
            .into_iter()
            .find(|n| n.id.as_str() == id)
        {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{id} was never listed again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_is_one_json_key_under_its_role_attached_to_a_lease() {
    let prefix = common::fresh_prefix();
    let d = common::connect_with_prefix(&prefix).await;
    let lease = d.register(&node("n1", "gate", 3), LONG).await.unwrap();

    let mut raw = common::raw().await;
    let resp = raw
        .get(
            format!("{prefix}/nodes/"),
            Some(GetOptions::new().with_prefix()),
        )
        .await
        .unwrap();
    assert_eq!(resp.kvs().len(), 1);
    let kv = &resp.kvs()[0];
    assert_eq!(kv.key_str().unwrap(), format!("{prefix}/nodes/gate/n1"));
    let value: serde_json::Value = serde_json::from_slice(kv.value()).unwrap();
    assert_eq!(value["id"], "n1");
    assert_eq!(value["load"], 3);
    assert_ne!(kv.lease(), 0, "the key dies with the lease");
    let ttl = raw.lease_time_to_live(kv.lease(), None).await.unwrap();
    assert!(
        (1..=30).contains(&ttl.ttl()),
        "lease of 30 s, got {}",
        ttl.ttl()
    );

    lease.revoke().await.unwrap();
    let after = raw
        .get(
            format!("{prefix}/nodes/"),
            Some(GetOptions::new().with_prefix()),
        )
        .await
        .unwrap();
    assert!(after.kvs().is_empty(), "revoke deletes the key at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_their_own_connections_see_each_other() {
    let prefix = common::fresh_prefix();
    let a = common::connect_with_prefix(&prefix).await;
    let b = common::connect_with_prefix(&prefix).await;
    let mut a_hears = a.watch("gate").await.unwrap();

    let lease_a = a.register(&node("gate-a", "gate", 1), LONG).await.unwrap();
    let lease_b = b.register(&node("gate-b", "gate", 2), LONG).await.unwrap();
    for d in [&a, &b] {
        let ids: Vec<String> = d
            .list("gate")
            .await
            .unwrap()
            .iter()
            .map(|n| n.id.to_string())
            .collect();
        assert_eq!(ids, ["gate-a", "gate-b"], "both nodes see both");
    }
    assert_eq!(
        next(&mut a_hears).await,
        NodeEvent::Up(node("gate-a", "gate", 1))
    );
    assert_eq!(
        next(&mut a_hears).await,
        NodeEvent::Up(node("gate-b", "gate", 2))
    );

    lease_b.update(&node("gate-b", "gate", 50)).await.unwrap();
    assert_eq!(
        next(&mut a_hears).await,
        NodeEvent::Up(node("gate-b", "gate", 50)),
        "a new load reaches the other node"
    );
    lease_b.revoke().await.unwrap();
    assert_eq!(next(&mut a_hears).await, NodeEvent::Down("gate-b".into()));
    lease_a.revoke().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_under_different_prefixes_do_not_see_each_other() {
    let one = common::connect().await;
    let two = common::connect().await;
    let lease = one.register(&node("n1", "gate", 1), LONG).await.unwrap();
    assert_eq!(one.list("gate").await.unwrap().len(), 1);
    assert!(two.list("gate").await.unwrap().is_empty());
    lease.revoke().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_node_whose_lease_etcd_lost_registers_again() {
    let prefix = common::fresh_prefix();
    let d = common::connect_with_prefix(&prefix).await;
    let mut rx = d.watch("gate").await.unwrap();
    let _lease = d
        .register(&node("n1", "gate", 1), Duration::from_secs(3))
        .await
        .unwrap();
    assert!(matches!(next(&mut rx).await, NodeEvent::Up(_)));

    // Behind the adapter's back, as when etcd expires a lease during a
    // partition longer than the TTL: the key goes with it.
    let mut raw = common::raw().await;
    let key = format!("{prefix}/nodes/gate/n1");
    let old_lease = raw.get(key.as_str(), None).await.unwrap().kvs()[0].lease();
    raw.lease_revoke(old_lease).await.unwrap();

    assert_eq!(next(&mut rx).await, NodeEvent::Down("n1".into()));
    assert_eq!(
        next(&mut rx).await,
        NodeEvent::Up(node("n1", "gate", 1)),
        "the keep-alive notices and registers the node again"
    );
    let new_lease = raw.get(key.as_str(), None).await.unwrap().kvs()[0].lease();
    assert_ne!(new_lease, old_lease, "under a fresh lease");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_after_the_lease_was_lost_publishes_under_a_new_lease() {
    let prefix = common::fresh_prefix();
    let d = common::connect_with_prefix(&prefix).await;
    let lease = d.register(&node("n1", "gate", 1), LONG).await.unwrap();
    let mut raw = common::raw().await;
    let key = format!("{prefix}/nodes/gate/n1");
    let old_lease = raw.get(key.as_str(), None).await.unwrap().kvs()[0].lease();
    raw.lease_revoke(old_lease).await.unwrap();

    lease.update(&node("n1", "gate", 7)).await.unwrap();
    assert_eq!(until_listed(&d, "gate", "n1").await.load, 7);
    lease.revoke().await.unwrap();
    assert!(d.list("gate").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_cannot_move_a_node_to_another_id_or_role() {
    let d = common::connect().await;
    let lease = d.register(&node("n1", "gate", 1), LONG).await.unwrap();
    let e = lease.update(&node("n1", "logic", 1)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = lease.update(&node("n2", "gate", 1)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    lease.revoke().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_and_roles_that_would_break_the_key_layout_are_rejected() {
    let d = common::connect().await;
    let e = d
        .register(&node("a/b", "gate", 1), LONG)
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = d
        .register(&node("n1", "ga/te", 1), LONG)
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        d.list("").await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        d.watch("x/y").await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_an_address_where_no_etcd_runs_fails_as_unavailable() {
    let started = std::time::Instant::now();
    let e = EtcdConfig::new(["http://127.0.0.1:1"])
        .with_connect_timeout_ms(500)
        .with_request_timeout_ms(500)
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{e}"
    );
    assert!(e.is_retryable());
    assert!(
        e.message().contains("127.0.0.1:1"),
        "names the endpoint: {e}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}
