//! The router's unit tests: status mapping, retries, deadlines, the send hook.

use super::*;
use bubble_core::hooks::{BeforeSendHook, OutgoingMessage, Verdict};
use bubble_core::{AppId, Content, Conversation, DeviceId, UserId};
use parking_lot::Mutex;
use pb::business_service_server::{BusinessService, BusinessServiceServer};
use pb::send_hook_server::{SendHook, SendHookServer};
use tokio_util::sync::CancellationToken;

const RANGE: RangeInclusive<u16> = 0x8000..=0x80ff;

/// Serves `router` on a free loopback port until the token is cancelled.
async fn serve(router: tonic::transport::server::Router) -> (String, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(router.serve_with_incoming_shutdown(incoming, stop.clone().cancelled_owned()));
    (address, stop)
}

/// A loopback address nothing listens on.
fn nothing_listening() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

fn caller() -> Caller {
    Caller {
        app: AppId::new("shop"),
        user: UserId::new("alice"),
        device: DeviceId::new("phone"),
    }
}

/// A business service that fails its first `failures` calls with
/// `failure`, then echoes the body, and records every request it got.
struct Flaky {
    failures: usize,
    failure: Code,
    seen: Arc<Mutex<Vec<pb::BusinessRequest>>>,
}

#[tonic::async_trait]
impl BusinessService for Flaky {
    async fn handle(
        &self,
        request: tonic::Request<pb::BusinessRequest>,
    ) -> std::result::Result<tonic::Response<pb::BusinessReply>, Status> {
        let request = request.into_inner();
        let calls = {
            let mut seen = self.seen.lock();
            seen.push(request.clone());
            seen.len()
        };
        if calls <= self.failures {
            return Err(Status::new(self.failure, format!("failure {calls}")));
        }
        Ok(tonic::Response::new(pb::BusinessReply {
            body: request.body,
        }))
    }
}

async fn flaky(
    failures: usize,
    failure: Code,
) -> (
    String,
    Arc<Mutex<Vec<pb::BusinessRequest>>>,
    CancellationToken,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let service = Flaky {
        failures,
        failure,
        seen: seen.clone(),
    };
    let (address, stop) =
        serve(tonic::transport::Server::builder().add_service(BusinessServiceServer::new(service)))
            .await;
    (address, seen, stop)
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        backoff: Duration::from_millis(5),
    }
}

#[test]
fn every_grpc_status_maps_to_the_documented_error_kind() {
    let table = [
        (Code::InvalidArgument, ErrorKind::InvalidInput),
        (Code::NotFound, ErrorKind::NotFound),
        (Code::PermissionDenied, ErrorKind::PermissionDenied),
        (Code::Unavailable, ErrorKind::Unavailable),
        (Code::DeadlineExceeded, ErrorKind::Timeout),
        (Code::ResourceExhausted, ErrorKind::RateLimited),
        (Code::AlreadyExists, ErrorKind::AlreadyExists),
        (Code::FailedPrecondition, ErrorKind::Conflict),
        (Code::Unknown, ErrorKind::Internal),
        (Code::Internal, ErrorKind::Internal),
        (Code::Unimplemented, ErrorKind::Internal),
        (Code::Unauthenticated, ErrorKind::Internal),
        (Code::Cancelled, ErrorKind::Internal),
        (Code::Aborted, ErrorKind::Internal),
        (Code::OutOfRange, ErrorKind::Internal),
        (Code::DataLoss, ErrorKind::Internal),
    ];
    for (code, kind) in table {
        assert_eq!(error_kind(code), kind, "{code:?}");
    }
}

#[test]
fn a_refusal_keeps_the_services_message_and_a_failure_names_the_service() {
    let service = "business service for commands 0x8000-0x80ff at http://orders:50051";
    let refused = status_error(&Status::not_found("no order A-9"), service);
    assert_eq!(refused.kind(), ErrorKind::NotFound);
    assert_eq!(refused.message(), "no order A-9");
    let down = status_error(&Status::unavailable("tcp connect error"), service);
    assert_eq!(down.kind(), ErrorKind::Unavailable);
    assert!(
        down.message()
            .starts_with(&format!("{service} is unavailable: tcp connect error")),
        "{down}"
    );
    let broken = status_error(&Status::unimplemented("no such method"), service);
    assert_eq!(broken.kind(), ErrorKind::Internal);
    assert!(broken.message().contains(service), "{broken}");
    assert!(broken.message().contains("no such method"), "{broken}");
}

#[test]
fn an_address_must_be_plain_http_with_a_host() {
    check_address("http://127.0.0.1:50051").unwrap();
    check_address("http://orders.internal:8080").unwrap();
    for bad in ["127.0.0.1:50051", "grpc://orders:1", "http://", ""] {
        let problem = check_address(bad).unwrap_err();
        assert!(
            problem.contains("http://127.0.0.1:50051"),
            "{bad}: {problem}"
        );
    }
    assert!(
        check_address("https://orders:443")
            .unwrap_err()
            .contains("TLS")
    );
}

#[tokio::test]
async fn the_caller_the_command_and_the_body_reach_the_service_and_its_answer_comes_back() {
    let (address, seen, stop) = flaky(0, Code::Ok).await;
    let handler = GrpcBusinessHandler::new(&address, RANGE, Duration::from_secs(2)).unwrap();
    let answer = handler
        .handle(&caller(), 0x8001, Bytes::from_static(b"A-1001"))
        .await
        .unwrap();
    assert_eq!(&answer[..], b"A-1001");
    let seen = seen.lock();
    let request = &seen[0];
    assert_eq!(
        (
            request.app.as_str(),
            request.user.as_str(),
            request.device.as_str()
        ),
        ("shop", "alice", "phone")
    );
    assert_eq!(request.command, 0x8001);
    assert_eq!(request.attempt, 1);
    assert_eq!(request.timeout_ms, 2000);
    assert!(!request.request_id.is_empty());
    stop.cancel();
}

#[tokio::test]
async fn an_idempotent_command_is_tried_again_with_the_same_request_id_until_it_is_answered() {
    let (address, seen, stop) = flaky(2, Code::Unavailable).await;
    let handler = GrpcBusinessHandler::new(&address, RANGE, Duration::from_secs(2))
        .unwrap()
        .idempotent(true)
        .retry(quick_retries());
    let answer = handler
        .handle(&caller(), 0x8001, Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert_eq!(&answer[..], b"x");
    let seen = seen.lock();
    assert_eq!(seen.len(), 3, "two failures, then the answer");
    assert_eq!(
        seen.iter().map(|r| r.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(seen.iter().all(|r| r.request_id == seen[0].request_id));
    stop.cancel();
}

#[tokio::test]
async fn a_command_that_is_not_idempotent_is_never_sent_twice() {
    let (address, seen, stop) = flaky(1, Code::Unavailable).await;
    let handler = GrpcBusinessHandler::new(&address, RANGE, Duration::from_secs(2))
        .unwrap()
        .retry(quick_retries());
    let err = handler
        .handle(&caller(), 0x8001, Bytes::from_static(b"pay"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        err.message().starts_with(&format!(
            "business service for commands 0x8000-0x80ff at {address} is unavailable"
        )),
        "{err}"
    );
    assert_eq!(seen.lock().len(), 1, "sent once");
    stop.cancel();
}

#[tokio::test]
async fn an_idempotent_command_is_not_tried_again_after_the_service_refused_it() {
    let (address, seen, stop) = flaky(1, Code::NotFound).await;
    let handler = GrpcBusinessHandler::new(&address, RANGE, Duration::from_secs(2))
        .unwrap()
        .idempotent(true)
        .retry(quick_retries());
    let err = handler
        .handle(&caller(), 0x8001, Bytes::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.message(), "failure 1");
    assert_eq!(seen.lock().len(), 1);
    stop.cancel();
}

#[tokio::test]
async fn a_service_that_is_down_is_unavailable_at_once_and_named() {
    let address = nothing_listening();
    let handler =
        GrpcBusinessHandler::new(&address, 0x8001..=0x8001, Duration::from_secs(3)).unwrap();
    let started = Instant::now();
    let err = handler
        .handle(&caller(), 0x8001, Bytes::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        err.message().starts_with(&format!(
            "business service for command 0x8001 at {address} is unavailable: "
        )),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

/// A business service that never answers in time.
struct Slow;

#[tonic::async_trait]
impl BusinessService for Slow {
    async fn handle(
        &self,
        _: tonic::Request<pb::BusinessRequest>,
    ) -> std::result::Result<tonic::Response<pb::BusinessReply>, Status> {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(tonic::Response::new(pb::BusinessReply::default()))
    }
}

#[tokio::test]
async fn a_slow_service_is_cut_at_the_deadline_and_the_device_is_told_timeout() {
    let (address, stop) =
        serve(tonic::transport::Server::builder().add_service(BusinessServiceServer::new(Slow)))
            .await;
    let handler = GrpcBusinessHandler::new(&address, RANGE, Duration::from_millis(200)).unwrap();
    let started = Instant::now();
    let err = handler
        .handle(&caller(), 0x8002, Bytes::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.message().contains("within 200 ms"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    stop.cancel();
}

#[tokio::test]
async fn retries_end_within_the_request_deadline() {
    let handler = GrpcBusinessHandler::new(&nothing_listening(), RANGE, Duration::from_secs(3))
        .unwrap()
        .idempotent(true)
        .retry(RetryPolicy {
            attempts: 100,
            backoff: Duration::from_millis(100),
        })
        .within(Duration::from_millis(400));
    let started = Instant::now();
    let err = handler
        .handle(&caller(), 0x8001, Bytes::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

/// A send hook judging by the text: "spam" is refused, "darn" masked,
/// "???" answered without a verdict, anything else allowed.
struct Moderator;

#[tonic::async_trait]
impl SendHook for Moderator {
    async fn before_send(
        &self,
        request: tonic::Request<pb::BeforeSendRequest>,
    ) -> std::result::Result<tonic::Response<pb::BeforeSendReply>, Status> {
        let m = request.into_inner();
        assert_eq!((m.app.as_str(), m.sender.as_str()), ("shop", "alice"));
        assert_eq!(
            (m.conversation_kind, m.conversation_id.as_str()),
            (1, "bob")
        );
        assert_eq!(m.content_type, 1);
        let reply = match &m.body[..] {
            b"spam" => pb::BeforeSendReply {
                verdict: pb::Verdict::Refuse as i32,
                reason: "links to that shop are not allowed".into(),
                ..Default::default()
            },
            b"darn" => pb::BeforeSendReply {
                verdict: pb::Verdict::Replace as i32,
                replacement_content_type: 1,
                replacement_body: Bytes::from_static(b"d**n"),
                ..Default::default()
            },
            b"???" => pb::BeforeSendReply::default(),
            _ => pb::BeforeSendReply {
                verdict: pb::Verdict::Allow as i32,
                ..Default::default()
            },
        };
        Ok(tonic::Response::new(reply))
    }
}

fn message(text: &str) -> OutgoingMessage {
    OutgoingMessage {
        app: AppId::new("shop"),
        sender: UserId::new("alice"),
        sender_device: DeviceId::new("phone"),
        conversation: Conversation::direct(&UserId::new("bob")),
        client_msg_id: "c-1".into(),
        content: Content::text(text),
    }
}

#[tokio::test]
async fn the_send_hook_allows_refuses_with_its_reason_and_replaces() {
    let (address, stop) =
        serve(tonic::transport::Server::builder().add_service(SendHookServer::new(Moderator)))
            .await;
    let hook = GrpcBeforeSendHook::new(&address, Duration::from_secs(2)).unwrap();
    assert_eq!(
        hook.review(&message("hello")).await.unwrap(),
        Verdict::Allow
    );
    assert_eq!(
        hook.review(&message("spam")).await.unwrap(),
        Verdict::Refuse {
            reason: "links to that shop are not allowed".into()
        }
    );
    assert_eq!(
        hook.review(&message("darn")).await.unwrap(),
        Verdict::Replace(Content::text("d**n"))
    );
    let err = hook.review(&message("???")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal);
    assert!(err.message().contains("without a verdict"), "{err}");
    stop.cancel();
}

#[tokio::test]
async fn a_send_hook_that_is_down_is_an_error_naming_it() {
    let address = nothing_listening();
    let hook = GrpcBeforeSendHook::new(&address, Duration::from_secs(2)).unwrap();
    let err = hook.review(&message("hello")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        err.message()
            .starts_with(&format!("send hook at {address} is unavailable")),
        "{err}"
    );
}

#[test]
fn a_hook_or_handler_with_a_bad_address_or_no_deadline_is_refused_when_made() {
    let err = GrpcBeforeSendHook::new("orders:1", Duration::from_secs(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(GrpcBeforeSendHook::new("http://hook:1", Duration::ZERO).is_err());
    assert!(GrpcBusinessHandler::new("http://svc:1", RANGE, Duration::ZERO).is_err());
}
