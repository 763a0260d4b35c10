//! The schema migrations in `migrations/`, embedded in the binary.
//!
//! sqlx records what ran in `_sqlx_migrations`, so opening an up-to-date
//! file runs nothing. (Listed by hand rather than with `sqlx::migrate!`,
//! which needs sqlx's `macros` feature and so a second build of SQLite for
//! the proc-macro.)

use sqlx::SqlSafeStr;
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::sqlite::SqliteConnection;

/// The schema, oldest first.
pub(crate) fn migrator() -> Migrator {
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

/// Brings the file `conn` is open on up to date.
///
/// What `Migrator::run` does for one connection, called through sqlx's
/// `run_direct` (public, though hidden from its docs, for this very case):
/// `run` on a `&mut SqliteConnection` inside a future that must be `Send`
/// (the [`AdapterConfig`](bubble_core::AdapterConfig) impl's) trips rustc's
/// "`Acquire` is not general enough" on its higher-ranked lifetime.
pub(crate) async fn migrate(conn: &mut SqliteConnection) -> Result<(), MigrateError> {
    migrator().run_direct(None, conn, false).await
}
