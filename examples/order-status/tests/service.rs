//! The order-status service as bubble's router calls it: over gRPC, with
//! the caller's app and user in each request.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

use order_status::pb::BusinessRequest;
use order_status::pb::business_service_client::BusinessServiceClient;
use order_status::{Notifier, ORDER_STATUS, Orders, StatusAnswer, UpdateError, serve};

/// Serves `orders` on a free port; its address.
async fn start(orders: Orders) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, orders, std::future::pending()));
    address
}

/// Asks `address` for `command` with `body` as `user` of app "demo".
async fn ask(
    address: &str,
    user: &str,
    command: u16,
    body: &str,
) -> Result<StatusAnswer, tonic::Status> {
    let mut client = BusinessServiceClient::connect(address.to_owned())
        .await
        .unwrap();
    let reply = client
        .handle(BusinessRequest {
            app: "demo".into(),
            user: user.into(),
            device: "phone".into(),
            command: u32::from(command),
            body: Bytes::from(body.to_owned()),
            request_id: "r-1".into(),
            attempt: 1,
            timeout_ms: 3000,
        })
        .await?;
    Ok(serde_json::from_slice(&reply.into_inner().body).unwrap())
}

#[tokio::test]
async fn a_users_own_order_is_answered_with_its_status() {
    let address = start(Orders::demo("demo")).await;
    let answer = ask(&address, "alice", ORDER_STATUS, "A-1001")
        .await
        .unwrap();
    assert_eq!(
        answer,
        StatusAnswer {
            order: "A-1001".into(),
            status: "shipped".into()
        }
    );
}

#[tokio::test]
async fn an_unknown_order_and_someone_elses_are_both_not_found() {
    let address = start(Orders::demo("demo")).await;
    for (user, order) in [("alice", "Z-9999"), ("alice", "B-2001")] {
        let refused = ask(&address, user, ORDER_STATUS, order).await.unwrap_err();
        assert_eq!(refused.code(), Code::NotFound, "{order}");
        assert_eq!(
            refused.message(),
            format!("no order {order} in your account")
        );
    }
}

#[tokio::test]
async fn an_empty_body_is_an_invalid_argument_and_another_command_is_unimplemented() {
    let address = start(Orders::demo("demo")).await;
    let refused = ask(&address, "alice", ORDER_STATUS, " ").await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("A-1001"), "{refused:?}");
    let refused = ask(&address, "alice", 0x8002, "A-1001").await.unwrap_err();
    assert_eq!(refused.code(), Code::Unimplemented);
    assert!(refused.message().contains("0x8002"), "{refused:?}");
}

/// A stand-in for bubble's admin API: accepts one request, answers 200,
/// and hands back what it received (head and body).
async fn fake_admin_api() -> (String, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let received = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    break;
                }
            }
            assert!(n > 0, "the request ended early: {text}");
        }
        let answer = "{\"server_msg_id\":\"00\",\"version\":1,\"seq\":0,\"server_time\":1}";
        socket
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        String::from_utf8(request).unwrap()
    });
    (base, received)
}

#[tokio::test]
async fn a_status_change_pushes_a_notice_to_the_owner_through_the_admin_api() {
    let (base, received) = fake_admin_api().await;
    let orders = Orders::demo("demo").with_notifier(Notifier::new(&base, "the-admin-secret"));
    let order = orders.set_status("A-1002", "shipped").await.unwrap();
    assert_eq!(order.status, "shipped");
    let request = tokio::time::timeout(Duration::from_secs(10), received)
        .await
        .unwrap()
        .unwrap();
    assert!(
        request.starts_with("POST /v1/admin/apps/demo/push HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("authorization: bearer the-admin-secret"),
        "{request}"
    );
    let body: serde_json::Value =
        serde_json::from_str(request.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"target": "user", "id": "alice", "text": "Your order A-1002 is now shipped."})
    );
}

#[tokio::test]
async fn a_status_change_nobody_could_be_told_of_still_happens_and_says_so() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let orders = Orders::demo("demo").with_notifier(Notifier::new(&base, "secret"));
    let err = orders.set_status("B-2001", "returned").await.unwrap_err();
    assert!(matches!(err, UpdateError::NotNotified { .. }), "{err}");
    assert!(err.to_string().contains("bob"), "{err}");
    assert_eq!(
        orders.lookup("demo", "bob", "B-2001").unwrap().status,
        "returned"
    );
    assert!(matches!(
        orders.set_status("Z-1", "lost").await,
        Err(UpdateError::NoOrder(_))
    ));
}
