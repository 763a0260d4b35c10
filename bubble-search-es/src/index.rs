//! The adapter: [`EsSearch`] (the `SearchIndex` port) and its builder.

use std::time::Duration;

use async_trait::async_trait;
use bubble_core::ports::{SearchDoc, SearchIndex, SearchQuery, SearchResults};
use bubble_core::{AppId, Error, MsgId, Result, UserId, validate_id};
use elasticsearch::auth::Credentials;
use elasticsearch::http::Url;
use elasticsearch::http::request::JsonBody;
use elasticsearch::http::response::Response;
use elasticsearch::http::transport::{
    MultiNodeConnectionPool, SingleNodeConnectionPool, TransportBuilder,
};
use elasticsearch::indices::{
    IndicesCreateParts, IndicesDeleteIndexTemplateParts, IndicesDeleteParts, IndicesExistsParts,
    IndicesPutIndexTemplateParts, IndicesRefreshParts,
};
use elasticsearch::{BulkParts, DeleteParts, Elasticsearch, SearchParts};
use serde_json::Value;

use crate::body::{self, MAX_RESULT_WINDOW};
use crate::config::EsConfig;
use crate::error::{map_err, status_error};
use crate::response::{check_bulk, error_type, parse_search};

/// Documents per bulk request: big enough to amortize the round trip,
/// small enough to stay far below `http.max_content_length` (100 MB).
const BULK_CHUNK: usize = 500;

/// Builds an [`EsSearch`]: set what differs from [`EsConfig::default`],
/// then [`connect`](EsSearchBuilder::connect).
#[derive(Debug, Clone, Default)]
pub struct EsSearchBuilder {
    config: EsConfig,
}

impl EsSearchBuilder {
    /// Starts from a whole config (as read from a config file).
    pub fn from_config(config: EsConfig) -> EsSearchBuilder {
        EsSearchBuilder { config }
    }

    /// Node URLs.
    pub fn urls<S: Into<String>>(mut self, urls: impl IntoIterator<Item = S>) -> Self {
        self.config.urls = urls.into_iter().map(Into::into).collect();
        self
    }

    /// The index (or alias) name.
    pub fn index(mut self, index: impl Into<String>) -> Self {
        self.config.index = index.into();
        self
    }

    /// Basic auth.
    pub fn basic_auth(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.config.username = Some(username.into());
        self.config.password = Some(password.into());
        self
    }

    /// An encoded API key.
    pub fn api_key(mut self, encoded: impl Into<String>) -> Self {
        self.config.api_key = Some(encoded.into());
        self
    }

    /// One request's deadline.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout_ms = timeout.as_millis().try_into().unwrap_or(u64::MAX);
        self
    }

    /// Whether `connect` installs the template and creates the index.
    pub fn manage_index(mut self, manage: bool) -> Self {
        self.config.manage_index = manage;
        self
    }

    /// Shards and replicas of a created index.
    pub fn shards(mut self, shards: u32, replicas: u32) -> Self {
        self.config.shards = shards;
        self.config.replicas = replicas;
        self
    }

    /// Validates the config and reaches the cluster: with `manage_index`
    /// it installs the index template and creates the index if missing,
    /// otherwise it checks that the index exists. Either way a wrong
    /// address or a missing index fails here, not at the first message.
    pub async fn connect(self) -> Result<EsSearch> {
        let config = self.config;
        config.validate()?;
        let urls: Vec<Url> = config
            .urls
            .iter()
            .map(|u| Url::parse(u).expect("validated above"))
            .collect();
        let mut transport = if urls.len() == 1 {
            TransportBuilder::new(SingleNodeConnectionPool::new(urls[0].clone()))
        } else {
            TransportBuilder::new(MultiNodeConnectionPool::round_robin(urls, None))
        }
        .timeout(config.timeout())
        // The cluster lives on a private network; a system-wide HTTP proxy
        // setting is not meant for it.
        .disable_proxy();
        if let (Some(u), Some(p)) = (&config.username, &config.password) {
            transport = transport.auth(Credentials::Basic(u.clone(), p.clone()));
        } else if let Some(key) = &config.api_key {
            transport = transport.auth(Credentials::EncodedApiKey(key.clone()));
        }
        let transport = transport.build().map_err(|e| {
            Error::invalid(format!("elasticsearch: cannot build the HTTP client: {e}"))
                .with_source(e)
        })?;
        let es = EsSearch {
            client: Elasticsearch::new(transport),
            config,
        };
        if es.config.manage_index {
            es.install_index().await?;
        } else if !es.index_exists().await? {
            return Err(Error::not_found(format!(
                "elasticsearch: index {:?} does not exist; create it (see docs/storage.md) \
                 or set manage_index = true",
                es.config.index
            )));
        }
        Ok(es)
    }
}

/// Message search on Elasticsearch.
///
/// One document per owner's copy of a message, id `app|owner|msgid`,
/// routed by `app|owner` so each owner's history sits on one shard.
/// See the crate docs for the mapping and the query.
#[derive(Clone)]
pub struct EsSearch {
    client: Elasticsearch,
    config: EsConfig,
}

impl std::fmt::Debug for EsSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsSearch")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// An answer's status and body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Answer {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// `Ok(self)` on 2xx, otherwise the mapped error.
    fn success(self, op: &str) -> Result<Answer> {
        if self.ok() {
            Ok(self)
        } else {
            Err(status_error(op, self.status, &self.body))
        }
    }
}

async fn read(
    op: &str,
    sent: std::result::Result<Response, elasticsearch::Error>,
) -> Result<Answer> {
    let resp = sent.map_err(|e| map_err(op, e))?;
    let status = resp.status_code().as_u16();
    let body = resp.bytes().await.map_err(|e| map_err(op, e))?.to_vec();
    Ok(Answer { status, body })
}

impl EsSearch {
    /// A builder starting from [`EsConfig::default`].
    pub fn builder() -> EsSearchBuilder {
        EsSearchBuilder::default()
    }

    /// Connects with a whole config.
    pub async fn connect(config: EsConfig) -> Result<EsSearch> {
        EsSearchBuilder::from_config(config).connect().await
    }

    /// The config in use.
    pub fn config(&self) -> &EsConfig {
        &self.config
    }

    /// Deletes the index and its template: every indexed message is gone.
    /// For tests and teardown; missing ones are not an error.
    pub async fn delete_index(&self) -> Result<()> {
        let index = self.config.index.as_str();
        let a = read(
            "delete index",
            self.client
                .indices()
                .delete(IndicesDeleteParts::Index(&[index]))
                .send()
                .await,
        )
        .await?;
        if a.status != 404 {
            a.success("delete index")?;
        }
        let a = read(
            "delete index template",
            self.client
                .indices()
                .delete_index_template(IndicesDeleteIndexTemplateParts::Name(index))
                .send()
                .await,
        )
        .await?;
        if a.status != 404 {
            a.success("delete index template")?;
        }
        Ok(())
    }

    async fn index_exists(&self) -> Result<bool> {
        let a = read(
            "check index",
            self.client
                .indices()
                .exists(IndicesExistsParts::Index(&[self.config.index.as_str()]))
                .send()
                .await,
        )
        .await?;
        match a.status {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(status_error("check index", a.status, &a.body)),
        }
    }

    /// Puts the template (always, so a changed mapping reaches indices
    /// created later) and creates the index if it is missing.
    async fn install_index(&self) -> Result<()> {
        let index = self.config.index.as_str();
        read(
            "put index template",
            self.client
                .indices()
                .put_index_template(IndicesPutIndexTemplateParts::Name(index))
                .body(body::index_template(&self.config))
                .send()
                .await,
        )
        .await?
        .success("put index template")?;
        if self.index_exists().await? {
            return Ok(());
        }
        let a = read(
            "create index",
            self.client
                .indices()
                .create(IndicesCreateParts::Index(index))
                .send()
                .await,
        )
        .await?;
        // Another node may have created it between our check and our create.
        if a.ok() || error_type(&a.json()) == Some("resource_already_exists_exception") {
            Ok(())
        } else {
            Err(status_error("create index", a.status, &a.body))
        }
    }

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

#[async_trait]
impl SearchIndex for EsSearch {
    async fn index(&self, docs: &[SearchDoc]) -> Result<()> {
        for d in docs {
            // `|` separates the parts of the document id and the routing key.
            validate_id("app", d.app.as_str())?;
            validate_id("owner", d.owner.as_str())?;
        }
        for chunk in docs.chunks(BULK_CHUNK) {
            self.bulk(chunk).await?;
        }
        Ok(())
    }

    async fn remove(&self, app: &AppId, owner: &UserId, id: &MsgId) -> Result<()> {
        let doc_id = body::document_id(app, owner, id);
        let routing = body::routing(app, owner);
        let a = read(
            "remove document",
            self.client
                .delete(DeleteParts::IndexId(&self.config.index, &doc_id))
                .routing(&routing)
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
        let routing = body::routing(&q.app, &q.owner);
        let a = read(
            "search",
            self.client
                .search(SearchParts::Index(&[self.config.index.as_str()]))
                .routing(&[routing.as_str()])
                .body(body::search_body(q))
                .send()
                .await,
        )
        .await?
        .success("search")?;
        parse_search(&a.body)
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
