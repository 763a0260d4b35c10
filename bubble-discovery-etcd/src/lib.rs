//! bubble's node discovery on etcd v3 ([`Discovery`]): every server node
//! registers under a lease that a background task keeps alive, the selector
//! lists nodes by role, and peers watch joins and leaves. A node that dies
//! stops its keep-alive, its lease runs out, and etcd deletes its key: every
//! watcher hears `Down` without anyone cleaning up.
//!
//! # Layout
//!
//! From the bottom up; a module uses only modules listed before it.
//!
//! - `config`: [`EtcdConfig`], the serde settings (endpoints, key prefix,
//!   credentials, timeouts; `Debug` hides the password), its defaults and
//!   the rule of every field.
//! - `error`: `map_err` and `timed`, the one place etcd-client errors and
//!   deadlines become core error kinds.
//! - `keys`: the key layout (`<prefix>/nodes/<role>/<node id>`) and the
//!   JSON value.
//! - `client`: [`EtcdDiscovery`], the etcd client and settings everything
//!   below shares, writing a node's key, and `connect` (the
//!   [`AdapterConfig`] impl of [`EtcdConfig`]).
//! - `lease`: a registration: the lease, the node key attached to it, and
//!   the keep-alive task (which re-registers if etcd lost the lease).
//! - `watch`: a prefix watch per role turning PUT into `Up` and DELETE into
//!   `Down`, resyncing from a snapshot when the stream breaks.
//! - `discovery`: the port, its impl on [`EtcdDiscovery`].
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> bubble_core::Result<()> {
//! use std::time::Duration;
//! use bubble_core::AdapterConfig;
//! use bubble_core::ports::{Discovery, NodeInfo};
//! use bubble_discovery_etcd::EtcdConfig;
//!
//! let discovery = EtcdConfig::new(["http://127.0.0.1:2379"])
//!     .with_prefix("/bubble")
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
//! # Ok(()) }
//! ```
//!
//! [`Discovery`]: bubble_core::ports::Discovery
//! [`AdapterConfig`]: bubble_core::AdapterConfig

mod config;
mod error;

mod keys;

mod client;

mod lease;
mod watch;

mod discovery;

pub use client::EtcdDiscovery;
pub use config::EtcdConfig;
