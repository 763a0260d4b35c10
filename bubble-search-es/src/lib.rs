//! bubble's message search on Elasticsearch ([`SearchIndex`]): every
//! owner's copy of a message is one document, found by words (Chinese,
//! Japanese and Korean included), conversation and time, only ever by its
//! owner.
//!
//! # Layout
//!
//! From the bottom up; a module uses only modules listed before it.
//!
//! - `config`: [`EsConfig`], the serde settings (node URLs, index name,
//!   credentials, timeout, whether to manage the index; `Debug` hides the
//!   password and the API key), its defaults and the rule of every field.
//! - `error`: where client errors, HTTP error statuses, error bodies and
//!   unreadable answers become core error kinds.
//! - `body`: the request bodies as pure functions: the index template and
//!   mapping (CJK-aware analysis, ids as keywords, time as a date), bulk
//!   lines (`_id` = `app|msgid`, a scripted update that merges owners) and
//!   the search query.
//! - `response`: reading answers: hits and totals, bulk item failures.
//! - `client`: [`EsSearch`], the HTTP client every request goes through,
//!   the index template and index it installs, and `connect` (the
//!   [`AdapterConfig`] impl of [`EsConfig`]).
//! - `search`: the port, its impl on [`EsSearch`].
//!
//! The request bodies are unit-tested against fixed JSON; the conformance
//! suite runs against a live cluster when `BUBBLE_ES_URL` is set (see
//! `docs/storage.md`).
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> bubble_core::Result<()> {
//! use std::sync::Arc;
//! use bubble_core::AdapterConfig;
//! use bubble_core::ports::SearchIndex;
//! use bubble_search_es::EsConfig;
//!
//! let search = EsConfig::new(["http://127.0.0.1:9200"])
//!     .with_index("bubble-messages")
//!     .connect()
//!     .await?;
//! let search: Arc<dyn SearchIndex> = Arc::new(search);
//! # drop(search);
//! # Ok(()) }
//! ```
//!
//! [`SearchIndex`]: bubble_core::ports::SearchIndex
//! [`AdapterConfig`]: bubble_core::AdapterConfig

mod config;
mod error;

mod body;
mod response;

mod client;

mod search;

pub use client::EsSearch;
pub use config::EsConfig;
