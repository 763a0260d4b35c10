//! bubble's embedded default store: inboxes ([`InboxStore`]), groups
//! ([`GroupStore`]), super-group logs ([`ChannelLog`]), apps
//! ([`AppStore`]), the durable work queue ([`JobQueue`]) and devices' push
//! tokens ([`PushTokens`]) in one SQLite file, in WAL mode, with migrations.
//!
//! Every write goes through one writer thread that commits whatever is
//! waiting in one transaction (group commit), and answers only after COMMIT
//! returned; reads go to a small pool of read connections that WAL lets run
//! next to the writer. SQLite is compiled in (bundled) and driven with
//! rusqlite alone: the migrations and the checkpointer too.
//!
//! # Layout
//!
//! From the bottom up; a module uses only modules listed before it.
//!
//! - `config`: [`SqliteConfig`], what an operator sets (file, batch size,
//!   durability, readers), its defaults and the rule of every field.
//! - `error`: the one place where rusqlite's and the file system's errors
//!   become core error kinds, and where a refused migration history is
//!   worded.
//! - `rows`: decoding rows into domain types, shared by the SQL below.
//! - `schema`: the migrations in `migrations/`, embedded, and what applies
//!   them: each pending one in its own transaction with its row in
//!   `_sqlx_migrations`, the bookkeeping sqlx kept for earlier releases, so
//!   their files open as they are.
//! - `checkpoint`: folds the WAL into the main file in the background, so
//!   no commit pays for a checkpoint.
//! - `connection`: opening connections with the settings of each job: the
//!   one that creates and migrates the file, the writer's, the readers' and
//!   the checkpointer's.
//! - `append`: the batched inbox append (versions, dedup, outbox rows).
//! - `names`: the numbers the inbox and list keys hold for owners and
//!   peers (migration 10), and the writer's memory of them.
//! - `writer`: the single writer thread. It applies everything waiting (up
//!   to `max_batch`) in one transaction and answers the callers only after
//!   that transaction's COMMIT returned (one fsync carries many messages,
//!   and an ack always means durable).
//! - `read`: the read connections, each read one call on a blocking thread.
//! - `client`: [`SqliteStore`], the handles every port uses (the writer's
//!   queue, the readers, the checkpointer), and `connect` (the
//!   [`AdapterConfig`] impl of [`SqliteConfig`]).
//! - `inbox`, `groups`, `channel`, `apps`, `jobs`, `push_tokens`: one port
//!   each, its impl on [`SqliteStore`] and its SQL (a job claim is a write,
//!   so it is atomic like every other).
//! - `retention`: an app's `retention_days`, one bounded batch of old
//!   messages deleted per writer job.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> bubble_core::Result<()> {
//! use std::sync::Arc;
//! use bubble_core::AdapterConfig;
//! use bubble_core::ports::InboxStore;
//! use bubble_store_sqlite::SqliteConfig;
//!
//! let store = SqliteConfig::new("/var/lib/bubble/bubble.db")
//!     .with_max_batch(1024)
//!     .connect()
//!     .await?;
//! let store = Arc::new(store);
//! let inbox: Arc<dyn InboxStore> = store.clone(); // also GroupStore, ChannelLog, AppStore, JobQueue, PushTokens
//! # drop(inbox);
//! store.close().await;
//! # Ok(()) }
//! ```
//!
//! [`InboxStore`]: bubble_core::ports::InboxStore
//! [`GroupStore`]: bubble_core::ports::GroupStore
//! [`ChannelLog`]: bubble_core::ports::ChannelLog
//! [`AppStore`]: bubble_core::ports::AppStore
//! [`JobQueue`]: bubble_core::jobs::JobQueue
//! [`PushTokens`]: bubble_core::notify::PushTokens
//! [`AdapterConfig`]: bubble_core::AdapterConfig

mod config;
mod error;

mod append;
mod checkpoint;
mod connection;
mod names;
mod read;
mod rows;
mod schema;
mod writer;

mod client;

mod apps;
mod channel;
mod extras;
mod groups;
mod inbox;
mod jobs;
mod push_tokens;
mod retention;
mod search_source;

pub use client::{SqliteStore, WriterStats};

/// The row decoders, for the fuzz targets in `fuzz/` and their regression
/// replays: not part of the API, no stability promised. Each reads a row
/// whose columns are those its store's statements select, in that order.
#[doc(hidden)]
pub mod fuzzing {
    use bubble_core::{AppConfig, ChannelEntry, Group, InboxEntry, Member, Result};
    use rusqlite::Row;

    /// The inbox columns (17: `owner, version, kind, conv_kind, peer, …, meta`).
    pub fn inbox_entry(row: &Row<'_>) -> Result<InboxEntry> {
        crate::rows::inbox_entry(row, 0)
    }

    /// The channel-log columns (13: `group_id, seq, kind, server_msg_id, …, meta`).
    pub fn channel_entry(row: &Row<'_>) -> Result<ChannelEntry> {
        crate::rows::channel_entry(row)
    }

    /// `user, role, joined_at, muted_until`.
    pub fn member(row: &Row<'_>) -> Result<Member> {
        crate::groups::member_of(row)
    }

    /// `id, name, kind, owner, created_at, avatar_url, announcement, muted`.
    pub fn group(row: &Row<'_>) -> Result<Group> {
        crate::groups::group_of(row)
    }

    /// `id, name, secret, settings`.
    pub fn app(row: &Row<'_>) -> Result<AppConfig> {
        crate::apps::app_of(row)
    }
}
pub use config::{SqliteConfig, Synchronous};

#[cfg(test)]
mod plans;
