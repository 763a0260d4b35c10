//! The example runs to completion and shows each step it promises.

use std::process::Command;

#[test]
fn quickstart_delivers_syncs_reads_and_finds() {
    let out = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .output()
        .expect("the quickstart binary starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "quickstart failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "alice sent",
        "bob was pushed v1 (previous v0)",
        "bob syncs 1 entr",
        "after reading: []",
        "bob searches \"大家\": 1 hit(s)",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
}
