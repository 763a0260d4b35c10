//! bubble's message search on Elasticsearch: every owner's copy of a
//! message is one document, found by words (Chinese, Japanese and Korean
//! included), conversation and time, only ever by its owner.
//!
//! # Layout
//!
//! - [`config`]: [`EsConfig`], the serde settings (node URLs, index name,
//!   credentials, timeout, whether to manage the index), validated field by
//!   field.
//! - `index`: [`EsSearch`], the [`SearchIndex`](bubble_core::ports::SearchIndex)
//!   port, and [`EsSearchBuilder`], whose `connect()` validates the config and
//!   installs the index template and index.
//! - `body`: the request bodies as pure functions: the index template and
//!   mapping (CJK-aware analysis, ids as keywords, time as a date), bulk
//!   lines (`_id` = `app|owner|msgid`, routing `app|owner`) and the search
//!   query.
//! - `response`: reading answers: hits and totals, bulk item failures,
//!   error bodies.
//! - `error`: `map_err` and `status_error`, where client errors and HTTP
//!   statuses become core error kinds.
//!
//! The request bodies are unit-tested against fixed JSON; the conformance
//! suite runs against a live cluster when `BUBBLE_ES_URL` is set (see
//! `docs/storage.md`).
//!
//! ```no_run
//! # async fn demo() -> bubble_core::Result<()> {
//! use bubble_search_es::EsSearch;
//!
//! let search = EsSearch::builder()
//!     .urls(["http://127.0.0.1:9200"])
//!     .index("bubble-messages")
//!     .connect()
//!     .await?;
//! # drop(search);
//! # Ok(())
//! # }
//! ```

mod body;
pub mod config;
mod error;
mod index;
mod response;

pub use config::EsConfig;
pub use index::{EsSearch, EsSearchBuilder};
