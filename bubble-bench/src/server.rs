//! The server under test: started as a child process (the real
//! `bubble-server` binary, measured through `/proc`) or in this process
//! (for the smoke test), plus the admin calls the scenarios need.
//!
//! The backend comes from the environment exactly as for `bubble-server`
//! (`BUBBLE_STORE_KIND`, `BUBBLE_STORE_MYSQL_URL`, `BUBBLE_SEARCH_KIND`, ...), so
//! measuring another backend is a change of command line, not of code.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bubble_client::transport::http_request;
use bubble_core::token;
use bubble_core::{AppId, UserId};
use bubble_proto::secure::PinnedServerKey;

use crate::conn::Target;

/// The RSA-3072 test key, so a fresh data directory does not wait for key
/// generation (seconds). It is public: never use it outside tests/benches.
const TEST_KEY_3072: &str = include_str!("../../bubble-proto/tests/fixtures/server_key.pem");

/// The RSA-2048 test key (`--rsa-bits 2048`): a full handshake costs the
/// server about a third of the 3072-bit one. Public too.
const TEST_KEY_2048: &str = include_str!("../../bubble-proto/tests/fixtures/server_key_2048.pem");

/// The size of the server key the bench installs and pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RsaBits {
    /// RSA-2048: tokens must fit 93 bytes (a v2 token for short ids does).
    B2048,
    /// RSA-3072, the server's own default.
    #[default]
    B3072,
}

impl RsaBits {
    /// Parses `2048` or `3072`.
    pub fn parse(value: &str) -> Result<RsaBits, String> {
        match value {
            "2048" => Ok(RsaBits::B2048),
            "3072" => Ok(RsaBits::B3072),
            other => Err(format!(
                "{other:?} is not 2048 or 3072 (the test keys the bench has)"
            )),
        }
    }

    /// The modulus size in bits.
    pub fn bits(self) -> u32 {
        match self {
            RsaBits::B2048 => 2048,
            RsaBits::B3072 => 3072,
        }
    }

    /// The PEM of the test key of this size.
    fn test_key(self) -> &'static str {
        match self {
            RsaBits::B2048 => TEST_KEY_2048,
            RsaBits::B3072 => TEST_KEY_3072,
        }
    }
}

/// How the bench's app ids begin. Each run makes its own app
/// (`bench` + the wall clock in milliseconds), so runs against a shared store
/// (MariaDB, Redis) never meet an app of an earlier run whose secret is lost.
pub const APP_PREFIX: &str = "bench";

/// Settings the bench needs that differ from a production default: no
/// per-connection request cap (the bench drives one connection far harder
/// than a phone), no handshake or connection cap per source address (every
/// bench client comes from 127.0.0.1), heartbeats long
/// enough for idle connections that never ping. Each is applied only when
/// the environment does not already set it.
const BENCH_DEFAULTS: &[(&str, &str)] = &[
    ("BUBBLE_GATE_TCP", "127.0.0.1:0"),
    ("BUBBLE_GATE_WS", ""),
    ("BUBBLE_HTTP_ADDR", "127.0.0.1:0"),
    ("BUBBLE_GATE_REQUESTS_PER_SECOND", "1000000"),
    ("BUBBLE_GATE_REQUEST_BURST", "1000000"),
    ("BUBBLE_GATE_HANDSHAKES_PER_SECOND_PER_IP", "1000000"),
    ("BUBBLE_GATE_HEARTBEAT_TIMEOUT_MS", "3600000"),
    ("BUBBLE_GATE_HANDSHAKE_TIMEOUT_MS", "60000"),
    ("BUBBLE_GATE_MAX_CONNECTIONS", "400000"),
    ("BUBBLE_GATE_MAX_CONNECTIONS_PER_ADDRESS", "0"),
    ("BUBBLE_GATE_MAX_UNAUTHENTICATED", "400000"),
    ("BUBBLE_GATE_PUSH_QUEUE", "4096"),
    ("BUBBLE_LOG", "warn"),
];

/// How the server runs.
pub enum Mode {
    /// The `bubble-server` binary at this path.
    Binary(PathBuf),
    /// `bubble_server::start` on its own runtime inside the bench (CPU and
    /// memory figures then include the bench itself).
    InProcess,
}

enum Handle {
    Child(Child),
    InProcess {
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        thread: Option<std::thread::JoinHandle<()>>,
    },
}

/// A running server.
pub struct Server {
    handle: Handle,
    /// The process to measure.
    pub pid: u32,
    /// Whether `pid` is the bench itself.
    pub in_process: bool,
    /// TCP gate.
    pub tcp: SocketAddr,
    /// WebSocket gate, when the settings enable it (the soak does).
    pub ws: Option<SocketAddr>,
    /// HTTP base URL.
    pub http: String,
    admin_secret: String,
    pin: PinnedServerKey,
    /// The test key asked for (what `pin` is unless the data dir had a key).
    rsa_bits: RsaBits,
    /// This run's app: every bench user belongs to it.
    app: String,
    /// The app's token secret: the bench signs its users' tokens itself,
    /// as a product's backend would.
    secret: String,
    /// What the server reported about its backends.
    pub backends: String,
    _dir: Option<tempfile::TempDir>,
    /// The cluster's other nodes (`--nodes`), measured with this one.
    peers: Vec<Peer>,
}

/// Another node of a cluster the bench started: same backends (from the
/// environment), same admin secret, its own data directory and node id.
struct Peer {
    child: Child,
    http: String,
    _dir: tempfile::TempDir,
}

fn env_value(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

/// The bench defaults, then a scenario's own (`scenario` wins over the
/// bench's), then the environment (which wins over both).
fn settings(
    data_dir: &std::path::Path,
    admin_secret: &str,
    scenario: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = BENCH_DEFAULTS
        .iter()
        .filter(|(k, _)| !scenario.iter().any(|(s, _)| s == k))
        .chain(scenario)
        .filter(|(k, _)| env_value(k).is_none())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    out.push(("BUBBLE_DATA_DIR".into(), data_dir.display().to_string()));
    out.push(("BUBBLE_HTTP_ADMIN_SECRET".into(), admin_secret.into()));
    out
}

/// A new temporary data directory, removed when dropped.
fn fresh_dir() -> Result<tempfile::TempDir, String> {
    tempfile::Builder::new()
        .prefix("bubble-bench-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))
}

/// Settings as the `(key, value)` pairs [`settings`] takes.
fn borrowed(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn install_key(dir: &std::path::Path, pem: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("server_key.pem");
    if !path.exists() {
        std::fs::write(&path, pem)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

impl Server {
    /// Starts a server on a fresh data directory (or `data_dir`) with the
    /// test key of `rsa_bits` (a `data_dir` that holds a key keeps it) and
    /// the scenario's own settings on top of the bench's.
    pub async fn start(
        mode: Mode,
        data_dir: Option<PathBuf>,
        rsa_bits: RsaBits,
        scenario_settings: &[(&str, &str)],
    ) -> Result<Server, String> {
        let (dir, tmp) = match data_dir {
            Some(d) => {
                std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
                (d, None)
            }
            None => {
                let t = fresh_dir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        install_key(&dir, rsa_bits.test_key()).map_err(|e| format!("server key: {e}"))?;
        let admin_secret = token::generate_secret();
        let env = settings(&dir, &admin_secret, scenario_settings);
        let (handle, pid, Listening { tcp, ws, http }, backends, in_process) = match mode {
            Mode::Binary(path) => {
                let (child, addrs, backends) = spawn(&path, &env)?;
                let pid = child.id();
                (Handle::Child(child), pid, addrs, backends, false)
            }
            Mode::InProcess => {
                let (handle, addrs, backends) = in_process(env)?;
                (handle, std::process::id(), addrs, backends, true)
            }
        };
        let key = bubble_proto::secure::ServerKey::from_pkcs8_pem(rsa_bits.test_key())
            .map_err(|e| format!("test key: {e}"))?;
        let mut server = Server {
            handle,
            pid,
            in_process,
            tcp,
            ws,
            http,
            admin_secret,
            pin: key.pin(),
            rsa_bits,
            app: format!(
                "{APP_PREFIX}{}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis()
            ),
            secret: token::generate_secret(),
            backends,
            _dir: tmp,
            peers: Vec::new(),
        };
        server.check_key().await?;
        server.create_app().await?;
        Ok(server)
    }

    /// Starts `nodes` nodes of one cluster: this server and `nodes - 1`
    /// peers, each a `bubble-server` on its own data directory and node id,
    /// with a cluster port, on the backends of the environment (which must
    /// be shared ones: MySQL, Redis, etcd; see docs/benchmarks.md).
    pub async fn start_cluster(
        path: PathBuf,
        nodes: usize,
        rsa_bits: RsaBits,
        scenario_settings: &[(&str, &str)],
    ) -> Result<Server, String> {
        if env_value("BUBBLE_DISCOVERY_KIND").as_deref() != Some("etcd") {
            return Err("--nodes needs shared backends: set BUBBLE_STORE_KIND=mysql, BUBBLE_CACHE_KIND=redis, BUBBLE_PRESENCE_KIND=redis and BUBBLE_DISCOVERY_KIND=etcd (see docs/benchmarks.md, \"A cluster\")".into());
        }
        let tag = crate::stats::now_ns() % 1_000_000_000;
        // The scenario's settings, and node `i`'s id and cluster port.
        let node = |i: usize| {
            let mut own = scenario_settings.to_vec();
            let id = format!("bench{tag}-n{i}");
            own.extend([
                ("BUBBLE_NODE_ID", id.as_str()),
                ("BUBBLE_CLUSTER_RPC", "127.0.0.1:0"),
            ]);
            own.into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect::<Vec<(String, String)>>()
        };
        let first = node(0);
        let mut server = Server::start(
            Mode::Binary(path.clone()),
            None,
            rsa_bits,
            &borrowed(&first),
        )
        .await?;
        for i in 1..nodes {
            let dir = fresh_dir()?;
            install_key(dir.path(), rsa_bits.test_key()).map_err(|e| format!("server key: {e}"))?;
            let env = settings(dir.path(), &server.admin_secret, &borrowed(&node(i)));
            let (child, Listening { http, .. }, _) = spawn(&path, &env)?;
            server.peers.push(Peer {
                child,
                http,
                _dir: dir,
            });
        }
        Ok(server)
    }

    /// The selectors clients ask for a gate: every node's, when the bench
    /// started a cluster; none for one node (clients go to its gate).
    pub fn selectors(&self) -> Vec<String> {
        if self.peers.is_empty() {
            return Vec::new();
        }
        std::iter::once(self.http.clone())
            .chain(self.peers.iter().map(|p| p.http.clone()))
            .collect()
    }

    /// The pids measured: this server's and its peers'.
    pub fn pids(&self) -> Vec<u32> {
        std::iter::once(self.pid)
            .chain(self.peers.iter().map(|p| p.child.id()))
            .collect()
    }

    /// Makes sure the server uses the key the bench pins (a data directory
    /// given with `--data-dir` may hold another one).
    async fn check_key(&mut self) -> Result<(), String> {
        let body = self.call("GET", "/v1/server-key", None).await?;
        let fp = body["fingerprint_sha256"].as_str().unwrap_or_default();
        let pem = body["pem"].as_str().unwrap_or_default();
        if fp != self.pin_fingerprint() {
            eprintln!(
                "bubble-bench: the data directory holds its own server key (sha256 {fp}), not the bench's RSA-{} test key: pinning that key, so --rsa-bits has no effect",
                self.rsa_bits.bits()
            );
            self.pin =
                PinnedServerKey::from_pem(pem, fp).map_err(|e| format!("server key: {e}"))?;
        }
        Ok(())
    }

    fn pin_fingerprint(&self) -> String {
        self.pin
            .fingerprint()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    async fn create_app(&self) -> Result<(), String> {
        let body = serde_json::json!({"id": self.app, "secret": self.secret});
        match self.call("POST", "/v1/admin/apps", Some(body)).await {
            Ok(_) => {}
            Err(e) if e.contains("409") => {
                return Err(format!(
                    "app {:?} exists already in this store (its secret is unknown to the bench): use a fresh --data-dir or database",
                    self.app
                ));
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Calls the admin API; the JSON answer of a 2xx, else an error with
    /// the status.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, String> {
        let body = body.map(|b| b.to_string());
        let (status, answer) = http_request(
            &self.http,
            method,
            path,
            Some(&self.admin_secret),
            body.as_deref(),
        )
        .await
        .map_err(|e| format!("{method} {path}: {e}"))?;
        let value = serde_json::from_slice(&answer).unwrap_or(serde_json::Value::Null);
        if !(200..300).contains(&status) {
            return Err(format!("{method} {path} -> {status}: {value}"));
        }
        Ok(value)
    }

    /// A token for `user` (signed here with the app secret: no round trip).
    pub fn token(&self, user: &str) -> String {
        token::issue(
            self.secret.as_bytes(),
            &AppId::new(&self.app),
            &UserId::new(user),
            Duration::from_secs(24 * 3600),
            &[],
            bubble_core::now_millis(),
        )
        .expect("bench user ids are valid")
    }

    /// Where clients connect.
    pub fn target(&self) -> Target {
        Target {
            addr: self.tcp,
            pin: self.pin.clone(),
            app: self.app.clone(),
            recv_buffer: None,
            selectors: self.selectors(),
        }
    }

    /// Creates a group owned by `members[0]`.
    pub async fn create_group(
        &self,
        id: &str,
        members: &[String],
        super_group: bool,
    ) -> Result<(), String> {
        let body = serde_json::json!({
            "id": id,
            "owner": members[0],
            "members": members[1..],
            "super_group": super_group,
        });
        self.call(
            "POST",
            &format!("/v1/admin/apps/{}/groups", self.app),
            Some(body),
        )
        .await
        .map(|_| ())
    }

    /// CPU seconds and resident memory of the server process now (of all
    /// its nodes together, for a cluster).
    pub fn usage(&self) -> Usage {
        self.pids()
            .into_iter()
            .map(Usage::of)
            .fold(Usage::default(), |sum, u| Usage {
                cpu_secs: sum.cpu_secs + u.cpu_secs,
                rss: sum.rss + u.rss,
            })
    }

    /// Stops the server (SIGTERM and wait for the child; cancel in process),
    /// and its peers.
    pub fn stop(mut self) {
        for peer in &mut self.peers {
            stop_child(&mut peer.child);
        }
        match &mut self.handle {
            Handle::Child(child) => stop_child(child),
            Handle::InProcess { stop, thread } => {
                if let Some(s) = stop.take() {
                    let _ = s.send(());
                }
                if let Some(t) = thread.take() {
                    let _ = t.join();
                }
            }
        }
    }
}

/// SIGTERM, and SIGKILL if it has not exited within 15 s.
fn stop_child(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    for _ in 0..300 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Server {
    fn drop(&mut self) {
        for peer in &mut self.peers {
            if let Ok(None) = peer.child.try_wait() {
                let _ = peer.child.kill();
                let _ = peer.child.wait();
            }
        }
        if let Handle::Child(child) = &mut self.handle
            && let Ok(None) = child.try_wait()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Where a started server listens.
struct Listening {
    tcp: SocketAddr,
    ws: Option<SocketAddr>,
    http: String,
}

fn spawn(path: &PathBuf, env: &[(String, String)]) -> Result<(Child, Listening, String), String> {
    let mut cmd = Command::new(path);
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", path.display()))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let (mut tcp, mut ws, mut http, mut backends) = (None, None, String::new(), String::new());
    for line in lines.by_ref() {
        let line = line.map_err(|e| format!("server banner: {e}"))?;
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["tcp", "gate", addr] => tcp = addr.parse().ok(),
            ["websocket", "gate", url] => {
                ws = url
                    .trim_start_matches("ws://")
                    .trim_end_matches('/')
                    .parse()
                    .ok();
            }
            ["http", url, ..] => http = url.to_string(),
            ["data", _, rest @ ..] => backends = rest.join(" "),
            ["server", "key", ..] => break,
            _ => {}
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    match tcp {
        Some(tcp) if !http.is_empty() => Ok((child, Listening { tcp, ws, http }, backends)),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!(
                "{} did not print its TCP gate and HTTP address (see its stderr above)",
                path.display()
            ))
        }
    }
}

fn in_process(env: Vec<(String, String)>) -> Result<(Handle, Listening, String), String> {
    let config =
        bubble_server::Config::from_env(std::env::vars().chain(env)).map_err(|e| e.to_string())?;
    config.validate().map_err(|e| e.to_string())?;
    let backends = format!(
        "(store {}, search {})",
        config.store.kind.as_str(),
        config.search.kind.as_str()
    );
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("server")
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            match bubble_server::start(config).await {
                Ok(server) => {
                    let _ = ready_tx.send(Ok((server.tcp_addr, server.ws_addr, server.http_addr)));
                    let _ = stop_rx.await;
                    let _ = server.shutdown(Duration::from_secs(5)).await;
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                }
            }
        });
    });
    let (tcp, ws, http) = ready_rx
        .recv()
        .map_err(|_| "the in-process server thread died".to_string())??;
    let tcp = tcp.ok_or("the in-process server has no TCP gate")?;
    let http = http.ok_or("the in-process server has no HTTP listener")?;
    Ok((
        Handle::InProcess {
            stop: Some(stop_tx),
            thread: Some(thread),
        },
        Listening {
            tcp,
            ws,
            http: format!("http://{http}"),
        },
        backends,
    ))
}

/// CPU time and memory of a process, from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// User + system CPU seconds since the process started.
    pub cpu_secs: f64,
    /// Resident set size in bytes.
    pub rss: u64,
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

impl Usage {
    /// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`; zeros if gone.
    pub fn of(pid: u32) -> Usage {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        Usage {
            cpu_secs: cpu_ticks(&stat).unwrap_or(0) as f64 / clock_ticks(),
            rss: vm_rss_kib(&status).unwrap_or(0) * 1024,
        }
    }
}

/// User + system CPU time in clock ticks, from the text of `/proc/<pid>/stat`
/// (its fields 14 and 15, counted after the command name, which may hold
/// spaces and parentheses of its own).
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident memory in KiB, from the `VmRSS:` line of `/proc/<pid>/status`.
pub fn vm_rss_kib(status: &str) -> Option<u64> {
    status_kib(status, "VmRSS:")
}

/// The KiB of one line of `/proc/<pid>/status`: `VmRSS:`, or its parts
/// `RssAnon:` (heap and stacks: what a leak grows) and `RssFile:` (mapped
/// files, e.g. SQLite's and tantivy's, which the kernel may take back).
pub fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Descriptors the process holds open (entries of `/proc/<pid>/fd`); None
/// when the process is gone or not ours to look at.
pub fn open_fds(pid: u32) -> Option<u64> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(dir.count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real line of `/proc/<pid>/stat`, for a command whose name holds a
    /// space and a parenthesis.
    const STAT: &str = "4242 (bubble (srv) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                        731 129 0 0 20 0 9 0 5000 123456789 2345 18446744073709551615";

    #[test]
    fn cpu_time_is_utime_plus_stime_counted_after_the_command_name() {
        assert_eq!(cpu_ticks(STAT), Some(731 + 129));
        assert_eq!(cpu_ticks(""), None, "a process that is gone");
        assert_eq!(cpu_ticks("1 (x) S 1 2"), None, "a line cut short");
    }

    #[test]
    fn resident_memory_is_the_vm_rss_line_in_kib() {
        let status =
            "Name:\tbubble-server\nVmPeak:\t  900000 kB\nVmRSS:\t   51234 kB\nThreads:\t9\n";
        assert_eq!(vm_rss_kib(status), Some(51_234));
        assert_eq!(vm_rss_kib("Name:\tzombie\n"), None, "a zombie has no VmRSS");
    }

    #[test]
    fn open_descriptors_are_counted_for_a_live_process_only() {
        let mine = open_fds(std::process::id()).unwrap();
        assert!(mine >= 3, "stdin, stdout, stderr at least: {mine}");
        assert_eq!(open_fds(u32::MAX), None);
    }

    #[test]
    fn a_scenario_setting_replaces_the_bench_default() {
        let dir = std::path::Path::new("/nonexistent");
        let env = settings(dir, "s", &[("BUBBLE_GATE_HEARTBEAT_TIMEOUT_MS", "90000")]);
        let values: Vec<&str> = env
            .iter()
            .filter(|(k, _)| k == "BUBBLE_GATE_HEARTBEAT_TIMEOUT_MS")
            .map(|(_, v)| v.as_str())
            .collect();
        if env_value("BUBBLE_GATE_HEARTBEAT_TIMEOUT_MS").is_none() {
            assert_eq!(values, ["90000"]);
        }
    }

    #[test]
    fn each_rsa_bits_option_installs_a_key_of_that_size() {
        for bits in [RsaBits::B2048, RsaBits::B3072] {
            let key = bubble_proto::secure::ServerKey::from_pkcs8_pem(bits.test_key()).unwrap();
            assert_eq!(key.modulus_bytes() * 8, bits.bits() as usize);
        }
    }

    #[test]
    fn rsa_bits_defaults_to_the_servers_3072_and_refuses_other_sizes() {
        assert_eq!(RsaBits::default(), RsaBits::B3072);
        assert_eq!(RsaBits::parse("2048"), Ok(RsaBits::B2048));
        assert!(RsaBits::parse("4096").is_err());
    }

    #[test]
    fn bench_tokens_fit_the_rsa_2048_block() {
        // The longest bench user ids are a letter or two, six digits, 'x'
        // and a counter: 24 bytes leaves a wide margin.
        let token = token::issue(
            token::generate_secret().as_bytes(),
            &AppId::new(APP_PREFIX),
            &UserId::new("u".repeat(24)),
            Duration::from_secs(86_400),
            &[],
            bubble_core::now_millis(),
        )
        .unwrap();
        let key = bubble_proto::secure::ServerKey::from_pkcs8_pem(TEST_KEY_2048).unwrap();
        let capacity = bubble_proto::secure::keys::token_capacity(key.modulus_bytes());
        assert!(token.len() <= capacity, "{} > {capacity}", token.len());
    }
}
