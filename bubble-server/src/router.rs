//! The router to business services, and the before-send hook, over gRPC:
//! a product's own services beside the server (`business.proto`).
//!
//! [`GrpcBusinessHandler`] is the [`BusinessHandler`] of one `[[router]]`
//! entry: a device's business command goes to `BusinessService.Handle` on
//! the entry's address, and the reply's body back to the device. The
//! service's gRPC status becomes the error kind the device sees
//! ([`error_kind`]), so a `NOT_FOUND` with "no order A-9" reaches the device
//! as NOT_FOUND with that message. [`GrpcBeforeSendHook`] is a
//! [`BeforeSendHook`] calling `SendHook.BeforeSend`.
//!
//! Both connect lazily, at the first call and again after a failure: a
//! service may start after the server, or restart under it. Every call has
//! a deadline. Only a command its entry marks idempotent is ever sent
//! twice (after the service was unavailable or too slow), with backoff and
//! within the device's own request deadline.

use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use bubble_core::hooks::{BeforeSendHook, OutgoingMessage, Verdict};
use bubble_core::ports::{BusinessHandler, Caller};
use bubble_core::{Content, ContentType, EngineBuilder, Error, ErrorKind, Result};

use crate::config::Config;

/// Generated from `bubble-proto/proto/business.proto`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("bubble.business.v1");
}

use pb::business_service_client::BusinessServiceClient;
use pb::send_hook_client::SendHookClient;

/// Checks a service address: `http://host:port`. The problem in words
/// otherwise (for the config's validation, which names the key).
pub fn check_address(address: &str) -> std::result::Result<(), String> {
    let example = "like http://127.0.0.1:50051";
    if address.starts_with("https://") {
        return Err(format!(
            "{address:?}: TLS to a business service is not built in; use http:// on a private \
             network, or a local TLS proxy beside the server"
        ));
    }
    match address.strip_prefix("http://") {
        Some(rest) if !rest.trim_end_matches('/').is_empty() => {}
        _ => return Err(format!("{address:?} is not an http:// address {example}")),
    }
    Endpoint::from_shared(address.to_owned())
        .map(|_| ())
        .map_err(|e| format!("{address:?} is not an address {example}: {e}"))
}

/// The error kind a service's gRPC status code stands for: what the device
/// is told (its protocol code follows from the kind, docs/protocol.md).
pub fn error_kind(code: Code) -> ErrorKind {
    match code {
        Code::InvalidArgument => ErrorKind::InvalidInput,
        Code::NotFound => ErrorKind::NotFound,
        Code::PermissionDenied => ErrorKind::PermissionDenied,
        Code::Unavailable => ErrorKind::Unavailable,
        Code::DeadlineExceeded => ErrorKind::Timeout,
        Code::ResourceExhausted => ErrorKind::RateLimited,
        Code::AlreadyExists => ErrorKind::AlreadyExists,
        Code::FailedPrecondition => ErrorKind::Conflict,
        _ => ErrorKind::Internal,
    }
}

/// The error for a status from `service` (e.g. "business service for
/// commands 0x8000-0x80ff at http://…"). A refusal the service chose
/// (NOT_FOUND, INVALID_ARGUMENT…) carries the service's own message, meant
/// for the device; unavailability and failures name the service, so an
/// operator knows which one to look at.
fn status_error(status: &Status, service: &str) -> Error {
    let kind = error_kind(status.code());
    let message = match kind {
        ErrorKind::Unavailable => format!(
            "{service} is unavailable: {}; retry later",
            with_causes(status)
        ),
        ErrorKind::Timeout => format!(
            "{service} ran out of time: {}; it may or may not have done it",
            with_causes(status)
        ),
        ErrorKind::Internal => format!(
            "{service} failed ({:?}): {}",
            status.code(),
            with_causes(status)
        ),
        _ => status.message().to_owned(),
    };
    Error::new(kind, message)
}

/// The status message and what caused it ("tcp connect error: Connection
/// refused"), each cause once.
fn with_causes(status: &Status) -> String {
    let mut text = status.message().to_owned();
    let mut cause = std::error::Error::source(status);
    while let Some(e) = cause {
        let said = e.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = e.source();
    }
    text
}

/// Whether tonic gave up on the call at its own deadline (the
/// `grpc-timeout` the request carries), which it reports as CANCELLED.
fn gave_up_at_deadline(status: &Status) -> bool {
    let mut cause = std::error::Error::source(status);
    while let Some(e) = cause {
        if e.is::<tonic::TimeoutExpired>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// One service's channel, made at the first call (tonic's lazy channel
/// needs a runtime, which a constructor may not have) and connecting then
/// and again after every failure.
struct LazyChannel {
    endpoint: Endpoint,
    channel: OnceLock<Channel>,
}

impl LazyChannel {
    fn new(address: &str, connect_timeout: Duration) -> Result<LazyChannel> {
        check_address(address).map_err(Error::invalid)?;
        let endpoint = Endpoint::from_shared(address.to_owned())
            .map_err(|e| Error::invalid(format!("{address:?}: {e}")))?
            .connect_timeout(connect_timeout);
        Ok(LazyChannel {
            endpoint,
            channel: OnceLock::new(),
        })
    }

    fn get(&self) -> Channel {
        self.channel
            .get_or_init(|| self.endpoint.connect_lazy())
            .clone()
    }
}

/// How an idempotent command is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The wait before the second attempt; it doubles for each later one.
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(50),
        }
    }
}

/// A [`BusinessHandler`] that calls a product's `BusinessService` over gRPC.
pub struct GrpcBusinessHandler {
    /// "business service for commands 0x8000-0x80ff at http://…", for errors.
    name: String,
    channel: LazyChannel,
    /// One attempt's deadline.
    timeout: Duration,
    /// Whether a failed attempt may be repeated.
    idempotent: bool,
    retry: RetryPolicy,
    /// The whole call's deadline, retries included: the device's request
    /// deadline less a margin, so the device hears this service's own
    /// error rather than the gate's generic one. `None`: attempts alone.
    budget: Option<Duration>,
    /// Request ids: this handler's start time, then a count.
    id_prefix: String,
    next_id: AtomicU64,
}

impl std::fmt::Debug for GrpcBusinessHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcBusinessHandler")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .field("idempotent", &self.idempotent)
            .field("retry", &self.retry)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl GrpcBusinessHandler {
    /// A handler for `commands`, served at `address` (`http://host:port`),
    /// each call waiting at most `timeout`; not idempotent (never sent
    /// twice). No connection is made until the first command.
    pub fn new(
        address: &str,
        commands: RangeInclusive<u16>,
        timeout: Duration,
    ) -> Result<GrpcBusinessHandler> {
        if timeout.is_zero() {
            return Err(Error::invalid(format!(
                "the deadline of the business service at {address} must be above 0"
            )));
        }
        let range = if commands.start() == commands.end() {
            format!("command {:#06x}", commands.start())
        } else {
            format!("commands {:#06x}-{:#06x}", commands.start(), commands.end())
        };
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ok(GrpcBusinessHandler {
            name: format!("business service for {range} at {address}"),
            channel: LazyChannel::new(address, timeout)?,
            timeout,
            idempotent: false,
            retry: RetryPolicy::default(),
            budget: None,
            id_prefix: format!("{:x}", started.as_micros()),
            next_id: AtomicU64::new(1),
        })
    }

    /// Whether a command may be sent again after the service was
    /// unavailable or too slow (with the same `request_id`).
    pub fn idempotent(mut self, idempotent: bool) -> GrpcBusinessHandler {
        self.idempotent = idempotent;
        self
    }

    /// How an idempotent command is tried again (default: 3 attempts,
    /// 50 ms then 100 ms apart).
    pub fn retry(mut self, retry: RetryPolicy) -> GrpcBusinessHandler {
        self.retry = retry;
        self
    }

    /// Ends every call, retries included, within `budget` of its start.
    pub fn within(mut self, budget: Duration) -> GrpcBusinessHandler {
        self.budget = Some(budget);
        self
    }

    /// What errors call this service.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One attempt, cut at `timeout`.
    async fn attempt(
        &self,
        caller: &Caller,
        command: u16,
        body: &Bytes,
        request_id: &str,
        attempt: u32,
        timeout: Duration,
    ) -> Result<Bytes> {
        let mut request = tonic::Request::new(pb::BusinessRequest {
            app: caller.app.to_string(),
            user: caller.user.to_string(),
            device: caller.device.to_string(),
            command: u32::from(command),
            body: body.clone(),
            request_id: request_id.to_owned(),
            attempt,
            timeout_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
        });
        request.set_timeout(timeout);
        let mut client = BusinessServiceClient::new(self.channel.get());
        let timed_out = || {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "{} did not answer within {} ms; it may or may not have handled the command",
                    self.name,
                    timeout.as_millis()
                ),
            )
        };
        match tokio::time::timeout(timeout, client.handle(request)).await {
            Ok(Ok(reply)) => Ok(reply.into_inner().body),
            Ok(Err(status)) if gave_up_at_deadline(&status) => Err(timed_out()),
            Ok(Err(status)) => Err(status_error(&status, &self.name)),
            Err(_) => Err(timed_out()),
        }
    }
}

#[async_trait]
impl BusinessHandler for GrpcBusinessHandler {
    async fn handle(&self, caller: &Caller, command: u16, body: Bytes) -> Result<Bytes> {
        let started = Instant::now();
        let request_id = format!(
            "{}-{:x}",
            self.id_prefix,
            self.next_id.fetch_add(1, Ordering::Relaxed)
        );
        let attempts = if self.idempotent {
            self.retry.attempts.max(1)
        } else {
            1
        };
        let left = || {
            self.budget
                .map_or(Duration::MAX, |b| b.saturating_sub(started.elapsed()))
        };
        let mut attempt = 1;
        loop {
            let timeout = self.timeout.min(left());
            let err = match self
                .attempt(caller, command, &body, &request_id, attempt, timeout)
                .await
            {
                Ok(answer) => return Ok(answer),
                Err(e) => e,
            };
            let backoff = self
                .retry
                .backoff
                .saturating_mul(1 << (attempt - 1).min(16));
            // Another attempt only where one may help, and only if it can
            // still get some time of its own before the deadline.
            let worth_it = matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout)
                && attempt < attempts
                && left() > backoff + backoff.max(Duration::from_millis(10));
            if !worth_it {
                return Err(err);
            }
            tracing::debug!(
                service = %self.name,
                attempt,
                error = %err,
                "an idempotent business command failed; trying again"
            );
            tokio::time::sleep(backoff).await;
            attempt += 1;
        }
    }
}

/// Registers each `[[router]]` entry of `config` on `builder`: its app's
/// (or every app's) commands go to its service, within the engine's
/// request deadline.
pub fn register(mut builder: EngineBuilder, config: &Config) -> Result<EngineBuilder> {
    let deadline = Duration::from_millis(config.engine.request_timeout_ms);
    // The margin lets this handler's own error (naming the service) reach
    // the device before the gate's generic "did not finish in time".
    let budget = deadline.saturating_sub((deadline / 10).min(Duration::from_millis(100)));
    for (i, entry) in config.router.iter().enumerate() {
        let range = entry
            .command_range()
            .map_err(|problem| Error::invalid(format!("router[{i}].commands: {problem}")))?;
        if entry.timeout() > budget {
            tracing::info!(
                entry = i,
                timeout_ms = entry.timeout_ms,
                request_timeout_ms = config.engine.request_timeout_ms,
                "router[{i}].timeout_ms is above the request deadline \
                 (engine.request_timeout_ms): calls are cut at that deadline; raise it for a \
                 slower service"
            );
        }
        let handler = GrpcBusinessHandler::new(&entry.address, range.clone(), entry.timeout())
            .map_err(|e| Error::invalid(format!("router[{i}].address: {}", e.message())))?
            .idempotent(entry.idempotent)
            .within(budget);
        tracing::info!(
            app = %entry.app,
            idempotent = entry.idempotent,
            "{} takes the app's commands",
            handler.name()
        );
        builder = builder.business_handler(entry.app_id(), range, Arc::new(handler));
    }
    Ok(builder)
}

/// A [`BeforeSendHook`] that calls a product's `SendHook` over gRPC.
pub struct GrpcBeforeSendHook {
    /// "send hook at http://…", for errors.
    name: String,
    channel: LazyChannel,
    timeout: Duration,
}

impl std::fmt::Debug for GrpcBeforeSendHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcBeforeSendHook")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl GrpcBeforeSendHook {
    /// A hook served at `address` (`http://host:port`), each call waiting
    /// at most `timeout`. No connection is made until the first message;
    /// an answer that does not come in time is an error of kind
    /// [`ErrorKind::Timeout`] (the app's failure policy decides).
    pub fn new(address: &str, timeout: Duration) -> Result<GrpcBeforeSendHook> {
        if timeout.is_zero() {
            return Err(Error::invalid(format!(
                "the deadline of the send hook at {address} must be above 0"
            )));
        }
        Ok(GrpcBeforeSendHook {
            name: format!("send hook at {address}"),
            channel: LazyChannel::new(address, timeout)?,
            timeout,
        })
    }

    /// The hook's answer as a verdict, refusing one that is not an answer.
    fn verdict(&self, reply: pb::BeforeSendReply) -> Result<Verdict> {
        match pb::Verdict::try_from(reply.verdict) {
            Ok(pb::Verdict::Allow) => Ok(Verdict::Allow),
            Ok(pb::Verdict::Refuse) => Ok(Verdict::Refuse {
                reason: if reply.reason.is_empty() {
                    "the app's send hook refused this message".into()
                } else {
                    reply.reason
                },
            }),
            Ok(pb::Verdict::Replace) => {
                let kind = u8::try_from(reply.replacement_content_type)
                    .ok()
                    .and_then(|k| ContentType::from_u8(k).ok())
                    .filter(|k| *k != ContentType::None)
                    .ok_or_else(|| {
                        Error::internal(format!(
                            "{} answered REPLACE with content type {}, which is not one of 1 \
                             (text), 2 (media), 3 (voice), 4 (custom)",
                            self.name, reply.replacement_content_type
                        ))
                    })?;
                if kind == ContentType::Text
                    && std::str::from_utf8(&reply.replacement_body).is_err()
                {
                    return Err(Error::internal(format!(
                        "{} answered REPLACE with text that is not UTF-8",
                        self.name
                    )));
                }
                Ok(Verdict::Replace(Content {
                    kind,
                    body: reply.replacement_body,
                }))
            }
            _ => Err(Error::internal(format!(
                "{} answered without a verdict ({}); answer ALLOW, REFUSE or REPLACE",
                self.name, reply.verdict
            ))),
        }
    }
}

#[async_trait]
impl BeforeSendHook for GrpcBeforeSendHook {
    async fn review(&self, message: &OutgoingMessage) -> Result<Verdict> {
        let mut request = tonic::Request::new(pb::BeforeSendRequest {
            app: message.app.to_string(),
            sender: message.sender.to_string(),
            sender_device: message.sender_device.to_string(),
            conversation_kind: message.conversation.kind as u32,
            conversation_id: message.conversation.id.to_string(),
            client_msg_id: message.client_msg_id.clone(),
            content_type: message.content.kind as u32,
            body: message.content.body.clone(),
        });
        request.set_timeout(self.timeout);
        let mut client = SendHookClient::new(self.channel.get());
        let timed_out = || {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "{} did not answer within {} ms",
                    self.name,
                    self.timeout.as_millis()
                ),
            )
        };
        match tokio::time::timeout(self.timeout, client.before_send(request)).await {
            Ok(Ok(reply)) => self.verdict(reply.into_inner()),
            Ok(Err(status)) if gave_up_at_deadline(&status) => Err(timed_out()),
            Ok(Err(status)) => Err(status_error(&status, &self.name)),
            Err(_) => Err(timed_out()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bubble_core::{AppId, Conversation, DeviceId, UserId};
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
        let (address, stop) = serve(
            tonic::transport::Server::builder().add_service(BusinessServiceServer::new(service)),
        )
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
        let (address, stop) = serve(
            tonic::transport::Server::builder().add_service(BusinessServiceServer::new(Slow)),
        )
        .await;
        let handler =
            GrpcBusinessHandler::new(&address, RANGE, Duration::from_millis(200)).unwrap();
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
}
