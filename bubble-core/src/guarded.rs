//! [`Guarded`]: any port behind its backend's [`Breaker`], so every call
//! to a backend that is down fails at once with `Unavailable`.
//!
//! The wrapper implements each port its inner adapter implements, each
//! method one call through the breaker; wrap every port of one backend with
//! the same breaker (`Arc`), as `bubble-server`'s `backends.rs` does.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::apps::AppConfig;
use crate::breaker::Breaker;
use crate::error::Result;
use crate::jobs::{ClaimOrder, Job, JobQueue, NewJob};
use crate::notify::{PushPlatform, PushToken, PushTokens};
use crate::ports::*;
use crate::types::*;

/// A port behind a circuit breaker.
pub struct Guarded<P: ?Sized> {
    inner: Arc<P>,
    breaker: Arc<Breaker>,
}

impl<P: ?Sized> Guarded<P> {
    /// `inner`, whose every call goes through `breaker`.
    pub fn new(inner: Arc<P>, breaker: Arc<Breaker>) -> Guarded<P> {
        Guarded { inner, breaker }
    }

    /// The breaker the calls go through.
    pub fn breaker(&self) -> &Arc<Breaker> {
        &self.breaker
    }
}

/// Implements `$port` for `Guarded<P>` by passing each listed method
/// through the breaker. The list must name every method of the port,
/// default ones included (so an adapter's own faster version is kept).
macro_rules! guard {
    ($port:ident { $(fn $method:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)+ }) => {
        #[async_trait]
        impl<P: $port + ?Sized> $port for Guarded<P> {
            $(
                async fn $method(&self, $($arg: $ty),*) -> Result<$ret> {
                    self.breaker.call(self.inner.$method($($arg),*)).await
                }
            )+
        }
    };
}

guard!(InboxStore {
    fn append(app: &AppId, delivery: &Delivery) -> AppendOutcome;
    fn pull(app: &AppId, owner: &UserId, after_version: u64, limit: usize) -> InboxPage;
    fn last_version(app: &AppId, owner: &UserId) -> u64;
    fn get(app: &AppId, owner: &UserId, id: &MsgId) -> Option<InboxEntry>;
    fn mark_read(app: &AppId, owner: &UserId, conversation: &Conversation, up_to: u64) -> MarkedRead;
    fn mark_message_read(app: &AppId, owner: &UserId, id: &MsgId) -> bool;
    fn unread(app: &AppId, owner: &UserId) -> Vec<UnreadCount>;
    fn find_sent(app: &AppId, sender: &UserId, client_msg_id: &str) -> Option<SendReceipt>;
    fn pending_index(limit: usize) -> Vec<IndexTask>;
    fn complete_index(ids: &[u64]) -> ();
    fn prune_sent(sent_before: i64, limit: usize) -> u64;
    fn expire(app: &AppId, sent_before: i64, limit: usize) -> Expired;
    fn history(app: &AppId, owner: &UserId, conversation: &Conversation, before_version: u64, limit: usize) -> InboxPage;
    fn conversations(app: &AppId, owner: &UserId, before: u64, limit: usize) -> ConversationPage;
    fn scan_messages(app: &AppId, after: Option<MsgId>, limit: usize) -> Vec<StoredMessage>;
    fn settings(app: &AppId, owner: &UserId, conversation: &Conversation) -> ConversationSettings;
    fn blocked(app: &AppId, owner: &UserId) -> Vec<UserId>;
    fn readers(app: &AppId, conversation: &Conversation, id: &MsgId, members: &[UserId]) -> MessageReaders;
    fn react(app: &AppId, id: &MsgId, user: &UserId, emoji: &str, add: bool, limits: ReactionLimits) -> bool;
    fn reactions(app: &AppId, ids: &[MsgId], viewer: &UserId) -> Vec<(MsgId, Vec<ReactionCount>)>;
});

guard!(GroupStore {
    fn create_group(app: &AppId, group: &Group, members: &[Member]) -> ();
    fn group(app: &AppId, id: &GroupId) -> Option<Group>;
    fn set_kind(app: &AppId, id: &GroupId, kind: GroupKind) -> ();
    fn add_members(app: &AppId, id: &GroupId, members: &[Member]) -> u64;
    fn remove_members(app: &AppId, id: &GroupId, users: &[UserId]) -> u64;
    fn members(app: &AppId, id: &GroupId) -> Vec<Member>;
    fn member(app: &AppId, id: &GroupId, user: &UserId) -> Option<Member>;
    fn member_count(app: &AppId, id: &GroupId) -> u64;
    fn groups_of(app: &AppId, user: &UserId) -> Vec<GroupId>;
    fn update_group(app: &AppId, group: &Group) -> ();
    fn set_role(app: &AppId, id: &GroupId, user: &UserId, role: Role) -> bool;
    fn mute_member(app: &AppId, id: &GroupId, user: &UserId, until: i64) -> bool;
    fn transfer_owner(app: &AppId, id: &GroupId, from: &UserId, to: &UserId) -> ();
    fn delete_group(app: &AppId, id: &GroupId) -> bool;
    fn roster(app: &AppId, id: &GroupId) -> Option<(Group, Vec<Member>)>;
});

guard!(ChannelLog {
    fn append(app: &AppId, entry: &ChannelEntry) -> ChannelAppend;
    fn range(app: &AppId, group: &GroupId, after_seq: u64, limit: usize) -> ChannelPage;
    fn range_before(app: &AppId, group: &GroupId, before_seq: u64, limit: usize) -> ChannelPage;
    fn last_seq(app: &AppId, group: &GroupId) -> u64;
    fn get(app: &AppId, group: &GroupId, id: &MsgId) -> Option<ChannelEntry>;
    fn count_messages_after(app: &AppId, group: &GroupId, after_seq: u64) -> u64;
    fn set_read_seq(app: &AppId, group: &GroupId, user: &UserId, seq: u64) -> ();
    fn read_seq(app: &AppId, group: &GroupId, user: &UserId) -> u64;
    fn prune_sent(sent_before: i64, limit: usize) -> u64;
    fn expire(app: &AppId, sent_before: i64, limit: usize) -> Expired;
});

guard!(AppStore {
    fn put_app(app: &AppConfig) -> ();
    fn get_app(id: &AppId) -> Option<AppConfig>;
    fn list_apps() -> Vec<AppConfig>;
});

guard!(Cache {
    fn dedup_get(app: &AppId, sender: &UserId, client_msg_id: &str) -> Option<SendReceipt>;
    fn dedup_put(app: &AppId, sender: &UserId, client_msg_id: &str, receipt: &SendReceipt, ttl: Duration) -> bool;
    fn push_recent(app: &AppId, prev_version: u64, entry: &InboxEntry, cap: usize) -> ();
    fn push_recent_many(app: &AppId, pushes: &[RecentPush<'_>], cap: usize) -> ();
    fn recent(app: &AppId, owner: &UserId, after_version: u64, limit: usize) -> Option<InboxPage>;
});

guard!(Presence {
    fn register(app: &AppId, route: &Route, ttl: Duration) -> ();
    fn unregister(app: &AppId, user: &UserId, device: &DeviceId, session: u64) -> bool;
    fn routes(app: &AppId, user: &UserId) -> Vec<Route>;
    fn routes_of(app: &AppId, users: &[UserId]) -> Vec<Route>;
});

guard!(SearchIndex {
    fn index(docs: &[SearchDoc]) -> ();
    fn remove(app: &AppId, id: &MsgId) -> ();
    fn remove_owners(app: &AppId, id: &MsgId, owners: &[UserId]) -> ();
    fn clear_app(app: &AppId) -> ();
    fn search(query: &SearchQuery) -> SearchResults;
    fn flush() -> ();
    fn needs_rebuild() -> bool;
    fn rebuilt() -> ();
});

guard!(JobQueue {
    fn enqueue(jobs: &[NewJob], now: i64) -> ();
    fn claim(queue: &str, holder: &str, now: i64, lease_ms: i64, limit: usize, order: ClaimOrder) -> Vec<Job>;
    fn complete(ids: &[u64]) -> ();
    fn retry(id: u64, due_at: i64) -> bool;
    fn depth(queue: &str) -> u64;
});

guard!(PushTokens {
    fn put_token(app: &AppId, user: &UserId, token: &PushToken) -> ();
    fn remove_device_token(app: &AppId, user: &UserId, device: &DeviceId) -> bool;
    fn remove_token(app: &AppId, platform: PushPlatform, token: &str) -> bool;
    fn tokens(app: &AppId, user: &UserId) -> Vec<PushToken>;
});

// The lease keeps itself alive in the background; only the calls that
// reach the backend on a caller's behalf go through the breaker.
guard!(Discovery {
    fn register(info: &NodeInfo, ttl: Duration) -> Box<dyn Lease>;
    fn list(role: &str) -> Vec<NodeInfo>;
    fn watch(role: &str) -> mpsc::Receiver<NodeEvent>;
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::{BreakerConfig, BreakerState};
    use crate::error::{Error, ErrorKind};
    use crate::memory::MemoryPresence;

    /// A presence whose every call fails as a dead Redis would.
    struct Down;

    #[async_trait]
    impl Presence for Down {
        async fn register(&self, _: &AppId, _: &Route, _: Duration) -> Result<()> {
            Err(Error::unavailable("connection refused"))
        }
        async fn unregister(&self, _: &AppId, _: &UserId, _: &DeviceId, _: u64) -> Result<bool> {
            Err(Error::unavailable("connection refused"))
        }
        async fn routes(&self, _: &AppId, _: &UserId) -> Result<Vec<Route>> {
            Err(Error::unavailable("connection refused"))
        }
        async fn routes_of(&self, _: &AppId, _: &[UserId]) -> Result<Vec<Route>> {
            Err(Error::unavailable("connection refused"))
        }
    }

    fn breaker() -> Arc<Breaker> {
        Arc::new(Breaker::new(
            "redis",
            BreakerConfig {
                failures: 2,
                ..BreakerConfig::default()
            },
        ))
    }

    #[tokio::test]
    async fn a_guarded_port_answers_as_its_inner_port_does() {
        let presence = Guarded::new(Arc::new(MemoryPresence::new()), breaker());
        let app = AppId::new("a");
        let route = Route {
            user: UserId::new("ann"),
            device: DeviceId::new("phone"),
            platform: "ios".into(),
            node: NodeId::new("n1"),
            session: 1,
            since: 0,
            background: false,
        };
        presence
            .register(&app, &route, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(presence.routes(&app, &route.user).await.unwrap(), [route]);
    }

    #[tokio::test]
    async fn every_port_of_a_backend_shares_its_breaker() {
        let shared = breaker();
        let a: Arc<dyn Presence> = Arc::new(Guarded::new(Arc::new(Down), shared.clone()));
        let b: Arc<dyn Presence> = Arc::new(Guarded::new(Arc::new(Down), shared.clone()));
        let app = AppId::new("a");
        let _ = a.routes(&app, &UserId::new("ann")).await;
        let _ = b.routes_of(&app, &[]).await;
        assert_eq!(shared.state(), BreakerState::Open);
        let err = a.routes(&app, &UserId::new("ann")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.message().starts_with("redis is unavailable"), "{err}");
    }
}
