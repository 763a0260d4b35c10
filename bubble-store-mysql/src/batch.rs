//! Group commit for appends: deliveries that arrive together share one transaction.
//!
//! Callers queue their delivery and wait for its answer; `batch_writers`
//! tasks each take whatever is queued for them (up to `batch_max`) and write
//! it in one transaction (see `append`). Under light load a batch holds one
//! delivery and nothing changes; under load, one commit (one log flush) and
//! one lock of each owner's counter serve many deliveries, which is what lets
//! a user who receives from many senders at once keep up. A batch that fails
//! for any reason but a deadlock is written again one delivery at a time, so
//! one bad delivery fails alone.
//!
//! Each writer has its own queue, and a delivery goes to the writer of its
//! conversation ([`shard`]). Two batches that share an owner cannot run at
//! once (the second waits for the first's counter locks), so with one shared
//! queue every writer's batch held some of every busy group's deliveries and
//! the writers ran one after another, each with a small batch; sent by
//! conversation, a busy group's deliveries wait in one queue and go together
//! in one large batch while other writers write other conversations.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use bubble_core::ports::{AppendOutcome, Delivery};
use bubble_core::{AppId, Error, ErrorKind, Result};

use crate::append::{Job, MessageIds, replay, write_batch};
use crate::galera::Galera;
use crate::nodes::Nodes;
use crate::retry;

struct Queued {
    app: AppId,
    delivery: Delivery,
    reply: oneshot::Sender<Result<AppendOutcome>>,
}

/// The queues in front of the batch writers, one each. Dropping them (with
/// the last store clone) ends the writers once their queues are empty.
pub(crate) struct Batcher {
    queues: Vec<mpsc::Sender<Queued>>,
    /// Hashes conversations to queues (fixed keys: the same conversation
    /// always goes to the same writer).
    hasher: std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>,
}

/// The key that decides a delivery's writer: its app and its conversation,
/// the same from both sides of a 1:1 chat (the two parties, ordered).
fn shard(hasher: &impl BuildHasher, app: &AppId, d: &Delivery) -> u64 {
    let mut h = hasher.build_hasher();
    app.as_str().hash(&mut h);
    if let Some(e) = d.entries.first() {
        let conv = e.conversation.id();
        match e.conversation.kind {
            bubble_core::ConversationKind::Direct => {
                let (a, b) = (e.owner.as_str(), conv);
                let pair = if a <= b { (a, b) } else { (b, a) };
                pair.hash(&mut h);
            }
            kind => {
                (kind as u8).hash(&mut h);
                conv.hash(&mut h);
            }
        }
    }
    h.finish()
}

impl Batcher {
    /// Starts `writers` tasks on the current runtime.
    pub(crate) fn start(
        nodes: Arc<Nodes>,
        ids: MessageIds,
        galera: Galera,
        batch_max: usize,
        writers: usize,
        deadlock_retries: u32,
    ) -> Batcher {
        let mut queues = Vec::with_capacity(writers);
        for _ in 0..writers {
            let (queue, rx) = mpsc::channel(batch_max * 2);
            queues.push(queue);
            tokio::spawn(writer(
                nodes.clone(),
                ids,
                galera,
                rx,
                batch_max,
                deadlock_retries,
            ));
        }
        Batcher {
            queues,
            hasher: Default::default(),
        }
    }

    /// Queues a delivery and waits for its outcome.
    pub(crate) async fn append(&self, app: &AppId, delivery: &Delivery) -> Result<AppendOutcome> {
        let (reply, answer) = oneshot::channel();
        let n = self.queues.len() as u64;
        self.queues[(shard(&self.hasher, app, delivery) % n) as usize]
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
    nodes: Arc<Nodes>,
    ids: MessageIds,
    galera: Galera,
    mut rx: mpsc::Receiver<Queued>,
    batch_max: usize,
    deadlock_retries: u32,
) {
    let mut batch: Vec<Queued> = Vec::with_capacity(batch_max);
    loop {
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
        // Callers that gave up no longer need an answer, nor a write.
        batch.retain(|q| !q.reply.is_closed());
        if !batch.is_empty() {
            write(&nodes, ids, galera, &mut batch, deadlock_retries).await;
        }
        batch.clear();
    }
}

async fn write(
    nodes: &Nodes,
    ids: MessageIds,
    galera: Galera,
    batch: &mut Vec<Queued>,
    deadlock_retries: u32,
) {
    let jobs: Vec<Job<'_>> = batch
        .iter()
        .map(|q| Job {
            app: &q.app,
            delivery: &q.delivery,
        })
        .collect();
    let result = retry::run(nodes, deadlock_retries, replay(&jobs), |pool| {
        let jobs = &jobs;
        async move { write_batch(&pool, ids, galera, jobs).await }
    })
    .await;
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
                    retry::run(nodes, deadlock_retries, replay(&one), |pool| {
                        let one = &one;
                        async move { write_batch(&pool, ids, galera, one).await }
                    })
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
