//! Connects the backends the configuration chooses, each from its own
//! section, the same way for all: validate, then connect
//! ([`AdapterConfig`]). Every port of a backend that can go down (all but
//! the in-memory ones) is put behind that backend's one circuit breaker.

use std::sync::Arc;

use bubble_core::guarded::Guarded;
use bubble_core::jobs::JobQueue;
use bubble_core::memory::*;
use bubble_core::notify::PushTokens;
use bubble_core::ports::*;
use bubble_core::{AdapterConfig, Breaker, BreakerConfig, Engine, EngineBuilder, Result};

use crate::StartError;
use crate::config::*;
use crate::metrics::Metrics;

/// The adapters of one server.
pub struct Backends {
    /// Inboxes.
    pub inbox: Arc<dyn InboxStore>,
    /// Groups.
    pub groups: Arc<dyn GroupStore>,
    /// Super-group logs.
    pub channels: Arc<dyn ChannelLog>,
    /// Apps.
    pub apps: Arc<dyn AppStore>,
    /// Cache.
    pub cache: Arc<dyn Cache>,
    /// Presence.
    pub presence: Arc<dyn Presence>,
    /// The durable job queue (push notifications, after-send hooks).
    pub jobs: Arc<dyn JobQueue>,
    /// Devices' push tokens.
    pub push_tokens: Arc<dyn PushTokens>,
    /// Search (None: off).
    pub search: Option<Arc<dyn SearchIndex>>,
    /// Discovery.
    pub discovery: Arc<dyn Discovery>,
    /// Stores to close cleanly at shutdown.
    closers: Vec<Closer>,
}

/// A store that wants an explicit close (flush, drain its writer).
enum Closer {
    Sqlite(Arc<bubble_store_sqlite::SqliteStore>),
    #[cfg(feature = "mysql")]
    Mysql(bubble_store_mysql::MysqlStore),
}

/// The four durable ports, which one backend always provides together.
struct Stores {
    inbox: Arc<dyn InboxStore>,
    groups: Arc<dyn GroupStore>,
    channels: Arc<dyn ChannelLog>,
    apps: Arc<dyn AppStore>,
    jobs: Arc<dyn JobQueue>,
    push_tokens: Arc<dyn PushTokens>,
}

impl Stores {
    /// The durable ports of one store, behind its backend's breaker.
    fn of<S: InboxStore + GroupStore + ChannelLog + AppStore + JobQueue + PushTokens>(
        store: Arc<S>,
        breaker: &Arc<Breaker>,
    ) -> Stores {
        Stores {
            inbox: guard(store.clone(), breaker),
            groups: guard(store.clone(), breaker),
            channels: guard(store.clone(), breaker),
            apps: guard(store.clone(), breaker),
            jobs: guard(store.clone(), breaker),
            push_tokens: guard(store, breaker),
        }
    }
}

/// `port` behind `breaker`.
fn guard<P: ?Sized>(port: Arc<P>, breaker: &Arc<Breaker>) -> Arc<Guarded<P>> {
    Arc::new(Guarded::new(port, breaker.clone()))
}

/// One breaker per backend, shared by every port on it, each shown in the
/// `bubble_breaker_state` gauge under its name.
struct Breakers<'a> {
    config: BreakerConfig,
    metrics: &'a Metrics,
    made: Vec<Arc<Breaker>>,
}

impl Breakers<'_> {
    /// The breaker of the backend called `name`, made on first use.
    fn of(&mut self, name: &'static str) -> Arc<Breaker> {
        if let Some(b) = self.made.iter().find(|b| b.name() == name) {
            return b.clone();
        }
        let gauge = self.metrics.breaker(name);
        let breaker = Arc::new(Breaker::new(name, self.config).with_listener(Arc::new(
            move |state| {
                gauge.set(state.as_gauge());
            },
        )));
        self.made.push(breaker.clone());
        breaker
    }
}

/// The breaker names of the cache's and presence's Redis: one when both
/// talk to the same server, else one each.
#[cfg(feature = "redis")]
fn redis_breakers(config: &Config) -> (&'static str, &'static str) {
    let (c, p) = (&config.cache.redis, &config.presence.redis);
    if (&c.url, &c.urls, c.cluster) == (&p.url, &p.urls, p.cluster) {
        ("redis", "redis")
    } else {
        ("redis-cache", "redis-presence")
    }
}

/// Connects one adapter from its section, naming the section on failure.
async fn connect<C: AdapterConfig>(section: &str, config: &C) -> Result<C::Adapter, StartError> {
    config
        .connect()
        .await
        .map_err(|e| StartError::Backend(format!("{section}: {e}")))
}

/// The refusal of a backend this binary was built without (validation
/// catches it first; this keeps the match whole).
#[allow(dead_code)]
fn not_built(refused: std::result::Result<(), ConfigError>) -> StartError {
    match refused {
        Err(e) => StartError::Config(e),
        Ok(()) => StartError::Backend("a backend is missing from this build".into()),
    }
}

impl Backends {
    /// Connects every backend the config chooses, each behind its breaker
    /// (whose state `metrics` shows).
    pub async fn connect(config: &Config, metrics: &Metrics) -> Result<Backends, StartError> {
        let mut closers = Vec::new();
        let mut breakers = Breakers {
            config: config.breaker.breaker_config(),
            metrics,
            made: Vec::new(),
        };
        let stores = match config.store.kind {
            StoreKind::Memory => Stores {
                inbox: Arc::new(MemoryInbox::new()),
                groups: Arc::new(MemoryGroups::new()),
                channels: Arc::new(MemoryChannelLog::new()),
                apps: Arc::new(MemoryApps::new()),
                jobs: Arc::new(MemoryJobs::new()),
                push_tokens: Arc::new(MemoryPushTokens::new()),
            },
            StoreKind::Sqlite => {
                let store = Arc::new(connect("store.sqlite", &config.sqlite()).await?);
                closers.push(Closer::Sqlite(store.clone()));
                Stores::of(store, &breakers.of("sqlite"))
            }
            #[cfg(feature = "mysql")]
            StoreKind::Mysql => {
                let store = connect("store.mysql", &config.store.mysql).await?;
                closers.push(Closer::Mysql(store.clone()));
                Stores::of(Arc::new(store), &breakers.of("mysql"))
            }
            #[cfg(not(feature = "mysql"))]
            kind @ StoreKind::Mysql => return Err(not_built(kind.built_in())),
        };
        let cache: Arc<dyn Cache> = match config.cache.kind {
            CacheKind::Memory => Arc::new(MemoryCache::new()),
            #[cfg(feature = "redis")]
            CacheKind::Redis => guard(
                Arc::new(connect("cache.redis", &config.cache.redis).await?),
                &breakers.of(redis_breakers(config).0),
            ),
            #[cfg(not(feature = "redis"))]
            kind @ CacheKind::Redis => return Err(not_built(kind.built_in())),
        };
        let presence: Arc<dyn Presence> = match config.presence.kind {
            PresenceKind::Memory => Arc::new(MemoryPresence::new()),
            #[cfg(feature = "redis")]
            PresenceKind::Redis => guard(
                Arc::new(connect("presence.redis", &config.presence.redis).await?),
                &breakers.of(redis_breakers(config).1),
            ),
            #[cfg(not(feature = "redis"))]
            kind @ PresenceKind::Redis => return Err(not_built(kind.built_in())),
        };
        let search: Option<Arc<dyn SearchIndex>> = match config.search.kind {
            SearchKind::Off => None,
            SearchKind::Memory => Some(Arc::new(MemorySearch::new())),
            SearchKind::Tantivy => Some(guard(
                Arc::new(connect("search.tantivy", &config.tantivy()).await?),
                &breakers.of("tantivy"),
            )),
            #[cfg(feature = "elasticsearch")]
            SearchKind::Elasticsearch => Some(guard(
                Arc::new(connect("search.elasticsearch", &config.search.elasticsearch).await?),
                &breakers.of("elasticsearch"),
            )),
            #[cfg(not(feature = "elasticsearch"))]
            kind @ SearchKind::Elasticsearch => return Err(not_built(kind.built_in())),
        };
        let discovery: Arc<dyn Discovery> = match config.discovery.kind {
            DiscoveryKind::Static => Arc::new(MemoryDiscovery::new()),
            #[cfg(feature = "etcd")]
            DiscoveryKind::Etcd => guard(
                Arc::new(connect("discovery.etcd", &config.discovery.etcd).await?),
                &breakers.of("etcd"),
            ),
            #[cfg(not(feature = "etcd"))]
            kind @ DiscoveryKind::Etcd => return Err(not_built(kind.built_in())),
        };
        Ok(Backends {
            inbox: stores.inbox,
            groups: stores.groups,
            channels: stores.channels,
            apps: stores.apps,
            jobs: stores.jobs,
            push_tokens: stores.push_tokens,
            cache,
            presence,
            search,
            discovery,
            closers,
        })
    }

    /// An engine builder wired to these backends.
    pub fn engine_builder(&self, config: &Config) -> EngineBuilder {
        Engine::builder()
            .config(
                config
                    .engine
                    .engine_config(&config.node_id, config.gate.push_queue),
            )
            .inbox(self.inbox.clone())
            .groups(self.groups.clone())
            .channels(self.channels.clone())
            .apps(self.apps.clone())
            .jobs(self.jobs.clone())
            .push_tokens(self.push_tokens.clone())
            .cache(self.cache.clone())
            .presence(self.presence.clone())
            .search(self.search.clone())
    }

    /// Flushes and closes what needs it.
    pub async fn close(self) -> Result<()> {
        if let Some(search) = &self.search
            && let Err(e) = search.flush().await
        {
            // Nothing is lost: the outbox entries of what was not committed
            // are completed only after a flush, so the next start redoes them.
            tracing::warn!(error = %e, "the search index could not be flushed at stop; the next start re-indexes");
        }
        for closer in self.closers {
            match closer {
                Closer::Sqlite(store) => store.close().await,
                #[cfg(feature = "mysql")]
                Closer::Mysql(store) => store.close().await,
            }
        }
        Ok(())
    }
}
