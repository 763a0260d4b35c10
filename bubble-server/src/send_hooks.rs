//! Send hooks over HTTP: a product's own service reviews messages before
//! they are stored (`before_send`) and receives every stored message after
//! (`after_send`). Both requests are JSON, signed like push webhooks:
//! `x-bubble-timestamp` (ms) and `x-bubble-signature: sha256=<hex>` of
//! HMAC-SHA256 over `"<timestamp>.<body>"` with the app's secret, so the
//! service knows the request is the server's and fresh.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use bubble_core::hooks::{AfterSendHook, BeforeSendHook, OutgoingMessage, SentMessage, Verdict};
use bubble_core::{Content, ContentType, Error, ErrorKind, Result};
use bubble_notify::webhook::signature;
use serde::{Deserialize, Serialize};

/// A message in a hook's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookMessage {
    /// The app.
    pub app: String,
    /// The server's message id (hex; empty before it is stored).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server_msg_id: String,
    /// Who sends it.
    pub sender: String,
    /// From which device.
    pub sender_device: String,
    /// `direct:<peer>`, `group:<id>` or `super_group:<id>`, as the sender sees it.
    pub conversation: String,
    /// The sender's dedup id.
    pub client_msg_id: String,
    /// When the server took it (ms; 0 before it is stored).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub server_time: i64,
    /// `text`, `media`, `voice` or `custom`.
    pub content_type: String,
    /// The text, for text; else the encoded body in base64.
    pub content: String,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// What a before-send service answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookAnswer {
    /// `allow`, `refuse` or `replace`.
    pub verdict: String,
    /// For `refuse`: shown to the sender.
    #[serde(default)]
    pub reason: String,
    /// For `replace`: the new text (text messages only).
    #[serde(default)]
    pub content: String,
}

fn content_fields(content: &Content) -> (String, String) {
    let kind = match content.kind {
        ContentType::Text => "text",
        ContentType::Media => "media",
        ContentType::Voice => "voice",
        ContentType::Custom => "custom",
        ContentType::None => "none",
    };
    let body = match content.kind {
        ContentType::Text => String::from_utf8_lossy(&content.body).into_owned(),
        _ => base64::engine::general_purpose::STANDARD.encode(&content.body),
    };
    (kind.to_owned(), body)
}

impl HookMessage {
    fn outgoing(m: &OutgoingMessage) -> HookMessage {
        let (content_type, content) = content_fields(&m.content);
        HookMessage {
            app: m.app.to_string(),
            server_msg_id: String::new(),
            sender: m.sender.to_string(),
            sender_device: m.sender_device.to_string(),
            conversation: m.conversation.key(),
            client_msg_id: m.client_msg_id.clone(),
            server_time: 0,
            content_type,
            content,
        }
    }

    fn sent(m: &SentMessage) -> HookMessage {
        let (content_type, content) = content_fields(&m.content);
        HookMessage {
            app: m.app.to_string(),
            server_msg_id: m.server_msg_id.to_string(),
            sender: m.sender.to_string(),
            sender_device: m.sender_device.to_string(),
            conversation: m.conversation.key(),
            client_msg_id: m.client_msg_id.clone(),
            server_time: m.server_time,
            content_type,
            content,
        }
    }
}

/// One signed JSON POST to a hook service.
#[derive(Debug, Clone)]
struct Endpoint {
    client: reqwest::Client,
    url: String,
    secret: String,
    what: &'static str,
}

impl Endpoint {
    fn new(url: &str, secret: &str, timeout: Duration, what: &'static str) -> Result<Endpoint> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| Error::internal(format!("HTTP client for the {what} hook: {e}")))?;
        Ok(Endpoint {
            client,
            url: url.to_owned(),
            secret: secret.to_owned(),
            what,
        })
    }

    async fn post(&self, body: Vec<u8>) -> Result<reqwest::Response> {
        let now = bubble_core::now_millis();
        let sent = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-bubble-timestamp", now.to_string())
            .header("x-bubble-signature", signature(&self.secret, now, &body))
            .body(body)
            .send()
            .await;
        let answer = sent.map_err(|e| {
            let kind = if e.is_timeout() {
                ErrorKind::Timeout
            } else {
                ErrorKind::Unavailable
            };
            Error::new(
                kind,
                format!("the {} hook at {} did not answer: {e}", self.what, self.url),
            )
        })?;
        if !answer.status().is_success() {
            let kind = if answer.status().is_server_error() || answer.status().as_u16() == 429 {
                ErrorKind::Unavailable
            } else {
                ErrorKind::InvalidInput
            };
            return Err(Error::new(
                kind,
                format!(
                    "the {} hook at {} answered {}",
                    self.what,
                    self.url,
                    answer.status()
                ),
            ));
        }
        Ok(answer)
    }
}

/// A before-send hook served over HTTP: POSTs the message as JSON, reads
/// a [`HookAnswer`].
#[derive(Debug, Clone)]
pub struct HttpBeforeSend {
    endpoint: Endpoint,
}

impl HttpBeforeSend {
    /// Calls `url`, signing with the app's `secret`, waiting at most `timeout`.
    pub fn new(url: &str, secret: &str, timeout: Duration) -> Result<HttpBeforeSend> {
        Ok(HttpBeforeSend {
            endpoint: Endpoint::new(url, secret, timeout, "before-send")?,
        })
    }
}

#[async_trait]
impl BeforeSendHook for HttpBeforeSend {
    async fn review(&self, message: &OutgoingMessage) -> Result<Verdict> {
        let body = serde_json::to_vec(&HookMessage::outgoing(message))
            .map_err(|e| Error::internal(format!("before-send request as JSON: {e}")))?;
        let answer: HookAnswer = self.endpoint.post(body).await?.json().await.map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!(
                    "the before-send hook at {} answered something that is not \
                     {{\"verdict\": ...}}: {e}",
                    self.endpoint.url
                ),
            )
        })?;
        match answer.verdict.as_str() {
            "allow" => Ok(Verdict::Allow),
            "refuse" => Ok(Verdict::Refuse {
                reason: if answer.reason.is_empty() {
                    "the app's policy".to_owned()
                } else {
                    answer.reason
                },
            }),
            "replace" if message.content.kind == ContentType::Text => {
                Ok(Verdict::Replace(Content::text(answer.content)))
            }
            "replace" => Err(Error::new(
                ErrorKind::Unavailable,
                "the before-send hook replaced content that is not text; only text can be replaced",
            )),
            other => Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "the before-send hook at {} answered verdict {other:?}; use \"allow\", \
                     \"refuse\" or \"replace\"",
                    self.endpoint.url
                ),
            )),
        }
    }
}

/// An after-send hook served over HTTP: POSTs `{"messages": [...]}`; any
/// 2xx answer takes the batch.
#[derive(Debug, Clone)]
pub struct HttpAfterSend {
    endpoint: Endpoint,
}

impl HttpAfterSend {
    /// Calls `url`, signing with the app's `secret`, waiting at most `timeout`.
    pub fn new(url: &str, secret: &str, timeout: Duration) -> Result<HttpAfterSend> {
        Ok(HttpAfterSend {
            endpoint: Endpoint::new(url, secret, timeout, "after-send")?,
        })
    }
}

/// The body of an after-send call.
#[derive(Debug, Serialize, Deserialize)]
pub struct AfterSendBatch {
    /// In the order they were stored.
    pub messages: Vec<HookMessage>,
}

#[async_trait]
impl AfterSendHook for HttpAfterSend {
    async fn deliver(&self, messages: &[SentMessage]) -> Result<()> {
        let batch = AfterSendBatch {
            messages: messages.iter().map(HookMessage::sent).collect(),
        };
        let body = serde_json::to_vec(&batch)
            .map_err(|e| Error::internal(format!("after-send batch as JSON: {e}")))?;
        self.endpoint.post(body).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_message_names_the_conversation_and_carries_text_as_text() {
        let m = OutgoingMessage {
            app: bubble_core::AppId::new("a"),
            sender: bubble_core::UserId::new("ann"),
            sender_device: bubble_core::DeviceId::new("phone"),
            conversation: bubble_core::Conversation::group(&bubble_core::GroupId::new("g1")),
            client_msg_id: "c-1".into(),
            content: Content::text("hi"),
        };
        let json = serde_json::to_value(HookMessage::outgoing(&m)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"app": "a", "sender": "ann", "sender_device": "phone",
                "conversation": "group:g1", "client_msg_id": "c-1",
                "content_type": "text", "content": "hi"})
        );
    }
}
