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
            let answer = read(&conn);
            if !readers.permits.is_closed() {
                readers.idle().push(conn);
            }
            answer
        })
        .await;
        drop(permit);
        match done {
            Ok(answer) => answer,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(Error::unavailable("the SQLite store is shut down")),
        }
    }

    /// Refuses new reads and closes the idle connections (reads under way
    /// finish, and their connections close after them).
    pub fn close(&self) {
        self.permits.close();
        self.idle().clear();
    }
}
