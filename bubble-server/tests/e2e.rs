//! End to end: the real server binary, real sockets, the Rust client SDK.
//! Each test starts its own server, on the backends `BUBBLE_E2E_BACKENDS`
//! names: the embedded default (SQLite + tantivy) unless it is `memory` or
//! `scale-out` (MariaDB + Redis + etcd).

mod support;

#[path = "e2e/cluster.rs"]
mod cluster;
#[path = "e2e/conversations.rs"]
mod conversations;
#[path = "e2e/disk.rs"]
mod disk;
#[path = "e2e/failure_modes.rs"]
mod failure_modes;
#[path = "e2e/integrations.rs"]
mod integrations;
#[path = "e2e/limits.rs"]
mod limits;
#[path = "e2e/media.rs"]
mod media;
#[path = "e2e/reindex.rs"]
mod reindex;
#[path = "e2e/screens.rs"]
mod screens;

use std::time::Duration;

use bubble_client::Event;
use bubble_core::{Content, Conversation, EntryKind, GroupId, UserId};
use bubble_proto::pb;
use serde_json::json;
use support::*;

fn to(user: &str) -> Conversation {
    Conversation::direct(&UserId::new(user))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_to_one_over_tcp_reaches_a_client_on_websocket() {
    let (server, _db) = start_server().await;
    let (alice, _alice_events) = server.client("alice", "laptop", false).await;
    let (_bob, mut bob_events) = server.client("bob", "browser", true).await;
    let ack = alice
        .send(to("bob"), Content::text("hello over two transports"))
        .await
        .unwrap();
    let got = entries(&mut bob_events, 1).await;
    assert_eq!(texts(&got), vec!["hello over two transports"]);
    assert_eq!(got[0].server_msg_id, ack.server_msg_id);
    assert_eq!(got[0].conversation, to("alice"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_user_syncs_everything_in_order_when_coming_online() {
    let (server, _db) = start_server().await;
    let (alice, _e) = server.client("alice", "phone", false).await;
    for i in 0..30 {
        alice
            .send(to("bob"), Content::text(format!("m{i}")))
            .await
            .unwrap();
    }
    let (bob, mut bob_events) = server.client("bob", "phone", false).await;
    let got = entries(&mut bob_events, 30).await;
    assert_eq!(
        texts(&got),
        (0..30).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    assert!(got.windows(2).all(|w| w[0].version < w[1].version));
    assert_eq!(bob.last_version(), got.last().unwrap().version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_of_one_user_see_everything_and_each_others_sends() {
    let (server, _db) = start_server().await;
    let (alice, _a) = server.client("alice", "phone", false).await;
    let (bob_phone, mut phone_events) = server.client("bob", "phone", false).await;
    let (_bob_laptop, mut laptop_events) = server.client("bob", "laptop", true).await;
    alice
        .send(to("bob"), Content::text("to both devices"))
        .await
        .unwrap();
    bob_phone
        .send(to("alice"), Content::text("sent from the phone"))
        .await
        .unwrap();
    let laptop = entries(&mut laptop_events, 2).await;
    assert_eq!(
        texts(&laptop),
        vec!["to both devices", "sent from the phone"]
    );
    let phone = entries(&mut phone_events, 1).await;
    assert_eq!(
        texts(&phone),
        vec!["to both devices"],
        "the sending device gets an ack, not a push"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_group_message_reaches_every_member() {
    let (server, _db) = start_server().await;
    let (ann, _a) = server.client("ann", "phone", false).await;
    let (_bo, mut bo_events) = server.client("bo", "phone", false).await;
    let (_cy, mut cy_events) = server.client("cy", "phone", true).await;
    let info = ann
        .create_group("team", "Team", &["bo", "cy"], false)
        .await
        .unwrap();
    assert_eq!(info.kind, pb::GroupKind::Normal as i32);
    ann.send(
        Conversation::group(&GroupId::new("team")),
        Content::text("standup in 5"),
    )
    .await
    .unwrap();
    for events in [&mut bo_events, &mut cy_events] {
        let got = entries(events, 1).await;
        assert_eq!(texts(&got), vec!["standup in 5"]);
        assert_eq!(
            got[0].conversation,
            Conversation::group(&GroupId::new("team"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_super_group_of_a_thousand_members_is_read_by_seq() {
    let (server, _db) = start_server().await;
    let members: Vec<String> = (0..999).map(|i| format!("m{i:03}")).collect();
    let group = server
        .admin(
            "POST",
            "/v1/admin/apps/demo/groups",
            Some(json!({"id": "town", "name": "Town", "owner": "mayor", "members": members, "super_group": false})),
        )
        .await;
    assert_eq!(
        group["kind"], "super",
        "1,000 members is above the default threshold of 500"
    );
    let (mayor, _m) = server.client("mayor", "phone", false).await;
    let (member, mut member_events) = server.client("m042", "phone", false).await;
    let to_town = Conversation::super_group(&GroupId::new("town"));
    let ack = mayor
        .send(to_town.clone(), Content::text("town hall at noon"))
        .await
        .unwrap();
    assert_eq!(ack.seq, 1);
    loop {
        match next_event(&mut member_events).await {
            Event::Channel(e) => {
                assert_eq!(e.content.as_text(), Some("town hall at noon"));
                break;
            }
            Event::Entry(e) => panic!("super groups are not fanned out into inboxes: {e:?}"),
            _ => {}
        }
    }
    let (page, last) = member.pull_channel("town", 0, 50).await.unwrap();
    assert_eq!(last, 1);
    assert_eq!(page.entries.len(), 1);
    let unread = member.unread().await.unwrap();
    assert_eq!(
        unread
            .iter()
            .find(|u| u.conversation == to_town)
            .map(|u| u.count),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_send_is_stored_once_and_answered_with_the_original_ack() {
    let (server, _db) = start_server().await;
    let (alice, _a) = server.client("alice", "phone", false).await;
    let (bob, _b) = server.client("bob", "phone", false).await;
    let first = alice
        .send_with_id(to("bob"), "retry-me", 1, Content::text("once"))
        .await
        .unwrap();
    let again = alice
        .send_with_id(to("bob"), "retry-me", 1, Content::text("once"))
        .await
        .unwrap();
    assert_eq!(first.server_msg_id, again.server_msg_id);
    assert!(again.duplicate);
    let (stored, _, _) = bob.sync(0, 100).await.unwrap();
    assert_eq!(stored.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mark_read_clears_unread_counts_and_sends_a_receipt() {
    let (server, _db) = start_server().await;
    let (alice, mut alice_events) = server.client("alice", "phone", false).await;
    let (bob, mut bob_events) = server.client("bob", "phone", false).await;
    for i in 0..3 {
        alice
            .send(to("bob"), Content::text(format!("{i}")))
            .await
            .unwrap();
    }
    let got = entries(&mut bob_events, 3).await;
    let unread = bob.unread().await.unwrap();
    assert_eq!(unread[0].count, 3);
    let marked = bob.mark_read(&to("alice"), got[1].version).await.unwrap();
    assert_eq!(marked, 2);
    assert_eq!(bob.unread().await.unwrap()[0].count, 1);
    loop {
        if let Event::Entry(e) = next_event(&mut alice_events).await
            && e.kind == EntryKind::ReadReceipt
        {
            assert_eq!(e.server_msg_id, got[1].server_msg_id);
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recall_reaches_the_receiver() {
    let (server, _db) = start_server().await;
    let (alice, _a) = server.client("alice", "phone", false).await;
    let (_bob, mut bob_events) = server.client("bob", "phone", false).await;
    let ack = alice.send(to("bob"), Content::text("oops")).await.unwrap();
    alice.recall(&to("bob"), &ack.server_msg_id).await.unwrap();
    let got = entries(&mut bob_events, 2).await;
    assert_eq!(got[1].kind, EntryKind::Recall);
    assert_eq!(got[1].server_msg_id, ack.server_msg_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_pushes_reach_a_user_and_the_whole_app() {
    let (server, _db) = start_server().await;
    let (_bob, mut bob_events) = server.client("bob", "phone", false).await;
    server
        .admin(
            "POST",
            "/v1/admin/apps/demo/push",
            Some(json!({"target": "user", "id": "bob", "text": "your order shipped"})),
        )
        .await;
    let got = entries(&mut bob_events, 1).await;
    assert_eq!(got[0].kind, EntryKind::SystemNotice);
    assert_eq!(texts(&got), vec!["your order shipped"]);
    server
        .admin(
            "POST",
            "/v1/admin/apps/demo/push",
            Some(json!({"target": "app", "text": "maintenance tonight"})),
        )
        .await;
    loop {
        if let Event::Broadcast(e) = next_event(&mut bob_events).await {
            assert_eq!(e.content.as_text(), Some("maintenance tonight"));
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_a_chinese_message() {
    let (server, _db) = start_server().await;
    let (alice, _a) = server.client("alice", "phone", false).await;
    let (bob, _b) = server.client("bob", "phone", false).await;
    alice
        .send(to("bob"), Content::text("大家好，今晚聚餐"))
        .await
        .unwrap();
    alice
        .send(to("bob"), Content::text("unrelated"))
        .await
        .unwrap();
    let request = pb::SearchRequest {
        words: "大家".into(),
        limit: 10,
        ..Default::default()
    };
    let mut found = None;
    for _ in 0..50 {
        let r = bob.search(request.clone()).await.unwrap();
        if r.total > 0 {
            found = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await; // the indexer runs behind the ack
    }
    let r = found.expect("indexed within 5 s");
    assert_eq!(r.total, 1);
    assert_eq!(r.hits[0].text, "大家好，今晚聚餐");
    let admin = server
        .admin(
            "GET",
            "/v1/admin/apps/demo/users/bob/search?q=%E5%A4%A7%E5%AE%B6",
            None,
        )
        .await;
    assert_eq!(admin["total"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_and_bad_handshakes_close_only_that_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (server, _db) = start_server().await;
    let (alice, _a) = server.client("alice", "phone", false).await;
    // Garbage instead of a frame: one error frame, then the close.
    let mut raw = tokio::net::TcpStream::connect(&server.tcp).await.unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), raw.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let frame =
        bubble_proto::Frame::parse_exact(&answer, 1 << 20).expect("exactly one error frame");
    let err: pb::Error = frame.decode_body().unwrap();
    assert_eq!(err.code, pb::ErrorCode::MalformedFrame as i32);
    // A hello that is not a valid handshake: HANDSHAKE_FAILED, then the close.
    let mut raw = tokio::net::TcpStream::connect(&server.tcp).await.unwrap();
    let hello = bubble_proto::Frame::new(bubble_proto::Command::HandshakeHello, 1, vec![1u8; 40])
        .to_bytes();
    raw.write_all(&hello).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), raw.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let frame = bubble_proto::Frame::parse_exact(&answer, 1 << 20).expect("one error frame");
    let err: pb::Error = frame.decode_body().unwrap();
    assert_eq!(err.code, pb::ErrorCode::HandshakeFailed as i32);
    // A wrong token: refused the same way.
    let mut config = server.config("mallory", "x", false).await;
    config.token = "v2.forged.token".into();
    let refused = bubble_client::Client::connect(config)
        .await
        .err()
        .expect("a forged token is refused");
    assert!(
        matches!(refused, bubble_client::ClientError::Handshake(_)),
        "{refused:?}"
    );
    // Everyone else is unaffected.
    alice.ping().await.expect("the good connection still works");
    alice
        .send(to("bob"), Content::text("still here"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_selector_hands_out_a_gate_and_metrics_count_messages() {
    let (server, _db) = start_server().await;
    let gate = bubble_client::transport::select_gate(&server.http)
        .await
        .unwrap();
    assert_eq!(gate.tcp.as_deref(), Some(server.tcp.as_str()));
    assert_eq!(
        gate.server_key_fingerprint.as_deref(),
        Some(server.fingerprint.as_str())
    );
    let mut config = server.config("alice", "phone", false).await;
    config.endpoint = bubble_client::Endpoint::Selector {
        urls: vec![server.http.clone()],
        prefer_ws: true,
    };
    let (alice, _e) = bubble_client::Client::connect(config).await.unwrap();
    alice
        .send(to("bob"), Content::text("via the selector"))
        .await
        .unwrap();
    let body = bubble_client::transport::http_get(&server.http, "/metrics")
        .await
        .unwrap();
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("bubble_messages_in_total 1"), "{text}");
    assert!(text.contains("bubble_connections 1"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_refuses_callers_without_the_secret() {
    let (server, _db) = start_server().await;
    let (status, body) = bubble_client::transport::http_request(
        &server.http,
        "POST",
        "/v1/admin/apps/demo/tokens",
        Some("wrong"),
        Some(r#"{"user":"eve"}"#),
    )
    .await
    .unwrap();
    assert_eq!(status, 401);
    assert!(String::from_utf8_lossy(&body).contains("admin secret"));
}

fn durable_backends() -> bool {
    if std::env::var("BUBBLE_E2E_BACKENDS").as_deref() == Ok("memory") {
        eprintln!("SKIPPED: the memory backends keep nothing across a restart");
        return false;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_keeps_history_versions_and_search() {
    if !durable_backends() {
        return;
    }
    let (mut server, _db) = start_server().await;
    let (alice, _a) = server.client("alice", "phone", false).await;
    let mut acks = Vec::new();
    for i in 0..20 {
        acks.push(
            alice
                .send(
                    to("bob"),
                    Content::text(format!("before restart {i} 重启前")),
                )
                .await
                .unwrap(),
        );
    }
    alice.close();
    server.stop();
    server.restart();

    let (bob, mut bob_events) = server.client("bob", "phone", false).await;
    let got = entries(&mut bob_events, 20).await;
    let ids: Vec<_> = got.iter().map(|e| e.server_msg_id).collect();
    assert_eq!(
        ids,
        acks.iter().map(|a| a.server_msg_id).collect::<Vec<_>>(),
        "every acknowledged message, in order"
    );
    let (alice, _a) = server.client("alice", "laptop", false).await;
    let after = alice
        .send(to("bob"), Content::text("after restart"))
        .await
        .unwrap();
    assert!(
        after.version > acks.last().unwrap().version,
        "versions continue after a restart"
    );
    let mut found = 0;
    for _ in 0..50 {
        found = bob
            .search(pb::SearchRequest {
                words: "重启".into(),
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap()
            .total;
        if found == 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(found, 20, "the search index survived the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_nothing_it_acknowledged() {
    if !durable_backends() {
        return;
    }
    let (mut server, _db) = start_server().await;
    let mut senders = Vec::new();
    for s in 0..4 {
        let mut config = server.config(&format!("sender{s}"), "phone", false).await;
        config.send_retry_for = Duration::ZERO; // stop at the first failure: the server is gone
        config.request_timeout = Duration::from_secs(2);
        let (client, _events) = bubble_client::Client::connect(config).await.unwrap();
        senders.push(tokio::spawn(async move {
            let _events = _events;
            let mut acked = Vec::new();
            for i in 0..10_000 {
                match client
                    .send(
                        to("inbox-owner"),
                        Content::text(format!("s{s} n{i} 崩溃测试")),
                    )
                    .await
                {
                    Ok(ack) => acked.push(ack.server_msg_id),
                    Err(_) => break, // the server died under us
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.crash();
    let mut acked = Vec::new();
    for s in senders {
        acked.extend(s.await.unwrap());
    }
    assert!(
        !acked.is_empty(),
        "some messages were acknowledged before the crash"
    );
    server.restart();
    let (owner, _e) = server.client("inbox-owner", "phone", false).await;
    let mut stored = std::collections::HashSet::new();
    let mut after = 0;
    loop {
        let (page, has_more, _) = owner.sync(after, 500).await.unwrap();
        for e in &page {
            stored.insert(e.server_msg_id);
            after = e.version;
        }
        if !has_more {
            break;
        }
    }
    let lost: Vec<_> = acked.iter().filter(|id| !stored.contains(id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged messages lost after kill -9",
        lost.len(),
        acked.len()
    );
    // What was acknowledged but not yet indexed is indexed after the restart.
    let mut total = 0;
    for _ in 0..100 {
        total = owner
            .search(pb::SearchRequest {
                words: "崩溃测试".into(),
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap()
            .total;
        if total >= acked.len() as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        total >= acked.len() as u64,
        "indexed {total} of {} acknowledged",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_device_app_kicks_the_older_session() {
    let (server, _db) = start_server().await;
    server
        .admin(
            "POST",
            "/v1/admin/apps",
            Some(json!({"id": "bank", "settings": {"login_policy": "single"}})),
        )
        .await;
    let token = |user: &'static str| {
        let server = &server;
        async move {
            server
                .admin(
                    "POST",
                    "/v1/admin/apps/bank/tokens",
                    Some(json!({"user": user})),
                )
                .await["token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let mut first = server.config("teller", "desk-1", false).await;
    first.app = "bank".into();
    first.token = token("teller").await;
    let (_old, mut old_events) = bubble_client::Client::connect(first.clone()).await.unwrap();
    assert!(matches!(
        next_event(&mut old_events).await,
        Event::Connected { .. }
    ));
    let mut second = first.clone();
    second.device = "desk-2".into();
    let (new, _new_events) = bubble_client::Client::connect(second).await.unwrap();
    loop {
        match next_event(&mut old_events).await {
            Event::Kicked { reason } => {
                assert!(reason.contains("desk-2"), "{reason}");
                break;
            }
            Event::Connected { .. } => panic!("a kicked client must not reconnect by itself"),
            _ => {}
        }
    }
    new.ping().await.expect("the new session works");
}

/// A TCP proxy whose connections can be cut, to drop a client's connection
/// without touching the server.
async fn cuttable_proxy(target: String) -> (String, tokio::sync::watch::Sender<u32>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (cut_tx, cut_rx) = tokio::sync::watch::channel(0u32);
    tokio::spawn(async move {
        loop {
            let (mut inbound, _) = listener.accept().await.unwrap();
            let target = target.clone();
            let mut cut = cut_rx.clone();
            cut.borrow_and_update();
            tokio::spawn(async move {
                let mut outbound = tokio::net::TcpStream::connect(target).await.unwrap();
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = cut.changed() => {}
                }
            });
        }
    });
    (addr, cut_tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_client_resumes_its_session_and_catches_up() {
    let (server, _db) = start_server().await;
    let (proxy, cut) = cuttable_proxy(server.tcp.clone()).await;
    let mut config = server.config("bob", "phone", false).await;
    config.endpoint = bubble_client::Endpoint::Tcp(proxy);
    config.reconnect_min = Duration::from_millis(300);
    let (_bob, mut bob_events) = bubble_client::Client::connect(config).await.unwrap();
    assert_eq!(
        next_event(&mut bob_events).await,
        Event::Connected { resumed: false }
    );
    let (alice, _a) = server.client("alice", "phone", false).await;
    alice
        .send(to("bob"), Content::text("before the cut"))
        .await
        .unwrap();
    assert_eq!(
        texts(&entries(&mut bob_events, 1).await),
        vec!["before the cut"]
    );

    cut.send_modify(|n| *n += 1);
    // Sent while bob's connection is down: he must get them after resuming.
    for i in 0..5 {
        alice
            .send(to("bob"), Content::text(format!("while away {i}")))
            .await
            .unwrap();
    }
    let mut resumed = false;
    let mut got = Vec::new();
    while got.len() < 5 {
        match next_event(&mut bob_events).await {
            Event::Connected { resumed: r } => resumed = r,
            Event::Entry(e) => got.push(e),
            _ => {}
        }
    }
    assert!(resumed, "the reconnect used the resumption ticket (no RSA)");
    assert_eq!(
        texts(&got),
        (0..5)
            .map(|i| format!("while away {i}"))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_crosses_nodes_to_wherever_the_receiver_is_connected() {
    let Some((nodes, _db)) = start_cluster(2).await else {
        return;
    };
    let (alice, _a) = nodes[0].client("alice", "phone", false).await;
    let (_bob, mut bob_events) = nodes[1].client("bob", "phone", true).await;
    let ack = alice
        .send(to("bob"), Content::text("from node one to node two"))
        .await
        .unwrap();
    let got = entries(&mut bob_events, 1).await;
    assert_eq!(got[0].server_msg_id, ack.server_msg_id);
    // An app-wide notice sent through node one reaches bob on node two.
    nodes[0]
        .admin(
            "POST",
            "/v1/admin/apps/demo/push",
            Some(json!({"target": "app", "text": "cluster-wide"})),
        )
        .await;
    loop {
        if let Event::Broadcast(e) = next_event(&mut bob_events).await {
            assert_eq!(e.content.as_text(), Some("cluster-wide"));
            break;
        }
    }
    // The selector, asked on either node, knows both gates.
    let gates = bubble_client::transport::http_get(&nodes[1].http, "/v1/gate")
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&gates).contains("\"node\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_full_handshakes_from_one_address_is_refused_before_any_rsa() {
    let server = Server::start(vec![(
        "BUBBLE_GATE_HANDSHAKES_PER_SECOND_PER_IP".into(),
        "1".into(),
    )]);
    let mut refused = None;
    for i in 0..6 {
        let config = server.config("alice", &format!("d{i}"), false).await;
        if let Err(e) = bubble_client::Client::connect(config).await {
            refused = Some(e);
            break;
        }
    }
    let refused = refused.expect("the third hello within a second is refused");
    assert!(refused.to_string().contains("RateLimited"), "{refused}");
    let metrics = bubble_client::transport::http_get(&server.http, "/metrics")
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&metrics).contains("bubble_rate_limited_total 0"));
}

/// A TCP proxy that can be switched off (every connection dropped and new
/// ones refused) and on again: a database that dies and comes back.
async fn switchable_proxy(target: String) -> (String, tokio::sync::watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (up_tx, up_rx) = tokio::sync::watch::channel(true);
    tokio::spawn(async move {
        loop {
            let (mut inbound, _) = listener.accept().await.unwrap();
            let mut up = up_rx.clone();
            if !*up.borrow_and_update() {
                continue; // dropped at once: connection refused, in effect
            }
            let target = target.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = up.wait_for(|up| !*up) => {}
                }
            });
        }
    });
    (addr, up_tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_database_is_an_error_to_the_sender_and_nothing_is_lost_when_it_returns() {
    if std::env::var("BUBBLE_E2E_BACKENDS").as_deref() != Ok("scale-out") {
        eprintln!(
            "SKIPPED: the dead-database test runs with BUBBLE_E2E_BACKENDS=scale-out (MariaDB)"
        );
        return;
    }
    let db = bubble_store_mysql::testing::TestDb::create().await;
    let (proxy, up) = switchable_proxy("127.0.0.1:3306".into()).await;
    let url = db.url().replace("127.0.0.1:3306", &proxy);
    let server = Server::start(vec![
        ("BUBBLE_STORE_KIND".into(), "mysql".into()),
        ("BUBBLE_STORE_MYSQL_URL".into(), url),
        ("BUBBLE_SEARCH_KIND".into(), "off".into()),
    ]);
    let mut config = server.config("alice", "phone", false).await;
    config.send_retry_for = Duration::ZERO;
    config.request_timeout = Duration::from_secs(30);
    let (alice, _a) = bubble_client::Client::connect(config).await.unwrap();
    let first = alice
        .send(to("bob"), Content::text("while the database lives"))
        .await
        .unwrap();

    up.send_replace(false);
    let err = alice
        .send_with_id(
            to("bob"),
            "during-outage",
            2,
            Content::text("while it is dead"),
        )
        .await
        .expect_err("a dead database is an error, not a silent drop");
    assert!(err.is_retryable(), "the sender is told to retry: {err}");
    assert!(
        matches!(
            err.code(),
            Some(pb::ErrorCode::Unavailable) | Some(pb::ErrorCode::Timeout)
        ),
        "{err}"
    );

    up.send_replace(true);
    // The client retries with the same id once the database is back.
    let mut retried = None;
    for _ in 0..50 {
        match alice
            .send_with_id(
                to("bob"),
                "during-outage",
                2,
                Content::text("while it is dead"),
            )
            .await
        {
            Ok(ack) => {
                retried = Some(ack);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    retried.expect("accepted once the database is back");
    let (bob, _b) = server.client("bob", "phone", false).await;
    let (stored, _, _) = bob.sync(0, 100).await.unwrap();
    assert_eq!(
        texts(&stored),
        vec!["while the database lives", "while it is dead"]
    );
    assert_eq!(stored[0].server_msg_id, first.server_msg_id);
}

// ----------------------------------------------------------------------
// What a client written from docs/protocol.md alone found, one test each.

fn ping_body() -> Vec<u8> {
    use prost::Message;
    pb::Ping { client_time: 1 }.encode_to_vec()
}

/// A ping answered with a pong: the connection is still open and in step.
async fn still_open(conn: &mut RawConn, seq: u32) {
    conn.request(bubble_proto::Command::Ping, seq, ping_body())
        .await;
    let pong = conn.frame().await;
    assert_eq!(pong.command, bubble_proto::Command::Pong);
    assert_eq!(pong.seq, seq);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_whose_body_does_not_decode_is_invalid_argument_and_the_connection_stays_open() {
    let (server, _db) = start_server().await;
    let mut conn = RawConn::session(&server, "alice", "raw", false).await;
    conn.request(bubble_proto::Command::Send, 5, vec![0xff, 0xff, 0xff])
        .await;
    let answer = conn.frame().await;
    assert_eq!(answer.seq, 5);
    assert!(answer.is_response());
    assert_eq!(
        error_of(&answer).code,
        pb::ErrorCode::InvalidArgument as i32
    );
    still_open(&mut conn, 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_command_is_unknown_command_with_its_seq_and_the_connection_stays_open() {
    let (server, _db) = start_server().await;
    let mut conn = RawConn::session(&server, "alice", "raw", false).await;
    conn.request(bubble_proto::Command::Unknown(0x1ff), 9, vec![1, 2, 3])
        .await;
    let answer = conn.frame().await;
    assert_eq!(answer.seq, 9);
    assert!(answer.is_response());
    let err = error_of(&answer);
    assert_eq!(err.code, pb::ErrorCode::UnknownCommand as i32);
    assert!(!err.retryable);
    still_open(&mut conn, 10).await;
    let metrics = bubble_client::transport::http_get(&server.http, "/metrics")
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&metrics).contains("bubble_malformed_frames_total 1"),
        "an unknown command counts as a frame that could not be decoded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_frame_whose_header_was_read_is_answered_with_its_seq() {
    let (server, _db) = start_server().await;
    // Before the handshake: unknown flag bits, then a body over the maximum.
    let cases: [(u8, u32, u32); 2] = [(0x80, 42, 0), (0x00, 43, u32::MAX)];
    for (flags, seq, body_len) in cases {
        let mut conn = RawConn::tcp(&server).await;
        let mut header = vec![0xb0, 0xbb, 1, flags, 0, 2];
        header.extend_from_slice(&seq.to_be_bytes());
        header.extend_from_slice(&body_len.to_be_bytes());
        conn.send_bytes(&header).await;
        let answer = conn.frame().await;
        assert_eq!(answer.seq, seq, "flags {flags:#x}, length {body_len}");
        assert_eq!(error_of(&answer).code, pb::ErrorCode::MalformedFrame as i32);
        assert!(matches!(conn.recv().await, Received::End), "then the close");
    }
    // In a session the answer is sealed like every record.
    let mut conn = RawConn::session(&server, "alice", "raw", false).await;
    let mut header = vec![0xb0, 0xbb, 1, 0x01, 0, 16];
    header.extend_from_slice(&44u32.to_be_bytes());
    header.extend_from_slice(&u32::MAX.to_be_bytes());
    conn.send_bytes(&header).await;
    let answer = conn.frame().await;
    assert_eq!(answer.seq, 44);
    assert_eq!(error_of(&answer).code, pb::ErrorCode::MalformedFrame as i32);
    assert!(matches!(conn.recv().await, Received::End));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_fails_is_answered_with_a_sealed_malformed_frame_then_a_close_frame() {
    let (server, _db) = start_server().await;
    let mut conn = RawConn::session(&server, "alice", "raw", true).await;
    // A plain frame where a sealed record must be.
    conn.send_frame(&bubble_proto::Frame::new(
        bubble_proto::Command::Ping,
        7,
        ping_body(),
    ))
    .await;
    let answer = conn.frame().await;
    assert!(answer.is_response());
    assert_eq!(answer.seq, 7);
    assert_eq!(error_of(&answer).code, pb::ErrorCode::MalformedFrame as i32);
    match conn.recv().await {
        Received::Close(code) => assert_eq!(code, Some(1002), "protocol error"),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_of_zero_asks_for_the_default_page() {
    let (server, _db) = start_server().await;
    let (alice, _a) = server.client("alice", "phone", false).await;
    let (bob, _b) = server.client("bob", "phone", false).await;
    for i in 0..105 {
        alice
            .send(to("bob"), Content::text(format!("word {i}")))
            .await
            .unwrap();
    }
    let (page, has_more, _) = bob.sync(0, 0).await.unwrap();
    assert_eq!(page.len(), 100, "0 is the default page of 100");
    assert!(has_more);
    let (page, _, _) = bob.sync(0, 3).await.unwrap();
    assert_eq!(page.len(), 3, "any other limit is what it says");

    server
        .admin(
            "POST",
            "/v1/admin/apps/demo/groups",
            Some(json!({"id": "hall", "owner": "alice", "members": ["bob"], "super_group": true})),
        )
        .await;
    let hall = Conversation::super_group(&GroupId::new("hall"));
    for i in 0..3 {
        alice
            .send(hall.clone(), Content::text(format!("hall {i}")))
            .await
            .unwrap();
    }
    let (page, last) = bob.pull_channel("hall", 0, 0).await.unwrap();
    assert_eq!((page.entries.len(), last), (3, 3));

    let mut hits = 0;
    for _ in 0..50 {
        let found = bob
            .search(pb::SearchRequest {
                words: "word".into(),
                limit: 0,
                ..Default::default()
            })
            .await
            .unwrap();
        hits = found.hits.len();
        if found.total >= 105 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(hits, 20, "0 is the default of 20 hits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_shutdown_a_websocket_gets_going_away_then_a_close_frame() {
    let (server, _db) = start_server().await;
    let mut conn = RawConn::session(&server, "alice", "raw", true).await;
    still_open(&mut conn, 2).await;
    let mut server = server;
    let server = tokio::task::spawn_blocking(move || {
        server.stop();
        server
    })
    .await
    .unwrap();
    let last = conn.frame().await;
    assert_eq!(last.seq, 0);
    assert_eq!(error_of(&last).code, pb::ErrorCode::GoingAway as i32);
    match conn.recv().await {
        Received::Close(code) => assert_eq!(code, Some(1001), "going away"),
        other => panic!("expected a close frame, got {other:?}"),
    }
    drop(server);
}

#[test]
fn the_server_binary_answers_help_and_version_and_names_a_bad_flag() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_bubble-server"))
            .args(args)
            .output()
            .expect("bubble-server runs")
    };
    let help = run(&["--help"]);
    assert!(help.status.success(), "{help:?}");
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("--config <FILE>"), "{text}");
    assert!(text.contains("-c"), "{text}");
    assert!(text.contains("BUBBLE_"), "{text}");
    let version = run(&["--version"]);
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
    let bad = run(&["--confg", "bubble.toml"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--confg"));
}
