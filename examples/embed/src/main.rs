//! The engine embedded in a program: durable inboxes in SQLite, search in
//! tantivy, no server and no network. Run twice to see the history survive:
//! `cargo run -p embed -- ./embed-data`.

use std::sync::Arc;

use bubble_core::ports::Identity;
use bubble_core::*;
use bubble_search_tantivy::TantivyConfig;
use bubble_store_sqlite::{SqliteConfig, SqliteStore};

async fn open_engine(dir: &std::path::Path) -> Result<(Engine, Arc<SqliteStore>)> {
    let store = Arc::new(SqliteConfig::new(dir.join("bubble.db")).connect().await?);
    let search = Arc::new(TantivyConfig::new(dir.join("search")).connect().await?);
    let engine = Engine::builder()
        .inbox(store.clone())
        .groups(store.clone())
        .channels(store.clone())
        .apps(store.clone())
        .search(Some(search))
        .build()?;
    Ok((engine, store))
}

#[tokio::main]
async fn main() -> Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("bubble-embed-example"));
    std::fs::create_dir_all(&dir).map_err(|e| Error::invalid(format!("{}: {e}", dir.display())))?;

    let (engine, store) = open_engine(&dir).await?;
    if engine.app(&AppId::new("shop")).await.is_err() {
        engine
            .put_app(AppConfig::new(
                "shop",
                "an-embedded-app-secret-of-32-bytes!",
            ))
            .await?;
    }
    let who = |user: &str| Identity {
        app: AppId::new("shop"),
        user: UserId::new(user),
        expires_at: i64::MAX,
    };
    let (buyer, _) = engine
        .connect(&who("buyer"), &DeviceId::new("app"), "ios")
        .await?;
    let (seller, _) = engine
        .connect(&who("seller"), &DeviceId::new("web"), "web")
        .await?;
    let before = engine.sync(&seller, 0, 500).await?.max_version;
    let ack = engine
        .send(
            &buyer,
            SendRequest {
                to: Conversation::direct(&seller.user),
                client_msg_id: format!("order-question-{}", now_millis()),
                client_seq: 1,
                create_time: now_millis(),
                content: Content::text("请问这件衬衫还有货吗？ Is the shirt in stock?"),
            },
        )
        .await?;
    engine.index_pending().await?;
    let page = engine.sync(&seller, before, 500).await?;
    println!(
        "seller had {before} entries; the new message is version {} (buyer's copy: version {})",
        page.max_version, ack.version
    );
    let hits = engine
        .search(
            &seller,
            HistoryQuery {
                words: "衬衫".into(),
                limit: 100,
                ..Default::default()
            },
        )
        .await?;
    println!(
        "searching \"衬衫\" finds {} message(s) across every run so far",
        hits.total
    );
    println!("unread for the seller: {:?}", engine.unread(&seller).await?);
    store.close().await;
    println!("data kept in {} — run again to see it grow", dir.display());
    Ok(())
}
