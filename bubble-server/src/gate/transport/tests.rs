//! The transports hold what a peer can make them hold to a bound: pongs,
//! unread output, and time.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, DuplexStream};
use tokio_tungstenite::tungstenite::Message;

use bubble_proto::{Command, Frame};

use super::*;

/// A WebSocket client and the server's connection on the other end of an
/// in-memory pipe of `capacity` bytes each way.
async fn ws_pair(
    capacity: usize,
    max_body: usize,
    write_timeout: Duration,
) -> (WebSocketStream<DuplexStream>, WsConnection<DuplexStream>) {
    let (client, server) = tokio::io::duplex(capacity);
    let accept = WsConnection::accept(server, max_body, write_timeout);
    let connect = tokio_tungstenite::client_async("ws://gate/", client);
    let (accepted, connected) = tokio::join!(accept, connect);
    (
        connected.expect("client upgrade").0,
        accepted.expect("server upgrade"),
    )
}

#[tokio::test]
async fn a_peer_that_pings_without_reading_is_owed_a_bounded_amount_of_pongs() {
    let max_body = 16 * 1024;
    let (mut client, mut server) = ws_pair(4096, max_body, Duration::from_secs(30)).await;
    let serving = tokio::spawn(async move {
        while let Ok(Some(_)) = server.read_frame().await {}
        let _ = server.close(CloseReason::Normal).await;
    });

    // 5,000 pings of the largest payload: 635,000 bytes of pongs owed,
    // none read until the end.
    let pings = 5_000;
    for _ in 0..pings {
        client
            .feed(Message::Ping(vec![7u8; 125].into()))
            .await
            .unwrap();
    }
    client.flush().await.unwrap();
    client.send(Message::Close(None)).await.unwrap();

    let mut pong_bytes = 0;
    let mut pongs = 0;
    while let Some(Ok(message)) = client.next().await {
        if let Message::Pong(payload) = message {
            pongs += 1;
            pong_bytes += payload.len() + 2;
        }
    }
    serving.await.unwrap();
    assert!(pongs >= 1, "the newest ping is still answered");
    // The write buffer's bound (`ws_config`: 64 KiB and two frames), plus
    // what the pipe and the library's last retried pong hold: well under
    // one frame more.
    let bound = WRITE_HIGH_WATER + 3 * (max_body + HEADER_LEN + 14);
    assert!(
        pong_bytes <= bound,
        "{pongs} pongs ({pong_bytes} bytes) queued for a peer that read nothing; at most {bound} may be"
    );
}

#[tokio::test]
async fn a_websocket_peer_that_stops_reading_fails_the_write_at_its_deadline_and_is_reset() {
    let (client, mut server) = ws_pair(4096, 64 * 1024, Duration::from_millis(200)).await;
    let frame = Frame::new(Command::SyncPage, 1, vec![0u8; 60 * 1024]);
    let failed = tokio::time::timeout(Duration::from_secs(30), async {
        for _ in 0..64 {
            server.write_frame(frame.clone()).await?;
            server.flush().await?;
        }
        Ok(())
    })
    .await
    .expect("a write to a peer that does not read gives up");
    assert_eq!(failed, Err(ConnError::Stalled));
    assert_eq!(
        server.write_frame(frame).await,
        Err(ConnError::Stalled),
        "a stalled connection fails every later write at once"
    );
    tokio::time::timeout(Duration::from_secs(5), server.close(CloseReason::GoingAway))
        .await
        .expect("closing a stalled connection does not wait for the peer")
        .unwrap();
    drop(client);
}

/// A connected TCP pair: the server's `TcpConnection` and the raw peer.
async fn tcp_pair(write_timeout: Duration) -> (TcpStream, TcpConnection) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    // A small window: the server's writes block sooner.
    socket.set_recv_buffer_size(4096).unwrap();
    let (peer, accepted) = tokio::join!(socket.connect(addr), listener.accept());
    let server = TcpConnection::new(accepted.unwrap().0, 1 << 20, write_timeout);
    (peer.unwrap(), server)
}

#[tokio::test]
async fn a_tcp_peer_that_stops_reading_is_reset_at_the_write_deadline() {
    let (mut peer, mut server) = tcp_pair(Duration::from_millis(200)).await;
    let frame = Frame::new(Command::SyncPage, 1, vec![0u8; 512 * 1024]);
    // Far more than any socket buffers: 64 MiB.
    let failed = tokio::time::timeout(Duration::from_secs(30), async {
        for _ in 0..128 {
            server.write_frame(frame.clone()).await?;
        }
        Ok(())
    })
    .await
    .expect("a write to a peer that does not read gives up");
    assert_eq!(failed, Err(ConnError::Stalled));
    tokio::time::timeout(Duration::from_secs(5), server.close(CloseReason::GoingAway))
        .await
        .expect("closing a stalled connection does not wait for the peer")
        .unwrap();
    drop(server);

    // The socket was reset, not closed gracefully: the peer's read of what
    // was queued ends in an error instead of a clean end of stream.
    let mut sink = vec![0u8; 1 << 20];
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match peer.read(&mut sink).await {
                Ok(0) => return "a clean end",
                Ok(_) => continue,
                Err(_) => return "a reset",
            }
        }
    })
    .await
    .expect("the socket is released");
    assert_eq!(ended, "a reset");
}

#[tokio::test]
async fn a_reading_tcp_peer_gets_every_frame_and_a_clean_end() {
    let (mut peer, mut server) = tcp_pair(Duration::from_secs(5)).await;
    let reading = tokio::spawn(async move {
        let mut all = Vec::new();
        peer.read_to_end(&mut all).await.map(|_| all.len())
    });
    let frame = Frame::new(Command::SyncPage, 1, vec![1u8; 100_000]);
    for _ in 0..20 {
        server.write_frame(frame.clone()).await.unwrap();
    }
    server.close(CloseReason::Normal).await.unwrap();
    drop(server);
    let read = reading.await.unwrap().expect("a clean end");
    assert_eq!(read, 20 * (HEADER_LEN + 100_000));
}

#[tokio::test]
async fn the_websocket_gate_serves_only_its_root_path() {
    let (client, server) = tokio::io::duplex(4096);
    let accept = WsConnection::accept(server, 1024, Duration::from_secs(1));
    let connect = tokio_tungstenite::client_async("ws://gate/elsewhere", client);
    let (accepted, connected) = tokio::join!(accept, connect);
    assert!(accepted.is_err());
    match connected {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::NOT_FOUND);
        }
        other => panic!("expected 404, got {other:?}"),
    }
}
