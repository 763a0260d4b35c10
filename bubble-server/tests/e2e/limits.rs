//! What one client can make the server hold is bounded (issue 11): each
//! test is a finding from outside that once held a connection, a
//! descriptor or a loop forever.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use bubble_core::{Content, Conversation, GroupId};
use bubble_proto::pb;
use serde_json::json;

use super::support::*;
use super::to;

/// `host:port` of the server's WebSocket gate.
fn ws_addr(server: &Server) -> String {
    server
        .ws
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .to_owned()
}

/// A metric's value in the server's `/metrics` text (0 when absent).
async fn metric(server: &Server, line_start: &str) -> f64 {
    let text = bubble_client::transport::http_get(&server.http, "/metrics")
        .await
        .unwrap();
    String::from_utf8_lossy(&text)
        .lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Waits (up to 30 s) until `metric` reads `want`.
async fn until_metric(server: &Server, line_start: &str, want: f64) {
    for _ in 0..300 {
        if metric(server, line_start).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{line_start} is {} after 30 s, not {want}",
        metric(server, line_start).await
    );
}

/// Reads until the server ends the connection; panics if it does not
/// within 10 s.
async fn ended_by_server(mut socket: tokio::net::TcpStream) {
    let mut sink = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(10), async {
        while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await
    .expect("the server closed the connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_socket_that_never_finishes_its_upgrade_is_cut_at_the_handshake_deadline() {
    let server = Server::start(vec![(
        "BUBBLE_GATE_HANDSHAKE_TIMEOUT_MS".into(),
        "500".into(),
    )]);
    // Silent from the start, and silent halfway through the request line.
    let silent = tokio::net::TcpStream::connect(ws_addr(&server))
        .await
        .unwrap();
    let mut halfway = tokio::net::TcpStream::connect(ws_addr(&server))
        .await
        .unwrap();
    halfway
        .write_all(b"GET / HTTP/1.1\r\nHost: ")
        .await
        .unwrap();
    ended_by_server(silent).await;
    ended_by_server(halfway).await;
    until_metric(&server, "bubble_handshakes_total{result=\"timeout\"}", 2.0).await;
    until_metric(&server, "bubble_connections ", 0.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_that_upgrades_but_never_says_hello_is_cut_at_the_same_deadline() {
    let server = Server::start(vec![(
        "BUBBLE_GATE_HANDSHAKE_TIMEOUT_MS".into(),
        "500".into(),
    )]);
    let mut conn = RawConn::ws(&server).await;
    let refused = conn.frame().await;
    assert_eq!(
        error_of(&refused).code,
        pb::ErrorCode::HandshakeFailed as i32
    );
    match conn.recv().await {
        Received::Close(code) => assert_eq!(code, Some(1008)),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_is_held_to_its_connection_cap_on_both_transports() {
    let server = Server::start(vec![(
        "BUBBLE_GATE_MAX_CONNECTIONS_PER_ADDRESS".into(),
        "2".into(),
    )]);
    let first = RawConn::tcp(&server).await;
    let _second = RawConn::session(&server, "alice", "phone", true).await;

    // TCP: an UNAVAILABLE error frame, then the end.
    let mut third = RawConn::tcp(&server).await;
    let refused = error_of(&third.frame().await);
    assert_eq!(refused.code, pb::ErrorCode::Unavailable as i32);
    assert!(refused.retryable);
    assert!(
        refused.message.contains("your address"),
        "{}",
        refused.message
    );
    // WebSocket: the upgrade is answered 503 with the same words.
    match tokio_tungstenite::connect_async(server.ws.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default());
            assert!(body.contains("your address"), "{body}");
        }
        other => panic!("expected 503, got {other:?}"),
    }
    until_metric(
        &server,
        "bubble_connections_refused_total{cap=\"per_address\"}",
        2.0,
    )
    .await;

    // A closed connection gives its slot back.
    drop(first);
    until_metric(&server, "bubble_connections ", 1.0).await;
    let mut again = RawConn::session(&server, "alice", "laptop", false).await;
    again
        .request(
            bubble_proto::Command::Ping,
            2,
            prost::Message::encode_to_vec(&pb::Ping { client_time: 1 }),
        )
        .await;
    assert_eq!(again.frame().await.command, bubble_proto::Command::Pong);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_reset_at_the_write_deadline_and_loses_nothing() {
    let server = Server::start(vec![
        ("BUBBLE_GATE_WRITE_TIMEOUT_MS".into(), "1000".into()),
        ("BUBBLE_GATE_REQUESTS_PER_SECOND".into(), "5000".into()),
        ("BUBBLE_GATE_REQUEST_BURST".into(), "5000".into()),
    ]);
    let (alice, _a) = server.client("alice", "phone", false).await;
    // Bob logs in, then never reads again.
    let _bob = RawConn::session_with_small_window(&server, "bob", "phone").await;
    // 6 MB of pushes: more than the socket buffers on both ends hold.
    let text = "x".repeat(15_000);
    for i in 0..400 {
        alice
            .send(to("bob"), Content::text(format!("{i} {text}")))
            .await
            .unwrap();
    }
    until_metric(&server, "bubble_connections ", 1.0).await;
    assert!(metric(&server, "bubble_write_timeouts_total").await >= 1.0);

    // Bob's next device finds everything, in pages that fit a frame.
    let (bob, _events) = server.client("bob", "laptop", false).await;
    let (mut after, mut got, mut pages) = (0, Vec::new(), 0);
    loop {
        let (page, has_more, _) = bob.sync(after, 500).await.unwrap();
        pages += 1;
        after = page.last().map_or(after, |e| e.version);
        got.extend(page);
        if !has_more {
            break;
        }
    }
    assert_eq!(texts(&got).len(), 400);
    assert!(pages > 1, "6 MB cannot come in one page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_with_large_messages_catches_up_in_pages_bounded_by_bytes() {
    let (server, _db) = start_server().await;
    let (alice, _a) = server.client("alice", "phone", false).await;
    let text = "y".repeat(8_000);
    for i in 0..300 {
        alice
            .send(to("bob"), Content::text(format!("{i:03} {text}")))
            .await
            .unwrap();
    }
    let (bob, _b) = server.client("bob", "phone", false).await;
    for limit in [200, 500] {
        let (mut after, mut got, mut pages) = (0, Vec::new(), 0);
        loop {
            let (page, has_more, _) = bob.sync(after, limit).await.unwrap();
            assert!(
                !page.is_empty(),
                "a page that says more has at least one entry"
            );
            pages += 1;
            after = page.last().unwrap().version;
            got.extend(page);
            if !has_more {
                break;
            }
        }
        let want: Vec<String> = (0..300).map(|i| format!("{i:03} {text}")).collect();
        assert_eq!(
            texts(&got),
            want,
            "every entry once, in order (limit {limit})"
        );
        assert!(
            pages >= 3,
            "2.4 MB in pages of at most 1 MiB (limit {limit})"
        );
    }
    // The same history backwards: pages cut by bytes too, nothing skipped.
    let (mut before, mut got, mut pages) = (0, Vec::new(), 0);
    loop {
        let (page, has_more, _) = bob.history(&to("alice"), before, 500).await.unwrap();
        assert!(!page.is_empty());
        pages += 1;
        before = page.last().unwrap().version;
        got.extend(page);
        if !has_more {
            break;
        }
    }
    let want: Vec<String> = (0..300).rev().map(|i| format!("{i:03} {text}")).collect();
    assert_eq!(texts(&got), want, "every entry once, newest first");
    assert!(pages >= 3, "2.4 MB of history in pages of at most 1 MiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_pulls_search_hits_and_member_lists_are_cut_by_bytes_too() {
    let (server, _db) = start_server().await;
    let (alice, _a) = server.client("alice", "phone", false).await;
    let members: Vec<String> = (0..1200).map(|i| format!("member{i:04}")).collect();
    let mut all = members.clone();
    all.push("bob".into());
    server
        .admin(
            "POST",
            "/v1/admin/apps/demo/groups",
            Some(json!({"id": "hall", "owner": "alice", "members": all, "super_group": true})),
        )
        .await;
    let (bob, _b) = server.client("bob", "phone", false).await;
    let hall = Conversation::super_group(&GroupId::new("hall"));
    let text = "needle ".repeat(2_000);
    for _ in 0..80 {
        alice
            .send(hall.clone(), Content::text(text.clone()))
            .await
            .unwrap();
        alice
            .send(to("bob"), Content::text(text.clone()))
            .await
            .unwrap();
    }

    // 1.1 MB of channel entries: more than one page, whatever the limit.
    let (mut after, mut pulled) = (0, 0);
    loop {
        let (page, _) = bob.pull_channel("hall", after, 100).await.unwrap();
        if after == 0 {
            assert!(
                page.entries.len() < 80,
                "cut by bytes: {}",
                page.entries.len()
            );
        }
        pulled += page.entries.len();
        after = page.entries.last().map_or(after, |e| e.seq);
        if !page.has_more {
            break;
        }
    }
    assert_eq!(pulled, 80);

    // 80 hits of 14 KB: a page of 100 is cut, the offset goes on from there.
    let search = |offset| {
        bob.search(pb::SearchRequest {
            words: "needle".into(),
            conversation: Some(bubble_core::wire::conversation_to_pb(&to("alice"))),
            offset,
            limit: 100,
            ..Default::default()
        })
    };
    let mut first = search(0).await.unwrap();
    for _ in 0..100 {
        if first.total >= 80 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        first = search(0).await.unwrap();
    }
    assert_eq!(first.total, 80);
    assert!(first.hits.len() < 80, "cut by bytes: {}", first.hits.len());
    let rest = search(first.hits.len() as u32).await.unwrap();
    assert_eq!(first.hits.len() + rest.hits.len(), 80);

    // 1,201 members come in pages, in user id order.
    let page = bob.members_page("hall", "", 0).await.unwrap();
    assert_eq!(page.members.len(), 500);
    assert!(page.has_more);
    let everyone = bob.members("hall").await.unwrap();
    let ids: Vec<&str> = everyone
        .members
        .iter()
        .map(|m| m.user_id.as_str())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted);
    assert_eq!(ids.len(), 1202, "1,200 members, alice and bob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http_connections_are_cut_and_the_admin_api_keeps_answering() {
    let server = Server::start(vec![
        ("BUBBLE_HTTP_IDLE_TIMEOUT_MS".into(), "300".into()),
        ("BUBBLE_HTTP_MAX_CONNECTIONS".into(), "4".into()),
    ]);
    let http = server
        .http
        .trim_start_matches("http://")
        .trim_end_matches('/');
    // Four idle sockets fill the listener, and are cut at their idle time...
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(tokio::net::TcpStream::connect(http).await.unwrap());
    }
    // ...so the selector answers again instead of waiting for ever.
    let gate = bubble_client::transport::http_get(&server.http, "/v1/gate")
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&gate).contains("\"node\""));
    for socket in idle {
        ended_by_server(socket).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_typing_notices_reaches_the_peer_once() {
    let (server, _db) = start_server().await;
    let (alice, _a) = server.client("alice", "phone", false).await;
    let (_bob, mut bob_events) = server.client("bob", "phone", false).await;
    for _ in 0..20 {
        alice.typing(&to("bob")).await.unwrap();
    }
    loop {
        if let bubble_client::Event::Typing { .. } = next_event(&mut bob_events).await {
            break;
        }
    }
    // A send after the burst: the gate read (and dropped) the rest of the
    // burst before it.
    alice
        .send(to("bob"), Content::text("done typing"))
        .await
        .unwrap();
    loop {
        match next_event(&mut bob_events).await {
            bubble_client::Event::Typing { .. } => panic!("a second notice within the interval"),
            bubble_client::Event::Entry(e) if e.content.as_text() == Some("done typing") => break,
            _ => {}
        }
    }
}
