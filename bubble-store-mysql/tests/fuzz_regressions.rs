//! The `mysql_rows` fuzz target replayed in the ordinary test run: every
//! input under `fuzz/regressions/mysql_rows/` (each once crashed the target;
//! see `docs/fuzzing.md`) and every seed, through the same harness the
//! fuzzer runs (`fuzz/harness/mysql_rows.rs`). Needs no database.

use bubble_core::ErrorKind;
use bubble_store_mysql::fuzzing::{self, Row, Value};

#[path = "../../fuzz/harness/replay.rs"]
mod replay;

#[path = "../../fuzz/harness/mysql_rows.rs"]
mod mysql_rows;

#[test]
fn mysql_rows_inputs_that_once_failed_now_pass() {
    replay::regressions("mysql_rows", mysql_rows::run);
}

#[test]
fn mysql_rows_seeds_pass() {
    replay::seeds("mysql_rows", mysql_rows::run, mysql_rows::seeds());
}

#[test]
fn every_seed_is_a_row_that_decodes() {
    for (i, seed) in mysql_rows::seeds().iter().enumerate() {
        assert!(mysql_rows::decodes(seed), "seed {i} does not decode");
    }
}

/// An inbox row as the store writes it (the harness's first seed), with
/// `column` set to `value`.
fn inbox_row_with(column: &str, value: Value) -> Row {
    let mut row = mysql_rows::inbox_seed_row();
    let slot = row
        .0
        .iter_mut()
        .find(|(c, _)| *c == column)
        .expect("an inbox column");
    slot.1 = value;
    row
}

#[test]
fn an_inbox_row_as_written_decodes() {
    let entry = fuzzing::inbox_entry(&inbox_row_with("version", Value::UInt(7))).unwrap();
    assert_eq!(entry.version, 7);
    assert_eq!(entry.content.body.as_ref(), b"hello");
}

#[test]
fn a_stored_value_that_does_not_decode_is_an_internal_error_naming_its_column() {
    for (column, value) in [
        // 257 does not fit the u8 of an entry kind; it must not read as 1.
        ("entry_kind", Value::UInt(257)),
        ("entry_kind", Value::UInt(200)),
        ("direct", Value::Int(-128)),
        ("conv_kind", Value::Null),
        ("server_msg_id", Value::Bytes(vec![1; 3])),
        ("owner", Value::Bytes(vec![0xff, 0xfe])),
        ("meta", Value::Bytes(vec![0xff; 5])),
        ("version", Value::Int(-1)),
    ] {
        let e = fuzzing::inbox_entry(&inbox_row_with(column, value.clone()))
            .expect_err(&format!("{column} = {value:?} must not decode"));
        assert_eq!(e.kind(), ErrorKind::Internal, "{column} = {value:?}: {e}");
        assert!(e.message().contains(column), "{column} = {value:?}: {e}");
    }
}
