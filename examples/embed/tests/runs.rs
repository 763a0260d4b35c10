//! The example keeps its history in the directory it is given: a second run
//! finds the first run's message.

use std::process::Command;

fn run(dir: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_embed"))
        .arg(dir)
        .output()
        .expect("the embed binary starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "embed failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn history_survives_between_runs() {
    let dir = tempfile::tempdir().unwrap();
    let first = run(dir.path());
    assert!(first.contains("seller had 0 entries"), "{first}");
    assert!(first.contains("finds 1 message(s)"), "{first}");

    let second = run(dir.path());
    assert!(second.contains("seller had 1 entries"), "{second}");
    assert!(second.contains("the new message is version 2"), "{second}");
    assert!(second.contains("finds 2 message(s)"), "{second}");
}
