use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::error::Result;
use crate::ports::Cache;
use crate::types::*;

/// A window of one owner's newest entries: every entry with a version above
/// `floor` is in `entries`.
#[derive(Default)]
struct Window {
    floor: u64,
    entries: VecDeque<InboxEntry>,
}

#[derive(Default)]
struct State {
    dedup: HashMap<(AppId, UserId, String), (SendReceipt, Instant)>,
    /// Sweep expired dedup keys when the map reaches this size; doubles with
    /// what survives a sweep, so sweeping stays O(1) per insert on average
    /// (a fixed threshold made every insert scan the whole map once more
    /// than that many keys were live: 70% of a server's CPU at 8k sends/s).
    sweep_at: usize,
    windows: HashMap<(AppId, UserId), Window>,
}

/// [`Cache`] in memory. Expired dedup entries are swept as new ones arrive.
#[derive(Default)]
pub struct MemoryCache {
    state: Mutex<State>,
}

impl MemoryCache {
    /// An empty cache.
    pub fn new() -> MemoryCache {
        MemoryCache::default()
    }
}

/// Sweep expired dedup keys once the map grows past this many.
const SWEEP_AT: usize = 4096;

#[async_trait]
impl Cache for MemoryCache {
    async fn dedup_get(
        &self,
        app: &AppId,
        sender: &UserId,
        client_msg_id: &str,
    ) -> Result<Option<SendReceipt>> {
        let state = self.state.lock();
        let now = Instant::now();
        Ok(state
            .dedup
            .get(&(app.clone(), sender.clone(), client_msg_id.to_owned()))
            .filter(|(_, expires)| *expires > now)
            .map(|(r, _)| SendReceipt {
                duplicate: true,
                ..*r
            }))
    }

    async fn dedup_put(
        &self,
        app: &AppId,
        sender: &UserId,
        client_msg_id: &str,
        receipt: &SendReceipt,
        ttl: Duration,
    ) -> Result<bool> {
        let mut state = self.state.lock();
        let now = Instant::now();
        if state.dedup.len() >= state.sweep_at.max(SWEEP_AT) {
            state.dedup.retain(|_, (_, expires)| *expires > now);
            state.sweep_at = (state.dedup.len() * 2).max(SWEEP_AT);
        }
        let key = (app.clone(), sender.clone(), client_msg_id.to_owned());
        match state.dedup.get(&key) {
            Some((_, expires)) if *expires > now => Ok(false),
            _ => {
                state.dedup.insert(key, (*receipt, now + ttl));
                Ok(true)
            }
        }
    }

    async fn push_recent(
        &self,
        app: &AppId,
        prev_version: u64,
        entry: &InboxEntry,
        cap: usize,
    ) -> Result<()> {
        let mut state = self.state.lock();
        let window = state
            .windows
            .entry((app.clone(), entry.owner.clone()))
            .or_default();
        let newest = window.entries.back().map_or(window.floor, |e| e.version);
        if newest != prev_version || window.entries.is_empty() {
            // Out of order (or first): restart so the window never hides a gap.
            window.entries.clear();
            window.floor = prev_version;
        }
        window.entries.push_back(entry.clone());
        while window.entries.len() > cap.max(1) {
            if let Some(evicted) = window.entries.pop_front() {
                window.floor = evicted.version;
            }
        }
        Ok(())
    }

    async fn recent(
        &self,
        app: &AppId,
        owner: &UserId,
        after_version: u64,
        limit: usize,
    ) -> Result<Option<InboxPage>> {
        let state = self.state.lock();
        let Some(window) = state.windows.get(&(app.clone(), owner.clone())) else {
            return Ok(None);
        };
        if after_version < window.floor {
            return Ok(None);
        }
        let newer: Vec<&InboxEntry> = window
            .entries
            .iter()
            .filter(|e| e.version > after_version)
            .collect();
        let take = newer.len().min(limit);
        Ok(Some(InboxPage {
            entries: newer[..take].iter().map(|e| (*e).clone()).collect(),
            has_more: newer.len() > take,
        }))
    }
}
