//! The HTTP listener: the selector (`/v1/gate`), the server key, the admin
//! API (`/v1/admin/*`, bearer secret), `/metrics` and `/healthz`; for
//! browsers, the web chat (`/chat/`) and the development app's demo tokens
//! (`/v1/demo/token`).
//!
//! Every refusal is the JSON error of [`api`], whichever layer refuses.

pub mod api;
pub mod demo;
pub mod listener;
pub mod selector;
pub mod web_chat;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use bubble_core::engine::HistoryQuery;
use bubble_core::ports::Discovery;
use bubble_core::token::{TokenAuthenticator, generate_secret};
use bubble_core::*;

use crate::metrics::{self, Metrics};
pub use api::ApiError;
use api::{Json, Path, Query};

/// Largest request body the API reads; a longer one is a 413.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// What the HTTP handlers share.
pub struct HttpState {
    /// The engine.
    pub engine: Engine,
    /// Issues tokens under the secrets of the engine's app store.
    pub tokens: Arc<TokenAuthenticator>,
    /// Bearer secret of the admin API.
    pub admin_secret: String,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Where gates are listed.
    pub discovery: Arc<dyn Discovery>,
    /// Picks the gate `/v1/gate` hands out.
    pub selector: selector::Selector,
    /// The server's public key (PEM) for clients to pin.
    pub server_key_pem: String,
    /// Its SHA-256 fingerprint (hex).
    pub server_key_fingerprint: String,
    /// This node (app-wide pushes start here).
    pub node: NodeId,
    /// The web chat and demo tokens.
    pub web: web_chat::WebOptions,
}

/// Serves the HTTP API on `listener` until `shutdown`.
pub async fn serve(
    state: Arc<HttpState>,
    listener: listener::BoundedListener,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "http listener stopped");
    }
}

/// The router.
pub fn router(state: Arc<HttpState>) -> Router {
    let admin = Router::new()
        .route("/v1/admin/apps", post(create_app))
        .route("/v1/admin/apps/{app}", get(get_app))
        .route("/v1/admin/apps/{app}/tokens", post(issue_token))
        .route("/v1/admin/apps/{app}/groups", post(create_group))
        .route(
            "/v1/admin/apps/{app}/groups/{group}/members",
            post(add_members).delete(remove_members).get(list_members),
        )
        .route("/v1/admin/apps/{app}/push", post(system_push))
        .route("/v1/admin/apps/{app}/presence", get(presence))
        .route("/v1/admin/apps/{app}/users/{user}/search", get(search))
        // Checked before the body is read: a caller without the secret learns nothing.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin_only,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/v1/gate", get(select_gate))
        .route("/v1/server-key", get(server_key))
        .route("/v1/demo/token", post(demo::issue_token))
        .route("/chat", get(web_chat::redirect))
        .route("/chat/", get(web_chat::index))
        .route("/chat/{file}", get(web_chat::file))
        .merge(admin)
        // After every route: each gets the JSON 405.
        .method_not_allowed_fallback(api::wrong_method)
        .fallback(api::no_route)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn admin_only(
    State(s): State<Arc<HttpState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match require_admin(&s, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

type ApiResult<T = axum::Json<Value>> = Result<T, ApiError>;

fn require_admin(state: &HttpState, headers: &HeaderMap) -> ApiResult<()> {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok: bool = given.as_bytes().ct_eq(state.admin_secret.as_bytes()).into();
    if ok && !state.admin_secret.is_empty() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorKind::Unauthenticated,
            "send the admin secret as `Authorization: Bearer <secret>`",
        ))
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    Error::invalid(message).into()
}

async fn metrics(State(s): State<Arc<HttpState>>) -> impl IntoResponse {
    // The engine's degradation is read when scraped, not pushed per request.
    s.metrics.set_degraded(s.engine.degradation());
    (
        [(axum::http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        s.metrics.render(),
    )
}

/// `GET /v1/server-key`: `{"pem", "fingerprint_sha256"}`.
async fn server_key(State(s): State<Arc<HttpState>>) -> axum::Json<Value> {
    axum::Json(json!({"pem": s.server_key_pem, "fingerprint_sha256": s.server_key_fingerprint}))
}

/// `GET /v1/gate`: the least loaded live gate's endpoints.
async fn select_gate(State(s): State<Arc<HttpState>>) -> ApiResult {
    let best = s.selector.pick().await?;
    Ok(axum::Json(json!({
        "node": best.id.to_string(),
        "tcp": best.tcp_addr,
        "ws": best.ws_addr,
        "load": best.load,
        "server_key": {"pem": s.server_key_pem, "fingerprint_sha256": s.server_key_fingerprint},
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateApp {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    settings: Option<AppSettings>,
}

async fn create_app(
    State(s): State<Arc<HttpState>>,
    Json(body): Json<CreateApp>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let secret = body.secret.unwrap_or_else(generate_secret);
    let mut app = AppConfig::new(body.id.as_str(), secret.clone());
    if let Some(name) = body.name {
        app.name = name;
    }
    if let Some(settings) = body.settings {
        app.settings = settings;
    }
    app.validate()?;
    s.engine.put_app(app.clone()).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"id": app.id.to_string(), "secret": secret})),
    ))
}

async fn get_app(State(s): State<Arc<HttpState>>, Path(app): Path<String>) -> ApiResult {
    let app = s.engine.app(&AppId::new(&app)).await?;
    Ok(axum::Json(
        json!({"id": app.id.to_string(), "name": app.name, "settings": app.settings}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueToken {
    user: String,
    #[serde(default)]
    ttl_secs: Option<u64>,
    #[serde(default)]
    devices: Vec<String>,
}

async fn issue_token(
    State(s): State<Arc<HttpState>>,
    Path(app): Path<String>,
    Json(body): Json<IssueToken>,
) -> ApiResult {
    let app = AppId::new(&app);
    validate_id("user", &body.user)?;
    let ttl = Duration::from_secs(body.ttl_secs.unwrap_or(24 * 3600));
    let devices: Vec<DeviceId> = body.devices.iter().map(DeviceId::new).collect();
    let token = s
        .tokens
        .issue(&app, &UserId::new(&body.user), ttl, &devices)
        .await?;
    Ok(axum::Json(
        json!({"token": token, "expires_at": now_millis() + ttl.as_millis() as i64}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateGroupBody {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: String,
    owner: String,
    #[serde(default)]
    members: Vec<String>,
    #[serde(default)]
    super_group: bool,
}

fn user_ids(list: &[String]) -> Result<Vec<UserId>> {
    list.iter()
        .map(|u| validate_id("user", u).map(|_| UserId::new(u)))
        .collect()
}

fn group_json(g: &Group) -> Value {
    json!({
        "id": g.id.to_string(),
        "name": g.name,
        "kind": match g.kind { GroupKind::Normal => "normal", GroupKind::Super => "super" },
        "owner": g.owner.to_string(),
        "created_at": g.created_at,
    })
}

async fn create_group(
    State(s): State<Arc<HttpState>>,
    Path(app): Path<String>,
    Json(body): Json<CreateGroupBody>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    validate_id("owner", &body.owner)?;
    let group = s
        .engine
        .create_group(
            &AppId::new(&app),
            &UserId::new(&body.owner),
            CreateGroup {
                id: body.id.map(GroupId::new),
                name: body.name,
                members: user_ids(&body.members)?,
                super_group: body.super_group,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(group_json(&group))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Users {
    users: Vec<String>,
}

async fn add_members(
    State(s): State<Arc<HttpState>>,
    Path((app, group)): Path<(String, String)>,
    Json(body): Json<Users>,
) -> ApiResult {
    let app = AppId::new(&app);
    let gid = GroupId::new(&group);
    let added = s
        .engine
        .add_members(&app, None, &gid, &user_ids(&body.users)?)
        .await?;
    let group = s.engine.group(&app, &gid).await?;
    Ok(axum::Json(
        json!({"added": added, "group": group_json(&group)}),
    ))
}

async fn remove_members(
    State(s): State<Arc<HttpState>>,
    Path((app, group)): Path<(String, String)>,
    Json(body): Json<Users>,
) -> ApiResult {
    let removed = s
        .engine
        .remove_members(
            &AppId::new(&app),
            None,
            &GroupId::new(&group),
            &user_ids(&body.users)?,
        )
        .await?;
    Ok(axum::Json(json!({"removed": removed})))
}

async fn list_members(
    State(s): State<Arc<HttpState>>,
    Path((app, group)): Path<(String, String)>,
) -> ApiResult {
    let members = s
        .engine
        .members(&AppId::new(&app), &GroupId::new(&group), None)
        .await?;
    let list: Vec<Value> = members
        .iter()
        .map(|m| json!({"user": m.user.to_string(), "role": format!("{:?}", m.role).to_lowercase(), "joined_at": m.joined_at}))
        .collect();
    Ok(axum::Json(json!({"members": list})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PushBody {
    /// "user", "group" or "app".
    target: String,
    #[serde(default)]
    id: Option<String>,
    text: String,
}

async fn system_push(
    State(s): State<Arc<HttpState>>,
    Path(app): Path<String>,
    Json(body): Json<PushBody>,
) -> ApiResult {
    let id = || {
        body.id
            .clone()
            .ok_or_else(|| bad_request(format!("target {:?} needs an id", body.target)))
    };
    let target = match body.target.as_str() {
        "user" => SystemTarget::User(UserId::new(id()?)),
        "group" => SystemTarget::Group(GroupId::new(id()?)),
        "app" => SystemTarget::App,
        other => {
            return Err(bad_request(format!(
                "target {other:?} is not one of user, group, app"
            )));
        }
    };
    // App-wide notices reach every gate (a discovery lookup); the others
    // follow the recipients' routes and need no node list.
    let mut nodes: Vec<NodeId> = Vec::new();
    if target == SystemTarget::App {
        nodes = s
            .discovery
            .list("gate")
            .await
            .map(|list| list.into_iter().map(|n| n.id).collect())
            .unwrap_or_default();
        if !nodes.contains(&s.node) {
            nodes.push(s.node.clone());
        }
    }
    let receipt = s
        .engine
        .system_push(&AppId::new(&app), target, Content::text(body.text), &nodes)
        .await?;
    Ok(axum::Json(json!({
        "server_msg_id": receipt.server_msg_id.to_hex(),
        "version": receipt.version,
        "seq": receipt.seq,
        "server_time": receipt.server_time,
    })))
}

#[derive(Deserialize)]
struct PresenceParams {
    users: String,
}

async fn presence(
    State(s): State<Arc<HttpState>>,
    Path(app): Path<String>,
    Query(q): Query<PresenceParams>,
) -> ApiResult {
    let users: Vec<String> = q
        .users
        .split(',')
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    let found = s
        .engine
        .presence(&AppId::new(&app), &user_ids(&users)?)
        .await?;
    let list: Vec<Value> = found
        .iter()
        .map(|u| {
            json!({
                "user": u.user.to_string(),
                "online": !u.devices.is_empty(),
                "devices": u.devices.iter().map(|r| json!({
                    "device": r.device.to_string(), "platform": r.platform, "node": r.node.to_string(), "since": r.since,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(axum::Json(json!({"users": list})))
}

#[derive(Deserialize)]
struct SearchParams {
    q: String,
    #[serde(default)]
    offset: usize,
    #[serde(default = "twenty")]
    limit: usize,
}

fn twenty() -> usize {
    20
}

async fn search(
    State(s): State<Arc<HttpState>>,
    Path((app, user)): Path<(String, String)>,
    Query(q): Query<SearchParams>,
) -> ApiResult {
    let results = s
        .engine
        .search_as(
            &AppId::new(&app),
            &UserId::new(&user),
            HistoryQuery {
                words: q.q,
                offset: q.offset,
                limit: q.limit,
                ..Default::default()
            },
        )
        .await?;
    let hits: Vec<Value> = results
        .hits
        .iter()
        .map(|h| {
            json!({
                "server_msg_id": h.doc.server_msg_id.to_hex(),
                "conversation": {"kind": format!("{:?}", h.doc.conversation.kind).to_lowercase(), "id": h.doc.conversation.id()},
                "sender": h.doc.sender.to_string(),
                "server_time": h.doc.server_time,
                "text": h.doc.text,
                "score": h.score,
            })
        })
        .collect();
    Ok(axum::Json(json!({"total": results.total, "hits": hits})))
}
