//! The selector behind `GET /v1/gate`: which gate a client connects to.
//!
//! Discovery lists the gates with the load each last published (its open
//! connections, every [`LOAD_PERIOD`]). That list is wrong for a while in
//! two ways, and the selector corrects both:
//!
//! - A node killed without a word stays listed until its lease runs out
//!   (10 s). Before handing out another node, the selector checks that the
//!   node's cluster port accepts a connection, and remembers the answer for
//!   [`PROBE_FOR`]: a dead node is skipped from the first client after its
//!   death on (a draining node has already left the list: it revokes its
//!   lease at SIGTERM).
//! - A burst of clients arriving between two load updates would all get
//!   the same gate. The selector counts what it handed out to each gate
//!   since that gate's last update and ranks by published load plus that.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use bubble_core::ports::{Discovery, NodeInfo};
use bubble_core::{Error, NodeId, Result};

/// How often a gate publishes its load (see `announce_load`).
pub const LOAD_PERIOD: Duration = Duration::from_secs(2);
/// How long a probe's answer is trusted.
pub const PROBE_FOR: Duration = Duration::from_secs(1);
/// How long a probe waits for a peer's cluster port to accept.
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

/// Picks the least loaded live gate of the cluster.
pub struct Selector {
    discovery: Arc<dyn Discovery>,
    /// This node: alive by definition, never probed.
    me: NodeId,
    gates: Mutex<HashMap<NodeId, Seen>>,
}

/// What this selector knows of one gate beyond discovery's entry.
struct Seen {
    /// The load the gate last published.
    published: u64,
    /// When this selector first saw that value.
    published_seen: Instant,
    /// Clients handed to it since.
    handed: u64,
    /// The last probe: when, and whether the gate answered.
    probed: Option<(Instant, bool)>,
}

impl Selector {
    /// A selector over the gates `discovery` lists, running on node `me`.
    pub fn new(discovery: Arc<dyn Discovery>, me: NodeId) -> Selector {
        Selector {
            discovery,
            me,
            gates: Mutex::new(HashMap::new()),
        }
    }

    /// The gate to hand out now: the lowest published load plus clients
    /// handed out since, among gates that answer.
    pub async fn pick(&self) -> Result<NodeInfo> {
        let listed = self.discovery.list("gate").await?;
        if listed.is_empty() {
            return Err(Error::unavailable(
                "no gate is registered; try again shortly",
            ));
        }
        let mut ruled_out: Vec<NodeId> = Vec::new();
        loop {
            // Chosen and counted under one lock, before any probe: a burst
            // of concurrent requests spreads instead of all taking the gate
            // that was lowest when they arrived.
            let Some((gate, probe)) = self.choose(&listed, &ruled_out) else {
                return Err(Error::unavailable(
                    "no listed gate answers (the cluster is restarting?); try again shortly",
                ));
            };
            let Some(addr) = probe else {
                return Ok(gate);
            };
            if self.probe(&gate.id, &addr).await {
                return Ok(gate);
            }
            if let Some(seen) = self.gates.lock().get_mut(&gate.id) {
                seen.handed = seen.handed.saturating_sub(1);
            }
            ruled_out.push(gate.id);
        }
    }

    /// The least loaded listed gate not ruled out nor known dead, counted
    /// as handed out; with the address to probe first when its liveness is
    /// not known.
    fn choose(
        &self,
        listed: &[NodeInfo],
        ruled_out: &[NodeId],
    ) -> Option<(NodeInfo, Option<String>)> {
        let now = Instant::now();
        let mut gates = self.gates.lock();
        gates.retain(|id, _| listed.iter().any(|g| g.id == *id));
        let mut best: Option<(u64, &NodeInfo)> = None;
        for gate in listed {
            if ruled_out.contains(&gate.id) {
                continue;
            }
            let seen = gates.entry(gate.id.clone()).or_insert(Seen {
                published: gate.load,
                published_seen: now,
                handed: 0,
                probed: None,
            });
            // A new value, or the same one published again: the clients
            // handed out before it are counted in it.
            if seen.published != gate.load || now.duration_since(seen.published_seen) >= LOAD_PERIOD
            {
                seen.published = gate.load;
                seen.published_seen = now;
                seen.handed = 0;
            }
            if matches!(seen.probed, Some((at, false)) if now.duration_since(at) < PROBE_FOR) {
                continue;
            }
            let load = gate.load + seen.handed;
            if best.is_none_or(|(l, b)| (load, &gate.id) < (l, &b.id)) {
                best = Some((load, gate));
            }
        }
        let (_, gate) = best?;
        let seen = gates.get_mut(&gate.id)?;
        seen.handed += 1;
        let known_live = gate.id == self.me
            || matches!(seen.probed, Some((at, true)) if now.duration_since(at) < PROBE_FOR);
        let probe = match &gate.rpc_addr {
            Some(addr) if !known_live => Some(addr.clone()),
            // This node, a fresh probe, or no cluster port to probe (a gate
            // without one is trusted while listed).
            _ => None,
        };
        Some((gate.clone(), probe))
    }

    /// Whether a peer's cluster port accepts a connection now; remembered
    /// for [`PROBE_FOR`].
    async fn probe(&self, node: &NodeId, addr: &str) -> bool {
        let live = matches!(
            tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr)).await,
            Ok(Ok(_))
        );
        if !live {
            tracing::info!(%node, addr, "a listed gate does not answer; not handed out");
        }
        if let Some(seen) = self.gates.lock().get_mut(node) {
            seen.probed = Some((Instant::now(), live));
        }
        live
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bubble_core::memory::MemoryDiscovery;

    fn gate(id: &str, load: u64, rpc: Option<String>) -> NodeInfo {
        NodeInfo {
            id: NodeId::new(id),
            role: "gate".into(),
            tcp_addr: Some(format!("{id}:7700")),
            ws_addr: None,
            rpc_addr: rpc,
            load,
        }
    }

    /// A loopback port that accepts, and one that refuses.
    async fn ports() -> (tokio::net::TcpListener, String, String) {
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let open_addr = open.local_addr().unwrap().to_string();
        (open, open_addr, closed)
    }

    async fn selector(gates: &[NodeInfo]) -> (Selector, Vec<Box<dyn bubble_core::ports::Lease>>) {
        let discovery = Arc::new(MemoryDiscovery::new());
        let mut leases = Vec::new();
        for g in gates {
            leases.push(
                discovery
                    .register(g, Duration::from_secs(60))
                    .await
                    .unwrap(),
            );
        }
        (Selector::new(discovery, NodeId::new("me")), leases)
    }

    #[tokio::test]
    async fn hands_out_the_least_loaded_gate() {
        let (_open, up, _) = ports().await;
        let (s, _l) = selector(&[
            gate("me", 7, None),
            gate("b", 3, Some(up.clone())),
            gate("c", 5, Some(up)),
        ])
        .await;
        assert_eq!(s.pick().await.unwrap().id, NodeId::new("b"));
    }

    #[tokio::test]
    async fn a_listed_gate_whose_port_refuses_is_never_handed_out() {
        let (_open, up, dead) = ports().await;
        let (s, _l) = selector(&[
            gate("me", 9, None),
            gate("dead", 0, Some(dead)),
            gate("c", 4, Some(up)),
        ])
        .await;
        for _ in 0..5 {
            assert_ne!(s.pick().await.unwrap().id, NodeId::new("dead"));
        }
    }

    #[tokio::test]
    async fn with_no_live_gate_the_answer_is_unavailable() {
        let (_open, _, dead) = ports().await;
        let (s, _l) = selector(&[gate("dead", 0, Some(dead))]).await;
        let e = s.pick().await.unwrap_err();
        assert_eq!(e.kind(), bubble_core::ErrorKind::Unavailable);
    }

    #[tokio::test]
    async fn a_burst_between_load_updates_spreads_over_the_gates() {
        let (_open, up, _) = ports().await;
        let (s, _l) = selector(&[
            gate("me", 0, None),
            gate("b", 0, Some(up.clone())),
            gate("c", 0, Some(up)),
        ])
        .await;
        let mut handed: HashMap<NodeId, usize> = HashMap::new();
        for _ in 0..30 {
            *handed.entry(s.pick().await.unwrap().id).or_default() += 1;
        }
        assert_eq!(handed.len(), 3, "every gate got clients: {handed:?}");
        assert!(handed.values().all(|&n| n == 10), "evenly: {handed:?}");
    }

    #[tokio::test]
    async fn concurrent_requests_spread_while_a_probe_is_under_way() {
        let (_open, up, _) = ports().await;
        let (s, _l) = selector(&[
            gate("b", 0, Some(up.clone())),
            gate("c", 0, Some(up.clone())),
            gate("d", 0, Some(up)),
        ])
        .await;
        let picks = futures_util::future::join_all((0..30).map(|_| s.pick())).await;
        let mut handed: HashMap<NodeId, usize> = HashMap::new();
        for p in picks {
            *handed.entry(p.unwrap().id).or_default() += 1;
        }
        assert!(handed.values().all(|&n| n == 10), "evenly: {handed:?}");
    }
}
