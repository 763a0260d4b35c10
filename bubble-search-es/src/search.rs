//! [`SearchIndex`] on Elasticsearch: bulk indexing (scripted updates that
//! merge owners), removal of a message or of some owners, clearing an app,
//! the search request, refresh.

use async_trait::async_trait;
use bubble_core::ports::{SearchDoc, SearchIndex, SearchQuery, SearchResults};
use bubble_core::{AppId, Error, MsgId, Result, UserId, validate_id};
use elasticsearch::http::request::JsonBody;
use elasticsearch::indices::IndicesRefreshParts;
use elasticsearch::params::Conflicts;
use elasticsearch::{BulkParts, DeleteByQueryParts, DeleteParts, SearchParts, UpdateParts};
use serde_json::Value;

use crate::body::{self, MAX_RESULT_WINDOW};
use crate::client::{EsSearch, read};
use crate::error::error_type;
use crate::response::{check_bulk, parse_search};

/// Documents per bulk request: big enough to amortize the round trip,
/// small enough to stay far below `http.max_content_length` (100 MB).
const BULK_CHUNK: usize = 500;

#[async_trait]
impl SearchIndex for EsSearch {
    async fn index(&self, docs: &[SearchDoc]) -> Result<()> {
        for d in docs {
            // `|` separates the parts of the document id.
            validate_id("app", d.app.as_str())?;
        }
        for chunk in docs.chunks(BULK_CHUNK) {
            self.bulk(chunk).await?;
        }
        Ok(())
    }

    async fn remove(&self, app: &AppId, id: &MsgId) -> Result<()> {
        let doc_id = body::document_id(app, id);
        let a = read(
            "remove document",
            self.client
                .delete(DeleteParts::IndexId(&self.config.index, &doc_id))
                .send()
                .await,
        )
        .await?;
        // 404 with `"result": "not_found"`: nothing to remove, which is
        // what was asked. A missing index is a real error.
        if a.status == 404 && error_type(&a.json()).is_none() {
            return Ok(());
        }
        a.success("remove document").map(|_| ())
    }

    async fn remove_owners(&self, app: &AppId, id: &MsgId, owners: &[UserId]) -> Result<()> {
        if owners.is_empty() {
            return Ok(());
        }
        let doc_id = body::document_id(app, id);
        let a = read(
            "remove owners",
            self.client
                .update(UpdateParts::IndexId(&self.config.index, &doc_id))
                .retry_on_conflict(3)
                .body(body::remove_owners_body(owners))
                .send()
                .await,
        )
        .await?;
        // The message is not indexed (never was, or recalled): nobody
        // finds it, which is what was asked.
        if a.status == 404 && error_type(&a.json()) == Some("document_missing_exception") {
            return Ok(());
        }
        a.success("remove owners").map(|_| ())
    }

    async fn clear_app(&self, app: &AppId) -> Result<()> {
        validate_id("app", app.as_str())?;
        let index = [self.config.index.as_str()];
        read(
            "clear app",
            self.client
                .delete_by_query(DeleteByQueryParts::Index(&index))
                .conflicts(Conflicts::Proceed)
                .refresh(true)
                .body(body::clear_app_body(app))
                .send()
                .await,
        )
        .await?
        .success("clear app")?;
        Ok(())
    }

    async fn search(&self, q: &SearchQuery) -> Result<SearchResults> {
        if q.words.trim().is_empty() {
            return Ok(SearchResults::default());
        }
        if q.offset.saturating_add(q.limit) > MAX_RESULT_WINDOW {
            return Err(Error::invalid(format!(
                "search: offset + limit must be at most {MAX_RESULT_WINDOW} \
                 (index.max_result_window), got {} + {}",
                q.offset, q.limit
            )));
        }
        let a = read(
            "search",
            self.client
                .search(SearchParts::Index(&[self.config.index.as_str()]))
                .body(body::search_body(q))
                .send()
                .await,
        )
        .await?
        .success("search")?;
        parse_search(&a.body, &q.owner)
    }

    async fn flush(&self) -> Result<()> {
        read(
            "refresh",
            self.client
                .indices()
                .refresh(IndicesRefreshParts::Index(&[self.config.index.as_str()]))
                .send()
                .await,
        )
        .await?
        .success("refresh")?;
        Ok(())
    }
}

impl EsSearch {
    async fn bulk(&self, docs: &[SearchDoc]) -> Result<()> {
        let lines: Vec<JsonBody<Value>> = body::bulk_lines(docs)
            .into_iter()
            .map(JsonBody::new)
            .collect();
        let a = read(
            "bulk index",
            self.client
                .bulk(BulkParts::Index(&self.config.index))
                .body(lines)
                .send()
                .await,
        )
        .await?
        .success("bulk index")?;
        check_bulk(&a.body)
    }
}
