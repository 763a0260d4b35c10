//! Housekeeping that keeps the stores' tables bounded: dedup keys older
//! than the dedup window are forgotten, a batch at a time.

use std::time::Duration;

use super::Engine;
use crate::error::Result;
use crate::types::now_millis;

/// Keys deleted per store call: small enough that a writer waiting behind
/// one call waits for a few milliseconds, not for the whole backlog.
const PRUNE_BATCH: usize = 1_000;

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

    /// Runs [`Engine::prune_dedup`] every minute until `shutdown` resolves.
    /// In a cluster every node runs it: the deletes are idempotent, and a
    /// batch another node took is simply not found.
    pub async fn run_maintenance(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            match self.prune_dedup().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(pruned = n, "forgot dedup keys past the dedup window"),
                Err(e) => tracing::warn!(error = %e, "pruning dedup keys failed; will retry"),
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
