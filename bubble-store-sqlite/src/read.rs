//! The read connections: pull, unread, members, ranges... run next to the
//! writer (WAL gives each read its own snapshot), on tokio's blocking pool.
//!
//! A read is one call on a connection of its own, every row decoded there:
//! one hop to a blocking thread and back per read, not per row.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bubble_core::{Error, Result};
use rusqlite::Connection;
use tokio::sync::Semaphore;

use crate::connection;

/// At most `size` connections, opened as reads need them and kept.
pub(crate) struct Readers {
    path: PathBuf,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl Readers {
    /// Opens one connection now, so a file that cannot be read fails the
    /// store's opening rather than its first read.
    pub fn open(path: PathBuf, size: usize, busy_timeout: Duration) -> Result<Readers> {
        let readers = Readers {
            path,
            busy_timeout,
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Semaphore::new(size),
        };
        let first = readers.connect()?;
        readers.idle().push(first);
        Ok(readers)
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // A panic inside a read never holds this lock; recover if one did.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn connect(&self) -> Result<Connection> {
        connection::open_reader(&self.path, self.busy_timeout)
    }

    /// Runs `read` on a free connection, on a blocking thread.
    pub async fn run<T, F>(self: &Arc<Self>, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let permit = tokio::time::timeout(self.busy_timeout, self.permits.acquire())
            .await
            .map_err(|_| {
                Error::unavailable(
                    "no SQLite read connection became free in time; the store is overloaded, retry later",
                )
            })?
            .map_err(|_| Error::unavailable("the SQLite store is shut down"))?;
        let readers = self.clone();
        let done = tokio::task::spawn_blocking(move || {
            let conn = match readers.idle().pop() {
                Some(conn) => conn,
                None => readers.connect()?,
            };
            readers.read_on(conn, read)
        })
        .await;
        drop(permit);
        match done {
            Ok(answer) => answer,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(Error::unavailable("the SQLite store is shut down")),
        }
    }

    /// Runs `read`, a lookup of one row by its key, here on the caller's
    /// thread when a connection is idle, else as [`Readers::run`] does. A
    /// hop to a blocking thread and back costs more than such a read (a
    /// page-cache hit, microseconds): the block check of every 1:1 send
    /// spent a fifth of the server's CPU on the hop (docs/benchmarks.md).
    /// Only for reads of a few rows by key: a scan stays off the runtime.
    pub async fn run_point<T, F>(self: &Arc<Self>, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let Ok(permit) = self.permits.try_acquire() else {
            return self.run(read).await;
        };
        let Some(conn) = self.idle().pop() else {
            drop(permit);
            return self.run(read).await;
        };
        let answer = self.read_on(conn, read);
        drop(permit);
        answer
    }

    /// Runs `read` on `conn`, then keeps `conn` for the next read (unless
    /// the store is closing).
    fn read_on<T>(
        &self,
        conn: Connection,
        read: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        let answer = read(&conn);
        if !self.permits.is_closed() {
            self.idle().push(conn);
        }
        answer
    }

    /// Refuses new reads and closes the idle connections (reads under way
    /// finish, and their connections close after them).
    pub fn close(&self) {
        self.permits.close();
        self.idle().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readers(size: usize) -> (tempfile::TempDir, Arc<Readers>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("read.db");
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (k INTEGER PRIMARY KEY);")
            .unwrap();
        let readers = Readers::open(path, size, Duration::from_secs(5)).unwrap();
        (dir, Arc::new(readers))
    }

    fn count(conn: &Connection) -> Result<i64> {
        conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .map_err(|e| Error::internal(e.to_string()))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_point_read_runs_on_the_callers_thread_when_a_connection_is_idle() {
        let (_dir, readers) = readers(2);
        let caller = std::thread::current().id();
        let ran_on = readers
            .run_point(move |conn| {
                count(conn)?;
                Ok(std::thread::current().id())
            })
            .await
            .unwrap();
        assert_eq!(ran_on, caller);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_point_read_waits_for_a_connection_when_every_one_is_busy() {
        let (_dir, readers) = readers(1);
        let (started_tx, started) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let busy = readers.clone();
        let long = tokio::spawn(async move {
            busy.run(move |conn| {
                started_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                count(conn)
            })
            .await
        });
        tokio::task::spawn_blocking(move || started.recv().unwrap())
            .await
            .unwrap();
        let point = tokio::spawn({
            let readers = readers.clone();
            async move { readers.run_point(count).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!point.is_finished(), "the only connection is busy");
        release.send(()).unwrap();
        assert_eq!(long.await.unwrap().unwrap(), 0);
        assert_eq!(point.await.unwrap().unwrap(), 0);
    }
}
