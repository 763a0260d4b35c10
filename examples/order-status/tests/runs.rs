//! The binary serves the demo orders, and a line on its standard input
//! changes a status that the next query shows.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use bytes::Bytes;
use order_status::pb::BusinessRequest;
use order_status::pb::business_service_client::BusinessServiceClient;

async fn status_of(address: &str, order: &str) -> String {
    let mut client = BusinessServiceClient::connect(address.to_owned())
        .await
        .unwrap();
    let reply = client
        .handle(BusinessRequest {
            app: "demo".into(),
            user: "alice".into(),
            device: "phone".into(),
            command: u32::from(order_status::ORDER_STATUS),
            body: Bytes::from(order.to_owned()),
            ..Default::default()
        })
        .await
        .unwrap();
    let answer: order_status::StatusAnswer =
        serde_json::from_slice(&reply.into_inner().body).unwrap();
    answer.status
}

#[tokio::test]
async fn the_binary_answers_and_takes_status_changes_from_its_input() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_order-status"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("BUBBLE_ADMIN_SECRET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the order-status binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let address = first
        .strip_prefix("order-status listening on ")
        .unwrap_or_else(|| panic!("first line: {first}"))
        .to_owned();
    assert_eq!(status_of(&address, "A-1002").await, "processing");
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "A-1002 shipped").unwrap();
    let changed = lines.next().unwrap().unwrap();
    assert_eq!(changed, "order A-1002 of alice is now shipped");
    assert_eq!(status_of(&address, "A-1002").await, "shipped");
    child.kill().unwrap();
    child.wait().unwrap();
}
