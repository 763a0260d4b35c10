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
//! - `retention`: an app's `retention_days`, one bounded batch of old
//!   messages deleted per transaction.
//! - `testing` (feature `testing`): fresh throwaway databases for tests.
//! - `fuzzing` (hidden, not API): the row decoders on rows of plain
//!   values, for the `mysql_rows` fuzz target.
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
mod coalesce;
mod nodes;
mod point_reads;
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
mod retention;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod live_tests;

/// Not API: the row decoders, reachable from the `mysql_rows` fuzz target
/// (`fuzz/harness/mysql_rows.rs`), on rows of plain values, since only the
/// driver can build a `MySqlRow`. The decoders are the store's own, generic
/// over how a row gives its columns.
#[doc(hidden)]
pub mod fuzzing {
    use bubble_core::jobs::Job;
    use bubble_core::notify::PushToken;
    use bubble_core::{
        AppConfig, ChannelEntry, ConversationSummary, Error, Group, InboxEntry, Member, Result,
        SendReceipt,
    };

    /// A column's value as the server sends it: NULL, a signed or an
    /// unsigned integer, or bytes (text, blobs).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Value {
        Null,
        Int(i64),
        UInt(u64),
        Bytes(Vec<u8>),
    }

    /// A result row: its columns by name.
    #[derive(Debug, Clone, Default)]
    pub struct Row(pub Vec<(&'static str, Value)>);

    impl crate::rows::Columns for Row {
        fn column<T: crate::rows::Cell>(&self, col: &str) -> Result<T> {
            let (_, value) = self
                .0
                .iter()
                .find(|(name, _)| *name == col)
                .ok_or_else(|| Error::internal(format!("mysql: the row has no column {col}")))?;
            T::from_value(value)
                .map_err(|why| Error::internal(format!("mysql: column {col}: {why}")))
        }
    }

    /// An inbox row joined to its message row (`rows::inbox_columns`).
    pub fn inbox_entry(row: &Row) -> Result<InboxEntry> {
        crate::rows::inbox_entry(row)
    }

    /// A row of the conversation list: an inbox row and the `list_*` columns.
    pub fn conversation(row: &Row) -> Result<ConversationSummary> {
        crate::inbox::conversation_from(row)
    }

    /// A super-group log row (`rows::channel_columns`).
    pub fn channel_entry(row: &Row) -> Result<ChannelEntry> {
        crate::rows::channel_entry(row)
    }

    /// `server_msg_id, version, seq, server_time`: the receipt of a retry.
    pub fn receipt(row: &Row) -> Result<SendReceipt> {
        crate::rows::receipt(row)
    }

    /// `id, name, kind, owner, created_at, avatar_url, announcement, muted`.
    pub fn group(row: &Row) -> Result<Group> {
        crate::groups::group_from(row)
    }

    /// `user_id, role, joined_at, muted_until`.
    pub fn member(row: &Row) -> Result<Member> {
        crate::groups::member_from(row)
    }

    /// `id, name, secret, settings`.
    pub fn app(row: &Row) -> Result<AppConfig> {
        crate::apps::app_from(row)
    }

    /// `id, queue, payload, attempts, enqueued_at, due_at, lease_until`.
    pub fn job(row: &Row) -> Result<(Job, i64, Option<i64>)> {
        crate::jobs::job_from(row)
    }

    /// `device, platform, token, locale, quiet_until, updated_at`.
    pub fn push_token(row: &Row) -> Result<PushToken> {
        crate::push_tokens::token_from(row)
    }
}

pub use client::MysqlStore;
pub use config::MysqlConfig;
