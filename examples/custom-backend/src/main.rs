//! The engine with a product's own authenticator and audited inbox.

use std::sync::Arc;

use bubble_core::memory::MemoryInbox;
use bubble_core::ports::Authenticator;
use bubble_core::*;
use custom_backend::{ApiKeyAuthenticator, AuditedInbox, MemoryAudit};

#[tokio::main]
async fn main() -> Result<()> {
    let audit = Arc::new(MemoryAudit::default());
    let engine = Engine::builder()
        .inbox(Arc::new(AuditedInbox::new(
            Arc::new(MemoryInbox::new()),
            audit.clone(),
        )))
        .build()?;
    let app = AppId::new("bank");
    engine
        .put_app(AppConfig::new(
            app.clone(),
            "a-secret-nobody-uses-here-32-bytes",
        ))
        .await?;

    let auth = ApiKeyAuthenticator::default();
    auth.add_key(&app, "key-of-teller-7", &UserId::new("teller7"));
    let device = DeviceId::new("branch-terminal");
    let teller = auth.authenticate(&app, "key-of-teller-7", &device).await?;
    let refused = auth
        .authenticate(&app, "stolen-key", &device)
        .await
        .unwrap_err();
    println!("an unknown key is refused: {refused}");

    let (session, _) = engine.connect(&teller, &device, "desktop").await?;
    engine
        .send(
            &session,
            SendRequest {
                to: Conversation::direct(&UserId::new("customer42")),
                client_msg_id: "t7-0001".into(),
                client_seq: 1,
                create_time: now_millis(),
                content: Content::text("Your card has been shipped."),
            },
        )
        .await?;
    println!("audit log: {:?}", audit.records.lock());
    Ok(())
}
