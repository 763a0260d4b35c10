//! [`Cache`] on Redis: the dedup window (`SET NX PX`) and per-user recent
//! windows (a list updated by a Lua script).

use std::time::Duration;

use async_trait::async_trait;
use bubble_core::ports::{Cache, RecentPush};
use bubble_core::{AppId, InboxEntry, InboxPage, Result, SendReceipt, UserId};
use futures_util::future::try_join_all;

use crate::client::{RedisStore, Repeat, duration_ms};
use crate::codec::{decode_element, decode_receipt, digits, encode_element, encode_receipt};
use crate::scripts::{PUSH_RECENT, RECENT};

/// Most elements one `recent` call brings back; the engine asks for pages
/// far smaller than this.
const MAX_PAGE: usize = 1 << 16;

/// Windows per `PUSH_RECENT` call on a single server: a group of a
/// hundred in one call, and no call long enough to hold Redis up.
const WINDOWS_PER_CALL: usize = 256;

#[async_trait]
impl Cache for RedisStore {
    async fn dedup_get(
        &self,
        app: &AppId,
        sender: &UserId,
        client_msg_id: &str,
    ) -> Result<Option<SendReceipt>> {
        let key = &self.keys.dedup(app, sender, client_msg_id);
        let bytes: Option<Vec<u8>> = self
            .run(Repeat::Safe, |mut conn| async move {
                redis::cmd("GET").arg(key).query_async(&mut conn).await
            })
            .await?;
        bytes.map(|b| decode_receipt(&b)).transpose()
    }

    async fn dedup_put(
        &self,
        app: &AppId,
        sender: &UserId,
        client_msg_id: &str,
        receipt: &SendReceipt,
        ttl: Duration,
    ) -> Result<bool> {
        let key = &self.keys.dedup(app, sender, client_msg_id);
        let value = &encode_receipt(receipt);
        let ttl = duration_ms(ttl);
        // Not repeated after a dropped connection: if the first SET landed
        // unseen, a second would answer "someone else stored it".
        let stored: Option<String> = self
            .write(Repeat::Never, |mut conn| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(&value[..])
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        Ok(stored.is_some())
    }

    async fn push_recent(
        &self,
        app: &AppId,
        prev_version: u64,
        entry: &InboxEntry,
        cap: usize,
    ) -> Result<()> {
        // The many-window script with one window: one script to keep
        // exactly like `MemoryCache::push_recent`.
        let push = RecentPush {
            prev_version,
            entry,
        };
        self.push_recent_batch(app, &[&push], cap).await
    }

    async fn push_recent_many(
        &self,
        app: &AppId,
        pushes: &[RecentPush<'_>],
        cap: usize,
    ) -> Result<()> {
        // One script call per batch, every batch sent at once. Two entries
        // of one owner go in order within a batch; only a batch boundary
        // on a single server can split them, and then the window may
        // restart, which hides nothing.
        let batches = self.script_batches(pushes, WINDOWS_PER_CALL, |p| {
            self.keys.recent(app, &p.entry.owner)
        });
        try_join_all(batches.iter().map(|b| self.push_recent_batch(app, b, cap))).await?;
        Ok(())
    }

    async fn recent(
        &self,
        app: &AppId,
        owner: &UserId,
        after_version: u64,
        limit: usize,
    ) -> Result<Option<InboxPage>> {
        let key = &self.keys.recent(app, owner);
        let after = &digits(after_version);
        let limit = limit.min(MAX_PAGE);
        let elements: Option<Vec<Vec<u8>>> = self
            .run(Repeat::Safe, |mut conn| async move {
                let mut call = RECENT.prepare_invoke();
                call.key(key).arg(after).arg(limit);
                call.invoke_async(&mut conn).await
            })
            .await?;
        let Some(elements) = elements else {
            return Ok(None);
        };
        let has_more = elements.len() > limit;
        let entries = elements
            .iter()
            .take(limit)
            .map(|e| decode_element(e))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(InboxPage { entries, has_more }))
    }
}

impl RedisStore {
    /// Writes windows whose keys may share one script call.
    async fn push_recent_batch(
        &self,
        app: &AppId,
        pushes: &[&RecentPush<'_>],
        cap: usize,
    ) -> Result<()> {
        let windows = &pushes
            .iter()
            .map(|p| self.keys.recent(app, &p.entry.owner))
            .collect::<Vec<_>>();
        let args = &pushes
            .iter()
            .map(|p| (digits(p.prev_version), encode_element(p.entry)))
            .collect::<Vec<_>>();
        let cap = cap.clamp(1, MAX_PAGE);
        let ttl = self.recent_ttl_ms;
        // Safe to repeat: a second run sees each entry as its window's
        // newest, restarts that window at its `prev_version` and holds just
        // that entry.
        let _written: i64 = self
            .write(Repeat::Safe, |mut conn| async move {
                let mut call = PUSH_RECENT.prepare_invoke();
                call.arg(cap).arg(ttl);
                for (window, (prev, element)) in windows.iter().zip(args) {
                    call.key(window).arg(prev).arg(element);
                }
                call.invoke_async(&mut conn).await
            })
            .await?;
        Ok(())
    }
}
