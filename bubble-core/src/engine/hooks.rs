//! Send hooks around the send path.
//!
//! **Before send**: every hook registered for the app (the built-in word
//! filter, a product's HTTP or gRPC service) reviews a message before
//! anything is stored, in the order registered; a refusal stops it, a
//! replacement is what the next hook (and the store) sees. A hook that
//! cannot answer is handled by its failure policy.
//!
//! **After send**: a message to an app with an after-send hook is queued
//! *before* it is stored (a job naming it), so no stored message is ever
//! missed, even when the node dies right after the ack. The dispatcher
//! works the app's queue strictly in order, one node at a time, and hands
//! a message on only once the store holds it; a job whose message was never
//! stored is dropped: at once when it was a retry the store answered from
//! dedup, else once it is older than [`NEVER_STORED_AFTER`] (the append
//! failed). Receivers get
//! every stored message at least once, in order; they deduplicate by
//! server message id.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prost::Message as _;
use tokio::sync::Notify;

use super::{Engine, Session};
use crate::error::{Error, ErrorKind, Result};
use crate::hooks::{AfterSendHook, BeforeSendHook, OutgoingMessage, SentMessage, Verdict};
use crate::jobs::{ClaimOrder, JobQueue, NewJob};
use crate::types::*;

/// What happens to a message when its before-send hook cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// Store it as if the hook had allowed it (availability first).
    #[default]
    Open,
    /// Refuse it with UNAVAILABLE (the check must happen).
    Closed,
}

/// A job older than this whose message is not in the store was never
/// stored.
pub const NEVER_STORED_AFTER: Duration = Duration::from_secs(30);

/// Messages one after-send call carries at most.
const AFTER_SEND_BATCH: usize = 100;

/// How long a taken batch is ours before another node may take it.
const LEASE: Duration = Duration::from_secs(60);

/// Longest wait between two tries of an after-send batch.
const MAX_BACKOFF_MS: i64 = 60_000;

/// Counts of what the hooks did, for metrics.
#[derive(Debug, Default)]
pub struct HookCounts {
    /// Messages a before-send hook refused.
    pub refused: AtomicU64,
    /// Messages a before-send hook rewrote.
    pub replaced: AtomicU64,
    /// Before-send hooks that could not answer.
    pub failed: AtomicU64,
    /// Messages handed to after-send hooks.
    pub delivered: AtomicU64,
    /// After-send calls that failed (and are tried again).
    pub after_send_failed: AtomicU64,
}

/// The hooks of every app.
#[derive(Default)]
pub(super) struct Hooks {
    /// By app (`None`: every app), in the order they run.
    before: Vec<(Option<AppId>, Arc<dyn BeforeSendHook>, FailurePolicy)>,
    after: HashMap<AppId, Arc<dyn AfterSendHook>>,
    jobs: Option<Arc<dyn JobQueue>>,
    wakeup: Notify,
    counts: HookCounts,
}

impl Hooks {
    pub(super) fn add_before(
        &mut self,
        app: Option<AppId>,
        hook: Arc<dyn BeforeSendHook>,
        policy: FailurePolicy,
    ) {
        self.before.push((app, hook, policy));
    }

    pub(super) fn add_after(&mut self, app: AppId, hook: Arc<dyn AfterSendHook>) {
        self.after.insert(app, hook);
    }

    pub(super) fn set_jobs(&mut self, jobs: Arc<dyn JobQueue>) {
        self.jobs = Some(jobs);
    }
}

/// The queue of `app`'s after-send hook.
pub fn after_send_queue(app: &AppId) -> String {
    format!("after_send/{app}")
}

impl Engine {
    /// What the hooks did so far.
    pub fn hook_counts(&self) -> &HookCounts {
        &self.inner.hooks.counts
    }

    /// Runs the app's before-send hooks over `content`: `Ok` with what to
    /// store, or the refusal.
    pub(super) async fn review(
        &self,
        session: &Session,
        conversation: &Conversation,
        client_msg_id: &str,
        content: Content,
    ) -> Result<Content> {
        let hooks = &self.inner.hooks;
        let mut message = OutgoingMessage {
            app: session.app.clone(),
            sender: session.user.clone(),
            sender_device: session.device.clone(),
            conversation: conversation.clone(),
            client_msg_id: client_msg_id.to_owned(),
            content,
        };
        for (app, hook, policy) in &hooks.before {
            if app.as_ref().is_some_and(|a| *a != session.app) {
                continue;
            }
            let verdict =
                tokio::time::timeout(self.inner.config.request_timeout, hook.review(&message))
                    .await
                    .unwrap_or_else(|_| {
                        Err(Error::new(
                            ErrorKind::Timeout,
                            "the before-send hook did not answer in time",
                        ))
                    });
            match verdict {
                Ok(Verdict::Allow) => {}
                Ok(Verdict::Refuse { reason }) => {
                    hooks.counts.refused.fetch_add(1, Ordering::Relaxed);
                    return Err(Error::new(
                        ErrorKind::PermissionDenied,
                        format!("the message was refused: {reason}"),
                    ));
                }
                Ok(Verdict::Replace(content)) => {
                    hooks.counts.replaced.fetch_add(1, Ordering::Relaxed);
                    message.content = content;
                }
                Err(e) => {
                    hooks.counts.failed.fetch_add(1, Ordering::Relaxed);
                    match policy {
                        FailurePolicy::Open => {
                            tracing::warn!(app = %session.app, error = %e,
                                "a before-send hook failed; the message is allowed (fail-open)");
                        }
                        FailurePolicy::Closed => {
                            return Err(Error::new(
                                ErrorKind::Unavailable,
                                format!(
                                    "the message could not be checked (the app's before-send \
                                     hook failed: {e}); try again later"
                                ),
                            ));
                        }
                    }
                }
            }
        }
        Ok(message.content)
    }

    /// Whether `app` has before-send hooks.
    pub(super) fn reviews(&self, app: &AppId) -> bool {
        self.inner
            .hooks
            .before
            .iter()
            .any(|(a, _, _)| a.as_ref().is_none_or(|a| a == app))
    }

    /// Queues `message` for the app's after-send hook, if it has one:
    /// before the message is stored, so that a stored message is never
    /// missed.
    pub(super) async fn queue_after_send(&self, message: &SentMessage) -> Result<()> {
        let hooks = &self.inner.hooks;
        if !hooks.after.contains_key(&message.app) {
            return Ok(());
        }
        let Some(jobs) = &hooks.jobs else {
            return Ok(());
        };
        let job = NewJob {
            queue: after_send_queue(&message.app),
            payload: encode_sent(message),
            due_at: 0,
        };
        jobs.enqueue(&[job], now_millis()).await
    }

    /// Wakes the after-send dispatcher (a message was stored).
    pub(super) fn after_send_stored(&self, app: &AppId) {
        if self.inner.hooks.after.contains_key(app) {
            self.inner.hooks.wakeup.notify_one();
        }
    }

    /// Runs every app's after-send dispatcher until `shutdown`. Returns at
    /// once when no app has an after-send hook.
    pub async fn run_after_send(&self, shutdown: impl std::future::Future<Output = ()>) {
        let hooks = &self.inner.hooks;
        let Some(jobs) = hooks.jobs.clone() else {
            return;
        };
        if hooks.after.is_empty() {
            return;
        }
        let work = async {
            // Backoff per app: a receiver that is down waits alone.
            let mut not_before: HashMap<AppId, (i64, u32)> = HashMap::new();
            loop {
                let mut busy = false;
                for (app, hook) in &hooks.after {
                    let now = now_millis();
                    if not_before.get(app).is_some_and(|(at, _)| *at > now) {
                        continue;
                    }
                    match self.after_send_pass(&jobs, app, hook.as_ref()).await {
                        Ok(moved) => {
                            not_before.remove(app);
                            busy |= moved;
                        }
                        Err(e) => {
                            hooks
                                .counts
                                .after_send_failed
                                .fetch_add(1, Ordering::Relaxed);
                            let tries = not_before.get(app).map_or(0, |(_, t)| *t) + 1;
                            let wait = (500i64 << tries.min(10)).min(MAX_BACKOFF_MS);
                            tracing::warn!(app = %app, error = %e, retry_in_ms = wait,
                                "the after-send hook failed; its messages wait in order");
                            not_before.insert(app.clone(), (now + wait, tries));
                        }
                    }
                }
                if !busy {
                    let _ =
                        tokio::time::timeout(Duration::from_millis(250), hooks.wakeup.notified())
                            .await;
                }
            }
        };
        tokio::select! {
            _ = shutdown => {}
            _ = work => {}
        }
    }

    /// One batch of `app`'s after-send queue: whether it moved.
    async fn after_send_pass(
        &self,
        jobs: &Arc<dyn JobQueue>,
        app: &AppId,
        hook: &dyn AfterSendHook,
    ) -> Result<bool> {
        let queue = after_send_queue(app);
        let holder = self.inner.config.node.to_string();
        let batch = jobs
            .claim(
                &queue,
                &holder,
                now_millis(),
                LEASE.as_millis() as i64,
                AFTER_SEND_BATCH,
                ClaimOrder::InOrder,
            )
            .await?;
        if batch.is_empty() {
            return Ok(false);
        }
        let mut ready = Vec::with_capacity(batch.len());
        let mut done = Vec::with_capacity(batch.len());
        let mut held_back = Vec::new();
        for job in &batch {
            if !held_back.is_empty() {
                held_back.push(job.id);
                continue;
            }
            let message = match decode_sent(&job.payload) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(app = %app, job = job.id, error = %e,
                        "a queued after-send message does not decode; dropped");
                    done.push(job.id);
                    continue;
                }
            };
            if self.is_stored(&message).await? {
                ready.push(message);
                done.push(job.id);
            } else if now_millis() - job.enqueued_at > NEVER_STORED_AFTER.as_millis() as i64
                || self.answered_from_dedup(&message).await?
            {
                // Never stored: nothing to tell.
                done.push(job.id);
            } else {
                // Still being stored, perhaps: it and all after it wait.
                held_back.push(job.id);
            }
        }
        if !ready.is_empty() {
            if let Err(e) = hook.deliver(&ready).await {
                for job in &batch {
                    let _ = jobs.retry(job.id, 0).await;
                }
                return Err(e);
            }
            self.inner
                .hooks
                .counts
                .delivered
                .fetch_add(ready.len() as u64, Ordering::Relaxed);
        }
        jobs.complete(&done).await?;
        let soon = now_millis() + 200;
        for id in &held_back {
            jobs.retry(*id, soon).await?;
        }
        Ok(held_back.is_empty() || !done.is_empty())
    }

    /// Whether `message` was a retry the store answered with an earlier
    /// message's receipt (its client message id is taken by another id):
    /// then it will never be stored, and the queue need not wait for it.
    /// Super-group sends are deduplicated by the log, which has no lookup;
    /// theirs wait out [`NEVER_STORED_AFTER`].
    async fn answered_from_dedup(&self, m: &SentMessage) -> Result<bool> {
        if m.conversation.kind == ConversationKind::SuperGroup {
            return Ok(false);
        }
        let first = self
            .inner
            .inbox
            .find_sent(&m.app, &m.sender, &m.client_msg_id)
            .await?;
        Ok(first.is_some_and(|r| r.server_msg_id != m.server_msg_id))
    }

    /// Whether the store holds `message` (the sender's copy, or the super
    /// group's log entry).
    async fn is_stored(&self, m: &SentMessage) -> Result<bool> {
        if m.conversation.kind == ConversationKind::SuperGroup {
            let group = GroupId::new(&*m.conversation.id);
            return Ok(self
                .inner
                .channels
                .get(&m.app, &group, &m.server_msg_id)
                .await?
                .is_some());
        }
        Ok(self
            .inner
            .inbox
            .get(&m.app, &m.sender, &m.server_msg_id)
            .await?
            .is_some())
    }
}

/// A queued after-send message as bytes (protobuf, bubble's own wire
/// types, so content of every type round-trips).
fn encode_sent(m: &SentMessage) -> Vec<u8> {
    bubble_proto::pb::AfterSendJob {
        app: m.app.to_string(),
        server_msg_id: m.server_msg_id.0.to_vec().into(),
        sender: m.sender.to_string(),
        sender_device: m.sender_device.to_string(),
        conversation_kind: m.conversation.kind as u32,
        conversation_id: m.conversation.id.to_string(),
        client_msg_id: m.client_msg_id.clone(),
        server_time: m.server_time,
        content_type: m.content.kind as u32,
        content: m.content.body.clone(),
    }
    .encode_to_vec()
}

fn decode_sent(bytes: &[u8]) -> Result<SentMessage> {
    let j = bubble_proto::pb::AfterSendJob::decode(bytes)
        .map_err(|e| Error::internal(format!("after-send job: {e}")))?;
    let small = |v: u32| u8::try_from(v).unwrap_or(u8::MAX);
    let kind = ConversationKind::from_u8(small(j.conversation_kind))?;
    Ok(SentMessage {
        app: AppId::from(j.app),
        server_msg_id: MsgId::from_slice(&j.server_msg_id)?,
        sender: UserId::from(j.sender),
        sender_device: DeviceId::from(j.sender_device),
        conversation: Conversation {
            kind,
            id: j.conversation_id.into(),
        },
        client_msg_id: j.client_msg_id,
        server_time: j.server_time,
        content: Content {
            kind: ContentType::from_u8(small(j.content_type))?,
            body: j.content,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queued_after_send_message_round_trips() {
        let m = SentMessage {
            app: AppId::new("a"),
            server_msg_id: MsgId([7; 16]),
            sender: UserId::new("ann"),
            sender_device: DeviceId::new("phone"),
            conversation: Conversation::group(&GroupId::new("g1")),
            client_msg_id: "c-1".into(),
            server_time: 42,
            content: Content::text("hello"),
        };
        assert_eq!(decode_sent(&encode_sent(&m)).unwrap(), m);
    }
}
