//! Group commit for appends: deliveries that arrive together share one transaction.
//!
//! Callers queue their delivery and wait for its answer; `batch_writers`
//! tasks each take whatever is queued (up to `batch_max`) and write it in one
//! transaction (see `append`). Under light load a batch holds one
//! delivery and nothing changes; under load, one commit (one log flush) and
//! one lock of each owner's counter serve many deliveries, which is what lets
//! a user who receives from many senders at once keep up. A batch that fails
//! for any reason but a deadlock is written again one delivery at a time, so
//! one bad delivery fails alone.

use std::sync::Arc;

use sqlx::mysql::MySqlPool;
use tokio::sync::{Mutex, mpsc, oneshot};

use bubble_core::ports::{AppendOutcome, Delivery};
use bubble_core::{AppId, Error, ErrorKind, Result};

use crate::append::{Job, MessageIds, write_batch};
use crate::retry::retry_deadlocks;

struct Queued {
    app: AppId,
    delivery: Delivery,
    reply: oneshot::Sender<Result<AppendOutcome>>,
}

/// The queue in front of the batch writers. Dropping it (with the last store
/// clone) ends the writers once the queue is empty.
pub(crate) struct Batcher {
    queue: mpsc::Sender<Queued>,
}

impl Batcher {
    /// Starts `writers` tasks on the current runtime.
    pub(crate) fn start(
        pool: MySqlPool,
        ids: MessageIds,
        batch_max: usize,
        writers: usize,
        deadlock_retries: u32,
    ) -> Batcher {
        let (queue, rx) = mpsc::channel(batch_max * writers * 2);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..writers {
            tokio::spawn(writer(
                pool.clone(),
                ids,
                rx.clone(),
                batch_max,
                deadlock_retries,
            ));
        }
        Batcher { queue }
    }

    /// Queues a delivery and waits for its outcome.
    pub(crate) async fn append(&self, app: &AppId, delivery: &Delivery) -> Result<AppendOutcome> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Queued {
                app: app.clone(),
                delivery: delivery.clone(),
                reply,
            })
            .await
            .map_err(|_| Error::unavailable("mysql: the batch writers have stopped"))?;
        answer.await.map_err(|_| {
            Error::internal("mysql: a batch writer stopped before answering; the append may or may not have been written")
        })?
    }
}

async fn writer(
    pool: MySqlPool,
    ids: MessageIds,
    rx: Arc<Mutex<mpsc::Receiver<Queued>>>,
    batch_max: usize,
    deadlock_retries: u32,
) {
    let mut batch: Vec<Queued> = Vec::with_capacity(batch_max);
    loop {
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(first) => batch.push(first),
                None => return,
            }
            while batch.len() < batch_max {
                match rx.try_recv() {
                    Ok(more) => batch.push(more),
                    Err(_) => break,
                }
            }
        }
        // Callers that gave up no longer need an answer, nor a write.
        batch.retain(|q| !q.reply.is_closed());
        if !batch.is_empty() {
            write(&pool, ids, &mut batch, deadlock_retries).await;
        }
        batch.clear();
    }
}

async fn write(pool: &MySqlPool, ids: MessageIds, batch: &mut Vec<Queued>, deadlock_retries: u32) {
    let jobs: Vec<Job<'_>> = batch
        .iter()
        .map(|q| Job {
            app: &q.app,
            delivery: &q.delivery,
        })
        .collect();
    let result = retry_deadlocks(deadlock_retries, || write_batch(pool, ids, &jobs)).await;
    match result {
        Ok(outcomes) => {
            drop(jobs);
            for (q, outcome) in batch.drain(..).zip(outcomes) {
                let _ = q.reply.send(Ok(outcome));
            }
        }
        Err(e) if jobs.len() == 1 => {
            drop(jobs);
            if let Some(q) = batch.pop() {
                let _ = q.reply.send(Err(e));
            }
        }
        Err(e) if matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout) => {
            // The database is out of reach, not one delivery at fault:
            // writing them one by one would only make every caller wait
            // out one more connect attempt per delivery ahead of it.
            drop(jobs);
            for q in batch.drain(..) {
                let _ = q.reply.send(Err(Error::new(e.kind(), e.message())));
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, size = jobs.len(), "mysql: batch failed; writing its deliveries one by one");
            let mut answers = Vec::with_capacity(jobs.len());
            for job in &jobs {
                let one = [*job];
                answers.push(
                    retry_deadlocks(deadlock_retries, || write_batch(pool, ids, &one))
                        .await
                        .map(|mut o| o.pop().expect("one outcome per job")),
                );
            }
            drop(jobs);
            for (q, answer) in batch.drain(..).zip(answers) {
                let _ = q.reply.send(answer);
            }
        }
    }
}
