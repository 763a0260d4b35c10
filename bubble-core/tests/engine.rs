//! The engine's behaviour, one test per behaviour of the seed's design.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc::error::TryRecvError;

use bubble_core::engine::{BROADCAST_CHANNEL, UserPresence};
use bubble_core::memory::*;
use bubble_core::ports::*;
use bubble_core::push::{PushEvent, SessionQueue};
use bubble_core::*;
use bubble_proto::pb;

const APP: &str = "acme";

/// Builds the engine and creates the test app with `settings` applied.
async fn engine_from(builder: EngineBuilder, settings: impl FnOnce(&mut AppSettings)) -> Engine {
    let engine = builder.build().unwrap();
    let mut app = AppConfig::new(APP, "a-secret-of-at-least-thirty-two-bytes");
    settings(&mut app.settings);
    engine.put_app(app).await.unwrap();
    engine
}

async fn engine_with(settings: impl FnOnce(&mut AppSettings)) -> Engine {
    engine_from(Engine::builder(), settings).await
}

async fn engine() -> Engine {
    engine_with(|_| {}).await
}

fn identity(app: &str, user: &str) -> Identity {
    Identity {
        app: AppId::new(app),
        user: UserId::new(user),
        expires_at: i64::MAX,
    }
}

async fn login(e: &Engine, user: &str, device: &str) -> (Session, SessionQueue) {
    e.connect(&identity(APP, user), &DeviceId::new(device), "ios")
        .await
        .unwrap()
}

fn text_to(conversation: Conversation, client_msg_id: &str, text: &str) -> SendRequest {
    SendRequest {
        to: conversation,
        client_msg_id: client_msg_id.to_owned(),
        client_seq: 1,
        create_time: 1_700_000_000_000,
        content: Content::text(text),
    }
}

fn to_user(user: &str, client_msg_id: &str, text: &str) -> SendRequest {
    text_to(
        Conversation::direct(&UserId::new(user)),
        client_msg_id,
        text,
    )
}

fn to_group(group: &str, client_msg_id: &str, text: &str) -> SendRequest {
    text_to(
        Conversation::group(&GroupId::new(group)),
        client_msg_id,
        text,
    )
}

async fn all_entries(e: &Engine, s: &Session) -> Vec<InboxEntry> {
    e.sync(s, 0, 500).await.unwrap().entries
}

fn drain(q: &mut SessionQueue) -> Vec<PushEvent> {
    let mut out = Vec::new();
    loop {
        match q.rx.try_recv() {
            Ok(ev) => out.push(*ev),
            Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => return out,
        }
    }
}

fn pushed_texts(events: &[PushEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|ev| match ev {
            PushEvent::Entry { entry, .. } if entry.kind == EntryKind::Message => {
                entry.content.as_text().map(str::to_owned)
            }
            _ => None,
        })
        .collect()
}

async fn group_of(e: &Engine, owner: &Session, id: &str, members: &[&str]) -> Group {
    e.create_group(
        &owner.app,
        &owner.user,
        CreateGroup {
            id: Some(GroupId::new(id)),
            name: id.into(),
            members: members.iter().map(|m| UserId::new(*m)).collect(),
            super_group: false,
        },
    )
    .await
    .unwrap()
}

/// Creates a super group owned by `owner` and returns its conversation.
async fn super_group_of(e: &Engine, owner: &Session, id: &str, members: &[&str]) -> Conversation {
    e.create_group(
        &owner.app,
        &owner.user,
        CreateGroup {
            id: Some(GroupId::new(id)),
            members: members.iter().map(|m| UserId::new(*m)).collect(),
            super_group: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    Conversation::super_group(&GroupId::new(id))
}

// ------------------------------------------------------------------ 1:1

#[tokio::test]
async fn one_to_one_send_writes_an_out_entry_for_the_sender_and_an_in_entry_for_the_receiver() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    // Bob's version space moves on independently of alice's.
    e.send(&bob, to_user("carol", "b-1", "warm-up"))
        .await
        .unwrap();
    let receipt = e
        .send(&alice, to_user("bob", "a-1", "hello"))
        .await
        .unwrap();

    let a = all_entries(&e, &alice).await;
    let b = all_entries(&e, &bob).await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].direction, Direction::Out);
    assert_eq!(a[0].conversation, Conversation::direct(&UserId::new("bob")));
    assert_eq!(
        a[0].version, receipt.version,
        "the ack names the sender's version"
    );
    let got = b.last().unwrap();
    assert_eq!(got.direction, Direction::In);
    assert_eq!(
        got.conversation,
        Conversation::direct(&UserId::new("alice")),
        "seen from bob: the peer is alice"
    );
    assert_eq!(got.version, 2, "bob's own next version");
    assert_eq!(got.server_msg_id, receipt.server_msg_id);
    assert_eq!(got.content.as_text(), Some("hello"));
}

#[tokio::test]
async fn the_ack_carries_server_msg_id_version_and_server_time() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let before = now_millis();
    let r = e.send(&alice, to_user("bob", "a-1", "hi")).await.unwrap();
    assert_ne!(r.server_msg_id, MsgId::default());
    assert_eq!(r.version, 1);
    assert!(r.server_time >= before && r.server_time <= now_millis());
    assert!(!r.duplicate);
}

#[tokio::test]
async fn server_msg_id_is_a_stable_hash_of_sender_receiver_and_a_unique_id() {
    use bubble_core::ids::message_id;
    let app = AppId::new(APP);
    let to = Conversation::direct(&UserId::new("bob"));
    let node = NodeId::new("n1");
    let nonce = [7u8; 16];
    let a = message_id(&app, &UserId::new("alice"), &to, &node, &nonce, 1);
    assert_eq!(
        a,
        message_id(&app, &UserId::new("alice"), &to, &node, &nonce, 1),
        "stable"
    );
    assert_ne!(
        a,
        message_id(&app, &UserId::new("alice"), &to, &node, &nonce, 2),
        "unique id matters"
    );
    assert_ne!(
        a,
        message_id(&app, &UserId::new("alicx"), &to, &node, &nonce, 1),
        "sender matters"
    );
    let to_b = Conversation::direct(&UserId::new("bob2"));
    assert_ne!(
        a,
        message_id(&app, &UserId::new("alice"), &to_b, &node, &nonce, 1),
        "receiver matters"
    );
    // Field boundaries are length-prefixed, so shifting a character between fields changes the id.
    let x = message_id(
        &app,
        &UserId::new("ab"),
        &Conversation::direct(&UserId::new("c")),
        &node,
        &nonce,
        1,
    );
    let y = message_id(
        &app,
        &UserId::new("a"),
        &Conversation::direct(&UserId::new("bc")),
        &node,
        &nonce,
        1,
    );
    assert_ne!(x, y);
    // Ten thousand ids from one generator never collide.
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let mut seen = std::collections::HashSet::new();
    for i in 0..200 {
        let r = e
            .send(&alice, to_user("bob", &format!("c{i}"), "x"))
            .await
            .unwrap();
        assert!(seen.insert(r.server_msg_id));
    }
}

// --------------------------------------------------------------- groups

#[tokio::test]
async fn a_group_message_fans_out_to_every_members_inbox() {
    let e = engine().await;
    let (ann, _) = login(&e, "ann", "phone").await;
    let (bo, _) = login(&e, "bo", "phone").await;
    let (cy, _) = login(&e, "cy", "phone").await;
    group_of(&e, &ann, "team", &["bo", "cy"]).await;
    let r = e
        .send(&ann, to_group("team", "g-1", "standup"))
        .await
        .unwrap();
    for (s, dir) in [
        (&ann, Direction::Out),
        (&bo, Direction::In),
        (&cy, Direction::In),
    ] {
        let entries = all_entries(&e, s).await;
        assert_eq!(entries.len(), 1, "{} has the message", s.user);
        assert_eq!(entries[0].direction, dir);
        assert_eq!(
            entries[0].conversation,
            Conversation::group(&GroupId::new("team"))
        );
        assert_eq!(entries[0].server_msg_id, r.server_msg_id);
    }
}

#[tokio::test]
async fn a_non_member_cannot_send_to_a_group() {
    let e = engine().await;
    let (ann, _) = login(&e, "ann", "phone").await;
    let (eve, _) = login(&e, "eve", "phone").await;
    group_of(&e, &ann, "team", &["bo"]).await;
    let err = e
        .send(&eve, to_group("team", "x", "let me in"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    let missing = e.send(&ann, to_group("nope", "y", "?")).await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn a_super_group_message_is_written_once_and_members_pull_it_by_seq() {
    let e = engine().await;
    let (ann, _) = login(&e, "ann", "phone").await;
    let (bo, _) = login(&e, "bo", "phone").await;
    let g = e
        .create_group(
            &ann.app,
            &ann.user,
            CreateGroup {
                id: Some(GroupId::new("town")),
                name: "town".into(),
                members: vec![UserId::new("bo")],
                super_group: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(g.kind, GroupKind::Super);
    let to = Conversation::super_group(&g.id);
    let r1 = e
        .send(&ann, text_to(to.clone(), "s-1", "one"))
        .await
        .unwrap();
    let r2 = e
        .send(&ann, text_to(to.clone(), "s-2", "two"))
        .await
        .unwrap();
    assert_eq!((r1.seq, r2.seq), (1, 2), "seqs per group");
    assert_eq!(r1.version, 0, "no inbox version for fan-out on read");
    assert!(
        all_entries(&e, &bo).await.is_empty(),
        "nothing was fanned out into inboxes"
    );
    let (page, last) = e.pull_channel(&bo, &g.id, 1, 10).await.unwrap();
    assert_eq!(last, 2);
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].content.as_text(), Some("two"));
    let (eve, _) = login(&e, "eve", "phone").await;
    assert_eq!(
        e.pull_channel(&eve, &g.id, 0, 10).await.unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
}

#[tokio::test]
async fn a_group_growing_past_the_threshold_becomes_a_super_group() {
    let e = engine_with(|s| s.super_group_threshold = 3).await;
    let (ann, _) = login(&e, "ann", "phone").await;
    let g = group_of(&e, &ann, "grows", &["bo", "cy"]).await;
    assert_eq!(g.kind, GroupKind::Normal, "3 members is not above 3");
    e.add_members(&ann.app, Some(&ann.user), &g.id, &[UserId::new("di")])
        .await
        .unwrap();
    assert_eq!(
        e.group(&ann.app, &g.id).await.unwrap().kind,
        GroupKind::Super
    );
    let r = e
        .send(&ann, to_group("grows", "after", "now by seq"))
        .await
        .unwrap();
    assert_eq!(r.seq, 1, "messages after the switch go to the channel log");
    let big = e
        .create_group(
            &ann.app,
            &ann.user,
            CreateGroup {
                id: Some(GroupId::new("big")),
                members: ["b", "c", "d", "e"]
                    .iter()
                    .map(|u| UserId::new(*u))
                    .collect(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(big.kind, GroupKind::Super, "created above the threshold");
}

#[tokio::test]
async fn online_super_group_members_get_a_notification_with_the_previous_seq() {
    let e = engine().await;
    let (ann, _) = login(&e, "ann", "phone").await;
    let (_bo, mut bo_q) = login(&e, "bo", "phone").await;
    let to = super_group_of(&e, &ann, "town", &["bo"]).await;
    e.send(&ann, text_to(to.clone(), "1", "a")).await.unwrap();
    e.send(&ann, text_to(to, "2", "b")).await.unwrap();
    let events = drain(&mut bo_q);
    let seqs: Vec<(u64, u64)> = events
        .iter()
        .filter_map(|ev| match ev {
            PushEvent::Channel { entry, prev_seq } => Some((entry.seq, *prev_seq)),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, vec![(1, 0), (2, 1)]);
}

// ---------------------------------------------------------------- dedup

#[tokio::test]
async fn a_retry_with_the_same_client_msg_id_gets_the_original_ack_and_writes_nothing() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, mut bob_q) = login(&e, "bob", "phone").await;
    let first = e.send(&alice, to_user("bob", "same", "hi")).await.unwrap();
    let retry = e.send(&alice, to_user("bob", "same", "hi")).await.unwrap();
    assert_eq!(retry.server_msg_id, first.server_msg_id);
    assert_eq!(retry.version, first.version);
    assert_eq!(retry.server_time, first.server_time);
    assert!(retry.duplicate && !first.duplicate);
    assert_eq!(all_entries(&e, &bob).await.len(), 1);
    assert_eq!(pushed_texts(&drain(&mut bob_q)), vec!["hi"], "pushed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_of_one_message_are_written_once() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let mut handles = Vec::new();
    for _ in 0..16 {
        let e = e.clone();
        let alice = alice.clone();
        handles.push(tokio::spawn(async move {
            e.send(&alice, to_user("bob", "race", "once"))
                .await
                .unwrap()
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut fresh = 0;
    for h in handles {
        let r = h.await.unwrap();
        ids.insert(r.server_msg_id);
        fresh += usize::from(!r.duplicate);
    }
    assert_eq!(ids.len(), 1, "every answer names one message");
    assert_eq!(fresh, 1);
    assert_eq!(all_entries(&e, &bob).await.len(), 1);
}

#[tokio::test]
async fn dedup_holds_even_when_the_cache_has_forgotten() {
    // A cache that never remembers: the store alone must deduplicate.
    struct Forgetful(MemoryCache);
    #[async_trait::async_trait]
    impl Cache for Forgetful {
        async fn dedup_get(&self, _: &AppId, _: &UserId, _: &str) -> Result<Option<SendReceipt>> {
            Ok(None)
        }
        async fn dedup_put(
            &self,
            _: &AppId,
            _: &UserId,
            _: &str,
            _: &SendReceipt,
            _: Duration,
        ) -> Result<bool> {
            Ok(true)
        }
        async fn push_recent(&self, a: &AppId, p: u64, e: &InboxEntry, c: usize) -> Result<()> {
            self.0.push_recent(a, p, e, c).await
        }
        async fn recent(
            &self,
            a: &AppId,
            o: &UserId,
            v: u64,
            l: usize,
        ) -> Result<Option<bubble_core::InboxPage>> {
            self.0.recent(a, o, v, l).await
        }
    }
    let e = engine_from(
        Engine::builder().cache(Arc::new(Forgetful(MemoryCache::new()))),
        |_| {},
    )
    .await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let a = e.send(&alice, to_user("bob", "k", "x")).await.unwrap();
    let b = e.send(&alice, to_user("bob", "k", "x")).await.unwrap();
    assert_eq!(a.server_msg_id, b.server_msg_id);
    assert!(b.duplicate);
    assert_eq!(all_entries(&e, &bob).await.len(), 1);
}

#[tokio::test]
async fn a_retry_into_a_super_group_gets_the_original_seq() {
    let e = engine().await;
    let (ann, _) = login(&e, "ann", "phone").await;
    let to = super_group_of(&e, &ann, "t", &[]).await;
    let a = e.send(&ann, text_to(to.clone(), "k", "x")).await.unwrap();
    let b = e.send(&ann, text_to(to, "k", "x")).await.unwrap();
    assert_eq!((a.seq, b.seq), (1, 1));
    assert!(b.duplicate);
}

// ------------------------------------------------------------- ordering

#[tokio::test]
async fn ordering_fields_are_kept_create_time_client_seq_and_server_version() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    // Sent as A (seq 1) then B (seq 2) at the same client time, but B arrives first.
    let mut b = to_user("bob", "m-b", "B");
    b.client_seq = 2;
    b.create_time = 5_000;
    let mut a = to_user("bob", "m-a", "A");
    a.client_seq = 1;
    a.create_time = 5_000;
    e.send(&alice, b).await.unwrap();
    e.send(&alice, a).await.unwrap();
    let mut got = all_entries(&e, &bob).await;
    assert!(got[0].version < got[1].version, "server order: arrival");
    got.sort_by_key(|e| (e.create_time, e.client_seq));
    let texts: Vec<&str> = got.iter().map(|e| e.content.as_text().unwrap()).collect();
    assert_eq!(
        texts,
        vec!["A", "B"],
        "create_time then client_seq restores the sender's order"
    );
}

// ----------------------------------------------------------------- sync

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

// ---------------------------------------------------------- multi-device

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
async fn login_policy_single_kicks_the_older_session() {
    let e = engine_with(|s| s.login_policy = LoginPolicy::Single).await;
    let (_old, mut old_q) = login(&e, "ann", "phone").await;
    let (_new, _) = login(&e, "ann", "laptop").await;
    let events = drain(&mut old_q);
    assert!(
        matches!(events.as_slice(), [PushEvent::Kick { .. }]),
        "got {events:?}"
    );
    let online = e
        .presence(&AppId::new(APP), &[UserId::new("ann")])
        .await
        .unwrap();
    assert_eq!(online[0].devices.len(), 1);
    assert_eq!(online[0].devices[0].device.as_str(), "laptop");
}

#[tokio::test]
async fn login_policy_one_per_platform_keeps_other_platforms() {
    let e = engine_with(|s| s.login_policy = LoginPolicy::OnePerPlatform).await;
    let id = identity(APP, "ann");
    let (_a, mut a_q) = e
        .connect(&id, &DeviceId::new("iphone-1"), "ios")
        .await
        .unwrap();
    let (_w, mut w_q) = e
        .connect(&id, &DeviceId::new("browser"), "web")
        .await
        .unwrap();
    let (_b, _) = e
        .connect(&id, &DeviceId::new("iphone-2"), "ios")
        .await
        .unwrap();
    assert!(matches!(
        drain(&mut a_q).as_slice(),
        [PushEvent::Kick { .. }]
    ));
    assert!(drain(&mut w_q).is_empty(), "the web session stays");
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

// ----------------------------------------------------------- read state

#[tokio::test]
async fn mark_read_updates_unread_counts_and_sends_a_cursor_and_a_receipt() {
    let e = engine().await;
    let (alice, mut alice_q) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let (_bob_web, mut bob_web_q) = login(&e, "bob", "web").await;
    let mut last = None;
    for i in 0..3 {
        last = Some(
            e.send(&alice, to_user("bob", &format!("m{i}"), "x"))
                .await
                .unwrap(),
        );
    }
    let counts = e.unread(&bob).await.unwrap();
    assert_eq!(
        counts,
        vec![UnreadCount {
            conversation: Conversation::direct(&alice.user),
            count: 3
        }]
    );
    drain(&mut bob_web_q);
    let marked = e
        .mark_read(&bob, &Conversation::direct(&alice.user), 2)
        .await
        .unwrap();
    assert_eq!(marked, 2);
    assert_eq!(e.unread(&bob).await.unwrap()[0].count, 1);
    // Bob's other device learns the read position.
    let cursor = drain(&mut bob_web_q)
        .into_iter()
        .find_map(|ev| match ev {
            PushEvent::Entry { entry, .. } if entry.kind == EntryKind::ReadCursor => Some(entry),
            _ => None,
        })
        .expect("a read cursor reaches bob's other device");
    assert_eq!(cursor.read_up_to, 2);
    // Alice gets a receipt naming the newest message bob read.
    let receipt = drain(&mut alice_q)
        .into_iter()
        .find_map(|ev| match ev {
            PushEvent::Entry { entry, .. } if entry.kind == EntryKind::ReadReceipt => Some(entry),
            _ => None,
        })
        .expect("alice gets a read receipt");
    assert_eq!(receipt.conversation, Conversation::direct(&bob.user));
    assert_ne!(
        Some(receipt.server_msg_id),
        last.map(|r| r.server_msg_id),
        "only two of three were read"
    );
    e.mark_read(&bob, &Conversation::direct(&alice.user), u64::MAX)
        .await
        .unwrap();
    assert!(e.unread(&bob).await.unwrap().is_empty());
}

#[tokio::test]
async fn super_group_unread_counts_come_from_the_read_seq() {
    let e = engine().await;
    let (ann, _) = login(&e, "ann", "phone").await;
    let (bo, _) = login(&e, "bo", "phone").await;
    let to = super_group_of(&e, &ann, "town", &["bo"]).await;
    for i in 0..5 {
        e.send(&ann, text_to(to.clone(), &format!("{i}"), "x"))
            .await
            .unwrap();
    }
    assert_eq!(
        e.unread(&bo).await.unwrap(),
        vec![UnreadCount {
            conversation: to.clone(),
            count: 5
        }]
    );
    assert_eq!(e.mark_read(&bo, &to, 3).await.unwrap(), 3);
    assert_eq!(e.unread(&bo).await.unwrap()[0].count, 2);
}

#[tokio::test]
async fn one_indexer_pass_drains_a_backlog_of_full_batches() {
    let e = engine_from(
        Engine::builder().config(EngineConfig {
            index_batch: 4,
            ..Default::default()
        }),
        |_| {},
    )
    .await;
    let (alice, _) = login(&e, "alice", "phone").await;
    for i in 0..7 {
        e.send(
            &alice,
            to_user("bob", &format!("m{i}"), "needle in a haystack"),
        )
        .await
        .unwrap();
    }
    // Seven messages, two owners' copies each: batches of 4, 4, 4 and 2.
    assert_eq!(e.index_pending().await.unwrap(), 14);
    let q = HistoryQuery {
        words: "needle".into(),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(e.search(&alice, q).await.unwrap().total, 7);
    assert_eq!(e.index_pending().await.unwrap(), 0, "nothing left over");
}

// -------------------------------------------------------- recall, delete

#[tokio::test]
async fn recall_within_the_window_reaches_every_owner_and_clears_unread_and_search() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, mut bob_q) = login(&e, "bob", "phone").await;
    let sent = e
        .send(&alice, to_user("bob", "m", "wrong chat oops"))
        .await
        .unwrap();
    e.index_pending().await.unwrap();
    let q = HistoryQuery {
        words: "oops".into(),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(e.search(&bob, q.clone()).await.unwrap().total, 1);
    drain(&mut bob_q);
    let to = Conversation::direct(&bob.user);
    e.recall(&alice, &to, &sent.server_msg_id).await.unwrap();
    let bob_entries = all_entries(&e, &bob).await;
    let recall = bob_entries.last().unwrap();
    assert_eq!(recall.kind, EntryKind::Recall);
    assert_eq!(recall.server_msg_id, sent.server_msg_id);
    assert_eq!(
        all_entries(&e, &alice).await.last().unwrap().kind,
        EntryKind::Recall,
        "the sender's devices too"
    );
    assert!(
        e.unread(&bob).await.unwrap().is_empty(),
        "a recalled message stops counting"
    );
    assert!(
        drain(&mut bob_q).iter().any(
            |ev| matches!(ev, PushEvent::Entry { entry, .. } if entry.kind == EntryKind::Recall)
        )
    );
    e.index_pending().await.unwrap();
    assert_eq!(
        e.search(&bob, q.clone()).await.unwrap().total,
        0,
        "and leaves the search index"
    );
    assert_eq!(e.search(&alice, q).await.unwrap().total, 0);
}

#[tokio::test]
async fn a_message_recalled_before_the_indexer_ran_is_never_found() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let sent = e
        .send(&alice, to_user("bob", "m", "regrettable words"))
        .await
        .unwrap();
    e.recall(
        &alice,
        &Conversation::direct(&bob.user),
        &sent.server_msg_id,
    )
    .await
    .unwrap();
    // Message and recall are drained from the outbox in one batch.
    e.index_pending().await.unwrap();
    let q = HistoryQuery {
        words: "regrettable".into(),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(e.search(&bob, q.clone()).await.unwrap().total, 0);
    assert_eq!(e.search(&alice, q).await.unwrap().total, 0);
}

#[tokio::test]
async fn recall_after_the_window_is_refused() {
    let e = engine_with(|s| s.recall_window_ms = 0).await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let sent = e.send(&alice, to_user("bob", "m", "x")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let err = e
        .recall(
            &alice,
            &Conversation::direct(&UserId::new("bob")),
            &sent.server_msg_id,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Expired);
}

#[tokio::test]
async fn only_the_sender_may_recall() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let sent = e.send(&alice, to_user("bob", "m", "x")).await.unwrap();
    let err = e
        .recall(
            &bob,
            &Conversation::direct(&alice.user),
            &sent.server_msg_id,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
}

#[tokio::test]
async fn recall_in_a_super_group_appends_a_recall_entry() {
    let e = engine().await;
    let (ann, _) = login(&e, "ann", "phone").await;
    let to = super_group_of(&e, &ann, "t", &[]).await;
    let sent = e.send(&ann, text_to(to.clone(), "k", "x")).await.unwrap();
    let r = e.recall(&ann, &to, &sent.server_msg_id).await.unwrap();
    assert_eq!(r.seq, 2);
    let (page, _) = e
        .pull_channel(&ann, &GroupId::new("t"), 1, 10)
        .await
        .unwrap();
    assert_eq!(page.entries[0].kind, EntryKind::Recall);
    assert_eq!(page.entries[0].server_msg_id, sent.server_msg_id);
}

#[tokio::test]
async fn delete_for_me_touches_only_my_own_inbox() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let sent = e
        .send(&alice, to_user("bob", "m", "keep or not"))
        .await
        .unwrap();
    let v = e.delete_for_me(&bob, &sent.server_msg_id).await.unwrap();
    let bob_entries = all_entries(&e, &bob).await;
    assert_eq!(bob_entries.last().unwrap().kind, EntryKind::Delete);
    assert_eq!(bob_entries.last().unwrap().version, v);
    assert_eq!(
        all_entries(&e, &alice).await.len(),
        1,
        "alice's copy is untouched"
    );
    assert!(e.unread(&bob).await.unwrap().is_empty());
    let missing = e.delete_for_me(&bob, &MsgId([9; 16])).await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
}

// ----------------------------------------------------------- system push

#[tokio::test]
async fn a_system_push_to_a_user_is_stored_in_their_inbox_and_pushed() {
    let e = engine().await;
    let (bob, mut bob_q) = login(&e, "bob", "phone").await;
    e.system_push(
        &bob.app,
        SystemTarget::User(bob.user.clone()),
        Content::text("maintenance at 2am"),
        &[],
    )
    .await
    .unwrap();
    let entries = all_entries(&e, &bob).await;
    assert_eq!(entries[0].kind, EntryKind::SystemNotice);
    assert_eq!(entries[0].conversation.kind, ConversationKind::System);
    assert!(matches!(&drain(&mut bob_q)[..], [PushEvent::Entry { .. }]));
    assert_eq!(
        e.unread(&bob).await.unwrap()[0].count,
        1,
        "notices count as unread"
    );
}

#[tokio::test]
async fn a_system_push_to_a_group_reaches_every_member() {
    let e = engine().await;
    let (ann, _) = login(&e, "ann", "phone").await;
    let (bo, _) = login(&e, "bo", "phone").await;
    group_of(&e, &ann, "team", &["bo"]).await;
    e.system_push(
        &ann.app,
        SystemTarget::Group(GroupId::new("team")),
        Content::text("welcome"),
        &[],
    )
    .await
    .unwrap();
    for s in [&ann, &bo] {
        let entries = all_entries(&e, s).await;
        assert_eq!(entries.len(), 1);
        assert_eq!(
            entries[0].conversation,
            Conversation::group(&GroupId::new("team"))
        );
        assert_eq!(entries[0].kind, EntryKind::SystemNotice);
    }
}

#[tokio::test]
async fn a_system_push_to_the_app_reaches_everyone_online_and_is_kept_for_later() {
    let e = engine().await;
    let (ann, mut ann_q) = login(&e, "ann", "phone").await;
    let (_bo, mut bo_q) = login(&e, "bo", "web").await;
    let r = e
        .system_push(
            &ann.app,
            SystemTarget::App,
            Content::text("new version out"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.seq, 1);
    for q in [&mut ann_q, &mut bo_q] {
        assert!(matches!(&drain(q)[..], [PushEvent::Broadcast { .. }]));
    }
    // Someone offline now pulls it later from the broadcast log.
    let (cy, _) = login(&e, "cy", "phone").await;
    let (page, _) = e
        .pull_channel(&cy, &GroupId::new(BROADCAST_CHANNEL), 0, 10)
        .await
        .unwrap();
    assert_eq!(page.entries[0].content.as_text(), Some("new version out"));
}

// --------------------------------------------------------- multi-tenant

#[tokio::test]
async fn apps_are_isolated_in_inboxes_pushes_groups_and_search() {
    let e = engine().await;
    e.put_app(AppConfig::new(
        "other",
        "another-secret-of-thirty-two-bytes!",
    ))
    .await
    .unwrap();
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob_here, _) = login(&e, "bob", "phone").await;
    let (bob_there, mut bob_there_q) = e
        .connect(&identity("other", "bob"), &DeviceId::new("phone"), "ios")
        .await
        .unwrap();
    e.send(&alice, to_user("bob", "m", "tenant secret"))
        .await
        .unwrap();
    e.index_pending().await.unwrap();
    assert_eq!(all_entries(&e, &bob_here).await.len(), 1);
    assert!(
        all_entries(&e, &bob_there).await.is_empty(),
        "the other app's bob has nothing"
    );
    assert!(drain(&mut bob_there_q).is_empty(), "and was pushed nothing");
    let q = HistoryQuery {
        words: "secret".into(),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(e.search(&bob_there, q).await.unwrap().total, 0);
    group_of(&e, &alice, "team", &["bob"]).await;
    assert_eq!(
        e.group(&AppId::new("other"), &GroupId::new("team"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    let unknown = e
        .connect(&identity("ghost-app", "x"), &DeviceId::new("d"), "ios")
        .await
        .unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::NotFound);
}

// ------------------------------------------------------------- business

struct Echo(&'static str);

#[async_trait::async_trait]
impl BusinessHandler for Echo {
    async fn handle(&self, caller: &Caller, command: u16, body: Bytes) -> Result<Bytes> {
        Ok(Bytes::from(format!(
            "{}:{}:{command:#x}:{}",
            self.0,
            caller.user,
            String::from_utf8_lossy(&body)
        )))
    }
}

#[tokio::test]
async fn business_commands_are_routed_to_the_apps_handler_then_the_default() {
    let e = engine_from(
        Engine::builder()
            .business_handler(
                Some(AppId::new(APP)),
                0x8000..=0x80ff,
                Arc::new(Echo("acme-orders")),
            )
            .business_handler(None, 0x8000..=0x8fff, Arc::new(Echo("shared"))),
        |_| {},
    )
    .await;
    e.put_app(AppConfig::new(
        "other",
        "another-secret-of-thirty-two-bytes!",
    ))
    .await
    .unwrap();
    let (ann, _) = login(&e, "ann", "phone").await;
    let (zed, _) = e
        .connect(&identity("other", "zed"), &DeviceId::new("d"), "ios")
        .await
        .unwrap();
    let own = e
        .handle_business(&ann, 0x8001, Bytes::from_static(b"hi"))
        .await
        .unwrap();
    assert_eq!(own, Bytes::from("acme-orders:ann:0x8001:hi"));
    let fallback = e
        .handle_business(&zed, 0x8001, Bytes::from_static(b"hi"))
        .await
        .unwrap();
    assert_eq!(fallback, Bytes::from("shared:zed:0x8001:hi"));
    let outside = e
        .handle_business(&ann, 0x9000, Bytes::new())
        .await
        .unwrap_err();
    assert_eq!(outside.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn business_handler_ranges_must_be_in_the_business_range_and_not_overlap() {
    let low = Engine::builder()
        .business_handler(None, 0x10..=0x20, Arc::new(Echo("x")))
        .build();
    assert_eq!(low.err().map(|e| e.kind()), Some(ErrorKind::InvalidInput));
    let overlap = Engine::builder()
        .business_handler(None, 0x8000..=0x8010, Arc::new(Echo("a")))
        .business_handler(None, 0x8010..=0x8020, Arc::new(Echo("b")))
        .build();
    assert!(overlap.err().unwrap().message().contains("overlap"));
}

// -------------------------------------------------------------- content

#[tokio::test]
async fn content_beyond_the_apps_limits_is_refused_before_anything_is_stored() {
    let e = engine_with(|s| s.max_text_bytes = 10).await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let err = e
        .send(&alice, to_user("bob", "m", "this is far too long"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge);
    assert!(err.message().contains("at most 10"), "{}", err.message());
    assert!(all_entries(&e, &alice).await.is_empty());
}

#[tokio::test]
async fn every_content_type_of_the_seed_is_accepted_when_well_formed() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let media = Content::media(&pb::MediaRef {
        url: "https://cdn.example/v.mp4".into(),
        size: 10_000_000,
        mime: "video/mp4".into(),
        duration_ms: 30_000,
        ..Default::default()
    });
    let voice = Content::voice(&pb::Voice {
        mime: "audio/ogg".into(),
        duration_ms: 2_000,
        data: Bytes::from(vec![1u8; 3000]),
    });
    let json = Content::custom(&pb::Custom {
        format: pb::CustomFormat::Json as i32,
        r#type: "order.card".into(),
        body: Bytes::from(r#"{"order":42}"#),
    });
    let xml = Content::custom(&pb::Custom {
        format: pb::CustomFormat::Xml as i32,
        r#type: "card".into(),
        body: Bytes::from("<card id=\"1\"/>"),
    });
    for (i, c) in [media, voice, json, xml].into_iter().enumerate() {
        let mut req = to_user("bob", &format!("c{i}"), "");
        req.content = c;
        e.send(&alice, req).await.unwrap();
    }
    assert_eq!(all_entries(&e, &alice).await.len(), 4);
}

#[tokio::test]
async fn malformed_content_is_refused_with_a_reason() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let cases = [
        Content::media(&pb::MediaRef {
            url: "ftp://x".into(),
            mime: "image/png".into(),
            ..Default::default()
        }),
        Content::custom(&pb::Custom {
            format: pb::CustomFormat::Json as i32,
            r#type: "t".into(),
            body: Bytes::from("{not json"),
        }),
        Content {
            kind: ContentType::Text,
            body: Bytes::from_static(&[0xff, 0xfe]),
        },
        Content::voice(&pb::Voice {
            mime: "audio/ogg".into(),
            duration_ms: 1,
            data: Bytes::new(),
        }),
        Content::none(),
    ];
    for (i, c) in cases.into_iter().enumerate() {
        let mut req = to_user("bob", &format!("bad{i}"), "");
        req.content = c;
        let err = e.send(&alice, req).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "case {i}: {err}");
    }
    let no_id = e.send(&alice, to_user("bob", "", "x")).await.unwrap_err();
    assert!(no_id.message().contains("client_msg_id"));
}

// --------------------------------------------------------------- search

#[tokio::test]
async fn search_finds_only_the_callers_own_messages() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let (carol, _) = login(&e, "carol", "phone").await;
    e.send(&alice, to_user("bob", "1", "大家好，明天开会"))
        .await
        .unwrap();
    e.send(&carol, to_user("carol2", "2", "大家 private"))
        .await
        .unwrap();
    e.index_pending().await.unwrap();
    let q = HistoryQuery {
        words: "大家".into(),
        limit: 10,
        ..Default::default()
    };
    let hits = e.search(&bob, q.clone()).await.unwrap();
    assert_eq!(hits.total, 1);
    assert_eq!(hits.hits[0].doc.owner, bob.user);
    assert_eq!(
        e.search(&alice, q.clone()).await.unwrap().total,
        1,
        "the sender finds her own copy"
    );
    assert_eq!(
        e.search(&carol, q).await.unwrap().total,
        1,
        "carol finds only hers"
    );
}

#[tokio::test]
async fn messages_acknowledged_before_a_crash_are_indexed_on_the_next_start() {
    let inbox = Arc::new(MemoryInbox::new());
    let index = Arc::new(MemorySearch::new());
    let apps = Arc::new(MemoryApps::new());
    let build = || {
        Engine::builder()
            .inbox(inbox.clone())
            .apps(apps.clone())
            .search(Some(index.clone()))
            .build()
            .unwrap()
    };
    let first = build();
    first
        .put_app(AppConfig::new(APP, "a-secret-of-at-least-thirty-two-bytes"))
        .await
        .unwrap();
    let (alice, _) = login(&first, "alice", "phone").await;
    first
        .send(&alice, to_user("bob", "m", "acknowledged but not indexed"))
        .await
        .unwrap();
    drop(first); // the process dies before its indexer ran
    let second = build();
    assert_eq!(
        second.index_pending().await.unwrap(),
        2,
        "both owners' copies were waiting"
    );
    let (bob, _) = login(&second, "bob", "phone").await;
    let q = HistoryQuery {
        words: "acknowledged".into(),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(second.search(&bob, q).await.unwrap().total, 1);
}

// ------------------------------------------------------------ presence

#[tokio::test]
async fn presence_lists_every_online_device() {
    let e = engine().await;
    let (_a, _) = login(&e, "ann", "phone").await;
    let (_b, _) = login(&e, "ann", "web").await;
    let (bo, _) = login(&e, "bo", "phone").await;
    e.disconnect(&bo).await.unwrap();
    let p: Vec<UserPresence> = e
        .presence(&AppId::new(APP), &[UserId::new("ann"), UserId::new("bo")])
        .await
        .unwrap();
    assert_eq!(p[0].devices.len(), 2);
    assert!(p[1].devices.is_empty(), "bo went offline");
}

#[tokio::test]
async fn typing_is_pushed_to_the_peer_and_never_stored() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, mut bob_q) = login(&e, "bob", "phone").await;
    e.typing(&alice, &Conversation::direct(&bob.user))
        .await
        .unwrap();
    let events = drain(&mut bob_q);
    assert!(matches!(&events[..], [PushEvent::Typing { from, .. }] if from.as_str() == "alice"));
    assert!(all_entries(&e, &bob).await.is_empty());
}

// --------------------------------------------------------------- cluster

#[tokio::test]
async fn a_push_crosses_to_the_node_that_holds_the_receivers_session() {
    let inbox = Arc::new(MemoryInbox::new());
    let apps = Arc::new(MemoryApps::new());
    let presence = Arc::new(MemoryPresence::new());
    let bus = Arc::new(MemoryBus::new());
    let node = |name: &str| {
        Engine::builder()
            .config(EngineConfig {
                node: NodeId::new(name),
                ..Default::default()
            })
            .inbox(inbox.clone())
            .apps(apps.clone())
            .presence(presence.clone())
            .bus(bus.clone())
            .build()
            .unwrap()
    };
    let n1 = node("n1");
    let n2 = node("n2");
    bus.attach(NodeId::new("n1"), n1.hub());
    bus.attach(NodeId::new("n2"), n2.hub());
    n1.put_app(AppConfig::new(APP, "a-secret-of-at-least-thirty-two-bytes"))
        .await
        .unwrap();
    let (alice, _) = login(&n1, "alice", "phone").await;
    let (_bob, mut bob_q) = login(&n2, "bob", "phone").await;
    n1.send(&alice, to_user("bob", "m", "across nodes"))
        .await
        .unwrap();
    assert_eq!(pushed_texts(&drain(&mut bob_q)), vec!["across nodes"]);
}

/// A group store that counts how often the engine asks it anything.
struct CountingGroups {
    inner: MemoryGroups,
    reads: std::sync::atomic::AtomicUsize,
}

impl CountingGroups {
    fn read(&self) {
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    fn reads(&self) -> usize {
        self.reads.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[async_trait::async_trait]
impl GroupStore for CountingGroups {
    async fn create_group(&self, app: &AppId, group: &Group, members: &[Member]) -> Result<()> {
        self.inner.create_group(app, group, members).await
    }
    async fn group(&self, app: &AppId, id: &GroupId) -> Result<Option<Group>> {
        self.read();
        self.inner.group(app, id).await
    }
    async fn set_kind(&self, app: &AppId, id: &GroupId, kind: GroupKind) -> Result<()> {
        self.inner.set_kind(app, id, kind).await
    }
    async fn add_members(&self, app: &AppId, id: &GroupId, members: &[Member]) -> Result<u64> {
        self.inner.add_members(app, id, members).await
    }
    async fn remove_members(&self, app: &AppId, id: &GroupId, users: &[UserId]) -> Result<u64> {
        self.inner.remove_members(app, id, users).await
    }
    async fn members(&self, app: &AppId, id: &GroupId) -> Result<Vec<Member>> {
        self.read();
        self.inner.members(app, id).await
    }
    async fn member(&self, app: &AppId, id: &GroupId, user: &UserId) -> Result<Option<Member>> {
        self.read();
        self.inner.member(app, id, user).await
    }
    async fn member_count(&self, app: &AppId, id: &GroupId) -> Result<u64> {
        self.read();
        self.inner.member_count(app, id).await
    }
    async fn groups_of(&self, app: &AppId, user: &UserId) -> Result<Vec<GroupId>> {
        self.read();
        self.inner.groups_of(app, user).await
    }
    async fn roster(&self, app: &AppId, id: &GroupId) -> Result<Option<(Group, Vec<Member>)>> {
        self.read();
        self.inner.roster(app, id).await
    }
}

#[tokio::test]
async fn a_group_send_reads_the_group_store_once() {
    let groups = Arc::new(CountingGroups {
        inner: MemoryGroups::new(),
        reads: Default::default(),
    });
    let e = engine_from(Engine::builder().groups(groups.clone()), |_| {}).await;
    let (ann, _) = login(&e, "ann", "phone").await;
    group_of(&e, &ann, "team", &["bo", "cy"]).await;
    let town = super_group_of(&e, &ann, "town", &["bo"]).await;

    let before = groups.reads();
    e.send(&ann, to_group("team", "g-1", "standup"))
        .await
        .unwrap();
    assert_eq!(groups.reads() - before, 1, "a normal group: one read");
    let before = groups.reads();
    e.send(&ann, text_to(town, "s-1", "hello town"))
        .await
        .unwrap();
    assert_eq!(groups.reads() - before, 1, "a super group: one read");
}

#[tokio::test]
async fn a_normal_group_named_as_a_super_group_is_still_fanned_out_under_its_own_kind() {
    let e = engine().await;
    let (ann, _) = login(&e, "ann", "phone").await;
    let (bo, _) = login(&e, "bo", "phone").await;
    group_of(&e, &ann, "team", &["bo"]).await;
    let r = e
        .send(
            &ann,
            text_to(
                Conversation::super_group(&GroupId::new("team")),
                "k-1",
                "which kind?",
            ),
        )
        .await
        .unwrap();
    assert_eq!(r.seq, 0, "not written to a channel log");
    let entries = all_entries(&e, &bo).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].conversation,
        Conversation::group(&GroupId::new("team")),
        "stored under the group's real kind, so read state and recall find it"
    );
}

#[tokio::test]
async fn a_recall_after_the_group_became_a_super_group_reaches_every_inbox_copy() {
    let e = engine_with(|s| s.super_group_threshold = 3).await;
    let (ann, _) = login(&e, "ann", "phone").await;
    let (bo, _) = login(&e, "bo", "phone").await;
    let g = group_of(&e, &ann, "grows", &["bo", "cy"]).await;
    let sent = e
        .send(&ann, to_group("grows", "before", "fanned out on write"))
        .await
        .unwrap();
    e.add_members(&ann.app, Some(&ann.user), &g.id, &[UserId::new("di")])
        .await
        .unwrap();
    assert_eq!(
        e.group(&ann.app, &g.id).await.unwrap().kind,
        GroupKind::Super
    );
    let r = e
        .recall(&ann, &Conversation::group(&g.id), &sent.server_msg_id)
        .await
        .unwrap();
    assert_eq!(r.seq, 0, "the recall went to the inboxes, not the log");
    assert!(r.version > sent.version, "the sender's own recall entry");
    let last = all_entries(&e, &bo).await.pop().unwrap();
    assert_eq!(last.kind, EntryKind::Recall);
    assert_eq!(last.server_msg_id, sent.server_msg_id);
    let (log, _) = e.pull_channel(&bo, &g.id, 0, 10).await.unwrap();
    assert!(log.entries.is_empty(), "nothing in the super group's log");
}

#[tokio::test]
async fn a_delete_answers_with_the_version_of_the_callers_delete_entry() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let sent = e
        .send(&alice, to_user("bob", "d-1", "delete me"))
        .await
        .unwrap();
    let version = e.delete_for_me(&bob, &sent.server_msg_id).await.unwrap();
    let last = all_entries(&e, &bob).await.pop().unwrap();
    assert_eq!(last.kind, EntryKind::Delete);
    assert_eq!(last.direction, Direction::In, "a received message's view");
    assert_eq!(version, last.version);
}
