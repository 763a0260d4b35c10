//! Harness of the `sqlite_rows` fuzz target: the SQLite store's row
//! decoders (inbox entries, channel-log entries, members, groups, apps)
//! fed rows of arbitrary values, as a file written by another program, an
//! older bubble or a bit flip on disk would hold them.
//!
//! The first byte picks the decoder; the rest gives each column a value of
//! any SQLite type (NULL, integer, real, text, blob, or text that is not
//! UTF-8). A row is made by `SELECT`ing the bound values, so the decoder
//! reads a real `rusqlite::Row`.
//!
//! The contract: no panic; a row that does not decode is an `Internal`
//! error (stored data is not the caller's input to fix); and a row that
//! decodes keeps every enum column's value exactly (257 must not read as 1).
//!
//! Shared, through `#[path]`, by `fuzz/fuzz_targets/sqlite_rows.rs` and the
//! replay of `fuzz/regressions/sqlite_rows/` in bubble-store-sqlite's tests.

use bubble_core::{ErrorKind, Result};
use bubble_store_sqlite::fuzzing;
use rusqlite::Connection;
use rusqlite::types::Value;

#[path = "input.rs"]
mod input;
use input::Input;

impl Input<'_> {
    /// A column's value, and whether to cast it to text in SQL (the one
    /// way to get text that is not UTF-8 into a row).
    fn value(&mut self) -> (Value, bool) {
        match self.u8() % 7 {
            0 => (Value::Null, false),
            1 => (Value::Integer(i64::from(self.u8() as i8)), false),
            2 => (Value::Integer(i64::from_be_bytes(self.array())), false),
            3 => (Value::Real(f64::from_be_bytes(self.array())), false),
            4 => (
                Value::Text(String::from_utf8_lossy(&self.bytes()).into_owned()),
                false,
            ),
            5 => (Value::Blob(self.bytes()), false),
            _ => (Value::Blob(self.bytes()), true),
        }
    }
}

/// Each decoder, its column count, and the enum columns it must keep
/// exactly: (column, the decoded value as stored).
type Check = fn(&rusqlite::Row<'_>) -> Result<Vec<(usize, i64)>>;

const DECODERS: &[(&str, usize, Check)] = &[
    ("inbox", 17, |row| {
        fuzzing::inbox_entry(row).map(|e| {
            vec![
                (2, e.kind as i64),
                (3, e.conversation.kind as i64),
                (5, i64::from(e.direction.as_i8())),
                (13, e.content.kind as i64),
            ]
        })
    }),
    ("channel", 13, |row| {
        fuzzing::channel_entry(row).map(|e| vec![(2, e.kind as i64), (10, e.content.kind as i64)])
    }),
    ("member", 4, |row| {
        fuzzing::member(row).map(|m| vec![(1, m.role as i64)])
    }),
    ("group", 8, |row| {
        fuzzing::group(row).map(|g| vec![(2, g.kind as i64)])
    }),
    ("app", 4, |row| fuzzing::app(row).map(|_| Vec::new())),
];

thread_local! {
    static DB: Connection = Connection::open_in_memory().expect("an in-memory database opens");
}

/// Runs one input; panics on a violation of the decoders' contract.
pub fn run(data: &[u8]) {
    let mut input = Input(data);
    let (name, columns, check) = DECODERS[usize::from(input.u8()) % DECODERS.len()];
    let values: Vec<(Value, bool)> = (0..columns).map(|_| input.value()).collect();
    // SELECT iif(?2, CAST(?1 AS TEXT), ?1), iif(?4, CAST(?3 AS TEXT), ?3), …
    let select = (0..columns)
        .map(|i| {
            format!(
                "iif(?{}, CAST(?{} AS TEXT), ?{})",
                2 * i + 2,
                2 * i + 1,
                2 * i + 1
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let params: Vec<Value> = values
        .iter()
        .flat_map(|(v, cast)| [v.clone(), Value::Integer(i64::from(*cast))])
        .collect();
    DB.with(|db| {
        let mut stmt = db
            .prepare_cached(&format!("SELECT {select}"))
            .expect("the SELECT prepares");
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params))
            .expect("the SELECT runs");
        let row = rows.next().expect("one row").expect("one row");
        match check(row) {
            Ok(kept) => {
                for (column, decoded) in kept {
                    assert_eq!(
                        values[column].0,
                        Value::Integer(decoded),
                        "{name} column {column} decoded to {decoded} from another value"
                    );
                }
            }
            Err(e) => assert_eq!(
                e.kind(),
                ErrorKind::Internal,
                "a {name} row that does not decode must be an internal error: {e}"
            ),
        }
    });
}

/// Rows as the store writes them, one per decoder.
pub fn seeds() -> Vec<Vec<u8>> {
    fn text(s: &str) -> Vec<u8> {
        [&[4, s.len() as u8][..], s.as_bytes()].concat()
    }
    fn int(v: i64) -> Vec<u8> {
        [&[2][..], &v.to_be_bytes()].concat()
    }
    fn blob(b: &[u8]) -> Vec<u8> {
        [&[5, b.len() as u8][..], b].concat()
    }
    let time = 1_767_225_600_000;
    let inbox = [
        vec![0],
        text("alice"),
        int(7),
        int(1),
        int(1),
        text("bob"),
        int(1),
        blob(&[9; 16]),
        text("alice"),
        text("phone-1"),
        text("m-1"),
        int(1),
        int(time),
        int(time + 3),
        int(1),
        blob(b"hello"),
        int(0),
        vec![0],
    ]
    .concat();
    let channel = [
        vec![1],
        text("g1"),
        int(42),
        int(1),
        blob(&[3; 16]),
        text("bob"),
        text("laptop"),
        text("m-9"),
        int(9),
        int(time),
        int(time + 1),
        int(1),
        blob(b"hi all"),
        vec![0],
    ]
    .concat();
    let member = [vec![2], text("bob"), int(1), int(time), int(0)].concat();
    let group = [
        vec![3],
        text("g1"),
        text("team"),
        int(1),
        text("alice"),
        int(time),
        text(""),
        text("be kind"),
        int(0),
    ]
    .concat();
    let app = [
        vec![4],
        text("demo"),
        text("Demo"),
        text("dddddddddddddddddddddddddddddddd"),
        text(r#"{"max_text_bytes":16384}"#),
    ]
    .concat();
    vec![inbox, channel, member, group, app]
}
