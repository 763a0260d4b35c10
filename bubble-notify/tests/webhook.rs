//! The webhook notifier against a local relay that checks each request as
//! `bubble_notify::webhook` documents it: a POST of the notification's
//! JSON, signed with HMAC-SHA256 of `"<timestamp>.<body>"` under the app's
//! secret.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use bubble_core::ErrorKind;
use bubble_core::notify::{Notifier, NotifyOutcome, PushPlatform};
use bubble_notify::{WebhookConfig, WebhookNotifier};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use common::notification;

/// The app's secret, which the relay knows too.
const SECRET: &str = "demo-app-secret-0123456789";

/// One request as the relay saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    content_type: Option<String>,
    body: Bytes,
    /// What the relay found wrong (empty: a request it accepts).
    problems: Vec<String>,
}

/// A relay that answers `status` after `delay`.
#[derive(Clone)]
struct Relay {
    status: StatusCode,
    delay: Duration,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Relay {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// What a relay does with a notification: checks the timestamp and the
/// signature (in constant time), then answers.
async fn relay(State(relay): State<Relay>, request: Request) -> StatusCode {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let mut problems = Vec::new();
    let timestamp = header("x-bubble-timestamp").and_then(|t| t.parse::<i64>().ok());
    match timestamp {
        None => problems.push("no numeric x-bubble-timestamp".to_owned()),
        Some(t) if (common::unix_ms() - t).abs() > 60_000 => {
            problems.push(format!(
                "x-bubble-timestamp {t} is not within a minute of now"
            ));
        }
        Some(_) => {}
    }
    let signature = header("x-bubble-signature")
        .and_then(|s| s.strip_prefix("sha256=").map(str::to_owned))
        .and_then(|hex| hex::decode(hex).ok());
    match (timestamp, signature) {
        (Some(t), Some(signature)) => {
            let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
            mac.update(format!("{t}.").as_bytes());
            mac.update(&body);
            if mac.verify_slice(&signature).is_err() {
                problems.push("x-bubble-signature does not verify with the app's secret".into());
            }
        }
        _ => problems.push("no x-bubble-signature of the form sha256=<hex>".to_owned()),
    }
    relay.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        content_type: header("content-type"),
        body,
        problems: problems.clone(),
    });
    tokio::time::sleep(relay.delay).await;
    if problems.is_empty() {
        relay.status
    } else {
        StatusCode::UNAUTHORIZED
    }
}

/// A relay answering `status` after `delay`, and a notifier POSTing to it
/// with a timeout of `timeout_ms`.
async fn relay_answering(
    status: StatusCode,
    delay: Duration,
    timeout_ms: u64,
) -> (WebhookNotifier, Relay) {
    let state = Relay {
        status,
        delay,
        seen: Arc::default(),
    };
    let app = axum::Router::new()
        .fallback(relay)
        .with_state(state.clone());
    let addr = common::serve(app).await;
    let config =
        WebhookConfig::new(format!("http://{addr}/hooks/push")).with_timeout_ms(timeout_ms);
    (WebhookNotifier::new(&config).unwrap(), state)
}

async fn relay_with(status: StatusCode) -> (WebhookNotifier, Relay) {
    relay_answering(status, Duration::ZERO, 5_000).await
}

#[tokio::test]
async fn a_notification_is_posted_as_json_signed_with_the_app_secret() {
    let (notifier, relay) = relay_with(StatusCode::OK).await;
    let n = notification(PushPlatform::Webhook, "relay-token-1");

    assert_eq!(notifier.platform(), PushPlatform::Webhook);
    assert_eq!(
        notifier.send(&n, SECRET).await.unwrap(),
        NotifyOutcome::Sent
    );

    let seen = relay.seen();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert!(request.problems.is_empty(), "{:?}", request.problems);
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hooks/push");
    assert_eq!(request.content_type.as_deref(), Some("application/json"));
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body, serde_json::to_value(&n).unwrap());
}

#[tokio::test]
async fn the_relay_refuses_a_notification_signed_with_another_secret() {
    let (notifier, relay) = relay_with(StatusCode::OK).await;
    let n = notification(PushPlatform::Webhook, "relay-token-1");

    let e = notifier.send(&n, "not-the-app-secret").await.unwrap_err();

    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        relay.seen()[0].problems,
        ["x-bubble-signature does not verify with the app's secret"]
    );
}

#[tokio::test]
async fn a_relay_that_no_longer_knows_the_token_makes_it_invalid() {
    for status in [StatusCode::NOT_FOUND, StatusCode::GONE] {
        let (notifier, _) = relay_with(status).await;
        let n = notification(PushPlatform::Webhook, "forgotten");
        assert_eq!(
            notifier.send(&n, SECRET).await.unwrap(),
            NotifyOutcome::InvalidToken,
            "{status}"
        );
    }
}

#[tokio::test]
async fn a_rate_limiting_relay_is_tried_again_later() {
    let (notifier, _) = relay_with(StatusCode::TOO_MANY_REQUESTS).await;
    let e = notifier
        .send(&notification(PushPlatform::Webhook, "t"), SECRET)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert!(e.is_retryable());
}

#[tokio::test]
async fn a_failing_relay_is_unavailable_and_tried_again_later() {
    for status in [
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::BAD_GATEWAY,
        StatusCode::SERVICE_UNAVAILABLE,
    ] {
        let (notifier, _) = relay_with(status).await;
        let e = notifier
            .send(&notification(PushPlatform::Webhook, "t"), SECRET)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{status}");
        assert!(e.is_retryable());
        assert!(e.message().contains(&status.as_u16().to_string()), "{e}");
    }
}

#[tokio::test]
async fn a_notification_the_relay_refuses_is_dropped_not_retried() {
    for status in [
        StatusCode::BAD_REQUEST,
        StatusCode::FORBIDDEN,
        StatusCode::UNPROCESSABLE_ENTITY,
    ] {
        let (notifier, _) = relay_with(status).await;
        let e = notifier
            .send(&notification(PushPlatform::Webhook, "t"), SECRET)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{status}");
        assert!(!e.is_retryable());
    }
}

#[tokio::test]
async fn a_relay_slower_than_timeout_ms_is_a_timeout() {
    let (notifier, _) = relay_answering(StatusCode::OK, Duration::from_secs(5), 200).await;
    let started = std::time::Instant::now();

    let e = notifier
        .send(&notification(PushPlatform::Webhook, "t"), SECRET)
        .await
        .unwrap_err();

    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(e.is_retryable());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "gave up after timeout_ms"
    );
}

#[tokio::test]
async fn an_unreachable_relay_is_unavailable() {
    let addr = common::closed_port().await;
    let notifier =
        WebhookNotifier::new(&WebhookConfig::new(format!("http://{addr}/hooks/push"))).unwrap();

    let e = notifier
        .send(&notification(PushPlatform::Webhook, "t"), SECRET)
        .await
        .unwrap_err();

    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(
        e.message().contains(&addr.to_string()),
        "names the relay: {e}"
    );
}

#[tokio::test]
async fn an_app_without_a_secret_is_refused_before_anything_is_sent() {
    let (notifier, relay) = relay_with(StatusCode::OK).await;

    let e = notifier
        .send(&notification(PushPlatform::Webhook, "t"), "")
        .await
        .unwrap_err();

    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("secret"), "{e}");
    assert!(relay.seen().is_empty());
}
