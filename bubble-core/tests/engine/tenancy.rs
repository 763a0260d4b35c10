//! Apps are isolated; business commands reach their app's handler.

use super::*;

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
