//! System notices to a user, a group and the whole app.

use super::*;

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
