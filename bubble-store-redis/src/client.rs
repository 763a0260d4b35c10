//! [`RedisStore`]: the one connection handle every port uses (a single
//! server behind a reconnecting `ConnectionManager`, the master Redis
//! Sentinel names behind one that is replaced after a failover, or a
//! cluster behind a `ClusterConnection` with slot routing, MOVED/ASK and its
//! own reconnects), connected by
//! [`RedisConfig::connect`](bubble_core::AdapterConfig::connect).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bubble_core::{AdapterConfig, Error, ErrorKind, InvalidConfig, Result};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use crate::config::RedisConfig;
use crate::error::{cannot_connect, is_not_replicated, map_err, not_replicated};
use crate::keys::Keys;
use bubble_core::redact_url;

#[async_trait]
impl AdapterConfig for RedisConfig {
    type Adapter = RedisStore;

    fn validate(&self) -> std::result::Result<(), InvalidConfig> {
        self.check()
    }

    /// Validates, connects, and checks that Redis answers.
    async fn connect(&self) -> Result<RedisStore> {
        self.validate()?;
        RedisStore::open(self.clone()).await
    }
}

/// Recent windows, the dedup window and online routes on Redis.
///
/// Implements [`bubble_core::ports::Cache`] and
/// [`bubble_core::ports::Presence`]. Cheap to clone: clones share one
/// multiplexed connection (a single server) or one cluster connection.
#[derive(Clone)]
pub struct RedisStore {
    pub(crate) conn: Conn,
    pub(crate) keys: Arc<Keys>,
    /// How long an idle recent window lives (ms).
    pub(crate) recent_ttl_ms: u64,
    config: Arc<RedisConfig>,
}

/// Whether an operation may be sent again after the connection dropped
/// under it, when nobody knows whether Redis ran it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// Running it twice leaves the same state (reads, refreshes).
    Safe,
    /// A second run could answer differently (set-if-absent, conditional
    /// delete): report the failure instead.
    Never,
}

impl RedisStore {
    /// Connects as `config` (already validated) says, and checks that Redis
    /// answers.
    async fn open(config: RedisConfig) -> Result<RedisStore> {
        let conn = Conn::open(&config).await?;
        let store = RedisStore {
            conn,
            keys: Arc::new(Keys::new(&config.key_prefix)),
            recent_ttl_ms: duration_ms(config.recent_ttl()),
            config: Arc::new(config),
        };
        store.ping().await?;
        Ok(store)
    }

    /// Checks that Redis answers (for readiness probes).
    pub async fn ping(&self) -> Result<()> {
        self.run(Repeat::Safe, |mut conn| async move {
            redis::cmd("PING").query_async::<String>(&mut conn).await
        })
        .await
        .map(drop)
    }

    /// `items` cut into the batches of a many-key script call, every batch
    /// to be sent at once: on a single server runs of `per_call` in order;
    /// in a cluster one batch per slot (a script may only touch keys of
    /// one slot, `key` names an item's), each in order.
    pub(crate) fn script_batches<'a, T>(
        &self,
        items: &'a [T],
        per_call: usize,
        key: impl Fn(&T) -> String,
    ) -> Vec<Vec<&'a T>> {
        if self.conn.is_cluster() {
            let mut by_slot: HashMap<Slot, Vec<&T>> = HashMap::new();
            for item in items {
                by_slot
                    .entry(Slot::for_key(key(item)))
                    .or_default()
                    .push(item);
            }
            by_slot.into_values().collect()
        } else {
            items.chunks(per_call).map(|c| c.iter().collect()).collect()
        }
    }

    /// The config it was connected with.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// Runs `op`, which only reads, on the connection, converting errors at
    /// the edge. When the connection dropped under a [`Repeat::Safe`]
    /// operation, runs it once more: the connection manager reconnects in
    /// the meantime. Behind Sentinel, see [`RedisStore::write`].
    pub(crate) async fn run<T, F, Fut>(&self, repeat: Repeat, op: F) -> Result<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        self.run_on(self.conn.clone(), repeat, op).await
    }

    /// [`RedisStore::run`] for an operation that writes: with
    /// `wait_replicas`, each of its commands is followed by `WAIT`, and it
    /// fails unless enough replicas have the write.
    ///
    /// Behind Sentinel both retry more: up to [`SENTINEL_ATTEMPTS`] runs, a
    /// short pause apart, each after the connection asked the sentinels for
    /// the master again. A [`Repeat::Never`] operation is repeated too when
    /// Redis certainly did not run it (a refused connection, `READONLY`
    /// from a demoted master, `MASTERDOWN`, `LOADING`, `NOREPLICAS`).
    pub(crate) async fn write<T, F, Fut>(&self, repeat: Repeat, op: F) -> Result<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        self.run_on(self.conn.for_writes(), repeat, op).await
    }

    async fn run_on<T, F, Fut>(&self, conn: Conn, repeat: Repeat, op: F) -> Result<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let sentinel = conn.follows_sentinel();
        let attempts = if sentinel { SENTINEL_ATTEMPTS } else { 2 };
        let mut attempt = 1;
        loop {
            match op(conn.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) if attempt < attempts && may_repeat(repeat, &e, sentinel) => {
                    tracing::debug!(error = %e, attempt, "redis: trying once more");
                    if sentinel {
                        tokio::time::sleep(SENTINEL_PAUSE * attempt).await;
                    }
                    attempt += 1;
                }
                Err(e) => return Err(map_err(e)),
            }
        }
    }
}

/// Runs of one operation behind Sentinel: the first, and two more after
/// asking the sentinels again. A failover takes seconds; these only ride
/// out its last moments (the switch to a master already promoted). Longer,
/// callers see `Unavailable` and the engine degrades until it is over.
pub(crate) const SENTINEL_ATTEMPTS: u32 = 3;

/// The pause before the second run behind Sentinel (twice that before the
/// third): enough for the sentinels to finish announcing a new master.
const SENTINEL_PAUSE: Duration = Duration::from_millis(100);

/// Whether an operation that failed with `e` may run again.
fn may_repeat(repeat: Repeat, e: &RedisError, sentinel: bool) -> bool {
    let dropped = e.is_connection_dropped() || e.is_unrecoverable_error();
    if !sentinel {
        return repeat == Repeat::Safe && dropped;
    }
    // Redis certainly did not run it.
    let refused = e.is_connection_refusal() || e.code().is_some_and(master_moved);
    match repeat {
        Repeat::Safe => refused || dropped || e.is_timeout() || is_not_replicated(e),
        Repeat::Never => refused,
    }
}

/// Longest TTL handed to Redis: ten years. Larger ones overflow Redis'
/// expiry arithmetic (and Lua's doubles); nothing here needs them.
const MAX_TTL_MS: u64 = 10 * 365 * 24 * 3600 * 1000;

/// A duration in whole milliseconds for `PX`/`PEXPIRE`: at least 1 (Redis
/// refuses 0), at most [`MAX_TTL_MS`].
pub(crate) fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_TTL_MS)
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Shown in `CLIENT LIST` (`lib-name=`), so operators see who is connected.
const LIB_NAME: &str = "bubble-store-redis";

/// A cheap, cloneable handle; clones share the same multiplexed connection.
#[derive(Clone)]
pub(crate) enum Conn {
    /// One server (or a proxy in front of several), or the master the
    /// sentinels name.
    Single {
        single: Arc<Single>,
        /// Whether each command is followed by `WAIT` (a write, with
        /// `wait_replicas` set).
        wait: bool,
    },
    /// Redis Cluster.
    Cluster(ClusterConnection),
}

/// One server's connection manager, replaced by a fresh one when a command
/// times out, or, behind Sentinel, on any sign of a failover.
///
/// The manager reconnects by itself only when the connection reports an
/// error. A connection that went silent (Redis hung, or a network that
/// dropped packets and healed, leaving the old TCP connection dead until
/// the kernel's retransmissions give up, minutes later) only ever times
/// out, so every command would keep timing out long after Redis is back.
/// And it reconnects to the same address: after a failover that is the old
/// master, gone or demoted to a replica that answers writes with
/// `READONLY`; only the sentinels know where the master went.
pub(crate) struct Single {
    target: Target,
    config: ConnectionManagerConfig,
    /// The manager in use, and how many times it was replaced.
    current: RwLock<(u64, ConnectionManager)>,
    /// Replicas a write must reach (`WAIT`); 0 for none.
    wait_replicas: u32,
    /// How long `WAIT` may block (ms).
    wait_timeout_ms: u64,
}

/// Where the single connection goes.
enum Target {
    /// Always the same server.
    Fixed(redis::Client),
    /// The master the sentinels name, asked again after a failover.
    Sentinel(Box<SentinelTarget>),
}

/// How to ask the sentinels for the master.
struct SentinelTarget {
    /// One lookup at a time: the callers that hit a failover at once wait
    /// for the first one's lookup instead of each asking the sentinels.
    lookup: tokio::sync::Mutex<Lookup>,
    /// The bound on one lookup (the sentinels, then the master's `ROLE`).
    timeout: Duration,
    /// The master's name and the sentinels, passwords hidden, for logs.
    shown: String,
}

struct Lookup {
    client: SentinelClient,
    /// The master the manager in use connects to.
    master: String,
    /// When the last lookup started, so that callers failing in a burst
    /// ask at most every [`MIN_LOOKUP_GAP`].
    last: Option<Instant>,
}

/// The shortest time between two lookups of the master.
const MIN_LOOKUP_GAP: Duration = Duration::from_millis(100);

impl Single {
    fn current(&self) -> (u64, ConnectionManager) {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        (current.0, current.1.clone())
    }

    /// Installs `fresh` in place of manager `generation`, unless another
    /// caller already replaced it.
    fn install(&self, generation: u64, fresh: ConnectionManager) -> bool {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if current.0 != generation {
            return false;
        }
        *current = (generation + 1, fresh);
        true
    }

    /// Whether a request that ended in `result` calls for a new manager: a
    /// timeout always; behind Sentinel any sign that the master moved,
    /// also in a reply (Redis' own errors, such as `READONLY` from a
    /// demoted master, come back as replies, turned into errors later).
    fn must_replace<T: Reply>(&self, result: &RedisResult<T>) -> bool {
        match (&self.target, result) {
            (Target::Fixed(_), Err(e)) => e.is_timeout(),
            (Target::Fixed(_), Ok(_)) => false,
            (Target::Sentinel(_), Err(e)) => {
                e.is_timeout()
                    || e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_unrecoverable_error()
                    || is_not_replicated(e)
                    || e.code().is_some_and(master_moved)
            }
            (Target::Sentinel(_), Ok(reply)) => reply.says_master_moved(),
        }
    }

    /// Replaces manager `generation` (unless another caller already did)
    /// with one that connects afresh on its first command: to the same
    /// server, or to the master the sentinels name now. Behind Sentinel a
    /// manager still on that master is kept, unless it `timed_out` (it may
    /// be stuck on a silent connection).
    async fn replace(&self, generation: u64, timed_out: bool) {
        let sentinel = match &self.target {
            Target::Fixed(client) => {
                match ConnectionManager::new_lazy_with_config(client.clone(), self.config.clone()) {
                    Ok(fresh) => {
                        if self.install(generation, fresh) {
                            tracing::debug!(
                                "redis: a command timed out; the next one uses a new connection"
                            );
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "redis: cannot make a new connection manager")
                    }
                }
                return;
            }
            Target::Sentinel(sentinel) => sentinel,
        };
        let mut lookup = sentinel.lookup.lock().await;
        if self.current().0 != generation
            || lookup.last.is_some_and(|t| t.elapsed() < MIN_LOOKUP_GAP)
        {
            // Someone else just asked; their answer (or failure) stands.
            return;
        }
        lookup.last = Some(Instant::now());
        let found = tokio::time::timeout(sentinel.timeout, lookup.client.async_get_client()).await;
        let client = match found {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, sentinels = %sentinel.shown, "redis: the sentinels name no usable master");
                return;
            }
            Err(_) => {
                tracing::warn!(sentinels = %sentinel.shown, "redis: the sentinels did not name a master in time");
                return;
            }
        };
        let master = client.get_connection_info().addr().to_string();
        if master == lookup.master && !timed_out {
            return;
        }
        match ConnectionManager::new_lazy_with_config(client, self.config.clone()) {
            Ok(fresh) => {
                if self.install(generation, fresh) {
                    if master != lookup.master {
                        tracing::info!(%master, sentinels = %sentinel.shown, "redis: following the master the sentinels name");
                    }
                    lookup.master = master;
                }
            }
            Err(e) => tracing::warn!(error = %e, "redis: cannot make a new connection manager"),
        }
    }

    /// Runs one request on the current manager, replacing it if the
    /// request failed in a way that calls for it.
    fn run<'a, T: Reply + Send + 'a>(
        self: &Arc<Self>,
        request: impl FnOnce(ConnectionManager) -> RedisFuture<'a, T> + Send + 'a,
    ) -> RedisFuture<'a, T> {
        let (generation, manager) = self.current();
        let single = self.clone();
        Box::pin(async move {
            let result = request(manager).await;
            if single.must_replace(&result) {
                let timed_out = result.as_ref().is_err_and(RedisError::is_timeout);
                single.replace(generation, timed_out).await;
            }
            result
        })
    }

    /// Sends `cmd` followed by `WAIT`, in one write, and answers the
    /// command's reply only if enough replicas have it.
    async fn replicated(&self, mut manager: ConnectionManager, cmd: &Cmd) -> RedisResult<Value> {
        let mut pipe = redis::pipe();
        pipe.add_command(cmd.clone())
            .cmd("WAIT")
            .arg(self.wait_replicas)
            .arg(self.wait_timeout_ms);
        let mut replies = manager.req_packed_commands(&pipe, 0, 2).await?.into_iter();
        let (Some(reply), Some(acked)) = (replies.next(), replies.next()) else {
            return Err(RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "no reply to a command and its WAIT",
            )));
        };
        // A command Redis refused wrote nothing: its error is the answer.
        if matches!(reply, Value::ServerError(_)) {
            return Ok(reply);
        }
        let wanted = self.wait_replicas;
        match acked {
            Value::Int(n) if n >= i64::from(wanted) => Ok(reply),
            Value::Int(n) => Err(not_replicated(format!(
                "WAIT answered {n}, wanted {wanted}"
            ))),
            // "WAIT cannot be used with replica instances": the command ran
            // on a replica (a demoted master, which took no write; but a
            // `SCRIPT LOAD` passes there), so it is in no way replicated.
            other => Err(not_replicated(format!("WAIT answered {other:?}"))),
        }
    }
}

impl Conn {
    /// Connects as the (validated) config says.
    pub(crate) async fn open(config: &RedisConfig) -> Result<Conn> {
        if config.is_sentinel() {
            return Conn::open_sentinel(config).await;
        }
        let seeds = config.seeds();
        let shown = seeds
            .iter()
            .map(|u| redact_url(u))
            .collect::<Vec<_>>()
            .join(", ");
        let unreachable = |e: redis::RedisError| cannot_connect(&shown, e);
        let infos = seeds
            .iter()
            .map(|url| {
                let info = url.into_connection_info().map_err(map_err)?;
                let redis = with_lib_name(info.redis_settings().clone());
                Ok(info.set_redis_settings(redis))
            })
            .collect::<Result<Vec<_>>>()?;
        if config.cluster {
            let client = ClusterClientBuilder::new(infos)
                .connection_timeout(config.connect_timeout())
                .response_timeout(config.response_timeout())
                // Several attempts (redirects, reconnects) may share one
                // request; bound the whole of it too.
                .overall_response_timeout(Some(config.response_timeout() * 3))
                .build()
                .map_err(map_err)?;
            let conn = client.get_async_connection().await.map_err(unreachable)?;
            Ok(Conn::Cluster(conn))
        } else {
            let info = infos
                .into_iter()
                .next()
                .ok_or_else(|| Error::invalid("redis config `url`: no server to connect to"))?;
            let client = redis::Client::open(info).map_err(map_err)?;
            let manager_config = manager_config(config);
            let conn = ConnectionManager::new_with_config(client.clone(), manager_config.clone())
                .await
                .map_err(unreachable)?;
            Ok(Conn::single(
                config,
                Target::Fixed(client),
                manager_config,
                conn,
            ))
        }
    }

    /// Asks the sentinels for the master and connects to it.
    async fn open_sentinel(config: &RedisConfig) -> Result<Conn> {
        let shown = format!(
            "master `{}` via sentinels {}",
            config.master_name,
            config
                .sentinels
                .iter()
                .map(|u| redact_url(u))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let unreachable = |e: redis::RedisError| cannot_connect(&shown, e);
        // The master's credentials and db are those of `url`.
        let master = config
            .url
            .as_str()
            .into_connection_info()
            .map_err(map_err)?;
        let master = SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(with_lib_name(master.redis_settings().clone()));
        let sentinels = config
            .sentinels
            .iter()
            .map(|url| url.as_str().into_connection_info().map_err(map_err))
            .collect::<Result<Vec<_>>>()?;
        let mut client = SentinelClient::build(
            sentinels,
            config.master_name.clone(),
            Some(master),
            SentinelServerType::Master,
        )
        .map_err(map_err)?;
        let timeout = config.connect_timeout() * 2 + config.response_timeout() * 2;
        let master = tokio::time::timeout(timeout, client.async_get_client())
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "cannot connect to Redis: the sentinels did not name the {shown} in time"
                    ),
                )
            })?
            .map_err(unreachable)?;
        let manager_config = manager_config(config);
        let address = master.get_connection_info().addr().to_string();
        let conn = ConnectionManager::new_with_config(master, manager_config.clone())
            .await
            .map_err(unreachable)?;
        let target = Target::Sentinel(Box::new(SentinelTarget {
            lookup: tokio::sync::Mutex::new(Lookup {
                client,
                master: address,
                last: None,
            }),
            timeout,
            shown,
        }));
        Ok(Conn::single(config, target, manager_config, conn))
    }

    fn single(
        config: &RedisConfig,
        target: Target,
        manager_config: ConnectionManagerConfig,
        conn: ConnectionManager,
    ) -> Conn {
        Conn::Single {
            single: Arc::new(Single {
                target,
                config: manager_config,
                current: RwLock::new((0, conn)),
                wait_replicas: config.wait_replicas,
                wait_timeout_ms: config.wait_timeout_ms(),
            }),
            wait: false,
        }
    }

    /// This handle for writes: each command followed by `WAIT` when
    /// `wait_replicas` asks for it.
    pub(crate) fn for_writes(&self) -> Conn {
        match self {
            Conn::Single { single, .. } => Conn::Single {
                wait: single.wait_replicas > 0,
                single: single.clone(),
            },
            Conn::Cluster(c) => Conn::Cluster(c.clone()),
        }
    }

    /// Whether the master is found through Sentinel.
    pub(crate) fn follows_sentinel(&self) -> bool {
        matches!(self, Conn::Single { single, .. } if matches!(single.target, Target::Sentinel(_)))
    }

    /// Whether keys of different slots may go in one script call.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }
}

/// Whether an error code of Redis says this is no longer (or not yet) the
/// master that takes writes.
fn master_moved(code: &str) -> bool {
    matches!(code, "READONLY" | "MASTERDOWN" | "LOADING" | "NOREPLICAS")
}

/// A reply, looked at for signs that the master moved.
trait Reply {
    fn says_master_moved(&self) -> bool;
}

impl Reply for Value {
    fn says_master_moved(&self) -> bool {
        matches!(self, Value::ServerError(e) if master_moved(e.code()))
    }
}

impl Reply for Vec<Value> {
    fn says_master_moved(&self) -> bool {
        self.iter().any(Reply::says_master_moved)
    }
}

/// The connection manager's settings: reconnect quickly and give up soon;
/// callers see `Unavailable` and the next call starts a new attempt.
fn manager_config(config: &RedisConfig) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.connect_timeout()))
        .set_response_timeout(Some(config.response_timeout()))
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
}

fn with_lib_name(settings: redis::RedisConnectionInfo) -> redis::RedisConnectionInfo {
    settings.set_lib_name(LIB_NAME, env!("CARGO_PKG_VERSION"))
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single { single, wait: true } => {
                let s = single.clone();
                single.run(move |m| Box::pin(async move { s.replicated(m, cmd).await }))
            }
            Conn::Single { single, .. } => {
                single.run(move |mut m| Box::pin(async move { m.req_packed_command(cmd).await }))
            }
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    // The adapter sends writes one command at a time (scripts make them
    // atomic), so a pipeline gets no `WAIT`.
    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single { single, .. } => single.run(move |mut m| {
                Box::pin(async move { m.req_packed_commands(cmd, offset, count).await })
            }),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single { single, .. } => single.current().1.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_are_clamped_to_what_redis_accepts() {
        assert_eq!(duration_ms(Duration::ZERO), 1);
        assert_eq!(duration_ms(Duration::from_micros(1500)), 1);
        assert_eq!(duration_ms(Duration::from_secs(2)), 2_000);
        assert_eq!(duration_ms(Duration::MAX), MAX_TTL_MS);
    }

    #[test]
    fn replies_from_a_demoted_or_unready_master_are_signs_it_moved() {
        let reply = |text: &str| {
            redis::parse_redis_value(format!("-{text}\r\n").as_bytes()).expect("an error reply")
        };
        for text in [
            "READONLY You can't write against a read only replica.",
            "MASTERDOWN Link with MASTER is down",
            "LOADING Redis is loading the dataset in memory",
            "NOREPLICAS Not enough good replicas to write.",
        ] {
            assert!(reply(text).says_master_moved(), "{text}");
            assert!(vec![Value::Okay, reply(text)].says_master_moved(), "{text}");
        }
        assert!(!reply("WRONGTYPE Operation against a key").says_master_moved());
        assert!(!Value::Okay.says_master_moved());
    }
}
