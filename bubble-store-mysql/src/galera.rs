//! A Galera hazard and its guard. A Galera node aborts a local transaction
//! when a conflicting write from another node arrives (a brute-force
//! abort). When that lands while the transaction runs a statement (a read,
//! or one of a multi-statement packet), MariaDB 10.11 may answer it
//! normally, with no error then or on the next statement, and every
//! statement after it runs outside any transaction, each committed on its
//! own: a batch of appends half written with versions the rolled-back part
//! had taken, a reaction past the caps, an ack for nothing. Seen on this
//! project's three-node test cluster with two nodes writing to the same
//! inboxes (tests/galera.rs); one writing node never meets it.
//!
//! The guard, on a Galera node only: each write of such a transaction
//! runs inside a statement that first checks the session is still in a
//! transaction ([`Galera::guarded`]), and fails as a deadlock (which the store
//! retries as a whole) when it is not; a last check ([`STILL_OPEN`]) goes
//! before COMMIT, and after COMMIT one row the transaction wrote is read
//! back, since an abort in the last moment leaves a COMMIT that commits
//! nothing. Done for the inbox append and reaction adds, the transactions
//! two nodes write at once to the same rows that read or send several
//! statements in one packet (tests/galera.rs); the super-group log's append
//! (writes only, one statement each) is tested the same way and needs none;
//! the other transactions rely on every server working on one node at a
//! time (see `nodes`).

use sqlx::MySqlExecutor;

/// The signal of a transaction found aborted: ER_LOCK_DEADLOCK, which
/// the store retries as a whole.
macro_rules! signal_aborted {
    () => {
        "SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = 1213, MESSAGE_TEXT = \
         'the transaction was aborted by a conflicting write from another Galera node'"
    };
}

/// Fails with ER_LOCK_DEADLOCK when the session is no longer in a
/// transaction. A compound statement (MariaDB runs `IF` outside stored
/// programs), so it goes as text, never prepared.
pub(crate) const STILL_OPEN: &str = concat!(
    "IF @@in_transaction = 0 THEN ",
    signal_aborted!(),
    "; END IF"
);

/// Whether the store's server is a Galera node, whose transactions check
/// they are still open before they write ([`STILL_OPEN`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Galera(pub bool);

impl Galera {
    /// Asks the server (`wsrep_on` is ON on a Galera node; MySQL 8 has no
    /// such variable).
    pub(crate) async fn detect<'c>(db: impl MySqlExecutor<'c>) -> sqlx::Result<Galera> {
        let row: Option<(String, String)> = sqlx::query_as("SHOW VARIABLES LIKE 'wsrep_on'")
            .fetch_optional(db)
            .await?;
        Ok(Galera(
            row.is_some_and(|(_, on)| on.eq_ignore_ascii_case("ON")),
        ))
    }

    /// `statement` (a write, as text) the way this server must run it: on a
    /// Galera node only while the session is in a transaction, else failing
    /// as [`STILL_OPEN`] does, the check and the write in one statement so
    /// no abort can fall between them; elsewhere as it is.
    pub(crate) fn guarded(self, statement: String) -> String {
        if !self.0 {
            return statement;
        }
        format!(
            concat!(
                "IF @@in_transaction = 0 THEN ",
                signal_aborted!(),
                "; ELSE {}; END IF"
            ),
            statement
        )
    }
}
