//! Sending: 1:1, groups, super groups, ordering fields and content rules.

use super::*;

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
async fn server_msg_id_is_its_time_then_a_stable_hash_of_sender_receiver_and_a_unique_id() {
    use bubble_core::ids::message_id;
    let app = AppId::new(APP);
    let to = Conversation::direct(&UserId::new("bob"));
    let node = NodeId::new("n1");
    let nonce = [7u8; 16];
    const T: u64 = 1_764_979_200_123;
    let a = message_id(&app, &UserId::new("alice"), &to, &node, &nonce, 1, T);
    assert_eq!(
        a,
        message_id(&app, &UserId::new("alice"), &to, &node, &nonce, 1, T),
        "stable"
    );
    assert_ne!(
        a,
        message_id(&app, &UserId::new("alice"), &to, &node, &nonce, 2, T),
        "unique id matters"
    );
    assert_ne!(
        a,
        message_id(&app, &UserId::new("alicx"), &to, &node, &nonce, 1, T),
        "sender matters"
    );
    let to_b = Conversation::direct(&UserId::new("bob2"));
    assert_ne!(
        a,
        message_id(&app, &UserId::new("alice"), &to_b, &node, &nonce, 1, T),
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
        T,
    );
    let y = message_id(
        &app,
        &UserId::new("a"),
        &Conversation::direct(&UserId::new("bc")),
        &node,
        &nonce,
        1,
        T,
    );
    assert_ne!(x, y);
    // The first six bytes are the time, big-endian: a later millisecond
    // sorts after, whatever its hash.
    assert_eq!(a.0[..6], T.to_be_bytes()[2..]);
    for unique in 0..50 {
        let later = message_id(
            &app,
            &UserId::new("alice"),
            &to,
            &node,
            &nonce,
            unique,
            T + 1,
        );
        assert!(later > a, "{later} made after {a}");
    }
    // Two hundred ids from one generator never collide, carry the server
    // time of their message and sort in the order they were sent.
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let mut seen = std::collections::HashSet::new();
    let mut previous_time = 0;
    for i in 0..200 {
        let before = now_millis() as u64;
        let r = e
            .send(&alice, to_user("bob", &format!("c{i}"), "x"))
            .await
            .unwrap();
        let after = now_millis() as u64;
        assert!(seen.insert(r.server_msg_id));
        let mut time = [0u8; 8];
        time[2..].copy_from_slice(&r.server_msg_id.0[..6]);
        let time = u64::from_be_bytes(time);
        assert!(
            (before..=after).contains(&time),
            "{time} not in {before}..={after}"
        );
        assert_eq!(time as i64, r.server_time, "the id's time is the message's");
        assert!(time >= previous_time);
        previous_time = time;
    }
}

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
