//! Housekeeping that keeps the stores' tables bounded: dedup keys older
//! than the dedup window are forgotten, and messages older than an app's
//! `retention_days` are deleted with their search documents, a batch at a
//! time.

use std::time::Duration;

use super::Engine;
use crate::error::Result;
use crate::types::{AppId, now_millis};

/// Keys deleted per store call: small enough that a writer waiting behind
/// one call waits for a few milliseconds, not for the whole backlog.
const PRUNE_BATCH: usize = 1_000;

/// Messages deleted per store call (each with every owner's entry: a
/// message to a group of 100 is 100 rows), for the same reason.
const EXPIRE_BATCH: usize = 200;

/// A day, in milliseconds.
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Between two sweeps.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

impl Engine {
    /// Forgets every accepted client message id (1:1 and group inboxes,
    /// super-group logs) sent before the dedup window, in batches of
    /// 1,000 (`PRUNE_BATCH`) with a yield between them. Returns how many.
    pub async fn prune_dedup(&self) -> Result<u64> {
        let window = i64::try_from(self.inner.config.dedup_window.as_millis()).unwrap_or(i64::MAX);
        let before = now_millis().saturating_sub(window);
        let inbox = prune_until_done(|| self.inner.inbox.prune_sent(before, PRUNE_BATCH)).await?;
        let channels =
            prune_until_done(|| self.inner.channels.prune_sent(before, PRUNE_BATCH)).await?;
        Ok(inbox + channels)
    }

    /// Deletes the messages of every app with `retention_days` set that are
    /// older than that many days, with their search documents, in batches
    /// of 200 (`EXPIRE_BATCH`) messages with a yield between them. Returns
    /// how many messages. An app whose expiry fails does not stop the
    /// others; the first error is returned after all were tried.
    pub async fn expire_messages(&self) -> Result<u64> {
        let mut expired = 0;
        let mut first_error = None;
        for app in self.inner.apps.list_apps().await? {
            let days = app.settings.retention_days;
            if days == 0 {
                continue;
            }
            let before = now_millis().saturating_sub(i64::from(days).saturating_mul(DAY_MS));
            match self.expire_app(&app.id, before).await {
                Ok(n) => expired += n,
                Err(e) => {
                    tracing::warn!(app = %app.id, error = %e, "deleting messages past retention_days failed; will retry");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(expired),
        }
    }

    /// Deletes `app`'s messages sent before `before` (ms), batch by batch,
    /// removing each batch's search documents once the store let go of it,
    /// then its super groups' log entries as old.
    pub async fn expire_app(&self, app: &AppId, before: i64) -> Result<u64> {
        let mut expired = 0;
        loop {
            let batch = self.inner.inbox.expire(app, before, EXPIRE_BATCH).await?;
            expired += batch.messages.len() as u64;
            if let Some(search) = &self.inner.search {
                for id in &batch.messages {
                    // The store no longer holds the message: a document left
                    // behind here is only cleared by `bubble-server reindex`.
                    search.remove(app, id).await.map_err(|e| {
                        crate::Error::new(
                            e.kind(),
                            format!(
                                "message {} of app {app} was deleted by retention but its \
                                 search document was not ({}); `bubble-server reindex` clears it",
                                id.to_hex(),
                                e.message()
                            ),
                        )
                    })?;
                }
            }
            if !batch.more {
                break;
            }
            tokio::task::yield_now().await;
        }
        // Super-group logs: not indexed for search.
        loop {
            let batch = self
                .inner
                .channels
                .expire(app, before, EXPIRE_BATCH)
                .await?;
            expired += batch.messages.len() as u64;
            if !batch.more {
                return Ok(expired);
            }
            tokio::task::yield_now().await;
        }
    }

    /// Runs [`Engine::prune_dedup`] and [`Engine::expire_messages`] every
    /// minute until `shutdown` resolves. In a cluster every node runs it:
    /// the deletes are idempotent, and a batch another node took is simply
    /// not found (the stores lock what they delete).
    pub async fn run_maintenance(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            match self.prune_dedup().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(pruned = n, "forgot dedup keys past the dedup window"),
                Err(e) => tracing::warn!(error = %e, "pruning dedup keys failed; will retry"),
            }
            match self.expire_messages().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    expired = n,
                    "deleted messages past their app's retention_days"
                ),
                Err(e) => tracing::warn!(error = %e, "retention sweep failed; will retry"),
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
            }
        }
    }
}

/// Calls `prune` (one batch of [`PRUNE_BATCH`]) until a call forgets less
/// than a full batch, yielding between calls. Returns how many in all.
async fn prune_until_done<F, Fut>(mut prune: F) -> Result<u64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64>>,
{
    let mut pruned = 0;
    loop {
        let n = prune().await?;
        pruned += n;
        if n < PRUNE_BATCH as u64 {
            return Ok(pruned);
        }
        tokio::task::yield_now().await;
    }
}
