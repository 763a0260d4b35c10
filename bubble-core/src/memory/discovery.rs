use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::Result;
use crate::ports::*;
use crate::types::NodeId;

struct Registered {
    info: NodeInfo,
    lease: u64,
    ttl: Duration,
    expires: Instant,
}

#[derive(Default)]
struct State {
    nodes: BTreeMap<NodeId, Registered>,
    watchers: Vec<(String, mpsc::Sender<NodeEvent>)>,
    next_lease: u64,
}

impl State {
    fn notify(&mut self, role: &str, event: NodeEvent) {
        self.watchers
            .retain(|(r, tx)| r != role || tx.try_send(event.clone()).is_ok() || !tx.is_closed());
    }

    /// Removes nodes whose lease ran out, telling watchers.
    fn expire(&mut self, now: Instant) {
        let dead: Vec<(NodeId, String)> = self
            .nodes
            .iter()
            .filter(|(_, r)| r.expires <= now)
            .map(|(id, r)| (id.clone(), r.info.role.clone()))
            .collect();
        for (id, role) in dead {
            self.nodes.remove(&id);
            self.notify(&role, NodeEvent::Down(id));
        }
    }
}

/// [`Discovery`] in memory, with leases that expire like etcd's when their
/// keep-alive stops.
#[derive(Default, Clone)]
pub struct MemoryDiscovery {
    state: Arc<Mutex<State>>,
}

impl MemoryDiscovery {
    /// No nodes.
    pub fn new() -> MemoryDiscovery {
        MemoryDiscovery::default()
    }
}

struct MemoryLease {
    state: Weak<Mutex<State>>,
    id: NodeId,
    lease: u64,
    keepalive: tokio::task::JoinHandle<()>,
}

impl Drop for MemoryLease {
    fn drop(&mut self) {
        self.keepalive.abort();
    }
}

#[async_trait]
impl Lease for MemoryLease {
    async fn update(&self, info: &NodeInfo) -> Result<()> {
        if let Some(state) = self.state.upgrade() {
            let mut state = state.lock();
            if let Some(r) = state
                .nodes
                .get_mut(&self.id)
                .filter(|r| r.lease == self.lease)
            {
                r.info = info.clone();
                let role = info.role.clone();
                state.notify(&role, NodeEvent::Up(info.clone()));
            }
        }
        Ok(())
    }

    async fn revoke(self: Box<Self>) -> Result<()> {
        if let Some(state) = self.state.upgrade() {
            let mut state = state.lock();
            if state
                .nodes
                .get(&self.id)
                .is_some_and(|r| r.lease == self.lease)
                && let Some(r) = state.nodes.remove(&self.id)
            {
                state.notify(&r.info.role, NodeEvent::Down(self.id.clone()));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Discovery for MemoryDiscovery {
    async fn register(&self, info: &NodeInfo, ttl: Duration) -> Result<Box<dyn Lease>> {
        let lease = {
            let mut state = self.state.lock();
            state.next_lease += 1;
            let lease = state.next_lease;
            state.nodes.insert(
                info.id.clone(),
                Registered {
                    info: info.clone(),
                    lease,
                    ttl,
                    expires: Instant::now() + ttl,
                },
            );
            state.notify(&info.role, NodeEvent::Up(info.clone()));
            lease
        };
        let weak = Arc::downgrade(&self.state);
        let id = info.id.clone();
        let keepalive = tokio::spawn({
            let weak = weak.clone();
            let id = id.clone();
            async move {
                loop {
                    tokio::time::sleep(ttl / 3).await;
                    let Some(state) = weak.upgrade() else { return };
                    let mut state = state.lock();
                    match state.nodes.get_mut(&id).filter(|r| r.lease == lease) {
                        Some(r) => r.expires = Instant::now() + r.ttl,
                        None => return,
                    }
                }
            }
        });
        // Leases run out even when nobody lists: a sweeper per lease.
        tokio::spawn({
            let weak = weak.clone();
            async move {
                loop {
                    tokio::time::sleep(ttl / 2).await;
                    let Some(state) = weak.upgrade() else { return };
                    let mut state = state.lock();
                    state.expire(Instant::now());
                    if !state.nodes.values().any(|r| r.lease == lease) {
                        return;
                    }
                }
            }
        });
        Ok(Box::new(MemoryLease {
            state: weak,
            id,
            lease,
            keepalive,
        }))
    }

    async fn list(&self, role: &str) -> Result<Vec<NodeInfo>> {
        let mut state = self.state.lock();
        state.expire(Instant::now());
        Ok(state
            .nodes
            .values()
            .filter(|r| r.info.role == role)
            .map(|r| r.info.clone())
            .collect())
    }

    async fn watch(&self, role: &str) -> Result<mpsc::Receiver<NodeEvent>> {
        let (tx, rx) = mpsc::channel(256);
        self.state.lock().watchers.push((role.to_owned(), tx));
        Ok(rx)
    }
}
