//! Two ports a product might write itself.
//!
//! - [`ApiKeyAuthenticator`]: the product already has long-lived device API
//!   keys; bubble accepts them instead of its own HMAC tokens.
//! - [`AuditedInbox`]: every message written into any inbox is also handed
//!   to an audit sink (compliance archiving), whatever store sits inside.
//!   It passes the same conformance suite as bubble's own stores.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use bubble_core::ports::*;
use bubble_core::*;

/// Accepts `app:key` pairs the product issued, mapping each key to a user.
#[derive(Default)]
pub struct ApiKeyAuthenticator {
    keys: Mutex<HashMap<(AppId, String), UserId>>,
}

impl ApiKeyAuthenticator {
    /// Registers a key for a user.
    pub fn add_key(&self, app: &AppId, key: &str, user: &UserId) {
        self.keys
            .lock()
            .insert((app.clone(), key.to_owned()), user.clone());
    }
}

#[async_trait]
impl Authenticator for ApiKeyAuthenticator {
    async fn authenticate(&self, app: &AppId, token: &str, _device: &DeviceId) -> Result<Identity> {
        self.keys
            .lock()
            .get(&(app.clone(), token.to_owned()))
            .map(|user| Identity {
                app: app.clone(),
                user: user.clone(),
                expires_at: i64::MAX,
            })
            .ok_or_else(|| Error::new(ErrorKind::Unauthenticated, "unknown API key for this app"))
    }
}

/// Where audited messages go.
pub trait AuditSink: Send + Sync + 'static {
    /// Records one stored message (called after it is durable).
    fn record(&self, app: &AppId, entry: &InboxEntry);
}

/// An audit sink that keeps records in memory (a real one would write a log).
#[derive(Default)]
pub struct MemoryAudit {
    /// What was recorded, in order.
    pub records: Mutex<Vec<(AppId, MsgId, UserId)>>,
}

impl AuditSink for MemoryAudit {
    fn record(&self, app: &AppId, entry: &InboxEntry) {
        self.records
            .lock()
            .push((app.clone(), entry.server_msg_id, entry.owner.clone()));
    }
}

/// Wraps any [`InboxStore`], auditing every message it stores.
pub struct AuditedInbox {
    inner: Arc<dyn InboxStore>,
    sink: Arc<dyn AuditSink>,
}

impl AuditedInbox {
    /// Audits what `inner` stores into `sink`.
    pub fn new(inner: Arc<dyn InboxStore>, sink: Arc<dyn AuditSink>) -> AuditedInbox {
        AuditedInbox { inner, sink }
    }
}

#[async_trait]
impl InboxStore for AuditedInbox {
    async fn append(&self, app: &AppId, delivery: &Delivery) -> Result<AppendOutcome> {
        let outcome = self.inner.append(app, delivery).await?;
        if matches!(outcome, AppendOutcome::Appended(_)) {
            for entry in delivery
                .entries
                .iter()
                .filter(|e| e.kind == EntryKind::Message)
            {
                self.sink.record(app, entry);
            }
        }
        Ok(outcome)
    }
    async fn pull(
        &self,
        app: &AppId,
        owner: &UserId,
        after: u64,
        limit: usize,
    ) -> Result<InboxPage> {
        self.inner.pull(app, owner, after, limit).await
    }
    async fn history(
        &self,
        app: &AppId,
        owner: &UserId,
        conversation: &Conversation,
        before: u64,
        limit: usize,
    ) -> Result<InboxPage> {
        self.inner
            .history(app, owner, conversation, before, limit)
            .await
    }
    async fn conversations(
        &self,
        app: &AppId,
        owner: &UserId,
        before: u64,
        limit: usize,
    ) -> Result<ConversationPage> {
        self.inner.conversations(app, owner, before, limit).await
    }
    async fn settings(
        &self,
        app: &AppId,
        owner: &UserId,
        conversation: &Conversation,
    ) -> Result<ConversationSettings> {
        self.inner.settings(app, owner, conversation).await
    }
    async fn blocked(&self, app: &AppId, owner: &UserId) -> Result<Vec<UserId>> {
        self.inner.blocked(app, owner).await
    }
    async fn readers(
        &self,
        app: &AppId,
        conversation: &Conversation,
        id: &MsgId,
        members: &[UserId],
    ) -> Result<MessageReaders> {
        self.inner.readers(app, conversation, id, members).await
    }
    async fn react(
        &self,
        app: &AppId,
        id: &MsgId,
        user: &UserId,
        emoji: &str,
        add: bool,
        limits: ReactionLimits,
    ) -> Result<bool> {
        self.inner.react(app, id, user, emoji, add, limits).await
    }
    async fn reactions(
        &self,
        app: &AppId,
        ids: &[MsgId],
        viewer: &UserId,
    ) -> Result<Vec<(MsgId, Vec<ReactionCount>)>> {
        self.inner.reactions(app, ids, viewer).await
    }
    async fn last_version(&self, app: &AppId, owner: &UserId) -> Result<u64> {
        self.inner.last_version(app, owner).await
    }
    async fn get(&self, app: &AppId, owner: &UserId, id: &MsgId) -> Result<Option<InboxEntry>> {
        self.inner.get(app, owner, id).await
    }
    async fn mark_read(
        &self,
        app: &AppId,
        owner: &UserId,
        c: &Conversation,
        up_to: u64,
    ) -> Result<MarkedRead> {
        self.inner.mark_read(app, owner, c, up_to).await
    }
    async fn mark_message_read(&self, app: &AppId, owner: &UserId, id: &MsgId) -> Result<bool> {
        self.inner.mark_message_read(app, owner, id).await
    }
    async fn unread(&self, app: &AppId, owner: &UserId) -> Result<Vec<UnreadCount>> {
        self.inner.unread(app, owner).await
    }
    async fn find_sent(
        &self,
        app: &AppId,
        sender: &UserId,
        id: &str,
    ) -> Result<Option<SendReceipt>> {
        self.inner.find_sent(app, sender, id).await
    }
    async fn pending_index(&self, limit: usize) -> Result<Vec<IndexTask>> {
        self.inner.pending_index(limit).await
    }
    async fn complete_index(&self, ids: &[u64]) -> Result<()> {
        self.inner.complete_index(ids).await
    }
    async fn prune_sent(&self, sent_before: i64, limit: usize) -> Result<u64> {
        self.inner.prune_sent(sent_before, limit).await
    }
    async fn expire(&self, app: &AppId, sent_before: i64, limit: usize) -> Result<Expired> {
        self.inner.expire(app, sent_before, limit).await
    }
}
