//! The admin API's one error shape, `{"error": {"kind", "message"}}`, for
//! every refusal: the engine's errors, and axum's own rejections (a body
//! that is not the JSON asked for, bad path or query parameters, an unknown
//! route, a wrong method), through the extractors here and the router's
//! fallbacks.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use bubble_core::wire::error_wire;
use bubble_core::{Error, ErrorKind};

// The OpenAPI schema is derived from this type and every refusal is
// serialized from it, so the two cannot differ.
/// The body of every refusal.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": {"kind": "NotFound", "message": "no app \"shop\""}}))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong: the kind (a status has one or a few, see
/// docs/admin-api.md) and a message that says what to do.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The error kind, e.g. `InvalidInput`, `Unauthenticated`, `NotFound`, `Unavailable`.
    pub kind: String,
    /// A human-readable explanation.
    pub message: String,
}

/// An API error: an HTTP status and `{"error": {"kind", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: ErrorKind,
    message: String,
}

impl ApiError {
    /// An error with an explicit status.
    pub fn new(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
        }
    }

    /// One of axum's rejections, with its status and message. A body that
    /// parses but does not fit (axum's 422: an unknown field, a bad value, a
    /// missing field) is a 400 like every other bad input; the message is
    /// serde's, with the path of the field it names.
    fn rejection(status: StatusCode, message: String) -> ApiError {
        let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
            StatusCode::BAD_REQUEST
        } else {
            status
        };
        let kind = match status {
            StatusCode::PAYLOAD_TOO_LARGE => ErrorKind::TooLarge,
            StatusCode::NOT_FOUND => ErrorKind::NotFound,
            s if s.is_server_error() => ErrorKind::Internal,
            _ => ErrorKind::InvalidInput,
        };
        ApiError::new(status, kind, message)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = StatusCode::from_u16(error_wire(e.kind()).http_status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError::new(status, e.kind(), e.message())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError::rejection(r.status(), r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::rejection(r.status(), r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::rejection(r.status(), r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                kind: format!("{:?}", self.kind),
                message: self.message,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// A JSON body (`Content-Type: application/json`), refused as an [`ApiError`].
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Json(value))
    }
}

/// Path parameters, refused as an [`ApiError`].
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(value))
    }
}

/// Query parameters, refused as an [`ApiError`].
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(value))
    }
}

/// The router's fallback: no route has this path.
pub async fn no_route(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorKind::NotFound,
        format!("no route {} (see docs/admin-api.md)", request.uri().path()),
    )
}

/// The routes' fallback for a method they do not serve (axum adds `Allow`).
pub async fn wrong_method(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::InvalidInput,
        format!(
            "{} does not serve {} (the Allow header lists what it does)",
            request.uri().path(),
            request.method()
        ),
    )
}
