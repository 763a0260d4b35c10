//! Opening SQLite connections, each with the settings of its job: the one
//! that creates and migrates the file, the writer's, the readers' and the
//! checkpointer's.

use std::path::Path;
use std::time::Duration;

use bubble_core::Result;
use rusqlite::{Connection, OpenFlags};

use crate::checkpoint;
use crate::config::SqliteConfig;
use crate::error::map_sqlite;

/// A connection to an existing file, with a statement cache of
/// `statements` and `pragmas` (a `PRAGMA ...;` list) applied.
fn open(
    path: &Path,
    busy_timeout: Duration,
    statements: usize,
    pragmas: &str,
) -> Result<Connection> {
    open_with(path, OpenFlags::empty(), busy_timeout, statements, pragmas)
}

/// [`open`], with `flags` added to read-write.
fn open_with(
    path: &Path,
    flags: OpenFlags,
    busy_timeout: Duration,
    statements: usize,
    pragmas: &str,
) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | flags,
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
pub(crate) fn open_writer(config: &SqliteConfig) -> Result<Connection> {
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
    open(&config.path, config.busy_timeout(), 64, &pragmas)
}

/// A read connection. `query_only`: it can never write, whatever it runs.
pub(crate) fn open_reader(path: &Path, busy_timeout: Duration) -> Result<Connection> {
    open(
        path,
        busy_timeout,
        32,
        "PRAGMA cache_size = -8192; PRAGMA query_only = ON;",
    )
}

/// The first connection of a store: creates the file if missing, turns WAL
/// on (a lasting property of the file, so the writer's setting it again
/// changes nothing) and runs the migrations; closed before the writer opens.
pub(crate) fn open_setup(config: &SqliteConfig) -> Result<Connection> {
    let pragmas = format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA foreign_keys = OFF; \
         PRAGMA temp_store = MEMORY;",
        config.synchronous.as_str(),
    );
    open_with(
        &config.path,
        OpenFlags::SQLITE_OPEN_CREATE,
        config.busy_timeout(),
        16,
        &pragmas,
    )
}

/// The checkpointer's connection. `synchronous` as configured: a
/// checkpoint fsyncs the WAL and the main file unless it is `OFF`.
pub(crate) fn open_checkpointer(config: &SqliteConfig) -> Result<Connection> {
    let pragmas = format!(
        "PRAGMA synchronous = {}; PRAGMA foreign_keys = OFF; PRAGMA temp_store = MEMORY;",
        config.synchronous.as_str(),
    );
    open(&config.path, config.busy_timeout(), 1, &pragmas)
}
