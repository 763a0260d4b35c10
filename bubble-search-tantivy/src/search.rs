//! [`SearchIndex`] on tantivy: indexing, removal and flushing through the
//! one writer, and the query: every clause filtered by app and owner, words
//! through the analyzer (never the query parser).

use std::ops::Bound;

use async_trait::async_trait;
use bubble_core::ports::{SearchDoc, SearchHit, SearchIndex, SearchQuery, SearchResults};
use bubble_core::{AppId, Error, MsgId, Result, UserId};
use tantivy::collector::sort_key::{SortBySimilarityScore, SortByStaticFastValue};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{TantivyDocument, Term};

use crate::client::{Inner, TantivySearch};
use crate::error::map_err;
use crate::schema::{conversation_value, names};

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

impl Inner {
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
