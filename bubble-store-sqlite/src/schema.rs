//! The schema: the migrations in `migrations/`, embedded in the binary, and
//! what brings a file up to date with them.
//!
//! The bookkeeping is the one earlier releases left, when sqlx ran the
//! migrations: a table `_sqlx_migrations` with one row per migration
//! applied and the SHA-384 of its SQL as the checksum, checked the way
//! sqlx's migrator checks it. A file those releases wrote is therefore up
//! to date as it is (`tests/migrations.rs` opens one), and the rows written
//! here are the ones sqlx would have written.

use std::time::Instant;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sha2::{Digest, Sha384};

use crate::error::MigrateError;

/// One schema change.
#[derive(Debug, Clone)]
pub(crate) struct Migration {
    /// Its number: migrations run in this order, each once per file.
    pub version: i64,
    /// Recorded with it; sqlx took it from the file's name (`0001_init.sql`:
    /// `init`).
    pub description: &'static str,
    /// The statements, as in the file: the checksum is over this text.
    pub sql: &'static str,
}

impl Migration {
    /// What `_sqlx_migrations.checksum` holds: the SHA-384 of the SQL text,
    /// as sqlx computes it.
    pub fn checksum(&self) -> Vec<u8> {
        Sha384::digest(self.sql.as_bytes()).to_vec()
    }
}

/// The schema, oldest first. A migration that has shipped is never edited:
/// files record its checksum and refuse to open with a changed one. A
/// change is a new file `NNNN_what.sql` and a line here. Its SQL must not
/// BEGIN or COMMIT: it runs inside the transaction that records it.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "init",
        sql: include_str!("../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        description: "prune_sent",
        sql: include_str!("../migrations/0002_prune_sent.sql"),
    },
    Migration {
        version: 3,
        description: "messages",
        sql: include_str!("../migrations/0003_messages.sql"),
    },
    Migration {
        version: 4,
        description: "history",
        sql: include_str!("../migrations/0004_history.sql"),
    },
    Migration {
        version: 5,
        description: "conversations",
        sql: include_str!("../migrations/0005_conversations.sql"),
    },
    Migration {
        version: 6,
        description: "extras",
        sql: include_str!("../migrations/0006_extras.sql"),
    },
    Migration {
        version: 7,
        description: "jobs_push_tokens",
        sql: include_str!("../migrations/0007_jobs_push_tokens.sql"),
    },
    Migration {
        version: 8,
        description: "unread_on_the_list",
        sql: include_str!("../migrations/0008_unread_on_the_list.sql"),
    },
    Migration {
        version: 9,
        description: "retention",
        sql: include_str!("../migrations/0009_retention.sql"),
    },
    Migration {
        version: 10,
        description: "numbered_names",
        sql: include_str!("../migrations/0010_numbered_names.sql"),
    },
];

/// The bookkeeping table with the columns and the SQL text of sqlx 0.9's
/// SQLite migrator, so a file created here has the very schema (down to
/// `sqlite_master`) of one created by the earlier releases.
const BOOKKEEPING: &str = "
CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
);
";

/// Brings the file `conn` is open on up to date.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), MigrateError> {
    run(conn, MIGRATIONS)
}

/// Checks the file's history against `migrations` (sorted by version),
/// then applies each one it lacks, in order, each in its own transaction
/// together with its row: a migration either ran and is recorded, or left
/// no trace. The checks are sqlx's, in its order: a failed row, then a
/// recorded migration unknown here, then each known one's checksum.
fn run(conn: &mut Connection, migrations: &[Migration]) -> Result<(), MigrateError> {
    let history = |e| MigrateError::Sqlite(None, e);
    conn.execute_batch(BOOKKEEPING).map_err(history)?;
    let failed: Option<i64> = conn
        .query_row(
            "SELECT version FROM _sqlx_migrations WHERE success = FALSE ORDER BY version LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(history)?;
    if let Some(version) = failed {
        return Err(MigrateError::Failed(version));
    }
    let applied: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(history)?;
    let newest_known = migrations.last().map_or(0, |m| m.version);
    if let Some(&(version, _)) = applied
        .iter()
        .find(|(v, _)| !migrations.iter().any(|m| m.version == *v))
    {
        return Err(MigrateError::Unknown {
            version,
            newest_known,
        });
    }
    for m in migrations {
        match applied.iter().find(|(v, _)| *v == m.version) {
            Some((_, checksum)) if *checksum != m.checksum() => {
                return Err(MigrateError::Changed(m.version));
            }
            Some(_) => {}
            None => apply(conn, m)?,
        }
    }
    Ok(())
}

/// Runs one migration and records it, in one transaction.
fn apply(conn: &mut Connection, m: &Migration) -> Result<(), MigrateError> {
    let failed = |e| MigrateError::Sqlite(Some(m.version), e);
    // IMMEDIATE takes the write lock now: a second process opening the
    // same file waits here (busy_timeout), then finds the row below.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed)?;
    let recorded: Option<Vec<u8>> = tx
        .query_row(
            "SELECT checksum FROM _sqlx_migrations WHERE version = ?1",
            [m.version],
            |r| r.get(0),
        )
        .optional()
        .map_err(failed)?;
    if let Some(checksum) = recorded {
        // Applied by another process since the history was read.
        return if checksum == m.checksum() {
            Ok(())
        } else {
            Err(MigrateError::Changed(m.version))
        };
    }
    let started = Instant::now();
    tx.execute_batch(m.sql).map_err(failed)?;
    // sqlx records nanoseconds; it writes them after its COMMIT, here they
    // go in with the row (the COMMIT itself is not counted).
    let nanos = i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
    tx.execute(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (?1, ?2, TRUE, ?3, ?4)",
        params![m.version, m.description, m.checksum(), nanos],
    )
    .map_err(failed)?;
    tx.commit().map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> Connection {
        Connection::open_in_memory().unwrap()
    }

    fn versions(conn: &Connection) -> Vec<i64> {
        let mut s = conn
            .prepare("SELECT version FROM _sqlx_migrations ORDER BY version")
            .unwrap();
        s.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    fn has_table(conn: &Connection, name: &str) -> bool {
        conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
            == 1
    }

    #[test]
    fn the_migrations_are_in_version_order_without_gaps() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{m:?}");
        }
    }

    #[test]
    fn the_checksum_is_the_sha384_of_the_sql() {
        let m = Migration {
            version: 1,
            description: "abc",
            sql: "abc",
        };
        // The SHA-384 test vector of "abc" (FIPS 180-2).
        let hex: String = m.checksum().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
             8086072ba1e7cc2358baeca134c825a7"
        );
    }

    #[test]
    fn a_second_run_applies_nothing() {
        let mut conn = memory();
        migrate(&mut conn).unwrap();
        let installed: String = conn
            .query_row("SELECT installed_on FROM _sqlx_migrations", [], |r| {
                r.get(0)
            })
            .unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(versions(&conn), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        let again: String = conn
            .query_row("SELECT installed_on FROM _sqlx_migrations", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(installed, again);
    }

    #[test]
    fn a_new_migration_is_applied_after_those_already_there() {
        let mut conn = memory();
        let first = [Migration {
            version: 1,
            description: "one",
            sql: "CREATE TABLE one (x INTEGER);",
        }];
        run(&mut conn, &first).unwrap();
        let both = [
            first[0].clone(),
            Migration {
                version: 2,
                description: "two",
                sql: "CREATE TABLE two (y INTEGER); INSERT INTO one VALUES (1);",
            },
        ];
        run(&mut conn, &both).unwrap();
        assert_eq!(versions(&conn), [1, 2]);
        assert!(has_table(&conn, "two"));
        let (description, success): (String, bool) = conn
            .query_row(
                "SELECT description, success FROM _sqlx_migrations WHERE version = 2",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((description.as_str(), success), ("two", true));
    }

    #[test]
    fn a_migration_that_fails_leaves_neither_its_changes_nor_its_row() {
        let mut conn = memory();
        let broken = [Migration {
            version: 1,
            description: "broken",
            sql: "CREATE TABLE half (x INTEGER); CREATE TABLE half (y INTEGER);",
        }];
        match run(&mut conn, &broken) {
            Err(MigrateError::Sqlite(Some(1), _)) => {}
            other => panic!("expected migration 1 to fail, got {other:?}"),
        }
        assert!(versions(&conn).is_empty());
        assert!(!has_table(&conn, "half"), "rolled back with its row");
    }

    #[test]
    fn an_unknown_older_migration_is_refused_as_unknown() {
        let mut conn = memory();
        migrate(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (0, 'elsewhere', TRUE, x'00', 0)",
        )
        .unwrap();
        match migrate(&mut conn) {
            Err(MigrateError::Unknown {
                version: 0,
                newest_known: 10,
            }) => {}
            other => panic!("expected migration 0 to be unknown, got {other:?}"),
        }
    }
}
