//! Push notifications and send hooks, end to end: the server binary with a
//! `[[push]]` webhook provider and `[[hooks]]`, a local HTTP service in the
//! test playing the product's backend.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bubble_client::PushRegistration;
use bubble_core::notify::PushPlatform;
use bubble_core::{Content, Conversation, SettingsChange, UserId};
use bubble_proto::pb;
use parking_lot::Mutex;
use serde_json::{Value, json};

use super::support::*;

const HOOK_SECRET: &str = "0123456789abcdef0123456789abcdef";

/// The product's backend: records push webhooks and after-send batches,
/// and judges messages before they are sent.
#[derive(Clone, Default)]
struct Backend {
    notifications: Arc<Mutex<Vec<Value>>>,
    after_send: Arc<Mutex<Vec<Value>>>,
    /// While false, the after-send receiver answers 503.
    after_send_up: Arc<AtomicBool>,
}

async fn on_notify(
    State(b): State<Backend>,
    headers: HeaderMap,
    Json(v): Json<Value>,
) -> StatusCode {
    let signature = headers
        .get("x-bubble-signature")
        .and_then(|s| s.to_str().ok())
        .unwrap_or_default();
    assert!(
        signature.starts_with("sha256=") && signature.len() == 7 + 64,
        "a push webhook is signed: {signature:?}"
    );
    b.notifications.lock().push(v);
    StatusCode::OK
}

async fn on_before_send(headers: HeaderMap, Json(m): Json<Value>) -> Json<Value> {
    assert!(headers.contains_key("x-bubble-signature"));
    let text = m["content"].as_str().unwrap_or_default();
    Json(if text.contains("forbidden") {
        json!({"verdict": "refuse", "reason": "no forbidden words here"})
    } else if text.contains("rewrite me") {
        json!({"verdict": "replace", "content": text.replace("rewrite me", "rewritten")})
    } else {
        json!({"verdict": "allow"})
    })
}

async fn on_after_send(State(b): State<Backend>, Json(batch): Json<Value>) -> StatusCode {
    if !b.after_send_up.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let mut got = b.after_send.lock();
    for m in batch["messages"].as_array().expect("messages") {
        got.push(m.clone());
    }
    StatusCode::OK
}

async fn serve_backend(backend: Backend) -> SocketAddr {
    let app = axum::Router::new()
        .route("/notify", post(on_notify))
        .route("/before", post(on_before_send))
        .route("/after", post(on_after_send))
        .with_state(backend);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A server on the memory backends (or those the run chooses) with
/// `config` as its file.
fn start_with_config(config: &str) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bubble.toml");
    std::fs::write(&path, config).unwrap();
    let mut env = match std::env::var("BUBBLE_E2E_BACKENDS").as_deref() {
        Ok("memory") => memory_backends(),
        _ => Vec::new(),
    };
    env.push(("BUBBLE_CONFIG".into(), path.display().to_string()));
    (Server::start(env), dir)
}

fn to(user: &str) -> Conversation {
    Conversation::direct(&UserId::new(user))
}

async fn register(server: &Server, user: &str, device: &str) -> bubble_client::Client {
    let (client, _events) = server.client(user, device, false).await;
    client
        .register_push(&PushRegistration {
            platform: PushPlatform::Webhook,
            token: format!("tok-{user}-{device}"),
            locale: "en".into(),
            quiet_until: 0,
        })
        .await
        .unwrap();
    client
}

/// Waits until `list` holds at least `n` items (or 20 s), then a little
/// longer so that extra ones would show, and returns them.
async fn settle(list: &Mutex<Vec<Value>>, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while list.lock().len() < n && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    list.lock().clone()
}

fn tokens(notifications: &[Value]) -> Vec<String> {
    let mut t: Vec<String> = notifications
        .iter()
        .map(|n| n["token"].as_str().unwrap().to_owned())
        .collect();
    t.sort();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_to_an_offline_user_notifies_each_registered_device_once_with_the_badge() {
    let backend = Backend::default();
    let addr = serve_backend(backend.clone()).await;
    let (server, _dir) = start_with_config(&format!(
        "[[push]]\napp = \"demo\"\nplatform = \"webhook\"\nurl = \"http://{addr}/notify\"\n"
    ));
    // Bob registers two devices, then closes the app on both.
    for device in ["phone", "tablet"] {
        let bob = register(&server, "bob", device).await;
        bob.close();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (alice, _a) = server.client("alice", "laptop", false).await;
    alice
        .send(to("bob"), Content::text("are you there?"))
        .await
        .unwrap();
    // A burst in the same conversation shows once.
    alice
        .send(to("bob"), Content::text("hello?"))
        .await
        .unwrap();
    let got = settle(&backend.notifications, 2).await;
    assert_eq!(tokens(&got), vec!["tok-bob-phone", "tok-bob-tablet"]);
    for n in &got {
        assert_eq!(n["user"], "bob");
        assert_eq!(n["platform"], "webhook");
        assert_eq!(n["conversation"], "direct:alice");
        assert_eq!(n["title"], "alice", "the default preview names the sender");
        assert_eq!(n["body"], "New message", "and hides the text");
        assert!(
            n["badge"].as_u64().unwrap() >= 1,
            "the badge counts bob's unread: {n}"
        );
    }

    // Carol's message, in another conversation, has the badge of both.
    let (carol, _c) = server.client("carol", "laptop", false).await;
    carol
        .send(to("bob"), Content::text("hi bob"))
        .await
        .unwrap();
    let got = settle(&backend.notifications, 4).await;
    assert_eq!(got.len(), 4);
    assert!(
        got[2..]
            .iter()
            .all(|n| n["badge"] == 3 && n["conversation"] == "direct:carol")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_in_the_foreground_stops_notifications_and_one_in_the_background_does_not() {
    let backend = Backend::default();
    let addr = serve_backend(backend.clone()).await;
    let (server, _dir) = start_with_config(&format!(
        "[[push]]\napp = \"demo\"\nplatform = \"webhook\"\nurl = \"http://{addr}/notify\"\n"
    ));
    let bob = register(&server, "bob", "phone").await;
    let (alice, _a) = server.client("alice", "laptop", false).await;
    alice
        .send(to("bob"), Content::text("you are looking"))
        .await
        .unwrap();
    assert!(settle(&backend.notifications, 1).await.is_empty());

    bob.set_background(true).await.unwrap();
    let (carol, _c) = server.client("carol", "laptop", false).await;
    carol
        .send(to("bob"), Content::text("now you are not"))
        .await
        .unwrap();
    let got = settle(&backend.notifications, 1).await;
    assert_eq!(tokens(&got), vec!["tok-bob-phone"]);

    bob.unregister_push().await.unwrap();
    let (dan, _d) = server.client("dan", "laptop", false).await;
    dan.send(to("bob"), Content::text("after sign-out"))
        .await
        .unwrap();
    assert_eq!(settle(&backend.notifications, 2).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_muted_conversation_makes_no_notification() {
    let backend = Backend::default();
    let addr = serve_backend(backend.clone()).await;
    let (server, _dir) = start_with_config(&format!(
        "[[push]]\napp = \"demo\"\nplatform = \"webhook\"\nurl = \"http://{addr}/notify\"\n"
    ));
    let bob = register(&server, "bob", "phone").await;
    bob.change_settings(
        &to("alice"),
        &SettingsChange {
            muted: Some(true),
            ..SettingsChange::default()
        },
    )
    .await
    .unwrap();
    bob.close();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (alice, _a) = server.client("alice", "laptop", false).await;
    alice.send(to("bob"), Content::text("muted")).await.unwrap();
    let (carol, _c) = server.client("carol", "laptop", false).await;
    carol
        .send(to("bob"), Content::text("not muted"))
        .await
        .unwrap();
    let got = settle(&backend.notifications, 1).await;
    assert_eq!(got.len(), 1, "only carol's message notifies: {got:?}");
    assert_eq!(got[0]["conversation"], "direct:carol");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_send_never_reaches_the_receiver_and_a_rewritten_one_arrives_rewritten() {
    let backend = Backend::default();
    let addr = serve_backend(backend.clone()).await;
    let (server, _dir) = start_with_config(&format!(
        "[[hooks]]\napp = \"demo\"\nbefore_send = \"http://{addr}/before\"\nsecret = \"{HOOK_SECRET}\"\n\
         blocked_words = [\"spam\"]\nword_action = \"mask\"\n"
    ));
    let (alice, _a) = server.client("alice", "laptop", false).await;
    let (bob, _b) = server.client("bob", "phone", false).await;
    let refused = alice
        .send(to("bob"), Content::text("some forbidden words"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(pb::ErrorCode::PermissionDenied));
    assert!(
        refused.to_string().contains("no forbidden words here"),
        "{refused}"
    );
    alice
        .send(to("bob"), Content::text("please rewrite me"))
        .await
        .unwrap();
    alice
        .send(to("bob"), Content::text("buy spam now"))
        .await
        .unwrap();
    let page = bob.sync(0, 100).await.unwrap();
    let texts = texts(&page.0);
    assert_eq!(texts, vec!["please rewritten", "buy **** now"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_before_send_hook_that_is_down_fails_closed_when_configured_so() {
    let (server, _dir) = start_with_config(&format!(
        "[[hooks]]\napp = \"demo\"\nbefore_send = \"http://127.0.0.1:9/before\"\nsecret = \"{HOOK_SECRET}\"\n\
         fail_open = false\ntimeout_ms = 500\n"
    ));
    let (alice, _a) = server.client("alice", "laptop", false).await;
    let err = alice
        .send(to("bob"), Content::text("checked?"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(pb::ErrorCode::Unavailable), "{err}");
    let (bob, _b) = server.client("bob", "phone", false).await;
    assert!(bob.sync(0, 100).await.unwrap().0.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_after_send_receiver_that_was_down_gets_every_message_once_in_order_when_back() {
    let backend = Backend::default();
    let addr = serve_backend(backend.clone()).await;
    let (server, _dir) = start_with_config(&format!(
        "[[hooks]]\napp = \"demo\"\nafter_send = \"http://{addr}/after\"\nsecret = \"{HOOK_SECRET}\"\n"
    ));
    let (alice, _a) = server.client("alice", "laptop", false).await;
    let mut sent = Vec::new();
    for i in 0..20 {
        let receipt = alice
            .send(to("bob"), Content::text(format!("m{i}")))
            .await
            .unwrap();
        sent.push(receipt.server_msg_id.to_string());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(backend.after_send.lock().is_empty(), "the receiver is down");
    backend.after_send_up.store(true, Ordering::SeqCst);
    let got = settle(&backend.after_send, 20).await;
    let ids: Vec<String> = got
        .iter()
        .map(|m| m["server_msg_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, sent, "every message once, in the order stored");
    assert_eq!(got[0]["content"], "m0");
    assert_eq!(got[0]["conversation"], "direct:bob");
}
