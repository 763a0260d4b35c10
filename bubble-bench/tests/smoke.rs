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

#[test]
fn help_lists_the_scenarios_and_options_and_a_bad_flag_is_named() {
    let help = Command::new(env!("CARGO_BIN_EXE_bubble-bench"))
        .arg("--help")
        .output()
        .expect("bubble-bench runs");
    assert!(help.status.success(), "{help:?}");
    let text = String::from_utf8_lossy(&help.stdout);
    for word in [
        "pairs",
        "supergroup",
        "sweep",
        "--users",
        "--rsa-bits",
        "--in-process",
    ] {
        assert!(text.contains(word), "{word} missing from\n{text}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_bubble-bench"))
        .args(["pairs", "--window", "wide"])
        .output()
        .expect("bubble-bench runs");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--window"));
}
