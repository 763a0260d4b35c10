//! What CI runs: the bench end to end on a tiny 1:1 scenario (about two
//! seconds against an in-process server on memory backends). It checks
//! that nothing is lost or duplicated, never how fast anything is.

use std::process::Command;

#[test]
fn a_tiny_one_to_one_run_delivers_every_message_exactly_once() {
    let out = tempfile::tempdir().expect("temp dir");
    let run = Command::new(env!("CARGO_BIN_EXE_bubble-bench"))
        .args(["smoke", "--in-process", "--out"])
        .arg(out.path())
        .env("BUBBLE_STORE_KIND", "memory")
        .env("BUBBLE_SEARCH_KIND", "memory")
        .output()
        .expect("bubble-bench runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "bubble-bench failed:\n{stderr}");
    let result: serde_json::Value =
        serde_json::from_slice(&run.stdout).expect("the bench prints one JSON result");
    let n = |k: &str| result[k].as_u64().unwrap_or(u64::MAX);
    assert!(n("acked") > 0, "messages were acked: {result}");
    assert_eq!(n("failed"), 0, "{result}");
    assert_eq!(
        n("delivered"),
        n("acked"),
        "one delivery per 1:1 message: {result}"
    );
    assert_eq!(n("lost"), 0, "{result}");
    assert_eq!(n("duplicates"), 0, "{result}");
    assert_eq!(n("gaps"), 0, "{result}");
    assert!(
        out.path().join("results.jsonl").exists(),
        "the result is appended to results.jsonl"
    );
}
