//! [`JobQueue`] on SQLite: one row per job in `jobs`, until completed.
//!
//! Every change goes through the writer like any other write, so a claim
//! (find the free jobs, then lease them) runs inside the writer's
//! transaction with no other write between its read and its update: two
//! claims never lease one job, on any number of tasks. Counting a queue is
//! a read.

use async_trait::async_trait;
use bubble_core::jobs::{ClaimOrder, Job, JobQueue, NewJob};
use bubble_core::{Error, Result};
use rusqlite::{Connection, Row, params};

use crate::client::SqliteStore;
use crate::error::map_sqlite;
use crate::rows::{self, bound};
use crate::writer::WriteOp;

/// The columns [`job_of`] decodes, then the two [`ClaimOrder::InOrder`]
/// looks at.
macro_rules! job_columns {
    () => {
        "id, queue, payload, attempts, enqueued_at, due_at, lease_until"
    };
}

/// The free jobs of a queue, oldest first (`jobs_by_queue`: the queue's
/// rows in id order, the ones not free skipped).
pub(crate) const CLAIM_ANY: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE queue = ?1 AND due_at <= ?2 \
     AND (lease_until IS NULL OR lease_until <= ?2) ORDER BY id LIMIT ?3"
);

/// The oldest jobs of a queue, free or not (`jobs_by_queue`): the head
/// [`ClaimOrder::InOrder`] takes a run from.
pub(crate) const CLAIM_HEAD: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE queue = ?1 ORDER BY id LIMIT ?2"
);

const LEASE: &str = "UPDATE jobs SET holder = ?1, lease_until = ?2 WHERE id = ?3";

const INSERT: &str = "INSERT INTO jobs (queue, payload, due_at, enqueued_at) VALUES (?, ?, ?, ?)";

const DELETE: &str = "DELETE FROM jobs WHERE id = ?";

/// The count stops at `u32::MAX` rather than leave `Job::attempts`'s range.
const RETRY: &str = "UPDATE jobs SET due_at = ?2, attempts = MIN(attempts + 1, 4294967295), \
     holder = NULL, lease_until = NULL WHERE id = ?1";

/// How many jobs a queue holds (`jobs_by_queue`, covering).
pub(crate) const DEPTH: &str = "SELECT COUNT(*) FROM jobs WHERE queue = ?";

#[async_trait]
impl JobQueue for SqliteStore {
    async fn enqueue(&self, jobs: &[NewJob], now: i64) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        self.write(Enqueue {
            jobs: jobs.to_vec(),
            now,
        })
        .await
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
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.write(Claim {
            queue: queue.to_owned(),
            holder: holder.to_owned(),
            now,
            lease_ms,
            limit,
            order,
        })
        .await
    }

    async fn complete(&self, ids: &[u64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.write(Complete { ids: ids.to_vec() }).await
    }

    async fn retry(&self, id: u64, due_at: i64) -> Result<bool> {
        self.write(Retry { id, due_at }).await
    }

    async fn depth(&self, queue: &str) -> Result<u64> {
        let queue = queue.to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(DEPTH).map_err(map_sqlite)?;
            let n = rows::first(&mut stmt, params![queue], |row| rows::int(row, 0))?;
            Ok(n.map_or(0, rows::from_stored))
        })
        .await
    }
}

/// A job from [`job_columns`], with its due time and lease.
fn job_of(row: &Row<'_>) -> Result<(Job, i64, Option<i64>)> {
    let id: i64 = rows::get(row, 0)?;
    let attempts: i64 = rows::get(row, 3)?;
    let attempts = u32::try_from(attempts).map_err(|_| {
        Error::internal(format!(
            "stored attempts {attempts} of job {id} is out of range; the database may be from another program or corrupt"
        ))
    })?;
    let job = Job {
        id: rows::from_stored(id),
        queue: rows::text(row, 1)?,
        payload: rows::get(row, 2)?,
        attempts,
        enqueued_at: rows::get(row, 4)?,
    };
    Ok((job, rows::get(row, 5)?, rows::get(row, 6)?))
}

/// A stored id, or `None` for one no row can have (beyond SQLite's
/// integers).
fn stored_id(id: u64) -> Option<i64> {
    i64::try_from(id).ok()
}

/// [`JobQueue::enqueue`]: one row per job, ids given in the order of the
/// rows.
struct Enqueue {
    jobs: Vec<NewJob>,
    now: i64,
}

impl WriteOp for Enqueue {
    type Output = ();

    fn apply(&self, conn: &Connection) -> Result<()> {
        let mut insert = conn.prepare_cached(INSERT).map_err(map_sqlite)?;
        for job in &self.jobs {
            insert
                .execute(params![job.queue, job.payload, job.due_at, self.now])
                .map_err(map_sqlite)?;
        }
        Ok(())
    }
}

/// [`JobQueue::claim`]: the read and the leases in the writer's
/// transaction, so no other claim comes between them.
struct Claim {
    queue: String,
    holder: String,
    now: i64,
    lease_ms: i64,
    limit: usize,
    order: ClaimOrder,
}

impl WriteOp for Claim {
    type Output = Vec<Job>;

    fn apply(&self, conn: &Connection) -> Result<Vec<Job>> {
        let limit = bound(self.limit as u64);
        let now = self.now;
        let taken: Vec<Job> = match self.order {
            ClaimOrder::Any => {
                let mut stmt = conn.prepare_cached(CLAIM_ANY).map_err(map_sqlite)?;
                rows::all(&mut stmt, params![self.queue, now, limit], job_of)?
                    .into_iter()
                    .map(|(job, _, _)| job)
                    .collect()
            }
            ClaimOrder::InOrder => {
                let mut stmt = conn.prepare_cached(CLAIM_HEAD).map_err(map_sqlite)?;
                rows::all(&mut stmt, params![self.queue, limit], job_of)?
                    .into_iter()
                    .take_while(|(_, due_at, lease_until)| {
                        *due_at <= now && lease_until.is_none_or(|until| until <= now)
                    })
                    .map(|(job, _, _)| job)
                    .collect()
            }
        };
        let until = now.saturating_add(self.lease_ms);
        let mut lease = conn.prepare_cached(LEASE).map_err(map_sqlite)?;
        for job in &taken {
            lease
                .execute(params![self.holder, until, rows::stored(job.id)])
                .map_err(map_sqlite)?;
        }
        Ok(taken)
    }
}

/// [`JobQueue::complete`].
struct Complete {
    ids: Vec<u64>,
}

impl WriteOp for Complete {
    type Output = ();

    fn apply(&self, conn: &Connection) -> Result<()> {
        let mut delete = conn.prepare_cached(DELETE).map_err(map_sqlite)?;
        for id in self.ids.iter().filter_map(|id| stored_id(*id)) {
            delete.execute(params![id]).map_err(map_sqlite)?;
        }
        Ok(())
    }
}

/// [`JobQueue::retry`].
struct Retry {
    id: u64,
    due_at: i64,
}

impl WriteOp for Retry {
    type Output = bool;

    fn apply(&self, conn: &Connection) -> Result<bool> {
        let Some(id) = stored_id(self.id) else {
            return Ok(false);
        };
        let changed = conn
            .prepare_cached(RETRY)
            .and_then(|mut s| s.execute(params![id, self.due_at]))
            .map_err(map_sqlite)?;
        Ok(changed > 0)
    }
}
