//! Configuration: defaults, then a TOML file, then `BUBBLE_*` environment
//! variables, then `--set key=value` from the command line (layered with
//! figment in [`layers`]), then validation that names the bad key.
//!
//! Each backend's section is that adapter's own config, embedded as it is
//! (`[store.sqlite]`, `[store.mysql]`, `[cache.redis]`, `[presence.redis]`,
//! `[search.tantivy]`, `[search.elasticsearch]`, `[discovery.etcd]`), so
//! every setting an adapter has is reachable. With no file at all the
//! server starts on the embedded default: SQLite and tantivy under
//! `./bubble-data`, in-memory cache and presence, one node.
//!
//! **Variable names**: `BUBBLE_` + the dotted key in capitals with every
//! `.` as `_`: `gate.max_in_flight` is `BUBBLE_GATE_MAX_IN_FLIGHT`,
//! `store.sqlite.max_batch` is `BUBBLE_STORE_SQLITE_MAX_BATCH`, `data_dir`
//! is `BUBBLE_DATA_DIR`. A list takes `a,b` or `[a, b]`.

mod integrations;
mod layers;
mod sections;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use bubble_core::AdapterConfig;

pub use integrations::{HookEntry, PushEntry};
pub use layers::{ConfigKey, config_keys};
pub use sections::*;

/// A configuration problem, naming the key and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config key `{key}`: {problem}")]
pub struct ConfigError {
    /// The dotted key, e.g. `gate.tcp` (or `--config` for the file itself).
    pub key: String,
    /// What is wrong and what would be right.
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(key: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.to_owned(),
            problem: problem.into(),
        }
    }
}

impl From<bubble_core::InvalidConfig> for ConfigError {
    fn from(e: bubble_core::InvalidConfig) -> ConfigError {
        ConfigError {
            key: e.field,
            problem: e.problem,
        }
    }
}

/// The whole server configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Where the embedded stores, the server key and the admin secret live.
    pub data_dir: PathBuf,
    /// This node's id in a cluster.
    pub node_id: String,
    /// An app created on first start so the server is usable at once
    /// (`demo`; empty: none).
    pub dev_app: String,
    /// Client-facing listeners and their limits.
    pub gate: GateConfig,
    /// The HTTP listener: selector, admin API, metrics.
    pub http: HttpConfig,
    /// The engine's own knobs (pages, caches, indexing, the request deadline).
    pub engine: EngineSection,
    /// The circuit breaker in front of every backend.
    pub breaker: BreakerSection,
    /// Durable store for inboxes, groups, channel logs and apps.
    pub store: StoreConfig,
    /// Hot state: recent messages, dedup window.
    pub cache: CacheConfig,
    /// Online routes.
    pub presence: PresenceConfig,
    /// History search.
    pub search: SearchConfig,
    /// Node membership.
    pub discovery: DiscoveryConfig,
    /// Node-to-node pushes.
    pub cluster: ClusterConfig,
    /// Media uploads: the object store MediaUpload tickets point at.
    pub media: bubble_media::MediaConfig,
    /// `[[router]]`: business commands served by a product's own gRPC
    /// services. Written in the file only (a list of tables), so it is not
    /// among [`config_keys`] and left out when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub router: Vec<RouterEntry>,
    /// `[[push]]`: push-notification providers (APNs, FCM, a webhook) per
    /// app. File only, like `router`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub push: Vec<PushEntry>,
    /// `[[hooks]]`: before- and after-send hooks and the word filter per
    /// app. File only, like `router`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookEntry>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./bubble-data"),
            node_id: "node-1".into(),
            dev_app: "demo".into(),
            gate: GateConfig::default(),
            http: HttpConfig::default(),
            engine: EngineSection::default(),
            breaker: BreakerSection::default(),
            store: StoreConfig::default(),
            cache: CacheConfig::default(),
            presence: PresenceConfig::default(),
            search: SearchConfig::default(),
            discovery: DiscoveryConfig::default(),
            cluster: ClusterConfig::default(),
            media: bubble_media::MediaConfig::default(),
            router: Vec::new(),
            push: Vec::new(),
            hooks: Vec::new(),
        }
    }
}

impl Config {
    /// The defaults, then `file` (if any), then the process environment,
    /// then `sets` (`key=value` from the command line); validated.
    pub fn load(file: Option<&Path>, sets: &[String]) -> Result<Config, ConfigError> {
        let config = layers::load(file, std::env::vars(), sets)?;
        config.validate()?;
        Ok(config)
    }

    /// The defaults under `vars` as if they were the environment, not yet
    /// validated.
    pub fn from_env(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        layers::load(None, vars, &[])
    }

    /// The defaults under a TOML text (nothing else), not yet validated.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        layers::from_toml(text)
    }

    /// The defaults under a TOML text and then `vars` as if they were the
    /// environment, not yet validated.
    pub fn from_toml_and_env(
        text: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        layers::from_toml_and_env(text, vars)
    }

    /// The embedded SQLite store's settings, its file resolved
    /// (`<data_dir>/bubble.db` unless `store.sqlite.path` is set).
    pub fn sqlite(&self) -> bubble_store_sqlite::SqliteConfig {
        let mut c = self.store.sqlite.clone();
        if c.path.as_os_str().is_empty() {
            c.path = self.data_dir.join("bubble.db");
        }
        c
    }

    /// The embedded search index's settings, its directory resolved
    /// (`<data_dir>/search` unless `search.tantivy.path` is set).
    pub fn tantivy(&self) -> bubble_search_tantivy::TantivyConfig {
        let mut c = self.search.tantivy.clone();
        if c.path.as_os_str().is_empty() {
            c.path = self.data_dir.join("search");
        }
        c
    }

    /// Checks every value, naming the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_listeners()?;
        self.gate.validate()?;
        self.http.validate()?;
        self.engine.validate()?;
        self.breaker.validate(&self.engine)?;
        bubble_core::validate_id("node_id", &self.node_id)
            .map_err(|e| ConfigError::new("node_id", e.message().to_owned()))?;
        if !self.dev_app.is_empty() {
            bubble_core::validate_id("dev_app", &self.dev_app)
                .map_err(|e| ConfigError::new("dev_app", e.message().to_owned()))?;
        }
        self.validate_backends()?;
        self.validate_media()?;
        sections::validate_router(&self.router)?;
        integrations::validate_push(&self.push)?;
        integrations::validate_hooks(&self.hooks)
    }

    fn validate_listeners(&self) -> Result<(), ConfigError> {
        let addr = |key: &str, v: &str| -> Result<(), ConfigError> {
            if v.is_empty() {
                return Ok(());
            }
            v.parse::<SocketAddr>().map(|_| ()).map_err(|_| {
                ConfigError::new(
                    key,
                    format!("{v:?} is not a socket address like 127.0.0.1:7700"),
                )
            })
        };
        addr("gate.tcp", &self.gate.tcp)?;
        addr("gate.ws", &self.gate.ws)?;
        addr("http.addr", &self.http.addr)?;
        addr("cluster.rpc", &self.cluster.rpc)?;
        for (key, secret) in [
            ("cluster.ticket_secret", &self.cluster.ticket_secret),
            ("cluster.rpc_secret", &self.cluster.rpc_secret),
        ] {
            if !secret.is_empty() && secret.len() < bubble_proto::secure::MIN_CLUSTER_SECRET_LEN {
                return Err(ConfigError::new(
                    key,
                    format!(
                        "has {} bytes; it needs at least {} (e.g. `openssl rand -hex 32`), the \
                         same on every node",
                        secret.len(),
                        bubble_proto::secure::MIN_CLUSTER_SECRET_LEN
                    ),
                ));
            }
        }
        if self.gate.tcp.is_empty() && self.gate.ws.is_empty() {
            return Err(ConfigError::new(
                "gate.tcp",
                "both gate.tcp and gate.ws are disabled: clients could not connect",
            ));
        }
        Ok(())
    }

    /// Each chosen backend is built in and its own section is valid; a
    /// cluster has what every node must share.
    fn validate_backends(&self) -> Result<(), ConfigError> {
        self.store.kind.built_in()?;
        self.cache.kind.built_in()?;
        self.presence.kind.built_in()?;
        self.search.kind.built_in()?;
        self.discovery.kind.built_in()?;
        match self.store.kind {
            StoreKind::Sqlite => self
                .sqlite()
                .validate()
                .map_err(|e| e.within("store.sqlite"))?,
            StoreKind::Mysql => self.store.mysql.check("store.mysql")?,
            StoreKind::Memory => {}
        }
        if self.cache.kind == CacheKind::Redis {
            self.cache.redis.check("cache.redis")?;
        }
        if self.presence.kind == PresenceKind::Redis {
            self.presence.redis.check("presence.redis")?;
        }
        match self.search.kind {
            SearchKind::Tantivy => self
                .tantivy()
                .validate()
                .map_err(|e| e.within("search.tantivy"))?,
            SearchKind::Elasticsearch => self.search.elasticsearch.check("search.elasticsearch")?,
            SearchKind::Memory | SearchKind::Off => {}
        }
        if self.discovery.kind == DiscoveryKind::Etcd {
            self.discovery.etcd.check("discovery.etcd")?;
        }
        if !self.cluster.rpc.is_empty() {
            if cfg!(not(feature = "cluster")) {
                return Err(ConfigError::new(
                    "cluster.rpc",
                    "the cluster bus is not built into this server: build it with `--features cluster` (or `--features scale-out`)",
                ));
            }
            if self.presence.kind != PresenceKind::Redis {
                return Err(ConfigError::new(
                    "presence.kind",
                    "a cluster (cluster.rpc set) needs presence shared by every node: use \"redis\"",
                ));
            }
            if matches!(self.search.kind, SearchKind::Tantivy | SearchKind::Memory) {
                return Err(ConfigError::new(
                    "search.kind",
                    "a cluster needs one index every node writes and reads: use \"elasticsearch\" (or \"off\")",
                ));
            }
            if self.discovery.kind != DiscoveryKind::Etcd {
                return Err(ConfigError::new(
                    "discovery.kind",
                    "a cluster (cluster.rpc set) needs nodes to find each other: use \"etcd\"",
                ));
            }
        }
        Ok(())
    }

    /// The `[media]` section; the `fs` store needs the HTTP listener.
    fn validate_media(&self) -> Result<(), ConfigError> {
        self.media
            .validate()
            .map_err(|e| ConfigError::from(e.within("media")))?;
        if self.media.kind == bubble_media::MediaKind::Fs && self.http.addr.is_empty() {
            return Err(ConfigError::new(
                "media.kind",
                "\"fs\" takes uploads on the HTTP listener, which is off (http.addr is empty): \
                 set http.addr, or media.kind = \"s3\" or \"off\"",
            ));
        }
        Ok(())
    }

    /// Whether the HTTP listener serves the web chat (`http.web_chat`;
    /// `auto` follows `dev_app`).
    pub fn serves_web_chat(&self) -> bool {
        !self.http.addr.is_empty() && self.http.web_chat.served(!self.dev_app.is_empty())
    }

    /// The handshake timeout.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.gate.handshake_timeout_ms)
    }

    /// The heartbeat timeout.
    pub fn heartbeat_timeout(&self) -> Duration {
        Duration::from_millis(self.gate.heartbeat_timeout_ms)
    }
}

/// A backend's section, validated only when that backend is chosen.
pub trait Section {
    /// Validates the section, naming a bad field under `at`.
    fn check(&self, at: &str) -> Result<(), ConfigError>;
}

impl<C: AdapterConfig> Section for C {
    fn check(&self, at: &str) -> Result<(), ConfigError> {
        self.validate().map_err(|e| e.within(at).into())
    }
}

#[cfg(test)]
mod tests;
