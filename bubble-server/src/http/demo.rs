//! `POST /v1/demo/token`: a user token of the development app (`dev_app`)
//! for anyone who asks, so that the web chat signs in with a user name
//! alone. It exists only while the server runs that app; a server without
//! one answers 404, and no other app's tokens are ever issued here.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use bubble_core::{ErrorKind, UserId, now_millis, validate_id};

use super::{ApiError, HttpState, Json};

/// How long a demo token lasts: a working day of trying things.
pub const DEMO_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

/// The body: whom the token signs in.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoTokenRequest {
    /// A user id of the development app (any; users need no creating).
    user: String,
}

/// Issues `{"app", "user", "token", "expires_at"}` for the development app.
pub async fn issue_token(
    State(s): State<Arc<HttpState>>,
    Json(body): Json<DemoTokenRequest>,
) -> Result<axum::Json<Value>, ApiError> {
    let Some(app) = &s.web.demo_app else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
            "this server runs no development app (the config key dev_app is empty), so it \
             issues no demo tokens: get a token from your app's backend (POST \
             /v1/admin/apps/{app}/tokens, docs/admin-api.md)",
        ));
    };
    validate_id("user", &body.user)?;
    let token = s
        .tokens
        .issue(app, &UserId::new(&body.user), DEMO_TOKEN_TTL, &[])
        .await?;
    Ok(axum::Json(json!({
        "app": app.to_string(),
        "user": body.user,
        "token": token,
        "expires_at": now_millis() + DEMO_TOKEN_TTL.as_millis() as i64,
    })))
}
