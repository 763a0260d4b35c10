//! The engine in five minutes: two users, a message, a push, a sync, a read
//! receipt, a group. Everything in memory; run with
//! `cargo run -p quickstart`.

use bubble_core::push::PushEvent;
use bubble_core::*;

#[tokio::main]
async fn main() -> Result<()> {
    let engine = Engine::builder().build()?;
    engine
        .put_app(AppConfig::new(
            "demo",
            "a-secret-of-at-least-thirty-two-bytes",
        ))
        .await?;

    let id = |user: &str| ports::Identity {
        app: AppId::new("demo"),
        user: UserId::new(user),
        expires_at: i64::MAX,
    };
    let (alice, _) = engine
        .connect(&id("alice"), &DeviceId::new("phone"), "ios")
        .await?;
    let (bob, mut bob_pushes) = engine
        .connect(&id("bob"), &DeviceId::new("laptop"), "web")
        .await?;

    let ack = engine
        .send(
            &alice,
            SendRequest {
                to: Conversation::direct(&bob.user),
                client_msg_id: "alice-0001".into(),
                client_seq: 1,
                create_time: now_millis(),
                content: Content::text("hello bob 👋"),
            },
        )
        .await?;
    println!(
        "alice sent {} (her version {})",
        ack.server_msg_id, ack.version
    );

    if let Some(event) = bob_pushes.rx.recv().await
        && let PushEvent::Entry {
            entry,
            prev_version,
        } = *event
    {
        println!(
            "bob was pushed v{} (previous v{}): {:?} from {}",
            entry.version,
            prev_version,
            entry.content.as_text().unwrap_or_default(),
            entry.sender
        );
    }

    let page = engine.sync(&bob, 0, 100).await?;
    println!(
        "bob syncs {} entr(y/ies), newest version {}",
        page.entries.len(),
        page.max_version
    );
    println!("bob's unread: {:?}", engine.unread(&bob).await?);
    engine
        .mark_read(&bob, &Conversation::direct(&alice.user), page.max_version)
        .await?;
    println!("after reading: {:?}", engine.unread(&bob).await?);

    let group = engine
        .create_group(
            &alice.app,
            &alice.user,
            CreateGroup {
                name: "weekend plans".into(),
                members: vec![bob.user.clone()],
                ..Default::default()
            },
        )
        .await?;
    engine
        .send(
            &alice,
            SendRequest {
                to: Conversation::group(&group.id),
                client_msg_id: "alice-0002".into(),
                client_seq: 1,
                create_time: now_millis(),
                content: Content::text("大家好"),
            },
        )
        .await?;
    engine.index_pending().await?;
    let found = engine
        .search(
            &bob,
            HistoryQuery {
                words: "大家".into(),
                limit: 10,
                ..Default::default()
            },
        )
        .await?;
    println!("bob searches \"大家\": {} hit(s)", found.total);
    Ok(())
}
