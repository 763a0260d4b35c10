//! What a deployment chooses about its MySQL/MariaDB store, and the builder that checks it.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use bubble_core::{Error, Result};

use crate::store::MysqlStore;

/// The store's settings, as read from a server's config file (`[store.mysql]`).
///
/// Build one with [`MysqlConfig::new`] or from serde, or use [`MysqlStore::builder`].
/// Its `Debug` hides the password in `url`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MysqlConfig {
    /// `mysql://user:password@host:port/database` (the database must exist; the
    /// store creates its tables). `?ssl-mode=required` and the other options of
    /// the MySQL URL work as in sqlx.
    pub url: String,
    /// Most connections the pool opens. Each in-flight append holds one.
    pub max_connections: u32,
    /// Connections kept open when idle.
    pub min_connections: u32,
    /// How long a call waits for a free connection before failing with `Unavailable`, in ms.
    pub acquire_timeout_ms: u64,
    /// Apply the schema migrations on connect (under MySQL's advisory lock, so
    /// several nodes starting together are safe). Turn off when a DBA runs them.
    pub run_migrations: bool,
    /// How often an append that lost a deadlock is retried before the caller
    /// gets a `Conflict` error. A deadlock rolls the whole transaction back, so
    /// a retry never writes twice.
    pub deadlock_retries: u32,
    /// Most deliveries one transaction carries. Concurrent appends queue up and
    /// are written together (one commit, one lock of each owner), which is what
    /// keeps a busy user's inbox fast; 1 writes every delivery on its own.
    pub batch_max: usize,
    /// How many batches are written at once (each holds one connection).
    /// Must be below `max_connections` so reads always find a connection.
    pub batch_writers: usize,
}

impl Default for MysqlConfig {
    fn default() -> Self {
        MysqlConfig {
            url: String::new(),
            max_connections: 16,
            min_connections: 0,
            acquire_timeout_ms: 5_000,
            run_migrations: true,
            deadlock_retries: 5,
            batch_max: 32,
            batch_writers: 8,
        }
    }
}

impl MysqlConfig {
    /// Default settings for the database at `url`.
    pub fn new(url: impl Into<String>) -> MysqlConfig {
        MysqlConfig {
            url: url.into(),
            ..MysqlConfig::default()
        }
    }

    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        if self.url.is_empty() {
            return Err(Error::invalid(
                "mysql store: url must be set, e.g. mysql://bubble:secret@127.0.0.1:3306/bubble",
            ));
        }
        if !(self.url.starts_with("mysql://") || self.url.starts_with("mariadb://")) {
            return Err(Error::invalid(format!(
                "mysql store: url must start with mysql:// or mariadb://, got {}",
                redact_url(&self.url)
            )));
        }
        if self.max_connections == 0 {
            return Err(Error::invalid(
                "mysql store: max_connections must be at least 1",
            ));
        }
        if self.min_connections > self.max_connections {
            return Err(Error::invalid(format!(
                "mysql store: min_connections ({}) must not exceed max_connections ({})",
                self.min_connections, self.max_connections
            )));
        }
        if self.acquire_timeout_ms == 0 {
            return Err(Error::invalid(
                "mysql store: acquire_timeout_ms must be above 0",
            ));
        }
        if self.batch_max == 0 {
            return Err(Error::invalid(
                "mysql store: batch_max must be at least 1 (1 turns batching off)",
            ));
        }
        if self.batch_writers == 0 || self.batch_writers as u64 >= u64::from(self.max_connections) {
            return Err(Error::invalid(format!(
                "mysql store: batch_writers must be 1 to max_connections - 1 ({}), got {}",
                self.max_connections.saturating_sub(1),
                self.batch_writers
            )));
        }
        Ok(())
    }

    pub(crate) fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }
}

impl fmt::Debug for MysqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("min_connections", &self.min_connections)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .field("run_migrations", &self.run_migrations)
            .field("deadlock_retries", &self.deadlock_retries)
            .field("batch_max", &self.batch_max)
            .field("batch_writers", &self.batch_writers)
            .finish()
    }
}

/// The URL with its password replaced, fit for logs and error messages.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:<hidden>{}",
            &url[..scheme_end],
            &rest[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

/// Builds a [`MysqlStore`]: set what differs from the defaults, then `connect`.
///
/// ```no_run
/// # async fn f() -> bubble_core::Result<()> {
/// let store = bubble_store_mysql::MysqlStore::builder()
///     .url("mysql://bubble:secret@127.0.0.1:3306/bubble")
///     .max_connections(32)
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct MysqlStoreBuilder {
    config: MysqlConfig,
}

impl MysqlStoreBuilder {
    /// Starts from `config` (for example one read from a file).
    pub fn from_config(config: MysqlConfig) -> MysqlStoreBuilder {
        MysqlStoreBuilder { config }
    }

    /// See [`MysqlConfig::url`].
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.config.url = url.into();
        self
    }

    /// See [`MysqlConfig::max_connections`].
    pub fn max_connections(mut self, n: u32) -> Self {
        self.config.max_connections = n;
        self
    }

    /// See [`MysqlConfig::min_connections`].
    pub fn min_connections(mut self, n: u32) -> Self {
        self.config.min_connections = n;
        self
    }

    /// See [`MysqlConfig::acquire_timeout_ms`].
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.config.acquire_timeout_ms = timeout.as_millis().try_into().unwrap_or(u64::MAX);
        self
    }

    /// See [`MysqlConfig::run_migrations`].
    pub fn run_migrations(mut self, run: bool) -> Self {
        self.config.run_migrations = run;
        self
    }

    /// See [`MysqlConfig::deadlock_retries`].
    pub fn deadlock_retries(mut self, n: u32) -> Self {
        self.config.deadlock_retries = n;
        self
    }

    /// See [`MysqlConfig::batch_max`].
    pub fn batch_max(mut self, n: usize) -> Self {
        self.config.batch_max = n;
        self
    }

    /// See [`MysqlConfig::batch_writers`].
    pub fn batch_writers(mut self, n: usize) -> Self {
        self.config.batch_writers = n;
        self
    }

    /// The settings so far, unchecked.
    pub fn config(&self) -> &MysqlConfig {
        &self.config
    }

    /// Checks the settings, connects, and (unless turned off) migrates the schema.
    pub async fn connect(self) -> Result<MysqlStore> {
        MysqlStore::connect(self.config).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let c = MysqlConfig::new("mysql://bubble:s3cret@db.internal:3306/bubble");
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("mysql://bubble:<hidden>@db.internal:3306/bubble"));
    }

    #[test]
    fn redaction_leaves_urls_without_password_alone() {
        assert_eq!(
            redact_url("mysql://root@127.0.0.1:3306/test"),
            "mysql://root@127.0.0.1:3306/test"
        );
        assert_eq!(redact_url("mysql://h/db?x=a@b"), "mysql://h/db?x=a@b");
        assert_eq!(redact_url("mysql://u:p@ss@h/db"), "mysql://u:<hidden>@h/db");
    }

    #[test]
    fn validation_names_the_bad_field() {
        let bad = |c: MysqlConfig, field: &str| {
            let e = c.validate().expect_err(field);
            assert!(e.message().contains(field), "{field}: {}", e.message());
        };
        bad(MysqlConfig::default(), "url");
        bad(MysqlConfig::new("postgres://x/y"), "url");
        let ok = MysqlConfig::new("mysql://root@127.0.0.1/test");
        ok.validate().unwrap();
        bad(
            MysqlConfig {
                max_connections: 0,
                ..ok.clone()
            },
            "max_connections",
        );
        bad(
            MysqlConfig {
                min_connections: 99,
                ..ok.clone()
            },
            "min_connections",
        );
        bad(
            MysqlConfig {
                acquire_timeout_ms: 0,
                ..ok.clone()
            },
            "acquire_timeout_ms",
        );
        bad(
            MysqlConfig {
                batch_max: 0,
                ..ok.clone()
            },
            "batch_max",
        );
        bad(
            MysqlConfig {
                batch_writers: 16,
                ..ok.clone()
            },
            "batch_writers",
        );
    }

    #[test]
    fn config_reads_from_serde_with_defaults() {
        let c: MysqlConfig =
            serde_json::from_str(r#"{"url":"mysql://root@127.0.0.1/test","batch_max":4}"#).unwrap();
        assert_eq!(c.batch_max, 4);
        assert_eq!(c.max_connections, 16);
        assert!(
            serde_json::from_str::<MysqlConfig>(r#"{"urll":"x"}"#).is_err(),
            "a misspelt key is an error, not a silent default"
        );
    }
}
