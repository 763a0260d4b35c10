//! A node's registration: an etcd lease, the node key attached to it, and
//! the background task that keeps the lease alive.
//!
//! The keep-alive task refreshes the lease every third of its TTL. When the
//! stream to etcd breaks (a member restarts, the network blips) it reopens
//! it; when etcd says the lease is gone (the node was cut off for longer
//! than its TTL, or etcd lost its data) it grants a new lease and writes the
//! key again, so a node that is alive always ends up listed. Dropping the
//! [`EtcdLease`] aborts the task: the key then vanishes when the lease runs
//! out, exactly as after a crash.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bubble_core::ports::{Lease, NodeInfo};
use bubble_core::{Error, ErrorKind, Result};
use etcd_client::{LeaseKeepAliveStream, LeaseKeeper};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::client::{Inner, lease_seconds, put_node};
use crate::error::{map_err, timed};

/// A registered node; see the module docs.
pub(crate) struct EtcdLease {
    shared: Arc<Shared>,
    keepalive: JoinHandle<()>,
}

struct Shared {
    inner: Arc<Inner>,
    /// The TTL the caller asked for (etcd may grant a longer one).
    ttl: Duration,
    /// Locked across re-registration so `update` never writes under a lease
    /// that is being replaced.
    state: Mutex<State>,
}

struct State {
    lease_id: i64,
    /// The newest info, written again if the lease has to be replaced.
    info: NodeInfo,
}

impl EtcdLease {
    /// Grants a lease, writes the node key under it and starts the keep-alive.
    pub(crate) async fn start(inner: Arc<Inner>, info: NodeInfo, ttl: Duration) -> Result<Self> {
        let lease_id = grant_and_put(&inner, &info, ttl).await?;
        tracing::debug!(node = %info.id, role = %info.role, lease_id, "registered node");
        let shared = Arc::new(Shared {
            inner,
            ttl,
            state: Mutex::new(State { lease_id, info }),
        });
        let keepalive = tokio::spawn(keep_alive(shared.clone()));
        Ok(EtcdLease { shared, keepalive })
    }
}

impl Drop for EtcdLease {
    fn drop(&mut self) {
        self.keepalive.abort();
    }
}

#[async_trait]
impl Lease for EtcdLease {
    async fn update(&self, info: &NodeInfo) -> Result<()> {
        let mut state = self.shared.state.lock().await;
        if info.id != state.info.id || info.role != state.info.role {
            return Err(Error::invalid(format!(
                "a lease publishes info for node {} with role {:?}; register a new lease \
                 to appear under another id or role",
                state.info.id, state.info.role
            )));
        }
        match put_node(&self.shared.inner, info, state.lease_id).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // The lease ran out under us: come back under a new one.
                state.lease_id = grant_and_put(&self.shared.inner, info, self.shared.ttl).await?;
            }
            Err(e) => return Err(e),
        }
        state.info = info.clone();
        Ok(())
    }

    async fn revoke(self: Box<Self>) -> Result<()> {
        // Stop first, so the task cannot re-register what we remove.
        self.keepalive.abort();
        let state = self.shared.state.lock().await;
        let mut leases = self.shared.inner.client.lease_client();
        match timed(
            "revoke lease",
            self.shared.inner.config.request_timeout(),
            leases.revoke(state.lease_id),
        )
        .await
        {
            Ok(_) => Ok(()),
            // Already expired: the key is gone too.
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Grants a lease of `ttl` and writes the node's key under it; returns the lease id.
async fn grant_and_put(inner: &Inner, info: &NodeInfo, ttl: Duration) -> Result<i64> {
    let mut leases = inner.client.lease_client();
    let granted = timed(
        "grant lease",
        inner.config.request_timeout(),
        leases.grant(lease_seconds(ttl), None),
    )
    .await?;
    let lease_id = granted.id();
    if let Err(e) = put_node(inner, info, lease_id).await {
        // Best effort: an orphan lease would expire anyway.
        let _ = timed(
            "revoke lease",
            inner.config.request_timeout(),
            leases.revoke(lease_id),
        )
        .await;
        return Err(e);
    }
    Ok(lease_id)
}

/// The keep-alive loop; runs until the lease is revoked or dropped (abort).
async fn keep_alive(shared: Arc<Shared>) {
    let interval = (shared.ttl / 3).max(Duration::from_millis(100));
    let retry = (interval / 2).max(Duration::from_millis(100));
    // A refresh that takes longer than the TTL is too late anyway.
    let round_trip = shared
        .inner
        .config
        .request_timeout()
        .min(shared.ttl.max(Duration::from_secs(1)));
    let mut stream: Option<(LeaseKeeper, LeaseKeepAliveStream)> = None;
    loop {
        let lease_id = shared.state.lock().await.lease_id;
        let Some((keeper, responses)) = stream.as_mut().filter(|(k, _)| k.id() == lease_id) else {
            // Opening the stream is itself a refresh (etcd-client sends the
            // first request and checks its answer).
            let mut leases = shared.inner.client.lease_client();
            match timed("open keep-alive", round_trip, leases.keep_alive(lease_id)).await {
                Ok(opened) => {
                    stream = Some(opened);
                    tokio::time::sleep(interval).await;
                }
                Err(e) => {
                    stream = None;
                    if lease_is_gone(&shared, lease_id, round_trip).await {
                        renew(&shared, lease_id).await;
                    } else {
                        tracing::warn!(lease_id, error = %e, "etcd keep-alive failed; retrying");
                        tokio::time::sleep(retry).await;
                    }
                }
            }
            continue;
        };
        let round = tokio::time::timeout(round_trip, async {
            keeper.keep_alive().await?;
            responses.message().await
        })
        .await;
        match round {
            Ok(Ok(Some(resp))) if resp.ttl() > 0 => tokio::time::sleep(interval).await,
            Ok(Ok(Some(_))) => {
                stream = None;
                renew(&shared, lease_id).await;
            }
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => {
                // The stream broke; the next turn reopens it.
                stream = None;
                tokio::time::sleep(retry).await;
            }
        }
    }
}

/// Whether etcd says the lease no longer exists (as opposed to not answering).
async fn lease_is_gone(shared: &Shared, lease_id: i64, limit: Duration) -> bool {
    let mut leases = shared.inner.client.lease_client();
    match tokio::time::timeout(limit, leases.time_to_live(lease_id, None)).await {
        Ok(Ok(resp)) => resp.ttl() <= 0,
        Ok(Err(e)) => map_err("lease time-to-live", e).kind() == ErrorKind::NotFound,
        Err(_) => false,
    }
}

/// Registers the node again under a new lease after `expired` ran out.
async fn renew(shared: &Shared, expired: i64) {
    let mut state = shared.state.lock().await;
    if state.lease_id != expired {
        return; // `update` got there first
    }
    match grant_and_put(&shared.inner, &state.info, shared.ttl).await {
        Ok(lease_id) => {
            tracing::warn!(
                node = %state.info.id,
                old_lease = expired,
                lease_id,
                "etcd lease ran out while the node was alive; registered again"
            );
            state.lease_id = lease_id;
        }
        Err(e) => {
            drop(state);
            tracing::warn!(error = %e, "re-registering after a lost lease failed; retrying");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
