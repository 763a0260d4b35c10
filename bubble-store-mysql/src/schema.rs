//! The schema migrations, embedded in the binary.
//!
//! The files in `migrations/` follow sqlx's layout (`<version>_<description>.sql`),
//! so `sqlx migrate run --source bubble-store-mysql/migrations` applies
//! the same schema with the same checksums. They are embedded with
//! `include_str!` rather than `sqlx::migrate!` so the crate does not need
//! sqlx's proc-macro crate (and the database drivers it would build for the
//! host). Adding a migration: add the file and a line to [`MIGRATIONS`]; a
//! test fails if a file is not listed.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// Every migration: (version, description, file name, SQL).
pub(crate) const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "init",
        "0001_init.sql",
        include_str!("../migrations/0001_init.sql"),
    ),
    (
        2,
        "prune_sent",
        "0002_prune_sent.sql",
        include_str!("../migrations/0002_prune_sent.sql"),
    ),
    (
        3,
        "messages",
        "0003_messages.sql",
        include_str!("../migrations/0003_messages.sql"),
    ),
    (
        4,
        "conversations",
        "0004_conversations.sql",
        include_str!("../migrations/0004_conversations.sql"),
    ),
    (
        5,
        "meta_settings_reactions",
        "0005_meta_settings_reactions.sql",
        include_str!("../migrations/0005_meta_settings_reactions.sql"),
    ),
    (
        6,
        "jobs_push_tokens",
        "0006_jobs_push_tokens.sql",
        include_str!("../migrations/0006_jobs_push_tokens.sql"),
    ),
    (
        7,
        "unread_on_the_list",
        "0007_unread_on_the_list.sql",
        include_str!("../migrations/0007_unread_on_the_list.sql"),
    ),
    (
        8,
        "retention",
        "0008_retention.sql",
        include_str!("../migrations/0008_retention.sql"),
    ),
];

/// The migrator for [`MIGRATIONS`]. `MysqlStore::migrate` runs it under its
/// own advisory lock (sqlx's lock does not work on MariaDB).
pub(crate) fn migrator() -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|&(version, description, _, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS.iter().map(|m| m.2.to_owned()).collect();
        assert_eq!(
            files, listed,
            "list every file of migrations/ in MIGRATIONS"
        );
        for (version, description, file, _) in MIGRATIONS {
            assert_eq!(
                *file,
                format!("{version:04}_{description}.sql"),
                "file names follow <version>_<description>.sql"
            );
        }
    }
}
