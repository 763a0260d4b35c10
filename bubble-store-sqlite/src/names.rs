//! Numbered names (migration 10): the inbox and the list hold each owner
//! and peer as the number `names` gives its `(app, name)`, so their keys
//! are small integers. Reads find a number inside their statement
//! ([`id_of!`]) and give names back ([`name_of!`]); the append, which
//! numbers every owner of every batch, keeps the numbers it knows in
//! memory ([`Names`]).

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use bubble_core::Result;

use crate::error::map_sqlite;

/// The number of the name bound at `$name` in the app bound at `$app`, as
/// a scalar subquery (one seek of `names_by_name`): NULL for a name never
/// numbered, which no key equals, so a read of it finds nothing.
macro_rules! id_of {
    ($app:literal, $name:literal) => {
        concat!(
            "(SELECT id FROM names WHERE app = ",
            $app,
            " AND name = ",
            $name,
            ")"
        )
    };
}
pub(crate) use id_of;

/// "This owner's row or entries of this conversation", for statements
/// bound as `?1` app, `?2` owner's name, `?3` conversation kind, `?4` the
/// peer's name: the owner and peer columns (of the table aliased by the
/// prefix `$t`, "" or "i.") equal to their numbers.
macro_rules! in_conversation {
    ($t:literal) => {
        concat!(
            $t,
            "owner = ",
            crate::names::id_of!("?1", "?2"),
            " AND ",
            $t,
            "conv_kind = ?3 AND ",
            $t,
            "peer = ",
            crate::names::id_of!("?1", "?4")
        )
    };
}
pub(crate) use in_conversation;

/// The name numbered by the column `$column`, as a scalar subquery (one
/// seek of the rowid).
macro_rules! name_of {
    ($column:literal) => {
        concat!("(SELECT name FROM names WHERE id = ", $column, ")")
    };
}
pub(crate) use name_of;

const FIND: &str = "SELECT id FROM names WHERE app = ?1 AND name = ?2";
const ADD: &str = "INSERT INTO names (app, name) VALUES (?1, ?2)";

/// Names numbered beyond this many are forgotten at the next commit and
/// looked up again when they come back: about 100 bytes each, so the
/// writer keeps at most ~25 MiB of them.
const KEEP: usize = 1 << 18;

/// The writer's numbers, by app and name. Only the writer numbers names,
/// so what it knows is what the file holds, with one exception it tracks:
/// a number given inside a transaction that then rolls back was never
/// stored (and SQLite would give it again to another name), so
/// [`Names::rolled_back`] forgets what the transaction added.
#[derive(Debug, Default)]
pub(crate) struct Names {
    known: HashMap<String, HashMap<String, i64>>,
    len: usize,
    /// What the open transaction numbered.
    added: Vec<(String, String)>,
}

impl Names {
    /// The number of `name` in `app`, given now (inside the caller's
    /// transaction) if it has none yet.
    pub fn id(&mut self, conn: &Connection, app: &str, name: &str) -> Result<i64> {
        if let Some(&id) = self.known.get(app).and_then(|names| names.get(name)) {
            return Ok(id);
        }
        let found = conn
            .prepare_cached(FIND)
            .and_then(|mut s| s.query_row(params![app, name], |r| r.get(0)).optional())
            .map_err(map_sqlite)?;
        let id = match found {
            Some(id) => id,
            None => {
                conn.prepare_cached(ADD)
                    .and_then(|mut s| s.execute(params![app, name]))
                    .map_err(map_sqlite)?;
                self.added.push((app.to_owned(), name.to_owned()));
                conn.last_insert_rowid()
            }
        };
        self.known
            .entry(app.to_owned())
            .or_default()
            .insert(name.to_owned(), id);
        self.len += 1;
        Ok(id)
    }

    /// The transaction committed: its numbers are stored.
    pub fn committed(&mut self) {
        self.added.clear();
        if self.len > KEEP {
            self.known.clear();
            self.len = 0;
        }
    }

    /// The transaction rolled back: the numbers it gave were not stored.
    pub fn rolled_back(&mut self) {
        for (app, name) in self.added.drain(..) {
            if let Some(names) = self.known.get_mut(&app)
                && names.remove(&name).is_some()
            {
                self.len -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE names (id INTEGER PRIMARY KEY, app TEXT NOT NULL, name TEXT NOT NULL);
             CREATE UNIQUE INDEX names_by_name ON names (app, name);",
        )
        .unwrap();
        conn
    }

    #[test]
    fn a_name_keeps_its_number_and_each_app_numbers_its_own() {
        let conn = file();
        let mut names = Names::default();
        let alice = names.id(&conn, "a", "alice").unwrap();
        let bob = names.id(&conn, "a", "bob").unwrap();
        let other_alice = names.id(&conn, "b", "alice").unwrap();
        assert_ne!(alice, bob);
        assert_ne!(alice, other_alice);
        assert_eq!(names.id(&conn, "a", "alice").unwrap(), alice);
        // A writer that starts afresh finds the stored numbers.
        assert_eq!(Names::default().id(&conn, "a", "bob").unwrap(), bob);
    }

    #[test]
    fn a_number_given_in_a_rolled_back_transaction_is_forgotten() {
        let conn = file();
        let mut names = Names::default();
        conn.execute_batch("BEGIN").unwrap();
        let carol = names.id(&conn, "a", "carol").unwrap();
        conn.execute_batch("ROLLBACK").unwrap();
        names.rolled_back();
        // SQLite gives the same rowid to the next name: the cache must not
        // still say it is carol's.
        conn.execute_batch("BEGIN").unwrap();
        let dave = names.id(&conn, "a", "dave").unwrap();
        assert_eq!(dave, carol, "the rowid is given again");
        let carol_again = names.id(&conn, "a", "carol").unwrap();
        assert_ne!(carol_again, dave);
        conn.execute_batch("COMMIT").unwrap();
        names.committed();
        assert_eq!(
            Names::default().id(&conn, "a", "carol").unwrap(),
            carol_again
        );
    }
}
