//! [`EngineConfig`], the engine-wide knobs, and [`EngineBuilder`], which
//! plugs the ports in (each defaults to its in-memory adapter).

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::Notify;

use super::business::Handlers;
use super::degraded::Degraded;
use super::{Engine, Inner};
use crate::error::{Error, Result};
use crate::ids::MsgIdGenerator;
use crate::memory::*;
use crate::ports::*;
use crate::push::SessionHub;
use crate::types::*;

/// Engine-wide knobs (per-app ones live in [`crate::AppSettings`]).
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
    /// How long the stores remember an accepted client message id: a retry
    /// within it is answered with the first receipt; older keys are pruned
    /// ([`Engine::run_maintenance`](super::Engine::run_maintenance)), so the
    /// dedup tables stop growing.
    pub dedup_window: Duration,
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
    /// How long one client request may take before the gate answers it
    /// `Unavailable` (retry with the same client message id: a send that was
    /// stored after all is answered from dedup). Port calls are cut short
    /// with it, so a backend that is down never holds a client longer.
    pub request_timeout: Duration,
    /// While presence is down, how often the engine tries again to register
    /// the routes it could not, and so notices that presence is back.
    pub presence_retry: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            node: NodeId::new("node-1"),
            max_page: 500,
            recent_cap: 200,
            dedup_ttl: Duration::from_secs(24 * 3600),
            dedup_window: Duration::from_secs(7 * 24 * 3600),
            presence_ttl: Duration::from_secs(90),
            session_queue: 1024,
            index_batch: 8_192,
            index_interval: Duration::from_millis(250),
            app_cache_ttl: Duration::from_secs(10),
            request_timeout: Duration::from_secs(1),
            presence_retry: Duration::from_secs(1),
        }
    }
}

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
    handlers: Handlers,
    jobs: Arc<dyn crate::jobs::JobQueue>,
    push_tokens: Arc<dyn crate::notify::PushTokens>,
    notifiers:
        HashMap<(Option<AppId>, crate::notify::PushPlatform), Arc<dyn crate::notify::Notifier>>,
    hooks: super::hooks::Hooks,
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
            handlers: Handlers::default(),
            jobs: Arc::new(MemoryJobs::new()),
            push_tokens: Arc::new(MemoryPushTokens::new()),
            notifiers: HashMap::new(),
            hooks: super::hooks::Hooks::default(),
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
        self.handlers.add(app, range, handler);
        self
    }

    /// The durable job queue (push notifications, after-send hooks);
    /// defaults to an in-memory one.
    pub fn jobs(mut self, jobs: Arc<dyn crate::jobs::JobQueue>) -> Self {
        self.jobs = jobs;
        self
    }

    /// Where devices' push tokens are kept; defaults to memory.
    pub fn push_tokens(mut self, tokens: Arc<dyn crate::notify::PushTokens>) -> Self {
        self.push_tokens = tokens;
        self
    }

    /// Sends push notifications of `notifier`'s platform for one app or
    /// (None) for every app without its own.
    pub fn notifier(
        mut self,
        app: Option<AppId>,
        notifier: Arc<dyn crate::notify::Notifier>,
    ) -> Self {
        self.notifiers.insert((app, notifier.platform()), notifier);
        self
    }

    /// Runs `hook` over every message of one app or (None) of every app
    /// before it is stored, after the hooks added before it; `policy` says
    /// what happens when it cannot answer.
    pub fn before_send(
        mut self,
        app: Option<AppId>,
        hook: Arc<dyn crate::hooks::BeforeSendHook>,
        policy: super::FailurePolicy,
    ) -> Self {
        self.hooks.add_before(app, hook, policy);
        self
    }

    /// Hands every message stored in `app` to `hook`, at least once, in
    /// order (see [`Engine::run_after_send`]).
    pub fn after_send(mut self, app: AppId, hook: Arc<dyn crate::hooks::AfterSendHook>) -> Self {
        self.hooks.add_after(app, hook);
        self
    }

    /// Checks the configuration and builds the engine.
    pub fn build(self) -> Result<Engine> {
        let c = &self.config;
        validate_id("config.node", c.node.as_str())?;
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
        for (name, v) in [
            ("request_timeout", c.request_timeout),
            ("presence_retry", c.presence_retry),
        ] {
            if v.is_zero() {
                return Err(Error::invalid(format!(
                    "engine config {name} must be above 0"
                )));
            }
        }
        self.handlers.validate()?;
        let mut hooks = self.hooks;
        hooks.set_jobs(self.jobs.clone());
        let notifications = (!self.notifiers.is_empty()).then(|| {
            super::notify::Notifications::new(
                self.push_tokens.clone(),
                self.jobs.clone(),
                self.notifiers,
            )
        });
        let ids = MsgIdGenerator::new(c.node.clone());
        Ok(Engine {
            inner: Arc::new(Inner {
                ids,
                hub: Arc::new(SessionHub::new()),
                app_cache: RwLock::new(HashMap::new()),
                next_session: AtomicU64::new(first_session_id()),
                index_wakeup: Notify::new(),
                degraded: Degraded::default(),
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
                push_tokens: self.push_tokens,
                notifications,
                hooks,
            }),
        })
    }
}

/// The first session id of this engine: its start time in milliseconds,
/// times 1,024. A node that restarts under the same node id must not reuse
/// the ids of its previous run: presence may still hold a route of the old
/// run, and a device that signs in again kicks the session that route
/// names, which must not be a live session of the new run. (Under 2^53, so
/// ids stay exact in JSON.)
fn first_session_id() -> u64 {
    (crate::types::now_millis().max(1) as u64) << 10
}
