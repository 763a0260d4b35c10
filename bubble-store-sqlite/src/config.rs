//! [`SqliteConfig`]: what an operator sets (the file, group commit,
//! durability, readers), its defaults, and the rule of every field.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use bubble_core::InvalidConfig;
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
/// Every field has a default except `path`. [`AdapterConfig::validate`]
/// checks them all and names the one that is wrong;
/// [`AdapterConfig::connect`] validates, then opens the store.
///
/// [`AdapterConfig::validate`]: bubble_core::AdapterConfig::validate
/// [`AdapterConfig::connect`]: bubble_core::AdapterConfig::connect
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

    /// Sets [`path`](SqliteConfig::path).
    pub fn with_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = path.into();
        self
    }

    /// Sets [`max_batch`](SqliteConfig::max_batch).
    pub fn with_max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch;
        self
    }

    /// Sets [`queue_depth`](SqliteConfig::queue_depth).
    pub fn with_queue_depth(mut self, queue_depth: usize) -> Self {
        self.queue_depth = queue_depth;
        self
    }

    /// Sets [`synchronous`](SqliteConfig::synchronous).
    pub fn with_synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// Sets [`read_connections`](SqliteConfig::read_connections).
    pub fn with_read_connections(mut self, read_connections: u32) -> Self {
        self.read_connections = read_connections;
        self
    }

    /// Sets [`busy_timeout_ms`](SqliteConfig::busy_timeout_ms).
    pub fn with_busy_timeout_ms(mut self, busy_timeout_ms: u64) -> Self {
        self.busy_timeout_ms = busy_timeout_ms;
        self
    }

    /// Sets [`max_size_mb`](SqliteConfig::max_size_mb).
    pub fn with_max_size_mb(mut self, max_size_mb: u64) -> Self {
        self.max_size_mb = max_size_mb;
        self
    }

    /// Every field's rule, naming the first bad field: what
    /// [`AdapterConfig::validate`](bubble_core::AdapterConfig::validate)
    /// runs (its impl sits in `client`, beside `connect`).
    pub(crate) fn check(&self) -> Result<(), InvalidConfig> {
        let path = self.path.to_string_lossy();
        if path.trim().is_empty() {
            return Err(InvalidConfig::new("path", "must name a database file"));
        }
        if path == ":memory:" || path.starts_with("file::memory:") {
            return Err(InvalidConfig::new(
                "path",
                "cannot be an in-memory database: the writer and the readers share a file; \
                 use a file in a temporary directory instead",
            ));
        }
        if !(1..=4096).contains(&self.max_batch) {
            return Err(InvalidConfig::new(
                "max_batch",
                format!("must be 1 to 4096, got {}", self.max_batch),
            ));
        }
        if self.queue_depth < self.max_batch || self.queue_depth > 1 << 20 {
            return Err(InvalidConfig::new(
                "queue_depth",
                format!(
                    "must be at least max_batch ({}) and at most 1048576, got {}",
                    self.max_batch, self.queue_depth
                ),
            ));
        }
        if !(1..=64).contains(&self.read_connections) {
            return Err(InvalidConfig::new(
                "read_connections",
                format!("must be 1 to 64, got {}", self.read_connections),
            ));
        }
        if !(1..=600_000).contains(&self.busy_timeout_ms) {
            return Err(InvalidConfig::new(
                "busy_timeout_ms",
                format!(
                    "must be 1 to 600000 (10 minutes), got {}",
                    self.busy_timeout_ms
                ),
            ));
        }
        if self.max_size_mb > 1 << 32 {
            return Err(InvalidConfig::new(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_names_each_bad_field() {
        let ok = SqliteConfig::new("/data/bubble.db");
        ok.check().unwrap();
        let cases = [
            (ok.clone().with_path(""), "path"),
            (ok.clone().with_path(":memory:"), "path"),
            (ok.clone().with_path("file::memory:?cache=shared"), "path"),
            (ok.clone().with_max_batch(0), "max_batch"),
            (ok.clone().with_max_batch(4097), "max_batch"),
            (ok.clone().with_queue_depth(10), "queue_depth"),
            (ok.clone().with_queue_depth((1 << 20) + 1), "queue_depth"),
            (ok.clone().with_read_connections(0), "read_connections"),
            (ok.clone().with_read_connections(65), "read_connections"),
            (ok.clone().with_busy_timeout_ms(0), "busy_timeout_ms"),
            (ok.clone().with_busy_timeout_ms(600_001), "busy_timeout_ms"),
            (ok.clone().with_max_size_mb((1 << 32) + 1), "max_size_mb"),
        ];
        for (config, field) in cases {
            let e = config.check().expect_err(field);
            assert_eq!(e.field, field, "{e}");
        }
    }

    #[test]
    fn debug_shows_every_setting_and_there_is_no_secret_to_hide() {
        // No field is a secret today; the hand-written Debug must list each
        // one, so a secret added later is a deliberate line here.
        let shown = format!("{:?}", SqliteConfig::new("/data/bubble.db"));
        for field in [
            "path",
            "max_batch",
            "queue_depth",
            "synchronous",
            "read_connections",
            "busy_timeout_ms",
            "max_size_mb",
        ] {
            assert!(shown.contains(field), "{field}: {shown}");
        }
    }
}
