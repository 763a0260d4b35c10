//! [`EsSearch`]: the HTTP client every request goes through, and what
//! connecting does (the index template and the index), by
//! [`EsConfig::connect`](bubble_core::AdapterConfig::connect).

use async_trait::async_trait;
use bubble_core::{AdapterConfig, Error, InvalidConfig, Result};
use elasticsearch::Elasticsearch;
use elasticsearch::auth::Credentials;
use elasticsearch::http::Url;
use elasticsearch::http::response::Response;
use elasticsearch::http::transport::{
    MultiNodeConnectionPool, SingleNodeConnectionPool, TransportBuilder,
};
use elasticsearch::indices::{
    IndicesCreateParts, IndicesDeleteIndexTemplateParts, IndicesDeleteParts, IndicesExistsParts,
    IndicesPutIndexTemplateParts,
};
use serde_json::Value;

use crate::body;
use crate::config::EsConfig;
use crate::error::{cannot_build_client, error_type, map_err, status_error};

#[async_trait]
impl AdapterConfig for EsConfig {
    type Adapter = EsSearch;

    fn validate(&self) -> std::result::Result<(), InvalidConfig> {
        self.check()
    }

    /// Validates the config and reaches the cluster (see [`EsSearch`]).
    async fn connect(&self) -> Result<EsSearch> {
        self.validate()?;
        EsSearch::open(self.clone()).await
    }
}

/// Message search on Elasticsearch.
///
/// One document per owner's copy of a message, id `app|owner|msgid`,
/// routed by `app|owner` so each owner's history sits on one shard.
/// See the crate docs for the mapping and the query.
#[derive(Clone)]
pub struct EsSearch {
    /// The HTTP client, round-robin over `config.urls`.
    pub(crate) client: Elasticsearch,
    /// The settings it runs with (the index name is read per request).
    pub(crate) config: EsConfig,
}

impl std::fmt::Debug for EsSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsSearch")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl EsSearch {
    /// Reaches the cluster with `config` (already validated): with
    /// `manage_index` it installs the index template and creates the index
    /// if missing, otherwise it checks that the index exists. Either way a
    /// wrong address or a missing index fails here, not at the first message.
    async fn open(config: EsConfig) -> Result<EsSearch> {
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
        let transport = transport.build().map_err(cannot_build_client)?;
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
}

/// An answer's status and body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// `Ok(self)` on 2xx, otherwise the mapped error.
    pub(crate) fn success(self, op: &str) -> Result<Answer> {
        if self.ok() {
            Ok(self)
        } else {
            Err(status_error(op, self.status, &self.body))
        }
    }
}

/// Reads a sent request's answer, mapping a request that got none.
pub(crate) async fn read(
    op: &str,
    sent: std::result::Result<Response, elasticsearch::Error>,
) -> Result<Answer> {
    let resp = sent.map_err(|e| map_err(op, e))?;
    let status = resp.status_code().as_u16();
    let body = resp.bytes().await.map_err(|e| map_err(op, e))?.to_vec();
    Ok(Answer { status, body })
}
