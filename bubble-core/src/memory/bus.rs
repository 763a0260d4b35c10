use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::RwLock;

use crate::error::{Error, Result};
use crate::ports::Bus;
use crate::push::{Push, PushSink};
use crate::types::NodeId;

/// [`Bus`] inside one process: nodes attach their hub; several engines in
/// one process (tests, embedded clusters) reach each other through it.
#[derive(Default)]
pub struct MemoryBus {
    nodes: RwLock<HashMap<NodeId, Arc<dyn PushSink>>>,
}

impl MemoryBus {
    /// A bus with no nodes.
    pub fn new() -> MemoryBus {
        MemoryBus::default()
    }

    /// Makes `node`'s sessions reachable.
    pub fn attach(&self, node: NodeId, sink: Arc<dyn PushSink>) {
        self.nodes.write().insert(node, sink);
    }

    /// Takes a node off the bus (it died or left).
    pub fn detach(&self, node: &NodeId) {
        self.nodes.write().remove(node);
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn deliver(&self, node: &NodeId, pushes: &[Push]) -> Result<()> {
        let sink = self.nodes.read().get(node).cloned();
        match sink {
            Some(sink) => {
                sink.accept(pushes.to_vec()).await;
                Ok(())
            }
            None => Err(Error::unavailable(format!(
                "node {node} is not on the bus; its clients will reconnect and sync"
            ))),
        }
    }
}
