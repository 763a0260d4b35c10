//! bubble's reference server: thin wiring over `bubble-core`.
//!
//! # Layout
//!
//! - [`config`]: defaults, a TOML file, `BUBBLE_*` variables and `--set`,
//!   layered with figment; each backend's section is its adapter's own
//!   config; validated key by key.
//! - [`backends`]: connects the backends the config chooses (SQLite, MySQL,
//!   Redis…), each through its `AdapterConfig`.
//! - [`gate`]: TCP and WebSocket client connections.
//! - [`http`]: selector, admin API, metrics.
//! - `cluster` (feature `cluster`): node-to-node pushes over gRPC.
//! - [`metrics`]: Prometheus counters and histograms.
//! - `stalls`: the stall watch (how long the async runtime could not run a timer).
//! - [`reindex`]: rebuilding the search index from the store (the
//!   `reindex` command, and at start after an index format upgrade).
//! - [`router`]: business commands served by a product's own gRPC
//!   services (`[[router]]`), and the gRPC before-send hook.
//!
//! The embedded default is always built in; each scale-out backend is a
//! cargo feature (`mysql`, `redis`, `elasticsearch`, `etcd`, `cluster`, or
//! all of them as `scale-out`).
//!
//! [`start`] binds everything and returns a [`RunningServer`];
//! [`RunningServer::shutdown`] stops accepting, drains connections, runs the
//! indexer's last pass and closes the stores.

pub mod backends;
#[cfg(feature = "cluster")]
pub mod cluster;
pub mod config;
pub mod gate;
pub mod http;
mod integrations;
pub mod metrics;
pub mod reindex;
pub mod router;
mod secrets;
pub mod send_hooks;
mod stalls;

pub use secrets::AppSecrets;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use bubble_core::ports::NodeInfo;
use bubble_core::token::{TokenAuthenticator, generate_secret};
use bubble_core::*;
use bubble_proto::secure::{
    OsRandom, ServerConfig, ServerKeyRing, TicketKey, TicketKeys, UsedTickets,
};

pub use config::{Config, ConfigError};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listener could not bind.
    #[error("cannot listen on {addr} ({key}): {source}")]
    Bind {
        /// The config key.
        key: &'static str,
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// A backend or the data directory failed.
    #[error("{0}")]
    Backend(String),
}

impl From<Error> for StartError {
    fn from(e: Error) -> Self {
        StartError::Backend(e.to_string())
    }
}

/// A started server.
pub struct RunningServer {
    /// Where the TCP gate listens.
    pub tcp_addr: Option<SocketAddr>,
    /// Where the WebSocket gate listens.
    pub ws_addr: Option<SocketAddr>,
    /// Where the HTTP API listens.
    pub http_addr: Option<SocketAddr>,
    /// The admin API's bearer secret.
    pub admin_secret: String,
    /// The server key's SHA-256 fingerprint (hex) for clients to pin.
    pub server_key_fingerprint: String,
    /// The server's public key (PEM).
    pub server_key_pem: String,
    /// The engine (for embedding and tests).
    pub engine: Engine,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    connections: TaskTracker,
    backends: backends::Backends,
}

impl RunningServer {
    /// Stops accepting, tells every connection to drain and close, waits
    /// for them (at most `grace`), lets the background tasks end (at most
    /// `grace`), runs the indexer's last pass, and closes the stores (at
    /// most `grace`). An indexing pass that fails (a full disk) does not fail
    /// the stop: what it could not index stays in the durable outbox, and
    /// the next start indexes it.
    pub async fn shutdown(self, grace: Duration) -> Result<()> {
        self.shutdown.cancel();
        self.connections.close();
        if tokio::time::timeout(grace, self.connections.wait())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after the grace period");
        }
        self.tasks.close();
        let _ = tokio::time::timeout(grace, self.tasks.wait()).await;
        if let Err(e) = self.engine.index_pending().await {
            tracing::warn!(
                error = %e,
                "the last indexing pass failed; the outbox keeps what was not indexed for the next start"
            );
        }
        // Everything acknowledged is committed already: a pool that cannot
        // close in time (a connection stuck on a dead database) must not
        // keep the process from exiting.
        match tokio::time::timeout(grace, self.backends.close()).await {
            Ok(closed) => closed,
            Err(_) => {
                tracing::warn!(
                    "the backends did not close within the grace period; exiting anyway"
                );
                Ok(())
            }
        }
    }
}

async fn bind(key: &'static str, addr: &str) -> Result<Option<TcpListener>, StartError> {
    if addr.is_empty() {
        return Ok(None);
    }
    TcpListener::bind(addr)
        .await
        .map(Some)
        .map_err(|source| StartError::Bind {
            key,
            addr: addr.to_owned(),
            source,
        })
}

/// Starts a server as configured: binds the listeners, connects the
/// backends, builds the engine, announces this gate, and serves.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        StartError::Backend(format!(
            "cannot create data_dir {}: {e}; set data_dir (or BUBBLE_DATA_DIR) to a writable directory",
            config.data_dir.display()
        ))
    })?;
    let keys = ServerKeyRing::load_or_generate(&config.data_dir, config.gate.rsa_bits)
        .map_err(|e| StartError::Backend(format!("server key: {e}")))?;
    let server_key_pem = keys.current().public_pem();
    let server_key_fingerprint = keys.current().fingerprint_hex();
    let secure = secure_channel(&config, keys)?;
    let listeners = Listeners::bind(&config).await?;

    let metrics = Arc::new(metrics::Metrics::default());
    let backends = backends::Backends::connect(&config, &metrics).await?;
    let builder = router::register(backends.engine_builder(&config), &config)?;
    #[allow(unused_mut)]
    let mut builder = integrations::wire(builder, &config).await?;
    #[cfg(feature = "cluster")]
    if listeners.rpc.is_some() {
        builder = builder.bus(Arc::new(cluster::GrpcBus::new(
            NodeId::new(&config.node_id),
            backends.discovery.clone(),
            "gate",
            cluster::PeerKey::from_secret(&config.cluster.rpc_secret),
        )));
    }
    let engine = builder.build()?;
    ensure_dev_app(&engine, &config.dev_app).await?;
    let tokens = Arc::new(TokenAuthenticator::new(Arc::new(AppSecrets::new(
        engine.clone(),
    ))));
    let admin_secret = secrets::load_admin_secret(&config)?;
    let media = open_media(&config, listeners.http_addr)?;

    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let connections = TaskTracker::new();
    let admission = admission_limits(&config);
    metrics
        .connection_limit
        .set(admission.max_connections as i64);
    let gate = Arc::new(gate::Gate {
        engine: engine.clone(),
        auth: tokens.clone(),
        secure,
        used_tickets: UsedTickets::new(1_000_000),
        limits: gate_limits(&config),
        metrics: metrics.clone(),
        admission: gate::admission::Admission::new(admission),
        handshake_limiter: gate::limits::HandshakeLimiter::new(
            config.gate.handshakes_per_second_per_ip,
            config.gate.handshakes_per_second,
        ),
        key_work: gate::key_work::KeyWork::per_core(),
        shutdown: shutdown.clone(),
        tasks: connections.clone(),
        media: media.clone(),
    });

    let discovery = backends.discovery.clone();
    let lease = discovery
        .register(&listeners.announcement(&config), ANNOUNCE_TTL)
        .await?;
    tasks.spawn(announce_load(
        lease,
        listeners.announcement(&config),
        metrics.clone(),
        shutdown.clone(),
    ));
    {
        let engine = engine.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move { engine.run_indexer(shutdown.cancelled_owned()).await });
    }
    {
        // A rebuild that shutdown interrupts is redone at the next start:
        // the index stays marked until one completes.
        let engine = engine.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            tokio::select! {
                _ = reindex::rebuild_if_needed(engine) => {}
                _ = shutdown.cancelled() => {}
            }
        });
    }
    {
        let engine = engine.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move { engine.run_maintenance(shutdown.cancelled_owned()).await });
    }
    {
        let engine = engine.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move { engine.run_notifications(shutdown.cancelled_owned()).await });
    }
    {
        let engine = engine.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move { engine.run_after_send(shutdown.cancelled_owned()).await });
    }
    tasks.spawn(stalls::watch(metrics.clone(), shutdown.clone()));
    let (tcp_addr, ws_addr, http_addr) =
        (listeners.tcp_addr, listeners.ws_addr, listeners.http_addr);
    #[cfg(feature = "cluster")]
    if let Some(listener) = listeners.rpc {
        let key = cluster::PeerKey::from_secret(&config.cluster.rpc_secret);
        tasks.spawn(cluster::serve(
            engine.hub(),
            key,
            listener,
            shutdown.clone(),
        ));
    }
    use gate::transport::{Transport, run_listener};
    if let Some(listener) = listeners.tcp {
        tasks.spawn(run_listener(gate.clone(), listener, Transport::Tcp));
    }
    if let Some(listener) = listeners.ws {
        tasks.spawn(run_listener(gate.clone(), listener, Transport::WebSocket));
    }
    if let Some(listener) = listeners.http {
        let state = Arc::new(http::HttpState {
            engine: engine.clone(),
            tokens: tokens.clone(),
            admin_secret: admin_secret.clone(),
            metrics: metrics.clone(),
            discovery: discovery.clone(),
            selector: http::selector::Selector::new(
                discovery.clone(),
                NodeId::new(&config.node_id),
            ),
            server_key_pem: server_key_pem.clone(),
            server_key_fingerprint: server_key_fingerprint.clone(),
            node: NodeId::new(&config.node_id),
            web: http::web_chat::WebOptions::from_config(&config),
        });
        let listener = http::listener::BoundedListener::new(
            listener,
            config.http.max_connections,
            Duration::from_millis(config.http.idle_timeout_ms),
        );
        match media
            .as_ref()
            .filter(|m| m.kind() == bubble_media::MediaKind::Fs)
        {
            Some(store) => tasks.spawn(http::serve_with(
                state,
                http::media::routes(store.clone()),
                listener,
                shutdown.clone(),
            )),
            None => tasks.spawn(http::serve(state, listener, shutdown.clone())),
        };
    }

    Ok(RunningServer {
        tcp_addr,
        ws_addr,
        http_addr,
        admin_secret,
        server_key_fingerprint,
        server_key_pem,
        engine,
        shutdown,
        tasks,
        connections,
        backends,
    })
}

/// The media store `[media]` chooses (`None`: off). The `fs` store's URLs
/// default to this node's HTTP listener as bound.
fn open_media(
    config: &Config,
    http_addr: Option<SocketAddr>,
) -> Result<Option<Arc<bubble_media::MediaStore>>, StartError> {
    let server_url = http_addr.map(|a| format!("http://{a}"));
    let store =
        bubble_media::MediaStore::open(&config.media, &config.data_dir, server_url.as_deref())
            .map_err(|e| StartError::Backend(format!("media store: {e}")))?;
    let unreachable = http_addr.is_some_and(|a| a.ip().is_unspecified());
    if config.media.kind == bubble_media::MediaKind::Fs
        && config.media.fs.public_url.is_empty()
        && unreachable
    {
        tracing::warn!(
            "media upload URLs name {}, which clients cannot reach: set media.fs.public_url",
            server_url.unwrap_or_default()
        );
    }
    Ok(store.map(Arc::new))
}

/// How long this gate's registration outlives its last load update.
const ANNOUNCE_TTL: Duration = Duration::from_secs(10);

/// The handshake's keys, timeout and resumption tickets.
fn secure_channel(config: &Config, keys: ServerKeyRing) -> Result<ServerConfig, StartError> {
    let secure = ServerConfig::new(keys).with_handshake_timeout(config.handshake_timeout());
    if config.gate.ticket_lifetime_secs == 0 {
        return Ok(secure);
    }
    let lifetime = Duration::from_secs(config.gate.ticket_lifetime_secs);
    let secret = config.cluster.ticket_secret.as_bytes();
    let keys = if secret.is_empty() {
        TicketKeys::new(TicketKey::generate(&mut OsRandom))
    } else {
        // One key per ticket lifetime, derived alike on every node.
        TicketKeys::cluster(secret, lifetime.max(Duration::from_secs(1)))
            .map_err(|e| StartError::Backend(format!("cluster.ticket_secret: {e}")))?
    };
    Ok(secure.with_tickets(keys).with_ticket_lifetime(lifetime))
}

fn gate_limits(config: &Config) -> gate::GateLimits {
    gate::GateLimits {
        max_frame_bytes: config.gate.max_frame_bytes,
        handshake_timeout: config.handshake_timeout(),
        heartbeat_timeout: config.heartbeat_timeout(),
        requests_per_second: config.gate.requests_per_second,
        request_burst: config.gate.request_burst,
        max_in_flight: config.gate.max_in_flight,
        write_timeout: Duration::from_millis(config.gate.write_timeout_ms),
        drain_timeout: Duration::from_secs(5),
    }
}

/// The connection caps, the total one lowered (and logged) so that
/// `gate.reserved_descriptors` stay free under the descriptor limit, which
/// is first raised to its hard maximum.
fn admission_limits(config: &Config) -> gate::admission::AdmissionLimits {
    use gate::admission::{AdmissionLimits, connection_limit, raise_descriptor_limit};
    let gate = &config.gate;
    let nofile = raise_descriptor_limit();
    let max_connections = connection_limit(gate.max_connections, nofile, gate.reserved_descriptors);
    if max_connections < gate.max_connections {
        tracing::info!(
            configured = gate.max_connections,
            in_force = max_connections,
            descriptor_limit = nofile,
            reserved = gate.reserved_descriptors,
            "gate.max_connections lowered to fit the descriptor limit; raise `ulimit -n` to allow more"
        );
    }
    AdmissionLimits {
        max_connections,
        max_per_address: gate.max_connections_per_address,
        max_unauthenticated: gate.max_unauthenticated,
    }
}

/// Creates the development app on first start (`dev_app`; empty: none).
/// A store that cannot say whether it exists stops the start rather than
/// overwrite it.
async fn ensure_dev_app(engine: &Engine, dev_app: &str) -> Result<(), StartError> {
    if dev_app.is_empty() {
        return Ok(());
    }
    let id = AppId::new(dev_app);
    match engine.app(&id).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(engine
            .put_app(AppConfig::new(id, generate_secret()))
            .await?),
        Err(e) => Err(e.into()),
    }
}

/// The server's listeners, bound before anything else starts so a busy
/// port fails the start at once, naming its key.
struct Listeners {
    tcp: Option<TcpListener>,
    ws: Option<TcpListener>,
    http: Option<TcpListener>,
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    rpc: Option<TcpListener>,
    tcp_addr: Option<SocketAddr>,
    ws_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    rpc_addr: Option<SocketAddr>,
}

impl Listeners {
    async fn bind(config: &Config) -> Result<Listeners, StartError> {
        let tcp = bind("gate.tcp", &config.gate.tcp).await?;
        let ws = bind("gate.ws", &config.gate.ws).await?;
        let http = bind("http.addr", &config.http.addr).await?;
        let rpc = bind("cluster.rpc", &config.cluster.rpc).await?;
        let addr = |l: &Option<TcpListener>| l.as_ref().and_then(|l| l.local_addr().ok());
        Ok(Listeners {
            tcp_addr: addr(&tcp),
            ws_addr: addr(&ws),
            http_addr: addr(&http),
            rpc_addr: addr(&rpc),
            tcp,
            ws,
            http,
            rpc,
        })
    }

    /// This node as a gate, for the selector: where clients and peers reach it.
    fn announcement(&self, config: &Config) -> NodeInfo {
        let configured = |s: &String| (!s.is_empty()).then(|| s.clone());
        NodeInfo {
            id: NodeId::new(&config.node_id),
            role: "gate".into(),
            tcp_addr: configured(&config.gate.public_tcp)
                .or_else(|| self.tcp_addr.map(|a| a.to_string())),
            ws_addr: configured(&config.gate.public_ws)
                .or_else(|| self.ws_addr.map(|a| format!("ws://{a}/"))),
            rpc_addr: configured(&config.cluster.public_rpc)
                .or_else(|| self.rpc_addr.map(|a| a.to_string())),
            load: 0,
        }
    }
}

/// Publishes this gate's open connections every 2 s (the selector hands
/// out the least loaded gate) until shutdown, then deregisters.
async fn announce_load(
    lease: Box<dyn bubble_core::ports::Lease>,
    mut info: NodeInfo,
    metrics: Arc<metrics::Metrics>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(http::selector::LOAD_PERIOD) => {}
        }
        info.load = metrics.connections.get().max(0) as u64;
        if let Err(e) = lease.update(&info).await {
            tracing::warn!(error = %e, "cannot publish this gate's load");
        }
    }
    if let Err(e) = lease.revoke().await {
        tracing::warn!(error = %e, "cannot deregister; the lease will expire");
    }
}
