//! What the conformance suite does not reach in the MySQL group store: the
//! columns' limits, and ownership transfers racing on one group from two
//! stores (two nodes of an app).

mod common;

use bubble_core::ports::GroupStore;
use bubble_core::{AppId, ErrorKind, Group, GroupId, GroupKind, Member, Role, UserId};
use common::on_fresh_db;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announcement_of_4096_bytes_fits_and_a_longer_one_is_invalid_input() {
    on_fresh_db(|db| async move {
        let store = db.store().await;
        let app = AppId::new("a");
        let g = group("g", "ann");
        store
            .create_group(&app, &g, &[member("ann", Role::Owner)])
            .await
            .unwrap();
        // 1024 four-byte characters: the engine's limit is in bytes.
        let longest = Group {
            announcement: "😀".repeat(1024),
            avatar_url: format!("https://cdn.example/{}", "a".repeat(2048 - 20)),
            ..g.clone()
        };
        assert_eq!(
            (longest.announcement.len(), longest.avatar_url.len()),
            (4096, 2048)
        );
        store.update_group(&app, &longest).await.unwrap();
        assert_eq!(
            store.group(&app, &g.id).await.unwrap().as_ref(),
            Some(&longest)
        );

        let too_long = Group {
            announcement: format!("{}!", longest.announcement),
            name: "not applied".into(),
            ..g.clone()
        };
        let e = store.update_group(&app, &too_long).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        let e = store
            .create_group(
                &app,
                &Group {
                    id: GroupId::new("h"),
                    ..too_long
                },
                &[],
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert_eq!(
            store.group(&app, &g.id).await.unwrap().as_ref(),
            Some(&longest),
            "a refused update changes nothing (strict mode: never cut)"
        );
        assert!(
            store
                .group(&app, &GroupId::new("h"))
                .await
                .unwrap()
                .is_none()
        );
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfers_racing_from_two_stores_leave_exactly_one_owner() {
    on_fresh_db(|db| async move {
        let (one, two) = (db.store().await, db.store().await);
        let app = AppId::new("a");
        let ann = UserId::new("ann");
        for round in 0..20 {
            let g = group(&format!("g{round}"), "ann");
            one.create_group(
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
            // ann hands the group to bo on one node and to cy on the
            // other: the group's lock orders them, so the second finds ann
            // no longer the owner and changes nothing.
            let (bo, cy) = (UserId::new("bo"), UserId::new("cy"));
            let (to_bo, to_cy) = tokio::join!(
                one.transfer_owner(&app, &g.id, &ann, &bo),
                two.transfer_owner(&app, &g.id, &ann, &cy),
            );
            let winner = match (to_bo, to_cy) {
                (Ok(()), Err(e)) | (Err(e), Ok(())) if e.kind() == ErrorKind::InvalidInput => {
                    store_owner(&one, &app, &g.id).await
                }
                other => panic!("one transfer wins, the other is refused: {other:?}"),
            };
            assert!(winner == bo || winner == cy, "{winner}");
            let roles: Vec<(String, Role)> = one
                .members(&app, &g.id)
                .await
                .unwrap()
                .into_iter()
                .map(|m| (m.user.to_string(), m.role))
                .collect();
            let loser = if winner == bo { &cy } else { &bo };
            let mut want = vec![
                ("ann".to_owned(), Role::Admin),
                (winner.to_string(), Role::Owner),
                (loser.to_string(), Role::Member),
            ];
            want.sort();
            assert_eq!(roles, want);
        }
        one.close().await;
        two.close().await;
    })
    .await;
}

async fn store_owner(store: &impl GroupStore, app: &AppId, id: &GroupId) -> UserId {
    store.group(app, id).await.unwrap().unwrap().owner
}
