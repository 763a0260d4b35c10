//! bubble's node discovery on etcd v3: every server node registers under a
//! lease that a background task keeps alive, the selector lists nodes by
//! role, and peers watch joins and leaves. A node that dies stops its
//! keep-alive, its lease runs out, and etcd deletes its key: every watcher
//! hears `Down` without anyone cleaning up.
//!
//! # Layout
//!
//! - [`config`]: [`EtcdConfig`], the serde settings (endpoints, key prefix,
//!   credentials, timeouts), validated field by field.
//! - `discovery`: [`EtcdDiscovery`], the [`Discovery`](bubble_core::ports::Discovery)
//!   port, and [`EtcdDiscoveryBuilder`], whose `connect()` validates the config
//!   and checks that etcd answers.
//! - `lease`: a registration: the lease, the node key attached to it, and
//!   the keep-alive task (which re-registers if etcd lost the lease).
//! - `watch`: a prefix watch per role turning PUT into `Up` and DELETE into
//!   `Down`, resyncing from a snapshot when the stream breaks.
//! - `keys`: the key layout (`<prefix>/nodes/<role>/<node id>`) and the
//!   JSON value.
//! - `error`: `map_err`, the one place etcd-client errors become core
//!   error kinds.
//!
//! ```no_run
//! # async fn demo() -> bubble_core::Result<()> {
//! use std::time::Duration;
//! use bubble_core::ports::{Discovery, NodeInfo};
//! use bubble_discovery_etcd::EtcdDiscovery;
//!
//! let discovery = EtcdDiscovery::builder()
//!     .endpoints(["http://127.0.0.1:2379"])
//!     .prefix("/bubble")
//!     .connect()
//!     .await?;
//! let me = NodeInfo {
//!     id: "gate-1".into(),
//!     role: "gate".into(),
//!     tcp_addr: Some("10.0.0.1:7000".into()),
//!     ws_addr: None,
//!     rpc_addr: Some("10.0.0.1:7100".into()),
//!     load: 0,
//! };
//! let lease = discovery.register(&me, Duration::from_secs(10)).await?;
//! let gates = discovery.list("gate").await?;
//! # drop(gates);
//! lease.revoke().await?; // a clean shutdown; dropping it instead acts like a crash
//! # Ok(())
//! # }
//! ```

pub mod config;
mod discovery;
mod error;
mod keys;
mod lease;
mod watch;

pub use config::EtcdConfig;
pub use discovery::{EtcdDiscovery, EtcdDiscoveryBuilder};
