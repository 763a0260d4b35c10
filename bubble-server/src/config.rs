//! Configuration: a TOML file, then `BUBBLE_*` environment overrides, then
//! validation that names the bad key.
//!
//! With no file at all the server starts on the embedded default: SQLite and
//! tantivy under `./bubble-data`, in-memory cache and presence, one node.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// A configuration problem, naming the key and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("config key `{key}`: {problem}")]
pub struct ConfigError {
    /// The dotted key, e.g. `gate.tcp`.
    pub key: String,
    /// What is wrong and what would be right.
    pub problem: String,
}

impl ConfigError {
    fn new(key: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.to_owned(),
            problem: problem.into(),
        }
    }
}

/// The whole server configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Where the embedded stores, the server key and the admin secret live.
    pub data_dir: PathBuf,
    /// This node's id in a cluster.
    pub node_id: String,
    /// Client-facing listeners and their limits.
    pub gate: GateConfig,
    /// The HTTP listener: selector, admin API, metrics.
    pub http: HttpConfig,
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
    /// A development app created on first start so the server is usable at once.
    pub dev_app: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./bubble-data"),
            node_id: "node-1".into(),
            gate: GateConfig::default(),
            http: HttpConfig::default(),
            store: StoreConfig::default(),
            cache: CacheConfig::default(),
            presence: PresenceConfig::default(),
            search: SearchConfig::default(),
            discovery: DiscoveryConfig::default(),
            cluster: ClusterConfig::default(),
            dev_app: Some("demo".into()),
        }
    }
}

/// Client listeners and their limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct GateConfig {
    /// TCP listener ("" to disable).
    pub tcp: String,
    /// WebSocket listener ("" to disable).
    pub ws: String,
    /// The address clients are told to use for TCP (defaults to `tcp`).
    pub public_tcp: Option<String>,
    /// The URL clients are told to use for WebSocket (defaults to `ws://<ws>/`).
    pub public_ws: Option<String>,
    /// Largest frame body accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Time allowed to complete the handshake.
    pub handshake_timeout_ms: u64,
    /// A connection silent this long is closed.
    pub heartbeat_timeout_ms: u64,
    /// Most connections at once; further ones are refused with an error frame.
    pub max_connections: usize,
    /// Sustained requests per second per connection.
    pub requests_per_second: u32,
    /// Burst above the sustained rate.
    pub request_burst: u32,
    /// Requests one connection may have in flight.
    pub max_in_flight: usize,
    /// Pushes queued per connection before it counts as a slow consumer.
    pub push_queue: usize,
    /// Full handshakes per second per source address (RSA is costly).
    pub handshakes_per_second_per_ip: u32,
    /// Full handshakes per second in all, whatever the source.
    pub handshakes_per_second: u32,
    /// RSA modulus size for a newly generated server key.
    pub rsa_bits: usize,
    /// Resumption ticket lifetime in seconds (0 disables resumption).
    pub ticket_lifetime_secs: u64,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            tcp: "127.0.0.1:7700".into(),
            ws: "127.0.0.1:7701".into(),
            public_tcp: None,
            public_ws: None,
            max_frame_bytes: bubble_proto::DEFAULT_MAX_BODY,
            handshake_timeout_ms: 10_000,
            heartbeat_timeout_ms: 90_000,
            max_connections: 200_000,
            requests_per_second: 200,
            request_burst: 400,
            max_in_flight: 64,
            push_queue: 1024,
            handshakes_per_second_per_ip: 200,
            handshakes_per_second: 5000,
            rsa_bits: bubble_proto::secure::DEFAULT_RSA_BITS,
            ticket_lifetime_secs: 3600,
        }
    }
}

/// The HTTP listener.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Listen address ("" to disable).
    pub addr: String,
    /// Bearer secret for `/v1/admin/*`. Empty: generated on first start and
    /// kept in `<data_dir>/admin_secret`.
    pub admin_secret: String,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("addr", &self.addr)
            .field("admin_secret", &"<hidden>")
            .finish()
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: "127.0.0.1:7780".into(),
            admin_secret: String::new(),
        }
    }
}

/// Which durable store.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct StoreConfig {
    /// "sqlite" (default), "mysql" or "memory" (tests; nothing survives a restart).
    pub kind: String,
    /// For mysql: `mysql://user:pass@host:3306/db`. For sqlite: the file
    /// (default `<data_dir>/bubble.db`).
    pub url: String,
    /// `[store.sqlite]`: the embedded store's tuning (batch size,
    /// durability, readers, size cap). Its `path`, when set, names the file
    /// instead of `url`.
    pub sqlite: bubble_store_sqlite::SqliteConfig,
}

impl StoreConfig {
    /// The SQLite store's settings with the file resolved: `sqlite.path`,
    /// else `url`, else `<data_dir>/bubble.db`.
    pub fn sqlite_for(&self, data_dir: &std::path::Path) -> bubble_store_sqlite::SqliteConfig {
        let mut c = self.sqlite.clone();
        if c.path.as_os_str().is_empty() {
            c.path = if self.url.is_empty() {
                data_dir.join("bubble.db")
            } else {
                PathBuf::from(&self.url)
            };
        }
        c
    }
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("kind", &self.kind)
            .field("url", &redact_url(&self.url))
            .field("sqlite", &self.sqlite)
            .finish()
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: "sqlite".into(),
            url: String::new(),
            // No path: `sqlite_for` resolves it.
            sqlite: bubble_store_sqlite::SqliteConfig::default(),
        }
    }
}

/// Which cache.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CacheConfig {
    /// "memory" (default) or "redis".
    pub kind: String,
    /// For redis: `redis://host:6379`.
    pub url: String,
    /// For redis: the prefix of every key (deployments sharing a Redis differ here).
    pub prefix: String,
}

impl std::fmt::Debug for CacheConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheConfig")
            .field("kind", &self.kind)
            .field("url", &redact_url(&self.url))
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            kind: "memory".into(),
            url: String::new(),
            prefix: "bubble".into(),
        }
    }
}

/// Where online routes live.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PresenceConfig {
    /// "memory" (default, one node) or "redis" (a cluster).
    pub kind: String,
    /// For redis: `redis://host:6379`.
    pub url: String,
    /// For redis: the prefix of every key.
    pub prefix: String,
}

impl std::fmt::Debug for PresenceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresenceConfig")
            .field("kind", &self.kind)
            .field("url", &redact_url(&self.url))
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            kind: "memory".into(),
            url: String::new(),
            prefix: "bubble".into(),
        }
    }
}

/// Which search index.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SearchConfig {
    /// "tantivy" (default), "elasticsearch", "memory" or "off".
    pub kind: String,
    /// For elasticsearch: `http://host:9200`. For tantivy: the directory
    /// (default `<data_dir>/search`).
    pub url: String,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            kind: "tantivy".into(),
            url: String::new(),
        }
    }
}

/// Which discovery.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DiscoveryConfig {
    /// "static" (default: this node only) or "etcd".
    pub kind: String,
    /// For etcd: comma-separated endpoints.
    pub endpoints: String,
    /// For etcd: the key prefix (clusters sharing an etcd differ here).
    pub prefix: String,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            kind: "static".into(),
            endpoints: String::new(),
            prefix: "/bubble".into(),
        }
    }
}

/// Node-to-node pushes (gRPC).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// Where this node listens for pushes from its peers ("" = a single node).
    /// Needs shared presence (`presence.kind = "redis"`) and discovery
    /// (`discovery.kind = "etcd"`).
    pub rpc: String,
    /// The address peers are told to use (defaults to `rpc`).
    pub public_rpc: Option<String>,
}

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://<hidden>@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

impl Config {
    /// Reads a TOML file, applies the environment, validates.
    pub fn load(path: Option<&std::path::Path>) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    ConfigError::new("--config", format!("cannot read {}: {e}", p.display()))
                })?;
                Config::from_toml(&text)?
            }
            None => Config::default(),
        };
        config.apply_env(std::env::vars())?;
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML; an unknown or mistyped key is named in the error.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let key = e
                .message()
                .split('`')
                .nth(1)
                .map(str::to_owned)
                .unwrap_or_else(|| "<file>".into());
            ConfigError::new(&key, e.to_string().trim().replace('\n', " "))
        })
    }

    /// Applies `BUBBLE_<SECTION>_<KEY>` variables (e.g. `BUBBLE_GATE_TCP`,
    /// `BUBBLE_STORE_KIND`, `BUBBLE_DATA_DIR`).
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix("BUBBLE_") else {
                continue;
            };
            let key = rest.to_ascii_lowercase();
            let num = |k: &str, v: &str| -> Result<u64, ConfigError> {
                v.parse::<u64>().map_err(|_| {
                    ConfigError::new(k, format!("{v:?} is not a whole number (from {name})"))
                })
            };
            match key.as_str() {
                "data_dir" => self.data_dir = PathBuf::from(value),
                "node_id" => self.node_id = value,
                "dev_app" => self.dev_app = (!value.is_empty()).then_some(value),
                "gate_tcp" => self.gate.tcp = value,
                "gate_ws" => self.gate.ws = value,
                "gate_public_tcp" => self.gate.public_tcp = Some(value),
                "gate_public_ws" => self.gate.public_ws = Some(value),
                "gate_max_frame_bytes" => {
                    self.gate.max_frame_bytes = num("gate.max_frame_bytes", &value)? as usize
                }
                "gate_handshake_timeout_ms" => {
                    self.gate.handshake_timeout_ms = num("gate.handshake_timeout_ms", &value)?
                }
                "gate_heartbeat_timeout_ms" => {
                    self.gate.heartbeat_timeout_ms = num("gate.heartbeat_timeout_ms", &value)?
                }
                "gate_max_connections" => {
                    self.gate.max_connections = num("gate.max_connections", &value)? as usize
                }
                "gate_requests_per_second" => {
                    self.gate.requests_per_second = num("gate.requests_per_second", &value)? as u32
                }
                "gate_request_burst" => {
                    self.gate.request_burst = num("gate.request_burst", &value)? as u32
                }
                "gate_push_queue" => {
                    self.gate.push_queue = num("gate.push_queue", &value)? as usize
                }
                "gate_handshakes_per_second_per_ip" => {
                    self.gate.handshakes_per_second_per_ip =
                        num("gate.handshakes_per_second_per_ip", &value)? as u32
                }
                "gate_handshakes_per_second" => {
                    self.gate.handshakes_per_second =
                        num("gate.handshakes_per_second", &value)? as u32
                }
                "gate_rsa_bits" => self.gate.rsa_bits = num("gate.rsa_bits", &value)? as usize,
                "http_addr" => self.http.addr = value,
                "http_admin_secret" => self.http.admin_secret = value,
                "store_kind" => self.store.kind = value,
                "store_url" => self.store.url = value,
                "store_sqlite_path" => self.store.sqlite.path = PathBuf::from(value),
                "store_sqlite_max_batch" => {
                    self.store.sqlite.max_batch = num("store.sqlite.max_batch", &value)? as usize
                }
                "store_sqlite_queue_depth" => {
                    self.store.sqlite.queue_depth =
                        num("store.sqlite.queue_depth", &value)? as usize
                }
                "store_sqlite_synchronous" => {
                    self.store.sqlite.synchronous = match value.as_str() {
                        "full" => bubble_store_sqlite::Synchronous::Full,
                        "normal" => bubble_store_sqlite::Synchronous::Normal,
                        other => {
                            return Err(ConfigError::new(
                                "store.sqlite.synchronous",
                                format!("{other:?} is not \"full\" or \"normal\" (from {name})"),
                            ));
                        }
                    }
                }
                "store_sqlite_read_connections" => {
                    self.store.sqlite.read_connections =
                        num("store.sqlite.read_connections", &value)? as u32
                }
                "store_sqlite_max_size_mb" => {
                    self.store.sqlite.max_size_mb = num("store.sqlite.max_size_mb", &value)?
                }
                "cache_kind" => self.cache.kind = value,
                "cache_url" => self.cache.url = value,
                "cache_prefix" => self.cache.prefix = value,
                "presence_kind" => self.presence.kind = value,
                "presence_url" => self.presence.url = value,
                "presence_prefix" => self.presence.prefix = value,
                "search_kind" => self.search.kind = value,
                "search_url" => self.search.url = value,
                "discovery_kind" => self.discovery.kind = value,
                "discovery_endpoints" => self.discovery.endpoints = value,
                "discovery_prefix" => self.discovery.prefix = value,
                "cluster_rpc" => self.cluster.rpc = value,
                "cluster_public_rpc" => self.cluster.public_rpc = Some(value),
                // Variables for other tools (e.g. BUBBLE_ES_URL for tests) are not ours.
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks every value, naming the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
        if !self.cluster.rpc.is_empty() {
            if self.presence.kind != "redis" {
                return Err(ConfigError::new(
                    "presence.kind",
                    "a cluster (cluster.rpc set) needs presence shared by every node: use \"redis\"",
                ));
            }
            if matches!(self.search.kind.as_str(), "tantivy" | "memory") {
                return Err(ConfigError::new(
                    "search.kind",
                    "a cluster needs one index every node writes and reads: use \"elasticsearch\" (or \"off\")",
                ));
            }
            if self.discovery.kind != "etcd" {
                return Err(ConfigError::new(
                    "discovery.kind",
                    "a cluster (cluster.rpc set) needs nodes to find each other: use \"etcd\"",
                ));
            }
        }
        if self.gate.tcp.is_empty() && self.gate.ws.is_empty() {
            return Err(ConfigError::new(
                "gate.tcp",
                "both gate.tcp and gate.ws are disabled: clients could not connect",
            ));
        }
        bubble_core::validate_id("node_id", &self.node_id)
            .map_err(|e| ConfigError::new("node_id", e.message().to_owned()))?;
        let positive = [
            ("gate.max_frame_bytes", self.gate.max_frame_bytes as u64),
            ("gate.handshake_timeout_ms", self.gate.handshake_timeout_ms),
            ("gate.heartbeat_timeout_ms", self.gate.heartbeat_timeout_ms),
            ("gate.max_connections", self.gate.max_connections as u64),
            (
                "gate.requests_per_second",
                self.gate.requests_per_second as u64,
            ),
            ("gate.max_in_flight", self.gate.max_in_flight as u64),
            ("gate.push_queue", self.gate.push_queue as u64),
            (
                "gate.handshakes_per_second_per_ip",
                self.gate.handshakes_per_second_per_ip as u64,
            ),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(ConfigError::new(key, "must be above 0"));
            }
        }
        if self.gate.max_frame_bytes > 64 << 20 {
            return Err(ConfigError::new(
                "gate.max_frame_bytes",
                "must be at most 64 MiB; send large content by reference",
            ));
        }
        if self.gate.rsa_bits < 2048 {
            return Err(ConfigError::new("gate.rsa_bits", "must be at least 2048"));
        }
        let one_of = |key: &str, v: &str, allowed: &[&str]| -> Result<(), ConfigError> {
            if allowed.contains(&v) {
                Ok(())
            } else {
                Err(ConfigError::new(
                    key,
                    format!("{v:?} is not one of {allowed:?}"),
                ))
            }
        };
        one_of(
            "store.kind",
            &self.store.kind,
            &["sqlite", "mysql", "memory"],
        )?;
        if self.store.kind == "sqlite" {
            bubble_core::AdapterConfig::validate(&self.store.sqlite_for(&self.data_dir)).map_err(
                |e| {
                    let e = e.within("store.sqlite");
                    ConfigError::new(&e.field, e.problem)
                },
            )?;
        }
        one_of("cache.kind", &self.cache.kind, &["memory", "redis"])?;
        one_of("presence.kind", &self.presence.kind, &["memory", "redis"])?;
        one_of(
            "search.kind",
            &self.search.kind,
            &["tantivy", "elasticsearch", "memory", "off"],
        )?;
        one_of("discovery.kind", &self.discovery.kind, &["static", "etcd"])?;
        let needs_url = [
            ("store.url", self.store.kind == "mysql", &self.store.url),
            ("cache.url", self.cache.kind == "redis", &self.cache.url),
            (
                "presence.url",
                self.presence.kind == "redis",
                &self.presence.url,
            ),
            (
                "search.url",
                self.search.kind == "elasticsearch",
                &self.search.url,
            ),
            (
                "discovery.endpoints",
                self.discovery.kind == "etcd",
                &self.discovery.endpoints,
            ),
        ];
        for (key, needed, url) in needs_url {
            if needed && url.is_empty() {
                return Err(ConfigError::new(key, "is required for this backend"));
            }
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_config_at_all_is_the_embedded_default() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.store.kind, "sqlite");
        assert_eq!(c.search.kind, "tantivy");
        assert_eq!(c.data_dir, PathBuf::from("./bubble-data"));
    }

    #[test]
    fn an_unknown_key_is_named() {
        let err = Config::from_toml("[gate]\ntcpp = \"1.2.3.4:5\"\n").unwrap_err();
        assert!(err.to_string().contains("tcpp"), "{err}");
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let c = Config::from_toml("[gate]\ntcp = \"not-an-address\"\n").unwrap();
        let err = c.validate().unwrap_err();
        assert_eq!(err.key, "gate.tcp");
        let c = Config::from_toml("[store]\nkind = \"oracle\"\n").unwrap();
        assert_eq!(c.validate().unwrap_err().key, "store.kind");
        let c = Config::from_toml("[store]\nkind = \"mysql\"\n").unwrap();
        assert_eq!(c.validate().unwrap_err().key, "store.url");
    }

    #[test]
    fn the_sqlite_section_tunes_the_embedded_store_and_names_a_bad_key() {
        let c = Config::from_toml(
            "data_dir = \"/srv/bubble\"\n[store.sqlite]\nmax_batch = 1024\nqueue_depth = 8192\nsynchronous = \"normal\"\n",
        )
        .unwrap();
        c.validate().unwrap();
        let s = c.store.sqlite_for(&c.data_dir);
        assert_eq!(s.path, PathBuf::from("/srv/bubble/bubble.db"));
        assert_eq!(s.max_batch, 1024);
        assert_eq!(s.synchronous, bubble_store_sqlite::Synchronous::Normal);

        let c = Config::from_toml("[store]\nurl = \"/tmp/x.db\"\n").unwrap();
        assert_eq!(
            c.store.sqlite_for(&c.data_dir).path,
            PathBuf::from("/tmp/x.db")
        );

        let c = Config::from_toml("[store.sqlite]\nmax_batch = 0\n").unwrap();
        let err = c.validate().unwrap_err();
        assert_eq!(err.key, "store.sqlite.max_batch");
        assert!(err.problem.contains("1 to 4096"), "{err}");

        let mut c = Config::default();
        c.apply_env([
            (
                "BUBBLE_STORE_SQLITE_MAX_BATCH".to_string(),
                "2048".to_string(),
            ),
            (
                "BUBBLE_STORE_SQLITE_QUEUE_DEPTH".to_string(),
                "16384".to_string(),
            ),
        ])
        .unwrap();
        assert_eq!(c.store.sqlite.max_batch, 2048);
        c.validate().unwrap();
        let err = c
            .apply_env([(
                "BUBBLE_STORE_SQLITE_SYNCHRONOUS".to_string(),
                "off".to_string(),
            )])
            .unwrap_err();
        assert_eq!(err.key, "store.sqlite.synchronous");
    }

    #[test]
    fn a_mistyped_value_is_named() {
        let err = Config::from_toml("[gate]\nmax_connections = \"lots\"\n").unwrap_err();
        assert!(err.to_string().contains("max_connections"), "{err}");
    }

    #[test]
    fn environment_variables_override_the_file() {
        let mut c = Config::from_toml("[gate]\ntcp = \"127.0.0.1:1\"\n").unwrap();
        c.apply_env([
            ("BUBBLE_GATE_TCP".to_string(), "127.0.0.1:2".to_string()),
            ("BUBBLE_STORE_KIND".to_string(), "memory".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ])
        .unwrap();
        assert_eq!(c.gate.tcp, "127.0.0.1:2");
        assert_eq!(c.store.kind, "memory");
        let err = c
            .apply_env([("BUBBLE_GATE_PUSH_QUEUE".to_string(), "many".to_string())])
            .unwrap_err();
        assert_eq!(err.key, "gate.push_queue");
    }

    #[test]
    fn a_cluster_needs_shared_presence_and_discovery() {
        let c = Config::from_toml("[cluster]\nrpc = \"127.0.0.1:7790\"\n").unwrap();
        assert_eq!(c.validate().unwrap_err().key, "presence.kind");
        let c = Config::from_toml(
            "[cluster]\nrpc = \"127.0.0.1:7790\"\n[presence]\nkind = \"redis\"\nurl = \"redis://x\"\n[search]\nkind = \"off\"\n",
        )
        .unwrap();
        assert_eq!(c.validate().unwrap_err().key, "discovery.kind");
    }

    #[test]
    fn secrets_and_passwords_stay_out_of_debug_output() {
        let mut c = Config::default();
        c.http.admin_secret = "s3cr3t".into();
        c.store.url = "mysql://root:hunter2@db:3306/x".into();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(shown.contains("db:3306"));
    }
}
