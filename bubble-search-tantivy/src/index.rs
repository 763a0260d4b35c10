//! [`TantivySearch`]: the [`SearchIndex`] port on a tantivy index.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bubble_core::ports::{SearchDoc, SearchHit, SearchIndex, SearchQuery, SearchResults};
use bubble_core::{AppId, Error, MsgId, Result, UserId};
use parking_lot::Mutex;
use tantivy::collector::sort_key::{SortBySimilarityScore, SortByStaticFastValue};
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::indexer::IndexWriterOptions;
use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{FieldType, IndexRecordOption};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::analyzer::Analyzer;
use crate::config::{MIN_WRITER_MEMORY_BYTES_PER_THREAD, TantivyConfig, TokenizerKind};
use crate::error::{join_err, map_err};
use crate::schema::{Fields, conversation_value, names};

/// Most hits one query may page through (`offset + limit`): deeper pages
/// cost memory for every skipped hit; narrow the query instead.
pub const MAX_RESULT_WINDOW: usize = 10_000;

/// Most hits one page may hold.
pub const MAX_PAGE: usize = 1_000;

/// Longest query text, in characters: every character of a Chinese query
/// is a term of a phrase, so unbounded input would be unbounded work.
pub const MAX_QUERY_CHARS: usize = 256;

/// Most indexing threads tantivy runs.
const MAX_WRITER_THREADS: usize = 8;

/// Builds a [`TantivySearch`], checking every setting first.
#[derive(Debug, Clone, Default)]
pub struct TantivySearchBuilder {
    config: TantivyConfig,
    // Set only by `in_memory()`, never by a config file, so a missing `path`
    // is an error rather than an index that vanishes on restart.
    in_memory: bool,
}

impl TantivySearchBuilder {
    /// A builder starting from `config`.
    pub fn from_config(config: TantivyConfig) -> TantivySearchBuilder {
        TantivySearchBuilder {
            config,
            in_memory: false,
        }
    }

    /// The index directory (created if missing).
    pub fn path(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.path = path.into();
        self.in_memory = false;
        self
    }

    /// Keeps the index in memory instead of a directory: for tests; it is
    /// gone when the process ends.
    pub fn in_memory(mut self) -> Self {
        self.in_memory = true;
        self
    }

    /// Indexing memory shared by the writer threads (>= 15 MB per thread).
    pub fn writer_memory_bytes(mut self, bytes: usize) -> Self {
        self.config.writer_memory_bytes = bytes;
        self
    }

    /// Indexing threads.
    pub fn writer_threads(mut self, threads: usize) -> Self {
        self.config.writer_threads = threads;
        self
    }

    /// How text is split into terms.
    pub fn tokenizer(mut self, tokenizer: TokenizerKind) -> Self {
        self.config.tokenizer = tokenizer;
        self
    }

    /// Checks the settings, then opens the index (creating it if the
    /// directory holds none). Blocks briefly on the file system.
    ///
    /// Fails with `InvalidInput` naming the bad setting, with `InvalidInput`
    /// when the directory holds an index built with another tokenizer or
    /// schema, and with `Unavailable` when another writer holds the index.
    pub fn build(self) -> Result<TantivySearch> {
        let c = &self.config;
        if c.writer_threads == 0 || c.writer_threads > MAX_WRITER_THREADS {
            return Err(Error::invalid(format!(
                "writer_threads must be 1 to {MAX_WRITER_THREADS}, got {}",
                c.writer_threads
            )));
        }
        let per_thread = c.writer_memory_bytes / c.writer_threads;
        if per_thread < MIN_WRITER_MEMORY_BYTES_PER_THREAD {
            return Err(Error::invalid(format!(
                "writer_memory_bytes must be at least {MIN_WRITER_MEMORY_BYTES_PER_THREAD} per \
                 writer thread ({} for {} threads), got {}",
                MIN_WRITER_MEMORY_BYTES_PER_THREAD * c.writer_threads,
                c.writer_threads,
                c.writer_memory_bytes
            )));
        }
        if per_thread > u32::MAX as usize - 1_000_000 {
            return Err(Error::invalid(format!(
                "writer_memory_bytes must be under 4 GB per writer thread, got {}",
                c.writer_memory_bytes
            )));
        }
        let analyzer = Analyzer::new(c.tokenizer).map_err(Error::invalid)?;
        let schema = Fields::schema(analyzer.name());

        let index = if self.in_memory {
            Index::create_in_ram(schema)
        } else {
            if c.path.as_os_str().is_empty() {
                return Err(Error::invalid(
                    "path must name the index directory (use in_memory() only in tests)",
                ));
            }
            open_dir(&c.path, schema, c.tokenizer)?
        };
        index
            .tokenizers()
            .register(analyzer.name(), analyzer.text_analyzer());
        let fields = Fields::of(&index.schema())?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| map_err("opening a reader", e))?;
        let options = IndexWriterOptions::builder()
            .num_worker_threads(c.writer_threads)
            .memory_budget_per_thread(per_thread)
            // Merges run in the background; one thread keeps them from
            // taking the small machine's cores away from serving.
            .num_merge_threads(1)
            .build();
        let writer = index
            .writer_with_options(options.clone())
            .map_err(|e| map_err("opening the writer", e))?;
        Ok(TantivySearch {
            inner: Arc::new(Inner {
                index,
                reader,
                writer: Mutex::new(Some(writer)),
                options,
                fields,
                analyzer,
                path: (!self.in_memory).then(|| c.path.clone()),
            }),
        })
    }
}

fn open_dir(path: &Path, schema: tantivy::schema::Schema, want: TokenizerKind) -> Result<Index> {
    std::fs::create_dir_all(path).map_err(|e| {
        Error::unavailable(format!(
            "path: cannot create the index directory {}; check permissions",
            path.display()
        ))
        .with_source(e)
    })?;
    let dir = MmapDirectory::open(path)
        .map_err(|e| map_err(&format!("opening {}", path.display()), e.into()))?;
    if Index::exists(&dir).map_err(|e| map_err("reading the index directory", e.into()))? {
        // Say which tokenizer built it, rather than a bare "schema differs".
        let existing = Index::open(dir.clone()).map_err(|e| map_err("opening the index", e))?;
        let built_with =
            existing.schema().get_field(names::TEXT).ok().and_then(|f| {
                match existing.schema().get_field_entry(f).field_type() {
                    FieldType::Str(o) => o.get_indexing_options().map(|i| i.tokenizer().to_owned()),
                    _ => None,
                }
            });
        if let Some(name) = built_with
            && let Some(kind) = Analyzer::kind_of(&name)
            && kind != want
        {
            return Err(Error::invalid(format!(
                "tokenizer: the index at {} was built with {:?}, the config asks for {:?}; \
                 set tokenizer = {:?}, or point path at a new directory and re-index",
                path.display(),
                kind.as_str(),
                want.as_str(),
                kind.as_str()
            )));
        }
    }
    Index::open_or_create(dir, schema)
        .map_err(|e| map_err(&format!("opening the index at {}", path.display()), e))
}

/// bubble's embedded full-text index of message history, on tantivy.
///
/// Every document belongs to one `(app, owner)`; every query is filtered by
/// both, so nobody finds a message they do not own. Indexing the same
/// `(app, owner, message)` again replaces it, so a replayed outbox batch
/// never duplicates. [`SearchIndex::flush`] commits (durable on disk) and
/// reloads the reader (visible to searches) before it returns.
///
/// Cheap to clone: clones share one index and one writer.
#[derive(Clone)]
pub struct TantivySearch {
    inner: Arc<Inner>,
}

struct Inner {
    index: Index,
    reader: IndexReader,
    // The one writer. `None` after a failed commit until a new one opens:
    // the failed writer's uncommitted work is dropped, which is safe because
    // the engine keeps outbox rows until a flush succeeds and replays them.
    writer: Mutex<Option<IndexWriter<TantivyDocument>>>,
    options: IndexWriterOptions,
    fields: Fields,
    analyzer: Analyzer,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for TantivySearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TantivySearch")
            .field("path", &self.inner.path)
            .field("tokenizer", &self.inner.analyzer.kind())
            .finish_non_exhaustive()
    }
}

impl TantivySearch {
    /// A builder with the default settings.
    pub fn builder() -> TantivySearchBuilder {
        TantivySearchBuilder::default()
    }

    /// Opens (or creates) the index `config` describes.
    pub fn open(config: TantivyConfig) -> Result<TantivySearch> {
        TantivySearchBuilder::from_config(config).build()
    }

    /// An empty index in memory with the default tokenizer, for tests.
    pub fn in_memory() -> TantivySearch {
        TantivySearch::builder()
            .in_memory()
            .build()
            .expect("the default settings are valid")
    }

    /// The index directory (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// The tokenizer the index uses.
    pub fn tokenizer(&self) -> TokenizerKind {
        self.inner.analyzer.kind()
    }

    /// Documents searchable now (after the last flush), across every owner.
    pub fn num_docs(&self) -> u64 {
        self.inner.reader.searcher().num_docs()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| join_err(what, e))?
    }
}

impl Inner {
    /// Runs `f` with the writer, opening a new one if a failure dropped it.
    fn with_writer<T>(
        &self,
        f: impl FnOnce(&mut IndexWriter<TantivyDocument>) -> Result<T>,
    ) -> Result<T> {
        let mut slot = self.writer.lock();
        if slot.is_none() {
            *slot = Some(
                self.index
                    .writer_with_options(self.options.clone())
                    .map_err(|e| map_err("reopening the writer", e))?,
            );
        }
        let writer = slot.as_mut().expect("just set");
        let result = f(writer);
        if result.is_err() {
            // A writer that failed may be half broken: start over. What it
            // held uncommitted is replayed from the engine's outbox.
            *slot = None;
        }
        result
    }

    fn index(&self, docs: &[SearchDoc]) -> Result<()> {
        self.with_writer(|w| {
            for doc in docs {
                let key =
                    self.fields
                        .key_term(doc.app.as_str(), doc.owner.as_str(), &doc.server_msg_id);
                // Delete-then-add in one writer: later operations win, so
                // the last version indexed is the one kept.
                w.delete_term(key);
                w.add_document(self.fields.document(doc))
                    .map_err(|e| map_err("adding a document", e))?;
            }
            Ok(())
        })
    }

    fn remove(&self, app: &AppId, owner: &UserId, id: &MsgId) -> Result<()> {
        self.with_writer(|w| {
            w.delete_term(self.fields.key_term(app.as_str(), owner.as_str(), id));
            Ok(())
        })
    }

    fn flush(&self) -> Result<()> {
        self.with_writer(|w| {
            w.commit().map_err(|e| map_err("committing", e))?;
            Ok(())
        })?;
        self.reader
            .reload()
            .map_err(|e| map_err("reloading the reader", e))
    }

    fn query(&self, q: &SearchQuery) -> Option<BooleanQuery> {
        let f = &self.fields;
        let filter = |query: Box<dyn Query>| -> (Occur, Box<dyn Query>) {
            // Filters decide membership only; the score comes from the words.
            (Occur::Must, Box::new(ConstScoreQuery::new(query, 0.0)))
        };
        let raw = |field, value: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, value),
                IndexRecordOption::Basic,
            ))
        };
        // The owner filter is not optional: these two clauses come first
        // and every other clause can only narrow them.
        let mut clauses = vec![
            filter(raw(f.app, q.app.as_str())),
            filter(raw(f.owner, q.owner.as_str())),
        ];
        if let Some(c) = &q.conversation {
            clauses.push(filter(raw(
                f.conversation,
                &conversation_value(c.kind, c.id()),
            )));
        }
        if q.from_time.is_some() || q.to_time.is_some() {
            if let (Some(from), Some(to)) = (q.from_time, q.to_time)
                && from > to
            {
                return None;
            }
            let bound = |t: Option<i64>| match t {
                Some(t) => Bound::Included(Term::from_field_i64(f.server_time, t)),
                None => Bound::Unbounded,
            };
            clauses.push(filter(Box::new(RangeQuery::new(
                bound(q.from_time),
                bound(q.to_time),
            ))));
        }
        let mut words = 0;
        for word in q.words.split_whitespace() {
            if let Some(query) = self.analyzer.word_query(f.text, word) {
                clauses.push((Occur::Must, query));
                words += 1;
            }
        }
        // No searchable word: nothing matches (rather than every message).
        (words > 0).then(|| BooleanQuery::new(clauses))
    }

    fn search(&self, q: &SearchQuery) -> Result<SearchResults> {
        let chars = q.words.chars().count();
        if chars > MAX_QUERY_CHARS {
            return Err(Error::invalid(format!(
                "words may be at most {MAX_QUERY_CHARS} characters, got {chars}"
            )));
        }
        let limit = q.limit.min(MAX_PAGE);
        if q.offset.saturating_add(limit) > MAX_RESULT_WINDOW {
            return Err(Error::invalid(format!(
                "offset + limit may be at most {MAX_RESULT_WINDOW}, got {} + {limit}; narrow \
                 the search by conversation or time instead of paging deeper",
                q.offset
            )));
        }
        let Some(query) = self.query(q) else {
            return Ok(SearchResults::default());
        };
        let searcher = self.reader.searcher();
        if limit == 0 {
            let total = searcher
                .search(&query, &Count)
                .map_err(|e| map_err("counting", e))?;
            return Ok(SearchResults {
                hits: Vec::new(),
                total: total as u64,
            });
        }
        // Best score first, then newest first.
        let top = TopDocs::with_limit(limit).and_offset(q.offset).order_by((
            SortBySimilarityScore,
            SortByStaticFastValue::<i64>::for_field(names::SERVER_TIME),
        ));
        let (total, found) = searcher
            .search(&query, &(Count, top))
            .map_err(|e| map_err("searching", e))?;
        let mut hits = Vec::with_capacity(found.len());
        for ((score, _time), address) in found {
            let stored: TantivyDocument = searcher
                .doc(address)
                .map_err(|e| map_err("reading a stored document", e))?;
            let doc = self.fields.search_doc(&stored)?;
            // The query already filtered by owner; a document that is not
            // the owner's is never shown, whatever went wrong.
            if doc.app != q.app || doc.owner != q.owner {
                return Err(Error::internal(
                    "search index returned another owner's document; refusing to show it",
                ));
            }
            hits.push(SearchHit { doc, score });
        }
        Ok(SearchResults {
            hits,
            total: total as u64,
        })
    }
}

#[async_trait]
impl SearchIndex for TantivySearch {
    async fn index(&self, docs: &[SearchDoc]) -> Result<()> {
        if docs.is_empty() {
            return Ok(());
        }
        let docs = docs.to_vec();
        self.blocking("indexing", move |i| i.index(&docs)).await
    }

    async fn remove(&self, app: &AppId, owner: &UserId, id: &MsgId) -> Result<()> {
        let (app, owner, id) = (app.clone(), owner.clone(), *id);
        self.blocking("removing", move |i| i.remove(&app, &owner, &id))
            .await
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResults> {
        let query = query.clone();
        self.blocking("searching", move |i| i.search(&query)).await
    }

    async fn flush(&self) -> Result<()> {
        self.blocking("flushing", Inner::flush).await
    }
}
