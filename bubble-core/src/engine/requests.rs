//! What callers hand the engine and get back: the session of a connected
//! device, requests, and answers that are not domain types of their own.

use crate::ports::{Caller, Route};
use crate::types::*;

/// A connected device, as the engine knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The app.
    pub app: AppId,
    /// The user.
    pub user: UserId,
    /// The device.
    pub device: DeviceId,
    /// The device's platform.
    pub platform: String,
    /// This connection's id on this node.
    pub id: u64,
}

impl Session {
    /// The caller as business handlers see it.
    pub fn caller(&self) -> Caller {
        Caller {
            app: self.app.clone(),
            user: self.user.clone(),
            device: self.device.clone(),
        }
    }
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRequest {
    /// Direct (receiver), group or super group.
    pub to: Conversation,
    /// The sender's dedup id (required, at most 128 bytes).
    pub client_msg_id: String,
    /// The sender's per-conversation counter.
    pub client_seq: u64,
    /// The sender's clock (ms).
    pub create_time: i64,
    /// What to send.
    pub content: Content,
}

/// A page of a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPage {
    /// Entries after the asked version, in order.
    pub entries: Vec<InboxEntry>,
    /// More follow: ask again after the last entry's version.
    pub has_more: bool,
    /// The owner's newest version when answering.
    pub max_version: u64,
}

/// A group to create.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateGroup {
    /// The id; `None` lets the engine pick one.
    pub id: Option<GroupId>,
    /// Display name.
    pub name: String,
    /// First members (the owner is added anyway).
    pub members: Vec<UserId>,
    /// Make it a super group from the start.
    pub super_group: bool,
}

/// Who a system push goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemTarget {
    /// One user (stored in their inbox).
    User(UserId),
    /// Every member of a group (normal: each inbox; super: the channel log).
    Group(GroupId),
    /// Every user of the app (the app's broadcast log, pushed to everyone online).
    App,
}

/// A search of one's own history.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HistoryQuery {
    /// Free text.
    pub words: String,
    /// Only this conversation.
    pub conversation: Option<Conversation>,
    /// Only at or after this time (ms).
    pub from_time: Option<i64>,
    /// Only at or before this time (ms).
    pub to_time: Option<i64>,
    /// Hits to skip.
    pub offset: usize,
    /// Hits to return (1 to 100).
    pub limit: usize,
}

/// Whether a user is online, and on which devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPresence {
    /// The user.
    pub user: UserId,
    /// Their live routes (empty: offline).
    pub devices: Vec<Route>,
}

/// One page of a conversation's history, newest first
/// ([`Engine::history`](super::Engine::history)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryPage {
    /// A 1:1, group or system conversation: the caller's own inbox entries.
    Inbox {
        /// Newest first.
        page: InboxPage,
        /// The caller's newest inbox version now: a new device that shows
        /// this page starts syncing from here instead of from 0.
        max_version: u64,
        /// The reactions on the page's messages (those with any).
        reactions: Reactions,
    },
    /// A super group: its channel log.
    Channel {
        /// Newest first.
        page: ChannelPage,
        /// The group's newest seq now.
        last_seq: u64,
        /// The reactions on the page's messages (those with any).
        reactions: Reactions,
    },
}

/// Reaction counts per message, as a history page carries them.
pub type Reactions = Vec<(MsgId, Vec<ReactionCount>)>;

/// One row of a conversation list ([`Engine::conversations`](super::Engine::conversations)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConversationItem {
    /// A 1:1, group or system conversation, kept by the inbox store.
    Inbox(ConversationSummary),
    /// A super group: its newest log entry and the caller's read seq.
    SuperGroup {
        /// The group.
        group: GroupId,
        /// [`activity_key`] of the newest entry's time and seq.
        activity: u64,
        /// The newest entry of the log.
        last: ChannelEntry,
        /// Messages after the caller's read seq.
        unread: u64,
        /// The caller's read seq.
        read_seq: u64,
        /// The caller's settings of it.
        settings: ConversationSettings,
    },
}

impl ConversationItem {
    /// The sort key: newest first.
    pub fn activity(&self) -> u64 {
        match self {
            ConversationItem::Inbox(s) => s.activity,
            ConversationItem::SuperGroup { activity, .. } => *activity,
        }
    }
}

/// Who in a normal group has read one message ([`Engine::read_state`](super::Engine::read_state)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadState {
    /// Members other than the sender who hold the message.
    pub members: u64,
    /// Those of them whose read mark covers it, in user id order.
    pub readers: Vec<UserId>,
}

/// A page of the caller's conversation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationList {
    /// Newest activity first.
    pub items: Vec<ConversationItem>,
    /// Older conversations remain: ask again before the last one's activity.
    pub has_more: bool,
    /// The caller's newest inbox version now: a new device that shows the
    /// list syncs forward from here.
    pub max_version: u64,
}
