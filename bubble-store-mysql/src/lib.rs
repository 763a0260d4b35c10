//! bubble's durable store on MySQL 8 and MariaDB 10.11 (sqlx): inboxes,
//! groups, super-group logs and apps, for deployments that outgrow one machine.
//!
//! # Layout
//!
//! - [`config`]: [`MysqlConfig`] (serde, password hidden in `Debug`) and the
//!   [`MysqlStoreBuilder`] that checks it and connects.
//! - `store`: [`MysqlStore`], the connection pool every port shares, the
//!   session settings, migrations on connect, deadlock retries.
//! - `inbox`: [`InboxStore`](bubble_core::ports::InboxStore), the seed's
//!   message table with per-owner versions ordered by row locks.
//! - `batch`: group commit: concurrent appends share one transaction.
//! - `groups`: [`GroupStore`](bubble_core::ports::GroupStore).
//! - `channel`: [`ChannelLog`](bubble_core::ports::ChannelLog), super-group logs.
//! - `apps`: [`AppStore`](bubble_core::ports::AppStore).
//! - `schema`: the migrations in `migrations/`, embedded.
//! - [`queries`]: the SQL of the hot reads, for `EXPLAIN`.
//! - `rows`: reading domain types out of rows.
//! - `error`: the one place where sqlx errors and vendor codes become
//!   [`bubble_core::ErrorKind`]s (duplicate key -> `AlreadyExists`, deadlock
//!   -> `Conflict`, lost connection -> `Unavailable`).
//!
//! No sqlx type appears in the public API. The schema and its indexes are
//! described in `docs/storage/mysql.md`.

mod apps;
mod batch;
mod channel;
pub mod config;
mod error;
mod groups;
mod inbox;
pub mod queries;
mod rows;
mod schema;
mod store;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use config::{MysqlConfig, MysqlStoreBuilder};
pub use store::MysqlStore;
