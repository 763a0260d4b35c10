//! Connecting, losing the connection and getting it back. Needs
//! `scripts/services/redis.sh`.

use std::time::Duration;

use bubble_core::AdapterConfig;
use bubble_core::ErrorKind;
use bubble_core::ports::{Cache, Presence, Route};
use bubble_core::{AppId, DeviceId, NodeId, SendReceipt, UserId};
use bubble_store_redis::RedisConfig;
use redis::aio::MultiplexedConnection;

mod common;

/// A Redis user only this test connects as, so killing its connections
/// touches nobody else's.
async fn own_user(raw: &mut MultiplexedConnection) -> (String, String) {
    let name = format!("bubble-test-{:016x}", rand::random::<u64>());
    let password = format!("pw-{:016x}", rand::random::<u64>());
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&name)
        .arg("on")
        .arg(format!(">{password}"))
        .arg("~*")
        .arg("&*")
        .arg("+@all")
        .query_async(raw)
        .await
        .unwrap();
    (name, password)
}

async fn drop_user(raw: &mut MultiplexedConnection, name: &str) {
    let _: i64 = redis::cmd("ACL")
        .arg("DELUSER")
        .arg(name)
        .query_async(raw)
        .await
        .unwrap();
}

fn with_credentials(url: &str, user: &str, password: &str) -> String {
    url.replacen("redis://", &format!("redis://{user}:{password}@"), 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_connection_reconnects_and_the_adapter_keeps_working() {
    let mut raw = common::raw().await;
    let (user, password) = own_user(&mut raw).await;
    let store = common::connect(
        RedisConfig::new(with_credentials(&common::url(), &user, &password))
            .with_key_prefix(common::fresh_prefix()),
    )
    .await;
    let app = AppId::new("shop");
    let ann = UserId::new("ann");
    let r = Route {
        user: ann.clone(),
        device: DeviceId::new("phone"),
        platform: "ios".into(),
        node: NodeId::new("n1"),
        session: 1,
        since: 0,
        background: false,
    };
    store
        .register(&app, &r, Duration::from_secs(60))
        .await
        .unwrap();

    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("USER")
        .arg(&user)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(killed >= 1, "the adapter's connection was killed");

    // A read after the kill is repeated once on the new connection.
    assert_eq!(store.routes(&app, &ann).await.unwrap(), vec![r.clone()]);
    let receipt = SendReceipt {
        server_msg_id: bubble_core::MsgId([1; 16]),
        version: 1,
        seq: 0,
        server_time: 0,
        duplicate: false,
        prev_version: 0,
    };
    assert!(
        store
            .dedup_put(&app, &ann, "m1", &receipt, Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(store.unregister(&app, &ann, &r.device, 1).await.unwrap());

    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        clients
            .lines()
            .any(|l| l.contains(&format!(" user={user} "))),
        "the adapter connected again"
    );
    drop_user(&mut raw, &user).await;
}

#[tokio::test]
async fn an_unreachable_redis_is_unavailable_and_says_how_to_start_it() {
    let err = RedisConfig::new("redis://127.0.0.1:1")
        .with_connect_timeout_ms(500)
        .connect()
        .await
        .expect_err("nothing listens on port 1");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
    assert!(err.message().contains("scripts/services/redis.sh"), "{err}");
}

#[tokio::test]
async fn wrong_credentials_fail_without_showing_the_password() {
    let err = RedisConfig::new(with_credentials(
        &common::url(),
        "nobody-like-this",
        "not-the-password",
    ))
    .connect()
    .await
    .expect_err("no such user");
    assert!(!err.is_retryable(), "{err}");
    assert!(
        !format!("{err} {err:?}").contains("not-the-password"),
        "{err}"
    );
}

#[tokio::test]
async fn a_bad_config_fails_before_connecting_and_names_the_field() {
    let config = RedisConfig::default().with_key_prefix("a}b");
    assert_eq!(config.validate().unwrap_err().field, "key_prefix");
    let err = config
        .connect()
        .await
        .expect_err("braces would break the hash tag");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("`key_prefix`"), "{err}");
}

/// A TCP proxy in front of Redis that can be cut and restored, standing in
/// for a network failure or a Redis restart.
struct Proxy {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(port: u16) -> Proxy {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = common::url()
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .to_owned();
        let task = tokio::spawn(async move {
            let mut links = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                links.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Proxy { port, task }
    }

    /// Closes the listener and every proxied connection.
    async fn cut(self) -> u16 {
        self.task.abort();
        let _ = self.task.await;
        self.port
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_redis_is_unavailable_and_the_store_recovers_when_it_returns() {
    let proxy = Proxy::start(0).await;
    let store = common::connect(
        RedisConfig::new(format!("redis://127.0.0.1:{}", proxy.port))
            .with_key_prefix(common::fresh_prefix())
            .with_connect_timeout_ms(300)
            .with_response_timeout_ms(500),
    )
    .await;
    let app = AppId::new("shop");
    let ann = UserId::new("ann");
    assert!(store.dedup_get(&app, &ann, "m1").await.unwrap().is_none());

    let port = proxy.cut().await;
    let err = store
        .dedup_get(&app, &ann, "m1")
        .await
        .expect_err("Redis is gone");
    assert!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{err}"
    );
    assert!(err.is_retryable());

    let proxy = Proxy::start(port).await;
    let mut back = false;
    for _ in 0..50 {
        if store.dedup_get(&app, &ann, "m1").await.is_ok() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "the store reconnected when Redis came back");
    proxy.cut().await;
}

/// Redis answers again but the adapter's old connection stays silent (a
/// hung Redis, or a network that dropped packets and healed: the old TCP
/// connection is dead until the kernel gives up on it, minutes later). The
/// connection manager reconnects only on errors, never on timeouts, so
/// without its own replacement every command timed out long after Redis
/// was back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_went_silent_is_replaced_once_redis_answers_again() {
    let upstream = common::url()
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    let proxy = bubble_core::testkit::proxy::Proxy::start(upstream).await;
    let store = common::connect(
        RedisConfig::new(format!("redis://{}", proxy.addr()))
            .with_key_prefix(common::fresh_prefix())
            .with_connect_timeout_ms(200)
            .with_response_timeout_ms(200),
    )
    .await;
    let (app, ann) = (AppId::new("shop"), UserId::new("ann"));
    assert!(store.routes(&app, &ann).await.unwrap().is_empty());

    proxy.blackhole();
    let err = store.routes(&app, &ann).await.expect_err("no answer");
    assert!(
        matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Unavailable),
        "{err}"
    );

    proxy.restore();
    let started = std::time::Instant::now();
    let mut back = false;
    while started.elapsed() < Duration::from_secs(10) {
        if store.routes(&app, &ann).await.is_ok() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(back, "still timing out 10 s after Redis answered again");
}
