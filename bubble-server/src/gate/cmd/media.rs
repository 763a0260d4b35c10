//! MediaUpload (132) -> MediaUploadTicket (133): where a client uploads a
//! file before it sends the message as a `MediaRef`. The app's limits are
//! checked here, the key is the server's choice, and the bytes go straight
//! to the media store, never through the gate.

use bubble_core::{Engine, Error, ErrorKind, Result, Session, now_millis};
use bubble_media::MediaStore;
use bubble_proto::{Command, Frame, pb};

use super::{Reply, decode};

/// Longest file name a client may send, in bytes.
const MAX_FILE_NAME: usize = 255;

/// `MediaUploadRequest` -> `MediaUploadTicket`.
#[derive(Debug)]
pub struct Upload {
    mime: String,
    size: u64,
    file_name: String,
}

impl Upload {
    /// Decodes a `MediaUploadRequest`.
    pub fn parse(frame: &Frame) -> Result<Upload> {
        let req: pb::MediaUploadRequest = decode(frame)?;
        if req.file_name.len() > MAX_FILE_NAME {
            return Err(Error::invalid(format!(
                "file_name is {} bytes; at most {MAX_FILE_NAME}",
                req.file_name.len()
            )));
        }
        Ok(Upload {
            mime: req.mime,
            size: req.size,
            file_name: req.file_name,
        })
    }

    /// Checks the upload against the caller's app (`max_media_bytes`:
    /// TOO_LARGE; `media_types`: INVALID_ARGUMENT), makes its key and asks
    /// `media` for a ticket. Without a store (`media.kind = "off"`):
    /// PERMISSION_DENIED.
    pub async fn apply(
        self,
        engine: &Engine,
        session: &Session,
        media: Option<&MediaStore>,
    ) -> Result<Reply> {
        let Some(media) = media else {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                "this server takes no media uploads (media.kind = \"off\"): upload the file to \
                 your own storage and send a MediaRef to it",
            ));
        };
        let app = engine.app(&session.app).await?;
        let mime = bubble_media::check_upload(&app.settings, &self.mime, self.size)?;
        let key =
            bubble_media::new_key(session.app.as_str(), &mime, &self.file_name, now_millis())?;
        let ticket = media
            .upload_ticket(
                session.app.as_str(),
                &key,
                &mime,
                self.size,
                media.upload_expires(),
            )
            .await?;
        tracing::debug!(app = %session.app, user = %session.user, key, size = self.size, "media upload ticket");
        Ok(Reply::message(
            Command::MediaUploadTicket,
            &pb::MediaUploadTicket {
                upload_url: ticket.url,
                method: ticket.method,
                headers: ticket
                    .headers
                    .into_iter()
                    .map(|(key, value)| pb::MediaUploadHeader { key, value })
                    .collect(),
                media_url: ticket.media_url,
                expires_at: ticket.expires_at,
            },
        ))
    }
}
