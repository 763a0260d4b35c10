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
pub mod metrics;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use bubble_core::ports::{Discovery, NodeInfo};
use bubble_core::token::{SecretSource, Secrets, TokenAuthenticator, generate_secret};
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

/// Token secrets straight from the engine's app store (through
/// [`Engine::app`], which caches each app briefly): the one place an app's
/// secret lives, whichever node created or changed it.
pub struct AppSecrets {
    engine: Engine,
}

impl AppSecrets {
    /// Secrets read through `engine`.
    pub fn new(engine: Engine) -> AppSecrets {
        AppSecrets { engine }
    }
}

#[async_trait]
impl SecretSource for AppSecrets {
    async fn secrets(&self, app: &AppId) -> Result<Secrets> {
        let config = self.engine.app(app).await?;
        Secrets::new(app, config.secret.as_bytes())
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
    /// for them (at most `grace`), runs the indexer's last pass, and closes
    /// the stores.
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
        self.engine.index_pending().await?;
        self.backends.close().await
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

fn load_admin_secret(config: &Config) -> Result<String, StartError> {
    if !config.http.admin_secret.is_empty() {
        return Ok(config.http.admin_secret.clone());
    }
    let path = config.data_dir.join("admin_secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        return Ok(existing.trim().to_owned());
    }
    let secret = generate_secret();
    write_private(&path, &secret)?;
    Ok(secret)
}

fn write_private(path: &Path, text: &str) -> Result<(), StartError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options
        .open(path)
        .map_err(|e| StartError::Backend(format!("cannot write {}: {e}", path.display())))?;
    f.write_all(text.as_bytes())
        .map_err(|e| StartError::Backend(format!("cannot write {}: {e}", path.display())))
}

/// Starts a server as configured.
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
    let mut secure = ServerConfig::new(keys).with_handshake_timeout(config.handshake_timeout());
    if config.gate.ticket_lifetime_secs > 0 {
        secure = secure
            .with_tickets(TicketKeys::new(TicketKey::generate(&mut OsRandom)))
            .with_ticket_lifetime(Duration::from_secs(config.gate.ticket_lifetime_secs));
    }

    let tcp = bind("gate.tcp", &config.gate.tcp).await?;
    let ws = bind("gate.ws", &config.gate.ws).await?;
    let http = bind("http.addr", &config.http.addr).await?;
    let tcp_addr = tcp.as_ref().and_then(|l| l.local_addr().ok());
    let ws_addr = ws.as_ref().and_then(|l| l.local_addr().ok());
    let http_addr = http.as_ref().and_then(|l| l.local_addr().ok());

    let rpc = bind("cluster.rpc", &config.cluster.rpc).await?;
    let rpc_addr = rpc.as_ref().and_then(|l| l.local_addr().ok());

    let backends = backends::Backends::connect(&config).await?;
    #[allow(unused_mut)]
    let mut builder = backends.engine_builder(&config);
    #[cfg(feature = "cluster")]
    if rpc.is_some() {
        builder = builder.bus(Arc::new(cluster::GrpcBus::new(
            NodeId::new(&config.node_id),
            backends.discovery.clone(),
            "gate",
        )));
    }
    let engine = builder.build()?;
    let tokens = Arc::new(TokenAuthenticator::new(Arc::new(AppSecrets::new(
        engine.clone(),
    ))));
    if !config.dev_app.is_empty() {
        let id = AppId::new(&config.dev_app);
        match engine.app(&id).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                engine
                    .put_app(AppConfig::new(id, generate_secret()))
                    .await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let admin_secret = load_admin_secret(&config)?;

    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let connections = TaskTracker::new();
    let metrics = Arc::new(metrics::Metrics::default());
    let gate = Arc::new(gate::Gate {
        engine: engine.clone(),
        auth: tokens.clone(),
        secure,
        used_tickets: UsedTickets::new(1_000_000),
        limits: gate::GateLimits {
            max_frame_bytes: config.gate.max_frame_bytes,
            handshake_timeout: config.handshake_timeout(),
            heartbeat_timeout: config.heartbeat_timeout(),
            requests_per_second: config.gate.requests_per_second,
            request_burst: config.gate.request_burst,
            max_in_flight: config.gate.max_in_flight,
            drain_timeout: Duration::from_secs(5),
        },
        metrics: metrics.clone(),
        connections: Arc::new(Semaphore::new(config.gate.max_connections)),
        handshake_limiter: gate::limits::HandshakeLimiter::new(
            config.gate.handshakes_per_second_per_ip,
            config.gate.handshakes_per_second,
        ),
        shutdown: shutdown.clone(),
        tasks: connections.clone(),
    });

    // This node as a gate, for the selector.
    let discovery = backends.discovery.clone();
    let configured = |s: &String| (!s.is_empty()).then(|| s.clone());
    let public_tcp =
        configured(&config.gate.public_tcp).or_else(|| tcp_addr.map(|a| a.to_string()));
    let public_ws =
        configured(&config.gate.public_ws).or_else(|| ws_addr.map(|a| format!("ws://{a}/")));
    let node = NodeInfo {
        id: NodeId::new(&config.node_id),
        role: "gate".into(),
        tcp_addr: public_tcp,
        ws_addr: public_ws,
        rpc_addr: configured(&config.cluster.public_rpc)
            .or_else(|| rpc_addr.map(|a| a.to_string())),
        load: 0,
    };
    let lease = discovery.register(&node, Duration::from_secs(10)).await?;
    {
        let metrics = metrics.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let mut info = node;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
                info.load = metrics.connections.get().max(0) as u64;
                if let Err(e) = lease.update(&info).await {
                    tracing::warn!(error = %e, "cannot publish this gate's load");
                }
            }
            if let Err(e) = lease.revoke().await {
                tracing::warn!(error = %e, "cannot deregister; the lease will expire");
            }
        });
    }

    {
        let engine = engine.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move { engine.run_indexer(shutdown.cancelled_owned()).await });
    }
    #[cfg(feature = "cluster")]
    if let Some(listener) = rpc {
        let service = cluster::ClusterService::new(engine.hub()).into_server();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    shutdown.cancelled_owned(),
                )
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "cluster listener stopped");
            }
        });
    }
    if let Some(listener) = tcp {
        tasks.spawn(gate::transport::run_tcp(gate.clone(), listener));
    }
    if let Some(listener) = ws {
        tasks.spawn(gate::transport::run_ws(gate.clone(), listener));
    }
    if let Some(listener) = http {
        let state = Arc::new(http::HttpState {
            engine: engine.clone(),
            tokens: tokens.clone(),
            admin_secret: admin_secret.clone(),
            metrics: metrics.clone(),
            discovery: discovery.clone(),
            server_key_pem: server_key_pem.clone(),
            server_key_fingerprint: server_key_fingerprint.clone(),
            node: NodeId::new(&config.node_id),
        });
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let served = axum::serve(listener, http::router(state))
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "http listener stopped");
            }
        });
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

/// The discovery to use when the config says "static": this process only.
pub fn static_discovery() -> Arc<dyn Discovery> {
    Arc::new(bubble_core::memory::MemoryDiscovery::new())
}
