//! The example runs: the custom authenticator refuses an unknown key and the
//! audited inbox records both copies of the one message sent.

use std::process::Command;

#[test]
fn custom_ports_authenticate_and_audit() {
    let out = Command::new(env!("CARGO_BIN_EXE_custom-backend"))
        .output()
        .expect("the custom-backend binary starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "custom-backend failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("an unknown key is refused"), "{stdout}");
    let audit = stdout
        .lines()
        .find(|line| line.starts_with("audit log: "))
        .unwrap_or_else(|| panic!("no audit log in:\n{stdout}"));
    assert!(audit.contains(r#"UserId("teller7")"#), "{audit}");
    assert!(audit.contains(r#"UserId("customer42")"#), "{audit}");
}
