//! The single writer: owns the one connection that writes, applies every
//! waiting write in one transaction (group commit), and answers each caller
//! only after COMMIT returned.
//!
//! It runs on a thread of its own and drives SQLite directly (rusqlite,
//! prepared statements cached), so a batch is one uninterrupted run of
//! statements: no hop to another thread and back per statement, and no
//! wait for a busy async worker to send the next one.
//!
//! SQLite lets one connection write at a time, and with `synchronous=FULL`
//! every COMMIT waits for an fsync (about 1.7 ms on the disk this was built
//! on). One transaction per message would cap the store at the disk's fsync
//! rate; here, while one batch commits, new writes queue up, and the next
//! transaction takes all of them (up to `max_batch`). Under load the cost
//! of an fsync is shared by a whole batch; with one caller there is no
//! waiting at all, since the writer never sleeps to collect a batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bubble_core::ports::AppendOutcome;
use bubble_core::{Error, ErrorKind, Result};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::append::{self, AppendRequest};
use crate::error::{copy_for_caller, map_sqlite};
use crate::names::Names;

/// Where an answer goes.
pub(crate) type Reply<T> = oneshot::Sender<Result<T>>;

/// Any other write: a unit applied inside the batch's transaction under
/// its own savepoint, so a refused one (a missing group, an existing id)
/// leaves no trace and does not disturb its neighbours.
pub(crate) trait WriteOp: Send + Sync + 'static {
    /// What the caller gets back.
    type Output: Send + 'static;
    /// Applies the write on the writer's connection, inside a transaction.
    fn apply(&self, conn: &Connection) -> Result<Self::Output>;
}

/// What the writer receives.
pub(crate) enum Request {
    Append(AppendRequest),
    Op(Box<dyn Job>),
    /// Finish what is queued, close the connection, then say so.
    Stop(oneshot::Sender<()>),
}

/// How a [`Job`] went.
pub(crate) enum Applied {
    /// Its changes stay.
    Done,
    /// It refused (its answer is an error about the input or the stored
    /// state): its changes are rolled back to its savepoint.
    Refused,
}

/// A type-erased [`WriteOp`] with its reply.
pub(crate) trait Job: Send {
    /// Runs the op, keeping its answer. `Err` means the batch cannot go on
    /// (an I/O error, a full disk...), not that the op refused.
    fn run(&mut self, conn: &Connection) -> Result<Applied>;
    /// Sends the kept answer, or `failed` if the batch did not commit.
    fn answer(self: Box<Self>, failed: Option<&Error>);
}

struct Task<O: WriteOp> {
    op: O,
    answer: Option<Result<O::Output>>,
    reply: Reply<O::Output>,
}

/// Errors that are an answer about the request, not a failure of the store.
fn is_refusal(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::InvalidInput
            | ErrorKind::NotFound
            | ErrorKind::AlreadyExists
            | ErrorKind::PermissionDenied
            | ErrorKind::Conflict
            | ErrorKind::TooLarge
    )
}

impl<O: WriteOp> Job for Task<O> {
    fn run(&mut self, conn: &Connection) -> Result<Applied> {
        match self.op.apply(conn) {
            Ok(v) => {
                self.answer = Some(Ok(v));
                Ok(Applied::Done)
            }
            Err(e) if is_refusal(e.kind()) => {
                self.answer = Some(Err(e));
                Ok(Applied::Refused)
            }
            Err(e) => Err(e),
        }
    }

    fn answer(self: Box<Self>, failed: Option<&Error>) {
        let answer = match (failed, self.answer) {
            (None, Some(a)) => a,
            (Some(e), _) => Err(copy_for_caller(e)),
            (None, None) => Err(Error::internal("a write was answered before it ran")),
        };
        // The caller may have given up waiting; nothing to do then.
        let _ = self.reply.send(answer);
    }
}

/// Wraps an op for the queue; the answer arrives on the receiver.
pub(crate) fn job<O: WriteOp>(op: O) -> (Request, oneshot::Receiver<Result<O::Output>>) {
    let (reply, rx) = oneshot::channel();
    let task = Task {
        op,
        answer: None,
        reply,
    };
    (Request::Op(Box::new(task)), rx)
}

/// Counters of the writer's work, shared with the store for tests and metrics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub commits: AtomicU64,
    pub writes: AtomicU64,
    pub failed_batches: AtomicU64,
}

/// The writer thread's state.
pub(crate) struct Writer {
    pub conn: Connection,
    pub rx: mpsc::Receiver<Request>,
    pub max_batch: usize,
    pub counters: Arc<Counters>,
    /// The numbers of the names the append has met ([`Names`]).
    pub names: Names,
}

impl Writer {
    /// Serves batches until every sender is gone, then closes the connection
    /// (SQLite checkpoints the WAL into the main file on the last close).
    /// Blocks: runs on the writer's own thread.
    pub fn run(mut self) {
        let mut batch = Vec::with_capacity(self.max_batch);
        let mut stopped = None;
        while let Some(first) = self.rx.blocking_recv() {
            let mut next = Some(first);
            while let Some(req) = next {
                match req {
                    Request::Stop(done) => {
                        // Whatever is queued still gets served; nothing new is taken.
                        self.rx.close();
                        stopped = Some(done);
                    }
                    other => batch.push(other),
                }
                next = if batch.len() < self.max_batch {
                    self.rx.try_recv().ok()
                } else {
                    None
                };
            }
            if !batch.is_empty() {
                self.serve(std::mem::take(&mut batch));
            }
        }
        if let Err((_, e)) = self.conn.close() {
            tracing::warn!(error = %e, "closing the SQLite writer connection failed");
        }
        if let Some(done) = stopped {
            let _ = done.send(());
        }
    }

    fn serve(&mut self, batch: Vec<Request>) {
        let mut appends = Vec::new();
        let mut jobs = Vec::new();
        for r in batch {
            match r {
                Request::Append(a) => appends.push(a),
                Request::Op(j) => jobs.push(j),
                // run() keeps stops out of batches; answering one is harmless.
                Request::Stop(done) => {
                    let _ = done.send(());
                }
            }
        }
        let n = appends.len() + jobs.len();
        match self.transact(&appends, &mut jobs) {
            Ok(outcomes) => {
                self.counters.commits.fetch_add(1, Ordering::Relaxed);
                self.counters.writes.fetch_add(n as u64, Ordering::Relaxed);
                for (a, outcome) in appends.into_iter().zip(outcomes) {
                    let _ = a.reply.send(Ok(outcome));
                }
                for j in jobs {
                    j.answer(None);
                }
            }
            Err(e) if n > 1 && !e.is_retryable() => {
                // Something in the batch is bad for reasons of its own (not a
                // busy or full disk, which would fail every write alike): try
                // each write alone so only the culprit fails.
                self.counters.failed_batches.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, writes = n, "a SQLite batch failed; retrying its writes one by one");
                for a in appends {
                    self.serve_alone(vec![a], &mut Vec::new());
                }
                for j in jobs {
                    self.serve_alone(Vec::new(), &mut vec![j]);
                }
            }
            Err(e) => {
                self.counters.failed_batches.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, writes = n, "a SQLite batch failed");
                for a in appends {
                    let _ = a.reply.send(Err(copy_for_caller(&e)));
                }
                for j in jobs {
                    j.answer(Some(&e));
                }
            }
        }
    }

    /// One write in its own transaction (after its batch failed).
    fn serve_alone(&mut self, appends: Vec<AppendRequest>, jobs: &mut Vec<Box<dyn Job>>) {
        match self.transact(&appends, jobs) {
            Ok(outcomes) => {
                self.counters.commits.fetch_add(1, Ordering::Relaxed);
                self.counters.writes.fetch_add(1, Ordering::Relaxed);
                for (a, outcome) in appends.into_iter().zip(outcomes) {
                    let _ = a.reply.send(Ok(outcome));
                }
                for j in jobs.drain(..) {
                    j.answer(None);
                }
            }
            Err(e) => {
                for a in appends {
                    let _ = a.reply.send(Err(copy_for_caller(&e)));
                }
                for j in jobs.drain(..) {
                    j.answer(Some(&e));
                }
            }
        }
    }

    /// Applies a batch in one transaction; `Ok` only once COMMIT returned,
    /// which with `synchronous=FULL` means the WAL is fsynced.
    fn transact(
        &mut self,
        appends: &[AppendRequest],
        jobs: &mut [Box<dyn Job>],
    ) -> Result<Vec<AppendOutcome>> {
        // IMMEDIATE takes the write lock now, so a second process on the
        // same file waits (busy_timeout) here rather than failing mid-batch.
        exec(&self.conn, "BEGIN IMMEDIATE")?;
        let (conn, names) = (&self.conn, &mut self.names);
        let result = (|| {
            let outcomes = append::write_batch(conn, names, appends)?;
            for job in jobs.iter_mut() {
                exec(conn, "SAVEPOINT op")?;
                if let Applied::Refused = job.run(conn)? {
                    exec(conn, "ROLLBACK TO op")?;
                }
                exec(conn, "RELEASE op")?;
            }
            exec(conn, "COMMIT")?;
            Ok(outcomes)
        })();
        if result.is_err() {
            if !self.conn.is_autocommit() {
                // SQLite may have rolled back already (a full disk does); then
                // the connection is back in autocommit and there is nothing to undo.
                let _ = exec(&self.conn, "ROLLBACK");
            }
            self.names.rolled_back();
        } else {
            self.names.committed();
        }
        result
    }
}

/// Runs one of a transaction's own statements (BEGIN, SAVEPOINT, COMMIT).
fn exec(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map_err(map_sqlite)?;
    Ok(())
}
