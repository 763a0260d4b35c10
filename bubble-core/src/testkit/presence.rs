//! Conformance checks for [`Presence`].

use std::sync::Arc;
use std::time::Duration;

use super::checks;
use crate::ports::{Presence, Route};
use crate::types::*;

/// The TTL the expiry checks use.
const SHORT: Duration = Duration::from_millis(800);

/// Runs every presence check against `presence`.
pub async fn presence(presence: Arc<dyn Presence>) {
    super::run_checks("Presence", presence, CHECKS).await;
}

const CHECKS: &[super::Check<dyn Presence>] = checks![dyn Presence;
    a_registered_device_has_a_route,
    every_device_of_a_user_is_online_at_once,
    re_registering_a_device_replaces_its_route,
    unregister_removes_only_the_same_session,
    routes_expire_without_heartbeat,
    heartbeats_keep_a_route_alive,
    routes_of_looks_up_many_users,
    presence_is_isolated_between_apps,
    a_route_keeps_whether_its_app_is_in_the_background,
];

const LONG: Duration = Duration::from_secs(60);

fn route(user: &str, device: &str, node: &str, session: u64) -> Route {
    Route {
        user: UserId::new(user),
        device: DeviceId::new(device),
        platform: if device.starts_with("phone") {
            "ios"
        } else {
            "web"
        }
        .into(),
        node: NodeId::new(node),
        session,
        since: 1_700_000_000_000 + session as i64,
        background: false,
    }
}

fn sorted(mut r: Vec<Route>) -> Vec<Route> {
    r.sort_by_key(|r| (r.user.clone(), r.device.clone()));
    r
}

async fn a_registered_device_has_a_route(p: Arc<dyn Presence>, app: AppId) {
    let r = route("ann", "phone", "n1", 1);
    p.register(&app, &r, LONG).await.unwrap();
    assert_eq!(p.routes(&app, &r.user).await.unwrap(), vec![r]);
    assert!(
        p.routes(&app, &UserId::new("bob"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn every_device_of_a_user_is_online_at_once(p: Arc<dyn Presence>, app: AppId) {
    let a = route("ann", "phone", "n1", 1);
    let b = route("ann", "web", "n2", 2);
    p.register(&app, &a, LONG).await.unwrap();
    p.register(&app, &b, LONG).await.unwrap();
    assert_eq!(sorted(p.routes(&app, &a.user).await.unwrap()), vec![a, b]);
}

async fn re_registering_a_device_replaces_its_route(p: Arc<dyn Presence>, app: AppId) {
    p.register(&app, &route("ann", "phone", "n1", 1), LONG)
        .await
        .unwrap();
    let moved = route("ann", "phone", "n2", 7);
    p.register(&app, &moved, LONG).await.unwrap();
    assert_eq!(p.routes(&app, &moved.user).await.unwrap(), vec![moved]);
}

async fn unregister_removes_only_the_same_session(p: Arc<dyn Presence>, app: AppId) {
    let newer = route("ann", "phone", "n2", 9);
    p.register(&app, &newer, LONG).await.unwrap();
    // The old connection closing late must not log out the new one.
    assert!(
        !p.unregister(&app, &newer.user, &newer.device, 1)
            .await
            .unwrap()
    );
    assert_eq!(p.routes(&app, &newer.user).await.unwrap().len(), 1);
    assert!(
        p.unregister(&app, &newer.user, &newer.device, 9)
            .await
            .unwrap()
    );
    assert!(p.routes(&app, &newer.user).await.unwrap().is_empty());
}

async fn routes_expire_without_heartbeat(p: Arc<dyn Presence>, app: AppId) {
    let ttl = SHORT;
    p.register(&app, &route("ann", "phone", "dead-node", 1), ttl)
        .await
        .unwrap();
    p.register(&app, &route("ann", "web", "live-node", 2), LONG)
        .await
        .unwrap();
    tokio::time::sleep(ttl * 2 + Duration::from_millis(200)).await;
    let left = p.routes(&app, &UserId::new("ann")).await.unwrap();
    assert_eq!(left.len(), 1, "the dead node's route vanished by itself");
    assert_eq!(left[0].node.as_str(), "live-node");
}

async fn heartbeats_keep_a_route_alive(p: Arc<dyn Presence>, app: AppId) {
    let ttl = SHORT;
    let r = route("ann", "phone", "n1", 1);
    for _ in 0..4 {
        p.register(&app, &r, ttl).await.unwrap();
        tokio::time::sleep(ttl / 2).await;
    }
    assert_eq!(p.routes(&app, &r.user).await.unwrap().len(), 1);
}

async fn routes_of_looks_up_many_users(p: Arc<dyn Presence>, app: AppId) {
    for (u, d, s) in [
        ("a", "phone", 1),
        ("b", "web", 2),
        ("b", "phone", 3),
        ("c", "web", 4),
    ] {
        p.register(&app, &route(u, d, "n1", s), LONG).await.unwrap();
    }
    let users = [UserId::new("a"), UserId::new("b"), UserId::new("zz")];
    let got = sorted(p.routes_of(&app, &users).await.unwrap());
    let names: Vec<(String, String)> = got
        .iter()
        .map(|r| (r.user.to_string(), r.device.to_string()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("a".into(), "phone".into()),
            ("b".into(), "phone".into()),
            ("b".into(), "web".into())
        ]
    );
}

async fn presence_is_isolated_between_apps(p: Arc<dyn Presence>, app: AppId) {
    let other = super::fresh_app();
    p.register(&app, &route("ann", "phone", "n1", 1), LONG)
        .await
        .unwrap();
    assert!(
        p.routes(&other, &UserId::new("ann"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_route_keeps_whether_its_app_is_in_the_background(p: Arc<dyn Presence>, app: AppId) {
    let foreground = route("ann", "web", "n1", 1);
    let background = Route {
        background: true,
        ..route("ann", "phone", "n1", 2)
    };
    p.register(&app, &foreground, LONG).await.unwrap();
    p.register(&app, &background, LONG).await.unwrap();
    assert_eq!(
        sorted(p.routes(&app, &foreground.user).await.unwrap()),
        vec![background.clone(), foreground]
    );
    let back = Route {
        background: false,
        ..background
    };
    p.register(&app, &back, LONG).await.unwrap();
    assert!(
        p.routes(&app, &back.user)
            .await
            .unwrap()
            .iter()
            .all(|r| !r.background),
        "registering the route again in the foreground clears the flag"
    );
}
