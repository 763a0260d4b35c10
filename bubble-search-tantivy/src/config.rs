//! The index's settings, as read from a config file.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Default writer memory: enough to buffer thousands of chat messages
/// between commits, small enough for a small machine.
pub const DEFAULT_WRITER_MEMORY_BYTES: usize = 50_000_000;

/// The least memory tantivy accepts per indexing thread.
pub const MIN_WRITER_MEMORY_BYTES_PER_THREAD: usize = 15_000_000;

/// How message text is split into searchable terms.
///
/// The choice is written into the index: an index built with one tokenizer
/// refuses to open with the other (its terms would not match the queries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TokenizerKind {
    /// CJK text as overlapping character bigrams plus unigrams, other text
    /// as whole lowercased words. No dictionary; finds any substring of a
    /// CJK run. The default (see `docs/storage/tantivy.md` for why).
    #[default]
    CjkBigram,
    /// The jieba dictionary segmenter (search mode), words lowercased.
    /// Needs the crate's `jieba` feature.
    Jieba,
}

impl TokenizerKind {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenizerKind::CjkBigram => "cjk_bigram",
            TokenizerKind::Jieba => "jieba",
        }
    }
}

/// Settings of a [`crate::TantivySearch`].
///
/// ```toml
/// [search]
/// path = "data/search"            # directory; created if missing
/// writer_memory_bytes = 50000000  # indexing buffer, >= 15 MB per thread
/// writer_threads = 1
/// tokenizer = "cjk_bigram"        # or "jieba" (feature `jieba`)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TantivyConfig {
    /// The index directory (created if missing). Required: an index kept
    /// only in memory is asked for explicitly with
    /// [`crate::TantivySearchBuilder::in_memory`].
    pub path: PathBuf,
    /// Memory the writer may buffer before it writes a segment, shared by
    /// its threads; at least 15 MB per thread.
    pub writer_memory_bytes: usize,
    /// Indexing threads. One keeps up with a chat server on a small machine;
    /// more only help bulk re-indexing.
    pub writer_threads: usize,
    /// How text is split into terms.
    pub tokenizer: TokenizerKind,
}

impl Default for TantivyConfig {
    fn default() -> TantivyConfig {
        TantivyConfig {
            path: PathBuf::new(),
            writer_memory_bytes: DEFAULT_WRITER_MEMORY_BYTES,
            writer_threads: 1,
            tokenizer: TokenizerKind::default(),
        }
    }
}

impl TantivyConfig {
    /// The defaults with the index at `path`.
    pub fn at(path: impl Into<PathBuf>) -> TantivyConfig {
        TantivyConfig {
            path: path.into(),
            ..TantivyConfig::default()
        }
    }
}
