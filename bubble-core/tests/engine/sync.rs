//! Sync by version and pushes with gap detection, to every device, on any node.

use super::*;

#[tokio::test]
async fn sync_pulls_by_version_in_pages_with_has_more() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    for i in 0..12 {
        e.send(&alice, to_user("bob", &format!("m{i}"), &format!("{i}")))
            .await
            .unwrap();
    }
    let mut after = 0;
    let mut texts = Vec::new();
    loop {
        let page = e.sync(&bob, after, 5).await.unwrap();
        assert_eq!(page.max_version, 12);
        texts.extend(
            page.entries
                .iter()
                .map(|x| x.content.as_text().unwrap().to_owned()),
        );
        if !page.has_more {
            break;
        }
        after = page.entries.last().unwrap().version;
    }
    assert_eq!(texts, (0..12).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[tokio::test]
async fn each_device_syncs_from_its_own_cursor() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob_phone, _) = login(&e, "bob", "phone").await;
    let (bob_laptop, _) = login(&e, "bob", "laptop").await;
    for i in 0..3 {
        e.send(&alice, to_user("bob", &format!("m{i}"), &format!("{i}")))
            .await
            .unwrap();
    }
    let phone = e.sync(&bob_phone, 2, 10).await.unwrap();
    let laptop = e.sync(&bob_laptop, 0, 10).await.unwrap();
    assert_eq!(phone.entries.len(), 1, "the phone had up to version 2");
    assert_eq!(laptop.entries.len(), 3, "the laptop had nothing");
}

#[tokio::test]
async fn sync_is_served_correctly_past_the_recent_cache_window() {
    let e = engine_from(
        Engine::builder().config(EngineConfig {
            recent_cap: 4,
            ..Default::default()
        }),
        |_| {},
    )
    .await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    for i in 0..10 {
        e.send(&alice, to_user("bob", &format!("m{i}"), &format!("{i}")))
            .await
            .unwrap();
    }
    assert_eq!(
        e.sync(&bob, 0, 100).await.unwrap().entries.len(),
        10,
        "from the store"
    );
    assert_eq!(
        e.sync(&bob, 7, 100).await.unwrap().entries.len(),
        3,
        "from the cache"
    );
}

#[tokio::test]
async fn pushes_reach_every_device_of_the_receiver_and_the_senders_other_devices() {
    let e = engine().await;
    let (alice_phone, mut alice_phone_q) = login(&e, "alice", "phone").await;
    let (_alice_laptop, mut alice_laptop_q) = login(&e, "alice", "laptop").await;
    let (_bob_phone, mut bob_phone_q) = login(&e, "bob", "phone").await;
    let (_bob_web, mut bob_web_q) = login(&e, "bob", "web").await;
    e.send(&alice_phone, to_user("bob", "m", "hi"))
        .await
        .unwrap();
    assert_eq!(pushed_texts(&drain(&mut bob_phone_q)), vec!["hi"]);
    assert_eq!(pushed_texts(&drain(&mut bob_web_q)), vec!["hi"]);
    assert_eq!(
        pushed_texts(&drain(&mut alice_laptop_q)),
        vec!["hi"],
        "the sender's other device"
    );
    assert!(
        drain(&mut alice_phone_q).is_empty(),
        "the sending device has the ack, not a push"
    );
}

#[tokio::test]
async fn a_push_carries_the_previous_version_so_a_device_can_see_a_gap() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    e.send(&alice, to_user("bob", "m1", "while offline"))
        .await
        .unwrap();
    let (_bob, mut bob_q) = login(&e, "bob", "phone").await;
    e.send(&alice, to_user("bob", "m2", "now online"))
        .await
        .unwrap();
    let events = drain(&mut bob_q);
    let PushEvent::Entry {
        entry,
        prev_version,
    } = &events[0]
    else {
        panic!("expected an entry push, got {events:?}");
    };
    assert_eq!((entry.version, *prev_version), (2, 1));
    // The device holds version 0; prev_version 1 > 0 tells it to pull (0, 1].
}

#[tokio::test]
async fn a_slow_consumer_is_dropped_and_loses_nothing() {
    let e = engine_from(
        Engine::builder().config(EngineConfig {
            session_queue: 4,
            ..Default::default()
        }),
        |_| {},
    )
    .await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, mut bob_q) = login(&e, "bob", "phone").await;
    for i in 0..10 {
        e.send(&alice, to_user("bob", &format!("m{i}"), &format!("{i}")))
            .await
            .unwrap();
    }
    assert!(
        bob_q.overflowed.load(std::sync::atomic::Ordering::Acquire),
        "flagged as slow"
    );
    let got = drain(&mut bob_q);
    assert_eq!(got.len(), 4, "the queue stayed bounded");
    assert!(
        bob_q.rx.recv().await.is_none(),
        "the queue is closed: the connection ends"
    );
    assert_eq!(
        e.sync(&bob, 0, 100).await.unwrap().entries.len(),
        10,
        "a re-sync gets everything"
    );
}

/// A bus that counts what crosses it, per receiving node.
struct CountingBus {
    inner: MemoryBus,
    batches: parking_lot::Mutex<Vec<(NodeId, usize)>>,
}

#[async_trait::async_trait]
impl Bus for CountingBus {
    async fn deliver(&self, node: &NodeId, pushes: &[bubble_core::push::Push]) -> Result<()> {
        self.batches.lock().push((node.clone(), pushes.len()));
        self.inner.deliver(node, pushes).await
    }
}

/// Engines named `names` sharing in-memory stores and presence, each
/// attached to one counting bus, with the test app created.
async fn cluster(names: &[&str]) -> (Vec<Engine>, Arc<CountingBus>) {
    let stores = SharedStores::new();
    let presence = Arc::new(MemoryPresence::new());
    let bus = Arc::new(CountingBus {
        inner: MemoryBus::new(),
        batches: Default::default(),
    });
    let mut nodes = Vec::new();
    for name in names {
        let config = EngineConfig {
            node: NodeId::new(*name),
            ..Default::default()
        };
        let node = stores.node(config, presence.clone(), bus.clone());
        bus.inner.attach(NodeId::new(*name), node.hub());
        nodes.push(node);
    }
    nodes[0]
        .put_app(AppConfig::new(APP, "a-secret-of-at-least-thirty-two-bytes"))
        .await
        .unwrap();
    (nodes, bus)
}

#[tokio::test]
async fn a_push_crosses_to_the_node_that_holds_the_receivers_session() {
    let (nodes, _bus) = cluster(&["n1", "n2"]).await;
    let (n1, n2) = (&nodes[0], &nodes[1]);
    let (alice, _) = login(n1, "alice", "phone").await;
    let (_bob, mut bob_q) = login(n2, "bob", "phone").await;
    n1.send(&alice, to_user("bob", "m", "across nodes"))
        .await
        .unwrap();
    assert_eq!(pushed_texts(&drain(&mut bob_q)), vec!["across nodes"]);
}

#[tokio::test]
async fn a_super_group_message_crosses_to_each_node_once_not_once_per_member() {
    let (nodes, bus) = cluster(&["n1", "n2", "n3"]).await;
    // ann sends from her phone on n1; her laptop is on n2; ten members on
    // each of n2 and n3; three members are offline.
    let (ann, _ann_phone) = login(&nodes[0], "ann", "phone").await;
    let (_, mut ann_laptop) = login(&nodes[1], "ann", "laptop").await;
    let members: Vec<String> = (0..23).map(|i| format!("m{i:02}")).collect();
    let member_refs: Vec<&str> = members.iter().map(String::as_str).collect();
    let town = super_group_of(&nodes[0], &ann, "town", &member_refs).await;
    let mut queues = Vec::new();
    for (i, m) in members.iter().take(20).enumerate() {
        let (_, q) = login(&nodes[1 + i % 2], m, "phone").await;
        queues.push(q);
    }
    bus.batches.lock().clear();

    nodes[0]
        .send(&ann, text_to(town, "t1", "hello town"))
        .await
        .unwrap();

    let mut batches = bus.batches.lock().clone();
    batches.sort();
    assert_eq!(
        batches,
        [(NodeId::new("n2"), 1), (NodeId::new("n3"), 1)],
        "one push to each node holding members, with the entry once"
    );
    let channel_texts = |events: Vec<PushEvent>| -> Vec<String> {
        events
            .into_iter()
            .filter_map(|ev| match ev {
                PushEvent::Channel { entry, .. } => entry.content.as_text().map(str::to_owned),
                _ => None,
            })
            .collect()
    };
    for (i, q) in queues.iter_mut().enumerate() {
        assert_eq!(channel_texts(drain(q)), ["hello town"], "member {i}");
    }
    assert_eq!(
        channel_texts(drain(&mut ann_laptop)),
        ["hello town"],
        "the sender's other device gets it; the sending one has the answer"
    );
}
