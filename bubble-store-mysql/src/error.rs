//! The edge where sqlx's errors and MySQL's vendor codes become core error kinds.

use std::io;

use bubble_core::{Error, ErrorKind};

use bubble_core::redact_url;

/// MySQL/MariaDB server error numbers this adapter tells apart.
pub(crate) mod code {
    /// ER_DUP_ENTRY: a unique or primary key is taken.
    pub const DUP_ENTRY: u16 = 1062;
    /// ER_DUP_ENTRY_WITH_KEY_NAME.
    pub const DUP_ENTRY_WITH_KEY_NAME: u16 = 1586;
    /// ER_LOCK_DEADLOCK: InnoDB rolled the whole transaction back.
    pub const LOCK_DEADLOCK: u16 = 1213;
    /// ER_LOCK_WAIT_TIMEOUT (`innodb_lock_wait_timeout`).
    pub const LOCK_WAIT_TIMEOUT: u16 = 1205;
    /// ER_UNKNOWN_COM_ERROR, which a Galera node answers while it is not
    /// part of the primary component ("WSREP has not yet prepared node for
    /// application use"): joining, desynced, or cut off from the others.
    pub const WSREP_NOT_READY: u16 = 1047;
}

/// The server's error number, when the database answered with one.
pub(crate) fn vendor_code(e: &sqlx::Error) -> Option<u16> {
    match e {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .map(|m| m.number()),
        _ => None,
    }
}

/// Whether `e` is a duplicate key (the dedup hit of an insert).
pub(crate) fn is_duplicate(e: &sqlx::Error) -> bool {
    matches!(
        vendor_code(e),
        Some(code::DUP_ENTRY | code::DUP_ENTRY_WITH_KEY_NAME)
    )
}

/// Converts a driver error into the core's error, choosing the kind by what
/// the caller can do: retry (`Unavailable`, `Timeout`, `Conflict`), fix the
/// input (`InvalidInput`), or give up (`Internal`).
pub(crate) fn map_err(e: sqlx::Error) -> Error {
    let (kind, message) = match &e {
        sqlx::Error::Database(db) => match vendor_code(&e) {
            Some(code::DUP_ENTRY | code::DUP_ENTRY_WITH_KEY_NAME) => (
                ErrorKind::AlreadyExists,
                format!("mysql: duplicate key: {}", db.message()),
            ),
            // Also how Galera reports a transaction that lost certification
            // against another node's (at COMMIT) or was aborted by one
            // (brute-force abort): rolled back all the same.
            Some(code::LOCK_DEADLOCK) => (
                ErrorKind::Conflict,
                "mysql: deadlock (or Galera certification conflict) between concurrent writes; \
                 the transaction was rolled back, retry it"
                    .to_owned(),
            ),
            Some(code::WSREP_NOT_READY) => (
                ErrorKind::Unavailable,
                format!(
                    "mysql: this Galera node is not ready (not in the primary component); \
                     another node may be: {}",
                    db.message()
                ),
            ),
            Some(code::LOCK_WAIT_TIMEOUT) => (
                ErrorKind::Timeout,
                "mysql: waited too long for a row lock (innodb_lock_wait_timeout); retry later"
                    .to_owned(),
            ),
            // ER_QUERY_TIMEOUT (MySQL), ER_STATEMENT_TIMEOUT (MariaDB)
            Some(3024 | 1969) => (
                ErrorKind::Timeout,
                "mysql: the statement ran past its time limit".to_owned(),
            ),
            // Lost or refused connections, a shutting-down or read-only
            // server, an interrupted query: another attempt, maybe on
            // another connection or after a failover, can succeed.
            // ER_CON_COUNT_ERROR, ER_TOO_MANY_USER_CONNECTIONS,
            // ER_SERVER_SHUTDOWN, ER_QUERY_INTERRUPTED, ER_CONNECTION_KILLED,
            // CR_SERVER_GONE_ERROR, CR_SERVER_LOST, ER_OPTION_PREVENTS_STATEMENT
            // (--read-only), ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION,
            // ER_READ_ONLY_MODE.
            Some(1040 | 1203 | 1053 | 1317 | 1927 | 2006 | 2013 | 1290 | 1792 | 1836) => (
                ErrorKind::Unavailable,
                format!("mysql: the server cannot serve this now: {}", db.message()),
            ),
            // ER_DATA_TOO_LONG, ER_WARN_DATA_OUT_OF_RANGE,
            // ER_TRUNCATED_WRONG_VALUE_FOR_FIELD, ER_TRUNCATED_WRONG_VALUE,
            // ER_BAD_NULL_ERROR.
            Some(1406 | 1264 | 1366 | 1292 | 1048) => (
                ErrorKind::InvalidInput,
                format!(
                    "mysql: a value does not fit its column (ids are at most 128 bytes): {}",
                    db.message()
                ),
            ),
            // ER_NO_SUCH_TABLE, ER_BAD_FIELD_ERROR.
            Some(1146 | 1054) => (
                ErrorKind::Internal,
                format!(
                    "mysql: the schema is missing or older than this build; run the migrations \
                     (run_migrations = true): {}",
                    db.message()
                ),
            ),
            // ER_DBACCESS_DENIED_ERROR, ER_ACCESS_DENIED_ERROR,
            // ER_TABLEACCESS_DENIED_ERROR, ER_BAD_DB_ERROR.
            Some(1044 | 1045 | 1142 | 1049) => (
                ErrorKind::Internal,
                format!(
                    "mysql: the server refused the configured user or database; check url and \
                     grants: {}",
                    db.message()
                ),
            ),
            _ => (
                ErrorKind::Internal,
                format!("mysql: the server reported an error: {}", db.message()),
            ),
        },
        sqlx::Error::Io(io) => (
            ErrorKind::Unavailable,
            match io.kind() {
                io::ErrorKind::ConnectionRefused => "mysql: connection refused: is the server \
                                                     running at the configured url? (tests: \
                                                     scripts/services/mariadb.sh)"
                    .to_owned(),
                _ => "mysql: the connection to the server failed or was lost; retry".to_owned(),
            },
        ),
        sqlx::Error::Tls(_) => (
            ErrorKind::Unavailable,
            "mysql: the TLS handshake with the server failed".to_owned(),
        ),
        sqlx::Error::PoolTimedOut => (
            ErrorKind::Unavailable,
            "mysql: every pooled connection stayed busy past acquire_timeout_ms (or the server \
             is unreachable); retry, or raise max_connections"
                .to_owned(),
        ),
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => (
            ErrorKind::Unavailable,
            "mysql: the connection pool is closed".to_owned(),
        ),
        sqlx::Error::Configuration(_) | sqlx::Error::InvalidArgument(_) => (
            ErrorKind::InvalidInput,
            "mysql: the connection settings are not valid".to_owned(),
        ),
        sqlx::Error::RowNotFound => (ErrorKind::NotFound, "mysql: no such row".to_owned()),
        sqlx::Error::Migrate(_) => (
            ErrorKind::Internal,
            "mysql: applying the schema migrations failed".to_owned(),
        ),
        _ => (
            ErrorKind::Internal,
            "mysql: unexpected driver error".to_owned(),
        ),
    };
    Error::new(kind, message).with_source(e)
}

/// Marks an error of COMMIT that left its outcome unknown: the connection
/// was lost after the COMMIT was sent, so the transaction may have been
/// committed (and, on Galera, replicated) or not. Only a write that is
/// idempotent may be run again after it.
#[derive(Debug)]
pub(crate) struct CommitOutcomeUnknown(Error);

impl std::fmt::Display for CommitOutcomeUnknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "commit outcome unknown: {}", self.0)
    }
}

impl std::error::Error for CommitOutcomeUnknown {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Converts an error of COMMIT: a lost connection (`Unavailable`) becomes
/// [`CommitOutcomeUnknown`]; anything the server answered (a deadlock or a
/// certification conflict) means the transaction was rolled back.
pub(crate) fn commit_err(e: sqlx::Error) -> Error {
    let mapped = map_err(e);
    if mapped.kind() != ErrorKind::Unavailable {
        return mapped;
    }
    Error::new(
        ErrorKind::Unavailable,
        format!(
            "mysql: lost the server during COMMIT, so the write may or may not be stored: {}",
            mapped.message()
        ),
    )
    .with_source(CommitOutcomeUnknown(mapped))
}

/// Whether `e` came from [`commit_err`] with the outcome unknown.
pub(crate) fn commit_outcome_unknown(e: &Error) -> bool {
    std::error::Error::source(e).is_some_and(|s| s.is::<CommitOutcomeUnknown>())
}

/// The configured `url` does not parse as MySQL connection options.
pub(crate) fn bad_url(url: &str, e: sqlx::Error) -> Error {
    Error::invalid(format!(
        "mysql store: url {} does not parse: {e}",
        redact_url(url)
    ))
}

/// The server at `url` could not be reached (the first connection of the pool).
pub(crate) fn cannot_connect(url: &str, e: sqlx::Error) -> Error {
    let mapped = map_err(e);
    Error::new(
        mapped.kind(),
        format!(
            "cannot connect to MySQL/MariaDB at {}: {} (is the server running? for \
             the tests: scripts/services/mariadb.sh)",
            redact_url(url),
            mapped.message()
        ),
    )
    .with_source(mapped)
}

/// Applying the schema migrations failed.
pub(crate) fn migrate_err(e: sqlx::migrate::MigrateError) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("mysql store: applying the schema migrations failed: {e}"),
    )
    .with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_connection_is_unavailable_and_retryable() {
        for kind in [
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::UnexpectedEof,
            io::ErrorKind::ConnectionRefused,
        ] {
            let e = map_err(sqlx::Error::Io(io::Error::new(kind, "gone")));
            assert_eq!(e.kind(), ErrorKind::Unavailable, "{kind:?}");
            assert!(e.is_retryable());
        }
    }

    #[test]
    fn a_lost_commit_is_unavailable_and_says_its_outcome_is_unknown() {
        let lost = commit_err(sqlx::Error::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "gone",
        )));
        assert_eq!(lost.kind(), ErrorKind::Unavailable);
        assert!(commit_outcome_unknown(&lost), "{lost}");
        let lost_before = map_err(sqlx::Error::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "gone",
        )));
        assert!(!commit_outcome_unknown(&lost_before));
    }

    #[test]
    fn a_busy_pool_is_unavailable() {
        let e = map_err(sqlx::Error::PoolTimedOut);
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.message().contains("max_connections"));
    }

    #[test]
    fn decode_trouble_is_internal_and_keeps_its_source() {
        let e = map_err(sqlx::Error::ColumnNotFound("nope".into()));
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert!(std::error::Error::source(&e).is_some());
    }
}
