//! Fresh databases for tests (feature `testing`): each [`TestDb`] is a new
//! `bubble_test_<time>_<random>` database on the server named by
//! `BUBBLE_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`, used only
//! to create and drop databases), so test runs never see each other's rows.
//! [`TestDb::create_at`] makes one on another server (a Galera cluster's
//! first node: the database replicates to the others).

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::{Connection, Executor, MySqlConnection};

use bubble_core::AdapterConfig;

use crate::{MysqlConfig, MysqlStore};

/// The server tests use when `BUBBLE_MYSQL_URL` is not set.
pub const DEFAULT_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// Test databases older than this are dropped by the next run (left behind by
/// a run that panicked before dropping its own).
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// A fresh, empty database; [`TestDb::drop_db`] removes it. Clones name the same database.
#[derive(Debug, Clone)]
pub struct TestDb {
    admin_url: String,
    name: String,
    url: String,
}

fn admin_url() -> String {
    std::env::var("BUBBLE_MYSQL_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// `url` with its database replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let path_start = url[authority_start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| authority_start + i);
    let query = url[path_start..]
        .find('?')
        .map_or("", |i| &url[path_start + i..]);
    format!("{}/{db}{query}", &url[..path_start])
}

async fn admin(url: &str) -> MySqlConnection {
    match MySqlConnection::connect(url).await {
        Ok(c) => c,
        Err(e) => panic!(
            "MySQL/MariaDB is not reachable at {} ({e}). Start it with \
             `scripts/services/mariadb.sh`, or point BUBBLE_MYSQL_URL at a MySQL 8 / \
             MariaDB 10.11 server whose user may create databases.",
            bubble_core::redact_url(url)
        ),
    }
}

impl TestDb {
    /// Creates the database (and drops stale ones of earlier runs). Panics
    /// saying how to start the server when it is not reachable.
    pub async fn create() -> TestDb {
        TestDb::create_at(&admin_url()).await
    }

    /// Creates the database on the server at `admin_url` (any database of
    /// it; a user that may create databases), as [`TestDb::create`] does.
    pub async fn create_at(admin_url: &str) -> TestDb {
        let mut conn = admin(admin_url).await;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let stale: Vec<String> = sqlx::query_scalar("SHOW DATABASES LIKE 'bubble\\_test\\_%'")
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
        for db in stale {
            let born = db
                .split('_')
                .nth(2)
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(u64::MAX);
            if now.as_secs().saturating_sub(born) > STALE_AFTER.as_secs() {
                let _ = conn
                    .execute(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS `{db}`"
                    )))
                    .await;
            }
        }
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(now.as_nanos());
        let name = format!("bubble_test_{}_{:08x}", now.as_secs(), h.finish() as u32);
        conn.execute(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE `{name}` CHARACTER SET utf8mb4"
        )))
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = conn.close().await;
        let url = with_database(admin_url, &name);
        TestDb {
            admin_url: admin_url.to_owned(),
            name,
            url,
        }
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The default settings for a store on this database.
    pub fn config(&self) -> MysqlConfig {
        MysqlConfig::new(self.url.clone())
    }

    /// A migrated store on this database with default settings.
    pub async fn store(&self) -> MysqlStore {
        self.config()
            .connect()
            .await
            .unwrap_or_else(|e| panic!("cannot open a store on {}: {e}", self.name))
    }

    /// Applies the crate's migrations up to and including `version` only, as
    /// an older release would have left the database (for upgrade tests).
    pub async fn migrate_to(&self, version: i64) {
        let pool = sqlx::MySqlPool::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.name));
        let mut migrator = crate::schema::migrator();
        migrator.set_locking(false);
        migrator
            .run_to(version, &pool)
            .await
            .unwrap_or_else(|e| panic!("cannot migrate {} to version {version}: {e}", self.name));
        pool.close().await;
    }

    /// A plain connection to this database, for checks the store does not offer.
    pub async fn connection(&self) -> MySqlConnection {
        MySqlConnection::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.name))
    }

    /// Drops the database (best effort: a failure is only printed).
    pub async fn drop_db(self) {
        let url = self.admin_url.clone();
        match MySqlConnection::connect(&url).await {
            Ok(mut conn) => {
                if let Err(e) = conn
                    .execute(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS `{}`",
                        self.name
                    )))
                    .await
                {
                    eprintln!("could not drop test database {}: {e}", self.name);
                }
                let _ = conn.close().await;
            }
            Err(e) => eprintln!("could not drop test database {}: {e}", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("mysql://root@127.0.0.1:3306/test", "x"),
            "mysql://root@127.0.0.1:3306/x"
        );
        assert_eq!(
            with_database("mysql://u:p@h:1/test?ssl-mode=disabled", "x"),
            "mysql://u:p@h:1/x?ssl-mode=disabled"
        );
        assert_eq!(with_database("mysql://h", "x"), "mysql://h/x");
    }
}
