//! The fuzz targets of this crate's code, replayed in the ordinary test run:
//! every input under `fuzz/regressions/<target>/` (each once crashed the
//! target; see `docs/fuzzing.md`) and every seed, through the same harness
//! the fuzzer runs (`fuzz/harness/<target>.rs`).

#[path = "../../fuzz/harness/replay.rs"]
mod replay;

#[path = "../../fuzz/harness/redis_values.rs"]
mod redis_values;

#[test]
fn redis_values_inputs_that_once_failed_now_pass() {
    replay::regressions("redis_values", redis_values::run);
}

#[test]
fn redis_values_seeds_pass() {
    replay::seeds("redis_values", redis_values::run, redis_values::seeds());
}
