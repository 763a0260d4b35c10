//! What an operator sets: the database file and how writes are made durable.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use bubble_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// How hard SQLite pushes each commit to the disk (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Synchronous {
    /// Every commit is fsynced before it returns: an acknowledged message
    /// survives a power cut. The default.
    #[default]
    Full,
    /// Commits reach the OS but are fsynced only at checkpoints: an
    /// acknowledged message survives a crash of the process, not of the
    /// machine. Faster on slow disks.
    Normal,
}

impl Synchronous {
    /// The name used in config files (`"full"`, `"normal"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Synchronous::Full => "full",
            Synchronous::Normal => "normal",
        }
    }
}

/// Configuration of [`crate::SqliteStore`] (the `[store.sqlite]` section).
///
/// Every field has a default except `path`; [`crate::SqliteStoreBuilder`]
/// checks them all and names the one that is wrong.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SqliteConfig {
    /// The database file (created with its directory if missing). SQLite
    /// adds `-wal` and `-shm` files beside it. `:memory:` is refused: the
    /// writer and the readers are separate connections and must share a file
    /// (use a file in a temporary directory for throwaway stores).
    pub path: PathBuf,
    /// The most writes applied in one transaction (group commit): a larger
    /// batch spreads one fsync over more messages under load. 1 to 4096.
    pub max_batch: usize,
    /// How many writes may wait for the writer before callers wait to
    /// enqueue (back-pressure instead of unbounded memory). At least `max_batch`.
    pub queue_depth: usize,
    /// Durability of each commit: `"full"` (default) or `"normal"`.
    pub synchronous: Synchronous,
    /// Connections that serve reads (pull, unread, members...) in parallel
    /// with the writer; WAL lets them read while it writes. 1 to 64.
    pub read_connections: u32,
    /// How long a statement waits for a lock held by another process on the
    /// same file before failing with a retryable error, in milliseconds.
    pub busy_timeout_ms: u64,
    /// The most the database may grow to, in MiB (0: no limit beyond the
    /// disk). Past it, writes fail with a retryable "full" error while reads
    /// go on, as they would on a full disk, but with room left for the rest
    /// of the machine.
    pub max_size_mb: u64,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            // No default file: `validate` asks for one (a server fills it
            // in from its data directory).
            path: PathBuf::new(),
            max_batch: 1024,
            queue_depth: 4096,
            synchronous: Synchronous::Full,
            read_connections: 4,
            busy_timeout_ms: 5_000,
            max_size_mb: 0,
        }
    }
}

// Written by hand so it stays useful if a secret (an encryption key) is
// ever added: such a field must never be printed.
impl fmt::Debug for SqliteConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteConfig")
            .field("path", &self.path)
            .field("max_batch", &self.max_batch)
            .field("queue_depth", &self.queue_depth)
            .field("synchronous", &self.synchronous)
            .field("read_connections", &self.read_connections)
            .field("busy_timeout_ms", &self.busy_timeout_ms)
            .field("max_size_mb", &self.max_size_mb)
            .finish()
    }
}

impl SqliteConfig {
    /// A configuration for the database file at `path`, other fields default.
    pub fn new(path: impl Into<PathBuf>) -> SqliteConfig {
        SqliteConfig {
            path: path.into(),
            ..SqliteConfig::default()
        }
    }

    /// Checks every field, naming the first bad one in the error.
    pub fn validate(&self) -> Result<()> {
        fn bad(key: &str, why: String) -> Error {
            Error::invalid(format!("sqlite store config `{key}` {why}"))
        }
        let path = self.path.to_string_lossy();
        if path.trim().is_empty() {
            return Err(bad("path", "must name a database file".into()));
        }
        if path == ":memory:" || path.starts_with("file::memory:") {
            return Err(bad(
                "path",
                "cannot be an in-memory database: the writer and the readers share a file; \
                 use a file in a temporary directory instead"
                    .into(),
            ));
        }
        if !(1..=4096).contains(&self.max_batch) {
            return Err(bad(
                "max_batch",
                format!("must be 1 to 4096, got {}", self.max_batch),
            ));
        }
        if self.queue_depth < self.max_batch || self.queue_depth > 1 << 20 {
            return Err(bad(
                "queue_depth",
                format!(
                    "must be at least max_batch ({}) and at most 1048576, got {}",
                    self.max_batch, self.queue_depth
                ),
            ));
        }
        if !(1..=64).contains(&self.read_connections) {
            return Err(bad(
                "read_connections",
                format!("must be 1 to 64, got {}", self.read_connections),
            ));
        }
        if !(1..=600_000).contains(&self.busy_timeout_ms) {
            return Err(bad(
                "busy_timeout_ms",
                format!(
                    "must be 1 to 600000 (10 minutes), got {}",
                    self.busy_timeout_ms
                ),
            ));
        }
        if self.max_size_mb > 1 << 32 {
            return Err(bad(
                "max_size_mb",
                format!(
                    "must be 0 (no limit) up to 4294967296, got {}",
                    self.max_size_mb
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn busy_timeout(&self) -> Duration {
        Duration::from_millis(self.busy_timeout_ms)
    }
}
