//! Watching one role: etcd PUT events become `Up`, DELETE events (a revoke,
//! or a lease running out) become `Down`.
//!
//! The watch starts at the revision right after a snapshot read, so nothing
//! written after [`start`] returns is missed. When the stream breaks or
//! etcd cancels it (a compaction passed the revision we need), the task
//! reads a fresh snapshot, reports the difference from what it knew
//! (nodes that left as `Down`, new or changed ones as `Up`) and watches on
//! from there: a watcher's picture converges on etcd's even across outages.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bubble_core::ports::{NodeEvent, NodeInfo};
use bubble_core::{NodeId, Result};
use etcd_client::{Event, EventType, GetOptions, WatchOptions, WatchStream};
use tokio::sync::mpsc;

use crate::client::Inner;
use crate::error::timed;
use crate::keys;

/// Starts watching `role`; the task ends when the receiver is dropped.
pub(crate) async fn start(inner: Arc<Inner>, role: &str) -> Result<mpsc::Receiver<NodeEvent>> {
    let prefix = keys::role_prefix(&inner.config.prefix, role);
    let (nodes, revision) = snapshot(&inner, &prefix).await?;
    let stream = open(&inner, &prefix, revision + 1).await?;
    let (tx, rx) = mpsc::channel(inner.config.watch_buffer);
    let watcher = Watcher {
        inner,
        prefix,
        known: nodes.into_iter().map(|(n, _)| n.id).collect(),
        revision,
        tx,
    };
    tokio::spawn(watcher.run(stream));
    Ok(rx)
}

struct Watcher {
    inner: Arc<Inner>,
    prefix: String,
    /// The nodes the receiver has been told about (to diff after a resync).
    known: BTreeSet<NodeId>,
    /// The newest revision reflected in what the receiver was told.
    revision: i64,
    tx: mpsc::Sender<NodeEvent>,
}

impl Watcher {
    async fn run(mut self, mut stream: WatchStream) {
        loop {
            let broken = tokio::select! {
                _ = self.tx.closed() => return,
                msg = stream.message() => match msg {
                    Ok(Some(resp)) if resp.canceled() || resp.compact_revision() > 0 => {
                        tracing::warn!(
                            prefix = %self.prefix,
                            reason = resp.cancel_reason(),
                            compact_revision = resp.compact_revision(),
                            "etcd cancelled the watch; resyncing"
                        );
                        true
                    }
                    Ok(Some(resp)) => {
                        for event in resp.events() {
                            if !self.apply(event).await {
                                return;
                            }
                        }
                        false
                    }
                    Ok(None) => true,
                    Err(e) => {
                        tracing::warn!(prefix = %self.prefix, error = %e, "etcd watch broke; resyncing");
                        true
                    }
                },
            };
            if broken {
                match self.resync().await {
                    Some(s) => stream = s,
                    None => return,
                }
            }
        }
    }

    /// Reports one etcd event; false when the receiver is gone.
    async fn apply(&mut self, event: &Event) -> bool {
        let Some(kv) = event.kv() else { return true };
        let Some(id) = keys::node_id_of(&self.prefix, kv.key()) else {
            return true;
        };
        self.revision = self.revision.max(kv.mod_revision());
        let out = match event.event_type() {
            EventType::Put => match keys::decode(kv.value()) {
                Ok(info) => {
                    self.known.insert(id);
                    NodeEvent::Up(info)
                }
                Err(e) => {
                    tracing::warn!(node = %id, error = %e, "skipping a node key");
                    return true;
                }
            },
            EventType::Delete => {
                self.known.remove(&id);
                NodeEvent::Down(id)
            }
        };
        self.tx.send(out).await.is_ok()
    }

    /// Reads the role again, reports the difference, and reopens the watch
    /// after the snapshot. Retries with backoff; `None` when the receiver is gone.
    async fn resync(&mut self) -> Option<WatchStream> {
        let mut delay = Duration::from_millis(100);
        loop {
            if self.tx.is_closed() {
                return None;
            }
            match snapshot(&self.inner, &self.prefix).await {
                Ok((nodes, revision)) => {
                    let now: BTreeSet<NodeId> = nodes.iter().map(|(n, _)| n.id.clone()).collect();
                    let gone: Vec<NodeId> = self.known.difference(&now).cloned().collect();
                    for id in gone {
                        if self.tx.send(NodeEvent::Down(id)).await.is_err() {
                            return None;
                        }
                    }
                    let changed = nodes.into_iter().filter(|(info, mod_revision)| {
                        !self.known.contains(&info.id) || *mod_revision > self.revision
                    });
                    for (info, _) in changed.collect::<Vec<_>>() {
                        if self.tx.send(NodeEvent::Up(info)).await.is_err() {
                            return None;
                        }
                    }
                    self.known = now;
                    self.revision = revision;
                    match open(&self.inner, &self.prefix, revision + 1).await {
                        Ok(stream) => return Some(stream),
                        Err(e) => tracing::warn!(error = %e, "reopening the etcd watch failed"),
                    }
                }
                Err(e) => tracing::warn!(error = %e, "etcd unreachable while resyncing a watch"),
            }
            tokio::select! {
                _ = self.tx.closed() => return None,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}

/// The role's nodes with their mod revisions, and the store revision of the read.
async fn snapshot(inner: &Inner, prefix: &str) -> Result<(Vec<(NodeInfo, i64)>, i64)> {
    let mut kv = inner.client.kv_client();
    let resp = timed(
        "read nodes",
        inner.config.request_timeout(),
        kv.get(prefix, Some(GetOptions::new().with_prefix())),
    )
    .await?;
    let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
    let nodes = resp
        .kvs()
        .iter()
        .filter(|kv| keys::node_id_of(prefix, kv.key()).is_some())
        .filter_map(|kv| Some((keys::decode(kv.value()).ok()?, kv.mod_revision())))
        .collect();
    Ok((nodes, revision))
}

/// Opens a prefix watch starting at `revision`.
async fn open(inner: &Inner, prefix: &str, revision: i64) -> Result<WatchStream> {
    let mut watch = inner.client.watch_client();
    timed(
        "open watch",
        inner.config.request_timeout(),
        watch.watch(
            prefix,
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(revision),
            ),
        ),
    )
    .await
}
