//! Runs the real `bubble-server` binary on free ports and drives it with
//! `bubble-client`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bubble_client::transport::http_request;
use bubble_client::{Client, ClientConfig, Endpoint, Event, Events};
use bubble_core::InboxEntry;

/// The test server key (3072-bit), so tests do not wait for key generation.
const TEST_KEY: &str = include_str!("../../../bubble-proto/tests/fixtures/server_key.pem");

/// A running server process.
pub struct Server {
    child: Option<Child>,
    /// Its data directory (kept across restarts).
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    /// TCP gate.
    pub tcp: String,
    /// WebSocket gate URL.
    pub ws: String,
    /// HTTP base URL.
    pub http: String,
    /// Admin bearer secret.
    pub admin_secret: String,
    /// Server key PEM and fingerprint.
    pub key_pem: String,
    /// The pin.
    pub fingerprint: String,
    env: Vec<(String, String)>,
}

/// Extra settings for a server.
pub fn memory_backends() -> Vec<(String, String)> {
    vec![
        ("BUBBLE_STORE_KIND".into(), "memory".into()),
        ("BUBBLE_SEARCH_KIND".into(), "memory".into()),
    ]
}

/// Starts a server on the backends `BUBBLE_E2E_BACKENDS` names: the
/// embedded default (SQLite + tantivy) unless it says `memory`, or
/// `scale-out` (a fresh MariaDB database, Redis, etcd, each test in its own
/// key prefix). Keep the returned guard alive as long as the server.
pub async fn start_server() -> (Server, Option<bubble_store_mysql::testing::TestDb>) {
    match std::env::var("BUBBLE_E2E_BACKENDS").as_deref() {
        Ok("memory") => (Server::start(memory_backends()), None),
        Ok("scale-out") => {
            let db = bubble_store_mysql::testing::TestDb::create().await;
            let unique = format!("e2e{:x}", rand_suffix());
            let mut env = scale_out_env(db.url(), &unique);
            env.push(("BUBBLE_NODE_ID".into(), unique));
            (Server::start(env), Some(db))
        }
        _ => (Server::start(Vec::new()), None),
    }
}

/// Two or more nodes of one cluster on MariaDB + Redis + etcd, pushing to
/// each other over gRPC. `None` unless `BUBBLE_E2E_BACKENDS=scale-out`.
pub async fn start_cluster(
    nodes: usize,
) -> Option<(Vec<Server>, bubble_store_mysql::testing::TestDb)> {
    start_cluster_with(nodes, false).await
}

/// [`start_cluster`], with each node on ports of its own that it keeps
/// across [`Server::restart`] when `fixed_ports` (a restarted node is found
/// where it was, as behind a load balancer).
pub async fn start_cluster_with(
    nodes: usize,
    fixed_ports: bool,
) -> Option<(Vec<Server>, bubble_store_mysql::testing::TestDb)> {
    start_cluster_on(nodes, fixed_ports, &[]).await
}

/// [`start_cluster_with`], with `settings` over the defaults (a test that
/// stops Redis brings its own, so the other tests keep theirs).
pub async fn start_cluster_on(
    nodes: usize,
    fixed_ports: bool,
    settings: &[(&str, &str)],
) -> Option<(Vec<Server>, bubble_store_mysql::testing::TestDb)> {
    if std::env::var("BUBBLE_E2E_BACKENDS").as_deref() != Ok("scale-out") {
        eprintln!(
            "SKIPPED: the cluster test runs with BUBBLE_E2E_BACKENDS=scale-out (MariaDB + Redis + etcd)"
        );
        return None;
    }
    let db = bubble_store_mysql::testing::TestDb::create().await;
    let unique = format!("cl{:x}", rand_suffix());
    let mut servers = Vec::new();
    for n in 0..nodes {
        let mut env = scale_out_env(db.url(), &unique);
        env.retain(|(key, _)| !settings.iter().any(|(k, _)| k == key));
        env.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env.extend([
            ("BUBBLE_SEARCH_KIND".into(), "off".into()),
            ("BUBBLE_CLUSTER_RPC".into(), "127.0.0.1:0".into()),
            ("BUBBLE_NODE_ID".into(), format!("{unique}-n{n}")),
            // One ticket secret for the cluster: devices resume anywhere.
            (
                "BUBBLE_CLUSTER_TICKET_SECRET".into(),
                format!("{unique}-ticket-secret-of-at-least-32-bytes"),
            ),
            // And one for the pushes between nodes.
            (
                "BUBBLE_CLUSTER_RPC_SECRET".into(),
                format!("{unique}-rpc-secret-of-at-least-32-bytes"),
            ),
        ]);
        if fixed_ports {
            for key in [
                "BUBBLE_GATE_TCP",
                "BUBBLE_GATE_WS",
                "BUBBLE_HTTP_ADDR",
                "BUBBLE_CLUSTER_RPC",
            ] {
                env.push((key.into(), free_port()));
            }
        }
        servers.push(Server::start(env));
    }
    Some((servers, db))
}

/// The Redis the tests share.
const REDIS: &str = "redis://127.0.0.1:6379";

/// MariaDB (`db_url`), Redis and etcd, with keys under `unique` so
/// concurrent tests never see each other.
fn scale_out_env(db_url: &str, unique: &str) -> Vec<(String, String)> {
    let redis = REDIS.to_string();
    vec![
        ("BUBBLE_STORE_KIND".into(), "mysql".into()),
        ("BUBBLE_STORE_MYSQL_URL".into(), db_url.to_owned()),
        ("BUBBLE_CACHE_KIND".into(), "redis".into()),
        ("BUBBLE_CACHE_REDIS_URL".into(), redis.clone()),
        ("BUBBLE_CACHE_REDIS_KEY_PREFIX".into(), unique.to_owned()),
        ("BUBBLE_PRESENCE_KIND".into(), "redis".into()),
        ("BUBBLE_PRESENCE_REDIS_URL".into(), redis),
        ("BUBBLE_PRESENCE_REDIS_KEY_PREFIX".into(), unique.to_owned()),
        ("BUBBLE_DISCOVERY_KIND".into(), "etcd".into()),
        (
            "BUBBLE_DISCOVERY_ETCD_ENDPOINTS".into(),
            "http://127.0.0.1:2379".into(),
        ),
        ("BUBBLE_DISCOVERY_ETCD_PREFIX".into(), format!("/{unique}")),
    ]
}

/// A loopback address no listener holds now.
fn free_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").to_string()
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish() >> 16
}

impl Server {
    /// Starts a server in a fresh data directory with `env` overrides.
    pub fn start(env: Vec<(String, String)>) -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data_dir = tmp.path().to_path_buf();
        install_key(&data_dir);
        let mut s = Server::spawn(data_dir, env);
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server in `data_dir` (which the caller keeps) with `env`.
    pub fn start_in(data_dir: &Path, env: Vec<(String, String)>) -> Server {
        install_key(data_dir);
        Server::spawn(data_dir.to_path_buf(), env)
    }

    fn spawn(data_dir: PathBuf, env: Vec<(String, String)>) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bubble-server"));
        cmd.env("BUBBLE_DATA_DIR", &data_dir)
            .env("BUBBLE_GATE_TCP", "127.0.0.1:0")
            .env("BUBBLE_GATE_WS", "127.0.0.1:0")
            .env("BUBBLE_HTTP_ADDR", "127.0.0.1:0")
            .env(
                "BUBBLE_LOG",
                std::env::var("BUBBLE_E2E_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start bubble-server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (mut tcp, mut ws, mut http) = (String::new(), String::new(), String::new());
        for line in lines.by_ref() {
            let line = line.expect("read banner");
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["tcp", "gate", addr] => tcp = addr.to_string(),
                ["websocket", "gate", url] => ws = url.to_string(),
                ["http", url, ..] => http = url.to_string(),
                ["server", "key", ..] => break,
                _ => {}
            }
        }
        assert!(
            !tcp.is_empty() && !http.is_empty(),
            "the server printed its addresses"
        );
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let admin_secret = std::fs::read_to_string(data_dir.join("admin_secret"))
            .expect("admin secret file")
            .trim()
            .to_owned();
        let key_pem = bubble_proto::secure::ServerKey::from_pkcs8_pem(TEST_KEY)
            .expect("test key")
            .public_pem();
        let fingerprint = bubble_proto::secure::ServerKey::from_pkcs8_pem(TEST_KEY)
            .expect("test key")
            .fingerprint_hex();
        Server {
            child: Some(child),
            data_dir,
            _tmp: None,
            tcp,
            ws,
            http,
            admin_secret,
            key_pem,
            fingerprint,
            env,
        }
    }

    /// Stops with SIGTERM and expects a clean exit; the data stays.
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        // The server's stop takes at most three grace periods of 10 s
        // (connections, tasks, stores), plus the indexer's last pass.
        let exit = wait_with_timeout(&mut child, Duration::from_secs(45));
        assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
    }

    /// Its node id, when the test set one.
    pub fn node_id(&self) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == "BUBBLE_NODE_ID")
            .map(|(_, v)| v.as_str())
    }

    /// Kills with SIGKILL (a crash); the data stays.
    pub fn crash(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("kill -9");
        let _ = child.wait();
    }

    /// Starts again on the same data directory (new ports).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or crash first");
        let fresh = Server::spawn(self.data_dir.clone(), self.env.clone());
        let tmp = self._tmp.take();
        *self = fresh;
        self._tmp = tmp;
    }

    /// Calls the admin API.
    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let body = body.map(|b| b.to_string());
        let (status, answer) = http_request(
            &self.http,
            method,
            path,
            Some(&self.admin_secret),
            body.as_deref(),
        )
        .await
        .expect("admin API reachable");
        let value: serde_json::Value =
            serde_json::from_slice(&answer).unwrap_or(serde_json::Value::Null);
        assert!(
            (200..300).contains(&status),
            "{method} {path} -> {status}: {value}"
        );
        value
    }

    /// A token for a user of the dev app "demo".
    pub async fn token(&self, user: &str) -> String {
        let v = self
            .admin(
                "POST",
                "/v1/admin/apps/demo/tokens",
                Some(serde_json::json!({"user": user})),
            )
            .await;
        v["token"].as_str().expect("token").to_owned()
    }

    /// A client config for `user` on `device`.
    pub async fn config(&self, user: &str, device: &str, ws: bool) -> ClientConfig {
        let endpoint = if ws {
            Endpoint::Ws(self.ws.clone())
        } else {
            Endpoint::Tcp(self.tcp.clone())
        };
        let mut c = ClientConfig::new(
            endpoint,
            self.key_pem.clone(),
            self.fingerprint.clone(),
            "demo",
            user,
            device,
            self.token(user).await,
        );
        c.request_timeout = Duration::from_secs(20);
        c
    }

    /// A connected client.
    pub async fn client(&self, user: &str, device: &str, ws: bool) -> (Client, Events) {
        let config = self.config(user, device, ws).await;
        let (client, mut events) = Client::connect(config).await.expect("client connects");
        match next_event(&mut events).await {
            Event::Connected { .. } => {}
            other => panic!("expected Connected, got {other:?}"),
        }
        (client, events)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn install_key(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("server_key.pem");
    std::fs::write(&path, TEST_KEY).expect("write key");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not exit in time"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The next event, or a panic after 20 s.
pub async fn next_event(events: &mut Events) -> Event {
    tokio::time::timeout(Duration::from_secs(20), events.recv())
        .await
        .expect("an event in time")
        .expect("events still open")
}

/// The next `n` inbox entries (skipping other events).
pub async fn entries(events: &mut Events, n: usize) -> Vec<InboxEntry> {
    let mut out = Vec::new();
    while out.len() < n {
        if let Event::Entry(e) = next_event(events).await {
            out.push(e);
        }
    }
    out
}

/// Texts of message entries.
pub fn texts(entries: &[InboxEntry]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|e| e.content.as_text().map(str::to_owned))
        .collect()
}

/// A directory on a file system of its own, `size` bytes large: a disk
/// that fills up. A tmpfs, so it needs root (CI runs as root); `None`
/// where mounting is not allowed.
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` bytes on a fresh directory.
    pub fn mount(size: u64) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(SmallDisk { dir })
    }

    /// The mounted directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Makes the disk `size` bytes large, keeping what is on it.
    pub fn grow(&self, size: u64) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .status()
            .expect("mount");
        assert!(status.success(), "remounting the tmpfs larger");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// What a raw connection read next.
#[derive(Debug)]
pub enum Received {
    /// A frame (opened, once the session is established).
    Frame(bubble_proto::Frame),
    /// A WebSocket close frame, with its status code.
    Close(Option<u16>),
    /// The connection ended without (another) close frame.
    End,
}

/// A connection that speaks the protocol by hand, as a client written from
/// the docs would: raw frames over TCP or WebSocket, and after
/// [`RawConn::handshake`] sealed records.
pub struct RawConn {
    io: RawIo,
    sealer: Option<bubble_proto::secure::RecordSealer>,
    opener: Option<bubble_proto::secure::RecordOpener>,
}

enum RawIo {
    Tcp {
        stream: tokio::net::TcpStream,
        buf: bytes::BytesMut,
        codec: bubble_proto::FrameCodec,
    },
    Ws(
        Box<
            tokio_tungstenite::WebSocketStream<
                tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
            >,
        >,
    ),
}

impl RawConn {
    /// A TCP connection to the gate, before any handshake.
    pub async fn tcp(server: &Server) -> RawConn {
        let stream = tokio::net::TcpStream::connect(&server.tcp).await.unwrap();
        RawConn::over_tcp(stream)
    }

    fn over_tcp(stream: tokio::net::TcpStream) -> RawConn {
        RawConn {
            io: RawIo::Tcp {
                stream,
                buf: bytes::BytesMut::new(),
                codec: bubble_proto::FrameCodec::new(1 << 20),
            },
            sealer: None,
            opener: None,
        }
    }

    /// A TCP session of `user` whose receive window is as small as the
    /// kernel allows: a client on a slow link, or one that stopped reading.
    pub async fn session_with_small_window(server: &Server, user: &str, device: &str) -> RawConn {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(server.tcp.parse().unwrap()).await.unwrap();
        let mut conn = RawConn::over_tcp(stream);
        conn.handshake(server, user, device).await;
        conn
    }

    /// A WebSocket connection to the gate, before any handshake.
    pub async fn ws(server: &Server) -> RawConn {
        let (socket, _) = tokio_tungstenite::connect_async(server.ws.as_str())
            .await
            .unwrap();
        RawConn {
            io: RawIo::Ws(Box::new(socket)),
            sealer: None,
            opener: None,
        }
    }

    /// A connection of `user` on `device` after a full handshake.
    pub async fn session(server: &Server, user: &str, device: &str, ws: bool) -> RawConn {
        let mut conn = if ws {
            RawConn::ws(server).await
        } else {
            RawConn::tcp(server).await
        };
        conn.handshake(server, user, device).await;
        conn
    }

    /// Runs a full handshake for `user` of app "demo".
    pub async fn handshake(&mut self, server: &Server, user: &str, device: &str) {
        use bubble_proto::secure::{
            ClientConfig, ClientHandshake, ClientMeta, OsRandom, PinnedServerKey,
        };
        let config = ClientConfig {
            server_key: PinnedServerKey::from_pem(&server.key_pem, &server.fingerprint).unwrap(),
            meta: ClientMeta {
                app_id: "demo".into(),
                device_id: device.into(),
                platform: "test".into(),
                client_version: "raw".into(),
            },
        };
        let token = server.token(user).await;
        let (handshake, hello) = ClientHandshake::start(&config, &token, &mut OsRandom).unwrap();
        self.send_frame(&bubble_proto::Frame::new(
            bubble_proto::Command::HandshakeHello,
            1,
            hello,
        ))
        .await;
        let answer = match self.recv().await {
            Received::Frame(f) => f,
            other => panic!("expected the handshake answer, got {other:?}"),
        };
        assert_eq!(answer.command, bubble_proto::Command::HandshakeAnswer);
        let (sealer, opener) = handshake.finish(&answer.body).unwrap().channel.split();
        self.sealer = Some(sealer);
        self.opener = Some(opener);
    }

    /// Writes `bytes` as they are (on WebSocket: one binary message).
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        use futures_util::SinkExt;
        use tokio::io::AsyncWriteExt;
        match &mut self.io {
            RawIo::Tcp { stream, .. } => stream.write_all(bytes).await.unwrap(),
            RawIo::Ws(socket) => socket
                .send(tokio_tungstenite::tungstenite::Message::Binary(
                    bytes.to_vec().into(),
                ))
                .await
                .unwrap(),
        }
    }

    /// Writes one frame as it is (no sealing).
    pub async fn send_frame(&mut self, frame: &bubble_proto::Frame) {
        self.send_bytes(&frame.to_bytes()).await;
    }

    /// Seals and writes a request.
    pub async fn request(&mut self, command: bubble_proto::Command, seq: u32, body: Vec<u8>) {
        let frame = bubble_proto::Frame::new(command, seq, body);
        let sealed = self
            .sealer
            .as_mut()
            .expect("handshake first")
            .seal(&frame)
            .unwrap();
        self.send_frame(&sealed).await;
    }

    /// The next frame (opened when the session is established), a close
    /// frame, or the end; a panic after 20 s.
    pub async fn recv(&mut self) -> Received {
        let read = tokio::time::timeout(Duration::from_secs(20), self.read_raw())
            .await
            .expect("something to read in time");
        match (read, self.opener.as_mut()) {
            (Received::Frame(frame), Some(opener)) => {
                Received::Frame(opener.open(&frame).expect("a record that opens"))
            }
            (other, _) => other,
        }
    }

    /// The next frame; a panic on anything else.
    pub async fn frame(&mut self) -> bubble_proto::Frame {
        match self.recv().await {
            Received::Frame(frame) => frame,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    async fn read_raw(&mut self) -> Received {
        use futures_util::StreamExt;
        use tokio::io::AsyncReadExt;
        use tokio_tungstenite::tungstenite::Message;
        use tokio_util::codec::Decoder;
        match &mut self.io {
            RawIo::Tcp { stream, buf, codec } => loop {
                if let Some(frame) = codec.decode(buf).unwrap() {
                    return Received::Frame(frame);
                }
                match stream.read_buf(buf).await {
                    Ok(0) | Err(_) => return Received::End,
                    Ok(_) => {}
                }
            },
            RawIo::Ws(socket) => loop {
                match socket.next().await {
                    Some(Ok(Message::Binary(bytes))) => {
                        return Received::Frame(
                            bubble_proto::Frame::parse_exact(&bytes, 1 << 20).unwrap(),
                        );
                    }
                    Some(Ok(Message::Close(frame))) => {
                        return Received::Close(frame.map(|f| u16::from(f.code)));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return Received::End,
                }
            },
        }
    }
}

/// The error an answer frame carries; a panic if it is not one.
pub fn error_of(frame: &bubble_proto::Frame) -> bubble_proto::pb::Error {
    assert_eq!(
        frame.command,
        bubble_proto::Command::Error,
        "expected an error frame, got {frame:?}"
    );
    frame.decode_body().unwrap()
}
