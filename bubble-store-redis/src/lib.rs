//! bubble's hot state on Redis: recent-message windows, the dedup window and
//! online routes, shared by every node of a cluster.
//!
//! # Layout
//!
//! - [`config`]: [`RedisConfig`], what a deployment writes down (serde; its
//!   `Debug` hides passwords).
//! - `builder`: [`RedisBuilder`], which validates the config, naming the bad
//!   field, and connects.
//! - `store`: [`RedisStore`], the adapter; it implements
//!   [`bubble_core::ports::Cache`] (`cache`) and
//!   [`bubble_core::ports::Presence`] (`presence`).
//! - `keys`: the key layout. One user's keys share a hash tag, so they sit
//!   on one cluster slot and one Lua script may update them together.
//! - `scripts`: the Lua scripts that make multi-step updates atomic.
//! - `codec`: the bytes stored in values.
//! - `conn`: one handle over a single server (`ConnectionManager`, which
//!   reconnects) or a cluster (`ClusterConnection`).
//! - `error`: the one function that turns driver errors into core kinds.
//!
//! ```no_run
//! # async fn demo() -> bubble_core::Result<()> {
//! use std::sync::Arc;
//! use bubble_store_redis::RedisBuilder;
//!
//! let redis = Arc::new(
//!     RedisBuilder::new()
//!         .url("redis://127.0.0.1:6379")
//!         .key_prefix("bubble")
//!         .connect()
//!         .await?,
//! );
//! let cache: Arc<dyn bubble_core::ports::Cache> = redis.clone();
//! let presence: Arc<dyn bubble_core::ports::Presence> = redis;
//! # let _ = (cache, presence);
//! # Ok(())
//! # }
//! ```

mod builder;
mod cache;
mod codec;
pub mod config;
mod conn;
mod error;
mod keys;
mod presence;
mod scripts;
mod store;

pub use builder::RedisBuilder;
pub use config::RedisConfig;
pub use store::RedisStore;
