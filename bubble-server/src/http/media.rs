//! The `fs` media store on the HTTP listener: `PUT /v1/media/{key}` takes
//! an upload a MediaUploadTicket signed (checked before a byte of the body
//! is read, then streamed to disk chunk by chunk), and `GET /v1/media/{key}`
//! serves the file to anyone holding its unguessable URL (why not signed:
//! `bubble_media`'s crate docs).
//!
//! Refusals are the API's JSON errors: 404 for a key not of the server's
//! shape or not stored, 403 for a forged or expired URL, 411/400 for a
//! missing or wrong `Content-Length`, 415 for a wrong `Content-Type`, 409
//! for a URL used already.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use bubble_core::{Error, ErrorKind};
use bubble_media::{FS_ROUTE, MediaStore, UploadGrant, is_media_key, keys::mime_of_key};

use super::api::{self, ApiError, Path, Query};

/// The upload and download routes of `store`, for merging into the router.
pub fn routes(store: Arc<MediaStore>) -> Router {
    Router::new()
        .route(&format!("{FS_ROUTE}/{{*key}}"), get(download).put(upload))
        .method_not_allowed_fallback(api::wrong_method)
        .with_state(store)
}

/// What an upload URL's query carries besides the key.
#[derive(Deserialize)]
struct UploadQuery {
    app: String,
    mime: String,
    size: u64,
    expires: i64,
    sig: String,
}

fn no_such_file(key: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorKind::NotFound,
        format!("no media file {key}"),
    )
}

/// `PUT /v1/media/{key}?app&mime&size&expires&sig`.
async fn upload(
    State(store): State<Arc<MediaStore>>,
    Path(key): Path<String>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if !is_media_key(&key) {
        return Err(no_such_file(&key));
    }
    let grant = UploadGrant {
        app: q.app,
        key,
        mime: q.mime,
        size: q.size,
        expires_at: q.expires,
    };
    store
        .verify_upload(&grant, &q.sig)
        .map_err(|e| ApiError::new(StatusCode::FORBIDDEN, e.kind(), e.message()))?;
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match length {
        None => {
            return Err(ApiError::new(
                StatusCode::LENGTH_REQUIRED,
                ErrorKind::InvalidInput,
                format!(
                    "send the file with Content-Length: {} (not chunked)",
                    grant.size
                ),
            ));
        }
        Some(n) if n != grant.size => {
            return Err(Error::invalid(format!(
                "Content-Length is {n}; the ticket was asked for a file of {} bytes: ask for a \
                 ticket with the file's real size",
                grant.size
            ))
            .into());
        }
        Some(_) => {}
    }
    let mut content_types = headers.get_all(header::CONTENT_TYPE).iter();
    let content_type = content_types
        .next()
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let one_type = content_types.next().is_none();
    if !one_type || !content_type.trim().eq_ignore_ascii_case(&grant.mime) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::InvalidInput,
            format!(
                "Content-Type is {content_type:?}; the ticket was asked for {}: send the ticket's headers as given",
                grant.mime
            ),
        ));
    }
    store
        .write_stream(&grant.key, grant.size, body.into_data_stream())
        .await?;
    Ok(StatusCode::CREATED.into_response())
}

/// `GET /v1/media/{key}` (and `HEAD`).
async fn download(
    State(store): State<Arc<MediaStore>>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    if !is_media_key(&key) {
        return Err(no_such_file(&key));
    }
    let (size, stream) = store.read_stream(&key).await?;
    let mut response = Body::from_stream(stream).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(mime_of_key(&key)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    // A key is never written twice: caches may keep the file for good.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    // Users' files share an origin with the web chat: never sniffed into
    // HTML, never run as a page of that origin (an SVG's script).
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(response)
}
