//! Opening the store, and the store itself: the four ports on one file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use bubble_core::ports::*;
use bubble_core::{
    AppConfig, AppId, ChannelEntry, ChannelPage, Conversation, Error, Group, GroupId, GroupKind,
    InboxEntry, InboxPage, Member, MsgId, Result, SendReceipt, UnreadCount, UserId,
};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, SqlSafeStr};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::{SqliteConfig, Synchronous};
use crate::error::{map_err, map_sqlite, writer_gone};
use crate::read::Readers;
use crate::writer::{self, AppendRequest, Counters, Request, WriteOp, Writer};
use crate::{apps, channel, checkpoint, groups, inbox};

/// The schema, oldest first. Embedded in the binary, so a server carries
/// its migrations; sqlx records what ran in `_sqlx_migrations`, so opening
/// an up-to-date file runs nothing. (Listed by hand rather than with
/// `sqlx::migrate!`, which needs sqlx's `macros` feature and so a second
/// build of SQLite for the proc-macro.)
fn migrator() -> Migrator {
    let step = |version: i64, description: &'static str, sql: &'static str| {
        Migration::new(
            version,
            description.into(),
            MigrationType::Simple,
            sql.into_sql_str(),
            false,
        )
    };
    Migrator::with_migrations(vec![step(
        1,
        "init",
        include_str!("../migrations/0001_init.sql"),
    )])
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

/// Opens a [`SqliteStore`]: validates the config (naming the bad key),
/// creates the directory and the file if missing, brings the schema up to
/// date, and starts the writer.
#[derive(Debug, Clone)]
#[must_use]
pub struct SqliteStoreBuilder {
    config: SqliteConfig,
}

impl SqliteStoreBuilder {
    /// Starts from a full config.
    pub fn new(config: SqliteConfig) -> SqliteStoreBuilder {
        SqliteStoreBuilder { config }
    }

    /// The database file.
    pub fn path(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.path = path.into();
        self
    }

    /// The most writes per transaction.
    pub fn max_batch(mut self, n: usize) -> Self {
        self.config.max_batch = n;
        self
    }

    /// How many writes may wait for the writer.
    pub fn queue_depth(mut self, n: usize) -> Self {
        self.config.queue_depth = n;
        self
    }

    /// Durability of each commit.
    pub fn synchronous(mut self, s: Synchronous) -> Self {
        self.config.synchronous = s;
        self
    }

    /// Read connections.
    pub fn read_connections(mut self, n: u32) -> Self {
        self.config.read_connections = n;
        self
    }

    /// The most the database may grow to, in MiB (0: no limit).
    pub fn max_size_mb(mut self, mb: u64) -> Self {
        self.config.max_size_mb = mb;
        self
    }

    /// How long to wait for another process's lock, in milliseconds.
    pub fn busy_timeout_ms(mut self, ms: u64) -> Self {
        self.config.busy_timeout_ms = ms;
        self
    }

    /// Opens the store. Must run inside a tokio runtime (it spawns the writer).
    pub async fn open(self) -> Result<SqliteStore> {
        let config = self.config;
        config.validate()?;
        let path = config.path.clone();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::unavailable(format!(
                    "cannot create the directory {} for the SQLite database: {e}; \
                     check the `path` setting and the directory's permissions",
                    dir.display()
                ))
                .with_source(e)
            })?;
        }
        // The same words for every connection, whichever driver failed.
        let cannot_open_here = |e: Error| {
            Error::new(
                e.kind(),
                format!("cannot open the SQLite database {}: {e}", path.display()),
            )
        };
        let cannot_open = |e: sqlx::Error| cannot_open_here(map_err(e));

        let base = SqliteConnectOptions::new()
            .filename(&path)
            .busy_timeout(config.busy_timeout())
            .synchronous(match config.synchronous {
                Synchronous::Full => SqliteSynchronous::Full,
                Synchronous::Normal => SqliteSynchronous::Normal,
            })
            .foreign_keys(false)
            .pragma("temp_store", "memory")
            // Batches are many statements each; logging them would drown the logs.
            .disable_statement_logging();

        // Creates the file, turns WAL on (a lasting property of the file)
        // and brings the schema up to date; then the writer takes over.
        let mut conn: SqliteConnection = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .connect()
            .await
            .map_err(cannot_open)?;
        migrator()
            .run(&mut conn)
            .await
            .map_err(|e| migrate_err(&path, e))?;
        conn.close().await.map_err(cannot_open)?;
        let conn = open_writer(&config).map_err(cannot_open_here)?;

        // Readers: never write (query_only guards that), each with its own
        // snapshot, never blocked by the writer thanks to WAL.
        let read = Readers::open(
            path.clone(),
            config.read_connections as usize,
            config.busy_timeout(),
        )
        .map_err(cannot_open_here)?;

        let checkpointer: SqliteConnection = base
            .clone()
            .create_if_missing(false)
            .connect()
            .await
            .map_err(cannot_open)?;
        let (stop_checkpoints, stop) = oneshot::channel();
        let checkpoints = tokio::spawn(checkpoint::run(checkpointer, stop));

        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::channel(config.queue_depth);
        let writer = Writer {
            conn,
            rx,
            max_batch: config.max_batch,
            counters: counters.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("bubble-sqlite-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| {
                Error::unavailable(format!("cannot start the SQLite writer thread: {e}"))
                    .with_source(e)
            })?;
        tracing::info!(path = %path.display(), synchronous = config.synchronous.as_str(),
            max_batch = config.max_batch, "SQLite store open");
        Ok(SqliteStore {
            tx,
            read: Arc::new(read),
            counters,
            writer: Mutex::new(Some(handle)),
            checkpoints: Mutex::new(Some((stop_checkpoints, checkpoints))),
            path,
        })
    }
}

/// A rusqlite connection to an existing file, with a statement cache of
/// `statements` and `pragmas` (a `PRAGMA ...;` list) applied.
pub(crate) fn connect(
    path: &Path,
    busy_timeout: std::time::Duration,
    statements: usize,
    pragmas: &str,
) -> Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(map_sqlite)?;
    conn.busy_timeout(busy_timeout).map_err(map_sqlite)?;
    conn.set_prepared_statement_cache_capacity(statements);
    // A batch, so pragmas that answer with a row (the new value) are fine.
    conn.execute_batch(pragmas).map_err(map_sqlite)?;
    Ok(conn)
}

/// The writer's connection: the one that writes, with a bigger page cache
/// since it touches every index on each batch, and every statement shape it
/// runs kept prepared.
fn open_writer(config: &SqliteConfig) -> Result<rusqlite::Connection> {
    let mut pragmas = format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA foreign_keys = OFF; \
         PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32768; \
         PRAGMA wal_autocheckpoint = {};",
        config.synchronous.as_str(),
        checkpoint::WRITER_FALLBACK_PAGES,
    );
    // After a checkpoint lets the WAL start over, a WAL that grew large
    // under a burst is cut back to this size (64 MiB).
    pragmas.push_str(" PRAGMA journal_size_limit = 67108864;");
    if config.max_size_mb > 0 {
        // In pages of the default 4 KiB.
        pragmas.push_str(&format!(
            " PRAGMA max_page_count = {};",
            config.max_size_mb * 256
        ));
    }
    connect(&config.path, config.busy_timeout(), 64, &pragmas)
}

fn migrate_err(path: &Path, e: sqlx::migrate::MigrateError) -> Error {
    use sqlx::migrate::MigrateError;
    let why = match e {
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => {
            let inner = map_err(e);
            return Error::new(
                inner.kind(),
                format!(
                    "migrating the SQLite database {} failed: {inner}",
                    path.display()
                ),
            );
        }
        MigrateError::VersionMissing(v) => format!(
            "it was migrated by a newer bubble (migration {v} is unknown here); run that version"
        ),
        MigrateError::VersionMismatch(v) => {
            format!("migration {v} was changed after it ran on this file")
        }
        other => other.to_string(),
    };
    Error::internal(format!(
        "cannot use the SQLite database {}: {why}",
        path.display()
    ))
}

/// bubble's embedded store: [`InboxStore`], [`GroupStore`], [`ChannelLog`]
/// and [`AppStore`] on one SQLite file.
///
/// Every write goes to one writer thread that commits whatever is waiting
/// in one transaction; each call returns only after its transaction
/// committed. Reads use a pool of read connections. Share it as
/// `Arc<SqliteStore>`; it coerces to each port's `Arc<dyn …>`.
pub struct SqliteStore {
    tx: mpsc::Sender<Request>,
    read: Arc<Readers>,
    counters: Arc<Counters>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    checkpoints: Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
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
    /// A builder starting from `config`.
    pub fn builder(config: SqliteConfig) -> SqliteStoreBuilder {
        SqliteStoreBuilder::new(config)
    }

    /// Opens the file at `path` with default settings.
    pub async fn open(path: impl Into<PathBuf>) -> Result<SqliteStore> {
        SqliteStoreBuilder::new(SqliteConfig::new(path))
            .open()
            .await
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
        self.read.close();
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

    async fn write<O: WriteOp>(&self, op: O) -> Result<O::Output> {
        let (req, rx) = writer::job(op);
        self.tx.send(req).await.map_err(|_| writer_gone())?;
        rx.await.map_err(|_| writer_gone())?
    }
}

#[async_trait]
impl InboxStore for SqliteStore {
    async fn append(&self, app: &AppId, delivery: &Delivery) -> Result<AppendOutcome> {
        let (reply, rx) = oneshot::channel();
        let req = Request::Append(AppendRequest {
            app: app.clone(),
            delivery: delivery.clone(),
            reply,
        });
        self.tx.send(req).await.map_err(|_| writer_gone())?;
        rx.await.map_err(|_| writer_gone())?
    }

    async fn pull(
        &self,
        app: &AppId,
        owner: &UserId,
        after_version: u64,
        limit: usize,
    ) -> Result<InboxPage> {
        let app = app.clone();
        let owner = owner.clone();
        self.read
            .run(move |conn| inbox::pull(conn, &app, &owner, after_version, limit))
            .await
    }

    async fn last_version(&self, app: &AppId, owner: &UserId) -> Result<u64> {
        let app = app.clone();
        let owner = owner.clone();
        self.read
            .run(move |conn| inbox::last_version(conn, &app, &owner))
            .await
    }

    async fn get(&self, app: &AppId, owner: &UserId, id: &MsgId) -> Result<Option<InboxEntry>> {
        let app = app.clone();
        let owner = owner.clone();
        let id = *id;
        self.read
            .run(move |conn| inbox::get(conn, &app, &owner, &id))
            .await
    }

    async fn mark_read(
        &self,
        app: &AppId,
        owner: &UserId,
        conversation: &Conversation,
        up_to: u64,
    ) -> Result<MarkedRead> {
        self.write(inbox::MarkRead {
            app: app.clone(),
            owner: owner.clone(),
            conversation: conversation.clone(),
            up_to,
        })
        .await
    }

    async fn mark_message_read(&self, app: &AppId, owner: &UserId, id: &MsgId) -> Result<bool> {
        self.write(inbox::MarkMessageRead {
            app: app.clone(),
            owner: owner.clone(),
            id: *id,
        })
        .await
    }

    async fn unread(&self, app: &AppId, owner: &UserId) -> Result<Vec<UnreadCount>> {
        let app = app.clone();
        let owner = owner.clone();
        self.read
            .run(move |conn| inbox::unread(conn, &app, &owner))
            .await
    }

    async fn find_sent(
        &self,
        app: &AppId,
        sender: &UserId,
        client_msg_id: &str,
    ) -> Result<Option<SendReceipt>> {
        let app = app.clone();
        let sender = sender.clone();
        let client_msg_id = client_msg_id.to_owned();
        self.read
            .run(move |conn| inbox::find_sent(conn, &app, &sender, &client_msg_id))
            .await
    }

    async fn pending_index(&self, limit: usize) -> Result<Vec<IndexTask>> {
        self.read
            .run(move |conn| inbox::pending_index(conn, limit))
            .await
    }

    async fn complete_index(&self, ids: &[u64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.write(inbox::CompleteIndex { ids: ids.to_vec() }).await
    }
}

#[async_trait]
impl GroupStore for SqliteStore {
    async fn create_group(&self, app: &AppId, group: &Group, members: &[Member]) -> Result<()> {
        self.write(groups::Create {
            app: app.clone(),
            group: group.clone(),
            members: members.to_vec(),
        })
        .await
    }

    async fn group(&self, app: &AppId, id: &GroupId) -> Result<Option<Group>> {
        let app = app.clone();
        let id = id.clone();
        self.read
            .run(move |conn| groups::group(conn, &app, &id))
            .await
    }

    async fn set_kind(&self, app: &AppId, id: &GroupId, kind: GroupKind) -> Result<()> {
        self.write(groups::SetKind {
            app: app.clone(),
            id: id.clone(),
            kind,
        })
        .await
    }

    async fn add_members(&self, app: &AppId, id: &GroupId, members: &[Member]) -> Result<u64> {
        self.write(groups::AddMembers {
            app: app.clone(),
            id: id.clone(),
            members: members.to_vec(),
        })
        .await
    }

    async fn remove_members(&self, app: &AppId, id: &GroupId, users: &[UserId]) -> Result<u64> {
        self.write(groups::RemoveMembers {
            app: app.clone(),
            id: id.clone(),
            users: users.to_vec(),
        })
        .await
    }

    async fn members(&self, app: &AppId, id: &GroupId) -> Result<Vec<Member>> {
        let app = app.clone();
        let id = id.clone();
        self.read
            .run(move |conn| groups::members(conn, &app, &id))
            .await
    }

    async fn member(&self, app: &AppId, id: &GroupId, user: &UserId) -> Result<Option<Member>> {
        let app = app.clone();
        let id = id.clone();
        let user = user.clone();
        self.read
            .run(move |conn| groups::member(conn, &app, &id, &user))
            .await
    }

    async fn member_count(&self, app: &AppId, id: &GroupId) -> Result<u64> {
        let app = app.clone();
        let id = id.clone();
        self.read
            .run(move |conn| groups::member_count(conn, &app, &id))
            .await
    }

    async fn groups_of(&self, app: &AppId, user: &UserId) -> Result<Vec<GroupId>> {
        let app = app.clone();
        let user = user.clone();
        self.read
            .run(move |conn| groups::groups_of(conn, &app, &user))
            .await
    }
}

#[async_trait]
impl ChannelLog for SqliteStore {
    async fn append(&self, app: &AppId, entry: &ChannelEntry) -> Result<ChannelAppend> {
        self.write(channel::Append {
            app: app.clone(),
            entry: entry.clone(),
        })
        .await
    }

    async fn range(
        &self,
        app: &AppId,
        group: &GroupId,
        after_seq: u64,
        limit: usize,
    ) -> Result<ChannelPage> {
        let app = app.clone();
        let group = group.clone();
        self.read
            .run(move |conn| channel::range(conn, &app, &group, after_seq, limit))
            .await
    }

    async fn last_seq(&self, app: &AppId, group: &GroupId) -> Result<u64> {
        let app = app.clone();
        let group = group.clone();
        self.read
            .run(move |conn| channel::last_seq(conn, &app, &group))
            .await
    }

    async fn get(&self, app: &AppId, group: &GroupId, id: &MsgId) -> Result<Option<ChannelEntry>> {
        let app = app.clone();
        let group = group.clone();
        let id = *id;
        self.read
            .run(move |conn| channel::get(conn, &app, &group, &id))
            .await
    }

    async fn count_messages_after(
        &self,
        app: &AppId,
        group: &GroupId,
        after_seq: u64,
    ) -> Result<u64> {
        let app = app.clone();
        let group = group.clone();
        self.read
            .run(move |conn| channel::count_messages_after(conn, &app, &group, after_seq))
            .await
    }

    async fn set_read_seq(
        &self,
        app: &AppId,
        group: &GroupId,
        user: &UserId,
        seq: u64,
    ) -> Result<()> {
        self.write(channel::SetReadSeq {
            app: app.clone(),
            group: group.clone(),
            user: user.clone(),
            seq,
        })
        .await
    }

    async fn read_seq(&self, app: &AppId, group: &GroupId, user: &UserId) -> Result<u64> {
        let app = app.clone();
        let group = group.clone();
        let user = user.clone();
        self.read
            .run(move |conn| channel::read_seq(conn, &app, &group, &user))
            .await
    }
}

#[async_trait]
impl AppStore for SqliteStore {
    async fn put_app(&self, app: &AppConfig) -> Result<()> {
        app.validate()?;
        self.write(apps::Put { app: app.clone() }).await
    }

    async fn get_app(&self, id: &AppId) -> Result<Option<AppConfig>> {
        let id = id.clone();
        self.read.run(move |conn| apps::get(conn, &id)).await
    }

    async fn list_apps(&self) -> Result<Vec<AppConfig>> {
        self.read.run(apps::list).await
    }
}
