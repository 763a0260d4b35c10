//! Sessions: login policies, presence and typing.

use super::*;

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

#[tokio::test]
async fn a_restarted_node_never_kicks_a_live_session_for_a_route_of_its_previous_run() {
    let presence: Arc<dyn Presence> = Arc::new(MemoryPresence::new());
    let node = |p: &Arc<dyn Presence>| Engine::builder().presence(p.clone());
    // The first run: ann's phone signs in, then the node dies (no
    // disconnect: its route stays in presence).
    let first = engine_from(node(&presence), |_| {}).await;
    let (_ann, _) = login(&first, "ann", "phone").await;
    drop(first);
    tokio::time::sleep(Duration::from_millis(2)).await;

    // The same node runs again: bo signs in first, then ann's phone comes
    // back, displacing the stale route of the first run.
    let second = engine_from(node(&presence), |_| {}).await;
    let (_bo, mut bo_q) = login(&second, "bo", "phone").await;
    let (_ann, _) = login(&second, "ann", "phone").await;
    assert!(
        drain(&mut bo_q).is_empty(),
        "a session of the new run was kicked by ann's stale route"
    );
}
