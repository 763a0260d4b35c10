//! Harness of the `admin_api` fuzz target: arbitrary request bodies (and
//! query strings) into the admin API's router, as an authorised caller
//! sends them, over the in-memory engine. Every JSON type the API
//! deserializes and every check behind it runs as in the server.
//!
//! The first byte picks the route; the rest is the body (or the query).
//! Bad input must come back as a 4xx with the documented error body
//! (`{"error": {"kind", "message"}}`): never a panic, never a 5xx.
//!
//! Shared, through `#[path]`, by `fuzz/fuzz_targets/admin_api.rs` and the
//! replay of `fuzz/regressions/admin_api/` in bubble-server's tests.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, header};
use bubble_core::engine::CreateGroup;
use bubble_core::memory::MemoryDiscovery;
use bubble_core::ports::Discovery;
use bubble_core::token::TokenAuthenticator;
use bubble_core::{AppConfig, AppId, Engine, GroupId, NodeId, UserId};
use bubble_server::AppSecrets;
use bubble_server::http::selector::Selector;
use bubble_server::http::{HttpState, router};
use bubble_server::metrics::Metrics;
use serde_json::Value;
use tower::ServiceExt;

const ADMIN: &str = "admin-secret-for-fuzzing";

/// The routes that read input: method, path, and whether the input is the
/// JSON body (else it is the query string).
const ROUTES: &[(Method, &str, bool)] = &[
    (Method::POST, "/v1/admin/apps", true),
    (Method::POST, "/v1/admin/apps/demo/tokens", true),
    (Method::POST, "/v1/admin/apps/demo/groups", true),
    (Method::POST, "/v1/admin/apps/demo/groups/g1/members", true),
    (
        Method::DELETE,
        "/v1/admin/apps/demo/groups/g1/members",
        true,
    ),
    (Method::POST, "/v1/admin/apps/demo/push", true),
    (Method::GET, "/v1/admin/apps/demo/presence", false),
    (Method::GET, "/v1/admin/apps/demo/users/alice/search", false),
];

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
}

/// A fresh server per input (so one input's apps and groups never change
/// the next one's answer): app `demo` with group `g1` owned by alice.
async fn server() -> axum::Router {
    let engine = Engine::builder()
        .build()
        .expect("the in-memory engine builds");
    engine
        .put_app(AppConfig::new("demo", "d".repeat(32)))
        .await
        .expect("app demo is stored");
    engine
        .create_group(
            &AppId::new("demo"),
            &UserId::new("alice"),
            CreateGroup {
                id: Some(GroupId::new("g1")),
                name: "g1".into(),
                members: vec![UserId::new("bob")],
                super_group: false,
            },
        )
        .await
        .expect("group g1 is created");
    let discovery: Arc<dyn Discovery> = Arc::new(MemoryDiscovery::new());
    let state = HttpState {
        engine: engine.clone(),
        tokens: Arc::new(TokenAuthenticator::new(Arc::new(AppSecrets::new(engine)))),
        admin_secret: ADMIN.into(),
        metrics: Arc::new(Metrics::new()),
        discovery: discovery.clone(),
        selector: Selector::new(discovery, NodeId::new("node-1")),
        server_key_pem: "-----BEGIN PUBLIC KEY-----\n…".into(),
        server_key_fingerprint: "ab".repeat(32),
        node: NodeId::new("node-1"),
        web: Default::default(),
    };
    router(Arc::new(state))
}

/// Runs one input; panics on a 5xx or an answer outside the documented shape.
pub fn run(data: &[u8]) {
    let Some((&which, input)) = data.split_first() else {
        return;
    };
    let (method, path, is_body) = &ROUTES[usize::from(which) % ROUTES.len()];
    let builder = Request::builder()
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .method(method.clone());
    let request = if *is_body {
        builder
            .uri(*path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(input.to_vec()))
    } else {
        let Ok(query) = std::str::from_utf8(input) else {
            return; // not a URI: hyper refuses it before any route
        };
        builder.uri(format!("{path}?{query}")).body(Body::empty())
    };
    let Ok(request) = request else {
        return; // not a valid URI either
    };
    RUNTIME.with(|rt| {
        rt.block_on(async {
            let response = server()
                .await
                .oneshot(request)
                .await
                .expect("the router is infallible");
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("the body is in memory");
            let json: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "{status} came without a JSON body: {:?}",
                    String::from_utf8_lossy(&bytes)
                )
            });
            assert!(
                !status.is_server_error(),
                "{method} {path}: {status} {json}"
            );
            if status.is_client_error() {
                let error = &json["error"];
                assert!(
                    error["kind"].is_string() && error["message"].is_string(),
                    "{status} without the documented error body: {json}"
                );
            }
        })
    });
}

/// The bodies and queries the API's own tests send, one per route.
pub fn seeds() -> Vec<Vec<u8>> {
    let inputs: [&str; 8] = [
        r#"{"id": "acme", "name": "Acme", "settings": {"max_text_bytes": 1000}}"#,
        r#"{"user": "alice", "ttl_secs": 3600, "devices": ["phone-1"]}"#,
        r#"{"id": "g2", "name": "team", "owner": "alice", "members": ["bob", "carol"], "super_group": false}"#,
        r#"{"users": ["carol", "dave"]}"#,
        r#"{"users": ["bob"]}"#,
        r#"{"target": "group", "id": "g1", "text": "maintenance at noon"}"#,
        "users=alice,bob",
        "q=hello&offset=0&limit=5",
    ];
    inputs
        .iter()
        .enumerate()
        .map(|(i, text)| [&[i as u8][..], text.as_bytes()].concat())
        .collect()
}
