//! The sections of the configuration: the server's own (gate, http,
//! engine, cluster) and, for each port, which backend and that backend's
//! own config.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Client listeners and their limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct GateConfig {
    /// TCP listener ("" to disable).
    pub tcp: String,
    /// WebSocket listener ("" to disable).
    pub ws: String,
    /// The address clients are told to use for TCP (empty: `tcp`).
    pub public_tcp: String,
    /// The URL clients are told to use for WebSocket (empty: `ws://<ws>/`).
    pub public_ws: String,
    /// Largest frame body accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Time allowed to complete the handshake.
    pub handshake_timeout_ms: u64,
    /// A connection silent this long is closed.
    pub heartbeat_timeout_ms: u64,
    /// Most connections at once; further ones are refused with an error frame.
    /// Lowered at start to leave `reserved_descriptors` free.
    pub max_connections: usize,
    /// Most connections from one source address (0: no cap).
    pub max_connections_per_address: usize,
    /// Most connections still in their handshake at once.
    pub max_unauthenticated: usize,
    /// File descriptors kept free for everything but client connections
    /// (HTTP clients, the cluster port, store pools, index files).
    pub reserved_descriptors: usize,
    /// How long one write may wait for a client to read; past it the
    /// connection is reset.
    pub write_timeout_ms: u64,
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
            public_tcp: String::new(),
            public_ws: String::new(),
            max_frame_bytes: bubble_proto::DEFAULT_MAX_BODY,
            handshake_timeout_ms: 10_000,
            heartbeat_timeout_ms: 90_000,
            max_connections: 200_000,
            max_connections_per_address: 1000,
            max_unauthenticated: 10_000,
            reserved_descriptors: 256,
            write_timeout_ms: 10_000,
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

impl GateConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("gate.max_frame_bytes", self.max_frame_bytes as u64),
            ("gate.handshake_timeout_ms", self.handshake_timeout_ms),
            ("gate.heartbeat_timeout_ms", self.heartbeat_timeout_ms),
            ("gate.max_connections", self.max_connections as u64),
            ("gate.max_unauthenticated", self.max_unauthenticated as u64),
            ("gate.write_timeout_ms", self.write_timeout_ms),
            ("gate.requests_per_second", self.requests_per_second as u64),
            ("gate.max_in_flight", self.max_in_flight as u64),
            ("gate.push_queue", self.push_queue as u64),
            (
                "gate.handshakes_per_second_per_ip",
                self.handshakes_per_second_per_ip as u64,
            ),
            (
                "gate.handshakes_per_second",
                self.handshakes_per_second as u64,
            ),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(ConfigError::new(key, "must be above 0"));
            }
        }
        if self.max_frame_bytes > 64 << 20 {
            return Err(ConfigError::new(
                "gate.max_frame_bytes",
                "must be at most 64 MiB; send large content by reference",
            ));
        }
        if self.rsa_bits < 2048 {
            return Err(ConfigError::new("gate.rsa_bits", "must be at least 2048"));
        }
        Ok(())
    }
}

/// The HTTP listener.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Listen address ("" to disable).
    pub addr: String,
    /// Bearer secret for `/v1/admin/*`. Empty: generated on first start and
    /// kept in `<data_dir>/admin_secret`.
    pub admin_secret: String,
    /// Most HTTP connections at once; past it new ones wait in the backlog.
    pub max_connections: usize,
    /// An HTTP connection with nothing moving for this long is closed.
    pub idle_timeout_ms: u64,
    /// Whether `/chat/` serves the web chat (docs/web-chat.md).
    pub web_chat: WebChat,
}

/// When the HTTP listener serves the web chat under `/chat/`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebChat {
    /// Served when the server runs its development app (`dev_app` set): the
    /// chat's login then needs nothing but a user name.
    #[default]
    Auto,
    /// Always served; without a development app the page asks for an app id
    /// and a token from the app's backend.
    On,
    /// Never served.
    Off,
}

impl WebChat {
    /// Whether the chat is served, given whether a development app runs.
    pub fn served(self, dev_app_runs: bool) -> bool {
        match self {
            WebChat::Auto => dev_app_runs,
            WebChat::On => true,
            WebChat::Off => false,
        }
    }
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("addr", &self.addr)
            .field("admin_secret", &"<hidden>")
            .field("max_connections", &self.max_connections)
            .field("idle_timeout_ms", &self.idle_timeout_ms)
            .field("web_chat", &self.web_chat)
            .finish()
    }
}

impl HttpConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_connections == 0 {
            return Err(ConfigError::new("http.max_connections", "must be above 0"));
        }
        if self.idle_timeout_ms == 0 {
            return Err(ConfigError::new("http.idle_timeout_ms", "must be above 0"));
        }
        Ok(())
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: "127.0.0.1:7780".into(),
            admin_secret: String::new(),
            max_connections: 1024,
            idle_timeout_ms: 30_000,
            web_chat: WebChat::Auto,
        }
    }
}

/// The engine's knobs ([`bubble_core::EngineConfig`]); the node id comes
/// from `node_id` and each session's push queue from `gate.push_queue`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct EngineSection {
    /// The largest sync page a client may ask for.
    pub max_page: usize,
    /// Entries kept per user in the recent cache.
    pub recent_cap: usize,
    /// How long the cache remembers a receipt for dedup.
    pub dedup_ttl_secs: u64,
    /// How long the stores remember a client message id; older ones are
    /// pruned every minute. At least `dedup_ttl_secs`.
    pub dedup_window_secs: u64,
    /// How long a route lives without a heartbeat.
    pub presence_ttl_secs: u64,
    /// Search-outbox entries the indexer takes per batch (one index flush each).
    pub index_batch: usize,
    /// Least time between two indexer passes under load: how long a
    /// message may take to become searchable after its ack.
    pub index_interval_ms: u64,
    /// How long app settings are cached before re-reading the app store.
    pub app_cache_ttl_ms: u64,
    /// The request deadline: a client request still running after this
    /// long is answered `UNAVAILABLE` (retry with the same client_msg_id).
    pub request_timeout_ms: u64,
    /// While presence is down, how often the routes it missed are tried again.
    pub presence_retry_ms: u64,
}

impl Default for EngineSection {
    fn default() -> Self {
        let d = bubble_core::EngineConfig::default();
        EngineSection {
            max_page: d.max_page,
            recent_cap: d.recent_cap,
            dedup_ttl_secs: d.dedup_ttl.as_secs(),
            dedup_window_secs: d.dedup_window.as_secs(),
            presence_ttl_secs: d.presence_ttl.as_secs(),
            index_batch: d.index_batch,
            index_interval_ms: d.index_interval.as_millis() as u64,
            app_cache_ttl_ms: d.app_cache_ttl.as_millis() as u64,
            request_timeout_ms: d.request_timeout.as_millis() as u64,
            presence_retry_ms: d.presence_retry.as_millis() as u64,
        }
    }
}

impl EngineSection {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, v) in [
            ("engine.max_page", self.max_page as u64),
            ("engine.recent_cap", self.recent_cap as u64),
            ("engine.dedup_ttl_secs", self.dedup_ttl_secs),
            ("engine.presence_ttl_secs", self.presence_ttl_secs),
            ("engine.index_batch", self.index_batch as u64),
            ("engine.request_timeout_ms", self.request_timeout_ms),
            ("engine.presence_retry_ms", self.presence_retry_ms),
        ] {
            if v == 0 {
                return Err(ConfigError::new(key, "must be above 0"));
            }
        }
        if self.dedup_window_secs < self.dedup_ttl_secs {
            return Err(ConfigError::new(
                "engine.dedup_window_secs",
                format!(
                    "must be at least engine.dedup_ttl_secs ({}): the stores must not forget a \
                     client message id the cache still answers for",
                    self.dedup_ttl_secs
                ),
            ));
        }
        Ok(())
    }

    /// The engine's config for node `node` with `session_queue` pushes per session.
    pub fn engine_config(&self, node: &str, session_queue: usize) -> bubble_core::EngineConfig {
        bubble_core::EngineConfig {
            node: bubble_core::NodeId::new(node),
            max_page: self.max_page,
            recent_cap: self.recent_cap,
            dedup_ttl: Duration::from_secs(self.dedup_ttl_secs),
            dedup_window: Duration::from_secs(self.dedup_window_secs),
            presence_ttl: Duration::from_secs(self.presence_ttl_secs),
            session_queue,
            index_batch: self.index_batch,
            index_interval: Duration::from_millis(self.index_interval_ms),
            app_cache_ttl: Duration::from_millis(self.app_cache_ttl_ms),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            presence_retry: Duration::from_millis(self.presence_retry_ms),
        }
    }
}

/// The circuit breaker every backend's calls go through (one per backend):
/// when it opens, and for how long.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BreakerSection {
    /// Unavailability failures in a row that open a backend's breaker.
    pub failures: u32,
    /// How long an open breaker fails calls at once before one probe call
    /// tries the backend again.
    pub cool_down_ms: u64,
    /// A call its request gave up on (at the deadline) after running this
    /// long counts as a failure: a backend that never answers opens the
    /// breaker too. Below `engine.request_timeout_ms`.
    pub abandoned_call_ms: u64,
}

impl Default for BreakerSection {
    fn default() -> Self {
        let d = bubble_core::BreakerConfig::default();
        BreakerSection {
            failures: d.failures,
            cool_down_ms: d.cool_down.as_millis() as u64,
            abandoned_call_ms: d.abandoned_after.as_millis() as u64,
        }
    }
}

impl BreakerSection {
    /// Checks the section against the request deadline it serves.
    pub(super) fn validate(&self, engine: &EngineSection) -> Result<(), ConfigError> {
        for (key, v) in [
            ("breaker.failures", u64::from(self.failures)),
            ("breaker.cool_down_ms", self.cool_down_ms),
            ("breaker.abandoned_call_ms", self.abandoned_call_ms),
        ] {
            if v == 0 {
                return Err(ConfigError::new(key, "must be above 0"));
            }
        }
        if self.abandoned_call_ms >= engine.request_timeout_ms {
            return Err(ConfigError::new(
                "breaker.abandoned_call_ms",
                format!(
                    "must be below engine.request_timeout_ms ({}), got {}: requests give up at \
                     that deadline, so a backend that never answers would never open the breaker",
                    engine.request_timeout_ms, self.abandoned_call_ms
                ),
            ));
        }
        Ok(())
    }

    /// The breaker config.
    pub fn breaker_config(&self) -> bubble_core::BreakerConfig {
        bubble_core::BreakerConfig {
            failures: self.failures,
            cool_down: Duration::from_millis(self.cool_down_ms),
            abandoned_after: Duration::from_millis(self.abandoned_call_ms),
        }
    }
}

/// Declares a backend choice: an enum of kinds, each with the cargo feature
/// that builds it in (`None`: always there).
macro_rules! backend_kind {
    ($(#[$doc:meta])* $name:ident, $key:literal,
     { $($(#[$vdoc:meta])* $variant:ident = $text:literal $(feature $feature:literal)?),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* $(#[doc = concat!("Needs the `", $feature, "` feature.")])?
              #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// What the config file calls it.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            /// Refuses a backend this binary was built without, saying how
            /// to build it in.
            pub fn built_in(self) -> Result<(), ConfigError> {
                match self {
                    $($name::$variant => {
                        $(
                            #[cfg(not(feature = $feature))]
                            return Err(ConfigError::new($key, format!(
                                "{:?} is not built into this server: build it with `--features {}` (or `--features scale-out` for every scale-out backend)",
                                $text, $feature
                            )));
                        )?
                        #[allow(unreachable_code)]
                        Ok(())
                    })+
                }
            }
        }
    };
}

backend_kind!(
    /// Which durable store.
    StoreKind, "store.kind", {
        /// SQLite, embedded (`[store.sqlite]`).
        #[default] Sqlite = "sqlite",
        /// MySQL or MariaDB (`[store.mysql]`).
        Mysql = "mysql" feature "mysql",
        /// In memory: tests only, nothing survives a restart.
        Memory = "memory",
    }
);

backend_kind!(
    /// Which cache.
    CacheKind, "cache.kind", {
        /// In this process.
        #[default] Memory = "memory",
        /// Redis (`[cache.redis]`).
        Redis = "redis" feature "redis",
    }
);

backend_kind!(
    /// Where online routes live.
    PresenceKind, "presence.kind", {
        /// In this process (one node).
        #[default] Memory = "memory",
        /// Redis (`[presence.redis]`): needed by a cluster.
        Redis = "redis" feature "redis",
    }
);

backend_kind!(
    /// Which search index.
    SearchKind, "search.kind", {
        /// tantivy, embedded (`[search.tantivy]`).
        #[default] Tantivy = "tantivy",
        /// Elasticsearch (`[search.elasticsearch]`).
        Elasticsearch = "elasticsearch" feature "elasticsearch",
        /// In memory: tests only.
        Memory = "memory",
        /// No history search.
        Off = "off",
    }
);

backend_kind!(
    /// Which discovery.
    DiscoveryKind, "discovery.kind", {
        /// This node only.
        #[default] Static = "static",
        /// etcd (`[discovery.etcd]`): needed by a cluster.
        Etcd = "etcd" feature "etcd",
    }
);

/// The section of a backend this binary was built without: any table is
/// accepted and ignored (choosing the backend is refused, naming the
/// feature that builds it in).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NotBuilt {}

impl super::Section for NotBuilt {
    fn check(&self, _at: &str) -> Result<(), ConfigError> {
        Ok(())
    }
}

#[cfg(feature = "mysql")]
type MysqlSection = bubble_store_mysql::MysqlConfig;
#[cfg(not(feature = "mysql"))]
type MysqlSection = NotBuilt;
#[cfg(feature = "redis")]
type RedisSection = bubble_store_redis::RedisConfig;
#[cfg(not(feature = "redis"))]
type RedisSection = NotBuilt;
#[cfg(feature = "elasticsearch")]
type EsSection = bubble_search_es::EsConfig;
#[cfg(not(feature = "elasticsearch"))]
type EsSection = NotBuilt;
#[cfg(feature = "etcd")]
type EtcdSection = bubble_discovery_etcd::EtcdConfig;
#[cfg(not(feature = "etcd"))]
type EtcdSection = NotBuilt;

/// Which durable store, and each store's own settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct StoreConfig {
    /// "sqlite" (default), "mysql" or "memory".
    pub kind: StoreKind,
    /// The embedded store (its `path` defaults to `<data_dir>/bubble.db`).
    pub sqlite: bubble_store_sqlite::SqliteConfig,
    /// MySQL / MariaDB.
    pub mysql: MysqlSection,
}

/// Which cache, and Redis's settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CacheConfig {
    /// "memory" (default) or "redis".
    pub kind: CacheKind,
    /// Redis for the cache.
    pub redis: RedisSection,
}

/// Where online routes live, and Redis's settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PresenceConfig {
    /// "memory" (default, one node) or "redis" (a cluster).
    pub kind: PresenceKind,
    /// Redis for presence.
    pub redis: RedisSection,
}

/// Which search index, and each index's settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SearchConfig {
    /// "tantivy" (default), "elasticsearch", "memory" or "off".
    pub kind: SearchKind,
    /// The embedded index (its `path` defaults to `<data_dir>/search`).
    pub tantivy: bubble_search_tantivy::TantivyConfig,
    /// Elasticsearch.
    pub elasticsearch: EsSection,
}

/// Which discovery, and etcd's settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DiscoveryConfig {
    /// "static" (default: this node only) or "etcd".
    pub kind: DiscoveryKind,
    /// etcd.
    pub etcd: EtcdSection,
}

/// Node-to-node pushes (gRPC).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// Where this node listens for pushes from its peers ("" = a single node).
    /// Needs shared presence (`presence.kind = "redis"`) and discovery
    /// (`discovery.kind = "etcd"`).
    pub rpc: String,
    /// The address peers are told to use (empty: `rpc`).
    pub public_rpc: String,
    /// The secret every node derives its resumption ticket keys from, at
    /// least 32 bytes and the same on every node, so a device resumes on
    /// any node (empty: each node makes its own key at start, and a device
    /// that lands on another node does a full handshake).
    pub ticket_secret: String,
    /// The secret peers prove on every push they send each other, at least
    /// 32 bytes and the same on every node (empty: the cluster port takes
    /// pushes from anyone who reaches it; keep it on a private network).
    pub rpc_secret: String,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |s: &String| if s.is_empty() { "" } else { "<hidden>" };
        f.debug_struct("ClusterConfig")
            .field("rpc", &self.rpc)
            .field("public_rpc", &self.public_rpc)
            .field("ticket_secret", &hidden(&self.ticket_secret))
            .field("rpc_secret", &hidden(&self.rpc_secret))
            .finish()
    }
}

/// One `[[router]]` entry: business commands of an app served by a
/// product's own gRPC service (`BusinessService` in
/// `bubble-proto/proto/business.proto`; docs/integrations.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RouterEntry {
    /// The app whose devices send these commands, or `"*"` for every app
    /// without an entry of its own for them.
    pub app: String,
    /// The commands, inclusive: `"0x8000-0x80ff"`, or one: `"0x8001"`
    /// (hexadecimal with `0x`, or decimal), within the business range
    /// 0x8000-0xffff.
    pub commands: String,
    /// The service's address, `http://host:port`. It may start after the
    /// server: the connection is made at the first command and again after
    /// a failure.
    pub address: String,
    /// How long one call waits for the service's answer (never longer than
    /// `engine.request_timeout_ms`, the device's own deadline).
    #[serde(default = "RouterEntry::default_timeout_ms")]
    pub timeout_ms: u64,
    /// Whether a call may be sent again when the service was unavailable
    /// or too slow (a read, or a write the service deduplicates by
    /// `request_id`). Off: a command is never sent twice.
    #[serde(default)]
    pub idempotent: bool,
}

impl RouterEntry {
    /// The default of `timeout_ms`.
    pub const DEFAULT_TIMEOUT_MS: u64 = 3000;

    fn default_timeout_ms() -> u64 {
        Self::DEFAULT_TIMEOUT_MS
    }

    /// An entry routing `commands` of `app` to `address`, with the default
    /// deadline and not idempotent.
    pub fn new(app: &str, commands: &str, address: &str) -> RouterEntry {
        RouterEntry {
            app: app.to_owned(),
            commands: commands.to_owned(),
            address: address.to_owned(),
            timeout_ms: Self::DEFAULT_TIMEOUT_MS,
            idempotent: false,
        }
    }

    /// The app, `None` for every app (`"*"`).
    pub fn app_id(&self) -> Option<bubble_core::AppId> {
        (self.app != "*").then(|| bubble_core::AppId::new(&self.app))
    }

    /// The command range `commands` names, checked against the business
    /// range; the problem in words otherwise.
    pub fn command_range(&self) -> Result<std::ops::RangeInclusive<u16>, String> {
        parse_commands(&self.commands)
    }

    /// The per-call deadline.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// Reads `"0x8000-0x80ff"` or `"0x8001"` (hexadecimal or decimal) as a
/// range within the business range.
fn parse_commands(text: &str) -> Result<std::ops::RangeInclusive<u16>, String> {
    let example = "write a range like \"0x8000-0x80ff\" or one command like \"0x8001\"";
    let number = |part: &str| -> Result<u32, String> {
        let part = part.trim();
        let parsed = match part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16),
            None => part.parse::<u32>(),
        };
        parsed.map_err(|_| format!("{part:?} in {text:?} is not a command number; {example}"))
    };
    let (first, last) = match text.split_once('-') {
        Some((a, b)) => (number(a)?, number(b)?),
        None => {
            let one = number(text)?;
            (one, one)
        }
    };
    let business = u32::from(bubble_proto::BUSINESS_FIRST)..=u32::from(u16::MAX);
    if !business.contains(&first) || !business.contains(&last) {
        return Err(format!(
            "{} is outside the business range {:#06x}-0xffff; product commands are numbered \
             from {:#06x}",
            text.trim(),
            bubble_proto::BUSINESS_FIRST,
            bubble_proto::BUSINESS_FIRST
        ));
    }
    if first > last {
        return Err(format!(
            "{}: the first command is above the last; write the lower one first",
            text.trim()
        ));
    }
    // Both lie within 0x8000..=0xffff, checked above.
    Ok(first as u16..=last as u16)
}

/// Checks every `[[router]]` entry, naming the entry and its key; the
/// per-call deadline may not be 0, and one app's ranges may not overlap.
pub(super) fn validate_router(entries: &[RouterEntry]) -> Result<(), ConfigError> {
    let mut ranges: Vec<std::ops::RangeInclusive<u16>> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let key = |name: &str| format!("router[{i}].{name}");
        if entry.app != "*" {
            bubble_core::validate_id("app", &entry.app).map_err(|e| {
                ConfigError::new(
                    &key("app"),
                    format!(
                        "{}; name the app whose devices send these commands, or \"*\" for \
                         every app",
                        e.message()
                    ),
                )
            })?;
        }
        let range = entry
            .command_range()
            .map_err(|problem| ConfigError::new(&key("commands"), problem))?;
        crate::router::check_address(&entry.address)
            .map_err(|problem| ConfigError::new(&key("address"), problem))?;
        if entry.timeout_ms == 0 {
            return Err(ConfigError::new(
                &key("timeout_ms"),
                "must be above 0 (the default is 3000)",
            ));
        }
        for (j, other) in entries[..i].iter().enumerate() {
            let theirs = &ranges[j];
            if other.app == entry.app
                && range.start() <= theirs.end()
                && theirs.start() <= range.end()
            {
                return Err(ConfigError::new(
                    &key("commands"),
                    format!(
                        "{} overlaps router[{j}].commands ({}) of the same app {:?}: each \
                         command goes to one service; split the ranges",
                        entry.commands.trim(),
                        other.commands.trim(),
                        entry.app
                    ),
                ));
            }
        }
        ranges.push(range);
    }
    Ok(())
}
