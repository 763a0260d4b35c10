//! The HTTP listener: the selector (`/v1/gate`), the server key, the admin
//! API (`/v1/admin/*`, bearer secret), `/metrics` and `/healthz`; for
//! browsers, the web chat (`/chat/`) and the development app's demo tokens
//! (`/v1/demo/token`).
//!
//! Every refusal is the JSON error of [`api`], whichever layer refuses.

pub mod api;
pub mod demo;
pub mod listener;
pub mod media;
pub mod openapi;
pub mod responses;
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
use axum::routing::{MethodRouter, get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use utoipa::{IntoParams, ToSchema};

use bubble_core::engine::HistoryQuery;
use bubble_core::ports::Discovery;
use bubble_core::token::{TokenAuthenticator, generate_secret};
use bubble_core::*;

use crate::metrics::{self, Metrics};
pub use api::ApiError;
use api::{Json, Path, Query};
use responses::*;

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

/// [`serve`], with `extra` routes merged in (the `fs` media store's
/// uploads and downloads, [`media::routes`]).
pub async fn serve_with(
    state: Arc<HttpState>,
    extra: Router,
    listener: listener::BoundedListener,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let served = axum::serve(listener, router(state).merge(extra))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "http listener stopped");
    }
}

/// Every admin route, path and handlers: the router is built from this list,
/// and the OpenAPI tests walk it, so a route missing from
/// [`openapi::AdminApi`] fails them.
pub(crate) fn admin_routes() -> Vec<(&'static str, MethodRouter<Arc<HttpState>>)> {
    vec![
        ("/v1/admin/apps", post(create_app)),
        ("/v1/admin/apps/{app}", get(get_app)),
        ("/v1/admin/apps/{app}/tokens", post(issue_token)),
        ("/v1/admin/apps/{app}/groups", post(create_group)),
        (
            "/v1/admin/apps/{app}/groups/{group}/members",
            post(add_members).delete(remove_members).get(list_members),
        ),
        ("/v1/admin/apps/{app}/push", post(system_push)),
        ("/v1/admin/apps/{app}/presence", get(presence)),
        ("/v1/admin/apps/{app}/users/{user}/search", get(search)),
    ]
}

/// The router.
pub fn router(state: Arc<HttpState>) -> Router {
    let admin = admin_routes()
        .into_iter()
        .fold(Router::new(), |admin, (path, handlers)| {
            admin.route(path, handlers)
        })
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
        .route("/v1/openapi.json", get(openapi::document))
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
    s.metrics.set_integrations(&s.engine);
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateApp {
    /// The app id.
    id: String,
    /// A display name.
    #[serde(default)]
    name: Option<String>,
    /// The token secret, at least 32 bytes; generated unless given.
    #[serde(default)]
    secret: Option<String>,
    /// Limits and policies, each optional (docs/admin-api.md, "Apps").
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    settings: Option<AppSettings>,
}

#[utoipa::path(
    post,
    path = "/v1/admin/apps",
    tag = "admin",
    summary = "Create or replace an app",
    request_body = CreateApp,
    responses((status = 201, description = "The app, with its token secret", body = AppCreated)),
    security(("admin" = [])),
)]
async fn create_app(
    State(s): State<Arc<HttpState>>,
    Json(body): Json<CreateApp>,
) -> ApiResult<(StatusCode, axum::Json<AppCreated>)> {
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
        axum::Json(AppCreated {
            id: app.id.to_string(),
            secret,
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/v1/admin/apps/{app}",
    tag = "admin",
    summary = "An app's settings",
    params(("app" = String, Path, description = "The app id")),
    responses((status = 200, description = "The app (never its secret)", body = AppView)),
    security(("admin" = [])),
)]
async fn get_app(
    State(s): State<Arc<HttpState>>,
    Path(app): Path<String>,
) -> ApiResult<axum::Json<AppView>> {
    let app = s.engine.app(&AppId::new(&app)).await?;
    Ok(axum::Json(AppView {
        id: app.id.to_string(),
        name: app.name.clone(),
        settings: app.settings.clone(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct IssueToken {
    /// The user the token signs in.
    user: String,
    /// Lifetime in seconds (default 86400).
    #[serde(default)]
    ttl_secs: Option<u64>,
    /// The devices it is valid on; any device when empty.
    #[serde(default)]
    devices: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/v1/admin/apps/{app}/tokens",
    tag = "admin",
    summary = "Issue a user token",
    request_body = IssueToken,
    params(("app" = String, Path, description = "The app id")),
    responses((status = 200, description = "The token", body = TokenIssued)),
    security(("admin" = [])),
)]
async fn issue_token(
    State(s): State<Arc<HttpState>>,
    Path(app): Path<String>,
    Json(body): Json<IssueToken>,
) -> ApiResult<axum::Json<TokenIssued>> {
    let app = AppId::new(&app);
    validate_id("user", &body.user)?;
    let ttl = Duration::from_secs(body.ttl_secs.unwrap_or(24 * 3600));
    let devices: Vec<DeviceId> = body.devices.iter().map(DeviceId::new).collect();
    let token = s
        .tokens
        .issue(&app, &UserId::new(&body.user), ttl, &devices)
        .await?;
    Ok(axum::Json(TokenIssued {
        token,
        expires_at: now_millis() + ttl.as_millis() as i64,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateGroupBody {
    /// The group id; generated unless given.
    #[serde(default)]
    id: Option<String>,
    /// A display name.
    #[serde(default)]
    name: String,
    /// The owner, a member from the start.
    owner: String,
    /// The other first members.
    #[serde(default)]
    members: Vec<String>,
    /// A super group from the start (else one past the app's `super_group_threshold`).
    #[serde(default)]
    super_group: bool,
}

fn user_ids(list: &[String]) -> Result<Vec<UserId>> {
    list.iter()
        .map(|u| validate_id("user", u).map(|_| UserId::new(u)))
        .collect()
}

#[utoipa::path(
    post,
    path = "/v1/admin/apps/{app}/groups",
    tag = "admin",
    summary = "Create a group or super group",
    request_body = CreateGroupBody,
    params(("app" = String, Path, description = "The app id")),
    responses((status = 201, description = "The group", body = GroupView)),
    security(("admin" = [])),
)]
async fn create_group(
    State(s): State<Arc<HttpState>>,
    Path(app): Path<String>,
    Json(body): Json<CreateGroupBody>,
) -> ApiResult<(StatusCode, axum::Json<GroupView>)> {
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
    Ok((StatusCode::CREATED, axum::Json(GroupView::from(&group))))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Users {
    /// User ids.
    users: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/v1/admin/apps/{app}/groups/{group}/members",
    tag = "admin",
    summary = "Add members",
    request_body = Users,
    params(("app" = String, Path, description = "The app id"), ("group" = String, Path, description = "The group id")),
    responses((status = 200, description = "How many joined, and the group", body = MembersAdded)),
    security(("admin" = [])),
)]
async fn add_members(
    State(s): State<Arc<HttpState>>,
    Path((app, group)): Path<(String, String)>,
    Json(body): Json<Users>,
) -> ApiResult<axum::Json<MembersAdded>> {
    let app = AppId::new(&app);
    let gid = GroupId::new(&group);
    let added = s
        .engine
        .add_members(&app, None, &gid, &user_ids(&body.users)?)
        .await?;
    let group = s.engine.group(&app, &gid).await?;
    Ok(axum::Json(MembersAdded {
        added,
        group: GroupView::from(&group),
    }))
}

#[utoipa::path(
    delete,
    path = "/v1/admin/apps/{app}/groups/{group}/members",
    tag = "admin",
    summary = "Remove members",
    request_body = Users,
    params(("app" = String, Path, description = "The app id"), ("group" = String, Path, description = "The group id")),
    responses((status = 200, description = "How many left", body = MembersRemoved)),
    security(("admin" = [])),
)]
async fn remove_members(
    State(s): State<Arc<HttpState>>,
    Path((app, group)): Path<(String, String)>,
    Json(body): Json<Users>,
) -> ApiResult<axum::Json<MembersRemoved>> {
    let removed = s
        .engine
        .remove_members(
            &AppId::new(&app),
            None,
            &GroupId::new(&group),
            &user_ids(&body.users)?,
        )
        .await?;
    Ok(axum::Json(MembersRemoved { removed }))
}

#[utoipa::path(
    get,
    path = "/v1/admin/apps/{app}/groups/{group}/members",
    tag = "admin",
    summary = "List members",
    params(("app" = String, Path, description = "The app id"), ("group" = String, Path, description = "The group id")),
    responses((status = 200, description = "The members", body = MemberList)),
    security(("admin" = [])),
)]
async fn list_members(
    State(s): State<Arc<HttpState>>,
    Path((app, group)): Path<(String, String)>,
) -> ApiResult<axum::Json<MemberList>> {
    let members = s
        .engine
        .members(&AppId::new(&app), &GroupId::new(&group), None)
        .await?;
    Ok(axum::Json(MemberList {
        members: members.iter().map(MemberView::from).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PushBody {
    /// "user", "group" or "app".
    #[schema(pattern = "^(user|group|app)$")]
    target: String,
    /// The user or group id; none for "app".
    #[serde(default)]
    id: Option<String>,
    /// The notice's text.
    text: String,
}

#[utoipa::path(
    post,
    path = "/v1/admin/apps/{app}/push",
    tag = "admin",
    summary = "System push to a user, a group or the whole app",
    request_body = PushBody,
    params(("app" = String, Path, description = "The app id")),
    responses((status = 200, description = "Where the notice was stored", body = PushReceipt)),
    security(("admin" = [])),
)]
async fn system_push(
    State(s): State<Arc<HttpState>>,
    Path(app): Path<String>,
    Json(body): Json<PushBody>,
) -> ApiResult<axum::Json<PushReceipt>> {
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
    Ok(axum::Json(PushReceipt::from(&receipt)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PresenceParams {
    /// User ids, comma-separated.
    users: String,
}

#[utoipa::path(
    get,
    path = "/v1/admin/apps/{app}/presence",
    tag = "admin",
    summary = "Who is online, on which devices and nodes",
    params(("app" = String, Path, description = "The app id"), PresenceParams),
    responses((status = 200, description = "Each user's connected devices", body = PresenceList)),
    security(("admin" = [])),
)]
async fn presence(
    State(s): State<Arc<HttpState>>,
    Path(app): Path<String>,
    Query(q): Query<PresenceParams>,
) -> ApiResult<axum::Json<PresenceList>> {
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
    Ok(axum::Json(PresenceList {
        users: found.iter().map(UserOnline::from).collect(),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SearchParams {
    /// The words to find.
    q: String,
    /// Hits to skip.
    #[serde(default)]
    offset: usize,
    /// Hits to return.
    #[serde(default = "twenty")]
    #[param(default = 20)]
    limit: usize,
}

fn twenty() -> usize {
    20
}

#[utoipa::path(
    get,
    path = "/v1/admin/apps/{app}/users/{user}/search",
    tag = "admin",
    summary = "Search a user's history",
    params(("app" = String, Path, description = "The app id"), ("user" = String, Path, description = "The user id"), SearchParams),
    responses((status = 200, description = "A page of hits", body = SearchPage)),
    security(("admin" = [])),
)]
async fn search(
    State(s): State<Arc<HttpState>>,
    Path((app, user)): Path<(String, String)>,
    Query(q): Query<SearchParams>,
) -> ApiResult<axum::Json<SearchPage>> {
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
    Ok(axum::Json(SearchPage {
        total: results.total,
        hits: results.hits.iter().map(Hit::from).collect(),
    }))
}
