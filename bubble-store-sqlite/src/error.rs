//! The one place where SQLite's errors (rusqlite's) and the file system's
//! become core error kinds, and where the migrations' refusals are worded.

use std::path::Path;

use bubble_core::{Error, ErrorKind};

// SQLite primary result codes (the low byte of an extended code).
// https://www.sqlite.org/rescode.html
const SQLITE_PERM: i64 = 3;
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_NOMEM: i64 = 7;
const SQLITE_READONLY: i64 = 8;
const SQLITE_IOERR: i64 = 10;
const SQLITE_CORRUPT: i64 = 11;
const SQLITE_FULL: i64 = 13;
const SQLITE_CANTOPEN: i64 = 14;
const SQLITE_PROTOCOL: i64 = 15;
const SQLITE_TOOBIG: i64 = 18;
const SQLITE_CONSTRAINT: i64 = 19;
const SQLITE_NOTADB: i64 = 26;
// Extended codes of SQLITE_CONSTRAINT that mean "this key exists".
const SQLITE_CONSTRAINT_PRIMARYKEY: i64 = 1555;
const SQLITE_CONSTRAINT_UNIQUE: i64 = 2067;

/// Why a file could not be brought up to date (`migrate_err` turns it into
/// a core error naming the file).
#[derive(Debug)]
pub(crate) enum MigrateError {
    /// SQLite failed while running migration `Some(version)`, or while
    /// reading or creating the bookkeeping (`None`).
    Sqlite(Option<i64>, rusqlite::Error),
    /// The file records this migration as failed (`success` false): it may
    /// be half applied.
    Failed(i64),
    /// This migration ran on the file with other SQL than this build's.
    Changed(i64),
    /// The file records a migration this build does not have.
    Unknown {
        /// The migration.
        version: i64,
        /// The highest this build has: below `version`, the file is from a
        /// newer release.
        newest_known: i64,
    },
}

/// Why the migrations could not bring the file at `path` up to date.
pub(crate) fn migrate_err(path: &Path, e: MigrateError) -> Error {
    let why = match e {
        MigrateError::Sqlite(version, e) => {
            let inner = map_sqlite(e);
            let step = match version {
                Some(v) => format!("at migration {v}"),
                None => "reading its migration history".to_owned(),
            };
            return Error::new(
                inner.kind(),
                format!(
                    "migrating the SQLite database {} failed {step}: {inner}",
                    path.display()
                ),
            )
            .with_source(inner);
        }
        MigrateError::Failed(v) => format!(
            "migration {v} is recorded as failed (success = false in _sqlx_migrations), \
             so the file may be half migrated; restore a backup, or repair the file and delete that row"
        ),
        MigrateError::Changed(v) => format!(
            "migration {v} was changed after it ran on this file (its checksum in \
             _sqlx_migrations is not this build's); run the bubble that migrated the file"
        ),
        MigrateError::Unknown {
            version,
            newest_known,
        } if version > newest_known => format!(
            "it was migrated by a newer bubble (migration {version} is unknown here, \
             this build knows up to {newest_known}); run that version"
        ),
        MigrateError::Unknown {
            version,
            newest_known,
        } => format!(
            "migration {version} recorded in it is unknown to this build (which knows 1 to \
             {newest_known}); the file was migrated by another build of bubble"
        ),
    };
    Error::internal(format!(
        "cannot use the SQLite database {}: {why}",
        path.display()
    ))
}

/// The directory meant to hold the database file could not be created.
pub(crate) fn cannot_create_dir(dir: &Path, e: std::io::Error) -> Error {
    Error::unavailable(format!(
        "cannot create the directory {} for the SQLite database: {e}; \
         check the `path` setting and the directory's permissions",
        dir.display()
    ))
    .with_source(e)
}

/// The writer's thread could not be started.
pub(crate) fn cannot_start_writer(e: std::io::Error) -> Error {
    Error::unavailable(format!("cannot start the SQLite writer thread: {e}")).with_source(e)
}

/// Converts an error of rusqlite, which drives every connection, into a
/// core error whose kind says what the caller can do: retry (busy, locked,
/// disk full, I/O), or give up (corruption, bugs).
pub(crate) fn map_sqlite(e: rusqlite::Error) -> Error {
    let (kind, message) = match &e {
        rusqlite::Error::SqliteFailure(failure, _) => classify(i64::from(failure.extended_code)),
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(..)
        | rusqlite::Error::InvalidColumnType(..) => (
            ErrorKind::Internal,
            "a stored SQLite row does not decode; the database may be from another program or corrupt"
                .to_owned(),
        ),
        _ => (ErrorKind::Internal, "SQLite failed".to_owned()),
    };
    Error::new(kind, message).with_source(e)
}

/// Kind and advice for a SQLite (extended) result code.
fn classify(code: i64) -> (ErrorKind, String) {
    if code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY {
        return (
            ErrorKind::AlreadyExists,
            "the key exists already".to_owned(),
        );
    }
    let (kind, msg) = match code & 0xff {
        SQLITE_BUSY | SQLITE_LOCKED => (
            ErrorKind::Unavailable,
            "the SQLite database is locked by another connection or process; retry later",
        ),
        SQLITE_FULL => (
            ErrorKind::Unavailable,
            "the SQLite database is full (its disk, or the max_size_mb limit); free space or raise the limit, then retry (nothing of this write was kept)",
        ),
        SQLITE_IOERR => (
            ErrorKind::Unavailable,
            "I/O error on the SQLite database file; check the disk (is it full or failing?) and retry",
        ),
        SQLITE_NOMEM => (
            ErrorKind::Unavailable,
            "SQLite ran out of memory; retry later",
        ),
        SQLITE_READONLY | SQLITE_PERM | SQLITE_CANTOPEN => (
            ErrorKind::Unavailable,
            "the SQLite database file cannot be opened for writing; check that its directory exists and is writable",
        ),
        SQLITE_CORRUPT | SQLITE_NOTADB => (
            ErrorKind::Internal,
            "the SQLite database file is corrupt or not a database; restore it from a backup",
        ),
        SQLITE_PROTOCOL => (
            ErrorKind::Unavailable,
            "SQLite's WAL lock protocol failed; retry",
        ),
        SQLITE_TOOBIG => (ErrorKind::TooLarge, "a value is larger than SQLite allows"),
        SQLITE_CONSTRAINT => (
            ErrorKind::InvalidInput,
            "a stored value breaks a constraint of the schema",
        ),
        _ => (ErrorKind::Internal, "SQLite failed"),
    };
    (kind, msg.to_owned())
}

/// The error a caller gets when the writer could not be reached or
/// stopped before answering.
pub(crate) fn writer_gone() -> Error {
    Error::unavailable(
        "the SQLite writer has stopped (the store is closing or crashed); retry on a new store",
    )
}

/// An error to hand to each caller of a failed batch (errors are not `Clone`).
pub(crate) fn copy_for_caller(e: &Error) -> Error {
    Error::new(e.kind(), format!("the batch this write was in failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_and_primary_key_violations_are_already_exists() {
        assert_eq!(classify(2067).0, ErrorKind::AlreadyExists);
        assert_eq!(classify(1555).0, ErrorKind::AlreadyExists);
    }

    #[test]
    fn busy_and_locked_are_retryable() {
        for code in [
            5, 6, 517, /* BUSY_SNAPSHOT */
            262, /* LOCKED_SHAREDCACHE */
        ] {
            let (kind, _) = classify(code);
            assert_eq!(kind, ErrorKind::Unavailable, "code {code}");
            assert!(kind.is_retryable());
        }
    }

    #[test]
    fn a_full_disk_is_retryable_and_says_so() {
        let (kind, msg) = classify(13);
        assert_eq!(kind, ErrorKind::Unavailable);
        assert!(msg.contains("disk"), "{msg}");
        assert!(msg.contains("max_size_mb"), "{msg}");
        assert!(msg.contains("full"), "{msg}");
    }

    #[test]
    fn io_errors_are_retryable() {
        assert_eq!(classify(10).0, ErrorKind::Unavailable);
        assert_eq!(classify(10 | (4 << 8)).0, ErrorKind::Unavailable);
    }

    #[test]
    fn corruption_is_not_retryable() {
        assert_eq!(classify(11).0, ErrorKind::Internal);
        assert_eq!(classify(26).0, ErrorKind::Internal);
    }
}
