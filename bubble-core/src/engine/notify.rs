//! Push notifications for users who are not looking.
//!
//! After a message is stored and pushed, each receiver none of whose
//! devices is connected with its app in the foreground is a *candidate*.
//! A background task (`run_notifications`) turns candidates into one
//! durable job per registered device (skipping muted conversations,
//! devices in do-not-disturb, and bursts within the app's collapse window),
//! and a second loop sends the jobs through the provider's [`Notifier`],
//! retrying with backoff and removing tokens the provider calls invalid.
//!
//! The hop from the ack to the job queue is in memory: a node killed in
//! that moment loses the notification (never the message, which the device
//! syncs). From the queue on, every notification is sent at least once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc};

use super::Engine;
use crate::error::Result;
use crate::jobs::{ClaimOrder, Job, JobQueue, NewJob};
use crate::notify::{
    Notification, Notifier, NotifyOutcome, Preview, PushPlatform, PushToken, PushTokens,
};
use crate::types::*;

/// The queue notifications wait in, for every app.
pub const NOTIFY_QUEUE: &str = "notify";

/// Candidates waiting for the notification task; past this many, new ones
/// are dropped (counted), so a slow provider never slows sends.
const CANDIDATE_BACKLOG: usize = 16_384;

/// Jobs one dispatch pass takes.
const DISPATCH_BATCH: usize = 64;

/// How long a taken job is ours before another node may take it again.
const LEASE: Duration = Duration::from_secs(60);

/// Tries of one notification before it is dropped.
const MAX_ATTEMPTS: u32 = 8;

/// Longest wait between two tries of one notification.
const MAX_BACKOFF_MS: i64 = 5 * 60 * 1000;

/// Longest text a notification shows, in characters.
pub const PREVIEW_CHARS: usize = 120;

/// One receiver of one message who may need a notification.
#[derive(Debug, Clone)]
pub(super) struct Candidate {
    pub app: AppId,
    pub user: UserId,
    /// The conversation as the receiver sees it.
    pub conversation: Conversation,
    pub server_msg_id: MsgId,
    pub sender: UserId,
    pub server_time: i64,
    pub content: Content,
}

/// Counts of what the notification path did, for metrics.
#[derive(Debug, Default)]
pub struct NotificationCounts {
    /// Accepted by a provider.
    pub sent: AtomicU64,
    /// Tokens removed because the provider said they are invalid.
    pub invalid_tokens: AtomicU64,
    /// Tries that failed and will be tried again.
    pub retried: AtomicU64,
    /// Given up: a permanent error, too many tries, no provider for the
    /// platform, or the candidate backlog was full.
    pub dropped: AtomicU64,
    /// Not made: the conversation is muted, the device is in
    /// do-not-disturb, or a burst was collapsed.
    pub suppressed: AtomicU64,
}

/// The notification path's parts, when any provider is configured.
pub(super) struct Notifications {
    tokens: Arc<dyn PushTokens>,
    jobs: Arc<dyn JobQueue>,
    /// By app (`None`: every app without its own) and platform.
    notifiers: HashMap<(Option<AppId>, PushPlatform), Arc<dyn Notifier>>,
    candidates: mpsc::Sender<Candidate>,
    /// Taken by the one task that runs [`Engine::run_notifications`].
    intake: Mutex<Option<mpsc::Receiver<Candidate>>>,
    /// When each (app, user, conversation) was last notified (ms).
    last_sent: Mutex<HashMap<(AppId, UserId, Conversation), i64>>,
    /// Wakes the dispatcher when jobs were added.
    wakeup: Notify,
    counts: NotificationCounts,
}

impl Notifications {
    pub(super) fn new(
        tokens: Arc<dyn PushTokens>,
        jobs: Arc<dyn JobQueue>,
        notifiers: HashMap<(Option<AppId>, PushPlatform), Arc<dyn Notifier>>,
    ) -> Notifications {
        let (candidates, intake) = mpsc::channel(CANDIDATE_BACKLOG);
        Notifications {
            tokens,
            jobs,
            notifiers,
            candidates,
            intake: Mutex::new(Some(intake)),
            last_sent: Mutex::new(HashMap::new()),
            wakeup: Notify::new(),
            counts: NotificationCounts::default(),
        }
    }

    fn notifier(&self, app: &AppId, platform: PushPlatform) -> Option<&Arc<dyn Notifier>> {
        self.notifiers
            .get(&(Some(app.clone()), platform))
            .or_else(|| self.notifiers.get(&(None, platform)))
    }

    /// Whether `key` was notified within `window_ms` of `now`; if not,
    /// records `now` for it. Old records are swept as the map grows.
    fn collapsed(&self, key: (AppId, UserId, Conversation), now: i64, window_ms: i64) -> bool {
        let mut last = self.last_sent.lock();
        if last.len() >= 65_536 {
            last.retain(|_, at| now - *at < window_ms.max(1));
        }
        match last.get(&key) {
            Some(at) if now - *at < window_ms => true,
            _ => {
                last.insert(key, now);
                false
            }
        }
    }
}

impl Engine {
    /// The device's push-notification token: it is notified while it is
    /// not connected (or its app is in the background). Replaces its
    /// earlier one.
    pub async fn register_push_token(
        &self,
        session: &super::Session,
        platform: PushPlatform,
        token: &str,
        locale: &str,
        quiet_until: i64,
    ) -> Result<()> {
        if token.is_empty() || token.len() > 4096 {
            return Err(crate::Error::invalid(
                "a push token must be 1 to 4096 bytes: send the token the provider gave the app",
            ));
        }
        if locale.len() > 35 {
            return Err(crate::Error::invalid(
                "locale must be a language tag such as \"en\" or \"zh-CN\" (at most 35 bytes)",
            ));
        }
        let tokens = &self.inner.push_tokens;
        let token = PushToken {
            device: session.device.clone(),
            platform,
            token: token.to_owned(),
            locale: locale.to_owned(),
            quiet_until,
            updated_at: now_millis(),
        };
        tokens.put_token(&session.app, &session.user, &token).await
    }

    /// Forgets the device's push token (sign-out); whether it had one.
    pub async fn unregister_push_token(&self, session: &super::Session) -> Result<bool> {
        self.inner
            .push_tokens
            .remove_device_token(&session.app, &session.user, &session.device)
            .await
    }

    /// What the notification path did so far (all zero when it is off).
    pub fn notification_counts(&self) -> Option<&NotificationCounts> {
        self.inner.notifications.as_ref().map(|n| &n.counts)
    }

    /// Hands receivers of a just-stored message to the notification task.
    /// Never waits: when the backlog is full the candidate is dropped and
    /// counted (the message itself is stored; the device syncs it).
    pub(super) fn offer_notifications(&self, candidates: impl IntoIterator<Item = Candidate>) {
        let Some(n) = &self.inner.notifications else {
            return;
        };
        for c in candidates {
            if n.candidates.try_send(c).is_err() {
                n.counts.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Runs the notification path until `shutdown`: turns candidates into
    /// durable jobs and sends the jobs (this node's and, once their lease
    /// ran out, those a dead node took). Returns at once when no provider
    /// is configured or another task already runs it.
    pub async fn run_notifications(&self, shutdown: impl std::future::Future<Output = ()>) {
        let Some(n) = &self.inner.notifications else {
            return;
        };
        let Some(intake) = n.intake.lock().take() else {
            return;
        };
        tokio::select! {
            _ = shutdown => {}
            _ = self.take_candidates(intake) => {}
            _ = self.dispatch_notifications() => {}
        }
    }

    async fn take_candidates(&self, mut intake: mpsc::Receiver<Candidate>) {
        let mut batch = Vec::with_capacity(256);
        while intake.recv_many(&mut batch, 256).await > 0 {
            let mut jobs = Vec::new();
            for c in batch.drain(..) {
                match self.notifications_for(&c).await {
                    Ok(made) => jobs.extend(made),
                    Err(e) => {
                        tracing::warn!(app = %c.app, user = %c.user, error = %e,
                            "could not prepare a push notification; it is not sent");
                        self.count(|c| &c.dropped);
                    }
                }
            }
            if jobs.is_empty() {
                continue;
            }
            let Some(n) = &self.inner.notifications else {
                return;
            };
            match n.jobs.enqueue(&jobs, now_millis()).await {
                Ok(()) => n.wakeup.notify_one(),
                Err(e) => {
                    tracing::warn!(error = %e, count = jobs.len(),
                        "could not queue push notifications; they are not sent");
                    n.counts
                        .dropped
                        .fetch_add(jobs.len() as u64, Ordering::Relaxed);
                }
            }
        }
    }

    fn count(&self, which: impl Fn(&NotificationCounts) -> &AtomicU64) {
        if let Some(n) = &self.inner.notifications {
            which(&n.counts).fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The jobs one candidate makes: none while a device of the user is in
    /// the foreground, the conversation is muted or a burst is collapsed;
    /// else one per registered device not in do-not-disturb.
    async fn notifications_for(&self, c: &Candidate) -> Result<Vec<NewJob>> {
        let Some(n) = &self.inner.notifications else {
            return Ok(Vec::new());
        };
        if self.user_in_foreground(&c.app, &c.user).await {
            return Ok(Vec::new());
        }
        let tokens = n.tokens.tokens(&c.app, &c.user).await?;
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let settings = super::default_if_unsupported(
            self.inner
                .inbox
                .settings(&c.app, &c.user, &c.conversation)
                .await,
        )?;
        if settings.muted {
            self.count(|c| &c.suppressed);
            return Ok(Vec::new());
        }
        let app = self.app(&c.app).await?;
        let now = now_millis();
        let key = (c.app.clone(), c.user.clone(), c.conversation.clone());
        if n.collapsed(key, now, app.settings.notification_collapse_ms) {
            self.count(|c| &c.suppressed);
            return Ok(Vec::new());
        }
        let badge: u64 = self
            .inner
            .inbox
            .unread(&c.app, &c.user)
            .await?
            .iter()
            .map(|u| u.count)
            .sum();
        let (title, body) = preview(app.settings.notification_preview, c);
        let mut jobs = Vec::with_capacity(tokens.len());
        for t in tokens {
            if t.quiet_until > now {
                self.count(|c| &c.suppressed);
                continue;
            }
            let notification = Notification {
                app: c.app.clone(),
                user: c.user.clone(),
                device: t.device,
                platform: t.platform,
                token: t.token,
                locale: t.locale,
                title: title.clone(),
                body: body.clone(),
                badge,
                collapse_key: c.conversation.key(),
                conversation: c.conversation.key(),
                message_id: c.server_msg_id.to_string(),
                sender: c.sender.clone(),
                sent_at: c.server_time,
            };
            jobs.push(NewJob {
                queue: NOTIFY_QUEUE.to_owned(),
                payload: serde_json::to_vec(&notification)
                    .map_err(|e| crate::Error::internal(format!("notification as JSON: {e}")))?,
                due_at: now,
            });
        }
        Ok(jobs)
    }

    /// Whether some device of the user is connected with its app in the
    /// foreground, here or (in a cluster) on any node. Presence being down
    /// counts as "yes": no notification rather than one to a user who may
    /// be looking.
    async fn user_in_foreground(&self, app: &AppId, user: &UserId) -> bool {
        if self.inner.hub.in_foreground(app, user) {
            return true;
        }
        if self.inner.bus.is_none() {
            return false;
        }
        match self.inner.presence.routes(app, user).await {
            Ok(routes) => routes.iter().any(|r| !r.background),
            Err(_) => true,
        }
    }

    async fn dispatch_notifications(&self) {
        let Some(n) = &self.inner.notifications else {
            return;
        };
        let holder = self.inner.config.node.to_string();
        loop {
            let claimed = n
                .jobs
                .claim(
                    NOTIFY_QUEUE,
                    &holder,
                    now_millis(),
                    LEASE.as_millis() as i64,
                    DISPATCH_BATCH,
                    ClaimOrder::Any,
                )
                .await;
            let jobs = match claimed {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::warn!(error = %e, "could not take push notifications from the queue");
                    Vec::new()
                }
            };
            if jobs.is_empty() {
                // New jobs wake us; retries and a dead node's jobs come due
                // on their own.
                let _ = tokio::time::timeout(Duration::from_millis(500), n.wakeup.notified()).await;
                continue;
            }
            for job in jobs {
                self.send_notification(n, job).await;
            }
        }
    }

    async fn send_notification(&self, n: &Notifications, job: Job) {
        let done = |ids: &[u64]| {
            let jobs = n.jobs.clone();
            let ids = ids.to_vec();
            async move {
                if let Err(e) = jobs.complete(&ids).await {
                    tracing::warn!(error = %e, "could not mark a push notification done; it may be sent twice");
                }
            }
        };
        let notification: Notification = match serde_json::from_slice(&job.payload) {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(job = job.id, error = %e, "a queued push notification does not decode; dropped");
                n.counts.dropped.fetch_add(1, Ordering::Relaxed);
                return done(&[job.id]).await;
            }
        };
        let Some(notifier) = n.notifier(&notification.app, notification.platform) else {
            tracing::warn!(app = %notification.app, platform = %notification.platform,
                "no push provider for this platform and app; the notification is dropped");
            n.counts.dropped.fetch_add(1, Ordering::Relaxed);
            return done(&[job.id]).await;
        };
        let secret = match self.app(&notification.app).await {
            Ok(app) => app.secret.clone(),
            Err(e) => return self.retry_notification(n, &job, &e).await,
        };
        match notifier.send(&notification, &secret).await {
            Ok(NotifyOutcome::Sent) => {
                n.counts.sent.fetch_add(1, Ordering::Relaxed);
                done(&[job.id]).await;
            }
            Ok(NotifyOutcome::InvalidToken) => {
                n.counts.invalid_tokens.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = n
                    .tokens
                    .remove_token(
                        &notification.app,
                        notification.platform,
                        &notification.token,
                    )
                    .await
                {
                    tracing::warn!(error = %e, "could not remove an invalid push token");
                }
                done(&[job.id]).await;
            }
            Err(e) if e.kind().is_retryable() => self.retry_notification(n, &job, &e).await,
            Err(e) => {
                tracing::warn!(app = %notification.app, platform = %notification.platform,
                    error = %e, "the push provider refused a notification; dropped");
                n.counts.dropped.fetch_add(1, Ordering::Relaxed);
                done(&[job.id]).await;
            }
        }
    }

    async fn retry_notification(&self, n: &Notifications, job: &Job, e: &crate::Error) {
        if job.attempts + 1 >= MAX_ATTEMPTS {
            tracing::warn!(job = job.id, error = %e, attempts = job.attempts + 1,
                "a push notification failed too often; dropped");
            n.counts.dropped.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = n.jobs.complete(&[job.id]).await {
                tracing::warn!(error = %e, "could not drop a failed push notification");
            }
            return;
        }
        n.counts.retried.fetch_add(1, Ordering::Relaxed);
        let due = now_millis() + backoff_ms(job.attempts);
        if let Err(e) = n.jobs.retry(job.id, due).await {
            // The lease runs out and the job is taken again.
            tracing::warn!(error = %e, "could not schedule a push notification's retry");
        }
    }
}

/// The wait before try `attempts + 2`: one second, doubling, at most five
/// minutes.
fn backoff_ms(attempts: u32) -> i64 {
    (1_000i64 << attempts.min(20)).min(MAX_BACKOFF_MS)
}

/// The title and text a notification shows under `policy`.
fn preview(policy: Preview, c: &Candidate) -> (Option<String>, String) {
    let title = match c.conversation.kind {
        ConversationKind::Direct | ConversationKind::System => c.sender.to_string(),
        _ => format!("{} in {}", c.sender, c.conversation.id),
    };
    match policy {
        Preview::None => (None, "New message".to_owned()),
        Preview::Sender => (Some(title), "New message".to_owned()),
        Preview::Full => (Some(title), content_preview(&c.content)),
    }
}

/// A message's content as one line of a notification.
fn content_preview(content: &Content) -> String {
    match content.kind {
        ContentType::Text => {
            let text = String::from_utf8_lossy(&content.body);
            let mut line: String = text.chars().take(PREVIEW_CHARS).collect();
            if text.chars().nth(PREVIEW_CHARS).is_some() {
                line.push('…');
            }
            line
        }
        ContentType::Media => "[media]".to_owned(),
        ContentType::Voice => "[voice message]".to_owned(),
        _ => "New message".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(kind: ConversationKind, text: &str) -> Candidate {
        Candidate {
            app: AppId::new("a"),
            user: UserId::new("bob"),
            conversation: Conversation {
                kind,
                id: if kind == ConversationKind::Direct {
                    "ann"
                } else {
                    "g1"
                }
                .into(),
            },
            server_msg_id: MsgId::default(),
            sender: UserId::new("ann"),
            server_time: 1,
            content: Content::text(text),
        }
    }

    #[test]
    fn each_preview_policy_shows_what_it_says() {
        let c = candidate(ConversationKind::Direct, "lunch?");
        assert_eq!(preview(Preview::None, &c), (None, "New message".into()));
        assert_eq!(
            preview(Preview::Sender, &c),
            (Some("ann".into()), "New message".into())
        );
        assert_eq!(
            preview(Preview::Full, &c),
            (Some("ann".into()), "lunch?".into())
        );
        let g = candidate(ConversationKind::Group, "hi all");
        assert_eq!(preview(Preview::Full, &g).0.as_deref(), Some("ann in g1"));
    }

    #[test]
    fn a_long_text_is_cut_to_the_preview_length_on_a_character_boundary() {
        let long = "é".repeat(PREVIEW_CHARS + 5);
        let shown = content_preview(&Content::text(&long));
        assert_eq!(shown.chars().count(), PREVIEW_CHARS + 1);
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn backoff_doubles_from_a_second_up_to_five_minutes() {
        assert_eq!(backoff_ms(0), 1_000);
        assert_eq!(backoff_ms(3), 8_000);
        assert_eq!(backoff_ms(30), MAX_BACKOFF_MS);
    }
}
