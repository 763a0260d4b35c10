//! What a client sees while a backend is down, with the real server on
//! MariaDB + Redis, each behind a proxy this test turns into an outage
//! (the shared services themselves never stop). Runs with
//! `BUBBLE_E2E_BACKENDS=scale-out`; see docs/failure-modes.md.

use std::time::{Duration, Instant};

use super::support::*;
use super::to;
use bubble_client::{Client, Event};
use bubble_core::Content;
use bubble_core::testkit::proxy::Proxy;
use bubble_proto::pb;
use bubble_store_mysql::testing::TestDb;

/// A server on MariaDB and Redis, both reached through proxies; `None`
/// (the test skips) unless `BUBBLE_E2E_BACKENDS=scale-out`.
struct Outage {
    server: Server,
    db: Proxy,
    redis: Proxy,
    _db: TestDb,
}

async fn server_behind_proxies() -> Option<Outage> {
    server_behind_proxies_with(&[]).await
}

/// The same, with more of the server's settings.
async fn server_behind_proxies_with(extra: &[(&str, &str)]) -> Option<Outage> {
    if std::env::var("BUBBLE_E2E_BACKENDS").as_deref() != Ok("scale-out") {
        eprintln!(
            "SKIPPED: failure modes run with BUBBLE_E2E_BACKENDS=scale-out (MariaDB + Redis)"
        );
        return None;
    }
    let test_db = TestDb::create().await;
    let db = Proxy::start("127.0.0.1:3306").await;
    let redis = Proxy::start("127.0.0.1:6379").await;
    let prefix = format!("ff{:x}", rand_id());
    let redis_url = format!("redis://{}", redis.addr());
    let mut settings: Vec<(String, String)> = vec![
        ("BUBBLE_STORE_KIND".into(), "mysql".into()),
        (
            "BUBBLE_STORE_MYSQL_URL".into(),
            test_db.url().replace("127.0.0.1:3306", db.addr()),
        ),
        ("BUBBLE_CACHE_KIND".into(), "redis".into()),
        ("BUBBLE_CACHE_REDIS_URL".into(), redis_url.clone()),
        ("BUBBLE_CACHE_REDIS_KEY_PREFIX".into(), prefix.clone()),
        ("BUBBLE_PRESENCE_KIND".into(), "redis".into()),
        ("BUBBLE_PRESENCE_REDIS_URL".into(), redis_url),
        ("BUBBLE_PRESENCE_REDIS_KEY_PREFIX".into(), prefix),
        ("BUBBLE_SEARCH_KIND".into(), "off".into()),
        ("BUBBLE_ENGINE_PRESENCE_RETRY_MS".into(), "200".into()),
    ];
    settings.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let server = Server::start(settings);
    Some(Outage {
        server,
        db,
        redis,
        _db: test_db,
    })
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish() >> 20
}

/// A client that reports failures as they are instead of retrying them.
async fn client(server: &Server, user: &str) -> (Client, bubble_client::Events) {
    let mut config = server.config(user, "phone", false).await;
    config.send_retry_for = Duration::ZERO;
    let (client, mut events) = Client::connect(config).await.expect("connects");
    assert!(matches!(
        next_event(&mut events).await,
        Event::Connected { .. }
    ));
    (client, events)
}

async fn metrics(server: &Server) -> String {
    let body = bubble_client::transport::http_get(&server.http, "/metrics")
        .await
        .expect("metrics");
    String::from_utf8_lossy(&body).into_owned()
}

/// Waits until the metrics contain `line` (a scrape every 100 ms, 20 s at most).
async fn until_metric(server: &Server, line: &str) {
    let started = Instant::now();
    loop {
        let text = metrics(server).await;
        if text.contains(line) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no {line:?} in\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_database_cut_a_send_is_unavailable_at_once_and_the_connection_stays_usable() {
    let Some(o) = server_behind_proxies().await else {
        return;
    };
    let (alice, _a) = client(&o.server, "alice").await;
    let bob_config = o.server.config("bob", "phone", false).await;
    alice
        .send(to("bob"), Content::text("before"))
        .await
        .unwrap();

    o.db.refuse();
    let started = Instant::now();
    let err = alice
        .send_with_id(to("bob"), "during", 2, Content::text("during"))
        .await
        .expect_err("the database is gone");
    // Before: answered after the pool's 5 s acquire timeout (p50 5.0 s, p99
    // 10.8 s). Now within the 1 s deadline; the bound is loose on purpose.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.code(), Some(pb::ErrorCode::Unavailable), "{err}");
    assert!(err.is_retryable());
    // A few more and the breaker is open: calls no longer even try.
    for _ in 0..6 {
        let _ = alice
            .send_with_id(to("bob"), "during", 2, Content::text("during"))
            .await;
    }
    until_metric(&o.server, "bubble_breaker_state{backend=\"mysql\"} 1\n").await;
    let fast = alice
        .send_with_id(to("bob"), "during", 2, Content::text("during"))
        .await
        .expect_err("still gone");
    assert!(
        fast.to_string().contains("mysql is unavailable"),
        "the breaker answers: {fast}"
    );
    alice.ping().await.expect("the connection stays usable");

    o.db.restore();
    let mut stored = None;
    for _ in 0..100 {
        match alice
            .send_with_id(to("bob"), "during", 2, Content::text("during"))
            .await
        {
            Ok(ack) => {
                stored = Some(ack);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    stored.expect("accepted once the database is back (the probe closes the breaker)");
    until_metric(&o.server, "bubble_breaker_state{backend=\"mysql\"} 0\n").await;
    let (bob, _b) = Client::connect(bob_config).await.unwrap();
    let (entries, _, _) = bob.sync(0, 100).await.unwrap();
    assert_eq!(texts(&entries), ["before", "during"], "stored once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_reconnects_while_the_database_is_cut_resumes_with_its_ticket_once_it_is_back()
 {
    // The app's settings leave the cache at once, so a resumption must read
    // the database.
    let Some(o) = server_behind_proxies_with(&[("BUBBLE_ENGINE_APP_CACHE_TTL_MS", "50")]).await
    else {
        return;
    };
    let (proxy, cut) = super::cuttable_proxy(o.server.tcp.clone()).await;
    let mut config = o.server.config("bob", "phone", false).await;
    config.endpoint = bubble_client::Endpoint::Tcp(proxy);
    config.reconnect_min = Duration::from_millis(100);
    config.reconnect_max = Duration::from_millis(300);
    let (_bob, mut events) = Client::connect(config).await.expect("connects");
    assert_eq!(
        next_event(&mut events).await,
        Event::Connected { resumed: false }
    );

    o.db.refuse();
    tokio::time::sleep(Duration::from_millis(100)).await;
    cut.send_modify(|n| *n += 1);
    // Every attempt meanwhile is refused "retry later", before the ticket
    // is spent; the client keeps it and tries again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    o.db.restore();
    let started = Instant::now();
    loop {
        match next_event(&mut events).await {
            Event::Connected { resumed } => {
                assert!(
                    resumed,
                    "the device came back with a full handshake: its ticket was lost to the outage"
                );
                break;
            }
            Event::AuthFailed { reason } => panic!("refused for good: {reason}"),
            _ => assert!(
                started.elapsed() < Duration::from_secs(20),
                "never came back"
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_cut_logins_and_sends_work_and_routes_come_back_with_it() {
    let Some(o) = server_behind_proxies().await else {
        return;
    };
    let (alice, _a) = client(&o.server, "alice").await;
    let bob_config = o.server.config("bob", "phone", false).await;

    o.redis.refuse();
    // Before: every handshake failed, presence being needed to log in.
    let (_bob, mut bob_events) = Client::connect(bob_config).await.expect("bob logs in");
    assert!(matches!(
        next_event(&mut bob_events).await,
        Event::Connected { .. }
    ));
    let mut ack = None;
    for _ in 0..50 {
        // The first sends may meet Redis's own timeouts before the breaker opens.
        match alice
            .send(to("bob"), Content::text("while redis is down"))
            .await
        {
            Ok(a) => {
                ack = Some(a);
                break;
            }
            Err(e) => assert!(e.is_retryable(), "{e}"),
        }
    }
    ack.expect("a send succeeds without Redis");
    assert_eq!(
        texts(&entries(&mut bob_events, 1).await),
        ["while redis is down"],
        "pushed on this node without presence"
    );
    until_metric(&o.server, "bubble_degraded{port=\"presence\"} 1\n").await;

    o.redis.restore();
    until_metric(&o.server, "bubble_degraded{port=\"presence\"} 0\n").await;
    // bob's route was registered again without him doing anything.
    let found = alice.presence(&["bob"]).await.expect("presence answers");
    assert!(found.users[0].online, "{found:?}");
    alice
        .send(to("bob"), Content::text("after"))
        .await
        .expect("send after Redis is back");
    assert_eq!(texts(&entries(&mut bob_events, 1).await), ["after"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_waiting_on_a_silent_redis_are_all_acknowledged_soon_after_it_answers() {
    let Some(o) = server_behind_proxies().await else {
        return;
    };
    let mut config = o.server.config("alice", "phone", false).await;
    config.send_retry_for = Duration::from_secs(60);
    let (alice, _a) = Client::connect(config).await.unwrap();
    let (_bob, mut bob_events) = client(&o.server, "bob").await;

    o.redis.blackhole();
    let sends: Vec<_> = (0..80)
        .map(|i| {
            let alice = alice.clone();
            tokio::spawn(async move {
                alice
                    .send(to("bob"), Content::text(format!("m{i}")))
                    .await
                    .map(|_| Instant::now())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    o.redis.restore();
    let restored = Instant::now();
    for send in sends {
        send.await.unwrap().expect("acknowledged");
    }
    // Before: 80 sends were still waiting 20 s after Redis came back.
    assert!(
        restored.elapsed() < Duration::from_secs(10),
        "the last ack came {:?} after Redis answered again",
        restored.elapsed()
    );
    alice
        .send(to("bob"), Content::text("after"))
        .await
        .expect("a send after the outage");
    let mut got = Vec::new();
    while !got.iter().any(|t| t == "after") {
        got.extend(texts(&entries(&mut bob_events, 1).await));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cluster_with_redis_cut_sends_are_stored_and_found_by_sync_then_pushed_again() {
    if std::env::var("BUBBLE_E2E_BACKENDS").as_deref() != Ok("scale-out") {
        eprintln!("SKIPPED: the cluster runs with BUBBLE_E2E_BACKENDS=scale-out");
        return;
    }
    let db = TestDb::create().await;
    let redis = Proxy::start("127.0.0.1:6379").await;
    let unique = format!("fc{:x}", rand_id());
    let redis_url = format!("redis://{}", redis.addr());
    let nodes: Vec<Server> = (0..2)
        .map(|n| {
            Server::start(vec![
                ("BUBBLE_STORE_KIND".into(), "mysql".into()),
                ("BUBBLE_STORE_MYSQL_URL".into(), db.url().to_owned()),
                ("BUBBLE_CACHE_KIND".into(), "redis".into()),
                ("BUBBLE_CACHE_REDIS_URL".into(), redis_url.clone()),
                ("BUBBLE_CACHE_REDIS_KEY_PREFIX".into(), unique.clone()),
                ("BUBBLE_PRESENCE_KIND".into(), "redis".into()),
                ("BUBBLE_PRESENCE_REDIS_URL".into(), redis_url.clone()),
                ("BUBBLE_PRESENCE_REDIS_KEY_PREFIX".into(), unique.clone()),
                ("BUBBLE_DISCOVERY_KIND".into(), "etcd".into()),
                (
                    "BUBBLE_DISCOVERY_ETCD_ENDPOINTS".into(),
                    "http://127.0.0.1:2379".into(),
                ),
                ("BUBBLE_DISCOVERY_ETCD_PREFIX".into(), format!("/{unique}")),
                ("BUBBLE_SEARCH_KIND".into(), "off".into()),
                ("BUBBLE_CLUSTER_RPC".into(), "127.0.0.1:0".into()),
                ("BUBBLE_NODE_ID".into(), format!("{unique}-n{n}")),
                ("BUBBLE_ENGINE_PRESENCE_RETRY_MS".into(), "200".into()),
            ])
        })
        .collect();
    let (alice, _a) = client(&nodes[0], "alice").await;
    let (bob, mut bob_events) = client(&nodes[1], "bob").await;
    alice
        .send(to("bob"), Content::text("while redis lives"))
        .await
        .unwrap();
    assert_eq!(
        texts(&entries(&mut bob_events, 1).await),
        ["while redis lives"]
    );

    redis.refuse();
    let mut ack = None;
    for _ in 0..50 {
        match alice
            .send(to("bob"), Content::text("while redis is down"))
            .await
        {
            Ok(a) => {
                ack = Some(a);
                break;
            }
            Err(e) => assert!(e.is_retryable(), "{e}"),
        }
    }
    let ack = ack.expect("a send succeeds across the cluster without Redis");
    // No route to node two: bob finds it by sync.
    let (page, _, _) = bob.sync(0, 100).await.unwrap();
    assert!(
        page.iter().any(|e| e.server_msg_id == ack.server_msg_id),
        "stored for bob and found by sync"
    );
    until_metric(&nodes[0], "bubble_degraded{port=\"presence\"} 1\n").await;

    redis.restore();
    until_metric(&nodes[1], "bubble_degraded{port=\"presence\"} 0\n").await;
    // bob's route came back by itself: pushes cross nodes again.
    let mut pushed = Vec::new();
    for i in 0..50 {
        let text = format!("after {i}");
        alice.send(to("bob"), Content::text(&text)).await.unwrap();
        let got =
            tokio::time::timeout(Duration::from_millis(500), entries(&mut bob_events, 1)).await;
        if let Ok(got) = got {
            pushed = texts(&got);
            if pushed.iter().any(|t| t.starts_with("after")) {
                break;
            }
        }
    }
    assert!(
        pushed.iter().any(|t| t.starts_with("after")),
        "a push reaches bob on node two once Redis is back: {pushed:?}"
    );
}

/// Not a check: prints how long sends take to be answered with the
/// database refusing connections and then hanging (a blackhole), the
/// figure issue 11 measured at p50 5.0 s, p99 10.8 s.
/// `BUBBLE_E2E_BACKENDS=scale-out cargo test -p bubble-server --features
/// scale-out --test e2e -- --ignored --nocapture time_to_unavailable`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
async fn time_to_unavailable_with_the_database_cut() {
    for hang in [false, true] {
        let Some(o) = server_behind_proxies().await else {
            return;
        };
        let (alice, _a) = client(&o.server, "alice").await;
        alice.send(to("bob"), Content::text("warm")).await.unwrap();
        if hang {
            o.db.blackhole();
        } else {
            o.db.refuse();
        }
        let mut took = Vec::new();
        for i in 0..50u64 {
            let started = Instant::now();
            let answer = alice
                .send_with_id(to("bob"), &format!("m{i}"), i + 1, Content::text("x"))
                .await;
            took.push(started.elapsed());
            assert!(answer.is_err());
        }
        let first = took[0];
        took.sort();
        println!(
            "50 sends, database {}: first {:?}, p50 {:?}, p99 {:?}, max {:?}",
            if hang { "hanging" } else { "refusing" },
            first,
            took[25],
            took[49 * 99 / 100],
            took[49]
        );
    }
}
