//! [`MysqlStore`]: the connection pool and the batch writers every port
//! uses, connected and migrated by
//! [`MysqlConfig::connect`](bubble_core::AdapterConfig::connect).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Executor;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};

use bubble_core::{AdapterConfig, Error, InvalidConfig, Result};

use crate::append::MessageIds;
use crate::batch::Batcher;
use crate::config::MysqlConfig;
use crate::error::{bad_url, cannot_connect, map_err, migrate_err};
use crate::schema;

#[async_trait]
impl AdapterConfig for MysqlConfig {
    type Adapter = MysqlStore;

    fn validate(&self) -> std::result::Result<(), InvalidConfig> {
        self.check()
    }

    /// Validates, connects, and (unless `run_migrations` is off) brings the
    /// schema up to date.
    async fn connect(&self) -> Result<MysqlStore> {
        self.validate()?;
        MysqlStore::open(self.clone()).await
    }
}

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
    /// Every port's connections.
    pub(crate) pool: MySqlPool,
    /// The settings it runs with (deadlock retries are read per call).
    pub(crate) config: MysqlConfig,
    /// Groups concurrent appends into shared transactions (`None` when `batch_max` is 1).
    pub(crate) batcher: Option<Batcher>,
    /// How the server numbers a multi-row insert's message rows.
    pub(crate) message_ids: MessageIds,
}

impl std::fmt::Debug for MysqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlStore")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl MysqlStore {
    /// Connects with `config` (already validated), and (unless
    /// `run_migrations` is off) brings the schema up to date.
    async fn open(config: MysqlConfig) -> Result<MysqlStore> {
        let options =
            MySqlConnectOptions::from_str(&config.url).map_err(|e| bad_url(&config.url, e))?;
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
            .map_err(|e| cannot_connect(&config.url, e))?;
        let message_ids = message_ids(&pool).await?;
        let batcher = (config.batch_max > 1).then(|| {
            Batcher::start(
                pool.clone(),
                message_ids,
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
                message_ids,
            }),
        };
        if store.inner.config.run_migrations {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Overrides how message ids are taken, so tests can run the one-row
    /// path of MySQL 8's interleaved lock mode on any server.
    #[cfg(test)]
    pub(crate) fn with_message_ids(self, message_ids: MessageIds) -> MysqlStore {
        let inner = Arc::into_inner(self.inner).expect("a store not shared yet");
        let batcher = (inner.config.batch_max > 1).then(|| {
            Batcher::start(
                inner.pool.clone(),
                message_ids,
                inner.config.batch_max,
                inner.config.batch_writers,
                inner.config.deadlock_retries,
            )
        });
        MysqlStore {
            inner: Arc::new(Inner {
                batcher,
                message_ids,
                ..inner
            }),
        }
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
        applied.map_err(migrate_err)
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

/// Whether one multi-row insert's auto-increment ids are consecutive on this
/// server: they are under `innodb_autoinc_lock_mode` 0 and 1 (MariaDB's
/// default), `auto_increment_increment` apart (a Galera cluster sets it to
/// its size); under 2 (MySQL 8's default) they may interleave with another
/// statement's, and each message row is inserted on its own.
async fn message_ids(pool: &MySqlPool) -> Result<MessageIds> {
    let (mode, step): (i64, i64) = sqlx::query_as(
        "SELECT CAST(@@innodb_autoinc_lock_mode AS SIGNED), \
             CAST(@@auto_increment_increment AS SIGNED)",
    )
    .fetch_one(pool)
    .await
    .map_err(map_err)?;
    Ok(match mode {
        0 | 1 => MessageIds::Consecutive {
            step: step.max(1) as u64,
        },
        _ => MessageIds::OnePerStatement,
    })
}
