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
    /// When it was last pushed to (a counter): its place in `window_order`.
    touched: u64,
}

type Owner = (AppId, UserId);

type DedupKey = (AppId, UserId, String);

#[derive(Default)]
struct State {
    dedup: HashMap<DedupKey, (SendReceipt, Instant)>,
    /// The dedup keys in the order they were put, with their expiry: the
    /// oldest leave first, when they expire or when the cache is full, at
    /// O(1) per put.
    dedup_order: VecDeque<(DedupKey, Instant)>,
    windows: HashMap<Owner, Window>,
    /// Owners in the order their windows were pushed to, oldest first, with
    /// the `touched` of that push; an owner pushed again has a newer row and
    /// its older ones are skipped. Evicting from the front drops the windows
    /// of the owners quiet the longest.
    window_order: VecDeque<(Owner, u64)>,
    /// Entries in all windows together.
    window_entries: usize,
    touches: u64,
}

/// [`Cache`] in memory. Dedup keys leave when they expire or, past
/// `max_dedup_keys`, oldest first: the cache only saves the store a lookup
/// (the store's unique key is what dedups), so a bounded cache forgets
/// nothing that matters, while one that kept every key for its whole TTL
/// grew by ~0.4 KiB per message for a day (the soak test's finding).
pub struct MemoryCache {
    state: Mutex<State>,
    max_dedup_keys: usize,
    max_window_entries: usize,
}

impl Default for MemoryCache {
    fn default() -> Self {
        MemoryCache::with_max_dedup_keys(DEFAULT_MAX_DEDUP_KEYS)
    }
}

impl MemoryCache {
    /// An empty cache holding at most [`DEFAULT_MAX_DEDUP_KEYS`] dedup keys.
    pub fn new() -> MemoryCache {
        MemoryCache::default()
    }

    /// An empty cache holding at most `max` dedup keys.
    pub fn with_max_dedup_keys(max: usize) -> MemoryCache {
        MemoryCache::with_limits(max, DEFAULT_MAX_WINDOW_ENTRIES)
    }

    /// An empty cache holding at most `max_dedup_keys` dedup keys and
    /// `max_window_entries` recent entries, all owners' windows together.
    pub fn with_limits(max_dedup_keys: usize, max_window_entries: usize) -> MemoryCache {
        MemoryCache {
            state: Mutex::default(),
            max_dedup_keys: max_dedup_keys.max(1),
            max_window_entries: max_window_entries.max(1),
        }
    }
}

/// Dedup keys an in-memory cache holds at most (~40 MB).
pub const DEFAULT_MAX_DEDUP_KEYS: usize = 100_000;

/// Recent entries an in-memory cache holds at most, every owner's window
/// together (~100 MB with short messages): past it, the windows of the
/// owners quiet the longest are dropped whole. A window per owner ever
/// active would grow with the number of users for as long as the process
/// runs; a dropped window only sends that owner's next sync to the store.
pub const DEFAULT_MAX_WINDOW_ENTRIES: usize = 250_000;

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
                prev_version: 0,
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
        let State {
            dedup, dedup_order, ..
        } = &mut *state;
        while let Some((oldest, expires)) = dedup_order.front() {
            if *expires > now && dedup.len() < self.max_dedup_keys {
                break;
            }
            // The map's entry may be a newer put of the same key: keep that.
            if dedup.get(oldest).is_some_and(|(_, e)| e == expires) {
                dedup.remove(oldest);
            }
            dedup_order.pop_front();
        }
        let key = (app.clone(), sender.clone(), client_msg_id.to_owned());
        match dedup.get(&key) {
            Some((_, expires)) if *expires > now => Ok(false),
            _ => {
                let expires = now + ttl;
                dedup.insert(key.clone(), (*receipt, expires));
                dedup_order.push_back((key, expires));
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
        let State {
            windows,
            window_order,
            window_entries,
            touches,
            ..
        } = &mut *state;
        *touches += 1;
        let key = (app.clone(), entry.owner.clone());
        let window = windows.entry(key.clone()).or_default();
        window.touched = *touches;
        window_order.push_back((key.clone(), *touches));
        let before = window.entries.len();
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
        *window_entries = *window_entries + window.entries.len() - before;
        // Drop the quietest owners' windows while over the limit (never the
        // one just pushed to: its row is the newest).
        while *window_entries > self.max_window_entries {
            let Some((owner, touched)) = window_order.pop_front() else {
                break;
            };
            if owner != key
                && windows.get(&owner).is_some_and(|w| w.touched == touched)
                && let Some(dropped) = windows.remove(&owner)
            {
                *window_entries -= dropped.entries.len();
            }
        }
        // Rows of owners pushed to again are skipped lazily; keep them from
        // piling up when no eviction runs.
        if window_order.len() > 2 * windows.len() + 1024 {
            window_order.retain(|(owner, touched)| {
                windows.get(owner).is_some_and(|w| w.touched == *touched)
            });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(version: u64) -> SendReceipt {
        SendReceipt {
            server_msg_id: MsgId([0; 16]),
            version,
            seq: 0,
            server_time: 0,
            duplicate: false,
            prev_version: 0,
        }
    }

    #[tokio::test]
    async fn a_full_cache_forgets_its_oldest_dedup_keys_first() {
        let cache = MemoryCache::with_max_dedup_keys(3);
        let (app, alice) = (AppId::new("a"), UserId::new("alice"));
        let day = Duration::from_secs(86_400);
        for i in 0..5 {
            let (id, r) = (format!("m{i}"), receipt(i));
            assert!(cache.dedup_put(&app, &alice, &id, &r, day).await.unwrap());
        }
        for (i, kept) in [(0, false), (1, false), (2, true), (3, true), (4, true)] {
            let found = cache
                .dedup_get(&app, &alice, &format!("m{i}"))
                .await
                .unwrap();
            assert_eq!(found.map(|r| r.version), kept.then_some(i), "m{i}");
        }
        assert_eq!(cache.state.lock().dedup.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn expired_dedup_keys_leave_as_new_ones_arrive() {
        let cache = MemoryCache::with_max_dedup_keys(1000);
        let (app, alice) = (AppId::new("a"), UserId::new("alice"));
        let ttl = Duration::from_secs(60);
        for i in 0..10 {
            cache
                .dedup_put(&app, &alice, &format!("old{i}"), &receipt(i), ttl)
                .await
                .unwrap();
        }
        tokio::time::advance(ttl + Duration::from_secs(1)).await;
        let r = receipt(99);
        assert!(cache.dedup_put(&app, &alice, "new", &r, ttl).await.unwrap());
        let state = cache.state.lock();
        assert_eq!((state.dedup.len(), state.dedup_order.len()), (1, 1));
    }

    fn entry(owner: &str, version: u64) -> InboxEntry {
        let (mut e, _) = crate::testkit::direct_message(owner, "peer", "hi");
        e.version = version;
        e
    }

    #[tokio::test]
    async fn the_windows_of_the_quietest_owners_go_first_when_the_cache_is_full() {
        let cache = MemoryCache::with_limits(100, 10);
        let app = AppId::new("a");
        // Four owners with 3 entries each: 12 > 10, so the first goes.
        for owner in ["u1", "u2", "u3", "u4"] {
            for v in 1..=3 {
                cache
                    .push_recent(&app, v - 1, &entry(owner, v), 200)
                    .await
                    .unwrap();
            }
        }
        let window = |owner: &'static str| {
            let cache = &cache;
            let app = &app;
            async move { cache.recent(app, &UserId::new(owner), 0, 10).await.unwrap() }
        };
        assert!(
            window("u1").await.is_none(),
            "the quietest owner's window was dropped"
        );
        for owner in ["u2", "u3", "u4"] {
            assert_eq!(window(owner).await.unwrap().entries.len(), 3, "{owner}");
        }
        // u2 is pushed to again: now u3 is the quietest.
        cache
            .push_recent(&app, 3, &entry("u2", 4), 200)
            .await
            .unwrap();
        cache
            .push_recent(&app, 0, &entry("u5", 1), 200)
            .await
            .unwrap();
        assert!(window("u3").await.is_none());
        assert_eq!(window("u2").await.unwrap().entries.len(), 4);
        let state = cache.state.lock();
        let held: usize = state.windows.values().map(|w| w.entries.len()).sum();
        assert_eq!(held, state.window_entries, "the count follows the windows");
        assert!(held <= 10);
    }
}
