//! End to end: a device's business commands go through the server's
//! `[[router]]` to the example order-status service (examples/order-status,
//! served in process) over gRPC, and come back as answers, or as the error
//! codes the service's gRPC statuses map to. The server runs in process
//! from a config file, read as the binary reads it; the device is a
//! `bubble-client` over TCP.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;

use bubble_client::transport::http_request;
use bubble_client::{Client, ClientConfig, ClientError, Endpoint, Event, Events};
use bubble_core::EntryKind;
use bubble_proto::pb::ErrorCode;
use bubble_server::{Config, RunningServer};
use order_status::{Notifier, ORDER_STATUS, Orders, StatusAnswer};
use support::{entries, next_event};

const TEST_KEY: &str = include_str!("../../bubble-proto/tests/fixtures/server_key.pem");

/// A server in `dir` on loopback ports and in-memory stores, with the
/// config file's `router` tables (`[[router]]` entries) added.
async fn start_bubble(dir: &Path, router: &str) -> RunningServer {
    use std::os::unix::fs::PermissionsExt;
    let key = dir.join("server_key.pem");
    std::fs::write(&key, TEST_KEY).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let file = dir.join("bubble.toml");
    std::fs::write(
        &file,
        format!(
            "data_dir = {:?}\n\
             [gate]\ntcp = \"127.0.0.1:0\"\nws = \"127.0.0.1:0\"\n\
             [http]\naddr = \"127.0.0.1:0\"\n\
             [store]\nkind = \"memory\"\n\
             [search]\nkind = \"memory\"\n\
             {router}",
            dir.display().to_string()
        ),
    )
    .unwrap();
    let config = Config::load(Some(&file), &[]).expect("the config file is valid");
    bubble_server::start(config)
        .await
        .expect("the server starts")
}

/// A `[[router]]` table sending app demo's 0x8000-0x80ff to `service`.
fn route_to(service: SocketAddr, idempotent: bool) -> String {
    format!(
        "[[router]]\napp = \"demo\"\ncommands = \"0x8000-0x80ff\"\n\
         address = \"http://{service}\"\nidempotent = {idempotent}\n"
    )
}

/// Serves the order-status example with `orders` on `listener`.
fn serve_orders(listener: tokio::net::TcpListener, orders: Orders) {
    tokio::spawn(order_status::serve(
        listener,
        orders,
        std::future::pending(),
    ));
}

/// `user` of app demo, connected over TCP.
async fn device(server: &RunningServer, user: &str) -> (Client, Events) {
    let http = format!("http://{}", server.http_addr.unwrap());
    let (status, body) = http_request(
        &http,
        "POST",
        "/v1/admin/apps/demo/tokens",
        Some(&server.admin_secret),
        Some(&serde_json::json!({ "user": user }).to_string()),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let token: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let config = ClientConfig::new(
        Endpoint::Tcp(server.tcp_addr.unwrap().to_string()),
        server.server_key_pem.clone(),
        server.server_key_fingerprint.clone(),
        "demo",
        user,
        "phone",
        token["token"].as_str().unwrap(),
    );
    let (client, mut events) = Client::connect(config).await.expect("the device connects");
    match next_event(&mut events).await {
        Event::Connected { .. } => {}
        other => panic!("expected Connected, got {other:?}"),
    }
    (client, events)
}

/// The error code and message of a refused request.
fn refusal(result: Result<Bytes, ClientError>) -> (ErrorCode, String, bool) {
    match result {
        Err(ClientError::Server {
            code,
            message,
            retryable,
        }) => (code, message, retryable),
        other => panic!("expected the server's refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_gets_the_services_answer_its_not_found_and_a_notice_when_the_order_moves() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let service = listener.local_addr().unwrap();
    let orders = Orders::demo("demo");
    serve_orders(listener, orders.clone());
    let server = start_bubble(dir.path(), &route_to(service, true)).await;
    let (alice, mut events) = device(&server, "alice").await;

    let answer = alice
        .business(ORDER_STATUS, Bytes::from_static(b"A-1001"))
        .await
        .expect("the service answers");
    let answer: StatusAnswer = serde_json::from_slice(&answer).unwrap();
    assert_eq!(
        (answer.order.as_str(), answer.status.as_str()),
        ("A-1001", "shipped")
    );

    let (code, message, _) = refusal(
        alice
            .business(ORDER_STATUS, Bytes::from_static(b"Z-9"))
            .await,
    );
    assert_eq!(code, ErrorCode::NotFound);
    assert_eq!(
        message, "no order Z-9 in your account",
        "the service's own message"
    );
    let (code, _, _) = refusal(alice.business(ORDER_STATUS, Bytes::from_static(b"")).await);
    assert_eq!(code, ErrorCode::InvalidArgument);
    let (code, message, _) = refusal(alice.business(0x80ff, Bytes::new()).await);
    assert_eq!(
        code,
        ErrorCode::Internal,
        "a command the service does not serve"
    );
    assert!(
        message.contains(&format!(
            "business service for commands 0x8000-0x80ff at http://{service}"
        )),
        "{message}"
    );
    let (code, _, _) = refusal(alice.business(0x9000, Bytes::new()).await);
    assert_eq!(code, ErrorCode::NotFound, "no [[router]] entry for 0x9000");

    // The shop moves the order; the service tells alice through the admin API.
    let http = format!("http://{}", server.http_addr.unwrap());
    orders
        .clone()
        .with_notifier(Notifier::new(&http, &server.admin_secret))
        .set_status("A-1001", "delivered")
        .await
        .expect("the notice is pushed");
    let notice = entries(&mut events, 1).await.remove(0);
    assert_eq!(notice.kind, EntryKind::SystemNotice);
    assert_eq!(
        notice.content.as_text(),
        Some("Your order A-1001 is now delivered.")
    );
    let answer = alice
        .business(ORDER_STATUS, Bytes::from_static(b"A-1001"))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&answer).contains("delivered"));
    server.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_is_not_running_is_unavailable_within_the_deadline_and_answers_once_started()
{
    let dir = tempfile::tempdir().unwrap();
    let service = {
        let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        reserved.local_addr().unwrap()
    };
    let server = start_bubble(dir.path(), &route_to(service, false)).await;
    let (alice, _events) = device(&server, "alice").await;

    let started = Instant::now();
    let (code, message, retryable) = refusal(
        alice
            .business(ORDER_STATUS, Bytes::from_static(b"A-1001"))
            .await,
    );
    let took = started.elapsed();
    assert_eq!(code, ErrorCode::Unavailable, "{message}");
    assert!(retryable);
    assert!(
        message.starts_with(&format!(
            "business service for commands 0x8000-0x80ff at http://{service} is unavailable: "
        )),
        "{message}"
    );
    assert!(
        took < Duration::from_secs(1),
        "within the request deadline (engine.request_timeout_ms, 1000), took {took:?}"
    );

    // The service starts after the server: the next command reaches it.
    let listener = tokio::net::TcpListener::bind(service).await.unwrap();
    serve_orders(listener, Orders::demo("demo"));
    let answer = alice
        .business(ORDER_STATUS, Bytes::from_static(b"A-1001"))
        .await
        .expect("the service, started late, answers");
    let answer: StatusAnswer = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer.status, "shipped");
    server.shutdown(Duration::from_secs(5)).await.unwrap();
}
