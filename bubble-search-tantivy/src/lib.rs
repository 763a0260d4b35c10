//! bubble's embedded default search index: the [`SearchIndex`] port on
//! [tantivy], finding Chinese words inside unspaced text as well as English
//! words.
//!
//! # Layout
//!
//! - `config`: [`TantivyConfig`] (directory, writer memory and threads,
//!   [`TokenizerKind`]), as read from a config file.
//! - `index`: [`TantivySearchBuilder`], which checks the settings and opens
//!   the index, and [`TantivySearch`], the port implementation.
//! - `schema`: the fields of one document per (app, owner, message) and the
//!   conversions to and from [`bubble_core::ports::SearchDoc`].
//! - `tokenizer`: the default tokenizer (CJK bigrams + unigrams, whole
//!   lowercased Latin words).
//! - `analyzer`: the chosen tokenizer on both sides: indexing, and turning a
//!   query word into term or phrase queries (never the query parser).
//! - `error`: the one place tantivy errors become core error kinds.
//!
//! ```no_run
//! # fn main() -> bubble_core::Result<()> {
//! use bubble_search_tantivy::TantivySearch;
//! let search = TantivySearch::builder().path("data/search").build()?;
//! # Ok(()) }
//! ```
//!
//! Durability: [`SearchIndex::flush`] returns only after a tantivy commit
//! (fsynced) and a reader reload. The engine keeps messages in its durable
//! outbox until a flush succeeds, so a crash loses nothing: what was not
//! committed is indexed again on start, and indexing is idempotent per
//! (app, owner, message). See `docs/storage/tantivy.md`.
//!
//! [`SearchIndex`]: bubble_core::ports::SearchIndex
//! [`SearchIndex::flush`]: bubble_core::ports::SearchIndex::flush

mod analyzer;
mod config;
mod error;
mod index;
mod schema;
mod tokenizer;

pub use config::{
    DEFAULT_WRITER_MEMORY_BYTES, MIN_WRITER_MEMORY_BYTES_PER_THREAD, TantivyConfig, TokenizerKind,
};
pub use index::{
    MAX_PAGE, MAX_QUERY_CHARS, MAX_RESULT_WINDOW, TantivySearch, TantivySearchBuilder,
};
