//! What the Redis cache does beyond the conformance suite: where its keys
//! live, how long they live, and that its Lua window behaves exactly like
//! `MemoryCache`, also under concurrent pushes. Needs
//! `scripts/services/redis.sh`.

use std::sync::Arc;
use std::time::Duration;

use bubble_core::memory::MemoryCache;
use bubble_core::ports::{Cache, RecentPush};
use bubble_core::testkit::{direct_message, test_msg_id};
use bubble_core::{AppId, InboxEntry, SendReceipt, UserId};
use bubble_store_redis::{RedisConfig, RedisStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::AsyncCommands;

mod common;

fn entry(owner: &str, version: u64) -> InboxEntry {
    let (_, mut e) = direct_message("peer", owner, &format!("v{version}"));
    e.version = version;
    e
}

fn receipt(version: u64) -> SendReceipt {
    SendReceipt {
        server_msg_id: test_msg_id(),
        version,
        seq: 0,
        server_time: 1_700_000_000_000,
        duplicate: false,
        prev_version: 0,
    }
}

fn versions(page: &bubble_core::InboxPage) -> Vec<u64> {
    page.entries.iter().map(|e| e.version).collect()
}

#[tokio::test]
async fn keys_carry_the_prefix_the_app_and_the_user() {
    let prefix = common::fresh_prefix();
    let store = common::connect(
        RedisConfig::new(common::url())
            .with_key_prefix(&prefix)
            .with_recent_ttl_secs(common::TEST_RECENT_TTL.as_secs()),
    )
    .await;
    let app = AppId::new("shop");
    let ann = UserId::new("ann");
    store
        .dedup_put(&app, &ann, "m1", &receipt(1), Duration::from_secs(60))
        .await
        .unwrap();
    store
        .push_recent(&app, 0, &entry("ann", 1), 10)
        .await
        .unwrap();

    let mut raw = common::raw().await;
    let mut keys: Vec<String> = raw.keys(format!("{{{prefix}:*")).await.unwrap();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            format!("{{{prefix}:shop:ann}}:dedup:m1"),
            format!("{{{prefix}:shop:ann}}:recent"),
        ]
    );
}

#[tokio::test]
async fn two_prefixes_share_nothing() {
    let (a, b) = (common::single().await, common::single().await);
    let app = AppId::new("shop");
    let ann = UserId::new("ann");
    assert!(
        a.dedup_put(&app, &ann, "m1", &receipt(1), Duration::from_secs(60))
            .await
            .unwrap()
    );
    a.push_recent(&app, 0, &entry("ann", 1), 10).await.unwrap();
    assert!(b.dedup_get(&app, &ann, "m1").await.unwrap().is_none());
    assert!(b.recent(&app, &ann, 0, 10).await.unwrap().is_none());
    assert!(
        b.dedup_put(&app, &ann, "m1", &receipt(2), Duration::from_secs(60))
            .await
            .unwrap(),
        "the other prefix has its own dedup window"
    );
}

#[tokio::test]
async fn dedup_and_windows_carry_a_redis_ttl() {
    let store = common::single().await;
    let prefix = store.config().key_prefix.clone();
    let app = AppId::new("shop");
    let ann = UserId::new("ann");
    store
        .dedup_put(&app, &ann, "m1", &receipt(1), Duration::from_millis(5_000))
        .await
        .unwrap();
    store
        .push_recent(&app, 0, &entry("ann", 1), 10)
        .await
        .unwrap();
    let mut raw = common::raw().await;
    let dedup_ttl: i64 = raw
        .pttl(format!("{{{prefix}:shop:ann}}:dedup:m1"))
        .await
        .unwrap();
    assert!((1..=5_000).contains(&dedup_ttl), "dedup PTTL {dedup_ttl}");
    let window_ttl: i64 = raw
        .pttl(format!("{{{prefix}:shop:ann}}:recent"))
        .await
        .unwrap();
    let max = common::TEST_RECENT_TTL.as_millis() as i64;
    assert!(
        (max - 60_000..=max).contains(&window_ttl),
        "an idle window expires after recent_ttl; PTTL {window_ttl}"
    );
}

#[tokio::test]
async fn a_window_redis_forgot_sends_readers_to_the_store() {
    let store = common::single().await;
    let prefix = store.config().key_prefix.clone();
    let app = AppId::new("shop");
    let ann = UserId::new("ann");
    store
        .push_recent(&app, 0, &entry("ann", 1), 10)
        .await
        .unwrap();
    let mut raw = common::raw().await;
    // As maxmemory eviction would.
    let _: i64 = raw
        .del(format!("{{{prefix}:shop:ann}}:recent"))
        .await
        .unwrap();
    assert!(store.recent(&app, &ann, 0, 10).await.unwrap().is_none());
}

#[tokio::test]
async fn versions_beyond_double_precision_keep_their_order() {
    // Lua numbers are doubles: 2^53 + 1 would round to 2^53.
    let store = common::single().await;
    let app = AppId::new("shop");
    let base = (1u64 << 53) - 2;
    for v in base + 1..=base + 5 {
        store
            .push_recent(&app, v - 1, &entry("ann", v), 10)
            .await
            .unwrap();
    }
    let page = store
        .recent(&app, &UserId::new("ann"), base + 2, 10)
        .await
        .unwrap()
        .expect("held");
    assert_eq!(versions(&page), vec![base + 3, base + 4, base + 5]);
    let top = u64::MAX - 1;
    store
        .push_recent(&app, top - 1, &entry("bob", top), 10)
        .await
        .unwrap();
    let page = store
        .recent(&app, &UserId::new("bob"), top - 1, 10)
        .await
        .unwrap()
        .expect("held");
    assert_eq!(versions(&page), vec![top]);
}

/// Applies the same random pushes and reads to the Redis window and to
/// `MemoryCache`, the executable spec, and wants the same answers.
#[tokio::test]
async fn the_lua_window_answers_exactly_like_the_memory_cache() {
    let redis = common::single().await;
    let memory = MemoryCache::new();
    let app = AppId::new("shop");
    let owner = UserId::new("ann");
    let mut rng = StdRng::seed_from_u64(0x0b0b);
    let mut newest = 0u64;
    for step in 0..250 {
        // Mostly in order; sometimes a gap, a repeat or a step back.
        let prev = match rng.random_range(0..10) {
            0 => newest + rng.random_range(1..4),
            1 => newest.saturating_sub(rng.random_range(1..3)),
            _ => newest,
        };
        let version = prev + 1;
        newest = newest.max(version);
        let cap = rng.random_range(1..8);
        let e = entry("ann", version);
        redis.push_recent(&app, prev, &e, cap).await.unwrap();
        memory.push_recent(&app, prev, &e, cap).await.unwrap();
        for _ in 0..3 {
            let after = rng.random_range(0..=newest + 1);
            let limit = rng.random_range(0..6);
            let want = memory.recent(&app, &owner, after, limit).await.unwrap();
            let got = redis.recent(&app, &owner, after, limit).await.unwrap();
            assert_eq!(
                got, want,
                "step {step}: recent(after {after}, limit {limit}) after push(prev {prev}, v {version}, cap {cap})"
            );
        }
    }
}

/// The same for the many-window script: random batches of pushes to three
/// owners (two to one owner in a batch now and then), in `push_recent_many`
/// calls to both, and the same answers for every owner.
#[tokio::test]
async fn the_many_window_script_answers_exactly_like_the_memory_cache() {
    let redis = common::single().await;
    let memory = MemoryCache::new();
    let app = AppId::new("shop");
    let owners = ["ann", "bo", "cy"];
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut newest = [0u64; 3];
    for step in 0..120 {
        let cap = rng.random_range(1..8);
        let mut batch: Vec<(u64, InboxEntry)> = Vec::new();
        for _ in 0..rng.random_range(1..6) {
            let o = rng.random_range(0..owners.len());
            let prev = match rng.random_range(0..10) {
                0 => newest[o] + rng.random_range(1..4),
                1 => newest[o].saturating_sub(rng.random_range(1..3)),
                _ => newest[o],
            };
            newest[o] = newest[o].max(prev + 1);
            batch.push((prev, entry(owners[o], prev + 1)));
        }
        let pushes: Vec<RecentPush<'_>> = batch
            .iter()
            .map(|(prev_version, entry)| RecentPush {
                prev_version: *prev_version,
                entry,
            })
            .collect();
        redis.push_recent_many(&app, &pushes, cap).await.unwrap();
        memory.push_recent_many(&app, &pushes, cap).await.unwrap();
        for (o, owner) in owners.iter().enumerate() {
            let owner = UserId::new(*owner);
            for _ in 0..2 {
                let after = rng.random_range(0..=newest[o] + 1);
                let limit = rng.random_range(0..6);
                let want = memory.recent(&app, &owner, after, limit).await.unwrap();
                let got = redis.recent(&app, &owner, after, limit).await.unwrap();
                assert_eq!(
                    got, want,
                    "step {step}: {owner}: recent(after {after}, limit {limit}) after {batch:?}"
                );
            }
        }
    }
}

/// Pushes of one owner's versions race from many tasks; whatever order
/// they land in, every answer the window gives is contiguous from
/// `after + 1`: it never hides a version it did not see.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_never_leave_a_window_that_hides_a_gap() {
    let store = Arc::new(common::single().await);
    let app = AppId::new("shop");
    const N: u64 = 240;
    const TASKS: u64 = 8;
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let (store, app) = (store.clone(), app.clone());
        handles.push(tokio::spawn(async move {
            for v in (1..=N).filter(|v| v % TASKS == t) {
                store
                    .push_recent(&app, v - 1, &entry("ann", v), 32)
                    .await
                    .unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let owner = UserId::new("ann");
    let mut answered = 0;
    for after in 0..=N {
        if let Some(page) = store.recent(&app, &owner, after, 1_000).await.unwrap() {
            answered += 1;
            let got = versions(&page);
            let want: Vec<u64> = (after + 1..after + 1 + got.len() as u64).collect();
            assert_eq!(got, want, "after {after}: the window skipped a version");
            assert!(got.len() <= 32, "the cap holds");
        }
    }
    assert!(answered > 0, "the window answers for its own range");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_owners_keep_separate_windows() {
    let store = Arc::new(common::single().await);
    let app = AppId::new("shop");
    let mut handles = Vec::new();
    for o in 0..16 {
        let (store, app) = (store.clone(), app.clone());
        handles.push(tokio::spawn(async move {
            let owner = format!("u{o}");
            for v in 1..=40u64 {
                store
                    .push_recent(&app, v - 1, &entry(&owner, v), 10)
                    .await
                    .unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    for o in 0..16 {
        let owner = UserId::new(format!("u{o}"));
        let page = store
            .recent(&app, &owner, 30, 100)
            .await
            .unwrap()
            .expect("the newest 10 are held");
        assert_eq!(versions(&page), (31..=40).collect::<Vec<_>>());
        assert!(page.entries.iter().all(|e| e.owner == owner));
        assert!(store.recent(&app, &owner, 29, 100).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn cluster_keys_of_one_user_share_a_slot() {
    let store: RedisStore = common::cluster().await;
    let prefix = store.config().key_prefix.clone();
    let app = AppId::new("shop");
    let ann = UserId::new("ann");
    store
        .dedup_put(&app, &ann, "m1", &receipt(1), Duration::from_secs(60))
        .await
        .unwrap();
    store
        .push_recent(&app, 0, &entry("ann", 1), 10)
        .await
        .unwrap();
    let mut node = common::raw_cluster_node().await;
    let mut slots = Vec::new();
    for key in [
        format!("{{{prefix}:shop:ann}}:dedup:m1"),
        format!("{{{prefix}:shop:ann}}:recent"),
        format!("{{{prefix}:shop:ann}}:devices"),
    ] {
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(&key)
            .query_async(&mut node)
            .await
            .unwrap();
        slots.push(slot);
    }
    assert!(slots.windows(2).all(|w| w[0] == w[1]), "{slots:?}");
    assert!(store.dedup_get(&app, &ann, "m1").await.unwrap().is_some());
}
