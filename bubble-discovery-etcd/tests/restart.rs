//! Surviving an etcd restart: the test runs its own etcd member (on free
//! ports, with its own data dir) so it can kill and restart it without
//! disturbing other tests. Needs the `etcd` binary
//! (`bash scripts/services/etcd.sh` installs it).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bubble_core::AdapterConfig;
use bubble_core::ports::{Discovery, NodeEvent, NodeInfo};
use bubble_discovery_etcd::{EtcdConfig, EtcdDiscovery};

/// One etcd member owned by the test; killed and its data removed on drop.
struct Member {
    child: Option<Child>,
    data_dir: PathBuf,
    client_port: u16,
    peer_port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Member {
    fn new() -> Member {
        let data_dir = std::env::temp_dir().join(format!(
            "bubble-etcd-restart-{}-{}",
            std::process::id(),
            free_port()
        ));
        Member {
            child: None,
            data_dir,
            client_port: free_port(),
            peer_port: free_port(),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn start(&mut self) {
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new("etcd")
            .args(["--name", "restart-test", "--data-dir"])
            .arg(&self.data_dir)
            .args(["--listen-client-urls", &self.url()])
            .args(["--advertise-client-urls", &self.url()])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("restart-test={peer}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `etcd` ({e}); install it with `bash scripts/services/etcd.sh` \
                     (Debian's etcd-server)"
                )
            });
        self.child = Some(child);
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    async fn connect(&self) -> EtcdDiscovery {
        let started = Instant::now();
        loop {
            match EtcdConfig::new([self.url()])
                .with_connect_timeout_ms(500)
                .with_request_timeout_ms(2_000)
                .connect()
                .await
            {
                Ok(d) => return d,
                Err(e) if started.elapsed() > Duration::from_secs(20) => {
                    panic!("the test's own etcd never answered: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn node(id: &str) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        role: "gate".into(),
        tcp_addr: Some("127.0.0.1:7000".into()),
        ws_addr: None,
        rpc_addr: None,
        load: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_and_watches_survive_an_etcd_restart() {
    let mut member = Member::new();
    member.start();
    let d = member.connect().await;
    let mut rx = d.watch("gate").await.unwrap();
    let _n1 = d
        .register(&node("n1"), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap(),
        Some(NodeEvent::Up(node("n1")))
    );

    member.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    member.start();
    let after = member.connect().await;

    // Past several TTLs: only a keep-alive that reconnected holds n1.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let listed = after.list("gate").await.unwrap();
    assert_eq!(listed, vec![node("n1")], "n1 is still registered");

    // The watch reconnected too: a join after the restart is reported.
    let _n2 = after
        .register(&node("n2"), Duration::from_secs(2))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(NodeEvent::Up(n))) if n.id.as_str() == "n2" => break,
            Ok(Some(NodeEvent::Down(id))) if id.as_str() == "n1" => {
                panic!("n1 was reported gone although it stayed alive")
            }
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the watch closed"),
            Err(_) => panic!("the watch never reported n2 after the restart"),
        }
    }
}
