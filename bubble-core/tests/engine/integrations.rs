//! Push notifications and send hooks: who is notified, what a hook may do,
//! and what an after-send receiver gets.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use bubble_core::engine::{FailurePolicy, NOTIFY_QUEUE};
use bubble_core::hooks::*;
use bubble_core::jobs::JobQueue;
use bubble_core::notify::*;
use parking_lot::Mutex;

use super::*;

/// A provider that records what it is asked to send and answers as told.
#[derive(Default)]
struct RecordingNotifier {
    sent: Mutex<Vec<Notification>>,
    /// Tokens the provider calls invalid.
    invalid: Mutex<Vec<String>>,
    /// Tries to fail as unavailable before succeeding.
    fail_first: AtomicUsize,
}

#[async_trait]
impl Notifier for RecordingNotifier {
    fn platform(&self) -> PushPlatform {
        PushPlatform::Webhook
    }

    async fn send(&self, n: &Notification, secret: &str) -> Result<NotifyOutcome> {
        assert_eq!(secret, "a-secret-of-at-least-thirty-two-bytes");
        if self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| f.checked_sub(1))
            .is_ok()
        {
            return Err(Error::new(ErrorKind::Unavailable, "provider down"));
        }
        if self.invalid.lock().contains(&n.token) {
            return Ok(NotifyOutcome::InvalidToken);
        }
        self.sent.lock().push(n.clone());
        Ok(NotifyOutcome::Sent)
    }
}

struct Pushing {
    engine: Engine,
    notifier: Arc<RecordingNotifier>,
    tokens: Arc<MemoryPushTokens>,
    jobs: Arc<MemoryJobs>,
    _task: tokio::task::JoinHandle<()>,
}

async fn pushing(settings: impl FnOnce(&mut AppSettings)) -> Pushing {
    let notifier = Arc::new(RecordingNotifier::default());
    let tokens = Arc::new(MemoryPushTokens::new());
    let jobs = Arc::new(MemoryJobs::new());
    let engine = engine_from(
        Engine::builder()
            .notifier(None, notifier.clone())
            .push_tokens(tokens.clone())
            .jobs(jobs.clone()),
        settings,
    )
    .await;
    let runner = engine.clone();
    let task = tokio::spawn(async move { runner.run_notifications(std::future::pending()).await });
    Pushing {
        engine,
        notifier,
        tokens,
        jobs,
        _task: task,
    }
}

impl Pushing {
    /// Logs `user` in on `device`, registers a token, and logs out.
    async fn registered(&self, user: &str, device: &str) {
        let (s, _q) = login(&self.engine, user, device).await;
        self.engine
            .register_push_token(
                &s,
                PushPlatform::Webhook,
                &format!("{user}-{device}"),
                "en",
                0,
            )
            .await
            .unwrap();
        self.engine.disconnect(&s).await.unwrap();
    }

    /// Waits for `n` notifications (5 s), then 300 ms more so that extra
    /// ones would show.
    async fn sent(&self, n: usize) -> Vec<Notification> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.notifier.sent.lock().len() < n && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.notifier.sent.lock().clone()
    }
}

#[tokio::test]
async fn an_offline_receiver_gets_one_notification_per_registered_device_with_the_unread_badge() {
    let p = pushing(|_| {}).await;
    p.registered("bob", "phone").await;
    p.registered("bob", "tablet").await;
    let (ann, _q) = login(&p.engine, "ann", "laptop").await;
    p.engine
        .send(&ann, to_user("bob", "c1", "hi"))
        .await
        .unwrap();
    let sent = p.sent(2).await;
    let mut devices: Vec<&str> = sent.iter().map(|n| n.device.as_str()).collect();
    devices.sort();
    assert_eq!(devices, ["phone", "tablet"]);
    for n in &sent {
        assert_eq!(n.badge, 1);
        assert_eq!(n.title.as_deref(), Some("ann"));
        assert_eq!(n.body, "New message");
        assert_eq!(n.conversation, "direct:ann");
        assert_eq!(n.collapse_key, "direct:ann");
    }
    assert!(
        p.sent(0).await.iter().all(|n| n.user.as_str() == "bob"),
        "the sender is never notified of their own message"
    );
}

#[tokio::test]
async fn a_burst_in_one_conversation_notifies_once_within_the_collapse_window() {
    let p = pushing(|s| s.notification_collapse_ms = 60_000).await;
    p.registered("bob", "phone").await;
    let (ann, _q) = login(&p.engine, "ann", "laptop").await;
    for i in 0..5 {
        p.engine
            .send(&ann, to_user("bob", &format!("c{i}"), "again"))
            .await
            .unwrap();
    }
    assert_eq!(p.sent(1).await.len(), 1);
    let (cy, _q) = login(&p.engine, "cy", "laptop").await;
    p.engine
        .send(&cy, to_user("bob", "c9", "other"))
        .await
        .unwrap();
    let sent = p.sent(2).await;
    assert_eq!(sent.len(), 2, "another conversation is not collapsed");
    assert_eq!(sent[1].badge, 6);
}

#[tokio::test]
async fn a_user_with_a_device_in_the_foreground_is_not_notified_until_it_goes_to_the_background() {
    let p = pushing(|s| s.notification_collapse_ms = 0).await;
    p.registered("bob", "phone").await;
    let (_laptop, _lq) = login(&p.engine, "bob", "laptop").await;
    let (ann, _q) = login(&p.engine, "ann", "laptop").await;
    p.engine
        .send(&ann, to_user("bob", "c1", "seen"))
        .await
        .unwrap();
    assert!(p.sent(0).await.is_empty());
    p.engine.set_background(&_laptop, true).await.unwrap();
    p.engine
        .send(&ann, to_user("bob", "c2", "unseen"))
        .await
        .unwrap();
    assert_eq!(p.sent(1).await.len(), 1);
}

#[tokio::test]
async fn muted_conversations_and_devices_in_do_not_disturb_are_not_notified() {
    let p = pushing(|s| s.notification_collapse_ms = 0).await;
    let (bob, _q) = login(&p.engine, "bob", "phone").await;
    p.engine
        .register_push_token(&bob, PushPlatform::Webhook, "phone-token", "en", 0)
        .await
        .unwrap();
    let (bob_tablet, _q2) = login(&p.engine, "bob", "tablet").await;
    p.engine
        .register_push_token(
            &bob_tablet,
            PushPlatform::Webhook,
            "tablet-token",
            "en",
            i64::MAX,
        )
        .await
        .unwrap();
    p.engine
        .change_settings(
            &bob,
            &Conversation::direct(&UserId::new("ann")),
            &SettingsChange {
                muted: Some(true),
                ..SettingsChange::default()
            },
        )
        .await
        .unwrap();
    p.engine.disconnect(&bob).await.unwrap();
    p.engine.disconnect(&bob_tablet).await.unwrap();
    let (ann, _a) = login(&p.engine, "ann", "laptop").await;
    p.engine
        .send(&ann, to_user("bob", "c1", "muted"))
        .await
        .unwrap();
    let (cy, _c) = login(&p.engine, "cy", "laptop").await;
    p.engine
        .send(&cy, to_user("bob", "c2", "loud"))
        .await
        .unwrap();
    let sent = p.sent(1).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].token, "phone-token");
    assert_eq!(sent[0].conversation, "direct:cy");
}

#[tokio::test]
async fn a_token_the_provider_calls_invalid_is_removed() {
    let p = pushing(|s| s.notification_collapse_ms = 0).await;
    p.registered("bob", "phone").await;
    p.notifier.invalid.lock().push("bob-phone".into());
    let (ann, _q) = login(&p.engine, "ann", "laptop").await;
    p.engine
        .send(&ann, to_user("bob", "c1", "hi"))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !p
        .tokens
        .tokens(&AppId::new(APP), &UserId::new("bob"))
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the token is removed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let counts = p.engine.notification_counts().unwrap();
    assert_eq!(counts.invalid_tokens.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_provider_that_is_down_is_tried_again_until_it_takes_the_notification() {
    let p = pushing(|_| {}).await;
    p.notifier.fail_first.store(1, Ordering::SeqCst);
    p.registered("bob", "phone").await;
    let (ann, _q) = login(&p.engine, "ann", "laptop").await;
    p.engine
        .send(&ann, to_user("bob", "c1", "hi"))
        .await
        .unwrap();
    // The first retry comes after one second.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while p.notifier.sent.lock().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "sent on the retry");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(p.sent(1).await.len(), 1);
    assert_eq!(p.jobs.depth(NOTIFY_QUEUE).await.unwrap(), 0);
    let counts = p.engine.notification_counts().unwrap();
    assert_eq!(counts.retried.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_super_group_notifies_only_those_its_message_mentions() {
    let p = pushing(|s| s.notification_collapse_ms = 0).await;
    for user in ["bob", "cy", "dee"] {
        p.registered(user, "phone").await;
    }
    let (ann, _q) = login(&p.engine, "ann", "laptop").await;
    let group = super_group_of(&p.engine, &ann, "big", &["bob", "cy", "dee"]).await;
    p.engine
        .send_with(
            &ann,
            text_to(group.clone(), "c1", "@cy look"),
            &MessageRefs {
                mentions: vec![UserId::new("cy")],
                ..MessageRefs::default()
            },
        )
        .await
        .unwrap();
    p.engine
        .send(&ann, text_to(group, "c2", "nobody"))
        .await
        .unwrap();
    let sent = p.sent(1).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].user.as_str(), "cy");
    assert_eq!(sent[0].conversation, "super_group:big");
}

/// A before-send hook that refuses, rewrites, or fails on cue.
struct Reviewer;

#[async_trait]
impl BeforeSendHook for Reviewer {
    async fn review(&self, m: &OutgoingMessage) -> Result<Verdict> {
        let text = String::from_utf8_lossy(&m.content.body).into_owned();
        Ok(if text.contains("no") {
            Verdict::Refuse {
                reason: "says no".into(),
            }
        } else if text.contains("fix") {
            Verdict::Replace(Content::text(text.replace("fix", "fixed")))
        } else if text.contains("down") {
            return Err(Error::new(ErrorKind::Unavailable, "reviewer down"));
        } else {
            Verdict::Allow
        })
    }
}

async fn reviewed(policy: FailurePolicy) -> Engine {
    engine_from(
        Engine::builder()
            .before_send(
                None,
                Arc::new(WordFilter::new(["darn"], WordAction::Mask)),
                FailurePolicy::Closed,
            )
            .before_send(Some(AppId::new(APP)), Arc::new(Reviewer), policy),
        |_| {},
    )
    .await
}

#[tokio::test]
async fn a_refused_message_is_not_stored_and_the_sender_hears_why() {
    let e = reviewed(FailurePolicy::Open).await;
    let (ann, _q) = login(&e, "ann", "laptop").await;
    let err = e
        .send(&ann, to_user("bob", "c1", "no way"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert!(err.message().contains("says no"), "{err}");
    let (bob, _b) = login(&e, "bob", "phone").await;
    assert!(e.sync(&bob, 0, 10).await.unwrap().entries.is_empty());
}

#[tokio::test]
async fn hooks_run_in_order_and_each_sees_the_one_before_rewrite() {
    let e = reviewed(FailurePolicy::Open).await;
    let (ann, _q) = login(&e, "ann", "laptop").await;
    e.send(&ann, to_user("bob", "c1", "darn, fix it"))
        .await
        .unwrap();
    let (bob, _b) = login(&e, "bob", "phone").await;
    let page = e.sync(&bob, 0, 10).await.unwrap();
    assert_eq!(page.entries[0].content, Content::text("****, fixed it"));
}

#[tokio::test]
async fn a_hook_that_cannot_answer_allows_when_open_and_refuses_when_closed() {
    let open = reviewed(FailurePolicy::Open).await;
    let (ann, _q) = login(&open, "ann", "laptop").await;
    open.send(&ann, to_user("bob", "c1", "hook down"))
        .await
        .unwrap();
    let closed = reviewed(FailurePolicy::Closed).await;
    let (ann, _q) = login(&closed, "ann", "laptop").await;
    let err = closed
        .send(&ann, to_user("bob", "c1", "hook down"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(closed.hook_counts().failed.load(Ordering::Relaxed), 1);
}

/// An after-send receiver that is down until told otherwise.
#[derive(Default)]
struct Archive {
    up: AtomicBool,
    got: Mutex<Vec<SentMessage>>,
}

#[async_trait]
impl AfterSendHook for Archive {
    async fn deliver(&self, messages: &[SentMessage]) -> Result<()> {
        if !self.up.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorKind::Unavailable, "archive down"));
        }
        self.got.lock().extend_from_slice(messages);
        Ok(())
    }
}

#[tokio::test]
async fn an_after_send_receiver_that_was_down_gets_every_message_once_in_order() {
    let archive = Arc::new(Archive::default());
    let jobs = Arc::new(MemoryJobs::new());
    let e = engine_from(
        Engine::builder()
            .jobs(jobs.clone())
            .after_send(AppId::new(APP), archive.clone()),
        |_| {},
    )
    .await;
    let runner = e.clone();
    tokio::spawn(async move { runner.run_after_send(std::future::pending()).await });
    let (ann, _q) = login(&e, "ann", "laptop").await;
    let group = super_group_of(&e, &ann, "big", &["bob", "cy"]).await;
    let mut ids = Vec::new();
    for i in 0..30 {
        let to = if i % 3 == 0 {
            group.clone()
        } else {
            Conversation::direct(&UserId::new("bob"))
        };
        let r = e
            .send(&ann, text_to(to, &format!("c{i}"), &format!("m{i}")))
            .await
            .unwrap();
        ids.push(r.server_msg_id);
    }
    // A retry answered from dedup is not a second message.
    e.send(&ann, to_user("bob", "c1", "m1")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(archive.got.lock().is_empty());
    archive.up.store(true, Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(70);
    while archive.got.lock().len() < 30 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "all delivered once back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got: Vec<MsgId> = archive.got.lock().iter().map(|m| m.server_msg_id).collect();
    assert_eq!(got, ids, "each once, in the order stored");
}

#[tokio::test]
async fn a_retry_the_store_answers_from_dedup_does_not_hold_up_the_after_send_queue() {
    let archive = Arc::new(Archive::default());
    archive.up.store(true, Ordering::SeqCst);
    // The cache forgets receipts at once, so the retry reaches the store,
    // which answers it with the first message's receipt.
    let config = EngineConfig {
        dedup_ttl: Duration::from_millis(1),
        ..EngineConfig::default()
    };
    let e = engine_from(
        Engine::builder()
            .config(config)
            .jobs(Arc::new(MemoryJobs::new()))
            .after_send(AppId::new(APP), archive.clone()),
        |_| {},
    )
    .await;
    let runner = e.clone();
    tokio::spawn(async move { runner.run_after_send(std::future::pending()).await });
    let (ann, _q) = login(&e, "ann", "laptop").await;
    let first = e.send(&ann, to_user("bob", "c1", "once")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let retry = e.send(&ann, to_user("bob", "c1", "once")).await.unwrap();
    assert!(retry.duplicate, "the store answered the retry");
    let next = e.send(&ann, to_user("bob", "c2", "next")).await.unwrap();
    // Well within the 30 s a message that is never stored may take.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while archive.got.lock().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the message after the retry is handed on without waiting"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got: Vec<MsgId> = archive.got.lock().iter().map(|m| m.server_msg_id).collect();
    assert_eq!(got, vec![first.server_msg_id, next.server_msg_id]);
}
