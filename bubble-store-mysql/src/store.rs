//! The store: one connection pool serving every port, connected and migrated here.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::{Executor, SqlSafeStr};

use bubble_core::{Error, ErrorKind, Result};

use crate::batch::Batcher;
use crate::config::{MysqlConfig, MysqlStoreBuilder, redact_url};
use crate::error::map_err;
use crate::schema;

/// bubble's durable store on MySQL 8 or MariaDB 10.11.
///
/// Implements [`InboxStore`](bubble_core::ports::InboxStore),
/// [`GroupStore`](bubble_core::ports::GroupStore),
/// [`ChannelLog`](bubble_core::ports::ChannelLog) and
/// [`AppStore`](bubble_core::ports::AppStore) over one connection pool.
/// Cheap to clone: clones share the pool and the batch writers. Every node of
/// a cluster opens its own store against the same database; the schema's row
/// locks keep versions and seqs ordered across nodes.
#[derive(Clone)]
pub struct MysqlStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: MySqlPool,
    pub(crate) config: MysqlConfig,
    /// Groups concurrent appends into shared transactions (`None` when `batch_max` is 1).
    pub(crate) batcher: Option<Batcher>,
}

impl std::fmt::Debug for MysqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlStore")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl MysqlStore {
    /// A builder starting from the default settings.
    pub fn builder() -> MysqlStoreBuilder {
        MysqlStoreBuilder::default()
    }

    /// Checks `config`, connects, and (unless `run_migrations` is off) brings
    /// the schema up to date.
    pub async fn connect(config: MysqlConfig) -> Result<MysqlStore> {
        config.validate()?;
        let options = MySqlConnectOptions::from_str(&config.url).map_err(|e| {
            Error::invalid(format!(
                "mysql store: url {} does not parse: {e}",
                redact_url(&config.url)
            ))
        })?;
        let pool = MySqlPoolOptions::new()
            .max_connections(config.max_connections)
            .min_connections(config.min_connections)
            .acquire_timeout(config.acquire_timeout())
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    // READ COMMITTED: no gap locks on reads, so concurrent
                    // appends only ever wait for the owners they share. Strict
                    // mode: a value too long for its column is an error, never
                    // silently cut.
                    conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                        .await?;
                    conn.execute(
                        "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), \
                         'STRICT_ALL_TABLES')",
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| {
                let mapped = map_err(e);
                Error::new(
                    mapped.kind(),
                    format!(
                        "cannot connect to MySQL/MariaDB at {}: {} (is the server running? for \
                         the tests: scripts/services/mariadb.sh)",
                        redact_url(&config.url),
                        mapped.message()
                    ),
                )
                .with_source(mapped)
            })?;
        let batcher = (config.batch_max > 1).then(|| {
            Batcher::start(
                pool.clone(),
                config.batch_max,
                config.batch_writers,
                config.deadlock_retries,
            )
        });
        let store = MysqlStore {
            inner: Arc::new(Inner {
                pool,
                config,
                batcher,
            }),
        };
        if store.inner.config.run_migrations {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Applies the migrations the database lacks (what `connect` does unless
    /// `run_migrations` is off). Safe to run from several nodes at once: they
    /// take turns under an advisory lock named after the database.
    pub async fn migrate(&self) -> Result<()> {
        // sqlx's own migration lock asks GET_LOCK for an endless wait with a
        // negative timeout, which MariaDB answers at once with NULL (no lock),
        // so two nodes starting together could both apply a migration. Take
        // the lock here, with a timeout both servers understand, on a
        // connection held until the migrations (run on another connection of
        // the pool) are done.
        let mut conn = self.inner.pool.acquire().await.map_err(map_err)?;
        let got: Option<i64> =
            sqlx::query_scalar("SELECT GET_LOCK(CONCAT('bubble_migrate_', SHA1(DATABASE())), ?)")
                .bind(MIGRATION_LOCK_WAIT.as_secs())
                .fetch_one(&mut *conn)
                .await
                .map_err(map_err)?;
        if got != Some(1) {
            return Err(Error::unavailable(format!(
                "mysql store: another node has held the migration lock for {}s; retry when it \
                 is done",
                MIGRATION_LOCK_WAIT.as_secs()
            )));
        }
        let mut migrator = schema::migrator();
        migrator.set_locking(false);
        let applied = migrator.run(&self.inner.pool).await;
        // Ending the session would release it too; a failure here is harmless.
        let _ = sqlx::query("SELECT RELEASE_LOCK(CONCAT('bubble_migrate_', SHA1(DATABASE())))")
            .execute(&mut *conn)
            .await;
        applied.map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("mysql store: applying the schema migrations failed: {e}"),
            )
            .with_source(e)
        })
    }

    /// The settings this store runs with.
    pub fn config(&self) -> &MysqlConfig {
        &self.inner.config
    }

    /// Closes every connection; calls after it fail with `Unavailable`.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &MySqlPool {
        &self.inner.pool
    }
}

/// How long a node waits for another node's migrations.
const MIGRATION_LOCK_WAIT: Duration = Duration::from_secs(120);

/// Runs `attempt` again while it fails with a deadlock (`Conflict`), at most
/// `retries` more times, with a short randomised pause so the two sides of a
/// deadlock do not collide again.
pub(crate) async fn retry_deadlocks<T, F, Fut>(retries: u32, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(e) if e.kind() == ErrorKind::Conflict && tries < retries => {
                tries += 1;
                tracing::debug!(tries, "mysql: retrying after a deadlock");
                tokio::time::sleep(backoff(tries)).await;
            }
            other => return other,
        }
    }
}

fn backoff(tries: u32) -> Duration {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(tries);
    let base_us = 1_000u64 << tries.min(6);
    Duration::from_micros(base_us + h.finish() % base_us)
}

/// Runs a statement whose text was assembled from fixed fragments and
/// placeholders only (multi-row inserts, `IN (…)` lists): never from input.
pub(crate) fn dynamic(sql: String) -> impl SqlSafeStr {
    sqlx::AssertSqlSafe(sql)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDb;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_connection_reads_committed_and_is_strict() {
        let db = TestDb::create().await;
        let store = db.store().await;
        // MariaDB 10.11 names it tx_isolation, MySQL 8 transaction_isolation.
        let mut isolation: Option<String> = None;
        for var in ["@@SESSION.transaction_isolation", "@@SESSION.tx_isolation"] {
            if let Ok(v) =
                sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!("SELECT {var}")))
                    .fetch_one(store.pool())
                    .await
            {
                isolation = Some(v);
                break;
            }
        }
        let mode: String = sqlx::query_scalar("SELECT @@SESSION.sql_mode")
            .fetch_one(store.pool())
            .await
            .unwrap();
        store.close().await;
        db.drop_db().await;
        assert_eq!(isolation.as_deref(), Some("READ-COMMITTED"));
        assert!(mode.contains("STRICT_ALL_TABLES"), "{mode}");
    }

    #[test]
    fn backoff_grows_and_stays_short() {
        for tries in 1..10 {
            let d = backoff(tries);
            assert!(
                d >= Duration::from_millis(1) && d < Duration::from_millis(130),
                "{d:?}"
            );
        }
    }
}
