//! Conformance checks for [`GroupStore`].

use std::sync::Arc;

use super::checks;
use crate::error::ErrorKind;
use crate::ports::GroupStore;
use crate::types::*;

/// Runs every group check against `store`.
pub async fn groups(store: Arc<dyn GroupStore>) {
    super::run_checks("GroupStore", store, CHECKS).await;
}

const CHECKS: &[super::Check<dyn GroupStore>] = checks![dyn GroupStore;
    a_created_group_reads_back_with_its_members,
    a_roster_is_the_group_with_its_members_in_one_read,
    rosters_read_at_once_each_answer_their_own,
    creating_an_existing_group_is_already_exists,
    adding_members_keeps_existing_roles_and_counts_new_ones,
    removing_members_counts_removed_ones,
    groups_of_lists_a_users_groups_in_order,
    set_kind_turns_a_group_into_a_super_group,
    operations_on_a_missing_group_are_not_found,
    groups_are_isolated_between_apps,
    every_field_of_a_group_and_member_survives_a_round_trip,
    update_group_changes_its_info_but_not_its_identity,
    set_role_and_mute_member_change_one_member,
    transfer_owner_swaps_the_two_roles_and_the_owner_at_once,
    delete_group_removes_it_with_its_memberships,
];

async fn every_field_of_a_group_and_member_survives_a_round_trip(
    s: Arc<dyn GroupStore>,
    app: AppId,
) {
    let g = Group {
        avatar_url: "https://cdn.example/g.png".into(),
        announcement: "Be kind. 友善".into(),
        muted: true,
        ..group("full", "ann")
    };
    let quiet = Member {
        muted_until: 1_800_000_000_000,
        ..member("bo", Role::Admin)
    };
    s.create_group(&app, &g, &[member("ann", Role::Owner), quiet.clone()])
        .await
        .unwrap();
    assert_eq!(s.group(&app, &g.id).await.unwrap(), Some(g.clone()));
    assert_eq!(
        s.member(&app, &g.id, &UserId::new("bo")).await.unwrap(),
        Some(quiet.clone())
    );
    let (roster_group, roster) = s.roster(&app, &g.id).await.unwrap().unwrap();
    assert_eq!(roster_group, g);
    assert!(roster.contains(&quiet));
}

async fn update_group_changes_its_info_but_not_its_identity(s: Arc<dyn GroupStore>, app: AppId) {
    let g = group("g", "ann");
    s.create_group(&app, &g, &[member("ann", Role::Owner)])
        .await
        .unwrap();
    let changed = Group {
        name: "renamed".into(),
        avatar_url: "https://cdn.example/a.png".into(),
        announcement: "standup at 10".into(),
        muted: true,
        // Not changed by an update:
        kind: GroupKind::Super,
        owner: UserId::new("someone-else"),
        created_at: 5,
        ..g.clone()
    };
    s.update_group(&app, &changed).await.unwrap();
    let got = s.group(&app, &g.id).await.unwrap().unwrap();
    assert_eq!(
        (
            got.name.as_str(),
            got.avatar_url.as_str(),
            got.announcement.as_str(),
            got.muted
        ),
        (
            "renamed",
            "https://cdn.example/a.png",
            "standup at 10",
            true
        )
    );
    assert_eq!(
        (got.kind, got.owner, got.created_at),
        (g.kind, g.owner.clone(), g.created_at),
        "kind, owner and creation time stay"
    );
    let missing = s
        .update_group(&app, &group("nope", "ann"))
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
}

async fn set_role_and_mute_member_change_one_member(s: Arc<dyn GroupStore>, app: AppId) {
    let g = group("g", "ann");
    s.create_group(
        &app,
        &g,
        &[
            member("ann", Role::Owner),
            member("bo", Role::Member),
            member("cy", Role::Member),
        ],
    )
    .await
    .unwrap();
    let (bo, cy) = (UserId::new("bo"), UserId::new("cy"));
    assert!(s.set_role(&app, &g.id, &bo, Role::Admin).await.unwrap());
    assert!(
        s.mute_member(&app, &g.id, &cy, 1_900_000_000_000)
            .await
            .unwrap()
    );
    let bo_now = s.member(&app, &g.id, &bo).await.unwrap().unwrap();
    let cy_now = s.member(&app, &g.id, &cy).await.unwrap().unwrap();
    assert_eq!((bo_now.role, bo_now.muted_until), (Role::Admin, 0));
    assert_eq!(
        (cy_now.role, cy_now.muted_until),
        (Role::Member, 1_900_000_000_000)
    );
    assert!(s.mute_member(&app, &g.id, &cy, 0).await.unwrap(), "lifted");
    assert_eq!(
        s.member(&app, &g.id, &cy)
            .await
            .unwrap()
            .unwrap()
            .muted_until,
        0
    );
    let zed = UserId::new("zed");
    assert!(!s.set_role(&app, &g.id, &zed, Role::Admin).await.unwrap());
    assert!(!s.mute_member(&app, &g.id, &zed, 1).await.unwrap());
    let none = GroupId::new("none");
    assert_eq!(
        s.set_role(&app, &none, &bo, Role::Admin)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
}

async fn transfer_owner_swaps_the_two_roles_and_the_owner_at_once(
    s: Arc<dyn GroupStore>,
    app: AppId,
) {
    let g = group("g", "ann");
    s.create_group(
        &app,
        &g,
        &[member("ann", Role::Owner), member("bo", Role::Member)],
    )
    .await
    .unwrap();
    let (ann, bo) = (UserId::new("ann"), UserId::new("bo"));
    let not_owner = s.transfer_owner(&app, &g.id, &bo, &ann).await.unwrap_err();
    assert_eq!(not_owner.kind(), ErrorKind::InvalidInput, "{not_owner}");
    let stranger = s
        .transfer_owner(&app, &g.id, &ann, &UserId::new("zed"))
        .await
        .unwrap_err();
    assert_eq!(stranger.kind(), ErrorKind::InvalidInput, "{stranger}");
    assert_eq!(s.group(&app, &g.id).await.unwrap().unwrap().owner, ann);
    s.transfer_owner(&app, &g.id, &ann, &bo).await.unwrap();
    assert_eq!(s.group(&app, &g.id).await.unwrap().unwrap().owner, bo);
    let roles: Vec<(String, Role)> = s
        .members(&app, &g.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.user.to_string(), m.role))
        .collect();
    assert_eq!(
        roles,
        [
            ("ann".to_owned(), Role::Admin),
            ("bo".to_owned(), Role::Owner)
        ]
    );
}

async fn delete_group_removes_it_with_its_memberships(s: Arc<dyn GroupStore>, app: AppId) {
    let g = group("g", "ann");
    s.create_group(
        &app,
        &g,
        &[member("ann", Role::Owner), member("bo", Role::Member)],
    )
    .await
    .unwrap();
    assert!(s.delete_group(&app, &g.id).await.unwrap());
    assert!(s.group(&app, &g.id).await.unwrap().is_none());
    assert!(
        s.groups_of(&app, &UserId::new("bo"))
            .await
            .unwrap()
            .is_empty(),
        "no membership is left behind"
    );
    assert!(!s.delete_group(&app, &g.id).await.unwrap(), "gone already");
    // The id can be used again.
    s.create_group(&app, &g, &[member("cy", Role::Owner)])
        .await
        .unwrap();
    assert_eq!(s.member_count(&app, &g.id).await.unwrap(), 1);
}

fn group(id: &str, owner: &str) -> Group {
    Group {
        id: GroupId::new(id),
        name: format!("group {id}"),
        kind: GroupKind::Normal,
        owner: UserId::new(owner),
        created_at: 1_700_000_000_000,
        avatar_url: String::new(),
        announcement: String::new(),
        muted: false,
    }
}

fn member(user: &str, role: Role) -> Member {
    Member {
        user: UserId::new(user),
        role,
        joined_at: 1_700_000_000_001,
        muted_until: 0,
    }
}

async fn a_created_group_reads_back_with_its_members(s: Arc<dyn GroupStore>, app: AppId) {
    let g = group("g1", "ann");
    s.create_group(
        &app,
        &g,
        &[member("ann", Role::Owner), member("bo", Role::Member)],
    )
    .await
    .unwrap();
    assert_eq!(s.group(&app, &g.id).await.unwrap(), Some(g.clone()));
    let members = s.members(&app, &g.id).await.unwrap();
    assert_eq!(
        members,
        vec![member("ann", Role::Owner), member("bo", Role::Member)]
    );
    assert_eq!(s.member_count(&app, &g.id).await.unwrap(), 2);
    assert_eq!(
        s.member(&app, &g.id, &UserId::new("ann"))
            .await
            .unwrap()
            .map(|m| m.role),
        Some(Role::Owner)
    );
    assert!(
        s.member(&app, &g.id, &UserId::new("zed"))
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_roster_is_the_group_with_its_members_in_one_read(s: Arc<dyn GroupStore>, app: AppId) {
    let g = group("team", "ann");
    s.create_group(
        &app,
        &g,
        &[member("bo", Role::Member), member("ann", Role::Owner)],
    )
    .await
    .unwrap();
    let (read, members) = s
        .roster(&app, &g.id)
        .await
        .unwrap()
        .expect("the group exists");
    assert_eq!(read, g);
    assert_eq!(
        members,
        vec![member("ann", Role::Owner), member("bo", Role::Member)],
        "members ordered by user id"
    );
    assert!(
        s.roster(&app, &GroupId::new("nobody-made-this"))
            .await
            .unwrap()
            .is_none(),
        "a missing group has no roster"
    );
    assert!(
        s.roster(&AppId::new(format!("{app}-other")), &g.id)
            .await
            .unwrap()
            .is_none(),
        "another app does not see the group"
    );
}

/// Many rosters asked for at once (the sends of many groups, some of the
/// same group, some of a group that does not exist or is another app's):
/// each caller gets its own group's, as a lone read would give it. A store
/// that gathers concurrent reads into one must not mix them up.
async fn rosters_read_at_once_each_answer_their_own(s: Arc<dyn GroupStore>, app: AppId) {
    let other = AppId::new(format!("{app}-other"));
    let mut made = Vec::new();
    for i in 0..12 {
        let g = Group {
            name: format!("group {i}"),
            ..group(&format!("at-once-{i}"), "ann")
        };
        let mut members = vec![member("ann", Role::Owner)];
        members.extend((0..i % 5).map(|m| member(&format!("m{i}-{m}"), Role::Member)));
        s.create_group(&app, &g, &members).await.unwrap();
        made.push((g, members));
    }
    // The same id in another app, with other members.
    s.create_group(&other, &made[0].0, &[member("zed", Role::Owner)])
        .await
        .unwrap();
    let mut asks: Vec<(AppId, GroupId)> = Vec::new();
    for round in 0..3 {
        for (g, _) in made.iter().skip(round) {
            asks.push((app.clone(), g.id.clone()));
        }
        asks.push((
            app.clone(),
            GroupId::new(format!("at-once-missing-{round}")),
        ));
        asks.push((other.clone(), made[round].0.id.clone()));
    }
    let got = futures_util::future::join_all(asks.iter().map(|(a, id)| s.roster(a, id))).await;
    for ((a, id), roster) in asks.iter().zip(got) {
        let roster = roster.unwrap();
        let want = if *a == app {
            made.iter().find(|(g, _)| g.id == *id).map(|(g, m)| {
                let mut m = m.clone();
                m.sort_by(|x, y| x.user.cmp(&y.user));
                (g.clone(), m)
            })
        } else if *id == made[0].0.id {
            Some((made[0].0.clone(), vec![member("zed", Role::Owner)]))
        } else {
            None
        };
        assert_eq!(roster, want, "the roster of {id} in {a}");
    }
    let members =
        futures_util::future::join_all(made.iter().map(|(g, _)| s.members(&app, &g.id))).await;
    for ((g, want), got) in made.iter().zip(members) {
        let mut want = want.clone();
        want.sort_by(|x, y| x.user.cmp(&y.user));
        assert_eq!(got.unwrap(), want, "the members of {}", g.id);
    }
}

async fn creating_an_existing_group_is_already_exists(s: Arc<dyn GroupStore>, app: AppId) {
    let g = group("dup", "ann");
    s.create_group(&app, &g, &[member("ann", Role::Owner)])
        .await
        .unwrap();
    let err = s
        .create_group(&app, &g, &[member("bo", Role::Owner)])
        .await
        .expect_err("the id is taken");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(
        s.member_count(&app, &g.id).await.unwrap(),
        1,
        "the first group is untouched"
    );
}

async fn adding_members_keeps_existing_roles_and_counts_new_ones(
    s: Arc<dyn GroupStore>,
    app: AppId,
) {
    let g = group("g2", "ann");
    s.create_group(&app, &g, &[member("ann", Role::Owner)])
        .await
        .unwrap();
    let added = s
        .add_members(
            &app,
            &g.id,
            &[
                member("ann", Role::Member),
                member("cy", Role::Member),
                member("di", Role::Admin),
            ],
        )
        .await
        .unwrap();
    assert_eq!(added, 2, "ann was there already");
    assert_eq!(
        s.member(&app, &g.id, &UserId::new("ann"))
            .await
            .unwrap()
            .unwrap()
            .role,
        Role::Owner,
        "re-adding keeps the role"
    );
    assert_eq!(s.member_count(&app, &g.id).await.unwrap(), 3);
}

async fn removing_members_counts_removed_ones(s: Arc<dyn GroupStore>, app: AppId) {
    let g = group("g3", "ann");
    s.create_group(
        &app,
        &g,
        &[
            member("ann", Role::Owner),
            member("bo", Role::Member),
            member("cy", Role::Member),
        ],
    )
    .await
    .unwrap();
    let removed = s
        .remove_members(&app, &g.id, &[UserId::new("bo"), UserId::new("nobody")])
        .await
        .unwrap();
    assert_eq!(removed, 1);
    let users: Vec<String> = s
        .members(&app, &g.id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.user.to_string())
        .collect();
    assert_eq!(users, vec!["ann", "cy"]);
}

async fn groups_of_lists_a_users_groups_in_order(s: Arc<dyn GroupStore>, app: AppId) {
    for id in ["zeta", "alpha", "mid"] {
        s.create_group(&app, &group(id, "ann"), &[member("ann", Role::Owner)])
            .await
            .unwrap();
    }
    s.create_group(&app, &group("other", "bo"), &[member("bo", Role::Owner)])
        .await
        .unwrap();
    let ids: Vec<String> = s
        .groups_of(&app, &UserId::new("ann"))
        .await
        .unwrap()
        .iter()
        .map(|g| g.to_string())
        .collect();
    assert_eq!(ids, vec!["alpha", "mid", "zeta"]);
    s.remove_members(&app, &GroupId::new("mid"), &[UserId::new("ann")])
        .await
        .unwrap();
    assert_eq!(
        s.groups_of(&app, &UserId::new("ann")).await.unwrap().len(),
        2
    );
}

async fn set_kind_turns_a_group_into_a_super_group(s: Arc<dyn GroupStore>, app: AppId) {
    let g = group("big", "ann");
    s.create_group(&app, &g, &[member("ann", Role::Owner)])
        .await
        .unwrap();
    s.set_kind(&app, &g.id, GroupKind::Super).await.unwrap();
    assert_eq!(
        s.group(&app, &g.id).await.unwrap().unwrap().kind,
        GroupKind::Super
    );
}

async fn operations_on_a_missing_group_are_not_found(s: Arc<dyn GroupStore>, app: AppId) {
    let id = GroupId::new("ghost");
    assert!(s.group(&app, &id).await.unwrap().is_none());
    for err in [
        s.set_kind(&app, &id, GroupKind::Super).await.err(),
        s.add_members(&app, &id, &[member("a", Role::Member)])
            .await
            .err(),
        s.members(&app, &id).await.err(),
        s.member_count(&app, &id).await.err(),
    ] {
        assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::NotFound));
    }
}

async fn groups_are_isolated_between_apps(s: Arc<dyn GroupStore>, app: AppId) {
    let other = super::fresh_app();
    let g = group("shared-name", "ann");
    s.create_group(&app, &g, &[member("ann", Role::Owner)])
        .await
        .unwrap();
    assert!(s.group(&other, &g.id).await.unwrap().is_none());
    assert!(
        s.groups_of(&other, &UserId::new("ann"))
            .await
            .unwrap()
            .is_empty()
    );
    s.create_group(&other, &g, &[member("bo", Role::Owner)])
        .await
        .expect("the same id is free in another app");
    assert_eq!(
        s.members(&app, &g.id).await.unwrap()[0].user.as_str(),
        "ann"
    );
}
