//! A durable work queue: what must still happen after an ack even if this
//! node dies before doing it (a push notification to send, an after-send
//! hook to call). Any node may work a queue; a lease keeps two from doing
//! the same job at once, and a job whose holder died is taken again once
//! its lease runs out, so every job is done at least once.

use async_trait::async_trait;

use crate::error::Result;

/// A job to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// Which queue (`"notify/<app>"`, `"after_send/<app>"`...).
    pub queue: String,
    /// What to do, in the worker's own encoding.
    pub payload: Vec<u8>,
    /// Not before this time (ms).
    pub due_at: i64,
}

/// A job taken from a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Grows in the order jobs were added.
    pub id: u64,
    /// Its queue.
    pub queue: String,
    /// What to do.
    pub payload: Vec<u8>,
    /// How many times it was put back with [`JobQueue::retry`].
    pub attempts: u32,
    /// When it was added (ms).
    pub enqueued_at: i64,
}

/// How [`JobQueue::claim`] takes jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOrder {
    /// Any due job nobody holds, oldest first: one failing job does not
    /// hold up the others (push notifications).
    Any,
    /// Strictly in id order, one holder at a time: nothing is taken while
    /// the queue's oldest job is held by anyone or not yet due, and only a
    /// run of due jobs from the oldest on (after-send hooks, which promise
    /// order).
    InOrder,
}

/// A durable queue of jobs, shared by every node of a deployment.
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Adds `jobs`, durable before this returns, with ids growing in the
    /// order given; `now` (ms) is their enqueue time.
    async fn enqueue(&self, jobs: &[NewJob], now: i64) -> Result<()>;

    /// Leases at most `limit` jobs of `queue` that are due at `now` (ms)
    /// and not held under an unexpired lease, to `holder` for `lease_ms`,
    /// oldest first, taken as `order` says. A job leased and neither
    /// completed nor retried is offered again when its lease runs out.
    async fn claim(
        &self,
        queue: &str,
        holder: &str,
        now: i64,
        lease_ms: i64,
        limit: usize,
        order: ClaimOrder,
    ) -> Result<Vec<Job>>;

    /// Removes jobs that are done. Unknown ids are ignored.
    async fn complete(&self, ids: &[u64]) -> Result<()>;

    /// Puts a job back, due again at `due_at` (ms), with one more attempt
    /// counted and its lease released. Whether the job was there.
    async fn retry(&self, id: u64, due_at: i64) -> Result<bool>;

    /// How many jobs `queue` holds, leased or not (a gauge).
    async fn depth(&self, queue: &str) -> Result<u64>;
}
