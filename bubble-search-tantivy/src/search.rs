//! [`SearchIndex`] on tantivy: indexing, removal and flushing through the
//! one writer, and the query: every clause filtered by app and owner, words
//! through the analyzer (never the query parser).

use std::ops::Bound;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use bubble_core::ports::{SearchDoc, SearchHit, SearchIndex, SearchQuery, SearchResults};
use bubble_core::{AppId, Error, MsgId, Result, UserId};
use tantivy::collector::sort_key::{SortBySimilarityScore, SortByStaticFastValue};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocSet, IndexWriter, TERMINATED, TantivyDocument, Term};

use crate::client::{Inner, Pending, TantivySearch, newest_time};
use crate::error::map_err;
use crate::schema::{conversation_filter, names};

/// Most hits one query may page through (`offset + limit`): deeper pages
/// cost memory for every skipped hit; narrow the query instead.
pub const MAX_RESULT_WINDOW: usize = 10_000;

/// Most hits one page may hold.
pub const MAX_PAGE: usize = 1_000;

/// Longest query text, in characters: every character of a Chinese query
/// is a term of a phrase, so unbounded input would be unbounded work.
pub const MAX_QUERY_CHARS: usize = 256;

#[async_trait]
impl SearchIndex for TantivySearch {
    async fn index(&self, docs: &[SearchDoc]) -> Result<()> {
        if docs.is_empty() {
            return Ok(());
        }
        let docs = docs.to_vec();
        self.blocking("indexing", move |i| i.index(&docs)).await
    }

    async fn remove(&self, app: &AppId, id: &MsgId) -> Result<()> {
        let (app, id) = (app.clone(), *id);
        self.blocking("removing", move |i| i.remove(&app, &id))
            .await
    }

    async fn remove_owners(&self, app: &AppId, id: &MsgId, owners: &[UserId]) -> Result<()> {
        let (app, id, owners) = (app.clone(), *id, owners.to_vec());
        self.blocking("removing owners", move |i| {
            i.remove_owners(&app, &id, &owners)
        })
        .await
    }

    async fn clear_app(&self, app: &AppId) -> Result<()> {
        let app = app.clone();
        self.blocking("clearing an app", move |i| i.clear_app(&app))
            .await
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResults> {
        if self.inner().rebuild.is_pending() {
            return Err(Error::unavailable(format!(
                "search index: {}",
                self.inner().rebuild.why()
            )));
        }
        let query = query.clone();
        self.blocking("searching", move |i| i.search(&query)).await
    }

    async fn flush(&self) -> Result<()> {
        self.blocking("flushing", Inner::flush).await
    }

    async fn needs_rebuild(&self) -> Result<bool> {
        Ok(self.inner().rebuild.is_pending())
    }

    async fn rebuilt(&self) -> Result<()> {
        self.blocking("recording the rebuild", |i| i.rebuild.done())
            .await
    }
}

impl Inner {
    /// The message as the index holds it now: what this writer did since
    /// the last commit first, then the last commit. `time`: the message's
    /// `server_time` when the caller knows it; a message dated after every
    /// committed document is not looked for in the segments.
    fn current(
        &self,
        pending: &Pending,
        app: &AppId,
        id: &MsgId,
        time: Option<i64>,
    ) -> Result<Option<SearchDoc>> {
        if let Some(doc) = pending.docs.get(&(app.clone(), *id)) {
            return Ok(doc.clone());
        }
        if pending.cleared.contains(app) {
            return Ok(None);
        }
        if time.is_some_and(|t| t > self.newest_committed.load(Ordering::Relaxed)) {
            return Ok(None);
        }
        let term = self.fields.key_term(app.as_str(), id);
        let searcher = self.reader.searcher();
        for (ord, segment) in searcher.segment_readers().iter().enumerate() {
            let postings = segment
                .inverted_index(self.fields.key)
                .map_err(|e| map_err("reading the key index", e))?
                .read_postings(&term, IndexRecordOption::Basic)
                .map_err(|e| map_err("reading the key index", e.into()))?;
            let Some(mut postings) = postings else {
                continue;
            };
            let mut doc = postings.doc();
            while doc != TERMINATED {
                if !segment.is_deleted(doc) {
                    let stored: TantivyDocument = searcher
                        .doc(DocAddress::new(ord as u32, doc))
                        .map_err(|e| map_err("reading a stored document", e))?;
                    return self.fields.search_doc(&stored).map(Some);
                }
                doc = postings.advance();
            }
        }
        Ok(None)
    }

    /// Replaces the message's document with `doc` (or removes it). `fresh`:
    /// the index holds no document of the message (`current` found none),
    /// so there is nothing to delete first.
    fn write(
        &self,
        w: &mut IndexWriter<TantivyDocument>,
        pending: &mut Pending,
        app: &AppId,
        id: &MsgId,
        doc: Option<SearchDoc>,
        fresh: bool,
    ) -> Result<()> {
        // Delete-then-add in one writer: later operations win, so the
        // last version written is the one kept. A delete costs a lookup in
        // every segment when the commit applies it: a new message (nearly
        // every one) skips it.
        if !fresh {
            w.delete_term(self.fields.key_term(app.as_str(), id));
        }
        if let Some(doc) = &doc {
            w.add_document(self.fields.document(doc))
                .map_err(|e| map_err("adding a document", e))?;
        }
        pending.docs.insert((app.clone(), *id), doc);
        Ok(())
    }

    fn index(&self, docs: &[SearchDoc]) -> Result<()> {
        self.with_writer(|w, pending| {
            for doc in docs {
                let mut doc = doc.clone();
                let old =
                    self.current(pending, &doc.app, &doc.server_msg_id, Some(doc.server_time))?;
                // Removed since the last commit (`Some(None)` in pending):
                // its delete is already queued, before this add.
                let fresh = old.is_none();
                if let Some(old) = old {
                    for owner in old.owners {
                        if !doc.owners.contains(&owner) {
                            doc.owners.push(owner);
                        }
                    }
                }
                doc.owners.sort();
                doc.owners.dedup();
                let (app, id) = (doc.app.clone(), doc.server_msg_id);
                self.write(w, pending, &app, &id, Some(doc), fresh)?;
            }
            Ok(())
        })
    }

    fn remove(&self, app: &AppId, id: &MsgId) -> Result<()> {
        self.with_writer(|w, pending| self.write(w, pending, app, id, None, false))
    }

    fn remove_owners(&self, app: &AppId, id: &MsgId, owners: &[UserId]) -> Result<()> {
        self.with_writer(|w, pending| {
            let Some(mut doc) = self.current(pending, app, id, None)? else {
                return Ok(());
            };
            let before = doc.owners.len();
            doc.owners.retain(|o| !owners.contains(o));
            if doc.owners.len() == before {
                return Ok(());
            }
            // tantivy cannot change one field in place: the stored fields
            // rebuild the document with the owners that remain.
            let doc = (!doc.owners.is_empty()).then_some(doc);
            self.write(w, pending, app, id, doc, false)
        })
    }

    fn clear_app(&self, app: &AppId) -> Result<()> {
        self.with_writer(|w, pending| {
            w.delete_term(Term::from_field_text(self.fields.app, app.as_str()));
            pending.docs.retain(|(a, _), _| a != app);
            pending.cleared.insert(app.clone());
            Ok(())
        })
    }

    fn flush(&self) -> Result<()> {
        // Commit, reload and forget the pending writes under the writer's
        // lock: no write may look a message up between the commit and the
        // reload, when neither the reader nor `pending` holds it.
        self.with_writer(|w, pending| {
            w.commit().map_err(|e| map_err("committing", e))?;
            self.reader
                .reload()
                .map_err(|e| map_err("reloading the reader", e))?;
            let newest = newest_time(&self.reader.searcher())?;
            self.newest_committed.store(newest, Ordering::Relaxed);
            *pending = Pending::default();
            Ok(())
        })
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
            filter(raw(f.owners, q.owner.as_str())),
        ];
        if let Some(c) = &q.conversation {
            clauses.push(filter(raw(
                f.conversation_of,
                &conversation_filter(&q.owner, c),
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
            if doc.app != q.app || !doc.owners.contains(&q.owner) {
                return Err(Error::internal(
                    "search index returned another owner's document; refusing to show it",
                ));
            }
            hits.push(SearchHit {
                doc: doc.seen_by(&q.owner),
                score,
            });
        }
        Ok(SearchResults {
            hits,
            total: total as u64,
        })
    }
}
