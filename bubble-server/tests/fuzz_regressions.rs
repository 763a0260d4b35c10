//! The fuzz targets of this crate's code, replayed in the ordinary test run:
//! every input under `fuzz/regressions/<target>/` (each once crashed the
//! target; see `docs/fuzzing.md`) and every seed, through the same harness
//! the fuzzer runs (`fuzz/harness/<target>.rs`).

#[path = "../../fuzz/harness/replay.rs"]
mod replay;

#[path = "../../fuzz/harness/ws_message.rs"]
mod ws_message;

#[path = "../../fuzz/harness/admin_api.rs"]
mod admin_api;

#[path = "../../fuzz/harness/config_toml.rs"]
mod config_toml;

#[test]
fn ws_message_inputs_that_once_failed_now_pass() {
    replay::regressions("ws_message", ws_message::run);
}

#[test]
fn ws_message_seeds_pass() {
    replay::seeds("ws_message", ws_message::run, ws_message::seeds());
}

#[test]
fn admin_api_inputs_that_once_failed_now_pass() {
    replay::regressions("admin_api", admin_api::run);
}

#[test]
fn admin_api_seeds_pass() {
    replay::seeds("admin_api", admin_api::run, admin_api::seeds());
}

#[test]
fn config_toml_inputs_that_once_failed_now_pass() {
    replay::regressions("config_toml", config_toml::run);
}

#[test]
fn config_toml_seeds_pass() {
    replay::seeds("config_toml", config_toml::run, config_toml::seeds());
}
