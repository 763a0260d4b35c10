//! bubble's core: domain types, ports, the engine, in-memory adapters and
//! the conformance suite every adapter runs.
//!
//! # Layout
//!
//! - [`types`]: apps, users, conversations, messages, inbox entries.
//! - [`breaker`]: a circuit breaker per backend, and [`guarded`]: any
//!   port behind one, so a backend that is down fails calls at once.
//! - [`adapter`]: what every adapter's config has in common
//!   ([`AdapterConfig`]: validate, then connect).
//! - [`ports`]: the traits backends implement (`InboxStore`, `GroupStore`,
//!   `ChannelLog`, `AppStore`, `Cache`, `Presence`, `SearchIndex`,
//!   `Discovery`, `Authenticator`, `Bus`, `BusinessHandler`).
//! - [`engine`]: the messaging behaviour (send, sync, read, groups, super
//!   groups, recall, system push, presence, search), built from ports.
//! - [`push`]: pushes and the hub of this node's sessions.
//! - [`memory`]: an in-memory adapter for every port.
//! - [`token`]: the default `Authenticator` (HMAC-signed tokens per app,
//!   secrets from a `SecretSource`).
//! - [`wire`]: conversions between domain types and protobuf bodies.
//! - `testkit` (feature `testkit`): the conformance suite.
//!
//! No backend driver is a dependency of this crate: adapters convert their
//! errors into [`Error`] at their own edge.

pub mod adapter;
pub mod apps;
pub mod breaker;
pub mod content;
pub mod engine;
pub mod error;
pub mod guarded;
pub mod hooks;
pub mod ids;
pub mod jobs;
pub mod list;
pub mod memory;
pub mod notify;
pub mod ports;
pub mod push;
pub mod token;
pub mod types;
pub mod wire;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use adapter::{AdapterConfig, InvalidConfig, redact_url};
pub use apps::{AppConfig, AppSettings, LoginPolicy};
pub use breaker::{Breaker, BreakerConfig, BreakerState};
pub use engine::{
    ConversationItem, ConversationList, CreateGroup, Engine, EngineBuilder, EngineConfig,
    GroupChange, GroupSummary, HistoryPage, HistoryQuery, MessageRefs, Reactions, ReadState,
    RebuildProgress, RebuildScope, SendRequest, Session, SettingsChange, SettingsChanged, SyncPage,
    SystemTarget,
};
pub use error::{Error, ErrorKind, Result};
pub use list::ListRowChange;
pub use types::*;
