//! [`MysqlStore`]: the connection pool and the batch writers every port
//! uses, connected and migrated by
//! [`MysqlConfig::connect`](bubble_core::AdapterConfig::connect).

use std::future::Future;
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
use crate::galera::Galera;
use crate::nodes::Nodes;
use crate::point_reads::{self, RosterReads, SettingsReads};
use crate::retry::{self, Replay};
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
/// [`ChannelLog`](bubble_core::ports::ChannelLog),
/// [`AppStore`](bubble_core::ports::AppStore),
/// [`JobQueue`](bubble_core::jobs::JobQueue) and
/// [`PushTokens`](bubble_core::notify::PushTokens) over one connection pool.
/// Cheap to clone: clones share the pool and the batch writers. Every node of
/// a cluster opens its own store against the same database; the schema's row
/// locks keep versions and seqs ordered across nodes.
#[derive(Clone)]
pub struct MysqlStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// Every port's connections: one pool per database node, and the node
    /// the store is on.
    pub(crate) nodes: Arc<Nodes>,
    /// The settings it runs with (deadlock retries are read per call).
    pub(crate) config: MysqlConfig,
    /// Groups concurrent appends into shared transactions (`None` when `batch_max` is 1).
    pub(crate) batcher: Option<Batcher>,
    /// How the server numbers a multi-row insert's message rows.
    pub(crate) message_ids: MessageIds,
    /// Whether the server is a Galera node (transactions check they are
    /// still open before they write).
    pub(crate) galera: Galera,
    /// The settings reads of concurrent calls (every 1:1 send's block
    /// check), gathered into one statement.
    pub(crate) settings_reads: SettingsReads,
    /// The roster reads of concurrent calls (every group send's audience),
    /// gathered into one statement.
    pub(crate) roster_reads: RosterReads,
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
    /// `run_migrations` is off) brings the schema up to date. With several
    /// `urls` the store starts on the first node that answers; the others'
    /// pools connect when the store moves to them.
    async fn open(config: MysqlConfig) -> Result<MysqlStore> {
        let urls = config.node_urls();
        let mut pools = Vec::with_capacity(urls.len());
        for url in &urls {
            let options = MySqlConnectOptions::from_str(url).map_err(|e| bad_url(url, e))?;
            pools.push(pool_options(&config).connect_lazy_with(options));
        }
        let mut first = None;
        let mut last_error = None;
        for (i, pool) in pools.iter().enumerate() {
            match pool.acquire().await {
                Ok(_) => {
                    first = Some(i);
                    break;
                }
                Err(e) => last_error = Some(cannot_connect(urls[i], e)),
            }
        }
        let Some(first) = first else {
            return Err(last_error.expect("at least one url"));
        };
        let nodes = Arc::new(Nodes::new(pools, &urls, first));
        let message_ids = message_ids(nodes.current().1).await?;
        let galera = Galera::detect(nodes.current().1).await.map_err(map_err)?;
        let batcher = (config.batch_max > 1).then(|| {
            Batcher::start(
                nodes.clone(),
                message_ids,
                galera,
                config.batch_max,
                config.batch_writers,
                config.deadlock_retries,
            )
        });
        let (settings_reads, roster_reads) = point_reads::start(&nodes);
        let store = MysqlStore {
            inner: Arc::new(Inner {
                nodes,
                config,
                batcher,
                message_ids,
                galera,
                settings_reads,
                roster_reads,
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
                inner.nodes.clone(),
                message_ids,
                inner.galera,
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
        let pool = self.pool();
        let mut conn = pool.acquire().await.map_err(map_err)?;
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
        let applied = migrator.run(pool).await;
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
        self.inner.nodes.close().await;
    }

    /// The pool of the node the store is on now.
    pub(crate) fn pool(&self) -> &MySqlPool {
        self.inner.nodes.current().1
    }

    /// Runs a read on the current node; if the node fails, on the next
    /// one too (a read can always run again).
    pub(crate) async fn read<T, F, Fut>(&self, attempt: F) -> Result<T>
    where
        F: FnMut(MySqlPool) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        retry::run(&self.inner.nodes, 0, Replay::Always, attempt).await
    }

    /// Runs a write on the current node, again after a deadlock or a
    /// certification conflict (both roll the whole write back), but not on
    /// the next node when its node fails: the caller gets `Unavailable`
    /// and its next call goes to the next node.
    pub(crate) async fn write<T, F, Fut>(&self, attempt: F) -> Result<T>
    where
        F: FnMut(MySqlPool) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        retry::run(
            &self.inner.nodes,
            self.inner.config.deadlock_retries,
            Replay::Never,
            attempt,
        )
        .await
    }

    /// Deletes the rows of `table` whose `id` is among `ids`, 1,000 ids per
    /// statement. Deleting twice deletes once, so each statement is safe to
    /// run again after a deadlock (the search outbox, the job queue).
    pub(crate) async fn delete_ids(&self, table: &'static str, ids: &[u64]) -> Result<()> {
        for chunk in ids.chunks(1000) {
            let sql = format!(
                "DELETE FROM {table} WHERE id IN {}",
                crate::rows::row_placeholders(chunk.len())
            );
            let sql = &sql;
            self.write(|pool| async move {
                let mut q = sqlx::query(crate::rows::dynamic(sql.clone()));
                for id in chunk {
                    q = q.bind(*id);
                }
                q.execute(&pool).await.map_err(map_err)
            })
            .await?;
        }
        Ok(())
    }

    /// Which node the store is on now (its index in `urls`), for tests.
    #[cfg(any(test, feature = "testing"))]
    pub fn current_node(&self) -> usize {
        self.inner.nodes.current().0
    }
}

/// The pool of one node: its size and timeouts from `config`, and the
/// session settings of every connection.
fn pool_options(config: &MysqlConfig) -> MySqlPoolOptions {
    MySqlPoolOptions::new()
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
                // On a Galera node, reads (and BEGIN) first wait until the
                // node has applied every write the cluster committed before
                // them: what a client was told is stored through one node is
                // there when it reads through another (after the store moved,
                // or from another server on another node). MySQL 8 has no
                // such variable, and wsrep_on is OFF on a plain MariaDB.
                if Galera::detect(&mut *conn).await?.0 {
                    conn.execute("SET SESSION wsrep_sync_wait = 1").await?;
                }
                Ok(())
            })
        })
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
