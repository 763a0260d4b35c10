//! Media uploads: ask the server for a ticket, put the file into the object
//! store it names, then send a `MediaRef` to the file as content.

use std::sync::OnceLock;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use bubble_proto::{Command, pb};

use crate::{Client, ClientError};

/// Where and how to upload one file, and the URL the message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadTicket {
    /// Where to send the file's bytes.
    pub upload_url: String,
    /// The HTTP method (`PUT`).
    pub method: String,
    /// Headers to send exactly as given (the file's `Content-Type`).
    pub headers: Vec<(String, String)>,
    /// Where receivers download the file: the `MediaRef`'s `url`.
    pub media_url: String,
    /// Until when the upload may start (ms since the epoch).
    pub expires_at: i64,
}

/// One HTTP client for every upload: connections are reused across files.
fn http() -> &'static reqwest::Client {
    static HTTP: OnceLock<reqwest::Client> = OnceLock::new();
    HTTP.get_or_init(reqwest::Client::new)
}

impl Client {
    /// A ticket to upload a file of `mime` and exactly `size` bytes. The
    /// server refuses a size over the app's `max_media_bytes` (TOO_LARGE) and
    /// a type outside its `media_types` (INVALID_ARGUMENT, naming the
    /// allowed ones).
    pub async fn media_upload(
        &self,
        mime: &str,
        size: u64,
        file_name: &str,
    ) -> Result<UploadTicket, ClientError> {
        let ticket: pb::MediaUploadTicket = self
            .call(
                Command::MediaUpload,
                &pb::MediaUploadRequest {
                    mime: mime.to_owned(),
                    size,
                    file_name: file_name.to_owned(),
                },
            )
            .await?;
        Ok(UploadTicket {
            upload_url: ticket.upload_url,
            method: ticket.method,
            headers: ticket
                .headers
                .into_iter()
                .map(|h| (h.key, h.value))
                .collect(),
            media_url: ticket.media_url,
            expires_at: ticket.expires_at,
        })
    }

    /// Uploads `bytes` and returns the `MediaRef` to send
    /// (`Content::media(&media_ref)`): the ticket's `media_url`, the type,
    /// the size, the SHA-256 receivers check the download against, and
    /// `file_name`. Add width, height or duration before sending.
    pub async fn upload(
        &self,
        bytes: impl Into<Bytes>,
        mime: &str,
        file_name: &str,
    ) -> Result<pb::MediaRef, ClientError> {
        let bytes: Bytes = bytes.into();
        let size = bytes.len() as u64;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let ticket = self.media_upload(mime, size, file_name).await?;
        let method = reqwest::Method::from_bytes(ticket.method.as_bytes()).map_err(|_| {
            ClientError::Protocol(format!(
                "the ticket's method {:?} is not HTTP",
                ticket.method
            ))
        })?;
        let mut request = http().request(method, &ticket.upload_url);
        for (name, value) in &ticket.headers {
            request = request.header(name, value);
        }
        let answer = request
            .body(bytes)
            .send()
            .await
            .map_err(|e| ClientError::Upload {
                status: 0,
                message: format!("the upload did not reach the store: {e}"),
            })?;
        let status = answer.status();
        if !status.is_success() {
            let body = answer.text().await.unwrap_or_default();
            return Err(ClientError::Upload {
                status: status.as_u16(),
                message: format!("the store answered {status}: {}", body.trim()),
            });
        }
        Ok(pb::MediaRef {
            url: ticket.media_url,
            size,
            mime: mime.trim().to_ascii_lowercase(),
            sha256,
            name: file_name.to_owned(),
            ..pb::MediaRef::default()
        })
    }
}
