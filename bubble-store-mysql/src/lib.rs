//! bubble's durable store on MySQL 8 and MariaDB 10.11 (sqlx): inboxes
//! ([`InboxStore`]), groups ([`GroupStore`]), super-group logs
//! ([`ChannelLog`]), apps ([`AppStore`]), the durable work queue
//! ([`JobQueue`]) and devices' push tokens ([`PushTokens`]), for deployments
//! that outgrow one machine. Every node of a cluster opens its own store on
//! the same database; row locks keep versions and seqs ordered across nodes,
//! and keep two nodes from claiming one job.
//!
//! # Layout
//!
//! From the bottom up; a module uses only modules listed before it.
//!
//! - `config`: [`MysqlConfig`] (serde, password hidden in `Debug`), its
//!   defaults and the rule of every field.
//! - `error`: the one place where sqlx errors and vendor codes become
//!   [`bubble_core::ErrorKind`]s (duplicate key -> `AlreadyExists`, deadlock
//!   -> `Conflict`, lost connection -> `Unavailable`).
//! - `galera`: the check a transaction on a Galera node makes before it
//!   writes, that the node has not silently aborted it.
//! - `rows`: reading domain types out of rows; placeholder lists.
//! - [`queries`]: the SQL of the hot reads and of job claims, public for
//!   `EXPLAIN`.
//! - `schema`: the migrations in `migrations/`, embedded.
//! - `nodes`: the servers a store may use (one, or the nodes of a Galera
//!   cluster), a pool each, and the one it is on.
//! - `retry`: running a call again after InnoDB chose it as a deadlock
//!   victim (or Galera's certification rejected it), and on the next node
//!   after its node failed, when that cannot write twice.
//! - `append`: the inbox append, one transaction for a batch of deliveries,
//!   with per-owner versions ordered by row locks.
//! - `batch`: group commit: concurrent appends share one transaction.
//! - `client`: [`MysqlStore`], the connection pools and batch writers every
//!   port shares (session settings, migrations on connect), and `connect`
//!   (the [`AdapterConfig`] impl of [`MysqlConfig`]).
//! - `inbox`, `groups`, `channel`, `apps`, `jobs`, `push_tokens`: one port
//!   each, its impl on [`MysqlStore`] and its SQL.
//! - `testing` (feature `testing`): fresh throwaway databases for tests.
//! - `live_tests` (tests only): what needs a real server and the crate's
//!   insides (vendor error codes as `error` maps them, session settings).
//!
//! No sqlx type appears in the public API. The schema and its indexes are
//! described in `docs/storage/mysql.md`.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> bubble_core::Result<()> {
//! use std::sync::Arc;
//! use bubble_core::AdapterConfig;
//! use bubble_core::ports::InboxStore;
//! use bubble_store_mysql::MysqlConfig;
//!
//! let store = MysqlConfig::new("mysql://bubble:secret@127.0.0.1:3306/bubble")
//!     .with_max_connections(32)
//!     .connect()
//!     .await?;
//! let inbox: Arc<dyn InboxStore> = Arc::new(store.clone()); // also GroupStore, ChannelLog, AppStore, JobQueue, PushTokens
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
mod galera;

mod append;
mod batch;
mod nodes;
pub mod queries;
mod retry;
mod rows;
mod schema;

mod client;

mod apps;
mod channel;
mod groups;
mod inbox;
mod jobs;
mod push_tokens;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod live_tests;

pub use client::MysqlStore;
pub use config::MysqlConfig;
