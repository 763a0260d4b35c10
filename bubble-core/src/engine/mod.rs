//! The engine: every messaging behaviour of the seed, built from ports.
//!
//! # The one delivery path
//!
//! Everything the engine stores for a user goes the same way, whether a
//! message, a recall, a delete, a read cursor or receipt, or a system
//! notice:
//!
//! 1. **Who holds a copy** (`audience`): from the conversation and the
//!    sender, with one read of the group for group messages. A 1:1 message
//!    has the sender's copy (*out*) and the peer's (*in*); a normal group
//!    message one copy per member (fan-out on write); a super group's
//!    message one entry in the group's log (fan-out on read).
//! 2. **One routine delivers** (`deliver`): append (every copy at once,
//!    durable before the ack; a retried client message id gets the original
//!    receipt), stamp versions, remember the receipt for dedup, wake the
//!    indexer, cache recent entries, push each copy to its owner's devices
//!    with the owner's previous version, and return the receipt.
//!
//! # Layout
//!
//! - `builder`: [`EngineConfig`] and [`EngineBuilder`].
//! - `requests`: what callers pass in and get back ([`Session`],
//!   [`SendRequest`], [`SyncPage`], ...).
//! - `audience`: who holds a copy of a message.
//! - `deliver`: the delivery path above.
//! - `route`: pushes to this node's sessions and, through the bus, to
//!   other nodes.
//! - By use case: `apps`, `sessions`, `send`, `sync` (and history pages
//!   per conversation), `read` (read
//!   state), `revise` (recall, delete), `groups`, `notices` (system and
//!   business pushes), `presence` (and typing), `search` (and the
//!   indexer), `business` (the router to product handlers).
//! - `hooks`: before-send review and the after-send queue; `notify`:
//!   push notifications to users who are not looking.
//! - `degraded`: going on without presence or the cache while they are
//!   down, and registering routes again when presence is back.

mod apps;
mod audience;
mod builder;
mod business;
mod compose;
mod degraded;
mod deliver;
mod group_admin;
mod groups;
mod hooks;
mod maintenance;
mod missed;
mod notices;
mod notify;
mod presence;
mod read;
mod requests;
mod revise;
mod route;
mod search;
mod send;
mod sessions;
mod settings;
mod sync;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use parking_lot::RwLock;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::apps::AppConfig;
use crate::ids::MsgIdGenerator;
use crate::ports::*;
use crate::push::SessionHub;
use crate::types::AppId;

pub use builder::{EngineBuilder, EngineConfig};
pub use compose::{MAX_MENTIONS, MessageRefs, REPLY_PREVIEW_CHARS};
pub use degraded::Degradation;
pub use group_admin::{
    GROUP_NOTICE_TYPE, GroupChange, GroupSummary, MAX_ANNOUNCEMENT_BYTES, MAX_GROUP_FIELD_BYTES,
};
pub use hooks::{FailurePolicy, HookCounts, NEVER_STORED_AFTER, after_send_queue};
pub use notify::{NOTIFY_QUEUE, NotificationCounts, PREVIEW_CHARS};
pub use requests::{
    ConversationItem, ConversationList, CreateGroup, HistoryPage, HistoryQuery, Reactions,
    ReadState, SendRequest, Session, SyncPage, SystemTarget, UserPresence,
};
pub use revise::MAX_EMOJI_BYTES;
pub use search::{RebuildProgress, RebuildScope};
pub use settings::{SettingsChange, SettingsChanged};

/// What an optional port method answers from a store that does not have it
/// (`Unsupported`): nothing (the default), so the requests that only show
/// its data keep working on a product's own store. Other errors stay.
fn default_if_unsupported<T: Default>(found: crate::Result<T>) -> crate::Result<T> {
    match found {
        Err(e) if e.kind() == crate::ErrorKind::Unsupported => Ok(T::default()),
        other => other,
    }
}

/// The reserved channel log that holds app-wide system notices.
pub const BROADCAST_CHANNEL: &str = "~broadcast";

/// The user id system notices are sent from.
pub const SYSTEM_SENDER: &str = "~system";

/// The messaging engine. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// What every clone of an [`Engine`] shares.
struct Inner {
    config: EngineConfig,
    inbox: Arc<dyn InboxStore>,
    groups: Arc<dyn GroupStore>,
    channels: Arc<dyn ChannelLog>,
    apps: Arc<dyn AppStore>,
    cache: Arc<dyn Cache>,
    presence: Arc<dyn Presence>,
    /// `None`: history search is off.
    search: Option<Arc<dyn SearchIndex>>,
    /// `None`: one node; pushes never leave this process.
    bus: Option<Arc<dyn Bus>>,
    handlers: business::Handlers,
    ids: MsgIdGenerator,
    /// This node's sessions.
    hub: Arc<SessionHub>,
    /// App settings read recently, so a send does not read the app store.
    app_cache: RwLock<HashMap<AppId, (Arc<AppConfig>, Instant)>>,
    /// The next session id: unique across this node's restarts (see
    /// `first_session_id`).
    next_session: AtomicU64,
    /// Wakes the indexer when the outbox has new work.
    index_wakeup: Notify,
    /// Which optional backends are down, and the routes to register again.
    degraded: degraded::Degraded,
    /// Devices' push tokens.
    push_tokens: Arc<dyn crate::notify::PushTokens>,
    /// Push notifications (`None`: no provider configured).
    notifications: Option<notify::Notifications>,
    /// Before- and after-send hooks.
    hooks: hooks::Hooks,
}

impl Engine {
    /// A builder with in-memory defaults for every port.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// The engine's knobs.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// This node's session hub (a cluster's bus delivers into it).
    pub fn hub(&self) -> Arc<SessionHub> {
        self.inner.hub.clone()
    }
}
