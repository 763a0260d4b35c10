//! `JobQueue`: the durable work queue every node of a cluster shares, one
//! row per job in `jobs` until it is completed.
//!
//! A claim is one transaction: lock the rows it may take (`SELECT … FOR
//! UPDATE`), then lease them (`UPDATE`). [`ClaimOrder::Any`] skips rows
//! another claim has locked (SKIP LOCKED), so claimers on many nodes take
//! different jobs without waiting for each other; [`ClaimOrder::InOrder`]
//! locks the queue's head and waits for it, so the second of two claimers
//! finds the head leased and takes nothing. A deadlock rolls the whole
//! claim back and it runs again, as every write of this store does.

use async_trait::async_trait;

use bubble_core::Result;
use bubble_core::jobs::{ClaimOrder, Job, JobQueue, NewJob};

use crate::client::MysqlStore;
use crate::error::{commit_err, map_err};
use crate::queries;
use crate::rows::{self, dynamic};

/// Ids per `IN (…)` list (leases, completions).
const ID_CHUNK: usize = 1000;

/// Rows per multi-row insert, and the payload bytes one may carry: well
/// under the server's `max_allowed_packet` (16 MiB by default).
const INSERT_ROWS: usize = 500;
const INSERT_BYTES: usize = 4 << 20;

/// A job from the columns of the claim queries, with its due time and
/// lease.
pub(crate) fn job_from(row: &impl rows::Columns) -> Result<(Job, i64, Option<i64>)> {
    let job = Job {
        id: rows::get(row, "id")?,
        queue: rows::text(row, "queue")?,
        payload: rows::get(row, "payload")?,
        attempts: rows::get(row, "attempts")?,
        enqueued_at: rows::get(row, "enqueued_at")?,
    };
    Ok((
        job,
        rows::get(row, "due_at")?,
        rows::get(row, "lease_until")?,
    ))
}

/// Whether a job due at `due_at` and leased until `lease_until` may be
/// taken at `now`.
fn free_at(due_at: i64, lease_until: Option<i64>, now: i64) -> bool {
    due_at <= now && lease_until.is_none_or(|until| until <= now)
}

/// `jobs` cut into the multi-row inserts that carry them, in order.
fn insert_chunks(jobs: &[NewJob]) -> Vec<&[NewJob]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, job) in jobs.iter().enumerate() {
        let size = job.payload.len() + job.queue.len();
        if i > start && (i - start == INSERT_ROWS || bytes + size > INSERT_BYTES) {
            chunks.push(&jobs[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < jobs.len() {
        chunks.push(&jobs[start..]);
    }
    chunks
}

#[async_trait]
impl JobQueue for MysqlStore {
    async fn enqueue(&self, jobs: &[NewJob], now: i64) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let chunks = insert_chunks(jobs);
        let chunks = &chunks;
        // One transaction: all the jobs or none, and their ids in the
        // order given (each insert's rows in order, one insert after another).
        self.write(|pool| async move {
            let mut tx = pool.begin().await.map_err(map_err)?;
            for chunk in chunks {
                let sql = format!(
                    "INSERT INTO jobs (queue, payload, due_at, enqueued_at) VALUES {}",
                    rows::values(chunk.len(), 4)
                );
                let mut q = sqlx::query(dynamic(sql));
                for job in chunk.iter() {
                    q = q
                        .bind(job.queue.as_bytes())
                        .bind(&job.payload[..])
                        .bind(job.due_at)
                        .bind(now);
                }
                q.execute(&mut *tx).await.map_err(map_err)?;
            }
            tx.commit().await.map_err(commit_err)
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
        let limit = u64::try_from(limit).unwrap_or(u64::MAX);
        let until = now.saturating_add(lease_ms);
        self.write(|pool| async move {
            let mut tx = pool.begin().await.map_err(map_err)?;
            let found = match order {
                ClaimOrder::Any => sqlx::query(queries::CLAIM_ANY)
                    .bind(queue.as_bytes())
                    .bind(now)
                    .bind(now)
                    .bind(limit),
                ClaimOrder::InOrder => sqlx::query(queries::CLAIM_HEAD)
                    .bind(queue.as_bytes())
                    .bind(limit),
            }
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
            let mut taken = Vec::with_capacity(found.len());
            for row in &found {
                let (job, due_at, lease_until) = job_from(row)?;
                if !free_at(due_at, lease_until, now) {
                    // Any asked for free rows only; InOrder's run ends here.
                    break;
                }
                taken.push(job);
            }
            for chunk in taken.chunks(ID_CHUNK) {
                let sql = format!(
                    "UPDATE jobs SET holder = ?, lease_until = ? WHERE id IN {}",
                    rows::row_placeholders(chunk.len())
                );
                let mut q = sqlx::query(dynamic(sql))
                    .bind(holder.as_bytes())
                    .bind(until);
                for job in chunk {
                    q = q.bind(job.id);
                }
                q.execute(&mut *tx).await.map_err(map_err)?;
            }
            tx.commit().await.map_err(commit_err)?;
            Ok(taken)
        })
        .await
    }

    async fn complete(&self, ids: &[u64]) -> Result<()> {
        self.delete_ids("jobs", ids).await
    }

    async fn retry(&self, id: u64, due_at: i64) -> Result<bool> {
        let changed = self
            .write(|pool| async move {
                // The count stops at the column's maximum rather than fail.
                sqlx::query(
                    "UPDATE jobs SET due_at = ?, attempts = LEAST(attempts + 1, 4294967295), \
                     holder = NULL, lease_until = NULL WHERE id = ?",
                )
                .bind(due_at)
                .bind(id)
                .execute(&pool)
                .await
                .map_err(map_err)
            })
            .await?;
        Ok(changed.rows_affected() > 0)
    }

    async fn depth(&self, queue: &str) -> Result<u64> {
        let n: i64 = self
            .read(|pool| async move {
                sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE queue = ?")
                    .bind(queue.as_bytes())
                    .fetch_one(&pool)
                    .await
                    .map_err(map_err)
            })
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(payload: usize) -> NewJob {
        NewJob {
            queue: String::new(),
            payload: vec![0; payload],
            due_at: 0,
        }
    }

    #[test]
    fn inserts_are_cut_by_rows_and_by_bytes_keeping_the_order() {
        let many: Vec<NewJob> = (0..1200).map(|_| job(1)).collect();
        let lens: Vec<usize> = insert_chunks(&many).iter().map(|c| c.len()).collect();
        assert_eq!(lens, [500, 500, 200]);
        let big: Vec<NewJob> = (0..5).map(|_| job(3 << 20)).collect();
        let lens: Vec<usize> = insert_chunks(&big).iter().map(|c| c.len()).collect();
        assert_eq!(lens, [1, 1, 1, 1, 1], "one large payload per insert");
        let huge = [job(20 << 20)];
        assert_eq!(
            insert_chunks(&huge).len(),
            1,
            "a payload alone is never cut"
        );
        assert!(insert_chunks(&[]).is_empty());
    }
}
