//! bubble's hot state on Redis: recent-message windows and the dedup window
//! ([`Cache`]) and online routes ([`Presence`]), shared by every node of a
//! cluster, on one Redis server, a master found through Redis Sentinel, or
//! a Redis Cluster.
//!
//! # Layout
//!
//! From the bottom up; a module uses only modules listed before it.
//!
//! - `config`: [`RedisConfig`], what a deployment writes down (serde; its
//!   `Debug` hides passwords), its defaults and the rule of every field.
//! - `error`: the one place where driver errors become core kinds.
//! - `keys`: the key layout. One user's keys share a hash tag, so they sit
//!   on one cluster slot and one Lua script may update them together.
//! - `scripts`: the Lua scripts that make multi-step updates atomic.
//! - `codec`: the bytes stored in values.
//! - `client`: [`RedisStore`], the one connection handle every port uses (a
//!   reconnecting `ConnectionManager` on one server, or on the master the
//!   sentinels name, asked again after a failover; a `ClusterConnection` on
//!   a cluster), and `connect` (the [`AdapterConfig`] impl of
//!   [`RedisConfig`]).
//! - `cache`, `presence`: one port each, its impl on [`RedisStore`].
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> bubble_core::Result<()> {
//! use std::sync::Arc;
//! use bubble_core::AdapterConfig;
//! use bubble_core::ports::{Cache, Presence};
//! use bubble_store_redis::RedisConfig;
//!
//! let redis = RedisConfig::new("redis://127.0.0.1:6379")
//!     .with_key_prefix("bubble")
//!     .connect()
//!     .await?;
//! let redis = Arc::new(redis);
//! let cache: Arc<dyn Cache> = redis.clone();
//! let presence: Arc<dyn Presence> = redis;
//! # drop((cache, presence));
//! # Ok(()) }
//! ```
//!
//! A cluster: `RedisConfig::default().with_cluster(true).with_urls([...])`.
//! Behind Sentinel:
//! `RedisConfig::default().with_sentinels([...]).with_master_name("mymaster")`.
//!
//! [`Cache`]: bubble_core::ports::Cache
//! [`Presence`]: bubble_core::ports::Presence
//! [`AdapterConfig`]: bubble_core::AdapterConfig

mod config;
mod error;

mod codec;
mod keys;
mod scripts;

mod client;

mod cache;
mod presence;

pub use client::RedisStore;
pub use config::RedisConfig;

/// The value codecs, for the fuzz targets in `fuzz/` and their regression
/// replays: not part of the API, no stability promised.
#[doc(hidden)]
pub mod fuzzing {
    use bubble_core::ports::Route;
    use bubble_core::{InboxEntry, Result, SendReceipt, UserId};

    /// A dedup-window receipt's 40 bytes, read back.
    pub fn decode_receipt(bytes: &[u8]) -> Result<SendReceipt> {
        crate::codec::decode_receipt(bytes)
    }

    /// A receipt as stored.
    pub fn encode_receipt(receipt: &SendReceipt) -> Vec<u8> {
        crate::codec::encode_receipt(receipt).to_vec()
    }

    /// A recent-window element, read back.
    pub fn decode_element(bytes: &[u8]) -> Result<InboxEntry> {
        crate::codec::decode_element(bytes)
    }

    /// A recent-window element as stored.
    pub fn encode_element(entry: &InboxEntry) -> Vec<u8> {
        crate::codec::encode_element(entry)
    }

    /// A presence route of `user`, read back.
    pub fn decode_route(user: &UserId, bytes: &[u8]) -> Result<Route> {
        crate::codec::decode_route(user, bytes)
    }

    /// A presence route as stored.
    pub fn encode_route(route: &Route) -> Result<Vec<u8>> {
        crate::codec::encode_route(route)
    }
}
