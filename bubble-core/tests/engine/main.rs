//! The engine's behaviour, one test per behaviour of the seed's design.
//!
//! One module per use case, as the engine has them; helpers here.

mod dedup;
mod degraded;
mod group_admin;
mod integrations;
mod notices;
mod read;
mod retention;
mod revise;
mod screens;
mod search;
mod send;
mod sessions;
mod sync;
mod tenancy;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc::error::TryRecvError;

use bubble_core::engine::{BROADCAST_CHANNEL, UserPresence};
use bubble_core::memory::*;
use bubble_core::ports::*;
use bubble_core::push::{PushEvent, SessionQueue};
use bubble_core::*;
use bubble_proto::pb;

const APP: &str = "acme";

/// Builds the engine and creates the test app with `settings` applied.
async fn engine_from(builder: EngineBuilder, settings: impl FnOnce(&mut AppSettings)) -> Engine {
    let engine = builder.build().unwrap();
    let mut app = AppConfig::new(APP, "a-secret-of-at-least-thirty-two-bytes");
    settings(&mut app.settings);
    engine.put_app(app).await.unwrap();
    engine
}

/// In-memory stores that several engines share: a cluster's nodes.
#[derive(Clone)]
struct SharedStores {
    inbox: Arc<MemoryInbox>,
    apps: Arc<MemoryApps>,
    groups: Arc<MemoryGroups>,
    channels: Arc<MemoryChannelLog>,
}

impl SharedStores {
    fn new() -> SharedStores {
        SharedStores {
            inbox: Arc::new(MemoryInbox::new()),
            apps: Arc::new(MemoryApps::new()),
            groups: Arc::new(MemoryGroups::new()),
            channels: Arc::new(MemoryChannelLog::new()),
        }
    }

    /// A node on these stores, with its own way to presence and the bus;
    /// the caller attaches its hub to the bus.
    fn node(&self, config: EngineConfig, presence: Arc<dyn Presence>, bus: Arc<dyn Bus>) -> Engine {
        Engine::builder()
            .config(config)
            .inbox(self.inbox.clone())
            .apps(self.apps.clone())
            .groups(self.groups.clone())
            .channels(self.channels.clone())
            .presence(presence)
            .bus(bus)
            .build()
            .unwrap()
    }
}

async fn engine_with(settings: impl FnOnce(&mut AppSettings)) -> Engine {
    engine_from(Engine::builder(), settings).await
}

async fn engine() -> Engine {
    engine_with(|_| {}).await
}

fn identity(app: &str, user: &str) -> Identity {
    Identity {
        app: AppId::new(app),
        user: UserId::new(user),
        expires_at: i64::MAX,
    }
}

async fn login(e: &Engine, user: &str, device: &str) -> (Session, SessionQueue) {
    e.connect(&identity(APP, user), &DeviceId::new(device), "ios")
        .await
        .unwrap()
}

fn text_to(conversation: Conversation, client_msg_id: &str, text: &str) -> SendRequest {
    SendRequest {
        to: conversation,
        client_msg_id: client_msg_id.to_owned(),
        client_seq: 1,
        create_time: 1_700_000_000_000,
        content: Content::text(text),
    }
}

fn to_user(user: &str, client_msg_id: &str, text: &str) -> SendRequest {
    text_to(
        Conversation::direct(&UserId::new(user)),
        client_msg_id,
        text,
    )
}

fn to_group(group: &str, client_msg_id: &str, text: &str) -> SendRequest {
    text_to(
        Conversation::group(&GroupId::new(group)),
        client_msg_id,
        text,
    )
}

async fn all_entries(e: &Engine, s: &Session) -> Vec<InboxEntry> {
    e.sync(s, 0, 500).await.unwrap().entries
}

fn drain(q: &mut SessionQueue) -> Vec<PushEvent> {
    let mut out = Vec::new();
    loop {
        match q.rx.try_recv() {
            Ok(ev) => out.push(*ev),
            Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => return out,
        }
    }
}

fn pushed_texts(events: &[PushEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|ev| match ev {
            PushEvent::Entry { entry, .. } if entry.kind == EntryKind::Message => {
                entry.content.as_text().map(str::to_owned)
            }
            _ => None,
        })
        .collect()
}

async fn group_of(e: &Engine, owner: &Session, id: &str, members: &[&str]) -> Group {
    e.create_group(
        &owner.app,
        &owner.user,
        CreateGroup {
            id: Some(GroupId::new(id)),
            name: id.into(),
            members: members.iter().map(|m| UserId::new(*m)).collect(),
            super_group: false,
        },
    )
    .await
    .unwrap()
}

/// Creates a super group owned by `owner` and returns its conversation.
async fn super_group_of(e: &Engine, owner: &Session, id: &str, members: &[&str]) -> Conversation {
    e.create_group(
        &owner.app,
        &owner.user,
        CreateGroup {
            id: Some(GroupId::new(id)),
            members: members.iter().map(|m| UserId::new(*m)).collect(),
            super_group: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    Conversation::super_group(&GroupId::new(id))
}
