//! [`Nodes`]: the database servers a store may use (one server, or the
//! nodes of a MariaDB Galera cluster), one connection pool each, and the
//! node the store is on.
//!
//! The store works on one node at a time rather than spreading calls over
//! all of them: writes to one owner from one place never meet in Galera's
//! certification (a conflict there costs a whole transaction), and every
//! server of the deployment lists the nodes in the same order, so they all
//! work on the same node while it is up.

use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::mysql::MySqlPool;

use bubble_core::redact_url;

pub(crate) struct Nodes {
    /// One pool per configured URL, in the configured order.
    pools: Vec<MySqlPool>,
    /// Each node's URL without its password, for logs.
    names: Vec<String>,
    /// The node every call starts on: the first that answered at connect,
    /// moved on to the next when it fails (and never back on its own:
    /// moving costs a stall, so the store stays where it works).
    current: AtomicUsize,
}

impl Nodes {
    /// `pools[i]` serves `urls[i]`; the store starts on `first`.
    pub(crate) fn new(pools: Vec<MySqlPool>, urls: &[&str], first: usize) -> Nodes {
        debug_assert_eq!(pools.len(), urls.len());
        Nodes {
            pools,
            names: urls.iter().map(|u| redact_url(u)).collect(),
            current: AtomicUsize::new(first),
        }
    }

    /// The node calls go to now, and its pool.
    pub(crate) fn current(&self) -> (usize, &MySqlPool) {
        let i = self.current.load(Ordering::Acquire);
        (i, &self.pools[i])
    }

    /// How many nodes there are to move between.
    pub(crate) fn len(&self) -> usize {
        self.pools.len()
    }

    /// Node `node` failed a call (refused or lost a connection, or said it
    /// is not ready): later calls go to the next node in the list. When
    /// another call saw the same failure first, the store has moved already
    /// and this does nothing, so a burst of failures moves it once.
    pub(crate) fn failed(&self, node: usize) {
        if self.pools.len() < 2 {
            return;
        }
        let next = (node + 1) % self.pools.len();
        if self
            .current
            .compare_exchange(node, next, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            tracing::warn!(
                from = %self.names[node],
                to = %self.names[next],
                "mysql: database node unavailable; moving to the next"
            );
        }
    }

    /// Closes every node's pool.
    pub(crate) async fn close(&self) {
        for pool in &self.pools {
            pool.close().await;
        }
    }
}
