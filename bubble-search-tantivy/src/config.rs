//! [`TantivyConfig`]: the index's settings as read from a config file, their
//! defaults, and the rule of every field.

use std::path::PathBuf;

use bubble_core::InvalidConfig;
use serde::{Deserialize, Serialize};

/// Default writer memory: enough to buffer thousands of chat messages
/// between commits, small enough for a small machine.
pub const DEFAULT_WRITER_MEMORY_BYTES: usize = 50_000_000;

/// The least memory tantivy accepts per indexing thread.
pub const MIN_WRITER_MEMORY_BYTES_PER_THREAD: usize = 15_000_000;

/// Most indexing threads tantivy runs.
const MAX_WRITER_THREADS: usize = 8;

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

    /// Whether this build has the tokenizer (jieba needs the `jieba` feature).
    pub(crate) fn is_built_in(self) -> bool {
        match self {
            TokenizerKind::CjkBigram => true,
            TokenizerKind::Jieba => cfg!(feature = "jieba"),
        }
    }
}

/// Settings of a [`crate::TantivySearch`].
///
/// ```toml
/// [search.tantivy]
/// path = "data/search"            # directory; created if missing
/// writer_memory_bytes = 50000000  # indexing buffer, >= 15 MB per thread
/// writer_threads = 1
/// tokenizer = "cjk_bigram"        # or "jieba" (feature `jieba`)
/// ```
///
/// Build one with [`TantivyConfig::new`] and the `with_*` setters, or from
/// serde. [`AdapterConfig::validate`] names the first bad field;
/// [`AdapterConfig::connect`] validates and opens (or creates) the index.
/// No field is a secret, so `Debug` is derived.
///
/// [`AdapterConfig::validate`]: bubble_core::AdapterConfig::validate
/// [`AdapterConfig::connect`]: bubble_core::AdapterConfig::connect
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TantivyConfig {
    /// The index directory (created if missing). Required unless
    /// `in_memory` is set: a missing path is an error, never an index that
    /// silently vanishes on restart.
    pub path: PathBuf,
    /// Keep the index in memory instead of a directory (for tests: it is
    /// gone when the process ends). Leave `path` empty with it.
    pub in_memory: bool,
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
            in_memory: false,
            writer_memory_bytes: DEFAULT_WRITER_MEMORY_BYTES,
            writer_threads: 1,
            tokenizer: TokenizerKind::default(),
        }
    }
}

impl TantivyConfig {
    /// The defaults with the index at `path`.
    pub fn new(path: impl Into<PathBuf>) -> TantivyConfig {
        TantivyConfig {
            path: path.into(),
            ..TantivyConfig::default()
        }
    }

    /// Sets [`path`](TantivyConfig::path).
    pub fn with_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = path.into();
        self
    }

    /// Sets [`in_memory`](TantivyConfig::in_memory).
    pub fn with_in_memory(mut self, in_memory: bool) -> Self {
        self.in_memory = in_memory;
        self
    }

    /// Sets [`writer_memory_bytes`](TantivyConfig::writer_memory_bytes).
    pub fn with_writer_memory_bytes(mut self, writer_memory_bytes: usize) -> Self {
        self.writer_memory_bytes = writer_memory_bytes;
        self
    }

    /// Sets [`writer_threads`](TantivyConfig::writer_threads).
    pub fn with_writer_threads(mut self, writer_threads: usize) -> Self {
        self.writer_threads = writer_threads;
        self
    }

    /// Sets [`tokenizer`](TantivyConfig::tokenizer).
    pub fn with_tokenizer(mut self, tokenizer: TokenizerKind) -> Self {
        self.tokenizer = tokenizer;
        self
    }

    /// Every field's rule, naming the first bad field: what
    /// [`AdapterConfig::validate`](bubble_core::AdapterConfig::validate)
    /// runs (its impl sits in `client`, beside `connect`).
    pub(crate) fn check(&self) -> Result<(), InvalidConfig> {
        if self.writer_threads == 0 || self.writer_threads > MAX_WRITER_THREADS {
            return Err(InvalidConfig::new(
                "writer_threads",
                format!(
                    "must be 1 to {MAX_WRITER_THREADS}, got {}",
                    self.writer_threads
                ),
            ));
        }
        let per_thread = self.writer_memory_bytes / self.writer_threads;
        if per_thread < MIN_WRITER_MEMORY_BYTES_PER_THREAD {
            return Err(InvalidConfig::new(
                "writer_memory_bytes",
                format!(
                    "must be at least {MIN_WRITER_MEMORY_BYTES_PER_THREAD} per writer thread \
                     ({} for {} threads), got {}",
                    MIN_WRITER_MEMORY_BYTES_PER_THREAD * self.writer_threads,
                    self.writer_threads,
                    self.writer_memory_bytes
                ),
            ));
        }
        if per_thread > u32::MAX as usize - 1_000_000 {
            return Err(InvalidConfig::new(
                "writer_memory_bytes",
                format!(
                    "must be under 4 GB per writer thread, got {}",
                    self.writer_memory_bytes
                ),
            ));
        }
        if !self.tokenizer.is_built_in() {
            return Err(InvalidConfig::new(
                "tokenizer",
                format!(
                    "{:?} needs bubble-search-tantivy built with the `jieba` feature; use \
                     \"cjk_bigram\" or enable the feature",
                    self.tokenizer.as_str()
                ),
            ));
        }
        match (self.in_memory, self.path.as_os_str().is_empty()) {
            (false, true) => Err(InvalidConfig::new(
                "path",
                "must name the index directory (or set in_memory, for tests)",
            )),
            (true, false) => Err(InvalidConfig::new(
                "in_memory",
                "is set together with `path`: an index in memory uses no directory; \
                 leave `path` empty or turn `in_memory` off",
            )),
            _ => Ok(()),
        }
    }

    /// Writer memory per indexing thread (after [`TantivyConfig::check`]).
    pub(crate) fn memory_per_thread(&self) -> usize {
        self.writer_memory_bytes / self.writer_threads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_names_each_bad_field() {
        let ok = TantivyConfig::new("data/search");
        ok.check().unwrap();
        TantivyConfig::default()
            .with_in_memory(true)
            .check()
            .unwrap();
        let mut cases = vec![
            (TantivyConfig::default(), "path"),
            (ok.clone().with_in_memory(true), "in_memory"),
            (ok.clone().with_writer_threads(0), "writer_threads"),
            (ok.clone().with_writer_threads(9), "writer_threads"),
            (
                ok.clone().with_writer_memory_bytes(1_000_000),
                "writer_memory_bytes",
            ),
            (
                ok.clone()
                    .with_writer_threads(4)
                    .with_writer_memory_bytes(50_000_000),
                "writer_memory_bytes",
            ),
            (
                ok.clone().with_writer_memory_bytes(usize::MAX),
                "writer_memory_bytes",
            ),
        ];
        if !cfg!(feature = "jieba") {
            cases.push((ok.clone().with_tokenizer(TokenizerKind::Jieba), "tokenizer"));
        }
        for (config, field) in cases {
            let e = config.check().expect_err(field);
            assert_eq!(e.field, field, "{e}");
        }
    }
}
