//! bubble's embedded default store: inboxes ([`InboxStore`]), groups
//! ([`GroupStore`]), super-group logs ([`ChannelLog`]) and apps
//! ([`AppStore`]) in one SQLite file, in WAL mode, with migrations.
//!
//! # Layout
//!
//! - [`config`]: [`SqliteConfig`], what an operator sets (file, batch size,
//!   durability, readers), and its validation.
//! - `store`: [`SqliteStoreBuilder`] (validates, creates the directory, opens
//!   the connections, runs the migrations) and [`SqliteStore`], which
//!   implements the four ports.
//! - `writer`: the single writer thread. Every write goes through it; it
//!   applies everything waiting (up to `max_batch`) in one transaction and
//!   answers the callers only after that transaction's COMMIT returned
//!   (group commit: one fsync carries many messages, and an ack always
//!   means durable).
//! - `checkpoint`: folds the WAL into the main file in the background, so
//!   no commit pays for a checkpoint.
//! - `inbox`, `channel`, `groups`, `apps`: the SQL of each port, the
//!   batched inbox append among it.
//! - `read`: the read connections, each read one call on a blocking thread.
//! - `rows`: decoding rows, shared by those modules.
//! - `error`: the one function that turns SQLite's errors into core kinds.
//!
//! Reads (pull, unread, members, ranges...) go to a small pool of read
//! connections that WAL lets run next to the writer, so syncing devices
//! never wait for a commit. SQLite is driven with rusqlite; sqlx (on the
//! same bundled SQLite) runs the migrations and the checkpointer.
//!
//! ```no_run
//! # async fn demo() -> bubble_core::Result<()> {
//! use std::sync::Arc;
//! use bubble_core::ports::InboxStore;
//! use bubble_store_sqlite::{SqliteConfig, SqliteStore};
//!
//! let store = Arc::new(SqliteStore::builder(SqliteConfig::new("/var/lib/bubble/bubble.db")).open().await?);
//! let inbox: Arc<dyn InboxStore> = store.clone();
//! # Ok(()) }
//! ```
//!
//! [`InboxStore`]: bubble_core::ports::InboxStore
//! [`GroupStore`]: bubble_core::ports::GroupStore
//! [`ChannelLog`]: bubble_core::ports::ChannelLog
//! [`AppStore`]: bubble_core::ports::AppStore

pub mod config;

mod apps;
mod channel;
mod checkpoint;
mod error;
mod groups;
mod inbox;
mod read;
mod rows;
mod store;
mod writer;

pub use config::{SqliteConfig, Synchronous};
pub use store::{SqliteStore, SqliteStoreBuilder, WriterStats};

#[cfg(test)]
mod plans;
