//! Going on while presence or the cache is down, and cutting a request
//! short at its deadline without losing or doubling a message.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;

use super::*;

/// A port that fails every call as a dead Redis would while `down` is set.
struct Switchable<P> {
    inner: Arc<P>,
    down: AtomicBool,
}

impl<P> Switchable<P> {
    fn new(inner: P) -> Arc<Switchable<P>> {
        Switchable::sharing(Arc::new(inner))
    }

    /// One node's way to a backend that other nodes reach their own way.
    fn sharing(inner: Arc<P>) -> Arc<Switchable<P>> {
        Arc::new(Switchable {
            inner,
            down: AtomicBool::new(false),
        })
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(Error::unavailable("redis: connection refused"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Presence for Switchable<MemoryPresence> {
    async fn register(&self, app: &AppId, route: &Route, ttl: Duration) -> Result<()> {
        self.check()?;
        self.inner.register(app, route, ttl).await
    }
    async fn unregister(&self, app: &AppId, u: &UserId, d: &DeviceId, s: u64) -> Result<bool> {
        self.check()?;
        self.inner.unregister(app, u, d, s).await
    }
    async fn routes(&self, app: &AppId, user: &UserId) -> Result<Vec<Route>> {
        self.check()?;
        self.inner.routes(app, user).await
    }
    async fn routes_of(&self, app: &AppId, users: &[UserId]) -> Result<Vec<Route>> {
        self.check()?;
        self.inner.routes_of(app, users).await
    }
}

#[async_trait]
impl Cache for Switchable<MemoryCache> {
    async fn dedup_get(&self, a: &AppId, s: &UserId, id: &str) -> Result<Option<SendReceipt>> {
        self.check()?;
        self.inner.dedup_get(a, s, id).await
    }
    async fn dedup_put(
        &self,
        a: &AppId,
        s: &UserId,
        id: &str,
        r: &SendReceipt,
        ttl: Duration,
    ) -> Result<bool> {
        self.check()?;
        self.inner.dedup_put(a, s, id, r, ttl).await
    }
    async fn push_recent(&self, a: &AppId, prev: u64, e: &InboxEntry, cap: usize) -> Result<()> {
        self.check()?;
        self.inner.push_recent(a, prev, e, cap).await
    }
    async fn recent(
        &self,
        a: &AppId,
        o: &UserId,
        after: u64,
        limit: usize,
    ) -> Result<Option<InboxPage>> {
        self.check()?;
        self.inner.recent(a, o, after, limit).await
    }
}

fn quick_retry() -> EngineConfig {
    EngineConfig {
        presence_retry: Duration::from_millis(20),
        ..Default::default()
    }
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what} did not happen within 5 s");
}

/// An engine on a presence the test can take down, retrying it quickly.
async fn engine_with_switchable_presence() -> (Engine, Arc<Switchable<MemoryPresence>>) {
    let presence = Switchable::new(MemoryPresence::new());
    let e = engine_from(
        Engine::builder()
            .config(quick_retry())
            .presence(presence.clone()),
        |_| {},
    )
    .await;
    (e, presence)
}

#[tokio::test]
async fn with_presence_down_devices_log_in_send_and_receive_and_presence_shows_degraded() {
    let (e, presence) = engine_with_switchable_presence().await;
    presence.set_down(true);
    let (alice, _) = login(&e, "alice", "phone").await;
    let (_bob, mut bob_q) = login(&e, "bob", "phone").await;
    e.send(&alice, to_user("bob", "m1", "still here"))
        .await
        .unwrap();
    assert_eq!(pushed_texts(&drain(&mut bob_q)), ["still here"]);
    e.heartbeat(&alice).await.unwrap();
    let now = e.degradation();
    assert!(now.presence && !now.cache, "{now:?}");
    assert_eq!(now.unregistered_routes, 2, "alice's and bob's routes wait");
}

#[tokio::test]
async fn when_presence_is_back_the_routes_it_missed_are_registered_by_themselves() {
    let (e, presence) = engine_with_switchable_presence().await;
    presence.set_down(true);
    let (alice, _) = login(&e, "alice", "phone").await;
    let (gone, _) = login(&e, "carol", "phone").await;
    e.disconnect(&gone).await.unwrap();
    presence.set_down(false);
    until("presence recovery", || !e.degradation().presence).await;
    let found = e
        .presence(&alice.app, std::slice::from_ref(&alice.user))
        .await
        .unwrap();
    assert_eq!(found[0].devices.len(), 1, "alice's route is back");
    assert_eq!(found[0].devices[0].session, alice.id);
    let carol = e
        .presence(&gone.app, std::slice::from_ref(&gone.user))
        .await
        .unwrap();
    assert!(
        carol[0].devices.is_empty(),
        "a closed session is not revived"
    );
    assert_eq!(e.degradation().unregistered_routes, 0);
}

#[tokio::test]
async fn when_presence_is_back_each_local_device_is_pushed_its_newest_entry_again() {
    let (e, presence) = engine_with_switchable_presence().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (_bob, mut bob_q) = login(&e, "bob", "phone").await;
    let town = CreateGroup {
        id: Some(GroupId::new("town")),
        name: "town".into(),
        members: vec![UserId::new("bob")],
        super_group: true,
    };
    e.create_group(&alice.app, &alice.user, town).await.unwrap();
    presence.set_down(true);
    // Pushes to bob on another node would be dropped now; here he gets them.
    e.send(&alice, to_user("bob", "m1", "during the outage"))
        .await
        .unwrap();
    let to_town = text_to(
        Conversation::super_group(&GroupId::new("town")),
        "m2",
        "to town",
    );
    e.send(&alice, to_town).await.unwrap();
    let during = drain(&mut bob_q);
    assert_eq!(
        during.len(),
        2,
        "the message and the super-group entry: {during:?}"
    );
    e.heartbeat(&alice).await.unwrap();
    presence.set_down(false);
    until("presence recovery", || !e.degradation().presence).await;
    // Once it is back, bob's device is pushed his newest inbox entry and
    // the super group's newest entry again, each with its true
    // predecessor: a device that missed one finds the gap.
    let mut again = Vec::new();
    for _ in 0..100 {
        again.extend(drain(&mut bob_q));
        if again.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(again.len(), 2, "got {again:?}");
    assert!(
        again.iter().any(|p| matches!(p, PushEvent::Entry { entry, prev_version }
            if entry.content == Content::text("during the outage") && *prev_version == entry.version - 1)),
        "bob's newest inbox entry, in {again:?}"
    );
    assert!(
        again
            .iter()
            .any(|p| matches!(p, PushEvent::Channel { entry, prev_seq }
            if entry.content == Content::text("to town") && *prev_seq == entry.seq - 1)),
        "the super group's newest entry, in {again:?}"
    );
}

/// Two nodes on shared stores, presence and bus; each reaches presence
/// its own way, which the test can cut.
struct TwoNodes {
    nodes: [Engine; 2],
    presence: [Arc<Switchable<MemoryPresence>>; 2],
    bus: Arc<MemoryBus>,
}

async fn two_nodes() -> TwoNodes {
    let stores = SharedStores::new();
    let routes = Arc::new(MemoryPresence::new());
    let bus = Arc::new(MemoryBus::new());
    let presence = [
        Switchable::sharing(routes.clone()),
        Switchable::sharing(routes),
    ];
    let node = |name: &str, presence: &Arc<Switchable<MemoryPresence>>| {
        let config = EngineConfig {
            node: NodeId::new(name),
            ..quick_retry()
        };
        let engine = stores.node(config, presence.clone(), bus.clone());
        bus.attach(NodeId::new(name), engine.hub());
        engine
    };
    let nodes = [node("n1", &presence[0]), node("n2", &presence[1])];
    nodes[0]
        .put_app(AppConfig::new(APP, "a-secret-of-at-least-thirty-two-bytes"))
        .await
        .unwrap();
    TwoNodes {
        nodes,
        presence,
        bus,
    }
}

/// Waits until `q` was pushed `text` as an inbox entry or a super-group
/// entry, each with its true predecessor (so a device that missed it
/// finds the gap).
async fn until_pushed_again(q: &mut SessionQueue, texts: &[&str]) {
    let mut seen: Vec<PushEvent> = Vec::new();
    for _ in 0..500 {
        seen.extend(drain(q));
        let found = |text: &str| {
            seen.iter().any(|p| match p {
                PushEvent::Entry {
                    entry,
                    prev_version,
                } => entry.content == Content::text(text) && *prev_version == entry.version - 1,
                PushEvent::Channel { entry, prev_seq } => {
                    entry.content == Content::text(text) && *prev_seq == entry.seq - 1
                }
                _ => false,
            })
        };
        if texts.iter().all(|t| found(t)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not pushed again within 5 s: {texts:?}; pushed {seen:?}");
}

#[tokio::test]
async fn pushes_a_node_dropped_while_it_could_not_reach_presence_are_pushed_again_to_the_other_nodes()
 {
    let TwoNodes {
        nodes: [n1, n2],
        presence,
        ..
    } = two_nodes().await;
    let (alice, _) = login(&n1, "alice", "phone").await;
    let (_bob, mut bob_q) = login(&n2, "bob", "phone").await;
    let town = super_group_of(&n1, &alice, "town", &["bob"]).await;
    drain(&mut bob_q);

    // Only n1 loses presence: it cannot tell where bob is, so its pushes
    // to him are dropped, and n2 sees no outage (it nudges no one).
    presence[0].set_down(true);
    n1.send(&alice, to_user("bob", "m1", "the last word"))
        .await
        .unwrap();
    n1.send(&alice, text_to(town, "m2", "the last word in town"))
        .await
        .unwrap();
    assert_eq!(drain(&mut bob_q), [], "dropped while n1 is cut off");
    assert!(!n2.degradation().presence, "n2 saw nothing");

    presence[0].set_down(false);
    until_pushed_again(&mut bob_q, &["the last word", "the last word in town"]).await;
}

#[tokio::test]
async fn pushes_to_a_node_that_did_not_answer_are_pushed_again_when_it_answers() {
    let TwoNodes {
        nodes: [n1, n2],
        bus,
        ..
    } = two_nodes().await;
    let (alice, _) = login(&n1, "alice", "phone").await;
    let (_bob, mut bob_q) = login(&n2, "bob", "phone").await;
    let (_carol, mut carol_q) = login(&n2, "carol", "phone").await;
    let town = super_group_of(&n1, &alice, "town", &["bob"]).await;
    drain(&mut bob_q);

    bus.detach(&NodeId::new("n2"));
    n1.send(&alice, to_user("bob", "m1", "while n2 was away"))
        .await
        .unwrap();
    n1.send(&alice, text_to(town, "m2", "town, while n2 was away"))
        .await
        .unwrap();
    assert_eq!(drain(&mut bob_q), []);

    // The next push that reaches n2 tells n1 it answers again.
    bus.attach(NodeId::new("n2"), n2.hub());
    n1.send(&alice, to_user("carol", "m3", "hello carol"))
        .await
        .unwrap();
    assert_eq!(pushed_texts(&drain(&mut carol_q)), ["hello carol"]);
    until_pushed_again(
        &mut bob_q,
        &["while n2 was away", "town, while n2 was away"],
    )
    .await;
}

#[tokio::test]
async fn with_the_cache_down_sends_dedup_and_syncs_go_to_the_store() {
    let cache = Switchable::new(MemoryCache::new());
    let e = engine_from(Engine::builder().cache(cache.clone()), |_| {}).await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    cache.set_down(true);
    let first = e.send(&alice, to_user("bob", "m1", "one")).await.unwrap();
    let retry = e.send(&alice, to_user("bob", "m1", "one")).await.unwrap();
    assert_eq!(retry.server_msg_id, first.server_msg_id, "the store dedups");
    assert!(retry.duplicate);
    assert_eq!(all_entries(&e, &bob).await.len(), 1);
    assert!(e.degradation().cache);
    cache.set_down(false);
    e.send(&alice, to_user("bob", "m2", "two")).await.unwrap();
    assert!(
        !e.degradation().cache,
        "one call that works ends the outage"
    );
    assert_eq!(all_entries(&e, &bob).await.len(), 2);
}

/// An inbox whose appends are stored at once but answered only after
/// `stall`: a request cut off at its deadline after the commit.
struct SlowToAnswer {
    inner: MemoryInbox,
    stall: AtomicBool,
}

#[async_trait]
impl InboxStore for SlowToAnswer {
    async fn append(&self, app: &AppId, delivery: &Delivery) -> Result<AppendOutcome> {
        let outcome = self.inner.append(app, delivery).await;
        if self.stall.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        outcome
    }
    async fn pull(&self, a: &AppId, o: &UserId, after: u64, limit: usize) -> Result<InboxPage> {
        self.inner.pull(a, o, after, limit).await
    }
    async fn last_version(&self, a: &AppId, o: &UserId) -> Result<u64> {
        self.inner.last_version(a, o).await
    }
    async fn get(&self, a: &AppId, o: &UserId, id: &MsgId) -> Result<Option<InboxEntry>> {
        self.inner.get(a, o, id).await
    }
    async fn mark_read(
        &self,
        a: &AppId,
        o: &UserId,
        c: &Conversation,
        up_to: u64,
    ) -> Result<MarkedRead> {
        self.inner.mark_read(a, o, c, up_to).await
    }
    async fn mark_message_read(&self, a: &AppId, o: &UserId, id: &MsgId) -> Result<bool> {
        self.inner.mark_message_read(a, o, id).await
    }
    async fn unread(&self, a: &AppId, o: &UserId) -> Result<Vec<UnreadCount>> {
        self.inner.unread(a, o).await
    }
    async fn find_sent(&self, a: &AppId, s: &UserId, id: &str) -> Result<Option<SendReceipt>> {
        self.inner.find_sent(a, s, id).await
    }
    async fn pending_index(&self, limit: usize) -> Result<Vec<IndexTask>> {
        self.inner.pending_index(limit).await
    }
    async fn complete_index(&self, ids: &[u64]) -> Result<()> {
        self.inner.complete_index(ids).await
    }
    async fn prune_sent(&self, sent_before: i64, limit: usize) -> Result<u64> {
        self.inner.prune_sent(sent_before, limit).await
    }
}

#[tokio::test]
async fn a_send_cut_off_at_its_deadline_after_the_commit_is_stored_once_when_retried() {
    let inbox = Arc::new(SlowToAnswer {
        inner: MemoryInbox::new(),
        stall: AtomicBool::new(true),
    });
    let e = engine_from(Engine::builder().inbox(inbox.clone()), |_| {}).await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let cut_off = tokio::time::timeout(
        Duration::from_millis(50),
        e.send(&alice, to_user("bob", "m1", "once")),
    )
    .await;
    assert!(cut_off.is_err(), "the deadline cut the send off");
    assert_eq!(
        all_entries(&e, &bob).await.len(),
        1,
        "stored before the cut"
    );

    inbox.stall.store(false, Ordering::SeqCst);
    let retry = e.send(&alice, to_user("bob", "m1", "once")).await.unwrap();
    assert!(retry.duplicate, "answered with the first attempt's receipt");
    let stored = all_entries(&e, &bob).await;
    assert_eq!(stored.len(), 1, "never stored twice");
    assert_eq!(retry.server_msg_id, stored[0].server_msg_id);
}
