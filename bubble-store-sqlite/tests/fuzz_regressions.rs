//! The fuzz targets of this crate's code, replayed in the ordinary test run:
//! every input under `fuzz/regressions/<target>/` (each once crashed the
//! target; see `docs/fuzzing.md`) and every seed, through the same harness
//! the fuzzer runs (`fuzz/harness/<target>.rs`).

#[path = "../../fuzz/harness/replay.rs"]
mod replay;

#[path = "../../fuzz/harness/sqlite_rows.rs"]
mod sqlite_rows;

#[test]
fn sqlite_rows_inputs_that_once_failed_now_pass() {
    replay::regressions("sqlite_rows", sqlite_rows::run);
}

#[test]
fn sqlite_rows_seeds_pass() {
    replay::seeds("sqlite_rows", sqlite_rows::run, sqlite_rows::seeds());
}
