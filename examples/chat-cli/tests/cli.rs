//! The command line: help, version, and errors that name the flag.

use std::process::Command;

fn chat_cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_chat-cli"))
        .args(args)
        .env_remove("BUBBLE_ADMIN_SECRET")
        .output()
        .expect("chat-cli runs")
}

#[test]
fn help_lists_every_option_and_exits_zero() {
    let out = chat_cli(&["--help"]);
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--server",
        "--admin-secret",
        "--app",
        "--user",
        "--device",
        "--fingerprint",
        "--ws",
        "/to bob",
    ] {
        assert!(help.contains(flag), "{flag} missing from\n{help}");
    }
}

#[test]
fn version_is_the_crates() {
    let out = chat_cli(&["--version"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn errors_name_the_flag() {
    let out = chat_cli(&["--user", "alice", "--colour", "red"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--colour"));
    let out = chat_cli(&["--user", "alice"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--admin-secret"));
    let out = chat_cli(&["--admin-secret", "s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--user"));
}

#[test]
fn options_keep_their_defaults() {
    let o = chat_cli::Options::from_args(
        ["--user", "alice", "--admin-secret", "s", "--ws"].map(String::from),
    )
    .unwrap();
    assert_eq!(o.server, "http://127.0.0.1:7780");
    assert_eq!((o.app.as_str(), o.device.as_str()), ("demo", "cli"));
    assert_eq!(o.fingerprint, "");
    assert!(o.websocket);
}
