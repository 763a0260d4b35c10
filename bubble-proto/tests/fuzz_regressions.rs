//! The fuzz targets of this crate's code, replayed in the ordinary test run:
//! every input under `fuzz/regressions/<target>/` (each once crashed the
//! target; see `docs/fuzzing.md`) and every seed, through the same harness
//! the fuzzer runs (`fuzz/harness/<target>.rs`).

#[path = "../../fuzz/harness/replay.rs"]
mod replay;

#[path = "../../fuzz/harness/frame_decode.rs"]
mod frame_decode;

#[path = "../../fuzz/harness/record_layer.rs"]
mod record_layer;

#[path = "../../fuzz/harness/handshake_server.rs"]
mod handshake_server;

#[path = "../../fuzz/harness/handshake_client.rs"]
mod handshake_client;

#[test]
fn frame_decode_inputs_that_once_failed_now_pass() {
    replay::regressions("frame_decode", frame_decode::run);
}

#[test]
fn frame_decode_seeds_pass() {
    replay::seeds("frame_decode", frame_decode::run, frame_decode::seeds());
}

#[test]
fn record_layer_inputs_that_once_failed_now_pass() {
    replay::regressions("record_layer", record_layer::run);
}

#[test]
fn record_layer_seeds_pass() {
    replay::seeds("record_layer", record_layer::run, record_layer::seeds());
}

#[test]
fn handshake_server_inputs_that_once_failed_now_pass() {
    replay::regressions("handshake_server", handshake_server::run);
}

#[test]
fn handshake_server_seeds_pass() {
    replay::seeds(
        "handshake_server",
        handshake_server::run,
        handshake_server::seeds(),
    );
}

#[test]
fn handshake_client_inputs_that_once_failed_now_pass() {
    replay::regressions("handshake_client", handshake_client::run);
}

#[test]
fn handshake_client_seeds_pass() {
    replay::seeds(
        "handshake_client",
        handshake_client::run,
        handshake_client::seeds(),
    );
}
