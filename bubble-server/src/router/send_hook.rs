//! The before-send hook over gRPC: `bubble.business.v1.SendHook/BeforeSend`.

use std::time::Duration;

use async_trait::async_trait;

use bubble_core::hooks::{BeforeSendHook, OutgoingMessage, Verdict};
use bubble_core::{Content, ContentType, Error, ErrorKind, Result};

use super::pb::send_hook_client::SendHookClient;
use super::{LazyChannel, gave_up_at_deadline, pb, status_error};

/// A [`BeforeSendHook`] that calls a product's `SendHook` over gRPC.
pub struct GrpcBeforeSendHook {
    /// "send hook at http://…", for errors.
    name: String,
    channel: LazyChannel,
    timeout: Duration,
}

impl std::fmt::Debug for GrpcBeforeSendHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcBeforeSendHook")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl GrpcBeforeSendHook {
    /// A hook served at `address` (`http://host:port`), each call waiting
    /// at most `timeout`. No connection is made until the first message;
    /// an answer that does not come in time is an error of kind
    /// [`ErrorKind::Timeout`] (the app's failure policy decides).
    pub fn new(address: &str, timeout: Duration) -> Result<GrpcBeforeSendHook> {
        if timeout.is_zero() {
            return Err(Error::invalid(format!(
                "the deadline of the send hook at {address} must be above 0"
            )));
        }
        Ok(GrpcBeforeSendHook {
            name: format!("send hook at {address}"),
            channel: LazyChannel::new(address, timeout)?,
            timeout,
        })
    }

    /// The hook's answer as a verdict, refusing one that is not an answer.
    fn verdict(&self, reply: pb::BeforeSendReply) -> Result<Verdict> {
        match pb::Verdict::try_from(reply.verdict) {
            Ok(pb::Verdict::Allow) => Ok(Verdict::Allow),
            Ok(pb::Verdict::Refuse) => Ok(Verdict::Refuse {
                reason: if reply.reason.is_empty() {
                    "the app's send hook refused this message".into()
                } else {
                    reply.reason
                },
            }),
            Ok(pb::Verdict::Replace) => {
                let kind = u8::try_from(reply.replacement_content_type)
                    .ok()
                    .and_then(|k| ContentType::from_u8(k).ok())
                    .filter(|k| *k != ContentType::None)
                    .ok_or_else(|| {
                        Error::internal(format!(
                            "{} answered REPLACE with content type {}, which is not one of 1 \
                             (text), 2 (media), 3 (voice), 4 (custom)",
                            self.name, reply.replacement_content_type
                        ))
                    })?;
                if kind == ContentType::Text
                    && std::str::from_utf8(&reply.replacement_body).is_err()
                {
                    return Err(Error::internal(format!(
                        "{} answered REPLACE with text that is not UTF-8",
                        self.name
                    )));
                }
                Ok(Verdict::Replace(Content {
                    kind,
                    body: reply.replacement_body,
                }))
            }
            _ => Err(Error::internal(format!(
                "{} answered without a verdict ({}); answer ALLOW, REFUSE or REPLACE",
                self.name, reply.verdict
            ))),
        }
    }
}

#[async_trait]
impl BeforeSendHook for GrpcBeforeSendHook {
    async fn review(&self, message: &OutgoingMessage) -> Result<Verdict> {
        let mut request = tonic::Request::new(pb::BeforeSendRequest {
            app: message.app.to_string(),
            sender: message.sender.to_string(),
            sender_device: message.sender_device.to_string(),
            conversation_kind: message.conversation.kind as u32,
            conversation_id: message.conversation.id.to_string(),
            client_msg_id: message.client_msg_id.clone(),
            content_type: message.content.kind as u32,
            body: message.content.body.clone(),
        });
        request.set_timeout(self.timeout);
        let mut client = SendHookClient::new(self.channel.get());
        let timed_out = || {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "{} did not answer within {} ms",
                    self.name,
                    self.timeout.as_millis()
                ),
            )
        };
        match tokio::time::timeout(self.timeout, client.before_send(request)).await {
            Ok(Ok(reply)) => self.verdict(reply.into_inner()),
            Ok(Err(status)) if gave_up_at_deadline(&status) => Err(timed_out()),
            Ok(Err(status)) => Err(status_error(&status, &self.name)),
            Err(_) => Err(timed_out()),
        }
    }
}
