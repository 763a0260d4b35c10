//! Conformance checks for [`Cache`].

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::checks;
use super::fixtures::{direct_message, test_msg_id};
use crate::ports::{Cache, RecentPush};
use crate::types::*;

/// Runs every cache check against `cache`.
pub async fn cache(cache: Arc<dyn Cache>) {
    super::run_checks("Cache", cache, CHECKS).await;
}

const CHECKS: &[super::Check<dyn Cache>] = checks![dyn Cache;
    dedup_put_is_set_if_absent,
    concurrent_dedup_puts_store_exactly_one,
    dedup_entries_expire_after_their_ttl,
    recent_answers_from_a_contiguous_window,
    recent_refuses_what_the_window_evicted,
    an_out_of_order_push_restarts_the_window,
    many_pushes_at_once_write_each_window_as_one_push_would,
    cache_is_isolated_between_apps,
];

fn receipt(version: u64) -> SendReceipt {
    SendReceipt {
        server_msg_id: test_msg_id(),
        version,
        seq: 0,
        server_time: 1_700_000_000_000 + version as i64,
        duplicate: false,
        prev_version: 0,
    }
}

fn entry(owner: &str, version: u64) -> InboxEntry {
    let (_, mut e) = direct_message("peer", owner, &format!("v{version}"));
    e.version = version;
    e
}

async fn dedup_put_is_set_if_absent(c: Arc<dyn Cache>, app: AppId) {
    let u = UserId::new("alice");
    let first = receipt(1);
    assert!(
        c.dedup_put(&app, &u, "m1", &first, Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(
        !c.dedup_put(&app, &u, "m1", &receipt(2), Duration::from_secs(60))
            .await
            .unwrap()
    );
    let got = c
        .dedup_get(&app, &u, "m1")
        .await
        .unwrap()
        .expect("remembered");
    assert_eq!(
        got.server_msg_id, first.server_msg_id,
        "the first receipt wins"
    );
    assert_eq!(got.version, 1);
    assert!(got.duplicate, "a remembered receipt answers a retry");
    assert!(c.dedup_get(&app, &u, "m2").await.unwrap().is_none());
    assert!(
        c.dedup_get(&app, &UserId::new("bob"), "m1")
            .await
            .unwrap()
            .is_none()
    );
}

async fn concurrent_dedup_puts_store_exactly_one(c: Arc<dyn Cache>, app: AppId) {
    let mut handles = Vec::new();
    for i in 0..16 {
        let c = c.clone();
        let app = app.clone();
        handles.push(tokio::spawn(async move {
            c.dedup_put(
                &app,
                &UserId::new("racer"),
                "same",
                &receipt(i),
                Duration::from_secs(60),
            )
            .await
            .unwrap()
        }));
    }
    let mut stored = 0;
    for h in handles {
        if h.await.unwrap() {
            stored += 1;
        }
    }
    assert_eq!(stored, 1, "set-if-absent lets exactly one writer in");
}

async fn dedup_entries_expire_after_their_ttl(c: Arc<dyn Cache>, app: AppId) {
    let u = UserId::new("alice");
    assert!(
        c.dedup_put(&app, &u, "short", &receipt(1), Duration::from_millis(1000))
            .await
            .unwrap()
    );
    assert!(c.dedup_get(&app, &u, "short").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(
        c.dedup_get(&app, &u, "short").await.unwrap().is_none(),
        "expired"
    );
    assert!(
        c.dedup_put(&app, &u, "short", &receipt(2), Duration::from_secs(5))
            .await
            .unwrap()
    );
}

async fn recent_answers_from_a_contiguous_window(c: Arc<dyn Cache>, app: AppId) {
    let owner = UserId::new("bob");
    // Versions 3, 4, 6 (gaps are allowed), the owner's history starting after 2.
    let versions = [3u64, 4, 6];
    let mut prev = 2;
    for v in versions {
        c.push_recent(&app, prev, &entry("bob", v), 10)
            .await
            .unwrap();
        prev = v;
    }
    let page = c
        .recent(&app, &owner, 3, 10)
        .await
        .unwrap()
        .expect("the window covers after 3");
    assert_eq!(
        page.entries.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![4, 6]
    );
    assert!(!page.has_more);
    assert_eq!(
        page.entries[0].content.as_text(),
        Some("v4"),
        "entries come back whole"
    );
    assert_eq!(page.entries[0].owner.as_str(), "bob");
    let page = c
        .recent(&app, &owner, 2, 2)
        .await
        .unwrap()
        .expect("covers after 2");
    assert_eq!(page.entries.len(), 2);
    assert!(page.has_more);
    assert!(
        c.recent(&app, &owner, 1, 10).await.unwrap().is_none(),
        "before the window: ask the store"
    );
    assert!(
        c.recent(&app, &UserId::new("nobody"), 0, 10)
            .await
            .unwrap()
            .is_none()
    );
}

async fn recent_refuses_what_the_window_evicted(c: Arc<dyn Cache>, app: AppId) {
    let owner = UserId::new("bob");
    for v in 1..=10u64 {
        c.push_recent(&app, v - 1, &entry("bob", v), 4)
            .await
            .unwrap();
    }
    assert!(
        c.recent(&app, &owner, 2, 10).await.unwrap().is_none(),
        "3..6 were evicted"
    );
    let page = c
        .recent(&app, &owner, 6, 10)
        .await
        .unwrap()
        .expect("7..10 are held");
    assert_eq!(
        page.entries.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![7, 8, 9, 10]
    );
}

/// The versions `owner`'s window holds after `after`, if it holds them all.
async fn held(c: &Arc<dyn Cache>, app: &AppId, owner: &str, after: u64) -> Option<Vec<u64>> {
    c.recent(app, &UserId::new(owner), after, 100)
        .await
        .unwrap()
        .map(|page| page.entries.iter().map(|e| e.version).collect())
}

async fn many_pushes_at_once_write_each_window_as_one_push_would(c: Arc<dyn Cache>, app: AppId) {
    let push = |prev_version, entry| RecentPush {
        prev_version,
        entry,
    };
    // Three owners, two entries of one of them, in order.
    let first = [
        entry("ann", 1),
        entry("bo", 1),
        entry("ann", 2),
        entry("cy", 1),
    ];
    let pushes = [
        push(0, &first[0]),
        push(0, &first[1]),
        push(1, &first[2]),
        push(0, &first[3]),
    ];
    c.push_recent_many(&app, &pushes, 3).await.unwrap();
    assert_eq!(held(&c, &app, "ann", 0).await, Some(vec![1, 2]));
    assert_eq!(held(&c, &app, "bo", 0).await, Some(vec![1]));
    assert_eq!(held(&c, &app, "cy", 0).await, Some(vec![1]));
    let page = c
        .recent(&app, &UserId::new("ann"), 1, 10)
        .await
        .unwrap()
        .expect("held");
    assert_eq!(
        page.entries[0].content.as_text(),
        Some("v2"),
        "whole entries"
    );
    assert_eq!(page.entries[0].owner.as_str(), "ann");

    // Next: ann past the cap, bo in order, cy out of order (restarts).
    let second = [
        entry("ann", 3),
        entry("ann", 4),
        entry("bo", 2),
        entry("cy", 6),
    ];
    let pushes = [
        push(2, &second[0]),
        push(3, &second[1]),
        push(1, &second[2]),
        push(5, &second[3]),
    ];
    c.push_recent_many(&app, &pushes, 3).await.unwrap();
    assert_eq!(held(&c, &app, "ann", 1).await, Some(vec![2, 3, 4]));
    assert_eq!(held(&c, &app, "ann", 0).await, None, "1 was evicted");
    assert_eq!(held(&c, &app, "bo", 0).await, Some(vec![1, 2]));
    assert_eq!(held(&c, &app, "cy", 5).await, Some(vec![6]));
    assert_eq!(held(&c, &app, "cy", 1).await, None, "2..5 are missing");

    // More windows than one call of a remote cache carries.
    let many: Vec<InboxEntry> = (0..600).map(|i| entry(&format!("m{i:03}"), 7)).collect();
    let pushes: Vec<RecentPush<'_>> = many.iter().map(|e| push(6, e)).collect();
    c.push_recent_many(&app, &pushes, 3).await.unwrap();
    for i in [0, 255, 256, 599] {
        assert_eq!(
            held(&c, &app, &format!("m{i:03}"), 6).await,
            Some(vec![7]),
            "m{i:03}"
        );
    }
    c.push_recent_many(&app, &[], 3).await.unwrap();
}

async fn an_out_of_order_push_restarts_the_window(c: Arc<dyn Cache>, app: AppId) {
    let owner = UserId::new("bob");
    c.push_recent(&app, 0, &entry("bob", 1), 10).await.unwrap();
    c.push_recent(&app, 1, &entry("bob", 2), 10).await.unwrap();
    // Version 4 arrives first; its predecessor 3 is not in the window.
    c.push_recent(&app, 3, &entry("bob", 4), 10).await.unwrap();
    assert!(
        c.recent(&app, &owner, 2, 10).await.unwrap().is_none(),
        "the window must not claim it holds everything after 2 (3 is missing)"
    );
    let page = c
        .recent(&app, &owner, 3, 10)
        .await
        .unwrap()
        .expect("after 3 is covered");
    assert_eq!(
        page.entries.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![4]
    );
}

async fn cache_is_isolated_between_apps(c: Arc<dyn Cache>, app: AppId) {
    let other = super::fresh_app();
    let u = UserId::new("alice");
    c.dedup_put(&app, &u, "k", &receipt(1), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(c.dedup_get(&other, &u, "k").await.unwrap().is_none());
    c.push_recent(&app, 0, &entry("alice", 1), 10)
        .await
        .unwrap();
    assert!(c.recent(&other, &u, 0, 10).await.unwrap().is_none());
    let ids: HashSet<_> = [app.clone(), other].into_iter().collect();
    assert_eq!(ids.len(), 2);
}
