//! Conformance checks for [`Discovery`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::ports::*;
use crate::types::NodeId;

/// Knobs for backends with a minimum lease length.
#[derive(Debug, Clone)]
pub struct DiscoveryOptions {
    /// The lease TTL the expiry check registers with (etcd rounds small ones up).
    pub lease_ttl: Duration,
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        DiscoveryOptions {
            lease_ttl: Duration::from_secs(2),
        }
    }
}

/// Runs every discovery check. Discovery has no app: each check uses its
/// own random role name instead, so runs can share a cluster.
pub async fn discovery(d: Arc<dyn Discovery>, options: DiscoveryOptions) {
    let mut failed = Vec::new();
    macro_rules! run {
        ($name:ident) => {{
            let d = d.clone();
            let role = super::fresh_app().to_string();
            let options = options.clone();
            match tokio::spawn(async move { $name(d, role, options).await }).await {
                Ok(()) => eprintln!("testkit Discovery: {} ... ok", stringify!($name)),
                Err(e) => {
                    eprintln!("testkit Discovery: {} ... FAILED: {e}", stringify!($name));
                    failed.push(format!("{}: {e}", stringify!($name)));
                }
            }
        }};
    }
    run!(registered_nodes_are_listed_by_role);
    run!(update_publishes_new_load);
    run!(watch_reports_joins_and_leaves);
    run!(a_node_whose_keepalive_stops_disappears);
    assert!(
        failed.is_empty(),
        "Discovery conformance failed:\n  {}",
        failed.join("\n  ")
    );
}

fn node(id: &str, role: &str, load: u64) -> NodeInfo {
    NodeInfo {
        id: NodeId::new(id),
        role: role.to_owned(),
        tcp_addr: Some(format!("127.0.0.1:{}", 7000 + load)),
        ws_addr: Some("127.0.0.1:7443".into()),
        rpc_addr: None,
        load,
    }
}

const LONG: Duration = Duration::from_secs(30);

async fn registered_nodes_are_listed_by_role(
    d: Arc<dyn Discovery>,
    role: String,
    _: DiscoveryOptions,
) {
    let other_role = format!("{role}-other");
    let a = d
        .register(&node(&format!("{role}-b"), &role, 1), LONG)
        .await
        .unwrap();
    let b = d
        .register(&node(&format!("{role}-a"), &role, 2), LONG)
        .await
        .unwrap();
    let c = d
        .register(&node(&format!("{role}-c"), &other_role, 3), LONG)
        .await
        .unwrap();
    let listed = d.list(&role).await.unwrap();
    let ids: Vec<String> = listed.iter().map(|n| n.id.to_string()).collect();
    assert_eq!(
        ids,
        vec![format!("{role}-a"), format!("{role}-b")],
        "ordered by id, one role only"
    );
    assert_eq!(
        listed[0],
        node(&format!("{role}-a"), &role, 2),
        "every field survives"
    );
    for l in [a, b, c] {
        l.revoke().await.unwrap();
    }
    assert!(
        d.list(&role).await.unwrap().is_empty(),
        "revoked nodes are gone at once"
    );
}

async fn update_publishes_new_load(d: Arc<dyn Discovery>, role: String, _: DiscoveryOptions) {
    let id = format!("{role}-n");
    let lease = d.register(&node(&id, &role, 1), LONG).await.unwrap();
    lease.update(&node(&id, &role, 99)).await.unwrap();
    assert_eq!(d.list(&role).await.unwrap()[0].load, 99);
    lease.revoke().await.unwrap();
}

async fn next_event(rx: &mut mpsc::Receiver<NodeEvent>, within: Duration) -> NodeEvent {
    tokio::time::timeout(within, rx.recv())
        .await
        .expect("a membership event arrives in time")
        .expect("the watch stays open")
}

async fn watch_reports_joins_and_leaves(d: Arc<dyn Discovery>, role: String, _: DiscoveryOptions) {
    let mut rx = d.watch(&role).await.unwrap();
    let id = format!("{role}-w");
    let lease = d.register(&node(&id, &role, 5), LONG).await.unwrap();
    match next_event(&mut rx, Duration::from_secs(10)).await {
        NodeEvent::Up(info) => assert_eq!(info, node(&id, &role, 5)),
        other => panic!("expected Up, got {other:?}"),
    }
    lease.revoke().await.unwrap();
    loop {
        match next_event(&mut rx, Duration::from_secs(10)).await {
            NodeEvent::Down(gone) => {
                assert_eq!(gone.as_str(), id);
                break;
            }
            NodeEvent::Up(_) => continue,
        }
    }
}

async fn a_node_whose_keepalive_stops_disappears(
    d: Arc<dyn Discovery>,
    role: String,
    o: DiscoveryOptions,
) {
    let mut rx = d.watch(&role).await.unwrap();
    let id = format!("{role}-crash");
    let lease = d.register(&node(&id, &role, 1), o.lease_ttl).await.unwrap();
    tokio::time::sleep(o.lease_ttl + o.lease_ttl / 2).await;
    assert_eq!(
        d.list(&role).await.unwrap().len(),
        1,
        "the keep-alive holds the node past one TTL"
    );
    drop(lease); // as if the process died: no revoke
    let deadline = o.lease_ttl * 3 + Duration::from_secs(3);
    let gone = tokio::time::timeout(deadline, async {
        loop {
            if let Some(NodeEvent::Down(id_gone)) = rx.recv().await
                && id_gone.as_str() == id
            {
                return;
            }
        }
    })
    .await;
    assert!(gone.is_ok(), "watchers hear of the dead node");
    assert!(
        d.list(&role).await.unwrap().is_empty(),
        "the dead node is no longer listed"
    );
}
