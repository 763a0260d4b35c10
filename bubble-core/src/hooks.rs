//! Send hooks: a product's own code that sees messages. A before-send hook
//! may allow, refuse or rewrite a message before anything is stored; an
//! after-send hook receives every stored message at least once, in order,
//! from a durable queue.

use async_trait::async_trait;

use crate::error::Result;
use crate::types::{AppId, Content, Conversation, DeviceId, MsgId, UserId};

/// A message about to be stored, as a before-send hook sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The app.
    pub app: AppId,
    /// Who sends it.
    pub sender: UserId,
    /// From which device.
    pub sender_device: DeviceId,
    /// Where to (as the sender sees it: the peer, or the group).
    pub conversation: Conversation,
    /// The sender's dedup id.
    pub client_msg_id: String,
    /// What it says.
    pub content: Content,
}

/// A before-send hook's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Store it as sent.
    Allow,
    /// Do not store it; the sender gets PERMISSION_DENIED with `reason`.
    Refuse {
        /// Shown to the sender.
        reason: String,
    },
    /// Store `content` instead (a masked word, a rewritten link).
    Replace(Content),
}

/// Sees every message before it is stored. An error means the hook could
/// not answer (down, too slow); the app's failure policy then allows or
/// refuses the message.
#[async_trait]
pub trait BeforeSendHook: Send + Sync + 'static {
    /// Judges one message.
    async fn review(&self, message: &OutgoingMessage) -> Result<Verdict>;
}

/// A stored message, as an after-send hook receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// The app.
    pub app: AppId,
    /// The server's id for it.
    pub server_msg_id: MsgId,
    /// Who sent it.
    pub sender: UserId,
    /// From which device.
    pub sender_device: DeviceId,
    /// Where to, as the sender sees it.
    pub conversation: Conversation,
    /// The sender's dedup id.
    pub client_msg_id: String,
    /// When the server took it (ms).
    pub server_time: i64,
    /// What it says.
    pub content: Content,
}

/// Receives stored messages. An error means try the same batch again
/// later (nothing after it is sent first).
#[async_trait]
pub trait AfterSendHook: Send + Sync + 'static {
    /// Takes a batch, in the order the messages were stored.
    async fn deliver(&self, messages: &[SentMessage]) -> Result<()>;
}
