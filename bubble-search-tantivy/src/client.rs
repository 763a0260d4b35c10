//! [`TantivySearch`]: the index, its one writer and its reader, which every
//! call of the port uses, opened (or created) by
//! [`TantivyConfig::connect`](bubble_core::AdapterConfig::connect).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use async_trait::async_trait;
use bubble_core::ports::SearchDoc;
use bubble_core::{AdapterConfig, AppId, Error, InvalidConfig, MsgId, Result};
use parking_lot::Mutex;
use tantivy::directory::MmapDirectory;
use tantivy::indexer::IndexWriterOptions;
use tantivy::schema::FieldType;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument};

use crate::analyzer::Analyzer;
use crate::config::{MIN_WRITER_MEMORY_BYTES_PER_THREAD, TantivyConfig, TokenizerKind};
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
/// One document per `(app, message)` with its owners as a multi-valued
/// field; every query is filtered by app and owner, so nobody finds a
/// message they do not own. Indexing the same message again merges its
/// owners and replaces the rest, so a replayed outbox batch never
/// duplicates. [`SearchIndex::flush`] commits (durable on disk) and
/// reloads the reader (visible to searches) before it returns.
///
/// An index directory in an older format (its schema differs) is moved
/// aside on open and a new, empty one made in its place, marked as needing
/// a rebuild: searches fail with `Unavailable` until a rebuild from the
/// store ([`SearchIndex::rebuilt`]) clears the mark.
///
/// Cheap to clone: clones share one index and one writer.
///
/// [`SearchIndex::flush`]: bubble_core::ports::SearchIndex::flush
/// [`SearchIndex::rebuilt`]: bubble_core::ports::SearchIndex::rebuilt
#[derive(Clone)]
pub struct TantivySearch {
    inner: Arc<Inner>,
}

/// The index and its one writer and reader, shared by clones.
pub(crate) struct Inner {
    pub(crate) index: Index,
    pub(crate) reader: IndexReader,
    // The one writer and what it wrote since its last commit. `None` after
    // a failed commit until a new one opens: the failed writer's uncommitted
    // work is dropped (with its `Pending`), which is safe because the engine
    // keeps outbox rows until a flush succeeds and replays them.
    pub(crate) writer: Mutex<(Option<IndexWriter<TantivyDocument>>, Pending)>,
    /// No committed document has a later `server_time` than this (an upper
    /// bound: the fast field's column maximum over the reader's segments,
    /// `i64::MIN` when there are none). A message's time never changes, so
    /// a document dated after it cannot be in a committed segment: indexing
    /// it skips the lookup in every segment, which is nearly every message.
    pub(crate) newest_committed: AtomicI64,
    /// Whether the index must be rebuilt before it answers searches.
    pub(crate) rebuild: Rebuild,
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

        let (index, rebuild) = if c.in_memory {
            (Index::create_in_ram(schema), Rebuild::never())
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
        let newest_committed = AtomicI64::new(newest_time(&reader.searcher())?);
        Ok(TantivySearch {
            inner: Arc::new(Inner {
                index,
                reader,
                writer: Mutex::new((Some(writer), Pending::default())),
                newest_committed,
                rebuild,
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

    /// Whether the index was marked for a rebuild from the store (an
    /// older format was moved aside): searches answer `Unavailable` until
    /// a rebuild of every app finishes.
    pub fn needs_rebuild(&self) -> bool {
        self.inner.rebuild.is_pending()
    }

    /// The inner state, for the port's impl.
    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Documents searchable now (after the last flush): one per message.
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

/// The latest `server_time` the segments of `searcher` may hold (an upper
/// bound; `i64::MIN` for an empty index).
pub(crate) fn newest_time(searcher: &tantivy::Searcher) -> Result<i64> {
    let mut newest = i64::MIN;
    for segment in searcher.segment_readers() {
        let column = segment
            .fast_fields()
            .i64(names::SERVER_TIME)
            .map_err(|e| map_err("reading the server_time column", e))?;
        if segment.max_doc() > 0 {
            newest = newest.max(column.max_value());
        }
    }
    Ok(newest)
}

/// What the writer did since its last commit, which the reader cannot see
/// yet: a write that merges owners or drops one reads the message from
/// here first, so writes apply in call order, flushed or not.
#[derive(Default)]
pub(crate) struct Pending {
    /// The message's document as last written (`None`: removed).
    pub docs: HashMap<(AppId, MsgId), Option<SearchDoc>>,
    /// Apps whose every committed document was deleted.
    pub cleared: HashSet<AppId>,
}

/// The mark of an index that must be rebuilt from the store: a file next
/// to the index directory (`<path>.rebuild-pending`), written before the
/// old directory is moved away, so a crash at any point of an upgrade
/// leaves it and the next start still knows.
pub(crate) struct Rebuild {
    /// The marker file (`None` in memory: never needed).
    marker: Option<PathBuf>,
    pending: AtomicBool,
}

impl Rebuild {
    fn never() -> Rebuild {
        Rebuild {
            marker: None,
            pending: AtomicBool::new(false),
        }
    }

    fn marker_of(path: &Path) -> PathBuf {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".rebuild-pending");
        path.with_file_name(name)
    }

    /// The mark of the index at `path`, pending if its file exists.
    fn at(path: &Path) -> Rebuild {
        let marker = Rebuild::marker_of(path);
        let pending = marker.exists();
        Rebuild {
            marker: Some(marker),
            pending: AtomicBool::new(pending),
        }
    }

    /// Writes the marker file (synced): from here on the index counts as
    /// missing messages until [`Rebuild::done`].
    fn mark(path: &Path, why: &str) -> Result<()> {
        let marker = Rebuild::marker_of(path);
        let write = || -> std::io::Result<()> {
            let f = std::fs::File::create(&marker)?;
            std::io::Write::write_all(&mut &f, why.as_bytes())?;
            f.sync_all()?;
            if let Some(dir) = marker.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| {
            Error::unavailable(format!(
                "search index: cannot write {} to mark the index for a rebuild; check \
                 permissions",
                marker.display()
            ))
            .with_source(e)
        })
    }

    pub(crate) fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Why searches are refused, for the error.
    pub(crate) fn why(&self) -> String {
        let marker = self.marker.as_deref().unwrap_or(Path::new("?"));
        format!(
            "the index must be rebuilt from the store before it can answer (marked by {}); \
             run `bubble-server reindex`, or start the server, which rebuilds it",
            marker.display()
        )
    }

    /// Clears the mark: the rebuild indexed every app.
    pub(crate) fn done(&self) -> Result<()> {
        if let Some(marker) = &self.marker {
            match std::fs::remove_file(marker) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::unavailable(format!(
                        "search index: cannot remove {} after the rebuild; remove it by hand",
                        marker.display()
                    ))
                    .with_source(e));
                }
            }
        }
        self.pending.store(false, Ordering::Release);
        Ok(())
    }
}

impl Inner {
    /// Runs `f` with the writer and its pending writes, opening a new
    /// writer if a failure dropped it.
    pub(crate) fn with_writer<T>(
        &self,
        f: impl FnOnce(&mut IndexWriter<TantivyDocument>, &mut Pending) -> Result<T>,
    ) -> Result<T> {
        let mut guard = self.writer.lock();
        let (slot, pending) = &mut *guard;
        if slot.is_none() {
            *slot = Some(
                self.index
                    .writer_with_options(self.options.clone())
                    .map_err(|e| map_err("reopening the writer", e))?,
            );
        }
        let writer = slot.as_mut().expect("just set");
        let result = f(writer, pending);
        if result.is_err() {
            // A writer that failed may be half broken: start over. What it
            // held uncommitted is replayed from the engine's outbox.
            *slot = None;
            *pending = Pending::default();
        }
        result
    }
}

/// Opens the index at `path`, creating it if there is none. An index in an
/// older format (its schema is not `schema`) is moved aside to
/// `<path>.old-<unix seconds>` and replaced by an empty one marked for a
/// rebuild; the old directory is kept for the operator to delete.
fn open_dir(
    path: &Path,
    schema: tantivy::schema::Schema,
    want: TokenizerKind,
) -> Result<(Index, Rebuild)> {
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
        if existing.schema() != schema {
            move_old_format_aside(path, existing)?;
            let dir = MmapDirectory::open(path)
                .map_err(|e| map_err(&format!("opening {}", path.display()), e.into()))?;
            let index = Index::create(dir, schema, Default::default())
                .map_err(|e| map_err(&format!("creating the index at {}", path.display()), e))?;
            return Ok((index, Rebuild::at(path)));
        }
    }
    let index = Index::open_or_create(dir, schema)
        .map_err(|e| map_err(&format!("opening the index at {}", path.display()), e))?;
    Ok((index, Rebuild::at(path)))
}

/// Marks the index for a rebuild, then moves the old-format directory at
/// `path` aside and makes `path` an empty directory again. Refuses while
/// another process writes the old index (a server still running on it).
fn move_old_format_aside(path: &Path, existing: Index) -> Result<()> {
    // Taking the writer's lock proves no other process writes the index we
    // are about to move; it is released before the move.
    let probe = existing
        .writer_with_num_threads::<TantivyDocument>(1, MIN_WRITER_MEMORY_BYTES_PER_THREAD)
        .map_err(|e| map_err("locking the old-format index to upgrade it", e))?;
    drop(probe);
    drop(existing);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".old-{secs}"));
    let aside = path.with_file_name(name);
    Rebuild::mark(
        path,
        &format!(
            "the index at {} was in an older format (one document per owner); it was moved to {} \
             and must be rebuilt from the store\n",
            path.display(),
            aside.display()
        ),
    )?;
    let io = |what: String| {
        move |e: std::io::Error| Error::unavailable(format!("search index: {what}")).with_source(e)
    };
    std::fs::rename(path, &aside).map_err(io(format!(
        "cannot move the old-format index {} aside to {}; check permissions",
        path.display(),
        aside.display()
    )))?;
    std::fs::create_dir_all(path).map_err(|e| cannot_create_dir(path, e))?;
    tracing::warn!(
        old = %aside.display(),
        path = %path.display(),
        "search index: the index was in an older format; moved it aside and made a new one, \
         which must be rebuilt from the store (searches answer Unavailable until then)"
    );
    Ok(())
}
