//! The router to business services, and the before-send hook, over gRPC:
//! a product's own services beside the server (`business.proto`).
//!
//! [`GrpcBusinessHandler`] is the [`BusinessHandler`] of one `[[router]]`
//! entry: a device's business command goes to `BusinessService.Handle` on
//! the entry's address, and the reply's body back to the device. The
//! service's gRPC status becomes the error kind the device sees
//! ([`error_kind`]), so a `NOT_FOUND` with "no order A-9" reaches the device
//! as NOT_FOUND with that message. [`GrpcBeforeSendHook`] is a
//! [`BeforeSendHook`](bubble_core::hooks::BeforeSendHook) calling `SendHook.BeforeSend`.
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

use bubble_core::ports::{BusinessHandler, Caller};
use bubble_core::{EngineBuilder, Error, ErrorKind, Result};

use crate::config::Config;

/// Generated from `bubble-proto/proto/business.proto`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("bubble.business.v1");
}

use pb::business_service_client::BusinessServiceClient;

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

mod send_hook;

pub use send_hook::GrpcBeforeSendHook;

#[cfg(test)]
mod tests;
