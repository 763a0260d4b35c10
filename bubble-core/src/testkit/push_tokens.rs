//! Conformance checks for [`PushTokens`].

use std::sync::Arc;

use super::checks;
use crate::notify::{PushPlatform, PushToken, PushTokens};
use crate::types::{AppId, DeviceId, UserId};

/// Runs every push-token check against `store`.
pub async fn push_tokens(store: Arc<dyn PushTokens>) {
    super::run_checks("PushTokens", store, CHECKS).await;
}

const CHECKS: &[super::Check<dyn PushTokens>] = checks![dyn PushTokens;
    a_registered_token_reads_back_with_every_field,
    every_platform_reads_back_as_registered,
    a_user_without_tokens_has_none,
    putting_a_token_again_replaces_the_devices_token,
    tokens_are_listed_in_device_order,
    a_token_registered_to_another_device_of_the_user_moves,
    a_token_registered_to_another_user_moves,
    apps_are_isolated,
    remove_device_token_removes_that_device_only_and_says_whether_it_did,
    remove_token_removes_it_wherever_registered_and_says_whether_it_did,
];

fn user(name: &str) -> UserId {
    UserId::new(name)
}

fn token(device: &str, platform: PushPlatform, token: &str) -> PushToken {
    PushToken {
        device: DeviceId::new(device),
        platform,
        token: token.to_owned(),
        locale: "en".into(),
        quiet_until: 0,
        updated_at: 1_700_000_000_000,
    }
}

/// The devices of `user`'s tokens, in the order listed.
async fn devices(s: &Arc<dyn PushTokens>, app: &AppId, user: &UserId) -> Vec<String> {
    s.tokens(app, user)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.device.to_string())
        .collect()
}

async fn a_registered_token_reads_back_with_every_field(s: Arc<dyn PushTokens>, app: AppId) {
    let ann = user("ann");
    // An FCM registration token is long; a webhook's may be longer still.
    let long: String = (0..600)
        .map(|i| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789-_:"[i % 39]))
        .collect();
    let full = PushToken {
        device: DeviceId::new("pixel-8"),
        platform: PushPlatform::Fcm,
        token: long,
        locale: "zh-Hant-台灣".into(),
        quiet_until: 1_900_000_000_123,
        updated_at: 1_700_000_000_456,
    };
    s.put_token(&app, &ann, &full).await.unwrap();
    assert_eq!(s.tokens(&app, &ann).await.unwrap(), [full]);
}

async fn every_platform_reads_back_as_registered(s: Arc<dyn PushTokens>, app: AppId) {
    let ann = user("ann");
    let all: Vec<PushToken> = PushPlatform::ALL
        .iter()
        .enumerate()
        .map(|(i, p)| token(&format!("device-{i}"), *p, &format!("{p}-token")))
        .collect();
    for t in &all {
        s.put_token(&app, &ann, t).await.unwrap();
    }
    assert_eq!(s.tokens(&app, &ann).await.unwrap(), all);
}

async fn a_user_without_tokens_has_none(s: Arc<dyn PushTokens>, app: AppId) {
    assert!(s.tokens(&app, &user("nobody")).await.unwrap().is_empty());
    s.put_token(&app, &user("ann"), &token("phone", PushPlatform::Apns, "a"))
        .await
        .unwrap();
    assert!(
        s.tokens(&app, &user("bob")).await.unwrap().is_empty(),
        "another user's tokens are not theirs"
    );
}

async fn putting_a_token_again_replaces_the_devices_token(s: Arc<dyn PushTokens>, app: AppId) {
    let ann = user("ann");
    s.put_token(&app, &ann, &token("phone", PushPlatform::Apns, "old"))
        .await
        .unwrap();
    let newer = PushToken {
        locale: "fr".into(),
        quiet_until: 42,
        updated_at: 1_700_000_009_000,
        ..token("phone", PushPlatform::Fcm, "new")
    };
    s.put_token(&app, &ann, &newer).await.unwrap();
    assert_eq!(
        s.tokens(&app, &ann).await.unwrap(),
        std::slice::from_ref(&newer)
    );
    assert!(
        !s.remove_token(&app, PushPlatform::Apns, "old")
            .await
            .unwrap(),
        "the replaced token is gone"
    );
    s.put_token(&app, &ann, &newer).await.unwrap();
    assert_eq!(
        s.tokens(&app, &ann).await.unwrap(),
        [newer],
        "registering the same token again keeps one"
    );
}

async fn tokens_are_listed_in_device_order(s: Arc<dyn PushTokens>, app: AppId) {
    let ann = user("ann");
    for (i, device) in ["web", "phone", "Tablet", "ipad", "phone-2"]
        .iter()
        .enumerate()
    {
        s.put_token(
            &app,
            &ann,
            &token(device, PushPlatform::Webhook, &format!("t{i}")),
        )
        .await
        .unwrap();
    }
    assert_eq!(
        devices(&s, &app, &ann).await,
        ["Tablet", "ipad", "phone", "phone-2", "web"],
        "ordered as the ids compare (byte for byte)"
    );
}

async fn a_token_registered_to_another_device_of_the_user_moves(
    s: Arc<dyn PushTokens>,
    app: AppId,
) {
    let ann = user("ann");
    s.put_token(&app, &ann, &token("phone", PushPlatform::Apns, "shared"))
        .await
        .unwrap();
    s.put_token(&app, &ann, &token("watch", PushPlatform::Apns, "own"))
        .await
        .unwrap();
    s.put_token(&app, &ann, &token("tablet", PushPlatform::Apns, "shared"))
        .await
        .unwrap();
    assert_eq!(devices(&s, &app, &ann).await, ["tablet", "watch"]);
}

async fn a_token_registered_to_another_user_moves(s: Arc<dyn PushTokens>, app: AppId) {
    let (ann, bob) = (user("ann"), user("bob"));
    s.put_token(
        &app,
        &ann,
        &token("phone", PushPlatform::Fcm, "handed-down"),
    )
    .await
    .unwrap();
    s.put_token(&app, &ann, &token("laptop", PushPlatform::Webhook, "kept"))
        .await
        .unwrap();
    let bobs = token("phone", PushPlatform::Fcm, "handed-down");
    s.put_token(&app, &bob, &bobs).await.unwrap();
    assert_eq!(
        devices(&s, &app, &ann).await,
        ["laptop"],
        "the old owner no longer has it"
    );
    assert_eq!(s.tokens(&app, &bob).await.unwrap(), [bobs]);
    assert!(
        s.remove_token(&app, PushPlatform::Fcm, "handed-down")
            .await
            .unwrap()
    );
    assert!(s.tokens(&app, &bob).await.unwrap().is_empty());
    assert_eq!(devices(&s, &app, &ann).await, ["laptop"]);
}

async fn apps_are_isolated(s: Arc<dyn PushTokens>, app: AppId) {
    let other = AppId::new(format!("{app}-b"));
    let ann = user("ann");
    let here = token("phone", PushPlatform::Apns, "same-token");
    let there = PushToken {
        locale: "de".into(),
        ..here.clone()
    };
    s.put_token(&app, &ann, &here).await.unwrap();
    s.put_token(&other, &ann, &there).await.unwrap();
    assert_eq!(
        s.tokens(&app, &ann).await.unwrap(),
        std::slice::from_ref(&here),
        "the same token in another app does not move"
    );
    assert_eq!(
        s.tokens(&other, &ann).await.unwrap(),
        std::slice::from_ref(&there)
    );
    assert!(
        s.remove_token(&app, PushPlatform::Apns, "same-token")
            .await
            .unwrap()
    );
    assert_eq!(s.tokens(&other, &ann).await.unwrap(), [there]);
    assert!(
        s.remove_device_token(&other, &ann, &here.device)
            .await
            .unwrap()
    );
    assert!(s.tokens(&other, &ann).await.unwrap().is_empty());
    s.put_token(&app, &ann, &here).await.unwrap();
    assert!(
        !s.remove_device_token(&other, &ann, &here.device)
            .await
            .unwrap(),
        "removing in one app leaves the other's"
    );
    assert_eq!(s.tokens(&app, &ann).await.unwrap(), [here]);
}

async fn remove_device_token_removes_that_device_only_and_says_whether_it_did(
    s: Arc<dyn PushTokens>,
    app: AppId,
) {
    let (ann, bob) = (user("ann"), user("bob"));
    let phone = DeviceId::new("phone");
    s.put_token(&app, &ann, &token("phone", PushPlatform::Apns, "a1"))
        .await
        .unwrap();
    s.put_token(&app, &ann, &token("web", PushPlatform::Webhook, "a2"))
        .await
        .unwrap();
    s.put_token(&app, &bob, &token("phone", PushPlatform::Apns, "b1"))
        .await
        .unwrap();
    assert!(s.remove_device_token(&app, &ann, &phone).await.unwrap());
    assert!(
        !s.remove_device_token(&app, &ann, &phone).await.unwrap(),
        "nothing left to remove"
    );
    assert!(
        !s.remove_device_token(&app, &user("nobody"), &phone)
            .await
            .unwrap()
    );
    assert_eq!(devices(&s, &app, &ann).await, ["web"]);
    assert_eq!(
        devices(&s, &app, &bob).await,
        ["phone"],
        "another user's device of the same id stays"
    );
    // The removed token is free to register again.
    s.put_token(&app, &bob, &token("tablet", PushPlatform::Apns, "a1"))
        .await
        .unwrap();
    assert_eq!(devices(&s, &app, &bob).await, ["phone", "tablet"]);
}

async fn remove_token_removes_it_wherever_registered_and_says_whether_it_did(
    s: Arc<dyn PushTokens>,
    app: AppId,
) {
    let (ann, bob) = (user("ann"), user("bob"));
    s.put_token(&app, &ann, &token("phone", PushPlatform::Apns, "stale"))
        .await
        .unwrap();
    s.put_token(&app, &bob, &token("phone", PushPlatform::Apns, "fresh"))
        .await
        .unwrap();
    assert!(
        !s.remove_token(&app, PushPlatform::Fcm, "stale")
            .await
            .unwrap(),
        "a token of another platform is another token"
    );
    assert!(
        s.remove_token(&app, PushPlatform::Apns, "stale")
            .await
            .unwrap()
    );
    assert!(
        !s.remove_token(&app, PushPlatform::Apns, "stale")
            .await
            .unwrap(),
        "already removed"
    );
    assert!(
        !s.remove_token(&app, PushPlatform::Apns, "never")
            .await
            .unwrap()
    );
    assert!(s.tokens(&app, &ann).await.unwrap().is_empty());
    assert_eq!(devices(&s, &app, &bob).await, ["phone"]);
}
