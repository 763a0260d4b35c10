//! [`EsConfig`]: what the adapter needs to reach Elasticsearch and shape
//! its index (serde, for the server's config file), its defaults, and the
//! rule of every field.

use bubble_core::redact_url;
use std::fmt;
use std::time::Duration;

use bubble_core::InvalidConfig;
use serde::{Deserialize, Serialize};

/// Settings of [`crate::EsSearch`].
///
/// Build one with [`EsConfig::new`] and the `with_*` setters, or from serde.
/// [`AdapterConfig::validate`] names the first bad field;
/// [`AdapterConfig::connect`] validates and reaches the cluster. `Debug`
/// hides the password and the API key.
///
/// [`AdapterConfig::validate`]: bubble_core::AdapterConfig::validate
/// [`AdapterConfig::connect`]: bubble_core::AdapterConfig::connect
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct EsConfig {
    /// Node URLs (`http://host:9200` or `https://...`); requests round-robin
    /// over them.
    pub urls: Vec<String>,
    /// The index (or an alias of it) holding message history.
    pub index: String,
    /// Basic-auth user (with `password`).
    pub username: Option<String>,
    /// Basic-auth password.
    pub password: Option<String>,
    /// An encoded API key (base64 of `id:key`), instead of a user.
    pub api_key: Option<String>,
    /// One request's deadline (ms); past it the call fails with `Timeout`.
    pub timeout_ms: u64,
    /// On connect, install the index template and create the index if it
    /// is missing. Turn off where operators manage indices themselves.
    pub manage_index: bool,
    /// Primary shards of a created index. Documents (one per message, with
    /// all its owners) are spread by id, so a search asks every shard.
    pub shards: u32,
    /// Replicas of each shard.
    pub replicas: u32,
}

impl Default for EsConfig {
    fn default() -> Self {
        EsConfig {
            urls: vec!["http://127.0.0.1:9200".to_owned()],
            index: "bubble-messages".to_owned(),
            username: None,
            password: None,
            api_key: None,
            timeout_ms: 10_000,
            manage_index: true,
            shards: 1,
            replicas: 1,
        }
    }
}

impl fmt::Debug for EsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |s: &Option<String>| s.as_ref().map(|_| "<hidden>");
        f.debug_struct("EsConfig")
            .field(
                "urls",
                &self.urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>(),
            )
            .field("index", &self.index)
            .field("username", &self.username)
            .field("password", &hidden(&self.password))
            .field("api_key", &hidden(&self.api_key))
            .field("timeout_ms", &self.timeout_ms)
            .field("manage_index", &self.manage_index)
            .field("shards", &self.shards)
            .field("replicas", &self.replicas)
            .finish()
    }
}

impl EsConfig {
    /// The defaults with these node URLs (`http://host:9200`).
    pub fn new<S: Into<String>>(urls: impl IntoIterator<Item = S>) -> EsConfig {
        EsConfig::default().with_urls(urls)
    }

    /// Sets [`urls`](EsConfig::urls).
    pub fn with_urls<S: Into<String>>(mut self, urls: impl IntoIterator<Item = S>) -> Self {
        self.urls = urls.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`index`](EsConfig::index).
    pub fn with_index(mut self, index: impl Into<String>) -> Self {
        self.index = index.into();
        self
    }

    /// Sets [`username`](EsConfig::username).
    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Sets [`password`](EsConfig::password).
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Sets [`api_key`](EsConfig::api_key).
    pub fn with_api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = Some(api_key.into());
        self
    }

    /// Sets [`timeout_ms`](EsConfig::timeout_ms).
    pub fn with_timeout_ms(mut self, timeout_ms: u64) -> Self {
        self.timeout_ms = timeout_ms;
        self
    }

    /// Sets [`manage_index`](EsConfig::manage_index).
    pub fn with_manage_index(mut self, manage_index: bool) -> Self {
        self.manage_index = manage_index;
        self
    }

    /// Sets [`shards`](EsConfig::shards).
    pub fn with_shards(mut self, shards: u32) -> Self {
        self.shards = shards;
        self
    }

    /// Sets [`replicas`](EsConfig::replicas).
    pub fn with_replicas(mut self, replicas: u32) -> Self {
        self.replicas = replicas;
        self
    }

    /// Every field's rule, naming the first bad field: what
    /// [`AdapterConfig::validate`](bubble_core::AdapterConfig::validate)
    /// runs (its impl sits in `client`, beside `connect`).
    pub(crate) fn check(&self) -> Result<(), InvalidConfig> {
        fn bad(field: &str, why: impl fmt::Display) -> InvalidConfig {
            InvalidConfig::new(field, why.to_string())
        }
        if self.urls.is_empty() {
            return Err(bad(
                "urls",
                "is empty; give at least one node URL such as http://127.0.0.1:9200",
            ));
        }
        for u in &self.urls {
            let parsed = elasticsearch::http::Url::parse(u).map_err(|e| {
                bad(
                    "urls",
                    format!("has {:?}, which is not a URL: {e}", redact_url(u)),
                )
            })?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(bad(
                    "urls",
                    format!(
                        "has {:?}; each must look like http://host:9200",
                        redact_url(u)
                    ),
                ));
            }
        }
        validate_index_name(&self.index).map_err(|why| bad("index", why))?;
        match (&self.username, &self.password) {
            (Some(u), Some(_)) if u.is_empty() => return Err(bad("username", "is empty")),
            (Some(_), None) => return Err(bad("password", "is missing while `username` is set")),
            (None, Some(_)) => return Err(bad("username", "is missing while `password` is set")),
            _ => {}
        }
        if self.api_key.is_some() && self.username.is_some() {
            return Err(bad(
                "api_key",
                "and `username` are both set; use one way to authenticate",
            ));
        }
        if self.api_key.as_deref() == Some("") {
            return Err(bad("api_key", "is empty"));
        }
        if self.timeout_ms == 0 {
            return Err(bad("timeout_ms", "must be above 0"));
        }
        if self.shards == 0 {
            return Err(bad("shards", "must be at least 1"));
        }
        Ok(())
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// Elasticsearch's rules for index names, checked before any request so the
/// error names the config field rather than a 400 from the cluster.
fn validate_index_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err(format!("must be 1 to 255 bytes, got {}", name.len()));
    }
    if name == "." || name == ".." {
        return Err(format!("cannot be {name:?}"));
    }
    if name.starts_with(['-', '_', '+']) {
        return Err(format!("{name:?} cannot start with '-', '_' or '+'"));
    }
    if let Some(c) = name.chars().find(|c| {
        c.is_uppercase()
            || c.is_whitespace()
            || c.is_control()
            || matches!(
                c,
                '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ',' | '#' | ':'
            )
    }) {
        return Err(format!(
            "{name:?} contains {c:?}; index names are lowercase without spaces or \\ / * ? \" < > | , # :"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut EsConfig)) -> Result<(), InvalidConfig> {
        let mut c = EsConfig::default();
        f(&mut c);
        c.check()
    }

    fn field_named(r: Result<(), InvalidConfig>, field: &str) {
        let e = r.expect_err("the config is rejected");
        assert_eq!(e.field, field, "{e}");
        let e = bubble_core::Error::from(e);
        assert_eq!(e.kind(), bubble_core::ErrorKind::InvalidInput);
        assert!(
            e.message().contains(&format!("`{field}`")),
            "the error names `{field}`: {e}"
        );
    }

    #[test]
    fn the_default_config_is_valid() {
        EsConfig::default().check().unwrap();
    }

    #[test]
    fn urls_must_be_present_and_http() {
        field_named(with(|c| c.urls.clear()), "urls");
        field_named(with(|c| c.urls = vec!["localhost:9200".into()]), "urls");
        field_named(with(|c| c.urls = vec!["ftp://es:9200".into()]), "urls");
        with(|c| c.urls = vec!["https://es.internal:9200".into()]).unwrap();
    }

    #[test]
    fn index_names_follow_elasticsearch_rules() {
        field_named(with(|c| c.index = "Messages".into()), "index");
        field_named(with(|c| c.index = "_hidden".into()), "index");
        field_named(with(|c| c.index = "a b".into()), "index");
        field_named(with(|c| c.index = "a/b".into()), "index");
        field_named(with(|c| c.index = String::new()), "index");
        with(|c| c.index = "bubble-messages-2026".into()).unwrap();
    }

    #[test]
    fn credentials_come_as_user_and_password_or_as_an_api_key() {
        field_named(with(|c| c.username = Some("u".into())), "password");
        field_named(with(|c| c.password = Some("p".into())), "username");
        field_named(
            with(|c| {
                c.username = Some("u".into());
                c.password = Some("p".into());
                c.api_key = Some("k".into());
            }),
            "api_key",
        );
    }

    #[test]
    fn an_empty_username_or_api_key_is_rejected() {
        field_named(
            with(|c| {
                c.username = Some(String::new());
                c.password = Some("p".into());
            }),
            "username",
        );
        field_named(with(|c| c.api_key = Some(String::new())), "api_key");
    }

    #[test]
    fn zero_timeout_and_zero_shards_are_rejected() {
        field_named(with(|c| c.timeout_ms = 0), "timeout_ms");
        field_named(with(|c| c.shards = 0), "shards");
    }

    #[test]
    fn debug_hides_the_password_and_the_api_key() {
        let c = EsConfig::default()
            .with_username("elastic")
            .with_password("hunter2")
            .with_api_key("c2VjcmV0");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("c2VjcmV0"),
            "{shown}"
        );
        assert!(shown.contains("elastic"));
    }

    #[test]
    fn debug_and_errors_hide_credentials_inside_urls() {
        let c = EsConfig::new(["https://elastic:hunter2@es.internal:9200"]);
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("https://elastic:<hidden>@es.internal:9200"),
            "{shown}"
        );
        let e = EsConfig::new(["ftp://u:hunter2@es:9200"])
            .check()
            .unwrap_err();
        assert_eq!(e.field, "urls");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert_eq!(
            redact_url("http://es:9200/x?a=b@c"),
            "http://es:9200/x?a=b@c"
        );
        assert_eq!(
            redact_url("http://elastic@es:9200"),
            "http://elastic@es:9200",
            "a user name alone is no secret"
        );
    }

    #[test]
    fn config_reads_from_json_with_defaults_for_missing_fields() {
        let c: EsConfig =
            serde_json::from_str(r#"{"urls":["http://es:9200"],"index":"chat"}"#).unwrap();
        assert_eq!(c.index, "chat");
        assert!(c.manage_index);
        let typo: std::result::Result<EsConfig, _> = serde_json::from_str(r#"{"url":"x"}"#);
        assert!(typo.is_err(), "unknown keys are rejected");
    }
}
