//! Two chat-cli sessions talk through a real server (in process), as in the
//! README's walk-through.

use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader, duplex};

async fn server() -> (bubble_server::RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let key = include_str!("../../../bubble-proto/tests/fixtures/server_key.pem");
    let path = dir.path().join("server_key.pem");
    std::fs::write(&path, key).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut config = bubble_server::Config::default();
    config.data_dir = dir.path().to_path_buf();
    config.gate.tcp = "127.0.0.1:0".into();
    config.gate.ws = "127.0.0.1:0".into();
    config.http.addr = "127.0.0.1:0".into();
    config.store.kind = bubble_server::config::StoreKind::Memory;
    config.search.kind = bubble_server::config::SearchKind::Memory;
    (bubble_server::start(config).await.unwrap(), dir)
}

fn options(s: &bubble_server::RunningServer, user: &str) -> chat_cli::Options {
    chat_cli::Options::from_args([
        "--server".to_string(),
        format!("http://{}", s.http_addr.unwrap()),
        "--admin-secret".into(),
        s.admin_secret.clone(),
        "--user".into(),
        user.into(),
        "--fingerprint".into(),
        s.server_key_fingerprint.clone(),
    ])
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_and_bob_chat_from_two_terminals() {
    let (server, _dir) = server().await;
    let (mut bob_keys, bob_in) = duplex(4096);
    let (bob_out, mut bob_screen) = duplex(65536);
    let bob = tokio::spawn(chat_cli::run(
        options(&server, "bob"),
        BufReader::new(bob_in),
        bob_out,
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (mut alice_keys, alice_in) = duplex(4096);
    let (alice_out, _alice_screen) = duplex(65536);
    let alice = tokio::spawn(chat_cli::run(
        options(&server, "alice"),
        BufReader::new(alice_in),
        alice_out,
    ));
    alice_keys
        .write_all(b"/to bob\nhi bob, it's alice\n")
        .await
        .unwrap();

    let mut seen = String::new();
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !seen.contains("alice: hi bob, it's alice") {
        use tokio::io::AsyncReadExt;
        let n = tokio::time::timeout_at(deadline, bob_screen.read(&mut buf))
            .await
            .expect("bob's screen shows alice's line")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(
        seen.contains("[@alice] alice: hi bob, it's alice"),
        "{seen}"
    );
    alice_keys.write_all(b"/quit\n").await.unwrap();
    bob_keys.write_all(b"/quit\n").await.unwrap();
    alice.await.unwrap().unwrap();
    bob.await.unwrap().unwrap();
    server.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// Reads `screen` until it shows `needle`; everything read so far.
async fn read_until(screen: &mut tokio::io::DuplexStream, seen: &mut String, needle: &str) {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !seen.contains(needle) {
        let n = tokio::time::timeout_at(deadline, screen.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("the screen shows {needle:?}; it shows:\n{seen}"))
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

#[tokio::test]
async fn history_shows_the_last_page_oldest_first_then_the_one_before() {
    let (server, _dir) = server().await;
    let (mut alice_keys, alice_in) = duplex(4096);
    let (alice_out, mut alice_screen) = duplex(65536);
    let alice = tokio::spawn(chat_cli::run(
        options(&server, "alice"),
        BufReader::new(alice_in),
        alice_out,
    ));
    let mut lines = String::from("/to bob\n");
    for i in 1..=25 {
        lines.push_str(&format!("line {i:02}\n"));
    }
    alice_keys.write_all(lines.as_bytes()).await.unwrap();
    alice_keys.write_all(b"/history\n").await.unwrap();
    let mut seen = String::new();
    read_until(&mut alice_screen, &mut seen, "line 25").await;
    let page: Vec<&str> = seen
        .lines()
        .skip_while(|l| !l.starts_with("(older"))
        .collect();
    assert_eq!(page.first(), Some(&"(older: /history more)"), "{seen}");
    assert_eq!(page.len(), 21, "the 20 newest lines under the hint: {seen}");
    assert!(
        page[1].ends_with("line 06") && page[20].ends_with("line 25"),
        "{seen}"
    );

    alice_keys.write_all(b"/history more\n").await.unwrap();
    let mut more = String::new();
    read_until(&mut alice_screen, &mut more, "line 05").await;
    let older: Vec<&str> = more.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(older.len(), 5, "the five before, oldest first: {more}");
    assert!(older[0].ends_with("line 01"), "{more}");
    alice_keys.write_all(b"/quit\n").await.unwrap();
    alice.await.unwrap().unwrap();

    // bob starts later: his home screen lists alice's conversation first,
    // with its badge and last line, before anything is typed.
    let (mut bob_keys, bob_in) = duplex(4096);
    let (bob_out, mut bob_screen) = duplex(65536);
    let bob = tokio::spawn(chat_cli::run(
        options(&server, "bob"),
        BufReader::new(bob_in),
        bob_out,
    ));
    let mut home = String::new();
    read_until(&mut bob_screen, &mut home, "line 25").await;
    assert!(
        home.contains("conversations:\n  @alice (25 unread)  alice: line 25"),
        "{home}"
    );
    bob_keys.write_all(b"/quit\n").await.unwrap();
    bob.await.unwrap().unwrap();
    server.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_edit_react_pin_mute_and_block_from_the_terminal() {
    let (server, _dir) = server().await;
    let (mut bob_keys, bob_in) = duplex(4096);
    let (bob_out, mut bob_screen) = duplex(65536);
    let bob = tokio::spawn(chat_cli::run(
        options(&server, "bob"),
        BufReader::new(bob_in),
        bob_out,
    ));
    let (mut alice_keys, alice_in) = duplex(4096);
    let (alice_out, mut alice_screen) = duplex(65536);
    let alice = tokio::spawn(chat_cli::run(
        options(&server, "alice"),
        BufReader::new(alice_in),
        alice_out,
    ));
    let mut bob_seen = String::new();
    let mut alice_seen = String::new();
    read_until(&mut bob_screen, &mut bob_seen, "connected as bob").await;
    read_until(&mut alice_screen, &mut alice_seen, "connected as alice").await;

    // bob's screen shows a first line from alice only once his client has
    // caught up (its pull and its pushes go through one queue), so what
    // follows reaches him as pushes, in the order alice types it. Without
    // this, a catch-up that ran after the edit would show the message
    // already edited.
    alice_keys.write_all(b"/to bob\nhi\n").await.unwrap();
    read_until(&mut bob_screen, &mut bob_seen, "(1) [@alice] alice: hi").await;

    // alice writes with a typo and fixes it: bob sees the message numbered,
    // then the edit.
    alice_keys
        .write_all(b"lunch at noom?\n/edit lunch at noon?\n")
        .await
        .unwrap();
    read_until(&mut alice_screen, &mut alice_seen, "edited").await;
    read_until(
        &mut bob_screen,
        &mut bob_seen,
        "(2) [@alice] alice: lunch at noom?",
    )
    .await;
    read_until(
        &mut bob_screen,
        &mut bob_seen,
        "[@alice] alice edited a message: lunch at noon?",
    )
    .await;

    // bob answers message (2) and reacts to it; alice sees both.
    bob_keys
        .write_all(b"/to alice\n/reply 2 yes\n/react 2 \xf0\x9f\x91\x8d\n")
        .await
        .unwrap();
    read_until(&mut bob_screen, &mut bob_seen, "reacted 👍").await;
    read_until(
        &mut alice_screen,
        &mut alice_seen,
        "[@bob] bob: (re alice: lunch at noon?) yes",
    )
    .await;
    read_until(&mut alice_screen, &mut alice_seen, "[@bob] bob reacted 👍").await;

    // bob pins and mutes alice, and his list says so.
    bob_keys.write_all(b"/pin\n/mute\n/list\n").await.unwrap();
    read_until(&mut bob_screen, &mut bob_seen, "[pinned] [muted]").await;

    // bob blocks alice: her next line is refused; /blocked lists her.
    bob_keys
        .write_all(b"/block alice\n/blocked\n")
        .await
        .unwrap();
    read_until(&mut bob_screen, &mut bob_seen, "blocked: alice").await;
    alice_keys.write_all(b"are you there?\n").await.unwrap();
    read_until(&mut alice_screen, &mut alice_seen, "not sent:").await;
    bob_keys.write_all(b"/unblock alice\n").await.unwrap();
    read_until(&mut bob_screen, &mut bob_seen, "unblocked alice").await;

    // bob's device takes push notifications, goes away and comes back.
    bob_keys
        .write_all(b"/push pager x\n/push webhook tok-bob\n/away\n/back\n/unpush\n")
        .await
        .unwrap();
    read_until(
        &mut bob_screen,
        &mut bob_seen,
        "unknown push platform \"pager\"",
    )
    .await;
    read_until(&mut bob_screen, &mut bob_seen, "through webhook").await;
    read_until(&mut bob_screen, &mut bob_seen, "away: new messages").await;
    read_until(&mut bob_screen, &mut bob_seen, "no more notifications").await;

    alice_keys.write_all(b"/quit\n").await.unwrap();
    bob_keys.write_all(b"/quit\n").await.unwrap();
    alice.await.unwrap().unwrap();
    bob.await.unwrap().unwrap();
    server.shutdown(Duration::from_secs(5)).await.unwrap();
}
