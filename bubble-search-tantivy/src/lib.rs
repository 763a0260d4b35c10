//! bubble's embedded default search index: the [`SearchIndex`] port on
//! [tantivy], finding Chinese words inside unspaced text as well as English
//! words.
//!
//! Durability: [`SearchIndex::flush`] returns only after a tantivy commit
//! (fsynced) and a reader reload. The engine keeps messages in its durable
//! outbox until a flush succeeds, so a crash loses nothing: what was not
//! committed is indexed again on start, and indexing is idempotent per
//! (app, message). An index directory in an older format is moved aside on
//! open and must be rebuilt from the store (`bubble-server reindex`, or the
//! server at start). See `docs/storage/tantivy.md` and `docs/search.md`.
//!
//! # Layout
//!
//! From the bottom up; a module uses only modules listed before it.
//!
//! - `config`: [`TantivyConfig`] (directory, writer memory and threads,
//!   [`TokenizerKind`]), as read from a config file, its defaults and the
//!   rule of every field.
//! - `error`: the one place tantivy's (and the index directory's) errors
//!   become core error kinds.
//! - `tokenizer`: the default tokenizer (CJK bigrams + unigrams, whole
//!   lowercased Latin words).
//! - `analyzer`: the chosen tokenizer on both sides: indexing, and turning a
//!   query word into term or phrase queries (never the query parser).
//! - `schema`: the fields of one document per (app, message), its owners a
//!   multi-valued field, and the conversions to and from
//!   [`bubble_core::ports::SearchDoc`].
//! - `client`: [`TantivySearch`], the index with its one writer (and what
//!   it wrote since its last commit) and reader, `connect` (the
//!   [`AdapterConfig`] impl of [`TantivyConfig`]), and the format upgrade.
//! - `search`: the port, its impl on [`TantivySearch`]: indexing through
//!   the writer, and the query, always filtered by app and owner.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> bubble_core::Result<()> {
//! use std::sync::Arc;
//! use bubble_core::AdapterConfig;
//! use bubble_core::ports::SearchIndex;
//! use bubble_search_tantivy::TantivyConfig;
//!
//! let search = TantivyConfig::new("data/search")
//!     .with_writer_threads(1)
//!     .connect()
//!     .await?;
//! let search: Arc<dyn SearchIndex> = Arc::new(search);
//! # drop(search);
//! # Ok(()) }
//! ```
//!
//! [`SearchIndex`]: bubble_core::ports::SearchIndex
//! [`SearchIndex::flush`]: bubble_core::ports::SearchIndex::flush
//! [`AdapterConfig`]: bubble_core::AdapterConfig

mod config;
mod error;

mod analyzer;
mod schema;
mod tokenizer;

mod client;

mod search;

pub use client::TantivySearch;
pub use config::{
    DEFAULT_WRITER_MEMORY_BYTES, MIN_WRITER_MEMORY_BYTES_PER_THREAD, TantivyConfig, TokenizerKind,
};
pub use search::{MAX_PAGE, MAX_QUERY_CHARS, MAX_RESULT_WINDOW};
