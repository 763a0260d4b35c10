//! The engine: every messaging behaviour of the seed, built from ports.
//!
//! The message path (1:1 and normal groups): validate, dedup, make the id,
//! fan out into every owner's inbox in one atomic append (durable before the
//! ack), cache, push to every online device with the owner's previous
//! version, ack. Super groups append once to a channel log and notify. The
//! search index is fed from a durable outbox, so an acknowledged message is
//! indexed even if the process dies right after the ack.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::apps::{AppConfig, AppSettings, LoginPolicy};
use crate::error::{Error, ErrorKind, Result};
use crate::ids::MsgIdGenerator;
use crate::memory::*;
use crate::ports::*;
use crate::push::{Push, PushEvent, SessionHub, SessionQueue, Target};
use crate::types::*;

/// The reserved channel log that holds app-wide system notices.
pub const BROADCAST_CHANNEL: &str = "~broadcast";

/// The user id system notices are sent from.
pub const SYSTEM_SENDER: &str = "~system";

/// Engine-wide knobs (per-app ones live in [`AppSettings`]).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This node's id (routes point at it).
    pub node: NodeId,
    /// The largest sync page a client may ask for.
    pub max_page: usize,
    /// Entries kept per user in the recent cache.
    pub recent_cap: usize,
    /// How long the cache remembers a receipt for dedup.
    pub dedup_ttl: Duration,
    /// How long a route lives without a heartbeat.
    pub presence_ttl: Duration,
    /// Pushes queued per session before it counts as a slow consumer.
    pub session_queue: usize,
    /// Outbox entries the indexer takes per batch. Each batch ends with a
    /// search-index flush (for tantivy a commit: a new segment, several
    /// fsyncs), so a batch should hold everything that arrives during one
    /// `index_interval` under load.
    pub index_batch: usize,
    /// Least time between the starts of two indexer passes while messages
    /// keep coming. Without it the indexer, woken by every send, would
    /// flush the search index as fast as it can (hundreds of small commits
    /// a second, each writing and fsyncing files beside the store's own
    /// commits). A message arriving after a quiet period is indexed at once;
    /// under load it becomes searchable within about this long after its
    /// ack. Durability is unaffected: the outbox holds it until the flush.
    pub index_interval: Duration,
    /// How long app settings are cached before re-reading the app store.
    pub app_cache_ttl: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            node: NodeId::new("node-1"),
            max_page: 500,
            recent_cap: 200,
            dedup_ttl: Duration::from_secs(24 * 3600),
            presence_ttl: Duration::from_secs(90),
            session_queue: 1024,
            index_batch: 8_192,
            index_interval: Duration::from_millis(250),
            app_cache_ttl: Duration::from_secs(10),
        }
    }
}

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

type HandlerEntry = (Option<AppId>, RangeInclusive<u16>, Arc<dyn BusinessHandler>);

/// Builds an [`Engine`]; every port defaults to its in-memory adapter.
pub struct EngineBuilder {
    config: EngineConfig,
    inbox: Arc<dyn InboxStore>,
    groups: Arc<dyn GroupStore>,
    channels: Arc<dyn ChannelLog>,
    apps: Arc<dyn AppStore>,
    cache: Arc<dyn Cache>,
    presence: Arc<dyn Presence>,
    search: Option<Arc<dyn SearchIndex>>,
    bus: Option<Arc<dyn Bus>>,
    handlers: Vec<HandlerEntry>,
}

impl Default for EngineBuilder {
    fn default() -> Self {
        EngineBuilder {
            config: EngineConfig::default(),
            inbox: Arc::new(MemoryInbox::new()),
            groups: Arc::new(MemoryGroups::new()),
            channels: Arc::new(MemoryChannelLog::new()),
            apps: Arc::new(MemoryApps::new()),
            cache: Arc::new(MemoryCache::new()),
            presence: Arc::new(MemoryPresence::new()),
            search: Some(Arc::new(MemorySearch::new())),
            bus: None,
            handlers: Vec::new(),
        }
    }
}

impl EngineBuilder {
    /// Engine-wide knobs.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }
    /// The inbox store.
    pub fn inbox(mut self, inbox: Arc<dyn InboxStore>) -> Self {
        self.inbox = inbox;
        self
    }
    /// The group store.
    pub fn groups(mut self, groups: Arc<dyn GroupStore>) -> Self {
        self.groups = groups;
        self
    }
    /// The super-group channel log.
    pub fn channels(mut self, channels: Arc<dyn ChannelLog>) -> Self {
        self.channels = channels;
        self
    }
    /// The app registry.
    pub fn apps(mut self, apps: Arc<dyn AppStore>) -> Self {
        self.apps = apps;
        self
    }
    /// The cache.
    pub fn cache(mut self, cache: Arc<dyn Cache>) -> Self {
        self.cache = cache;
        self
    }
    /// Online routes.
    pub fn presence(mut self, presence: Arc<dyn Presence>) -> Self {
        self.presence = presence;
        self
    }
    /// The search index; `None` turns history search off.
    pub fn search(mut self, search: Option<Arc<dyn SearchIndex>>) -> Self {
        self.search = search;
        self
    }
    /// The bus to other nodes; without one, pushes stay on this node.
    pub fn bus(mut self, bus: Arc<dyn Bus>) -> Self {
        self.bus = Some(bus);
        self
    }
    /// Routes commands in `range` (within the business range, 0x8000 and up)
    /// to `handler`, for one app or (None) for every app without its own.
    pub fn business_handler(
        mut self,
        app: Option<AppId>,
        range: RangeInclusive<u16>,
        handler: Arc<dyn BusinessHandler>,
    ) -> Self {
        self.handlers.push((app, range, handler));
        self
    }

    /// Checks the configuration and builds the engine.
    pub fn build(self) -> Result<Engine> {
        let c = &self.config;
        crate::types::validate_id("config.node", c.node.as_str())?;
        for (name, v) in [
            ("max_page", c.max_page),
            ("recent_cap", c.recent_cap),
            ("session_queue", c.session_queue),
            ("index_batch", c.index_batch),
        ] {
            if v == 0 {
                return Err(Error::invalid(format!(
                    "engine config {name} must be above 0"
                )));
            }
        }
        for (i, (app, range, _)) in self.handlers.iter().enumerate() {
            if *range.start() < bubble_proto::BUSINESS_FIRST || range.is_empty() {
                return Err(Error::invalid(format!(
                    "business handler range {range:?} must lie within {:#06x}..=0xffff",
                    bubble_proto::BUSINESS_FIRST
                )));
            }
            for (other_app, other, _) in &self.handlers[..i] {
                if other_app == app && range.start() <= other.end() && other.start() <= range.end()
                {
                    return Err(Error::invalid(format!(
                        "business handler ranges {other:?} and {range:?} overlap for the same app"
                    )));
                }
            }
        }
        let ids = MsgIdGenerator::new(c.node.clone());
        Ok(Engine {
            inner: Arc::new(Inner {
                ids,
                hub: Arc::new(SessionHub::new()),
                app_cache: RwLock::new(HashMap::new()),
                next_session: AtomicU64::new(1),
                index_wakeup: Notify::new(),
                config: self.config,
                inbox: self.inbox,
                groups: self.groups,
                channels: self.channels,
                apps: self.apps,
                cache: self.cache,
                presence: self.presence,
                search: self.search,
                bus: self.bus,
                handlers: self.handlers,
            }),
        })
    }
}

struct Inner {
    config: EngineConfig,
    inbox: Arc<dyn InboxStore>,
    groups: Arc<dyn GroupStore>,
    channels: Arc<dyn ChannelLog>,
    apps: Arc<dyn AppStore>,
    cache: Arc<dyn Cache>,
    presence: Arc<dyn Presence>,
    search: Option<Arc<dyn SearchIndex>>,
    bus: Option<Arc<dyn Bus>>,
    handlers: Vec<HandlerEntry>,
    ids: MsgIdGenerator,
    hub: Arc<SessionHub>,
    app_cache: RwLock<HashMap<AppId, (Arc<AppConfig>, Instant)>>,
    next_session: AtomicU64,
    /// Wakes the indexer when the outbox has new work.
    index_wakeup: Notify,
}

/// The messaging engine. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// One push to a user before routing.
struct Outgoing {
    user: UserId,
    except_device: Option<DeviceId>,
    event: PushEvent,
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

    // ------------------------------------------------------------- apps

    /// Creates or replaces an app.
    pub async fn put_app(&self, app: AppConfig) -> Result<()> {
        app.validate()?;
        self.inner.apps.put_app(&app).await?;
        self.inner
            .app_cache
            .write()
            .insert(app.id.clone(), (Arc::new(app), Instant::now()));
        Ok(())
    }

    /// An app's configuration (cached briefly), `NotFound` if there is none.
    pub async fn app(&self, id: &AppId) -> Result<Arc<AppConfig>> {
        if let Some((app, at)) = self.inner.app_cache.read().get(id)
            && at.elapsed() < self.inner.config.app_cache_ttl
        {
            return Ok(app.clone());
        }
        let app =
            self.inner.apps.get_app(id).await?.ok_or_else(|| {
                Error::not_found(format!("app {id} does not exist; create it first"))
            })?;
        let app = Arc::new(app);
        self.inner
            .app_cache
            .write()
            .insert(id.clone(), (app.clone(), Instant::now()));
        Ok(app)
    }

    async fn settings(&self, id: &AppId) -> Result<AppSettings> {
        Ok(self.app(id).await?.settings.clone())
    }

    // --------------------------------------------------------- sessions

    /// Registers a connected device: applies the app's login policy (kicking
    /// sessions it displaces), records the route, and returns the session
    /// with its push queue.
    pub async fn connect(
        &self,
        identity: &Identity,
        device: &DeviceId,
        platform: &str,
    ) -> Result<(Session, SessionQueue)> {
        validate_id("device id", device.as_str())?;
        let settings = self.settings(&identity.app).await?;
        let app = &identity.app;
        let user = &identity.user;
        let existing = self.inner.presence.routes(app, user).await?;
        let displaced: Vec<&Route> = existing
            .iter()
            .filter(|r| match settings.login_policy {
                LoginPolicy::AllDevices => r.device == *device,
                LoginPolicy::OnePerPlatform => r.device == *device || r.platform == platform,
                LoginPolicy::Single => true,
            })
            .collect();
        for route in displaced {
            let kick = Push {
                app: app.clone(),
                target: Target::Session {
                    user: user.clone(),
                    session: route.session,
                },
                event: PushEvent::Kick {
                    reason: format!("signed in on another device ({device})"),
                },
            };
            self.deliver_to_node(&route.node, vec![kick]).await;
            self.inner
                .presence
                .unregister(app, user, &route.device, route.session)
                .await?;
        }
        let id = self.inner.next_session.fetch_add(1, Ordering::Relaxed);
        let session = Session {
            app: app.clone(),
            user: user.clone(),
            device: device.clone(),
            platform: platform.to_owned(),
            id,
        };
        let queue = self
            .inner
            .hub
            .attach(app, user, device, id, self.inner.config.session_queue);
        self.heartbeat(&session).await?;
        Ok((session, queue))
    }

    /// Refreshes a session's route (call on every ping).
    pub async fn heartbeat(&self, session: &Session) -> Result<()> {
        let route = Route {
            user: session.user.clone(),
            device: session.device.clone(),
            platform: session.platform.clone(),
            node: self.inner.config.node.clone(),
            session: session.id,
            since: now_millis(),
        };
        self.inner
            .presence
            .register(&session.app, &route, self.inner.config.presence_ttl)
            .await
    }

    /// Forgets a session (the connection closed).
    pub async fn disconnect(&self, session: &Session) -> Result<()> {
        self.inner
            .hub
            .detach(&session.app, &session.user, session.id);
        self.inner
            .presence
            .unregister(&session.app, &session.user, &session.device, session.id)
            .await?;
        Ok(())
    }

    // ------------------------------------------------------------ pushes

    async fn deliver_to_node(&self, node: &NodeId, pushes: Vec<Push>) {
        if *node == self.inner.config.node {
            self.inner.hub.deliver(&pushes);
            return;
        }
        match &self.inner.bus {
            Some(bus) => {
                if let Err(e) = bus.deliver(node, pushes).await {
                    // Durable already: the devices there will sync on reconnect.
                    tracing::warn!(%node, error = %e, "push to another node failed");
                }
            }
            None => tracing::debug!(%node, "route to another node but no bus configured"),
        }
    }

    /// Routes pushes to every node holding a target's session.
    async fn push(&self, app: &AppId, outgoing: Vec<Outgoing>) {
        if outgoing.is_empty() {
            return;
        }
        let to_push = |o: Outgoing| Push {
            app: app.clone(),
            target: Target::User {
                user: o.user,
                except_device: o.except_device,
            },
            event: o.event,
        };
        // One node: the hub knows every session; skip the route lookup.
        let Some(_) = &self.inner.bus else {
            let pushes: Vec<Push> = outgoing.into_iter().map(to_push).collect();
            self.inner.hub.deliver(&pushes);
            return;
        };
        let mut users: Vec<UserId> = outgoing.iter().map(|o| o.user.clone()).collect();
        users.sort();
        users.dedup();
        let routes = match self.inner.presence.routes_of(app, &users).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "presence lookup failed; pushing to local sessions only");
                let pushes: Vec<Push> = outgoing.into_iter().map(to_push).collect();
                self.inner.hub.deliver(&pushes);
                return;
            }
        };
        let mut nodes_of: HashMap<UserId, Vec<NodeId>> = HashMap::new();
        for r in routes {
            let nodes = nodes_of.entry(r.user).or_default();
            if !nodes.contains(&r.node) {
                nodes.push(r.node);
            }
        }
        tracing::debug!(
            users = users.len(),
            nodes = nodes_of.len(),
            "routing pushes"
        );
        let mut by_node: HashMap<NodeId, Vec<Push>> = HashMap::new();
        for o in outgoing {
            let Some(nodes) = nodes_of.get(&o.user) else {
                continue;
            };
            let push = to_push(o);
            for node in nodes {
                by_node.entry(node.clone()).or_default().push(push.clone());
            }
        }
        for (node, pushes) in by_node {
            self.deliver_to_node(&node, pushes).await;
        }
    }

    async fn push_app_wide(&self, app: &AppId, event: PushEvent, nodes: &[NodeId]) {
        let push = Push {
            app: app.clone(),
            target: Target::App,
            event,
        };
        self.inner.hub.deliver(std::slice::from_ref(&push));
        for node in nodes {
            if *node != self.inner.config.node {
                self.deliver_to_node(node, vec![push.clone()]).await;
            }
        }
    }

    // ----------------------------------------------------------- sending

    /// Sends a message: durable in every owner's inbox (or the channel log)
    /// before this returns. A retry with the same client message id returns
    /// the original receipt and writes nothing.
    pub async fn send(&self, session: &Session, req: SendRequest) -> Result<SendReceipt> {
        let app = &session.app;
        let settings = self.settings(app).await?;
        if req.client_msg_id.is_empty() || req.client_msg_id.len() > MAX_ID_LEN {
            return Err(Error::invalid(format!(
                "client_msg_id must be 1 to {MAX_ID_LEN} bytes (a UUID is fine); it makes retries safe"
            )));
        }
        validate_id("conversation id", req.to.id())?;
        crate::content::validate(&settings, &req.content)?;

        if let Some(receipt) = self.cached_receipt(session, &req.client_msg_id).await {
            return Ok(receipt);
        }
        match req.to.kind {
            ConversationKind::Direct => self.send_direct(session, &settings, req).await,
            ConversationKind::Group | ConversationKind::SuperGroup => {
                let group_id = GroupId::new(req.to.id());
                let group = self.group_for_member(app, &group_id, &session.user).await?;
                match group.kind {
                    GroupKind::Normal => self.send_group(session, &settings, &group, req).await,
                    GroupKind::Super => self.send_super(session, &group, req).await,
                }
            }
            ConversationKind::System => Err(Error::denied(
                "clients cannot send to the system conversation",
            )),
        }
    }

    async fn cached_receipt(&self, session: &Session, client_msg_id: &str) -> Option<SendReceipt> {
        match self
            .inner
            .cache
            .dedup_get(&session.app, &session.user, client_msg_id)
            .await
        {
            Ok(hit) => hit,
            Err(e) => {
                // The store still deduplicates; the cache only saves a round trip.
                tracing::warn!(error = %e, "dedup cache unavailable");
                None
            }
        }
    }

    fn message_entry(
        &self,
        session: &Session,
        req: &SendRequest,
        id: MsgId,
        server_time: i64,
    ) -> InboxEntry {
        InboxEntry {
            owner: session.user.clone(),
            version: 0,
            kind: EntryKind::Message,
            conversation: req.to.clone(),
            direction: Direction::Out,
            server_msg_id: id,
            sender: session.user.clone(),
            sender_device: session.device.clone(),
            client_msg_id: req.client_msg_id.clone(),
            client_seq: req.client_seq,
            create_time: req.create_time,
            server_time,
            content: req.content.clone(),
            read_up_to: 0,
        }
    }

    async fn send_direct(
        &self,
        session: &Session,
        settings: &AppSettings,
        req: SendRequest,
    ) -> Result<SendReceipt> {
        let receiver = UserId::new(req.to.id());
        let id = self.inner.ids.next(&session.app, &session.user, &req.to);
        let server_time = now_millis();
        let out = self.message_entry(session, &req, id, server_time);
        let mut entries = vec![out.clone()];
        if receiver != session.user {
            entries.push(InboxEntry {
                owner: receiver.clone(),
                conversation: Conversation::direct(&session.user),
                direction: Direction::In,
                ..out
            });
        }
        self.deliver(session, settings.search, entries, &req.client_msg_id)
            .await
    }

    async fn send_group(
        &self,
        session: &Session,
        settings: &AppSettings,
        group: &Group,
        req: SendRequest,
    ) -> Result<SendReceipt> {
        let members = self.inner.groups.members(&session.app, &group.id).await?;
        let id = self.inner.ids.next(&session.app, &session.user, &req.to);
        let server_time = now_millis();
        let out = self.message_entry(session, &req, id, server_time);
        let mut entries = Vec::with_capacity(members.len());
        entries.push(out.clone());
        for m in members {
            if m.user != session.user {
                entries.push(InboxEntry {
                    owner: m.user,
                    direction: Direction::In,
                    ..out.clone()
                });
            }
        }
        self.deliver(session, settings.search, entries, &req.client_msg_id)
            .await
    }

    /// Appends a fan-out, then caches, wakes the indexer, pushes, and acks.
    async fn deliver(
        &self,
        session: &Session,
        index: bool,
        entries: Vec<InboxEntry>,
        client_msg_id: &str,
    ) -> Result<SendReceipt> {
        let app = &session.app;
        let delivery = Delivery {
            sender: session.user.clone(),
            client_msg_id: client_msg_id.to_owned(),
            entries,
            index: index && self.inner.search.is_some(),
            receipt_entry: Some(0),
        };
        let appended = match self.inner.inbox.append(app, &delivery).await? {
            AppendOutcome::Duplicate(receipt) => return Ok(receipt),
            AppendOutcome::Appended(a) => a,
        };
        let receipt = delivery.receipt(&appended);
        let mut entries = delivery.entries;
        for (entry, a) in entries.iter_mut().zip(&appended) {
            entry.version = a.version;
        }
        if !client_msg_id.is_empty()
            && let Err(e) = self
                .inner
                .cache
                .dedup_put(
                    app,
                    &session.user,
                    client_msg_id,
                    &receipt,
                    self.inner.config.dedup_ttl,
                )
                .await
        {
            tracing::warn!(error = %e, "dedup cache write failed");
        }
        if delivery.index {
            self.inner.index_wakeup.notify_one();
        }
        self.fan_out_entries(app, Some(session), entries, &appended)
            .await;
        Ok(receipt)
    }

    /// Caches appended entries and pushes them to every device of their
    /// owners (except the device that caused them).
    async fn fan_out_entries(
        &self,
        app: &AppId,
        origin: Option<&Session>,
        entries: Vec<InboxEntry>,
        appended: &[Appended],
    ) {
        let mut outgoing = Vec::with_capacity(entries.len());
        for (entry, a) in entries.into_iter().zip(appended) {
            if let Err(e) = self
                .inner
                .cache
                .push_recent(app, a.prev_version, &entry, self.inner.config.recent_cap)
                .await
            {
                tracing::warn!(error = %e, "recent cache write failed");
            }
            let except_device = origin
                .filter(|s| s.user == entry.owner)
                .map(|s| s.device.clone());
            outgoing.push(Outgoing {
                user: entry.owner.clone(),
                except_device,
                event: PushEvent::Entry {
                    entry,
                    prev_version: a.prev_version,
                },
            });
        }
        self.push(app, outgoing).await;
    }

    async fn send_super(
        &self,
        session: &Session,
        group: &Group,
        req: SendRequest,
    ) -> Result<SendReceipt> {
        let to = Conversation::super_group(&group.id);
        let id = self.inner.ids.next(&session.app, &session.user, &to);
        let entry = ChannelEntry {
            group: group.id.clone(),
            seq: 0,
            kind: EntryKind::Message,
            server_msg_id: id,
            sender: session.user.clone(),
            sender_device: session.device.clone(),
            client_msg_id: req.client_msg_id,
            client_seq: req.client_seq,
            create_time: req.create_time,
            server_time: now_millis(),
            content: req.content,
        };
        self.append_channel(&session.app, Some(session), entry)
            .await
    }

    async fn append_channel(
        &self,
        app: &AppId,
        origin: Option<&Session>,
        mut entry: ChannelEntry,
    ) -> Result<SendReceipt> {
        let (seq, prev_seq) = match self.inner.channels.append(app, &entry).await? {
            ChannelAppend::Duplicate(receipt) => return Ok(receipt),
            ChannelAppend::Appended { seq, prev_seq } => (seq, prev_seq),
        };
        entry.seq = seq;
        let receipt = SendReceipt {
            server_msg_id: entry.server_msg_id,
            version: 0,
            seq,
            server_time: entry.server_time,
            duplicate: false,
        };
        let members = self.inner.groups.members(app, &entry.group).await?;
        let outgoing = members
            .into_iter()
            .map(|m| Outgoing {
                except_device: origin
                    .filter(|s| s.user == m.user)
                    .map(|s| s.device.clone()),
                user: m.user,
                event: PushEvent::Channel {
                    entry: entry.clone(),
                    prev_seq,
                },
            })
            .collect();
        self.push(app, outgoing).await;
        Ok(receipt)
    }

    // --------------------------------------------------------------- sync

    /// Entries after `after_version`, in pages.
    pub async fn sync(
        &self,
        session: &Session,
        after_version: u64,
        limit: usize,
    ) -> Result<SyncPage> {
        let limit = limit.clamp(1, self.inner.config.max_page);
        let (app, user) = (&session.app, &session.user);
        let max_version = self.inner.inbox.last_version(app, user).await?;
        if after_version >= max_version {
            return Ok(SyncPage {
                entries: Vec::new(),
                has_more: false,
                max_version,
            });
        }
        // The cache answers only when its window is contiguous up to the
        // store's newest version; otherwise the store does.
        if let Ok(Some(page)) = self
            .inner
            .cache
            .recent(app, user, after_version, limit)
            .await
        {
            let complete = page.has_more
                || page
                    .entries
                    .last()
                    .is_some_and(|e| e.version == max_version);
            if complete {
                return Ok(SyncPage {
                    entries: page.entries,
                    has_more: page.has_more,
                    max_version,
                });
            }
        }
        let page = self
            .inner
            .inbox
            .pull(app, user, after_version, limit)
            .await?;
        Ok(SyncPage {
            entries: page.entries,
            has_more: page.has_more,
            max_version,
        })
    }

    /// A super group's entries after `after_seq` (members only).
    pub async fn pull_channel(
        &self,
        session: &Session,
        group: &GroupId,
        after_seq: u64,
        limit: usize,
    ) -> Result<(ChannelPage, u64)> {
        let limit = limit.clamp(1, self.inner.config.max_page);
        if group.as_str() != BROADCAST_CHANNEL {
            self.group_for_member(&session.app, group, &session.user)
                .await?;
        }
        let page = self
            .inner
            .channels
            .range(&session.app, group, after_seq, limit)
            .await?;
        let last = self.inner.channels.last_seq(&session.app, group).await?;
        Ok((page, last))
    }

    async fn group_for_member(&self, app: &AppId, id: &GroupId, user: &UserId) -> Result<Group> {
        let group = self
            .inner
            .groups
            .group(app, id)
            .await?
            .ok_or_else(|| Error::not_found(format!("group {id} does not exist")))?;
        if self.inner.groups.member(app, id, user).await?.is_none() {
            return Err(Error::denied(format!(
                "{user} is not a member of group {id}"
            )));
        }
        Ok(group)
    }

    // --------------------------------------------------------- read state

    /// Marks a conversation read up to a version (a seq for super groups).
    /// Other devices of the reader get a read cursor; the 1:1 peer gets a
    /// read receipt when the app enables them. Returns how many were marked.
    pub async fn mark_read(
        &self,
        session: &Session,
        conversation: &Conversation,
        up_to: u64,
    ) -> Result<u64> {
        let app = &session.app;
        if conversation.kind == ConversationKind::SuperGroup {
            let group = GroupId::new(conversation.id());
            self.group_for_member(app, &group, &session.user).await?;
            let before = self
                .inner
                .channels
                .read_seq(app, &group, &session.user)
                .await?;
            self.inner
                .channels
                .set_read_seq(app, &group, &session.user, up_to)
                .await?;
            let marked = if up_to > before {
                self.inner
                    .channels
                    .count_messages_after(app, &group, before)
                    .await?
                    - self
                        .inner
                        .channels
                        .count_messages_after(app, &group, up_to)
                        .await?
            } else {
                0
            };
            return Ok(marked);
        }
        let settings = self.settings(app).await?;
        let marked = self
            .inner
            .inbox
            .mark_read(app, &session.user, conversation, up_to)
            .await?;
        let now = now_millis();
        let Some(last_read) = marked.last_read.clone() else {
            return Ok(marked.marked);
        };
        // The reader's other devices clear their badges from this cursor.
        let cursor = InboxEntry {
            owner: session.user.clone(),
            version: 0,
            kind: EntryKind::ReadCursor,
            conversation: conversation.clone(),
            direction: Direction::Out,
            server_msg_id: last_read.server_msg_id,
            sender: session.user.clone(),
            sender_device: session.device.clone(),
            client_msg_id: String::new(),
            client_seq: 0,
            create_time: now,
            server_time: now,
            content: Content::none(),
            read_up_to: up_to,
        };
        let mut entries = vec![cursor];
        if settings.read_receipts
            && conversation.kind == ConversationKind::Direct
            && marked.marked > 0
            && last_read.sender != session.user
        {
            entries.push(InboxEntry {
                owner: last_read.sender.clone(),
                kind: EntryKind::ReadReceipt,
                conversation: Conversation::direct(&session.user),
                direction: Direction::In,
                read_up_to: 0,
                ..entries[0].clone()
            });
        }
        self.append_server_entries(app, Some(session), entries, false)
            .await?;
        Ok(marked.marked)
    }

    /// Unread counts per conversation, super groups included.
    pub async fn unread(&self, session: &Session) -> Result<Vec<UnreadCount>> {
        let app = &session.app;
        let mut counts = self.inner.inbox.unread(app, &session.user).await?;
        for gid in self.inner.groups.groups_of(app, &session.user).await? {
            let Some(group) = self.inner.groups.group(app, &gid).await? else {
                continue;
            };
            if group.kind != GroupKind::Super {
                continue;
            }
            let read = self
                .inner
                .channels
                .read_seq(app, &gid, &session.user)
                .await?;
            let count = self
                .inner
                .channels
                .count_messages_after(app, &gid, read)
                .await?;
            if count > 0 {
                counts.push(UnreadCount {
                    conversation: Conversation::super_group(&gid),
                    count,
                });
            }
        }
        Ok(counts)
    }

    /// Appends entries the server makes (cursors, receipts, recalls,
    /// notices) and pushes them.
    async fn append_server_entries(
        &self,
        app: &AppId,
        origin: Option<&Session>,
        entries: Vec<InboxEntry>,
        index: bool,
    ) -> Result<Vec<InboxEntry>> {
        let sender = entries
            .first()
            .map(|e| e.sender.clone())
            .unwrap_or_else(|| UserId::new(SYSTEM_SENDER));
        let delivery = Delivery {
            sender,
            client_msg_id: String::new(),
            entries,
            index: index && self.inner.search.is_some(),
            receipt_entry: None,
        };
        let AppendOutcome::Appended(appended) = self.inner.inbox.append(app, &delivery).await?
        else {
            return Err(Error::internal(
                "a store deduplicated an entry without a client id",
            ));
        };
        let mut entries = delivery.entries;
        for (e, a) in entries.iter_mut().zip(&appended) {
            e.version = a.version;
        }
        if delivery.index {
            self.inner.index_wakeup.notify_one();
        }
        self.fan_out_entries(app, origin, entries.clone(), &appended)
            .await;
        Ok(entries)
    }

    // ------------------------------------------------------ recall, delete

    /// Takes back a message the caller sent, within the app's recall window.
    /// Every owner gets a recall entry; the message stops counting as unread
    /// and leaves the search index.
    pub async fn recall(
        &self,
        session: &Session,
        conversation: &Conversation,
        id: &MsgId,
    ) -> Result<SendReceipt> {
        let app = &session.app;
        let settings = self.settings(app).await?;
        let now = now_millis();
        let check_window = |sender: &UserId, server_time: i64| -> Result<()> {
            if *sender != session.user {
                return Err(Error::denied("only the sender may recall a message"));
            }
            if now - server_time > settings.recall_window_ms {
                return Err(Error::new(
                    ErrorKind::Expired,
                    format!(
                        "the recall window of {} s has passed",
                        settings.recall_window_ms / 1000
                    ),
                ));
            }
            Ok(())
        };
        if conversation.kind == ConversationKind::SuperGroup {
            let group = GroupId::new(conversation.id());
            self.group_for_member(app, &group, &session.user).await?;
            let original = self
                .inner
                .channels
                .get(app, &group, id)
                .await?
                .ok_or_else(|| Error::not_found(format!("message {id} is not in group {group}")))?;
            check_window(&original.sender, original.server_time)?;
            let entry = ChannelEntry {
                seq: 0,
                kind: EntryKind::Recall,
                client_msg_id: String::new(),
                client_seq: 0,
                create_time: now,
                server_time: now,
                content: Content::none(),
                sender_device: session.device.clone(),
                ..original
            };
            return self.append_channel(app, Some(session), entry).await;
        }
        let original = self
            .inner
            .inbox
            .get(app, &session.user, id)
            .await?
            .ok_or_else(|| Error::not_found(format!("message {id} is not in your inbox")))?;
        if original.direction != Direction::Out || original.kind != EntryKind::Message {
            return Err(Error::denied("only the sender may recall a message"));
        }
        check_window(&original.sender, original.server_time)?;
        let owners: Vec<(UserId, Conversation, Direction)> = match original.conversation.kind {
            ConversationKind::Direct => {
                let peer = UserId::new(original.conversation.id());
                let mut v = vec![(
                    session.user.clone(),
                    original.conversation.clone(),
                    Direction::Out,
                )];
                if peer != session.user {
                    v.push((peer, Conversation::direct(&session.user), Direction::In));
                }
                v
            }
            _ => {
                let gid = GroupId::new(original.conversation.id());
                let members = self.inner.groups.members(app, &gid).await?;
                let mut v = vec![(
                    session.user.clone(),
                    original.conversation.clone(),
                    Direction::Out,
                )];
                v.extend(
                    members
                        .into_iter()
                        .filter(|m| m.user != session.user)
                        .map(|m| (m.user, original.conversation.clone(), Direction::In)),
                );
                v
            }
        };
        let entries: Vec<InboxEntry> = owners
            .iter()
            .map(|(owner, conversation, direction)| InboxEntry {
                owner: owner.clone(),
                version: 0,
                kind: EntryKind::Recall,
                conversation: conversation.clone(),
                direction: *direction,
                server_msg_id: *id,
                sender: session.user.clone(),
                sender_device: session.device.clone(),
                client_msg_id: String::new(),
                client_seq: 0,
                create_time: now,
                server_time: now,
                content: Content::none(),
                read_up_to: 0,
            })
            .collect();
        for (owner, _, direction) in &owners {
            if *direction == Direction::In {
                self.inner.inbox.mark_message_read(app, owner, id).await?;
            }
        }
        let written = self
            .append_server_entries(app, Some(session), entries, settings.search)
            .await?;
        let version = written
            .iter()
            .find(|e| e.owner == session.user)
            .map_or(0, |e| e.version);
        Ok(SendReceipt {
            server_msg_id: *id,
            version,
            seq: 0,
            server_time: now,
            duplicate: false,
        })
    }

    /// Deletes a message from the caller's own inbox view (every device of
    /// the caller gets the delete entry; nobody else is affected).
    pub async fn delete_for_me(&self, session: &Session, id: &MsgId) -> Result<u64> {
        let app = &session.app;
        let settings = self.settings(app).await?;
        let original = self
            .inner
            .inbox
            .get(app, &session.user, id)
            .await?
            .ok_or_else(|| Error::not_found(format!("message {id} is not in your inbox")))?;
        self.inner
            .inbox
            .mark_message_read(app, &session.user, id)
            .await?;
        let now = now_millis();
        let entry = InboxEntry {
            version: 0,
            kind: EntryKind::Delete,
            sender: session.user.clone(),
            sender_device: session.device.clone(),
            client_msg_id: String::new(),
            client_seq: 0,
            create_time: now,
            server_time: now,
            content: Content::none(),
            read_up_to: 0,
            ..original
        };
        let written = self
            .append_server_entries(app, Some(session), vec![entry], settings.search)
            .await?;
        Ok(written.first().map_or(0, |e| e.version))
    }

    /// Tells the other side of a conversation that the caller is typing.
    /// Never stored: a missed typing notice is harmless.
    pub async fn typing(&self, session: &Session, conversation: &Conversation) -> Result<()> {
        let app = &session.app;
        let outgoing = match conversation.kind {
            ConversationKind::Direct => vec![Outgoing {
                user: UserId::new(conversation.id()),
                except_device: None,
                event: PushEvent::Typing {
                    conversation: Conversation::direct(&session.user),
                    from: session.user.clone(),
                },
            }],
            ConversationKind::Group | ConversationKind::SuperGroup => {
                let gid = GroupId::new(conversation.id());
                self.group_for_member(app, &gid, &session.user).await?;
                self.inner
                    .groups
                    .members(app, &gid)
                    .await?
                    .into_iter()
                    .filter(|m| m.user != session.user)
                    .map(|m| Outgoing {
                        user: m.user,
                        except_device: None,
                        event: PushEvent::Typing {
                            conversation: conversation.clone(),
                            from: session.user.clone(),
                        },
                    })
                    .collect()
            }
            ConversationKind::System => {
                return Err(Error::invalid("nobody types in the system conversation"));
            }
        };
        self.push(app, outgoing).await;
        Ok(())
    }

    // ------------------------------------------------------------ groups

    /// Creates a group owned by `owner`. Groups above the app's threshold
    /// (or asked for as such) are super groups.
    pub async fn create_group(
        &self,
        app: &AppId,
        owner: &UserId,
        req: CreateGroup,
    ) -> Result<Group> {
        let settings = self.settings(app).await?;
        let id = match req.id {
            Some(id) => {
                validate_id("group id", id.as_str())?;
                if id.as_str().starts_with('~') {
                    return Err(Error::invalid("group ids starting with ~ are reserved"));
                }
                id
            }
            None => GroupId::new(format!(
                "g{}",
                &self
                    .inner
                    .ids
                    .next(app, owner, &Conversation::system("group"))
                    .to_hex()[..20]
            )),
        };
        let now = now_millis();
        let mut members: Vec<Member> = vec![Member {
            user: owner.clone(),
            role: Role::Owner,
            joined_at: now,
        }];
        for user in req.members {
            validate_id("member id", user.as_str())?;
            if !members.iter().any(|m| m.user == user) {
                members.push(Member {
                    user,
                    role: Role::Member,
                    joined_at: now,
                });
            }
        }
        if members.len() as u64 > settings.max_group_members {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "{} members exceed this app's maximum of {}",
                    members.len(),
                    settings.max_group_members
                ),
            ));
        }
        let kind = if req.super_group || members.len() as u64 > settings.super_group_threshold {
            GroupKind::Super
        } else {
            GroupKind::Normal
        };
        let group = Group {
            id,
            name: req.name,
            kind,
            owner: owner.clone(),
            created_at: now,
        };
        self.inner
            .groups
            .create_group(app, &group, &members)
            .await?;
        Ok(group)
    }

    /// A group's info.
    pub async fn group(&self, app: &AppId, id: &GroupId) -> Result<Group> {
        self.inner
            .groups
            .group(app, id)
            .await?
            .ok_or_else(|| Error::not_found(format!("group {id} does not exist")))
    }

    /// Adds members. `actor` None means an administrator (admin API);
    /// otherwise the actor must be the group's owner or an admin. A group
    /// that grows past the app's threshold becomes a super group.
    pub async fn add_members(
        &self,
        app: &AppId,
        actor: Option<&UserId>,
        id: &GroupId,
        users: &[UserId],
    ) -> Result<u64> {
        let settings = self.settings(app).await?;
        let group = self.group(app, id).await?;
        if let Some(actor) = actor {
            self.require_manager(app, id, actor).await?;
        }
        for u in users {
            validate_id("member id", u.as_str())?;
        }
        let count = self.inner.groups.member_count(app, id).await?;
        if count + users.len() as u64 > settings.max_group_members {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "group {id} would exceed this app's maximum of {} members",
                    settings.max_group_members
                ),
            ));
        }
        let now = now_millis();
        let members: Vec<Member> = users
            .iter()
            .map(|u| Member {
                user: u.clone(),
                role: Role::Member,
                joined_at: now,
            })
            .collect();
        let added = self.inner.groups.add_members(app, id, &members).await?;
        if group.kind == GroupKind::Normal
            && self.inner.groups.member_count(app, id).await? > settings.super_group_threshold
        {
            self.inner
                .groups
                .set_kind(app, id, GroupKind::Super)
                .await?;
        }
        Ok(added)
    }

    /// The caller joins a group.
    pub async fn join_group(&self, session: &Session, id: &GroupId) -> Result<()> {
        self.add_members(&session.app, None, id, std::slice::from_ref(&session.user))
            .await
            .map(|_| ())
    }

    /// The caller leaves a group.
    pub async fn leave_group(&self, session: &Session, id: &GroupId) -> Result<()> {
        let removed = self
            .inner
            .groups
            .remove_members(&session.app, id, std::slice::from_ref(&session.user))
            .await?;
        if removed == 0 {
            return Err(Error::not_found(format!(
                "{} is not a member of group {id}",
                session.user
            )));
        }
        Ok(())
    }

    /// Removes members (`actor` None: an administrator).
    pub async fn remove_members(
        &self,
        app: &AppId,
        actor: Option<&UserId>,
        id: &GroupId,
        users: &[UserId],
    ) -> Result<u64> {
        if let Some(actor) = actor {
            self.require_manager(app, id, actor).await?;
        }
        self.inner.groups.remove_members(app, id, users).await
    }

    async fn require_manager(&self, app: &AppId, id: &GroupId, actor: &UserId) -> Result<()> {
        match self.inner.groups.member(app, id, actor).await? {
            Some(m) if m.role >= Role::Admin => Ok(()),
            _ => Err(Error::denied(format!(
                "{actor} is not an owner or admin of group {id}"
            ))),
        }
    }

    /// Members of a group (`asker` None: an administrator; otherwise members only).
    pub async fn members(
        &self,
        app: &AppId,
        id: &GroupId,
        asker: Option<&UserId>,
    ) -> Result<Vec<Member>> {
        match asker {
            Some(user) => {
                self.group_for_member(app, id, user).await?;
            }
            None => {
                self.group(app, id).await?;
            }
        }
        self.inner.groups.members(app, id).await
    }

    // --------------------------------------------------------- system push

    /// A notice from the system: to one user's inbox, to every member of a
    /// group, or to every user of the app (stored in the app's broadcast log
    /// and pushed to everyone online on `nodes`, this node included).
    pub async fn system_push(
        &self,
        app: &AppId,
        target: SystemTarget,
        content: Content,
        nodes: &[NodeId],
    ) -> Result<SendReceipt> {
        let settings = self.settings(app).await?;
        crate::content::validate(&settings, &content)?;
        let system = UserId::new(SYSTEM_SENDER);
        let now = now_millis();
        let to = match &target {
            SystemTarget::User(u) => Conversation::direct(u),
            SystemTarget::Group(g) => Conversation::group(g),
            SystemTarget::App => Conversation::system(BROADCAST_CHANNEL),
        };
        let id = self.inner.ids.next(app, &system, &to);
        let notice = |owner: UserId| InboxEntry {
            owner,
            version: 0,
            kind: EntryKind::SystemNotice,
            conversation: Conversation::system("system"),
            direction: Direction::In,
            server_msg_id: id,
            sender: system.clone(),
            sender_device: DeviceId::new("server"),
            client_msg_id: String::new(),
            client_seq: 0,
            create_time: now,
            server_time: now,
            content: content.clone(),
            read_up_to: 0,
        };
        let channel_notice = |group: GroupId| ChannelEntry {
            group,
            seq: 0,
            kind: EntryKind::SystemNotice,
            server_msg_id: id,
            sender: system.clone(),
            sender_device: DeviceId::new("server"),
            client_msg_id: String::new(),
            client_seq: 0,
            create_time: now,
            server_time: now,
            content: content.clone(),
        };
        match target {
            SystemTarget::User(user) => {
                validate_id("user id", user.as_str())?;
                let written = self
                    .append_server_entries(app, None, vec![notice(user)], false)
                    .await?;
                Ok(SendReceipt {
                    server_msg_id: id,
                    version: written.first().map_or(0, |e| e.version),
                    seq: 0,
                    server_time: now,
                    duplicate: false,
                })
            }
            SystemTarget::Group(gid) => {
                let group = self.group(app, &gid).await?;
                if group.kind == GroupKind::Super {
                    return self.append_channel(app, None, channel_notice(gid)).await;
                }
                let members = self.inner.groups.members(app, &gid).await?;
                let entries = members
                    .into_iter()
                    .map(|m| InboxEntry {
                        conversation: Conversation::group(&gid),
                        ..notice(m.user)
                    })
                    .collect();
                self.append_server_entries(app, None, entries, false)
                    .await?;
                Ok(SendReceipt {
                    server_msg_id: id,
                    version: 0,
                    seq: 0,
                    server_time: now,
                    duplicate: false,
                })
            }
            SystemTarget::App => {
                let mut entry = channel_notice(GroupId::new(BROADCAST_CHANNEL));
                let ChannelAppend::Appended { seq, prev_seq } =
                    self.inner.channels.append(app, &entry).await?
                else {
                    return Err(Error::internal(
                        "broadcast notice deduplicated without a client id",
                    ));
                };
                entry.seq = seq;
                self.push_app_wide(app, PushEvent::Broadcast { entry, prev_seq }, nodes)
                    .await;
                Ok(SendReceipt {
                    server_msg_id: id,
                    version: 0,
                    seq,
                    server_time: now,
                    duplicate: false,
                })
            }
        }
    }

    /// Pushes a product-defined event to every device of a user (not stored).
    pub async fn business_push(&self, app: &AppId, user: &UserId, command: u16, body: Bytes) {
        self.push(
            app,
            vec![Outgoing {
                user: user.clone(),
                except_device: None,
                event: PushEvent::Business { command, body },
            }],
        )
        .await;
    }

    // ----------------------------------------------------------- presence

    /// Whether users are online, and where.
    pub async fn presence(&self, app: &AppId, users: &[UserId]) -> Result<Vec<UserPresence>> {
        let routes = self.inner.presence.routes_of(app, users).await?;
        Ok(users
            .iter()
            .map(|u| UserPresence {
                user: u.clone(),
                devices: routes.iter().filter(|r| r.user == *u).cloned().collect(),
            })
            .collect())
    }

    // ------------------------------------------------------------- search

    /// Searches the caller's own history. The owner is always the session's
    /// user: nobody can search someone else's messages.
    pub async fn search(&self, session: &Session, query: HistoryQuery) -> Result<SearchResults> {
        self.search_as(&session.app, &session.user, query).await
    }

    /// Searches one user's history (admin API).
    pub async fn search_as(
        &self,
        app: &AppId,
        owner: &UserId,
        query: HistoryQuery,
    ) -> Result<SearchResults> {
        let Some(index) = &self.inner.search else {
            return Err(Error::unavailable(
                "history search is turned off on this server",
            ));
        };
        if query.words.trim().is_empty() {
            return Err(Error::invalid("search words are empty"));
        }
        index
            .search(&SearchQuery {
                app: app.clone(),
                owner: owner.clone(),
                words: query.words,
                conversation: query.conversation,
                from_time: query.from_time,
                to_time: query.to_time,
                offset: query.offset,
                limit: query.limit.clamp(1, 100),
            })
            .await
    }

    /// Drains the search outbox once: indexes new messages, unindexes
    /// recalled and deleted ones, one flush per `index_batch` entries, until
    /// a batch comes back less than full. Returns how many outbox entries it
    /// handled.
    pub async fn index_pending(&self) -> Result<usize> {
        let Some(index) = &self.inner.search else {
            return Ok(0);
        };
        let mut handled = 0;
        loop {
            let tasks = self
                .inner
                .inbox
                .pending_index(self.inner.config.index_batch)
                .await?;
            if tasks.is_empty() {
                break;
            }
            let mut docs = Vec::new();
            for t in &tasks {
                let e = &t.entry;
                match e.kind {
                    EntryKind::Message | EntryKind::SystemNotice => {
                        if let Some(text) = e.content.searchable_text() {
                            docs.push(SearchDoc {
                                app: t.app.clone(),
                                owner: e.owner.clone(),
                                server_msg_id: e.server_msg_id,
                                conversation: e.conversation.clone(),
                                sender: e.sender.clone(),
                                server_time: e.server_time,
                                text,
                            });
                        }
                    }
                    EntryKind::Recall | EntryKind::Delete => {
                        // Outbox order matters: a message and its recall in one
                        // batch must end removed, so index what came before first.
                        if !docs.is_empty() {
                            index.index(&std::mem::take(&mut docs)).await?;
                        }
                        index.remove(&t.app, &e.owner, &e.server_msg_id).await?;
                    }
                    _ => {}
                }
            }
            index.index(&docs).await?;
            index.flush().await?;
            let ids: Vec<u64> = tasks.iter().map(|t| t.id).collect();
            self.inner.inbox.complete_index(&ids).await?;
            handled += tasks.len();
            if tasks.len() < self.inner.config.index_batch {
                // Everything that was waiting is done. What arrived during
                // this flush waits for the next pass: looping on it would
                // flush back to back under steady load, each flush a tiny
                // segment that the search index then merges again and again.
                break;
            }
        }
        Ok(handled)
    }

    /// Runs the indexer until `shutdown` resolves: drains the outbox on
    /// every wake-up (and every second, to pick up other nodes' work and
    /// what a crash left behind).
    pub async fn run_indexer(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let started = tokio::time::Instant::now();
            if let Err(e) = self.index_pending().await {
                tracing::warn!(error = %e, "indexing failed; will retry");
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.inner.index_wakeup.notified() => {
                    // Under load the next wake-up is already there: let the
                    // outbox fill for the rest of the interval, so the next
                    // pass indexes a batch and commits once.
                    let next = started + self.inner.config.index_interval;
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep_until(next) => {}
                    }
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        if let Err(e) = self.index_pending().await {
            tracing::warn!(error = %e, "final indexing pass failed; the outbox keeps the rest");
        }
    }

    // ----------------------------------------------------------- business

    /// Hands a product command to its registered handler.
    pub async fn handle_business(
        &self,
        session: &Session,
        command: u16,
        body: Bytes,
    ) -> Result<Bytes> {
        let handler = self
            .inner
            .handlers
            .iter()
            .filter(|(_, range, _)| range.contains(&command))
            .find(|(app, _, _)| app.as_ref() == Some(&session.app))
            .or_else(|| {
                self.inner
                    .handlers
                    .iter()
                    .find(|(app, range, _)| app.is_none() && range.contains(&command))
            })
            .map(|(_, _, h)| h.clone())
            .ok_or_else(|| {
                Error::not_found(format!(
                    "no business handler for command {command:#06x} in app {}",
                    session.app
                ))
            })?;
        handler.handle(&session.caller(), command, body).await
    }
}
