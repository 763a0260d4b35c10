use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::error::Result;
use crate::jobs::{ClaimOrder, Job, JobQueue, NewJob};

/// A job as kept: what [`Job`] shows, and when it is due and leased until.
struct Stored {
    job: Job,
    due_at: i64,
    /// Held until then (ms); `None` when nobody holds it.
    leased_until: Option<i64>,
}

impl Stored {
    /// Whether `claim` may take it at `now`.
    fn free_at(&self, now: i64) -> bool {
        self.due_at <= now && self.leased_until.is_none_or(|until| until <= now)
    }
}

#[derive(Default)]
struct State {
    /// The last id given (ids start at 1).
    last_id: u64,
    jobs: HashMap<u64, Stored>,
    /// Each queue's ids, oldest first: what `claim` walks.
    queues: HashMap<String, BTreeSet<u64>>,
}

/// [`JobQueue`] in memory: durable only as long as the process, so for one
/// node and tests.
#[derive(Default)]
pub struct MemoryJobs {
    state: Mutex<State>,
}

impl MemoryJobs {
    /// No jobs.
    pub fn new() -> MemoryJobs {
        MemoryJobs::default()
    }
}

#[async_trait]
impl JobQueue for MemoryJobs {
    async fn enqueue(&self, jobs: &[NewJob], now: i64) -> Result<()> {
        let mut state = self.state.lock();
        for new in jobs {
            state.last_id += 1;
            let id = state.last_id;
            state.jobs.insert(
                id,
                Stored {
                    job: Job {
                        id,
                        queue: new.queue.clone(),
                        payload: new.payload.clone(),
                        attempts: 0,
                        enqueued_at: now,
                    },
                    due_at: new.due_at,
                    leased_until: None,
                },
            );
            state
                .queues
                .entry(new.queue.clone())
                .or_default()
                .insert(id);
        }
        Ok(())
    }

    async fn claim(
        &self,
        queue: &str,
        holder: &str,
        now: i64,
        lease_ms: i64,
        limit: usize,
        order: ClaimOrder,
    ) -> Result<Vec<Job>> {
        // The holder matters to a store an operator looks into; here the
        // lease alone decides who may take a job.
        let _ = holder;
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let Some(ids) = state.queues.get(queue) else {
            return Ok(Vec::new());
        };
        let free = |id: &u64| state.jobs.get(id).is_some_and(|j| j.free_at(now));
        let taken: Vec<u64> = match order {
            ClaimOrder::Any => ids.iter().copied().filter(free).take(limit).collect(),
            ClaimOrder::InOrder => ids.iter().copied().take_while(free).take(limit).collect(),
        };
        let until = now.saturating_add(lease_ms);
        Ok(taken
            .into_iter()
            .filter_map(|id| {
                let stored = state.jobs.get_mut(&id)?;
                stored.leased_until = Some(until);
                Some(stored.job.clone())
            })
            .collect())
    }

    async fn complete(&self, ids: &[u64]) -> Result<()> {
        let mut state = self.state.lock();
        for id in ids {
            if let Some(done) = state.jobs.remove(id) {
                let queue = &done.job.queue;
                if let Some(ids) = state.queues.get_mut(queue) {
                    ids.remove(id);
                    if ids.is_empty() {
                        state.queues.remove(queue);
                    }
                }
            }
        }
        Ok(())
    }

    async fn retry(&self, id: u64, due_at: i64) -> Result<bool> {
        let mut state = self.state.lock();
        let Some(stored) = state.jobs.get_mut(&id) else {
            return Ok(false);
        };
        stored.due_at = due_at;
        stored.job.attempts = stored.job.attempts.saturating_add(1);
        stored.leased_until = None;
        Ok(true)
    }

    async fn depth(&self, queue: &str) -> Result<u64> {
        let state = self.state.lock();
        Ok(state.queues.get(queue).map_or(0, |ids| ids.len() as u64))
    }
}
