//! Content checks: what an app allows into a message.

use prost::Message;

use bubble_proto::pb;

use crate::apps::AppSettings;
use crate::error::{Error, ErrorKind, Result};
use crate::types::{Content, ContentType};

fn too_large(what: &str, len: usize, max: usize) -> Error {
    Error::new(
        ErrorKind::TooLarge,
        format!(
            "{what} is {len} bytes; this app allows at most {max}: send large content as a media reference"
        ),
    )
}

/// Checks a message's content against the app's limits and its type's shape.
pub fn validate(settings: &AppSettings, content: &Content) -> Result<()> {
    match content.kind {
        ContentType::None => Err(Error::invalid("a message needs content")),
        ContentType::Text => {
            if content.body.is_empty() {
                return Err(Error::invalid("text content is empty"));
            }
            if content.body.len() > settings.max_text_bytes {
                return Err(too_large(
                    "text",
                    content.body.len(),
                    settings.max_text_bytes,
                ));
            }
            std::str::from_utf8(&content.body)
                .map_err(|_| Error::invalid("text content is not valid UTF-8"))?;
            Ok(())
        }
        ContentType::Media => {
            let media = pb::MediaRef::decode(content.body.clone())
                .map_err(|e| Error::invalid(format!("media content is not a MediaRef: {e}")))?;
            if !(media.url.starts_with("https://") || media.url.starts_with("http://")) {
                return Err(Error::invalid(
                    "media url must be an http(s) URL of the uploaded file",
                ));
            }
            if media.url.len() > 2048 {
                return Err(too_large("media url", media.url.len(), 2048));
            }
            if media.mime.is_empty() || !media.mime.contains('/') {
                return Err(Error::invalid(
                    "media mime must be a MIME type such as image/jpeg",
                ));
            }
            if !media.sha256.is_empty()
                && (media.sha256.len() != 64
                    || !media.sha256.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return Err(Error::invalid("media sha256 must be 64 hex characters"));
            }
            Ok(())
        }
        ContentType::Voice => {
            let voice = pb::Voice::decode(content.body.clone())
                .map_err(|e| Error::invalid(format!("voice content is not a Voice: {e}")))?;
            if voice.data.is_empty() {
                return Err(Error::invalid("voice clip has no audio data"));
            }
            if voice.data.len() > settings.max_voice_bytes {
                return Err(too_large(
                    "voice clip",
                    voice.data.len(),
                    settings.max_voice_bytes,
                ));
            }
            if voice.mime.is_empty() {
                return Err(Error::invalid(
                    "voice mime must name the codec, e.g. audio/ogg",
                ));
            }
            Ok(())
        }
        ContentType::Custom => {
            let custom = pb::Custom::decode(content.body.clone())
                .map_err(|e| Error::invalid(format!("custom content is not a Custom: {e}")))?;
            if custom.body.len() > settings.max_custom_bytes {
                return Err(too_large(
                    "custom payload",
                    custom.body.len(),
                    settings.max_custom_bytes,
                ));
            }
            if custom.r#type.is_empty() {
                return Err(Error::invalid("custom content needs a type name"));
            }
            match pb::CustomFormat::try_from(custom.format) {
                Ok(pb::CustomFormat::Json) => {
                    serde_json::from_slice::<serde_json::Value>(&custom.body).map_err(|e| {
                        Error::invalid(format!("custom JSON payload does not parse: {e}"))
                    })?;
                }
                Ok(pb::CustomFormat::Xml) => {
                    let text = std::str::from_utf8(&custom.body)
                        .map_err(|_| Error::invalid("custom XML payload is not UTF-8"))?;
                    let t = text.trim();
                    if !(t.starts_with('<') && t.ends_with('>')) {
                        return Err(Error::invalid("custom XML payload is not an XML element"));
                    }
                }
                _ => return Err(Error::invalid("custom format must be JSON or XML")),
            }
            Ok(())
        }
    }
}
