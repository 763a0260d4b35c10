//! The HTTP API without sockets: requests straight into the router.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use bubble_core::memory::MemoryDiscovery;
use bubble_core::token::{Secrets, TokenAuthenticator, verify};
use bubble_core::{AppConfig, AppId, DeviceId, Engine, NodeId};

use super::web_chat::{FILES, WebOptions};
use super::{HttpState, MAX_BODY_BYTES, router};
use crate::AppSecrets;
use crate::metrics::Metrics;

/// The OpenAPI document against the router it describes.
mod openapi;

const ADMIN: &str = "admin-secret-for-tests";

async fn app() -> (axum::Router, Engine) {
    app_with(WebOptions::default()).await
}

/// The router with the web chat and demo tokens as `web` sets them.
async fn app_with(web: WebOptions) -> (axum::Router, Engine) {
    let engine = Engine::builder().build().unwrap();
    engine
        .put_app(AppConfig::new("demo", "d".repeat(32)))
        .await
        .unwrap();
    let discovery: Arc<dyn bubble_core::ports::Discovery> = Arc::new(MemoryDiscovery::new());
    let state = Arc::new(HttpState {
        engine: engine.clone(),
        tokens: Arc::new(TokenAuthenticator::new(Arc::new(AppSecrets::new(
            engine.clone(),
        )))),
        admin_secret: ADMIN.into(),
        metrics: Arc::new(Metrics::new()),
        discovery: discovery.clone(),
        selector: crate::http::selector::Selector::new(discovery, NodeId::new("node-1")),
        server_key_pem: "-----BEGIN PUBLIC KEY-----\n…".into(),
        server_key_fingerprint: "ab".repeat(32),
        node: NodeId::new("node-1"),
        web,
    });
    (router(state), engine)
}

/// What came back: the status, the JSON body (`Null` if not JSON), the headers.
struct Answer {
    status: StatusCode,
    json: Value,
    headers: axum::http::HeaderMap,
}

async fn send(router: &axum::Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        json,
        headers,
    }
}

/// An admin request with a JSON body (as raw text, so it can be broken).
fn admin(method: &str, uri: &str, body: Option<&str>) -> Request<Body> {
    let builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"));
    match body {
        Some(text) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(text.to_owned()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

/// Asserts the documented error shape and returns the message.
fn error(answer: &Answer, status: StatusCode, kind: &str) -> String {
    assert_eq!(answer.status, status, "{}", answer.json);
    assert_eq!(
        answer.headers[header::CONTENT_TYPE],
        "application/json",
        "{}",
        answer.json
    );
    let error = answer.json["error"]
        .as_object()
        .unwrap_or_else(|| panic!("not the documented error shape: {}", answer.json));
    assert_eq!(error.len(), 2, "{}", answer.json);
    assert_eq!(error["kind"], kind, "{}", answer.json);
    error["message"].as_str().expect("a message").to_owned()
}

#[tokio::test]
async fn an_unknown_setting_is_a_400_naming_it() {
    let (router, _) = app().await;
    let body = r#"{"id":"shop","settings":{"login_policy":"single","colour":"red"}}"#;
    let answer = send(&router, admin("POST", "/v1/admin/apps", Some(body))).await;
    let message = error(&answer, StatusCode::BAD_REQUEST, "InvalidInput");
    assert!(message.contains("colour"), "{message}");
    assert!(message.contains("settings"), "{message}");
}

#[tokio::test]
async fn a_bad_setting_value_is_a_400_naming_the_field_and_the_value() {
    let (router, _) = app().await;
    let body = r#"{"id":"shop","settings":{"login_policy":"sometimes"}}"#;
    let answer = send(&router, admin("POST", "/v1/admin/apps", Some(body))).await;
    let message = error(&answer, StatusCode::BAD_REQUEST, "InvalidInput");
    assert!(message.contains("settings.login_policy"), "{message}");
    assert!(message.contains("sometimes"), "{message}");
}

#[tokio::test]
async fn retention_days_is_kept_with_the_app_and_a_negative_one_is_a_400() {
    let (router, _) = app().await;
    let body = r#"{"id":"shop","settings":{"retention_days":30}}"#;
    let created = send(&router, admin("POST", "/v1/admin/apps", Some(body))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    let read = send(&router, admin("GET", "/v1/admin/apps/shop", None)).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.json);
    assert_eq!(read.json["settings"]["retention_days"], 30, "{}", read.json);

    let body = r#"{"id":"shop","settings":{"retention_days":-1}}"#;
    let answer = send(&router, admin("POST", "/v1/admin/apps", Some(body))).await;
    let message = error(&answer, StatusCode::BAD_REQUEST, "InvalidInput");
    assert!(message.contains("settings.retention_days"), "{message}");
}

#[tokio::test]
async fn a_value_of_the_wrong_type_is_a_400_naming_the_field() {
    let (router, _) = app().await;
    let body = r#"{"id":"shop","settings":{"max_text_bytes":"lots"}}"#;
    let answer = send(&router, admin("POST", "/v1/admin/apps", Some(body))).await;
    let message = error(&answer, StatusCode::BAD_REQUEST, "InvalidInput");
    assert!(message.contains("settings.max_text_bytes"), "{message}");
}

#[tokio::test]
async fn an_unknown_or_missing_top_level_field_is_a_400_naming_it() {
    let (router, _) = app().await;
    let answer = send(
        &router,
        admin(
            "POST",
            "/v1/admin/apps/demo/tokens",
            Some(r#"{"user":"alice","ttl":60}"#),
        ),
    )
    .await;
    let message = error(&answer, StatusCode::BAD_REQUEST, "InvalidInput");
    assert!(message.contains("`ttl`"), "{message}");
    let answer = send(&router, admin("POST", "/v1/admin/apps", Some("{}"))).await;
    let message = error(&answer, StatusCode::BAD_REQUEST, "InvalidInput");
    assert!(message.contains("`id`"), "{message}");
}

#[tokio::test]
async fn a_truncated_or_empty_json_body_is_a_400() {
    let (router, _) = app().await;
    for body in [r#"{"id":"shop","settings":{"search":tr"#, "", "not json"] {
        let answer = send(&router, admin("POST", "/v1/admin/apps", Some(body))).await;
        let message = error(&answer, StatusCode::BAD_REQUEST, "InvalidInput");
        assert!(!message.is_empty(), "{body:?}");
    }
}

#[tokio::test]
async fn a_body_without_the_json_content_type_is_a_415() {
    let (router, _) = app().await;
    // No body and no content type, as `curl -X POST` sends.
    let answer = send(&router, admin("POST", "/v1/admin/apps/demo/tokens", None)).await;
    let message = error(&answer, StatusCode::UNSUPPORTED_MEDIA_TYPE, "InvalidInput");
    assert!(message.contains("application/json"), "{message}");
    // A body sent as a form, as `curl -d` does without `-H`.
    let request = Request::builder()
        .method("POST")
        .uri("/v1/admin/apps/demo/tokens")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(r#"{"user":"alice"}"#))
        .unwrap();
    let answer = send(&router, request).await;
    error(&answer, StatusCode::UNSUPPORTED_MEDIA_TYPE, "InvalidInput");
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    let (router, _) = app().await;
    let members: Vec<String> = (0..MAX_BODY_BYTES / 8)
        .map(|i| format!("u{i:06}"))
        .collect();
    let body = json!({"id": "huge", "owner": "alice", "members": members}).to_string();
    assert!(body.len() > MAX_BODY_BYTES);
    let answer = send(
        &router,
        admin("POST", "/v1/admin/apps/demo/groups", Some(&body)),
    )
    .await;
    error(&answer, StatusCode::PAYLOAD_TOO_LARGE, "TooLarge");
}

#[tokio::test]
async fn bad_query_parameters_are_a_400_naming_them() {
    let (router, _) = app().await;
    let answer = send(&router, admin("GET", "/v1/admin/apps/demo/presence", None)).await;
    let message = error(&answer, StatusCode::BAD_REQUEST, "InvalidInput");
    assert!(message.contains("users"), "{message}");
    let answer = send(
        &router,
        admin(
            "GET",
            "/v1/admin/apps/demo/users/alice/search?q=hi&limit=many",
            None,
        ),
    )
    .await;
    let message = error(&answer, StatusCode::BAD_REQUEST, "InvalidInput");
    assert!(message.contains("limit"), "{message}");
}

#[tokio::test]
async fn a_bad_path_parameter_is_a_400() {
    let (router, _) = app().await;
    // %FF is not UTF-8: the app id cannot be read.
    let answer = send(&router, admin("GET", "/v1/admin/apps/%FF", None)).await;
    error(&answer, StatusCode::BAD_REQUEST, "InvalidInput");
}

#[tokio::test]
async fn an_unknown_route_is_a_404() {
    let (router, _) = app().await;
    for uri in ["/v1/nothing", "/v1/admin/apps/demo/nothing", "/"] {
        let answer = send(&router, admin("GET", uri, None)).await;
        let message = error(&answer, StatusCode::NOT_FOUND, "NotFound");
        assert!(message.contains(uri), "{message}");
    }
}

#[tokio::test]
async fn a_wrong_method_is_a_405_with_the_allowed_ones() {
    let (router, _) = app().await;
    let answer = send(&router, admin("GET", "/v1/admin/apps", None)).await;
    error(&answer, StatusCode::METHOD_NOT_ALLOWED, "InvalidInput");
    assert_eq!(answer.headers[header::ALLOW], "POST");
    let answer = send(&router, admin("DELETE", "/healthz", None)).await;
    error(&answer, StatusCode::METHOD_NOT_ALLOWED, "InvalidInput");
}

#[tokio::test]
async fn a_wrong_admin_secret_is_a_401_before_the_body_is_read() {
    let (router, _) = app().await;
    let request = Request::builder()
        .method("POST")
        .uri("/v1/admin/apps")
        .header(header::AUTHORIZATION, "Bearer wrong")
        .body(Body::from("not even json"))
        .unwrap();
    let answer = send(&router, request).await;
    let message = error(&answer, StatusCode::UNAUTHORIZED, "Unauthenticated");
    assert!(message.contains("admin secret"), "{message}");
}

#[tokio::test]
async fn engine_errors_keep_their_kind_and_status() {
    let (router, _) = app().await;
    let answer = send(&router, admin("GET", "/v1/admin/apps/nope", None)).await;
    error(&answer, StatusCode::NOT_FOUND, "NotFound");
    let answer = send(
        &router,
        admin(
            "POST",
            "/v1/admin/apps/nope/tokens",
            Some(r#"{"user":"alice"}"#),
        ),
    )
    .await;
    error(&answer, StatusCode::NOT_FOUND, "NotFound");
    let answer = send(
        &router,
        admin(
            "POST",
            "/v1/admin/apps/demo/push",
            Some(r#"{"target":"planet","text":"hi"}"#),
        ),
    )
    .await;
    let message = error(&answer, StatusCode::BAD_REQUEST, "InvalidInput");
    assert!(message.contains("planet"), "{message}");
}

#[tokio::test]
async fn tokens_are_signed_with_the_app_stores_secret_as_its_utf8_bytes() {
    let (router, engine) = app().await;
    let created = send(
        &router,
        admin("POST", "/v1/admin/apps", Some(r#"{"id":"shop"}"#)),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    let secret = created.json["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 64, "a generated secret is 64 hex digits");
    let issued = send(
        &router,
        admin(
            "POST",
            "/v1/admin/apps/shop/tokens",
            Some(r#"{"user":"alice"}"#),
        ),
    )
    .await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.json);
    let token = issued.json["token"].as_str().unwrap();
    let app = AppId::new("shop");
    let secrets = Secrets::new(&app, secret.as_bytes()).unwrap();
    let now = bubble_core::now_millis();
    verify(&secrets, &app, token, &DeviceId::new("phone"), now).expect("signed with the secret");
    // An app put into the store by another node (or replaced) needs nothing
    // else: its tokens come from the store.
    engine
        .put_app(AppConfig::new("elsewhere", "e".repeat(32)))
        .await
        .unwrap();
    let issued = send(
        &router,
        admin(
            "POST",
            "/v1/admin/apps/elsewhere/tokens",
            Some(r#"{"user":"bob"}"#),
        ),
    )
    .await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.json);
}

#[tokio::test]
async fn the_server_key_and_metrics_have_their_documented_shapes() {
    let (router, _) = app().await;
    let key = send(&router, admin("GET", "/v1/server-key", None)).await;
    assert_eq!(key.status, StatusCode::OK);
    let fields = key.json.as_object().unwrap();
    assert_eq!(fields.len(), 2, "{}", key.json);
    assert!(
        fields["pem"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    assert_eq!(fields["fingerprint_sha256"].as_str().unwrap().len(), 64);
    let metrics = send(&router, admin("GET", "/metrics", None)).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert_eq!(
        metrics.headers[header::CONTENT_TYPE],
        crate::metrics::CONTENT_TYPE
    );
}

// ------------------------------------------------------------ for browsers

/// A request without the admin secret, as a browser sends it.
fn browser(method: &str, uri: &str, body: Option<&str>) -> Request<Body> {
    let builder = Request::builder().method(method).uri(uri);
    match body {
        Some(text) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(text.to_owned()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

/// The raw answer: status, headers, body bytes.
async fn fetch(
    router: &axum::Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    (parts.status, parts.headers, bytes.to_vec())
}

fn chat_on() -> WebOptions {
    WebOptions {
        chat: true,
        demo_app: Some(AppId::new("demo")),
    }
}

#[tokio::test]
async fn the_web_chat_page_and_its_modules_are_served_under_chat() {
    let (router, _) = app_with(chat_on()).await;
    let (status, headers, body) = fetch(&router, browser("GET", "/chat/", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("connect-src 'self' ws: wss:"), "{csp}");
    let page = String::from_utf8(body).unwrap();
    assert!(
        page.contains(r#"<script type="module" src="main.js">"#),
        "{page}"
    );
    for name in ["main.js", "bubble.js"] {
        let (status, headers, body) =
            fetch(&router, browser("GET", &format!("/chat/{name}"), None)).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8",
            "{name}"
        );
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache", "{name}");
        assert!(!body.is_empty(), "{name}");
    }
    let (status, headers, _) = fetch(&router, browser("GET", "/chat", None)).await;
    assert_eq!(
        status,
        StatusCode::PERMANENT_REDIRECT,
        "the page's relative imports need the slash"
    );
    assert_eq!(headers[header::LOCATION], "/chat/");
}

#[tokio::test]
async fn a_file_the_chat_does_not_have_is_a_404_naming_it() {
    let (router, _) = app_with(chat_on()).await;
    let answer = send(&router, browser("GET", "/chat/secrets.txt", None)).await;
    let message = error(&answer, StatusCode::NOT_FOUND, "NotFound");
    assert!(message.contains("secrets.txt"), "{message}");
}

#[tokio::test]
async fn with_the_web_chat_off_its_page_is_a_404_saying_how_to_turn_it_on() {
    let (router, _) = app().await;
    for uri in ["/chat/", "/chat/main.js"] {
        let answer = send(&router, browser("GET", uri, None)).await;
        let message = error(&answer, StatusCode::NOT_FOUND, "NotFound");
        assert!(message.contains("http.web_chat"), "{message}");
    }
}

#[test]
fn every_file_of_the_web_chat_folder_is_embedded_and_nothing_else() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bubble-js/web");
    let mut on_disk: Vec<String> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .map(|f| f.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> = FILES.iter().map(|f| f.name.to_owned()).collect();
    embedded.sort();
    assert_eq!(
        embedded, on_disk,
        "list every file of bubble-js/web/ in FILES (bubble-server/src/http/web_chat.rs)"
    );
}

#[tokio::test]
async fn a_demo_token_signs_in_a_user_of_the_development_app_without_the_admin_secret() {
    let (router, _) = app_with(chat_on()).await;
    let answer = send(
        &router,
        browser("POST", "/v1/demo/token", Some(r#"{"user":"alice"}"#)),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["app"], "demo");
    assert_eq!(answer.json["user"], "alice");
    let token = answer.json["token"].as_str().unwrap();
    let app = AppId::new("demo");
    let secrets = Secrets::new(&app, "d".repeat(32).as_bytes()).unwrap();
    let now = bubble_core::now_millis();
    let identity =
        verify(&secrets, &app, token, &DeviceId::new("web-tab"), now).expect("a demo app token");
    assert_eq!(identity.user.to_string(), "alice");
    let expires_at = answer.json["expires_at"].as_i64().unwrap();
    assert!(
        expires_at > now && expires_at <= now + 12 * 3600 * 1000,
        "{expires_at}"
    );
}

#[tokio::test]
async fn without_a_development_app_no_demo_token_is_issued() {
    let options = WebOptions {
        chat: true,
        demo_app: None,
    };
    let (router, _) = app_with(options).await;
    let answer = send(
        &router,
        browser("POST", "/v1/demo/token", Some(r#"{"user":"alice"}"#)),
    )
    .await;
    let message = error(&answer, StatusCode::NOT_FOUND, "NotFound");
    assert!(message.contains("dev_app"), "{message}");
}

#[tokio::test]
async fn a_demo_token_for_a_bad_user_id_is_a_400() {
    let (router, _) = app_with(chat_on()).await;
    let too_long = json!({ "user": "u".repeat(129) }).to_string();
    for body in [
        r#"{"user":""}"#,
        r#"{"user":"a:b"}"#,
        &too_long,
        r#"{"user":"alice","app":"shop"}"#,
    ] {
        let answer = send(&router, browser("POST", "/v1/demo/token", Some(body))).await;
        error(&answer, StatusCode::BAD_REQUEST, "InvalidInput");
    }
}
