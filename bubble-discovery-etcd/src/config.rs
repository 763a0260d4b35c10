//! [`EtcdConfig`]: what the adapter needs to know to reach etcd (serde, so
//! it sits in the server's config file), its defaults, and the rule of
//! every field.

use bubble_core::redact_url;
use std::fmt;
use std::time::Duration;

use bubble_core::InvalidConfig;
use serde::{Deserialize, Serialize};

/// Settings of [`crate::EtcdDiscovery`].
///
/// Every field has a default that works against `scripts/services/etcd.sh`
/// (one member on loopback, no auth), so `EtcdConfig::default()` is a
/// working test setup. Build one with [`EtcdConfig::new`] and the `with_*`
/// setters, or from serde. [`AdapterConfig::validate`] names the first bad
/// field; [`AdapterConfig::connect`] validates, connects and checks that
/// etcd answers. `Debug` hides the password.
///
/// [`AdapterConfig::validate`]: bubble_core::AdapterConfig::validate
/// [`AdapterConfig::connect`]: bubble_core::AdapterConfig::connect
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct EtcdConfig {
    /// Client URLs of the etcd members (`http://host:2379`); the client
    /// balances over them and fails over when one dies.
    pub endpoints: Vec<String>,
    /// Key prefix shared by every node of one bubble cluster (several
    /// clusters, or test runs, can share one etcd under different prefixes).
    /// Starts with `/`, no trailing `/`.
    pub prefix: String,
    /// etcd user, when etcd runs with auth enabled.
    pub username: Option<String>,
    /// Password of `username`.
    pub password: Option<String>,
    /// How long to wait for a TCP connection to a member (ms).
    pub connect_timeout_ms: u64,
    /// How long one request (grant, put, get, revoke, a keep-alive round
    /// trip) may take before it fails with `Timeout` (ms).
    pub request_timeout_ms: u64,
    /// Events a watcher may fall behind before the watch task waits for it.
    pub watch_buffer: usize,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        EtcdConfig {
            endpoints: vec!["http://127.0.0.1:2379".to_owned()],
            prefix: "/bubble".to_owned(),
            username: None,
            password: None,
            connect_timeout_ms: 3_000,
            request_timeout_ms: 5_000,
            watch_buffer: 256,
        }
    }
}

impl fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdConfig")
            .field(
                "endpoints",
                &self
                    .endpoints
                    .iter()
                    .map(|e| redact_url(e))
                    .collect::<Vec<_>>(),
            )
            .field("prefix", &self.prefix)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("watch_buffer", &self.watch_buffer)
            .finish()
    }
}

impl EtcdConfig {
    /// The defaults with these etcd client URLs (`http://host:2379`).
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> EtcdConfig {
        EtcdConfig::default().with_endpoints(endpoints)
    }

    /// Sets [`endpoints`](EtcdConfig::endpoints).
    pub fn with_endpoints<S: Into<String>>(
        mut self,
        endpoints: impl IntoIterator<Item = S>,
    ) -> Self {
        self.endpoints = endpoints.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`prefix`](EtcdConfig::prefix).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets [`username`](EtcdConfig::username).
    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Sets [`password`](EtcdConfig::password).
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Sets [`connect_timeout_ms`](EtcdConfig::connect_timeout_ms).
    pub fn with_connect_timeout_ms(mut self, connect_timeout_ms: u64) -> Self {
        self.connect_timeout_ms = connect_timeout_ms;
        self
    }

    /// Sets [`request_timeout_ms`](EtcdConfig::request_timeout_ms).
    pub fn with_request_timeout_ms(mut self, request_timeout_ms: u64) -> Self {
        self.request_timeout_ms = request_timeout_ms;
        self
    }

    /// Sets [`watch_buffer`](EtcdConfig::watch_buffer).
    pub fn with_watch_buffer(mut self, watch_buffer: usize) -> Self {
        self.watch_buffer = watch_buffer;
        self
    }

    /// Every field's rule, naming the first bad field: what
    /// [`AdapterConfig::validate`](bubble_core::AdapterConfig::validate)
    /// runs (its impl sits in `client`, beside `connect`).
    pub(crate) fn check(&self) -> Result<(), InvalidConfig> {
        fn bad(field: &str, why: impl fmt::Display) -> InvalidConfig {
            InvalidConfig::new(field, why.to_string())
        }
        if self.endpoints.is_empty() {
            return Err(bad(
                "endpoints",
                "is empty; give at least one client URL such as http://127.0.0.1:2379",
            ));
        }
        for e in &self.endpoints {
            if e.starts_with("https://") {
                return Err(bad(
                    "endpoints",
                    format!(
                        "has {:?}: TLS is not built into this adapter; use http:// (loopback or a private network)",
                        redact_url(e)
                    ),
                ));
            }
            let Some(rest) = e.strip_prefix("http://") else {
                return Err(bad(
                    "endpoints",
                    format!(
                        "has {:?}; each must look like http://host:port",
                        redact_url(e)
                    ),
                ));
            };
            if rest.is_empty() || rest.starts_with('/') {
                return Err(bad(
                    "endpoints",
                    format!("has {:?} without a host", redact_url(e)),
                ));
            }
        }
        if !self.prefix.starts_with('/') || self.prefix.ends_with('/') || self.prefix.len() < 2 {
            return Err(bad(
                "prefix",
                format!(
                    "is {:?}; it must start with '/' and not end with one, e.g. \"/bubble\"",
                    self.prefix
                ),
            ));
        }
        if self.prefix.chars().any(char::is_control) {
            return Err(bad("prefix", "contains control characters"));
        }
        match (&self.username, &self.password) {
            (Some(u), Some(_)) if u.is_empty() => return Err(bad("username", "is empty")),
            (Some(_), None) => return Err(bad("password", "is missing while `username` is set")),
            (None, Some(_)) => return Err(bad("username", "is missing while `password` is set")),
            _ => {}
        }
        if self.connect_timeout_ms == 0 {
            return Err(bad("connect_timeout_ms", "must be above 0"));
        }
        if self.request_timeout_ms == 0 {
            return Err(bad("request_timeout_ms", "must be above 0"));
        }
        if self.watch_buffer == 0 {
            return Err(bad("watch_buffer", "must be above 0"));
        }
        Ok(())
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut EtcdConfig)) -> Result<(), InvalidConfig> {
        let mut c = EtcdConfig::default();
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
        EtcdConfig::default().check().unwrap();
    }

    #[test]
    fn an_empty_endpoint_list_is_rejected_by_name() {
        field_named(with(|c| c.endpoints.clear()), "endpoints");
    }

    #[test]
    fn an_endpoint_without_a_scheme_is_rejected() {
        field_named(
            with(|c| c.endpoints = vec!["127.0.0.1:2379".into()]),
            "endpoints",
        );
    }

    #[test]
    fn a_tls_endpoint_is_rejected_because_tls_is_not_built_in() {
        field_named(
            with(|c| c.endpoints = vec!["https://etcd:2379".into()]),
            "endpoints",
        );
    }

    #[test]
    fn a_prefix_must_start_with_a_slash_and_not_end_with_one() {
        field_named(with(|c| c.prefix = "bubble".into()), "prefix");
        field_named(with(|c| c.prefix = "/bubble/".into()), "prefix");
        field_named(with(|c| c.prefix = "/".into()), "prefix");
    }

    #[test]
    fn a_user_needs_a_password_and_the_other_way_round() {
        field_named(with(|c| c.username = Some("bubble".into())), "password");
        field_named(with(|c| c.password = Some("pw".into())), "username");
    }

    #[test]
    fn an_endpoint_without_a_host_is_rejected() {
        field_named(with(|c| c.endpoints = vec!["http://".into()]), "endpoints");
    }

    #[test]
    fn a_prefix_with_control_characters_is_rejected() {
        field_named(with(|c| c.prefix = "/bub\nble".into()), "prefix");
    }

    #[test]
    fn an_empty_username_is_rejected() {
        field_named(
            with(|c| {
                c.username = Some(String::new());
                c.password = Some("pw".into());
            }),
            "username",
        );
    }

    #[test]
    fn zero_timeouts_and_a_zero_watch_buffer_are_rejected() {
        field_named(with(|c| c.request_timeout_ms = 0), "request_timeout_ms");
        field_named(with(|c| c.connect_timeout_ms = 0), "connect_timeout_ms");
        field_named(with(|c| c.watch_buffer = 0), "watch_buffer");
    }

    #[test]
    fn debug_hides_the_password() {
        let c = EtcdConfig::default()
            .with_username("bubble")
            .with_password("hunter2");
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<hidden>"));
    }

    #[test]
    fn debug_and_errors_hide_credentials_inside_endpoints() {
        let c = EtcdConfig::new(["http://root:hunter2@etcd:2379"]);
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("http://root:<hidden>@etcd:2379"), "{shown}");
        let e = EtcdConfig::new(["https://root:hunter2@etcd:2379"])
            .check()
            .unwrap_err();
        assert_eq!(e.field, "endpoints");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn config_reads_from_json_with_defaults_for_missing_fields() {
        let c: EtcdConfig =
            serde_json::from_str(r#"{"endpoints":["http://10.0.0.1:2379"],"prefix":"/prod"}"#)
                .unwrap();
        assert_eq!(c.endpoints, vec!["http://10.0.0.1:2379".to_owned()]);
        assert_eq!(c.prefix, "/prod");
        assert_eq!(
            c.request_timeout_ms,
            EtcdConfig::default().request_timeout_ms
        );
    }

    #[test]
    fn unknown_config_keys_are_rejected() {
        let r: std::result::Result<EtcdConfig, _> = serde_json::from_str(r#"{"endpoint":"x"}"#);
        assert!(r.is_err(), "a typo must not silently fall back to defaults");
    }
}
