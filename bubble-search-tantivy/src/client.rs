//! [`TantivySearch`]: the index, its one writer and its reader, which every
//! call of the port uses, opened (or created) by
//! [`TantivyConfig::connect`](bubble_core::AdapterConfig::connect).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bubble_core::{AdapterConfig, Error, InvalidConfig, Result};
use parking_lot::Mutex;
use tantivy::directory::MmapDirectory;
use tantivy::indexer::IndexWriterOptions;
use tantivy::schema::FieldType;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument};

use crate::analyzer::Analyzer;
use crate::config::{TantivyConfig, TokenizerKind};
use crate::error::{cannot_create_dir, join_err, map_err};
use crate::schema::{Fields, names};

#[async_trait]
impl AdapterConfig for TantivyConfig {
    type Adapter = TantivySearch;

    fn validate(&self) -> std::result::Result<(), InvalidConfig> {
        self.check()
    }

    /// Validates, then opens the index (creating it if the directory holds
    /// none). Opening blocks briefly on the file system.
    async fn connect(&self) -> Result<TantivySearch> {
        self.validate()?;
        TantivySearch::open(self.clone())
    }
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
///
/// [`SearchIndex::flush`]: bubble_core::ports::SearchIndex::flush
#[derive(Clone)]
pub struct TantivySearch {
    inner: Arc<Inner>,
}

/// The index and its one writer and reader, shared by clones.
pub(crate) struct Inner {
    pub(crate) index: Index,
    pub(crate) reader: IndexReader,
    // The one writer. `None` after a failed commit until a new one opens:
    // the failed writer's uncommitted work is dropped, which is safe because
    // the engine keeps outbox rows until a flush succeeds and replays them.
    pub(crate) writer: Mutex<Option<IndexWriter<TantivyDocument>>>,
    pub(crate) options: IndexWriterOptions,
    pub(crate) fields: Fields,
    pub(crate) analyzer: Analyzer,
    pub(crate) path: Option<PathBuf>,
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
    /// Opens (or creates) the index `config` (already validated) describes.
    /// Blocks briefly on the file system.
    ///
    /// Fails with `InvalidInput` when the directory holds an index built
    /// with another tokenizer or schema, and with `Unavailable` when another
    /// writer holds the index.
    fn open(config: TantivyConfig) -> Result<TantivySearch> {
        let c = &config;
        let analyzer = Analyzer::new(c.tokenizer).expect("validated: this build has the tokenizer");
        let schema = Fields::schema(analyzer.name());

        let index = if c.in_memory {
            Index::create_in_ram(schema)
        } else {
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
            .memory_budget_per_thread(c.memory_per_thread())
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
                path: (!c.in_memory).then(|| c.path.clone()),
            }),
        })
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

    /// Runs `f` on the index on a blocking thread.
    pub(crate) async fn blocking<T: Send + 'static>(
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
    pub(crate) fn with_writer<T>(
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
}

fn open_dir(path: &Path, schema: tantivy::schema::Schema, want: TokenizerKind) -> Result<Index> {
    std::fs::create_dir_all(path).map_err(|e| cannot_create_dir(path, e))?;
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
