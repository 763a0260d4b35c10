//! Builds the ports the configuration names.

use std::sync::Arc;

use bubble_core::memory::*;
use bubble_core::ports::*;
use bubble_core::{AdapterConfig, Engine, EngineBuilder, EngineConfig, NodeId, Result};

use crate::StartError;
use crate::config::Config;

/// The four durable ports, which one backend always provides together.
type Stores = (
    Arc<dyn InboxStore>,
    Arc<dyn GroupStore>,
    Arc<dyn ChannelLog>,
    Arc<dyn AppStore>,
);

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
    Mysql(bubble_store_mysql::MysqlStore),
}

impl Backends {
    /// Connects every backend the config names.
    pub async fn connect(config: &Config) -> Result<Backends, StartError> {
        let unsupported = |key: &str, kind: &str| {
            StartError::Backend(format!(
                "{key} = {kind:?} is not built into this server yet"
            ))
        };
        let failed = |key: &str, e: bubble_core::Error| StartError::Backend(format!("{key}: {e}"));
        let mut closers = Vec::new();
        let (inbox, groups, channels, apps): Stores = match config.store.kind.as_str() {
            "memory" => (
                Arc::new(MemoryInbox::new()),
                Arc::new(MemoryGroups::new()),
                Arc::new(MemoryChannelLog::new()),
                Arc::new(MemoryApps::new()),
            ),
            "sqlite" => {
                let sqlite = config.store.sqlite_for(&config.data_dir);
                let store = Arc::new(
                    sqlite
                        .connect()
                        .await
                        .map_err(|e| StartError::Backend(format!("store (sqlite): {e}")))?,
                );
                closers.push(Closer::Sqlite(store.clone()));
                (store.clone(), store.clone(), store.clone(), store)
            }
            "mysql" => {
                let store = bubble_store_mysql::MysqlConfig::new(config.store.url.clone())
                    .connect()
                    .await
                    .map_err(|e| StartError::Backend(format!("store.url: {e}")))?;
                closers.push(Closer::Mysql(store.clone()));
                (
                    Arc::new(store.clone()),
                    Arc::new(store.clone()),
                    Arc::new(store.clone()),
                    Arc::new(store),
                )
            }
            other => return Err(unsupported("store.kind", other)),
        };
        let redis = |key: &'static str, url: String, prefix: String| async move {
            bubble_store_redis::RedisConfig::new(url)
                .with_key_prefix(prefix)
                .connect()
                .await
                .map_err(|e| failed(key, e))
        };
        let cache: Arc<dyn Cache> = match config.cache.kind.as_str() {
            "memory" => Arc::new(MemoryCache::new()),
            "redis" => Arc::new(
                redis(
                    "cache.url",
                    config.cache.url.clone(),
                    config.cache.prefix.clone(),
                )
                .await?,
            ),
            other => return Err(unsupported("cache.kind", other)),
        };
        let presence: Arc<dyn Presence> = match config.presence.kind.as_str() {
            "memory" => Arc::new(MemoryPresence::new()),
            "redis" => Arc::new(
                redis(
                    "presence.url",
                    config.presence.url.clone(),
                    config.presence.prefix.clone(),
                )
                .await?,
            ),
            other => return Err(unsupported("presence.kind", other)),
        };
        let search: Option<Arc<dyn SearchIndex>> = match config.search.kind.as_str() {
            "off" => None,
            "memory" => Some(Arc::new(MemorySearch::new())),
            "tantivy" => {
                let path = if config.search.url.is_empty() {
                    config.data_dir.join("search")
                } else {
                    std::path::PathBuf::from(&config.search.url)
                };
                Some(Arc::new(
                    bubble_search_tantivy::TantivyConfig::new(path)
                        .connect()
                        .await
                        .map_err(|e| failed("search (tantivy)", e))?,
                ))
            }
            "elasticsearch" => Some(Arc::new(
                bubble_search_es::EsConfig::new(config.search.url.split(',').map(str::trim))
                    .connect()
                    .await
                    .map_err(|e| failed("search.url", e))?,
            )),
            other => return Err(unsupported("search.kind", other)),
        };
        let discovery: Arc<dyn Discovery> = match config.discovery.kind.as_str() {
            "static" => crate::static_discovery(),
            "etcd" => Arc::new(
                bubble_discovery_etcd::EtcdConfig::new(
                    config.discovery.endpoints.split(',').map(str::trim),
                )
                .with_prefix(config.discovery.prefix.clone())
                .connect()
                .await
                .map_err(|e| failed("discovery.endpoints", e))?,
            ),
            other => return Err(unsupported("discovery.kind", other)),
        };
        Ok(Backends {
            inbox,
            groups,
            channels,
            apps,
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
            .config(EngineConfig {
                node: NodeId::new(&config.node_id),
                session_queue: config.gate.push_queue,
                ..EngineConfig::default()
            })
            .inbox(self.inbox.clone())
            .groups(self.groups.clone())
            .channels(self.channels.clone())
            .apps(self.apps.clone())
            .cache(self.cache.clone())
            .presence(self.presence.clone())
            .search(self.search.clone())
    }

    /// Flushes and closes what needs it.
    pub async fn close(self) -> Result<()> {
        if let Some(search) = &self.search {
            search.flush().await?;
        }
        for closer in self.closers {
            match closer {
                Closer::Sqlite(store) => store.close().await,
                Closer::Mysql(store) => store.close().await,
            }
        }
        Ok(())
    }
}
