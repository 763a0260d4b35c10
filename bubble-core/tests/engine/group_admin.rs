//! Running a group: info, roles, mutes, transfer, dismissal, and the notices
//! members get of each.

use super::*;

/// The group notices (custom JSON of type `bubble.group`) in `s`'s inbox.
async fn notices(e: &Engine, s: &Session) -> Vec<serde_json::Value> {
    all_entries(e, s)
        .await
        .iter()
        .filter(|x| x.kind == EntryKind::SystemNotice)
        .filter_map(|x| {
            let custom = <pb::Custom as prost::Message>::decode(x.content.body.clone()).ok()?;
            (custom.r#type == bubble_core::engine::GROUP_NOTICE_TYPE)
                .then(|| serde_json::from_slice(&custom.body).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn owner_and_admins_change_the_info_and_members_are_told() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let (carol, _) = login(&e, "carol", "phone").await;
    group_of(&e, &alice, "team", &["bob", "carol"]).await;
    let team = GroupId::new("team");
    let change = GroupChange {
        name: Some("The Team".into()),
        announcement: Some("standup at 10".into()),
        avatar_url: Some("https://cdn.example/team.png".into()),
        ..Default::default()
    };
    let denied = e.change_group(&bob, &team, &change).await.unwrap_err();
    assert_eq!(denied.kind(), ErrorKind::PermissionDenied, "{denied}");
    e.set_member_role(&alice, &team, &bob.user, Role::Admin)
        .await
        .unwrap();
    let changed = e.change_group(&bob, &team, &change).await.unwrap();
    assert_eq!(changed.announcement, "standup at 10");
    assert_eq!(e.group(&alice.app, &team).await.unwrap().name, "The Team");
    let told = notices(&e, &carol).await;
    let events: Vec<&str> = told.iter().map(|n| n["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["role", "info"]);
    assert_eq!(told[1]["by"], "bob");
    assert_eq!(told[1]["announcement"], "standup at 10");
    let not_owner = e
        .set_member_role(&bob, &team, &carol.user, Role::Admin)
        .await
        .unwrap_err();
    assert_eq!(
        not_owner.kind(),
        ErrorKind::PermissionDenied,
        "admins do not name admins"
    );
    let bad_url = GroupChange {
        avatar_url: Some("javascript:alert(1)".into()),
        ..Default::default()
    };
    assert_eq!(
        e.change_group(&alice, &team, &bad_url)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    let mine: Vec<String> = e
        .my_groups(&carol)
        .await
        .unwrap()
        .iter()
        .map(|g| format!("{} {}", g.group.name, g.members))
        .collect();
    assert_eq!(mine, ["The Team 3"]);
}

#[tokio::test]
async fn a_muted_member_or_a_muted_group_refuses_plain_members_sends() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let (carol, _) = login(&e, "carol", "phone").await;
    group_of(&e, &alice, "team", &["bob", "carol"]).await;
    let team = GroupId::new("team");
    let hour = now_millis() + 3_600_000;
    e.mute_member(&alice, &team, &bob.user, hour).await.unwrap();
    let muted = e
        .send(&bob, to_group("team", "b1", "hello?"))
        .await
        .unwrap_err();
    assert_eq!(muted.kind(), ErrorKind::PermissionDenied, "{muted}");
    assert!(muted.to_string().contains("muted"), "{muted}");
    e.send(&carol, to_group("team", "c1", "I can"))
        .await
        .unwrap();
    let up = e
        .mute_member(&carol, &team, &bob.user, 0)
        .await
        .unwrap_err();
    assert_eq!(
        up.kind(),
        ErrorKind::PermissionDenied,
        "members do not mute"
    );
    e.mute_member(&alice, &team, &bob.user, 0).await.unwrap();
    e.send(&bob, to_group("team", "b2", "back")).await.unwrap();

    let all = GroupChange {
        muted: Some(true),
        ..Default::default()
    };
    e.change_group(&alice, &team, &all).await.unwrap();
    assert_eq!(
        e.send(&carol, to_group("team", "c2", "x"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::PermissionDenied
    );
    e.send(&alice, to_group("team", "a1", "announcements only"))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_owner_hands_the_group_on_and_dismisses_it() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let (carol, _) = login(&e, "carol", "phone").await;
    group_of(&e, &alice, "team", &["bob", "carol"]).await;
    let team = GroupId::new("team");
    let not_yours = e
        .transfer_group(&bob, &team, &carol.user)
        .await
        .unwrap_err();
    assert_eq!(not_yours.kind(), ErrorKind::PermissionDenied);
    e.transfer_group(&alice, &team, &bob.user).await.unwrap();
    let group = e.group(&alice.app, &team).await.unwrap();
    assert_eq!(group.owner, bob.user);
    let roles: Vec<(String, Role)> = e
        .members(&alice.app, &team, None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.user.to_string(), m.role))
        .collect();
    assert_eq!(
        roles,
        [
            ("alice".to_owned(), Role::Admin),
            ("bob".to_owned(), Role::Owner),
            ("carol".to_owned(), Role::Member)
        ]
    );
    let owner_out = e
        .remove_group_members(&alice, &team, std::slice::from_ref(&bob.user))
        .await
        .unwrap_err();
    assert_eq!(owner_out.kind(), ErrorKind::PermissionDenied);
    e.remove_group_members(&alice, &team, std::slice::from_ref(&carol.user))
        .await
        .unwrap();
    assert_eq!(
        e.dismiss_group(&alice, &team).await.unwrap_err().kind(),
        ErrorKind::PermissionDenied,
        "an admin does not dismiss"
    );
    e.dismiss_group(&bob, &team).await.unwrap();
    assert_eq!(
        e.group(&alice.app, &team).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let events: Vec<String> = notices(&e, &alice)
        .await
        .iter()
        .map(|n| n["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(events, ["owner", "removed", "dismissed"]);
    assert!(e.my_groups(&alice).await.unwrap().is_empty());
    assert!(
        all_entries(&e, &alice)
            .await
            .iter()
            .any(|x| x.conversation == Conversation::group(&team)),
        "what was said stays in the history"
    );
}
