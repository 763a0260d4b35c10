//! [`MysqlConfig`]: what a deployment chooses about its MySQL/MariaDB
//! store, its defaults, and the rule of every field.

use bubble_core::redact_url;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use bubble_core::InvalidConfig;

/// The store's settings, as read from a server's config file (`[store.mysql]`).
///
/// Build one with [`MysqlConfig::new`] and the `with_*` setters, or from
/// serde. [`AdapterConfig::validate`] names the first bad field;
/// [`AdapterConfig::connect`] validates, connects and migrates. Its `Debug`
/// hides the password in `url`.
///
/// [`AdapterConfig::validate`]: bubble_core::AdapterConfig::validate
/// [`AdapterConfig::connect`]: bubble_core::AdapterConfig::connect
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MysqlConfig {
    /// `mysql://user:password@host:port/database` (the database must exist; the
    /// store creates its tables). `?ssl-mode=required` and the other options of
    /// the MySQL URL work as in sqlx.
    pub url: String,
    /// The nodes of a multi-primary cluster (MariaDB Galera), each a URL like
    /// `url` naming the same database, in order of preference; set either
    /// this or `url`. The store works on one node at a time, the first that
    /// answers, and moves to the next when that one fails (see
    /// `docs/operations.md`, "MariaDB Galera"). Each node has its own pool
    /// of `max_connections`.
    pub urls: Vec<String>,
    /// Most connections the pool opens. Each in-flight append holds one.
    pub max_connections: u32,
    /// Connections kept open when idle.
    pub min_connections: u32,
    /// How long a call waits for a connection (a free one, or a new one
    /// while the database is unreachable) before failing with
    /// `Unavailable`, in ms. Keep it below the server's request deadline
    /// (`engine.request_timeout_ms`, 1 s): then an outage fails calls, which
    /// opens the breaker, instead of every request waiting out the deadline.
    pub acquire_timeout_ms: u64,
    /// Apply the schema migrations on connect (under MySQL's advisory lock, so
    /// several nodes starting together are safe). Turn off when a DBA runs them.
    pub run_migrations: bool,
    /// How often a write that lost a deadlock (or, on Galera, certification
    /// against another node's write) is retried before the caller gets a
    /// `Conflict` error. Either rolls the whole transaction back, so a retry
    /// never writes twice.
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
            urls: Vec::new(),
            max_connections: 16,
            min_connections: 0,
            acquire_timeout_ms: 500,
            run_migrations: true,
            deadlock_retries: 5,
            batch_max: 128,
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

    /// Sets [`url`](MysqlConfig::url).
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// Sets [`urls`](MysqlConfig::urls), the nodes of a Galera cluster.
    pub fn with_urls<S: Into<String>>(mut self, urls: impl IntoIterator<Item = S>) -> Self {
        self.urls = urls.into_iter().map(Into::into).collect();
        self
    }

    /// The database URLs the store connects to: `urls`, or `url` alone.
    pub fn node_urls(&self) -> Vec<&str> {
        if self.urls.is_empty() {
            vec![self.url.as_str()]
        } else {
            self.urls.iter().map(String::as_str).collect()
        }
    }

    /// Sets [`max_connections`](MysqlConfig::max_connections).
    pub fn with_max_connections(mut self, max_connections: u32) -> Self {
        self.max_connections = max_connections;
        self
    }

    /// Sets [`min_connections`](MysqlConfig::min_connections).
    pub fn with_min_connections(mut self, min_connections: u32) -> Self {
        self.min_connections = min_connections;
        self
    }

    /// Sets [`acquire_timeout_ms`](MysqlConfig::acquire_timeout_ms).
    pub fn with_acquire_timeout_ms(mut self, acquire_timeout_ms: u64) -> Self {
        self.acquire_timeout_ms = acquire_timeout_ms;
        self
    }

    /// Sets [`run_migrations`](MysqlConfig::run_migrations).
    pub fn with_run_migrations(mut self, run_migrations: bool) -> Self {
        self.run_migrations = run_migrations;
        self
    }

    /// Sets [`deadlock_retries`](MysqlConfig::deadlock_retries).
    pub fn with_deadlock_retries(mut self, deadlock_retries: u32) -> Self {
        self.deadlock_retries = deadlock_retries;
        self
    }

    /// Sets [`batch_max`](MysqlConfig::batch_max).
    pub fn with_batch_max(mut self, batch_max: usize) -> Self {
        self.batch_max = batch_max;
        self
    }

    /// Sets [`batch_writers`](MysqlConfig::batch_writers).
    pub fn with_batch_writers(mut self, batch_writers: usize) -> Self {
        self.batch_writers = batch_writers;
        self
    }

    /// Every field's rule, naming the first bad field: what
    /// [`AdapterConfig::validate`](bubble_core::AdapterConfig::validate)
    /// runs (its impl sits in `client`, beside `connect`).
    pub(crate) fn check(&self) -> Result<(), InvalidConfig> {
        if !self.urls.is_empty() && !self.url.is_empty() {
            return Err(InvalidConfig::new(
                "urls",
                format!(
                    "set either url (one server) or urls (the nodes of a cluster), not both; \
                     url is {}",
                    redact_url(&self.url)
                ),
            ));
        }
        if self.urls.is_empty() {
            check_url("url", &self.url)?;
        }
        for (i, url) in self.urls.iter().enumerate() {
            check_url(&format!("urls[{i}]"), url)?;
        }
        if self.max_connections == 0 {
            return Err(InvalidConfig::new("max_connections", "must be at least 1"));
        }
        if self.min_connections > self.max_connections {
            return Err(InvalidConfig::new(
                "min_connections",
                format!(
                    "must not exceed max_connections ({}), got {}",
                    self.max_connections, self.min_connections
                ),
            ));
        }
        if self.acquire_timeout_ms == 0 {
            return Err(InvalidConfig::new("acquire_timeout_ms", "must be above 0"));
        }
        if self.batch_max == 0 {
            return Err(InvalidConfig::new(
                "batch_max",
                "must be at least 1 (1 turns batching off)",
            ));
        }
        if self.batch_writers == 0 || self.batch_writers as u64 >= u64::from(self.max_connections) {
            return Err(InvalidConfig::new(
                "batch_writers",
                format!(
                    "must be 1 to max_connections - 1 ({}), got {}",
                    self.max_connections.saturating_sub(1),
                    self.batch_writers
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }
}

/// One database URL's rule; `field` names it in the error.
fn check_url(field: &str, url: &str) -> Result<(), InvalidConfig> {
    if url.is_empty() {
        return Err(InvalidConfig::new(
            field,
            "must be set, e.g. mysql://bubble:secret@127.0.0.1:3306/bubble",
        ));
    }
    if !(url.starts_with("mysql://") || url.starts_with("mariadb://")) {
        return Err(InvalidConfig::new(
            field,
            format!(
                "must start with mysql:// or mariadb://, got {}",
                redact_url(url)
            ),
        ));
    }
    Ok(())
}

impl fmt::Debug for MysqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlConfig")
            .field("url", &redact_url(&self.url))
            .field(
                "urls",
                &self.urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>(),
            )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let c = MysqlConfig::new("mysql://bubble:s3cret@db.internal:3306/bubble");
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("mysql://bubble:<hidden>@db.internal:3306/bubble"));
        let c = MysqlConfig::default().with_urls(["mysql://bubble:s3cret@db1/bubble"]);
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
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
            let e = c.check().expect_err(field);
            assert_eq!(e.field, field, "{e}");
        };
        bad(MysqlConfig::default(), "url");
        bad(MysqlConfig::new("postgres://x/y"), "url");
        let ok = MysqlConfig::new("mysql://root@127.0.0.1/test");
        ok.check().unwrap();
        MysqlConfig::new("mariadb://root@127.0.0.1/test")
            .check()
            .unwrap();
        bad(ok.clone().with_max_connections(0), "max_connections");
        bad(ok.clone().with_min_connections(99), "min_connections");
        bad(ok.clone().with_acquire_timeout_ms(0), "acquire_timeout_ms");
        bad(ok.clone().with_batch_max(0), "batch_max");
        bad(ok.clone().with_batch_writers(0), "batch_writers");
        bad(ok.clone().with_batch_writers(16), "batch_writers");
    }

    #[test]
    fn a_cluster_is_a_list_of_urls_each_checked_by_its_index() {
        let bad = |c: MysqlConfig, field: &str| {
            let e = c.check().expect_err(field);
            assert_eq!(e.field, field, "{e}");
        };
        let nodes = MysqlConfig::default().with_urls(["mysql://h1/bubble", "mysql://h2/bubble"]);
        nodes.check().unwrap();
        assert_eq!(
            nodes.node_urls(),
            ["mysql://h1/bubble", "mysql://h2/bubble"]
        );
        assert_eq!(
            MysqlConfig::new("mysql://h/bubble").node_urls(),
            ["mysql://h/bubble"]
        );
        bad(
            MysqlConfig::default().with_urls(["mysql://h1/bubble", "http://h2/bubble"]),
            "urls[1]",
        );
        bad(
            MysqlConfig::default().with_urls(["mysql://h1/bubble", ""]),
            "urls[1]",
        );
        bad(nodes.with_url("mysql://h/bubble"), "urls");
    }

    #[test]
    fn a_refused_url_does_not_show_its_password() {
        let e = MysqlConfig::new("postgres://u:s3cret@h/db")
            .check()
            .unwrap_err();
        assert_eq!(e.field, "url");
        assert!(!e.to_string().contains("s3cret"), "{e}");
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
