//! [`SqliteStore`]: the handles every port uses (the writer thread's queue,
//! the read connections, the checkpointer), opened by
//! [`SqliteConfig::connect`](bubble_core::AdapterConfig::connect).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use bubble_core::ports::{AppendOutcome, Delivery};
use bubble_core::{AdapterConfig, AppId, Error, InvalidConfig, Result};
use rusqlite::Connection;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::append::AppendRequest;
use crate::config::SqliteConfig;
use crate::error::{cannot_create_dir, cannot_start_writer, map_sqlite, migrate_err, writer_gone};
use crate::names::Names;
use crate::read::Readers;
use crate::writer::{self, Counters, Request, WriteOp, Writer};
use crate::{checkpoint, connection, schema};

#[async_trait]
impl AdapterConfig for SqliteConfig {
    type Adapter = SqliteStore;

    fn validate(&self) -> std::result::Result<(), InvalidConfig> {
        self.check()
    }

    /// Validates, creates the directory and the file if missing, brings the
    /// schema up to date, and starts the writer. Must run inside a tokio
    /// runtime (it spawns the checkpointer).
    async fn connect(&self) -> Result<SqliteStore> {
        self.validate()?;
        SqliteStore::open(self.clone()).await
    }
}

/// The writer's work so far: commits against writes shows how well group
/// commit is batching (for metrics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: u64,
    /// Writes (appends, read marks, group changes...) those commits carried.
    pub writes: u64,
    /// Batches that failed as a whole (each write then got an error, or was
    /// retried on its own).
    pub failed_batches: u64,
}

/// bubble's embedded store: [`InboxStore`], [`GroupStore`], [`ChannelLog`],
/// [`AppStore`], [`JobQueue`] and [`PushTokens`] on one SQLite file.
///
/// Every write goes to one writer thread that commits whatever is waiting
/// in one transaction; each call returns only after its transaction
/// committed. Reads use a pool of read connections. Share it as
/// `Arc<SqliteStore>`; it coerces to each port's `Arc<dyn …>`.
///
/// [`InboxStore`]: bubble_core::ports::InboxStore
/// [`GroupStore`]: bubble_core::ports::GroupStore
/// [`ChannelLog`]: bubble_core::ports::ChannelLog
/// [`AppStore`]: bubble_core::ports::AppStore
/// [`JobQueue`]: bubble_core::jobs::JobQueue
/// [`PushTokens`]: bubble_core::notify::PushTokens
pub struct SqliteStore {
    /// The writer thread's queue: every write goes through it.
    tx: mpsc::Sender<Request>,
    /// The read connections.
    readers: Arc<Readers>,
    /// What the writer has done, for [`SqliteStore::stats`].
    counters: Arc<Counters>,
    /// The writer thread, joined by [`SqliteStore::close`].
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The checkpointer task and its stop signal.
    checkpoints: Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
    /// The database file.
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("stats", &self.stats())
            .finish()
    }
}

impl SqliteStore {
    /// Opens the store `config` (already validated) describes.
    async fn open(config: SqliteConfig) -> Result<SqliteStore> {
        let path = config.path.clone();
        // Creating, migrating and opening the file block; on the blocking
        // pool like every read.
        let setup = config.clone();
        let (conn, readers, checkpointer) =
            match tokio::task::spawn_blocking(move || open_connections(&setup)).await {
                Ok(opened) => opened?,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => return Err(Error::unavailable("the runtime is shutting down")),
            };
        let (stop_checkpoints, stop) = oneshot::channel();
        let checkpoints = tokio::spawn(checkpoint::run(checkpointer, stop));

        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::channel(config.queue_depth);
        let writer = Writer {
            conn,
            rx,
            max_batch: config.max_batch,
            counters: counters.clone(),
            names: Names::default(),
        };
        let handle = std::thread::Builder::new()
            .name("bubble-sqlite-writer".into())
            .spawn(move || writer.run())
            .map_err(cannot_start_writer)?;
        tracing::info!(path = %path.display(), synchronous = config.synchronous.as_str(),
            max_batch = config.max_batch, "SQLite store open");
        Ok(SqliteStore {
            tx,
            readers: Arc::new(readers),
            counters,
            writer: Mutex::new(Some(handle)),
            checkpoints: Mutex::new(Some((stop_checkpoints, checkpoints))),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
            failed_batches: self.counters.failed_batches.load(Ordering::Relaxed),
        }
    }

    /// Finishes the writes already queued, then closes every connection
    /// (SQLite folds the WAL into the main file). Later calls fail with
    /// `Unavailable`. Dropping the store without calling this also stops
    /// the writer, in the background.
    pub async fn close(&self) {
        self.readers.close();
        if let Some((stop, handle)) = self.checkpoints.lock().await.take() {
            let _ = stop.send(());
            let _ = handle.await;
        }
        let handle = self.writer.lock().await.take();
        if let Some(handle) = handle {
            let (stop, stopped) = oneshot::channel();
            if self.tx.send(Request::Stop(stop)).await.is_ok() {
                let _ = stopped.await;
            }
            // The thread has closed its connection; it ends at once.
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }

    /// Hands an inbox append to the writer and waits for its commit.
    pub(crate) async fn append_to_inbox(
        &self,
        app: &AppId,
        delivery: &Delivery,
    ) -> Result<AppendOutcome> {
        let (reply, rx) = oneshot::channel();
        let req = Request::Append(AppendRequest {
            app: app.clone(),
            delivery: delivery.clone(),
            reply,
        });
        self.tx.send(req).await.map_err(|_| writer_gone())?;
        rx.await.map_err(|_| writer_gone())?
    }

    /// Hands any other write to the writer and waits for its commit.
    pub(crate) async fn write<O: WriteOp>(&self, op: O) -> Result<O::Output> {
        let (req, rx) = writer::job(op);
        self.tx.send(req).await.map_err(|_| writer_gone())?;
        rx.await.map_err(|_| writer_gone())?
    }

    /// Runs `read` on a free read connection, on a blocking thread.
    pub(crate) async fn read<T, F>(&self, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.readers.run(read).await
    }

    /// Like [`SqliteStore::read`], for a lookup of a few rows by key (see
    /// [`Readers::run_point`]).
    pub(crate) async fn read_point<T, F>(&self, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.readers.run_point(read).await
    }
}

/// Creates the directory and the file if missing, brings the schema up to
/// date, then opens the writer's, the first reader's and the checkpointer's
/// connections. Blocks.
fn open_connections(config: &SqliteConfig) -> Result<(Connection, Readers, Connection)> {
    let path = &config.path;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| cannot_create_dir(dir, e))?;
    }
    // The same words for every connection.
    let cannot_open = |e: Error| {
        Error::new(
            e.kind(),
            format!("cannot open the SQLite database {}: {e}", path.display()),
        )
    };

    // Creates the file, turns WAL on and brings the schema up to date;
    // then the writer takes over.
    let mut setup = connection::open_setup(config).map_err(cannot_open)?;
    schema::migrate(&mut setup).map_err(|e| migrate_err(path, e))?;
    setup.close().map_err(|(_, e)| cannot_open(map_sqlite(e)))?;
    let writer = connection::open_writer(config).map_err(cannot_open)?;

    // Readers: never write (query_only guards that), each with its own
    // snapshot, never blocked by the writer thanks to WAL.
    let readers = Readers::open(
        path.clone(),
        config.read_connections as usize,
        config.busy_timeout(),
    )
    .map_err(cannot_open)?;

    let checkpointer = connection::open_checkpointer(config).map_err(cannot_open)?;
    Ok((writer, readers, checkpointer))
}
