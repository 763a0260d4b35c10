//! What Redis presence does beyond the conformance suite: routes vanish
//! through Redis' own TTL (nobody has to clean up after a dead node), the
//! per-user device set stays small, and big lookups work on one server and
//! on a cluster. Needs `scripts/services/redis.sh`.

use std::collections::BTreeSet;
use std::time::Duration;

use bubble_core::ports::{Presence, Route};
use bubble_core::{AppId, DeviceId, NodeId, UserId};
use redis::AsyncCommands;

mod common;

fn route(user: &str, device: &str, node: &str, session: u64) -> Route {
    Route {
        user: UserId::new(user),
        device: DeviceId::new(device),
        platform: "web".into(),
        node: NodeId::new(node),
        session,
        since: 1_700_000_000_000,
        background: false,
    }
}

#[tokio::test]
async fn a_route_key_expires_in_redis_without_anyone_cleaning_up() {
    let store = common::single().await;
    let prefix = store.config().key_prefix.clone();
    let app = AppId::new("shop");
    store
        .register(
            &app,
            &route("ann", "phone", "dead-node", 1),
            Duration::from_millis(300),
        )
        .await
        .unwrap();
    let key = format!("{{{prefix}:shop:ann}}:route:phone");
    let mut raw = common::raw().await;
    let ttl: i64 = raw.pttl(&key).await.unwrap();
    assert!(
        (1..=300).contains(&ttl),
        "the route carries a PX TTL: {ttl}"
    );
    // The node "dies": no heartbeat, no unregister, and nobody reads.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let exists: bool = raw.exists(&key).await.unwrap();
    assert!(!exists, "Redis removed the route key by itself");
    let devices: bool = raw
        .exists(format!("{{{prefix}:shop:ann}}:devices"))
        .await
        .unwrap();
    assert!(!devices, "the device set went with its last route");
    assert!(
        store
            .routes(&app, &UserId::new("ann"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_heartbeat_forgets_devices_whose_route_ran_out() {
    let store = common::single().await;
    let prefix = store.config().key_prefix.clone();
    let app = AppId::new("shop");
    let long = Duration::from_secs(60);
    store
        .register(&app, &route("ann", "phone", "n1", 1), long)
        .await
        .unwrap();
    for tab in 0..5 {
        store
            .register(
                &app,
                &route("ann", &format!("web-{tab}"), "n1", 10 + tab),
                Duration::from_millis(200),
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(350)).await;
    store
        .register(&app, &route("ann", "phone", "n1", 1), long)
        .await
        .unwrap();
    let mut raw = common::raw().await;
    let members: BTreeSet<String> = raw
        .smembers(format!("{{{prefix}:shop:ann}}:devices"))
        .await
        .unwrap();
    assert_eq!(members, BTreeSet::from(["phone".to_owned()]));
}

#[tokio::test]
async fn route_keys_carry_the_prefix_the_app_and_the_user() {
    let store = common::single().await;
    let prefix = store.config().key_prefix.clone();
    store
        .register(
            &AppId::new("shop"),
            &route("ann", "phone{1}", "n1", 1),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let mut raw = common::raw().await;
    let mut keys: Vec<String> = raw.keys(format!("{{{prefix}:*")).await.unwrap();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            format!("{{{prefix}:shop:ann}}:devices"),
            format!("{{{prefix}:shop:ann}}:route:phone%7B1%7D"),
        ]
    );
}

#[tokio::test]
async fn two_prefixes_see_different_routes() {
    let (a, b) = (common::single().await, common::single().await);
    let app = AppId::new("shop");
    a.register(
        &app,
        &route("ann", "phone", "n1", 1),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert!(
        b.routes(&app, &UserId::new("ann"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !b.unregister(&app, &UserId::new("ann"), &DeviceId::new("phone"), 1)
            .await
            .unwrap()
    );
    assert_eq!(a.routes(&app, &UserId::new("ann")).await.unwrap().len(), 1);
}

async fn lookup_many(store: &dyn Presence) {
    let app = AppId::new("shop");
    // More users than one script call takes on a single server, spread
    // over many slots on a cluster.
    let online: Vec<UserId> = (0..600).map(|i| UserId::new(format!("u{i}"))).collect();
    for (i, user) in online.iter().enumerate() {
        store
            .register(
                &app,
                &route(user.as_str(), "phone", "n1", i as u64),
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        if i % 3 == 0 {
            store
                .register(
                    &app,
                    &route(user.as_str(), "web", "n2", i as u64),
                    Duration::from_secs(60),
                )
                .await
                .unwrap();
        }
    }
    let mut asked = online.clone();
    asked.extend((0..100).map(|i| UserId::new(format!("offline{i}"))));
    let routes = store.routes_of(&app, &asked).await.unwrap();
    assert_eq!(routes.len(), 600 + 200);
    let users: BTreeSet<&str> = routes.iter().map(|r| r.user.as_str()).collect();
    assert_eq!(users.len(), 600);
    let r = routes
        .iter()
        .find(|r| r.user.as_str() == "u3" && r.device.as_str() == "web")
        .expect("u3's web route");
    assert_eq!((r.node.as_str(), r.session), ("n2", 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_of_looks_up_hundreds_of_users_on_one_server() {
    lookup_many(&common::single().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_of_looks_up_hundreds_of_users_on_a_cluster() {
    lookup_many(&common::cluster().await).await;
}

#[tokio::test]
async fn cluster_routes_expire_through_redis_ttl() {
    let store = common::cluster().await;
    let app = AppId::new("shop");
    store
        .register(
            &app,
            &route("ann", "phone", "dead-node", 1),
            Duration::from_millis(300),
        )
        .await
        .unwrap();
    store
        .register(&app, &route("ann", "web", "n1", 2), Duration::from_secs(60))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(450)).await;
    let left = store.routes(&app, &UserId::new("ann")).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].node.as_str(), "n1");
}
